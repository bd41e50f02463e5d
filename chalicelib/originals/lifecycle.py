"""What follows when an original changes: purge what went stale, render presets, record, notify.

One S3 event at a time, in small steps that each return early when they have
nothing to do:

* **created** → skip if an equal or newer event of the key was applied, or if
  the object is gone or was replaced since (its own event follows) → purge
  every variant not made from this version → download, read its facts,
  render the presets (the resize path's own code) and the placeholder
  (imaging/placeholder.py, sharing their decode) → store the record with
  the uploader's usage in one transaction → notify.
* **removed** → skip if stale → purge every variant not made from whatever
  is stored now (nothing, usually) → store a tombstone → notify.
* **recheck** (our own delayed message, sent with each of the above) → purge
  once more: a miss that read the old original just before it changed can
  store its variant after the first purge, at most a function timeout later.
* **a key under ``_policy/``** (the policy document or a watermark image) →
  activate the document if valid (chalicelib/policies/store.py) → purge every
  original under each prefix whose rule changed → a delayed prefix recheck.
  Such keys are never originals: no presets, no record.

S3 delivers at least once and in any order.  The record's sequencer makes
each event count once: a redelivered one finds itself applied; a late
"created" finds a newer tombstone; a late "removed" finds a newer upload,
and its purge keeps what the newer upload's ETag made.

A bad original never reaches the dead-letter queue: it is recorded as
``rejected`` once, with a code, and counted in its uploader's usage.  That is
every typed error under 500 (not an image, corrupt, too large, too complex),
any other exception while reading or rendering it (``original_unreadable``:
every S3, DynamoDB and SQS failure is already a typed 503 by then, see
chalicelib/aws.py, so what is left came from the image code working on these
bytes, and would fail the same way on every retry), and an original whose
presets would run past the invocation's time (``original_too_complex``).
Only failures of the service itself (storage down: 5xx) fail the message, so
it comes back and, failing for good, ends in the dead-letter queue.

Time: each step that renders starts only with ``STEP_SECONDS`` left (one
render fits in the API function's timeout by the limits' design, plus the
record and the notification); a message starts only with two steps' worth
left, otherwise it is handed back untouched for the next invocation, so an
original that runs out of time has had at least one step's time of its own.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass, replace
from enum import Enum
from typing import Any

from chalicelib import observe
from chalicelib.config import API_TIMEOUT_SECONDS, Settings
from chalicelib.errors import (
    OriginalChanged,
    OriginalNotFound,
    OriginalTooComplex,
    OriginalUnreadable,
    ServiceError,
    StorageUnavailable,
)
from chalicelib.focus import FOCUS_METADATA, focus_tag, stored_focus
from chalicelib.imaging.facts import describe
from chalicelib.imaging.pipeline import SharedDecode
from chalicelib.imaging.placeholder import placeholder
from chalicelib.originals.events import Change, MalformedEvent, ObjectEvent, parse_message
from chalicelib.originals.metadata import MetadataStore, OriginalRecord, State, tombstone
from chalicelib.originals.notify import Notifier
from chalicelib.originals.purge import Purger, Rechecker
from chalicelib.policies.document import PENDING_KEY, POLICY_ROOT, PolicyDocument
from chalicelib.resize.grammar import variant_url_template
from chalicelib.resize.service import ResizeService
from chalicelib.storage import ImageStore, ObjectInfo
from chalicelib.uploads import owner_of

log = logging.getLogger(__name__)

# A step that renders starts only with this much of the invocation left.
STEP_SECONDS = API_TIMEOUT_SECONDS + 5
# A message starts only with this much left; otherwise it waits for the next invocation.
START_SECONDS = 2 * STEP_SECONDS


class Outcome(Enum):
    APPLIED = "applied"
    ALREADY_APPLIED = "already applied"  # a redelivery
    STALE = "stale"  # a newer event of the key was applied first
    SUPERSEDED = "superseded"  # the object changed again since; that event will do the work
    RECHECKED = "rechecked"  # variants checked against the original once more
    POLICY_ACTIVATED = "policy activated"  # the uploaded document (or a mark) is now in service
    POLICY_REJECTED = "policy rejected"  # invalid: the active document stays as it was


class LostRace(StorageUnavailable):
    """Another event of the same key was applied while this one was handled: retry it."""


class Superseded(Exception):
    """The original changed or went while this event was handled; its own event follows."""


class TimeBudget:
    """What is left of the invocation, from the Lambda context (none given: no limit)."""

    def __init__(self, context: Any = None) -> None:
        self._context = context

    def seconds_left(self) -> float:
        if self._context is None:
            return math.inf
        return float(self._context.get_remaining_time_in_millis()) / 1000

    def check_step(self) -> None:
        """Refuse to start a step that may not finish in time: the original is too costly."""
        left = self.seconds_left()
        if left < STEP_SECONDS:
            raise OriginalTooComplex(
                "this original takes longer to process than the events function may spend on one",
                f"{left:.1f} s left, a step needs {STEP_SECONDS} s",
            )


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
        metadata: MetadataStore,
        purger: Purger,
        notifier: Notifier | None = None,
        rechecker: Rechecker | None = None,
    ) -> None:
        self._settings = settings
        self._originals = originals
        self._service = service
        self._metadata = metadata
        self._purger = purger
        self._notifier = notifier
        self._rechecker = rechecker
        self._policies = service.policies

    def handle_batch(self, records: list[dict[str, Any]], context: Any = None) -> dict[str, Any]:
        """A Lambda SQS batch: every message handled; the failed ones reported for redelivery.

        ``context``: Lambda's, for the time left (see the module's docstring).
        """
        budget = TimeBudget(context)
        failures = []
        for record in records:
            message_id = str(record.get("messageId", ""))
            if budget.seconds_left() < START_SECONDS:
                log.info("message %s left for the next invocation: too little time", message_id)
                failures.append({"itemIdentifier": message_id})
                continue
            try:
                with observe.message(record) as line:
                    for event in parse_message(record):
                        observe.handling(event.change.value, event.key, event.time)
                        line.outcome = self.handle(event, budget).value
            except MalformedEvent:
                # Never succeeds; through the retries it reaches the dead-letter queue, visibly.
                log.exception("malformed message %s", message_id)
                failures.append({"itemIdentifier": message_id})
            except Exception:
                log.exception("message %s failed; it will be redelivered", message_id)
                failures.append({"itemIdentifier": message_id})
        return {"batchItemFailures": failures}

    def handle(self, event: ObjectEvent, budget: TimeBudget | None = None) -> Outcome:
        if event.change is Change.RECHECK:
            return self._recheck(event)
        if event.change is Change.RECHECK_PREFIX:
            self._purge_prefixes([event.key], self._policies.read_active())
            return Outcome.RECHECKED
        if event.key.startswith(POLICY_ROOT):
            return self._policy_changed(event)
        previous = self._metadata.get(event.key)
        if previous is not None and previous.sequencer >= event.sequencer:
            return self._already_seen(previous, event)
        if event.change is Change.CREATED:
            return self._created(event, previous, budget or TimeBudget())
        return self._removed(event, previous)

    def _created(
        self, event: ObjectEvent, previous: OriginalRecord | None, budget: TimeBudget
    ) -> Outcome:
        info = self._originals.head(event.key)
        if info is None or (event.etag is not None and info.etag != event.etag):
            return Outcome.SUPERSEDED
        self._purger.purge(
            event.key,
            keep_etag=info.etag,
            keep_focus=current_focus(info),
            keep_policy=self._policies.read_active().fingerprint_for(event.key),
        )
        try:
            version = Version(info, self._uploader(event.key, info))
            record = self._processed(event, version, budget)
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

    def _purge_against_current(self, key: str, policies: PolicyDocument | None = None) -> None:
        """Keep only what the original stored now made under the policy in service now
        (nothing, when there is no original)."""
        current = self._originals.head(key)
        if current is None:
            self._purger.purge(key, keep_etag=None)
            return
        document = policies if policies is not None else self._policies.read_active()
        self._purger.purge(
            key,
            keep_etag=current.etag,
            keep_focus=current_focus(current),
            keep_policy=document.fingerprint_for(key),
        )

    def _policy_changed(self, event: ObjectEvent) -> Outcome:
        """The policy document or a watermark image changed: activate, purge what it changes.

        An invalid document is reported (log, notification) and never replaces the
        active one.  The originals under every prefix whose rule changed lose the
        variants made under another rule, now and once more after the last cached
        copy of the old document has expired (Settings.policy_recheck_delay).  The
        active document's own events activate too: the write that made it changes
        nothing, and a copy deleted or altered by hand is restored.
        """
        activation = self._policies.activate()
        if activation.rejected:
            log.warning("policy document rejected: %s", "; ".join(activation.errors))
            self._notify_policy(Outcome.POLICY_REJECTED, errors=list(activation.errors))
            return Outcome.POLICY_REJECTED
        if self._rechecker is not None:
            for prefix in activation.changed:
                self._rechecker.schedule_prefix(
                    event.bucket, prefix, self._settings.policy_recheck_delay
                )
        self._purge_prefixes(activation.changed, activation.after)
        log.info("policy document active; changed prefixes: %s", list(activation.changed))
        self._notify_policy(Outcome.POLICY_ACTIVATED, changed_prefixes=list(activation.changed))
        return Outcome.POLICY_ACTIVATED

    def _purge_prefixes(self, prefixes: Iterable[str], policies: PolicyDocument) -> None:
        """Every original under ``prefixes``, purged against itself and ``policies``."""
        for prefix in prefixes:
            for name in self._originals.list_all(prefix):
                self._purge_against_current(prefix + name, policies)

    def _notify_policy(self, outcome: Outcome, **details: Any) -> None:
        if self._notifier is not None:
            state = outcome.value.replace(" ", "_")
            self._notifier.publish({"key": PENDING_KEY, "state": state, **details})

    def _processed(
        self, event: ObjectEvent, version: Version, budget: TimeBudget
    ) -> OriginalRecord:
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
            focus = stored_focus(original.metadata)
            shared = SharedDecode()  # the presets' decode, and the placeholder's
            presets = self._service.prerender(
                event.key,
                original.body,
                original.etag,
                self._settings.preset_sizes,
                focus,
                shared,
                before_each=budget.check_step,
            )
            marks = placeholder(original.body, self._settings.imaging, shared)
        except Superseded:
            raise
        except (OriginalNotFound, OriginalChanged) as err:
            raise Superseded(event.key) from err
        except ServiceError as err:
            if err.status >= 500:
                raise
            log.info("rejected %s: %s %s", event.key, err.code, err)
            return replace(record, state=State.REJECTED, error_code=err.code)
        except Exception:
            log.exception("rejected %s: %s", event.key, OriginalUnreadable.code)
            return replace(record, state=State.REJECTED, error_code=OriginalUnreadable.code)
        known = facts.to_dict() | marks.to_dict()
        if focus is not None:
            known[FOCUS_METADATA] = focus.text
        return replace(record, facts=known, presets=presets)

    def _store(
        self, record: OriginalRecord, previous: OriginalRecord | None, event: ObjectEvent
    ) -> Outcome:
        if self._rechecker is not None:
            # Before the record: if this fails, the event comes back and schedules again.
            self._rechecker.schedule(event.bucket, event.key)
        if self._notifier is None:
            record = replace(record, notified=True)
        if not self._metadata.apply(record, previous):
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
        self._metadata.mark_notified(record)

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
        return variant_url_template(self._settings.public_url, key)

    def _uploader(self, key: str, info: ObjectInfo) -> str | None:
        """Who stored it: the upload form's pinned metadata, else the upload key's folder."""
        return owner_of(self._settings.upload_prefix, key, info.metadata)


def current_focus(info: ObjectInfo) -> str:
    """The focal point the original stored now has, as its focus crops record it."""
    return focus_tag(stored_focus(info.metadata))
