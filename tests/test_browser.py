"""The demo page (page/) in real Chromium, against the local stack's real processes.

Debian's ``chromium`` driven by the ``playwright`` wheel (Playwright's own
browser download can't work without internet access).  Without a chromium these tests
skip, and conftest.py says so loudly at the end of the run.  Screenshots go to
``test-output/browser/``.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from io import BytesIO
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import requests
from PIL import Image, ImageOps

from scripts.bench.bomb_files import heic
from scripts.local import samples
from scripts.local.stack import APP_EVENT_HANDLER, EventSettings, free_port
from tests.support import ROOT, corpus, started_stack
from tests.support.browser import WAIT_MS
from tests.support.heif import quadrants

pytestmark = pytest.mark.e2e

SCREENSHOTS = ROOT / "test-output" / "browser"
MAX_BYTES = 1_000_000
UPLOAD_EXPIRY_SECONDS = 10
PHOTO_SIZE = (1600, 1200)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, browser: Any) -> Iterator[Any]:
    """make run's processes with the page, the events poller, a small size cap, short forms."""
    env = {"MAX_SOURCE_BYTES": str(MAX_BYTES), "UPLOAD_EXPIRY_SECONDS": str(UPLOAD_EXPIRY_SECONDS)}
    with started_stack(
        tmp_path_factory,
        "browser",
        env,
        event_handler=APP_EVENT_HANDLER,
        events=EventSettings(visibility_timeout=2),
        page=True,
    ) as started:
        yield started


@pytest.fixture
def open_page(browser: Any, stack: Any) -> Iterator[Callable[..., Any]]:
    """Opens the page in a fresh context (its own cache) at a viewport width and pixel ratio."""
    contexts: list[Any] = []

    def opener(width: int = 1280, scale: float = 1, suffix: str = "") -> Any:
        context = browser.new_context(
            viewport={"width": width, "height": 900}, device_scale_factor=scale
        )
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(WAIT_MS)
        page.goto(stack.page_url + suffix)
        page.wait_for_selector("body[data-ready='true']")
        return page

    yield opener
    for context in contexts:
        context.close()


def sign_in(page: Any, token: str) -> None:
    page.get_by_label("Upload token").fill(token)
    page.get_by_role("button", name="Sign in").click()


def signed_in(page: Any, stack: Any) -> Any:
    sign_in(page, stack.upload_token)
    page.wait_for_selector("#upload:not([hidden])")
    return page


def upload(page: Any, path: Path, ready_state: str = "ready") -> str:
    """Choose ``path`` in the file input; wait for the item's state; its key."""
    page.get_by_label("Choose an image, or drop it here").set_input_files(str(path))
    page.wait_for_selector(f"#item-state[data-state='{ready_state}']")
    return key_in_hash(page)


def key_in_hash(page: Any) -> str:
    match = re.fullmatch(r"#key=(.+)", page.evaluate("location.hash"))
    assert match, page.evaluate("location.hash")
    return str(page.evaluate("decodeURIComponent", match.group(1)))


def wait_for_gallery(page: Any) -> list[dict[str, Any]]:
    """Every gallery figure settled (loaded or failed); what each image shows."""
    page.wait_for_function(
        "() => { const f = [...document.querySelectorAll('#gallery figure')];"
        " return f.length > 0 && f.every((e) => e.dataset.result !== 'loading'); }"
    )
    return list(
        page.evaluate(
            """() => [...document.querySelectorAll('#gallery figure')].map((figure) => {
                const img = figure.querySelector('img');
                const box = img.getBoundingClientRect();
                return {kind: figure.dataset.kind, result: figure.dataset.result,
                        token: figure.dataset.token, src: img.currentSrc,
                        natural: [img.naturalWidth, img.naturalHeight],
                        shown: [box.width, box.height],
                        caption: figure.querySelector('figcaption').innerText};
            })"""
        )
    )


def broken_images(page: Any) -> list[str]:
    """Images a user could see that did not load: a broken-image icon."""
    return list(
        page.evaluate(
            """() => [...document.images].filter((img) => {
                const style = getComputedStyle(img);
                const visible = img.getClientRects().length > 0 && style.visibility !== 'hidden';
                return visible && !(img.complete && img.naturalWidth > 0);
            }).map((img) => img.currentSrc || img.src)"""
        )
    )


def expected_pixels(token: str, original: tuple[int, int]) -> tuple[int, int]:
    """The variant's pixels by the URL grammar (docs/urls.md), original larger than the box."""
    match = re.fullmatch(r"(\d*)x(\d*)(-cover(?:-[a-z]+)?)?(?:@(\d)x)?(?:\.\w+)?", token)
    assert match, token
    width, height, cover, ratio = match.groups()
    scale = int(ratio or 1)
    if cover:
        return int(width) * scale, int(height) * scale
    assert width, f"only width boxes are used here: {token}"
    assert not height, f"only width boxes are used here: {token}"
    return int(width) * scale, round(original[1] * int(width) * scale / original[0])


