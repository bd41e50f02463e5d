"""The resize flow, one direction: parse → check policy → fetch → transform → store → redirect.

Every check that needs no I/O runs first; the variant's HEAD, the ledger's
LIST and the original's GET go out together, and the original's size is
checked from the GET's headers before its body is read; the pixel count is
checked from the image header before decoding.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote

from chalicelib.config import Settings
from chalicelib.errors import (
    InvalidKey,
    InvalidSize,
    NonCanonicalSize,
    NotAVariantUrl,
    RedirectLoop,
    SizeNotAllowed,
    StorageUnavailable,
    VariantBudgetExhausted,
    VariantOfVariant,
)
from chalicelib.grammar import (
    MAX_KEY_BYTES,
    ResizeSpec,
    decode_segment,
    parse_key,
    parse_size,
)
from chalicelib.ledger import (
    LEDGER_ROOT,
    Ledger,
    alias_entry,
    longest_entry_bytes,
    original_prefix,
    output_entry,
)
from chalicelib.signing import require_signature_segment, sign, verify
from chalicelib.storage import ImageStore, ObjectInfo, Original

if TYPE_CHECKING:  # imaging imports Pillow: a 4xx must not pay for it
    from chalicelib.imaging import SharedDecode

# A miss's look-ups (the variant's HEAD, the ledger's LIST, the original's
# GET) are independent; made concurrently they cost one S3 round trip instead
# of three, and the ledger claim's PUT overlaps the render.  Threads start on
# first use and are kept (boto3 clients are thread-safe).
_LOOKUPS = ThreadPoolExecutor(max_workers=8, thread_name_prefix="s3-lookup")


# The x-amz-meta- name on every variant and redirect object: the original's ETag it was made from.
SOURCE_ETAG = "source-etag"

T = TypeVar("T")

# Entries of the ledger are empty objects; nothing should cache them.
_LEDGER_ENTRY = {"content_type": "application/octet-stream", "cache_control": "no-store"}
# One LIST page: all a ledger holds within the budget, or the first page without one.
_LEDGER_PAGE = 1000


@dataclass(frozen=True)
class Lookup:
    """What S3 says in the first round trip: the variant, the ledger, the original's GET.

    The original is still a future: when the variant exists, whatever its
    GET found (even no original) does not matter.
    """

    variant: ObjectInfo | None
    original: Future[Original]
    ledger: Ledger


@dataclass(frozen=True)
class Made:
    """Where a request's pixels are stored, and which output they are."""

    key: str
    canonical: str


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
        return f"{self.path}/{self.key}"


