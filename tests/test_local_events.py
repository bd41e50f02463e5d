"""The local event pipeline: moto's SQS/DynamoDB/SNS, s3rver's forwarded events, the poller.

Everything here runs through real processes (moto's server, s3rver, the
poller) on loopback, except the poller's pure rules at the top.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus, unquote_plus

import boto3
import pytest
import requests

from chalicelib.config import EVENTS_TIMEOUT_SECONDS, VISIBILITY_PER_FUNCTION_TIMEOUT
from chalicelib.originals.metadata import TABLE_SCHEMA
from scripts.local import aws
from scripts.local.lambda_poller import LambdaContext, failed_message_ids, lambda_event, parse_args
from scripts.local.stack import ROOT, EventSettings, LocalStack, free_port
from tests.support.waiting import wait_for

# The poller's rules, no processes --------------------------------------------------

BATCH = ["m1", "m2", "m3"]


@pytest.mark.parametrize(
    ("response", "failed"),
    [
        (None, set()),
        ({}, set()),
        ({"batchItemFailures": []}, set()),
        ({"batchItemFailures": None}, set()),
        ({"batchItemFailures": [{"itemIdentifier": "m2"}]}, {"m2"}),
        ({"batchItemFailures": [{"itemIdentifier": "m1"}, {"itemIdentifier": "m3"}]}, {"m1", "m3"}),
        # Lambda's rules: any bad identifier fails the whole batch.
        ({"batchItemFailures": [{"itemIdentifier": ""}]}, set(BATCH)),
        ({"batchItemFailures": [{"itemIdentifier": None}]}, set(BATCH)),
        ({"batchItemFailures": [{"itemIdentifer": "m1"}]}, set(BATCH)),
        ({"batchItemFailures": [{"itemIdentifier": "m1"}, {"itemIdentifier": "x"}]}, set(BATCH)),
        ({"batchItemFailures": ["m1"]}, set(BATCH)),
        ("not a response", set(BATCH)),
    ],
)
def test_failed_messages_follow_lambdas_batch_item_failure_rules(
    response: Any, failed: set[str]
) -> None:
    assert failed_message_ids(response, BATCH) == failed


def test_the_poller_has_the_stacks_timeouts_and_a_context_that_counts_down() -> None:
    resources = json.loads((ROOT / "infra" / "resources.json").read_text())["Resources"]
    [queue] = [
        r["Properties"]
        for r in resources.values()
        if r.get("Type") == "AWS::SQS::Queue" and "RedrivePolicy" in r["Properties"]
    ]
    stack_rule = queue["VisibilityTimeout"] / EVENTS_TIMEOUT_SECONDS
    assert stack_rule == VISIBILITY_PER_FUNCTION_TIMEOUT
    args = parse_args(["--handler", "app:on_original_event", "--queue-url", "q"])
    assert (args.timeout, args.visibility_timeout) == (EVENTS_TIMEOUT_SECONDS, 720)
    args = parse_args(["--handler", "a:b", "--queue-url", "q", "--timeout", "10"])
    assert args.visibility_timeout == 60
    assert EventSettings().queue_visibility == queue["VisibilityTimeout"]
    assert EventSettings(function_timeout=2).queue_visibility == 12
    context = LambdaContext("f", 120, "us-east-1")
    assert 119_000 < context.get_remaining_time_in_millis() <= 120_000


def test_a_received_message_becomes_a_record_of_lambdas_sqs_event() -> None:
    message = {
        "MessageId": "id-1",
        "ReceiptHandle": "handle-1",
        "Body": "hello",
        "MD5OfBody": "5d41402abc4b2a76b9719d911017c592",
        "Attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1"},
        "MessageAttributes": {"kind": {"DataType": "String", "StringValue": "original"}},
        "MD5OfMessageAttributes": "abc",
    }
    arn = "arn:aws:sqs:eu-west-1:123456789012:image-events"
    assert lambda_event([message], arn) == {
        "Records": [
            {
                "messageId": "id-1",
                "receiptHandle": "handle-1",
                "body": "hello",
                "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1"},
                "messageAttributes": {
                    "kind": {
                        "stringValue": "original",
                        "binaryValue": None,
                        "stringListValues": [],
                        "binaryListValues": [],
                        "dataType": "String",
                    }
                },
                "md5OfBody": "5d41402abc4b2a76b9719d911017c592",
                "md5OfMessageAttributes": "abc",
                "eventSource": "aws:sqs",
                "eventSourceARN": arn,
                "awsRegion": "eu-west-1",
            }
        ]
    }


# Shared by the process tests ------------------------------------------------------


def receive_all(sqs: Any, queue_url: str, wait_seconds: int = 1) -> list[dict[str, Any]]:
    response = sqs.receive_message(
        QueueUrl=queue_url,
        MaxNumberOfMessages=10,
        WaitTimeSeconds=wait_seconds,
        AttributeNames=["All"],
    )
    return list(response.get("Messages", []))


def events_stack(tmp_path: Path, **options: Any) -> LocalStack:
    return LocalStack(tmp_path, s3_port=free_port(), api_port=free_port(), **options)


# s3rver's object events, forwarded ------------------------------------------------

KEYS = [
    "plain.jpg",
    "with space/and+plus.jpg",
    "nested/deeper/still/ünïcødé 日本.png",
    "odd (1) !'*~ chars.jpg",
]
SEQUENCER_LENGTH = 18


@pytest.fixture(scope="module")
def forwarding(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """A stack without a poller, so the tests read the events queue themselves."""
    with events_stack(tmp_path_factory.mktemp("forwarding")) as stack:
        yield stack


def sequencer(record: dict[str, Any]) -> str:
    return str(record["s3"]["object"]["sequencer"])


def put_sentinel(stack: LocalStack) -> str:
    key = f"sentinel/{time.monotonic_ns()}"
    stack.s3_client().put_object(Bucket=stack.events_bucket, Key=key, Body=b"")
    return key


def records_until_sentinel(stack: LocalStack) -> list[dict[str, Any]]:
    """Every record sent before a sentinel PUT's, in order; the queue is left empty.

    s3rver sends one message at a time in event order, so once the sentinel's
    message is in the queue every earlier one is too.
    """
    sentinel = put_sentinel(stack)
    sqs = stack.aws_client("sqs")
    messages: list[dict[str, Any]] = []

    def sentinel_received() -> bool:
        messages.extend(receive_all(sqs, stack.events_queue_url))
        return any(sentinel in m["Body"] for m in messages)

    wait_for(sentinel_received, "the sentinel's event")
    messages.extend(receive_all(sqs, stack.events_queue_url, wait_seconds=0))
    for message in messages:
        sqs.delete_message(QueueUrl=stack.events_queue_url, ReceiptHandle=message["ReceiptHandle"])
    bodies = [json.loads(m["Body"]) for m in messages]
    assert all(len(body["Records"]) == 1 for body in bodies), bodies
    # Sequencers grow with every event s3rver sends: the order they happened in.
    records = sorted((body["Records"][0] for body in bodies), key=sequencer)
    return [
        r for r in records if not unquote_plus(r["s3"]["object"]["key"]).startswith("sentinel/")
    ]


def presigned_post(stack: LocalStack, key: str, body: bytes) -> None:
    form = stack.s3_client().generate_presigned_post(Bucket=stack.events_bucket, Key=key)
    response = requests.post(
        form["url"], data=form["fields"], files={"file": ("upload", body)}, timeout=10
    )
    assert response.status_code == 204, response.text


def summary(record: dict[str, Any]) -> tuple[str, str, int | None, str | None]:
    s3_object = record["s3"]["object"]
    return (
        record["eventName"],
        unquote_plus(s3_object["key"]),
        s3_object.get("size"),
        s3_object.get("eTag"),
    )


def md5(body: bytes) -> str:
    return hashlib.md5(body).hexdigest()


@pytest.mark.e2e
@pytest.mark.parametrize("key", KEYS)
def test_put_post_copy_and_delete_each_send_one_s3_notification(
    forwarding: LocalStack, key: str
) -> None:
    client, bucket = forwarding.s3_client(), forwarding.events_bucket
    put_body, post_body = b"put" * 10, b"posted" * 3
    copy_key = f"copies/{key}"
    client.put_object(Bucket=bucket, Key=key, Body=put_body)
    presigned_post(forwarding, key, post_body)
    client.copy_object(Bucket=bucket, Key=copy_key, CopySource={"Bucket": bucket, "Key": key})
    client.delete_object(Bucket=bucket, Key=key)
    records = records_until_sentinel(forwarding)
    assert [summary(r) for r in records] == [
        ("ObjectCreated:Put", key, len(put_body), md5(put_body)),
        ("ObjectCreated:Post", key, len(post_body), md5(post_body)),
        ("ObjectCreated:Copy", copy_key, len(post_body), md5(post_body)),
        ("ObjectRemoved:Delete", key, None, None),
    ]
    # In the order the operations were made, which sorting by sequencer gave.
    same_key = [sequencer(r) for r in records if summary(r)[1] == key]
    assert len(same_key) == len(set(same_key)) == 3


@pytest.mark.e2e
def test_a_record_has_the_fields_and_encoding_s3_sends(forwarding: LocalStack) -> None:
    key = KEYS[1]
    forwarding.s3_client().put_object(Bucket=forwarding.events_bucket, Key=key, Body=b"x")
    (record,) = records_until_sentinel(forwarding)
    assert record["eventVersion"] == "2.1"
    assert record["eventSource"] == "aws:s3"
    assert record["awsRegion"] == "us-east-1"
    assert datetime.fromisoformat(record["eventTime"]).tzinfo is not None
    assert record["s3"]["s3SchemaVersion"] == "1.0"
    assert record["s3"]["bucket"]["name"] == forwarding.events_bucket
    assert record["s3"]["bucket"]["arn"] == f"arn:aws:s3:::{forwarding.events_bucket}"
    assert record["s3"]["object"]["key"] == quote_plus(key, safe="/") == "with+space/and%2Bplus.jpg"
    sequencer = record["s3"]["object"]["sequencer"]
    assert len(sequencer) == SEQUENCER_LENGTH
    assert sequencer == sequencer.upper()
    int(sequencer, 16)


@pytest.mark.e2e
@pytest.mark.parametrize("key", KEYS)
def test_the_key_is_encoded_as_quote_plus_does(forwarding: LocalStack, key: str) -> None:
    forwarding.s3_client().put_object(Bucket=forwarding.events_bucket, Key=key, Body=b"x")
    (record,) = records_until_sentinel(forwarding)
    assert record["s3"]["object"]["key"] == quote_plus(key, safe="/")


@pytest.mark.e2e
def test_other_buckets_send_nothing(forwarding: LocalStack) -> None:
    client = forwarding.s3_client()
    client.put_object(Bucket=forwarding.bucket, Key="300x300/plain.jpg", Body=b"variant")
    client.delete_object(Bucket=forwarding.bucket, Key="300x300/plain.jpg")
    assert records_until_sentinel(forwarding) == []


@pytest.mark.e2e
def test_a_multi_object_delete_sends_one_event_per_deleted_key(forwarding: LocalStack) -> None:
    client, bucket = forwarding.s3_client(), forwarding.events_bucket
    keys = ["batch/one.jpg", "batch/two words.jpg"]
    for key in keys:
        client.put_object(Bucket=bucket, Key=key, Body=b"x")
    client.delete_objects(
        Bucket=bucket, Delete={"Objects": [{"Key": k} for k in [*keys, "batch/absent.jpg"]]}
    )
    events = [summary(r)[:2] for r in records_until_sentinel(forwarding)]
    removed = [event for event in events if event[0].startswith("ObjectRemoved:")]
    assert sorted(removed) == [("ObjectRemoved:Delete", k) for k in keys]


@pytest.mark.e2e
def test_a_completed_multipart_upload_is_labelled_as_s3_does(forwarding: LocalStack) -> None:
    client, bucket, key = forwarding.s3_client(), forwarding.events_bucket, "big/upload.jpg"
    upload = client.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    part = client.upload_part(Bucket=bucket, Key=key, UploadId=upload, PartNumber=1, Body=b"p")
    client.complete_multipart_upload(
        Bucket=bucket,
        Key=key,
        UploadId=upload,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]},
    )
    assert [summary(r)[:3] for r in records_until_sentinel(forwarding)] == [
        ("ObjectCreated:CompleteMultipartUpload", key, 1)
    ]


@pytest.mark.e2e
def test_sequencers_keep_growing_across_an_s3rver_restart(forwarding: LocalStack) -> None:
    client, bucket, key = forwarding.s3_client(), forwarding.events_bucket, "again.jpg"
    client.put_object(Bucket=bucket, Key=key, Body=b"before")
    (before,) = records_until_sentinel(forwarding)
    forwarding.restart_s3()
    client.put_object(Bucket=bucket, Key=key, Body=b"after")
    (after,) = records_until_sentinel(forwarding)
    assert after["s3"]["object"]["sequencer"] > before["s3"]["object"]["sequencer"]


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("queue_url", "attempts"),
    [
        # moto answers that the queue does not exist: final, not retried.
        (lambda aws_url: f"{aws_url}/123456789012/no-such-queue", "after 1 attempt "),
        # Nothing listens there: refused connections are retried, up to 5 attempts.
        (lambda aws_url: f"http://127.0.0.1:{free_port()}/123456789012/q", "after 5 attempts "),
    ],
    ids=["no-such-queue", "nothing-listening"],
)
def test_an_event_that_cannot_be_sent_is_logged_loudly(
    forwarding: LocalStack, tmp_path: Path, queue_url: Any, attempts: str
) -> None:
    port = free_port()
    env = {
        **os.environ,
        **forwarding.s3rver_events_env(),
        "S3RVER_EVENTS_QUEUE_URL": queue_url(forwarding.aws_url),
    }
    log = tmp_path / "s3rver.log"
    script = ROOT / "scripts" / "local" / "s3rver.js"
    command = ["node", "--openssl-legacy-provider", str(script), str(tmp_path / "s3")]
    with log.open("wb") as out:
        s3rver = subprocess.Popen(
            [*command, "127.0.0.1", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_for(lambda: "listening" in log.read_text(), "s3rver")
        client = boto3.client(
            "s3",
            endpoint_url=f"http://127.0.0.1:{port}",
            region_name="us-east-1",
            aws_access_key_id="S3RVER",
            aws_secret_access_key="S3RVER",
        )
        client.create_bucket(Bucket=forwarding.events_bucket)
        client.put_object(Bucket=forwarding.events_bucket, Key="lost one.jpg", Body=b"x")
        lost = wait_for(
            lambda: [line for line in log.read_text().splitlines() if "S3 EVENT LOST" in line],
            "the lost event's log line",
        )
    finally:
        os.killpg(s3rver.pid, signal.SIGTERM)
        s3rver.wait(timeout=10)
    assert attempts in lost[0]
    assert "lost+one.jpg" in log.read_text()


# The local AWS services -----------------------------------------------------------


@pytest.mark.e2e
def test_the_metadata_table_has_the_one_schema(forwarding: LocalStack) -> None:
    table = forwarding.aws_client("dynamodb").describe_table(TableName=forwarding.metadata_table)
    table = table["Table"]
    assert table["KeySchema"] == TABLE_SCHEMA["KeySchema"]
    assert sorted(table["AttributeDefinitions"], key=str) == sorted(
        TABLE_SCHEMA["AttributeDefinitions"], key=str
    )
    (index,) = table["GlobalSecondaryIndexes"]
    (expected,) = TABLE_SCHEMA["GlobalSecondaryIndexes"]
    assert {k: index[k] for k in expected} == expected
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"


@pytest.mark.e2e
def test_the_events_queue_redrives_to_its_dlq(forwarding: LocalStack) -> None:
    sqs = forwarding.aws_client("sqs")
    attributes = sqs.get_queue_attributes(
        QueueUrl=forwarding.events_queue_url, AttributeNames=["All"]
    )["Attributes"]
    dlq_arn = aws.queue_arn(sqs, forwarding.events_dlq_url)
    assert json.loads(attributes["RedrivePolicy"]) == {
        "deadLetterTargetArn": dlq_arn,
        "maxReceiveCount": 3,
    }
    assert attributes["VisibilityTimeout"] == str(6 * EVENTS_TIMEOUT_SECONDS)  # the stack's rule
    assert attributes["QueueArn"] == forwarding.events_queue_arn


@pytest.mark.e2e
def test_clients_built_from_the_app_env_reach_moto_and_see_published_messages(
    forwarding: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Exactly what the app does: no endpoint_url, only the environment.
    for name, value in forwarding.aws_env().items():
        monkeypatch.setenv(name, value)
    sns, sqs = boto3.client("sns"), boto3.client("sqs")
    assert sns.meta.endpoint_url == sqs.meta.endpoint_url == forwarding.aws_url
    assert boto3.client("dynamodb").meta.endpoint_url == forwarding.aws_url
    sns.publish(TopicArn=os.environ["NOTIFY_TOPIC_ARN"], Message='{"key": "a.jpg"}', Subject="s")
    (message,) = wait_for(
        lambda: receive_all(sqs, forwarding.notifications_queue_url), "the notification"
    )
    envelope = json.loads(message["Body"])
    assert envelope["Message"] == '{"key": "a.jpg"}'
    assert envelope["TopicArn"] == forwarding.notify_topic_arn


# The poller, as Lambda's SQS event source mapping ---------------------------------

VISIBILITY = 1
MAX_RECEIVES = 3


@pytest.fixture(scope="module")
def polling(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """A stack whose poller runs tests/event_handler.py, with 1 s function and visibility
    timeouts."""
    data = tmp_path_factory.mktemp("polling")
    stack = events_stack(
        data,
        event_handler="tests.support.event_handler:handle",
        events=EventSettings(
            function_timeout=VISIBILITY,
            visibility_timeout=VISIBILITY,
            max_receive_count=MAX_RECEIVES,
        ),
        app_env={"EVENT_HANDLER_LOG": str(data / "handler.jsonl")},
    )
    with stack:
        yield stack


def handler_log(stack: LocalStack) -> list[dict[str, Any]]:
    path = Path(stack.app_env["EVENT_HANDLER_LOG"])
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def invocations(stack: LocalStack, ids: list[str], phase: str = "finished") -> list[dict[str, Any]]:
    """The handler's log entries of this phase that include any of ``ids``."""
    return [
        e for e in handler_log(stack) if e["phase"] == phase and set(e["message_ids"]) & set(ids)
    ]


