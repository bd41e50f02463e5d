#!/usr/bin/env python3
"""Check a deployment for the classic mistakes; print a checklist with a fix per failure.

    python -m scripts.ops.doctor --stack image-resizer --region us-east-1   # a CloudFormation stack
    python -m scripts.ops.doctor --local                                    # the `make run` stack
    python -m scripts.ops.doctor --bucket B --originals O --api-url URL --website-url URL \\
        [--public-url URL] [--storage-url URL]

It reads the variants bucket's website configuration with boto3, uploads one
tiny probe original (``doctor-probe/<random>.png``) to the originals bucket,
requests URLs anonymously with ``requests`` (never following redirects except
in the end-to-end check), and deletes the probe, its variant and its ledger
entries at the end.  The privacy checks (originals unreadable, neither bucket
listable) need a real S3: a local S3 server (s3rver) serves everything to
everyone, so against one they are skipped unless ``--storage-url`` names an
endpoint that behaves like S3.  Exit status 1 if any check fails.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
import requests
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.aws import error_code
from chalicelib.config import CDN_MAX_AGE_SECONDS, MAX_MAX_DIMENSION
from chalicelib.identity import DISCOVERY_PATH
from chalicelib.policies.document import (
    ACTIVE_KEY,
    EMPTY,
    PENDING_KEY,
    InvalidPolicy,
    PolicyDocument,
    parse_document,
)
from chalicelib.resize.ledger import original_prefix
from scripts.local.stack import DEFAULT_DATA_DIR, STATE_FILE
from scripts.ops import monitoring
from scripts.ops.publish_page import page_addresses
from scripts.ops.website import REDIRECT_CODE, apply_routing_rules

ROOT = Path(__file__).resolve().parents[2]


TIMEOUT = 30
PROBE_SIZE = "32x"
# What a browser that takes AVIF sends for images (Chromium's), and what .auto must become.
AVIF_ACCEPT = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8"
AUTO_PROBE, AUTO_RESOLVED = f"{PROBE_SIZE}.auto", f"{PROBE_SIZE}.avif"
VARIANT_CACHE_CONTROL = f"s-maxage={CDN_MAX_AGE_SECONDS}"
LOCAL_CREDENTIALS = {"aws_access_key_id": "S3RVER", "aws_secret_access_key": "S3RVER"}

PASS, FAIL, SKIP = "✓", "✗", "–"


@dataclass(frozen=True)
class Target:
    """Where the deployment lives.  ``public_url`` is CloudFront's, or the website's."""

    bucket: str  # the public variants bucket, served as a website
    originals_bucket: str  # private; the probe original goes here
    api_url: str
    website_url: str
    public_url: str
    s3: Any
    # Where anonymous REST requests go (path-style: <storage_url>/<bucket>/<key>), and
    # whether that endpoint enforces privacy at all (s3rver does not).
    storage_url: str = ""
    enforces_privacy: bool = True
    # The events' dead-letter queue and an SQS client for it; none: not checked.
    dead_letter_queue_url: str = ""
    sqs: Any = None
    # The CloudFormation stack and a CloudWatch client: its alarms and figures are shown.
    stack: str = ""
    cloudwatch: Any = None
    # The sign-in's OpenID issuer (the stack's SignInIssuer); none: not checked.
    sign_in_issuer: str = ""
    # The stack's user pool, its page client and hosted UI, with cognito-idp and API
    # Gateway clients: the client's URLs and the API's authorizer are checked; none: skipped.
    hosted_ui_url: str = ""
    user_pool_id: str = ""
    user_pool_client_id: str = ""
    cognito: Any = None
    apigateway: Any = None
    # What the first line of the report names as checked.
    name: str = "the buckets and URLs given on the command line"
    probe_key: str = field(default_factory=lambda: f"doctor-probe/{uuid.uuid4().hex}.png")

    @property
    def behind_cdn(self) -> bool:
        return self.public_url.rstrip("/") != self.website_url.rstrip("/")

    def missing_variant_path(self) -> str:
        return f"{PROBE_SIZE}/doctor-missing/{uuid.uuid4().hex}.png"


@dataclass(frozen=True)
class Result:
    mark: str
    name: str
    detail: str = ""
    fix: str = ""


def check(name: str) -> Callable[[Callable[[Target], Result]], Callable[[Target], Result]]:
    """Name a check; an unexpected error becomes its failure instead of ending the run."""

    def wrap(function: Callable[[Target], Result]) -> Callable[[Target], Result]:
        def run(target: Target) -> Result:
            try:
                result = function(target)
            except (requests.RequestException, ClientError, BotoCoreError) as err:
                return Result(FAIL, name, f"{type(err).__name__}: {err}", "see the error above")
            return Result(result.mark, name, result.detail, result.fix)

        return run

    return wrap


def passed(detail: str = "") -> Result:
    return Result(PASS, "", detail)


def failed(detail: str, fix: str) -> Result:
    return Result(FAIL, "", detail, fix)


def configure_command(target: Target) -> str:
    return (
        f"python -m scripts.ops.configure_bucket --bucket {target.bucket} "
        f"--api-url {target.api_url} --public-read --originals {target.originals_bucket}  "
        "(a stack: run `make deploy` again)"
    )


def storage(target: Target, bucket: str, query: str = "") -> str:
    """An anonymous REST request's URL for ``bucket`` (path-style), plus ``query``."""
    return f"{target.storage_url.rstrip('/')}/{bucket}{query}"


