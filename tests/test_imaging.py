"""Imaging: pure bytes-in, bytes-out behaviour."""

from __future__ import annotations

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from PIL import JpegImagePlugin

from chalicelib.errors import InvalidImage, NonCanonicalSize, UnsupportedImage
from chalicelib.grammar import Fit, ResizeSpec, parse_size
from chalicelib.imaging import (
    ImagingLimits,
    canonical_spec,
    fitted_size,
    inspect,
    plan,
    render,
)
from tests import corpus


@pytest.mark.parametrize("case", corpus.CASES, ids=lambda case: case.name)
def test_fidelity(case: corpus.Case) -> None:
    rendered = render(case.original(), parse_size(case.token, 4096))
    corpus.check_variant(case, rendered.body, rendered.content_type)
    assert (rendered.width, rendered.height) == case.size


@pytest.mark.parametrize(
    ("size", "spec", "expected"),
    [
        ((4000, 3000), ResizeSpec(300, 300), (300, 225)),
        ((3000, 4000), ResizeSpec(300, 300), (225, 300)),
        ((4000, 3000), ResizeSpec(300, None), (300, 225)),
        ((4000, 3000), ResizeSpec(None, 300), (400, 300)),
        ((4000, 3000), ResizeSpec(1000, 100), (133, 100)),
        ((200, 100), ResizeSpec(300, 300), (200, 100)),  # never enlarged
        ((10000, 1), ResizeSpec(100, 100), (100, 1)),  # never zero
    ],
)
def test_fitted_size(size: tuple[int, int], spec: ResizeSpec, expected: tuple[int, int]) -> None:
    assert fitted_size(size, spec) == expected


def test_jpeg_is_resized_and_stays_jpeg() -> None:
    rendered = render(corpus.jpeg((1600, 1200)), ResizeSpec(300, 300))
    assert rendered.content_type == "image/jpeg"
    image = corpus.opened(rendered.body)
    assert image.format == "JPEG"
    assert image.size == (rendered.width, rendered.height) == (300, 225)
    # Quadrant colours survive: top-left red, bottom-right white.
    assert _close(image.getpixel((40, 40)), (255, 0, 0))
    assert _close(image.getpixel((260, 200)), (255, 255, 255))


def test_large_jpeg_uses_shrink_on_load(monkeypatch: pytest.MonkeyPatch) -> None:
    drafted: list[tuple[int, int]] = []
    original_draft = JpegImagePlugin.JpegImageFile.draft

    def spy(self: JpegImagePlugin.JpegImageFile, mode: str | None, size: tuple[int, int]) -> object:
        result = original_draft(self, mode, size)
        drafted.append(self.size)
        return result

    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "draft", spy)
    render(corpus.jpeg((4000, 3000)), ResizeSpec(300, 300))
    assert drafted == [(500, 375)]  # decoded at 1/8 scale, still >= 300x225


@pytest.mark.parametrize("orientation", [6, 8, 5, 7])
def test_exif_rotation_is_applied_and_swaps_dimensions(orientation: int) -> None:
    rendered = render(corpus.jpeg((800, 400), orientation=orientation), ResizeSpec(100, 100))
    image = corpus.opened(rendered.body)
    assert image.size == (50, 100)
    assert 0x0112 not in image.getexif()


def test_orientation_6_puts_the_stored_top_left_at_the_top_right() -> None:
    rendered = render(corpus.jpeg((800, 400), orientation=6), ResizeSpec(100, 100))
    image = corpus.opened(rendered.body)
    # Orientation 6: rotate 90° clockwise to view; stored top-left (red) goes top-right.
    assert _close(image.getpixel((40, 10)), (255, 0, 0))
    assert _close(image.getpixel((10, 10)), (0, 0, 255))


def test_png_keeps_format_and_alpha() -> None:
    rendered = render(corpus.png_rgba((400, 400)), ResizeSpec(100, None))
    image = corpus.opened(rendered.body)
    assert rendered.content_type == "image/png"
    assert image.mode == "RGBA"
    assert image.size == (100, 100)
    assert image.getpixel((2, 2))[3] == 0
    assert image.getpixel((50, 50)) == (255, 0, 0, 255)


def test_small_image_is_not_enlarged() -> None:
    rendered = render(corpus.jpeg((120, 80)), ResizeSpec(1000, 1000))
    assert (rendered.width, rendered.height) == (120, 80)


def test_not_an_image_is_unsupported() -> None:
    with pytest.raises(UnsupportedImage) as info:
        render(b"<html>not an image</html>", ResizeSpec(100, 100))
    assert info.value.status == 415


