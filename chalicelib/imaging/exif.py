"""The few EXIF tags the service reads, taken from the raw TIFF structure with bounded counts.

Pillow's ``Exif`` unpacks a whole IFD at once (one Python object per value,
so a million RATIONALs are a million objects), and ``ImageOps.exif_transpose``
re-serialises all of it to drop one tag.  Here only the entries asked for are
looked up, each value read only up to the count its use needs (one
orientation, three GPS rationals, a camera name's worth of text), and nothing
is ever written back.  Malformed EXIF reads as absent: an original is not
refused for its metadata's shape, only for its size (containers.py).
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from PIL import Image

from chalicelib.imaging.decoding import loaded
from chalicelib.imaging.geometry import SWAPPING_ORIENTATIONS

if TYPE_CHECKING:
    from chalicelib.imaging.containers import Structure

ORIENTATION, MAKE, MODEL, DATE_TIME = 0x0112, 0x010F, 0x0110, 0x0132
EXIF_IFD, GPS_IFD = 0x8769, 0x8825
DATE_TIME_ORIGINAL = 0x9003
GPS_LATITUDE_REF, GPS_LATITUDE, GPS_LONGITUDE_REF, GPS_LONGITUDE = 1, 2, 3, 4

# Entries looked at per IFD: real ones have tens; the walk caps what Pillow reads.
MAX_IFD_ENTRIES = 1024
MAX_TAG_TEXT_BYTES = 256  # camera names and dates are short; longer text is not read

# EXIF orientation → the transposition that shows the picture upright.
UPRIGHT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
SWAPPING = SWAPPING_ORIENTATIONS  # stored turned by 90°: width and height swap

# Where Pillow looks for an orientation when EXIF has none.
_XMP_ORIENTATION = re.compile(rb'tiff:Orientation(?:="|>)([0-9])')

# type → (struct code, bytes per value)
_TYPES = {
    1: ("B", 1),
    2: ("s", 1),
    3: ("H", 2),
    4: ("I", 4),
    5: ("II", 8),
    6: ("b", 1),
    7: ("s", 1),
    8: ("h", 2),
    9: ("i", 4),
    10: ("ii", 8),
    13: ("I", 4),  # IFD: a pointer, as some writers type the Exif and GPS ones
    16: ("Q", 8),  # BigTIFF's LONG8, SLONG8 and IFD8
    17: ("q", 8),
    18: ("Q", 8),
}
_INTEGER_TYPES = frozenset({1, 3, 4, 6, 8, 9, 13, 16, 17, 18})
_TEXT_TYPES = frozenset({2, 7})
_RATIONAL_TYPES = frozenset({5, 10})


@dataclass(frozen=True)
class _Entry:
    kind: int
    count: int
    field: bytes  # the value itself when it fits, else its offset


@dataclass(frozen=True)
class Tiff:
    """A TIFF structure: an EXIF block (after ``Exif\\0\\0``) or a TIFF file itself."""

    data: bytes
    endian: str
    big: bool
    first: int  # offset of IFD0

    @classmethod
    def parse(cls, data: bytes) -> Tiff | None:
        while data.startswith(b"Exif\0\0"):
            data = data[6:]
        head = data[:4]
        if head not in (b"II*\0", b"MM\0*", b"II+\0", b"MM\0+"):
            return None
        endian = "<" if head[:2] == b"II" else ">"
        big = head[2:4] in (b"+\0", b"\0+")
        try:
            first = struct.unpack_from(endian + ("Q" if big else "I"), data, 8 if big else 4)[0]
        except struct.error:
            return None
        return cls(data, endian, big, first)

    def ifd(self, offset: int) -> dict[int, _Entry]:
        """The IFD at ``offset``: its first MAX_IFD_ENTRIES entries, by tag; {} if malformed."""
        count_format, entry_format, size = ("Q", "HHQ8s", 20) if self.big else ("H", "HHI4s", 12)
        try:
            count = struct.unpack_from(self.endian + count_format, self.data, offset)[0]
        except struct.error:
            return {}
        start = offset + struct.calcsize(count_format)
        count = min(count, MAX_IFD_ENTRIES, max(0, (len(self.data) - start) // size))
        table = self.data[start : start + count * size]
        entries: dict[int, _Entry] = {}
        for tag, kind, number, field in struct.iter_unpack(self.endian + entry_format, table):
            entries.setdefault(tag, _Entry(kind, number, field))
        return entries

    def values(self, entry: _Entry, most: int) -> tuple | bytes | None:
        """The first ``most`` values of ``entry`` (bytes for text), or None if they aren't there."""
        code, unit = _TYPES.get(entry.kind, ("", 0))
        if not unit:
            return None
        count = min(entry.count, most)
        if count <= 0:
            return None
        if entry.count * unit <= len(entry.field):  # the value fits in the entry itself
            raw = entry.field[: count * unit]
        else:
            offset = struct.unpack(self.endian + ("Q" if self.big else "I"), entry.field)[0]
            raw = self.data[offset : offset + count * unit]
        if len(raw) < count * unit:
            return None
        if entry.kind in _TEXT_TYPES:
            return raw
        return struct.unpack(self.endian + code * count, raw)

    def integer(self, entry: _Entry | None) -> int | None:
        if entry is None or entry.kind not in _INTEGER_TYPES:
            return None
        values = self.values(entry, 1)
        return int(values[0]) if isinstance(values, tuple) else None

    def text(self, entry: _Entry | None) -> bytes | None:
        if entry is None or entry.kind not in _TEXT_TYPES:
            return None
        values = self.values(entry, MAX_TAG_TEXT_BYTES)
        return values if isinstance(values, bytes) else None

    def rationals(self, entry: _Entry | None, count: int) -> tuple[float, ...] | None:
        if entry is None or entry.kind not in _RATIONAL_TYPES:
            return None
        values = self.values(entry, count)
        if not isinstance(values, tuple) or len(values) < 2 * count:
            return None
        pairs = zip(values[::2], values[1::2], strict=True)
        try:
            return tuple(numerator / denominator for numerator, denominator in pairs)
        except ZeroDivisionError:
            return None

    def sub_ifd(self, ifd: dict[int, _Entry], tag: int) -> dict[int, _Entry]:
        offset = self.integer(ifd.get(tag))
        return self.ifd(offset) if offset else {}