def get(url: str, *, follow: bool = False) -> requests.Response:
    return requests.get(url, allow_redirects=follow, timeout=TIMEOUT)


def website_config(target: Target) -> dict[str, Any] | None:
    try:
        return target.s3.get_bucket_website(Bucket=target.bucket)
    except ClientError as err:
        if err.response.get("Error", {}).get("Code") == "NoSuchWebsiteConfiguration":
            return None
        raise


@check("website hosting is on")
def website_hosting(target: Target) -> Result:
    if website_config(target) is None:
        return failed("the bucket has no website configuration", configure_command(target))
    return passed()


@check(f"routing rule: a 404 goes to the API's resize route with {REDIRECT_CODE}")
def routing_rule(target: Target) -> Result:
    config = website_config(target)
    if config is None:
        return failed("no website configuration, so no rules", configure_command(target))
    key = f"{PROBE_SIZE}/photos/cat.jpg"
    redirect = apply_routing_rules(
        config, key, 404, request_host=urlsplit(target.website_url).netloc
    )
    expected = f"{target.api_url.rstrip('/')}/resize/{key}"
    if redirect is None:
        return failed("no rule matches a 404", configure_command(target))
    problems = []
    if str(redirect.status) != REDIRECT_CODE:
        problems.append(
            f"code {redirect.status}: browsers and CDNs keep a 301 forever, so once the "
            "variant exists the cached redirect still sends users to the API (a loop)"
        )
    if redirect.location != expected:
        problems.append(f"goes to {redirect.location}, expected {expected} (host, prefix)")
    if problems:
        return failed("; ".join(problems), configure_command(target))
    return passed(f"{redirect.status} → {target.api_url}/resize/…")


@check("originals are private: an anonymous GET of an original is refused")
def originals_private(target: Target) -> Result:
    if not target.enforces_privacy:
        return Result(SKIP, "", "skipped: this S3 server serves every object to everyone")
    response = get(storage(target, target.originals_bucket, f"/{target.probe_key}"))
    if response.status_code == 403:
        return passed("403")
    return failed(
        f"{response.status_code} for the probe original: anyone can download full-size "
        "originals, EXIF position included",
        "turn on all four Block Public Access settings of the originals bucket and remove any "
        "public statement from its policy: " + configure_command(target),
    )


@check("neither bucket can be listed anonymously")
def nothing_listable(target: Target) -> Result:
    if not target.enforces_privacy:
        return Result(SKIP, "", "skipped: this S3 server lets everyone list")
    listable = [
        bucket
        for bucket in (target.bucket, target.originals_bucket)
        if get(storage(target, bucket, "?list-type=2")).status_code != 403
    ]
    if not listable:
        return passed()
    return failed(
        f"anyone can list every key of {', '.join(listable)}",
        "remove public s3:ListBucket from the bucket policy; the website's 404 rule needs only "
        "public s3:GetObject on the variants bucket: " + configure_command(target),
    )


