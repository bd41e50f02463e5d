#!/usr/bin/env python3
"""Invoke a Lambda handler with an SQS queue's messages, as Lambda's event source mapping does.

The local stand-in for the production mapping (batches, ReportBatchItemFailures
on, a MaximumConcurrency cap). It long-polls ReceiveMessage, hands each batch to
``handler(event, context)`` in Lambda's SQS event shape, and then:

- the handler raised, or ran past its timeout: nothing is deleted, the whole
  batch comes back after the visibility timeout;
- it returned ``{"batchItemFailures": [{"itemIdentifier": messageId}, ...]}``:
  every other message is deleted; an itemIdentifier that is empty, missing or
  not in the batch makes the whole batch a failure (Lambda's rule);
- it returned None, ``{}``, or an empty or null list: every message is deleted.

Moving a message that keeps failing to the dead-letter queue after the queue's
maxReceiveCount is SQS's own job (its RedrivePolicy); moto's server does it on
the receive after the last allowed one, so it is not emulated here.

Differences from Lambda, on purpose: concurrent batches run in threads of this
one process (Lambda gives each its own execution environment, so module globals
are shared here); a handler past its timeout is not killed, only counted as
failed; a batch is at most 10 messages (one ReceiveMessage, no batching window);
each ReceiveMessage waits 2 s, not Lambda's 20, so a stop is quick.

Each batch is logged (size, failures, duration), and a JSON stats file
(batches, messages succeeded/failed, current and peak concurrent invocations)
is rewritten after every change, for load tests. SIGTERM stops receiving,
finishes the batches in hand, and exits 0.

The function's timeout defaults to the packaged events function's (120 s);
the visibility timeout of each receive to six times the function's timeout,
the stack's rule (infra/resources.json's queue has 720 s).  The handler gets
a context whose get_remaining_time_in_millis counts down from the timeout.

Usage: lambda_poller.py --handler app:on_original_event --queue-url URL
       [--batch-size 10] [--max-concurrency 2] [--timeout 120]
       [--visibility-timeout 720] [--stats-file PATH]
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import math
import os
import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import boto3

from chalicelib.config import EVENTS_TIMEOUT_SECONDS, VISIBILITY_PER_FUNCTION_TIMEOUT

ROOT = Path(__file__).resolve().parents[2]

Handler = Callable[[dict[str, Any], Any], Any]
LOG = logging.getLogger("lambda_poller")
SQS_MAX_BATCH = 10
DEFAULT_MEMORY_MB = 1024


@dataclass
class PollerStats:
    """What a load test reads from the stats file."""

    batches: int = 0
    messages_succeeded: int = 0
    messages_failed: int = 0
    handler_errors: int = 0
    concurrent_invocations: int = 0
    peak_concurrent_invocations: int = 0


class StatsFile:
    """PollerStats shared by the invoking threads, rewritten atomically on every change."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.stats = PollerStats()
        self._lock = threading.Lock()
        self.write()

    def invocation_started(self) -> None:
        with self._lock:
            self.stats.concurrent_invocations += 1
            self.stats.peak_concurrent_invocations = max(
                self.stats.peak_concurrent_invocations, self.stats.concurrent_invocations
            )
            self._write_locked()

    def invocation_finished(self, succeeded: int, failed: int, *, handler_error: bool) -> None:
        with self._lock:
            self.stats.concurrent_invocations -= 1
            self.stats.batches += 1
            self.stats.messages_succeeded += succeeded
            self.stats.messages_failed += failed
            self.stats.handler_errors += handler_error
            self._write_locked()

    def write(self) -> None:
        with self._lock:
            self._write_locked()

    def _write_locked(self) -> None:
        if self.path is None:
            return
        temporary = self.path.with_name(f"{self.path.name}.tmp")
        temporary.write_text(json.dumps(asdict(self.stats)))
        temporary.replace(self.path)  # readers never see half a file


