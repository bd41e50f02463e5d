"""The originals' lifecycle in-process (moto): purge, presets, metadata, usage, notifications.

Events are built the way S3 sends them and handed to the same
``OriginalLifecycle.handle_batch`` the Lambda runs, including duplicate and
reordered deliveries.  The real processes (s3rver's events, the queue, the
poller) are tested in test_lifecycle_e2e.py.
"""

from __future__ import annotations

import itertools
import json
import time
from io import BytesIO
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws
from PIL import Image

from chalicelib.config import Settings
from chalicelib.focus import SOURCE_FOCUS, parse_focus
from chalicelib.imaging.limits import ImagingLimits
from chalicelib.imaging.placeholder import placeholder
from chalicelib.originals.lifecycle import OriginalLifecycle, Outcome
from chalicelib.originals.metadata import TABLE_SCHEMA, MetadataStore, State
from chalicelib.originals.notify import Notifier
from chalicelib.originals.purge import CdnInvalidator, Purger, Rechecker
from chalicelib.resize.grammar import parse_size
from chalicelib.resize.ledger import output_entry
from chalicelib.resize.service import ResizeService
from chalicelib.resize.variants import SOURCE_ETAG
from chalicelib.storage import ImageStore
from chalicelib.uploads import UploadService
from tests.support import BUCKET, PUBLIC_URL, corpus, scenes
from tests.support.s3_events import notification

ORIGINALS = "originals"
TABLE = "image-metadata"
KEY = "uploads/alice/1/cat.jpg"
PRESETS = ("160x160-cover", "320x")


class Aws:
    """moto's S3, DynamoDB, SNS and SQS, and a lifecycle built over them."""

    def __init__(self, presets: tuple[str, ...] = PRESETS, **settings: Any) -> None:
        self.s3 = boto3.client("s3", region_name="us-east-1")
        for bucket in (BUCKET, ORIGINALS):
            self.s3.create_bucket(Bucket=bucket)
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        dynamodb.create_table(TableName=TABLE, **TABLE_SCHEMA)
        sns = boto3.client("sns", region_name="us-east-1")
        topic = sns.create_topic(Name="image-events")["TopicArn"]
        self.sqs = boto3.client("sqs", region_name="us-east-1")
        self.inbox = self.sqs.create_queue(QueueName="inbox")["QueueUrl"]
        self.events_queue = self.sqs.create_queue(QueueName="image-events")["QueueUrl"]
        inbox_arn = self.sqs.get_queue_attributes(QueueUrl=self.inbox, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=inbox_arn)
        self.settings = Settings(
            bucket=BUCKET,
            public_url=PUBLIC_URL,
            originals_bucket=ORIGINALS,
            metadata_table=TABLE,
            preset_sizes=tuple(parse_size(token, 4096) for token in presets),
            **settings,
        )
        variants = ImageStore(self.s3, BUCKET)
        self.service = ResizeService(self.settings, variants, ImageStore(self.s3, ORIGINALS))
        self.catalog = MetadataStore(dynamodb, TABLE)
        self.cloudfront = boto3.client("cloudfront", region_name="us-east-1")
        self.lifecycle = OriginalLifecycle(
            self.settings,
            ImageStore(self.s3, ORIGINALS),
            self.service,
            self.catalog,
            Purger(variants),  # no CDN; one test below puts one in front
            Notifier(sns, topic),
            Rechecker(self.sqs, self.events_queue, delay_seconds=0),
        )
        self._sequencers = itertools.count(0x5F00000000000000)
        self._messages = itertools.count(1)

    def put(
        self, key: str, body: bytes, uploader: str | None = "alice", **metadata: str
    ) -> dict[str, Any]:
        """Store an original as an upload would, and return its ObjectCreated event."""
        if uploader:
            metadata["uploader"] = uploader
        stored = self.s3.put_object(Bucket=ORIGINALS, Key=key, Body=body, Metadata=metadata)
        return self.event("ObjectCreated:Post", key, etag=stored["ETag"], size=len(body))

    def delete(self, key: str) -> dict[str, Any]:
        self.s3.delete_object(Bucket=ORIGINALS, Key=key)
        return self.event("ObjectRemoved:Delete", key)

    def event(
        self, name: str, key: str, etag: str | None = None, size: int | None = None
    ) -> dict[str, Any]:
        """One SQS record carrying one S3 notification, as Lambda hands it over."""
        found = {} if etag is None else {"eTag": etag.strip('"'), "size": size}
        body = notification(name, key, f"{next(self._sequencers):X}", ORIGINALS, **found)
        return {"messageId": f"m{next(self._messages)}", "body": body}

    def handle(self, *records: dict[str, Any]) -> list[str]:
        """Handle one batch; the ids of the messages that failed."""
        answer = self.lifecycle.handle_batch(list(records))
        return [failure["itemIdentifier"] for failure in answer["batchItemFailures"]]

    def variants(self) -> dict[str, str]:
        """Every object in the public bucket → the source ETag it records ('' for ledger)."""
        listed = self.s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])
        return {
            item["Key"]: self.s3.head_object(Bucket=BUCKET, Key=item["Key"])
            .get("Metadata", {})
            .get(SOURCE_ETAG, "")
            for item in listed
        }

    def queued_rechecks(self) -> list[dict[str, Any]]:
        """The recheck messages the lifecycle sent itself, as Lambda would hand them over."""
        received = self.sqs.receive_message(QueueUrl=self.events_queue, MaxNumberOfMessages=10)
        messages = received.get("Messages", [])
        for message in messages:
            self.sqs.delete_message(
                QueueUrl=self.events_queue, ReceiptHandle=message["ReceiptHandle"]
            )
        return [{"messageId": m["MessageId"], "body": m["Body"]} for m in messages]

    def notifications(self) -> list[dict[str, Any]]:
        received = self.sqs.receive_message(QueueUrl=self.inbox, MaxNumberOfMessages=10)
        messages = received.get("Messages", [])
        for message in messages:
            self.sqs.delete_message(QueueUrl=self.inbox, ReceiptHandle=message["ReceiptHandle"])
        return [json.loads(json.loads(m["Body"])["Message"]) for m in messages]


