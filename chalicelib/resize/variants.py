"""Storing a variant: claim it in the ledger, keep within the budget, render, write once.

A request's output is either rendered and stored under its own URL, or,
when another spelling already made the same pixels, stored as a website
redirect to them.  Every object written here carries the ETag of the
original it was made from (``x-amz-meta-source-etag``), a ``-cover-focus``
one also the focal point (``x-amz-meta-source-focus``), one under a prefix
policy that rule's fingerprint (``x-amz-meta-source-policy``), and every one is
named by a ledger entry, so a purge finds them all.

Nothing is stored from an original that is no longer current: the
original's HEAD goes out with the ledger claim, before the render, and the
object is stored only if it still gives the ETag the pixels are made from.
Should that answer be older than ORIGINAL_CHECK_MAX_AGE_SECONDS by the time
the render is done (or the claim not this request's), the HEAD goes again,
with a fresh write of the entry, right before the write.  Either way the
object's ledger entry was written within this invocation, under half of
RECHECK_DELAY_SECONDS before (a purge keeps a young entry whose object isn't
stored yet as a write in flight).  An overwrite or delete that lands after
the check finds the object, at the latest, in the recheck
RECHECK_DELAY_SECONDS later (docs/lifecycle.md).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import wait
from contextlib import suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING

from chalicelib import observe
from chalicelib.config import Settings
from chalicelib.errors import (
    OriginalChanged,
    OriginalNotFound,
    SizeNotAllowed,
    StorageUnavailable,
    VariantBudgetExhausted,
    VariantTooLarge,
)
from chalicelib.focus import SOURCE_FOCUS, FocalPoint, focus_tag
from chalicelib.imaging.formats import is_own_format, output_format  # plain data, no Pillow
from chalicelib.policies.document import SOURCE_POLICY
from chalicelib.resize.grammar import (
    OUTPUT_FORMATS,
    Anchor,
    ResizeSpec,
    public_url,
    variant_key,
)
from chalicelib.resize.ledger import Ledger, alias_entry, original_prefix, output_entry
from chalicelib.resize.negotiate import AVIF, WEBP, concrete
from chalicelib.resize.request import VariantRequest
from chalicelib.storage import S3_CALLS, ImageStore, ObjectInfo, started

if TYPE_CHECKING:  # imaging imports Pillow: a 4xx must not pay for it
    from chalicelib.imaging import Rendered, SharedDecode, Source
    from chalicelib.policies.document import Rule
    from chalicelib.policies.store import PolicyStore

# The outputs whose size a quality sets (grammar.OUTPUT_FORMATS: those with a default quality).
LOSSY_CONTENT_TYPES = frozenset(
    output.content_type for output in OUTPUT_FORMATS.values() if output.default_quality
)

# The x-amz-meta- name on every variant and redirect object: the original's ETag it was made from.
SOURCE_ETAG = "source-etag"
# Entries of the ledger are empty objects; nothing should cache them.
_LEDGER_ENTRY = {"content_type": "application/octet-stream", "cache_control": "no-store"}
# One LIST page: all a ledger holds within the budget, or the first page without one.
_LEDGER_PAGE = 1000
# Below this, a variant's bytes are not capped by its pixels (headers dominate a small one).
VARIANT_BYTES_FLOOR = 64 * 1024
# The original's HEAD sent with the claim overlaps the render, saving a miss a
# round trip; it still counts as the check right before the write while this
# recent (a longer render checks again): a change within it is the recheck's.
ORIGINAL_CHECK_MAX_AGE_SECONDS = 1.0


@dataclass(frozen=True)
class Made:
    """Where a request's pixels are stored, and which output they are."""

    key: str
    canonical: str

    def recorded_in(self, ledger: Ledger, original_key: str) -> Ledger:
        """``ledger`` once it holds this output."""
        return ledger.with_output(self.canonical, self.key.removesuffix(f"/{original_key}"))