class LambdaContext:
    """The attributes and method of the context object Lambda's Python runtime passes."""

    def __init__(self, function_name: str, timeout_seconds: float, region: str) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:{region}:123456789012:function:{function_name}"
        # awslambdaric reads it from AWS_LAMBDA_FUNCTION_MEMORY_SIZE: a string.
        self.memory_limit_in_mb = str(DEFAULT_MEMORY_MB)
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = f"local/[$LATEST]{uuid.uuid4().hex}"
        self.client_context = None  # set only for mobile SDK invocations
        self.identity = None
        self._deadline = time.monotonic() + timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def lambda_message_attributes(attributes: Mapping[str, Any]) -> dict[str, Any]:
    """SQS's MessageAttributes as Lambda spells them (camelCase, list fields present)."""
    return {
        name: {
            "stringValue": value.get("StringValue"),
            "binaryValue": value.get("BinaryValue"),
            "stringListValues": value.get("StringListValues", []),
            "binaryListValues": value.get("BinaryListValues", []),
            "dataType": value["DataType"],
        }
        for name, value in attributes.items()
    }


def lambda_record(message: Mapping[str, Any], queue_arn: str) -> dict[str, Any]:
    """One received SQS message as a Record of Lambda's SQS event."""
    record = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": dict(message.get("Attributes", {})),
        "messageAttributes": lambda_message_attributes(message.get("MessageAttributes", {})),
        "md5OfBody": message["MD5OfBody"],
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": queue_arn.split(":")[3],
    }
    if "MD5OfMessageAttributes" in message:
        record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
    return record


def lambda_event(messages: Iterable[Mapping[str, Any]], queue_arn: str) -> dict[str, Any]:
    return {"Records": [lambda_record(message, queue_arn) for message in messages]}


def failed_message_ids(response: Any, batch_ids: Iterable[str]) -> set[str]:
    """The messages of a batch to leave in the queue, by Lambda's ReportBatchItemFailures rules."""
    batch = set(batch_ids)
    if response is None or response == {}:
        return set()
    if not isinstance(response, dict):
        return batch  # not a valid response: the whole batch failed
    failures = response.get("batchItemFailures")
    if not failures:
        return set()
    if not isinstance(failures, list):
        return batch
    failed: set[str] = set()
    for failure in failures:
        identifier = failure.get("itemIdentifier") if isinstance(failure, dict) else None
        if not isinstance(identifier, str) or identifier not in batch:
            return batch  # empty, missing or unknown itemIdentifier: the whole batch
        failed.add(identifier)
    return failed


def load_handler(spec: str) -> Handler:
    """``module:attribute`` to the callable, imported from the project root like Lambda's."""
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise SystemExit(f"--handler must be module:attribute, got {spec!r}")
    handler: Handler = getattr(importlib.import_module(module_name), attribute)
    return handler


