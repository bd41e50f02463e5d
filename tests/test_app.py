"""The app in-process: chalice.test.Client over moto, the website hop simulated by the rules."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import chalice.test
import pytest
from botocore.exceptions import ClientError
from chalice.local import LambdaContext
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib import wiring
from scripts.ops.website import apply_routing_rules, website_configuration
from tests.support import BUCKET, PUBLIC_URL, ROOT, bad_inputs, corpus
from tests.support.s3_events import notification, sqs_event_for
from tests.support.spellings import loose_spellings, suggestion
from tests.test_grammar import NON_CANONICAL

API_URL = "https://api.example.com"


def website_get(s3: Any, client: Any, key: str) -> tuple[int, bytes | dict[str, Any]]:
    """What a browser sees for <public base>/<key>: the object, or the rule's redirect followed."""
    try:
        stored = s3.get_object(Bucket=BUCKET, Key=key)
    except ClientError:
        pass
    else:
        location = stored.get("WebsiteRedirectLocation")
        if location is None:
            return 200, stored["Body"].read()
        # An object redirect: the website endpoint answers 301 to its location.
        assert location.startswith(PUBLIC_URL + "/")
        return website_get(s3, client, unquote(location.removeprefix(PUBLIC_URL + "/")))
    redirect = apply_routing_rules(
        s3.get_bucket_website(Bucket=BUCKET), key, 404, request_host="img.example.com"
    )
    assert redirect is not None
    assert redirect.status == 307
    response = client.http.get(urlsplit(redirect.location).path)
    if response.status_code != 307:
        return response.status_code, json.loads(response.body)
    location = response.headers["Location"]
    assert location.startswith(PUBLIC_URL + "/")
    stored_key = location.removeprefix(PUBLIC_URL + "/")
    return website_get(s3, client, unquote(stored_key))


@pytest.fixture
def website(s3: Any) -> Any:
    s3.put_bucket_website(Bucket=BUCKET, WebsiteConfiguration=website_configuration(API_URL))
    return s3


def test_miss_stores_variant_and_redirects_to_public_url(website: Any, client: Any) -> None:
    website.put_object(Bucket=BUCKET, Key="photos/cat.jpg", Body=corpus.jpeg((1600, 1200)))
    response = client.http.get("/resize/300x300/photos/cat.jpg")
    assert response.status_code == 307
    assert response.headers["Location"] == f"{PUBLIC_URL}/300x300/photos/cat.jpg"
    assert response.headers["Cache-Control"] == "no-store"
    head = website.head_object(Bucket=BUCKET, Key="300x300/photos/cat.jpg")
    assert head["ContentType"] == "image/jpeg"
    assert head["CacheControl"] == "public, max-age=86400, s-maxage=31536000"
    assert head["Metadata"] == {
        "source-etag": website.head_object(Bucket=BUCKET, Key="photos/cat.jpg")["ETag"]
    }


def test_auto_miss_negotiates_and_varies_on_accept(website: Any, client: Any) -> None:
    website.put_object(Bucket=BUCKET, Key="photos/cat.jpg", Body=corpus.jpeg((1600, 1200)))
    firefox = "image/avif,image/webp,image/png,image/svg+xml,image/*;q=0.8,*/*;q=0.5"
    for accept, token in ((firefox, "300x.avif"), ("image/webp", "300x.webp"), ("*/*", "300x")):
        response = client.http.get("/resize/300x.auto/photos/cat.jpg", headers={"Accept": accept})
        assert response.status_code == 307
        assert response.headers["Location"] == f"{PUBLIC_URL}/{token}/photos/cat.jpg"
        assert response.headers["Vary"] == "Accept"
        assert response.headers["Cache-Control"] == "private, max-age=86400"
    stored = {o["Key"] for o in website.list_objects_v2(Bucket=BUCKET)["Contents"]}
    assert not [key for key in stored if ".auto" in key]
    # A concrete size is not negotiated: never cached, no Vary.
    response = client.http.get("/resize/300x.webp/photos/cat.jpg", headers={"Accept": "*/*"})
    assert response.headers["Cache-Control"] == "no-store"
    assert "Vary" not in response.headers


def test_full_chain_then_hit(website: Any, client: Any) -> None:
    website.put_object(Bucket=BUCKET, Key="photos/cat.jpg", Body=corpus.jpeg((1600, 1200)))
    status, body = website_get(website, client, "300x300/photos/cat.jpg")
    assert status == 200
    assert isinstance(body, bytes)
    assert corpus.opened(body).size == (300, 225)


