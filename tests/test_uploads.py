"""POST /uploads: who may upload, the key chosen, the signed form's conditions, CORS."""

from __future__ import annotations

import base64
import functools
import json
from typing import Any

import pytest

from chalicelib import wiring
from chalicelib.config import ConfigError, Settings
from chalicelib.errors import Unauthorized
from chalicelib.uploads import ANONYMOUS_UPLOADER, LOCAL_UPLOADER, uploader_id
from tests.support import BUCKET, PUBLIC_URL

TOKEN = "local-dev-token"
ORIGINALS = "originals"
AUTH = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}


@pytest.fixture
def uploads(s3: Any, client: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The test client with an originals bucket, a dev token and one allowed page origin."""
    s3.create_bucket(Bucket=ORIGINALS)
    monkeypatch.setenv("ORIGINALS_BUCKET", ORIGINALS)
    monkeypatch.setenv("UPLOAD_TOKEN", TOKEN)
    monkeypatch.setenv("CORS_ORIGINS", "https://app.example.com")
    monkeypatch.setenv("MAX_SOURCE_BYTES", "1000000")
    wiring.reset()
    return client


def post(client: Any, body: Any, headers: dict[str, str] | None = None) -> Any:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.http.post("/uploads", body=raw, headers=AUTH if headers is None else headers)


def answer(response: Any) -> dict[str, Any]:
    return json.loads(response.body)


def policy_of(form: dict[str, Any]) -> dict[str, Any]:
    return json.loads(base64.b64decode(form["fields"]["policy"]))


def originals(s3: Any) -> list[str]:
    return [o["Key"] for o in s3.list_objects_v2(Bucket=ORIGINALS).get("Contents", [])]


def test_upload_answers_a_form_for_one_key_under_the_uploaders_prefix(
    uploads: Any, s3: Any
) -> None:
    response = post(uploads, {"filename": "café (1).jpg", "content_type": "image/jpeg"})
    assert response.status_code == 201, response.body
    assert response.headers["Cache-Control"] == "no-store"
    body = answer(response)
    prefix, uploader, upload_id, filename = body["key"].split("/")
    assert (prefix, uploader, filename) == ("uploads", LOCAL_UPLOADER, "café (1).jpg")
    assert len(upload_id) == 24
    assert body["upload"]["fields"]["key"] == body["key"]
    assert body["upload"]["url"].endswith(ORIGINALS) or ORIGINALS in body["upload"]["url"]
    assert body["variant_url"] == (
        f"{PUBLIC_URL}/{{size}}/uploads/local/{upload_id}/caf%C3%A9%20%281%29.jpg"
    )
    again = answer(post(uploads, {"filename": "café (1).jpg", "content_type": "image/jpeg"}))
    assert again["key"] != body["key"]  # never the same key twice
    assert originals(s3) == []  # nothing is written until the browser posts the file


def test_every_form_field_is_pinned_by_a_condition(uploads: Any) -> None:
    form = answer(post(uploads, {"filename": "a.png", "content_type": "image/png"}))["upload"]
    conditions = policy_of(form)["conditions"]
    pinned = {}
    for condition in conditions:
        if isinstance(condition, dict):
            pinned.update({name.lower(): value for name, value in condition.items()})
        elif condition[0] == "eq":
            pinned[condition[1].lstrip("$").lower()] = condition[2]
    for name, value in form["fields"].items():
        if name in ("policy", "x-amz-signature"):
            continue
        assert pinned.get(name.lower()) == value, name
    assert pinned["bucket"] == ORIGINALS
    assert ["content-length-range", 1, 1000000] in conditions
    assert form["fields"]["Content-Type"] == "image/png"
    assert form["fields"]["success_action_status"] == "201"
    assert form["fields"]["x-amz-meta-uploader"] == LOCAL_UPLOADER


def test_the_form_expires_soon(uploads: Any) -> None:
    form = answer(post(uploads, {"filename": "a.png", "content_type": "image/png"}))
    assert form["expires_in"] == 300
    expiration = policy_of(form["upload"])["expiration"]
    assert expiration.endswith("Z")


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b"{not json", 400, "invalid_request"),
        (b"[]", 400, "invalid_request"),
        ({"filename": "a.jpg"}, 400, "invalid_request"),
        ({"content_type": "image/jpeg"}, 400, "invalid_request"),
        ({"filename": 7, "content_type": "image/jpeg"}, 400, "invalid_request"),
        (
            {"filename": "a.jpg", "content_type": "image/jpeg", "size": "big"},
            400,
            "invalid_request",
        ),
        ({"filename": "a.jpg", "content_type": "image/jpeg", "size": 0}, 400, "invalid_request"),
        ({"filename": "a.svg", "content_type": "image/svg+xml"}, 415, "unsupported_content_type"),
        ({"filename": "a.pdf", "content_type": "application/pdf"}, 415, "unsupported_content_type"),
        ({"filename": "a.jpg", "content_type": "image/*"}, 415, "unsupported_content_type"),
        (
            {"filename": "a.jpg", "content_type": "image/jpeg", "size": 1000001},
            413,
            "upload_too_large",
        ),
        ({"filename": "../a.jpg", "content_type": "image/jpeg"}, 400, "invalid_filename"),
        ({"filename": "..", "content_type": "image/jpeg"}, 400, "invalid_filename"),
        ({"filename": "a\\b.jpg", "content_type": "image/jpeg"}, 400, "invalid_filename"),
        ({"filename": "a\nb.jpg", "content_type": "image/jpeg"}, 400, "invalid_filename"),
        ({"filename": "a\x00.jpg", "content_type": "image/jpeg"}, 400, "invalid_filename"),
        ({"filename": "a" * 2000 + ".jpg", "content_type": "image/jpeg"}, 400, "invalid_filename"),
        ({"filename": "  ", "content_type": "image/jpeg"}, 400, "invalid_filename"),
        *(
            (
                {"filename": f"photo{char}gpj.exe", "content_type": "image/jpeg"},
                400,
                "invalid_filename",
            )
            # bidi override, line and paragraph separators, NEL, BOM, zero-width space and joiner
            for char in ("\u202e", "\u2028", "\u2029", "\u0085", "\ufeff", "\u200b", "\u200d")
        ),
    ],
)
def test_bad_upload_requests_get_a_clear_4xx(
    uploads: Any, s3: Any, body: Any, status: int, code: str
) -> None:
    response = post(uploads, body)
    assert response.status_code == status, response.body
    assert answer(response)["code"] == code
    assert originals(s3) == []


@pytest.mark.parametrize(
    "headers",
    [
        {"Content-Type": "application/json"},
        {"Authorization": "Bearer wrong-token-000", "Content-Type": "application/json"},
        {"Authorization": f"Basic {TOKEN}", "Content-Type": "application/json"},
        {"Authorization": "Bearer", "Content-Type": "application/json"},
    ],
)
def test_uploads_without_the_token_are_refused(uploads: Any, headers: dict[str, str]) -> None:
    response = post(uploads, {"filename": "a.jpg", "content_type": "image/jpeg"}, headers)
    assert response.status_code == 401
    assert answer(response)["code"] == "unauthorized"
    assert response.headers["WWW-Authenticate"] == "Bearer"


def test_anonymous_uploads_only_when_enabled() -> None:
    closed = Settings(bucket=BUCKET, public_url=PUBLIC_URL)
    with pytest.raises(Unauthorized):
        uploader_id(closed, None, None)
    open_ = Settings(bucket=BUCKET, public_url=PUBLIC_URL, allow_anonymous_uploads=True)
    assert uploader_id(open_, None, None) == ANONYMOUS_UPLOADER


def test_a_user_pools_subject_names_the_prefix() -> None:
    settings = Settings(bucket=BUCKET, public_url=PUBLIC_URL, upload_token="another-token-1")
    subject = "0b5e3f0a-1c2d-4e5f-8a9b-0c1d2e3f4a5b"
    assert uploader_id(settings, {"sub": subject}, None) == subject
    with pytest.raises(Unauthorized):
        uploader_id(settings, {"sub": "../../etc"}, None)


def test_cors_preflight_for_allowed_origins_only(uploads: Any) -> None:
    allowed = uploads.http.request(
        "OPTIONS",
        "/uploads",
        headers={"Origin": "https://app.example.com", "Access-Control-Request-Method": "POST"},
    )
    assert allowed.status_code == 204
    assert allowed.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
    assert "POST" in allowed.headers["Access-Control-Allow-Methods"]
    assert "Authorization" in allowed.headers["Access-Control-Allow-Headers"]
    refused = uploads.http.request(
        "OPTIONS", "/uploads", headers={"Origin": "https://evil.example"}
    )
    assert refused.status_code == 403
    assert answer(refused)["code"] == "origin_not_allowed"
    assert "Access-Control-Allow-Origin" not in refused.headers


def test_errors_carry_cors_headers_so_the_page_can_read_them(uploads: Any) -> None:
    headers = {"Origin": "https://app.example.com", "Content-Type": "application/json"}
    response = post(uploads, {"filename": "a.jpg", "content_type": "image/jpeg"}, headers)
    assert response.status_code == 401
    assert response.headers["Access-Control-Allow-Origin"] == "https://app.example.com"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("UPLOAD_TOKEN", "short"),
        ("UPLOAD_TOKEN", "has a space in it"),
        ("CORS_ORIGINS", "app.example.com"),
        ("CORS_ORIGINS", "https://app.example.com/page"),
        ("UPLOAD_EXPIRY_SECONDS", "86400"),
        ("UPLOAD_PREFIX", "x200"),
        ("UPLOAD_PREFIX", "_variants"),
        ("UPLOAD_PREFIX", "a/b"),
    ],
)
def test_bad_upload_settings_are_refused(name: str, value: str) -> None:
    env = {"IMAGE_BUCKET": BUCKET, "PUBLIC_URL": PUBLIC_URL, name: value}
    with pytest.raises(ConfigError, match=name):
        Settings.from_env(env)


def test_upload_settings_are_read() -> None:
    settings = Settings.from_env(
        {
            "IMAGE_BUCKET": BUCKET,
            "PUBLIC_URL": PUBLIC_URL,
            "ORIGINALS_BUCKET": "originals",
            "CORS_ORIGINS": "https://a.example, http://127.0.0.1:8000/",
            "ALLOW_ANONYMOUS_UPLOADS": "true",
        }
    )
    assert settings.originals == "originals"
    assert settings.cors_origins == ("https://a.example", "http://127.0.0.1:8000")
    assert settings.allow_anonymous_uploads
    assert Settings(bucket=BUCKET, public_url=PUBLIC_URL).originals == BUCKET


# --- GET /uploads: the caller's own originals ----------------------------------------------


@pytest.fixture
def listing(uploads: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    import boto3

    from chalicelib.originals.metadata import TABLE_SCHEMA

    boto3.client("dynamodb", region_name="us-east-1").create_table(
        TableName="image-metadata", **TABLE_SCHEMA
    )
    monkeypatch.setenv("METADATA_TABLE", "image-metadata")
    wiring.reset()
    return uploads


def store(key: str, uploader: str, second: int) -> None:
    from chalicelib.originals.metadata import OriginalRecord, State

    wiring.get_metadata_store().apply(
        OriginalRecord(
            key=key,
            state=State.READY,
            sequencer=f"{second:032d}",
            bytes=10 * second,
            uploader=uploader,
            created_at=f"2026-12-01T12:00:{second:02d}",
            facts={"width": 1, "height": 1, "format": "PNG", "gps": {"latitude": 1.0}},
        ),
        None,
    )


def test_uploads_lists_the_callers_own_newest_first_with_usage(listing: Any) -> None:
    for second in (1, 2, 3):
        store(f"uploads/local/{second}/a.png", LOCAL_UPLOADER, second)
    store("uploads/someone/9/b.png", "someone", 9)
    response = listing.http.get("/uploads?limit=2", headers=AUTH)
    assert response.status_code == 200, response.body
    body = answer(response)
    assert [u["key"] for u in body["uploads"]] == ["uploads/local/3/a.png", "uploads/local/2/a.png"]
    assert body["uploads"][0]["gps"] == {"latitude": 1.0}  # the owner sees what is kept
    assert body["usage"] == {"bytes": 60, "originals": 3}
    rest = answer(listing.http.get(f"/uploads?limit=2&cursor={body['next_cursor']}", headers=AUTH))
    assert [u["key"] for u in rest["uploads"]] == ["uploads/local/1/a.png"]
    assert rest["next_cursor"] is None


@pytest.mark.parametrize(
    ("query", "headers", "status", "code"),
    [
        ("", {}, 401, "unauthorized"),
        ("", {"Authorization": "Bearer wrong-token-123"}, 401, "unauthorized"),
        ("?limit=0", AUTH, 400, "invalid_request"),
        ("?limit=101", AUTH, 400, "invalid_request"),
        ("?limit=x", AUTH, 400, "invalid_request"),
        ("?cursor=bm90LWEtY3Vyc29y", AUTH, 400, "invalid_request"),
    ],
)
def test_bad_listing_requests(
    listing: Any, query: str, headers: dict[str, str], status: int, code: str
) -> None:
    response = listing.http.get(f"/uploads{query}", headers=headers)
    assert response.status_code == status
    assert answer(response)["code"] == code


def test_a_file_name_is_stored_in_nfc(uploads: Any, s3: Any) -> None:
    decomposed = "cafe\u0301.jpg"  # as macOS file systems spell "café"
    body = answer(post(uploads, {"filename": decomposed, "content_type": "image/jpeg"}))
    assert body["key"].rsplit("/", 1)[1] == "caf\u00e9.jpg"


FOCUS_KEY = "uploads/local/abc/cat.jpg"


def test_a_focal_point_goes_into_the_form_in_one_spelling_and_pinned(uploads: Any) -> None:
    body = {"filename": "a.jpg", "content_type": "image/jpeg", "focus": " .25 , 0.75000"}
    form = answer(post(uploads, body))["upload"]
    assert form["fields"]["x-amz-meta-focus"] == "0.25,0.75"
    assert {"x-amz-meta-focus": "0.25,0.75"} in policy_of(form)["conditions"]
    plain = answer(post(uploads, {"filename": "a.jpg", "content_type": "image/jpeg"}))["upload"]
    assert "x-amz-meta-focus" not in plain["fields"]


@pytest.mark.parametrize("focus", ["1.5,0", "0.5", "a,b", "-0.1,0.5", 7, [0.1, 0.2], "1e-3,0"])
def test_a_bad_focal_point_in_an_upload_is_a_400(uploads: Any, s3: Any, focus: Any) -> None:
    response = post(uploads, {"filename": "a.jpg", "content_type": "image/jpeg", "focus": focus})
    assert response.status_code == 400, response.body
    assert answer(response)["code"] == "invalid_focus"
    assert originals(s3) == []


def put_focus(client: Any, key: str, body: Any, headers: dict[str, str] | None = None) -> Any:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.http.put(
        f"/meta/{key}/focus", body=raw, headers=AUTH if headers is None else headers
    )


def stored_original(s3: Any, uploader: str = LOCAL_UPLOADER) -> dict[str, Any]:
    s3.put_object(
        Bucket=ORIGINALS,
        Key=FOCUS_KEY,
        Body=b"jpeg bytes",
        ContentType="image/jpeg",
        Metadata={"uploader": uploader},
    )
    return s3.head_object(Bucket=ORIGINALS, Key=FOCUS_KEY)


def test_the_owner_sets_and_clears_the_focal_point_keeping_bytes_and_etag(
    uploads: Any, s3: Any
) -> None:
    before = stored_original(s3)
    response = put_focus(uploads, FOCUS_KEY, {"focus": "0.1, 0.9"})
    assert response.status_code == 200, response.body
    assert answer(response) == {"key": FOCUS_KEY, "focus": "0.1,0.9"}
    after = s3.head_object(Bucket=ORIGINALS, Key=FOCUS_KEY)
    assert after["Metadata"] == {"uploader": LOCAL_UPLOADER, "focus": "0.1,0.9"}
    assert (after["ETag"], after["ContentType"]) == (before["ETag"], "image/jpeg")
    cleared = put_focus(uploads, FOCUS_KEY, {"focus": None})
    assert answer(cleared) == {"key": FOCUS_KEY, "focus": None}
    assert s3.head_object(Bucket=ORIGINALS, Key=FOCUS_KEY)["Metadata"] == {
        "uploader": LOCAL_UPLOADER
    }


def test_another_uploaders_original_keeps_its_focal_point(uploads: Any, s3: Any) -> None:
    stored_original(s3, uploader="bob")
    response = put_focus(uploads, FOCUS_KEY, {"focus": "0.1,0.9"})
    assert response.status_code == 403
    assert answer(response)["code"] == "not_the_owner"
    assert "focus" not in s3.head_object(Bucket=ORIGINALS, Key=FOCUS_KEY)["Metadata"]


@pytest.mark.parametrize(
    ("path", "body", "headers", "status", "code"),
    [
        (FOCUS_KEY, {"focus": "1.2,0"}, None, 400, "invalid_focus"),
        (FOCUS_KEY, {"focus": "middle"}, None, 400, "invalid_focus"),
        (FOCUS_KEY, {"focus": 5}, None, 400, "invalid_focus"),
        (FOCUS_KEY, {"x": 0.1}, None, 400, "invalid_request"),
        (FOCUS_KEY, b"not json", None, 400, "invalid_request"),
        (
            FOCUS_KEY,
            {"focus": "0.1,0.9"},
            {"Content-Type": "application/json"},
            401,
            "unauthorized",
        ),
        ("uploads/local/abc/other.jpg", {"focus": "0.1,0.9"}, None, 404, "original_not_found"),
    ],
)
def test_bad_focal_point_changes_are_refused_and_change_nothing(
    uploads: Any,
    s3: Any,
    path: str,
    body: Any,
    headers: dict[str, str] | None,
    status: int,
    code: str,
) -> None:
    before = stored_original(s3)
    response = put_focus(uploads, path, body, headers)
    assert response.status_code == status, response.body
    assert answer(response)["code"] == code
    assert s3.head_object(Bucket=ORIGINALS, Key=FOCUS_KEY)["Metadata"] == before["Metadata"]


def test_only_focus_can_be_put_under_meta(uploads: Any, s3: Any) -> None:
    stored_original(s3)
    response = uploads.http.put(f"/meta/{FOCUS_KEY}/size", body=b"{}", headers=AUTH)
    assert response.status_code == 400
    assert answer(response)["code"] == "invalid_request"


# --- the owner's operations: delete and replace ---------------------------------------------

MINE = "uploads/local/1/cat.png"
THEIRS = "uploads/someone/9/dog.png"


@pytest.fixture
def owned(listing: Any, s3: Any) -> Any:
    """One original of the caller's and one of someone else's, stored and recorded."""
    for second, (key, uploader) in enumerate([(MINE, LOCAL_UPLOADER), (THEIRS, "someone")], 1):
        s3.put_object(Bucket=ORIGINALS, Key=key, Body=b"png", Metadata={"uploader": uploader})
        store(key, uploader, second)
    return listing


def test_the_owner_deletes_an_original_and_the_pipeline_does_the_rest(owned: Any, s3: Any) -> None:
    response = owned.http.delete(f"/uploads/{MINE}", headers=AUTH)
    assert response.status_code == 204, response.body
    assert originals(s3) == [THEIRS]
    # Only the original: variants, the record and usage follow from its S3 event.
    assert answer(owned.http.get("/uploads", headers=AUTH))["usage"]["originals"] == 1


@pytest.mark.parametrize(
    ("key", "headers", "status", "code"),
    [
        (MINE, {}, 401, "unauthorized"),
        (MINE, {"Authorization": "Bearer wrong-token-123"}, 401, "unauthorized"),
        # Someone else's, one never uploaded, one outside the uploads folder: all alike unknown.
        (THEIRS, AUTH, 404, "not_found"),
        ("uploads/local/2/none.png", AUTH, 404, "not_found"),
        ("photos/cat.png", AUTH, 404, "not_found"),
    ],
)
def test_nobody_else_deletes_or_replaces_and_nothing_tells_them_what_exists(
    owned: Any, s3: Any, key: str, headers: dict[str, str], status: int, code: str
) -> None:
    if key == "photos/cat.png":
        s3.put_object(Bucket=ORIGINALS, Key=key, Body=b"png")
        store(key, LOCAL_UPLOADER, 5)  # recorded as ours, but not in our folder
    before = originals(s3)
    deleted = owned.http.delete(f"/uploads/{key}", headers=headers)
    replaced = post(owned, {"replace": key, "content_type": "image/png"}, headers)
    for response in (deleted, replaced):
        assert (response.status_code, answer(response)["code"]) == (status, code)
    assert originals(s3) == before
    assert answer(deleted)["message"] == answer(replaced)["message"]


def test_replacing_signs_a_form_pinned_to_the_owners_existing_key(owned: Any, s3: Any) -> None:
    response = post(owned, {"replace": MINE, "content_type": "image/jpeg", "size": 100})
    assert response.status_code == 201, response.body
    form = answer(response)
    assert form["key"] == MINE
    conditions = policy_of(form["upload"])["conditions"]
    assert {"key": MINE} in conditions
    assert {"x-amz-meta-uploader": LOCAL_UPLOADER} in conditions
    assert {"Content-Type": "image/jpeg"} in conditions
    # Signing changed nothing: the old bytes stay until S3 has the new ones.
    assert s3.get_object(Bucket=ORIGINALS, Key=MINE)["Body"].read() == b"png"


def test_a_failed_delete_loses_nothing_and_says_try_again(
    owned: Any, s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from botocore.exceptions import ClientError

    from chalicelib.uploads import UploadService

    class Refusing:
        def delete_object(self, **_: Any) -> None:
            raise ClientError({"Error": {"Code": "SlowDown"}}, "DeleteObject")

    refusing = functools.cache(lambda: UploadService(wiring.get_settings(), Refusing()))
    monkeypatch.setattr(wiring, "get_uploads", refusing)  # wiring.reset() clears it
    response = owned.http.delete(f"/uploads/{MINE}", headers=AUTH)
    assert response.status_code == 503
    assert answer(response)["code"] == "storage_unavailable"
    assert MINE in originals(s3)
    assert owned.http.get(f"/uploads?key={MINE}", headers=AUTH).status_code == 200


def test_the_page_may_delete_across_origins(owned: Any) -> None:
    preflight = owned.http.request(
        "OPTIONS",
        f"/uploads/{MINE}",
        headers={"Origin": "https://app.example.com", "Access-Control-Request-Method": "DELETE"},
    )
    assert preflight.status_code == 204
    assert "DELETE" in preflight.headers["Access-Control-Allow-Methods"]
    deleted = owned.http.delete(
        f"/uploads/{MINE}", headers={**AUTH, "Origin": "https://app.example.com"}
    )
    assert deleted.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
