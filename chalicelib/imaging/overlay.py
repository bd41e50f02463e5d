"""Watermarks onto rendered frames: each mark decoded once per process, scaled once per size.

A mark file gets the checks an original gets (the container walk, the pixel
and memory limits, typed 4xx on broken bytes), decoded to RGBA upright.  For
an output size the mark is scaled once (Lanczos, from the mark's own size,
alpha premultiplied as Pillow resamples RGBA), its alpha multiplied by the
opacity; that copy is composited over each frame after resize, upright,
sRGB and pad.  Both the decoded marks and the scaled copies are kept for the
process, a few of each within a byte budget, keyed by a hash of the mark's
bytes: the next output of the same size reuses its copy.
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
    MARK_BYTES,
    check_memory,
    mark_decode_bytes,
    marked_bytes,
)
from chalicelib.imaging.watermark import Watermark, mark_box

# A mark's pixels, at most (and never more than an original's): 2000² is half
# the width of a 4096 px output; wider outputs scale it up.  What the process
# keeps besides any render (docs/limits.md): the decoded marks
# (MARK_CACHE_ENTRIES, 64 MiB at most) and scaled copies (SCALED_CACHE_BYTES).
MAX_MARK_PIXELS = 4_000_000
MARK_CACHE_ENTRIES = 4
SCALED_CACHE_ENTRIES = 32
SCALED_CACHE_BYTES = 16 * 2**20
# Modes whose pixels composite as they are; anything else is made RGB(A) first.
_COMPOSITED_MODES = ("RGB", "RGBA")


class _Kept:
    """Images kept for the process: least recently used out first, within a count and bytes."""

    def __init__(self, entries: int, max_bytes: int) -> None:
        self._images: OrderedDict[object, Image.Image] = OrderedDict()
        self._entries, self._max_bytes, self._bytes = entries, max_bytes, 0
        self._lock = threading.Lock()

    def get(self, key: object) -> Image.Image | None:
        with self._lock:
            image = self._images.get(key)
            if image is not None:
                self._images.move_to_end(key)
            return image

    def put(self, key: object, image: Image.Image) -> None:
        size = MARK_BYTES * area(image.size)
        with self._lock:
            if size > self._max_bytes or key in self._images:
                return
            self._images[key] = image
            self._bytes += size
            while len(self._images) > self._entries or self._bytes > self._max_bytes:
                _, dropped = self._images.popitem(last=False)
                self._bytes -= MARK_BYTES * area(dropped.size)


_decoded = _Kept(MARK_CACHE_ENTRIES, MARK_CACHE_ENTRIES * MAX_MARK_PIXELS * MARK_BYTES)
_scaled = _Kept(SCALED_CACHE_ENTRIES, SCALED_CACHE_BYTES)


def decoded_mark(data: bytes, limits: ImagingLimits | None = None) -> Image.Image:
    """The mark in ``data`` as upright RGBA, decoded once per process (don't modify it)."""
    return _decoded_mark(hashlib.sha256(data).digest(), data, limits or ImagingLimits())


def _decoded_mark(digest: bytes, data: bytes, limits: ImagingLimits) -> Image.Image:
    key = (digest, limits)
    mark = _decoded.get(key)
    if mark is None:
        mark = _decode(data, limits)
        _decoded.put(key, mark)
    return mark


def _decode(data: bytes, limits: ImagingLimits) -> Image.Image:
    """The first frame of a mark file, checked as an original is, as upright RGBA."""
    structure = containers.walk(data, limits.max_frames)
    check_memory(structure.decoder_bytes, limits)
    with opened(data) as image:
        most = min(MAX_MARK_PIXELS, limits.max_source_pixels)
        if area(image.size) > most:
            raise OriginalTooManyPixels(
                f"the watermark has {image.size[0]}×{image.size[1]} pixels, over the limit of "
                f"{most}"
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
    digest: bytes  # of the mark file's bytes

    @classmethod
    def of(cls, watermark: Watermark, limits: ImagingLimits) -> Mark:
        digest = hashlib.sha256(watermark.image).digest()
        return cls(watermark, _decoded_mark(digest, watermark.image, limits), digest)

    def box(self, geometry: Geometry) -> tuple[int, int, int, int] | None:
        """The scaled mark's place in the output canvas (left, top, width, height)."""
        return mark_box(geometry, self.image.size, self.watermark)

    def peak(self, render: int, geometry: Geometry, grey: bool) -> int:
        """The peak bytes of a render taking ``render`` unmarked, marked for ``geometry``
        (``grey``: the frame is made RGB for the mark)."""
        recoloured = area(geometry.canvas) if grey else 0
        return marked_bytes(render, self.image.size, self.box(geometry), recoloured)

    def stamp(self, geometry: Geometry) -> Stamp | None:
        """The mark scaled for this output, ready for every frame; None: unmarked."""
        box = self.box(geometry)
        if box is None:
            return None
        left, top, width, height = box
        key = (self.digest, (width, height), self.watermark.opacity)
        image = _scaled.get(key)
        if image is None:
            image = scaled(self.image, (width, height), self.watermark.opacity)
            _scaled.put(key, image)
        return Stamp(image, (left, top))


def scaled(mark: Image.Image, size: tuple[int, int], opacity: float) -> Image.Image:
    """An RGBA ``mark`` resampled to ``size`` (Lanczos), its alpha multiplied by ``opacity``;
    always a new image."""
    image = mark.resize(size, Image.Resampling.LANCZOS) if mark.size != size else mark.copy()
    if opacity < 1:
        image.putalpha(image.getchannel("A").point([round(v * opacity) for v in range(256)]))
    return image


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
