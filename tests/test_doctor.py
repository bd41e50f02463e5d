"""scripts/ops/doctor.py against the real local stack, configured well and broken on purpose."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from scripts.local.proxy import (
    Proxy,
    cdn,
    missing_key_denied,
    private_bucket,
    s3_privacy,
)
from scripts.local.stack import S3RVER_CREDENTIALS, STATE_FILE, LocalStack, free_port
from scripts.ops import doctor
from scripts.ops.configure_bucket import configure_bucket
from tests.support import ROOT

pytestmark = pytest.mark.e2e

WEBSITE = "website hosting is on"
RULE = "routing rule"
ORIGINALS_PRIVATE = "originals are private"
NOT_LISTABLE = "neither bucket can be listed"
MISSING_KEY = "a missing key is a 404"
API = "the API answers"
CHAIN = "end to end"
VARIANT = "public read"
CDN = "the CDN does not cache redirects"
AUTO = "the CDN resolves .auto"
DEAD_LETTERS = "no originals' event is stuck"
SIGN_IN = "the sign-in issuer's discovery document"
HOSTED_UI = "the hosted UI"
SIGN_IN_CLIENT = "the page's app client"
AUTHORIZER = "the API's authorizer"
POLICIES = "the policy document in service"
# What s3rver can't show (it serves and lists everything to everyone), no CDN locally,
# no dead-letter queue unless given, no sign-in issuer or user pool yet
# (tests/test_identity.py checks those checks against a loopback issuer and moto), and
# no policy document (tests/test_policy_events.py checks that check over moto).
SKIPPED_LOCALLY = {
    ORIGINALS_PRIVATE,
    NOT_LISTABLE,
    CDN,
    AUTO,
    DEAD_LETTERS,
    SIGN_IN,
    HOSTED_UI,
    SIGN_IN_CLIENT,
    AUTHORIZER,
    POLICIES,
}


@pytest.fixture(scope="module")
def doctor_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """A stack of its own: these tests break its bucket on purpose."""
    stack = LocalStack(
        tmp_path_factory.mktemp("doctor-stack"), s3_port=free_port(), api_port=free_port()
    )
    with stack:
        yield stack


@pytest.fixture
def stack(doctor_stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> LocalStack:
    """The stack with its good configuration restored, and the doctor's credentials set."""
    for name, value in S3RVER_CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    configure_bucket(doctor_stack.s3_client(), doctor_stack.bucket, doctor_stack.api_url)
    return doctor_stack


def run_doctor(
    stack: LocalStack,
    capsys: pytest.CaptureFixture[str],
    *,
    website: str,
    public: str | None = None,
    storage: str | None = None,
    dead_letters: str | None = None,
) -> tuple[int, dict[str, str], str]:
    """Exit status, each check's mark by name prefix, and the whole printed checklist."""
    argv = [
        "--bucket", stack.bucket,
        "--originals", stack.originals_bucket,
        "--api-url", stack.api_url,
        "--website-url", website,
        "--endpoint-url", stack.s3_url,
    ]  # fmt: skip
    if public:
        argv += ["--public-url", public]
    if storage:
        argv += ["--storage-url", storage]
    if dead_letters:
        argv += ["--dead-letter-queue-url", dead_letters]
    status = doctor.main(argv)
    output = capsys.readouterr().out
    marks = {
        match.group(2): match.group(1)
        for match in re.finditer(r"^([✓✗–]) ([^:\n]+)", output, flags=re.MULTILINE)
    }
    return status, marks, output


def mark(marks: dict[str, str], prefix: str) -> str:
    [found] = [value for name, value in marks.items() if name.startswith(prefix)]
    return found


def set_redirect(stack: LocalStack, **changes: str) -> None:
    client = stack.s3_client()
    config = client.get_bucket_website(Bucket=stack.bucket)
    config.pop("ResponseMetadata")
    config["RoutingRules"][0]["Redirect"].update(changes)
    client.put_bucket_website(Bucket=stack.bucket, WebsiteConfiguration=config)


def test_good_configuration_passes_every_check(stack: LocalStack, capsys: Any) -> None:
    status, marks, output = run_doctor(stack, capsys, website=stack.public_url)
    assert status == 0, output
    assert len(marks) == len(doctor.CHECKS)
    not_passed = {name for name, value in marks.items() if value != "✓"}
    assert {prefix for prefix in SKIPPED_LOCALLY if mark(marks, prefix) == "–"} == SKIPPED_LOCALLY
    assert len(not_passed) == len(SKIPPED_LOCALLY)
    assert "all checks passed" in output


