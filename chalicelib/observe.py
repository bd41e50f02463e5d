"""One JSON line per request and per handled event, which is also a CloudWatch EMF document.

Each route and each SQS message gets a :class:`Record` (its id, what it was,
the key and size token, the outcome's code and status, timings in ms, bytes
in and out); timing points anywhere below add to the current one through a
context variable (:func:`timed`, :func:`note`, :func:`add`), and do nothing
outside a record.  When the record closes, one line is printed to stdout:
Lambda sends it to CloudWatch Logs, which reads the ``_aws`` block as
Embedded Metric Format and turns the named fields into metrics in
:data:`NAMESPACE` (docs/operations.md), with no API call.  Hand-written
rather than Powertools' Logger and Metrics: their import costs a cold start
more than the whole of ``import app`` is allowed to grow (docs/decisions.md).

Nothing secret can reach a line: it is built from the fields below only,
never from headers, bodies, query strings or metadata.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ParamSpec

P = ParamSpec("P")

# The CloudWatch namespace of every metric here; the dashboard and alarms name it too.
NAMESPACE = "ImageService"
# Read here, not in Settings: a misconfigured stack must still log why.
LOG_LEVEL_VARIABLE = "LOG_LEVEL"
# The one dimension: which refusal.  Every other metric has none.
CODE_DIMENSION = "Code"

# Metric name → unit: counts are 1 per line that has them; CloudWatch sums them.
UNITS = {
    "Requests": "Count",
    "Misses": "Count",  # a variant rendered and stored
    "Hits": "Count",  # the API path found the variant already stored (a race, or a loop)
    "Refusals": "Count",  # any 4xx/5xx answer; also per Code
    "ServerErrors": "Count",  # the 5xx among them
    "RenderTime": "Milliseconds",
    "TotalTime": "Milliseconds",
    "BytesOut": "Bytes",
    "Events": "Count",
    "EventFailures": "Count",  # the message goes back to the queue
    "EventRetries": "Count",  # a message received more than once
    "EventAge": "Milliseconds",  # now - the S3 event's time
    "PresetsRendered": "Count",
    "PurgedObjects": "Count",
    "PurgedCdnPaths": "Count",
}
# Outcomes of the resize path (Record.outcome when nothing was refused).
MISS, HIT, ALIAS, SNAPPED = "miss", "hit", "alias", "snapped"


@dataclass
class Record:
    """What one request or one SQS message did, filled in as it happens."""

    kind: str  # "request" or "event"
    name: str  # the route, or the event's change
    id: str = ""
    key: str = ""
    size: str = ""
    outcome: str = ""  # resize: miss/hit/alias/snapped; events: lifecycle's outcome; else a code
    status: int = 0
    bytes_in: int = 0
    timings: dict[str, float] = field(default_factory=dict)  # ms, summed per name
    counts: dict[str, float] = field(default_factory=dict)  # extra metric values
    started: float = field(default_factory=time.perf_counter)

    def line(self, now: float | None = None) -> dict[str, Any]:
        """The log line: the fields, the metrics' values and the EMF block naming them."""
        total = round((time.perf_counter() - self.started) * 1000, 2)
        fields: dict[str, Any] = {
            "kind": self.kind,
            "name": self.name,
            "id": self.id,
            "key": self.key,
            "size": self.size,
            "outcome": self.outcome,
            "status": self.status,
            "bytes_in": self.bytes_in,
            "bytes_out": self.counts.get("BytesOut", 0),
            "ms": {**{k: round(v, 2) for k, v in self.timings.items()}, "total": total},
        }
        values = self._metric_values(total)
        names = [{"Name": n, "Unit": UNITS[n]} for n in values]
        directives: list[dict[str, Any]] = [
            {"Namespace": NAMESPACE, "Dimensions": [[]], "Metrics": names}
        ]
        if values.get("Refusals"):
            fields[CODE_DIMENSION] = self.outcome
            directives.append(
                {
                    "Namespace": NAMESPACE,
                    "Dimensions": [[CODE_DIMENSION]],
                    "Metrics": [{"Name": "Refusals", "Unit": "Count"}],
                }
            )
        stamp = int((time.time() if now is None else now) * 1000)
        return {
            "_aws": {"Timestamp": stamp, "CloudWatchMetrics": directives},
            **fields,
            **values,
        }

    def _metric_values(self, total: float) -> dict[str, float]:
        values: dict[str, float] = {}
        if self.kind == "request":
            values["Requests"] = 1
            values["TotalTime"] = total
            if self.status >= 400:
                values["Refusals"] = 1
                values["ServerErrors"] = int(self.status >= 500)
            elif self.outcome == MISS:
                values["Misses"] = 1
            elif self.outcome == HIT:
                values["Hits"] = 1
        else:
            values["Events"] = 1
        if "render" in self.timings:
            values["RenderTime"] = round(self.timings["render"], 2)
        values.update(self.counts)
        return values


