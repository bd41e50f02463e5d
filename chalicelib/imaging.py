"""Imaging: original bytes in, variant bytes out.  Pure: no I/O, no settings lookups.

A short list of steps, each a no-op when it has nothing to do:
open → plan the geometry → shrink on load (JPEG; still WebP through libwebp) → normalise the mode →
resize (with the crop box) → upright (EXIF) → sRGB → pad → encode.
Resizing comes before rotation and colour conversion, so those touch few pixels.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, replace
from io import BytesIO
from typing import Any

from PIL import Image, ImageChops, ImageCms, ImageOps, ImageSequence, UnidentifiedImageError

from chalicelib import preflight, webp
from chalicelib.errors import (
    InvalidImage,
    NonCanonicalSize,
    OriginalTooManyPixels,
    UnsupportedImage,
)
from chalicelib.grammar import OUTPUT_FORMATS, Fit, OutputFormat, ResizeSpec
from chalicelib.limits import ImagingLimits

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
# A TIFF's pages and an MPO's second picture are not animations: never counted.
ANIMATED_SOURCES = frozenset({"GIF", "WEBP", "PNG", "AVIF"})
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
# A still WebP is decoded by libwebp straight to twice the output's size while
# that is at most this many pixels (300 px outputs), else to the output's size
# (see scaled_decode_size).
SCALED_DECODE_TWICE_MAX_PIXELS = 1_000_000

# Formats whose decoder scales down as it decodes (draft): decoded per output size.
SHRINK_ON_LOAD_FORMATS = frozenset({"JPEG", "MPO"})

# EXIF orientations 5–8 store the picture turned by 90°: width and height swap.
_SWAPPING_ORIENTATIONS = frozenset({5, 6, 7, 8})
_ORIENTATION_TAG = 0x0112
_HIGH_BIT_DEPTH = frozenset({"I", "F", "I;16", "I;16L", "I;16B", "I;16N"})
_SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


# The memory model (see estimated_bytes), measured with scripts/bench/bombs.py's
# child on this machine, rounded up: peak resident bytes per pixel.
# Encoding, per pixel of the output canvas, opaque and with alpha (flattened
# for JPEG; kept by the others): the canvas, the encoder's own buffers.
OUTPUT_BYTES_PER_PIXEL = {
    "JPEG": (8, 14),
    "PNG": (5, 5),
    "GIF": (13, 13),
    "WEBP": (11, 18),
    "AVIF": (23, 26),
}
# Animations: every output frame is kept (RGBA) until the encoder has them all,
# and it keeps its own copies; ~8.5 bytes a frame pixel measured.
ANIMATION_FRAME_BYTES = 9
# Each composited source frame: Pillow's canvas, its RGBA copy, the premultiplied copy.
ANIMATION_SOURCE_BYTES = 13


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
    with _checked(original, spec, limits or ImagingLimits()) as (image, job):
        return Source(str(image.format), job.geometry.source)


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


@dataclass
class SharedDecode:
    """One original's full-size decode, shared by the renders of several sizes of it.

    For presets: each render still runs every check, but decodes the pixels
    only if no earlier one has.  Only decodes that don't depend on the size
    are kept: a JPEG is drafted per size and libwebp scales a still WebP per
    size.  One instance per original.
    """

    image: Image.Image | None = None


def render(
    original: bytes,
    spec: ResizeSpec,
    limits: ImagingLimits | None = None,
    shared: SharedDecode | None = None,
) -> Rendered:
    """Resize an encoded image to ``spec`` and encode it (``shared``: across sizes of it)."""
    limits = limits or ImagingLimits()
    with _checked(original, spec, limits) as (image, job):
        if job.frames > 1:
            return _render_animation(image, job, spec, limits)
        return _render_still(original, image, job, spec, limits, shared)


@dataclass(frozen=True)
class _Job:
    """What render will do, decided before any pixel is decoded."""

    output: OutputFormat
    geometry: Geometry  # in upright coordinates
    frames: int = 1  # 1: the first frame, still
    swaps: bool = False  # stored on its side (EXIF orientation 5–8)

    @property
    def stored_geometry(self) -> Geometry:
        """The geometry in the file's stored orientation, as the decoder sees it."""
        return _swap_geometry(self.geometry) if self.swaps else self.geometry


