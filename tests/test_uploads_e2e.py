"""Direct uploads end to end: POST /uploads on `chalice local`, the form POST to s3rver, variants.

The local S3 checks form POSTs as S3 does (scripts/local/post_policy.js):
signature, expiry, every condition, content-length-range.  So a tampered or
oversized upload is refused here for the same reason it is refused on AWS.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from scripts.local.stack import upload_example
from tests.support import corpus, started_stack

pytestmark = pytest.mark.e2e

MAX_BYTES = 200_000


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A stack of its own, with a small MAX_SOURCE_BYTES so the size cap is cheap to cross."""
    with started_stack(tmp_path_factory, "uploads", {"MAX_SOURCE_BYTES": str(MAX_BYTES)}) as s:
        yield s


def ask(stack: Any, body: Any, token: str | None = "default", **headers: str) -> Any:
    token = stack.upload_token if token == "default" else token
    auth = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.post(
        f"{stack.api_url}/uploads", json=body, headers={**auth, **headers}, timeout=30
    )


def send(form: dict[str, Any], body: bytes, **changed: str) -> Any:
    fields = {**form["fields"], **changed}
    return requests.post(form["url"], data=fields, files={"file": ("x", body)}, timeout=30)


def originals(stack: Any) -> set[str]:
    listed = stack.s3_client().list_objects_v2(Bucket=stack.originals_bucket, Prefix="uploads/")
    return {item["Key"] for item in listed.get("Contents", [])}


def test_upload_then_two_sizes_through_the_website(stack: Any) -> None:
    photo = corpus.jpeg((1200, 900))
    answer = ask(stack, {"filename": "holiday 1.jpg", "content_type": "image/jpeg"})
    assert answer.status_code == 201, answer.text
    created = answer.json()
    stored = send(created["upload"], photo)
    assert stored.status_code == 201, stored.text
    assert f"<Key>{created['key']}</Key>" in stored.text

    head = stack.s3_client().head_object(Bucket=stack.originals_bucket, Key=created["key"])
    assert head["ContentType"] == "image/jpeg"
    assert head["Metadata"] == {"uploader": "local"}
    for size, expected, content_type in (
        ("300x300", (300, 225), "image/jpeg"),
        ("120x120-cover.webp", (120, 120), "image/webp"),
    ):
        response = requests.get(created["variant_url"].format(size=size), timeout=30)
        assert response.status_code == 200, response.text
        assert [r.status_code for r in response.history] == [307, 307]
        assert response.headers["Content-Type"] == content_type
        assert corpus.opened(response.content).size == expected
    # The original stays where uploads go; nothing of it lands in the public bucket.
    public = stack.s3_client().list_objects_v2(Bucket=stack.bucket, Prefix="uploads/")
    assert not public.get("Contents")


@pytest.mark.skipif(shutil.which("curl") is None, reason="the printed example uses curl")
def test_the_printed_two_step_example_works(stack: Any, tmp_path: Any) -> None:
    photo = tmp_path / "my photo.jpg"
    photo.write_bytes(corpus.jpeg((800, 600)))
    script = upload_example(stack.api_url, stack.upload_token, photo)
    run = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    status, variant_url, record = run.stdout.splitlines()
    assert status == "201"
    response = requests.get(variant_url, timeout=30)
    assert response.status_code == 200
    assert corpus.opened(response.content).size == (300, 225)
    # This stack runs no events poller, so the record is not there yet: a clear 404.
    assert json.loads(record)["code"] == "not_found"


@pytest.mark.parametrize(
    ("changed", "status", "code"),
    [
        ({"Content-Type": "text/html"}, 403, "AccessDenied"),
        ({"key": "uploads/someone-else/1/cat.jpg"}, 403, "AccessDenied"),
        ({"x-amz-meta-uploader": "admin"}, 403, "AccessDenied"),
        ({"x-amz-meta-focus": "0.5,0.5"}, 403, "AccessDenied"),  # a field the form lacks
        ({"success_action_redirect": "https://evil.example/"}, 403, "AccessDenied"),
        ({"x-amz-signature": "0" * 64}, 403, "SignatureDoesNotMatch"),
    ],
)
def test_a_tampered_form_is_refused_by_s3_and_stores_nothing(
    stack: Any, changed: dict[str, str], status: int, code: str
) -> None:
    form = ask(stack, {"filename": "a.jpg", "content_type": "image/jpeg"}).json()
    before = originals(stack)
    refused = send(form["upload"], corpus.jpeg((40, 30)), **changed)
    assert refused.status_code == status
    assert f"<Code>{code}</Code>" in refused.text
    assert originals(stack) == before


