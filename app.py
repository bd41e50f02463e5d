"""Routes only: the work lives in chalicelib."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chalice import Chalice, Response
from chalice.app import SQSEvent

from chalicelib import observe, wiring
from chalicelib.config import EVENTS_QUEUE_NAME
from chalicelib.errors import (
    InvalidUploadRequest,
    NotAVariantUrl,
    NotYetKnown,
    OriginalDeleted,
    OriginNotAllowed,
    ServiceError,
)
from chalicelib.http import (
    NO_STORE,
    browser_errors,
    cors_headers,
    json_errors,
    negotiated_redirect,
    redirect,
)
from chalicelib.resize.grammar import parse_key
from chalicelib.resize.request import NO_SIZE
from chalicelib.routes import MAX_KEY_DEPTH, key_path
from chalicelib.uploads import (
    owns,
    parse_focus_request,
    parse_list_request,
    parse_upload_request,
    uploader_id,
)

if TYPE_CHECKING:
    from chalicelib.originals.metadata import OriginalRecord

app = Chalice(app_name="image-resizer")
# One JSON line per request (docs/operations.md): outermost, so it sees the error responses.
observed = observe.requests(lambda: app.current_request)
observe.configure_logging()
# A variant URL opened in a browser tab lands here: its errors come as a small page.
html_for_tabs = browser_errors(lambda: app.current_request.headers.get("accept"))

# One route per key depth (chalicelib/routes.py says why).


@app.route("/health")
@observed("health")
def health() -> dict[str, str]:
    return {"status": "ok"}


# The body is parsed as JSON whatever it is labelled: `curl -d` sends form encoding.
UPLOAD_BODY_TYPES = ["application/json", "text/plain", "application/x-www-form-urlencoded"]
# A browser's HEAD follows the website's 307 here like a GET does.
METHODS = ["GET", "HEAD"]


@app.route("/resize/{size}", methods=METHODS)
@observed("resize")
@html_for_tabs
@json_errors
def resize_without_key(size: str) -> Response:
    # The website rule sends every miss here, including /<key> with no size.
    raise NotAVariantUrl(NO_SIZE)


def _segments(key_segments: dict[str, str]) -> list[str]:
    return [key_segments[f"k{depth}"] for depth in range(len(key_segments))]


@observed("resize")
@html_for_tabs
@json_errors
def resize(size: str, **key_segments: str) -> Response:
    accept = app.current_request.headers.get("accept")
    answer = wiring.get_service().answer(size, _segments(key_segments), accept)
    if answer.negotiated:
        return negotiated_redirect(answer.url, wiring.get_settings().variant_browser_max_age)
    return redirect(answer.url)


@observed("meta")
def meta(**key_segments: str) -> Response:
    # The demo page (page/) reads it from the website's origin, its 404s too.
    return _with_cors(_meta(**key_segments))


@json_errors
def _meta(**key_segments: str) -> Response:
    """An original's record: its facts and processing state (404 until its event is handled)."""
    key = parse_key(_segments(key_segments))
    observe.note(key=key)
    record = _live_record(key)
    return Response(body=_marked(record.public()), status_code=200, headers=dict(NO_STORE))


def _marked(view: dict[str, Any]) -> dict[str, Any]:
    """A record's view and whether its prefix's policy watermarks it (docs/watermarks.md)."""
    return {**view, "watermarked": wiring.get_service().policies.watermarked(view["key"])}


def _live_record(key: str) -> OriginalRecord:
    record = wiring.get_metadata_store().get(key)
    if record is None:
        raise NotYetKnown(f"nothing is known of {key!r} (yet)")
    if not record.live:
        raise OriginalDeleted(f"{key!r} was deleted")
    return record


FOCUS = "focus"


@observed("meta.focus")
@json_errors
def put_focus(**key_segments: str) -> Response:
    """``PUT /meta/<key>/focus``: the owner sets (or clears) the original's focal point."""
    request = app.current_request
    *segments, last = _segments(key_segments)
    if last != FOCUS:
        raise InvalidUploadRequest(f"PUT /meta/<key>/{FOCUS} is the only change /meta takes")
    key = parse_key(segments)
    observe.note(key=key)
    uploader = uploader_id(
        wiring.get_settings(), _claims(request.context), request.headers.get("authorization")
    )
    focus = parse_focus_request(request.raw_body)
    body = wiring.get_uploads().set_focus(uploader, key, focus)
    return Response(body=body, status_code=200, headers=dict(NO_STORE))


@observed("uploads.delete")
def delete_upload(**key_segments: str) -> Response:
    return _with_cors(_delete_upload(**key_segments))


@observed("uploads.preflight")
def upload_preflight(**_key_segments: str) -> Response:
    return _with_cors(_preflight())


