"""What follows when an original changes: purge what went stale, render presets, record, notify.

One S3 event at a time, in small steps that each return early when they have
nothing to do:

* **created** → skip if an equal or newer event of the key was applied, or if
  the object is gone or was replaced since (its own event follows) → purge
  every variant not made from this version → download, read its facts,
  render the presets (the resize path's own code) → store the record with
  the uploader's usage in one transaction → notify.
* **removed** → skip if stale → purge every variant not made from whatever
  is stored now (nothing, usually) → store a tombstone → notify.
* **recheck** (our own delayed message, sent with each of the above) → purge
  once more: a miss that read the old original just before it changed can
  store its variant after the first purge, at most a function timeout later.

S3 delivers at least once and in any order.  The record's sequencer makes
each event count once: a redelivered one finds itself applied; a late
"created" finds a newer tombstone; a late "removed" finds a newer upload,
and its purge keeps what the newer upload's ETag made.  A non-image, or an
original no variant can be made of, is recorded as ``rejected`` with the
error's code and never retried; anything else (storage down) raises, so
the message comes back and, failing for good, ends in the dead-letter queue.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime
from enum import Enum
from typing import Any
from urllib.parse import quote

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.catalog import Catalog, OriginalRecord, State, tombstone
from chalicelib.config import DEFAULT_RECHECK_DELAY_SECONDS, Settings
from chalicelib.errors import OriginalNotFound, ServiceError, StorageUnavailable
from chalicelib.events import Change, MalformedEvent, ObjectEvent, parse_message, recheck_body
from chalicelib.facts import describe
from chalicelib.ledger import Ledger, original_prefix
from chalicelib.service import SOURCE_ETAG, ResizeService
from chalicelib.storage import ImageStore, ObjectInfo

log = logging.getLogger(__name__)

# CloudFront takes up to 3,000 exact paths in flight per distribution; a batch stays well under.
INVALIDATION_BATCH = 1000
_UPLOADER = re.compile(r"[A-Za-z0-9_-]{1,128}")
_HEADS = ThreadPoolExecutor(max_workers=8, thread_name_prefix="purge-head")


class Outcome(Enum):
    APPLIED = "applied"
    ALREADY_APPLIED = "already applied"  # a redelivery
    STALE = "stale"  # a newer event of the key was applied first
    SUPERSEDED = "superseded"  # the object changed again since; that event will do the work
    RECHECKED = "rechecked"  # variants checked against the original once more


class LostRace(StorageUnavailable):
    """Another event of the same key was applied while this one was handled: retry it."""


class Superseded(Exception):
    """The original changed or went while this event was handled; its own event follows."""


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

    def purge(self, key: str, keep_etag: str | None) -> list[str]:
        """Delete what isn't from ``keep_etag`` (None: everything); the variant keys removed."""
        prefix = original_prefix(key)
        listed = self._variants.list_all(prefix)
        if not listed:
            return []
        entries = Ledger.from_names(listed).entries(key)  # variant key → its entry's key
        found = dict(zip(entries, _HEADS.map(self._variants.head, entries), strict=True))
        in_flight = {
            entries[variant]
            for variant, info in found.items()
            if info is None and not self._is_old(listed[entries[variant][len(prefix) :]])
        }
        stale = [
            variant
            for variant, info in found.items()
            if info is not None
            and (keep_etag is None or info.metadata.get(SOURCE_ETAG) != keep_etag)
        ]
        kept = {entries[variant] for variant, info in found.items() if info is not None}
        kept = (kept - {entries[variant] for variant in stale}) | in_flight
        # Variants first, entries last: a crash in between leaves entries to find next time.
        self._variants.delete_many(stale)
        self._variants.delete_many(prefix + name for name in listed if prefix + name not in kept)
        if stale and self._cdn is not None:
            self._cdn.invalidate(stale)
        return stale

    def _is_old(self, written: datetime) -> bool:
        return self._clock() - written.timestamp() > self._in_flight_seconds