@contextmanager
def _checked(
    original: bytes, spec: ResizeSpec, limits: ImagingLimits
) -> Iterator[tuple[Image.Image, _Job]]:
    """The original opened and its job planned, once every check before decoding has passed.

    Cheapest first: the container walk (which refuses what Pillow would
    parse for seconds), the decoder buffers allocated when opening (a WebP's
    canvas), the header's size, then the memory the whole render would take.
    """
    structure = preflight.walk(original, limits.max_frames)
    check_memory(structure.decoder_bytes, limits)
    with _opened(original) as image:
        check_pixels(image.size, limits)
        yield image, _plan_job(image, structure, spec, limits)


def _plan_job(
    image: Image.Image, structure: preflight.Structure, spec: ResizeSpec, limits: ImagingLimits
) -> _Job:
    """Every frame if the output can animate and the budgets allow; else the first, still."""
    output = output_format(image.format, spec)
    animation = _Job(output, plan(image.size, spec), _frame_count(image, structure, output))
    if animation.frames > 1 and _within_animation_budget(image, structure, animation, limits):
        return animation
    swaps = stored_on_its_side(exif_of(image, structure))
    still = _Job(output, plan(_swap(image.size) if swaps else image.size, spec), swaps=swaps)
    shrink_on_load(image, still.stored_geometry)  # only changes what will be decoded
    check_memory(estimated_bytes(image, structure, still), limits)
    return still


def _frame_count(image: Image.Image, structure: preflight.Structure, output: OutputFormat) -> int:
    """Frames an animated output would keep: counted by the walk, never by seeking through them."""
    if output.pillow not in ANIMATED_OUTPUTS or image.format not in ANIMATED_SOURCES:
        return 1
    if structure.frames is not None:
        return structure.frames
    return int(getattr(image, "n_frames", 1))  # AVIF: from its sample table, nothing decoded


def _within_animation_budget(
    image: Image.Image, structure: preflight.Structure, job: _Job, limits: ImagingLimits
) -> bool:
    """Over budget the first frame is served still: the page shows a picture, and
    one request can't buy minutes of CPU or gigabytes of frames."""
    canvas = _area(structure.canvas or image.size)  # a GIF's grows with every frame's extent
    pixels = job.frames * max(canvas, _area(job.geometry.canvas))
    estimate = estimated_bytes(image, structure, job)
    if (
        job.frames > limits.max_frames
        or pixels > limits.max_animation_pixels
        or canvas > limits.max_source_pixels
        or estimate > limits.max_render_bytes
    ):
        log.warning(
            "animation over budget (%d+ frames, %d pixels, ~%d MiB): first frame only",
            job.frames,
            pixels,
            estimate >> 20,
        )
        return False
    return True


def estimated_bytes(image: Image.Image, structure: preflight.Structure, job: _Job) -> int:
    """The memory model: peak bytes a render of ``job`` holds, from headers alone.

    The decoder's own buffers (preflight), the decoded pixels with the copies
    the pipeline makes of them (pipeline_bytes_per_pixel; after shrink-on-load
    for a still JPEG), the resampler's intermediate, and the encoder's share
    per output pixel; for an animation, every composited source frame's
    copies and every output frame.
    """
    decoded = _area(image.size)
    decoder = structure.decoder_bytes + round(structure.decoder_bytes_per_pixel * decoded)
    canvas = _area(job.geometry.canvas)
    alpha = job.frames > 1 or "A" in normal_mode(image)  # animation frames are RGBA
    encoder = canvas * OUTPUT_BYTES_PER_PIXEL[job.output.pillow][alpha]
    if job.frames == 1:
        pixels = decoded * pipeline_bytes_per_pixel(image)
        return decoder + pixels + _resample_bytes(image, job) + encoder
    composited = _area(structure.canvas or image.size)
    frames = job.frames * canvas * ANIMATION_FRAME_BYTES
    return decoder + composited * ANIMATION_SOURCE_BYTES + frames + encoder


