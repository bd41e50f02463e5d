"""Imaging: pure bytes-in, bytes-out behaviour."""

from __future__ import annotations

import pytest
from PIL import JpegImagePlugin

from chalicelib.errors import InvalidImage, UnsupportedImage
from chalicelib.grammar import ResizeSpec
from chalicelib.imaging import fitted_size, render
from tests import corpus


@pytest.mark.parametrize(
    ("size", "spec", "expected"),
    [
        ((4000, 3000), ResizeSpec(300, 300), (300, 225)),
        ((3000, 4000), ResizeSpec(300, 300), (225, 300)),
        ((4000, 3000), ResizeSpec(300, None), (300, 225)),
        ((4000, 3000), ResizeSpec(None, 300), (400, 300)),
        ((4000, 3000), ResizeSpec(1000, 100), (133, 100)),
        ((200, 100), ResizeSpec(300, 300), (200, 100)),  # never enlarged
        ((10000, 1), ResizeSpec(100, 100), (100, 1)),  # never zero
    ],
)
def test_fitted_size(size: tuple[int, int], spec: ResizeSpec, expected: tuple[int, int]) -> None:
    assert fitted_size(size, spec) == expected


def test_jpeg_is_resized_and_stays_jpeg() -> None:
    rendered = render(corpus.jpeg((1600, 1200)), ResizeSpec(300, 300))
    assert rendered.content_type == "image/jpeg"
    image = corpus.opened(rendered.body)
    assert image.format == "JPEG"
    assert image.size == (rendered.width, rendered.height) == (300, 225)
    # Quadrant colours survive: top-left red, bottom-right white.
    assert _close(image.getpixel((40, 40)), (255, 0, 0))
    assert _close(image.getpixel((260, 200)), (255, 255, 255))


def test_large_jpeg_uses_shrink_on_load(monkeypatch: pytest.MonkeyPatch) -> None:
    drafted: list[tuple[int, int]] = []
    original_draft = JpegImagePlugin.JpegImageFile.draft

    def spy(self: JpegImagePlugin.JpegImageFile, mode: str | None, size: tuple[int, int]) -> object:
        result = original_draft(self, mode, size)
        drafted.append(self.size)
        return result

    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "draft", spy)
    render(corpus.jpeg((4000, 3000)), ResizeSpec(300, 300))
    assert drafted == [(500, 375)]  # decoded at 1/8 scale, still >= 300x225


@pytest.mark.parametrize("orientation", [6, 8, 5, 7])
def test_exif_rotation_is_applied_and_swaps_dimensions(orientation: int) -> None:
    rendered = render(corpus.jpeg((800, 400), orientation=orientation), ResizeSpec(100, 100))
    image = corpus.opened(rendered.body)
    assert image.size == (50, 100)
    assert 0x0112 not in image.getexif()


def test_orientation_6_puts_the_stored_top_left_at_the_top_right() -> None:
    rendered = render(corpus.jpeg((800, 400), orientation=6), ResizeSpec(100, 100))
    image = corpus.opened(rendered.body)
    # Orientation 6: rotate 90° clockwise to view; stored top-left (red) goes top-right.
    assert _close(image.getpixel((40, 10)), (255, 0, 0))
    assert _close(image.getpixel((10, 10)), (0, 0, 255))


def test_png_keeps_format_and_alpha() -> None:
    rendered = render(corpus.png_rgba((400, 400)), ResizeSpec(100, None))
    image = corpus.opened(rendered.body)
    assert rendered.content_type == "image/png"
    assert image.mode == "RGBA"
    assert image.size == (100, 100)
    assert image.getpixel((2, 2))[3] == 0
    assert image.getpixel((50, 50)) == (255, 0, 0, 255)


def test_small_image_is_not_enlarged() -> None:
    rendered = render(corpus.jpeg((120, 80)), ResizeSpec(1000, 1000))
    assert (rendered.width, rendered.height) == (120, 80)


def test_not_an_image_is_unsupported() -> None:
    with pytest.raises(UnsupportedImage) as info:
        render(b"<html>not an image</html>", ResizeSpec(100, 100))
    assert info.value.status == 415


def test_truncated_jpeg_is_invalid() -> None:
    data = corpus.jpeg((1600, 1200))
    with pytest.raises(InvalidImage) as info:
        render(data[: len(data) // 3], ResizeSpec(100, 100))
    assert info.value.status == 422


def _close(actual: object, expected: tuple[int, ...], tolerance: int = 40) -> bool:
    assert isinstance(actual, tuple)
    return all(abs(a - e) <= tolerance for a, e in zip(actual, expected, strict=True))
