"""Imaging: original bytes in, variant bytes out.  Pure: no I/O, no settings.

The pipeline is a short list of steps, each a no-op when it has nothing to do:
open → size the output → shrink on load (JPEG) → resize → upright → encode.
Resizing happens before the EXIF rotation so the rotation moves few pixels.
"""

from __future__ import annotations

from dataclasses import dataclass
from io import BytesIO
from typing import Any

from PIL import Image, ImageOps, UnidentifiedImageError

from chalicelib.errors import InvalidImage, UnsupportedImage
from chalicelib.grammar import ResizeSpec

CONTENT_TYPES = {
    "JPEG": "image/jpeg",
    "PNG": "image/png",
    "GIF": "image/gif",
    "WEBP": "image/webp",
}

# Chosen for a CDN-served variant: encoded once, downloaded many times.
SAVE_OPTIONS: dict[str, dict[str, Any]] = {
    "JPEG": {"quality": 85, "optimize": True},
    "PNG": {"compress_level": 3},
    "GIF": {"optimize": False},
    "WEBP": {"quality": 80, "method": 4},
}

# EXIF orientations 5–8 store the picture rotated by 90°: width and height swap.
_SWAPPING_ORIENTATIONS = frozenset({5, 6, 7, 8})
_ORIENTATION_TAG = 0x0112


@dataclass(frozen=True)
class Rendered:
    body: bytes
    content_type: str
    width: int
    height: int


def render(original: bytes, spec: ResizeSpec) -> Rendered:
    """Resize an encoded image to fit ``spec`` and encode it in its own format."""
    try:
        with Image.open(BytesIO(original)) as image:
            output_format = _output_format(image.format)
            swaps = _orientation(image) in _SWAPPING_ORIENTATIONS
            upright_size = _swap(image.size) if swaps else image.size
            target = fitted_size(upright_size, spec)
            stored_target = _swap(target) if swaps else target
            shrink_on_load(image, stored_target)
            resized = resize(image, stored_target)
            ImageOps.exif_transpose(resized, in_place=True)
            return encode(resized, output_format)
    except UnidentifiedImageError as err:
        raise UnsupportedImage(
            "the original is not an image in a supported format", str(err)
        ) from err
    except (OSError, SyntaxError, ValueError) as err:
        # Pillow reports truncated and corrupt data with these types.
        raise InvalidImage("the original image is corrupt or truncated", repr(err)) from err


def fitted_size(size: tuple[int, int], spec: ResizeSpec) -> tuple[int, int]:
    """The largest size within the spec's box that keeps the aspect ratio, never enlarged."""
    width, height = size
    scale = min(
        1.0,
        spec.width / width if spec.width else 1.0,
        spec.height / height if spec.height else 1.0,
    )
    return max(1, round(width * scale)), max(1, round(height * scale))


def shrink_on_load(image: Image.Image, size: tuple[int, int]) -> None:
    """Let the JPEG decoder scale by 1/2, 1/4 or 1/8 while staying at least ``size``."""
    if image.format == "JPEG":
        image.draft(None, size)


def resize(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """Resample to ``size`` with Lanczos, reducing by whole factors first when far off."""
    if image.mode in ("1", "P", "PA"):
        image = image.convert("RGBA" if image.has_transparency_data else "RGB")
    if image.size == size:
        image.load()
        return image
    return image.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)


def encode(image: Image.Image, output_format: str) -> Rendered:
    """Encode without metadata; JPEG gets an opaque mode."""
    if output_format == "JPEG" and image.mode not in ("L", "RGB", "CMYK"):
        image = image.convert("RGB")
    buffer = BytesIO()
    image.save(buffer, output_format, **SAVE_OPTIONS[output_format])
    return Rendered(buffer.getvalue(), CONTENT_TYPES[output_format], *image.size)


def _output_format(source_format: str | None) -> str:
    if source_format not in CONTENT_TYPES:
        raise UnsupportedImage(
            f"originals in {source_format or 'this'} format are not supported",
        )
    return source_format


def _orientation(image: Image.Image) -> int:
    return int(image.getexif().get(_ORIENTATION_TAG, 1))


def _swap(size: tuple[int, int]) -> tuple[int, int]:
    return size[1], size[0]
