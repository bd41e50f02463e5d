"""The metadata store on moto's DynamoDB: conditional records, exact usage, pages, cursors."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from chalicelib.errors import InvalidUploadRequest, StorageUnavailable
from chalicelib.originals.metadata import (
    TABLE_SCHEMA,
    MetadataStore,
    OriginalRecord,
    State,
    encode_cursor,
    tombstone,
)

TABLE = "image-metadata"


@pytest.fixture
def store(app_env: dict[str, str]) -> Iterator[MetadataStore]:
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(TableName=TABLE, **TABLE_SCHEMA)
        yield MetadataStore(client, TABLE)


def record(key: str, sequencer: str, size: int = 100, uploader: str = "alice", **more: Any) -> Any:
    return OriginalRecord(
        key=key,
        state=State.READY,
        sequencer=sequencer.rjust(32, "0"),
        etag='"e"',
        bytes=size,
        uploader=uploader,
        created_at=f"2026-12-01T12:00:{sequencer[-2:]}",
        **more,
    )


def test_a_record_round_trips(store: MetadataStore) -> None:
    stored = record("a.jpg", "01", facts={"width": 3, "format": "JPEG"}, presets={"320x": "u"})
    assert store.apply(stored, None)
    assert store.get("a.jpg") == stored
    assert store.get("b.jpg") is None


def test_apply_loses_to_a_record_it_did_not_expect(store: MetadataStore) -> None:
    first = record("a.jpg", "01")
    assert store.apply(first, None)
    assert not store.apply(record("a.jpg", "02"), None)  # expected none, found one
    assert store.apply(record("a.jpg", "02"), first)
    assert not store.apply(record("a.jpg", "03"), first)  # first is no longer there
    assert store.usage("alice").originals == 1


def test_usage_follows_overwrites_deletes_and_owners(store: MetadataStore) -> None:
    first = record("a.jpg", "01", size=100)
    store.apply(first, None)
    bigger = record("a.jpg", "02", size=250)
    store.apply(bigger, first)
    assert (store.usage("alice").bytes, store.usage("alice").originals) == (250, 1)
    other = record("b.jpg", "01", size=7, uploader="bob")
    store.apply(other, None)
    dead = tombstone(bigger, "a.jpg", "3".rjust(32, "0"))
    store.apply(dead, bigger)
    assert (store.usage("alice").bytes, store.usage("alice").originals) == (0, 0)
    assert (store.usage("bob").bytes, store.usage("bob").originals) == (7, 1)
    assert store.get("a.jpg").state is State.DELETED  # type: ignore[union-attr]


def test_a_users_list_is_their_own_newest_first_in_pages(store: MetadataStore) -> None:
    for number in range(5):
        store.apply(record(f"alice/{number}.jpg", f"{number + 10:02d}"), None)
    store.apply(record("bob/1.jpg", "50", uploader="bob"), None)
    dead = record("alice/gone.jpg", "60")
    store.apply(dead, None)
    store.apply(tombstone(dead, dead.key, "61".rjust(32, "0")), dead)

    first, cursor = store.list_for("alice", 3)
    assert [r.key for r in first] == ["alice/4.jpg", "alice/3.jpg", "alice/2.jpg"]
    assert cursor is not None
    rest, end = store.list_for("alice", 3, cursor)
    assert [r.key for r in rest] == ["alice/1.jpg", "alice/0.jpg"]
    assert end is None


def test_a_cursor_is_only_good_for_its_owner(store: MetadataStore) -> None:
    for number in range(3):
        store.apply(record(f"bob/{number}.jpg", f"{number:02d}", uploader="bob"), None)
    _, bobs = store.list_for("bob", 1)
    assert bobs is not None
    with pytest.raises(InvalidUploadRequest):
        store.list_for("alice", 10, bobs)
    forged = encode_cursor({"pk": {"S": "x"}, "sk": {"S": "meta"}})
    for bad in (forged, "%%%", "bm90IGpzb24="):
        with pytest.raises(InvalidUploadRequest):
            store.list_for("alice", 10, bad)


def test_notified_is_marked_only_on_the_record_it_was_for(store: MetadataStore) -> None:
    first = record("a.jpg", "01")
    store.apply(first, None)
    newer = record("a.jpg", "02")
    store.apply(newer, first)
    store.mark_notified(first)  # too late: a newer record replaced it
    assert not store.get("a.jpg").notified  # type: ignore[union-attr]
    store.mark_notified(newer)
    assert store.get("a.jpg").notified  # type: ignore[union-attr]


class CancellingClient:
    """A DynamoDB client whose transactions are all cancelled for ``reasons``."""

    def __init__(self, *reasons: str) -> None:
        self.reasons = reasons

    def transact_write_items(self, **_: Any) -> None:
        raise ClientError(
            {
                "Error": {"Code": "TransactionCanceledException", "Message": "cancelled"},
                "CancellationReasons": [{"Code": code} for code in self.reasons],
            },
            "TransactWriteItems",
        )


def test_a_failed_condition_on_the_record_loses_the_race() -> None:
    client = CancellingClient("ConditionalCheckFailed", "None")
    assert not MetadataStore(client, TABLE).apply(record("a.jpg", "02"), None)


@pytest.mark.parametrize(
    "reasons", [("TransactionConflict", "None"), ("None", "ThrottlingError"), ()]
)
def test_a_transaction_cancelled_for_other_reasons_is_an_outage(reasons: tuple[str, ...]) -> None:
    # A conflicting transaction or throttling is not "another event won": the event is retried.
    with pytest.raises(StorageUnavailable):
        MetadataStore(CancellingClient(*reasons), TABLE).apply(record("a.jpg", "02"), None)
