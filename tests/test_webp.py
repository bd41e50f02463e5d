"""libwebp's scaled decode through ctypes (chalicelib.imaging.webp) and render's use of it."""

from __future__ import annotations

import ctypes.util
import math
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image, ImageChops, ImageDraw, ImageFilter, ImageStat, WebPImagePlugin

from chalicelib import imaging
from chalicelib.imaging import render, webp
from chalicelib.imaging.geometry import Geometry, scaled_decode_size
from chalicelib.resize.grammar import parse_size
from tests.support import corpus


@pytest.fixture
def without_libwebp(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Today's path: no library found, so Pillow decodes every WebP."""
    webp.library.cache_clear()
    monkeypatch.setattr(webp, "library_candidates", lambda: [])
    yield
    webp.library.cache_clear()


def photo_like(size: tuple[int, int], mode: str = "RGB") -> Image.Image:
    """Quadrants, a gradient and fine detail: resampling differences show, unlike flat colour."""
    image = corpus.quadrants(size, mode)
    draw = ImageDraw.Draw(image)
    for x in range(0, size[0], 7):
        draw.line((x, 0, size[0] - x, size[1]), fill=(x % 256, 255 - x % 256, 128), width=2)
    return image.filter(ImageFilter.GaussianBlur(1))


def psnr(first: Image.Image, second: Image.Image) -> float:
    assert first.size == second.size
    assert first.mode == second.mode
    rms = ImageStat.Stat(ImageChops.difference(first, second)).rms
    mse = sum(value**2 for value in rms) / len(rms)
    return 99.0 if mse == 0 else 10 * math.log10(255**2 / mse)


def render_both(
    original: bytes, token: str, monkeypatch: pytest.MonkeyPatch
) -> tuple[Image.Image, Image.Image]:
    """The variant made through libwebp's scaled decode, and the same through Pillow's."""
    assert webp.available()
    spec = parse_size(token, 4096)
    scaled = render(original, spec)
    webp.library.cache_clear()
    with monkeypatch.context() as patch:
        patch.setattr(webp, "library_candidates", lambda: [])
        full = render(original, spec)
    webp.library.cache_clear()
    return corpus.opened(scaled.body), corpus.opened(full.body)


def test_the_wheels_bundled_libwebp_is_found_and_used() -> None:
    candidates = webp.library_candidates()
    assert candidates
    assert "pillow.libs" in candidates[0]
    assert "libwebp-" in Path(candidates[0]).name
    assert webp.available()


def test_a_library_without_the_symbols_is_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    libc = ctypes.util.find_library("c")
    assert libc is not None
    webp.library.cache_clear()
    monkeypatch.setattr(webp, "library_candidates", lambda: [libc, "/nonexistent/libwebp.so.7"])
    try:
        assert webp.library() is None
        original = corpus.in_format("WEBP")
        assert webp.decode_scaled(original, (400, 300), (10, 10), alpha=False) is None
    finally:
        webp.library.cache_clear()


@pytest.mark.parametrize(("alpha", "mode"), [(False, "RGB"), (True, "RGBa")])
def test_decode_scaled_gives_the_asked_size_and_mode(alpha: bool, mode: str) -> None:
    original = corpus.encode(photo_like((640, 480), "RGBA" if alpha else "RGB"), "WEBP")
    decoded = webp.decode_scaled(original, (640, 480), (160, 90), alpha=alpha)
    assert decoded is not None
    assert (decoded.size, decoded.mode) == ((160, 90), mode)
    assert decoded.getpixel((10, 10))[:3] == pytest.approx(corpus.RED, abs=40)


@pytest.mark.parametrize(
    ("data", "source", "size"),
    [
        (b"RIFF\x10\x00\x00\x00WEBPVP8 garbage!", (10, 10), (10, 10)),  # not a bitstream
        (corpus.in_format("WEBP", (40, 30)), (40, 30), (41, 30)),  # larger than the original
        (corpus.in_format("WEBP", (40, 30)), (40, 30), (0, 30)),
        (corpus.in_format("WEBP", (40, 30)), (80, 60), (20, 15)),  # not what the limits saw
        (corpus.animated("WEBP"), (200, 100), (10, 10)),  # would decode the first frame only
    ],
    ids=["garbage", "enlarging", "zero", "other size", "animation"],
)
def test_decode_scaled_refuses_what_does_not_check_out(
    data: bytes, source: tuple[int, int], size: tuple[int, int]
) -> None:
    with pytest.raises(webp.ScaledDecodeError):
        webp.decode_scaled(data, source, size, alpha=False)


def test_a_truncated_webp_fails_as_it_does_through_pillow() -> None:
    original = corpus.encode(photo_like((640, 480)), "WEBP")
    with pytest.raises(webp.ScaledDecodeError):
        webp.decode_scaled(original[: len(original) // 2], (640, 480), (100, 75), alpha=False)


def test_a_still_webp_is_never_decoded_by_pillow(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(self: object) -> None:
        raise AssertionError("Pillow's full-size decode ran")

    monkeypatch.setattr(WebPImagePlugin.WebPImageFile, "load", refuse)
    rendered = render(corpus.encode(photo_like((1600, 1200)), "WEBP"), parse_size("300x", 4096))
    assert (rendered.width, rendered.height) == (300, 225)


@pytest.mark.parametrize(
    ("source", "content", "crop", "expected"),
    [
        ((4000, 3000), (300, 225), (4000, 3000), (600, 450)),  # small output: twice
        ((4000, 3000), (1000, 750), (4000, 3000), (1000, 750)),  # large: the output's own
        ((4000, 3000), (300, 300), (3000, 3000), (800, 600)),  # cover: the whole, scaled
        ((500, 400), (400, 320), (500, 400), (500, 400)),  # never more than the original
    ],
)
def test_scaled_decode_size(
    source: tuple[int, int],
    content: tuple[int, int],
    crop: tuple[int, int],
    expected: tuple[int, int],
) -> None:
    assert scaled_decode_size(Geometry(source, crop, content, content)) == expected


@pytest.mark.parametrize("side", [300, 1000])
def test_as_close_to_a_full_size_lanczos_as_today(
    side: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once encoded as the variant is, within 0.5 dB PSNR of Pillow's decode + Lanczos."""
    photo = photo_like((2400, 1800))
    original = corpus.encode(photo, "WEBP", quality=90)
    scaled, full = render_both(original, f"{side}x", monkeypatch)
    reference = corpus.opened(original).resize(full.size, Image.Resampling.LANCZOS)
    assert scaled.size == full.size == (side, side * 3 // 4)
    assert psnr(scaled, reference) > psnr(full, reference) - 0.5


@pytest.mark.parametrize("token", ["200x200-cover", "300x100-pad", "300x.png", "300x.jpeg"])
def test_same_geometry_and_pixels_as_pillows_decode(
    token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = corpus.encode(photo_like((2400, 1800)), "WEBP", quality=90)
    scaled, full = render_both(original, token, monkeypatch)
    assert (scaled.size, scaled.mode, scaled.format) == (full.size, full.mode, full.format)
    assert psnr(scaled, full) > 35


@pytest.mark.parametrize("lossless", [True, False])
def test_alpha_is_kept_and_not_darkened(lossless: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """Premultiplied for resampling, un-premultiplied after: edges neither dark nor haloed."""
    disc = corpus.opened(corpus.png_rgba((1200, 1200)))
    original = corpus.encode(disc, "WEBP", lossless=lossless, quality=95)
    scaled, full = render_both(original, "150x", monkeypatch)
    assert scaled.mode == full.mode == "RGBA"
    assert psnr(scaled.getchannel("A"), full.getchannel("A")) > 38
    assert psnr(*(composited(image) for image in (scaled, full))) > 38
    assert scaled.getpixel((75, 75)) == pytest.approx((*corpus.RED, 255), abs=8)
    assert scaled.getpixel((2, 2))[3] == 0


def composited(image: Image.Image) -> Image.Image:
    return Image.alpha_composite(Image.new("RGBA", image.size, (0, 0, 0, 255)), image).convert(
        "RGB"
    )


@pytest.mark.parametrize("orientation", [6, 8, 3])
def test_exif_orientation_is_applied(orientation: int, monkeypatch: pytest.MonkeyPatch) -> None:
    exif = Image.Exif()
    exif[0x0112] = orientation
    original = corpus.encode(photo_like((1600, 800)), "WEBP", exif=exif.tobytes())
    scaled, full = render_both(original, "200x200", monkeypatch)
    assert scaled.size == full.size == ((100, 200) if orientation in (6, 8) else (200, 100))
    assert psnr(scaled, full) > 35


def test_icc_profile_is_converted_to_srgb(monkeypatch: pytest.MonkeyPatch) -> None:
    swapped = corpus.opened(corpus.swapped_primaries_jpeg())
    profile = swapped.info["icc_profile"]
    original = corpus.encode(swapped.resize((1200, 800)), "WEBP", icc_profile=profile)
    scaled, full = render_both(original, "150x", monkeypatch)
    assert scaled.getpixel((75, 50)) == pytest.approx(full.getpixel((75, 50)), abs=4)
    assert scaled.getpixel((75, 50))[1] > 150  # the profile's red is sRGB's green


def test_render_falls_back_to_pillow_without_the_library(without_libwebp: None) -> None:
    assert not webp.available()
    rendered = render(corpus.encode(photo_like((800, 600)), "WEBP"), parse_size("300x", 4096))
    assert (rendered.width, rendered.height) == (300, 225)


def test_a_failed_scaled_decode_falls_back_to_pillow(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(data: bytes, source: tuple[int, int], size: tuple[int, int], alpha: bool) -> None:
        raise webp.ScaledDecodeError("status 3")

    monkeypatch.setattr(webp, "decode_scaled", fail)
    rendered = render(corpus.encode(photo_like((800, 600)), "WEBP"), parse_size("300x", 4096))
    assert (rendered.width, rendered.height) == (300, 225)


def test_animations_keep_pillows_decoder() -> None:
    rendered = imaging.render(corpus.animated("WEBP"), parse_size("100x", 4096))
    assert rendered.frames > 1