@pytest.fixture
def aws(app_env: dict[str, str]) -> Any:
    with mock_aws():
        yield Aws()


def photo(size: tuple[int, int] = (1200, 900), **exif: Any) -> bytes:
    image = Image.new("RGB", size, "teal")
    tags = Image.Exif()
    for tag, value in exif.items():
        tags[int(tag.removeprefix("tag_"), 16)] = value
    buffer = BytesIO()
    image.save(buffer, "JPEG", exif=tags.tobytes())
    return buffer.getvalue()


def test_an_upload_gets_presets_metadata_usage_and_one_notification(aws: Aws) -> None:
    body = photo((1200, 900), tag_0112=6, tag_010F="Acme", tag_0110="Phone 9")
    assert aws.handle(aws.put(KEY, body)) == []

    record = aws.catalog.get(KEY)
    assert record is not None
    assert record.state is State.READY
    assert record.uploader == "alice"
    assert record.bytes == len(body)
    # Displayed upright: the EXIF orientation (6) turns 1200×900 on its side.
    assert (record.facts["width"], record.facts["height"]) == (900, 1200)
    assert (record.facts["camera_make"], record.facts["camera_model"]) == ("Acme", "Phone 9")
    # The placeholders, for GET /meta and GET /uploads: tests/test_placeholders.py checks them.
    expected = placeholder(body, ImagingLimits()).to_dict()
    for answer in (record.public(), record.owned()):
        assert {name: answer[name] for name in expected} == expected
    assert set(record.presets) == set(PRESETS)
    etag = aws.s3.head_object(Bucket=ORIGINALS, Key=KEY)["ETag"]
    stored = aws.variants()
    assert stored[f"160x160-cover/{KEY}"] == stored[f"320x/{KEY}"] == etag
    with Image.open(
        BytesIO(aws.s3.get_object(Bucket=BUCKET, Key=f"320x/{KEY}")["Body"].read())
    ) as v:
        assert v.size == (320, 427)
    assert aws.catalog.usage("alice").bytes == len(body)
    assert aws.catalog.usage("alice").originals == 1
    [message] = aws.notifications()
    assert message["key"] == KEY
    assert message["state"] == "ready"
    assert message["variant_url"] == f"{PUBLIC_URL}/{{size}}/{KEY}"
    assert message["presets"]["320x"] == f"{PUBLIC_URL}/320x/{KEY}"


