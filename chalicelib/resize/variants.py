"""Storing a variant: claim it in the ledger, keep within the budget, render, write once.

A request's output is either rendered and stored under its own URL, or,
when another spelling already made the same pixels, stored as a website
redirect to them.  Every object written here carries the ETag of the
original it was made from (``x-amz-meta-source-etag``), a ``-cover-focus``
one also the focal point (``x-amz-meta-source-focus``), and every one is
named by a ledger entry, so a purge finds them all.
"""

from __future__ import annotations

from contextlib import suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING

from chalicelib.config import Settings
from chalicelib.errors import StorageUnavailable, VariantBudgetExhausted
from chalicelib.focus import SOURCE_FOCUS, FocalPoint, focus_tag
from chalicelib.resize.grammar import Anchor, public_url, variant_key
from chalicelib.resize.ledger import Ledger, alias_entry, original_prefix, output_entry
from chalicelib.resize.request import VariantRequest
from chalicelib.storage import ImageStore, started

if TYPE_CHECKING:  # imaging imports Pillow: a 4xx must not pay for it
    from chalicelib.imaging import SharedDecode

# The x-amz-meta- name on every variant and redirect object: the original's ETag it was made from.
SOURCE_ETAG = "source-etag"
# Entries of the ledger are empty objects; nothing should cache them.
_LEDGER_ENTRY = {"content_type": "application/octet-stream", "cache_control": "no-store"}
# One LIST page: all a ledger holds within the budget, or the first page without one.
_LEDGER_PAGE = 1000


@dataclass(frozen=True)
class Made:
    """Where a request's pixels are stored, and which output they are."""

    key: str
    canonical: str


class VariantWriter:
    """Writes variants and redirect objects into the variants bucket, with their ledger."""

    def __init__(self, settings: Settings, store: ImageStore) -> None:
        self._settings = settings
        self._store = store

    def read_ledger(self, key: str) -> Ledger:
        """The ledger of ``key``, in one LIST request."""
        return Ledger.from_names(self.list_ledger(key))

    def list_ledger(self, key: str) -> list[str]:
        """The ledger's entry names of ``key``: both kinds within the budget, in one LIST."""
        budget = self._settings.max_variants_per_original
        return self._store.list_names(
            original_prefix(key), 2 * (budget + 1) if budget else _LEDGER_PAGE
        )

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
        provenance = made_from(request, etag, focus)
        from chalicelib.imaging import canonical_spec, inspect  # Pillow: only once there is work

        source = inspect(original, request.spec, self._settings.imaging)
        canonical = canonical_spec(source.size, request.spec).token
        stored_path = ledger.outputs.get(canonical)
        if stored_path is not None and (stored_path != request.path or keep_stored):
            target_key = variant_key(stored_path, request.key)
            if stored_path != request.path:
                # Another spelling already made these pixels: point at them, render nothing.
                self._store_redirect(request, target_key, ledger, provenance)
            return Made(target_key, canonical)
        self._check_budget(canonical, ledger)
        self._render_and_store(request, canonical, original, provenance, shared, focus)
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
        provenance: dict[str, str],
        shared: SharedDecode | None = None,
        focus: FocalPoint | None = None,
    ) -> None:
        """Claim the output in the ledger first, so concurrent requests count it, then make it.

        The variant records the ETag of the original it was made from: a purge
        after an overwrite keeps exactly the variants made from the new one.
        """
        entry = output_entry(request.key, canonical, request.path)
        # The claim's PUT is under way before rendering starts and has landed
        # before the variant is stored; its round trip overlaps the render.
        claim = started(self._store.put_new, entry, b"", **_LEDGER_ENTRY)
        try:
            from chalicelib.imaging import render

            position = focus.position if focus is not None else None
            rendered = render(original, request.spec, self._settings.imaging, shared, position)
            claim.result()
            self._store.put_new(
                request.variant_key,
                rendered.body,
                content_type=rendered.content_type,
                cache_control=self._settings.variant_cache_control,
                metadata=provenance,
            )
        except BaseException:
            # The budget must not keep a slot for pixels that were never
            # stored; if S3 is down too, the slot stays (a lost slot, not data).
            with suppress(StorageUnavailable):
                if claim.result():
                    self._store.delete(entry)
            raise

    def _store_redirect(
        self, request: VariantRequest, target_key: str, ledger: Ledger, provenance: dict[str, str]
    ) -> None:
        """Store ``request``'s URL as a website redirect to ``target_key``, within the budget.

        Redirect objects are counted apart from outputs, with the same cap:
        past it, a new spelling keeps being answered here and nothing is stored.
        """
        budget = self._settings.max_variants_per_original
        if request.path not in ledger.aliases:
            if budget and len(ledger.aliases) >= budget:
                return
            self._store.put_new(alias_entry(request.key, request.path), b"", **_LEDGER_ENTRY)
        self._store.put_new(
            request.variant_key,
            b"",
            content_type="application/octet-stream",
            cache_control=self._settings.variant_cache_control,
            redirect_to=public_url(self._settings.public_url, target_key),
            metadata=provenance,
        )


def made_from(request: VariantRequest, etag: str, focus: FocalPoint | None) -> dict[str, str]:
    """The metadata naming a variant's inputs: the original's ETag, and for ``-cover-focus``
    the focal point (a purge compares both with the original's)."""
    provenance = {SOURCE_ETAG: etag}
    if request.spec.anchor is Anchor.FOCUS:
        provenance[SOURCE_FOCUS] = focus_tag(focus)
    return provenance