class ResizeService:
    """Turns a request for a missing variant into a stored variant and its public URL."""

    def __init__(
        self,
        settings: Settings,
        store: ImageStore,
        originals: ImageStore | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._settings = settings
        self._store = store  # variants and their ledger: the public website bucket
        self._originals = originals or store  # private, or the same bucket
        self._clock = clock

    def resize(self, size_text: str, key_segments: list[str]) -> str:
        """Create the variant (unless it exists) and return the public URL to redirect to."""
        request = self.parse([size_text, *key_segments])
        snapped = self.check_policy(request)
        if snapped is not None:
            return self.public_url(snapped.variant_key)
        found = self._look_up(request)
        if found.variant is not None:
            self._check_not_looping(found.variant)
            return self.public_url(request.variant_key)
        original = found.original.result()
        made = self._make(request, original.body, original.etag, found.ledger)
        return self.public_url(made.key)

    def prerender(
        self, key: str, original: bytes, etag: str, specs: Sequence[ResizeSpec]
    ) -> dict[str, str]:
        """Make ``specs`` of an original already in hand (presets); size token → public URL.

        The same checks and storage as a miss, without the look-ups a miss
        needs: the caller has the original, and one LIST reads its ledger.
        A spec already stored under its own spelling is left as it is (so a
        redelivered upload renders nothing twice); past the budget, the rest
        wait for their first request, which answers as a miss would.
        """
        from chalicelib.imaging import SharedDecode  # Pillow: there is an original

        ledger = self._read_ledger(key)
        urls: dict[str, str] = {}
        shared = SharedDecode()  # a PNG's pixels, say, are decoded once for every preset
        for spec in specs:
            request = self._signed(VariantRequest(spec, key))
            self._check_fits(request)
            self.check_policy(request)
            try:
                made = self._make(request, original, etag, ledger, keep_stored=True, shared=shared)
            except VariantBudgetExhausted:
                break
            ledger = ledger.with_output(made.canonical, made.key.removesuffix(f"/{key}"))
            urls[spec.token] = self.public_url(made.key)
        return urls

    def parse(self, segments: list[str]) -> VariantRequest:
        """Path segments (still percent-encoded) → a request; the signature leads when signing."""
        signature = None
        if self._settings.signing_keys:
            signature, *segments = segments
            require_signature_segment(signature)
        if len(segments) < 2:
            raise NotAVariantUrl("URLs look like /<size>/<key>, e.g. /300x200/photos/cat.jpg")
        size_text, *key_segments = segments
        try:
            size = decode_segment(size_text)
        except UnicodeDecodeError:
            size = size_text  # not UTF-8: parse_size refuses it as it stands
        spec = parse_size(size, self._settings.max_dimension)
        request = VariantRequest(spec, parse_key(key_segments), signature)
        self._check_fits(request)
        return request

    @staticmethod
    def _check_fits(request: VariantRequest) -> None:
        """The variant's key and its longest ledger entry must fit S3's key length."""
        longest = max(
            len(request.variant_key.encode()), longest_entry_bytes(request.key, request.path)
        )
        if longest > MAX_KEY_BYTES:
            raise InvalidKey(
                f"the key is too long to store a variant of it within {MAX_KEY_BYTES} bytes"
            )

    def check_policy(self, request: VariantRequest) -> VariantRequest | None:
        """Signature, key and size rules, before any I/O; a snapped request to redirect to."""
        if request.signature is not None:
            verify(
                request.signature,
                request.spec.token,
                request.key,
                self._settings.signing_keys,
                self._clock(),
            )
        first_segment = request.key.split("/", 1)[0]
        if _is_size_token(first_segment, self._settings.max_dimension):
            raise VariantOfVariant(
                f"{request.key!r} is itself a variant; ask for a size of the original instead"
            )
        if request.key.startswith(LEDGER_ROOT):
            raise InvalidKey(f"keys under {LEDGER_ROOT!r} are reserved")
        allowed = self._settings.allowed_sizes
        if allowed is None or request.spec in allowed:
            return None
        nearest = (
            nearest_allowed(request.spec, allowed) if self._settings.snap_to_allowed_sizes else None
        )
        if nearest is None:
            tokens = ", ".join(sorted(spec.token for spec in allowed))
            raise SizeNotAllowed(f"size {request.spec.token!r} is not allowed; allowed: {tokens}")
        return self._signed(VariantRequest(nearest, request.key))

    def public_url(self, key: str) -> str:
        """The variant's address under PUBLIC_URL: configuration only, never request headers."""
        return f"{self._settings.public_url}/{quote(key, safe='/')}"

    def _signed(self, request: VariantRequest) -> VariantRequest:
        if not self._settings.signing_keys:
            return request
        signature = sign(self._settings.signing_keys[0], request.spec.token, request.key)
        return VariantRequest(request.spec, request.key, signature)

    def _look_up(self, request: VariantRequest) -> Lookup:
        """The variant, the original's ledger and the original itself, in one round trip.

        The original's GET checks its size from the response headers before
        reading the body (ImageStore.get_original): an oversized original is
        never downloaded.  Should the variant exist after all (concurrent
        first requests), that download was for nothing; it is bounded by
        MAX_SOURCE_BYTES and rare next to the round trip every miss saves.
        """
        variant = _LOOKUPS.submit(self._store.head, request.variant_key)
        ledger = _LOOKUPS.submit(
            self._store.list_names, original_prefix(request.key), self._listing()
        )
        original = _LOOKUPS.submit(
            self._originals.get_original, request.key, self._settings.max_source_bytes
        )
        # Let every look-up finish before one's failure answers: nothing keeps
        # retrying after the response (on Lambda, into the next invocation).
        wait([variant, ledger, original])
        return Lookup(variant.result(), original, Ledger.from_names(ledger.result()))

    def _read_ledger(self, key: str) -> Ledger:
        return Ledger.from_names(self._store.list_names(original_prefix(key), self._listing()))

    def _listing(self) -> int:
        """How many ledger names one LIST asks for: both kinds within the budget."""
        budget = self._settings.max_variants_per_original
        return 2 * (budget + 1) if budget else _LEDGER_PAGE

    def _make(
        self,
        request: VariantRequest,
        original: bytes,
        etag: str,
        ledger: Ledger,
        *,
        keep_stored: bool = False,
        shared: SharedDecode | None = None,
    ) -> Made:
        """Store the request's variant, or a redirect to the same pixels stored by another spelling.

        ``keep_stored``: an output the ledger already places at this spelling
        is taken as made (a miss renders it again: its first render may have
        failed after claiming the entry).
        """
        from chalicelib.imaging import canonical_spec, inspect  # Pillow: only once there is work

        source = inspect(original, request.spec, self._settings.imaging)
        canonical = canonical_spec(source.size, request.spec).token
        stored_path = ledger.outputs.get(canonical)
        if stored_path is not None and (stored_path != request.path or keep_stored):
            target_key = f"{stored_path}/{request.key}"
            if stored_path != request.path:
                # Another spelling already made these pixels: point at them, render nothing.
                self._store_redirect(request, target_key, ledger, etag)
            return Made(target_key, canonical)
        self._check_budget(canonical, ledger)
        self._render_and_store(request, canonical, original, etag, shared)
        return Made(request.variant_key, canonical)

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

    def fetch_original(self, key: str) -> Original:
        """An original's bytes and ETag, refused when over MAX_SOURCE_BYTES or empty (presets)."""
        return self._originals.get_original(key, self._settings.max_source_bytes)

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
        etag: str,
        shared: SharedDecode | None = None,
    ) -> None:
        """Claim the output in the ledger first, so concurrent requests count it, then make it.

        The variant records the ETag of the original it was made from: a purge
        after an overwrite keeps exactly the variants made from the new one.
        """
        entry = output_entry(request.key, canonical, request.path)
        # The claim's PUT is under way before rendering starts and has landed
        # before the variant is stored; its round trip overlaps the render.
        claim = _started(self._store.put_new, entry, b"", **_LEDGER_ENTRY)
        try:
            from chalicelib.imaging import render

            rendered = render(original, request.spec, self._settings.imaging, shared)
            claim.result()
            self._store.put_new(
                request.variant_key,
                rendered.body,
                content_type=rendered.content_type,
                cache_control=self._settings.variant_cache_control,
                metadata={SOURCE_ETAG: etag},
            )
        except BaseException:
            # The budget must not keep a slot for pixels that were never
            # stored; if S3 is down too, the slot stays (a lost slot, not data).
            with suppress(StorageUnavailable):
                if claim.result():
                    self._store.delete(entry)
            raise

    def _store_redirect(
        self, request: VariantRequest, target_key: str, ledger: Ledger, etag: str
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
            redirect_to=self.public_url(target_key),
            metadata={SOURCE_ETAG: etag},
        )


def _started(call: Callable[..., T], *args: Any, **kwargs: Any) -> Future[T]:
    """``call`` running on the look-up threads, returned once it has begun (not finished)."""
    begun = threading.Event()

    def run() -> T:
        begun.set()
        return call(*args, **kwargs)

    future = _LOOKUPS.submit(run)
    begun.wait()
    return future


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
