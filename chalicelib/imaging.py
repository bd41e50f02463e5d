"""Imaging: original bytes in, variant bytes out.  Pure: no I/O, no settings lookups.

A short list of steps, each a no-op when it has nothing to do:
open → plan the geometry → shrink on load (JPEG) → normalise the mode →
resize (with the crop box) → upright (EXIF) → sRGB → pad → encode.
Resizing comes before rotation and colour conversion, so those touch few pixels.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from io import BytesIO
from typing import Any

from PIL import Image, ImageCms, ImageOps, ImageSequence, UnidentifiedImageError

from chalicelib.errors import (
    InvalidImage,
    NonCanonicalSize,
    OriginalTooManyPixels,
    UnsupportedImage,
)
from chalicelib.grammar import OUTPUT_FORMATS, Fit, OutputFormat, ResizeSpec

log = logging.getLogger(__name__)

# What we decode.  Everything else Pillow could open (EPS via Ghostscript, PSD,
# ICO, PDF, ...) is refused before decoding: it has no place on a web page and
# widens the attack surface.  MPO is how Pillow names most phone JPEGs.
DEFAULT_OUTPUT = {
    "JPEG": "jpeg",
    "MPO": "jpeg",
    "PNG": "png",
    "GIF": "gif",
    "WEBP": "webp",
    "AVIF": "avif",
    # Browsers can't show these; PNG keeps every pixel and any alpha.
    "BMP": "png",
    "TIFF": "png",
}
# Pillow's JPEG opener itself returns MPO files, so MPO is not asked for by name.
INPUT_FORMATS = tuple(name for name in DEFAULT_OUTPUT if name != "MPO")

GIF = OutputFormat("gif", "GIF", "image/gif", None)  # an output only when the original is a GIF
FORMATS = {**OUTPUT_FORMATS, "gif": GIF}
# Pillow format name → the Content-Type of every format we write.
CONTENT_TYPES = {f.pillow: f.content_type for f in FORMATS.values()}
ANIMATED_OUTPUTS = frozenset({"GIF", "WEBP"})
ALPHA_OUTPUTS = frozenset({"PNG", "GIF", "WEBP", "AVIF"})

# Encoder settings measured for bounded latency on a 1000×750 output (see README):
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

# EXIF orientations 5–8 store the picture turned by 90°: width and height swap.
_SWAPPING_ORIENTATIONS = frozenset({5, 6, 7, 8})
_ORIENTATION_TAG = 0x0112
_HIGH_BIT_DEPTH = frozenset({"I", "F", "I;16", "I;16L", "I;16B", "I;16N"})
_SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


@dataclass(frozen=True)
class ImagingLimits:
    """Policy the pipeline needs: a background and the animation budget."""

    background: tuple[int, int, int] = (255, 255, 255)
    max_frames: int = 300
    max_animation_pixels: int = 100_000_000  # frames × width × height of the original
    max_source_pixels: int = 60_000_000  # checked from the header, before decoding


@dataclass(frozen=True)
class Rendered:
    body: bytes
    content_type: str
    width: int
    height: int
    frames: int = 1


@dataclass(frozen=True)
class Geometry:
    """Where the output's pixels come from, in the original's upright coordinates."""

    source: tuple[int, int]  # the original's size
    crop: tuple[int, int]  # centred region of the original that is kept
    content: tuple[int, int]  # size the kept region is resampled to
    canvas: tuple[int, int]  # final size (larger than content only for pad)


@dataclass(frozen=True)
class Source:
    """What the header of an original says, before any pixel is decoded."""

    format: str  # Pillow's name: JPEG, MPO, PNG, GIF, WEBP, AVIF, BMP, TIFF
    size: tuple[int, int]  # what render() plans with for the spec: upright for stills


def inspect(original: bytes, spec: ResizeSpec, limits: ImagingLimits | None = None) -> Source:
    """Run every check render() runs before decoding, and say what it would plan with."""
    limits = limits or ImagingLimits()
    with _opened(original) as image:
        check_pixels(image.size, limits)
        output = output_format(image.format, spec)
        size = image.size
        if not _animate(image, output, limits) and _orientation(image) in _SWAPPING_ORIENTATIONS:
            size = _swap(size)
        return Source(str(image.format), size)


def canonical_spec(size: tuple[int, int], spec: ResizeSpec) -> ResizeSpec:
    """The one spelling of the output ``spec`` makes from an original of ``size``.

    Specs that plan the same geometry make byte-identical variants: for a
    1000×500 original, ``600x300``, ``600x``, ``300x150@2x`` and
    ``600x300-cover`` all do.  The canonical one is the shortest spelling
    that plans the same geometry: the output's own size, inside-fit when
    nothing is cropped or padded, and otherwise the box with the pixel ratio
    multiplied out.
    """
    geometry = plan(size, spec)
    width, height = geometry.content
    shortest = (
        ResizeSpec(width, height, Fit.INSIDE)
        if geometry.crop == geometry.source and geometry.canvas == geometry.content
        else ResizeSpec(width, height, Fit.COVER)
        if geometry.canvas == geometry.content
        else None
    )
    format_options = {"output": spec.output, "quality": spec.quality}
    if shortest is not None:
        candidate = replace(shortest, **format_options)
        if plan(size, candidate) == geometry:
            return candidate
    box_width, box_height = spec.box
    return replace(spec, width=box_width, height=box_height, dpr=1)


def render(original: bytes, spec: ResizeSpec, limits: ImagingLimits | None = None) -> Rendered:
    """Resize an encoded image to ``spec`` and encode it."""
    limits = limits or ImagingLimits()
    with _opened(original) as image:
        check_pixels(image.size, limits)
        output = output_format(image.format, spec)
        if _animate(image, output, limits):
            return _render_animation(image, spec, output, limits)
        return _render_still(image, spec, output, limits)


@contextmanager
def _opened(original: bytes) -> Iterator[Image.Image]:
    """The original opened for reading, Pillow's failures turned into typed service errors."""
    try:
        with Image.open(BytesIO(original), formats=INPUT_FORMATS) as image:
            yield image
    except Image.DecompressionBombError as err:  # Pillow's own, far higher limit
        raise OriginalTooManyPixels("the original has too many pixels", str(err)) from err
    except UnidentifiedImageError as err:
        raise UnsupportedImage(
            "the original is not a JPEG, PNG, GIF, WebP, AVIF, BMP or TIFF image", str(err)
        ) from err
    except (OSError, SyntaxError, ValueError, EOFError) as err:
        # Pillow reports truncated and corrupt data with these types.
        raise InvalidImage("the original image is corrupt or truncated", repr(err)) from err


