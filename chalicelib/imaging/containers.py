"""Container walks: what an original will cost to decode, read before any decoder runs.

A header states a size; the work an original causes is elsewhere: in every
frame's extent (a GIF's canvas grows to hold frames placed off its screen),
in a WebP's canvas (allocated twice when the decoder is created), in the
number of JPEG scans (each a pass over every block), in a progressive JPEG's
coefficient buffer (two bytes per coefficient at full size, whatever the DCT
scale), and in counts that Pillow's Python parsers walk one by one (JPEG
markers and fill bytes, PNG chunks, GIF blocks, TIFF tag values).

Each walker reads only structure, with C-speed primitives where a loop could
be long, and stops at the first cap crossed, so the walk itself is bounded.
Metadata is bounded the same way in every container, before Pillow parses
any of it: the bytes of EXIF, XMP, ICC profiles and text, wherever they sit
(JPEG APP1/APP2/COM segments, PNG eXIf/iCCP/tEXt/zTXt/iTXt chunks, inflated
as Pillow would but only up to the cap, WebP EXIF/XMP/ICCP chunks, a TIFF's
ICC and XMP tags and its Exif and GPS IFDs, GIF comments).  Pillow builds a
Python object per EXIF value, so EXIF gets the tightest cap: JPEG's own.

A truncated or malformed container ends the walk quietly: Pillow then
reports it as corrupt, which it is.
"""

from __future__ import annotations

import re
import struct
import zlib
from collections import Counter
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass

from chalicelib.errors import OriginalTooComplex, OriginalTooManyPixels
from chalicelib.imaging import isobmff

# Caps on what Pillow parses in Python, one step at a time.  Each is far above
# what a real file needs and keeps that part of a request near a second here.
MAX_JPEG_SEGMENTS = 4096  # markers before the first scan (real files: tens)
MAX_JPEG_FILL_BYTES = 1 << 20  # junk and 0xFF fill before the first scan, read a byte at a time
# Every scan is a pass over all blocks of its components, even an empty one:
# ~5 ns a block here for an empty AC scan, ~25 ns for a DC scan, which must
# code every block.  So the blocks of all scans are capped, not only the
# scans: libjpeg's progressive script decodes ~14 blocks per 8×8 pixels of a
# 4:4:4 image (13 M blocks at 60 MP), 4:2:0 about 8.
MAX_JPEG_SCANS = 100
MAX_JPEG_SCAN_BLOCKS = 50_000_000
MAX_PNG_CHUNKS = 100_000  # ~4 µs each in Pillow; a 40 MiB PNG in 8 KiB IDATs has ~5,000
# GIF blocks and sub-blocks: a 40 MiB GIF in 255-byte sub-blocks has ~165,000.
MAX_GIF_BLOCKS = 400_000
MAX_WEBP_CHUNKS = 100_000
# Tag values Pillow unpacks into Python tuples (strip and tile offsets and
# counts, mostly): a 60 MP TIFF stored a row per strip has ~17,000.
MAX_TIFF_VALUES = 262_144
# Pillow decodes run-length BMPs in Python, ~75 ns a pixel here.
MAX_RLE_BMP_PIXELS = 16_000_000

# Metadata bytes per original, each kind summed over all its blocks (docs/limits.md).
# EXIF: one APP1 segment's worth, JPEG's own limit, which every camera fits.
MAX_EXIF_BYTES = 65_536
# XMP is kept as bytes and searched once for an orientation; a JPEG's packet is
# under 64 KiB, other containers hold one of any size (editors' histories grow).
MAX_XMP_BYTES = 1 << 20
# ICC profiles are parsed by LittleCMS in C; print (CMYK) profiles run to megabytes.
MAX_ICC_BYTES = 4 << 20
# Comments and other text: Pillow's PNG reader inflates one chunk to 1 MiB at most.
MAX_TEXT_BYTES = 1 << 20
# Entries of a TIFF's Exif and GPS IFDs (real ones have tens).
MAX_EXIF_ENTRIES = 1024

# Decoders' own buffers, per pixel of the canvas they decode.
WEBP_DECODER_BYTES = 12  # libwebp's animation decoder: two RGBA canvases, and one frame copied out
JPEG_COEFFICIENT_BYTES = 128  # 64 coefficients of 2 bytes per 8×8 block
AVIF_RGB_BYTES = 4  # libavif converts the decoded planes into an RGBA buffer
AVIF_HEADER_BYTES = 1 << 16
# libheif's buffers per decoded pixel (every tile and the alpha plane counted): the
# composed YUV planes and the interleaved RGB(A) copy pillow-heif hands to Pillow.
HEIF_DECODER_BYTES = 5  # measured: 3.6 beyond Pillow's image, 12 MP in 512² tiles


