"""Routes only: the work lives in chalicelib."""

from __future__ import annotations

from chalice import Chalice, Response

from chalicelib import runtime
from chalicelib.errors import NotAVariantUrl
from chalicelib.http import json_errors, redirect

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
