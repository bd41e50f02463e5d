"""The metadata store: one record per original and a usage total per uploader, in DynamoDB.

One table (``METADATA_TABLE``), keys ``pk``/``sk``:

* ``original#<key>`` / ``meta``: the original's record.  A deleted original
  keeps a tombstone (state ``deleted``, its sequencer) so a late "created"
  event can't bring it back.  Live records carry ``uploader`` and
  ``listed_at``, the keys of the sparse index ``by_uploader`` that lists a
  user's originals newest first; tombstones drop both.
* ``usage#<uploader>`` / ``usage``: bytes and originals stored, the seeds'
  storage accounting.

Every change is one transaction: the record, conditional on the sequencer
it replaces (so a redelivered or stale event changes nothing), and the
uploader's usage delta.  Usage is therefore exact under redelivery,
reordering, overwrites and deletes.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

from chalicelib.aws import aws_errors
from chalicelib.errors import InvalidUploadRequest, StorageUnavailable
from chalicelib.focus import FOCUS_METADATA
from chalicelib.uploads import MAX_PAGE

BY_UPLOADER = "by_uploader"
# The table as CreateTable takes it: the local stack and the tests create it from
# this, and a test checks that infra/resources.json declares the same.
TABLE_SCHEMA: dict[str, Any] = {
    "KeySchema": [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ],
    "AttributeDefinitions": [
        {"AttributeName": name, "AttributeType": "S"}
        for name in ("pk", "sk", "uploader", "listed_at")
    ],
    "GlobalSecondaryIndexes": [
        {
            "IndexName": "by_uploader",
            "KeySchema": [
                {"AttributeName": "uploader", "KeyType": "HASH"},
                {"AttributeName": "listed_at", "KeyType": "RANGE"},
            ],
            "Projection": {"ProjectionType": "ALL"},
        }
    ],
    "BillingMode": "PAY_PER_REQUEST",
}
META, USAGE = "meta", "usage"
_METADATA = "the metadata store"
# The facts `GET /meta` shows anyone (ImageFacts' names, the placeholders a page
# paints while an image loads, imaging/placeholder.py, and the focal point a page may
# place an image by); the rest (camera, time taken, GPS) is the uploader's.
PUBLIC_FACTS = frozenset(
    {"format", "width", "height", "frames", "blurhash", "dominant_color", FOCUS_METADATA}
)
_SERIALIZER, _DESERIALIZER = TypeSerializer(), TypeDeserializer()


class State(Enum):
    READY = "ready"  # facts known, presets made
    REJECTED = "rejected"  # not an image we can serve: error_code says why
    DELETED = "deleted"  # a tombstone


@dataclass(frozen=True)
class OriginalRecord:
    """What the store knows of one original."""

    key: str
    state: State
    sequencer: str
    etag: str = ""
    bytes: int = 0
    uploader: str | None = None
    created_at: str = ""  # when this version was stored (the event's time)
    facts: Mapping[str, Any] = field(default_factory=dict)  # chalicelib.imaging.facts.ImageFacts
    error_code: str | None = None
    presets: Mapping[str, str] = field(default_factory=dict)  # size token → public URL
    notified: bool = False

    @property
    def live(self) -> bool:
        """Counts towards its uploader's usage: stored, ready or rejected."""
        return self.state is not State.DELETED

    def public(self) -> dict[str, Any]:
        """The record as `GET /meta` answers anyone: what a page needs to show the image.

        The key is in every public variant URL, so this is what one shared link
        tells a stranger: no camera, no time taken, no size in bytes, no ETag.
        """
        return self._view({name: v for name, v in self.facts.items() if name in PUBLIC_FACTS})

    def owned(self) -> dict[str, Any]:
        """The record as its uploader sees it (`GET /uploads`): every fact, GPS when kept."""
        stored = {"etag": self.etag, "bytes": self.bytes, "created_at": self.created_at}
        return self._view({**stored, **self.facts})

    def _view(self, details: Mapping[str, Any]) -> dict[str, Any]:
        answer: dict[str, Any] = {
            "key": self.key,
            "state": self.state.value,
            **details,
            "presets": dict(self.presets),
        }
        if self.error_code:
            answer["error_code"] = self.error_code
        return answer


