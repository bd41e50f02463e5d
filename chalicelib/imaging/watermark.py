"""A watermark as plain data, and where it sits in an output: no Pillow until a mark is decoded.

The compositing itself is in ``overlay.py``; policies (which originals carry
which mark) are built elsewhere from these values.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from chalicelib.imaging.limits import ImagingLimits
from chalicelib.resize.grammar import Anchor

if TYPE_CHECKING:  # geometry loads with the first mark placed: the policy document imports this
    from chalicelib.imaging.geometry import Geometry

# Where a mark may sit in the output's content box: the centre, then the compass
# clockwise from north, each placed as a cover crop with that anchor (geometry.COMPASS).
_CLOCKWISE = (Anchor.N, Anchor.NE, Anchor.E, Anchor.SE, Anchor.S, Anchor.SW, Anchor.W, Anchor.NW)
MARK_ANCHORS: dict[str, Anchor] = {
    "c": Anchor.CENTRE,
    **{anchor.value: anchor for anchor in _CLOCKWISE},
}
# Each fraction's range, and the range in words (the policy document's errors say it too).
MARK_FRACTIONS: dict[str, tuple[Callable[[float], bool], str]] = {
    "margin": (lambda v: 0.0 <= v < 0.5, ">= 0 and < 0.5"),
    "width": (lambda v: 0.0 < v <= 1.0, "> 0 and <= 1"),
    "opacity": (lambda v: 0.0 < v <= 1.0, "> 0 and <= 1"),
}


@dataclass(frozen=True)
class Watermark:
    """A mark composited onto every output of a protected original."""

    image: bytes  # the mark as stored (PNG with alpha, or any format the walk + decoder accept)
    anchor: str = "se"  # where it sits in the output's content box: c n ne e se s sw w nw
    margin: float = 0.03  # gap to the content box's edges, a fraction of the content's shorter side
    width: float = 0.25  # the mark's width as a fraction of the content width (inside the box)
    opacity: float = 0.6  # 0 < opacity <= 1, multiplied into the mark's own alpha
    # Marks only outputs whose LONGER side is at least this: tiny thumbnails stay
    # clean; a long thin strip of a big render is still marked.
    min_size: int = 256

    def __post_init__(self) -> None:
        if self.anchor not in MARK_ANCHORS:
            raise ValueError(f"anchor must be one of {' '.join(MARK_ANCHORS)}, not {self.anchor!r}")
        for name in MARK_FRACTIONS:
            if not is_fraction(name, getattr(self, name)):
                words = MARK_FRACTIONS[name][1]
                raise ValueError(f"{name} must be a number {words}, not {getattr(self, name)!r}")
        if isinstance(self.min_size, bool) or not isinstance(self.min_size, int):
            raise ValueError(f"min_size must be a whole number of pixels, not {self.min_size!r}")
        if self.min_size < 1:
            raise ValueError(f"min_size must be at least 1, not {self.min_size}")
        if not isinstance(self.image, bytes) or not self.image:
            raise ValueError("image must be the mark's encoded bytes")


def is_fraction(name: str, value: object) -> bool:
    """Whether ``value`` is a number (not a bool) within MARK_FRACTIONS' range for ``name``."""
    within = MARK_FRACTIONS[name][0]
    return type(value) in (int, float) and within(value)  # type: ignore[arg-type]


def mark_box(
    geometry: Geometry, mark: tuple[int, int], watermark: Watermark
) -> tuple[int, int, int, int] | None:
    """Where the scaled mark goes in the output canvas (left, top, width, height); None: unmarked.

    Unmarked below ``min_size`` (the output's longer side) or when the
    margins leave no room.  The mark is ``width`` of the content's width,
    its aspect kept, shrunk to fit inside the content box minus the margins.
    """
    if max(geometry.canvas) < watermark.min_size:
        return None
    content_width, content_height = geometry.content
    margin = round(watermark.margin * min(geometry.content))
    room = (content_width - 2 * margin, content_height - 2 * margin)
    if min(room) < 1:
        return None
    scale = min(watermark.width * content_width / mark[0], room[0] / mark[0], room[1] / mark[1])
    size = tuple(
        min(side, max(1, round(length * scale))) for length, side in zip(mark, room, strict=True)
    )
    from chalicelib.imaging.geometry import COMPASS, centred_offset

    fractions = COMPASS[MARK_ANCHORS[watermark.anchor]]
    offset = centred_offset(geometry.content, geometry.canvas)
    left, top = (
        start + margin + round(fraction * (side - length))
        for start, fraction, side, length in zip(offset, fractions, room, size, strict=True)
    )
    return left, top, size[0], size[1]


def check_watermark(image: bytes, limits: ImagingLimits | None = None) -> tuple[int, int]:
    """Validate a mark file as an original is (container walk, limits, decode): its size.

    A hostile or broken file raises the typed 4xx an original would.  The
    decoded mark is kept, as a render would keep it.
    """
    from chalicelib.imaging import overlay  # Pillow loads only when a mark is looked at

    return overlay.decoded_mark(image, limits).size