def check_pixels(size: tuple[int, int], limits: ImagingLimits) -> None:
    """Refuse an original whose header declares more pixels than allowed (a decompression bomb)."""
    if size[0] * size[1] > limits.max_source_pixels:
        raise OriginalTooManyPixels(
            f"the original has {size[0]}×{size[1]} pixels, over the limit of "
            f"{limits.max_source_pixels}"
        )


def output_format(source_format: str | None, spec: ResizeSpec) -> OutputFormat:
    """The URL's format, else the original's; asking for the original's own is non-canonical."""
    default = FORMATS[DEFAULT_OUTPUT[source_format or ""]]
    if spec.output is None:
        return default
    if spec.output == default and spec.quality is None:
        # Two URLs would make the same bytes; the short one is canonical.
        raise NonCanonicalSize(
            f"the original is already {default.name}; use {spec.without_output().token!r}"
        )
    return spec.output


def plan(size: tuple[int, int], spec: ResizeSpec) -> Geometry:
    """The crop, resample size and canvas for ``spec``; never enlarges the image."""
    width, height = size
    box_width, box_height = spec.box
    if spec.fit is Fit.COVER and box_width and box_height:  # the grammar requires both
        # Shrink the box until it fits inside the original, keeping its shape.
        shrink = max(1.0, box_width / width, box_height / height)
        content = (max(1, round(box_width / shrink)), max(1, round(box_height / shrink)))
        scale = max(content[0] / width, content[1] / height)
        crop = (min(width, round(content[0] / scale)), min(height, round(content[1] / scale)))
        return Geometry(size, crop, content, content)
    scale = min(
        1.0,
        box_width / width if box_width else 1.0,
        box_height / height if box_height else 1.0,
    )
    content = (max(1, round(width * scale)), max(1, round(height * scale)))
    canvas = (box_width, box_height) if spec.fit is Fit.PAD else content
    return Geometry(size, size, content, canvas)  # type: ignore[arg-type]


