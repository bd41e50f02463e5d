"""S3 object events as they arrive through SQS, parsed once into typed values.

One SQS message holds one S3 notification (``{"Records": [...]}``), or S3's
``s3:TestEvent`` when notifications are first configured.  Keys arrive
URL-encoded the way HTML forms encode them (a space is ``+``).  Events are
delivered at least once and in any order; the ``sequencer`` orders events of
the same key (a longer or larger hex string is later) and is normalised here
so that plain string comparison orders it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import Enum
from typing import Any
from urllib.parse import unquote_plus

# Wider than any sequencer S3 sends (they are 16–18 hex digits today).
SEQUENCER_WIDTH = 32


class Change(Enum):
    CREATED = "created"  # ObjectCreated:* (Put, Post, Copy, CompleteMultipartUpload)
    REMOVED = "removed"  # ObjectRemoved:* (Delete, DeleteMarkerCreated)
    RECHECK = "recheck"  # ours: purge again later, for misses that were still rendering
    RECHECK_PREFIX = "recheck prefix"  # ours: every original under a prefix (a policy change)


# The bodies of recheck messages; S3 never sends these shapes.
RECHECK = "Recheck"
RECHECK_PREFIX = "RecheckPrefix"


@dataclass(frozen=True)
class ObjectEvent:
    """One change to one original, and the SQS message it came in."""

    change: Change
    bucket: str
    key: str
    sequencer: str  # normalised: compare with < and > for events of the same key
    message_id: str
    etag: str | None = None  # created only, quoted as S3's HEAD gives it
    size: int | None = None  # created only
    time: str = ""  # eventTime, ISO 8601


class MalformedEvent(ValueError):
    """A message that is not an S3 notification; retrying cannot fix it."""


def parse_message(record: dict[str, Any]) -> list[ObjectEvent]:
    """The object events in one SQS record of a Lambda event (none for a test event)."""
    message_id = str(record.get("messageId", ""))
    try:
        body = json.loads(record["body"])
    except (KeyError, TypeError, ValueError) as err:
        raise MalformedEvent(f"message {message_id}: the body is not JSON") from err
    if not isinstance(body, dict):
        raise MalformedEvent(f"message {message_id}: the body is not a JSON object")
    if body.get("Event") == "s3:TestEvent":
        return []
    if RECHECK in body:
        return [_recheck(body[RECHECK], message_id, Change.RECHECK, "key")]
    if RECHECK_PREFIX in body:
        return [_recheck(body[RECHECK_PREFIX], message_id, Change.RECHECK_PREFIX, "prefix")]
    records = body.get("Records")
    if not isinstance(records, list):
        raise MalformedEvent(f"message {message_id}: no Records")
    return [_object_event(item, message_id) for item in records]


def _object_event(item: Any, message_id: str) -> ObjectEvent:
    try:
        name = str(item["eventName"])
        s3 = item["s3"]
        found = s3["object"]
        change = _change(name)
        return ObjectEvent(
            change=change,
            bucket=str(s3["bucket"]["name"]),
            key=unquote_plus(str(found["key"])),
            sequencer=normalise_sequencer(str(found["sequencer"])),
            message_id=message_id,
            etag=_quoted(found.get("eTag")) if change is Change.CREATED else None,
            size=int(found["size"]) if change is Change.CREATED and "size" in found else None,
            time=str(item.get("eventTime", "")),
        )
    except (KeyError, TypeError, ValueError) as err:
        raise MalformedEvent(f"message {message_id}: not an S3 object event ({err!r})") from err


def recheck_body(bucket: str, key: str) -> str:
    """The message that asks for a key's variants to be checked against its original again."""
    return json.dumps({RECHECK: {"bucket": bucket, "key": key}})


def _recheck(item: Any, message_id: str, change: Change, field: str) -> ObjectEvent:
    """A recheck of one key (``field`` "key") or of every original under a prefix ("prefix")."""
    if not isinstance(item, dict) or not all(
        isinstance(item.get(name), str) and item[name] for name in ("bucket", field)
    ):
        raise MalformedEvent(f"message {message_id}: a {change.value} needs a bucket and a {field}")
    return ObjectEvent(change, item["bucket"], item[field], "", message_id)


def recheck_prefix_body(bucket: str, prefix: str) -> str:
    """The message that asks for every original under a prefix to be checked again."""
    return json.dumps({RECHECK_PREFIX: {"bucket": bucket, "prefix": prefix}})


def _change(event_name: str) -> Change:
    if event_name.startswith("ObjectCreated:"):
        return Change.CREATED
    if event_name.startswith("ObjectRemoved:"):
        return Change.REMOVED
    raise ValueError(f"event {event_name!r} is neither ObjectCreated nor ObjectRemoved")


def normalise_sequencer(raw: str) -> str:
    """Upper-case hex, left-padded: S3 says to compare sequencers of a key after padding."""
    text = raw.strip().upper()
    if not text or len(text) > SEQUENCER_WIDTH or any(c not in "0123456789ABCDEF" for c in text):
        raise ValueError(f"sequencer {raw!r} is not a hex string")
    return text.rjust(SEQUENCER_WIDTH, "0")


def _quoted(etag: Any) -> str | None:
    """Events carry the ETag bare; S3's HEAD and GET quote it."""
    if not etag:
        return None
    text = str(etag).strip('"')
    return f'"{text}"'
