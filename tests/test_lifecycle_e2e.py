"""The originals' lifecycle through the real local stack, as `make run` runs it.

s3rver forwards its object events to moto's SQS; the poller invokes
``app:on_original_event`` the way Lambda's event source mapping does; the
handler writes presets to s3rver and records to moto's DynamoDB; browsers'
requests go through the website and `chalice local`.  Uploads go through the
real presigned POST.  Waits poll for a condition with a deadline: never a
fixed sleep, never a timing assertion.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
import requests

from scripts.local import records
from scripts.local.proxy import Answer, Proxy, Request
from scripts.local.stack import (
    APP_EVENT_HANDLER,
    PRESET_NOTE,
    EventSettings,
    LocalStack,
    example_urls,
    free_port,
)
from tests.support import corpus, scenes, started_stack
from tests.support.s3_events import notification
from tests.support.waiting import WAIT, wait_for

pytestmark = pytest.mark.e2e

PRESETS = ("100x", "64x64-cover")
MAX_RECEIVES = 3


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    with started_stack(
        tmp_path_factory,
        "lifecycle",
        {"PRESET_SIZES": ",".join(PRESETS)},
        event_handler=APP_EVENT_HANDLER,
        events=EventSettings(visibility_timeout=2, max_receive_count=MAX_RECEIVES),
    ) as started:
        yield started


def meta(stack: LocalStack, key: str) -> dict[str, Any] | None:
    response = requests.get(f"{stack.api_url}/meta/{quote(key)}", timeout=30)
    return response.json() if response.status_code == 200 else None  # type: ignore[no-any-return]


def meta_status(stack: LocalStack, key: str) -> int:
    return requests.get(f"{stack.api_url}/meta/{quote(key)}", timeout=30).status_code


def meta_with(stack: LocalStack, key: str, **wanted: Any) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        found = meta(stack, key)
        return found if found and all(found.get(k) == v for k, v in wanted.items()) else None

    return wait_for(check, f"{key} to be {wanted}")


def variants_of(stack: LocalStack, key: str) -> set[str]:
    """Every object of the public bucket that belongs to ``key``: variants and ledger entries."""
    listed = stack.s3_client().list_objects_v2(Bucket=stack.bucket).get("Contents", [])
    return {item["Key"] for item in listed if item["Key"].endswith(key)}


def website(stack: LocalStack, size: str, key: str) -> requests.Response:
    return requests.get(f"{stack.public_url}/{size}/{quote(key)}", timeout=30)


def notifications_for(stack: LocalStack, key: str) -> list[dict[str, Any]]:
    """The messages published about ``key`` so far (read from the subscribed queue)."""
    sqs = stack.aws_client("sqs")
    received = sqs.receive_message(
        QueueUrl=stack.notifications_queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
    ).get("Messages", [])
    messages = [json.loads(json.loads(m["Body"])["Message"]) for m in received]
    for message in received:
        sqs.delete_message(
            QueueUrl=stack.notifications_queue_url, ReceiptHandle=message["ReceiptHandle"]
        )
    return [m for m in messages if m["key"] == key]


def queues_drained(stack: LocalStack) -> bool:
    return stack.queue_depth(stack.events_queue_url) == 0


def test_upload_overwrite_delete_through_the_pipeline(stack: LocalStack) -> None:
    first = stack.upload(corpus.jpeg((1200, 900)))
    key = first["key"]
    record = meta_with(stack, key, state="ready")
    assert (record["width"], record["height"], record["format"]) == (1200, 900, "JPEG")
    assert set(record["presets"]) == set(PRESETS)
    for size in PRESETS:  # made on upload: the first view is a plain hit
        hit = website(stack, size, key)
        assert hit.status_code == 200
        assert hit.history == []
    # Subscribers heard of it once, through SNS (a queue subscribed to the topic).
    told = wait_for(lambda: notifications_for(stack, key), "the SNS notification")
    assert [(m["state"], m["variant_url"]) for m in told] == [("ready", first["variant_url"])]
    assert set(told[0]["presets"]) == set(PRESETS)
    missed = website(stack, "300x", key)  # a size nobody made yet: a miss
    assert [r.status_code for r in missed.history] == [307, 307]
    assert corpus.opened(missed.content).size == (300, 225)

    # Overwrite with a different picture: every old variant goes, the new one shows.
    stack.put_original(key, corpus.jpeg((500, 800)), "image/jpeg")
    meta_with(stack, key, state="ready", width=500)
    assert f"300x/{key}" not in variants_of(stack, key)
    assert corpus.opened(website(stack, "300x", key).content).size == (300, 480)
    assert corpus.opened(website(stack, "100x", key).content).size == (100, 160)

    # Delete: every variant and ledger entry goes; the website says the original is gone.
    stack.s3_client().delete_object(Bucket=stack.originals_bucket, Key=key)
    wait_for(lambda: meta_status(stack, key) == 410, "the record to say deleted")
    wait_for(lambda: not variants_of(stack, key), "every variant and entry to go")
    gone = website(stack, "300x", key)
    assert gone.status_code == 404
    assert gone.json()["code"] == "original_not_found"
    wait_for(lambda: queues_drained(stack), "the queue to drain")


def test_a_non_image_is_rejected_and_nothing_is_rendered(stack: LocalStack) -> None:
    created = stack.upload(b"%PDF-1.7 this is not a photo", "report.jpg")
    record = meta_with(stack, created["key"], state="rejected")
    assert record["error_code"] == "unsupported_format"
    assert variants_of(stack, created["key"]) == set()
    wait_for(lambda: queues_drained(stack), "the queue to drain")


def test_duplicate_and_reordered_deliveries_leave_the_same_state(stack: LocalStack) -> None:
    created = stack.upload(corpus.jpeg((800, 600)))
    key = created["key"]
    meta_with(stack, key, state="ready")
    head = stack.s3_client().head_object(Bucket=stack.originals_bucket, Key=key)
    usage_before = requests.get(
        f"{stack.api_url}/uploads",
        headers={"Authorization": f"Bearer {stack.upload_token}"},
        timeout=30,
    ).json()["usage"]
    before = variants_of(stack, key)
    sqs = stack.aws_client("sqs")
    # The same upload's event again, and an older "removed" that arrives after it.
    table = stack.aws_client("dynamodb")
    item = table.get_item(
        TableName=stack.metadata_table, Key={"pk": {"S": f"original#{key}"}, "sk": {"S": "meta"}}
    )["Item"]
    applied = item["sequencer"]["S"].lstrip("0")
    for body in (
        notification(
            "ObjectCreated:Post",
            key,
            applied,
            eTag=head["ETag"].strip('"'),
            size=head["ContentLength"],
        ),
        notification("ObjectRemoved:Delete", key, "0" * 17 + "1"),
    ):
        sqs.send_message(QueueUrl=stack.events_queue_url, MessageBody=body)
    wait_for(lambda: queues_drained(stack), "the injected messages to be handled")
    meta_with(stack, key, state="ready")
    owned = requests.get(
        f"{stack.api_url}/uploads",
        params={"key": key},
        headers={"Authorization": f"Bearer {stack.upload_token}"},
        timeout=30,
    ).json()
    assert owned["etag"] == head["ETag"]
    assert variants_of(stack, key) == before
    usage_after = requests.get(
        f"{stack.api_url}/uploads",
        headers={"Authorization": f"Bearer {stack.upload_token}"},
        timeout=30,
    ).json()["usage"]
    assert usage_after == usage_before


def test_a_message_that_keeps_failing_ends_in_the_dead_letter_queue(stack: LocalStack) -> None:
    sqs = stack.aws_client("sqs")
    good = stack.upload(corpus.jpeg((300, 200)))
    # A batch with a message the handler can never handle, beside a good one.
    sqs.send_message(QueueUrl=stack.events_queue_url, MessageBody="not an S3 notification")
    meta_with(stack, good["key"], state="ready")

    def dead_lettered() -> list[dict[str, Any]]:
        return sqs.receive_message(  # type: ignore[no-any-return]
            QueueUrl=stack.events_dlq_url, AttributeNames=["ApproximateReceiveCount"]
        ).get("Messages", [])

    [dead] = wait_for(dead_lettered, "the bad message in the dead-letter queue")
    assert dead["Body"] == "not an S3 notification"
    poller_log = stack.log("poller")
    assert poller_log.count("malformed message") >= MAX_RECEIVES
    wait_for(lambda: queues_drained(stack), "the queue to drain")


def test_a_new_focal_point_purges_the_focus_crops_made_with_the_old_one(stack: LocalStack) -> None:
    auth = {"Authorization": f"Bearer {stack.upload_token}"}
    asked = {"filename": "focus.jpg", "content_type": "image/jpeg", "focus": "0.05,0.5"}
    created = requests.post(f"{stack.api_url}/uploads", json=asked, headers=auth, timeout=30)
    form, key = created.json()["upload"], created.json()["key"]
    picture = scenes.with_mark((1200, 600), (0.05, 0.5), 30)
    files = {"file": ("focus.jpg", corpus.encode(picture, "JPEG"))}
    assert requests.post(form["url"], data=form["fields"], files=files, timeout=30).ok
    meta_with(stack, key, state="ready")
    assert scenes.marked(corpus.opened(website(stack, "100x100-cover-focus", key).content)) > 20
    kept = {size: website(stack, size, key).content for size in ("100x100-cover-smart", "100x")}
    s3 = stack.s3_client()
    etag = s3.head_object(Bucket=stack.originals_bucket, Key=key)["ETag"]

    changed = requests.put(
        f"{stack.api_url}/meta/{quote(key)}/focus",
        json={"focus": "1,0.5"},
        headers=auth,
        timeout=30,
    )
    assert changed.status_code == 200, changed.text
    assert s3.head_object(Bucket=stack.originals_bucket, Key=key)["ETag"] == etag
    wait_for(
        lambda: f"100x100-cover-focus/{key}" not in variants_of(stack, key), "the old crop to go"
    )
    for size, body in kept.items():  # not made with the focal point: still there, a hit
        again = website(stack, size, key)
        assert (again.history, again.content) == ([], body), size
    assert scenes.marked(corpus.opened(website(stack, "100x100-cover-focus", key).content)) == 0
    wait_for(lambda: queues_drained(stack), "the queue to drain")


class HeldRead:
    """A proxy behaviour: the first GET of one object is read from s3rver at once, and answered
    only once released (a miss that read an original, then took its time to render)."""

    def __init__(self) -> None:
        self.path: str | None = None
        self.read = threading.Event()
        self.release = threading.Event()

    def __call__(self, proxy: Proxy, request: Request) -> Answer:
        answer = proxy.forward(request)
        if request.method == "GET" and self.path and request.path.partition("?")[0] == self.path:
            self.path = None
            self.read.set()
            self.release.wait(WAIT)
        return answer


@pytest.fixture(scope="module")
def slow_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalStack, HeldRead]]:
    """A stack whose app reaches S3 through a proxy that can hold one read; rechecks after 1 s."""
    held = HeldRead()
    s3_port = free_port()
    with Proxy(f"http://127.0.0.1:{s3_port}", behaviour=held) as proxy:
        stack = LocalStack(
            tmp_path_factory.mktemp("slow-miss"),
            s3_port=s3_port,
            api_port=free_port(),
            app_env={
                "S3_ENDPOINT_URL": proxy.url,
                "RECHECK_DELAY_SECONDS": "1",
                "PRESET_SIZES": "",
            },
            event_handler=APP_EVENT_HANDLER,
            events=EventSettings(visibility_timeout=30),
        )
        with stack:
            yield stack, held


def test_a_slow_miss_of_a_deleted_original_stores_nothing(
    slow_stack: tuple[LocalStack, HeldRead],
) -> None:
    stack, held = slow_stack
    key = "slow/cat.jpg"

    def rechecks() -> int:  # the events function's line per handled recheck of the key
        lines = records.read(records.log_paths(stack.data_dir))
        return sum(line.get("name") == "recheck" and line.get("key") == key for line in lines)

    stack.put_original(key, corpus.jpeg((1200, 900)), "image/jpeg")
    meta_with(stack, key, state="ready")
    wait_for(lambda: rechecks() >= 1, "the upload's recheck")
    # A miss reads the original, then is slow: the delete, its purge and its recheck all
    # happen before it stores anything.
    held.path = f"/{stack.originals_bucket}/{key}"
    answers: list[requests.Response] = []
    miss = threading.Thread(target=lambda: answers.append(website(stack, "300x", key)))
    miss.start()
    assert held.read.wait(WAIT), "the miss never read the original"
    stack.s3_client().delete_object(Bucket=stack.originals_bucket, Key=key)
    wait_for(lambda: meta_status(stack, key) == 410, "the record to say deleted")
    wait_for(lambda: rechecks() >= 2, "the delete's recheck")
    held.release.set()
    miss.join(WAIT)
    [answer] = answers
    assert answer.status_code == 404
    assert answer.json()["code"] == "original_not_found"
    listed = stack.s3_client().list_objects_v2(Bucket=stack.bucket).get("Contents", [])
    assert [item["Key"] for item in listed if key in item["Key"]] == []  # nor a ledger entry
    gone = website(stack, "300x", key)
    assert gone.status_code == 404
    wait_for(lambda: queues_drained(stack), "the queue to drain")


def usage(stack: LocalStack) -> dict[str, int]:
    answer = requests.get(f"{stack.api_url}/uploads", headers=owner(stack), timeout=30)
    answer.raise_for_status()
    return answer.json()["usage"]  # type: ignore[no-any-return]


def owner(stack: LocalStack) -> dict[str, str]:
    return {"Authorization": f"Bearer {stack.upload_token}"}


def test_the_owner_replaces_then_deletes_through_the_api(stack: LocalStack) -> None:
    before = usage(stack)
    key = stack.upload(corpus.jpeg((1200, 900)), filename="mine.jpg")["key"]
    meta_with(stack, key, state="ready", width=1200)
    assert usage(stack)["originals"] == before["originals"] + 1
    assert corpus.opened(website(stack, "300x", key).content).size == (300, 225)

    # Replace: a form for the same key; the new pixels are what every size shows.
    replaced = stack.upload(corpus.png_rgba((400, 800)), "new.png", "image/png", replace=key)
    assert replaced["key"] == key
    meta_with(stack, key, state="ready", width=400, format="PNG")
    assert corpus.opened(website(stack, "300x", key).content).size == (300, 600)
    assert usage(stack)["originals"] == before["originals"] + 1  # one key, one entry

    # Delete: 204, then the pipeline purges, records the tombstone and drops the usage.
    deleted = requests.delete(f"{stack.api_url}/uploads/{quote(key)}", headers=owner(stack))
    assert deleted.status_code == 204, deleted.text
    wait_for(lambda: meta_status(stack, key) == 410, "the record to say deleted")
    wait_for(lambda: not variants_of(stack, key), "every variant and entry to go")
    wait_for(lambda: usage(stack) == before, "the usage to drop back")
    again = requests.delete(f"{stack.api_url}/uploads/{quote(key)}", headers=owner(stack))
    assert again.status_code == 410  # to its owner; to anyone else, 404
    wait_for(lambda: queues_drained(stack), "the queue to drain")


def test_make_runs_example_urls_tell_the_truth(stack: LocalStack) -> None:
    keys = stack.upload_samples()
    for key in keys:
        meta_with(stack, key, state="ready")
    for line in example_urls(stack.public_url, keys, ",".join(PRESETS)):
        url, note = (part.strip() for part in line.split("\n"))
        first = requests.get(url, allow_redirects=False, timeout=30)
        expected = 200 if note == f"({PRESET_NOTE})" else 307
        assert first.status_code == expected, (url, note)