def test_a_focal_point_is_stored_as_asked_and_a_changed_one_is_refused(stack: Any) -> None:
    body = {"filename": "a.jpg", "content_type": "image/jpeg", "focus": "0.2,0.8"}
    form = ask(stack, body).json()
    before = originals(stack)
    refused = send(form["upload"], corpus.jpeg((40, 30)), **{"x-amz-meta-focus": "0.9,0.1"})
    assert refused.status_code == 403
    assert "<Code>AccessDenied</Code>" in refused.text
    assert originals(stack) == before
    assert send(form["upload"], corpus.jpeg((40, 30))).status_code == 201
    head = stack.s3_client().head_object(Bucket=stack.originals_bucket, Key=form["key"])
    assert head["Metadata"] == {"uploader": "local", "focus": "0.2,0.8"}


# A policy that allows anything, for a second, hostile `policy` field.
ANY_POLICY = base64.b64encode(
    json.dumps({"expiration": "2099-01-01T00:00:00Z", "conditions": []}).encode()
).decode()


@pytest.mark.parametrize(
    ("field", "hostile"),
    [
        ("key", "uploads/someone-else/1/cat.jpg"),
        ("Content-Type", "text/html"),
        ("x-amz-meta-uploader", "admin"),
        ("policy", ANY_POLICY),
        ("x-amz-signature", "0" * 64),
        ("success_action_status", "200"),
        # Names compare as the policy checks compare them, whatever their case.
        ("Key", "uploads/someone-else/2/cat.jpg"),
    ],
    ids=lambda value: value if len(value) < 30 else "hostile",
)
def test_a_form_that_repeats_a_field_is_refused_and_stores_nothing(
    stack: Any, field: str, hostile: str
) -> None:
    # The checks read one copy, s3rver would store the other: S3 takes each field once.
    created = ask(stack, {"filename": "a.jpg", "content_type": "image/jpeg"}).json()
    upload = created["upload"]
    before = originals(stack)
    fields = [*upload["fields"].items(), (field, hostile)]
    refused = requests.post(
        upload["url"], data=fields, files={"file": ("x", corpus.jpeg((40, 30)))}, timeout=30
    )
    assert refused.status_code == 400, refused.text
    assert "<Code>InvalidArgument</Code>" in refused.text
    assert f"&apos;{field.lower()}&apos;" in refused.text  # the message names the field
    assert originals(stack) == before
    keys = {created["key"], hostile} if field.lower() == "key" else {created["key"]}
    for key in keys:
        listed = stack.s3_client().list_objects_v2(Bucket=stack.originals_bucket, Prefix=key)
        assert not listed.get("Contents"), key
    assert requests.get(f"{stack.api_url}/health", timeout=10).json() == {"status": "ok"}


@pytest.mark.parametrize(
    "changed",
    [{"Content-Type": "text/html"}, {"policy": None, "x-amz-signature": None}],
    ids=["tampered", "unsigned"],
)
def test_a_file_sent_without_a_filename_is_checked_too(
    stack: Any, changed: dict[str, str | None]
) -> None:
    # A part without a filename reaches s3rver as a plain field, which it stores as the file.
    created = ask(stack, {"filename": "a.jpg", "content_type": "image/jpeg"}).json()
    fields = {**created["upload"]["fields"], **changed}
    fields = {name: value for name, value in fields.items() if value is not None}
    before = originals(stack)
    refused = requests.post(
        created["upload"]["url"],
        files={**{n: (None, v) for n, v in fields.items()}, "file": (None, b"<html>")},
        timeout=30,
    )
    assert refused.status_code == 403, refused.text
    assert "<Code>AccessDenied</Code>" in refused.text
    assert originals(stack) == before