def test_another_spelling_of_a_stored_output_is_a_redirect_to_it(website: Any, client: Any) -> None:
    website.put_object(Bucket=BUCKET, Key="wide.jpg", Body=corpus.jpeg((1000, 500)))
    status, first = website_get(website, client, "600x300/wide.jpg")
    assert status == 200
    response = client.http.get("/resize/300x150@2x/wide.jpg")
    assert response.status_code == 307
    assert response.headers["Location"] == f"{PUBLIC_URL}/600x300/wide.jpg"
    # From now on the website answers that spelling itself, without the API.
    alias = website.head_object(Bucket=BUCKET, Key="300x150@2x/wide.jpg")
    assert alias["WebsiteRedirectLocation"] == f"{PUBLIC_URL}/600x300/wide.jpg"
    assert website_get(website, client, "300x150@2x/wide.jpg") == (200, first)
    assert website_get(website, client, "600x/wide.jpg") == (200, first)


def test_head_is_answered_like_get(website: Any, client: Any) -> None:
    website.put_object(Bucket=BUCKET, Key="a.jpg", Body=corpus.jpeg((400, 300)))
    response = client.http.request("HEAD", "/resize/100x/a.jpg")
    assert response.status_code == 307
    assert response.headers["Location"] == f"{PUBLIC_URL}/100x/a.jpg"
    assert website.head_object(Bucket=BUCKET, Key="100x/a.jpg")["ContentType"] == "image/jpeg"
    missing = client.http.request("HEAD", "/resize/100x/none.jpg")
    assert missing.status_code == 404


@pytest.mark.parametrize(
    "key",
    [
        "café au lait (1).jpg",
        "a/b/c/d/e/f/g/h/i/deep.jpg",
        "plus+sign & 'quote' 100%.jpg",
        "x/xx/300x200/x-ray.jpg",
        "日本/写真.jpg",
    ],
)
def test_awkward_keys_round_trip(website: Any, client: Any, key: str) -> None:
    website.put_object(Bucket=BUCKET, Key=key, Body=corpus.jpeg((400, 300)))
    status, body = website_get(website, client, f"100x/{key}")
    assert status == 200, body
    assert website.head_object(Bucket=BUCKET, Key=f"100x/{key}")["ContentType"] == "image/jpeg"
    response = client.http.get(f"/resize/100x/{quote(key)}")
    assert response.headers["Location"] == f"{PUBLIC_URL}/100x/{quote(key)}"


def test_missing_original_is_404_json_and_never_a_redirect(website: Any, client: Any) -> None:
    response = client.http.get("/resize/300x300/nope.jpg")
    assert response.status_code == 404
    assert "Location" not in response.headers
    assert json.loads(response.body)["code"] == "original_not_found"
    assert website.list_objects_v2(Bucket=BUCKET)["KeyCount"] == 0


def test_size_is_percent_decoded_once(website: Any, client: Any) -> None:
    website.put_object(Bucket=BUCKET, Key="a.jpg", Body=corpus.jpeg((400, 300)))
    response = client.http.get("/resize/100x%402x/a.jpg")  # S3 encodes '@' in its redirect
    assert response.status_code == 307
    assert response.headers["Location"] == f"{PUBLIC_URL}/100x%402x/a.jpg"
    assert website.head_object(Bucket=BUCKET, Key="100x@2x/a.jpg")["ContentType"] == "image/jpeg"
    refused = client.http.get("/resize/100x%25402x/a.jpg")  # decoded once: "100x%402x"
    assert refused.status_code == 400


def test_key_without_size_is_404_json(client: Any) -> None:
    response = client.http.get("/resize/cat.jpg")
    assert response.status_code == 404
    assert json.loads(response.body)["code"] == "not_a_variant_url"


def listing(s3: Any) -> set[str]:
    return {item["Key"] for item in s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])}


@pytest.fixture
def bad_bucket(s3: Any) -> Any:
    for key, body in bad_inputs.originals().items():
        s3.put_object(Bucket=BUCKET, Key=key, Body=body)
    return s3


@pytest.mark.parametrize(("path", "status", "code"), bad_inputs.BAD_REQUESTS)
def test_bad_input_gets_json_error_stores_nothing_and_leaves_service_healthy(
    bad_bucket: Any, client: Any, path: str, status: int, code: str
) -> None:
    before = listing(bad_bucket)
    response = client.http.get(f"/resize/{path}")
    assert response.status_code == status, response.body
    body = json.loads(response.body)
    assert body["code"] == code
    assert body["message"]
    assert "Traceback" not in response.body.decode()
    assert response.headers["Cache-Control"] == "no-store"
    assert "Location" not in response.headers
    assert listing(bad_bucket) == before
    assert client.http.get("/resize/100x/bad/ok.jpg").status_code == 307