def test_probe_objects_are_removed_afterwards(stack: LocalStack, capsys: Any) -> None:
    run_doctor(stack, capsys, website=stack.public_url)
    for bucket in (stack.bucket, stack.originals_bucket):
        listed = stack.s3_client().list_objects_v2(Bucket=bucket)
        assert [item["Key"] for item in listed.get("Contents", [])] == [], bucket


def test_301_rule_is_caught_with_its_fix(stack: LocalStack, capsys: Any) -> None:
    set_redirect(stack, HttpRedirectCode="301")
    status, marks, output = run_doctor(stack, capsys, website=stack.public_url)
    assert status == 1
    assert mark(marks, RULE) == "✗"
    assert "code 301" in output
    assert "fix: python -m scripts.ops.configure_bucket --bucket images" in output
    # A 301 still works once; only its caching makes it a loop, so the rest passes.
    assert {name for name, value in marks.items() if value == "✗"} == {
        name for name in marks if name.startswith(RULE)
    }


def test_wrong_host_is_caught(stack: LocalStack, capsys: Any) -> None:
    wrong = f"127.0.0.1:{free_port()}"  # nothing listens there
    set_redirect(stack, HostName=wrong)
    status, marks, output = run_doctor(stack, capsys, website=stack.public_url)
    assert status == 1
    assert mark(marks, RULE) == "✗"
    assert f"goes to http://{wrong}/resize/" in output
    assert mark(marks, CHAIN) == "✗"
    assert mark(marks, API) == "✓"


def test_wrong_prefix_is_caught(stack: LocalStack, capsys: Any) -> None:
    set_redirect(stack, ReplaceKeyPrefixWith="api/resize/")  # a stage path the local API lacks
    status, marks, output = run_doctor(stack, capsys, website=stack.public_url)
    assert status == 1
    assert mark(marks, RULE) == "✗"
    assert f"expected {stack.api_url}/resize/{doctor.PROBE_SIZE}/photos/cat.jpg" in output


def test_no_website_configuration_is_caught(stack: LocalStack, capsys: Any) -> None:
    stack.s3_client().delete_bucket_website(Bucket=stack.bucket)
    status, marks, output = run_doctor(stack, capsys, website=stack.public_url)
    assert status == 1
    for failing in (WEBSITE, RULE, MISSING_KEY, CHAIN, VARIANT):
        assert mark(marks, failing) == "✗", failing
    assert mark(marks, API) == "✓"
    assert "the bucket has no website configuration" in output


def test_private_variants_bucket_is_caught(stack: LocalStack, capsys: Any) -> None:
    with Proxy(stack.s3_url, private_bucket) as proxy:
        status, marks, output = run_doctor(stack, capsys, website=f"{proxy.url}/{stack.bucket}")
    assert status == 1
    for failing in (MISSING_KEY, CHAIN, VARIANT):
        assert mark(marks, failing) == "✗", failing
    assert "allow s3:GetObject to everyone" in output
    assert mark(marks, RULE) == "✓"


def test_website_answering_403_for_missing_keys_is_diagnosed(
    stack: LocalStack, capsys: Any
) -> None:
    with Proxy(stack.s3_url, missing_key_denied) as proxy:
        status, marks, output = run_doctor(stack, capsys, website=f"{proxy.url}/{stack.bucket}")
    assert status == 1
    assert mark(marks, MISSING_KEY) == "✗"
    assert "allow s3:GetObject to everyone on the variants bucket" in output
    assert mark(marks, CHAIN) == "✗"


def test_private_originals_and_unlistable_buckets_pass(stack: LocalStack, capsys: Any) -> None:
    with Proxy(stack.s3_url, s3_privacy(stack.originals_bucket)) as proxy:
        status, marks, output = run_doctor(
            stack, capsys, website=stack.public_url, storage=proxy.url
        )
    assert status == 0, output
    assert mark(marks, ORIGINALS_PRIVATE) == "✓"
    assert mark(marks, NOT_LISTABLE) == "✓"


def test_public_originals_and_listable_buckets_are_caught(stack: LocalStack, capsys: Any) -> None:
    # s3rver itself, taken for S3: it serves the original and lists both buckets.
    status, marks, output = run_doctor(
        stack, capsys, website=stack.public_url, storage=stack.s3_url
    )
    assert status == 1
    assert mark(marks, ORIGINALS_PRIVATE) == "✗"
    assert "anyone can download full-size originals" in output
    assert mark(marks, NOT_LISTABLE) == "✗"
    assert f"anyone can list every key of {stack.bucket}, {stack.originals_bucket}" in output
    assert mark(marks, CHAIN) == "✓"


