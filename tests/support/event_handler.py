"""A Lambda SQS handler for the poller's tests: does what each message's body asks, and says so.

Every invocation appends two JSON lines to the file named by EVENT_HANDLER_LOG:
``started`` (message ids, bodies, the context's attributes, how many invocations
were running) and ``finished`` (the event and the response). A body is JSON;
these keys steer the handler (any other body just succeeds):

- ``"fail": true``: report this message in batchItemFailures;
- ``"raise": true``: raise, failing the whole batch;
- ``"bad_identifier": true``: report a failure with an empty itemIdentifier;
  (each of these three also takes a number n instead of true: only while the
  message's ApproximateReceiveCount is below n, so it succeeds on the n-th);
- ``"sleep": seconds``: take that long;
- ``"slow": n``: take 1.5 s (past a 1 s timeout) while ApproximateReceiveCount is below n;
- ``"rendezvous": n``: wait until n invocations run at once (or fail, after 20 s).
"""

from __future__ import annotations

import json
import os
import threading
import time
from typing import Any

RENDEZVOUS_TIMEOUT = 20.0
SLOW_SECONDS = 1.5
# Logged, so tests can see the poller hands the app's environment on.
APP_ENV_NAMES = (
    "IMAGE_BUCKET",
    "S3_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_SQS",
    "AWS_ENDPOINT_URL_DYNAMODB",
    "AWS_ENDPOINT_URL_SNS",
    "METADATA_TABLE",
    "NOTIFY_TOPIC_ARN",
)

_running = 0
_running_changed = threading.Condition()
_log_lock = threading.Lock()


def log(entry: dict[str, Any]) -> None:
    with _log_lock, open(os.environ["EVENT_HANDLER_LOG"], "a", encoding="utf-8") as out:
        out.write(json.dumps(entry) + "\n")


def instructions(record: dict[str, Any]) -> dict[str, Any]:
    try:
        body = json.loads(record["body"])
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def context_attributes(context: Any) -> dict[str, Any]:
    names = ("function_name", "aws_request_id", "memory_limit_in_mb", "invoked_function_arn")
    attributes = {name: getattr(context, name) for name in names}
    attributes["remaining_ms"] = context.get_remaining_time_in_millis()
    return attributes


def asked(ask: dict[str, Any], what: str, record: dict[str, Any]) -> bool:
    value = ask.get(what, False)
    if isinstance(value, bool):
        return value
    return int(record["attributes"]["ApproximateReceiveCount"]) < int(value)


def seconds_to_take(record: dict[str, Any], ask: dict[str, Any]) -> float:
    if "slow" in ask and asked(ask, "slow", record):
        return SLOW_SECONDS
    return float(ask.get("sleep", 0))


def meet(peers: int) -> bool:
    """Wait until ``peers`` invocations (this one included) are running at once."""
    with _running_changed:
        return _running_changed.wait_for(lambda: _running >= peers, timeout=RENDEZVOUS_TIMEOUT)


def respond(records: list[dict[str, Any]], asks: list[dict[str, Any]]) -> dict[str, Any] | None:
    asks_of = list(zip(records, asks, strict=True))
    if any(asked(ask, "raise", record) for record, ask in asks_of):
        raise RuntimeError("asked to raise")
    if any(asked(ask, "bad_identifier", record) for record, ask in asks_of):
        return {"batchItemFailures": [{"itemIdentifier": ""}]}
    met = all(meet(ask["rendezvous"]) for ask in asks if "rendezvous" in ask)
    failed = [record["messageId"] for record, ask in asks_of if asked(ask, "fail", record)]
    if not met:
        failed = [r["messageId"] for r in records]
    return {"batchItemFailures": [{"itemIdentifier": m} for m in failed]} if failed else None


def handle(event: dict[str, Any], context: Any) -> dict[str, Any] | None:
    global _running
    records = event["Records"]
    asks = [instructions(record) for record in records]
    with _running_changed:
        _running += 1
        running = _running
        _running_changed.notify_all()
    ids = [record["messageId"] for record in records]
    log(
        {
            "phase": "started",
            "message_ids": ids,
            "bodies": [record["body"] for record in records],
            "context": context_attributes(context),
            "running": running,
            "env": {name: os.environ.get(name) for name in APP_ENV_NAMES},
        }
    )
    response: dict[str, Any] | None = None
    try:
        time.sleep(
            max(
                (seconds_to_take(record, ask) for record, ask in zip(records, asks, strict=True)),
                default=0,
            )
        )
        response = respond(records, asks)
        return response
    finally:
        with _running_changed:
            _running -= 1
        log({"phase": "finished", "message_ids": ids, "event": event, "response": response})