def test_a_png_upload_is_decoded_once_for_all_its_presets(aws: Aws, pixel_loads: list[str]) -> None:
    # Its facts, its two presets' planning and renders, its placeholder: one decode in all
    # (and the placeholder's own 32 px JPEG).
    assert aws.handle(aws.put(KEY.replace(".jpg", ".png"), corpus.png_rgba((900, 600)))) == []
    assert pixel_loads == ["PNG", "JPEG"]
    assert {f"{token}/{KEY.replace('.jpg', '.png')}" for token in PRESETS} <= set(aws.variants())


def test_a_pngs_facts_come_from_its_header_without_decoding_it(pixel_loads: list[str]) -> None:
    from chalicelib.imaging.facts import describe

    facts = describe(corpus.png_on_its_side(), ImagingLimits())
    assert (facts.format, facts.width, facts.height) == ("PNG", 300, 400)  # upright
    assert pixel_loads == []


def test_a_redelivered_event_changes_nothing_twice(aws: Aws) -> None:
    created = aws.put(KEY, photo())
    assert aws.handle(created) == []
    before = aws.variants()
    aws.notifications()
    assert aws.handle(created, created) == []
    assert aws.variants() == before
    assert aws.catalog.usage("alice").originals == 1
    assert aws.notifications() == []


def test_an_overwrite_purges_old_variants_and_keeps_what_the_new_one_made(aws: Aws) -> None:
    first = aws.put(KEY, photo((1200, 900)))
    aws.handle(first)
    aws.service.resize("500x", KEY.split("/"))  # a size only the old picture had
    assert f"500x/{KEY}" in aws.variants()

    second_body = photo((800, 800))
    second = aws.put(KEY, second_body)
    # A browser asks for a new size of the new picture before the event is handled.
    aws.service.resize("200x", KEY.split("/"))
    assert aws.handle(second) == []

    new_etag = aws.s3.head_object(Bucket=ORIGINALS, Key=KEY)["ETag"]
    stored = aws.variants()
    assert f"500x/{KEY}" not in stored
    assert stored[f"200x/{KEY}"] == new_etag  # made from the new original: kept
    variants = {key: etag for key, etag in stored.items() if not key.startswith("_variants/")}
    assert set(variants.values()) == {new_etag}
    ledger = {key for key in stored if key.startswith("_variants/")}
    assert len(ledger) == len(variants)  # every entry names a variant that is there
    assert aws.catalog.usage("alice").bytes == len(second_body)
    assert aws.catalog.usage("alice").originals == 1


def test_auto_presets_are_made_in_every_format_and_purged_together(app_env: Any) -> None:
    with mock_aws():
        aws = Aws(presets=("320x.auto",))
        gif = corpus.animated("GIF", 4, (640, 320))
        assert aws.handle(aws.put("anim.gif", gif)) == []
        record = aws.catalog.get("anim.gif")
        assert record is not None
        assert set(record.presets) == {"320x.auto:avif", "320x.auto:webp", "320x.auto:gif"}
        made = {key for key in aws.variants() if not key.startswith("_variants/")}
        assert made == {"320x.avif/anim.gif", "320x.webp/anim.gif", "320x/anim.gif"}
        # Replaced by a still photo: every format of the animation goes, ledger too.
        assert aws.handle(aws.put("anim.gif", photo((800, 600)))) == []
        stored = aws.variants()
        assert not [key for key in stored if ".auto" in key]
        new_etag = aws.s3.head_object(Bucket=ORIGINALS, Key="anim.gif")["ETag"]
        assert {etag for key, etag in stored.items() if not key.startswith("_variants/")} == {
            new_etag
        }