class Poller:
    """Receives batches while fewer than max_concurrency invocations are running."""

    def __init__(
        self, sqs: Any, handler: Handler, args: argparse.Namespace, stopping: threading.Event
    ) -> None:
        self.sqs = sqs
        self.handler = handler
        self.args = args
        self.queue_url: str = args.queue_url
        self.queue_arn = sqs.get_queue_attributes(
            QueueUrl=self.queue_url, AttributeNames=["QueueArn"]
        )["Attributes"]["QueueArn"]
        self.stopping = stopping
        self.stats = StatsFile(args.stats_file)  # its existence says: ready
        # A slot per concurrent invocation: receive only when one is free, so no
        # message sits invisible in here waiting for a thread.
        self._slots = threading.BoundedSemaphore(args.max_concurrency)

    def run(self) -> None:
        LOG.info(
            "polling %s for %s (batch size %d, max concurrency %d)",
            self.queue_url,
            self.args.handler,
            self.args.batch_size,
            self.args.max_concurrency,
        )
        with ThreadPoolExecutor(max_workers=self.args.max_concurrency) as pool:
            while not self.stopping.is_set():
                if not self._slots.acquire(timeout=0.2):
                    continue
                messages = self.receive()
                if messages:  # even when stopping now: these are in hand
                    pool.submit(self.invoke_and_settle, messages)
                else:
                    self._slots.release()
        LOG.info("stopped: %s", asdict(self.stats.stats))

    def receive(self) -> list[dict[str, Any]]:
        try:
            response = self.sqs.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=self.args.batch_size,
                WaitTimeSeconds=self.args.wait_seconds,
                VisibilityTimeout=self.args.visibility_timeout,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            )
        except Exception:
            LOG.exception("ReceiveMessage failed; trying again")
            time.sleep(1)
            return []
        return list(response.get("Messages", []))

    def invoke_and_settle(self, messages: list[dict[str, Any]]) -> None:
        try:
            failed = self.invoke(messages)
            self.delete(m for m in messages if m["MessageId"] not in failed)
        except Exception:
            LOG.exception("settling a batch failed")
        finally:
            self._slots.release()

    def invoke(self, messages: list[dict[str, Any]]) -> set[str]:
        """Run the handler on one batch; the ids of the messages that failed."""
        batch_ids = [m["MessageId"] for m in messages]
        context = LambdaContext(self.args.function_name, self.args.timeout, self.region)
        self.stats.invocation_started()
        started = time.monotonic()
        handler_error = False
        try:
            response = self.handler(lambda_event(messages, self.queue_arn), context)
            failed = failed_message_ids(response, batch_ids)
        except Exception:
            LOG.exception(
                "handler raised (request %s): the batch comes back", context.aws_request_id
            )
            handler_error, failed = True, set(batch_ids)
        duration = time.monotonic() - started
        if duration > self.args.timeout:
            LOG.error(
                "handler ran %.1f s, past its %s s timeout: batch failed",
                duration,
                self.args.timeout,
            )
            handler_error, failed = True, set(batch_ids)
        self.stats.invocation_finished(
            len(batch_ids) - len(failed), len(failed), handler_error=handler_error
        )
        LOG.info(
            "batch size=%d failed=%d duration_ms=%.0f request=%s",
            len(batch_ids),
            len(failed),
            duration * 1000,
            context.aws_request_id,
        )
        return failed

    def delete(self, messages: Iterable[dict[str, Any]]) -> None:
        entries = [
            {"Id": str(index), "ReceiptHandle": message["ReceiptHandle"]}
            for index, message in enumerate(messages)
        ]
        for start in range(0, len(entries), SQS_MAX_BATCH):
            chunk = entries[start : start + SQS_MAX_BATCH]
            response = self.sqs.delete_message_batch(QueueUrl=self.queue_url, Entries=chunk)
            for failure in response.get("Failed", []):
                LOG.error("DeleteMessage failed (it will be delivered again): %s", failure)

    @property
    def region(self) -> str:
        return str(self.queue_arn.split(":")[3])


def batch_size(value: str) -> int:
    size = int(value)
    if not 1 <= size <= SQS_MAX_BATCH:
        raise argparse.ArgumentTypeError(f"1..{SQS_MAX_BATCH} (one ReceiveMessage)")
    return size


def visibility_for(function_timeout: float) -> int:
    """The stack's rule: a queue's visibility timeout is six times its function's timeout."""
    return math.ceil(VISIBILITY_PER_FUNCTION_TIMEOUT * function_timeout)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--handler", required=True, help="module:attribute, e.g. app:on_event")
    parser.add_argument("--queue-url", required=True)
    parser.add_argument("--batch-size", type=batch_size, default=10)
    parser.add_argument("--max-concurrency", type=int, default=2)
    parser.add_argument(
        "--timeout",
        type=float,
        default=float(EVENTS_TIMEOUT_SECONDS),
        help="the function's timeout (default: the packaged events function's)",
    )
    parser.add_argument(
        "--visibility-timeout",
        type=int,
        help=f"default: {VISIBILITY_PER_FUNCTION_TIMEOUT} times the function's timeout",
    )
    parser.add_argument("--wait-seconds", type=int, default=2, help="ReceiveMessage long poll")
    parser.add_argument("--function-name", default="local-event-handler")
    parser.add_argument("--stats-file", type=Path)
    args = parser.parse_args(argv)
    if args.visibility_timeout is None:
        args.visibility_timeout = visibility_for(args.timeout)
    if args.max_concurrency < 1:
        parser.error("--max-concurrency must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    args = parse_args(argv)
    # The endpoint comes from AWS_ENDPOINT_URL_SQS, as it would for the app.
    sqs = boto3.client("sqs", region_name=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"))
    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.set())
    Poller(sqs, load_handler(args.handler), args, stopping).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