@check("a missing key is a 404 to S3 (so the rule fires), not 403")
def missing_key(target: Target) -> Result:
    response = get(f"{target.website_url}/{target.missing_variant_path()}")
    if response.is_redirect:
        # Any rule firing proves S3 saw a 404; the rule's code is the check above.
        return passed(f"{response.status_code} from the rule")
    if response.status_code == 403:
        return failed(
            "403: the website endpoint answers a missing key with 403 when anonymous users may "
            "not read the bucket, so the 404 rule never fires",
            "allow s3:GetObject to everyone on the variants bucket (its policy in "
            "infra/resources.json) and turn off BlockPublicPolicy and RestrictPublicBuckets "
            "for it (bucket and account level): " + configure_command(target),
        )
    return failed(
        f"{response.status_code} without a redirect: no routing rule applied",
        "turn on website hosting with the 404 rule: " + configure_command(target),
    )


@check("the API answers")
def api_answers(target: Target) -> Result:
    response = get(f"{target.api_url.rstrip('/')}/health")
    if response.status_code == 200 and response.json() == {"status": "ok"}:
        return passed()
    return failed(
        f"{response.status_code} from {target.api_url}/health",
        "check the API URL and stage (…/api), and the function's log in CloudWatch",
    )


@check("end to end: a miss redirects to the API, which stores the variant and redirects back")
def miss_chain(target: Target) -> Result:
    url = f"{target.public_url}/{PROBE_SIZE}/{target.probe_key}"
    response = get(url, follow=True)
    hops = [f"{r.status_code} → {r.headers.get('Location', '?')}" for r in response.history]
    via_api = any(
        r.headers.get("Location", "").startswith(f"{target.api_url}/resize/")
        for r in response.history
    )
    if response.ok and response.headers.get("Content-Type") == "image/png" and via_api:
        return passed(f"{len(hops)} redirects, then 200 image/png")
    return failed(
        f"{' | '.join(hops) or 'no redirect'} | final {response.status_code}",
        "fix the failures above first; then check PUBLIC_URL and IMAGE_BUCKET in the "
        "function's environment and its log",
    )


@check("public read: the public URL serves an existing variant with its Cache-Control")
def variant_served(target: Target) -> Result:
    response = get(f"{target.public_url}/{PROBE_SIZE}/{target.probe_key}")
    cache_control = response.headers.get("Cache-Control", "")
    if response.status_code == 200 and VARIANT_CACHE_CONTROL in cache_control:
        return passed(cache_control)
    return failed(
        f"{response.status_code}, Cache-Control {cache_control!r}",
        "PUBLIC_URL must be this public base; variants are written with "
        f"a Cache-Control with {VARIANT_CACHE_CONTROL!r} (the CDN's year; browsers get "
        "VARIANT_BROWSER_MAX_AGE)",
    )


@check("the CDN does not cache redirects")
def cdn_keeps_no_redirect(target: Target) -> Result:
    if not target.behind_cdn:
        return Result(SKIP, "", "skipped: no CDN in front (the public URL is the website)")
    url = f"{target.public_url}/{target.missing_variant_path()}"
    first, second = get(url), get(url)
    cache = second.headers.get("X-Cache", "")
    if (
        second.status_code == int(REDIRECT_CODE)
        and "Hit" not in cache
        and "Age" not in second.headers
    ):
        return passed(f"second request: {second.status_code}, X-Cache {cache!r}")
    return failed(
        f"first {first.status_code}, second {second.status_code} X-Cache {cache!r} "
        f"Age {second.headers.get('Age')!r}",
        "use a cache policy with MinTTL 0 and DefaultTTL 0 that honours origin headers "
        "(VariantCachePolicy in infra/resources.json): S3's 307 has no Cache-Control",
    )


@check("the CDN resolves .auto before its cache (the CloudFront Function)")
def cdn_resolves_auto(target: Target) -> Result:
    if not target.behind_cdn:
        return Result(SKIP, "", "skipped: no CDN in front (the API resolves .auto itself)")
    url = f"{target.public_url}/{AUTO_PROBE}/{target.probe_key}"
    response = requests.get(
        url, headers={"Accept": AVIF_ACCEPT}, allow_redirects=True, timeout=TIMEOUT
    )
    # Rewritten at the edge, a miss reaches the API as the concrete size, never as .auto.
    to_api = [r.headers.get("Location", "") for r in response.history]
    unresolved = [location for location in to_api if f"/{AUTO_PROBE}/" in location]
    content_type = response.headers.get("Content-Type", "")
    if response.ok and content_type == "image/avif" and not unresolved:
        return passed(f"{AUTO_PROBE} → {AUTO_RESOLVED}, {content_type}")
    return failed(
        f"{response.status_code} {content_type!r}; redirects {' | '.join(to_api) or 'none'}",
        "associate the AutoFormatFunction (infra/cdn/viewer_request.js, cloudfront-js-2.0) with "
        "the distribution's default behaviour as viewer-request: `make deploy` does",
    )


