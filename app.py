"""Routes only: the work lives in chalicelib."""

from __future__ import annotations

from typing import Any

from chalice import Chalice, Response

from chalicelib import runtime
from chalicelib.errors import NotAVariantUrl, OriginNotAllowed, ServiceError
from chalicelib.http import NO_STORE, cors_headers, json_errors, redirect
from chalicelib.uploads import parse_upload_request, uploader_id

app = Chalice(app_name="image-resizer")

# `/resize/{size}/{key+}` would be the natural route, but `chalice local` and
# chalice.test.Client only match routes with as many segments as the path.
# One route per key depth works the same in both and in API Gateway; the
# segments arrive percent-encoded everywhere and are joined and decoded once in
# grammar.parse_key.  Deeper keys get API Gateway's own 403.
MAX_KEY_DEPTH = 32


@app.route("/health")
def health() -> dict[str, str]:
    return {"status": "ok"}


# A browser's HEAD follows the website's 307 here like a GET does.
METHODS = ["GET", "HEAD"]


@app.route("/resize/{size}", methods=METHODS)
@json_errors
def resize_without_key(size: str) -> Response:
    # The website rule sends every miss here, including /<key> with no size.
    raise NotAVariantUrl("URLs look like /<size>/<key>, e.g. /300x200/photos/cat.jpg")


@json_errors
def resize(size: str, **key_segments: str) -> Response:
    segments = [key_segments[f"k{depth}"] for depth in range(len(key_segments))]
    return redirect(runtime.get_service().resize(size, segments))


for _depth in range(1, MAX_KEY_DEPTH + 1):
    _segments = "/".join(f"{{k{i}}}" for i in range(_depth))
    app.route(f"/resize/{{size}}/{_segments}", methods=METHODS, name=f"resize_depth_{_depth}")(
        resize
    )


# The body is parsed as JSON whatever it is labelled: `curl -d` sends form encoding.
UPLOAD_BODY_TYPES = ["application/json", "text/plain", "application/x-www-form-urlencoded"]
UPLOAD_METHODS = "POST, OPTIONS"


@app.route("/uploads", methods=["POST"], content_types=UPLOAD_BODY_TYPES)
def create_upload() -> Response:
    return _with_cors(_create_upload())


@app.route("/uploads", methods=["OPTIONS"])
def uploads_preflight() -> Response:
    return _with_cors(_preflight())


@json_errors
def _create_upload() -> Response:
    request = app.current_request
    uploader = uploader_id(
        runtime.get_settings(), _claims(request.context), request.headers.get("authorization")
    )
    form = runtime.get_uploads().create(uploader, parse_upload_request(request.raw_body))
    return Response(body=form, status_code=201, headers=dict(NO_STORE))


@json_errors
def _preflight() -> Response:
    origin = app.current_request.headers.get("origin")
    if not cors_headers(origin, runtime.get_settings().cors_origins, UPLOAD_METHODS).get(
        "Access-Control-Allow-Origin"
    ):
        raise OriginNotAllowed(f"origin {origin!r} is not in CORS_ORIGINS")
    return Response(body="", status_code=204, headers=dict(NO_STORE))


def _with_cors(response: Response) -> Response:
    try:
        allowed = runtime.get_settings().cors_origins
    except ServiceError:  # misconfigured: the response already says so
        allowed = ()
    origin = app.current_request.headers.get("origin")
    response.headers.update(cors_headers(origin, allowed, UPLOAD_METHODS))
    return response


def _claims(context: dict[str, Any]) -> dict[str, Any] | None:
    """The user pool's claims, present once API Gateway's Cognito authorizer let the call in."""
    claims = (context.get("authorizer") or {}).get("claims")
    return claims if isinstance(claims, dict) else None
