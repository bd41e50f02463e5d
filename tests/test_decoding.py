"""Hostile metadata and broken decoders: bounded, typed 4xx answers, never a 500."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from PIL import Image

from chalicelib.errors import InvalidImage, ServiceError
from chalicelib.imaging import ImagingLimits, describe, inspect, pipeline, render
from chalicelib.resize.grammar import parse_size
from scripts.bench import bomb_files as bombs
from scripts.bench import mutations
from tests.support import corpus

SPEC = parse_size("40x", 4096)
CALLS: dict[str, Callable[[bytes], object]] = {
    "render": lambda data: render(data, SPEC),
    "inspect": lambda data: inspect(data, SPEC),
    "describe": lambda data: describe(data, ImagingLimits()),
}
# 8,193 rationals: 64 KiB and 8 bytes of EXIF, just past what a JPEG segment holds.
PAST_64_KIB = 8193
EXIF_BOMBS = {
    "png eXIf": bombs.png_exif,
    "webp EXIF": bombs.webp_exif,
    "jpeg APP1s": bombs.jpeg_exif,
    "tiff Exif IFD": bombs.tiff_exif,
}


@pytest.mark.parametrize("call", CALLS.values(), ids=CALLS.keys())
@pytest.mark.parametrize("make", EXIF_BOMBS.values(), ids=EXIF_BOMBS.keys())
def test_exif_past_64_kib_is_refused_before_decoding(
    monkeypatch: pytest.MonkeyPatch, make: Callable[[int], bytes], call: Callable[[bytes], object]
) -> None:
    original = make(PAST_64_KIB)
    call(make(100))  # the same file with a little EXIF is fine

    def no_decoding(*args: object, **kwargs: object) -> None:
        raise AssertionError("Pillow opened the original")

    monkeypatch.setattr(Image, "open", no_decoding)
    with pytest.raises(ServiceError) as info:
        call(original)
    assert (info.value.status, info.value.code) == (422, "original_too_complex")


@pytest.mark.parametrize("orientation", [5, 6, 7, 8])
def test_orientation_beside_a_wrongly_typed_tag_renders(orientation: int) -> None:
    # Pillow's Exif.tobytes (ImageOps.exif_transpose) raised struct.error on this: a 500.
    original = bombs.jpeg_wrongly_typed_exif(orientation)  # 80×40, ImageWidth as ASCII
    rendered = render(original, SPEC)
    assert (rendered.width, rendered.height) == (40, 80)
    facts = describe(original, ImagingLimits())
    assert (facts.width, facts.height) == (40, 80)


def test_orientation_is_applied_without_reserialising_exif(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object) -> bytes:
        raise AssertionError("EXIF was re-serialised")

    monkeypatch.setattr(Image.Exif, "tobytes", refuse)
    monkeypatch.setattr(Image.Exif, "get_ifd", refuse)
    original = bombs.png_exif(5000)  # orientation 6 beside 5,000 rationals
    rendered = render(original, SPEC)
    assert (rendered.width, rendered.height) == (40, 53)  # 64×48 stored, 48×64 shown
    image = corpus.opened(rendered.body)
    assert "exif" not in image.info


def test_describe_reads_the_record_from_bounded_tags() -> None:
    facts = describe(corpus.jpeg_with_metadata(), ImagingLimits(), with_gps=True)
    assert facts.camera_make == "CameraMaker"
    assert facts.gps is not None
    assert (facts.gps.latitude, facts.gps.longitude) == (52.516667, 13.4)
    seeded = describe(mutations.seeds()["tiff"], ImagingLimits(), with_gps=True)
    assert (seeded.width, seeded.height) == (30, 40)  # orientation 8 in the TIFF's own IFD0
    assert seeded.camera_model == "Model 1"
    assert describe(mutations.seeds()["webp"], ImagingLimits()).taken_at == "2024-05-06T07:08:09"


@pytest.mark.parametrize("orientation", [6, 8])
def test_a_tiffs_orientation_is_applied_once(orientation: int) -> None:
    # Pillow's TIFF reader turns the picture itself; turning it again laid it on its side.
    exif = Image.Exif()
    exif[0x0112] = orientation
    original = corpus.encode(corpus.quadrants((40, 30)), "TIFF", exif=exif)
    rendered = render(original, parse_size("15x", 4096))
    assert (rendered.width, rendered.height) == (15, 20)
    upright = corpus.opened(rendered.body).convert("RGB")
    red_at = {6: (12, 2), 8: (2, 17)}[orientation]  # the stored top-left quadrant, turned
    assert upright.getpixel(red_at) == pytest.approx((255, 0, 0), abs=40)
    facts = describe(original, ImagingLimits())
    assert (facts.width, facts.height) == (30, 40)


@pytest.mark.parametrize("call", CALLS.values(), ids=CALLS.keys())
def test_gif_cut_inside_a_later_frames_header_is_4xx(call: Callable[[bytes], object]) -> None:
    outcome, escaped = mutations.outcome_of(call, bombs.gif_cut_in_a_later_frame())
    assert not escaped, outcome
    with pytest.raises(InvalidImage):
        inspect(bombs.gif_cut_in_a_later_frame(), SPEC)


def test_avif_naming_a_missing_primary_item_is_invalid() -> None:
    for call in CALLS.values():
        with pytest.raises(InvalidImage):
            call(bombs.avif_missing_primary_item())


def test_our_own_failures_are_not_mistaken_for_a_corrupt_original(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Only Pillow's reads of the original are mapped to 4xx: a bug past them stays a 500.
    def broken(*args: object) -> None:
        raise TypeError("a bug of ours")

    monkeypatch.setattr(pipeline, "pad", broken)
    with pytest.raises(TypeError):
        render(corpus.jpeg((80, 60)), SPEC)


def test_mutated_and_truncated_originals_of_every_format_answer_4xx_or_render() -> None:
    # Seeded: the same cases each run; scripts/bench/bombs.py runs a larger sweep.
    report = mutations.sweep(per_seed=100)
    assert report.cases > 1500
    assert not report.escapes, "\n".join(
        f"{e.seed} {e.kind} {e.index}: {e.call} → {e.outcome}" for e in report.escapes
    )
    assert report.outcomes["ok"]
    assert report.outcomes["422 invalid_image"]
