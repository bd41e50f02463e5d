"""Anchored cover crops: compass anchors, smart (attention) and focal points, as displayed."""

from __future__ import annotations

import pytest
from PIL import Image, ImageOps

from chalicelib.imaging import canonical_spec, plan, render
from chalicelib.imaging.attention import smart_position
from chalicelib.imaging.geometry import CENTRE, COMPASS, Geometry
from chalicelib.resize.grammar import Anchor, parse_size
from tests.support import corpus, scenes

ORIENTATIONS = range(1, 9)
COMPASS_POINTS = [anchor for anchor in COMPASS if anchor is not Anchor.CENTRE]
LANDSCAPE, PORTRAIT = (800, 400), (400, 800)


def rendered(original: bytes, token: str, focus: tuple[float, float] | None = None) -> Image.Image:
    return corpus.opened(render(original, parse_size(token, 4096), focus=focus).body)


@pytest.mark.parametrize("orientation", ORIENTATIONS)
def test_scenes_display_the_same_picture_in_every_orientation(orientation: int) -> None:
    picture = scenes.with_edge_bands((60, 30), 5)
    shown = ImageOps.exif_transpose(corpus.opened(scenes.stored(picture, "PNG", orientation)))
    assert list(shown.get_flattened_data()) == list(picture.get_flattened_data())


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
@pytest.mark.parametrize("orientation", [1, 3, 6, 7])
@pytest.mark.parametrize("anchor", COMPASS_POINTS)
def test_each_compass_anchor_touches_its_edges_of_the_displayed_image(
    anchor: Anchor, orientation: int, fmt: str
) -> None:
    for size in (LANDSCAPE, PORTRAIT):  # spare width, then spare height
        picture = scenes.with_edge_bands(size, 40)
        image = rendered(scenes.stored(picture, fmt, orientation), f"100x100-cover-{anchor}")
        assert image.size == (100, 100)
        probes = {"w": (2, 50), "e": (97, 50), "n": (50, 2), "s": (50, 97)}
        for edge, probe in probes.items():
            seen = scenes.close(image.getpixel(probe), scenes.EDGE_COLOURS[edge])
            spare_along = "we" if size == LANDSCAPE else "ns"
            # Along the spare side only the anchored edge shows; across it, both do.
            expected = edge in anchor if edge in spare_along else True
            assert seen == expected, (size, edge, image.getpixel(probe))


def test_the_centre_crop_shows_neither_spare_edge() -> None:
    image = rendered(scenes.stored(scenes.with_edge_bands(LANDSCAPE, 40), "PNG"), "100x100-cover")
    assert not scenes.close(image.getpixel((2, 50)), scenes.EDGE_COLOURS["w"])
    assert not scenes.close(image.getpixel((97, 50)), scenes.EDGE_COLOURS["e"])


SUBJECT_PLACES = [
    (where, size)
    for where in COMPASS_POINTS
    for size in (LANDSCAPE, PORTRAIT)
    if set(where) & set("we" if size == LANDSCAPE else "ns")
]


def kept_share(image: Image.Image, picture: Image.Image, where: str) -> float:
    """How much of the subject the output keeps: its pixels against the whole subject's, scaled."""
    subject = scenes.subject_pixels(picture.crop(scenes.subject_box(picture.size, where)))
    scale = image.size[0] / min(picture.size)
    return scenes.subject_pixels(image) / (subject * scale * scale)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
@pytest.mark.parametrize(("where", "size"), SUBJECT_PLACES)
def test_smart_keeps_a_subject_the_centre_crop_loses(
    where: str, size: tuple[int, int], fmt: str
) -> None:
    picture = scenes.with_subject(size, where)
    original = (
        scenes.stored(picture, fmt, quality=90) if fmt == "JPEG" else scenes.stored(picture, fmt)
    )
    assert kept_share(rendered(original, "200x200-cover"), picture, where) < 0.2
    assert kept_share(rendered(original, "200x200-cover-smart"), picture, where) > 0.9


@pytest.mark.parametrize("orientation", [5, 6, 8])
def test_smart_chooses_on_the_displayed_image(orientation: int) -> None:
    picture = scenes.with_subject(LANDSCAPE, "e")
    image = rendered(scenes.stored(picture, "JPEG", orientation), "200x200-cover-smart")
    assert kept_share(image, picture, "e") > 0.9