SIZE_ALPHABET = "0123456789xX×@-.qcoverpadjpgwebavif\uff13 %"


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    size=st.text(SIZE_ALPHABET, max_size=24),
    key=st.lists(st.text(max_size=12), min_size=1, max_size=4),
)
def test_fuzzed_sizes_and_keys_never_5xx_and_store_only_valid_variants(
    bad_bucket: Any, client: Any, size: str, key: list[str]
) -> None:
    before = listing(bad_bucket)
    path = "/".join(quote(part, safe="") for part in [size, *key])
    response = client.http.get(f"/resize/{path}")
    assert response.status_code < 500, response.body
    if response.status_code != 307:
        assert listing(bad_bucket) == before


def test_allowed_sizes_refuse_others_with_403(
    s3: Any, client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ALLOWED_SIZES", "300x300,x120")
    wiring.reset()
    s3.put_object(Bucket=BUCKET, Key="a.jpg", Body=corpus.jpeg((400, 300)))
    assert client.http.get("/resize/x120/a.jpg").status_code == 307
    refused = client.http.get("/resize/301x300/a.jpg")
    assert refused.status_code == 403
    assert json.loads(refused.body)["code"] == "size_not_allowed"
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]}
    # The variant and its ledger entry: the output 160x120 is stored at x120/a.jpg.
    assert keys == {"a.jpg", "x120/a.jpg", "_variants/5/a.jpg/o/160x120=x120"}


def test_redirect_ignores_host_and_forwarded_headers(s3: Any, client: Any) -> None:
    s3.put_object(Bucket=BUCKET, Key="a.jpg", Body=corpus.jpeg((400, 300)))
    response = client.http.get(
        "/resize/100x/a.jpg",
        headers={
            "Host": "evil.example",
            "X-Forwarded-Host": "evil.example",
            "X-Forwarded-Proto": "http",
        },
    )
    assert response.headers["Location"] == f"{PUBLIC_URL}/100x/a.jpg"