def test_the_same_bytes_again_purge_nothing(aws: Aws) -> None:
    body = photo()
    aws.handle(aws.put(KEY, body))
    aws.service.resize("500x", KEY.split("/"))  # not a preset: nothing would make it again
    before = aws.variants()
    assert aws.handle(aws.put(KEY, body)) == []
    assert aws.variants() == before
    assert aws.catalog.usage("alice").originals == 1


def test_a_delete_removes_every_variant_and_entry_and_a_late_create_stays_dead(aws: Aws) -> None:
    created = aws.put(KEY, photo())
    aws.handle(created)
    aws.service.resize("300x300-pad.webp", KEY.split("/"))
    removed = aws.delete(KEY)
    assert aws.handle(removed) == []
    assert aws.variants() == {}
    record = aws.catalog.get(KEY)
    assert record is not None
    assert record.state is State.DELETED
    assert aws.catalog.usage("alice").originals == 0
    assert aws.catalog.usage("alice").bytes == 0
    # The same created event, redelivered late: nothing comes back.
    assert aws.lifecycle.handle(_parsed(created)) is Outcome.STALE
    assert aws.variants() == {}


def test_a_late_remove_does_not_purge_a_newer_upload(aws: Aws) -> None:
    aws.handle(aws.put(KEY, photo((1000, 800))))
    removed = aws.delete(KEY)
    recreated = aws.put(KEY, photo((700, 700)))
    assert aws.handle(recreated) == []  # the newer event is handled first
    kept = aws.variants()
    assert aws.lifecycle.handle(_parsed(removed)) is Outcome.STALE
    assert aws.variants() == kept
    assert aws.catalog.get(KEY).state is State.READY  # type: ignore[union-attr]
    assert aws.catalog.usage("alice").originals == 1


def test_a_remove_handled_after_a_reupload_keeps_the_reuploads_variants(aws: Aws) -> None:
    aws.handle(aws.put(KEY, photo((1000, 800))))
    removed = aws.delete(KEY)
    recreated = aws.put(KEY, photo((700, 700)))
    aws.service.resize("100x", KEY.split("/"))  # made from the re-upload, before any event
    assert aws.handle(removed) == []
    new_etag = aws.s3.head_object(Bucket=ORIGINALS, Key=KEY)["ETag"]
    stored = aws.variants()
    assert stored[f"100x/{KEY}"] == new_etag
    assert all(etag == new_etag for key, etag in stored.items() if not key.startswith("_"))
    assert aws.handle(recreated) == []
    assert aws.catalog.get(KEY).state is State.READY  # type: ignore[union-attr]
    assert aws.catalog.usage("alice").originals == 1


def test_an_event_for_a_version_since_replaced_waits_for_its_own_event(aws: Aws) -> None:
    stale = aws.put(KEY, photo((1000, 800)))
    aws.put(KEY, photo((600, 600)))
    assert aws.lifecycle.handle(_parsed(stale)) is Outcome.SUPERSEDED
    assert aws.variants() == {}
    assert aws.catalog.get(KEY) is None


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"%PDF-1.4 not an image", "unsupported_format"),
        (b"", "empty_original"),
        (corpus.jpeg((400, 300))[:200], "invalid_image"),
    ],
)
def test_a_non_image_is_rejected_once_with_its_code(aws: Aws, body: bytes, code: str) -> None:
    assert aws.handle(aws.put(KEY, body)) == []  # not retried
    record = aws.catalog.get(KEY)
    assert record is not None
    assert (record.state, record.error_code) == (State.REJECTED, code)
    assert aws.variants() == {}
    [message] = aws.notifications()
    assert (message["state"], message["error_code"]) == ("rejected", code)
    assert aws.catalog.usage("alice").originals == 1  # it is stored, so it counts


