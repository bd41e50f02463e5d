"""A request for a variant, parsed and checked against the policy before any I/O.

Path segments become one :class:`VariantRequest`; the signature, the key
rules, ``ALLOWED_SIZES`` and a prefix policy's sizes and signing (and snapping) and
S3's key length are checked
here, purely: nothing in this module reads a bucket or decodes a byte.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from chalicelib.config import Settings
from chalicelib.errors import (
    InvalidKey,
    InvalidSize,
    NonCanonicalSize,
    NotAVariantUrl,
    SignatureRequired,
    SizeNotAllowed,
    VariantOfVariant,
)
from chalicelib.policies.document import POLICY_ROOT
from chalicelib.resize.grammar import (
    MAX_KEY_BYTES,
    MAX_TOKEN_CHARS,
    ResizeSpec,
    decode_segment,
    parse_key,
    parse_size,
    variant_key,
)
from chalicelib.resize.ledger import LEDGER_ROOT, longest_entry_bytes
from chalicelib.resize.signing import require_signature_segment, sign, verify

if TYPE_CHECKING:
    from chalicelib.policies.document import Rule

# What the website rule sends when a URL has no size (or no key) in it.
NO_SIZE = "the URL has no size: URLs look like /<size>/<key>, e.g. /300x200/photos/cat.jpg"


@dataclass(frozen=True)
class VariantRequest:
    """A parsed request: what to make, from which original, under which signature."""

    spec: ResizeSpec
    key: str
    signature: str | None = None

    @property
    def path(self) -> str:
        """What the variant key puts before the original's key: ``[<signature>/]<size>``."""
        return f"{self.signature}/{self.spec.token}" if self.signature else self.spec.token

    @property
    def variant_key(self) -> str:
        return variant_key(self.path, self.key)


class RequestPolicy:
    """Parses requests and applies the settings' rules to them, before any I/O."""

    def __init__(self, settings: Settings, clock: Callable[[], float] = time.time) -> None:
        self._settings = settings
        self._clock = clock

    def parse(self, segments: list[str]) -> VariantRequest:
        """Path segments (still percent-encoded) → a request; the signature leads when signing."""
        signature = None
        if self._settings.signing_keys:
            signature, *segments = segments
            require_signature_segment(signature)
        if len(segments) < 2:
            raise NotAVariantUrl(NO_SIZE)
        size_text, *key_segments = segments
        try:
            size = decode_segment(size_text)
        except UnicodeDecodeError:
            size = size_text  # not UTF-8: parse_size refuses it as it stands
        if looks_like_a_folder(size):
            # /images/samples/photo.jpg arrives as size "samples", key "photo.jpg".
            raise NotAVariantUrl(f"{NO_SIZE} ({size!r} is not a size)")
        spec = parse_size(size, self._settings.max_dimension)
        request = VariantRequest(spec, parse_key(key_segments), signature)
        check_fits(request)
        return request

    def check(self, request: VariantRequest, rule: Rule | None = None) -> VariantRequest | None:
        """Signature, key and size rules, before any I/O; a snapped request to redirect to.

        ``rule``: the policy of the original's prefix, whose sizes and signing apply
        on top of the deployment's (its formats are checked once the output is known).
        """
        if request.signature is not None:
            verify(
                request.signature,
                request.spec.token,
                request.key,
                self._settings.signing_keys,
                self._clock(),
            )
        elif rule is not None and rule.signed:
            raise SignatureRequired(
                f"URLs of originals under {rule.prefix!r} must be signed, and this deployment "
                "has no SIGNING_KEYS to sign them with"
            )
        first_segment = request.key.split("/", 1)[0]
        if _is_size_token(first_segment, self._settings.max_dimension):
            raise VariantOfVariant(
                f"{request.key!r} is itself a variant; ask for a size of the original instead"
            )
        if request.key.startswith((LEDGER_ROOT, POLICY_ROOT)):
            raise InvalidKey(f"keys under {LEDGER_ROOT!r} and {POLICY_ROOT!r} are reserved")
        for allowed in (self._settings.allowed_sizes, rule.sizes if rule else None):
            if allowed is not None and request.spec not in allowed:
                return self._snapped(request, allowed)
        return None

    def _snapped(self, request: VariantRequest, allowed: frozenset[ResizeSpec]) -> VariantRequest:
        """The nearest allowed request (SNAP_TO_ALLOWED_SIZES), else SizeNotAllowed."""
        nearest = (
            nearest_allowed(request.spec, allowed) if self._settings.snap_to_allowed_sizes else None
        )
        if nearest is None:
            tokens = ", ".join(sorted(spec.token for spec in allowed))
            raise SizeNotAllowed(f"size {request.spec.token!r} is not allowed; allowed: {tokens}")
        return self.signed(VariantRequest(nearest, request.key))

    def signed(self, request: VariantRequest) -> VariantRequest:
        """``request`` under the current signing key (as it is when URLs are not signed)."""
        if not self._settings.signing_keys:
            return request
        signature = sign(self._settings.signing_keys[0], request.spec.token, request.key)
        return VariantRequest(request.spec, request.key, signature)


def looks_like_a_folder(segment: str) -> bool:
    """A first segment that is a name, not a mistyped size: letters, no digits, short."""
    return (
        len(segment) <= MAX_TOKEN_CHARS
        and any(char.isalpha() for char in segment)
        and not any(char.isdigit() for char in segment)
    )


def check_fits(request: VariantRequest) -> None:
    """The variant's key and its longest ledger entry must fit S3's key length."""
    longest = max(len(request.variant_key.encode()), longest_entry_bytes(request.key, request.path))
    if longest > MAX_KEY_BYTES:
        raise InvalidKey(
            f"the key is too long to store a variant of it within {MAX_KEY_BYTES} bytes"
        )


def nearest_allowed(spec: ResizeSpec, allowed: frozenset[ResizeSpec]) -> ResizeSpec | None:
    """The allowed size closest to ``spec`` that differs only in its box (None if there is none).

    Closest by summed difference of the given sides; on a tie the larger wins,
    so snapping never makes an image blurrier than it has to.
    """
    same_kind = [
        candidate
        for candidate in allowed
        if (candidate.fit, candidate.dpr, candidate.output, candidate.quality)
        == (spec.fit, spec.dpr, spec.output, spec.quality)
        and (candidate.width is None, candidate.height is None)
        == (spec.width is None, spec.height is None)
    ]
    if not same_kind:
        return None

    def distance(candidate: ResizeSpec) -> tuple[int, int]:
        sides = [(candidate.width, spec.width), (candidate.height, spec.height)]
        gaps = [abs((a or 0) - (b or 0)) for a, b in sides]
        area = (candidate.width or 1) * (candidate.height or 1)
        return sum(gaps), -area

    return min(same_kind, key=distance)


def _is_size_token(segment: str, max_dimension: int) -> bool:
    try:
        parse_size(segment, max_dimension)
    except (InvalidSize, NonCanonicalSize):
        return False
    return True