def _resample_bytes(image: Image.Image, job: _Job) -> int:
    """Pillow resamples across, then down: the first pass is output-wide and source-high."""
    width = job.stored_geometry.content[0]
    return width * image.size[1] * storage_bytes(normal_mode(image))


def pipeline_bytes_per_pixel(image: Image.Image) -> int:
    """Peak bytes per decoded pixel on the way to the output: the decoded image,
    its normalised copy, and the premultiplied copy Pillow resamples alpha in."""
    normal = normal_mode(image)
    total = storage_bytes(image.mode)
    if normal != image.mode:
        total += storage_bytes(normal)
    if "A" in normal:
        total += storage_bytes(normal)
    return total


def storage_bytes(mode: str) -> int:
    """Bytes Pillow stores a pixel of ``mode`` in: RGB is kept as four, like RGBA, and LA too."""
    if mode in ("1", "L", "P"):
        return 1
    return 2 if mode.startswith("I;16") else 4


def check_memory(estimate: int, limits: ImagingLimits) -> None:
    """Refuse a render the memory model says would take more than the budget."""
    if estimate > limits.max_render_bytes:
        raise OriginalTooManyPixels(
            f"rendering the original would take about {estimate >> 20} MiB, over the limit of "
            f"{limits.max_render_bytes >> 20} MiB"
        )


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
    original: bytes,
    image: Image.Image,
    job: _Job,
    spec: ResizeSpec,
    limits: ImagingLimits,
    shared: SharedDecode | None,
) -> Rendered:
    icc_profile = image.info.get("icc_profile")
    decoded = scaled_webp(original, image, job.stored_geometry) or full_decode(image, shared)
    frame = unpremultiplied(resample(decoded, job.stored_geometry))
    if shared is not None and frame is shared.image:
        frame = frame.copy()  # the steps below change it in place; other sizes need it as it is
    ImageOps.exif_transpose(frame, in_place=True)
    frame = to_srgb(frame, icc_profile)
    frame = pad(frame, job.geometry.canvas, limits.background)
    return encode([frame], job.output, spec, limits.background)


def _render_animation(
    image: Image.Image, job: _Job, spec: ResizeSpec, limits: ImagingLimits
) -> Rendered:
    geometry = job.geometry
    frames: list[Image.Image] = []
    durations: list[int] = []
    disposals: list[int] = []
    for frame in ImageSequence.Iterator(image):
        frame.load()  # WebP sets a frame's duration only once it is loaded
        # Each frame Pillow yields is already composited onto the ones before it.
        rgba = _first_canvas(frame, geometry.source)
        resized = pad(resample(rgba, geometry), geometry.canvas, limits.background)
        duration = int(frame.info.get("duration", 0))
        if frames and _same_pixels(frames[-1], resized):
            durations[-1] += duration  # one frame shown for both (encoders choke on repeats)
            continue
        frames.append(resized)
        durations.append(duration)
        disposals.append(int(getattr(frame, "disposal_method", 0)))
    if len(frames) == 1:
        return encode(frames, job.output, spec, limits.background)
    options: dict[str, Any] = {
        "save_all": True,
        "append_images": frames[1:],
        "duration": durations,
        "loop": int(image.info.get("loop", 0)),
    }
    if job.output.pillow == "GIF":
        # One value when all agree: should the writer still merge frames it finds
        # equal once quantized, a per-frame list would outlive the frames.
        options["disposal"] = disposals[0] if len(set(disposals)) == 1 else disposals
    return encode(frames, job.output, spec, limits.background, **options)


