"""Imaging: pure bytes-in, bytes-out behaviour."""

from __future__ import annotations

import struct
from collections.abc import Callable

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from PIL import GifImagePlugin, Image, JpegImagePlugin, TiffImagePlugin, WebPImagePlugin

from chalicelib.errors import (
    InvalidImage,
    OriginalTooManyPixels,
    ServiceError,
    UnsupportedImage,
)
from chalicelib.imaging import (
    ImagingLimits,
    SharedDecode,
    canonical_spec,
    containers,
    fitted_size,
    geometry,
    inspect,
    plan,
    render,
)
from chalicelib.resize.grammar import Fit, ResizeSpec, parse_size
from scripts.bench import bomb_files as bombs
from tests.support import corpus


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


def test_source_says_alpha_and_frames() -> None:
    spec = parse_size("100x", 4096)
    assert inspect(corpus.png_rgba(), spec).alpha
    assert inspect(corpus.png_palette_transparent(), spec).alpha
    assert not inspect(corpus.jpeg((400, 300)), spec).alpha
    assert inspect(corpus.animated("GIF", frames=5), spec).frames == 5
    assert inspect(corpus.jpeg((400, 300)), spec).frames == 1


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
        ((1000, 500), list(corpus.SAME_OUTPUT_OF_1000x500), "600x300"),
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


# --- resource bombs (tests/bombs.py): refused before the work, or bounded ---------------------


