#!/usr/bin/env python3
"""The whole local stack: s3rver with both buckets + `chalice local`.

s3rver serves the public variants bucket as a website (``images``, the
public base) and the private originals bucket (``originals``) that uploads go
to; it enforces no privacy, which the packaged stack does (docs/uploads.md).
`make run` runs this file; the end-to-end tests use :class:`LocalStack`
directly, on free ports, so both exercise exactly the same processes.

The event pipeline runs alongside: moto's server plays SQS, DynamoDB and SNS
(scripts/local/aws.py), s3rver forwards the events bucket's object events to
the events queue, and, given a handler, scripts/local/lambda_poller.py invokes
it with batches the way Lambda's SQS event source mapping does.

With the page, a local OpenID provider (scripts/local/oidc.js, oidc-provider) is
the sign-in issuer: the page signs its user in there and the app verifies its
tokens (OIDC_ISSUER, OIDC_CLIENT_ID), as Cognito's hosted UI and the app do on AWS.

A CDN stand-in (scripts/local/cdn.js) sits in front of the website and runs
the stack's CloudFront Function file on every request, as CloudFront does.

Environment (all optional): LOCAL_HOST (127.0.0.1), S3_PORT (4568),
API_PORT (8000), AWS_PORT (4566), CDN_PORT (4570), OIDC_PORT (4571), BUCKET (images),
ORIGINALS_BUCKET (originals),
UPLOAD_TOKEN (local-dev-token), OIDC_PASSWORD (generated), LOCAL_DATA_DIR (.local),
EVENT_HANDLER (app:on_original_event; module:attribute of the events queue's
Lambda handler, empty for none).
"""

from __future__ import annotations

import json
import os
import random
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import requests
from botocore.config import Config

from chalicelib.config import EVENTS_TIMEOUT_SECONDS
from chalicelib.identity import DISCOVERY_PATH
from chalicelib.policies.document import PENDING_KEY
from scripts.local import aws, records
from scripts.local.lambda_poller import visibility_for
from scripts.local.samples import (
    SAMPLE_MARK_KEY,
    SAMPLE_MIN_SIZE,
    WATERMARKED_PREFIX,
    sample_originals,
    sample_policy,
    watermark,
    watermarked_originals,
)
from scripts.ops.configure_bucket import configure_bucket, configure_originals
from scripts.ops.publish_page import INDEX_KEY, local_config, publish_page

ROOT = Path(__file__).resolve().parents[2]


S3RVER_CREDENTIALS = aws.FAKE_CREDENTIALS
# The bearer token `make run` accepts for uploads unless UPLOAD_TOKEN says otherwise.
DEV_UPLOAD_TOKEN = "local-dev-token"
# With the page: its gallery asks for these widths as .auto (page/app.js), so each is
# made in every format a browser can be given as soon as a photo arrives.
PAGE_PRESET_SIZES = "160x160-cover-focus,320x.auto,640x.auto,1280x.auto"
# The Lambda handler of the originals' events queue (app.py).
APP_EVENT_HANDLER = "app:on_original_event"
# The page's client at the local OpenID provider, and the provider's one user.
OIDC_CLIENT_ID = "image-resizer-page"
OIDC_USER = "local"


# Where the kernel picks the local port of every outgoing connection (Linux's default
# when /proc does not say).
EPHEMERAL_PORTS_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")
_handed_out: set[int] = set()


def ephemeral_ports() -> range:
    """The kernel's ephemeral port range, the local ports of outgoing connections."""
    try:
        low, high = (int(part) for part in EPHEMERAL_PORTS_FILE.read_text().split())
    except (OSError, ValueError):
        low, high = 32768, 60999
    return range(low, high + 1)


