"""Watermarks: found by pixel comparison in every output of a marked render, and nowhere else."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from dataclasses import replace

import pytest
from PIL import Image

from chalicelib.errors import OriginalTooManyPixels, ServiceError
from chalicelib.imaging import (
    ImagingLimits,
    SharedDecode,
    Watermark,
    check_watermark,
    containers,
    overlay,
    render,
)
from chalicelib.resize.grammar import parse_size
from scripts.bench import bomb_files as bombs
from tests.support import ROOT, corpus, marks

PHOTO = (1600, 1200)
MARK = (200, 100)
ANCHORS = ("c", "n", "ne", "e", "se", "s", "sw", "w", "nw")


def watermark(**options: object) -> Watermark:
    return Watermark(options.pop("image", None) or marks.mark_png(MARK), **options)  # type: ignore[arg-type]


def assert_marked(
    original: bytes,
    token: str,
    content: marks.Box,
    mark: Watermark,
    *,
    focus: tuple[float, float] | None = None,
    frames: int = 1,
) -> list[marks.Box]:
    """Every frame of the marked render differs from the unmarked one inside the expected
    anchor box, covering it, and nowhere outside it; the boxes found, frame by frame."""
    spec = parse_size(token, 4096)
    plain = render(original, spec, focus=focus)
    marked = render(original, spec, focus=focus, watermark=mark)
    assert (marked.width, marked.height, marked.content_type) == (
        plain.width,
        plain.height,
        plain.content_type,
    )
    assert marked.frames == plain.frames == frames
    slack = 1 if marked.content_type == "image/png" else marks.LOSSY_SLACK
    size = overlay.decoded_mark(mark.image).size
    expected = marks.expected_box(content, mark.anchor, size, mark.width, mark.margin)
    found = []
    plain_frames, marked_frames = marks.frames(plain.body), marks.frames(marked.body)
    assert len(plain_frames) == len(marked_frames) == frames
    for index, (before, after) in enumerate(zip(plain_frames, marked_frames, strict=True)):
        box = marks.difference_box(after, before)
        assert box is not None, f"frame {index}: no mark"
        assert marks.inside(box, marks.grown(expected, slack)), (index, box, expected)
        assert marks.inside(marks.grown(expected, -slack), box), (index, box, expected)
        found.append(box)
    return found


# A JPEG is decoded near the output's size (shrink-on-load); a PNG at full size.
SOURCES = {"jpeg": lambda: corpus.jpeg(PHOTO), "png": lambda: corpus.in_format("PNG", PHOTO)}


@pytest.mark.parametrize("source", list(SOURCES))
@pytest.mark.parametrize("anchor", ANCHORS)
def test_an_inside_fit_is_marked_at_each_anchor(anchor: str, source: str) -> None:
    assert_marked(SOURCES[source](), "400x", (0, 0, 400, 300), watermark(anchor=anchor))


@pytest.mark.parametrize("source", list(SOURCES))
@pytest.mark.parametrize(
    ("token", "focus"),
    [("400x200-cover-s", None), ("400x200-cover-smart", None), ("400x200-cover-focus", (0.2, 0.8))],
    ids=["compass", "smart", "focus"],
)
def test_a_cover_crop_is_marked_on_its_output(
    token: str, focus: tuple[float, float] | None, source: str
) -> None:
    assert_marked(SOURCES[source](), token, (0, 0, 400, 200), watermark(), focus=focus)


@pytest.mark.parametrize("anchor", ["se", "n", "w"])
def test_a_pad_is_marked_on_its_content_not_the_padding(anchor: str) -> None:
    # 400×300 of content centred on a 400×400 canvas: 50 px of padding above and below.
    (box,) = assert_marked(
        corpus.jpeg(PHOTO), "400x400-pad.png", (0, 50, 400, 350), watermark(anchor=anchor)
    )
    margin = round(0.03 * 300)
    assert 50 + margin <= box[1]
    assert box[3] <= 350 - margin


@pytest.mark.parametrize(
    ("source", "token"),
    [("GIF", "400x"), ("GIF", "400x.webp"), ("WEBP", "400x")],
    ids=["gif", "gif to webp", "webp"],
)
def test_every_frame_of_an_animation_is_marked(source: str, token: str) -> None:
    original = corpus.animated(source, frames=5, size=(600, 300))
    assert_marked(original, token, (0, 0, 400, 200), watermark(), frames=5)


def test_the_mark_is_scaled_once_per_output_size(monkeypatch: pytest.MonkeyPatch) -> None:
    """Once for every frame of an animation, and once for the next output of that size."""
    scaled: list[tuple[int, int]] = []
    original_resize = Image.Image.resize

    def spy(self: Image.Image, size: tuple[int, int], *args: object, **kwargs: object) -> object:
        if self.size == MARK and self.mode == "RGBA":  # Pillow resamples it as RGBa inside
            scaled.append(size)
        return original_resize(self, size, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Image.Image, "resize", spy)
    original = corpus.animated("GIF", frames=5, size=(600, 300))
    mark = watermark(image=marks.mark_png(MARK, (250, 1, 250)))  # bytes no other test scales
    assert render(original, parse_size("400x", 4096), watermark=mark).frames == 5
    assert scaled == [(100, 50)]
    render(corpus.jpeg(PHOTO), parse_size("400x", 4096), watermark=mark)  # a 400×300 output
    render(corpus.jpeg(PHOTO), parse_size("200x200-pad", 4096), watermark=mark)  # unmarked
    render(corpus.jpeg(PHOTO), parse_size("x256", 4096), watermark=mark)  # 341×256
    assert scaled == [(100, 50), (85, 43)]


@pytest.mark.parametrize("output", ["jpeg", "png", "webp", "avif"])
def test_every_output_format_is_marked(output: str) -> None:
    assert_marked(corpus.jpeg(PHOTO), f"400x.{output}", (0, 0, 400, 300), watermark())


@pytest.mark.parametrize("orientation", [6, 8])
def test_a_sideways_jpeg_is_marked_upright(orientation: int) -> None:
    original = corpus.jpeg(PHOTO, orientation=orientation)
    assert_marked(original, "300x", (0, 0, 300, 400), watermark(anchor="se"))


@pytest.mark.parametrize(
    ("original", "height"),
    [
        (corpus.swapped_primaries_jpeg, 200),  # composited before sRGB, magenta would turn cyan
        (corpus.display_p3_jpeg, 225),
        (corpus.cmyk_jpeg, 200),
    ],
    ids=["other primaries", "display p3", "cmyk"],
)
def test_the_mark_keeps_its_colours_on_a_colour_managed_source(
    original: Callable[[], bytes], height: int
) -> None:
    data = original()
    mark = watermark(opacity=1.0, anchor="c")
    (box,) = assert_marked(data, "300x", (0, 0, 300, height), mark)
    centre = ((box[0] + box[2]) // 2, (box[1] + box[3]) // 2)
    image = corpus.opened(render(data, parse_size("300x", 4096), watermark=mark).body)
    assert _close(image.convert("RGB").getpixel(centre), marks.MAGENTA)


def test_a_grey_16_bit_png_is_marked_in_colour() -> None:
    data = corpus.encode(Image.new("I;16", (800, 600), 30000), "PNG")
    mark = watermark(opacity=1.0, anchor="c")
    (box,) = assert_marked(data, "400x", (0, 0, 400, 300), mark)
    image = corpus.opened(render(data, parse_size("400x", 4096), watermark=mark).body)
    assert image.convert("RGB").getpixel(((box[0] + box[2]) // 2, (box[1] + box[3]) // 2)) == (
        marks.MAGENTA
    )


def test_the_opacity_multiplies_the_marks_alpha() -> None:
    # The bottom-right quadrant is white: magenta at 0.6 over it is (255, 102, 255).
    data = corpus.jpeg(PHOTO)
    (box,) = assert_marked(data, "400x.png", (0, 0, 400, 300), watermark())
    image = corpus.opened(render(data, parse_size("400x.png", 4096), watermark=watermark()).body)
    pixel = image.convert("RGB").getpixel(((box[0] + box[2]) // 2, (box[1] + box[3]) // 2))
    assert _close(pixel, (255, 102, 255), 3)


def test_the_marks_own_alpha_is_kept() -> None:
    half = watermark(image=marks.mark_png(MARK, transparent_left=True))
    spec = parse_size("400x.png", 4096)
    data = corpus.jpeg(PHOTO)
    found = marks.difference_box(
        marks.frames(render(data, spec, watermark=half).body)[0],
        marks.frames(render(data, spec).body)[0],
    )
    full = marks.expected_box((0, 0, 400, 300), "se", MARK)
    middle = (full[0] + full[2]) // 2
    assert found is not None
    assert abs(found[0] - middle) <= 1
    assert found[2] == full[2]


def test_a_mark_too_large_for_the_content_shrinks_inside_the_margins() -> None:
    tall = watermark(image=marks.mark_png((100, 400)), width=1.0, anchor="c")
    (box,) = assert_marked(corpus.jpeg(PHOTO), "400x.png", (0, 0, 400, 300), tall)
    margin = round(0.03 * 300)
    assert box[1] >= margin
    assert box[3] <= 300 - margin


def test_a_long_thin_strip_of_a_big_render_is_marked() -> None:
    strip = corpus.encode(corpus.quadrants((2000, 100)), "PNG")
    assert_marked(strip, "1000x", (0, 0, 1000, 50), watermark())


@pytest.mark.parametrize(
    ("token", "marked"),
    [("256x", True), ("255x", False), ("200x200-pad", False), ("x255", True)],
)
def test_outputs_below_min_size_are_not_marked(token: str, marked: bool) -> None:
    # 1600×1200: x255 is 340×255, its longer side over the threshold.
    data, spec = corpus.jpeg(PHOTO), parse_size(token, 4096)
    body = render(data, spec, watermark=watermark(min_size=256)).body
    assert (body != render(data, spec).body) is marked


def test_sizes_marked_from_a_shared_decode_are_the_bytes_of_separate_renders() -> None:
    # 400x of a 400×300 PNG is the shared decode itself: marking it must not mark the others.
    data, mark = corpus.in_format("PNG", (400, 300)), watermark()
    tokens = ["400x", "300x", "400x.webp", "x256"]
    shared = SharedDecode()
    together = [render(data, parse_size(t, 4096), shared=shared, watermark=mark) for t in tokens]
    apart = [render(data, parse_size(t, 4096), watermark=mark) for t in tokens]
    assert [r.body for r in together] == [r.body for r in apart]


@pytest.mark.parametrize("case", corpus.CASES, ids=lambda case: case.name)
def test_no_watermark_renders_the_same_bytes(case: corpus.Case) -> None:
    spec = parse_size(case.token, 4096)
    assert render(case.original(), spec, watermark=None).body == render(case.original(), spec).body


# --- the mark file -------------------------------------------------------------------------


def test_a_mark_is_decoded_once_per_process_and_the_cache_is_bounded() -> None:
    first = marks.mark_png((30, 20))
    decoded = overlay.decoded_mark(first)
    assert overlay.decoded_mark(first) is decoded
    for side in range(overlay.MARK_CACHE_ENTRIES):
        overlay.decoded_mark(marks.mark_png((31 + side, 20)))
    assert overlay.decoded_mark(first) is not decoded  # pushed out, decoded again


def test_a_mark_used_at_its_own_size_stays_as_decoded() -> None:
    data = marks.mark_png((100, 50), (251, 2, 251))  # 400x: the box is the mark's own size
    render(corpus.jpeg(PHOTO), parse_size("400x", 4096), watermark=watermark(image=data))
    assert overlay.decoded_mark(data).getchannel("A").getextrema() == (255, 255)


def test_check_watermark_returns_the_marks_size() -> None:
    assert check_watermark(marks.mark_png((120, 45))) == (120, 45)
    sideways = corpus.jpeg((300, 100), orientation=6)
    assert check_watermark(sideways) == (100, 300)


HOSTILE_MARKS = {
    "png chunks": (
        lambda: bombs.png_many_chunks(containers.MAX_PNG_CHUNKS),
        "original_too_complex",
    ),
    "too many pixels": (lambda: bombs.png_palette_transparent(2001), "original_too_many_pixels"),
    "truncated": (lambda: marks.mark_png()[:60], "invalid_image"),
    "not an image": (lambda: b"GIF? no, a text file", "unsupported_format"),
}


@pytest.mark.parametrize("name", list(HOSTILE_MARKS))
def test_a_hostile_mark_is_refused_like_a_hostile_original(name: str) -> None:
    make, code = HOSTILE_MARKS[name]
    for attempt in (
        lambda: check_watermark(make()),
        lambda: render(corpus.jpeg(), parse_size("300x", 4096), watermark=watermark(image=make())),
    ):
        with pytest.raises(ServiceError) as info:
            attempt()
        assert info.value.code == code
        assert 400 <= info.value.status < 500


@pytest.mark.parametrize(
    ("size", "limits"),
    [((2001, 2000), ImagingLimits()), ((101, 100), ImagingLimits(max_source_pixels=10_000))],
    ids=["the mark cap", "an original's cap"],
)
def test_a_mark_over_either_pixel_cap_is_refused(
    size: tuple[int, int], limits: ImagingLimits
) -> None:
    check_watermark(marks.mark_png((size[0] - 1, size[1])), limits)
    with pytest.raises(OriginalTooManyPixels, match="the watermark has"):
        check_watermark(marks.mark_png(size), limits)


def test_the_memory_model_counts_the_mark() -> None:
    # ~29 MiB unmarked; the mark decodes in ~11 MiB, but marking this output adds ~18.
    data, spec = corpus.jpeg(PHOTO), parse_size("1600x", 4096)
    budget = ImagingLimits(max_render_bytes=40 * 2**20)
    big = watermark(image=marks.mark_png((1000, 1000)), width=1.0)
    render(data, spec, budget)  # within the budget unmarked
    assert overlay.decoded_mark(big.image, budget).size == (1000, 1000)  # and the mark alone
    with pytest.raises(OriginalTooManyPixels):
        render(data, spec, budget, watermark=big)


def test_a_mark_whose_decode_is_over_the_budget_is_refused() -> None:
    budget = ImagingLimits(max_render_bytes=8 * 2**20)
    with pytest.raises(OriginalTooManyPixels):
        check_watermark(marks.mark_png((1000, 1000)), budget)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("anchor", "north"),
        ("anchor", "centre"),
        ("margin", -0.01),
        ("margin", 0.5),
        ("width", 0),
        ("width", 1.01),
        ("opacity", 0),
        ("opacity", 1.5),
        ("opacity", "0.5"),
        ("min_size", 0),
        ("min_size", 2.5),
        ("min_size", True),
        ("image", b""),
        ("image", "mark.png"),
    ],
)
def test_invalid_watermark_values_name_their_field(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=field):
        replace(watermark(), **{field: value})


def test_a_watermark_is_plain_data_that_loads_no_pillow() -> None:
    code = (
        "import sys\n"
        "from chalicelib.imaging import Watermark\n"
        "Watermark(b'mark', anchor='nw', opacity=1)\n"
        "assert 'PIL' not in sys.modules, 'Pillow was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, timeout=60)


def test_the_defaults_are_valid() -> None:
    default = Watermark(marks.mark_png())
    assert (default.anchor, default.margin, default.width, default.opacity, default.min_size) == (
        "se",
        0.03,
        0.25,
        0.6,
        256,
    )


def _close(actual: object, expected: tuple[int, ...], tolerance: int = 40) -> bool:
    assert isinstance(actual, tuple)
    return all(abs(a - e) <= tolerance for a, e in zip(actual, expected, strict=False))
