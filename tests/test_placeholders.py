"""Placeholders: a BlurHash and a dominant colour per original, as the page paints them first."""

from __future__ import annotations

import re

import blurhash
import pytest
from PIL import Image, ImageDraw, ImageStat

from chalicelib.errors import UnsupportedImage
from chalicelib.imaging.limits import ImagingLimits
from chalicelib.imaging.placeholder import dominant_color, placeholder
from tests.support import corpus, scenes

# sRGB to linear light, scaled to 0-255: BlurHash averages light, not sRGB values.
LINEAR = [round(blurhash.srgb_to_linear(value) * 255) for value in range(256)] * 3


def mean_colour(image: Image.Image) -> list[float]:
    """The mean colour in linear light (0-255), as BlurHash's DC component is."""
    return ImageStat.Stat(image.convert("RGB").point(LINEAR)).mean


def decoded_mean(hash_: str) -> list[float]:
    """The placeholder as blurhash's own decoder paints it, averaged."""
    rows = blurhash.decode(hash_, 32, 32)
    image = Image.new("RGB", (32, 32))
    image.putdata([tuple(pixel) for row in rows for pixel in row])
    return mean_colour(image)


def rgb(hex_colour: str) -> tuple[int, int, int]:
    return tuple(int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))  # type: ignore[return-value]


def halves(
    size: tuple[int, int], left: tuple[int, int, int], right: tuple[int, int, int]
) -> Image.Image:
    image = Image.new("RGB", size, left)
    ImageDraw.Draw(image).rectangle((size[0] // 2, 0, size[0], size[1]), fill=right)
    return image


PICTURES = {
    "photo-like jpeg": lambda: corpus.encode(scenes.with_subject((640, 480), "ne"), "JPEG"),
    "quadrants png": lambda: corpus.encode(corpus.quadrants((400, 300)), "PNG"),
    "two colours webp": lambda: corpus.encode(
        halves((300, 200), (200, 40, 40), (40, 40, 200)), "WEBP", lossless=True
    ),
}


@pytest.mark.parametrize("name", sorted(PICTURES))
def test_the_blurhash_decodes_to_the_pictures_mean_colour(name: str) -> None:
    original = PICTURES[name]()
    made = placeholder(original, ImagingLimits())
    expected = mean_colour(corpus.opened(original))
    assert all(
        abs(a - b) < 12 for a, b in zip(decoded_mean(made.blurhash), expected, strict=True)
    ), (
        decoded_mean(made.blurhash),
        expected,
    )
    assert len(made.blurhash) <= 40  # a few dozen characters, for JSON and a URL
    assert re.fullmatch(r"#[0-9a-f]{6}", made.dominant_color)


def test_the_dominant_colour_is_the_largest_area() -> None:
    picture = halves((400, 100), (220, 30, 30), (30, 30, 220))
    ImageDraw.Draw(picture).rectangle((200, 0, 249, 99), fill=(220, 30, 30))  # red: 5/8
    made = placeholder(corpus.encode(picture, "PNG"), ImagingLimits())
    red, green, blue = rgb(made.dominant_color)
    assert (red > 180, green < 70, blue < 70) == (True, True, True), made.dominant_color
    assert dominant_color(Image.new("RGB", (4, 4), (1, 2, 3))) == "#010203"


def test_the_placeholder_is_of_the_picture_as_displayed() -> None:
    # Red on the stored left; orientation 6 turns it to the displayed top.
    picture = Image.new("RGB", (200, 400), (30, 30, 220))
    ImageDraw.Draw(picture).rectangle((0, 0, 199, 99), fill=(220, 30, 30))
    original = scenes.stored(picture, "JPEG", 6)
    rows = blurhash.decode(placeholder(original, ImagingLimits()).blurhash, 4, 8)
    assert rows[0][2][0] > rows[0][2][2]  # the top is red
    assert rows[7][2][2] > rows[7][2][0]  # the bottom blue


def test_transparency_is_painted_on_the_background() -> None:
    clear = corpus.encode(Image.new("RGBA", (64, 64), (255, 0, 0, 0)), "PNG")
    made = placeholder(clear, ImagingLimits(background=(10, 200, 10)))
    assert scenes.close(rgb(made.dominant_color), (10, 200, 10), tolerance=3), made.dominant_color


def test_a_non_image_gets_the_error_a_render_would_give() -> None:
    with pytest.raises(UnsupportedImage):
        placeholder(b"not an image", ImagingLimits())
