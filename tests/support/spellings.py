"""Size spellings a person might type, and the spelling the service suggests instead."""

from __future__ import annotations

import re

from hypothesis import strategies as st

# NonCanonicalSize's message: "size '<typed>' is not in canonical form; use '<canonical>'".
_SUGGESTION = re.compile(r"; use '([^']*)'$")


def suggestion(message: str) -> str:
    """The spelling an error message tells the reader to use."""
    found = _SUGGESTION.search(message)
    assert found, message
    return found[1]


_FULLWIDTH = {ord("0") + digit: 0xFF10 + digit for digit in range(10)}


def _number(low: int, high: int) -> st.SearchStrategy[str]:
    """A number as typed: sometimes with leading zeros or fullwidth digits."""
    return st.builds(
        lambda value, zeros, wide: ("0" * zeros + str(value)).translate(_FULLWIDTH if wide else {}),
        st.integers(low, high),
        st.integers(0, 2),
        st.booleans(),
    )


def _cased(words: list[str]) -> st.SearchStrategy[str]:
    return st.sampled_from(words).flatmap(
        lambda word: st.sampled_from([word, word.upper(), word.capitalize()])
    )


def loose_spellings() -> st.SearchStrategy[str]:
    """Size tokens in the loose forms the grammar recognises (most of them not canonical)."""
    optional = lambda part: st.one_of(st.just(""), part)  # noqa: E731
    return st.builds(
        lambda *parts: "".join(parts),
        st.sampled_from(["", " "]),
        optional(_number(1, 2000)),
        st.sampled_from(["x", "X", "×"]),
        optional(_number(1, 2000)),
        optional(_cased(["inside", "cover", "pad"]).map(lambda fit: f"-{fit}")),
        optional(st.sampled_from(["@1x", "@2x", "@3X"])),
        optional(_number(1, 100).map(lambda q: f"-q{q}")),
        optional(_cased(["jpg", "jpeg", "png", "webp", "avif", "auto"]).map(lambda f: f".{f}")),
    )