def fitted_size(size: tuple[int, int], spec: ResizeSpec) -> tuple[int, int]:
    """The output size for ``spec`` from an upright original of ``size``."""
    return plan(size, spec).canvas


def _render_still(
    image: Image.Image, spec: ResizeSpec, output: OutputFormat, limits: ImagingLimits
) -> Rendered:
    swaps = _orientation(image) in _SWAPPING_ORIENTATIONS
    geometry = plan(_swap(image.size) if swaps else image.size, spec)
    stored = _swap_geometry(geometry) if swaps else geometry
    shrink_on_load(image, stored)
    icc_profile = image.info.get("icc_profile")
    frame = resample(normalise_mode(image), stored)
    ImageOps.exif_transpose(frame, in_place=True)
    frame = to_srgb(frame, icc_profile)
    frame = pad(frame, geometry.canvas, limits.background)
    return encode([frame], output, spec, limits.background)


def _render_animation(
    image: Image.Image, spec: ResizeSpec, output: OutputFormat, limits: ImagingLimits
) -> Rendered:
    geometry = plan(image.size, spec)
    frames, durations, disposals = [], [], []
    for frame in ImageSequence.Iterator(image):
        frame.load()  # WebP sets a frame's duration only once it is loaded
        durations.append(int(frame.info.get("duration", 0)))
        disposals.append(int(getattr(frame, "disposal_method", 0)))
        # Each frame Pillow yields is already composited onto the ones before it.
        resized = resample(frame.convert("RGBA"), geometry)
        frames.append(pad(resized, geometry.canvas, limits.background))
    options = {
        "save_all": True,
        "append_images": frames[1:],
        "duration": durations,
        "loop": int(image.info.get("loop", 0)),
    }
    if output.pillow == "GIF":
        options["disposal"] = disposals
    return encode(frames, output, spec, limits.background, **options)


def _animate(image: Image.Image, output: OutputFormat, limits: ImagingLimits) -> bool:
    """Keep every frame when the output can animate and the budget allows."""
    frames = int(getattr(image, "n_frames", 1))
    if frames < 2 or output.pillow not in ANIMATED_OUTPUTS:
        return False
    pixels = frames * image.size[0] * image.size[1]
    if frames > limits.max_frames or pixels > limits.max_animation_pixels:
        # Over budget the first frame is served still: the page shows a picture,
        # and one request can't buy minutes of CPU.
        log.warning(
            "animation over budget (%d frames, %d pixels): first frame only", frames, pixels
        )
        return False
    return True


def shrink_on_load(image: Image.Image, geometry: Geometry) -> None:
    """Let the JPEG decoder scale by 1/2, 1/4 or 1/8, staying at least as large as needed."""
    if image.format not in ("JPEG", "MPO"):
        return
    scale = max(c / k for c, k in zip(geometry.content, geometry.crop, strict=True))
    image.draft(None, (math.ceil(image.size[0] * scale), math.ceil(image.size[1] * scale)))


def normalise_mode(image: Image.Image) -> Image.Image:
    """A mode Lanczos can resample without losing alpha, depth or colour."""
    if image.mode in ("RGB", "RGBA", "L", "LA", "CMYK", "I;16"):
        return image
    if image.mode in _HIGH_BIT_DEPTH:
        return image.convert("I;16")
    if image.mode == "1":
        return image.convert("L")
    if image.mode in ("P", "PA"):
        return image.convert("RGBA" if image.has_transparency_data else "RGB")
    return image.convert("RGB")  # YCbCr, LAB, HSV


def resample(image: Image.Image, geometry: Geometry) -> Image.Image:
    """Crop the centred region and resample it (see resampling_filter); one call either way.

    ``image`` may be smaller than the original (shrink-on-load), so the crop box
    is scaled to the image's actual size.
    """
    (crop_width, crop_height), (full_width, full_height) = geometry.crop, geometry.source
    x_scale, y_scale = image.size[0] / full_width, image.size[1] / full_height
    left = (full_width - crop_width) / 2 * x_scale
    top = (full_height - crop_height) / 2 * y_scale
    box = (left, top, left + crop_width * x_scale, top + crop_height * y_scale)
    if image.size == geometry.content and box == (0, 0, *image.size):
        image.load()
        return image
    reduction = (box[2] - box[0]) / geometry.content[0]
    # reducing_gap=2: whole-factor box reduction first while ≥ 2× remains
    # (Pillow's thumbnail default). A 12 MP WebP to 1000 px resamples in 50 ms
    # instead of 137, 55.8 dB PSNR from a plain Lanczos.
    return image.resize(geometry.content, resampling_filter(reduction), box=box, reducing_gap=2.0)