@check("no originals' event is stuck in the dead-letter queue")
def dead_letters(target: Target) -> Result:
    if not target.dead_letter_queue_url:
        return Result(SKIP, "", "skipped: no dead-letter queue given")
    attributes = target.sqs.get_queue_attributes(
        QueueUrl=target.dead_letter_queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "QueueArn"],
    )["Attributes"]
    waiting = int(attributes["ApproximateNumberOfMessages"])
    if waiting == 0:
        return passed("0 messages")
    return failed(
        f"{waiting} event(s) failed every try: their originals have no presets, record or "
        "purge until handled",
        f"read them (aws sqs receive-message --queue-url {target.dead_letter_queue_url}) and the "
        "events function's log for why; once fixed, move them back with aws sqs "
        f"start-message-move-task --source-arn {attributes['QueueArn']}",
    )


@check("the sign-in issuer's discovery document names it, its keys and the code flow")
def sign_in_discovery(target: Target) -> Result:
    if not target.sign_in_issuer:
        return Result(SKIP, "", "skipped: no sign-in issuer given")
    issuer = target.sign_in_issuer.rstrip("/")
    response = get(issuer + DISCOVERY_PATH)
    if response.status_code != 200:
        return failed(
            f"{response.status_code} from {issuer + DISCOVERY_PATH}",
            "check the SignInIssuer output: https://cognito-idp.<region>.amazonaws.com/<pool id>",
        )
    discovery = response.json()
    problems = []
    if discovery.get("issuer") != issuer:
        problems.append(f"it names the issuer {discovery.get('issuer')!r}")
    if "code" not in discovery.get("response_types_supported", []):
        problems.append("it offers no authorization-code flow")
    jwks_uri = discovery.get("jwks_uri")
    keys = get(str(jwks_uri)).json().get("keys", []) if jwks_uri else []
    if not keys:
        problems.append("its jwks_uri publishes no keys")
    if problems:
        return failed("; ".join(problems), "tokens can't be verified against this issuer")
    return passed(f"{len(keys)} signing key(s)")


@check("the hosted UI is where the issuer signs people in")
def hosted_ui(target: Target) -> Result:
    if not (target.sign_in_issuer and target.hosted_ui_url):
        return Result(SKIP, "", "skipped: no sign-in issuer and hosted UI given")
    discovery = get(target.sign_in_issuer.rstrip("/") + DISCOVERY_PATH).json()
    base = target.hosted_ui_url.rstrip("/") + "/"
    elsewhere = [
        f"{name} {discovery.get(name)!r}"
        for name in ("authorization_endpoint", "token_endpoint")
        if not str(discovery.get(name, "")).startswith(base)
    ]
    if elsewhere:
        return failed(
            f"the discovery document names {'; '.join(elsewhere)}, not under {base}",
            "the user pool needs its domain (the stack's UserPoolDomain): run `make deploy` again",
        )
    return passed(discovery["authorization_endpoint"])


@check("the page's app client signs in with the code flow and returns to the page")
def sign_in_client(target: Target) -> Result:
    if not (target.cognito and target.user_pool_id and target.user_pool_client_id):
        return Result(SKIP, "", "skipped: no user pool client given")
    client = target.cognito.describe_user_pool_client(
        UserPoolId=target.user_pool_id, ClientId=target.user_pool_client_id
    )["UserPoolClient"]
    problems = []
    for field_name in ("CallbackURLs", "LogoutURLs"):
        missing = [
            url
            for url in page_addresses(target.public_url)
            if url not in client.get(field_name, [])
        ]
        if missing:
            problems.append(f"its {field_name} lack {', '.join(missing)}")
    if "code" not in client.get("AllowedOAuthFlows", []):
        problems.append("it has no authorization-code flow")
    if client.get("ClientSecret"):
        problems.append("it has a secret, which a page can't keep")
    if problems:
        return failed(
            "; ".join(problems),
            "the stack's UserPoolClient names the page (PublicURL): run `make deploy` again",
        )
    return passed(f"client {target.user_pool_client_id}")