class VariantWriter:
    """Writes variants and redirect objects into the variants bucket, with their ledger."""

    def __init__(
        self,
        settings: Settings,
        store: ImageStore,
        originals: ImageStore,
        signed: Callable[[VariantRequest], VariantRequest],
        policies: PolicyStore,
    ) -> None:
        self._settings = settings
        self._store = store
        self._originals = originals  # whose current version a variant must be made from
        self._signed = signed  # a request under the current signing key (RequestPolicy.signed)
        self._policies = policies  # the prefix rules: watermark, formats

    def read_ledger(self, key: str) -> Ledger:
        """The ledger of ``key``, in one LIST request."""
        return Ledger.from_names(self.list_ledger(key))

    def list_ledger(self, key: str) -> list[str]:
        """The ledger's entry names of ``key``: both kinds within the budget, in one LIST."""
        return self._store.list_names(original_prefix(key), self._ledger_limit)

    def may_hold(self, names: list[str], path: str) -> bool:
        """Whether ``<path>/<key>`` may be stored, by its ledger's names (list_ledger's).

        Only if an entry names the path, or the LIST stopped at its limit with more to come.
        """
        ledger = Ledger.from_names(names)
        return len(names) >= self._ledger_limit or path in ledger.paths

    @property
    def _ledger_limit(self) -> int:
        budget = self._settings.max_variants_per_original
        return 2 * (budget + 1) if budget else _LEDGER_PAGE

    def make(
        self,
        request: VariantRequest,
        original: bytes,
        etag: str,
        ledger: Ledger,
        *,
        keep_stored: bool = False,
        shared: SharedDecode | None = None,
        focus: FocalPoint | None = None,
    ) -> Made:
        """Store the request's variant, or a redirect to the same pixels stored by another spelling.

        ``keep_stored``: an output the ledger already places at this spelling
        is taken as made (a miss renders it again: its first render may have
        failed after claiming the entry).  ``focus``: the original's focal point.
        """
        rule = self._policies.rule_for(request.key)
        provenance = made_from(request, etag, focus, rule)
        from chalicelib.imaging import canonical_spec, inspect  # Pillow: only once there is work

        source = inspect(original, request.spec, self._settings.imaging)
        check_format(rule, output_format(source.format, request.spec).name)
        stored_as = _stored_spelling(request.spec, source.format, source.frames)
        if stored_as is not None:
            target = self._signed(VariantRequest(stored_as, request.key))
            made = self.make(
                target, original, etag, ledger, keep_stored=True, shared=shared, focus=focus
            )
            self._store_redirect(
                request, made.key, made.recorded_in(ledger, request.key), provenance
            )
            return made
        canonical = canonical_spec(source.size, request.spec).token
        stored_path = ledger.outputs.get(canonical)
        if stored_path is not None and (stored_path != request.path or keep_stored):
            target_key = variant_key(stored_path, request.key)
            if stored_path != request.path:
                # Another spelling already made these pixels: point at them, render nothing.
                self._store_redirect(request, target_key, ledger, provenance)
            return Made(target_key, canonical)
        self._check_budget(canonical, ledger)
        self._render_and_store(
            request, canonical, original, source, provenance, shared, focus, rule
        )
        return Made(request.variant_key, canonical)

    def _check_budget(self, canonical_token: str, ledger: Ledger) -> None:
        """At most MAX_VARIANTS_PER_ORIGINAL distinct outputs of one original (0: no cap).

        The output's ledger entry is written before it is rendered, so only
        first requests for new outputs that pass this check within the same
        moment (before each other's entry exists) can overshoot the cap.
        """
        budget = self._settings.max_variants_per_original
        if budget and canonical_token not in ledger.outputs and len(ledger.outputs) >= budget:
            raise VariantBudgetExhausted(
                f"this original already has {budget} variants; use one of its existing sizes"
            )

    def _render_and_store(
        self,
        request: VariantRequest,
        canonical: str,
        original: bytes,
        source: Source,
        provenance: dict[str, str],
        shared: SharedDecode | None = None,
        focus: FocalPoint | None = None,
        rule: Rule | None = None,
    ) -> None:
        """Claim the output in the ledger first, so concurrent requests count it, then make it.

        The variant records the ETag of the original it was made from: a purge
        after an overwrite keeps exactly the variants made from the new one.
        Under a rule with a watermark, the mark is part of the render.
        """
        entry = output_entry(request.key, canonical, request.path)
        # The claim's PUT and the original's HEAD are under way before rendering
        # starts and have landed before the variant is stored; their round trip
        # overlaps the render.
        checked_at = time.monotonic()
        claim = started(self._store.put_new, entry, b"", **_LEDGER_ENTRY)
        check = started(self._originals.head, request.key)
        try:
            from chalicelib.imaging import render

            position = focus.position if focus is not None else None
            mark = None
            if rule is not None and rule.watermark is not None:
                mark = self._policies.watermark(rule.watermark)
            with observe.timed("render"):
                rendered = render(
                    original, request.spec, self._settings.imaging, shared, position, mark, source
                )
            self._check_bytes(rendered)
            with observe.timed("s3_claim_wait"):
                claimed, found = claim.result(), check.result()
            age = time.monotonic() - checked_at
            with observe.timed("s3_store"):
                if claimed and age < self._check_max_age:
                    self._put_if_current(
                        request, entry, provenance, found, rendered.body, rendered.content_type
                    )
                else:  # a long render, or another request's claim: check and write again
                    self._put_current(
                        request, entry, provenance, rendered.body, rendered.content_type
                    )
            observe.add("BytesOut", len(rendered.body))
        except BaseException:
            wait([check])  # nothing keeps calling S3 after the answer
            # The budget must not keep a slot for pixels that were never
            # stored; if S3 is down too, the slot stays (a lost slot, not data).
            with suppress(StorageUnavailable):
                if claim.result():
                    self._store.delete(entry)
            raise

    @property
    def _check_max_age(self) -> float:
        """How old the original's check and the claim may be when the variant is stored.

        Under half of RECHECK_DELAY_SECONDS too: a purge must still find the
        claim young (docs/lifecycle.md).
        """
        return min(ORIGINAL_CHECK_MAX_AGE_SECONDS, self._settings.recheck_delay_seconds / 2)

    def _check_bytes(self, rendered: Rendered) -> None:
        """A lossy variant over MAX_VARIANT_BYTES_PER_PIXEL (0: no cap) is refused, not stored.

        Lossless outputs (PNG, GIF) are as large as the picture's content;
        capping them would refuse the format itself.
        """
        per_pixel = self._settings.max_variant_bytes_per_pixel
        if not per_pixel or rendered.content_type not in LOSSY_CONTENT_TYPES:
            return
        pixels = rendered.width * rendered.height * rendered.frames
        cap = max(VARIANT_BYTES_FLOOR, per_pixel * pixels)
        if len(rendered.body) > cap:
            raise VariantTooLarge(
                f"this size would take {len(rendered.body)} bytes, over the {cap} allowed for "
                f"its pixels: ask for a lower quality",
                f"{len(rendered.body)} bytes for {pixels} pixels",
            )

    def _store_redirect(
        self, request: VariantRequest, target_key: str, ledger: Ledger, provenance: dict[str, str]
    ) -> None:
        """Store ``request``'s URL as a website redirect to ``target_key``, within the budget.

        Redirect objects are counted apart from outputs, with the same cap:
        past it, a new spelling keeps being answered here and nothing is stored.
        """
        budget = self._settings.max_variants_per_original
        if request.path not in ledger.aliases and budget and len(ledger.aliases) >= budget:
            return
        entry = alias_entry(request.key, request.path)
        redirect_to = public_url(self._settings.public_url, target_key)
        self._put_current(request, entry, provenance, b"", "application/octet-stream", redirect_to)

    def _put_current(
        self,
        request: VariantRequest,
        entry: str,
        provenance: dict[str, str],
        body: bytes,
        content_type: str,
        redirect_to: str | None = None,
    ) -> None:
        """Store ``request``'s object with ``provenance`` (made_from) if its original is current.

        The original's HEAD and a fresh write of the object's ledger entry
        go out together; only then, when the original's ETag is still the one
        in ``provenance``, the object.
        """
        current = S3_CALLS.submit(self._originals.head, request.key)
        try:
            self._store.put(entry, b"", **_LEDGER_ENTRY)
        finally:
            found = current.result()
        self._put_if_current(request, entry, provenance, found, body, content_type, redirect_to)

    def _put_if_current(
        self,
        request: VariantRequest,
        entry: str,
        provenance: dict[str, str],
        found: ObjectInfo | None,
        body: bytes,
        content_type: str,
        redirect_to: str | None = None,
    ) -> None:
        """Store the object if ``found`` (the original's HEAD) has the ETag in ``provenance``.

        Otherwise its ledger entry is removed, nothing is stored, and the
        answer says the original changed or went.
        """
        etag = provenance[SOURCE_ETAG]
        if found is None or found.etag != etag:
            self._store.delete(entry)  # names nothing: the object is not stored
        if found is None:
            raise OriginalNotFound("the original was deleted while this size was being made")
        if found.etag != etag:
            raise OriginalChanged(
                "the original was replaced while this size was being made; ask again",
                f"{request.key}: made from {etag}, now {found.etag}",
            )
        self._store.put_new(
            request.variant_key,
            body,
            content_type=content_type,
            cache_control=self._settings.variant_cache_control,
            redirect_to=redirect_to,
            metadata=provenance,
        )