def test_gps_is_kept_only_when_asked(app_env: dict[str, str]) -> None:
    gps = {1: "N", 2: (52.0, 30.0, 0.0), 3: "E", 4: (13.0, 24.0, 36.0)}
    image = Image.new("RGB", (400, 300))
    tags = Image.Exif()
    tags[0x8825] = gps
    buffer = BytesIO()
    image.save(buffer, "JPEG", exif=tags.tobytes())
    for keep, expected in ((False, None), (True, {"latitude": 52.5, "longitude": 13.41})):
        with mock_aws():
            aws = Aws(keep_gps_metadata=keep)
            aws.handle(aws.put(KEY, buffer.getvalue()))
            record = aws.catalog.get(KEY)
            assert record is not None
            assert record.facts.get("gps") == expected
            assert "gps" not in record.public()


def test_a_malformed_message_and_a_storage_outage_are_reported_for_redelivery(aws: Aws) -> None:
    good = aws.put(KEY, photo())
    broken = {"messageId": "bad", "body": "not json"}
    with Stubber(aws.s3) as stub:  # every S3 call fails: the lifecycle must not swallow it
        stub.add_client_error("head_object", "ServiceUnavailable", http_status_code=503)
        failed = aws.handle(broken, good)
    assert failed == ["bad", good["messageId"]]
    assert aws.catalog.get(KEY) is None
    assert aws.handle(good) == []  # redelivered once S3 is back
    assert aws.catalog.get(KEY).state is State.READY  # type: ignore[union-attr]


def test_s3s_test_event_is_acknowledged(aws: Aws) -> None:
    test_event = {"messageId": "t", "body": json.dumps({"Event": "s3:TestEvent"})}
    assert aws.handle(test_event) == []


def test_a_purge_invalidates_exactly_the_deleted_paths_at_the_cdn(aws: Aws) -> None:
    key = "uploads/alice/2/café au lait.jpg"
    aws.lifecycle = OriginalLifecycle(
        aws.settings,
        ImageStore(aws.s3, ORIGINALS),
        aws.service,
        aws.catalog,
        Purger(ImageStore(aws.s3, BUCKET), CdnInvalidator(aws.cloudfront, "E2QWRUHAPOMQZL")),
    )
    aws.handle(aws.put(key, photo()))
    aws.s3.delete_object(Bucket=ORIGINALS, Key=key)
    paths = sorted(f"/{size}/uploads/alice/2/caf%C3%A9%20au%20lait.jpg" for size in PRESETS)
    with Stubber(aws.cloudfront) as stub:
        stub.add_response(
            "create_invalidation",
            {"Location": "l", "Invalidation": _invalidation(paths)},
            {
                "DistributionId": "E2QWRUHAPOMQZL",
                "InvalidationBatch": {
                    "Paths": {"Quantity": len(paths), "Items": paths},
                    "CallerReference": stub_any(),
                },
            },
        )
        assert aws.handle(aws.event("ObjectRemoved:Delete", key)) == []
        stub.assert_no_pending_responses()


def _invalidation(paths: list[str]) -> dict[str, Any]:
    return {
        "Id": "I1",
        "Status": "InProgress",
        "CreateTime": "2026-12-01T00:00:00Z",
        "InvalidationBatch": {
            "Paths": {"Quantity": len(paths), "Items": paths},
            "CallerReference": "r",
        },
    }


def stub_any() -> Any:
    from botocore.stub import ANY

    return ANY


def _parsed(record: dict[str, Any]) -> Any:
    from chalicelib.originals.events import parse_message

    [event] = parse_message(record)
    return event


def late_miss(aws: Aws, size: str, canonical: str, etag: str, body: bytes) -> Any:
    """A miss as service.py makes one: its ledger entry now, its variant when ``store()`` runs."""
    aws.s3.put_object(Bucket=BUCKET, Key=output_entry(KEY, canonical, size), Body=b"")

    def store() -> None:
        aws.s3.put_object(
            Bucket=BUCKET, Key=f"{size}/{KEY}", Body=body, Metadata={SOURCE_ETAG: etag}
        )

    return store


