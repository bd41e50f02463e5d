"""S3 notifications in SQS messages → typed events: keys decoded once, sequencers ordered."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.originals.events import (
    SEQUENCER_WIDTH,
    Change,
    MalformedEvent,
    normalise_sequencer,
    parse_message,
)


def message(*records: dict[str, Any], message_id: str = "m1") -> dict[str, Any]:
    return {"messageId": message_id, "body": json.dumps({"Records": list(records)})}


def s3_record(name: str, key: str, sequencer: str = "0055AED6DCD90281E5", **found: Any) -> Any:
    return {
        "eventName": name,
        "eventTime": "2026-12-01T12:00:00.000Z",
        "s3": {
            "bucket": {"name": "originals"},
            "object": {"key": key, "sequencer": sequencer, **found},
        },
    }


def test_a_created_event_with_an_encoded_key() -> None:
    record = s3_record(
        "ObjectCreated:Post", "uploads/a/caf%C3%A9+au+lait+%281%29.jpg", eTag="abc", size=12
    )
    [event] = parse_message(message(record))
    assert event.change is Change.CREATED
    assert event.key == "uploads/a/café au lait (1).jpg"
    assert event.etag == '"abc"'
    assert event.size == 12
    assert event.bucket == "originals"
    assert event.message_id == "m1"
    assert len(event.sequencer) == SEQUENCER_WIDTH


@pytest.mark.parametrize(
    "name",
    ["ObjectCreated:Put", "ObjectCreated:Post", "ObjectCreated:Copy",
     "ObjectCreated:CompleteMultipartUpload"],
)  # fmt: skip
def test_every_kind_of_creation_counts(name: str) -> None:
    [event] = parse_message(message(s3_record(name, "a.jpg", eTag="e", size=1)))
    assert event.change is Change.CREATED


def test_a_removal_has_no_etag() -> None:
    [event] = parse_message(message(s3_record("ObjectRemoved:Delete", "a+b.jpg", eTag="x")))
    assert (event.change, event.key, event.etag, event.size) == (
        Change.REMOVED,
        "a b.jpg",
        None,
        None,
    )


def test_a_literal_plus_is_encoded_as_2b() -> None:
    [event] = parse_message(message(s3_record("ObjectRemoved:Delete", "a%2Bb.jpg")))
    assert event.key == "a+b.jpg"


def test_s3s_test_event_holds_no_object_events() -> None:
    assert parse_message({"messageId": "t", "body": json.dumps({"Event": "s3:TestEvent"})}) == []


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        json.dumps([1]),
        json.dumps({"Records": "x"}),
        json.dumps({"Records": [{"eventName": "ObjectCreated:Put"}]}),
        json.dumps({"Records": [s3_record("ObjectRestore:Post", "a.jpg")]}),
        json.dumps({"Records": [s3_record("ObjectRemoved:Delete", "a.jpg", sequencer="xyz")]}),
        json.dumps({"Records": [s3_record("ObjectRemoved:Delete", "a.jpg", sequencer="")]}),
    ],
)
def test_anything_else_is_malformed(body: str) -> None:
    with pytest.raises(MalformedEvent):
        parse_message({"messageId": "m", "body": body})


@given(st.integers(0, 2**72), st.integers(0, 2**72))
def test_normalised_sequencers_compare_like_their_values(a: int, b: int) -> None:
    # S3's sequencers differ in length; compared as left-padded strings they order as numbers.
    assert (normalise_sequencer(f"{a:x}") < normalise_sequencer(f"{b:X}")) == (a < b)