class CdnInvalidator:
    """Invalidates exact variant paths at CloudFront (no wildcard fits ``/<size>/<key>``)."""

    def __init__(self, client: Any, distribution_id: str) -> None:
        self._client = client
        self._distribution_id = distribution_id

    def invalidate(self, variant_keys: Iterable[str]) -> None:
        paths = sorted({f"/{quote(key, safe='/')}" for key in variant_keys})
        for start in range(0, len(paths), INVALIDATION_BATCH):
            batch = paths[start : start + INVALIDATION_BATCH]
            # The same paths give the same reference: a retried event makes no second invalidation.
            reference = hashlib.sha256("\n".join(batch).encode()).hexdigest()[:32]
            try:
                self._client.create_invalidation(
                    DistributionId=self._distribution_id,
                    InvalidationBatch={
                        "Paths": {"Quantity": len(batch), "Items": batch},
                        "CallerReference": reference,
                    },
                )
            except (ClientError, BotoCoreError) as err:
                raise StorageUnavailable(
                    "the CDN did not take the invalidation", repr(err)
                ) from err


class Rechecker:
    """Asks, through the events queue, for a key's variants to be purged once more, later."""

    def __init__(self, client: Any, queue_url: str, delay_seconds: int) -> None:
        self._client = client
        self._queue_url = queue_url
        self._delay_seconds = delay_seconds

    def schedule(self, bucket: str, key: str) -> None:
        try:
            self._client.send_message(
                QueueUrl=self._queue_url,
                MessageBody=recheck_body(bucket, key),
                DelaySeconds=self._delay_seconds,
            )
        except (ClientError, BotoCoreError) as err:
            raise StorageUnavailable("the events queue is unavailable", repr(err)) from err


class Notifier:
    """Publishes one message per processed original to an SNS topic."""

    def __init__(self, client: Any, topic_arn: str) -> None:
        self._client = client
        self._topic_arn = topic_arn

    def publish(self, message: dict[str, Any]) -> None:
        try:
            self._client.publish(
                TopicArn=self._topic_arn,
                Message=json.dumps(message),
                MessageAttributes={
                    "state": {"DataType": "String", "StringValue": message["state"]}
                },
            )
        except (ClientError, BotoCoreError) as err:
            raise StorageUnavailable("the notification topic is unavailable", repr(err)) from err


@dataclass(frozen=True)
class Version:
    """The stored original an event is about, as S3 has it now."""

    info: ObjectInfo
    uploader: str | None