def density_of(token: str) -> int:
    found = re.search(r"@(\d)x", token)
    return int(found.group(1)) if found else 1


def fetched(url: str) -> tuple[Image.Image, str]:
    response = requests.get(url, timeout=60)
    assert response.status_code == 200, (url, response.text[:200])
    return corpus.opened(response.content), response.headers["Content-Type"]


def check_sizes(images: list[dict[str, Any]], original: tuple[int, int], slot: int) -> None:
    """Each image has the pixels its token says, and reports them in CSS pixels."""
    for shown in images:
        token = shown["token"]
        pixels = expected_pixels(token, original)
        image, content_type = fetched(shown["src"])
        assert abs(image.width - pixels[0]) <= 1, shown
        assert abs(image.height - pixels[1]) <= 1, shown
        assert content_type == corpus.MIME.get(image.format, "?"), (shown, content_type)
        # naturalWidth is in CSS pixels: the file's pixels over the candidate's density.
        if shown["kind"] == "responsive":
            density = int(token.split("x")[0]) / slot
        else:
            density = density_of(token)
        natural = (image.width / density, image.height / density)
        assert abs(shown["natural"][0] - natural[0]) <= 1, shown
        assert abs(shown["natural"][1] - natural[1]) <= 1, shown


def photo_file(tmp_path: Path, name: str, body: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(body)
    return path


def screenshot(page: Any, name: str, *, full_page: bool = True) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path


def meta(stack: Any, key: str) -> requests.Response:
    return requests.get(f"{stack.api_url}/meta/{quote(key)}", timeout=30)


def owned_meta(stack: Any, key: str) -> requests.Response:
    """The owner's view of one record, which has the ETag (GET /meta shows it nobody)."""
    return requests.get(
        f"{stack.api_url}/uploads",
        params={"key": key},
        headers={"Authorization": f"Bearer {stack.upload_token}"},
        timeout=30,
    )


def eventually(check: Callable[[], bool], what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def originals(stack: Any) -> set[str]:
    listed = stack.s3_client().list_objects_v2(Bucket=stack.originals_bucket)
    return {item["Key"] for item in listed.get("Contents", [])}


def colours_at_quarters(image: Image.Image) -> list[tuple[int, ...]]:
    """The colour at the middle of each quadrant: orientation and content show there."""
    rgb = image.convert("RGB")
    points = [(0.25, 0.25), (0.75, 0.25), (0.25, 0.75), (0.75, 0.75)]
    return [rgb.getpixel((int(rgb.width * x), int(rgb.height * y))) for x, y in points]


def close(found: list[tuple[int, ...]], wanted: list[tuple[int, ...]]) -> bool:
    return all(
        max(abs(a - b) for a, b in zip(f, w, strict=True)) <= 60
        for f, w in zip(found, wanted, strict=True)
    )


def shown_colours(page: Any, kind: str) -> list[tuple[int, ...]]:
    """What the browser painted for one gallery image, from a screenshot of it."""
    selector = f"#gallery figure[data-kind='{kind}'] img"
    # Until it has loaded, its frame shows the placeholder instead.
    page.wait_for_function(
        "(s) => { const img = document.querySelector(s); return img && img.complete"
        " && img.naturalWidth > 0 && img.classList.contains('loaded'); }",
        arg=selector,
    )
    png = page.locator(selector).first.screenshot()
    return colours_at_quarters(Image.open(BytesIO(png)))


@pytest.fixture(scope="module")
def uploaded_photo(browser: Any, stack: Any, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A 1600×1200 photo uploaded once through the page; its key."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = context.new_page()
        page.set_default_timeout(WAIT_MS)
        page.goto(stack.page_url)
        page.wait_for_selector("body[data-ready='true']")
        signed_in(page, stack)
        path = tmp_path_factory.mktemp("photos") / "sea view.jpg"
        path.write_bytes(corpus.jpeg(PHOTO_SIZE))
        key = upload(page, path)
        wait_for_gallery(page)
        return key
    finally:
        context.close()


def test_the_page_is_served_by_the_website_with_its_types(stack: Any) -> None:
    for name, kind in (
        ("index.html", "text/html; charset=utf-8"),
        ("app.js", "text/javascript; charset=utf-8"),
        ("style.css", "text/css; charset=utf-8"),
        ("config.json", "application/json; charset=utf-8"),
    ):
        response = requests.get(f"{stack.public_url}/{name}", timeout=30)
        assert response.status_code == 200, name
        assert response.headers["Content-Type"] == kind
        assert response.headers["Cache-Control"] == "no-cache"
    config = requests.get(f"{stack.public_url}/config.json", timeout=30).json()
    assert (config["api_url"], config["public_url"]) == (stack.api_url, stack.public_url)


def test_a_photo_uploaded_by_file_input_shows_at_every_size(
    open_page: Callable[..., Any], stack: Any, tmp_path: Path
) -> None:
    page = signed_in(open_page(1280, 1), stack)
    path = photo_file(tmp_path, "garden (1).jpg", corpus.jpeg(PHOTO_SIZE))
    key = upload(page, path)
    assert "Uploaded “garden (1).jpg”" in page.locator("#upload-status").inner_text()
    assert page.locator("#upload-progress").get_attribute("value") == "100"
    assert page.locator("[data-fact='size']").inner_text() == "1600×1200 px (upright)"
    images = wait_for_gallery(page)
    assert [shown["kind"] for shown in images] == [
        "responsive", "picture", "cover", "cover", "cover", "retina"
    ]  # fmt: skip
    assert all(shown["result"] in ("hit", "miss") for shown in images), images
    check_sizes(images, PHOTO_SIZE, slot=640)
    assert broken_images(page) == []
    by_kind = {shown["kind"]: shown for shown in images}
    # <picture> picks AVIF in Chromium.
    assert by_kind["picture"]["token"] == "320x.avif"
    # Presets were made on upload (hits), .auto ones in every format a browser can be
    # given: the <picture>'s 320x.avif is 320x.auto's AVIF.  A cover nobody asked for
    # yet (.auto, not a preset) is a miss.
    assert by_kind["responsive"]["token"] == "640x.auto"
    assert by_kind["responsive"]["result"] == "hit", by_kind["responsive"]
    assert by_kind["picture"]["result"] == "hit", by_kind["picture"]
    cover = by_kind["cover"]
    assert cover["token"] == "120x160-cover-focus.auto"
    assert cover["result"] == "miss", cover
    assert re.search(r"miss in \d+ ms", cover["caption"])
    # It is listed among the user's uploads.
    assert page.locator(f"#upload-list button[data-key='{key}']").count() == 1
    screenshot(page, "upload-desktop-1280")
    # Once made, the same size is a hit.
    page.reload()
    page.wait_for_selector("#item-state[data-state='ready']")
    again = {shown["kind"]: shown for shown in wait_for_gallery(page)}
    assert again["cover"]["result"] == "hit", again["cover"]


@pytest.mark.parametrize(
    ("width", "scale", "slot", "responsive", "picture"),
    [
        (390, 1, 320, "320x.auto", "320x.avif"),
        (390, 2, 320, "640x.auto", "320x@2x.avif"),
        (1280, 1, 640, "640x.auto", "320x.avif"),
        (1280, 2, 640, "1280x.auto", "320x@2x.avif"),
    ],
)
def test_srcset_picks_the_width_for_the_viewport_and_pixel_ratio(
    open_page: Callable[..., Any],
    uploaded_photo: str,
    width: int,
    scale: int,
    slot: int,
    responsive: str,
    picture: str,
) -> None:
    page = open_page(width, scale, f"#key={quote(uploaded_photo, safe='')}")
    page.wait_for_selector("#item-state[data-state='ready']")
    images = wait_for_gallery(page)
    by_kind = {shown["kind"]: shown for shown in images}
    assert by_kind["responsive"]["token"] == responsive
    # The layout gives the image the slot its `sizes` promised the browser.
    assert by_kind["responsive"]["shown"][0] == slot
    assert by_kind["picture"]["token"] == picture
    covers = [shown["token"] for shown in images if shown["kind"] == "cover"]
    assert covers == (
        ["160x160-cover-focus.auto", "240x135-cover-focus.auto", "120x160-cover-focus.auto"]
        if scale == 1
        else [
            "160x160-cover-focus@2x.auto",
            "240x135-cover-focus@2x.auto",
            "120x160-cover-focus@2x.auto",
        ]
    )
    check_sizes(images, PHOTO_SIZE, slot)
    assert broken_images(page) == []
    # Nothing wider than the screen: no sideways scrolling on a phone.
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    screenshot(page, f"gallery-{width}px-{scale}x")


def test_an_exif_rotated_phone_photo_shows_upright(
    open_page: Callable[..., Any], stack: Any, tmp_path: Path
) -> None:
    body = corpus.jpeg((1200, 900), orientation=6)  # stored landscape, shown portrait
    page = signed_in(open_page(390, 2), stack)
    upload(page, photo_file(tmp_path, "phone.jpg", body))
    assert page.locator("[data-fact='size']").inner_text() == "900×1200 px (upright)"
    images = wait_for_gallery(page)
    upright = ImageOps.exif_transpose(corpus.opened(body))
    check_sizes(images, upright.size, slot=320)
    for shown in images:
        if shown["kind"] != "cover":
            assert shown["natural"][1] > shown["natural"][0], shown
    assert close(shown_colours(page, "responsive"), colours_at_quarters(upright))
    assert close(shown_colours(page, "picture"), colours_at_quarters(upright))


def test_a_heic_portrait_from_a_phone_shows_upright_at_every_size(
    open_page: Callable[..., Any], stack: Any, tmp_path: Path
) -> None:
    # Chromium here has no HEIF codec: the file has no type, and the page names it by extension.
    body = heic(picture=quadrants((1200, 900)), exif=_orientation_6(), quality=90)
    page = signed_in(open_page(390, 2), stack)
    upload(page, photo_file(tmp_path, "IMG_0001.HEIC", body))
    assert page.locator("[data-fact='format']").inner_text() == "HEIF"
    assert page.locator("[data-fact='size']").inner_text() == "900×1200 px (upright)"
    images = wait_for_gallery(page)
    upright = quadrants((1200, 900)).transpose(Image.Transpose.ROTATE_270)
    check_sizes(images, upright.size, slot=320)
    assert close(shown_colours(page, "responsive"), colours_at_quarters(upright))
    assert broken_images(page) == []


def _orientation_6() -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6
    return exif.tobytes()


def test_a_replaced_image_shows_its_new_content_after_the_purge(
    open_page: Callable[..., Any], stack: Any, tmp_path: Path
) -> None:
    first = corpus.jpeg(PHOTO_SIZE)
    page = signed_in(open_page(1280, 1), stack)
    key = upload(page, photo_file(tmp_path, "replaced.jpg", first))
    wait_for_gallery(page)
    before = owned_meta(stack, key).json()["etag"]
    assert close(shown_colours(page, "responsive"), colours_at_quarters(corpus.opened(first)))
    # The same key, new bytes (an operator's overwrite): the events pipeline purges
    # the old variants and makes the presets again.
    second = corpus.encode(ImageOps.mirror(corpus.quadrants(PHOTO_SIZE)), "JPEG", quality=95)
    stack.put_original(key, second, "image/jpeg")
    eventually(
        lambda: owned_meta(stack, key).json().get("etag") not in (None, before), "the new record"
    )
    wanted = colours_at_quarters(corpus.opened(second))
    # The same browser, whose cache holds the old variants for a day (max-age):
    # the page sees the new ETag and fetches its sizes past the cache.
    same_browser = page
    same_browser.reload()
    # A new visit (a fresh cache, not signed in: a stranger) at another width too.
    new_visit = open_page(390, 2, f"#key={quote(key, safe='')}")
    for name, shown, slot in (("same browser", same_browser, 640), ("new", new_visit, 320)):
        shown.wait_for_selector("#item-state[data-state='ready']")
        # Nobody is shown an ETag; the owner sees the file size, a stranger does not.
        assert shown.locator("[data-fact='etag']").count() == 0
        owner_sees = 1 if shown is same_browser else 0
        assert shown.locator("[data-fact='file size']").count() == owner_sees
        images = wait_for_gallery(shown)
        for kind in ("responsive", "picture", "cover", "retina"):
            assert close(shown_colours(shown, kind), wanted), (name, kind, images)
        check_sizes(images, PHOTO_SIZE, slot=slot)
    # The list of uploads shows the new picture too (its thumbnail is a preset).
    thumbnail = same_browser.locator(f"#upload-list button[data-key='{key}'] img.loaded")
    thumbnail.wait_for()
    painted = colours_at_quarters(Image.open(BytesIO(thumbnail.screenshot())))
    assert close(painted, wanted)


def test_a_deleted_image_shows_the_error_state(
    open_page: Callable[..., Any], stack: Any, tmp_path: Path
) -> None:
    page = signed_in(open_page(1280, 1), stack)
    key = upload(page, photo_file(tmp_path, "deleted.jpg", corpus.jpeg((800, 600))))
    wait_for_gallery(page)
    stack.s3_client().delete_object(Bucket=stack.originals_bucket, Key=key)
    eventually(lambda: meta(stack, key).status_code == 410, "the delete to be handled")
    page.reload()
    page.wait_for_selector("#item-state[data-state='deleted']")
    assert "deleted" in page.locator("#item-state").inner_text()
    assert page.locator("#gallery figure").count() == 0
    assert page.locator(f"#upload-list button[data-key='{key}']").count() == 0
    assert broken_images(page) == []


def test_a_pdf_renamed_jpg_shows_why_it_was_rejected(
    open_page: Callable[..., Any], stack: Any, tmp_path: Path
) -> None:
    pdf = b"%PDF-1.4\n1 0 obj << /Type /MetadataStore >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
    page = signed_in(open_page(390, 1), stack)
    key = upload(page, photo_file(tmp_path, "scan.jpg", pdf), ready_state="rejected")
    assert meta(stack, key).json()["error_code"] == "unsupported_format"
    error = page.locator("#item-error")
    assert error.is_visible()
    assert "not an image the service can read" in error.inner_text()
    assert page.locator("#gallery figure").count() == 0
    assert (
        "be used: not an image"
        in page.locator(f"#upload-list button[data-key='{key}']").inner_text()
    )
    assert broken_images(page) == []
    screenshot(page, "rejected-390px")


def test_an_over_limit_file_is_refused_before_any_byte_is_sent(
    open_page: Callable[..., Any], stack: Any, tmp_path: Path
) -> None:
    before = originals(stack)
    page = signed_in(open_page(1280, 1), stack)
    big = photo_file(tmp_path, "huge.jpg", b"\xff" * (MAX_BYTES + 1))
    page.get_by_label("Choose an image, or drop it here").set_input_files(str(big))
    error = page.locator("#upload-error")
    error.wait_for(state="visible")
    assert error.inner_text() == (
        "Can\u2019t upload “huge.jpg”: "
        f"the file is {MAX_BYTES + 1} bytes, over the limit of {MAX_BYTES}."
    )
    assert page.locator("#upload-progress").is_hidden()
    assert originals(stack) == before
    assert broken_images(page) == []


def test_an_expired_upload_form_reads_as_a_sentence(
    open_page: Callable[..., Any], stack: Any, tmp_path: Path
) -> None:
    before = originals(stack)
    # The page-side hook waits past the form's expiry before posting the file.
    delay = (UPLOAD_EXPIRY_SECONDS + 3) * 1000
    page = signed_in(open_page(1280, 1, f"?upload_delay_ms={delay}"), stack)
    path = photo_file(tmp_path, "late.jpg", corpus.jpeg((400, 300)))
    page.get_by_label("Choose an image, or drop it here").set_input_files(str(path))
    error = page.locator("#upload-error")
    error.wait_for(state="visible")
    assert error.inner_text() == (
        f"The upload form expired before the file was sent (a form is valid for "
        f"{UPLOAD_EXPIRY_SECONDS} seconds). Choose the file again to get a new form."
    )
    assert originals(stack) == before
    assert page.locator("#item").is_hidden()


def test_a_wrong_token_is_refused_with_the_apis_words(
    open_page: Callable[..., Any], stack: Any
) -> None:
    page = open_page(390, 1)
    sign_in(page, "revoked-token")
    error = page.locator("#sign-in-error")
    error.wait_for(state="visible")
    # make run verifies sign-in tokens too: a token that is not the dev token is taken for one.
    assert error.inner_text() == "That token was refused: the sign-in token is not valid"
    assert page.locator("#upload").is_hidden()
    sign_in(page, stack.upload_token)
    page.wait_for_selector("#upload:not([hidden])")
    assert error.is_hidden()


def test_a_deployed_pages_config_hides_the_token_form_and_sends_the_bare_id_token(
    open_page: Callable[..., Any], stack: Any
) -> None:
    # A deployed page's config (publish_page.stack_config): the provider's button only, and
    # the bare ID token API Gateway's Cognito authorizer reads.
    page = open_page(1280, 1)
    config = requests.get(f"{stack.public_url}/config.json", timeout=30).json()
    page.route(
        "**/config.json",
        lambda route: route.fulfill(
            json={**config, "sign_in": "provider", "authorization_scheme": ""}
        ),
    )
    page.evaluate("sessionStorage.setItem('image-resizer-token', 'eyJ.header.token')")
    sent: list[str | None] = []
    page.on(
        "request",
        lambda request: (
            sent.append(request.headers.get("authorization"))
            if request.url.startswith(f"{stack.api_url}/uploads") and request.method == "GET"
            else None
        ),
    )
    page.reload()
    page.wait_for_selector("body[data-ready='true']")
    assert page.locator("#sign-in-form").is_hidden()
    assert page.locator("#provider-sign-in").is_visible()
    page.locator("#sign-in-error").wait_for(state="visible")  # the dev API refuses it
    assert sent
    assert set(sent) == {"eyJ.header.token"}
    # A stack given its own pool publishes no issuer: the page says it has no sign-in.
    page.unroute("**/config.json")
    page.route(
        "**/config.json",
        lambda route: route.fulfill(
            json={**config, "sign_in": "provider", "authorization_scheme": "", "oidc_issuer": ""}
        ),
    )
    page.evaluate("sessionStorage.clear()")
    page.reload()
    page.wait_for_selector("body[data-ready='true']")
    assert page.locator("#provider-sign-in").count() == 0
    assert page.locator("#sign-in-error").inner_text().startswith("This page has no sign-in")


def test_s3s_own_refusals_read_as_sentences(open_page: Callable[..., Any], stack: Any) -> None:
    # S3's XML, as the local S3 (post_policy.js) answers a form POST, into the page's words.
    form = requests.post(
        f"{stack.api_url}/uploads",
        json={"filename": "a.jpg", "content_type": "image/jpeg"},
        headers={"Authorization": f"Bearer {stack.upload_token}"},
        timeout=30,
    ).json()
    page = open_page(390, 1)
    for body, changed, wanted in (
        (b"\xff" * (MAX_BYTES + 1), {}, "The file is larger than the 977 KB an upload may be."),
        (b"", {}, "The file is empty."),
        (
            b"\xff",
            {"key": "uploads/someone-else/1/a.jpg"},
            "The storage refused the upload: Invalid according to Policy: Policy Condition failed:",
        ),
    ):
        fields = {**form["upload"]["fields"], **changed}
        refused = requests.post(
            form["upload"]["url"], data=fields, files={"file": ("a.jpg", body)}, timeout=30
        )
        assert refused.status_code in (400, 403), refused.text
        sentence = page.evaluate(
            "([status, xml, form]) => s3Sentence(status, xml, form)",
            [refused.status_code, refused.text, form],
        )
        assert sentence.startswith(wanted), sentence


def test_a_size_that_fails_to_load_shows_a_sentence_not_a_broken_image(
    open_page: Callable[..., Any], uploaded_photo: str
) -> None:
    page = open_page(1280, 1)
    # The network drops the AVIF (a flaky connection, a proxy that refuses the type).
    page.context.route("**/320x.avif/**", lambda route: route.abort())
    page.evaluate("key => { location.hash = 'key=' + encodeURIComponent(key); }", uploaded_photo)
    page.wait_for_selector("#item-state[data-state='ready']")
    by_kind = {shown["kind"]: shown for shown in wait_for_gallery(page)}
    assert by_kind["picture"]["result"] == "error"
    assert "This size could not be loaded" in by_kind["picture"]["caption"]
    assert by_kind["responsive"]["result"] == "hit"
    assert broken_images(page) == []


@pytest.fixture
def make_run(tmp_path: Path, browser: Any) -> Iterator[list[str]]:
    """`make run` itself (scripts/local/stack.py main) on free ports; the lines it prints."""
    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "LOCAL_DATA_DIR": str(tmp_path / "local"),
        **{
            name: str(free_port())
            for name in ("S3_PORT", "API_PORT", "AWS_PORT", "CDN_PORT", "OIDC_PORT")
        },
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "scripts.local.stack"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    lines: list[str] = []
    assert process.stdout is not None
    reader = threading.Thread(target=lambda: lines.extend(process.stdout), daemon=True)
    reader.start()
    try:
        yield lines
    finally:
        process.send_signal(signal.SIGTERM)  # it stops every server it started
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def test_a_new_user_opens_the_page_make_run_prints_and_sees_an_upload_at_many_sizes(
    make_run: list[str], browser: Any, tmp_path: Path
) -> None:
    def page_line() -> bool:
        return any(line.startswith("Page: ") for line in make_run)

    eventually(page_line, "make run to print its Page: line")
    url = next(line for line in make_run if line.startswith("Page: ")).split()[1]
    account = re.compile(r"\buser (\S+), password (\S+)")
    eventually(lambda: any(map(account.search, make_run)), "make run to print its user")
    user, password = next(filter(None, map(account.search, make_run))).groups()
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    try:
        page = context.new_page()
        page.set_default_timeout(WAIT_MS)
        page.goto(url)
        # Through the local OpenID provider's login form (docs/local.md#sign-in).
        page.get_by_role("button", name="Log in with your account").click()
        page.get_by_label("User name").fill(user)
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_selector("#upload:not([hidden])")
        upload(page, photo_file(tmp_path, "first photo.jpg", samples.photo(PHOTO_SIZE)))
        images = wait_for_gallery(page)
        assert len(images) == 6
        assert all(shown["result"] in ("hit", "miss") for shown in images), images
        assert broken_images(page) == []
        # The screenshot in docs/page.md (docs/page.png) is the first of these.
        screenshot(page, "make-run-1280", full_page=False)
        screenshot(page, "make-run-1280-full")
        page.set_viewport_size({"width": 390, "height": 844})
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        screenshot(page, "make-run-390-full")
    finally:
        context.close()


def test_an_avif_dropped_on_the_page_shows_without_asking_for_its_own_format(
    open_page: Callable[..., Any], stack: Any
) -> None:
    # Dropped, not chosen; and AVIF, so the AVIF source must leave the format out
    # (asking for an original's own format is only a redirect to the size without it).
    body = corpus.in_format("AVIF", (800, 600))
    page = signed_in(open_page(1280, 1), stack)
    page.evaluate(
        """(bytes) => {
            const file = new File([new Uint8Array(bytes)], 'dropped.avif', {type: 'image/avif'});
            const transfer = new DataTransfer();
            transfer.items.add(file);
            const zone = document.getElementById('drop-zone');
            for (const type of ['dragover', 'drop']) {
                zone.dispatchEvent(new DragEvent(type, {dataTransfer: transfer, bubbles: true}));
            }
        }""",
        list(body),
    )
    page.wait_for_selector("#item-state[data-state='ready']")
    assert page.locator("[data-fact='format']").inner_text() == "AVIF"
    by_kind = {shown["kind"]: shown for shown in wait_for_gallery(page)}
    assert by_kind["picture"]["token"] == "320x"
    assert all(shown["result"] in ("hit", "miss") for shown in by_kind.values()), by_kind
    check_sizes(list(by_kind.values()), (800, 600), slot=640)
    assert broken_images(page) == []


def test_placeholders_are_painted_before_the_images_arrive(
    browser: Any, stack: Any, uploaded_photo: str
) -> None:
    record = meta(stack, uploaded_photo).json()
    held: list[Any] = []
    releasing = False

    def hold_images(route: Any) -> None:
        if route.request.resource_type == "image" and not releasing:
            held.append(route)  # answered only once the placeholders were seen
        else:
            route.continue_()

    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        context.route("**/*", hold_images)
        page = context.new_page()
        page.set_default_timeout(WAIT_MS)
        page.goto(f"{stack.page_url}#key={quote(uploaded_photo, safe='')}")
        page.wait_for_function(
            "() => document.querySelectorAll('#gallery .frame[data-placeholder=blurhash]').length"
            " === document.querySelectorAll('#gallery .frame').length"
            " && document.querySelectorAll('#gallery .frame').length > 0"
        )
        painted = page.evaluate(
            """() => [...document.querySelectorAll('#gallery .frame')].map((frame) => {
                const style = getComputedStyle(frame);
                return {image: style.backgroundImage, colour: style.backgroundColor,
                        loaded: frame.querySelector('img').classList.contains('loaded'),
                        box: [frame.clientWidth, frame.clientHeight]};
            })"""
        )
        red, green, blue = (int(record["dominant_color"][i : i + 2], 16) for i in (1, 3, 5))
        for frame in painted:
            assert frame["image"].startswith('url("data:image/png'), frame
            assert frame["colour"] == f"rgb({red}, {green}, {blue})", frame
            assert not frame["loaded"], frame
            assert min(frame["box"]) > 0, frame
        assert held, "no image request was held back"
        releasing = True
        for route in held:
            route.continue_()
        wait_for_gallery(page)
        left = page.evaluate(
            "() => [...document.querySelectorAll('#gallery figure[data-result=hit],"
            " #gallery figure[data-result=miss]')].map((f) => f.querySelector('.frame')"
            ".dataset.placeholder)"
        )
        assert left
        assert set(left) == {"gone"}
    finally:
        context.close()


# Chromium's layout-shift entries from the page's start (the Layout Instability API):
# for each, whether any node it moved is an image's box (the gallery, the size preview).
LAYOUT_SHIFTS = """() => new Promise((resolve) => {
    new PerformanceObserver((list, observer) => {
        observer.disconnect();
        resolve(list.getEntries().map((e) => ({value: e.value, input: e.hadRecentInput,
            images: e.sources.some((s) => s.node && s.node.nodeType === 1
                && s.node.closest('#gallery, .preview-frame') !== null),
            moved: e.sources.map((s) => s.node && s.node.nodeType === 1
                ? `${s.node.tagName}#${s.node.id}.${s.node.className}` : 'text')})));
    }).observe({type: 'layout-shift', buffered: true});
    setTimeout(() => resolve([]), 1000);
})"""
# Ask for the picked size and read the preview's box in the same task, before it loads.
PICK_AND_MEASURE = """() => {
    document.querySelector('#size-picker button[type=submit]').click();
    const box = document.getElementById('pick-preview').getBoundingClientRect();
    return [box.width, box.height];
}"""


@pytest.mark.parametrize(("width", "scale"), [(390, 2), (1280, 1)])
def test_a_person_uses_replaces_and_deletes_a_photo_from_the_page(
    open_page: Callable[..., Any], stack: Any, tmp_path: Path, width: int, scale: float
) -> None:
    page = signed_in(open_page(width, scale), stack)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    key = upload(page, photo_file(tmp_path, f"mine-{width}.jpg", corpus.jpeg(PHOTO_SIZE)))
    wait_for_gallery(page)
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    # Written for people: no ETag, dates as this reader writes them, the picture first.
    assert page.locator("[data-fact='etag']").count() == 0
    assert not re.search(r"\d{4}-\d\d-\d\dT", page.locator("#item").inner_text())
    picture_top = page.locator("#gallery").bounding_box()["y"]
    facts_top = page.locator("#item-facts").bounding_box()["y"]
    assert (picture_top < facts_top) if width < 960 else True
    if width < 960:
        assert picture_top < 900  # on a phone, above the fold

    # A custom size: the URL shown, the picture made at that size, its box reserved.
    page.get_by_label("Width (px)").fill("300")
    page.get_by_label("Height (px, optional)").fill("200")
    page.get_by_label("Fit").select_option("cover")
    page.get_by_label("Format").select_option("png")
    reserved = page.evaluate(PICK_AND_MEASURE)
    page.locator("#pick-preview[data-result='loaded']").wait_for()
    natural = "(img) => [img.naturalWidth, img.naturalHeight]"
    assert page.locator("#pick-preview").evaluate(natural) == [300, 200]
    loaded = page.locator("#pick-preview").evaluate(
        "(img) => [img.getBoundingClientRect().width, img.getBoundingClientRect().height]"
    )
    assert reserved == loaded  # the box was the picture's size before a byte arrived
    url = page.get_by_label("Address of this size").input_value()
    assert url.endswith(f"/300x200-cover.png/{quote(key)}")
    assert 'width="300" height="200"' in page.get_by_label("HTML for a page").input_value()
    # Nothing on screen moved as the record and the pictures arrived (shifts right
    # after the person's own input, such as choosing the file, don't count).
    shifts = page.evaluate(LAYOUT_SHIFTS)
    assert [shift for shift in shifts if shift["images"]] == [], shifts
    assert sum(shift["value"] for shift in shifts if not shift["input"]) < 0.01, shifts

    # Copy the address and open it: the picture at that size, in that format.
    page.get_by_role("button", name="Copy address").click()
    page.get_by_text("Address copied.").wait_for()
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied == url
    image, content_type = fetched(copied)
    assert (image.size, content_type) == ((300, 200), "image/png")
    screenshot(page, f"owner-{width}", full_page=width < 960)

    # Replace: same key, new pixels everywhere.
    portrait = corpus.encode(ImageOps.mirror(corpus.quadrants((600, 900))), "PNG")
    page.get_by_label("Replace with another photo…").set_input_files(
        str(photo_file(tmp_path, "portrait.png", portrait))
    )
    page.wait_for_selector("#manage-status:has-text('Replaced with')")
    assert key_in_hash(page) == key
    assert page.locator("[data-fact='size']").inner_text() == "600×900 px (upright)"
    images = wait_for_gallery(page)
    assert close(shown_colours(page, "responsive"), colours_at_quarters(corpus.opened(portrait)))
    assert all(shown["result"] in ("hit", "miss") for shown in images), images
    entries = page.locator("#upload-list button[data-key]").evaluate_all(
        "(buttons) => buttons.map((b) => b.dataset.key)"
    )
    assert entries.count(key) == 1  # one entry per key

    # Delete: asked first; "Cancel" keeps it, "OK" deletes it and every size.
    page.once("dialog", lambda dialog: dialog.dismiss())
    page.get_by_role("button", name="Delete this photo").click()
    assert owned_meta(stack, key).status_code == 200
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Delete this photo").click()
    page.wait_for_selector("#item-state[data-state='deleted']")
    eventually(lambda: meta(stack, key).status_code == 410, "the record to say deleted")
    page.wait_for_selector(f"#upload-list button[data-key='{key}']", state="detached")
    assert requests.get(copied, timeout=30).status_code == 404

    # Someone not signed in sees no way to replace or delete.
    stranger = open_page(width, scale, f"#key={quote(key, safe='')}")
    stranger.wait_for_selector("#item-state[data-state='deleted']")
    assert stranger.locator("#manage").is_hidden()


def tab_to(page: Any, element_id: str, presses: int = 80) -> None:
    """Press Tab until ``element_id`` has the focus: it is reachable by keyboard, in order."""
    for _ in range(presses):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == element_id:
            return
    raise AssertionError(f"#{element_id} never took the focus in {presses} presses of Tab")


def test_a_person_with_only_a_keyboard_signs_in_uploads_picks_a_size_and_deletes(
    open_page: Callable[..., Any], stack: Any, tmp_path: Path
) -> None:
    page = open_page(1280, 1)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    tab_to(page, "token")
    page.keyboard.type(stack.upload_token)
    page.keyboard.press("Enter")
    page.wait_for_selector("#upload:not([hidden])")

    # A listener turns Chromium's file-chooser interception on, and Playwright sends
    # that without waiting for it: subscribed only around the key press, a loaded
    # machine let the press open an unintercepted chooser, and no event came.
    page.on("filechooser", lambda _chooser: None)
    tab_to(page, "file")
    with page.expect_file_chooser() as chooser:
        page.keyboard.press("Space")
    chooser.value.set_files(str(photo_file(tmp_path, "keys.jpg", corpus.jpeg(PHOTO_SIZE))))
    page.wait_for_selector("#item-state[data-state='ready']")
    key = key_in_hash(page)

    tab_to(page, "pick-width")
    page.keyboard.press("Control+A")
    page.keyboard.type("240")
    page.keyboard.press("Enter")
    page.locator("#pick-preview[data-result='loaded']").wait_for()
    assert page.locator("#pick-preview").evaluate("(img) => img.naturalWidth") == 240
    assert page.locator("#pick-preview").get_attribute("alt") == "keys.jpg at 240×180"

    tab_to(page, "copy-url")
    page.keyboard.press("Enter")
    page.get_by_text("Address copied.").wait_for()
    assert page.evaluate("navigator.clipboard.readText()").endswith(f"/240x.auto/{quote(key)}")

    tab_to(page, "delete-photo")
    page.once("dialog", lambda dialog: dialog.accept())
    page.keyboard.press("Enter")
    page.wait_for_selector("#item-state[data-state='deleted']")
    # The focus goes to what happened, which a screen reader then reads.
    assert page.evaluate("document.activeElement.id") == "item-state"