@dataclass(frozen=True)
class Tags:
    """What the service reads from an original's EXIF; absent tags are None."""

    orientation: int = 1
    make: bytes | None = None
    model: bytes | None = None
    date_time: bytes | None = None
    date_time_original: bytes | None = None
    gps: tuple[bytes, tuple[float, ...], bytes, tuple[float, ...]] | None = None


def read(image: Image.Image, original: bytes, structure: Structure, *, gps: bool = False) -> Tags:
    """The tags of ``image`` (opened from ``original``) the record and the render need.

    Where Pillow would find them: a TIFF's own first IFD, a PNG's ``eXIf`` or
    ImageMagick's hex text, any other format's EXIF block; the orientation
    from XMP when EXIF has none.  A PNG whose metadata follows its pixels is
    decoded first, as Pillow must to reach it (the memory model counts it).
    """
    if image.format == "PNG" and structure.metadata_after_pixels:
        loaded(image)
    tiff = Tiff.parse(original if image.format == "TIFF" else _exif_block(image.info))
    tags, stated = _tags(tiff, gps=gps) if tiff else (Tags(), False)
    if image.format == "TIFF":
        # Pillow's TIFF reader turns the picture itself: its size and pixels are upright.
        return replace(tags, orientation=1)
    if not stated:
        tags = replace(tags, orientation=_xmp_orientation(image.info))
    return tags


def _exif_block(info: dict) -> bytes:
    block = info.get("exif")
    if isinstance(block, bytes):
        return block
    hex_text = info.get("Raw profile type exif")
    if isinstance(hex_text, str):
        try:
            return bytes.fromhex("".join(hex_text.split("\n")[3:]))
        except ValueError:
            return b""
    return b""


def _tags(tiff: Tiff, *, gps: bool) -> tuple[Tags, bool]:
    """The tags, and whether IFD0 has an orientation at all (else XMP's counts)."""
    first = tiff.ifd(tiff.first)
    details = tiff.sub_ifd(first, EXIF_IFD)
    orientation = tiff.integer(first.get(ORIENTATION))
    tags = Tags(
        orientation=orientation if orientation in UPRIGHT else 1,
        make=tiff.text(first.get(MAKE)),
        model=tiff.text(first.get(MODEL)),
        date_time=tiff.text(first.get(DATE_TIME)),
        date_time_original=tiff.text(details.get(DATE_TIME_ORIGINAL)),
        gps=_gps(tiff, tiff.sub_ifd(first, GPS_IFD)) if gps else None,
    )
    return tags, ORIENTATION in first


def _gps(tiff: Tiff, ifd: dict[int, _Entry]) -> tuple | None:
    latitude = tiff.rationals(ifd.get(GPS_LATITUDE), 3)
    longitude = tiff.rationals(ifd.get(GPS_LONGITUDE), 3)
    north, east = tiff.text(ifd.get(GPS_LATITUDE_REF)), tiff.text(ifd.get(GPS_LONGITUDE_REF))
    if latitude is None or longitude is None or north is None or east is None:
        return None
    return north, latitude, east, longitude


def _xmp_orientation(info: dict) -> int:
    xmp = info.get("XML:com.adobe.xmp") or info.get("xmp")
    if isinstance(xmp, str):
        xmp = xmp.encode("utf-8", "replace")
    if not isinstance(xmp, bytes):
        return 1
    match = _XMP_ORIENTATION.search(xmp)
    orientation = int(match[1]) if match else 1
    return orientation if orientation in UPRIGHT else 1


def upright(frame: Image.Image, orientation: int) -> Image.Image:
    """``frame`` turned and mirrored as its EXIF orientation says; no metadata is touched."""
    method = UPRIGHT.get(orientation)
    return frame if method is None else frame.transpose(method)