@check("the API's authorizer is the user pool")
def api_authorizer(target: Target) -> Result:
    if not (target.apigateway and target.user_pool_id):
        return Result(SKIP, "", "skipped: no user pool given")
    rest_api = urlsplit(target.api_url).hostname.split(".")[0]
    authorizers = target.apigateway.get_authorizers(restApiId=rest_api).get("items", [])
    pools = [
        authorizer["name"]
        for authorizer in authorizers
        if authorizer.get("type") == "COGNITO_USER_POOLS"
        and any(
            arn.endswith(f":userpool/{target.user_pool_id}")
            for arn in authorizer.get("providerARNs", [])
        )
    ]
    if not pools:
        return failed(
            f"no authorizer of API {rest_api} is user pool {target.user_pool_id} "
            f"({len(authorizers)} authorizer(s))",
            "uploads would take any token or none: run `make deploy` again",
        )
    return passed(", ".join(pools))


@check("the policy document in service is valid, and is the one uploaded, with its marks")
def policies(target: Target) -> Result:
    """docs/watermarks.md: _policy/active.json is what the functions read."""
    active_raw, pending_raw = (_object(target, key) for key in (ACTIVE_KEY, PENDING_KEY))
    if active_raw is None and pending_raw is None:
        return Result(SKIP, "", f"skipped: no {PENDING_KEY} (no per-prefix policies)")
    fix = f"upload a corrected {PENDING_KEY} (docs/watermarks.md); its errors are listed above"
    try:
        # The deployment's MAX_DIMENSION is not known here: sizes are checked up to its maximum.
        active = (
            EMPTY
            if active_raw is None
            else parse_document(active_raw, MAX_MAX_DIMENSION, active=True)
        )
    except InvalidPolicy as err:
        return failed(f"{ACTIVE_KEY} is unreadable, every miss fails: {err}", fix)
    try:
        pending = EMPTY if pending_raw is None else parse_document(pending_raw, MAX_MAX_DIMENSION)
    except InvalidPolicy as err:
        return failed(f"{PENDING_KEY} was refused (the previous one stays in service): {err}", fix)
    problems = _mark_problems(target, active)
    if problems:
        return failed("; ".join(problems), fix)
    if pending.with_etags(_etags(active)).to_json() != active.to_json():
        return failed(
            f"{PENDING_KEY} is not the document in service",
            "see the events function's log and the dead-letter queue: the upload's event "
            "was not handled (yet)",
        )
    return passed(f"{len(active.rules)} rule(s), {len(active.watermark_keys())} mark(s)")


def _object(target: Target, key: str) -> bytes | None:
    try:
        found = target.s3.get_object(Bucket=target.originals_bucket, Key=key)
    except ClientError as err:
        if error_code(err) in ("NoSuchKey", "404"):
            return None
        raise
    return found["Body"].read()


def _etags(document: PolicyDocument) -> dict[str, str]:
    return {rule.watermark.key: rule.watermark.etag for rule in document.rules if rule.watermark}


def _mark_problems(target: Target, active: PolicyDocument) -> list[str]:
    """Each mark the active document names must be there, as the version it recorded."""
    problems = []
    for key, etag in sorted(_etags(active).items()):
        try:
            found = target.s3.head_object(Bucket=target.originals_bucket, Key=key)["ETag"]
        except ClientError:
            found = None
        if found is None:
            problems.append(f"the mark {key} is missing: its prefixes answer 500")
        elif found != etag:
            problems.append(f"the mark {key} was replaced, not activated: its prefixes answer 409")
    return problems


CHECKS = [
    website_hosting,
    routing_rule,
    originals_private,
    nothing_listable,
    missing_key,
    api_answers,
    miss_chain,
    variant_served,
    cdn_keeps_no_redirect,
    cdn_resolves_auto,
    dead_letters,
    sign_in_discovery,
    hosted_ui,
    sign_in_client,
    api_authorizer,
    policies,
]


def probe_png() -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), "orange").save(buffer, "PNG")
    return buffer.getvalue()


