"""Watermarks onto rendered frames: each mark decoded once per process, scaled once per output.

A mark file gets the checks an original gets (the container walk, the pixel
and memory limits, typed 4xx on broken bytes), decoded to RGBA upright.  The
decoded marks are kept, a few per process, keyed by a hash of their bytes.
For one output the mark is scaled once (Lanczos, from the mark's own size,
alpha premultiplied as Pillow resamples RGBA), its alpha multiplied by the
opacity, then composited over each frame after resize, upright, sRGB and pad.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass

from PIL import Image

from chalicelib.errors import OriginalTooManyPixels
from chalicelib.imaging import containers, exif
from chalicelib.imaging.decoding import loaded, opened
from chalicelib.imaging.encoders import eight_bit
from chalicelib.imaging.geometry import Geometry, area
from chalicelib.imaging.limits import ImagingLimits
from chalicelib.imaging.memory import (
    HIGH_BIT_DEPTH,
    check_memory,
    check_pixels,
    mark_bytes,
    mark_decode_bytes,
)
from chalicelib.imaging.watermark import Watermark, mark_box

# A mark's pixels, at most: enough for a mark as wide as a 4096 px output at
# width 0.5; with MARK_CACHE_ENTRIES it bounds what the cache keeps (64 MiB).
MAX_MARK_PIXELS = 4_000_000
MARK_CACHE_ENTRIES = 4
# Modes whose pixels composite as they are; anything else is made RGB(A) first.
_COMPOSITED_MODES = ("RGB", "RGBA")

_cache: OrderedDict[tuple[bytes, ImagingLimits], Image.Image] = OrderedDict()
_cache_lock = threading.Lock()


def decoded_mark(data: bytes, limits: ImagingLimits | None = None) -> Image.Image:
    """The mark in ``data`` as upright RGBA, decoded once per process (don't modify it)."""
    limits = limits or ImagingLimits()
    key = (hashlib.sha256(data).digest(), limits)
    with _cache_lock:
        mark = _cache.get(key)
        if mark is not None:
            _cache.move_to_end(key)
            return mark
    mark = _decode(data, limits)
    with _cache_lock:
        _cache[key] = mark
        while len(_cache) > MARK_CACHE_ENTRIES:
            _cache.popitem(last=False)
    return mark


def _decode(data: bytes, limits: ImagingLimits) -> Image.Image:
    """The first frame of a mark file, checked as an original is, as upright RGBA."""
    structure = containers.walk(data, limits.max_frames)
    check_memory(structure.decoder_bytes, limits)
    with opened(data) as image:
        check_pixels(image.size, limits)
        if area(image.size) > MAX_MARK_PIXELS:
            raise OriginalTooManyPixels(
                f"the watermark has {image.size[0]}×{image.size[1]} pixels, over the limit of "
                f"{MAX_MARK_PIXELS}"
            )
        check_memory(mark_decode_bytes(image, structure), limits)
        orientation = exif.read(image, data, structure).orientation
        frame = loaded(image)
        if frame.mode in HIGH_BIT_DEPTH:
            frame = eight_bit(frame)
        elif frame.mode in ("CMYK", "YCbCr", "LAB", "HSV"):
            frame = frame.convert("RGB")
        rgba = frame.convert("RGBA")
    return exif.upright(rgba, orientation)


@dataclass(frozen=True)
class Mark:
    """A watermark with its decoded image: where it goes in an output and what that costs."""

    watermark: Watermark
    image: Image.Image

    @classmethod
    def of(cls, watermark: Watermark, limits: ImagingLimits) -> Mark:
        return cls(watermark, decoded_mark(watermark.image, limits))

    def box(self, geometry: Geometry) -> tuple[int, int, int, int] | None:
        """The scaled mark's place in the output canvas (left, top, width, height)."""
        return mark_box(geometry, self.image.size, self.watermark)

    def cost(self, geometry: Geometry) -> int:
        """Bytes marking an output of ``geometry`` adds to the render's peak."""
        return mark_bytes(self.image.size, self.box(geometry), area(geometry.canvas))

    def stamp(self, geometry: Geometry) -> Stamp | None:
        """The mark scaled for this output, ready for every frame; None: unmarked."""
        box = self.box(geometry)
        if box is None:
            return None
        left, top, width, height = box
        scaled = self.image
        if scaled.size != (width, height):
            scaled = scaled.resize((width, height), Image.Resampling.LANCZOS)
        if self.watermark.opacity < 1:
            if scaled is self.image:
                scaled = scaled.copy()  # the cached mark stays as decoded
            opacity = self.watermark.opacity
            scaled.putalpha(scaled.getchannel("A").point([round(v * opacity) for v in range(256)]))
        return Stamp(scaled, (left, top))


@dataclass(frozen=True)
class Stamp:
    """A mark scaled for one output size, and where its top-left corner goes."""

    image: Image.Image
    at: tuple[int, int]

    def onto(self, frame: Image.Image) -> Image.Image:
        """``frame`` with the mark composited over it (in place when it is RGB or RGBA).

        Grey outputs become RGB (16-bit grey is scaled to 8 bits first), grey
        with alpha RGBA: the mark keeps its colours.
        """
        if frame.mode == "I":
            frame = eight_bit(frame)
        if frame.mode not in _COMPOSITED_MODES:
            frame = frame.convert("RGBA" if "A" in frame.mode else "RGB")
        if frame.mode == "RGBA":
            frame.alpha_composite(self.image, self.at)
        else:
            frame.paste(self.image, self.at, self.image)
        return frame
