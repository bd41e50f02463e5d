"""Container walks: what they count, where each cap starts refusing, and that they never crash."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from PIL import PngImagePlugin

from chalicelib.errors import OriginalTooComplex, OriginalTooManyPixels
from chalicelib.imaging import containers
from scripts.bench import bomb_files as bombs
from tests.support import corpus


def test_gif_canvas_covers_every_frames_extent() -> None:
    structure = containers.walk(bombs.gif_offscreen_frame(screen=3, offset=500), max_frames=10)
    assert structure.canvas == (501, 501)
    assert structure.frames == 2


def test_gif_frames_are_counted_only_past_the_cap() -> None:
    assert containers.walk(bombs.gif_many_frames(50), max_frames=100).frames == 50
    assert containers.walk(bombs.gif_many_frames(5000), max_frames=10).frames == 11


def test_webp_canvas_and_decoder_buffers_come_from_vp8x() -> None:
    structure = containers.walk(bombs.webp_animation((3000, 2000), frames=4), max_frames=10)
    assert (structure.canvas, structure.frames) == ((3000, 2000), 4)
    assert structure.decoder_bytes == 3000 * 2000 * containers.WEBP_DECODER_BYTES


@pytest.mark.parametrize(
    ("original", "size"),
    [
        (lambda: corpus.encode(corpus.quadrants((300, 200)), "WEBP", quality=80), (300, 200)),
        (lambda: corpus.encode(corpus.quadrants((301, 199)), "WEBP", lossless=True), (301, 199)),
    ],
    ids=["lossy", "lossless"],
)
def test_still_webp_canvas_is_its_bitstreams_size(
    original: Callable[[], bytes], size: tuple[int, int]
) -> None:
    assert containers.walk(original(), max_frames=10).canvas == size


@pytest.mark.parametrize(("components", "sampling"), [(1, 1), (3, 3)])
def test_progressive_jpeg_holds_a_full_size_coefficient_buffer(
    components: int, sampling: int
) -> None:
    structure = containers.walk(bombs.jpeg_progressive(800, components, 3), max_frames=10)
    assert structure.decoder_bytes == (800 // 8) ** 2 * sampling * 128


def test_subsampled_chroma_needs_fewer_coefficients() -> None:
    progressive = corpus.encode(corpus.quadrants((800, 800)), "JPEG", progressive=True)
    assert containers.walk(progressive, max_frames=10).decoder_bytes == 100 * 100 * 1.5 * 128


def test_baseline_jpeg_is_decoded_without_a_coefficient_buffer() -> None:
    assert containers.walk(corpus.jpeg((800, 600)), max_frames=10).decoder_bytes == 0


def test_apng_frames_are_the_fewer_of_declared_and_present() -> None:
    frames = [corpus.quadrants((40, 30)).rotate(90 * i) for i in range(3)]
    apng = corpus.encode(frames[0], "PNG", save_all=True, append_images=frames[1:])
    assert containers.walk(apng, max_frames=10).frames == 3
    assert containers.walk(corpus.png_rgba((40, 40)), max_frames=10).frames == 1


def test_avif_decoder_buffers_follow_its_av1_configuration() -> None:
    avif = corpus.in_format("AVIF", (64, 64))  # 8-bit 4:2:0: 1.5 bytes of planes a pixel
    structure = containers.walk(avif, max_frames=10)
    assert structure.decoder_bytes_per_pixel == 1.5 + containers.AVIF_RGB_BYTES


# Each cap, set small: the walk passes at the cap and refuses one past it.
CAPPED: list[tuple[str, Callable[[int], bytes], int]] = [
    ("MAX_JPEG_SCANS", lambda n: bombs.jpeg_progressive(16, 1, n - 1), 20),
    # A 16² grey JPEG has 4 blocks: scans of 4 blocks each, one past the cap at 44.
    ("MAX_JPEG_SCAN_BLOCKS", lambda n: bombs.jpeg_progressive(16, 1, -(-n // 4) - 1), 40),
    ("MAX_JPEG_SEGMENTS", lambda n: bombs.jpeg_many_markers(n - _segments_in_plain_jpeg()), 30),
    ("MAX_JPEG_FILL_BYTES", bombs.jpeg_fill, 50),
    ("MAX_PNG_CHUNKS", lambda n: bombs.png_many_chunks(n - 3), 20),
    ("MAX_GIF_BLOCKS", lambda n: bombs.gif_many_extensions(n - 7), 20),  # + loop, control, frame
    ("MAX_WEBP_CHUNKS", lambda n: bombs.webp_animation((1, 1), n - 2), 20),
    ("MAX_TIFF_VALUES", lambda n: bombs.tiff_many_strips((n - 15) // 2), 42),  # 16 + 2 a strip
]


def _segments_in_plain_jpeg() -> int:
    """Segments Pillow's 8×8 JPEG has up to its first scan: the lowest cap it passes."""
    plain = bombs.jpeg_many_markers(0)
    with pytest.MonkeyPatch.context() as patch:
        for cap in range(1, 40):
            patch.setattr(containers, "MAX_JPEG_SEGMENTS", cap)
            try:
                containers.walk(plain, max_frames=1)
            except OriginalTooComplex:
                continue
            return cap
    raise AssertionError("Pillow's plain JPEG has more than 40 segments")


