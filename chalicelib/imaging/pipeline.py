"""The decode pipeline: original bytes in, a variant's frames out, each step a no-op when idle.

open → plan the geometry → shrink on load (JPEG; still WebP through libwebp) → normalise the mode →
resize (with the crop box) → upright (EXIF) → sRGB → pad → watermark (overlay.py) → encode.
Resizing comes before rotation and colour conversion, so those touch few pixels.
Pure: no I/O, no settings lookups.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from io import BytesIO
from typing import Any

from PIL import Image, ImageChops, ImageCms

from chalicelib.imaging import colour, containers, exif, webp
from chalicelib.imaging.attention import placed
from chalicelib.imaging.decoding import decoded_frames, frame_count, loaded, opened
from chalicelib.imaging.encoders import Rendered, eight_bit, encode
from chalicelib.imaging.formats import (
    ANIMATED_OUTPUTS,
    ANIMATED_SOURCES,
    output_format,
)
from chalicelib.imaging.geometry import (
    Geometry,
    Job,
    Position,
    area,
    centred_offset,
    plan,
    reducing_gap,
    scaled_decode_size,
    swap,
)
from chalicelib.imaging.limits import ImagingLimits
from chalicelib.imaging.memory import (
    GREY_MODES,
    HIGH_BIT_DEPTH,
    check_memory,
    check_pixels,
    estimated_bytes,
    normal_mode,
)
from chalicelib.imaging.overlay import Mark, Stamp
from chalicelib.imaging.watermark import Watermark
from chalicelib.resize.grammar import OutputFormat, ResizeSpec

log = logging.getLogger(__name__)


# Formats whose decoder scales down as it decodes (draft): decoded per output size.
SHRINK_ON_LOAD_FORMATS = frozenset({"JPEG", "MPO"})


_SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


@dataclass(frozen=True)
class Source:
    """What the header of an original says, before any pixel is decoded."""

    format: str  # Pillow's name: JPEG, MPO, PNG, GIF, WEBP, AVIF, BMP, TIFF
    size: tuple[int, int]  # what render() plans with for the spec: upright for stills
    alpha: bool = False  # an alpha channel or a transparent colour
    frames: int = 1  # as the walk counts them (an animation's, whatever the output)
    # The container walk, so a render of these bytes need not walk them again.
    structure: containers.Structure | None = field(default=None, repr=False, compare=False)


def inspect(original: bytes, spec: ResizeSpec, limits: ImagingLimits | None = None) -> Source:
    """Run every check render() runs before decoding, and say what it would plan with."""
    with _checked(original, spec, limits or ImagingLimits(), None) as (image, job, structure):
        return Source(
            str(image.format),
            job.geometry.source,
            alpha="A" in normal_mode(image),
            frames=source_frames(image, structure),
            structure=structure,
        )


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
    focus: Position | None = None,
    watermark: Watermark | None = None,
    inspected: Source | None = None,
) -> Rendered:
    """Resize an encoded image to ``spec`` and encode it (``shared``: across sizes of it;
    ``focus``: the original's focal point, x and y fractions of the upright image;
    ``watermark``: composited onto every frame of outputs at least its ``min_size``;
    ``inspected``: what inspect() said of these same bytes, whose walk is then reused)."""
    limits = limits or ImagingLimits()
    mark = Mark.of(watermark, limits) if watermark is not None else None
    walked = inspected.structure if inspected is not None else None
    with _checked(original, spec, limits, focus, mark, walked) as (image, job, _):
        stamp = mark.stamp(job.geometry) if mark is not None else None
        if job.frames > 1:
            return _render_animation(image, job, spec, limits, stamp)
        return _render_still(original, image, job, spec, limits, shared, stamp)


@contextmanager
def _checked(
    original: bytes,
    spec: ResizeSpec,
    limits: ImagingLimits,
    focus: Position | None,
    mark: Mark | None = None,
    walked: containers.Structure | None = None,
) -> Iterator[tuple[Image.Image, Job, containers.Structure]]:
    """The original opened and its job planned, once every check before decoding has passed.

    Cheapest first: the container walk (which refuses what Pillow would
    parse for seconds), the decoder buffers allocated when opening (a WebP's
    canvas), the header's size, then the memory the whole render would take,
    with its watermark (``mark``: already checked and decoded).
    """
    structure = walked if walked is not None else containers.walk(original, limits.max_frames)
    check_memory(structure.decoder_bytes, limits)
    with opened(original) as image:
        check_pixels(image.size, limits)
        job = _plan_job(original, image, structure, spec, limits, focus, mark)
        yield image, job, structure


def _plan_job(
    original: bytes,
    image: Image.Image,
    structure: containers.Structure,
    spec: ResizeSpec,
    limits: ImagingLimits,
    focus: Position | None,
    mark: Mark | None,
) -> Job:
    """Every frame if the output can animate and the budgets allow; else the first, still."""
    output = output_format(image.format, spec)
    animation = Job(output, plan(image.size, spec, focus), _frame_count(image, structure, output))
    if animation.frames > 1 and _within_animation_budget(image, structure, animation, limits, mark):
        return animation
    orientation = exif.read(image, original, structure).orientation
    size = swap(image.size) if orientation in exif.SWAPPING else image.size
    still = Job(output, plan(size, spec, focus), orientation=orientation)
    shrink_on_load(image, still.stored_geometry)  # only changes what will be decoded
    check_memory(_peak(image, structure, still, mark), limits)
    return still


def _peak(image: Image.Image, structure: containers.Structure, job: Job, mark: Mark | None) -> int:
    """The memory model's estimate of ``job``'s peak, with its mark (scaled once for every
    frame; a grey still is made RGB for it)."""
    estimate = estimated_bytes(image, structure, job)
    if mark is None:
        return estimate
    grey = job.frames == 1 and normal_mode(image) in GREY_MODES
    return mark.peak(estimate, job.geometry, grey)


def _frame_count(image: Image.Image, structure: containers.Structure, output: OutputFormat) -> int:
    """Frames an animated output would keep: counted by the walk, never by seeking through them."""
    return source_frames(image, structure) if output.pillow in ANIMATED_OUTPUTS else 1


def source_frames(image: Image.Image, structure: containers.Structure) -> int:
    """The original's frames, counted by the walk; 1 for formats whose pages are no animation."""
    if image.format not in ANIMATED_SOURCES:
        return 1
    if structure.frames is not None:
        return structure.frames
    return frame_count(image)  # AVIF: from its sample table, nothing decoded


