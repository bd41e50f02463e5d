"""Pure geometry: where an output's pixels come from, its size, and its one canonical spelling."""

from __future__ import annotations

from dataclasses import dataclass, replace

from chalicelib.resize.grammar import Anchor, Fit, OutputFormat, ResizeSpec

# A still WebP is decoded by libwebp straight to twice the output's size while
# that is at most this many pixels (300 px outputs), else to the output's size
# (see scaled_decode_size).
SCALED_DECODE_TWICE_MAX_PIXELS = 1_000_000

# A crop window's place: how far along the original's spare width and height
# (source minus crop) its left and top edges sit, 0 to 1; the centre is half-way.
Position = tuple[float, float]
CENTRE: Position = (0.5, 0.5)
COMPASS: dict[Anchor, Position] = {
    Anchor.CENTRE: CENTRE,
    Anchor.N: (0.5, 0.0),
    Anchor.S: (0.5, 1.0),
    Anchor.E: (1.0, 0.5),
    Anchor.W: (0.0, 0.5),
    Anchor.NE: (1.0, 0.0),
    Anchor.NW: (0.0, 0.0),
    Anchor.SE: (1.0, 1.0),
    Anchor.SW: (0.0, 1.0),
}
# EXIF orientations 5–8 store the picture turned by 90°: width and height swap.
SWAPPING_ORIENTATIONS = frozenset({5, 6, 7, 8})
# A point (or a position) of the upright image, as (x, y) fractions, seen in the
# stored file for each EXIF orientation: the inverse of what exif_transpose does.
_STORED_POINT = {
    1: lambda x, y: (x, y),
    2: lambda x, y: (1 - x, y),
    3: lambda x, y: (1 - x, 1 - y),
    4: lambda x, y: (x, 1 - y),
    5: lambda x, y: (y, x),
    6: lambda x, y: (y, 1 - x),
    7: lambda x, y: (1 - y, 1 - x),
    8: lambda x, y: (1 - y, x),
}


@dataclass(frozen=True)
class Geometry:
    """Where the output's pixels come from, in the original's upright coordinates."""

    source: tuple[int, int]  # the original's size
    crop: tuple[int, int]  # size of the region of the original that is kept
    content: tuple[int, int]  # size the kept region is resampled to
    canvas: tuple[int, int]  # final size (larger than content only for pad)
    # Where the kept region sits (see Position); None: chosen from the decoded
    # pixels (attention.py).  Half-way along any side with nothing to spare.
    position: Position | None = CENTRE

    def crop_box(self, size: tuple[int, int]) -> tuple[float, float, float, float]:
        """The kept region in an image of ``size`` (the original, or its reduced decode)."""
        assert self.position is not None, "place the crop first (attention.place)"
        x_scale, y_scale = size[0] / self.source[0], size[1] / self.source[1]
        left = (self.source[0] - self.crop[0]) * self.position[0] * x_scale
        top = (self.source[1] - self.crop[1]) * self.position[1] * y_scale
        return (left, top, left + self.crop[0] * x_scale, top + self.crop[1] * y_scale)


@dataclass(frozen=True)
class Job:
    """What render will do, decided before any pixel is decoded."""

    output: OutputFormat
    geometry: Geometry  # in upright coordinates
    frames: int = 1  # 1: the first frame, still
    orientation: int = 1  # EXIF: how the stored pixels turn upright

    @property
    def swaps(self) -> bool:
        """Stored on its side (EXIF orientation 5–8): width and height swap."""
        return self.orientation in SWAPPING_ORIENTATIONS

    @property
    def stored_geometry(self) -> Geometry:
        """The geometry in the file's stored orientation, as the decoder sees it."""
        geometry = swapped(self.geometry) if self.swaps else self.geometry
        return replace(geometry, position=stored_point(self.geometry.position, self.orientation))


def canonical_spec(size: tuple[int, int], spec: ResizeSpec) -> ResizeSpec:
    """The one spelling of the output ``spec`` makes from an original of ``size``.

    Specs that plan the same geometry make byte-identical variants: for a
    1000×500 original, ``600x300``, ``600x``, ``300x150@2x`` and
    ``600x300-cover`` all do.  The canonical one is the shortest spelling
    that plans the same geometry: the output's own size, inside-fit when
    nothing is cropped or padded, and otherwise the box with the pixel ratio
    multiplied out.  An anchor is spelled as the shortest one that places the
    crop in the same spot (``-cover-n`` of a landscape is ``-cover``, its
    ``-cover-ne`` is ``-cover-e``); ``smart`` and ``focus`` stay whenever
    there is a crop, whatever the pixels or the focal point later choose.
    """
    geometry = plan(size, spec)
    width, height = geometry.content
    shortest = (
        [ResizeSpec(width, height, Fit.INSIDE)]
        if geometry.crop == geometry.source and geometry.canvas == geometry.content
        else [
            ResizeSpec(width, height, Fit.COVER, anchor=anchor) for anchor in _places(spec.anchor)
        ]
        if geometry.canvas == geometry.content
        else []
    )
    format_options = {"output": spec.output, "quality": spec.quality}
    for shape in shortest:
        candidate = replace(shape, **format_options)
        if plan(size, candidate) == geometry:
            return candidate
    box_width, box_height = spec.box
    return replace(spec, width=box_width, height=box_height, dpr=1)


