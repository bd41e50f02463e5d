"""The policy documents in the originals bucket: reading the active one (cached), activating.

The resize function reads only ``_policy/active.json``, at most once every
POLICY_CACHE_SECONDS per warm function, and each watermark image once per
ETag.  The events function activates: it validates ``_policy/policies.json``,
records each watermark image's ETag and writes the result as the active
document; an invalid document never replaces the active one.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from chalicelib.config import Settings
from chalicelib.errors import Misconfigured, OriginalChanged, OriginalNotFound, ServiceError
from chalicelib.policies.document import (
    ACTIVE_KEY,
    EMPTY,
    MAX_DOCUMENT_BYTES,
    PENDING_KEY,
    InvalidPolicy,
    PolicyDocument,
    Rule,
    WatermarkRule,
    parse_document,
)
from chalicelib.storage import ImageStore

if TYPE_CHECKING:
    from chalicelib.imaging import Watermark

# The largest watermark image read (a mark is a small PNG; it is checked like an original too).
MAX_WATERMARK_BYTES = 4 * 1024 * 1024
_NO_STORE = {"content_type": "application/json", "cache_control": "no-store"}


@dataclass(frozen=True)
class Activation:
    """What activating the uploaded document did: the documents before and after, or why not."""

    before: PolicyDocument
    after: PolicyDocument
    errors: tuple[str, ...] = ()
    changed: tuple[str, ...] = field(default=())  # prefixes whose rule changed

    @property
    def rejected(self) -> bool:
        return bool(self.errors)


class PolicyStore:
    """Reads the active document and watermark images from the originals bucket, with caches."""

    def __init__(
        self,
        originals: ImageStore,
        settings: Settings,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._originals = originals
        self._settings = settings
        self._clock = clock
        self._lock = threading.Lock()
        self._cached: tuple[float, PolicyDocument] | None = None
        self._marks: dict[str, tuple[str, bytes]] = {}  # mark key → (ETag, bytes): the latest

    def active(self) -> PolicyDocument:
        """The active document, read again once POLICY_CACHE_SECONDS have passed."""
        with self._lock:
            now = self._clock()
            lifetime = self._settings.policy_cache_seconds
            if self._cached is not None and now - self._cached[0] < lifetime:
                return self._cached[1]
        document = self.read_active()
        with self._lock:
            self._cached = (now, document)
        return document

    def rule_for(self, key: str) -> Rule | None:
        return self.active().rule_for(key)

    def watermarked(self, key: str) -> bool:
        """Whether ``key``'s outputs (at or above the rule's min_size) carry a watermark."""
        rule = self.rule_for(key)
        return rule is not None and rule.watermark is not None

    def read_active(self) -> PolicyDocument:
        """The active document as stored now (none stored: no rules)."""
        try:
            found = self._originals.get_original(ACTIVE_KEY, MAX_DOCUMENT_BYTES)
        except OriginalNotFound:
            return EMPTY
        try:
            return parse_document(found.body, self._settings.max_dimension, active=True)
        except InvalidPolicy as err:
            # Only the events function writes it, and only valid: refuse rather than serve unmarked.
            raise Misconfigured("the service's policies are unreadable", str(err)) from err

    def mark(self, watermark: WatermarkRule) -> bytes:
        """A watermark image's bytes, read once per ETag; missing: misconfigured (fail closed)."""
        cached = self._marks.get(watermark.key)
        if cached is not None and cached[0] == watermark.etag:
            return cached[1]
        try:
            found = self._originals.get_original(watermark.key, MAX_WATERMARK_BYTES)
        except OriginalNotFound as err:
            raise Misconfigured("a watermark image is missing", watermark.key) from err
        if found.etag != watermark.etag:
            # Replaced and not activated (yet, or invalid): never render an unchecked mark.
            raise OriginalChanged(
                "the watermark of this image is being replaced; ask again shortly",
                f"{watermark.key}: active {watermark.etag}, stored {found.etag}",
            )
        self._marks[watermark.key] = (found.etag, found.body)
        return found.body

    def watermark(self, rule: WatermarkRule) -> Watermark:
        """The mark a render composites for ``rule`` (its image read once per ETag)."""
        from chalicelib.imaging import Watermark  # Pillow: there is a render

        return Watermark(
            self.mark(rule),
            anchor=rule.anchor,
            margin=rule.margin,
            width=rule.width,
            opacity=rule.opacity,
            min_size=rule.min_size,
        )

    def activate(self) -> Activation:
        """Validate the uploaded document; only if valid, make it active with its marks' ETags.

        A deleted upload makes an empty document active.  Each watermark image is
        read and checked as an original would be.  An active copy altered by hand
        into something unreadable counts as no rules (every rule has changed).
        """
        try:
            before = self.read_active()
        except Misconfigured:
            before = EMPTY
        try:
            pending = self._read_pending()
            after = pending.with_etags(self._marks_etags(pending))
        except InvalidPolicy as err:
            return Activation(before, before, err.errors)
        changed = before.changed_prefixes(after)
        if changed or after.to_json() != before.to_json():
            self._originals.put(ACTIVE_KEY, after.to_json(), **_NO_STORE)
            with self._lock:
                self._cached = None
        return Activation(before, after, changed=tuple(changed))

    def _read_pending(self) -> PolicyDocument:
        try:
            found = self._originals.get_original(PENDING_KEY, MAX_DOCUMENT_BYTES)
        except OriginalNotFound:
            return EMPTY
        return parse_document(found.body, self._settings.max_dimension)

    def _marks_etags(self, document: PolicyDocument) -> dict[str, str]:
        """Each watermark image's ETag, once read and checked; InvalidPolicy names the rule."""
        from chalicelib.imaging import check_watermark  # Pillow: there are marks to check

        etags: dict[str, str] = {}
        errors: list[str] = []
        for key in document.watermark_keys():
            paths = [
                f"rules[{i}].watermark.key"
                for i, rule in enumerate(document.rules)
                if rule.watermark is not None and rule.watermark.key == key
            ]
            try:
                found = self._originals.get_original(key, MAX_WATERMARK_BYTES)
                check_watermark(found.body, self._settings.imaging)
            except OriginalNotFound:
                errors.extend(f"{path}: no image {key!r} in the originals bucket" for path in paths)
                continue
            except ServiceError as err:
                if err.status >= 500:
                    raise
                errors.extend(f"{path}: {key!r}: {err.public_message}" for path in paths)
                continue
            etags[key] = found.etag
        if errors:
            raise InvalidPolicy(errors)
        return etags