@dataclass(frozen=True)
class Usage:
    bytes: int = 0
    originals: int = 0


class MetadataStore:
    """Records and usage in one DynamoDB table, over a boto3 DynamoDB client."""

    def __init__(self, client: Any, table: str) -> None:
        self._client = client
        self._table = table

    def get(self, key: str) -> OriginalRecord | None:
        """The record of ``key`` (a tombstone included), read consistently; None if unknown."""
        item = self._get_item(f"original#{key}", META)
        return _record(item) if item else None

    def apply(self, record: OriginalRecord, previous: OriginalRecord | None) -> bool:
        """Store ``record`` in place of ``previous``, with the usage change; False if it lost.

        It loses when the stored record is no longer ``previous`` (another
        event of the key was applied meanwhile, or this one already was).
        """
        condition = (
            {"ConditionExpression": "attribute_not_exists(pk)"}
            if previous is None
            else {
                "ConditionExpression": "sequencer = :previous",
                "ExpressionAttributeValues": {":previous": {"S": previous.sequencer}},
            }
        )
        writes: list[dict[str, Any]] = [
            {"Put": {"TableName": self._table, "Item": _item(record), **condition}}
        ]
        writes += self._usage_updates(record, previous)
        with aws_errors(_METADATA, expect={"TransactionCanceledException"}) as cancelled:
            self._client.transact_write_items(TransactItems=writes)
        if not cancelled:
            return True
        # A cancelled transaction says why per item, in order: the record's Put is first.
        # Only its failed condition means another event won; a conflicting transaction
        # or throttling is an outage the event is retried after.
        reasons = cancelled.error.response.get("CancellationReasons") or [{}]  # type: ignore[union-attr]
        if reasons[0].get("Code") == "ConditionalCheckFailed":
            return False
        raise StorageUnavailable(
            f"{_METADATA} is unavailable, try again", repr(cancelled.error)
        ) from cancelled.error

    def mark_notified(self, record: OriginalRecord) -> None:
        """Note that ``record``'s notification went out (unless a newer event replaced it)."""
        with aws_errors(_METADATA, expect={"ConditionalCheckFailedException"}):
            self._client.update_item(
                TableName=self._table,
                Key=_key(f"original#{record.key}", META),
                UpdateExpression="SET notified = :yes",
                ConditionExpression="sequencer = :sequencer",
                ExpressionAttributeValues={
                    ":yes": {"BOOL": True},
                    ":sequencer": {"S": record.sequencer},
                },
            )  # a failed condition: a newer event replaced the record; nothing to note

    def usage(self, uploader: str) -> Usage:
        item = self._get_item(f"usage#{uploader}", USAGE) or {}
        return Usage(int(item.get("bytes", 0)), int(item.get("originals", 0)))

    def list_for(
        self, uploader: str, limit: int, cursor: str | None = None
    ) -> tuple[list[OriginalRecord], str | None]:
        """One page of ``uploader``'s originals, newest first, and the cursor of the next."""
        start = {"ExclusiveStartKey": decode_cursor(cursor, uploader)} if cursor else {}
        response = self._call(
            "query",
            TableName=self._table,
            IndexName=BY_UPLOADER,
            KeyConditionExpression="uploader = :uploader",
            ExpressionAttributeValues={":uploader": {"S": uploader}},
            ScanIndexForward=False,
            Limit=max(1, min(limit, MAX_PAGE)),
            **start,
        )
        records = [_record(_plain(item)) for item in response.get("Items", [])]
        last = response.get("LastEvaluatedKey")
        return records, encode_cursor(last) if last else None

    def _usage_updates(
        self, record: OriginalRecord, previous: OriginalRecord | None
    ) -> list[dict[str, Any]]:
        """The usage deltas of replacing ``previous`` by ``record``: one update per uploader."""
        deltas: dict[str, list[int]] = {}
        for version, sign in ((previous, -1), (record, 1)):
            if version is not None and version.live and version.uploader:
                delta = deltas.setdefault(version.uploader, [0, 0])
                delta[0] += sign * version.bytes
                delta[1] += sign
        return [
            {
                "Update": {
                    "TableName": self._table,
                    "Key": _key(f"usage#{uploader}", USAGE),
                    "UpdateExpression": "ADD #bytes :bytes, originals :originals",
                    "ExpressionAttributeNames": {"#bytes": "bytes"},
                    "ExpressionAttributeValues": {
                        ":bytes": {"N": str(size)},
                        ":originals": {"N": str(count)},
                    },
                }
            }
            for uploader, (size, count) in deltas.items()
            if size or count
        ]

    def _get_item(self, pk: str, sk: str) -> dict[str, Any] | None:
        """One item, read consistently, as plain Python values; None if there is none."""
        item = self._call(
            "get_item", TableName=self._table, Key=_key(pk, sk), ConsistentRead=True
        ).get("Item")
        return _plain(item) if item else None

    def _call(self, operation: str, **arguments: Any) -> dict[str, Any]:
        with aws_errors(_METADATA):
            response: dict[str, Any] = getattr(self._client, operation)(**arguments)
        return response