def test_cdn_that_honours_cache_control_passes(stack: LocalStack, capsys: Any) -> None:
    with Proxy(stack.s3_url, cdn(cache_everything=False)) as proxy:
        status, marks, output = run_doctor(
            stack, capsys, website=stack.public_url, public=f"{proxy.url}/{stack.bucket}"
        )
    assert mark(marks, CDN) == "✓"
    # A CDN without the function: .auto reaches the API unresolved.
    assert mark(marks, AUTO) == "✗"
    assert "associate the AutoFormatFunction" in output
    assert status == 1


def test_the_local_cdn_runs_the_function_and_passes(stack: LocalStack, capsys: Any) -> None:
    status, marks, output = run_doctor(
        stack, capsys, website=stack.public_url, public=stack.cdn_url
    )
    assert status == 0, output
    assert mark(marks, CDN) == "✓"
    assert mark(marks, AUTO) == "✓"
    assert "32x.auto → 32x.avif, image/avif" in output


def test_cdn_that_caches_redirects_is_caught(stack: LocalStack, capsys: Any) -> None:
    with Proxy(stack.s3_url, cdn(cache_everything=True)) as proxy:
        status, marks, output = run_doctor(
            stack, capsys, website=stack.public_url, public=f"{proxy.url}/{stack.bucket}"
        )
    assert status == 1
    assert mark(marks, CDN) == "✗"
    assert "X-Cache 'Hit from cdn'" in output
    # The loop itself: the variant now exists, but the cached 307 is still served.
    assert mark(marks, VARIANT) == "✗"


def test_doctor_runs_as_a_command(stack: LocalStack) -> None:
    command = [
        sys.executable, "-m", "scripts.ops.doctor",
        "--bucket", stack.bucket,
        "--originals", stack.originals_bucket,
        "--api-url", stack.api_url,
        "--website-url", stack.public_url,
        "--endpoint-url", stack.s3_url,
    ]  # fmt: skip
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=120, check=False, cwd=ROOT
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("✓ ") == len(doctor.CHECKS) - len(SKIPPED_LOCALLY)


def test_dead_lettered_events_are_reported(
    stack: LocalStack, capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_SQS", stack.aws_url)
    status, marks, output = run_doctor(
        stack, capsys, website=stack.public_url, dead_letters=stack.events_dlq_url
    )
    assert mark(marks, DEAD_LETTERS) == "✓", output
    sqs = stack.aws_client("sqs")
    sqs.send_message(QueueUrl=stack.events_dlq_url, MessageBody="a failed event")
    try:
        status, marks, output = run_doctor(
            stack, capsys, website=stack.public_url, dead_letters=stack.events_dlq_url
        )
    finally:
        sqs.purge_queue(QueueUrl=stack.events_dlq_url)
    assert status == 1
    assert mark(marks, DEAD_LETTERS) == "✗"
    assert "1 event(s) failed every try" in output
    assert "start-message-move-task" in output


def log_sizes(stack: LocalStack) -> dict[str, int]:
    return {path.name: path.stat().st_size for path in stack.data_dir.glob("*.log")}


def test_two_local_stacks_the_doctor_checks_and_writes_only_its_own(
    stack: LocalStack, tmp_path_factory: pytest.TempPathFactory, capsys: Any
) -> None:
    other = LocalStack(
        tmp_path_factory.mktemp("other-stack"), s3_port=free_port(), api_port=free_port()
    )
    with other:
        configure_bucket(other.s3_client(), other.bucket, other.api_url)
        before, ours_before = log_sizes(other), log_sizes(stack)
        status = doctor.main(["--local", str(stack.data_dir)])
        output = capsys.readouterr().out
        assert log_sizes(other) == before  # not one request reached the other stack
        assert other.s3_client().list_objects_v2(Bucket=other.originals_bucket)["KeyCount"] == 0
    assert status == 0, output
    first_line = output.splitlines()[0]
    assert (
        first_line
        == f"doctor: checking the local stack in {stack.data_dir} (make run, pid {os.getpid()})"
    )
    assert log_sizes(stack)["chalice.log"] > ours_before["chalice.log"]
    assert stack.api_url in output


def test_no_running_stack_where_pointed_checks_nothing(
    stack: LocalStack, tmp_path: Path, capsys: Any
) -> None:
    assert doctor.main(["--local", str(tmp_path)]) == 2
    assert "no running local stack" in capsys.readouterr().out
    # A stack that stopped without removing its state (killed): its pid is gone.
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    state = json.loads((stack.data_dir / STATE_FILE).read_text())
    (tmp_path / STATE_FILE).write_text(json.dumps({**state, "pid": ended.pid}))
    before = log_sizes(stack)
    assert doctor.main(["--local", str(tmp_path)]) == 2
    output = capsys.readouterr().out
    assert output.startswith("doctor: not checking anything")
    assert f"(pid {ended.pid}) is not running" in output
    assert log_sizes(stack) == before
