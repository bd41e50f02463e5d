"""The local stack's request and event lines: their metrics match the requests made, no secrets.

chalice local and the poller write the functions' lines into the stack's log
files (scripts/local/records.py reads them back), as Lambda would into
CloudWatch Logs.  Signed URLs, an upload with its token and a presigned
form, and an original with GPS coordinates all go through; none of it may
appear in what the functions log.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
import requests

from chalicelib.resize.signing import sign
from scripts.local import records
from scripts.local.stack import APP_EVENT_HANDLER, LocalStack
from tests.support import corpus, started_stack
from tests.support.waiting import wait_for

pytestmark = pytest.mark.e2e

SIGNING_KEY = "a-signing-key-for-the-log-scan"
PRESET = "100x"
# chalice local's own access log (not the function's: API Gateway keeps it on AWS).
ACCESS_LOG = re.compile(r'"(GET|HEAD|POST|PUT|OPTIONS|DELETE) /')
# The GPS position corpus.jpeg_with_metadata carries: 52°31' N, 13°24' E.
GPS_TEXT = re.compile(r"gps|52\.51|13\.4", re.IGNORECASE)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    env = {"SIGNING_KEYS": SIGNING_KEY, "PRESET_SIZES": PRESET, "KEEP_GPS_METADATA": "true"}
    with started_stack(tmp_path_factory, "observe", env, event_handler=APP_EVENT_HANDLER) as s:
        yield s


@pytest.fixture(scope="module")
def made(stack: LocalStack) -> dict[str, Any]:
    """What the test did through the stack, and the lines the functions wrote meanwhile."""
    paths = records.log_paths(stack.data_dir)
    since = records.sizes(paths)
    created = stack.upload(corpus.jpeg_with_metadata(), filename="where.jpg")
    key = created["key"]
    wait_for(
        lambda: [
            line
            for line in records.read(paths, since)
            if line["kind"] == "event" and line["key"] == key and line["outcome"] == "applied"
        ],
        "the upload's event line",
    )
    signatures = [sign(SIGNING_KEY.encode(), size, key) for size in ("200x", "50x50")]
    statuses = [
        api(stack, f"{signatures[0]}/200x/{quote(key)}").status_code,  # a miss
        api(stack, f"{signatures[1]}/50x50/{quote(key)}").status_code,  # a miss
        api(stack, f"{signatures[0]}/200x/{quote(key)}").status_code,  # stored: an API hit
        api(stack, f"200x/{quote(key)}").status_code,  # unsigned
        api(stack, f"{'A' * 22}/200x/{quote(key)}").status_code,  # a wrong signature
    ]
    assert statuses == [307, 307, 307, 403, 403]
    lines = records.read(paths, since)
    return {"created": created, "key": key, "signatures": signatures, "lines": lines}


def api(stack: LocalStack, path: str) -> requests.Response:
    return requests.get(f"{stack.api_url}/resize/{path}", allow_redirects=False, timeout=60)


def test_the_metrics_count_what_the_test_did(made: dict[str, Any]) -> None:
    lines = made["lines"]
    requests_made = [line for line in lines if line["kind"] == "request"]
    assert [line["name"] for line in requests_made] == ["uploads.create", *["resize"] * 5]
    summed = records.totals(lines)
    assert summed["Requests"] == 6
    assert (summed["Misses"], summed["Hits"], summed["Refusals"]) == (2, 1, 2)
    assert sorted(line["Code"] for line in lines if "Code" in line) == [
        "invalid_signature",
        "signature_required",
    ]
    events = [line for line in lines if line["kind"] == "event" and line["key"] == made["key"]]
    assert [line["name"] for line in events] == ["created"]
    assert summed["PresetsRendered"] == 1
    assert events[0]["EventAge"] >= 0
    misses = [line for line in requests_made if line["outcome"] == "miss"]
    assert [line["size"] for line in misses] == ["200x", "50x50"]
    assert summed["BytesOut"] == sum(line["bytes_out"] for line in lines)
    assert all(line["ms"]["render"] > 0 and line["ms"]["s3_lookup"] > 0 for line in misses)
    assert "requests 6: misses 2, API hits 1, refusals 2" in records.summary(lines)


def test_no_secret_reaches_the_functions_log_lines(stack: LocalStack, made: dict[str, Any]) -> None:
    form = made["created"]["upload"]
    secrets = [
        SIGNING_KEY,
        stack.upload_token,
        *made["signatures"],
        *(v for k, v in form["fields"].items() if k != "key" and len(v) > 20),  # policy, signature
        form["fields"].get("x-amz-signature", "x-amz-signature"),
    ]
    found = []
    for path in records.log_paths(stack.data_dir):
        for number, text in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if ACCESS_LOG.search(text):
                continue
            found += [f"{path.name}:{number}: {s[:12]}…" for s in secrets if s in text]
            if GPS_TEXT.search(text):
                found.append(f"{path.name}:{number}: GPS")
    assert found == []
    assert made["lines"], "the scan read the functions' lines"