for _depth in range(1, MAX_KEY_DEPTH + 1):
    _path = key_path(_depth)
    app.route(f"/resize/{{size}}/{_path}", methods=METHODS, name=f"resize_depth_{_depth}")(resize)
    app.route(f"/meta/{_path}", methods=["GET"], name=f"meta_depth_{_depth}")(meta)
    if _depth > 1:  # the key, then "focus"
        app.route(
            f"/meta/{_path}",
            methods=["PUT"],
            name=f"meta_focus_depth_{_depth}",
            content_types=UPLOAD_BODY_TYPES,
        )(put_focus)
    app.route(f"/uploads/{_path}", methods=["DELETE"], name=f"delete_depth_{_depth}")(delete_upload)
    app.route(f"/uploads/{_path}", methods=["OPTIONS"], name=f"preflight_depth_{_depth}")(
        upload_preflight
    )


UPLOAD_METHODS = "GET, POST, DELETE, OPTIONS"


@app.route("/uploads", methods=["POST"], content_types=UPLOAD_BODY_TYPES)
@observed("uploads.create")
def create_upload() -> Response:
    return _with_cors(_create_upload())


@app.route("/uploads", methods=["GET"])
@observed("uploads.list")
def list_uploads() -> Response:
    return _with_cors(_list_uploads())


@app.route("/uploads", methods=["OPTIONS"])
@observed("uploads.preflight")
def uploads_preflight() -> Response:
    return _with_cors(_preflight())


@json_errors
def _create_upload() -> Response:
    """A presigned form for a new upload, or with ``"replace": <key>`` for one of the caller's."""
    uploader = _caller()
    upload = parse_upload_request(app.current_request.raw_body)
    if upload.replace is not None:
        _owned(uploader, upload.replace)
    form = wiring.get_uploads().create(uploader, upload)
    return Response(body=form, status_code=201, headers=dict(NO_STORE))


@json_errors
def _delete_upload(**key_segments: str) -> Response:
    """Delete one of the caller's originals: the events pipeline purges and records the rest."""
    uploader = _caller()
    key = parse_key(_segments(key_segments))
    observe.note(key=key)
    _owned(uploader, key)
    wiring.get_uploads().delete(key)
    return Response(body="", status_code=204, headers=dict(NO_STORE))


def _caller() -> str:
    request = app.current_request
    return uploader_id(
        wiring.get_settings(), _claims(request.context), request.headers.get("authorization")
    )


@json_errors
def _list_uploads() -> Response:
    """The caller's own originals, newest first: ``?limit=`` (≤ 100) and ``?cursor=``.

    ``?key=<key>``: the caller's own record of that one original, as the
    owner sees it (camera, time taken, bytes, ETag: what `GET /meta` shows
    nobody). Behind the same authorizer, so it works alike on AWS and locally.
    """
    uploader = _caller()
    query = app.current_request.query_params or {}
    if "key" in query:
        return Response(
            body=_marked(_owned(uploader, query["key"]).owned()),
            status_code=200,
            headers=dict(NO_STORE),
        )
    limit, cursor = parse_list_request(query)
    records, next_cursor = wiring.get_metadata_store().list_for(uploader, limit, cursor)
    usage = wiring.get_metadata_store().usage(uploader)
    body = {
        "uploads": [_marked(record.owned()) for record in records],
        "next_cursor": next_cursor,
        "usage": {"bytes": usage.bytes, "originals": usage.originals},
    }
    return Response(body=body, status_code=200, headers=dict(NO_STORE))


def _owned(uploader: str, key: str) -> OriginalRecord:
    """The caller's own live original at ``key``; someone else's is as unknown as no key."""
    record = wiring.get_metadata_store().get(key)
    prefix = wiring.get_settings().upload_prefix
    if record is None or not owns(prefix, uploader, key, record.uploader):
        raise NotYetKnown(f"nothing of yours is known as {key!r} (yet)")
    if not record.live:
        raise OriginalDeleted(f"{key!r} was deleted")
    return record


@json_errors
def _preflight() -> Response:
    origin = app.current_request.headers.get("origin")
    if not cors_headers(origin, wiring.get_settings().cors_origins, UPLOAD_METHODS).get(
        "Access-Control-Allow-Origin"
    ):
        raise OriginNotAllowed(f"origin {origin!r} is not in CORS_ORIGINS")
    return Response(body="", status_code=204, headers=dict(NO_STORE))


def _with_cors(response: Response) -> Response:
    try:
        allowed = wiring.get_settings().cors_origins
    except ServiceError:  # misconfigured: the response already says so
        allowed = ()
    origin = app.current_request.headers.get("origin")
    response.headers.update(cors_headers(origin, allowed, UPLOAD_METHODS))
    return response


def _claims(context: dict[str, Any]) -> dict[str, Any] | None:
    """The user pool's claims, present once API Gateway's Cognito authorizer let the call in."""
    claims = (context.get("authorizer") or {}).get("claims")
    return claims if isinstance(claims, dict) else None


# Originals' S3 events, through a queue (docs/lifecycle.md).  The packaged
# stack points this at its queue with a concurrency cap and partial-batch
# replies; `make run` drives it with scripts/local/lambda_poller.py.
@app.on_sqs_message(queue=EVENTS_QUEUE_NAME, batch_size=10, maximum_concurrency=5)
def on_original_event(event: SQSEvent) -> dict[str, Any]:
    return wiring.get_lifecycle().handle_batch(event.to_dict()["Records"], event.context)
