"""What a page paints before an image's pixels arrive: its BlurHash and its dominant colour.

Computed once per original, at ingest, from a small render made by the same
pipeline as any variant (every check, EXIF orientation, sRGB, the first
frame of an animation): PLACEHOLDER_SIDE pixels on the longer side, as a JPEG
(at 32 px its loss is far below what BlurHash keeps; a PNG original's own
decode stays the only PNG one), transparency flattened onto the background.
BlurHash (``blurhash``, pure Python, stdlib only: docs/decisions.md#placeholders)
with PLACEHOLDER_COMPONENTS
along the longer side; the dominant colour is the most common of a few
median-cut colours.  Cost per upload: ``make bench`` (scripts/bench/crops.py).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from io import BytesIO

import blurhash
from PIL import Image

from chalicelib.imaging.formats import output_format
from chalicelib.imaging.limits import ImagingLimits
from chalicelib.imaging.pipeline import SharedDecode, inspect, render
from chalicelib.resize.grammar import OUTPUT_FORMATS, ResizeSpec

# BlurHash needs few pixels: its 4×3 cosines see nothing finer.  32 px keeps the
# pure-Python encoder to about 12 000 products per component.
PLACEHOLDER_SIDE = 32
PLACEHOLDER_COMPONENTS = 4  # along the longer side; the shorter side's follows its shape
DOMINANT_PALETTE = 5
_SMALL = ResizeSpec(PLACEHOLDER_SIDE, PLACEHOLDER_SIDE)
_SMALL_FORMAT = OUTPUT_FORMATS["jpeg"]


@dataclass(frozen=True)
class Placeholder:
    blurhash: str
    dominant_color: str  # "#rrggbb", sRGB

    def to_dict(self) -> dict[str, str]:
        return {"blurhash": self.blurhash, "dominant_color": self.dominant_color}


def placeholder(
    original: bytes, limits: ImagingLimits, shared: SharedDecode | None = None
) -> Placeholder:
    """The placeholder of ``original``; raises the typed errors a render would.

    ``shared``: the presets' decode of the same original (a PNG is decoded once).
    """
    # A JPEG, asked for unless the original's own output is one already.
    source = inspect(original, _SMALL, limits).format
    own = output_format(source, _SMALL) == _SMALL_FORMAT
    spec = _SMALL if own else replace(_SMALL, output=_SMALL_FORMAT)
    small = render(original, spec, limits, shared)
    with Image.open(BytesIO(small.body)) as image:
        rgb = _flattened(image, limits.background)
    width, height = rgb.size
    longer = max(width, height)
    components = (
        max(1, round(PLACEHOLDER_COMPONENTS * width / longer)),
        max(1, round(PLACEHOLDER_COMPONENTS * height / longer)),
    )
    rows = [
        [rgb.getpixel((x, y)) for x in range(width)]  # type: ignore[misc]
        for y in range(height)
    ]
    return Placeholder(blurhash.encode(rows, *components), dominant_color(rgb))


def dominant_color(image: Image.Image) -> str:
    """The most common of DOMINANT_PALETTE median-cut colours, as ``#rrggbb``."""
    palette = image.quantize(DOMINANT_PALETTE, Image.Quantize.MEDIANCUT)
    counts = palette.getcolors() or [(1, 0)]
    _, index = max(counts)
    colours = palette.getpalette() or [0, 0, 0]
    red, green, blue = colours[3 * index : 3 * index + 3]
    return f"#{red:02x}{green:02x}{blue:02x}"


def _flattened(image: Image.Image, background: tuple[int, int, int]) -> Image.Image:
    """``image`` in RGB, anything transparent laid on ``background``."""
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        flat = Image.new("RGB", rgba.size, background)
        flat.paste(rgba, mask=rgba.getchannel("A"))
        return flat
    return image.convert("RGB")
