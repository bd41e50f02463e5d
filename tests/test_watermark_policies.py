"""Per-prefix policies in-process (moto): every token shape of a protected original is marked.

The mark is found by comparing each stored output with the unmarked render of
the same concrete spec, frame by frame (tests/support/marks.py); it must be
there at or above the rule's ``min_size``, and absent below it and outside the
prefix.  The policy's sizes, formats and signing are refused with the usual
typed errors, and nothing is stored for a refusal.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote

import boto3
import pytest
from moto import mock_aws

from chalicelib import imaging
from chalicelib.config import Settings
from chalicelib.errors import (
    InvalidKey,
    Misconfigured,
    OriginalChanged,
    SignatureRequired,
    SizeNotAllowed,
)
from chalicelib.focus import FocalPoint
from chalicelib.policies.document import ACTIVE_KEY, PENDING_KEY, SOURCE_POLICY
from chalicelib.policies.store import Activation, PolicyStore
from chalicelib.resize.grammar import parse_size
from chalicelib.resize.service import ResizeService
from chalicelib.resize.signing import sign
from chalicelib.storage import ImageStore
from tests.support import BUCKET, PUBLIC_URL, corpus
from tests.support.marks import difference_box, frames, mark_png

ORIGINALS = "originals"
MARK_KEY = "_policy/marks/logo.png"
GREY = (128, 128, 128)
MIN_SIZE = 256
SECRET = b"a-signing-secret-of-some-length"
PROTECTED = "shop/cat.jpg"
ANIMATED = "shop/anim.gif"
OUTSIDE = "free/cat.jpg"


def policy(**overrides: Any) -> dict[str, Any]:
    """The tests' document: a mark on shop/, sizes and formats under shop/sized/."""
    mark = {"key": MARK_KEY, "opacity": 0.9, "min_size": MIN_SIZE, **overrides}
    return {
        "version": 1,
        "rules": [
            {"prefix": "shop/", "watermark": mark},
            {"prefix": "shop/sized/", "sizes": ["300x", "640x.auto"], "watermark": mark},
            {"prefix": "shop/webp/", "formats": ["webp"]},
            {"prefix": "shop/private/", "signed": True, "watermark": mark},
        ],
    }


class Stack:
    """moto's buckets, originals in them, and a resize service that reads the policies."""

    def __init__(self, **settings: Any) -> None:
        self.s3 = boto3.client("s3", region_name="us-east-1")
        for bucket in (BUCKET, ORIGINALS):
            self.s3.create_bucket(Bucket=bucket)
        self.settings = Settings(
            bucket=BUCKET,
            public_url=PUBLIC_URL,
            originals_bucket=ORIGINALS,
            policy_cache_seconds=0,
            **settings,
        )
        self.originals = ImageStore(self.s3, ORIGINALS)
        self.service = ResizeService(self.settings, ImageStore(self.s3, BUCKET), self.originals)
        self.bodies: dict[str, bytes] = {}

    def put(self, key: str, body: bytes, **metadata: str) -> None:
        self.s3.put_object(Bucket=ORIGINALS, Key=key, Body=body, Metadata=metadata)
        self.bodies[key] = body

    def activate(self, document: Any, mark: bytes | None = None) -> Activation:
        if mark is not None:
            self.s3.put_object(Bucket=ORIGINALS, Key=MARK_KEY, Body=mark)
        raw = document if isinstance(document, bytes) else json.dumps(document).encode()
        self.s3.put_object(Bucket=ORIGINALS, Key=PENDING_KEY, Body=raw)
        return self.service.policies.activate()

    def miss(self, token: str, key: str, accept: str | None = None) -> tuple[str, bytes]:
        """The stored output a miss redirects to (website redirects followed): key and bytes."""
        url = self.service.answer(token, key.split("/"), accept).url
        return self.stored(unquote(url.removeprefix(f"{PUBLIC_URL}/")))

    def stored(self, variant_key: str) -> tuple[str, bytes]:
        for _ in range(3):
            found = self.s3.get_object(Bucket=BUCKET, Key=variant_key)
            location = found.get("WebsiteRedirectLocation")
            if not location:
                return variant_key, found["Body"].read()
            variant_key = unquote(location.removeprefix(f"{PUBLIC_URL}/"))
        raise AssertionError("redirect chain")

    def unmarked(self, variant_key: str, key: str, focus: FocalPoint | None = None) -> bytes:
        """The same concrete output rendered without any mark."""
        token = variant_key.removesuffix(f"/{key}").rsplit("/", 1)[-1]
        position = focus.position if focus is not None else None
        spec = parse_size(token, self.settings.max_dimension)
        return imaging.render(self.bodies[key], spec, self.settings.imaging, None, position).body

    def keys(self) -> set[str]:
        return {item["Key"] for item in self.s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])}

    def metadata(self, variant_key: str) -> dict[str, str]:
        return self.s3.head_object(Bucket=BUCKET, Key=variant_key)["Metadata"]