def _places(anchor: Anchor) -> list[Anchor]:
    """The anchors that might spell the same crop as ``anchor``, shortest first: any compass
    one for a compass one (``-ne`` of a landscape is ``-e``), else itself."""
    return list(COMPASS) if anchor in COMPASS else [anchor]


def plan(size: tuple[int, int], spec: ResizeSpec, focus: Position | None = None) -> Geometry:
    """The crop, resample size and canvas for ``spec``; never enlarges the image.

    ``focus``: the original's focal point, (x, y) fractions of the upright
    image, which ``-cover-focus`` centres its crop on.
    """
    width, height = size
    box_width, box_height = spec.box
    if spec.fit is Fit.COVER and box_width and box_height:  # the grammar requires both
        # Shrink the box until it fits inside the original, keeping its shape.
        shrink = max(1.0, box_width / width, box_height / height)
        content = (max(1, round(box_width / shrink)), max(1, round(box_height / shrink)))
        scale = max(content[0] / width, content[1] / height)
        crop = (min(width, round(content[0] / scale)), min(height, round(content[1] / scale)))
        position = _position(size, crop, spec.anchor, focus)
        return Geometry(size, crop, content, content, position)
    scale = min(
        1.0,
        box_width / width if box_width else 1.0,
        box_height / height if box_height else 1.0,
    )
    content = (max(1, round(width * scale)), max(1, round(height * scale)))
    canvas = (box_width, box_height) if spec.fit is Fit.PAD else content
    return Geometry(size, size, content, canvas)  # type: ignore[arg-type]


def _position(
    size: tuple[int, int], crop: tuple[int, int], anchor: Anchor, focus: Position | None
) -> Position | None:
    """Where ``anchor`` places a ``crop`` of an original of ``size`` (None: from its pixels)."""
    spare = (size[0] - crop[0], size[1] - crop[1])
    if anchor in COMPASS:
        chosen: Position | None = COMPASS[anchor]
    elif anchor is Anchor.FOCUS and focus is not None:
        chosen = centred_on(focus, size, crop)
    else:
        chosen = None  # smart, or focus without a focal point
    if chosen is None:
        return None if any(spare) else CENTRE
    return (chosen[0] if spare[0] else 0.5, chosen[1] if spare[1] else 0.5)


def centred_on(point: Position, size: tuple[int, int], crop: tuple[int, int]) -> Position:
    """The position of a ``crop`` centred on ``point`` (fractions), kept inside the original."""
    return tuple(  # type: ignore[return-value]
        min(1.0, max(0.0, (fraction * full - kept / 2) / (full - kept))) if full > kept else 0.5
        for fraction, full, kept in zip(point, size, crop, strict=True)
    )


def stored_point(point: Position | None, orientation: int) -> Position | None:
    """An upright point or position as it lies in the stored file (EXIF ``orientation``)."""
    if point is None:
        return None
    return _STORED_POINT.get(orientation, _STORED_POINT[1])(*point)


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


def centred_offset(inner: tuple[int, int], outer: tuple[int, int]) -> tuple[int, int]:
    """Where an ``inner`` size sits centred in an ``outer`` one (a pad's content in its canvas)."""
    return (outer[0] - inner[0]) // 2, (outer[1] - inner[1]) // 2


def area(size: tuple[int, int]) -> int:
    """Pixels in a ``(width, height)``."""
    return size[0] * size[1]


def swap(size: tuple[int, int]) -> tuple[int, int]:
    """``(width, height)`` turned by 90°."""
    return size[1], size[0]


def swapped(geometry: Geometry) -> Geometry:
    """``geometry`` turned by 90°: every size swapped (the position is the caller's)."""
    return replace(
        geometry,
        source=swap(geometry.source),
        crop=swap(geometry.crop),
        content=swap(geometry.content),
        canvas=swap(geometry.canvas),
    )
