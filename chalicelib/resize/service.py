"""The resize flow, one direction: parse → check policy → fetch → transform → store → redirect.

Every check that needs no I/O runs first (request.py); the ledger's LIST
and the original's GET go out together (the variant's HEAD joins them only
when the ledger names it), and the original's size is checked from the
GET's headers before its body is read;
the pixel count is checked from the image header before decoding
(imaging); the variant is stored with its ledger entry (variants.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, wait
from dataclasses import dataclass
from typing import TYPE_CHECKING

from chalicelib import observe
from chalicelib.config import Settings
from chalicelib.errors import (
    RedirectLoop,
    SignatureRequired,
    SizeNotAllowed,
    VariantBudgetExhausted,
    VariantTooLarge,
)
from chalicelib.focus import FocalPoint, stored_focus
from chalicelib.policies.store import PolicyStore
from chalicelib.resize.grammar import ResizeSpec, public_url
from chalicelib.resize.ledger import Ledger
from chalicelib.resize.negotiate import AVIF, Traits, candidates, concrete, negotiate
from chalicelib.resize.request import RequestPolicy, VariantRequest, check_fits
from chalicelib.resize.variants import VariantWriter
from chalicelib.storage import S3_CALLS, ImageStore, ObjectInfo, Original

if TYPE_CHECKING:  # imaging imports Pillow: a 4xx must not pay for it
    from chalicelib.imaging import SharedDecode


@dataclass(frozen=True)
class Lookup:
    """What S3 says in the first round trip: the ledger, the original's GET, the variant.

    The original is still a future: when the variant exists, whatever its
    GET found (even no original) does not matter.
    """

    variant: ObjectInfo | None
    original: Future[Original]
    ledger: Ledger


@dataclass(frozen=True)
class Redirect:
    """Where a miss sends the browser, and whether that depended on its ``Accept`` header."""

    url: str
    negotiated: bool = False


class ResizeService:
    """Turns a request for a missing variant into a stored variant and its public URL."""

    def __init__(
        self,
        settings: Settings,
        store: ImageStore,
        originals: ImageStore | None = None,
        clock: Callable[[], float] = time.time,
        policies: PolicyStore | None = None,
    ) -> None:
        self._settings = settings
        self._store = store  # variants and their ledger: the public website bucket
        self._originals = originals or store  # private, or the same bucket
        self._clock = clock
        self.policy = RequestPolicy(settings, clock)
        # The prefix rules, read from the originals bucket (docs/watermarks.md).
        self.policies = policies or PolicyStore(self._originals, settings)
        self._writer = VariantWriter(
            settings, store, self._originals, self.policy.signed, self.policies
        )

    def resize(self, size_text: str, key_segments: list[str], accept: str | None = None) -> str:
        """Create the variant (unless it exists) and return the public URL to redirect to."""
        return self.answer(size_text, key_segments, accept).url

    def answer(
        self, size_text: str, key_segments: list[str], accept: str | None = None
    ) -> Redirect:
        """Where to send the browser; a ``.auto`` size is negotiated from ``accept`` first."""
        request = self.policy.parse([size_text, *key_segments])
        observe.note(key=request.key, size=request.spec.token)
        snapped = self.policy.check(request, self.policies.rule_for(request.key))
        if snapped is not None:
            observe.note(outcome=observe.SNAPPED)
            return Redirect(self.public_url(snapped.variant_key))
        if request.spec.is_auto:
            return Redirect(self._negotiated(request, accept), negotiated=True)
        return Redirect(self._made(request))

    def _made(self, request: VariantRequest) -> str:
        with observe.timed("s3_lookup"):
            found = self._look_up(request)
        if found.variant is not None:
            observe.note(outcome=observe.HIT)
            self._check_not_looping(found.variant)
            return self.public_url(request.variant_key)
        original = found.original.result()
        observe.note(bytes_in=len(original.body))
        made = self._writer.make(
            request,
            original.body,
            original.etag,
            found.ledger,
            focus=stored_focus(original.metadata),
        )
        observe.note(outcome=observe.MISS if made.key == request.variant_key else observe.ALIAS)
        return self.public_url(made.key)

    def prerender(
        self,
        key: str,
        original: bytes,
        etag: str,
        specs: Sequence[ResizeSpec],
        focus: FocalPoint | None = None,
        shared: SharedDecode | None = None,
        before_each: Callable[[], None] | None = None,
    ) -> dict[str, str]:
        """Make ``specs`` of an original already in hand (presets); size token → public URL.

        The same checks and storage as a miss, without the look-ups a miss
        needs: the caller has the original, and one LIST reads its ledger.
        A spec already stored under its own spelling is left as it is (so a
        redelivered upload renders nothing twice); past the budget, the rest
        wait for their first request, which answers as a miss would.  ``shared``: a
        decode of the original the caller keeps using (else one of the presets' own).
        ``before_each`` runs before each spec (the events function's time check).
        """
        from chalicelib.imaging import SharedDecode  # Pillow: there is an original

        ledger = self._writer.read_ledger(key)
        rule = self.policies.rule_for(key)
        urls: dict[str, str] = {}
        shared = shared or SharedDecode()  # a PNG's pixels, say, are decoded once for all
        for spec, token in self._concrete_presets(original, specs):
            if before_each is not None:
                before_each()
            request = self.policy.signed(VariantRequest(spec, key))
            check_fits(request)
            try:
                if self.policy.check(request, rule) is not None:
                    continue  # a prefix's sizes snap it elsewhere: not a preset of this original
                made = self._writer.make(
                    request, original, etag, ledger, keep_stored=True, shared=shared, focus=focus
                )
            except VariantBudgetExhausted:
                break
            except (VariantTooLarge, SizeNotAllowed, SignatureRequired):
                continue  # its first request answers why (a prefix's policy may refuse it)
            ledger = made.recorded_in(ledger, key)
            urls[token] = self.public_url(made.key)
        observe.add("PresetsRendered", len(urls))
        return urls

    def _concrete_presets(
        self, original: bytes, specs: Sequence[ResizeSpec]
    ) -> list[tuple[ResizeSpec, str]]:
        """Each preset, a ``.auto`` one as every format the rule can give this original.

        Paired with the token it is reported under: its own, or for a ``.auto``
        preset ``<auto token>:<format>`` (``640x.auto:avif``).  An animation's
        ``.avif`` is made too: it is what the CDN asks for in browsers that
        take AVIF, and is stored as a redirect to the animated WebP.
        """
        auto = [spec for spec in specs if spec.is_auto]
        traits = self.traits(original, auto[0]) if auto else None
        found: list[tuple[ResizeSpec, str]] = []
        for spec in specs:
            if traits is None or not spec.is_auto:
                found.append((spec, spec.token))
                continue
            names = candidates(traits)
            for name in (AVIF, *names) if traits.animated else names:
                found.append((concrete(spec, name, traits.format), f"{spec.token}:{name}"))
        return found

    def traits(self, original: bytes, spec: ResizeSpec) -> Traits:
        """What the negotiation rule needs to know of an original (every check a render runs)."""
        from chalicelib.imaging import inspect  # Pillow: there is an original

        source = inspect(original, spec.without_output(), self._settings.imaging)
        return Traits(source.format, alpha=source.alpha, animated=source.frames > 1)

    def _negotiated(self, request: VariantRequest, accept: str | None) -> str:
        """The concrete variant this browser gets for a ``.auto`` request, made if missing.

        Reads the original (the rule needs its alpha and frames) and the ledger
        together; an output the ledger already places is taken as made: if it
        is missing after all, its URL is an ordinary miss.
        """
        ledger = S3_CALLS.submit(self._writer.list_ledger, request.key)
        fetched = S3_CALLS.submit(self.fetch_original, request.key)
        wait([ledger, fetched])
        original = fetched.result()
        traits = self.traits(original.body, request.spec)
        spec = concrete(request.spec, negotiate(accept, traits), traits.format)
        target = self.policy.signed(VariantRequest(spec, request.key))
        check_fits(target)
        self.policy.check(target, self.policies.rule_for(request.key))
        ledger_now = Ledger.from_names(ledger.result())
        made = self._writer.make(
            target,
            original.body,
            original.etag,
            ledger_now,
            keep_stored=True,
            focus=stored_focus(original.metadata),
        )
        return self.public_url(made.key)

    def public_url(self, key: str) -> str:
        """The variant's address under PUBLIC_URL: configuration only, never request headers."""
        return public_url(self._settings.public_url, key)

    def fetch_original(self, key: str) -> Original:
        """An original's bytes and ETag, refused when over MAX_SOURCE_BYTES or empty (presets)."""
        return self._originals.get_original(key, self._settings.max_source_bytes)

    def _look_up(self, request: VariantRequest) -> Lookup:
        """The original's ledger and the original itself in one round trip, and the variant.

        The original's GET checks its size from the response headers before
        reading the body (ImageStore.get_original): an oversized original is
        never downloaded.  Every stored object has a ledger entry, written
        before it, so the variant's HEAD is sent only when the LIST names its
        path (or could not list them all), while the GET is still under way:
        concurrent first requests, or a loop (_check_not_looping).  Should the
        variant exist after all, the GET was for nothing; it is bounded by
        MAX_SOURCE_BYTES and rare next to the call every miss saves.
        """
        listing = S3_CALLS.submit(self._writer.list_ledger, request.key)
        original = S3_CALLS.submit(self.fetch_original, request.key)
        variant = None
        wait([listing])
        if listing.exception() is None and self._writer.may_hold(listing.result(), request.path):
            variant = S3_CALLS.submit(self._store.head, request.variant_key)
        # Let every look-up finish before one's failure answers: nothing keeps
        # retrying after the response (on Lambda, into the next invocation).
        wait([call for call in (listing, original, variant) if call is not None])
        ledger = Ledger.from_names(listing.result())
        return Lookup(variant.result() if variant is not None else None, original, ledger)

    def _check_not_looping(self, variant: ObjectInfo) -> None:
        """A variant made a moment ago is a race between first requests; long ago, a loop.

        The website rule only sends a request here when the variant is missing.
        Finding it just after it was written means concurrent first requests;
        finding it long after means something in front (a CDN caching a
        redirect or a 404, a 403 rule) keeps sending browsers here.
        """
        age = self._clock() - variant.last_modified.timestamp()
        if age > self._settings.loop_grace_seconds:
            raise RedirectLoop(
                "this variant exists but requests for it keep arriving here: a CDN or the "
                "bucket's website rule is caching a redirect or a 404/403. Invalidate the "
                "CDN path and check that redirects are not cached (scripts/ops/doctor.py)."
            )