@dataclass(frozen=True)
class Structure:
    """What a walk of the container found, before any decoder ran."""

    canvas: tuple[int, int] | None = None  # the largest canvas frames are composited onto
    frames: int | None = None  # frames counted, at most max_frames + 1; None: not counted
    decoder_bytes: int = 0  # memory the decoder holds besides the decoded image
    decoder_bytes_per_pixel: float = 0.0  # the same, per pixel of the size Pillow reports
    # PNG: an eXIf or text chunk after the pixels, which Pillow reads only once it has
    # decoded them all (so only then does it know the EXIF orientation).
    metadata_after_pixels: bool = False


def walk(original: bytes, max_frames: int) -> Structure:
    """Walk ``original``'s container, refusing structures whose decode work is unbounded."""
    walker = _walker_for(original)
    if walker is None:
        return Structure()  # Pillow identifies it, or refuses it
    try:
        return walker(original, max_frames)
    except (IndexError, struct.error):
        return Structure()  # truncated inside a header: Pillow reports it as corrupt


def _walker_for(original: bytes) -> Callable[[bytes, int], Structure] | None:
    head = original[:16]
    if head.startswith(b"\xff\xd8\xff"):
        return _walk_jpeg
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return _walk_png
    if head.startswith((b"GIF87a", b"GIF89a")):
        return _walk_gif
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return _walk_webp
    if head.startswith((b"II*\0", b"MM\0*", b"II+\0", b"MM\0+")):
        return _walk_tiff
    if head.startswith(b"BM"):
        return _walk_bmp
    if head[4:8] == b"ftyp":
        return _walk_isobmff
    return None


def _too_complex(what: str, count: int, cap: int) -> OriginalTooComplex:
    return OriginalTooComplex.over_cap(what, count, cap)


class _Metadata:
    """Metadata bytes seen so far, by kind; refuses the original once a kind passes its cap."""

    def __init__(self) -> None:
        self.seen: Counter[str] = Counter()

    @staticmethod
    def cap(kind: str) -> int:
        return {"EXIF": MAX_EXIF_BYTES, "XMP": MAX_XMP_BYTES, "ICC": MAX_ICC_BYTES}.get(
            kind, MAX_TEXT_BYTES
        )

    def left(self, kind: str) -> int:
        return max(0, self.cap(kind) - self.seen[kind])

    def add(self, kind: str, count: int) -> None:
        self.seen[kind] += count
        if self.seen[kind] > self.cap(kind):
            raise OriginalTooComplex(
                f"the original carries more {kind} metadata than a request reads "
                f"({self.cap(kind)} bytes)",
                f"{self.seen[kind]}+ bytes of {kind}, over the cap of {self.cap(kind)}",
            )


def _inflated(data: bytes, start: int, end: int, most: int) -> bytes:
    """zlib data in ``data[start:end]`` inflated, but to ``most`` bytes at most (corrupt: none)."""
    try:
        return zlib.decompressobj().decompress(memoryview(data)[start:end], most)
    except zlib.error:
        return b""


# --- JPEG ---------------------------------------------------------------------------------

_FILL = re.compile(rb"\xff+")
_SOS_OR_EOI = re.compile(rb"\xff[\xda\xd9]")
_EOI = b"\xff\xd9"
_STANDALONE_MARKERS = frozenset({0x01, 0xC8, *range(0xD0, 0xDA)})  # no length follows
_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_PROGRESSIVE_SOF = frozenset({0xC2, 0xC6, 0xCA, 0xCE})


