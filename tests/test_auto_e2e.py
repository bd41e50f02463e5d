""".auto end to end: make run's CDN stand-in and the website, Chromium and other Accepts."""

from __future__ import annotations

import json
from collections.abc import Iterator
from io import BytesIO
from typing import Any

import pytest
import requests
from PIL import Image

from tests.support import ROOT, corpus, started_stack
from tests.support.browser import WAIT_MS

pytestmark = pytest.mark.e2e

CASES = {
    case["name"]: case
    for case in json.loads((ROOT / "tests" / "support" / "accept_cases.json").read_text())["cases"]
}
# key → (original, the Accept table's column for it)
ORIGINALS = {
    "auto/photo.jpg": (corpus.jpeg((1600, 1200)), "photo"),
    "auto/alpha.png": (corpus.png_rgba((800, 600)), "alpha_png"),
    "auto/anim.gif": (corpus.animated("GIF", 5, (800, 400)), "animated_gif"),
}
TIMEOUT = 60


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with started_stack(tmp_path_factory, "auto", {}) as started:
        for key, (body, _) in ORIGINALS.items():
            started.put_original(key, body)
        yield started


def stored_keys(stack: Any) -> list[str]:
    listed = stack.s3_client().list_objects_v2(Bucket=stack.bucket)
    return [item["Key"] for item in listed.get("Contents", [])]


def fetched(url: str, accept: str | None) -> requests.Response:
    headers = {} if accept is None else {"Accept": accept}
    response = requests.get(url, headers=headers, timeout=TIMEOUT)
    assert response.status_code == 200, (url, response.status_code, response.text[:200])
    return response


@pytest.mark.parametrize("client", ["Firefox", "Safari 17+", "WebP only", "any", "no header"])
@pytest.mark.parametrize("front", ["cdn", "website"])
def test_each_accept_gets_what_the_rule_says(stack: Any, client: str, front: str) -> None:
    case = CASES[client]
    base = stack.cdn_url if front == "cdn" else stack.public_url
    for key, (_, column) in ORIGINALS.items():
        response = fetched(f"{base}/640x.auto/{key}", case["accept"])
        expected = case[column]
        assert response.headers["Content-Type"] == f"image/{expected}", (key, response.url)
        image = Image.open(BytesIO(response.content))
        assert image.width == 640
        if column == "alpha_png":
            assert image.convert("RGBA").getextrema()[3][0] < 255, "alpha lost"
        if column == "animated_gif":
            assert getattr(image, "n_frames", 1) == 5, "animation lost"
    assert not [key for key in stored_keys(stack) if ".auto" in key]


def test_the_website_answer_varies_on_accept_and_the_cdn_needs_no_vary(stack: Any) -> None:
    chromium = CASES["Chromium"]["accept"]
    key = "auto/photo.jpg"
    miss = requests.get(
        f"{stack.public_url}/320x.auto/{key}",
        headers={"Accept": chromium},
        timeout=TIMEOUT,
        allow_redirects=False,
    )
    assert miss.status_code == 307  # the website's rule, to the API
    api = requests.get(
        miss.headers["Location"],
        headers={"Accept": chromium},
        timeout=TIMEOUT,
        allow_redirects=False,
    )
    assert api.status_code == 307
    assert api.headers["Location"] == f"{stack.public_url}/320x.avif/{key}"
    assert api.headers["Vary"] == "Accept"
    # Through the CDN, once the variant exists, .auto is a plain 200 of the concrete object.
    hit = requests.get(
        f"{stack.cdn_url}/320x.auto/{key}",
        headers={"Accept": chromium},
        timeout=TIMEOUT,
        allow_redirects=False,
    )
    assert hit.status_code == 200
    assert hit.headers["Content-Type"] == "image/avif"
    assert "Vary" not in hit.headers


@pytest.mark.parametrize("front", ["cdn", "website"])
def test_chromium_gets_avif_at_the_right_width(stack: Any, browser: Any, front: str) -> None:
    base = stack.cdn_url if front == "cdn" else stack.public_url
    size = "480x" if front == "cdn" else "400x"  # each its own first view: misses, then hits
    urls = {key: f"{base}/{size}.auto/{key}" for key in ORIGINALS}
    context = browser.new_context()
    try:
        page = context.new_page()
        page.set_default_timeout(WAIT_MS)
        content_types: dict[str, str] = {}

        def record(response: Any) -> None:
            if response.status != 200:
                return
            first = response.request
            while first.redirected_from is not None:
                first = first.redirected_from
            content_types[first.url] = response.headers.get("content-type", "")

        page.on("response", record)
        tags = "".join(f'<img id="i{i}" src="{url}">' for i, url in enumerate(urls.values()))
        page.set_content(f"<!doctype html><body>{tags}</body>")
        page.wait_for_function(
            "() => [...document.images].every((img) => img.complete && img.naturalWidth > 0)"
        )
        widths = page.evaluate("() => [...document.images].map((img) => img.naturalWidth)")
        assert widths == [int(size[:-1])] * len(urls)
        expected = {url: "image/avif" for url in urls.values()}
        expected[urls["auto/anim.gif"]] = "image/webp"  # animations: WebP (negotiate.py)
        assert {url: content_types.get(url) for url in urls.values()} == expected
    finally:
        context.close()
    assert not [key for key in stored_keys(stack) if ".auto" in key]