@pytest.mark.parametrize(("cap", "make", "value"), CAPPED, ids=[c[0] for c in CAPPED])
def test_each_cap_refuses_only_past_it(
    monkeypatch: pytest.MonkeyPatch, cap: str, make: Callable[[int], bytes], value: int
) -> None:
    monkeypatch.setattr(containers, cap, value)
    containers.walk(make(value), max_frames=10_000)
    with pytest.raises(OriginalTooComplex) as info:
        containers.walk(make(value + 1), max_frames=10_000)
    assert (info.value.status, info.value.code) == (422, "original_too_complex")


def test_png_chunks_after_idat_count_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(containers, "MAX_PNG_CHUNKS", 20)
    with pytest.raises(OriginalTooComplex):
        containers.walk(bombs.png_many_chunks(20, after_idat=True), max_frames=10)


@pytest.mark.parametrize(
    ("original", "after"),
    [
        (lambda: corpus.png_on_its_side(), False),  # Pillow writes eXIf first
        (lambda: corpus.png_on_its_side(exif_after_pixels=True), True),
        (lambda: bombs.png((4, 4), after_idat=bombs.png_chunk(b"tEXt", b"Comment\0hi")), True),
        (lambda: bombs.png((4, 4), after_idat=bombs.png_chunk(b"prIv", b"")), False),
        (corpus.png_rgba, False),
    ],
    ids=["exif-first", "exif-after", "text-after", "private-after", "none"],
)
def test_png_metadata_after_the_pixels_is_noted(original: Callable[[], bytes], after: bool) -> None:
    # Only then must Pillow decode every pixel to learn the EXIF orientation.
    assert containers.walk(original(), max_frames=1).metadata_after_pixels is after


def test_run_length_bmp_pixels_are_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(containers, "MAX_RLE_BMP_PIXELS", 100 * 100)
    containers.walk(bombs.bmp_rle4(100), max_frames=1)
    with pytest.raises(OriginalTooManyPixels) as info:
        containers.walk(bombs.bmp_rle4(101), max_frames=1)
    assert info.value.status == 413
    uncompressed = corpus.in_format("BMP", (101, 101))
    assert containers.walk(uncompressed, max_frames=1) == containers.Structure()


