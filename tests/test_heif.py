"""HEIC/HEIF originals: decoded the right way up, in sRGB, with alpha; hostile box trees refused."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from io import BytesIO

import pytest
from PIL import Image, ImageCms

from chalicelib.errors import InvalidImage, OriginalTooComplex, ServiceError
from chalicelib.imaging import ImagingLimits, colour, containers, describe, heif, isobmff, render
from chalicelib.resize.grammar import parse_size
from scripts.bench import bomb_files as bombs
from tests.support import corpus
from tests.support.heif import (
    DISPLAY_P3_COLORANTS,
    display_p3_profile,
    heic_with_exif,
    quadrants,
    without_box,
)

BLUE, RED = (0, 0, 255), (255, 0, 0)


def _close(actual: tuple[int, ...], expected: tuple[int, ...], tolerance: int = 40) -> bool:
    return all(abs(a - e) <= tolerance for a, e in zip(actual, expected, strict=False))


def _rendered(original: bytes, token: str) -> Image.Image:
    rendered = render(original, parse_size(token, 4096))
    return Image.open(BytesIO(rendered.body))


def test_a_heic_becomes_a_jpeg_by_default() -> None:
    rendered = render(heic_with_exif(1), parse_size("32x", 4096))
    assert rendered.content_type == "image/jpeg"
    assert (rendered.width, rendered.height) == (32, 24)


@pytest.mark.parametrize("orientation", [6, 8])
def test_a_portrait_stored_sideways_is_turned_once(orientation: int) -> None:
    image = _rendered(heic_with_exif(orientation), "48x")
    assert image.size == (48, 64)
    # 6: turned clockwise, the stored top-left (blue) is at the top right; 8: bottom left.
    corner = (40, 8) if orientation == 6 else (8, 56)
    assert _close(image.getpixel(corner), BLUE)
    assert _close(image.getpixel((8, 8) if orientation == 6 else (40, 8)), RED)


def test_an_exif_orientation_without_irot_is_not_applied() -> None:
    """HEIF readers turn a picture by irot only; EXIF orientation is a copy of it."""
    original = heic_with_exif(6)
    assert b"irot" in original
    image = _rendered(without_box(original, b"irot"), "64x")
    assert image.size == (64, 48)
    assert _close(image.getpixel((8, 8)), BLUE)


def test_facts_of_a_heic_are_as_displayed_with_camera_and_time() -> None:
    facts = describe(heic_with_exif(6), ImagingLimits())
    assert (facts.format, facts.width, facts.height) == ("HEIF", 48, 64)
    assert (facts.camera_make, facts.taken_at) == ("Apple", "2026-05-04T10:11:12")


def test_ten_bit_heic_keeps_its_colours() -> None:
    import pillow_heif

    colour = (200, 100, 50)
    buffer = BytesIO()
    pillow_heif.from_bytes(
        "RGB;16",
        (64, 64),
        b"".join(int(c * 257).to_bytes(2, "little") for c in colour) * 64 * 64,
    ).save(buffer, quality=90, enc_params={"preset": "ultrafast"})
    original = buffer.getvalue()
    assert pillow_heif.open_heif(BytesIO(original)).info["bit_depth"] == 10
    assert _close(_rendered(original, "32x").getpixel((16, 16)), colour, 8)


def test_display_p3_is_converted_to_srgb() -> None:
    profile = display_p3_profile()
    p3_green = (40, 200, 60)
    original = bombs.heic(picture=Image.new("RGB", (64, 64), p3_green), icc_profile=profile)
    expected = ImageCms.profileToProfile(
        Image.new("RGB", (1, 1), p3_green),
        ImageCms.ImageCmsProfile(BytesIO(profile)),
        ImageCms.createProfile("sRGB"),
    ).getpixel((0, 0))
    assert not _close(expected, p3_green, 12)  # the conversion is visible
    assert _close(_rendered(original, "32x").getpixel((16, 16)), expected, 6)


def test_display_p3_named_by_an_nclx_box_alone_is_converted_to_srgb() -> None:
    import pillow_heif

    p3_green = (40, 200, 60)
    original = bombs.heic(
        picture=Image.new("RGB", (64, 64), p3_green),
        color_primaries=12,  # H.273: Display P3
        transfer_characteristics=13,  # the sRGB curve
        matrix_coefficients=6,
        full_range_flag=1,
        quality=90,
    )
    decoded = pillow_heif.open_heif(BytesIO(original))
    assert decoded.info["nclx_profile"]["color_primaries"] == 12
    assert "icc_profile" not in decoded.info  # nothing but the nclx box names the colours
    # What the ICC case makes of the same colour, through Apple's Display P3 colorants.
    expected = ImageCms.profileToProfile(
        Image.new("RGB", (1, 1), p3_green),
        ImageCms.ImageCmsProfile(BytesIO(display_p3_profile())),
        ImageCms.createProfile("sRGB"),
    ).getpixel((0, 0))
    assert not _close(expected, p3_green, 12)  # the conversion is visible
    assert _close(_rendered(original, "32x").getpixel((16, 16)), expected, 6)


def test_nclx_profiles_are_built_only_for_known_primaries_with_the_srgb_curve() -> None:
    # Display P3's colorants from its chromaticities, as Apple's profile has them.
    matrix = colour.d50_matrix(colour.PRIMARIES[12][0])
    for column, tag in enumerate((b"rXYZ", b"gXYZ", b"bXYZ")):
        for row in range(3):
            assert abs(matrix[row][column] - DISPLAY_P3_COLORANTS[tag][row]) < 2e-5
    nclx = {"color_primaries": 12, "transfer_characteristics": 13}
    assert colour.nclx_icc(nclx) == colour.profile_for(12)
    for other in (
        {**nclx, "color_primaries": 1},  # sRGB's own primaries: nothing to convert
        {**nclx, "color_primaries": 2},  # unspecified
        {"color_primaries": 9, "transfer_characteristics": 16},  # BT.2020 PQ: HDR, not handled
        None,
    ):
        assert colour.nclx_icc(other) is None


def test_alpha_is_kept_where_the_output_has_it() -> None:
    original = bombs.heic(picture=Image.new("RGBA", (64, 64), (0, 0, 255, 96)), quality=90)
    png = _rendered(original, "32x.png")
    assert png.mode == "RGBA"
    assert _close(png.getpixel((16, 16)), (0, 0, 255, 96), 8)
    jpeg = _rendered(original, "32x")  # flattened on the white background
    assert _close(jpeg.getpixel((16, 16)), (158, 158, 255), 16)


def test_a_grid_heic_is_assembled() -> None:
    original = bombs.heic(picture=quadrants((256, 192)), tile_size=64, quality=90)
    assert b"grid" in original
    assert isobmff.walk(original).decoded_pixels == 4 * 3 * 64 * 64
    image = _rendered(original, "128x")
    assert image.size == (128, 96)
    assert _close(image.getpixel((16, 16)), BLUE)
    assert _close(image.getpixel((112, 80)), RED)


HOSTILE = {
    "thousands of tiles": (bombs.heif_grid, "original_too_complex"),
    "ispe far larger than the data": (bombs.heif_declaring, "invalid_image"),
    "avif ispe far larger than the data": (bombs.avif_declaring, "invalid_image"),
    "thousands of items": (lambda: bombs.heif_many_items(2000), "original_too_complex"),
    "deep nesting": (lambda: bombs.heif_nested(100), "original_too_complex"),
    "truncated": (bombs.heif_truncated, "invalid_image"),
}


@pytest.fixture
def opener_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    monkeypatch.setattr(heif, "register_opener", lambda: calls.append("registered"))
    monkeypatch.setattr(Image, "open", lambda *a, **k: calls.append("opened"))
    return calls


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_box_trees_are_refused_before_any_decoder(
    name: str, opener_calls: list[str]
) -> None:
    make, code = HOSTILE[name]
    original = make()
    for check in (render, lambda data, _spec: describe(data, ImagingLimits())):
        with pytest.raises(ServiceError) as info:
            check(original, parse_size("300x", 4096))
        assert (info.value.status, info.value.code) == (422, code)
    assert opener_calls == []


def test_a_grid_within_the_caps_is_accepted_by_the_walk() -> None:
    assert isobmff.walk(bombs.heif_grid(4, 3, 64)).decoded_pixels == 12 * 64 * 64


@pytest.mark.parametrize(
    "make",
    [
        lambda: bombs.heif_grid(4, 3, 64)[:-40],
        lambda: bombs.heif_grid(4, 3, 64, named=11),
        lambda: bombs.heif_grid(4, 3, 64, canvas=(512, 192)),
        lambda: bombs.heif_grid(4, 3, 64, canvas=(128, 192)),
    ],
    ids=["cut", "fewer tiles named", "tiles short of the canvas", "a column of tiles past it"],
)
def test_box_trees_whose_sizes_disagree_are_corrupt(make: Callable[[], bytes]) -> None:
    with pytest.raises(InvalidImage):
        isobmff.walk(make())


@pytest.mark.parametrize(
    "make",
    [lambda: corpus.in_format("AVIF", (64, 64)), lambda: heic_with_exif(6)],
    ids=["avif", "heic"],
)
def test_a_truncated_iso_bmff_file_is_corrupt_before_any_decoder(
    make: Callable[[], bytes],
) -> None:
    """Unlike the other walks, which leave a truncated file to Pillow, the box walk says so."""
    original = make()
    for length in range(0, len(original), max(1, len(original) // 97)):
        try:
            containers.walk(original[:length], max_frames=10)
        except InvalidImage:
            continue


def test_the_heif_decoder_is_the_walks_cost_in_the_memory_model() -> None:
    small = ImagingLimits(max_render_bytes=2 * 2**20)
    original = bombs.heic(picture=quadrants((512, 512)))
    with pytest.raises(ServiceError) as info:
        render(original, parse_size("32x", 4096), small)
    assert info.value.code == "original_too_many_pixels"


LAZY = """
import sys
from chalicelib.errors import ServiceError
from chalicelib.imaging import render
from chalicelib.resize.grammar import parse_size
from tests.support import corpus
render(corpus.jpeg((64, 48)), parse_size("32x", 4096))
for refused in (b"\\0\\0\\0\\x10ftypheic\\0\\0\\0\\0garbage", b"not an image"):
    try:
        render(refused, parse_size("32x", 4096))
    except ServiceError:
        pass