def resampling_filter(reduction: float) -> Image.Resampling:
    """Lanczos, except for the last bit of a reduction (under 2×) that shrink-on-load left.

    Measured on a 20 MP photo to 1000 px (1/4 DCT scale, then 1.5×): bicubic
    resamples in 16 ms instead of 22 and, once encoded at q85, is within 0.2 dB
    PSNR of Lanczos against a full-resolution Lanczos reference; at 2.5× the gap
    grows to 0.4 dB, so larger reductions keep Lanczos.
    """
    return Image.Resampling.BICUBIC if reduction < 2 else Image.Resampling.LANCZOS


def to_srgb(image: Image.Image, icc_profile: bytes | None) -> Image.Image:
    """Convert colour-managed pixels to sRGB, the colour space browsers assume.

    CMYK without a profile gets Pillow's plain conversion (no CMYK profile ships
    with Pillow).  A broken profile is ignored rather than failing the request.
    """
    target_mode = "RGBA" if image.mode in ("RGBA", "LA") else "RGB"
    if icc_profile and image.mode in ("RGB", "RGBA", "CMYK"):
        try:
            source = ImageCms.ImageCmsProfile(BytesIO(icc_profile))
            if "sRGB" not in ImageCms.getProfileDescription(source) or image.mode == "CMYK":
                converted = ImageCms.profileToProfile(image, source, _SRGB, outputMode=target_mode)
                assert converted is not None
                return converted
        except (ImageCms.PyCMSError, OSError) as err:
            log.warning("ignoring unusable ICC profile: %s", err)
    return image.convert("RGB") if image.mode == "CMYK" else image


def pad(
    image: Image.Image, canvas: tuple[int, int], background: tuple[int, int, int]
) -> Image.Image:
    """Centre ``image`` on a canvas: transparent when the image has alpha, else background."""
    if image.size == canvas:
        return image
    fill: tuple[int, ...] = (0, 0, 0, 0) if "A" in image.mode else background
    mode = "RGBA" if "A" in image.mode else "RGB"
    padded = Image.new(mode, canvas, fill)
    offset = ((canvas[0] - image.size[0]) // 2, (canvas[1] - image.size[1]) // 2)
    padded.paste(image.convert(mode), offset)
    return padded


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
    first.save(buffer, output.pillow, **options, **animation)
    return Rendered(buffer.getvalue(), output.content_type, *first.size, frames=len(frames))


def _encodable(
    image: Image.Image, pillow_format: str, background: tuple[int, int, int]
) -> Image.Image:
    """The image in a mode the encoder takes, alpha flattened where the format has none."""
    if image.mode == "I;16":
        if pillow_format == "PNG":
            return image
        # Scale 16 bits to 8, so a gradient stays a gradient instead of clipping.
        image = image.convert("I").point(lambda value: value / 257).convert("L")
    has_alpha = "A" in image.mode
    if has_alpha and pillow_format not in ALPHA_OUTPUTS:
        flat = Image.new("RGB", image.size, background)
        flat.paste(image.convert("RGBA"), mask=image.getchannel("A"))
        return flat
    if pillow_format in ("WEBP", "AVIF") and image.mode not in ("RGB", "RGBA"):
        return image.convert("RGBA" if has_alpha else "RGB")
    return image


def _orientation(image: Image.Image) -> int:
    return int(image.getexif().get(_ORIENTATION_TAG, 1))


def _swap(size: tuple[int, int]) -> tuple[int, int]:
    return size[1], size[0]


def _swap_geometry(geometry: Geometry) -> Geometry:
    return Geometry(
        *(
            _swap(size)
            for size in (geometry.source, geometry.crop, geometry.content, geometry.canvas)
        )
    )
