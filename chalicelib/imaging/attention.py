"""Smart crops: the window of a cover crop that keeps the most detail, chosen on the decoded pixels.

libvips' "attention" strategy, in Pillow: a saliency map of edges (the
luma's Laplacian), colourfulness (chroma) and skin tones, each 0–255,
is measured on a copy reduced to at most ANALYSIS_SIDE pixels (the decode is
already reduced by shrink-on-load for JPEG and by libwebp for WebP), its
column (or row) means are summed over every window the crop could take,
and the window with the most wins; ties go to the one nearest the centre.
Deterministic: the same pixels and geometry give the same window.  Cost and
quality: docs/urls.md#anchored-crops, ``make bench``.
"""

from __future__ import annotations

from dataclasses import replace
from itertools import accumulate

from PIL import Image, ImageChops, ImageFilter, ImageOps

from chalicelib.imaging.encoders import eight_bit
from chalicelib.imaging.geometry import CENTRE, Geometry, Position
from chalicelib.imaging.memory import HIGH_BIT_DEPTH

# The saliency map's longer side, at most: enough to place a crop to within a
# percent of the window, few enough pixels to cost about a millisecond.
ANALYSIS_SIDE = 128
# Skin in YCbCr (Chai & Ngan's ranges): 255 where both chroma channels fall in them.
_SKIN_CB = [255 if 77 <= value <= 127 else 0 for value in range(256)]
_SKIN_CR = [255 if 133 <= value <= 173 else 0 for value in range(256)]
# Chroma: how far Cb and Cr are from grey, at most 127 each.  A skin pixel weighs
# as much as a strong edge.  A plain background weighs the same in every window.
_FROM_GREY = [min(127, abs(value - 128)) for value in range(256)]


def placed(image: Image.Image, geometry: Geometry) -> Geometry:
    """``geometry`` with its crop placed: as planned, or (smart) where ``image`` has most detail.

    ``image`` is the decode the crop will be cut from, in the geometry's
    orientation, at any scale.
    """
    if geometry.position is not None:
        return geometry
    return replace(geometry, position=smart_position(image, geometry))


def smart_position(image: Image.Image, geometry: Geometry) -> Position:
    """Where along each spare side the crop keeps the most saliency (see the module)."""
    small = _reduced(image)
    saliency = saliency_map(small)
    width, height = small.size
    kept = (
        geometry.crop[0] / geometry.source[0] * width,
        geometry.crop[1] / geometry.source[1] * height,
    )
    means = saliency.convert("F")  # column and row means kept exact, not rounded to 8 bits
    columns = list(means.resize((width, 1), Image.Resampling.BOX).get_flattened_data())
    rows = list(means.resize((1, height), Image.Resampling.BOX).get_flattened_data())
    return (
        _best_window(columns, kept[0]) if geometry.crop[0] < geometry.source[0] else CENTRE[0],
        _best_window(rows, kept[1]) if geometry.crop[1] < geometry.source[1] else CENTRE[1],
    )


def saliency_map(image: Image.Image) -> Image.Image:
    """Per pixel, 0–255: edges plus chroma plus skin, where the image is opaque.

    One conversion, to YCbCr, serves all three: edges of the luma, chroma as
    the distance of Cb and Cr from grey, skin as both within their ranges.
    """
    if image.mode in HIGH_BIT_DEPTH:
        image = eight_bit(image)
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    luma, blue, red = rgb.convert("YCbCr").split()
    # The filter sees past the border as more border: a plain image's outer ring isn't an edge.
    edges = ImageOps.expand(ImageOps.crop(luma.filter(ImageFilter.FIND_EDGES), 1), 1)
    chroma = ImageChops.add(blue.point(_FROM_GREY), red.point(_FROM_GREY))
    skin = ImageChops.multiply(blue.point(_SKIN_CB), red.point(_SKIN_CR))
    saliency = ImageChops.add(ImageChops.add(edges, chroma), skin)
    if "A" in image.mode:
        saliency = ImageChops.multiply(saliency, image.getchannel("A"))
    return saliency


def _reduced(image: Image.Image) -> Image.Image:
    """``image`` box-reduced by a whole factor to at most ANALYSIS_SIDE on its longer side."""
    factor = -(-max(image.size) // ANALYSIS_SIDE)
    return image.reduce(factor) if factor >= 2 else image


def _best_window(profile: list[float], length: float) -> float:
    """The window of ``length`` cells along ``profile`` with the largest sum, as a fraction
    of the spare length; ties (a plain image) go to the most central one."""
    cells = len(profile)
    span = min(cells, max(1, round(length)))
    if span >= cells:
        return CENTRE[0]
    sums = [0.0, *accumulate(profile)]
    windows = [sums[start + span] - sums[start] for start in range(cells - span + 1)]
    middle = (cells - span) / 2
    best = max(range(len(windows)), key=lambda start: (windows[start], -abs(start - middle)))
    return best / (cells - span)