def test_truncated_jpeg_is_invalid() -> None:
    data = corpus.jpeg((1600, 1200))
    with pytest.raises(InvalidImage) as info:
        render(data[: len(data) // 3], ResizeSpec(100, 100))
    assert info.value.status == 422


def _close(actual: object, expected: tuple[int, ...], tolerance: int = 40) -> bool:
    assert isinstance(actual, tuple)
    return all(abs(a - e) <= tolerance for a, e in zip(actual, expected, strict=True))


def test_asking_for_the_originals_own_format_is_non_canonical() -> None:
    with pytest.raises(NonCanonicalSize) as info:
        render(corpus.jpeg((400, 300)), parse_size("200x.jpeg", 4096))
    assert "'200x'" in info.value.public_message
    # A different quality is a different variant, so it is allowed.
    assert render(corpus.jpeg((400, 300)), parse_size("200x-q50.jpeg", 4096)).width == 200


@pytest.mark.parametrize(
    "limits",
    [ImagingLimits(max_frames=4), ImagingLimits(max_animation_pixels=200 * 100 * 4)],
    ids=["frames", "pixels"],
)
def test_animation_over_budget_serves_the_first_frame(limits: ImagingLimits) -> None:
    rendered = render(corpus.animated("GIF", frames=5), parse_size("100x", 4096), limits)
    assert rendered.frames == 1
    image = corpus.opened(rendered.body)
    assert getattr(image, "n_frames", 1) == 1
    assert image.convert("RGB").getpixel((50, 25)) == corpus.RED


def test_animation_within_budget_keeps_frames() -> None:
    limits = ImagingLimits(max_frames=5, max_animation_pixels=200 * 100 * 5)
    rendered = render(corpus.animated("GIF", frames=5), parse_size("100x", 4096), limits)
    assert rendered.frames == 5


@pytest.mark.parametrize("fmt", ["PPM", "ICO", "PCX", "TGA"])
def test_formats_pillow_reads_but_we_do_not_serve_are_415(fmt: str) -> None:
    with pytest.raises(UnsupportedImage) as info:
        render(corpus.in_format(fmt, (64, 64)), parse_size("32x", 4096))
    assert info.value.status == 415


def test_mpo_from_a_camera_is_a_jpeg() -> None:
    first, second = corpus.quadrants((400, 300)), corpus.quadrants((400, 300)).rotate(180)
    mpo = corpus.encode(first, "MPO", save_all=True, append_images=[second])
    assert corpus.opened(mpo).format == "MPO"
    rendered = render(mpo, parse_size("200x", 4096))
    assert rendered.content_type == "image/jpeg"
    assert corpus.opened(rendered.body).getpixel((20, 20)) == pytest.approx(corpus.RED, abs=40)


@pytest.mark.parametrize(
    ("token", "expected"),
    [
        ("300x300-cover", (300, 300)),
        ("300x100-cover", (300, 100)),
        ("100x300-cover", (100, 300)),
        ("5000x5000-cover", (3000, 3000)),  # too big: the box shrinks, keeping its 1:1 shape
    ],
)
def test_cover_geometry(token: str, expected: tuple[int, int]) -> None:
    assert fitted_size((4000, 3000), parse_size(token, 8192)) == expected


@pytest.mark.parametrize(
    ("size", "tokens", "canonical"),
    [
        (
            (1000, 500),
            [
                "600x300",
                "300x150@2x",
                "200x100@3x",
                "600x",
                "x300",
                "300x@2x",
                "600x300-cover",
                "600x300-pad",
                "600x301",
                "601x300",
            ],
            "600x300",
        ),
        ((200, 100), ["200x100", "300x300", "600x", "x4000", "300x150@2x"], "200x100"),
        ((200, 100), ["300x300-cover", "100x100-cover"], "100x100-cover"),
        ((1000, 500), ["150x100-cover@2x"], "300x200-cover"),
        ((200, 100), ["300x150-pad@2x"], "600x300-pad"),
        ((1000, 500), ["600x.webp", "300x150@2x.webp"], "600x300.webp"),
        ((1000, 500), ["600x-q70.avif"], "600x300-q70.avif"),
    ],
)
def test_canonical_spec_names_one_spelling_per_output(
    size: tuple[int, int], tokens: list[str], canonical: str
) -> None:
    for token in tokens:
        spec = parse_size(token, 4096)
        assert canonical_spec(size, spec).token == canonical, token


@given(
    width=st.integers(1, 9000),
    height=st.integers(1, 9000),
    box=st.tuples(st.none() | st.integers(1, 4096), st.none() | st.integers(1, 4096)),
    fit=st.sampled_from(list(Fit)),
    dpr=st.integers(1, 3),
)
def test_canonical_spec_plans_the_same_geometry_and_is_a_fixed_point(
    width: int, height: int, box: tuple[int | None, int | None], fit: Fit, dpr: int
) -> None:
    assume(box != (None, None) and (fit is Fit.INSIDE or None not in box))
    spec = ResizeSpec(box[0], box[1], fit, dpr)
    canonical = canonical_spec((width, height), spec)
    assert plan((width, height), canonical) == plan((width, height), spec)
    assert canonical_spec((width, height), canonical) == canonical
    assert canonical.dpr == 1


def test_inspect_reports_the_upright_size_render_plans_with() -> None:
    source = inspect(corpus.jpeg((400, 300), orientation=6), ResizeSpec(100, None))
    assert (source.format, source.size) == ("JPEG", (300, 400))
    assert inspect(corpus.png_rgba((40, 30)), ResizeSpec(10, None)).size == (40, 30)