def _first_canvas(frame: Image.Image, canvas: tuple[int, int]) -> Image.Image:
    """The frame in RGBA on the first frame's canvas.

    Pillow enlarges a GIF's canvas for later frames placed past it; browsers
    clip them to the canvas the first frame set, and so does this.  16-bit
    frames are scaled to 8 bits rather than clipped.
    """
    if frame.size != canvas:
        frame = frame.crop((0, 0, *canvas))
    if frame.mode in _HIGH_BIT_DEPTH:
        frame = eight_bit(frame)
    return frame.convert("RGBA")


def _same_pixels(first: Image.Image, second: Image.Image) -> bool:
    difference = ImageChops.difference(first, second)
    return first.mode == second.mode and difference.getbbox(alpha_only=False) is None


def shrink_on_load(image: Image.Image, geometry: Geometry) -> None:
    """Let the JPEG decoder scale by 1/2, 1/4 or 1/8, staying at least as large as needed."""
    if image.format not in SHRINK_ON_LOAD_FORMATS:
        return
    scale = max(c / k for c, k in zip(geometry.content, geometry.crop, strict=True))
    image.draft(None, (math.ceil(image.size[0] * scale), math.ceil(image.size[1] * scale)))


def scaled_webp(original: bytes, image: Image.Image, geometry: Geometry) -> Image.Image | None:
    """A still WebP decoded by libwebp at the size resample wants to start from (see
    scaled_decode_size), carrying the original's metadata; None: Pillow decodes it.

    With alpha the pixels come premultiplied (``RGBa``), which is what Lanczos
    resamples in anyway; unpremultiplied() undoes it after resampling.
    """
    if image.format != "WEBP" or getattr(image, "n_frames", 1) != 1 or not webp.available():
        return None
    size = scaled_decode_size(geometry)
    try:
        decoded = webp.decode_scaled(original, image.size, size, alpha=image.mode == "RGBA")
    except webp.ScaledDecodeError as err:
        log.warning("libwebp's scaled decode failed, Pillow decodes instead: %s", err)
        return None
    if decoded is not None:
        decoded.info = dict(image.info)  # EXIF (orientation), ICC, XMP: as Pillow read them
    return decoded