@dataclass(frozen=True)
class _Frame:
    """A JPEG frame header: size, (id, h, v) sampling per component, progressive or not."""

    size: tuple[int, int]
    components: tuple[tuple[int, int, int], ...]
    progressive: bool

    def blocks(self) -> dict[int, int]:
        """8×8 blocks per component id, whole MCUs as libjpeg stores them."""
        max_h = max((h for _, h, _ in self.components), default=1) or 1
        max_v = max((v for _, _, v in self.components), default=1) or 1
        across = -(-self.size[0] // (8 * max_h))
        down = -(-self.size[1] // (8 * max_v))
        return {c: across * h * down * v for c, h, v in self.components}


def _walk_jpeg(data: bytes, max_frames: int) -> Structure:
    """Count segments and fill before the first scan, then scans up to the first EOI."""
    pos, segments, fill = 2, 0, 0
    frame: _Frame | None = None
    metadata = _Metadata()
    while True:
        marker_at = data.find(b"\xff", pos)
        if marker_at < 0:
            return Structure()
        code_at = _FILL.match(data, marker_at).end()  # type: ignore[union-attr]
        fill += code_at - pos - 1
        if fill > MAX_JPEG_FILL_BYTES:
            raise _too_complex("fill bytes before the first scan", fill, MAX_JPEG_FILL_BYTES)
        segments += 1
        if segments > MAX_JPEG_SEGMENTS:
            raise _too_complex("segments before the first scan", segments, MAX_JPEG_SEGMENTS)
        if code_at >= len(data):
            return Structure()
        marker, pos = data[code_at], code_at + 1
        if marker in _STANDALONE_MARKERS or marker == 0:
            continue
        if marker in _SOF_MARKERS:
            frame = _jpeg_frame(data, pos, marker)
        if marker == 0xDA:
            break
        length = struct.unpack_from(">H", data, pos)[0]
        kind = _jpeg_metadata(marker, data, pos + 2)
        if kind:
            metadata.add(kind, max(0, length - 2))
        pos += length
    scans = _jpeg_scans(data, code_at - 1)
    if frame is None:
        return Structure()  # libjpeg refuses a scan before a frame
    work = _scan_blocks(data, scans, frame)
    if work > MAX_JPEG_SCAN_BLOCKS:
        raise _too_complex("blocks to decode over all scans", work, MAX_JPEG_SCAN_BLOCKS)
    if not (frame.progressive or len(scans) > 1):
        return Structure()
    # Multi-scan decoding keeps every coefficient, at full size whatever the DCT scale.
    coefficients = sum(frame.blocks().values()) * JPEG_COEFFICIENT_BYTES
    return Structure(decoder_bytes=coefficients)


# Segments whose payload Pillow keeps: (marker, signature) → kind.
_JPEG_METADATA = (
    (0xE1, b"Exif\0\0", "EXIF"),
    (0xE1, b"http://ns.adobe.com/xap/1.0/\0", "XMP"),
    (0xE2, b"ICC_PROFILE\0", "ICC"),
    (0xFE, b"", "text"),
)


def _jpeg_metadata(marker: int, data: bytes, at: int) -> str | None:
    for code, signature, kind in _JPEG_METADATA:
        if marker == code and data.startswith(signature, at):
            return kind
    return None


def _jpeg_frame(data: bytes, pos: int, marker: int) -> _Frame:
    height, width, count = struct.unpack_from(">xxxHHB", data, pos)
    fields = [struct.unpack_from(">BB", data, pos + 8 + 3 * i) for i in range(count)]
    components = tuple((c, sampling >> 4, sampling & 0x0F) for c, sampling in fields)
    return _Frame((width, height), components, marker in _PROGRESSIVE_SOF)


def _jpeg_scans(data: bytes, first_scan: int) -> list[int]:
    """Where each scan's SOS marker is, up to the first EOI (capped in number).

    In entropy-coded data 0xFF is always followed by 0 or a marker, so a
    0xFF 0xDA found there is an SOS.  One pass of the regex engine finds SOS
    and EOI markers alike (a 20 MP photo: 1.5 ms, where a find, a count and a
    search took 8), and stops at the cap.
    """
    scans = [first_scan]
    for match in _SOS_OR_EOI.finditer(data, first_scan + 2):
        if match.group() == _EOI:
            break
        scans.append(match.start())
        if len(scans) > MAX_JPEG_SCANS:
            raise _too_complex("scans", len(scans), MAX_JPEG_SCANS)  # at least
    return scans


def _scan_blocks(data: bytes, scans: list[int], frame: _Frame) -> int:
    """Blocks decoded over all scans: each scan visits every block of the components it names."""
    blocks = frame.blocks()
    total = 0
    for at in scans:
        count = data[at + 4] if at + 4 < len(data) else 0
        total += sum(blocks.get(c, 0) for c in data[at + 5 : at + 5 + 2 * count : 2])
    return total


# --- PNG ----------------------------------------------------------------------------------


# Where Pillow finds EXIF (and an XMP orientation) in a PNG.
_PNG_METADATA_CHUNKS = frozenset({b"eXIf", b"tEXt", b"zTXt", b"iTXt"})


def _walk_png(data: bytes, max_frames: int) -> Structure:
    """Count every chunk (Pillow handles each in Python, before and after IDAT) and APNG
    frames; note metadata after the pixels."""
    pos, chunks, declared, controls = 8, 0, 0, 0
    pixels_seen = metadata_after_pixels = False
    metadata = _Metadata()
    while pos + 8 <= len(data):
        length, kind = struct.unpack_from(">I4s", data, pos)
        chunks += 1
        if chunks > MAX_PNG_CHUNKS:
            raise _too_complex("chunks", chunks, MAX_PNG_CHUNKS)
        if kind == b"acTL":
            declared = struct.unpack_from(">I", data, pos + 8)[0]
        elif kind == b"fcTL":
            controls += 1
        elif kind == b"IDAT":
            pixels_seen = True
        elif kind in _PNG_METADATA_CHUNKS or kind == b"iCCP":
            _png_metadata(data, kind, pos + 8, min(pos + 8 + length, len(data)), metadata)
            metadata_after_pixels = metadata_after_pixels or pixels_seen
        if kind == b"IEND":
            break
        pos += 12 + length
    # Pillow plays min(declared, present) frames; a plain PNG is one.
    frames = max(1, min(declared, controls)) if declared else 1
    return Structure(frames=frames, metadata_after_pixels=metadata_after_pixels)


# Text keys whose value Pillow reads as EXIF or XMP rather than as text.
_PNG_TEXT_KINDS = {b"exif": "EXIF", b"Raw profile type exif": "EXIF", b"XML:com.adobe.xmp": "XMP"}


def _png_metadata(data: bytes, kind: bytes, start: int, end: int, metadata: _Metadata) -> None:
    """Count a metadata chunk's bytes as Pillow will hold them (inflated, up to the cap)."""
    if kind == b"eXIf":
        metadata.add("EXIF", end - start)
        return
    key_end = data.find(b"\0", start, min(end, start + 80))
    if key_end < 0:
        return  # no keyword: Pillow keeps nothing of it
    key = data[start:key_end]
    what = "ICC" if kind == b"iCCP" else _PNG_TEXT_KINDS.get(key, "text")
    # ImageMagick's EXIF is hex: twice the bytes it decodes to.
    scale = 2 if key == b"Raw profile type exif" else 1
    most = metadata.left(what) * scale + scale
    if kind == b"tEXt":
        size = end - key_end - 1
    elif kind in (b"zTXt", b"iCCP"):
        size = len(_inflated(data, key_end + 2, end, most))
    else:  # iTXt: flag, method, language, translated keyword, text
        language_end = data.find(b"\0", key_end + 3, end)
        text_start = data.find(b"\0", language_end + 1, end) + 1 if language_end >= 0 else 0
        if not text_start:
            return
        compressed = data[key_end + 1] == 1
        size = len(_inflated(data, text_start, end, most)) if compressed else end - text_start
    metadata.add(what, size // scale)


# --- GIF ----------------------------------------------------------------------------------


def _walk_gif(data: bytes, max_frames: int) -> Structure:
    """Every frame's extent (Pillow grows the canvas to hold it) and the frame count.

    The count stops past ``max_frames``: beyond it only the first frame is decoded.
    """
    width, height, flags = struct.unpack_from("<HHB", data, 6)
    pos = 13 + _gif_colour_table(flags)
    canvas, frames, blocks = (width, height), 0, 0
    metadata = _Metadata()
    while pos < len(data) and frames <= max_frames:
        introducer = data[pos]
        if introducer == 0x3B:
            break
        if introducer == 0x21:
            start = pos + 2
            pos, sub_blocks = _skip_sub_blocks(data, start)
            if data[start - 1] == 0xFE:  # a comment: Pillow joins its sub-blocks
                metadata.add("text", pos - start - 1 - sub_blocks)
        elif introducer == 0x2C:
            x, y, w, h, local = struct.unpack_from("<HHHHB", data, pos + 1)
            frames += 1
            canvas = (max(canvas[0], x + w), max(canvas[1], y + h))
            pos, sub_blocks = _skip_sub_blocks(data, pos + 11 + _gif_colour_table(local))
        else:
            pos, sub_blocks = pos + 1, 0  # a stray byte: Pillow reads past it too
        blocks += 1 + sub_blocks
        if blocks > MAX_GIF_BLOCKS:
            raise _too_complex("GIF blocks", blocks, MAX_GIF_BLOCKS)
    return Structure(canvas=canvas, frames=max(frames, 1))


def _gif_colour_table(flags: int) -> int:
    return 3 << ((flags & 7) + 1) if flags & 0x80 else 0


def _skip_sub_blocks(data: bytes, pos: int) -> tuple[int, int]:
    """Past a chain of sub-blocks and its terminator, and how many there were (capped)."""
    count = 0
    while pos < len(data) and data[pos] and count <= MAX_GIF_BLOCKS:
        pos += 1 + data[pos]
        count += 1
    return pos + 1, count


# --- WebP ---------------------------------------------------------------------------------


def _walk_webp(data: bytes, max_frames: int) -> Structure:
    """The canvas (the decoder allocates it twice, when created) and the frame count."""
    pos, chunks, frames = 12, 0, 0
    canvas: tuple[int, int] | None = None
    metadata = _Metadata()
    while pos + 8 <= len(data):
        kind, size = data[pos : pos + 4], struct.unpack_from("<I", data, pos + 4)[0]
        chunks += 1
        if chunks > MAX_WEBP_CHUNKS:
            raise _too_complex("chunks", chunks, MAX_WEBP_CHUNKS)
        if kind in _WEBP_METADATA:
            metadata.add(_WEBP_METADATA[kind], size)
        elif frames > max_frames:
            pass  # past the frame cap only metadata is looked for (libwebp reads it all)
        elif kind == b"ANMF":
            frames += 1
        elif canvas is None:
            canvas = _webp_canvas(kind, data, pos + 8)
        pos += 8 + size + (size & 1)
    if canvas is None:
        return Structure(frames=max(frames, 1))
    return Structure(
        canvas=canvas,
        frames=max(frames, 1),
        decoder_bytes=canvas[0] * canvas[1] * WEBP_DECODER_BYTES,
    )


_WEBP_METADATA = {b"EXIF": "EXIF", b"XMP ": "XMP", b"ICCP": "ICC"}


def _webp_canvas(kind: bytes, data: bytes, at: int) -> tuple[int, int] | None:
    if kind == b"VP8X":
        return _u24(data, at + 4) + 1, _u24(data, at + 7) + 1
    if kind == b"VP8 " and data[at + 3 : at + 6] == b"\x9d\x01\x2a":
        width, height = struct.unpack_from("<HH", data, at + 6)
        return width & 0x3FFF, height & 0x3FFF
    if kind == b"VP8L" and data[at] == 0x2F:
        bits = struct.unpack_from("<I", data, at + 1)[0]
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    return None


def _u24(data: bytes, at: int) -> int:
    return int.from_bytes(data[at : at + 3], "little")


# --- TIFF, BMP, HEIF, AVIF ----------------------------------------------------------------

_TIFF_BYTE_TYPES = frozenset({1, 2, 6, 7})  # BYTE, ASCII, SBYTE, UNDEFINED: kept as bytes
# Bytes per value of each TIFF type (unknown types: Pillow skips the tag).
_TIFF_TYPE_BYTES = {
    1: 1,
    2: 1,
    3: 2,
    4: 4,
    5: 8,
    6: 1,
    7: 1,
    8: 2,
    9: 4,
    10: 8,
    11: 4,
    12: 8,
    13: 4,
}
_TIFF_METADATA = {34675: "ICC", 700: "XMP"}  # tags Pillow keeps as info["icc_profile"], ["xmp"]
_TIFF_SUB_IFDS = (34665, 34853)  # Exif, GPS: EXIF that lives in the file itself


def _walk_tiff(data: bytes, max_frames: int) -> Structure:
    """Tag values of the first page, which Pillow unpacks (later pages are never read);
    its ICC and XMP bytes, and its Exif and GPS IFDs, which are EXIF like any other."""
    endian = "<" if data[:2] == b"II" else ">"
    big = data[2:4] in (b"+\0", b"\0+")
    offset = struct.unpack_from(endian + ("Q" if big else "I"), data, 8 if big else 4)[0]
    count_format, entry_format = ("Q", "HHQ") if big else ("H", "HHI")
    entries = struct.unpack_from(endian + count_format, data, offset)[0]
    first = offset + (8 if big else 2)
    entry_size = 20 if big else 12
    values = entries
    metadata = _Metadata()
    sub_ifds: list[int] = []
    for index in range(min(entries, MAX_TIFF_VALUES + 1)):
        at = first + index * entry_size
        tag, kind, count = struct.unpack_from(endian + entry_format, data, at)
        values += 0 if kind in _TIFF_BYTE_TYPES else count
        if values > MAX_TIFF_VALUES:
            raise _too_complex("TIFF tag values", values, MAX_TIFF_VALUES)
        if tag in _TIFF_METADATA:
            metadata.add(_TIFF_METADATA[tag], count * _TIFF_TYPE_BYTES.get(kind, 0))
        elif tag in _TIFF_SUB_IFDS:
            value_at = at + entry_size - (8 if big else 4)  # the last field: value or offset
            sub_ifds.append(struct.unpack_from(endian + entry_format[-1], data, value_at)[0])
    for sub_ifd in sub_ifds:
        with suppress(struct.error):  # cut short: what is there still counts, the next one too
            _tiff_exif_ifd(data, sub_ifd, endian, big, metadata)
    return Structure(frames=1)


def _tiff_exif_ifd(data: bytes, offset: int, endian: str, big: bool, metadata: _Metadata) -> None:
    """An Exif or GPS IFD: its entries and the bytes of their values count as EXIF."""
    count_format, entry_format, entry_size = ("Q", "HHQ", 20) if big else ("H", "HHI", 12)
    entries = struct.unpack_from(endian + count_format, data, offset)[0]
    if entries > MAX_EXIF_ENTRIES:
        raise _too_complex("Exif IFD entries", entries, MAX_EXIF_ENTRIES)
    first = offset + struct.calcsize(count_format)
    metadata.add("EXIF", entries * entry_size)
    for index in range(entries):
        _, kind, count = struct.unpack_from(endian + entry_format, data, first + index * entry_size)
        size = count * _TIFF_TYPE_BYTES.get(kind, 0)
        if size > (8 if big else 4):
            metadata.add("EXIF", size)


def _walk_bmp(data: bytes, max_frames: int) -> Structure:
    """Run-length BMPs are decoded by Pillow in Python: their pixels are capped lower."""
    header = struct.unpack_from("<I", data, 14)[0]
    if header < 40:
        return Structure()  # OS/2 BMPs have no compression
    width, height, _, _, compression = struct.unpack_from("<iiHHI", data, 18)
    pixels = abs(width) * abs(height)
    if compression in (1, 2) and pixels > MAX_RLE_BMP_PIXELS:
        raise OriginalTooManyPixels(
            f"a run-length BMP may have at most {MAX_RLE_BMP_PIXELS} pixels",
            f"{width}×{height} RLE BMP",
        )
    return Structure()


def _walk_isobmff(data: bytes, max_frames: int) -> Structure:
    """HEIF and AVIF: the box tree bounds every item decoded (isobmff.walk), then the buffers.

    Both openers hand their Exif, XMP and ICC to Pillow, which parses the EXIF
    and may write all of it out again: the walk's metadata is held to the caps.
    """
    cost = isobmff.walk(data)
    metadata = _Metadata()
    for kind, count in cost.metadata:
        metadata.add(kind, count)
    if isobmff.is_heif(data):
        return Structure(frames=1, decoder_bytes=cost.decoded_pixels * HEIF_DECODER_BYTES)
    return _walk_avif(data, cost)


def _walk_avif(data: bytes, cost: isobmff.Cost) -> Structure:
    """libavif's buffers per decoded pixel: YUV planes at the ``av1C`` depth and subsampling, RGBA.

    The size is left to Pillow, whose opener reads it without decoding; the
    configuration sits in the header, so only its first 64 KiB are searched
    (none found: the deepest planes are assumed).
    """
    at = data.find(b"av1C", 0, AVIF_HEADER_BYTES)
    planes = _av1_plane_bytes(data[at + 6]) if at >= 0 and at + 6 < len(data) else 6.0
    return Structure(decoder_bytes_per_pixel=planes + AVIF_RGB_BYTES)


def _av1_plane_bytes(config: int) -> float:
    """Bytes per pixel of the decoded YUV planes, from the third byte of an ``av1C`` record."""
    sample = 2.0 if config & 0x40 else 1.0  # high_bitdepth
    if config & 0x10:  # monochrome
        return sample
    chroma = {0: 2.0, 1: 1.0, 2: 1.0, 3: 0.5}[(config >> 2) & 0x03]  # subsampling x, y
    return sample * (1 + chroma)
