"""The URL grammar: size tokens and object keys, parsed once into typed values.

A size token has exactly one spelling per variant, so two URLs can never
create the same image twice:

==========  =====================================================
``300x200`` fit inside 300×200, keep the aspect ratio
``300x``    300 wide, height follows the aspect ratio
``x200``    200 high, width follows the aspect ratio
==========  =====================================================

Dimensions are ASCII digits without leading zeros, from 1 to the configured
maximum, joined by a lowercase ``x``.  Images are never enlarged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote

from chalicelib.errors import InvalidKey, InvalidSize, NonCanonicalSize

# Loose on purpose: it recognises what a person probably meant, so that a
# non-canonical spelling gets an error naming the canonical one.
_LOOSE_SIZE = re.compile(r"\s*(\d*)\s*[xX×]\s*(\d*)\s*")
_CANONICAL_SIZE = re.compile(r"([1-9][0-9]*)?x([1-9][0-9]*)?", re.ASCII)
# More digits than any sane maximum; refuses before int() sees a huge string.
_MAX_DIGITS = 6
MAX_KEY_BYTES = 1024


@dataclass(frozen=True)
class ResizeSpec:
    """A requested variant: the box to fit the image inside (None: unconstrained)."""

    width: int | None
    height: int | None

    @property
    def token(self) -> str:
        """The canonical size token, the first segment of the variant key."""
        return f"{self.width or ''}x{self.height or ''}"

    def variant_key(self, original_key: str) -> str:
        """Where the variant of ``original_key`` is stored."""
        return f"{self.token}/{original_key}"


def parse_size(text: str, max_dimension: int) -> ResizeSpec:
    """Parse a canonical size token or raise InvalidSize / NonCanonicalSize."""
    match = _CANONICAL_SIZE.fullmatch(text)
    if match is None or (match.group(1) is None and match.group(2) is None):
        raise _explain_bad_size(text, max_dimension)
    width, height = (_dimension(group, max_dimension) for group in match.groups())
    return ResizeSpec(width, height)


def _dimension(digits: str | None, max_dimension: int) -> int | None:
    if digits is None:
        return None
    if len(digits) > _MAX_DIGITS or int(digits) > max_dimension:
        raise InvalidSize(
            f"each dimension must be between 1 and {max_dimension}",
            f"dimension {digits[:20]!r} over {max_dimension}",
        )
    return int(digits)


def _explain_bad_size(text: str, max_dimension: int) -> InvalidSize | NonCanonicalSize:
    """Name the canonical spelling when the intent is clear, else describe the grammar."""
    loose = _LOOSE_SIZE.fullmatch(text)
    if loose and all(len(group) <= _MAX_DIGITS for group in loose.groups()):
        # int() accepts any Unicode decimal digit, e.g. fullwidth ones.
        dims = [int(group) if group else None for group in loose.groups()]
        if any(dims) and all(d is None or 1 <= d <= max_dimension for d in dims):
            canonical = ResizeSpec(*dims).token
            return NonCanonicalSize(f"size {text!r} is not in canonical form; use {canonical!r}")
    return InvalidSize(
        f"size must be WxH, Wx or xH with dimensions from 1 to {max_dimension}, e.g. 300x200"
    )


def parse_key(segments: list[str]) -> str:
    """Join percent-encoded path segments into an S3 key, decoding exactly once.

    API Gateway REST APIs, ``chalice local`` and ``chalice.test.Client`` all
    hand path parameters over still percent-encoded, so this is the one place
    that decodes.  ``+`` is a literal plus in a path, not a space.
    """
    try:
        key = "/".join(unquote(segment, errors="strict") for segment in segments)
    except UnicodeDecodeError as err:
        raise InvalidKey("key is not valid UTF-8 once percent-decoded", str(err)) from err
    check_key(key)
    return key


def check_key(key: str) -> None:
    """Refuse keys that S3 or a browser would treat ambiguously."""
    if not key:
        raise InvalidKey("key is empty")
    if len(key.encode()) > MAX_KEY_BYTES:
        raise InvalidKey(f"key is longer than {MAX_KEY_BYTES} bytes")
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in key):
        raise InvalidKey("key contains control characters")
    for segment in key.split("/"):
        if segment in ("", ".", ".."):
            raise InvalidKey("key has an empty, '.' or '..' segment")