def test_an_overwrite_purges_both_spellings_two_first_requests_stored_of_one_output(
    aws: Aws,
) -> None:
    """``100x`` and ``100x75`` of a 800×600 original, asked for at once: both are stored."""
    aws.handle(aws.put(KEY, photo((800, 600))))
    old_etag = aws.s3.head_object(Bucket=ORIGINALS, Key=KEY)["ETag"]
    for size in ("100x", "100x75"):
        late_miss(aws, size, "100x75", old_etag, b"old pixels")()
    aws.handle(aws.put(KEY, photo((800, 600), tag_010F="another camera")))
    for size in ("100x", "100x75"):
        with pytest.raises(aws.s3.exceptions.ClientError):
            aws.s3.head_object(Bucket=BUCKET, Key=f"{size}/{KEY}")


def test_a_recheck_removes_a_variant_a_slow_miss_stored_after_the_purge(aws: Aws) -> None:
    aws.handle(aws.put(KEY, photo((1200, 900))))
    old_etag = aws.s3.head_object(Bucket=ORIGINALS, Key=KEY)["ETag"]
    aws.queued_rechecks()
    # A miss read the old original and claimed its entry; the overwrite's purge runs...
    store = late_miss(aws, "500x", "500x375", old_etag, b"old pixels")
    aws.handle(aws.put(KEY, photo((800, 800))))
    assert any(key.endswith("=500x") for key in aws.variants())  # its claim is kept
    store()  # ...and only then the miss stores its variant of the old picture.
    [recheck] = aws.queued_rechecks()
    assert json.loads(recheck["body"]) == {"Recheck": {"bucket": ORIGINALS, "key": KEY}}
    assert aws.handle(recheck) == []
    new_etag = aws.s3.head_object(Bucket=ORIGINALS, Key=KEY)["ETag"]
    stored = aws.variants()
    assert f"500x/{KEY}" not in stored
    assert not any(key.endswith("=500x") for key in stored)
    assert {etag for key, etag in stored.items() if not key.startswith("_")} == {new_etag}
    assert aws.queued_rechecks() == []  # a recheck schedules nothing more
    assert aws.catalog.usage("alice").originals == 1  # and counts nothing


def test_a_delete_schedules_a_recheck_that_keeps_nothing(aws: Aws) -> None:
    aws.handle(aws.put(KEY, photo()))
    store = late_miss(aws, "77x", "77x58", '"x"', b"late")
    aws.handle(aws.delete(KEY))
    store()
    rechecks = aws.queued_rechecks()
    assert len(rechecks) == 2  # one for the upload, one for the delete
    assert aws.handle(*rechecks) == []
    assert aws.variants() == {}


def test_a_claim_older_than_any_render_is_released(aws: Aws) -> None:
    aws.handle(aws.put(KEY, photo()))
    late_miss(aws, "77x", "77x58", '"x"', b"never stored")
    later = OriginalLifecycle(
        aws.settings,
        ImageStore(aws.s3, ORIGINALS),
        aws.service,
        aws.catalog,
        Purger(ImageStore(aws.s3, BUCKET), clock=lambda: time.time() + 3600),
    )
    assert later.handle_batch([aws.delete(KEY)]) == {"batchItemFailures": []}
    assert aws.variants() == {}