@pytest.fixture
def gif_seeks(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """GIF frames past the first that Pillow is asked to read or count."""
    seen: list[int] = []
    original = GifImagePlugin.GifImageFile._seek

    def spy(self: GifImagePlugin.GifImageFile, frame: int, update_image: bool = True) -> None:
        if frame:
            seen.append(frame)
        original(self, frame, update_image)

    monkeypatch.setattr(GifImagePlugin.GifImageFile, "_seek", spy)
    return seen


def test_gif_frame_far_off_the_screen_does_not_buy_a_huge_canvas(gif_seeks: list[int]) -> None:
    # The second frame would grow Pillow's canvas to 3000²: the animation is over budget.
    limits = ImagingLimits(max_animation_pixels=1_000_000)
    original = bombs.gif_offscreen_frame(screen=1, offset=2999)
    rendered = render(original, parse_size("300x", 4096), limits)
    assert (rendered.width, rendered.height, rendered.frames) == (1, 1, 1)
    assert gif_seeks == []


def test_gif_frames_past_the_first_canvas_are_clipped_as_browsers_do() -> None:
    red, green = bombs.GifFrame(0, 0, 40, 20, colour=1), bombs.GifFrame(30, 10, 20, 20, colour=2)
    rendered = render(bombs.gif((40, 20), [red, green]), parse_size("40x", 4096))
    assert (rendered.width, rendered.height, rendered.frames) == (40, 20, 2)
    image = corpus.opened(rendered.body)
    image.seek(1)
    second = image.convert("RGB")
    assert _close(second.getpixel((35, 15)), corpus.GREEN, 4)  # the part on the canvas
    assert _close(second.getpixel((26, 15)), corpus.RED, 4)  # not squeezed in from past the edge


def test_padding_an_animation_counts_the_output_canvas(gif_seeks: list[int]) -> None:
    # 20 frames of 2×2 padded to 2000²: 80 MP of output frames, over the 50 MP budget.
    rendered = render(bombs.gif_tiny_frames(20, 2), parse_size("2000x2000-pad", 4096))
    assert (rendered.width, rendered.height, rendered.frames) == (2000, 2000, 1)
    assert corpus.opened(rendered.body).convert("RGB").getpixel((1000, 1000)) == corpus.RED
    assert gif_seeks == []


def test_frames_past_the_cap_are_never_counted_by_pillow(gif_seeks: list[int]) -> None:
    rendered = render(bombs.gif_many_frames(5000), parse_size("10x", 4096))
    assert rendered.frames == 1
    assert gif_seeks == []


def test_animation_over_the_memory_budget_is_its_first_frame() -> None:
    # Between the model's estimate for the first frame still (~0.2 MB) and for
    # all five frames (~0.55 MB).
    limits = ImagingLimits(max_render_bytes=300_000)
    rendered = render(corpus.animated("GIF", frames=5), parse_size("100x", 4096), limits)
    assert rendered.frames == 1


def test_tiff_pages_are_never_counted(monkeypatch: pytest.MonkeyPatch) -> None:
    pages: list[int] = []
    original = TiffImagePlugin.TiffImageFile._seek

    def spy(self: TiffImagePlugin.TiffImageFile, frame: int) -> None:
        pages.append(frame)
        original(self, frame)

    monkeypatch.setattr(TiffImagePlugin.TiffImageFile, "_seek", spy)
    tiff = bombs.tiff_pages(2000)
    for token in ("100x", "100x.webp"):  # WebP could animate; TIFF pages never do
        assert render(tiff, parse_size(token, 4096)).frames == 1
    assert pages == [0, 0]


def test_webp_canvas_over_budget_is_refused_before_the_decoder_allocates_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    created: list[int] = []

    class Recorder:
        def __init__(self, data: bytes) -> None:
            created.append(len(data))
            raise AssertionError("the decoder was created")

    monkeypatch.setattr(WebPImagePlugin._webp, "WebPAnimDecoder", Recorder)
    original = bombs.webp_animation((7745, 7745))  # 90 bytes; libwebp would take ~1 GB
    for check in (inspect, render):
        with pytest.raises(OriginalTooManyPixels) as info:
            check(original, parse_size("300x", 4096))
        assert info.value.status == 413
    assert created == []


STRUCTURAL_BOMBS = {
    "jpeg scans": (lambda: bombs.jpeg_progressive(64, 1, containers.MAX_JPEG_SCANS), 422),
    # 98 DC scans over 3 × 413² blocks: 50.1 M blocks, under the scan cap.
    "jpeg scan blocks": (lambda: bombs.jpeg_progressive(3300, 3, 0, dc_scans=98), 422),
    "jpeg markers": (lambda: bombs.jpeg_many_markers(containers.MAX_JPEG_SEGMENTS), 422),
    "jpeg fill": (lambda: bombs.jpeg_fill(containers.MAX_JPEG_FILL_BYTES + 1), 422),
    "png chunks": (lambda: bombs.png_many_chunks(containers.MAX_PNG_CHUNKS), 422),
    "png chunks after IDAT": (
        lambda: bombs.png_many_chunks(containers.MAX_PNG_CHUNKS, after_idat=True),
        422,
    ),
    "gif extensions": (lambda: bombs.gif_many_extensions(containers.MAX_GIF_BLOCKS), 422),
    "tiff strips": (lambda: bombs.tiff_many_strips(containers.MAX_TIFF_VALUES // 2), 422),
    "rle bmp": (lambda: bombs.bmp_rle4(4001), 413),
}


@pytest.mark.parametrize("check", [inspect, render], ids=["inspect", "render"])
@pytest.mark.parametrize("name", list(STRUCTURAL_BOMBS))
def test_structural_bombs_are_refused_before_decoding(
    check: Callable[..., object], name: str
) -> None:
    make, status = STRUCTURAL_BOMBS[name]
    with pytest.raises(ServiceError) as info:
        check(make(), parse_size("300x", 4096))
    assert info.value.status == status
    assert info.value.code == (
        "original_too_complex" if status == 422 else "original_too_many_pixels"
    )


@pytest.mark.parametrize(
    ("heavy", "light"),
    [
        # A progressive JPEG keeps every coefficient at full size, whatever the DCT scale.
        (lambda: bombs.jpeg_progressive(2000, 3, 3), lambda: corpus.jpeg((2000, 2000))),
        # A palette with a transparent index becomes RGBA, then premultiplied.
        (
            lambda: bombs.png_palette_transparent(1500),
            lambda: bombs.png_palette_transparent(1500, transparent=False),
        ),
        # An AVIF decodes at the size its ispe box declares, not its data's.
        (lambda: bombs.avif_declaring(2000, 64), lambda: corpus.in_format("AVIF", (64, 64))),
    ],
    ids=["progressive jpeg", "palette with tRNS", "avif ispe"],
)
def test_memory_model_counts_what_the_decoder_really_holds(
    heavy: Callable[[], bytes], light: Callable[[], bytes]
) -> None:
    spec, small_budget = parse_size("300x300", 4096), ImagingLimits(max_render_bytes=16 * 2**20)
    assert render(light(), spec, small_budget).width <= 300
    with pytest.raises(OriginalTooManyPixels) as info:
        render(heavy(), spec, small_budget)
    assert "MiB" in info.value.public_message


# --- correctness -------------------------------------------------------------------------


@pytest.mark.parametrize("token", ["20x", "20x.webp"])
def test_gif_whose_frames_are_identical_renders_one_frame(token: str) -> None:
    rendered = render(bombs.gif_identical_frames(3, (40, 20)), parse_size(token, 4096))
    assert (rendered.width, rendered.height, rendered.frames) == (20, 10, 1)
    assert _close(corpus.opened(rendered.body).convert("RGB").getpixel((10, 5)), corpus.RED, 4)


def test_repeated_frames_merge_and_keep_their_time() -> None:
    red, green = bombs.GifFrame(0, 0, 40, 20, colour=1), bombs.GifFrame(0, 0, 40, 20, colour=2)
    original = bombs.gif((40, 20), [red, red, green])  # 100 ms each
    rendered = render(original, parse_size("20x.webp", 4096))
    assert rendered.frames == 2
    image = corpus.opened(rendered.body)
    durations = []
    for index in range(2):
        image.seek(index)
        image.load()
        durations.append(image.info["duration"])
    assert durations == [200, 100]


def _tiff_16bit_gradient(mode: str) -> bytes:
    """A 512×32 16-bit grey ramp, 0 to 65535, stored in ``mode``'s byte order."""
    order = ">" if mode == "I;16B" else "<"
    row = struct.pack(f"{order}512H", *(round(x * 65535 / 511) for x in range(512)))
    return corpus.encode(Image.frombytes(mode, (512, 32), row * 32), "TIFF")


@pytest.mark.parametrize(
    ("original", "token", "checks"),
    [
        (lambda: _tiff_16bit_gradient("I;16B"), "128x", (corpus.sixteen_bit, corpus.gradient_row)),
        (lambda: _tiff_16bit_gradient("I;16B"), "256x", (corpus.sixteen_bit, corpus.gradient_row)),
        (lambda: _tiff_16bit_gradient("I;16B"), "128x.jpeg", (corpus.gradient_row,)),
        (lambda: _tiff_16bit_gradient("I;16"), "128x.webp", (corpus.gradient_row,)),
        (corpus.png_16bit_gradient, "128x", (corpus.sixteen_bit, corpus.gradient_row)),
    ],
    ids=["big-endian tiff 4x", "big-endian tiff 2x", "tiff to jpeg", "tiff to webp", "png 4x"],
)
def test_16_bit_gradients_stay_gradients(
    original: Callable[[], bytes], token: str, checks: tuple[Callable[[Image.Image], None], ...]
) -> None:
    rendered = render(original(), parse_size(token, 4096))
    image = corpus.opened(rendered.body)
    for check in checks:
        check(image)


@pytest.mark.parametrize(
    ("token", "background", "bar"),
    [
        ("256x48-pad", (255, 255, 255), (65535,)),  # grey bars: the image stays 16-bit
        ("256x48-pad", (0, 0, 255), (0, 0, 255)),  # coloured bars: 8-bit RGB
        ("256x48-pad.jpeg", (255, 255, 255), (255,)),
    ],
)
def test_padded_16_bit_png_is_not_clipped(
    token: str, background: tuple[int, int, int], bar: tuple[int, ...]
) -> None:
    limits = ImagingLimits(background=background)
    rendered = render(corpus.png_16bit_gradient(), parse_size(token, 4096), limits)
    image = corpus.opened(rendered.body)
    assert image.size == (256, 48)
    pixel = image.getpixel((128, 2))
    assert _close(pixel if isinstance(pixel, tuple) else (pixel,), bar, tolerance=2)
    corpus.gradient_row(image.crop((0, 16, 256, 32)))  # the 256×16 ramp, centred


@pytest.mark.parametrize(
    ("box", "size", "expected"),
    [
        ((0, 0, 2000, 2000), (1000, 1000), 1.0),  # both sides halved: the box reduction is all
        ((0, 0, 2000, 1500), (500, 375), 1.0),
        ((0, 0, 2000, 2000), (300, 300), 2.0),  # 6.67×: reduce, then Lanczos
        ((0, 0, 2000, 1000), (1000, 250), 2.0),  # different factors per side
        ((0, 0, 1500, 1500), (1000, 1000), 2.0),  # under 2×
    ],
)
def test_reducing_gap(
    box: tuple[float, float, float, float], size: tuple[int, int], expected: float
) -> None:
    assert geometry.reducing_gap(box, size) == expected


def test_a_whole_factor_reduction_is_a_box_reduction() -> None:
    original = corpus.encode(corpus.quadrants((800, 600)), "PNG")
    rendered = render(original, parse_size("400x", 4096))
    expected = corpus.opened(original).reduce(2)
    assert corpus.opened(rendered.body).convert("RGB").tobytes() == expected.tobytes()


# --- presets: several sizes of one original from one decode ---------------------------

SHARED_SPECS = ["1000x", "160x160-cover", "120x", "200x100-pad", "100x.webp", "90x.jpeg"]


SHARED_ORIGINALS: dict[str, Callable[[], bytes]] = {
    "png-rgba": corpus.png_rgba,
    "png-palette": corpus.png_palette_transparent,
    "png-16bit": corpus.png_16bit_gradient,
    "png-bilevel": corpus.bilevel,
    "png-on-its-side": corpus.png_on_its_side,
    "bmp": lambda: corpus.in_format("BMP"),
    "tiff": lambda: corpus.in_format("TIFF"),
    "avif": lambda: corpus.in_format("AVIF", quality=90),
    "gif-first-frame": lambda: corpus.animated("GIF"),
    "jpeg": corpus.jpeg,
}


@pytest.mark.parametrize("name", SHARED_ORIGINALS)
def test_sizes_rendered_from_a_shared_decode_are_the_bytes_of_separate_renders(
    name: str,
) -> None:
    # The first size is the original's own (nothing resampled), so a later size
    # would see it if a render changed the shared pixels in place.
    original = SHARED_ORIGINALS[name]()
    # Other formats than the original's (its own would be non-canonical); a GIF as
    # PNG renders its first frame still.
    other = {"jpeg": ".png", "gif-first-frame": ".png"}.get(name)
    tokens = [f"{t.partition('.')[0]}{other}" if other else t for t in SHARED_SPECS]
    specs = [parse_size(token, 4096) for token in tokens]
    shared = SharedDecode()
    together = [render(original, spec, shared=shared) for spec in specs]
    apart = [render(original, spec) for spec in specs]
    assert [r.body for r in together] == [r.body for r in apart]


@pytest.mark.parametrize(("name", "decodes"), [("png-rgba", 1), ("bmp", 1), ("jpeg", 4)])
def test_a_shared_decode_decodes_once_unless_the_decoder_scales_per_size(
    name: str, decodes: int, pixel_loads: list[str]
) -> None:
    shared = SharedDecode()
    original = SHARED_ORIGINALS[name]()
    for token in ("160x160-cover", "120x", "300x", "90x"):
        render(original, parse_size(token, 4096), shared=shared)
    assert len(pixel_loads) == decodes


@pytest.mark.parametrize("after", [False, True], ids=["exif-first", "exif-after-pixels"])
def test_a_pngs_exif_orientation_is_honoured_wherever_its_chunk_is(after: bool) -> None:
    rendered = render(corpus.png_on_its_side(exif_after_pixels=after), parse_size("1000x", 4096))
    assert (rendered.width, rendered.height) == (300, 400)
    image = corpus.opened(rendered.body)
    assert image.getpixel((10, 10))[:3] == corpus.BLUE  # turned: the bottom-left quadrant


def test_planning_a_png_decodes_no_pixel(pixel_loads: list[str]) -> None:
    # Pillow decodes a whole PNG to answer getexif(), in case eXIf follows the pixels.
    inspect(corpus.png_on_its_side(), parse_size("100x", 4096))
    inspect(corpus.png_rgba(), parse_size("100x", 4096))
    assert pixel_loads == []
    inspect(corpus.png_on_its_side(exif_after_pixels=True), parse_size("100x", 4096))
    assert pixel_loads == ["PNG"]  # only there must it look past them
