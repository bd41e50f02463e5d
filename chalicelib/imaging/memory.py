"""The measured memory model: what a render will hold at its peak, from headers alone.

The functions read an opened image's size and mode only; none decodes a pixel.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from chalicelib.errors import OriginalTooManyPixels
from chalicelib.imaging.geometry import Job, area
from chalicelib.imaging.limits import ImagingLimits

if TYPE_CHECKING:
    from PIL import Image

    from chalicelib.imaging.containers import Structure


HIGH_BIT_DEPTH = frozenset({"I", "F", "I;16", "I;16L", "I;16B", "I;16N"})
# Normal modes (see normal_mode) without colour.
GREY_MODES = frozenset({"L", "LA", "I"})


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


# A watermark is RGBA: four bytes a pixel, whichever copy.
MARK_BYTES = 4
# Scaling a mark, per pixel of the scaled copy: Pillow's premultiplied result,
# its RGBA conversion, the alpha channel and its opacity-scaled copy.
SCALING_BYTES = 4 + 4 + 1 + 1
# Compositing, per pixel of the scaled copy: the copy itself (kept), and the
# two copies of the output's region an alpha composite makes.
COMPOSITING_BYTES = 4 + 4 + 4


def estimated_bytes(image: Image.Image, structure: Structure, job: Job) -> int:
    """The memory model: peak bytes a render of ``job`` holds, from headers alone.

    The decoder's own buffers (preflight), the decoded pixels with the copies
    the pipeline makes of them (pipeline_bytes_per_pixel; after shrink-on-load
    for a still JPEG), the resampler's intermediate, and the encoder's share
    per output pixel; for an animation, every composited source frame's
    copies and every output frame.
    """
    decoded = area(image.size)
    decoder = decoder_bytes(image, structure)
    canvas = area(job.geometry.canvas)
    alpha = job.frames > 1 or "A" in normal_mode(image)  # animation frames are RGBA
    encoder = canvas * OUTPUT_BYTES_PER_PIXEL[job.output.pillow][alpha]
    if job.frames == 1:
        pixels = decoded * pipeline_bytes_per_pixel(image)
        return decoder + pixels + _resample_bytes(image, job) + encoder
    composited = area(structure.canvas or image.size)
    frames = job.frames * canvas * ANIMATION_FRAME_BYTES
    return decoder + composited * ANIMATION_SOURCE_BYTES + frames + encoder


def decoder_bytes(image: Image.Image, structure: Structure) -> int:
    """What the decoder holds besides the decoded pixels (preflight's figures)."""
    return structure.decoder_bytes + round(structure.decoder_bytes_per_pixel * area(image.size))


def mark_decode_bytes(image: Image.Image, structure: Structure) -> int:
    """Peak bytes decoding a watermark takes: the decoder's share, the decoded pixels, an
    8-bit or RGB step on the way, and the RGBA copy kept."""
    pixels = area(image.size)
    return decoder_bytes(image, structure) + pixels * (storage_bytes(image.mode) + 4 + MARK_BYTES)


def marked_bytes(
    render: int,
    mark: tuple[int, int],
    box: tuple[int, int, int, int] | None,
    recoloured: int,
) -> int:
    """A render's peak (``render`` bytes unmarked) with a mark of size ``mark`` placed at
    ``box`` (None: unmarked); ``recoloured``: pixels of grey output made RGB for the mark.

    The larger of two moments.  Scaling, before the original is decoded: the
    decoded mark, the premultiplied copy Pillow resamples it in, the
    resampler's first pass (scaled width by the mark's height), SCALING_BYTES
    per scaled pixel.  Compositing, at the render's peak: the decoded mark
    and the scaled copy (both kept for the process), the composite's copies,
    the recoloured frame.
    """
    if box is None:
        return render
    scaled = area(box[2:])  # type: ignore[arg-type]
    scaling = 2 * MARK_BYTES * area(mark) + MARK_BYTES * box[2] * mark[1] + SCALING_BYTES * scaled
    compositing = MARK_BYTES * area(mark) + COMPOSITING_BYTES * scaled + MARK_BYTES * recoloured
    return max(scaling, render + compositing)


def _resample_bytes(image: Image.Image, job: Job) -> int:
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


def check_pixels(size: tuple[int, int], limits: ImagingLimits) -> None:
    """Refuse an original whose header declares more pixels than allowed (a decompression bomb)."""
    if size[0] * size[1] > limits.max_source_pixels:
        raise OriginalTooManyPixels(
            f"the original has {size[0]}×{size[1]} pixels, over the limit of "
            f"{limits.max_source_pixels}"
        )


def normal_mode(image: Image.Image) -> str:
    """The mode Lanczos can resample ``image`` in without losing alpha, depth or colour.

    16-bit grey becomes 32-bit ``I``: Pillow can't reduce ``I;16`` (reducing_gap
    fails) and garbles big-endian ``I;16B`` when resizing it.
    """
    if image.mode in ("RGB", "RGBA", "L", "LA", "CMYK"):
        return image.mode
    if image.mode in HIGH_BIT_DEPTH:
        return "I"
    if image.mode == "1":
        return "L"
    if image.mode in ("P", "PA"):
        return "RGBA" if image.has_transparency_data else "RGB"
    return "RGB"  # YCbCr, LAB, HSV
