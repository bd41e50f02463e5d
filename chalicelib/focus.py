"""An original's focal point: ``x,y`` fractions of the picture as displayed, one spelling.

Given with the upload (the form's ``x-amz-meta-focus`` field) or set later by
the owner (``PUT /meta/<key>/focus``), it is stored as the original's S3
metadata, so a miss reads it from the GET it already makes.  ``-cover-focus``
crops centre on it (imaging/geometry.py).  A variant made with it records
it (``source-focus``), so a changed point purges exactly those variants.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from chalicelib.errors import InvalidFocus

# The original's S3 metadata name (x-amz-meta-focus) and a focus variant's.
FOCUS_METADATA = "focus"
SOURCE_FOCUS = "source-focus"
# What a focus variant records when its original had no focal point (it was smart).
NO_FOCUS = "none"
DECIMALS = 4
MAX_FOCUS_CHARS = 64
_FRACTION = r"\s*+(\d{1,6}+(?:\.\d{0,12}+)?+|\.\d{1,12}+)\s*+"
_LOOSE_FOCUS = re.compile(_FRACTION + "," + _FRACTION)


@dataclass(frozen=True)
class FocalPoint:
    """A point of the displayed picture: 0,0 its top left, 1,1 its bottom right."""

    x: float
    y: float

    @property
    def text(self) -> str:
        """The one spelling: at most four decimals, no trailing zeros (``0.25,1``)."""
        return ",".join(_decimal(value) for value in (self.x, self.y))

    @property
    def position(self) -> tuple[float, float]:
        return (self.x, self.y)


def _decimal(value: float) -> str:
    return f"{value:.{DECIMALS}f}".rstrip("0").rstrip(".")


def parse_focus(text: object) -> FocalPoint:
    """``"x,y"`` with each from 0 to 1, or InvalidFocus saying what a focal point looks like."""
    match = (
        _LOOSE_FOCUS.fullmatch(text)
        if isinstance(text, str) and len(text) <= MAX_FOCUS_CHARS
        else None
    )
    if match is None:
        raise InvalidFocus('a focal point is "x,y": two fractions of the picture, e.g. "0.3,0.25"')
    x, y = (round(float(part), DECIMALS) for part in match.groups())
    if not (0 <= x <= 1 and 0 <= y <= 1):
        raise InvalidFocus("a focal point's x and y are fractions from 0 to 1")
    return FocalPoint(x, y)


def stored_focus(metadata: Mapping[str, str]) -> FocalPoint | None:
    """The focal point an original's S3 metadata holds; None when it has none (or a bad one)."""
    text = metadata.get(FOCUS_METADATA)
    if not text:
        return None
    try:
        return parse_focus(text)
    except InvalidFocus:
        return None  # written around the API: crops fall back to smart


def focus_tag(focus: FocalPoint | None) -> str:
    """What a focus variant records of the focal point it was made with."""
    return focus.text if focus is not None else NO_FOCUS
