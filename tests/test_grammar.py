"""Size tokens and keys: canonical only, decoded exactly once."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.errors import InvalidKey, InvalidSize, NonCanonicalSize
from chalicelib.resize.grammar import (
    MAX_KEY_BYTES,
    MAX_TOKEN_CHARS,
    OUTPUT_FORMATS,
    Anchor,
    Fit,
    ResizeSpec,
    parse_key,
    parse_size,
)
from tests.support.spellings import loose_spellings, suggestion


@pytest.mark.parametrize(
    ("text", "width", "height"),
    [
        ("300x200", 300, 200),
        ("300x", 300, None),
        ("x200", None, 200),
        ("1x1", 1, 1),
        ("4096x4096", 4096, 4096),
    ],
)
def test_canonical_sizes_parse(text: str, width: int | None, height: int | None) -> None:
    spec = parse_size(text, 4096)
    assert spec == ResizeSpec(width, height)
    assert spec.token == text


NON_CANONICAL = [
    ("0300x200", "300x200"),
    ("300X200", "300x200"),
    ("300×200", "300x200"),
    (" 300x200", "300x200"),
    ("300x0200", "300x200"),
    ("\uff13\uff10\uff10x", "300x"),  # fullwidth digits
    ("x007", "x7"),
    ("300x300-cover.jpg", "300x300-cover.jpeg"),  # the spelling most people type
    ("300x300-COVER.JPG", "300x300-cover.jpeg"),
    ("300x@1x", "300x"),
    (f"300x-q{OUTPUT_FORMATS['webp'].default_quality}.webp", "300x.webp"),
    ("300x200-inside", "300x200"),
]


@pytest.mark.parametrize(("text", "canonical"), NON_CANONICAL)
def test_non_canonical_sizes_name_the_canonical_form(text: str, canonical: str) -> None:
    with pytest.raises(NonCanonicalSize) as info:
        parse_size(text, 4096)
    assert repr(canonical) in info.value.public_message
    assert info.value.status == 400


@pytest.mark.parametrize(
    "text",
    [
        "",
        "x",
        "300",
        "0x0",
        "0x200",
        "-1x200",
        "1e3x",
        "300x200x",
        "4097x",
        "x4097",
        "300x200.5",
        "9" * 5000 + "x",
        "abc",
        "300x200?q=1",
        "\uff13",  # a fullwidth digit alone
    ],
)
def test_malformed_or_out_of_range_sizes_are_refused(text: str) -> None:
    with pytest.raises(InvalidSize) as info:
        parse_size(text, 4096)
    assert info.value.status == 400


def test_max_dimension_is_a_parameter() -> None:
    assert parse_size("500x", 500) == ResizeSpec(500, None)
    with pytest.raises(InvalidSize):
        parse_size("501x", 500)


@pytest.mark.parametrize("anchor", [anchor for anchor in Anchor if anchor is not Anchor.CENTRE])
def test_anchored_covers_parse(anchor: Anchor) -> None:
    text = f"300x200-cover-{anchor}@2x-q70.webp"
    spec = parse_size(text, 4096)
    assert (spec.fit, spec.anchor, spec.dpr, spec.quality) == (Fit.COVER, anchor, 2, 70)
    assert spec.token == text


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("300x200-Cover-NE", "300x200-cover-ne"),
        ("300x200-cover- sw", "300x200-cover-sw"),
        ("300x200-cover-centre", "300x200-cover"),
        ("300x200-cover-center", "300x200-cover"),
        ("300x200-cover-top", "300x200-cover-n"),
        ("300x200-cover-left", "300x200-cover-w"),
        ("300x200-cover-northeast", "300x200-cover-ne"),
        ("300x200-cover-SMART.jpg", "300x200-cover-smart.jpeg"),
        # WebP's default quality spelled out.
        (
            f"300x200-cover-focus-q{OUTPUT_FORMATS['webp'].default_quality}.webp",
            "300x200-cover-focus.webp",
        ),
    ],
)
def test_non_canonical_anchors_name_an_accepted_spelling(text: str, canonical: str) -> None:
    with pytest.raises(NonCanonicalSize) as info:
        parse_size(text, 4096)
    assert repr(canonical) in info.value.public_message
    assert parse_size(canonical, 4096).token == canonical


@pytest.mark.parametrize(
    "text",
    ["300x200-cover-middle", "300x200-pad-n", "300x200-n", "300x-cover-n", "300x200-cover-n-s"],
)
def test_unknown_or_misplaced_anchors_are_refused(text: str) -> None:
    with pytest.raises(InvalidSize) as info:
        parse_size(text, 4096)
    assert info.value.status == 400


def test_the_longest_canonical_token_fits() -> None:
    longest = "16384x16384-cover-smart@3x-q100.webp"
    assert parse_size(longest, 16384 * 3).token == longest
    assert len(longest) < MAX_TOKEN_CHARS


def test_variant_key_is_token_then_original_key() -> None:
    assert ResizeSpec(300, None).variant_key("a/b.jpg") == "300x/a/b.jpg"
    assert ResizeSpec(None, 20).variant_key("b.jpg") == "x20/b.jpg"


@pytest.mark.parametrize(
    ("segments", "key"),
    [
        (["photos", "cat.jpg"], "photos/cat.jpg"),
        (["a%20b", "caf%C3%A9.jpg"], "a b/café.jpg"),
        (["100%25.jpg"], "100%.jpg"),
        (["a+b(1)'s.jpg"], "a+b(1)'s.jpg"),  # '+' in a path is a plus, not a space
        (["100%2541.jpg"], "100%41.jpg"),  # decoded once, not twice
        (["x-ray x.jpg"], "x-ray x.jpg"),
        ([f"d{i}" for i in range(12)], "/".join(f"d{i}" for i in range(12))),
    ],
)
def test_keys_are_joined_and_decoded_exactly_once(segments: list[str], key: str) -> None:
    assert parse_key(segments) == key


@pytest.mark.parametrize(
    "segments",
    [
        ["a", "", "b"],
        ["a", ".", "b"],
        ["..", "b"],
        ["%2E%2E", "b"],
        ["a%00b"],
        ["a%0Ab"],
        ["%FF.jpg"],  # not UTF-8
        ["a" * (MAX_KEY_BYTES + 1)],
        ["é" * (MAX_KEY_BYTES // 2 + 1)],  # the limit is in bytes, not characters
    ],
)
def test_bad_keys_are_refused(segments: list[str]) -> None:
    with pytest.raises(InvalidKey) as info:
        parse_key(segments)
    assert info.value.status == 400


def test_longest_key_is_accepted() -> None:
    assert len(parse_key(["a" * MAX_KEY_BYTES])) == MAX_KEY_BYTES


# A loose pattern with neighbouring \s* once took 76 s on " "*1000 + "x" + " "*1000 + "!".
# The timeout turns a regression into a failure instead of a hung run.
@pytest.mark.timeout(10)
@pytest.mark.parametrize(
    "text",
    [
        " " * 1000 + "x" + " " * 1000 + "!",
        " " * 5000,
        "1" + " " * 3000 + "x" + " " * 3000 + "-" + " " * 3000,
        "x".join([" " * 500] * 10),
    ],
)
def test_adversarial_sizes_are_refused_at_once(text: str) -> None:
    with pytest.raises(InvalidSize):
        parse_size(text, 4096)


@pytest.mark.timeout(60)
@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=" \t0123456789xX×@-.qQcoverpadnsewmartfu", min_size=0, max_size=3000))
def test_any_text_parses_or_is_refused_quickly(text: str) -> None:
    try:
        spec = parse_size(text, 4096)
    except (InvalidSize, NonCanonicalSize):
        return
    assert spec.token == text


@pytest.mark.parametrize(
    ("token", "accepted"),
    [
        ("300x-q95.jpeg", True),
        ("300x-q96.jpeg", False),
        ("300x-q95.avif", True),
        ("300x-q100.avif", False),
        ("300x-q100.webp", True),  # WebP looks lossless only at 100
    ],
)
def test_quality_stops_where_the_format_already_looks_lossless(token: str, accepted: bool) -> None:
    if accepted:
        assert parse_size(token, 4096).token == token
        return
    with pytest.raises(InvalidSize, match="already looks lossless"):
        parse_size(token, 4096)


@pytest.mark.parametrize(("text", "canonical"), NON_CANONICAL)
def test_every_suggested_spelling_is_accepted_as_it_stands(text: str, canonical: str) -> None:
    with pytest.raises(NonCanonicalSize) as info:
        parse_size(text, 4096)
    suggested = suggestion(info.value.public_message)
    assert suggested == canonical
    assert parse_size(suggested, 4096).token == suggested


@settings(max_examples=500, deadline=None)
@given(loose_spellings())
def test_generated_refused_spellings_suggest_an_accepted_one(text: str) -> None:
    try:
        spec = parse_size(text, 4096)
    except InvalidSize:
        return  # out of range or meaningless: no spelling is suggested
    except NonCanonicalSize as refused:
        suggested = suggestion(refused.public_message)
        assert parse_size(suggested, 4096).token == suggested
        return
    assert spec.token == text