print("pillow_heif" in sys.modules)
"""


def test_a_jpeg_miss_or_a_refusal_never_imports_pillow_heif() -> None:
    result = subprocess.run([sys.executable, "-c", LAZY], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def _derived(kind: bytes, sources: int, chain: int = 1) -> bytes:
    """``chain`` derived items of ``kind``, each made from the next; the last from ``sources``
    names of one 64² coded image."""
    coded = chain + 1
    items = {i: kind for i in range(1, coded)} | {coded: b"hvc1"}
    references = [(b"dimg", i, [i + 1]) for i in range(1, chain)]
    references.append((b"dimg", chain, [coded] * sources))
    return bombs.heif_file(
        items=items,
        data={coded: bytes(64)},
        properties=[bombs.ispe((100, 100)), bombs.ispe((64, 64)), bombs.box(b"hvcC", bytes(23))],
        associations={**{i: [1] for i in range(1, coded)}, coded: [2, 3]},
        references=references,
    )


def test_derived_images_count_what_their_sources_decode() -> None:
    assert isobmff.walk(_derived(b"iden", 1)).decoded_pixels == 64 * 64
    assert isobmff.walk(_derived(b"iovl", 3)).decoded_pixels == 100 * 100 + 3 * 64 * 64
    assert isobmff.walk(_derived(b"iden", 1, chain=2)).decoded_pixels == 64 * 64


@pytest.mark.parametrize(
    ("make", "error"),
    [
        (lambda: _derived(b"iden", 1, chain=3), OriginalTooComplex),
        (lambda: _derived(b"iden", 2), InvalidImage),
        (lambda: _derived(b"iovl", isobmff.MAX_GRID_TILES + 1), OriginalTooComplex),
    ],
    ids=["derived thrice", "iden of two", "overlay of too many"],
)
def test_hostile_derived_images_are_refused(make: Callable[[], bytes], error: type) -> None:
    with pytest.raises(error):
        isobmff.walk(make())