def is_marked(body: bytes, unmarked: bytes) -> list[bool]:
    """Per frame: whether the output differs from the unmarked render where a mark would."""
    pairs = zip(frames(body), frames(unmarked), strict=True)
    return [difference_box(marked, plain) is not None for marked, plain in pairs]


@pytest.fixture
def stack(app_env: dict[str, str]) -> Iterator[Stack]:
    with mock_aws():
        stack = Stack()
        stack.put(PROTECTED, corpus.jpeg((800, 600)))
        stack.put(OUTSIDE, corpus.jpeg((800, 600)))
        stack.put(ANIMATED, corpus.animated("GIF", frames=3, size=(600, 300)))
        activation = stack.activate(policy(), mark_png((200, 100), GREY))
        assert not activation.rejected, activation.errors
        yield stack


ANCHORS = ["n", "ne", "e", "se", "s", "sw", "w", "nw", "smart", "focus"]
# Every shape the grammar allows (docs/urls.md): fits, anchors, pad, density, formats, quality.
SHAPES = [
    "300x",
    "x300",
    "400x300",
    "300x300-cover",
    *(f"300x300-cover-{anchor}" for anchor in ANCHORS),
    "300x300-pad",
    "300x@2x",
    "200x@3x",
    "300x.jpeg",
    "300x-q40.jpeg",
    "300x.png",
    "300x.webp",
    "300x-q60.webp",
    "300x.avif",
    "300x-q50.avif",
    "400x300-pad.png",
    "x300@2x.webp",
    "300x300-cover-ne@2x-q70.webp",
    "256x",  # the threshold itself: its longer side is min_size
]
ACCEPTS = ["image/avif,image/webp,*/*", "image/webp,*/*", "*/*"]


@pytest.mark.parametrize("token", SHAPES)
def test_every_token_shape_of_a_protected_original_is_marked(stack: Stack, token: str) -> None:
    variant_key, body = stack.miss(token, PROTECTED)
    assert all(is_marked(body, stack.unmarked(variant_key, PROTECTED)))
    assert (
        stack.metadata(variant_key)[SOURCE_POLICY]
        == stack.service.policies.active().rule_for(PROTECTED).fingerprint
    )


def test_a_focus_crop_is_marked_around_the_stored_focal_point(stack: Stack) -> None:
    focus = FocalPoint(0.2, 0.3)
    key = "shop/focused.jpg"
    stack.put(key, corpus.jpeg((800, 600)), focus=focus.text)
    variant_key, body = stack.miss("300x300-cover-focus", key)
    assert all(is_marked(body, stack.unmarked(variant_key, key, focus)))


@pytest.mark.parametrize("accept", ACCEPTS)
def test_auto_is_marked_in_whichever_format_it_picks(stack: Stack, accept: str) -> None:
    variant_key, body = stack.miss("300x.auto", PROTECTED, accept)
    assert all(is_marked(body, stack.unmarked(variant_key, PROTECTED)))


@pytest.mark.parametrize("token", ["300x", "300x.webp", "300x.avif", "300x300-cover", "400x-pad"])
def test_every_frame_of_an_animation_is_marked(stack: Stack, token: str) -> None:
    token = "400x300-pad" if token == "400x-pad" else token
    variant_key, body = stack.miss(token, ANIMATED)
    marked = is_marked(body, stack.unmarked(variant_key, ANIMATED))
    assert len(marked) == 3
    assert all(marked)


@pytest.mark.parametrize("token", ["255x", "200x", "x190", "160x160-cover-focus", "100x@2x"])
def test_outputs_below_min_size_are_not_marked(stack: Stack, token: str) -> None:
    variant_key, body = stack.miss(token, PROTECTED)
    assert not any(is_marked(body, stack.unmarked(variant_key, PROTECTED)))


@pytest.mark.parametrize("token", ["300x", "300x300-cover-smart", "300x.webp", "1000x"])
def test_originals_outside_the_prefix_are_not_marked(stack: Stack, token: str) -> None:
    variant_key, body = stack.miss(token, OUTSIDE)
    assert not any(is_marked(body, stack.unmarked(variant_key, OUTSIDE)))
    assert SOURCE_POLICY not in stack.metadata(variant_key)


def test_presets_of_a_protected_original_are_marked_above_min_size(stack: Stack) -> None:
    specs = [parse_size(token, 4096) for token in ("160x160-cover-focus", "320x", "640x.auto")]
    etag = stack.s3.head_object(Bucket=ORIGINALS, Key=PROTECTED)["ETag"]
    urls = stack.service.prerender(PROTECTED, stack.bodies[PROTECTED], etag, specs)
    found = {}
    for token, url in urls.items():
        variant_key, body = stack.stored(unquote(url.removeprefix(f"{PUBLIC_URL}/")))
        found[token] = all(is_marked(body, stack.unmarked(variant_key, PROTECTED)))
    assert found == {
        "160x160-cover-focus": False,
        "320x": True,
        "640x.auto:avif": True,
        "640x.auto:webp": True,
        "640x.auto:jpeg": True,
    }


