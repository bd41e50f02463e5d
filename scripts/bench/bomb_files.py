"""Resource bombs, built byte by byte: deterministic, nothing downloaded, nothing committed.

Each generator takes its dimensions and counts as arguments: the benchmark
(scripts/bench/bombs.py) builds the full-size attack, the unit tests a small
variation that still crosses the same limit.  Every file is valid enough for
Pillow to open it; what makes it a bomb is the work it causes, not its size.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from io import BytesIO

from PIL import Image

# --- GIF ----------------------------------------------------------------------------------

GIF_PALETTE = bytes((0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255))  # black, red, green, blue
_GIF_CLEAR, _GIF_END, _GIF_CODE_BITS = 4, 5, 3  # LZW with a minimum code size of 2


@dataclass(frozen=True)
class GifFrame:
    """One image block: where it sits on the screen, its size and its one palette index."""

    x: int = 0
    y: int = 0
    width: int = 1
    height: int = 1
    colour: int = 1
    duration_cs: int = 10
    disposal: int = 1


def gif(
    screen: tuple[int, int], frames: Iterable[GifFrame], *, extensions_before: int = 0
) -> bytes:
    """A GIF89a with a four-colour global palette, looping forever.

    ``extensions_before`` empty comment extensions precede the first frame.
    """
    header = b"GIF89a" + struct.pack("<HHBBB", *screen, 0x81, 0, 0) + GIF_PALETTE
    loop = b"!\xff\x0bNETSCAPE2.0\x03\x01\x00\x00\x00"
    return (
        header
        + loop
        + b"!\xfe\x00" * extensions_before
        + b"".join(_gif_frame(frame) for frame in frames)
        + b";"
    )


def _gif_frame(frame: GifFrame) -> bytes:
    control = struct.pack("<BBBBHBB", 0x21, 0xF9, 4, frame.disposal << 2, frame.duration_cs, 0, 0)
    descriptor = b"," + struct.pack("<HHHHB", frame.x, frame.y, frame.width, frame.height, 0)
    codes = _solid_lzw_codes(frame.colour, frame.width * frame.height)
    data = _pack_lsb_first(codes, _GIF_CODE_BITS)
    blocks = b"".join(bytes((len(part),)) + part for part in _chunked(data, 255))
    return control + descriptor + b"\x02" + blocks + b"\x00"


def _solid_lzw_codes(colour: int, pixels: int) -> Iterator[int]:
    """Two literal codes per clear code, so the code width never grows past 3 bits."""
    for start in range(0, pixels, 2):
        yield _GIF_CLEAR
        yield from [colour] * min(2, pixels - start)
    yield _GIF_END


def _pack_lsb_first(codes: Iterable[int], bits: int) -> bytes:
    value, used, out = 0, 0, bytearray()
    for code in codes:
        value |= code << used
        used += bits
        while used >= 8:
            out.append(value & 0xFF)
            value >>= 8
            used -= 8
    if used:
        out.append(value)
    return bytes(out)


def _chunked(data: bytes, size: int) -> Iterator[bytes]:
    return (data[i : i + size] for i in range(0, len(data), size))


def gif_offscreen_frame(screen: int = 1, offset: int = 12_999) -> bytes:
    """A ``screen``² GIF whose second 1×1 frame sits at (offset, offset), off the screen.

    Pillow grows the canvas to hold it: 85 bytes become a 13000² canvas.
    """
    return gif((screen, screen), [GifFrame(), GifFrame(offset, offset, colour=2)])


def gif_tiny_frames(frames: int = 20, size: int = 2) -> bytes:
    """A ``size``² animation of ``frames`` distinct frames: cheap to store, dear to pad."""
    return gif((size, size), [GifFrame(0, 0, size, size, 1 + i % 3) for i in range(frames)])


def gif_identical_frames(frames: int = 3, size: tuple[int, int] = (40, 20)) -> bytes:
    """An animation whose frames are all the same picture (Pillow's own writer merges those)."""
    return gif(size, [GifFrame(0, 0, *size, colour=1)] * frames)


def gif_many_extensions(extensions: int = 10_000_000) -> bytes:
    """A 1×1 GIF with millions of empty comment extensions before its only frame."""
    return gif((1, 1), [GifFrame()], extensions_before=extensions)


def gif_many_frames(frames: int = 1_000_000) -> bytes:
    """A 1×1 animation of a million frames: counting them is the work."""
    return gif((1, 1), [GifFrame(colour=1 + i % 2) for i in range(frames)])


# --- WebP ---------------------------------------------------------------------------------


def _riff_chunk(kind: bytes, payload: bytes) -> bytes:
    return kind + struct.pack("<I", len(payload)) + payload + b"\0" * (len(payload) % 2)


def _vp8l_chunk(size: tuple[int, int] = (1, 1)) -> bytes:
    """A lossless WebP bitstream chunk (``VP8L``), as libwebp encodes a transparent rectangle."""
    buffer = BytesIO()
    Image.new("RGBA", size, (255, 0, 0, 128)).save(buffer, "WEBP", lossless=True)
    riff = buffer.getvalue()
    assert riff[12:16] == b"VP8L", riff[:16]
    return riff[12:]


def webp_animation(
    canvas: tuple[int, int], frames: int = 1, frame: tuple[int, int] = (1, 1)
) -> bytes:
    """An animated WebP: a VP8X canvas and ``frames`` ``frame``-sized frames at its origin."""
    flags = 0x02 | 0x10  # animation, alpha
    vp8x = struct.pack("<I", flags) + _u24(canvas[0] - 1) + _u24(canvas[1] - 1)
    anim = struct.pack("<IH", 0, 0)
    body = _vp8l_chunk(frame)
    anmf_header = _u24(0) + _u24(0) + _u24(frame[0] - 1) + _u24(frame[1] - 1) + _u24(100) + b"\0"
    anmf = _riff_chunk(b"ANMF", anmf_header + body)
    payload = b"WEBP" + _riff_chunk(b"VP8X", vp8x) + _riff_chunk(b"ANIM", anim) + anmf * frames
    return b"RIFF" + struct.pack("<I", len(payload)) + payload


def _u24(value: int) -> bytes:
    return struct.pack("<I", value)[:3]


# --- PNG ----------------------------------------------------------------------------------

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png(
    size: tuple[int, int],
    *,
    colour_type: int = 0,
    bit_depth: int = 8,
    before_idat: bytes = b"",
    after_idat: bytes = b"",
    pixels: bytes | None = None,
) -> bytes:
    """A PNG of ``size`` whose every pixel is zero, unless ``pixels`` (filtered rows) is given."""
    width, height = size
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[colour_type]
    row = b"\0" * (1 + (width * channels * bit_depth + 7) // 8)
    compressor = zlib.compressobj(9)
    data = (
        compressor.compress(pixels)
        if pixels is not None
        else _deflate_rows(compressor, row, height)
    )
    data += compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return (
        PNG_SIGNATURE
        + png_chunk(b"IHDR", header)
        + before_idat
        + png_chunk(b"IDAT", data)
        + after_idat
        + png_chunk(b"IEND", b"")
    )


def _deflate_rows(compressor: zlib._Compress, row: bytes, height: int) -> bytes:
    """``height`` copies of ``row``, deflated a block at a time so no copy of it all is held."""
    block_rows = max(1, (1 << 20) // len(row))
    out = [
        compressor.compress(row * min(block_rows, height - i)) for i in range(0, height, block_rows)
    ]
    return b"".join(out)


def png_many_chunks(chunks: int = 3_490_000, *, after_idat: bool = False) -> bytes:
    """A 1×1 PNG with millions of empty private chunks before (or after) its IDAT."""
    private = png_chunk(b"prIv", b"") * chunks
    return png((1, 1), after_idat=private) if after_idat else png((1, 1), before_idat=private)


def png_palette_transparent(side: int = 7745, *, transparent: bool = True) -> bytes:
    """A side² palette PNG with a transparent index: tiny on disk, RGBA once decoded."""
    palette = png_chunk(b"PLTE", bytes((0, 0, 0, 255, 0, 0)))
    transparency = png_chunk(b"tRNS", b"\0") if transparent else b""
    return png((side, side), colour_type=3, before_idat=palette + transparency)


def png_bomb(width: int = 30_000, height: int = 30_000) -> bytes:
    """A tiny PNG whose header declares width×height pixels (a decompression bomb)."""
    return png((width, height), colour_type=2, pixels=b"\0" * 64)


# --- JPEG ---------------------------------------------------------------------------------


def jpeg_progressive(
    side: int = 7745, components: int = 1, extra_ac_scans: int = 4000, dc_scans: int = 1
) -> bytes:
    """A side² progressive JPEG of flat grey: DC scans, then many empty AC scans.

    Each AC scan codes every block of its component as end-of-band runs of up
    to 32767 blocks, so a scan costs about a hundred bytes on disk and a pass
    over every block to decode.  A DC scan covers every block of every
    component at a bit each (libjpeg only warns when one is repeated).
    """
    blocks = ((side + 7) // 8) ** 2
    component_ids = range(1, components + 1)
    frame = struct.pack(">BHHB", 8, side, side, components) + b"".join(
        struct.pack(">BBB", c, 0x11, 0) for c in component_ids
    )
    dc_scan = _sos(component_ids, 0, 0) + _zero_bits(blocks * components)
    ac_scans = [
        _sos([component_ids[i % components]], 1, 63) + _bits(_eob_runs(blocks))
        for i in range(extra_ac_scans)
    ]
    return (
        b"\xff\xd8"
        + _segment(0xDB, b"\0" + b"\x01" * 64)
        + _segment(0xC2, frame)
        + _segment(0xC4, _huffman_table(0x00, {1: [0]}))
        + _segment(0xC4, _huffman_table(0x10, {4: [r << 4 for r in range(15)]}))
        + dc_scan * dc_scans
        + b"".join(ac_scans)
        + b"\xff\xd9"
    )


def jpeg_many_markers(markers: int = 10_000_000) -> bytes:
    """An 8×8 JPEG with millions of empty comment segments before its frame header."""
    return _after_soi(b"\xff\xfe\x00\x02" * markers)


def jpeg_fill(fill_bytes: int = 40_000_000) -> bytes:
    """An 8×8 JPEG whose first marker is preceded by millions of 0xFF fill bytes."""
    return _after_soi(b"\xff" * fill_bytes)


def _after_soi(inserted: bytes) -> bytes:
    buffer = BytesIO()
    Image.new("L", (8, 8), 128).save(buffer, "JPEG")
    data = buffer.getvalue()
    return data[:2] + inserted + data[2:]


def _segment(marker: int, payload: bytes) -> bytes:
    return struct.pack(">BBH", 0xFF, marker, len(payload) + 2) + payload


def _sos(component_ids: Iterable[int], start: int, end: int) -> bytes:
    ids = list(component_ids)
    header = bytes((len(ids),)) + b"".join(bytes((c, 0x00)) for c in ids)
    return _segment(0xDA, header + bytes((start, end, 0)))


def _huffman_table(table: int, codes_by_length: dict[int, list[int]]) -> bytes:
    counts = bytes(len(codes_by_length.get(length, [])) for length in range(1, 17))
    symbols = bytes(s for length in range(1, 17) for s in codes_by_length.get(length, []))
    return bytes((table,)) + counts + symbols


def _eob_runs(blocks: int) -> Iterator[tuple[int, int]]:
    """(code, bits) pairs coding ``blocks`` empty blocks as EOBn runs (4-bit codes r, r bits)."""
    while blocks:
        run = min(blocks, 32_767)
        r = run.bit_length() - 1
        yield r, 4
        if r:
            yield run - (1 << r), r
        blocks -= run


def _zero_bits(count: int) -> bytes:
    """``count`` zero bits (DC difference 0 with a one-bit code), padded with ones."""
    whole, rest = divmod(count, 8)
    return b"\0" * whole + (bytes(((1 << (8 - rest)) - 1,)) if rest else b"")


def _bits(codes: Iterable[tuple[int, int]]) -> bytes:
    """Entropy-coded bytes, MSB first, padded with ones, 0xFF stuffed with 0x00."""
    value, used, out = 0, 0, bytearray()
    for code, length in codes:
        value = (value << length) | code
        used += length
        while used >= 8:
            used -= 8
            byte = (value >> used) & 0xFF
            out.append(byte)
            if byte == 0xFF:
                out.append(0)
        value &= (1 << used) - 1
    if used:
        byte = ((value << (8 - used)) | ((1 << (8 - used)) - 1)) & 0xFF
        out += b"\xff\x00" if byte == 0xFF else bytes((byte,))
    return bytes(out)


# --- TIFF ---------------------------------------------------------------------------------


def tiff_pages(pages: int = 60_000) -> bytes:
    """A little-endian TIFF of ``pages`` chained 1×1 grey pages."""
    ifd_size = 2 + 9 * 12 + 4
    page_size = ifd_size + 2  # the pixel, padded to keep IFDs on word boundaries
    out = bytearray(b"II*\0" + struct.pack("<I", 8))
    for page in range(pages):
        start = 8 + page * page_size
        pixel = start + ifd_size
        following = start + page_size if page + 1 < pages else 0
        out += _ifd([(256, 1), (257, 1), (258, 8), (259, 1), (262, 1)], pixel, 1, 1, following)
        out += b"\x80\0"
    return bytes(out)


def tiff_many_strips(height: int = 4_000_000) -> bytes:
    """A 1×height grey TIFF stored one row per strip: millions of strip offsets."""
    ifd_size = 2 + 9 * 12 + 4
    offsets_at = 8 + ifd_size
    counts_at = offsets_at + 4 * height
    pixels_at = counts_at + 4 * height
    entries = [(256, 1), (257, height), (258, 8), (259, 1), (262, 1)]
    ifd = _ifd(entries, offsets_at, height, 1, 0, counts_at=counts_at)
    offsets = struct.pack(f"<{height}I", *range(pixels_at, pixels_at + height))
    return b"II*\0" + struct.pack("<I", 8) + ifd + offsets + b"\1\0\0\0" * height + b"\x80" * height


def _ifd(
    shorts: list[tuple[int, int]],
    strip_offsets: int,
    strips: int,
    rows_per_strip: int,
    following: int,
    *,
    counts_at: int | None = None,
) -> bytes:
    """One IFD: the tags given, then strip offsets, samples, rows and byte counts."""
    # SHORT where the value fits (as writers do), LONG past it (a height over 65,535).
    entries = [
        struct.pack("<HHII", tag, 3 if value <= 0xFFFF else 4, 1, value) for tag, value in shorts
    ]
    entries.append(struct.pack("<HHII", 273, 4, strips, strip_offsets))
    entries.append(struct.pack("<HHII", 277, 3, 1, 1))
    entries.append(struct.pack("<HHII", 278, 4, 1, rows_per_strip))
    entries.append(struct.pack("<HHII", 279, 4, strips, counts_at if counts_at else 1))
    return struct.pack("<H", len(entries)) + b"".join(entries) + struct.pack("<I", following)


# --- AVIF and BMP -------------------------------------------------------------------------


def avif_declaring(side: int = 7745, actual: int = 64) -> bytes:
    """An ``actual``² AVIF whose ``ispe`` box claims side×side."""
    buffer = BytesIO()
    Image.new("RGB", (actual, actual), (200, 40, 40)).save(buffer, "AVIF", quality=50)
    data = bytearray(buffer.getvalue())
    at = data.index(b"ispe") + 8  # after the type and the version/flags word
    assert struct.unpack(">II", data[at : at + 8]) == (actual, actual)
    data[at : at + 8] = struct.pack(">II", side, side)
    return bytes(data)


def bmp_rle4(side: int = 7745) -> bytes:
    """A side² 4-bit run-length BMP: runs of 255 pixels, which Pillow expands one by one."""
    runs_per_row, rest = divmod(side, 255)
    row = b"\xff\x12" * runs_per_row + (bytes((rest, 0x12)) if rest else b"") + b"\0\0"
    pixels = row * side + b"\0\1"
    palette = b"".join(bytes((c, c, c, 0)) for c in range(0, 256, 16))
    offset = 14 + 40 + len(palette)
    info = struct.pack("<IiiHHIIiiII", 40, side, side, 1, 4, 2, len(pixels), 2835, 2835, 16, 0)
    return (
        b"BM" + struct.pack("<IHHI", offset + len(pixels), 0, 0, offset) + info + palette + pixels
    )


# --- Metadata -----------------------------------------------------------------------------

_UNKNOWN_RATIONAL_TAG = 0x9204  # ExposureBiasValue; any tag of type RATIONAL will do


def exif_rationals(count: int, orientation: int = 6) -> bytes:
    """An EXIF block (``Exif\\0\\0`` and a little-endian TIFF structure): IFD0 holds an
    orientation and points to an Exif IFD whose one tag has ``count`` RATIONAL values.

    Pillow makes one Python object per value when it unpacks that IFD, and
    re-serialises all of them when ImageOps.exif_transpose drops the orientation.
    """
    ifd0_at = 8
    exif_ifd_at = ifd0_at + 2 + 2 * 12 + 4
    values_at = exif_ifd_at + 2 + 12 + 4
    ifd0 = (
        struct.pack("<H", 2)
        + struct.pack("<HHIHH", 0x0112, 3, 1, orientation, 0)
        + struct.pack("<HHII", 0x8769, 4, 1, exif_ifd_at)
        + struct.pack("<I", 0)
    )
    exif_ifd = (
        struct.pack("<H", 1)
        + struct.pack("<HHII", _UNKNOWN_RATIONAL_TAG, 5, count, values_at)
        + struct.pack("<I", 0)
    )
    return (
        b"Exif\0\0II*\0"
        + struct.pack("<I", ifd0_at)
        + ifd0
        + exif_ifd
        + b"\1\0\0\0\3\0\0\0" * count
    )


def png_exif(count: int = 1_000_000) -> bytes:
    """A 64×48 PNG whose ``eXIf`` chunk holds ``count`` rationals (1 M: 8 MB)."""
    chunk = png_chunk(b"eXIf", exif_rationals(count)[6:])
    return png((64, 48), colour_type=2, before_idat=chunk)


def webp_exif(count: int = 1_000_000) -> bytes:
    """A 64×48 still WebP whose ``EXIF`` chunk holds ``count`` rationals."""
    buffer = BytesIO()
    Image.new("RGB", (64, 48), (200, 40, 40)).save(buffer, "WEBP", exif=exif_rationals(count))
    return buffer.getvalue()


def jpeg_exif(count: int = 1_000_000) -> bytes:
    """A 64×48 JPEG whose EXIF, ``count`` rationals, spans as many APP1 segments as it takes:
    Pillow joins every ``Exif`` APP1 into one block, so one segment's 64 KiB is no limit."""
    buffer = BytesIO()
    Image.new("RGB", (64, 48), (200, 40, 40)).save(buffer, "JPEG")
    block = exif_rationals(count)[6:]
    segments = b"".join(
        _segment(0xE1, b"Exif\0\0" + block[i : i + 65_000]) for i in range(0, len(block), 65_000)
    )
    data = buffer.getvalue()
    return data[:2] + segments + data[2:]


def tiff_exif(count: int = 1_000_000) -> bytes:
    """A 1×1 grey TIFF whose Exif IFD (in the file itself) has a tag of ``count`` rationals."""
    ifd_size = 2 + 10 * 12 + 4
    exif_ifd_at = 8 + ifd_size
    values_at = exif_ifd_at + 2 + 12 + 4
    pixel_at = values_at + 8 * count
    shorts = [(256, 1), (257, 1), (258, 8), (259, 1), (262, 1)]
    ifd = _ifd(shorts, pixel_at, 1, 1, 0)
    exif_pointer = struct.pack("<HHII", 0x8769, 4, 1, exif_ifd_at)
    ifd = struct.pack("<H", 10) + ifd[2:-4] + exif_pointer + ifd[-4:]  # tags stay in order
    exif_ifd = (
        struct.pack("<H", 1)
        + struct.pack("<HHII", _UNKNOWN_RATIONAL_TAG, 5, count, values_at)
        + struct.pack("<I", 0)
    )
    return b"II*\0" + struct.pack("<I", 8) + ifd + exif_ifd + b"\1\0\0\0\3\0\0\0" * count + b"\x80"


def jpeg_wrongly_typed_exif(orientation: int = 6) -> bytes:
    """A 80×40 JPEG whose EXIF has an orientation and ImageWidth stored as ASCII:
    Pillow's Exif.tobytes (ImageOps.exif_transpose) fails on it with struct.error."""
    entries = struct.pack("<HHI4s", 0x0100, 2, 4, b"abc\0") + struct.pack(
        "<HHIHH", 0x0112, 3, 1, orientation, 0
    )
    exif = b"Exif\0\0II*\0" + struct.pack("<IH", 8, 2) + entries + struct.pack("<I", 0)
    buffer = BytesIO()
    Image.new("RGB", (80, 40), (200, 40, 40)).save(buffer, "JPEG", exif=exif)
    return buffer.getvalue()


# --- Broken files that once escaped as 500s -------------------------------------------------


def gif_cut_in_a_later_frame(frames: int = 3) -> bytes:
    """An animated GIF cut half-way through its second frame's image descriptor."""
    data = gif((8, 8), [GifFrame(0, 0, 8, 8, 1 + i % 3) for i in range(frames)])
    second_control = data.index(b"\x21\xf9\x04", data.index(b"\x21\xf9\x04") + 1)
    return data[: second_control + 8 + 5]


def avif_missing_primary_item(item: int = 99) -> bytes:
    """A 64² AVIF whose ``pitm`` box names an item that does not exist (libavif: RuntimeError)."""
    buffer = BytesIO()
    Image.new("RGB", (64, 64), (200, 40, 40)).save(buffer, "AVIF", quality=50)
    data = bytearray(buffer.getvalue())
    at = data.index(b"pitm") + 8  # after the box type and its version and flags
    data[at : at + 2] = struct.pack(">H", item)
    return bytes(data)


def avif_exif(count: int = 200_000, orientation: int = 6) -> bytes:
    """A 64×48 AVIF whose Exif item holds ``count`` rationals; Pillow's writer moves the
    orientation into ``irot``/``imir``, so its reader puts it back and re-serialises all."""
    buffer = BytesIO()
    exif = exif_rationals(count, orientation)
    Image.new("RGB", (64, 48), (200, 40, 40)).save(buffer, "AVIF", quality=50, exif=exif)
    return buffer.getvalue()