_current: ContextVar[Record | None] = ContextVar("observe_record", default=None)
_write_lock = threading.Lock()


def current() -> Record | None:
    return _current.get()


def note(**fields: Any) -> None:
    """Set fields of the current record (none: nothing happens)."""
    record = _current.get()
    if record is not None:
        for name, value in fields.items():
            setattr(record, name, value)


def add(metric: str, value: float = 1) -> None:
    """Add to one of :data:`UNITS`' metrics on the current record."""
    record = _current.get()
    if record is not None:
        if metric not in UNITS:
            raise KeyError(f"{metric} is not a metric of {NAMESPACE}")
        record.counts[metric] = record.counts.get(metric, 0) + value


@contextmanager
def timed(name: str) -> Iterator[None]:
    """Add the block's wall time to the current record's ``ms[name]``."""
    record = _current.get()
    if record is None:
        yield
        return
    start = time.perf_counter()
    try:
        yield
    finally:
        elapsed = (time.perf_counter() - start) * 1000
        record.timings[name] = record.timings.get(name, 0.0) + elapsed


@contextmanager
def recording(record: Record) -> Iterator[Record]:
    """Make ``record`` current for the block, then write its line (also when it raised)."""
    token = _current.set(record)
    try:
        yield record
    except BaseException as err:
        if record.kind == "event":
            record.outcome = record.outcome or f"failed: {type(err).__name__}"
            record.counts["EventFailures"] = 1
        raise
    finally:
        _current.reset(token)
        write(record.line())


def write(line: Mapping[str, Any]) -> None:
    """Print one line to stdout (CloudWatch Logs on Lambda; the stack's log file locally)."""
    text = json.dumps(line, separators=(",", ":"), default=str)
    with _write_lock:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()


def requests(
    current_request: Callable[[], Any],
) -> Callable[[str], Callable[[Callable[P, Any]], Callable[P, Any]]]:
    """A decorator factory for routes: ``@observed("resize")`` writes one line per call.

    ``current_request`` gives chalice's request (the app's ``current_request``);
    the status and an error's ``code`` are read from the response the view returns.
    """

    def named(name: str) -> Callable[[Callable[P, Any]], Callable[P, Any]]:
        def decorate(view: Callable[P, Any]) -> Callable[P, Any]:
            @functools.wraps(view)
            def observed(*args: P.args, **kwargs: P.kwargs) -> Any:
                # The key and size are noted once parsed: a raw segment may be a signature.
                record = Record("request", name, id=_request_id(current_request))
                with recording(record):
                    response = view(*args, **kwargs)
                    record.status = int(getattr(response, "status_code", 200))
                    body = getattr(response, "body", None)
                    if record.status >= 400 and isinstance(body, dict):
                        record.outcome = str(body.get("code", ""))
                return response

            return observed

        return decorate

    return named


def _request_id(current_request: Callable[[], Any]) -> str:
    try:
        context = current_request().context or {}
    except Exception:  # no request (a direct call in a test)
        return ""
    return str(context.get("requestId", ""))


@contextmanager
def message(sqs_record: Mapping[str, Any]) -> Iterator[Record]:
    """One SQS message of the events queue as a record: its id, and whether it is a retry."""
    record = Record("event", "message", id=str(sqs_record.get("messageId", "")))
    attributes = sqs_record.get("attributes") or {}
    try:
        received = int(attributes.get("ApproximateReceiveCount", 1))
    except (TypeError, ValueError):
        received = 1
    if received > 1:
        record.counts["EventRetries"] = 1
    with recording(record):
        yield record


def handling(change: str, key: str, event_time: str) -> None:
    """The event a message holds: its change and key on the line, its age as EventAge."""
    note(name=change, key=key)
    record = _current.get()
    age = event_age_ms(event_time) if event_time else None
    if record is not None and age is not None:
        record.counts["EventAge"] = max(age, record.counts.get("EventAge", 0.0))


def event_age_ms(event_time: str, now: float | None = None) -> float | None:
    """Milliseconds from an S3 event's ``eventTime`` (ISO 8601) to now; None if unreadable."""
    try:
        stamp = datetime.fromisoformat(event_time.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None
    return max(0.0, ((time.time() if now is None else now) - stamp) * 1000)


def configure_logging(env: Mapping[str, str] = os.environ) -> None:
    """The threshold of the service's other log lines (``logging``), from LOG_LEVEL."""
    name = env.get(LOG_LEVEL_VARIABLE, "").strip().upper()
    level = logging.getLevelName(name) if name else None
    if isinstance(level, int):  # an unknown name leaves the default (WARNING and up, and INFO)
        logging.getLogger("chalicelib").setLevel(level)
