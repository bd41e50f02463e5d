"""The metadata store on moto's DynamoDB: conditional records, exact usage, pages, cursors."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from chalicelib.catalog import (
    TABLE_SCHEMA,
    Catalog,
    OriginalRecord,
    State,
    encode_cursor,
    tombstone,
)
from chalicelib.errors import InvalidUploadRequest

TABLE = "image-metadata"


@pytest.fixture
def catalog(app_env: dict[str, str]) -> Iterator[Catalog]:
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(TableName=TABLE, **TABLE_SCHEMA)
        yield Catalog(client, TABLE)


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


def test_a_record_round_trips(catalog: Catalog) -> None:
    stored = record("a.jpg", "01", facts={"width": 3, "format": "JPEG"}, presets={"320x": "u"})
    assert catalog.apply(stored, None)
    assert catalog.get("a.jpg") == stored
    assert catalog.get("b.jpg") is None


def test_apply_loses_to_a_record_it_did_not_expect(catalog: Catalog) -> None:
    first = record("a.jpg", "01")
    assert catalog.apply(first, None)
    assert not catalog.apply(record("a.jpg", "02"), None)  # expected none, found one
    assert catalog.apply(record("a.jpg", "02"), first)
    assert not catalog.apply(record("a.jpg", "03"), first)  # first is no longer there
    assert catalog.usage("alice").originals == 1


def test_usage_follows_overwrites_deletes_and_owners(catalog: Catalog) -> None:
    first = record("a.jpg", "01", size=100)
    catalog.apply(first, None)
    bigger = record("a.jpg", "02", size=250)
    catalog.apply(bigger, first)
    assert (catalog.usage("alice").bytes, catalog.usage("alice").originals) == (250, 1)
    other = record("b.jpg", "01", size=7, uploader="bob")
    catalog.apply(other, None)
    dead = tombstone(bigger, "a.jpg", "3".rjust(32, "0"))
    catalog.apply(dead, bigger)
    assert (catalog.usage("alice").bytes, catalog.usage("alice").originals) == (0, 0)
    assert (catalog.usage("bob").bytes, catalog.usage("bob").originals) == (7, 1)
    assert catalog.get("a.jpg").state is State.DELETED  # type: ignore[union-attr]


def test_a_users_list_is_their_own_newest_first_in_pages(catalog: Catalog) -> None:
    for number in range(5):
        catalog.apply(record(f"alice/{number}.jpg", f"{number + 10:02d}"), None)
    catalog.apply(record("bob/1.jpg", "50", uploader="bob"), None)
    dead = record("alice/gone.jpg", "60")
    catalog.apply(dead, None)
    catalog.apply(tombstone(dead, dead.key, "61".rjust(32, "0")), dead)

    first, cursor = catalog.list_for("alice", 3)
    assert [r.key for r in first] == ["alice/4.jpg", "alice/3.jpg", "alice/2.jpg"]
    assert cursor is not None
    rest, end = catalog.list_for("alice", 3, cursor)
    assert [r.key for r in rest] == ["alice/1.jpg", "alice/0.jpg"]
    assert end is None


def test_a_cursor_is_only_good_for_its_owner(catalog: Catalog) -> None:
    for number in range(3):
        catalog.apply(record(f"bob/{number}.jpg", f"{number:02d}", uploader="bob"), None)
    _, bobs = catalog.list_for("bob", 1)
    assert bobs is not None
    with pytest.raises(InvalidUploadRequest):
        catalog.list_for("alice", 10, bobs)
    forged = encode_cursor({"pk": {"S": "x"}, "sk": {"S": "meta"}})
    for bad in (forged, "%%%", "bm90IGpzb24="):
        with pytest.raises(InvalidUploadRequest):
            catalog.list_for("alice", 10, bad)


def test_notified_is_marked_only_on_the_record_it_was_for(catalog: Catalog) -> None:
    first = record("a.jpg", "01")
    catalog.apply(first, None)
    newer = record("a.jpg", "02")
    catalog.apply(newer, first)
    catalog.mark_notified(first)  # too late: a newer record replaced it
    assert not catalog.get("a.jpg").notified  # type: ignore[union-attr]
    catalog.mark_notified(newer)
    assert catalog.get("a.jpg").notified  # type: ignore[union-attr]