def _within_animation_budget(
    image: Image.Image,
    structure: containers.Structure,
    job: Job,
    limits: ImagingLimits,
    mark: Mark | None,
) -> bool:
    """Over budget the first frame is served still: the page shows a picture, and
    one request can't buy minutes of CPU or gigabytes of frames."""
    canvas = area(structure.canvas or image.size)  # a GIF's grows with every frame's extent
    pixels = job.frames * max(canvas, area(job.geometry.canvas))
    estimate = _peak(image, structure, job, mark)
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


def _render_still(
    original: bytes,
    image: Image.Image,
    job: Job,
    spec: ResizeSpec,
    limits: ImagingLimits,
    shared: SharedDecode | None,
    stamp: Stamp | None,
) -> Rendered:
    # An embedded profile, else one for the colour space a HEIF's nclx box names.
    icc_profile = image.info.get("icc_profile") or colour.nclx_icc(image.info.get("nclx_profile"))
    decoded = scaled_webp(original, image, job.stored_geometry) or full_decode(image, shared)
    frame = unpremultiplied(resample(decoded, placed(decoded, job.stored_geometry)))
    if shared is not None and frame is shared.image:
        frame = frame.copy()  # the encoder clears its info; other sizes need it as it is
    frame = exif.upright(frame, job.orientation)
    frame = to_srgb(frame, icc_profile)
    frame = pad(frame, job.geometry.canvas, limits.background)
    if stamp is not None:
        frame = stamp.onto(frame)
    return encode([frame], job.output, spec, limits.background)


def _render_animation(
    image: Image.Image, job: Job, spec: ResizeSpec, limits: ImagingLimits, stamp: Stamp | None
) -> Rendered:
    geometry = job.geometry
    frames: list[Image.Image] = []
    durations: list[int] = []
    disposals: list[int] = []
    for frame in decoded_frames(image):  # loaded: WebP sets a frame's duration only then
        # Each frame Pillow yields is already composited onto the ones before it.
        rgba = _first_canvas(frame, geometry.source)
        geometry = placed(rgba, geometry)  # smart: chosen on the first frame, kept for all
        resized = pad(resample(rgba, geometry), geometry.canvas, limits.background)
        if stamp is not None:
            resized = stamp.onto(resized)
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
    if frame.mode in HIGH_BIT_DEPTH:
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


def unpremultiplied(image: Image.Image) -> Image.Image:
    """``RGBa`` (from the scaled WebP decode) back to plain ``RGBA``; anything else as it is."""
    return image.convert("RGBA") if image.mode == "RGBa" else image


def normalise_mode(image: Image.Image) -> Image.Image:
    """``image`` in its normal_mode."""
    mode = normal_mode(image)
    return image if image.mode == mode else image.convert(mode)


def full_decode(image: Image.Image, shared: SharedDecode | None) -> Image.Image:
    """``image`` in its normal mode, decoded once per ``shared`` where the size doesn't matter."""
    if shared is None or image.format in SHRINK_ON_LOAD_FORMATS:
        return normalise_mode(loaded(image))
    if shared.image is None:
        shared.image = normalise_mode(loaded(image))  # decoded now, while the file is open
    return shared.image


def resample(image: Image.Image, geometry: Geometry) -> Image.Image:
    """Crop the placed region and resample it (see resampling_filter); one call either way.

    ``image`` may be smaller than the original (shrink-on-load), so the crop box
    is scaled to the image's actual size.
    """
    box = geometry.crop_box(image.size)
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
    offset = centred_offset(image.size, canvas)
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