def test_unexpected_failure_is_json_500(
    s3: Any, client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    s3.put_object(Bucket=BUCKET, Key="a.jpg", Body=corpus.jpeg((400, 300)))

    def explode(*_: object) -> None:
        raise RuntimeError("boom with secret detail")

    monkeypatch.setattr("chalicelib.imaging.render", explode)
    response = client.http.get("/resize/100x/a.jpg")
    assert response.status_code == 500
    assert json.loads(response.body) == {"code": "internal_error", "message": "internal error"}


def test_health(client: Any) -> None:
    response = client.http.get("/health")
    assert response.status_code == 200


def test_missing_configuration_is_a_clear_500(client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PUBLIC_URL")
    wiring.reset()
    response = client.http.get("/resize/100x/a.jpg")
    assert response.status_code == 500
    assert json.loads(response.body)["code"] == "misconfigured"


# --- the originals' lifecycle through the app: the SQS handler, GET /meta ------------------


def test_the_sqs_handler_records_an_upload_and_meta_answers_it(lifecycle_app: Any, s3: Any) -> None:
    key = "photos/sea side.jpg"
    assert lifecycle_app.http.get(f"/meta/photos/{quote('sea side.jpg')}").status_code == 404
    body = corpus.jpeg((640, 480))
    etag = s3.put_object(Bucket="originals", Key=key, Body=body)["ETag"]
    answer = lifecycle_app.lambda_.invoke(
        "on_original_event", sqs_event_for(lifecycle_app, key, etag, len(body))
    )
    assert answer.payload == {"batchItemFailures": []}
    response = lifecycle_app.http.get(f"/meta/photos/{quote('sea side.jpg')}")
    assert response.status_code == 200
    meta = json.loads(response.body)
    assert meta["state"] == "ready"
    assert (meta["width"], meta["height"], meta["format"]) == (640, 480, "JPEG")
    assert meta["presets"] == {"120x": f"{PUBLIC_URL}/120x/photos/sea%20side.jpg"}
    assert s3.head_object(Bucket=BUCKET, Key=f"120x/{key}")["ContentType"] == "image/jpeg"


def test_the_sqs_handler_reads_the_time_left_from_lambdas_context(
    lifecycle_app: Any, s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Invoked with 3 s left, a message isn't started: it comes back for the next invocation."""
    monkeypatch.setattr(chalice.test, "LambdaContext", LambdaContext)
    body = corpus.jpeg((64, 48))
    etag = s3.put_object(Bucket="originals", Key="photos/a.jpg", Body=body)["ETag"]
    event = sqs_event_for(lifecycle_app, "photos/a.jpg", etag, len(body))
    answer = lifecycle_app.lambda_.invoke("on_original_event", event)
    [record] = event["Records"]
    assert answer.payload == {"batchItemFailures": [{"itemIdentifier": record["messageId"]}]}
    assert lifecycle_app.http.get("/meta/photos/a.jpg").status_code == 404


def test_meta_shows_strangers_what_a_page_needs_and_the_owner_everything(
    lifecycle_app: Any, s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("UPLOAD_TOKEN", "a-dev-token-long-enough")
    wiring.reset()
    key = "uploads/local/1/cat.jpg"
    from PIL import Image

    exif = Image.Exif()
    exif.update({0x010F: "Maker", 0x0110: "Model 7", 0x0132: "2024:05:06 07:08:09"})
    body = corpus.encode(corpus.quadrants((400, 300)), "JPEG", exif=exif.tobytes())
    metadata = {"uploader": "local", "focus": "0.25,0.75"}
    etag = s3.put_object(Bucket="originals", Key=key, Body=body, Metadata=metadata)["ETag"]
    lifecycle_app.lambda_.invoke("on_original_event", sqs_event_for(lifecycle_app, key, etag, 1))
    stranger = json.loads(lifecycle_app.http.get(f"/meta/{key}").body)
    # The placeholders and the focal point: what a page paints and places the image by;
    # whether its prefix's policy watermarks it (docs/watermarks.md).
    assert set(stranger) == {
        *("key", "state", "format", "width", "height", "frames", "presets"),
        *("blurhash", "dominant_color", "focus", "watermarked"),
    }
    assert stranger["watermarked"] is False
    assert stranger["focus"] == "0.25,0.75"
    owner = lifecycle_app.http.get(
        f"/uploads?key={quote(key)}", headers={"Authorization": "Bearer a-dev-token-long-enough"}
    )
    assert owner.status_code == 200
    owned = json.loads(owner.body)
    assert {k: owned[k] for k in stranger} == stranger
    assert (owned["etag"], owned["bytes"]) == (etag, len(body))
    assert {"camera_make", "camera_model", "taken_at", "created_at"} <= set(owned)
    # Without the token: refused; with it, someone else's original or an unknown key: unknown.
    assert lifecycle_app.http.get(f"/uploads?key={quote(key)}").status_code == 401
    s3.put_object(Bucket="originals", Key="uploads/bob/1/dog.jpg", Body=body)
    for other in ("uploads/bob/1/dog.jpg", "uploads/local/2/none.jpg"):
        answer = lifecycle_app.http.get(
            f"/uploads?key={quote(other)}",
            headers={"Authorization": "Bearer a-dev-token-long-enough"},
        )
        assert answer.status_code == 404
        assert json.loads(answer.body)["code"] == "not_found"


def test_meta_of_a_deleted_original_is_410_not_a_404(lifecycle_app: Any, s3: Any) -> None:
    # A 404 means "not processed yet, ask again"; a deleted original never comes back.
    body = corpus.jpeg((64, 48))
    etag = s3.put_object(Bucket="originals", Key="photos/a.jpg", Body=body)["ETag"]
    lifecycle_app.lambda_.invoke(
        "on_original_event", sqs_event_for(lifecycle_app, "photos/a.jpg", etag, len(body))
    )
    s3.delete_object(Bucket="originals", Key="photos/a.jpg")
    deleted = notification("ObjectRemoved:Delete", "photos/a.jpg", "0055AED6DCD90281F0")
    answer = lifecycle_app.lambda_.invoke(
        "on_original_event", lifecycle_app.events.generate_sqs_event(message_bodies=[deleted])
    )
    assert answer.payload == {"batchItemFailures": []}
    response = lifecycle_app.http.get("/meta/photos/a.jpg")
    assert response.status_code == 410
    assert json.loads(response.body)["code"] == "original_deleted"
    assert lifecycle_app.http.get("/meta/photos/b.jpg").status_code == 404


def test_meta_without_a_table_is_a_clear_500(client: Any) -> None:
    response = client.http.get("/meta/photos/cat.jpg")
    assert response.status_code == 500
    assert json.loads(response.body)["code"] == "misconfigured"


COLD_START = """
import json, os, sys
os.environ.update(IMAGE_BUCKET="images", PUBLIC_URL="https://img.example.com",
                  AWS_DEFAULT_REGION="us-east-1")
import app
heavy = ("botocore", "jwt", "urllib.request", "blurhash", "pillow_heif", "aws_xray_sdk")
early = sorted(name for name in heavy if name in sys.modules)
from chalice.test import Client
loaded = {"import": ["boto3" in sys.modules, "PIL" in sys.modules], "early": early}
with Client(app.app) as client:
    for name, path in (("health", "/health"), ("4xx", "/resize/0x0/a.jpg")):
        status = client.http.get(path).status_code
        loaded[name] = [status, "boto3" in sys.modules, "PIL" in sys.modules]
print(json.dumps(loaded))
"""


def test_a_cold_start_loads_boto3_only_for_a_request_that_reaches_s3() -> None:
    """A fresh interpreter: importing the app, a health check and a 4xx load neither."""
    done = subprocess.run(
        [sys.executable, "-c", COLD_START], capture_output=True, text=True, check=True, cwd=ROOT
    )
    loaded = json.loads(done.stdout.splitlines()[-1])  # after the requests' own log lines
    assert loaded == {
        "import": [False, False],
        "early": [],  # botocore, PyJWT, urllib.request: only once a request needs them
        "health": [200, False, False],
        "4xx": [400, False, False],  # refused by the grammar: neither S3 nor Pillow needed
    }


@pytest.mark.parametrize(
    "value",
    [
        "2026-12-02T05:08:18.000Z",  # S3's XML (LIST)
        "2026-12-02T05:08:18Z",
        "2026-12-02T05:08:18.123456+01:00",
        "Wed, 02 Dec 2026 05:08:18 GMT",  # S3's headers (HEAD, GET)
        "2026-12-02T05:08:18",  # no zone
        "Wed, 02 Dec 2026 05:08:18 -0000",  # a zone the standard library reads as none
        "1796189298",
        1796189298.5,
    ],
)
def test_timestamps_read_as_botocore_reads_them(value: Any) -> None:
    from botocore.utils import parse_timestamp

    ours, theirs = wiring.timestamp(value), parse_timestamp(value)
    assert ours == theirs  # the same instant (an aware time never equals a naive one)
    assert ours.utcoffset() == theirs.utcoffset()


TRACED_CALL = """
import json, os, sys
os.environ.update(IMAGE_BUCKET="images", PUBLIC_URL="https://img.example.com",
                  AWS_DEFAULT_REGION="us-east-1", AWS_ACCESS_KEY_ID="test",
                  AWS_SECRET_ACCESS_KEY="test", **json.loads(sys.argv[1]))
from chalicelib import wiring
from chalicelib.storage import S3_CALLS
client = wiring.get_s3_client()
wiring.aws_client("sqs")
found = {"imported": "aws_xray_sdk" in sys.modules, "subsegments": []}
if found["imported"]:
    from aws_xray_sdk.core import xray_recorder
    from botocore.stub import Stubber
    sent = []

    class Emitter:  # in memory: nothing is sent to a daemon
        def send_entity(self, entity):
            sent.append(json.loads(entity.serialize()))

        def set_daemon_address(self, address):
            pass

    xray_recorder.configure(emitter=Emitter())
    with Stubber(client) as stub:
        for _ in range(2):
            stub.add_response("head_object", {"ContentLength": 1, "ETag": '"e"'})
        client.head_object(Bucket="images", Key="a.jpg")
        S3_CALLS.submit(client.head_object, Bucket="images", Key="b.jpg").result()
    found["subsegments"] = [
        [part["name"], part["aws"]["operation"], part["trace_id"], part["parent_id"]]
        for part in sent
    ]
print(json.dumps(found))
"""
# What Lambda sets for an invocation with tracing on: its trace, its segment (Parent), sampled.
TRACE = ("1-5759e988-bd862e3fe1be46a994272793", "53995c3f42cd8ad8")
LAMBDA_TRACING = {
    "TRACE_AWS_CALLS": "true",
    "LAMBDA_TASK_ROOT": "/var/task",
    "_X_AMZN_TRACE_ID": f"Root={TRACE[0]};Parent={TRACE[1]};Sampled=1",
}


@pytest.mark.parametrize(
    ("environment", "expected"),
    [
        ({}, {"imported": False, "subsegments": []}),
        (
            LAMBDA_TRACING,
            {"imported": True, "subsegments": [["s3", "HeadObject", *TRACE]] * 2},
        ),
    ],
)
def test_aws_calls_are_x_ray_subsegments_only_with_tracing_on(
    environment: dict[str, str], expected: dict[str, Any]
) -> None:
    """A fresh interpreter builds the clients: with tracing off the X-Ray SDK is never
    imported; on (as Lambda runs it), an S3 call is a subsegment of the invocation's
    segment, made on the request's thread or on a look-up thread alike."""
    done = subprocess.run(
        [sys.executable, "-c", TRACED_CALL, json.dumps(environment)],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    assert json.loads(done.stdout.splitlines()[-1]) == expected


def test_meta_answers_page_origins_across_origins_its_404s_too(
    lifecycle_app: Any, s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The demo page lives on the website's origin, the API on another.
    monkeypatch.setenv("CORS_ORIGINS", "https://app.example.com")
    wiring.reset()
    page = {"Origin": "https://app.example.com"}
    missing = lifecycle_app.http.get("/meta/photos/gone.jpg", headers=page)
    assert missing.status_code == 404
    assert missing.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
    stranger = lifecycle_app.http.get(
        "/meta/photos/gone.jpg", headers={"Origin": "https://x.example"}
    )
    assert "Access-Control-Allow-Origin" not in stranger.headers
    body = corpus.jpeg((64, 48))
    etag = s3.put_object(Bucket="originals", Key="photos/a.jpg", Body=body)["ETag"]
    lifecycle_app.lambda_.invoke(
        "on_original_event", sqs_event_for(lifecycle_app, "photos/a.jpg", etag, len(body))
    )
    found = lifecycle_app.http.get("/meta/photos/a.jpg", headers=page)
    assert found.status_code == 200
    assert found.headers["Access-Control-Allow-Origin"] == "https://app.example.com"


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(typed=st.one_of(st.sampled_from([text for text, _ in NON_CANONICAL]), loose_spellings()))
def test_every_spelling_the_service_suggests_it_accepts(
    website: Any, client: Any, typed: str
) -> None:
    website.put_object(Bucket=BUCKET, Key="s/a.jpg", Body=corpus.jpeg((64, 48)))
    refused = client.http.get(f"/resize/{quote(typed, safe='')}/s/a.jpg")
    if refused.status_code != 400 or json.loads(refused.body)["code"] != "non_canonical_size":
        return
    suggested = suggestion(json.loads(refused.body)["message"])
    accepted = client.http.get(f"/resize/{quote(suggested, safe='')}/s/a.jpg")
    assert accepted.status_code == 307, (typed, suggested, accepted.body)


def test_a_url_without_a_size_says_the_size_is_missing(client: Any) -> None:
    # /images/samples/photo.jpg reaches the API as /resize/samples/photo.jpg.
    response = client.http.get("/resize/samples/photo.jpg")
    assert response.status_code == 404
    body = json.loads(response.body)
    assert body["code"] == "not_a_variant_url"
    assert body["message"].startswith("the URL has no size")
    assert "'samples' is not a size" in body["message"]


@pytest.mark.parametrize(
    ("accept", "html"),
    [
        ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", True),
        ("TEXT/HTML; q=1", True),
        ("image/avif,image/webp,*/*", False),
        ("application/json, text/html", False),
        ("*/*", False),
        (None, False),
    ],
)
def test_a_browser_tab_gets_the_error_as_a_page_everything_else_json(
    client: Any, accept: str | None, html: bool
) -> None:
    headers = {"Accept": accept} if accept else {}
    response = client.http.get("/resize/300x0200/<b>&'\"/a.jpg", headers=headers)
    assert response.status_code == 400
    assert response.headers["Cache-Control"] == "no-store"
    if not html:
        assert json.loads(response.body)["code"] == "non_canonical_size"
        return
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    page = response.body.decode()
    assert "<code>non_canonical_size</code>" in page
    assert "use &#x27;300x200&#x27;" in page
    missing = client.http.get("/resize/cat.jpg", headers=headers)
    assert missing.status_code == 404
    assert "the URL has no size" in missing.body.decode()


def test_error_pages_escape_everything() -> None:
    from chalicelib.http import html_error

    page = html_error(400, "<i>", "<script>alert(1)</script> & 'x'")
    assert "<script>" not in page
    assert "<i>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &#x27;x&#x27;" in page