def scaled_decode_size(geometry: Geometry) -> tuple[int, int]:
    """Twice the output's resolution while that is small, else the output's own; never
    more than the original.

    libwebp's rescaler averages areas: straight to the output it costs ~0.7 dB
    PSNR at 300 px against a Lanczos from full size (0.2 dB at 1000 px); from
    twice the output, Lanczos recovers today's quality.  Past
    SCALED_DECODE_TWICE_MAX_PIXELS the doubled decode costs more time than it
    buys quality (README, WebP).
    """
    twice = _area(geometry.content) * 4 <= SCALED_DECODE_TWICE_MAX_PIXELS
    factor = 2 if twice else 1
    return tuple(  # type: ignore[return-value]
        min(full, -(-full * content * factor // crop))
        for full, content, crop in zip(
            geometry.source, geometry.content, geometry.crop, strict=True
        )
    )


def unpremultiplied(image: Image.Image) -> Image.Image:
    """``RGBa`` (from the scaled WebP decode) back to plain ``RGBA``; anything else as it is."""
    return image.convert("RGBA") if image.mode == "RGBa" else image


def normal_mode(image: Image.Image) -> str:
    """The mode Lanczos can resample ``image`` in without losing alpha, depth or colour.

    16-bit grey becomes 32-bit ``I``: Pillow can't reduce ``I;16`` (reducing_gap
    fails) and garbles big-endian ``I;16B`` when resizing it.
    """
    if image.mode in ("RGB", "RGBA", "L", "LA", "CMYK"):
        return image.mode
    if image.mode in _HIGH_BIT_DEPTH:
        return "I"
    if image.mode == "1":
        return "L"
    if image.mode in ("P", "PA"):
        return "RGBA" if image.has_transparency_data else "RGB"
    return "RGB"  # YCbCr, LAB, HSV


def normalise_mode(image: Image.Image) -> Image.Image:
    """``image`` in its normal_mode."""
    mode = normal_mode(image)
    return image if image.mode == mode else image.convert(mode)


def full_decode(image: Image.Image, shared: SharedDecode | None) -> Image.Image:
    """``image`` in its normal mode, decoded once per ``shared`` where the size doesn't matter."""
    if shared is None or image.format in SHRINK_ON_LOAD_FORMATS:
        return normalise_mode(image)
    if shared.image is None:
        decoded = normalise_mode(image)
        decoded.load()  # decoded now, while the original's file is open
        shared.image = decoded
    return shared.image


def eight_bit(image: Image.Image) -> Image.Image:
    """Deep grey scaled to 8 bits, so a gradient stays a gradient instead of clipping."""
    return image.convert("I").point(lambda value: value / 257).convert("L")


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
    return image.resize(
        geometry.content,
        resampling_filter(reduction),
        box=box,
        reducing_gap=reducing_gap(box, geometry.content),
    )


def reducing_gap(box: tuple[float, float, float, float], size: tuple[int, int]) -> float:
    """How much of a reduction Pillow's box ``reduce`` does before Lanczos takes over.

    2 (Pillow's thumbnail default): whole-factor box reduction first while ≥ 2×
    remains; a 12 MP WebP to 1000 px resamples in 50 ms instead of 137, 55.8 dB
    PSNR from a plain Lanczos.  When both sides shrink by the same whole factor
    (a 2000² PNG to 1000²), 1: the box reduction is the whole resize, 11 ms
    instead of 49, 49.7 dB PSNR from Lanczos on a photo (README, PNG).
    """
    factors = ((box[2] - box[0]) / size[0], (box[3] - box[1]) / size[1])
    whole = factors[0] == factors[1] and factors[0] >= 2 and factors[0].is_integer()
    return 1.0 if whole else 2.0


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
    """Centre ``image`` on a canvas: transparent when the image has alpha, else background.

    Deep grey stays deep on a grey background; on a coloured one it is scaled
    to 8 bits first (a plain conversion to RGB would clip it to white).
    """
    if image.size == canvas:
        return image
    offset = ((canvas[0] - image.size[0]) // 2, (canvas[1] - image.size[1]) // 2)
    if image.mode == "I" and len(set(background)) == 1:
        padded = Image.new("I", canvas, background[0] * 257)
        padded.paste(image, offset)
        return padded
    if image.mode == "I":
        image = eight_bit(image)
    fill: tuple[int, ...] = (0, 0, 0, 0) if "A" in image.mode else background
    mode = "RGBA" if "A" in image.mode else "RGB"
    padded = Image.new(mode, canvas, fill)
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


def _area(size: tuple[int, int]) -> int:
    return size[0] * size[1]


def exif_of(image: Image.Image, structure: preflight.Structure) -> Image.Exif:
    """The original's EXIF, read without decoding a PNG whose metadata precedes its pixels.

    Pillow's PNG reader decodes every pixel before it answers getexif(), in case
    an eXIf chunk follows them; the walk has seen whether one does.  When none
    does, Pillow has already read every chunk getexif() looks at, and the base
    class's getexif() answers from them.
    """
    if image.format == "PNG" and not structure.metadata_after_pixels:
        return Image.Image.getexif(image)
    return image.getexif()


def stored_on_its_side(exif: Image.Exif) -> bool:
    """EXIF orientation 5–8: stored turned by 90°, so width and height show swapped."""
    return int(exif.get(_ORIENTATION_TAG, 1)) in _SWAPPING_ORIENTATIONS


def _swap(size: tuple[int, int]) -> tuple[int, int]:
    return size[1], size[0]


def _swap_geometry(geometry: Geometry) -> Geometry:
    return Geometry(
        *(
            _swap(size)
            for size in (geometry.source, geometry.crop, geometry.content, geometry.canvas)
        )
    )


def open_checked(original: bytes) -> AbstractContextManager[Image.Image]:
    """The original opened for reading (only the formats we decode), Pillow's failures typed."""
    return _opened(original)