def test_smart_is_deterministic_and_centred_on_a_plain_image() -> None:
    original = scenes.stored(scenes.with_subject(LANDSCAPE, "sw"), "PNG")
    first, second = (render(original, parse_size("200x200-cover-smart", 4096)) for _ in "12")
    assert first.body == second.body
    plain = Image.new("RGB", (80, 40), scenes.BACKGROUND)
    geometry = Geometry((80, 40), (40, 40), (40, 40), (40, 40), None)
    assert smart_position(plain, geometry) == CENTRE


def test_smart_ignores_what_is_transparent() -> None:
    picture = scenes.with_subject(LANDSCAPE, "w").convert("RGBA")
    picture.putalpha(Image.new("L", LANDSCAPE, 255).crop((0, 0, 400, 400)).resize(LANDSCAPE))
    alpha = Image.new("L", LANDSCAPE, 255)
    alpha.paste(0, (0, 0, 400, 400))  # the subject's half is transparent
    picture.putalpha(alpha)
    geometry = plan(LANDSCAPE, parse_size("200x200-cover-smart", 4096))
    assert smart_position(picture, geometry)[0] > 0.5


FOCUS_TOKENS = ["200x200-cover-focus", "300x100-cover-focus", "100x300-cover-focus"]


@pytest.mark.parametrize("orientation", ORIENTATIONS)
@pytest.mark.parametrize("point", [(0.06, 0.92), (0.95, 0.05)])
def test_a_focal_point_near_a_corner_is_inside_every_focus_crop(
    point: tuple[float, float], orientation: int
) -> None:
    picture = scenes.with_mark((800, 600), point, 14)
    original = scenes.stored(picture, "JPEG", orientation)
    for token in FOCUS_TOKENS:
        marks = scenes.marked(rendered(original, token, focus=point))
        assert marks > 20, token
    assert scenes.marked(rendered(original, "200x200-cover")) == 0  # the test can tell


@pytest.mark.parametrize("token", FOCUS_TOKENS)
def test_the_focus_crop_is_centred_on_the_point_when_it_can_be(token: str) -> None:
    geometry = plan((800, 600), parse_size(token, 4096), focus=(0.5, 0.4))
    left, top, right, bottom = geometry.crop_box(geometry.source)
    assert (left + right) / 2 == pytest.approx(400, abs=1)
    if bottom - top < 600:
        assert (top + bottom) / 2 == pytest.approx(240, abs=1)


def test_focus_without_a_focal_point_is_smart() -> None:
    original = scenes.stored(scenes.with_subject(LANDSCAPE, "e"), "PNG")
    smart = render(original, parse_size("200x200-cover-smart", 4096))
    assert render(original, parse_size("200x200-cover-focus", 4096)).body == smart.body


@pytest.mark.parametrize(
    ("size", "token", "canonical"),
    [
        ((800, 400), "100x100-cover-e", "100x100-cover-e"),
        ((800, 400), "100x100-cover-ne", "100x100-cover-e"),  # nothing spare vertically
        ((800, 400), "100x100-cover-n", "100x100-cover"),
        ((400, 800), "100x100-cover-ne", "100x100-cover-n"),
        ((800, 400), "100x100-cover-sw@2x", "200x200-cover-w"),
        ((800, 400), "100x100-cover-smart", "100x100-cover-smart"),
        ((800, 400), "100x100-cover-focus.webp", "100x100-cover-focus.webp"),
        ((200, 100), "100x50-cover-smart", "100x50"),  # the crop is the whole image
        ((200, 100), "100x50-cover-nw", "100x50"),
    ],
)
def test_canonical_spec_keeps_an_anchor_only_where_it_moves_pixels(
    size: tuple[int, int], token: str, canonical: str
) -> None:
    assert canonical_spec(size, parse_size(token, 4096)).token == canonical


def test_the_committed_comparison_is_what_the_code_makes_and_smart_keeps_the_subject() -> None:
    picture, centre, smart = scenes.comparison()
    committed = corpus.opened(scenes.COMPARISON.read_bytes()).convert("RGB")
    made = scenes.comparison_panel(centre, smart, picture)
    assert committed.size == made.size
    difference = max(
        abs(a - b)
        for pixel, other in zip(
            committed.get_flattened_data(), made.get_flattened_data(), strict=True
        )
        for a, b in zip(pixel, other, strict=True)
    )
    assert difference <= 8, "docs/smart-crop.png is stale: python -m tests.support.scenes"
    shown_centre, shown_smart = scenes.panel_parts(committed)
    assert kept_share(shown_centre, picture, "sw") < 0.2
    assert kept_share(shown_smart, picture, "sw") > 0.9