@pytest.mark.parametrize(
    ("size", "code"), [(0, "EntityTooSmall"), (MAX_BYTES + 1, "EntityTooLarge")]
)
def test_the_size_range_is_enforced_by_s3(stack: Any, size: int, code: str) -> None:
    form = ask(stack, {"filename": "a.jpg", "content_type": "image/jpeg"}).json()
    before = originals(stack)
    refused = send(form["upload"], b"\xff" * size)
    assert refused.status_code == 400
    assert f"<Code>{code}</Code>" in refused.text
    assert originals(stack) == before


def test_an_expired_form_is_refused(stack: Any) -> None:
    client = stack.s3_client()
    form = client.generate_presigned_post(stack.originals_bucket, "uploads/x/1/a.jpg", ExpiresIn=1)
    time.sleep(2)
    refused = send(form, corpus.jpeg((40, 30)))
    assert refused.status_code == 403
    assert "Policy expired" in refused.text


@pytest.mark.parametrize(
    ("body", "token", "status", "code"),
    [
        ({"filename": "a.jpg", "content_type": "image/jpeg", "size": MAX_BYTES + 1},
         "default", 413, "upload_too_large"),
        ({"filename": "a.pdf", "content_type": "application/pdf"},
         "default", 415, "unsupported_content_type"),
        ({"filename": "a.svg", "content_type": "image/svg+xml"},
         "default", 415, "unsupported_content_type"),
        ({"filename": "../../etc/passwd.jpg", "content_type": "image/jpeg"},
         "default", 400, "invalid_filename"),
        ({"filename": "a\x01b.jpg", "content_type": "image/jpeg"},
         "default", 400, "invalid_filename"),
        ({"filename": "a" * 2000 + ".jpg", "content_type": "image/jpeg"},
         "default", 400, "invalid_filename"),
        ({"filename": "a.jpg"}, "default", 400, "invalid_request"),
        ({"filename": "a.jpg", "content_type": "image/jpeg"}, None, 401, "unauthorized"),
        ({"filename": "a.jpg", "content_type": "image/jpeg"},
         "wrong-token-123", 401, "unauthorized"),
    ],
)  # fmt: skip
def test_bad_upload_requests_are_refused_and_store_nothing(
    stack: Any, body: dict[str, Any], token: str | None, status: int, code: str
) -> None:
    before = originals(stack)
    response = ask(stack, body, token)
    assert response.status_code == status, response.text
    assert response.json()["code"] == code
    assert originals(stack) == before
    assert requests.get(f"{stack.api_url}/health", timeout=10).json() == {"status": "ok"}


def test_a_page_origin_may_call_the_api_and_post_to_s3(stack: Any) -> None:
    origin = stack.page_origins[0]
    preflight = {"Origin": origin, "Access-Control-Request-Method": "POST"}
    api = requests.options(f"{stack.api_url}/uploads", headers=preflight, timeout=10)
    assert api.status_code == 204
    assert api.headers["Access-Control-Allow-Origin"] == origin
    bucket_url = f"{stack.s3_url}/{stack.originals_bucket}"
    s3 = requests.options(bucket_url, headers=preflight, timeout=10)
    assert s3.status_code == 200
    assert s3.headers["Access-Control-Allow-Origin"] in (origin, "*")
    created = ask(stack, {"filename": "a.jpg", "content_type": "image/jpeg"}, Origin=origin)
    assert created.headers["Access-Control-Allow-Origin"] == origin


def test_other_origins_are_refused(stack: Any) -> None:
    preflight = {"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}
    api = requests.options(f"{stack.api_url}/uploads", headers=preflight, timeout=10)
    assert api.status_code == 403
    assert "Access-Control-Allow-Origin" not in api.headers
    bucket_url = f"{stack.s3_url}/{stack.originals_bucket}"
    assert requests.options(bucket_url, headers=preflight, timeout=10).status_code == 403