@pytest.mark.parametrize(
    "original",
    [
        bombs.gif_offscreen_frame(),
        bombs.webp_animation((64, 64), 3),
        bombs.jpeg_progressive(64, 3, 5),
        bombs.png_many_chunks(10),
        bombs.tiff_pages(3),
        bombs.bmp_rle4(40),
    ],
    ids=["gif", "webp", "jpeg", "png", "tiff", "bmp"],  # ISO-BMFF: tests/test_heif.py
)
def test_truncated_containers_end_the_walk_quietly(original: bytes) -> None:
    for length in range(0, len(original), max(1, len(original) // 97)):
        assert isinstance(containers.walk(original[:length], max_frames=10), containers.Structure)


# --- metadata caps ------------------------------------------------------------------------

# An EXIF block of n rationals in each container Pillow reads EXIF from.
EXIF_BOMBS: dict[str, Callable[[int], bytes]] = {
    "png eXIf": bombs.png_exif,
    "webp EXIF": bombs.webp_exif,
    "jpeg APP1 x2": bombs.jpeg_exif,  # Pillow joins the segments into one block
    "tiff Exif IFD": bombs.tiff_exif,
    "avif Exif item": lambda n: bombs.avif_exif(n, orientation=1),
}
_RATIONALS_PAST_THE_CAP = containers.MAX_EXIF_BYTES // 8 + 1


@pytest.mark.parametrize("make", EXIF_BOMBS.values(), ids=EXIF_BOMBS.keys())
def test_exif_over_its_cap_is_refused_by_the_walk(make: Callable[[int], bytes]) -> None:
    containers.walk(make(1000), max_frames=1)
    with pytest.raises(OriginalTooComplex) as info:
        containers.walk(make(_RATIONALS_PAST_THE_CAP), max_frames=1)
    assert "EXIF" in info.value.public_message


def test_a_broken_gps_ifd_does_not_hide_the_exif_ifd() -> None:
    bomb = bytearray(bombs.tiff_exif(_RATIONALS_PAST_THE_CAP))
    # The PhotometricInterpretation entry, ahead of the Exif pointer, becomes a GPS
    # pointer past the end of the file.
    at = bomb.index(bytes.fromhex("0601 0300 01000000"))
    bomb[at : at + 12] = bytes.fromhex("2588 0400 01000000 ffffff7f")
    with pytest.raises(OriginalTooComplex):
        containers.walk(bytes(bomb), max_frames=1)


def test_tiff_exif_ifd_entries_are_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(containers, "MAX_EXIF_ENTRIES", 0)
    with pytest.raises(OriginalTooComplex):
        containers.walk(bombs.tiff_exif(1), max_frames=1)


def _png_text(kind: str, payload: bytes) -> bytes:
    info = PngImagePlugin.PngInfo()
    if kind == "zTXt":
        info.add_text("Comment", payload.decode(), zip=True)
    elif kind == "iTXt XMP":
        info.add_itxt("XML:com.adobe.xmp", payload.decode(), zip=True)
    elif kind == "hex exif":  # ImageMagick's way: twice the bytes, as hex text
        info.add_text("Raw profile type exif", f"\nexif\n{len(payload):8}\n{payload.hex()}\n")
    else:
        info.add_text("Comment", payload.decode())
    return corpus.encode(corpus.quadrants((8, 8)), "PNG", pnginfo=info)


def _with(fmt: str, **metadata: object) -> Callable[[int], bytes]:
    return lambda n: corpus.encode(
        corpus.quadrants((8, 8)), fmt, **{k: v(n) for k, v in metadata.items()}
    )


def _filler(n: int) -> bytes:
    return b"x" * n


def _heic(**metadata: bytes) -> bytes:
    return bombs.heic(picture=corpus.quadrants((8, 8)), **metadata)


def _exif_of(n: int) -> bytes:
    return bombs.exif_rationals(n // 8, orientation=1)  # about n bytes: 8 a rational


# (what, cap, original of n bytes of that metadata); compressed ones inflate to n.
METADATA: list[tuple[str, str, Callable[[int], bytes]]] = [
    ("jpeg ICC", "MAX_ICC_BYTES", _with("JPEG", icc_profile=_filler)),
    ("jpeg XMP", "MAX_XMP_BYTES", _with("JPEG", xmp=_filler)),
    ("jpeg comment", "MAX_TEXT_BYTES", _with("JPEG", comment=_filler)),
    ("png iCCP", "MAX_ICC_BYTES", _with("PNG", icc_profile=_filler)),
    ("png tEXt", "MAX_TEXT_BYTES", lambda n: _png_text("tEXt", b"x" * n)),
    ("png zTXt", "MAX_TEXT_BYTES", lambda n: _png_text("zTXt", b"x" * n)),
    ("png iTXt XMP", "MAX_XMP_BYTES", lambda n: _png_text("iTXt XMP", b"x" * n)),
    ("png hex EXIF", "MAX_EXIF_BYTES", lambda n: _png_text("hex exif", b"x" * n)),
    ("webp ICCP", "MAX_ICC_BYTES", _with("WEBP", icc_profile=_filler)),
    ("webp XMP", "MAX_XMP_BYTES", _with("WEBP", xmp=_filler)),
    ("tiff ICC", "MAX_ICC_BYTES", _with("TIFF", icc_profile=_filler)),
    ("gif comment", "MAX_TEXT_BYTES", _with("GIF", comment=_filler)),
    ("avif Exif item", "MAX_EXIF_BYTES", _with("AVIF", exif=lambda n: _exif_of(n))),
    ("avif XMP item", "MAX_XMP_BYTES", _with("AVIF", xmp=_filler)),
    ("avif ICC", "MAX_ICC_BYTES", _with("AVIF", icc_profile=_filler)),
    ("heic Exif item", "MAX_EXIF_BYTES", lambda n: _heic(exif=_exif_of(n))),
    ("heic XMP item", "MAX_XMP_BYTES", lambda n: _heic(xmp=_filler(n))),
    ("heic ICC", "MAX_ICC_BYTES", lambda n: _heic(icc_profile=_filler(n))),
]


@pytest.mark.parametrize(("cap", "make"), [m[1:] for m in METADATA], ids=[m[0] for m in METADATA])
def test_metadata_of_every_kind_is_capped_in_every_container(
    monkeypatch: pytest.MonkeyPatch, cap: str, make: Callable[[int], bytes]
) -> None:
    monkeypatch.setattr(containers, cap, 4096)
    containers.walk(make(3000), max_frames=1)
    with pytest.raises(OriginalTooComplex) as info:
        containers.walk(make(5000), max_frames=1)
    assert (info.value.status, info.value.code) == (422, "original_too_complex")