def encode_cursor(last_key: Mapping[str, Any]) -> str:
    """An opaque, URL-safe page cursor."""
    return base64.urlsafe_b64encode(json.dumps(_plain(last_key)).encode()).decode()


def decode_cursor(cursor: str, uploader: str) -> dict[str, Any]:
    """The start key a cursor names; a forged or foreign one is a 400, never another's page."""
    try:
        plain = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (ValueError, binascii.Error, UnicodeDecodeError) as err:
        raise InvalidUploadRequest("the cursor is not one this API gave out") from err
    if (
        not isinstance(plain, dict)
        or set(plain) != {"pk", "sk", "uploader", "listed_at"}
        or plain.get("uploader") != uploader
        or not all(isinstance(value, str) for value in plain.values())
    ):
        raise InvalidUploadRequest("the cursor is not one this API gave out")
    return {name: {"S": value} for name, value in plain.items()}


def _key(pk: str, sk: str) -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def _item(record: OriginalRecord) -> dict[str, Any]:
    plain: dict[str, Any] = {
        "pk": f"original#{record.key}",
        "sk": META,
        "key": record.key,
        "state": record.state.value,
        "sequencer": record.sequencer,
        "etag": record.etag,
        "bytes": record.bytes,
        "created_at": record.created_at,
        "facts": json.dumps(dict(record.facts)),
        "presets": dict(record.presets),
        "notified": record.notified,
    }
    if record.error_code:
        plain["error_code"] = record.error_code
    if record.uploader:
        plain["owner"] = record.uploader
        if record.live:  # the sparse index lists live originals only
            plain["uploader"] = record.uploader
            plain["listed_at"] = f"{record.created_at}#{record.key}"
    return {name: _SERIALIZER.serialize(value) for name, value in plain.items()}


def _plain(item: Mapping[str, Any]) -> dict[str, Any]:
    return {name: _DESERIALIZER.deserialize(value) for name, value in item.items()}


def _record(plain: Mapping[str, Any]) -> OriginalRecord:
    return OriginalRecord(
        key=str(plain["key"]),
        state=State(plain["state"]),
        sequencer=str(plain["sequencer"]),
        etag=str(plain.get("etag", "")),
        bytes=int(plain.get("bytes", 0)),
        uploader=plain.get("owner"),
        created_at=str(plain.get("created_at", "")),
        facts=json.loads(plain.get("facts") or "{}"),
        error_code=plain.get("error_code"),
        presets={str(k): str(v) for k, v in (plain.get("presets") or {}).items()},
        notified=bool(plain.get("notified", False)),
    )


def tombstone(previous: OriginalRecord | None, key: str, sequencer: str) -> OriginalRecord:
    """The record of a deleted original: no facts, no presets, its owner kept."""
    if previous is None:
        return OriginalRecord(key=key, state=State.DELETED, sequencer=sequencer)
    return replace(
        previous,
        state=State.DELETED,
        sequencer=sequencer,
        etag="",
        bytes=0,
        facts={},
        presets={},
        error_code=None,
        notified=False,
    )