def test_a_prefixs_sizes_are_enforced_and_refusals_store_nothing(stack: Stack) -> None:
    key = "shop/sized/cat.jpg"
    stack.put(key, corpus.jpeg((800, 600)))
    before = stack.keys()
    for token in ("400x", "300x.webp", "320x", "640x300"):
        with pytest.raises(SizeNotAllowed):
            stack.miss(token, key)
    assert stack.keys() == before
    stack.miss("300x", key)
    stack.miss("640x.auto", key, "image/webp")  # a listed .auto allows what it resolves to
    assert len(stack.keys()) > len(before)


def test_a_prefixs_sizes_skip_presets_they_do_not_allow(stack: Stack) -> None:
    key = "shop/sized/cat.jpg"
    stack.put(key, corpus.jpeg((800, 600)))
    specs = [parse_size(token, 4096) for token in ("160x160-cover", "300x")]
    etag = stack.s3.head_object(Bucket=ORIGINALS, Key=key)["ETag"]
    assert list(stack.service.prerender(key, stack.bodies[key], etag, specs)) == ["300x"]


def test_a_prefixs_formats_are_enforced_on_the_output_format(stack: Stack) -> None:
    key = "shop/webp/cat.jpg"
    stack.put(key, corpus.jpeg((800, 600)))
    before = stack.keys()
    for token in ("300x", "300x.jpeg", "300x.png"):  # 300x of a JPEG is a JPEG
        with pytest.raises(SizeNotAllowed) as info:
            stack.miss(token, key)
        assert "webp" in info.value.public_message
    assert stack.keys() == before
    variant_key, _ = stack.miss("300x.webp", key)
    assert SOURCE_POLICY in stack.metadata(variant_key)


def test_a_signed_prefix_refuses_unsigned_urls_without_signing_keys(stack: Stack) -> None:
    key = "shop/private/cat.jpg"
    stack.put(key, corpus.jpeg((800, 600)))
    before = stack.keys()
    with pytest.raises(SignatureRequired) as info:
        stack.miss("300x", key)
    assert "shop/private/" in info.value.public_message
    assert stack.keys() == before


def test_signed_urls_of_a_protected_original_are_marked(app_env: dict[str, str]) -> None:
    with mock_aws():
        stack = Stack(signing_keys=(SECRET,))
        stack.put(PROTECTED, corpus.jpeg((800, 600)))
        assert not stack.activate(policy(), mark_png((200, 100), GREY)).rejected
        signature = sign(SECRET, "300x", PROTECTED)
        url = stack.service.resize(signature, ["300x", *PROTECTED.split("/")])
        variant_key, body = stack.stored(unquote(url.removeprefix(f"{PUBLIC_URL}/")))
        assert variant_key == f"{signature}/300x/{PROTECTED}"
        assert all(is_marked(body, stack.unmarked(variant_key, PROTECTED)))


def test_the_policy_files_are_never_rendered(stack: Stack) -> None:
    for key in (MARK_KEY, PENDING_KEY, ACTIVE_KEY):
        with pytest.raises(InvalidKey):
            stack.miss("300x", key)


def test_a_mark_replaced_but_not_activated_is_never_rendered(stack: Stack) -> None:
    """Between a mark's overwrite and its activation (or for good, if invalid): 409, nothing."""
    stack.s3.put_object(Bucket=ORIGINALS, Key=MARK_KEY, Body=b"not an image")
    before = stack.keys()
    with pytest.raises(OriginalChanged):
        stack.miss("300x", PROTECTED)
    assert stack.keys() == before


def test_a_missing_mark_fails_closed(stack: Stack) -> None:
    stack.s3.delete_object(Bucket=ORIGINALS, Key=MARK_KEY)
    with pytest.raises(Misconfigured):
        stack.miss("300x", PROTECTED)
    assert stack.miss("300x", OUTSIDE)  # other prefixes are served as before


def test_the_active_document_is_cached_for_policy_cache_seconds(app_env: dict[str, str]) -> None:
    now = [1000.0]
    with mock_aws():
        stack = Stack()
        store = PolicyStore(stack.originals, Settings(BUCKET, PUBLIC_URL), clock=lambda: now[0])
        assert store.rule_for(PROTECTED) is None
        assert not stack.activate(policy(), mark_png()).rejected
        assert store.rule_for(PROTECTED) is None  # still the cached (empty) document
        now[0] += stack.settings.policy_cache_seconds + Settings.policy_cache_seconds
        assert store.rule_for(PROTECTED) is not None


def test_a_mark_is_read_once_per_etag(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    reads: list[str] = []
    real = ImageStore.get_original

    def counted(store: ImageStore, key: str, max_bytes: int) -> Any:
        reads.append(key)
        return real(store, key, max_bytes)

    monkeypatch.setattr(ImageStore, "get_original", counted)
    for token in ("300x", "400x", "500x"):
        stack.miss(token, PROTECTED)
    assert reads.count(MARK_KEY) == 1
    assert not stack.activate(policy(), mark_png((100, 100), GREY)).rejected
    reads.clear()
    for token in ("600x", "700x"):
        stack.miss(token, PROTECTED)
    assert reads.count(MARK_KEY) == 1  # the new version, once