def test_a_new_focal_point_purges_exactly_the_focus_crops_and_remakes_the_preset(
    app_env: dict[str, str],
) -> None:
    with mock_aws():
        aws = Aws(presets=("160x160-cover-focus", "320x"))
        picture = scenes.with_mark((1200, 600), (0.05, 0.5), 30)
        aws.handle(aws.put(KEY, corpus.encode(picture, "JPEG"), focus="0.05,0.5"))
        for token in ("200x200-cover-focus", "200x200-cover-smart", "200x200-cover-e"):
            aws.service.resize(token, KEY.split("/"))
        etag = aws.s3.head_object(Bucket=ORIGINALS, Key=KEY)["ETag"]
        before = aws.variants()
        old_preset = variant_bytes(aws, f"160x160-cover-focus/{KEY}")

        answer = UploadService(aws.settings, aws.s3).set_focus("alice", KEY, parse_focus("1,0.5"))
        assert answer["focus"] == "1,0.5"
        assert aws.s3.head_object(Bucket=ORIGINALS, Key=KEY)["ETag"] == etag  # same bytes
        assert aws.handle(aws.event("ObjectCreated:Copy", KEY, etag=etag, size=1)) == []

        after = aws.variants()
        assert f"200x200-cover-focus/{KEY}" not in after  # made with the old point: purged
        for kept in ("200x200-cover-smart", "200x200-cover-e", "320x"):
            assert after[f"{kept}/{KEY}"] == before[f"{kept}/{KEY}"] == etag, kept
        # The preset is made again, on the new point: the mark at the left is out of it.
        new_preset = variant_bytes(aws, f"160x160-cover-focus/{KEY}")
        assert new_preset != old_preset
        assert scenes.marked(corpus.opened(old_preset)) > 50
        assert scenes.marked(corpus.opened(new_preset)) == 0
        assert aws.catalog.get(KEY).public()["focus"] == "1,0.5"  # type: ignore[union-attr]
        again = aws.s3.head_object(Bucket=BUCKET, Key=f"160x160-cover-focus/{KEY}")["Metadata"]
        assert again == {SOURCE_ETAG: etag, SOURCE_FOCUS: "1,0.5"}
        # A miss after the change crops on the new point too.
        aws.service.resize("200x200-cover-focus", KEY.split("/"))
        assert scenes.marked(corpus.opened(variant_bytes(aws, f"200x200-cover-focus/{KEY}"))) == 0


def variant_bytes(aws: Aws, key: str) -> bytes:
    return aws.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()