def listening_ports() -> range:
    """Ports to hand to servers: outside the ephemeral range, above the well-known ones."""
    ephemeral = ephemeral_ports()
    below, above = range(10000, ephemeral.start), range(ephemeral.stop, 65536)
    return below if len(below) >= len(above) else above


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on, for a server started a while later.

    Not one the kernel would pick (port 0): between this call and the server's bind,
    any outgoing connection on the machine may take an ephemeral port, and a busy
    stack makes hundreds (CI once saw chalice fail to bind for that reason). Outside
    that range only another server can take it; the ports handed out in this process
    are never handed out twice.
    """
    candidates = listening_ports()
    for _ in range(200):
        # Port 0 asks the kernel, when the ephemeral range leaves no side free.
        wanted = random.choice(candidates) if candidates else 0
        with socket.socket() as sock:
            try:
                sock.bind((host, wanted))
            except OSError:
                continue
            port = int(sock.getsockname()[1])
        if port not in _handed_out:
            _handed_out.add(port)
            return port
    raise RuntimeError(f"no free port in {candidates}")


def local_s3_client(endpoint_url: str) -> Any:
    """A client of the local s3rver at ``endpoint_url``, with the credentials it accepts."""
    # SigV4, as S3 wants it (and as scripts/local/post_policy.js checks forms); one
    # host for every bucket, not <bucket>.host.
    config = Config(signature_version="s3v4", s3={"addressing_style": "path"})
    return aws.aws_client("s3", endpoint_url, config)


def aws_resource(field: str) -> property:
    """A LocalStack property: one field (a str) of its started aws.EventResources."""

    def read(stack: LocalStack) -> str:
        return str(getattr(stack.aws_resources, field))

    return property(read, doc=f"aws.EventResources.{field} (once started)")


@dataclass(frozen=True)
class EventSettings:
    """The event pipeline's knobs: the queue's, and the poller's (as the mapping's).

    The function's timeout is the packaged events function's, and the queue's
    visibility timeout six times that (the stack's rule) unless given.
    """

    function_timeout: float = EVENTS_TIMEOUT_SECONDS
    visibility_timeout: int | None = None
    max_receive_count: int = 3
    table_name: str = aws.DEFAULT_METADATA_TABLE
    batch_size: int = 10
    max_concurrency: int = 2

    @property
    def queue_visibility(self) -> int:
        if self.visibility_timeout is not None:
            return self.visibility_timeout
        return visibility_for(self.function_timeout)


class LocalStack:
    """s3rver and `chalice local` as real processes, started and stopped together."""

    def __init__(
        self,
        data_dir: Path,
        *,
        host: str = "127.0.0.1",
        s3_port: int = 4568,
        api_port: int = 8000,
        bucket: str = "images",
        originals_bucket: str = "originals",
        upload_token: str = DEV_UPLOAD_TOKEN,
        app_env: Mapping[str, str] | None = None,
        aws_port: int | None = None,
        events_bucket: str | None = None,
        event_handler: str | None = None,
        events: EventSettings | None = None,
        page: bool = False,
        cdn_port: int | None = None,
        oidc_port: int | None = None,
        oidc_password: str | None = None,
        oidc_env: Mapping[str, str] | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.host = host
        self.s3_port = s3_port
        self.api_port = api_port
        self.bucket = bucket
        self.originals_bucket = originals_bucket
        self.upload_token = upload_token
        self.app_env = dict(app_env or {})
        # A free port unless told: callers that predate moto pass only the other two.
        self.aws_port = aws_port or free_port(host)
        self.cdn_port = cdn_port or free_port(host)
        # Only this bucket's object events reach the queue (never the variants'):
        # the originals bucket unless told.
        self.events_bucket = events_bucket or originals_bucket
        # "module:attribute" of a Lambda handler; None starts no poller.
        self.event_handler = event_handler
        self.events = events or EventSettings()
        # Publish the demo page (page/) into the website bucket: off by default,
        # since tests count the bucket's objects.
        self.page = page
        # The local OpenID provider runs with the page (its client is the page).
        self.oidc_port = oidc_port or free_port(host)
        self.oidc_password = oidc_password or secrets.token_urlsafe(12)
        self.oidc_env = dict(oidc_env or {})
        self._aws: aws.EventResources | None = None
        self._processes: dict[str, subprocess.Popen[bytes]] = {}

    @property
    def s3_url(self) -> str:
        return f"http://{self.host}:{self.s3_port}"

    @property
    def api_url(self) -> str:
        return f"http://{self.host}:{self.api_port}"

    @property
    def public_url(self) -> str:
        """The website base: path-style, so any HTTP client reaches it without DNS tricks."""
        return f"{self.s3_url}/{self.bucket}"

    @property
    def cdn_url(self) -> str:
        """The website through the CDN stand-in, which resolves ``.auto`` sizes first."""
        return f"http://{self.host}:{self.cdn_port}/{self.bucket}"

    @property
    def page_url(self) -> str:
        """The demo page, through the CDN like its images (once started with page=True)."""
        return f"{self.cdn_url}/{INDEX_KEY}"

    @property
    def page_origins(self) -> tuple[str, ...]:
        """Where a page that uploads may be served from: the website and the API, by either name."""
        return tuple(
            f"http://{host}:{port}"
            for port in (self.s3_port, self.api_port, self.cdn_port)
            for host in dict.fromkeys((self.host, "localhost"))
        )

    @property
    def oidc_issuer(self) -> str:
        """The local OpenID provider (once started with page=True)."""
        return f"http://{self.host}:{self.oidc_port}"

    @property
    def page_urls(self) -> tuple[str, ...]:
        """Where the page may be opened: the sign-in client's redirect and logout URIs."""
        return (self.page_url, f"{self.public_url}/{INDEX_KEY}")

    @property
    def aws_url(self) -> str:
        """moto's server: the local SQS, DynamoDB and SNS endpoint."""
        return f"http://{self.host}:{self.aws_port}"

    @property
    def aws_resources(self) -> aws.EventResources:
        if self._aws is None:
            raise RuntimeError("the local AWS services are not started")
        return self._aws

    # The started resources' names and addresses, as the app and tests address them.
    events_queue_url = aws_resource("queue_url")
    events_queue_arn = aws_resource("queue_arn")
    events_dlq_url = aws_resource("dlq_url")
    metadata_table = aws_resource("table_name")
    notify_topic_arn = aws_resource("topic_arn")
    notifications_queue_url = aws_resource("notifications_queue_url")

    @property
    def poller_stats_path(self) -> Path:
        return self.data_dir / "poller-stats.json"

    def aws_env(self) -> dict[str, str]:
        """The environment chalice local and the poller get for SQS, DynamoDB and SNS."""
        return aws.app_aws_env(self.aws_resources)

    def aws_client(self, service: str) -> Any:
        return aws.aws_client(service, self.aws_url)

    def queue_depth(self, queue_url: str) -> int:
        """Messages waiting in a local queue or in flight (delayed ones not counted)."""
        attributes = self.aws_client("sqs").get_queue_attributes(
            QueueUrl=queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return sum(int(value) for value in attributes.values())

    def s3_client(self) -> Any:
        return local_s3_client(self.s3_url)

    def start(self) -> LocalStack:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.start_aws()
        self.start_s3()
        self.start_cdn()
        # The AWS path too: s3rver answers NotImplemented to the policy steps, which are
        # then skipped (it serves every object anonymously anyway).
        client = self.s3_client()
        configure_bucket(client, self.bucket, self.api_url, create=True, public_read=True)
        configure_originals(client, self.originals_bucket, self.page_origins, create=True)
        if self.page:
            self.start_oidc()
            config = local_config(
                self.api_url,
                self.public_url,
                self.upload_token,
                self.cdn_url,
                (self.oidc_issuer, OIDC_CLIENT_ID),
            )
            publish_page(client, self.bucket, config)
        self.start_api()
        if self.event_handler:
            self.start_poller()
        write_state(self)
        return self

    def start_aws(self) -> None:
        moto = [sys.executable, "-m", "scripts.local.moto_server", "-H", self.host]
        moto += ["-p", str(self.aws_port)]
        self._spawn("moto", moto, os.environ)
        self._wait_until(lambda: requests.get(self.aws_url, timeout=1) is not None, "moto")
        self._aws = aws.create_event_resources(
            self.aws_url,
            table_name=self.events.table_name,
            visibility_timeout=self.events.queue_visibility,
            max_receive_count=self.events.max_receive_count,
        )

    def start_poller(self) -> None:
        """Invoke ``event_handler`` with the events queue's batches, like Lambda's mapping."""
        assert self.event_handler, "start_poller needs an event_handler"
        self.poller_stats_path.unlink(missing_ok=True)  # it appears once the poller is up
        poller = [
            sys.executable,
            "-m",
            "scripts.local.lambda_poller",
            *("--handler", self.event_handler),
            *("--queue-url", self.events_queue_url),
            *("--batch-size", str(self.events.batch_size)),
            *("--max-concurrency", str(self.events.max_concurrency)),
            *("--timeout", str(self.events.function_timeout)),
            *("--visibility-timeout", str(self.events.queue_visibility)),
            *("--stats-file", str(self.poller_stats_path)),
        ]
        self._spawn("poller", poller, self.app_process_env())
        self._wait_until(self.poller_stats_path.exists, "poller")

    def restart_poller(self) -> None:
        """Stop the poller (SIGTERM: it finishes the batch in hand) and start it again."""
        self.stop_process("poller")
        self.start_poller()

    def start_s3(self) -> None:
        s3rver = [
            "node",
            # s3rver encrypts ListObjectsV2 continuation tokens with DES, which
            # OpenSSL 3 keeps in its legacy provider: without it, every listing
            # that is cut short by MaxKeys answered 500.
            "--openssl-legacy-provider",
            str(ROOT / "scripts" / "local" / "s3rver.js"),
            str(self.data_dir / "s3"),
            self.host,
            str(self.s3_port),
        ]
        self._spawn("s3rver", s3rver, {**os.environ, **self.s3rver_events_env()})
        self._wait_until(lambda: requests.get(self.s3_url, timeout=1) is not None, "s3rver")

    def start_cdn(self) -> None:
        """The CDN stand-in: the CloudFront Function's file on every request, then the website."""
        cdn = [
            "node",
            str(ROOT / "scripts" / "local" / "cdn.js"),
            self.host,
            str(self.cdn_port),
            self.s3_url,
            self.bucket,
        ]
        self._spawn("cdn", cdn, os.environ)
        self._wait_until(lambda: requests.get(self.cdn_url, timeout=1) is not None, "cdn")

    def start_oidc(self) -> None:
        """The local OpenID provider, the page's issuer; ready once it publishes discovery."""
        env = {
            **os.environ,
            "OIDC_HOST": self.host,
            "OIDC_PORT": str(self.oidc_port),
            "OIDC_CLIENT_ID": OIDC_CLIENT_ID,
            "OIDC_REDIRECT_URIS": ",".join(self.page_urls),
            "OIDC_USER": OIDC_USER,
            "OIDC_PASSWORD": self.oidc_password,
            **self.oidc_env,
        }
        self._spawn("oidc", ["node", str(ROOT / "scripts" / "local" / "oidc.js")], env)
        discovery = f"{self.oidc_issuer}{DISCOVERY_PATH}"
        self._wait_until(lambda: requests.get(discovery, timeout=1).ok, "oidc")

    def oidc_app_env(self) -> dict[str, str]:
        """The app verifies the local provider's tokens, as it does a user pool's on AWS."""
        if not self.page:
            return {}
        return {"OIDC_ISSUER": self.oidc_issuer, "OIDC_CLIENT_ID": OIDC_CLIENT_ID}

    def s3rver_events_env(self) -> dict[str, str]:
        """Tells scripts/local/s3rver.js where to send the events bucket's object events."""
        return {
            **aws.FAKE_CREDENTIALS,
            "AWS_REGION": aws.REGION,
            "S3RVER_EVENTS_BUCKET": self.events_bucket,
            "S3RVER_EVENTS_QUEUE_URL": self.events_queue_url,
        }

    def restart_s3(self) -> None:
        """Stop s3rver and start it again on the same port and data (a storage outage)."""
        self.stop_process("s3rver")
        self.start_s3()

    def app_process_env(self) -> dict[str, str]:
        """The environment of the app's processes: chalice local and the poller."""
        return {
            **os.environ,
            **S3RVER_CREDENTIALS,
            "AWS_DEFAULT_REGION": "us-east-1",
            "IMAGE_BUCKET": self.bucket,
            "ORIGINALS_BUCKET": self.originals_bucket,
            "PUBLIC_URL": self.public_url,
            "S3_ENDPOINT_URL": self.s3_url,
            "UPLOAD_TOKEN": self.upload_token,
            "CORS_ORIGINS": ",".join(self.page_origins),
            **self.page_presets(),
            **self.oidc_app_env(),
            **self.aws_env(),
            **self.app_env,
        }

    def page_presets(self) -> dict[str, str]:
        """PAGE_PRESET_SIZES when the page is published and the environment names none."""
        if not self.page or "PRESET_SIZES" in os.environ:
            return {}
        return {"PRESET_SIZES": PAGE_PRESET_SIZES}

    def start_api(self) -> None:
        chalice = [
            sys.executable,
            "-m",
            "scripts.local.chalice_local",
            "local",
            "--host",
            self.host,
            "--port",
            str(self.api_port),
            "--stage",
            "local",
            "--no-autoreload",
        ]
        self._spawn("chalice", chalice, self.app_process_env())
        self._wait_until(lambda: requests.get(f"{self.api_url}/health", timeout=1).ok, "chalice")

    def put_original(self, key: str, body: bytes, content_type: str | None = None) -> None:
        """Store an original the way an operator with credentials would (no upload form)."""
        options = {"ContentType": content_type} if content_type else {}
        self.s3_client().put_object(Bucket=self.originals_bucket, Key=key, Body=body, **options)

    def upload(
        self,
        body: bytes,
        filename: str = "photo.jpg",
        content_type: str = "image/jpeg",
        replace: str | None = None,
    ) -> dict[str, Any]:
        """Upload as a browser does: POST /uploads, then the form POST to S3; the API's answer.

        ``replace``: an existing key of this token's user, whose bytes the upload replaces.
        """
        asked = {"filename": filename, "content_type": content_type}
        answer = requests.post(
            f"{self.api_url}/uploads",
            json={**asked, "replace": replace} if replace else asked,
            headers={"Authorization": f"Bearer {self.upload_token}"},
            timeout=(10, 120),
        )
        answer.raise_for_status()
        created: dict[str, Any] = answer.json()
        form = created["upload"]
        stored = requests.post(
            form["url"], data=form["fields"], files={"file": (filename, body)}, timeout=(10, 120)
        )
        if stored.status_code != 201:
            raise RuntimeError(f"S3 answered {stored.status_code}: {stored.text[:200]}")
        return created

    def upload_samples(self) -> list[str]:
        for key, (body, content_type) in sample_originals().items():
            self.put_original(key, body, content_type)
        return list(sample_originals())

    def upload_sample_policy(self) -> list[str]:
        """The generated mark, then the policy document, then its originals: their keys.

        The events pipeline activates the document (docs/watermarks.md).
        """
        self.put_original(SAMPLE_MARK_KEY, watermark(), "image/png")
        self.put_original(PENDING_KEY, sample_policy(), "application/json")
        for key, (body, content_type) in watermarked_originals().items():
            self.put_original(key, body, content_type)
        return list(watermarked_originals())

    def stop(self) -> None:
        (self.data_dir / STATE_FILE).unlink(missing_ok=True)
        for name in reversed(list(self._processes)):
            self.stop_process(name)

    def stop_process(self, name: str) -> None:
        """Stop one process ("moto", "s3rver", "chalice", "poller") and its process group."""
        process = self._processes.pop(name)
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def log(self, name: str) -> str:
        path = self.data_dir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def __enter__(self) -> LocalStack:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _spawn(self, name: str, command: list[str], env: Mapping[str, str]) -> None:
        log = (self.data_dir / f"{name}.log").open("ab")
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=dict(env),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stop() ends its children too
        )
        log.close()
        self._processes[name] = process

    def _wait_until(self, ready: Any, name: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        process = self._processes[name]
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited early:\n{self.log(name)}")
            try:
                if ready():
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{name} not ready after {timeout}s:\n{self.log(name)}")


# Where `make run` keeps its data, logs and state unless LOCAL_DATA_DIR says otherwise.
DEFAULT_DATA_DIR = ROOT / ".local"
# What a running stack writes into its data directory, for `make doctor` (scripts/ops/doctor.py).
STATE_FILE = "stack.json"


def write_state(stack: LocalStack) -> None:
    """Record where a started stack answers and which process runs it; stop() removes it."""
    state = {
        "pid": os.getpid(),
        "host": stack.host,
        "s3_port": stack.s3_port,
        "api_port": stack.api_port,
        "aws_port": stack.aws_port,
        "cdn_port": stack.cdn_port,
        "bucket": stack.bucket,
        "originals_bucket": stack.originals_bucket,
    }
    (stack.data_dir / STATE_FILE).write_text(json.dumps(state, indent=2) + "\n")


def main() -> int:
    stack = LocalStack(
        Path(os.environ.get("LOCAL_DATA_DIR") or DEFAULT_DATA_DIR),
        host=os.environ.get("LOCAL_HOST", "127.0.0.1"),
        s3_port=int(os.environ.get("S3_PORT", "4568")),
        api_port=int(os.environ.get("API_PORT", "8000")),
        bucket=os.environ.get("BUCKET", "images"),
        originals_bucket=os.environ.get("ORIGINALS_BUCKET", "originals"),
        upload_token=os.environ.get("UPLOAD_TOKEN") or DEV_UPLOAD_TOKEN,
        aws_port=int(os.environ.get("AWS_PORT", "4566")),
        cdn_port=int(os.environ.get("CDN_PORT", "4570")),
        oidc_port=int(os.environ.get("OIDC_PORT", "4571")),
        oidc_password=os.environ.get("OIDC_PASSWORD") or None,
        # The app's own events handler unless told otherwise ("" turns the poller off).
        event_handler=os.environ.get("EVENT_HANDLER", APP_EVENT_HANDLER) or None,
        page=True,
    )
    with stack:
        since = records.sizes(records.log_paths(stack.data_dir))
        keys = stack.upload_samples()
        marked = stack.upload_sample_policy()
        example = stack.data_dir / "example.jpg"
        example.write_bytes(sample_originals()[keys[0]][0])
        print(f"\nPage: {stack.page_url}  (sign in, upload a photo)")
        print(f"Sign-in (OpenID provider): {stack.oidc_issuer}")
        print(f"  user {OIDC_USER}, password {stack.oidc_password}")
        print(f"Website (public base): {stack.public_url}")
        print(f"CDN: {stack.cdn_url}  (runs infra/cdn/viewer_request.js: .auto sizes)")
        print(f"Resize API:            {stack.api_url}/resize/<size>/<key>")
        print(f"Uploads:               POST {stack.api_url}/uploads (Bearer {stack.upload_token})")
        print(
            f"S3 API (S3RVER/S3RVER): {stack.s3_url} (originals in s3://{stack.originals_bucket})"
        )
        print(f"Local AWS (SQS, DynamoDB, SNS; moto): {stack.aws_url}")
        print(f"  events queue:  {stack.events_queue_url} (bucket {stack.events_bucket})")
        if stack.event_handler:
            print(f"  poller:        {stack.event_handler}, stats in {stack.poller_stats_path}")
        print()
        print("Open in a browser, or follow with curl -L:\n")
        presets = stack.app_process_env().get("PRESET_SIZES", "")
        for line in example_urls(stack.public_url, keys, presets):
            print(line)
        print(f"\nWatermarked (policy {PENDING_KEY}, prefix {WATERMARKED_PREFIX}):\n")
        for line in watermarked_urls(stack.public_url, marked):
            print(line)
        print(
            f"\n  curl -sSL -o /dev/null -w '%{{http_code}} %{{url_effective}}\\n' "
            f"{stack.public_url}/300x300/{quote(keys[0])}"
        )
        print("\nUpload your own photo in two steps (PHOTO= any JPEG), then open any size of it:\n")
        print(upload_example(stack.api_url, stack.upload_token, example))
        print(f"\nLogs: {stack.data_dir}/*.log.  Ctrl-C stops every server.")
        print("Each request and event writes one JSON line there (docs/operations.md).")
        wait_for_stop_signal()
        print("\nstopping")
    print(records.summary(records.read(records.log_paths(stack.data_dir), since)))
    return 0


# The sizes `make run` prints for its samples: none of them is a page preset.
EXAMPLE_SIZES = ("300x300", "500x", "x120")
PRESET_NOTE = "a preset, made on upload: a plain 200 from S3"
MISS_NOTE = "a miss the first time (307 -> API -> 307 -> image), then a plain 200 from S3"


def example_urls(public_url: str, keys: list[str], preset_sizes: str) -> list[str]:
    """One URL per sample, each saying whether it is a preset (stored) or a miss."""
    stored = preset_tokens(preset_sizes)
    pairs = list(zip(keys, EXAMPLE_SIZES, strict=True))
    pairs += [(keys[0], token) for token in stored[:1]]
    notes = {size: PRESET_NOTE if size in stored else MISS_NOTE for _, size in pairs}
    return [f"  {public_url}/{size}/{quote(key)}\n      ({notes[size]})" for key, size in pairs]


def watermarked_urls(public_url: str, keys: list[str]) -> list[str]:
    """The sample policy's originals: a size that carries the mark and one below its threshold."""
    return [
        f"  {public_url}/{size}/{quote(key)}\n      ({note})"
        for key in keys
        for size, note in (
            ("800x", f"watermarked: {SAMPLE_MARK_KEY}"),
            ("200x", f"not watermarked: under min_size {SAMPLE_MIN_SIZE}"),
        )
    ]


def preset_tokens(preset_sizes: str) -> list[str]:
    """The size tokens stored on upload for PRESET_SIZES, in order (``.auto``: its own format)."""
    tokens = [token.strip() for token in preset_sizes.split(",") if token.strip()]
    return [token.removesuffix(".auto") for token in tokens]


# Read step 1's JSON answer on stdin (no single quotes: they wrap the code in the shell).
_FORM_ARGUMENTS = (
    'import json, shlex, sys; u = json.load(sys.stdin)["upload"]; '
    'print(*("--form-string " + shlex.quote(k + "=" + v) for k, v in u["fields"].items()), '
    'shlex.quote(u["url"]))'
)
_VARIANT_URL = 'import json, sys; print(json.load(sys.stdin)["variant_url"].format(size="300x300"))'
_KEY = 'import json, sys, urllib.parse; print(urllib.parse.quote(json.load(sys.stdin)["key"]))'
# Step 2: the form's fields, then the file, last as S3 wants it; prints S3's status (201).
_STEP_2 = (
    """  eval "curl -sS -o /dev/null -w '%{http_code}\\n' """
    """$(echo "$UPLOAD" | python3 -c 'FORM') -F \\"file=@\\$PHOTO\\"" """
)


def upload_example(api_url: str, token: str, photo: Path) -> str:
    """Shell: ask for an upload form, POST the file, print a variant URL and the record."""
    request = json.dumps({"filename": "photo.jpg", "content_type": "image/jpeg"})
    return "\n".join(
        [
            f"  PHOTO={shlex.quote(str(photo))}",
            f"  UPLOAD=$(curl -sS -X POST {api_url}/uploads -H 'Authorization: Bearer {token}' \\",
            f"      -H 'Content-Type: application/json' -d '{request}')",
            _STEP_2.replace("FORM", _FORM_ARGUMENTS).rstrip(),
            f"  echo \"$UPLOAD\" | python3 -c '{_VARIANT_URL}'",
            "  # a moment later: its facts and presets, once the events poller has handled it",
            f"  sleep 2; curl -sS {api_url}/meta/$(echo \"$UPLOAD\" | python3 -c '{_KEY}'); echo",
        ]
    )


def wait_for_stop_signal() -> None:
    """Block until Ctrl-C or SIGTERM, even where the shell started us with SIGINT ignored."""
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    while not stop.wait(1.0):
        pass


if __name__ == "__main__":
    sys.exit(main())