def run_checks(target: Target) -> list[Result]:
    """Upload the probe, run every check, remove the probe, its variant and ledger entries."""
    target.s3.put_object(
        Bucket=target.originals_bucket,
        Key=target.probe_key,
        Body=probe_png(),
        ContentType="image/png",
    )
    try:
        return [run(target) for run in CHECKS]
    finally:
        ledger = target.s3.list_objects_v2(
            Bucket=target.bucket, Prefix=original_prefix(target.probe_key)
        ).get("Contents", [])
        made = (
            (target.originals_bucket, target.probe_key),
            (target.bucket, f"{PROBE_SIZE}/{target.probe_key}"),
            (target.bucket, f"{AUTO_RESOLVED}/{target.probe_key}"),
            *((target.bucket, entry["Key"]) for entry in ledger),
        )
        for bucket, key in made:
            try:
                target.s3.delete_object(Bucket=bucket, Key=key)
            except (ClientError, BotoCoreError) as err:
                print(f"could not delete s3://{bucket}/{key}: {err}", file=sys.stderr)


def report(results: list[Result]) -> str:
    lines = []
    for result in results:
        lines.append(
            f"{result.mark} {result.name}" + (f": {result.detail}" if result.detail else "")
        )
        if result.mark == FAIL:
            lines.append(f"    fix: {result.fix}")
    failures = sum(result.mark == FAIL for result in results)
    lines.append(f"{failures} of {len(results)} checks failed" if failures else "all checks passed")
    return "\n".join(lines)


def stack_target(stack: str, region: str | None) -> Target:
    """Every URL from the CloudFormation stack's outputs."""
    cloudformation = boto3.client("cloudformation", region_name=region)
    description = cloudformation.describe_stacks(StackName=stack)["Stacks"][0]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in description.get("Outputs", [])}
    s3 = boto3.client("s3", region_name=region)
    return Target(
        bucket=outputs["BucketName"],
        originals_bucket=outputs["OriginalsBucketName"],
        api_url=outputs["ApiURL"],
        website_url=outputs["WebsiteURL"],
        public_url=outputs["PublicURL"],
        s3=s3,
        storage_url=s3.meta.endpoint_url,
        dead_letter_queue_url=outputs.get("DeadLetterQueueURL", ""),
        sqs=boto3.client("sqs", region_name=region),
        stack=stack,
        cloudwatch=boto3.client("cloudwatch", region_name=region),
        sign_in_issuer=outputs.get("SignInIssuer", ""),
        hosted_ui_url=outputs.get("HostedUiURL", ""),
        user_pool_id=outputs.get("UserPoolId", ""),
        user_pool_client_id=outputs.get("UserPoolClientId", ""),
        cognito=boto3.client("cognito-idp", region_name=region),
        apigateway=boto3.client("apigateway", region_name=region),
        name=f"CloudFormation stack {stack} ({region or 'default region'})",
    )


def local_target(data_dir: Path) -> Target:
    """The stack `make run` started with ``data_dir``, from the state file it wrote there.

    Never whatever answers on the default ports: another stack may be there,
    and the doctor writes a probe object into the one it checks.
    """
    state = running_stack_state(data_dir)
    host = state["host"]
    s3_url = f"http://{host}:{state['s3_port']}"
    bucket = state["bucket"]
    return Target(
        bucket=bucket,
        originals_bucket=state["originals_bucket"],
        api_url=f"http://{host}:{state['api_port']}",
        website_url=f"{s3_url}/{bucket}",
        public_url=f"{s3_url}/{bucket}",
        s3=s3_client(s3_url, region=None, **LOCAL_CREDENTIALS),
        storage_url=s3_url,
        enforces_privacy=False,
        name=f"the local stack in {data_dir} (make run, pid {state['pid']})",
        **local_dead_letters(f"http://{host}:{state['aws_port']}"),
    )


class NoLocalStack(SystemExit):
    """No running `make run` stack where the doctor was pointed."""


def running_stack_state(data_dir: Path) -> dict[str, Any]:
    """The state file of a running stack in ``data_dir``, or NoLocalStack saying how to point."""
    how = (
        "start it with `make run`, or point the doctor at a running one with "
        "LOCAL_DATA_DIR=<its data directory> make doctor (or --local <dir>), or give "
        "--bucket, --originals, --api-url, --website-url and --endpoint-url"
    )
    path = data_dir / STATE_FILE
    try:
        state: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        raise NoLocalStack(f"no running local stack in {data_dir} (no {path}): {how}") from None
    if not process_alive(int(state["pid"])):
        raise NoLocalStack(
            f"the local stack in {data_dir} (pid {state['pid']}) is not running: {how}"
        )
    return state


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    return True


