"""Pure geometry: where an output's pixels come from, its size, and its one canonical spelling."""

from __future__ import annotations

from dataclasses import dataclass, replace

from chalicelib.resize.grammar import Fit, OutputFormat, ResizeSpec

# A still WebP is decoded by libwebp straight to twice the output's size while
# that is at most this many pixels (300 px outputs), else to the output's size
# (see scaled_decode_size).
SCALED_DECODE_TWICE_MAX_PIXELS = 1_000_000


@dataclass(frozen=True)
class Geometry:
    """Where the output's pixels come from, in the original's upright coordinates."""

    source: tuple[int, int]  # the original's size
    crop: tuple[int, int]  # centred region of the original that is kept
    content: tuple[int, int]  # size the kept region is resampled to
    canvas: tuple[int, int]  # final size (larger than content only for pad)


@dataclass(frozen=True)
class Job:
    """What render will do, decided before any pixel is decoded."""

    output: OutputFormat
    geometry: Geometry  # in upright coordinates
    frames: int = 1  # 1: the first frame, still
    orientation: int = 1  # EXIF orientation of a still: 5–8 are stored on their side

    @property
    def swaps(self) -> bool:
        return self.orientation in (5, 6, 7, 8)

    @property
    def stored_geometry(self) -> Geometry:
        """The geometry in the file's stored orientation, as the decoder sees it."""
        return swapped(self.geometry) if self.swaps else self.geometry


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


def scaled_decode_size(geometry: Geometry) -> tuple[int, int]:
    """Twice the output's resolution while that is small, else the output's own; never
    more than the original.

    libwebp's rescaler averages areas: straight to the output it costs ~0.7 dB
    PSNR at 300 px against a Lanczos from full size (0.2 dB at 1000 px); from
    twice the output, Lanczos recovers today's quality.  Past
    SCALED_DECODE_TWICE_MAX_PIXELS the doubled decode costs more time than it
    buys quality (docs/formats.md).
    """
    twice = area(geometry.content) * 4 <= SCALED_DECODE_TWICE_MAX_PIXELS
    factor = 2 if twice else 1
    return tuple(  # type: ignore[return-value]
        min(full, -(-full * content * factor // crop))
        for full, content, crop in zip(
            geometry.source, geometry.content, geometry.crop, strict=True
        )
    )


def reducing_gap(box: tuple[float, float, float, float], size: tuple[int, int]) -> float:
    """How much of a reduction Pillow's box ``reduce`` does before Lanczos takes over.

    2 (Pillow's thumbnail default): whole-factor box reduction first while ≥ 2×
    remains; a 12 MP WebP to 1000 px resamples in 50 ms instead of 137, 55.8 dB
    PSNR from a plain Lanczos.  When both sides shrink by the same whole factor
    (a 2000² PNG to 1000²), 1: the box reduction is the whole resize, 11 ms
    instead of 49, 49.7 dB PSNR from Lanczos on a photo (docs/formats.md).
    """
    factors = ((box[2] - box[0]) / size[0], (box[3] - box[1]) / size[1])
    whole = factors[0] == factors[1] and factors[0] >= 2 and factors[0].is_integer()
    return 1.0 if whole else 2.0


def area(size: tuple[int, int]) -> int:
    """Pixels in a ``(width, height)``."""
    return size[0] * size[1]


def swap(size: tuple[int, int]) -> tuple[int, int]:
    """``(width, height)`` turned by 90°."""
    return size[1], size[0]


def swapped(geometry: Geometry) -> Geometry:
    """``geometry`` turned by 90°: every size swapped."""
    return Geometry(
        *(
            swap(size)
            for size in (geometry.source, geometry.crop, geometry.content, geometry.canvas)
        )
    )