def test_a_slow_miss_whose_claim_a_purge_released_is_still_in_the_ledger(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A render longer than the in-flight window: a purge meanwhile drops its claim as stale;
    the variant still lands with its entry, so the next overwrite's purge removes it."""
    from chalicelib import imaging

    aws.handle(aws.put(KEY, photo((1200, 900))))
    current = aws.s3.head_object(Bucket=ORIGINALS, Key=KEY)["ETag"]
    much_later = Purger(ImageStore(aws.s3, BUCKET), clock=lambda: time.time() + 3600)
    render = imaging.render

    entry = output_entry(KEY, "500x375", "500x")

    def slow(*args: Any, **kwargs: Any) -> Any:
        deadline = time.monotonic() + 30
        while entry not in aws.variants() and time.monotonic() < deadline:
            time.sleep(0.01)  # the claim's PUT, under way, lands
        much_later.purge(KEY, keep_etag=current)  # the upload's recheck, say
        assert entry not in aws.variants()
        # ... because the render took that hour: the claim is too old to count as written now.
        monkeypatch.setattr(time, "monotonic", lambda real=time.monotonic: real() + 3600)
        return render(*args, **kwargs)

    monkeypatch.setattr(imaging, "render", slow)
    aws.service.resize("500x", KEY.split("/"))
    monkeypatch.undo()
    stored = aws.variants()
    assert stored[f"500x/{KEY}"] == current
    assert entry in stored
    assert aws.handle(aws.put(KEY, photo((800, 800)))) == []
    assert f"500x/{KEY}" not in aws.variants()


def test_a_preset_of_an_original_replaced_meanwhile_is_not_stored_nor_rejected(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Replaced during a render that outlasts the original's check (a quicker one's variant
    is stored and the replacement's purge removes it: tests/test_service.py)."""
    from chalicelib import imaging
    from chalicelib.resize import variants

    monkeypatch.setattr(variants, "ORIGINAL_CHECK_MAX_AGE_SECONDS", 0.0)
    created = aws.put(KEY, photo((1200, 900)))
    render = imaging.render
    replaced: list[dict[str, Any]] = []

    def slow(*args: Any, **kwargs: Any) -> Any:
        if not replaced:
            replaced.append(aws.put(KEY, photo((800, 800))))
        return render(*args, **kwargs)

    monkeypatch.setattr(imaging, "render", slow)
    assert aws.lifecycle.handle(_parsed(created)) is Outcome.SUPERSEDED
    assert aws.variants() == {}
    assert aws.catalog.get(KEY) is None
    monkeypatch.undo()
    assert aws.handle(*replaced) == []
    record = aws.catalog.get(KEY)
    assert record is not None
    assert record.state is State.READY


class Context:
    """Lambda's context, its time left read from a script: the first value, then the next..."""

    def __init__(self, *seconds_left: float) -> None:
        self._left = list(seconds_left)

    def get_remaining_time_in_millis(self) -> int:
        seconds = self._left.pop(0) if len(self._left) > 1 else self._left[0]
        return int(seconds * 1000)


def rejected_with(aws: Aws, code: str) -> None:
    record = aws.catalog.get(KEY)
    assert record is not None
    assert (record.state, record.error_code) == (State.REJECTED, code)
    [message] = aws.notifications()
    assert (message["state"], message["error_code"]) == ("rejected", code)
    assert aws.catalog.usage("alice").originals == 1


def test_an_exception_no_typed_error_names_rejects_the_original_once(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    import struct

    from chalicelib.originals import lifecycle

    def unmapped(*_: object, **__: object) -> None:
        raise struct.error("unpack requires a buffer of 4 bytes")  # as Pillow's GIF reader may

    monkeypatch.setattr(lifecycle, "describe", unmapped)
    assert aws.handle(aws.put(KEY, photo())) == []  # not retried
    rejected_with(aws, "original_unreadable")
    assert aws.variants() == {}


def test_a_gif_cut_inside_a_later_frame_is_rejected_not_retried(aws: Aws) -> None:
    # Cut inside the third frame's header: Pillow raised IndexError here, which was retried.
    assert aws.handle(aws.put(KEY, corpus.animated("GIF", 5)[:310])) == []
    record = aws.catalog.get(KEY)
    assert record is not None
    assert record.state is State.REJECTED
    assert aws.catalog.usage("alice").originals == 1


def test_a_storage_outage_while_rendering_presets_is_retried_not_rejected(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chalicelib.errors import StorageUnavailable

    def down(*_: object, **__: object) -> bool:
        raise StorageUnavailable("storage is unavailable, try again")

    created = aws.put(KEY, photo())
    monkeypatch.setattr(ImageStore, "put_new", down)
    assert aws.handle(created) == [created["messageId"]]
    assert aws.catalog.get(KEY) is None
    monkeypatch.undo()
    assert aws.handle(created) == []
    assert aws.catalog.get(KEY).state is State.READY  # type: ignore[union-attr]


def test_an_original_that_runs_out_of_time_is_rejected_as_too_complex(aws: Aws) -> None:
    from chalicelib.originals.lifecycle import START_SECONDS, STEP_SECONDS

    created = aws.put(KEY, photo())
    # Enough to start; then, by the first preset, less than a step's time is left.
    context = Context(START_SECONDS, STEP_SECONDS - 1)
    answer = aws.lifecycle.handle_batch([created], context)
    assert answer == {"batchItemFailures": []}  # not retried
    rejected_with(aws, "original_too_complex")


def test_a_message_without_time_to_start_comes_back_untouched(aws: Aws) -> None:
    from chalicelib.originals.lifecycle import START_SECONDS

    first, second = aws.put(KEY, photo()), aws.put("uploads/alice/2/dog.jpg", photo())
    context = Context(START_SECONDS, START_SECONDS - 1)  # time for the first only
    answer = aws.lifecycle.handle_batch([first, second], context)
    assert answer == {"batchItemFailures": [{"itemIdentifier": second["messageId"]}]}
    assert aws.catalog.get(KEY).state is State.READY  # type: ignore[union-attr]
    assert aws.catalog.get("uploads/alice/2/dog.jpg") is None