def local_dead_letters(endpoint: str) -> dict[str, Any]:
    """The `make run` stack's dead-letter queue, in its moto server."""
    from scripts.local import aws

    sqs = aws.aws_client("sqs", endpoint)
    try:
        url = sqs.get_queue_url(QueueName=aws.EVENTS_DLQ)["QueueUrl"]
    except (ClientError, BotoCoreError):
        return {}  # no local AWS endpoint: the check says it was skipped
    return {"dead_letter_queue_url": url, "sqs": sqs}


def s3_client(endpoint_url: str | None, region: str | None, **credentials: str) -> Any:
    # Local servers answer on one host, not <bucket>.host.
    config = Config(s3={"addressing_style": "path"}) if endpoint_url else None
    return boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        region_name=region or "us-east-1",
        config=config,
        **credentials,
    )


def parse_target(argv: list[str] | None) -> Target:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--stack", help="CloudFormation stack made by `make deploy`")
    source.add_argument(
        "--local",
        nargs="?",
        const=Path(os.environ.get("LOCAL_DATA_DIR") or DEFAULT_DATA_DIR),
        type=Path,
        help="the stack `make run` started with this data directory (default: LOCAL_DATA_DIR, "
        "or .local)",
    )
    parser.add_argument("--region")
    parser.add_argument("--bucket", help="the public variants bucket")
    parser.add_argument("--originals", help="the private originals bucket")
    parser.add_argument("--api-url", help="API base with its stage path")
    parser.add_argument("--website-url", help="the bucket's website base URL")
    parser.add_argument("--public-url", help="CloudFront URL (default: the website URL)")
    parser.add_argument("--endpoint-url", help="S3 API endpoint (a local S3 server)")
    parser.add_argument("--dead-letter-queue-url", help="the events' dead-letter queue")
    parser.add_argument("--sign-in-issuer", help="the OpenID issuer the page signs in with")
    parser.add_argument(
        "--storage-url",
        help="where anonymous REST requests go, if it enforces privacy like S3 (default: the "
        "S3 endpoint; privacy checks are skipped for a local --endpoint-url)",
    )
    args = parser.parse_args(argv)
    if args.stack:
        return stack_target(args.stack, args.region)
    if args.local:
        return local_target(args.local)
    if not (args.bucket and args.originals and args.api_url and args.website_url):
        parser.error("give --stack, --local, or --bucket, --originals, --api-url, --website-url")
    s3 = s3_client(args.endpoint_url, args.region)
    return Target(
        bucket=args.bucket,
        originals_bucket=args.originals,
        api_url=args.api_url.rstrip("/"),
        website_url=args.website_url.rstrip("/"),
        public_url=(args.public_url or args.website_url).rstrip("/"),
        s3=s3,
        storage_url=args.storage_url or s3.meta.endpoint_url,
        enforces_privacy=bool(args.storage_url or not args.endpoint_url),
        dead_letter_queue_url=args.dead_letter_queue_url or "",
        sqs=boto3.client("sqs", region_name=args.region or "us-east-1"),
        sign_in_issuer=args.sign_in_issuer or "",
    )


def main(argv: list[str] | None = None) -> int:
    try:
        target = parse_target(argv)
    except NoLocalStack as refused:
        print(f"doctor: not checking anything: {refused}")
        return 2
    print(f"doctor: checking {target.name}")
    print(
        f"variants {target.bucket}; originals {target.originals_bucket}; API {target.api_url}; "
        f"website {target.website_url}; public {target.public_url}\n"
    )
    try:
        results = run_checks(target)
    except (ClientError, BotoCoreError) as err:
        print(f"✗ cannot upload the probe original to s3://{target.originals_bucket}: {err}")
        print(
            "    fix: check that S3 is reachable (--local: is `make run` running?) and that "
            "the credentials may put and delete objects in the bucket"
        )
        return 2
    print(report(results))
    if target.cloudwatch is not None:
        print(monitoring.summary(target.cloudwatch, target.stack))
    return 1 if any(result.mark == FAIL for result in results) else 0


if __name__ == "__main__":
    sys.exit(main())
