"""Purging: delete every stored variant of an original not made from its current version
(its ETag, for focus crops its focal point, and the fingerprint of its prefix's policy).

Variants and their ledger entries go from the variants bucket; their exact
paths are invalidated at the CDN; a delayed recheck through the events queue
catches a variant stored by a miss that read the old original just before it
changed.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

from chalicelib import observe
from chalicelib.aws import aws_errors
from chalicelib.config import DEFAULT_RECHECK_DELAY_SECONDS
from chalicelib.focus import NO_FOCUS, SOURCE_FOCUS
from chalicelib.originals.events import recheck_body, recheck_prefix_body
from chalicelib.policies.document import NO_POLICY, SOURCE_POLICY
from chalicelib.resize.grammar import public_url
from chalicelib.resize.ledger import Ledger, original_prefix
from chalicelib.resize.variants import SOURCE_ETAG
from chalicelib.storage import S3_CALLS, ImageStore

# CloudFront takes up to 3,000 exact paths in flight per distribution; a batch stays well under.
INVALIDATION_BATCH = 1000


class Purger:
    """Deletes every stored variant of an original (and its ledger entry) not made from one ETag.

    A ledger entry whose variant isn't stored yet is a render in flight (a
    miss claims the entry first) unless it is older than ``in_flight_seconds``:
    it is kept, so the recheck that follows finds that variant once stored.
    """

    def __init__(
        self,
        variants: ImageStore,
        cdn: CdnInvalidator | None = None,
        *,
        in_flight_seconds: int = DEFAULT_RECHECK_DELAY_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._variants = variants
        self._cdn = cdn
        self._in_flight_seconds = in_flight_seconds
        self._clock = clock

    def purge(
        self,
        key: str,
        keep_etag: str | None,
        keep_focus: str = NO_FOCUS,
        keep_policy: str = NO_POLICY,
    ) -> list[str]:
        """Delete what isn't from ``keep_etag`` (None: everything), focus crops not from
        ``keep_focus`` (see focus_tag), and what wasn't made under the prefix rule whose
        fingerprint is ``keep_policy``; the variant keys removed."""
        prefix = original_prefix(key)
        listed = self._variants.list_all(prefix)
        if not listed:
            return []
        entries = Ledger.from_names(listed).entries(key)  # variant key → its entry's key
        found = dict(zip(entries, S3_CALLS.map(self._variants.head, entries), strict=True))
        in_flight = {
            entries[variant]
            for variant, info in found.items()
            if info is None and not self._is_old(listed[entries[variant][len(prefix) :]])
        }
        stale = [
            variant
            for variant, info in found.items()
            if info is not None
            and (
                keep_etag is None
                or not _made_from(info.metadata, keep_etag, keep_focus, keep_policy)
            )
        ]
        kept = {entries[variant] for variant, info in found.items() if info is not None}
        kept = (kept - {entries[variant] for variant in stale}) | in_flight
        # Variants first, entries last: a crash in between leaves entries to find next time.
        self._variants.delete_many(stale)
        self._variants.delete_many(prefix + name for name in listed if prefix + name not in kept)
        if stale and self._cdn is not None:
            self._cdn.invalidate(stale)
        observe.add("PurgedObjects", len(stale))
        return stale

    def _is_old(self, written: datetime) -> bool:
        return self._clock() - written.timestamp() > self._in_flight_seconds


def _made_from(metadata: Mapping[str, str], etag: str, focus: str, policy: str) -> bool:
    """Whether a variant's recorded inputs are the original's current ones (and its rule)."""
    return (
        metadata.get(SOURCE_ETAG) == etag
        and metadata.get(SOURCE_FOCUS, focus) == focus
        and metadata.get(SOURCE_POLICY, NO_POLICY) == policy
    )


class CdnInvalidator:
    """Invalidates exact variant paths at CloudFront (no wildcard fits ``/<size>/<key>``)."""

    def __init__(self, client: Any, distribution_id: str) -> None:
        self._client = client
        self._distribution_id = distribution_id

    def invalidate(self, variant_keys: Iterable[str]) -> None:
        paths = sorted({public_url("", key) for key in variant_keys})  # /<quoted key>
        observe.add("PurgedCdnPaths", len(paths))
        for start in range(0, len(paths), INVALIDATION_BATCH):
            batch = paths[start : start + INVALIDATION_BATCH]
            # The same paths give the same reference: a retried event makes no second invalidation.
            reference = hashlib.sha256("\n".join(batch).encode()).hexdigest()[:32]
            with aws_errors("the CDN"):
                self._client.create_invalidation(
                    DistributionId=self._distribution_id,
                    InvalidationBatch={
                        "Paths": {"Quantity": len(batch), "Items": batch},
                        "CallerReference": reference,
                    },
                )


class Rechecker:
    """Asks, through the events queue, for a key's variants to be purged once more, later."""

    def __init__(self, client: Any, queue_url: str, delay_seconds: int) -> None:
        self._client = client
        self._queue_url = queue_url
        self._delay_seconds = delay_seconds

    def schedule(self, bucket: str, key: str) -> None:
        self._send(recheck_body(bucket, key), self._delay_seconds)

    def schedule_prefix(self, bucket: str, prefix: str, delay_seconds: int) -> None:
        """Every original under ``prefix`` purged once more (after a policy change)."""
        self._send(recheck_prefix_body(bucket, prefix), delay_seconds)

    def _send(self, body: str, delay_seconds: int) -> None:
        with aws_errors("the events queue"):
            self._client.send_message(
                QueueUrl=self._queue_url, MessageBody=body, DelaySeconds=delay_seconds
            )
