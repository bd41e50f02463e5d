#!/usr/bin/env python3
"""The whole local stack: s3rver with website hosting + `chalice local`.

`make run` runs this file; the end-to-end tests use :class:`LocalStack`
directly, on free ports, so both exercise exactly the same processes.

Environment (all optional): LOCAL_HOST (127.0.0.1), S3_PORT (4568),
API_PORT (8000), BUCKET (images), LOCAL_DATA_DIR (.local/s3).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

import boto3
import requests
from botocore.config import Config

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from scripts.local.samples import sample_originals  # noqa: E402
from scripts.ops.configure_bucket import configure_bucket  # noqa: E402

S3RVER_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "S3RVER", "AWS_SECRET_ACCESS_KEY": "S3RVER"}


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


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
        app_env: Mapping[str, str] | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.host = host
        self.s3_port = s3_port
        self.api_port = api_port
        self.bucket = bucket
        self.app_env = dict(app_env or {})
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

    def s3_client(self) -> Any:
        return boto3.client(
            "s3",
            endpoint_url=self.s3_url,
            region_name="us-east-1",
            aws_access_key_id=S3RVER_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=S3RVER_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            config=Config(s3={"addressing_style": "path"}),
        )

    def start(self) -> LocalStack:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.start_s3()
        # The AWS path too: s3rver answers NotImplemented to the policy steps, which are
        # then skipped (it serves every object anonymously anyway).
        configure_bucket(self.s3_client(), self.bucket, self.api_url, create=True, public_read=True)
        self.start_api()
        return self

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
        self._spawn("s3rver", s3rver, os.environ)
        self._wait_until(lambda: requests.get(self.s3_url, timeout=1) is not None, "s3rver")

    def restart_s3(self) -> None:
        """Stop s3rver and start it again on the same port and data (a storage outage)."""
        self.stop_process("s3rver")
        self.start_s3()

    def start_api(self) -> None:
        env = {
            **os.environ,
            **S3RVER_CREDENTIALS,
            "AWS_DEFAULT_REGION": "us-east-1",
            "IMAGE_BUCKET": self.bucket,
            "PUBLIC_URL": self.public_url,
            "S3_ENDPOINT_URL": self.s3_url,
            **self.app_env,
        }
        chalice = [
            sys.executable,
            str(ROOT / "scripts" / "local" / "chalice_local.py"),
            "local",
            "--host",
            self.host,
            "--port",
            str(self.api_port),
            "--stage",
            "local",
            "--no-autoreload",
        ]
        self._spawn("chalice", chalice, env)
        self._wait_until(lambda: requests.get(f"{self.api_url}/health", timeout=1).ok, "chalice")

    def upload_samples(self) -> list[str]:
        client = self.s3_client()
        for key, (body, content_type) in sample_originals().items():
            client.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType=content_type)
        return list(sample_originals())

    def stop(self) -> None:
        for name in reversed(list(self._processes)):
            self.stop_process(name)

    def stop_process(self, name: str) -> None:
        """Stop one server ("s3rver" or "chalice") and the children in its process group."""
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


def main() -> int:
    stack = LocalStack(
        Path(os.environ.get("LOCAL_DATA_DIR", ROOT / ".local")),
        host=os.environ.get("LOCAL_HOST", "127.0.0.1"),
        s3_port=int(os.environ.get("S3_PORT", "4568")),
        api_port=int(os.environ.get("API_PORT", "8000")),
        bucket=os.environ.get("BUCKET", "images"),
    )
    with stack:
        keys = stack.upload_samples()
        print(f"\nWebsite (public base): {stack.public_url}")
        print(f"Resize API:            {stack.api_url}/resize/<size>/<key>")
        print(f"S3 API (S3RVER/S3RVER): {stack.s3_url}\n")
        print("Open in a browser, or follow with curl -L; the first request is a miss")
        print("(307 -> API -> 307 -> image), the next one a plain 200 from S3:\n")
        for key, size in zip(keys, ("300x300", "640x", "x120"), strict=True):
            print(f"  {stack.public_url}/{size}/{quote(key)}")
        print(
            f"\n  curl -sSL -o /dev/null -w '%{{http_code}} %{{url_effective}}\\n' "
            f"{stack.public_url}/300x300/{quote(keys[0])}"
        )
        print(f"\nLogs: {stack.data_dir}/*.log.  Ctrl-C stops both servers.")
        wait_for_stop_signal()
        print("\nstopping")
    return 0


def wait_for_stop_signal() -> None:
    """Block until Ctrl-C or SIGTERM, even where the shell started us with SIGINT ignored."""
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    while not stop.wait(1.0):
        pass


if __name__ == "__main__":
    sys.exit(main())