def made_from(
    request: VariantRequest, etag: str, focus: FocalPoint | None, rule: Rule | None = None
) -> dict[str, str]:
    """The metadata naming a variant's inputs: the original's ETag, for ``-cover-focus``
    the focal point, under a prefix rule its fingerprint (a purge compares each with now's)."""
    provenance = {SOURCE_ETAG: etag}
    if request.spec.anchor is Anchor.FOCUS:
        provenance[SOURCE_FOCUS] = focus_tag(focus)
    if rule is not None:
        provenance[SOURCE_POLICY] = rule.fingerprint
    return provenance


def check_format(rule: Rule | None, output: str) -> None:
    """A prefix rule's formats, checked once the output's format is known."""
    if rule is not None and rule.formats is not None and output not in rule.formats:
        allowed = ", ".join(sorted(rule.formats))
        raise SizeNotAllowed(
            f"{output} is not allowed for originals under {rule.prefix!r}; allowed: {allowed}"
        )


def _stored_spelling(spec: ResizeSpec, source_format: str, frames: int) -> ResizeSpec | None:
    """The spelling that holds ``spec``'s output when it is not ``spec`` itself (None: it is).

    The original's own format named explicitly is stored without it (``640x.webp``
    of a WebP → ``640x``); an animation asked for as AVIF is its animated WebP
    (resize/negotiate.py says why).  The CDN's ``.avif``/``.webp`` picks, made
    without seeing the original, reach both through a redirect object.
    """
    if spec.output == OUTPUT_FORMATS[AVIF] and frames > 1:
        return concrete(spec, WEBP, source_format)
    if is_own_format(source_format, spec):
        return spec.without_output()
    return None
