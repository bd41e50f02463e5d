"""Encoders: frames in, a variant's bytes out, without any of the original's metadata."""

from __future__ import annotations

from dataclasses import dataclass
from io import BytesIO
from typing import Any

from PIL import Image

from chalicelib import observe
from chalicelib.imaging.formats import ALPHA_OUTPUTS
from chalicelib.resize.grammar import OutputFormat, ResizeSpec

# Encoder settings measured for bounded latency on a 1000×750 output (docs/decisions.md):
# WebP method 2 is 2.4× faster than 4 for the same size; AVIF speed 9 is ~10×
# faster than its default; PNG level 3 is 2.5× faster than 6 for ~8% more bytes.
# Quality defaults live in grammar.OUTPUT_FORMATS, next to the URL syntax.
SAVE_OPTIONS: dict[str, dict[str, Any]] = {
    "JPEG": {"optimize": True},
    "PNG": {"compress_level": 3},
    "GIF": {"optimize": False},
    "WEBP": {"method": 2},
    "AVIF": {"speed": 9, "max_threads": 1},
}


# Progressive JPEG costs ~2.5× the encode time (5 ms at 1000×750) and, on real
# photos at q85, makes files ~3% smaller from about 0.25 MP up (under 2% below),
# besides showing a full preview while loading.  A variant is encoded once and
# served many times, so it pays from there.
PROGRESSIVE_MIN_PIXELS = 250_000


@dataclass(frozen=True)
class Rendered:
    body: bytes
    content_type: str
    width: int
    height: int
    frames: int = 1


def eight_bit(image: Image.Image) -> Image.Image:
    """Deep grey scaled to 8 bits, so a gradient stays a gradient instead of clipping."""
    return image.convert("I").point(lambda value: value / 257).convert("L")


def encode(
    frames: list[Image.Image],
    output: OutputFormat,
    spec: ResizeSpec,
    background: tuple[int, int, int],
    **animation: Any,
) -> Rendered:
    """Encode without any metadata from the original (EXIF, GPS, XMP, ICC, comments)."""
    first = _encodable(frames[0], output.pillow, background)
    if animation:
        animation["append_images"] = [
            _encodable(frame, output.pillow, background) for frame in animation["append_images"]
        ]
    first.info = {}  # Pillow's encoders copy some of info (ICC, EXIF) into the file
    options = dict(SAVE_OPTIONS[output.pillow])
    quality = spec.quality or output.default_quality
    if quality is not None:
        options["quality"] = quality
    if output.pillow == "JPEG" and first.size[0] * first.size[1] >= PROGRESSIVE_MIN_PIXELS:
        options["progressive"] = True
    buffer = BytesIO()
    with observe.timed("encode"):
        first.save(buffer, output.pillow, **options, **animation)
    return Rendered(buffer.getvalue(), output.content_type, *first.size, frames=len(frames))


def _encodable(
    image: Image.Image, pillow_format: str, background: tuple[int, int, int]
) -> Image.Image:
    """The image in a mode the encoder takes, alpha flattened where the format has none."""
    if image.mode == "I":
        # PNG keeps 16 bits (resampling may overshoot: the conversion clips);
        # the others get them scaled to 8.
        return image.convert("I;16") if pillow_format == "PNG" else eight_bit(image)
    has_alpha = "A" in image.mode
    if has_alpha and pillow_format not in ALPHA_OUTPUTS:
        flat = Image.new("RGB", image.size, background)
        flat.paste(image.convert("RGBA"), mask=image.getchannel("A"))
        return flat
    if pillow_format in ("WEBP", "AVIF") and image.mode not in ("RGB", "RGBA"):
        return image.convert("RGBA" if has_alpha else "RGB")
    return image