class OriginalLifecycle:
    """Applies S3 events of originals to variants, the metadata store and subscribers."""

    def __init__(
        self,
        settings: Settings,
        originals: ImageStore,
        service: ResizeService,
        catalog: Catalog,
        purger: Purger,
        notifier: Notifier | None = None,
        rechecker: Rechecker | None = None,
    ) -> None:
        self._settings = settings
        self._originals = originals
        self._service = service
        self._catalog = catalog
        self._purger = purger
        self._notifier = notifier
        self._rechecker = rechecker

    def handle_batch(self, records: list[dict[str, Any]]) -> dict[str, Any]:
        """A Lambda SQS batch: every message handled; the failed ones reported for redelivery."""
        failures = []
        for record in records:
            message_id = str(record.get("messageId", ""))
            try:
                for event in parse_message(record):
                    outcome = self.handle(event)
                    log.info("%s %s %s: %s", event.change.value, event.bucket, event.key, outcome)
            except MalformedEvent:
                # Never succeeds; through the retries it reaches the dead-letter queue, visibly.
                log.exception("malformed message %s", message_id)
                failures.append({"itemIdentifier": message_id})
            except Exception:
                log.exception("message %s failed; it will be redelivered", message_id)
                failures.append({"itemIdentifier": message_id})
        return {"batchItemFailures": failures}

    def handle(self, event: ObjectEvent) -> Outcome:
        if event.change is Change.RECHECK:
            return self._recheck(event)
        previous = self._catalog.get(event.key)
        if previous is not None and previous.sequencer >= event.sequencer:
            return self._already_seen(previous, event)
        if event.change is Change.CREATED:
            return self._created(event, previous)
        return self._removed(event, previous)

    def _created(self, event: ObjectEvent, previous: OriginalRecord | None) -> Outcome:
        info = self._originals.head(event.key)
        if info is None or (event.etag is not None and info.etag != event.etag):
            return Outcome.SUPERSEDED
        self._purger.purge(event.key, keep_etag=info.etag)
        try:
            record = self._processed(event, Version(info, self._uploader(event.key, info)))
        except Superseded:
            return Outcome.SUPERSEDED
        return self._store(record, previous, event)

    def _removed(self, event: ObjectEvent, previous: OriginalRecord | None) -> Outcome:
        self._purge_against_current(event.key)  # a newer upload's variants must stay
        return self._store(tombstone(previous, event.key, event.sequencer), previous, event)

    def _recheck(self, event: ObjectEvent) -> Outcome:
        """Purge what isn't made from the original stored now; nothing else changes."""
        self._purge_against_current(event.key)
        return Outcome.RECHECKED

    def _purge_against_current(self, key: str) -> None:
        """Keep only what the original stored now made (nothing, when there is none)."""
        current = self._originals.head(key)
        self._purger.purge(key, keep_etag=current.etag if current else None)

    def _processed(self, event: ObjectEvent, version: Version) -> OriginalRecord:
        """Ready with its facts and presets, or rejected with the reason a miss would give."""
        record = OriginalRecord(
            key=event.key,
            state=State.READY,
            sequencer=event.sequencer,
            etag=version.info.etag,
            bytes=version.info.size,
            uploader=version.uploader,
            created_at=event.time or version.info.last_modified.isoformat(),
        )
        try:
            original = self._service.fetch_original(event.key)
            if original.etag != version.info.etag:
                raise Superseded(event.key)
            facts = describe(
                original.body, self._settings.imaging, with_gps=self._settings.keep_gps_metadata
            )
            presets = self._service.prerender(
                event.key, original.body, original.etag, self._settings.preset_sizes
            )
        except OriginalNotFound as err:
            raise Superseded(event.key) from err
        except ServiceError as err:
            if err.status >= 500:
                raise
            log.info("rejected %s: %s %s", event.key, err.code, err)
            return replace(record, state=State.REJECTED, error_code=err.code)
        return replace(record, facts=facts.to_dict(), presets=presets)

    def _store(
        self, record: OriginalRecord, previous: OriginalRecord | None, event: ObjectEvent
    ) -> Outcome:
        if self._rechecker is not None:
            # Before the record: if this fails, the event comes back and schedules again.
            self._rechecker.schedule(event.bucket, event.key)
        if self._notifier is None:
            record = replace(record, notified=True)
        if not self._catalog.apply(record, previous):
            raise LostRace("another event of this original was applied meanwhile", record.key)
        self._notify(record)
        return Outcome.APPLIED

    def _already_seen(self, previous: OriginalRecord, event: ObjectEvent) -> Outcome:
        if previous.sequencer > event.sequencer:
            return Outcome.STALE
        self._notify(previous)  # its first delivery may have failed after storing the record
        return Outcome.ALREADY_APPLIED

    def _notify(self, record: OriginalRecord) -> None:
        if self._notifier is None or record.notified:
            return
        self._notifier.publish(self.message(record))
        self._catalog.mark_notified(record)

    def message(self, record: OriginalRecord) -> dict[str, Any]:
        """What subscribers get: the key, its state, and where its variants are."""
        message: dict[str, Any] = {
            "key": record.key,
            "state": record.state.value,
            "etag": record.etag,
            "sequencer": record.sequencer,
            "variant_url": self.variant_url(record.key),
            "presets": dict(record.presets),
        }
        if record.uploader:
            message["uploader"] = record.uploader
        if record.error_code:
            message["error_code"] = record.error_code
        return message

    def variant_url(self, key: str) -> str:
        """The public URL of any size of ``key``, with a literal ``{size}`` to fill in."""
        return f"{self._settings.public_url}/{{size}}/{quote(key, safe='/')}"

    def _uploader(self, key: str, info: ObjectInfo) -> str | None:
        """Who stored it: the upload form's pinned metadata, else the upload key's folder."""
        named = info.metadata.get("uploader")
        prefix, _, rest = key.partition("/")
        if not named and prefix == self._settings.upload_prefix:
            named = rest.partition("/")[0]
        return named if named and _UPLOADER.fullmatch(named) else None
