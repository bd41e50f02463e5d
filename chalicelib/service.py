"""The resize flow, one direction: parse → check policy → fetch → transform → store → redirect."""

from __future__ import annotations

from urllib.parse import quote

from chalicelib.config import CACHE_CONTROL_VARIANT, Settings
from chalicelib.errors import SizeNotAllowed
from chalicelib.grammar import ResizeSpec, decode_segment, parse_key, parse_size
from chalicelib.imaging import render
from chalicelib.storage import ImageStore


class ResizeService:
    """Turns a request for a missing variant into a stored variant and its public URL."""

    def __init__(self, settings: Settings, store: ImageStore) -> None:
        self._settings = settings
        self._store = store

    def resize(self, size_text: str, key_segments: list[str]) -> str:
        """Create the variant and return the public URL to redirect to."""
        try:
            size = decode_segment(size_text)
        except UnicodeDecodeError:
            size = size_text  # not UTF-8: parse_size refuses it as it stands
        spec = parse_size(size, self._settings.max_dimension)
        key = parse_key(key_segments)
        self.check_policy(spec)
        original = self._store.get(key)
        rendered = render(original, spec, self._settings.imaging)
        variant_key = spec.variant_key(key)
        self._store.put(
            variant_key,
            rendered.body,
            content_type=rendered.content_type,
            cache_control=CACHE_CONTROL_VARIANT,
        )
        return self.public_url(variant_key)

    def check_policy(self, spec: ResizeSpec) -> None:
        """Refuse sizes outside ALLOWED_SIZES, before any I/O."""
        allowed = self._settings.allowed_sizes
        if allowed is not None and spec not in allowed:
            tokens = ", ".join(sorted(s.token for s in allowed))
            raise SizeNotAllowed(f"size {spec.token!r} is not allowed; allowed: {tokens}")

    def public_url(self, key: str) -> str:
        """The variant's address under PUBLIC_URL: configuration only, never request headers."""
        return f"{self._settings.public_url}/{quote(key, safe='/')}"