def send(stack: LocalStack, *asks: dict[str, Any], **attributes: Any) -> list[str]:
    """One message per ask (the test handler's instructions); their ids."""
    entries = [
        {
            "Id": str(n),
            "MessageBody": json.dumps({**ask, "nonce": time.monotonic_ns()}),
            **attributes,
        }
        for n, ask in enumerate(asks)
    ]
    response = stack.aws_client("sqs").send_message_batch(
        QueueUrl=stack.events_queue_url, Entries=entries
    )
    assert not response.get("Failed"), response
    by_entry = {m["Id"]: m["MessageId"] for m in response["Successful"]}
    return [by_entry[str(n)] for n in range(len(asks))]


def send_while_stopped(stack: LocalStack, *asks: dict[str, Any]) -> list[str]:
    """Send with the poller stopped, so its first ReceiveMessage gets them all in one batch."""
    stack.stop_process("poller")
    ids = send(stack, *asks)
    stack.start_poller()
    return ids


def in_queue(stack: LocalStack, queue_url: str | None = None) -> int:
    """Messages in the queue, visible or being processed."""
    attributes = stack.aws_client("sqs").get_queue_attributes(
        QueueUrl=queue_url or stack.events_queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(
        attributes["ApproximateNumberOfMessagesNotVisible"]
    )


def wait_until_settled(stack: LocalStack) -> None:
    wait_for(lambda: in_queue(stack) == 0, "the events queue to empty")


def deliveries(stack: LocalStack, ids: list[str]) -> Counter[str]:
    """How many finished invocations each of ``ids`` was in."""
    return Counter(m for e in invocations(stack, ids) for m in e["message_ids"] if m in ids)


def stats(stack: LocalStack) -> dict[str, int]:
    return dict(json.loads(stack.poller_stats_path.read_text()))


@pytest.mark.e2e
def test_a_batch_that_succeeds_is_deleted(polling: LocalStack) -> None:
    before = stats(polling)
    ids = send_while_stopped(polling, {}, {}, {})
    wait_until_settled(polling)
    (batch,) = invocations(polling, ids)
    assert sorted(batch["message_ids"]) == sorted(ids)
    assert deliveries(polling, ids) == dict.fromkeys(ids, 1)
    assert stats(polling)["messages_succeeded"] - before["messages_succeeded"] == 3


@pytest.mark.e2e
def test_the_handler_gets_lambdas_sqs_event_and_context(polling: LocalStack) -> None:
    attribute = {"MessageAttributes": {"kind": {"DataType": "String", "StringValue": "test"}}}
    (message_id,) = send(polling, {}, **attribute)
    wait_until_settled(polling)
    (entry,) = invocations(polling, [message_id])
    (record,) = entry["event"]["Records"]
    assert record["messageId"] == message_id
    assert record["md5OfBody"] == md5(record["body"].encode())
    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"] == polling.events_queue_arn
    assert record["awsRegion"] == "us-east-1"
    assert {"ApproximateReceiveCount", "SentTimestamp", "SenderId"} <= set(record["attributes"])
    assert "ApproximateFirstReceiveTimestamp" in record["attributes"]
    assert record["attributes"]["ApproximateReceiveCount"] == "1"
    assert record["messageAttributes"]["kind"]["stringValue"] == "test"
    assert record["receiptHandle"]
    (started,) = invocations(polling, [message_id], "started")
    context = started["context"]
    assert context["function_name"] == "local-event-handler"
    assert context["memory_limit_in_mb"] == "1024"
    assert context["aws_request_id"]
    assert 0 < context["remaining_ms"] <= VISIBILITY * 1000
    app_env = polling.app_process_env()
    assert started["env"] == {name: app_env[name] for name in started["env"]}
    assert started["env"]["AWS_ENDPOINT_URL_SQS"] == polling.aws_url


@pytest.mark.e2e
def test_a_reported_failure_redelivers_only_that_message(polling: LocalStack) -> None:
    ok, failing, also_ok = send_while_stopped(polling, {}, {"fail": 2}, {})
    wait_until_settled(polling)
    first, second = invocations(polling, [ok, failing, also_ok])
    assert sorted(first["message_ids"]) == sorted([ok, failing, also_ok])
    assert second["message_ids"] == [failing]
    assert second["event"]["Records"][0]["attributes"]["ApproximateReceiveCount"] == "2"


@pytest.mark.e2e
@pytest.mark.parametrize("failure", ["raise", "bad_identifier"])
def test_a_raise_or_a_bad_item_identifier_redelivers_the_whole_batch(
    polling: LocalStack, failure: str
) -> None:
    ids = send_while_stopped(polling, {failure: 2}, {})
    wait_until_settled(polling)
    first = invocations(polling, ids)[0]
    assert sorted(first["message_ids"]) == sorted(ids)
    # Both came back (together or not: they turn visible microseconds apart).
    assert deliveries(polling, ids) == dict.fromkeys(ids, 2)


@pytest.mark.e2e
def test_a_batch_past_the_function_timeout_counts_as_failed(polling: LocalStack) -> None:
    errors_before = stats(polling)["handler_errors"]
    (message_id,) = send(polling, {"slow": 2})
    # The slow first delivery may finish after the second one deleted the message.
    wait_until_settled(polling)
    wait_for(lambda: deliveries(polling, [message_id]) == {message_id: 2}, "both deliveries")
    # The poller counts a batch just after the handler returns.
    wait_for(lambda: stats(polling)["handler_errors"] == errors_before + 1, "the error counted")
    assert "past its 1.0 s timeout" in polling.log("poller")


@pytest.mark.e2e
def test_a_message_that_always_fails_ends_in_the_dlq(polling: LocalStack) -> None:
    (message_id,) = send(polling, {"fail": True})
    sqs = polling.aws_client("sqs")
    (dead,) = wait_for(lambda: receive_all(sqs, polling.events_dlq_url), "the DLQ")
    sqs.delete_message(QueueUrl=polling.events_dlq_url, ReceiptHandle=dead["ReceiptHandle"])
    assert dead["MessageId"] == message_id
    assert deliveries(polling, [message_id]) == {message_id: MAX_RECEIVES}
    wait_until_settled(polling)


@contextmanager
def poller_settings(stack: LocalStack, **changes: Any) -> Iterator[None]:
    """Run the poller with other settings inside the block, then as before."""
    before = stack.events
    stack.events = replace(before, **changes)
    stack.restart_poller()
    try:
        yield
    finally:
        stack.events = before
        stack.restart_poller()


@pytest.mark.e2e
def test_concurrent_batches_reach_but_never_pass_the_cap(polling: LocalStack) -> None:
    # Batches of one, so each message is an invocation; two must meet (rendezvous)
    # to succeed, which only happens if two run at once.
    with poller_settings(polling, batch_size=1):
        asks = [{"rendezvous": 2}, {"rendezvous": 2}, *[{"sleep": 0.2}] * 6]
        ids = send_while_stopped(polling, *asks)
        wait_until_settled(polling)
        peak = stats(polling)["peak_concurrent_invocations"]  # this poller's alone
    assert deliveries(polling, ids) == dict.fromkeys(ids, 1)
    running = [e["running"] for e in invocations(polling, ids, "started")]
    assert max(running) == peak == polling.events.max_concurrency == 2


@pytest.mark.e2e
def test_sigterm_mid_batch_finishes_and_deletes_the_batch_in_hand(polling: LocalStack) -> None:
    # A 30 s function timeout (and visibility timeout): the 2 s batch is in time.
    with poller_settings(polling, function_timeout=30, visibility_timeout=30):
        (message_id,) = send(polling, {"sleep": 2})
        wait_for(lambda: invocations(polling, [message_id], "started"), "the batch to start")
        process = polling._processes["poller"]
        polling.stop_process("poller")  # SIGTERM, then waits for the exit
        finished = deliveries(polling, [message_id])
        left = in_queue(polling)  # nobody polls now: a message not deleted would count
        polling.start_poller()  # poller_settings restarts a running one
    assert process.returncode == 0
    assert finished == {message_id: 1}
    assert left == 0
    assert "stopped:" in polling.log("poller")
