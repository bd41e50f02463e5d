#!/usr/bin/env python3
"""An upload burst through the local stack's event pipeline, then a check that nothing was lost.

Many uploads at once, each as a browser makes it (POST /uploads, then the
presigned form POST to the originals bucket).  s3rver's events queue up; the
poller drains them at most ``max_concurrency`` batches at a time, like
Lambda's capped event source mapping.  Once the queue is empty it checks:
every upload has a ``ready`` record, every preset of every upload is stored,
the uploader's usage is exactly the uploads' count and bytes, no message
sits in the dead-letter queue, and no invocation ran past the cap.

Reports the burst's wall time, the drain time (first upload to the last
event handled) and the peak concurrency the poller saw.

    python -m scripts.bench.upload_burst [--uploads 200] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path
from typing import Any

import requests
from PIL import Image

from chalicelib.config import DEFAULT_PRESET_SIZES
from scripts.local.stack import (
    APP_EVENT_HANDLER,
    EventSettings,
    LocalStack,
    free_port,
)

ROOT = Path(__file__).resolve().parents[2]


PAGE = 100
DRAIN_TIMEOUT = 900.0  # seconds; a bound, not a target
TIMEOUT = (10.0, 120.0)


@dataclass(frozen=True)
class Upload:
    key: str
    bytes: int
    started: float
    stored: float


@dataclass
class BurstReport:
    uploads: list[Upload]
    failed_uploads: list[str]
    drained_at: float
    peak_concurrency: int
    max_concurrency: int
    problems: dict[str, list[str]] = field(default_factory=dict)
    usage: dict[str, int] = field(default_factory=dict)

    def add(self, kind: str, what: str) -> None:
        self.problems.setdefault(kind, []).append(what)

    @property
    def bad(self) -> int:
        return len(self.failed_uploads) + sum(len(items) for items in self.problems.values())


def photo(seed: int) -> bytes:
    """A small JPEG of its own: a size and colour from ``seed``, so every ETag differs."""
    rng = random.Random(seed)
    size = (rng.randrange(400, 1400, 8), rng.randrange(300, 1000, 8))
    image = Image.new("RGB", size, tuple(rng.randrange(256) for _ in range(3)))
    image.paste(Image.effect_noise((size[0] // 2, size[1] // 2), 40).convert("RGB"), (8, 8))
    buffer = BytesIO()
    image.save(buffer, "JPEG", quality=80)
    return buffer.getvalue()


def upload(stack: LocalStack, body: bytes, number: int) -> Upload:
    started = time.monotonic()
    created = stack.upload(body, f"burst {number}.jpg")
    return Upload(created["key"], len(body), started, time.monotonic())


def records(stack: LocalStack) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Every one of the uploader's records (GET /uploads, page by page) and the usage."""
    found: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = {"limit": str(PAGE), **({"cursor": cursor} if cursor else {})}
        page = requests.get(
            f"{stack.api_url}/uploads",
            params=query,
            headers={"Authorization": f"Bearer {stack.upload_token}"},
            timeout=TIMEOUT,
        ).json()
        found += page["uploads"]
        cursor = page["next_cursor"]
        if cursor is None:
            return found, page["usage"]


def wait_for_drain(stack: LocalStack, expected: int, timeout: float = DRAIN_TIMEOUT) -> float:
    """When the last of ``expected`` records was handled and the queue was empty."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stats = json.loads(stack.poller_stats_path.read_text())
        handled = stats["messages_succeeded"] + stats["messages_failed"]
        if handled >= expected and stack.queue_depth(stack.events_queue_url) == 0:
            return time.monotonic()
        time.sleep(0.2)
    raise TimeoutError(f"the events queue did not drain within {timeout:.0f} s")


def stored_keys(stack: LocalStack) -> set[str]:
    pages = stack.s3_client().get_paginator("list_objects_v2").paginate(Bucket=stack.bucket)
    return {item["Key"] for page in pages for item in page.get("Contents", [])}


def run_burst(
    stack: LocalStack, count: int, concurrency: int, presets: Sequence[str]
) -> BurstReport:
    bodies = [photo(number) for number in range(count)]
    failed: list[str] = []
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        futures = [pool.submit(upload, stack, body, n) for n, body in enumerate(bodies)]
    uploads = []
    for number, future in enumerate(futures):
        try:
            uploads.append(future.result())
        except (requests.RequestException, RuntimeError) as err:
            failed.append(f"upload {number}: {err}")
    drained = wait_for_drain(stack, len(uploads))
    stats = json.loads(stack.poller_stats_path.read_text())
    report = BurstReport(
        uploads,
        failed,
        drained,
        stats["peak_concurrent_invocations"],
        stack.events.max_concurrency,
    )
    verify(stack, report, presets)
    return report


def verify(stack: LocalStack, report: BurstReport, presets: Sequence[str]) -> None:
    found, usage = records(stack)
    report.usage = usage
    by_key = {record["key"]: record for record in found}
    stored = stored_keys(stack)
    for upload in report.uploads:
        record = by_key.get(upload.key)
        if record is None:
            report.add("no record", upload.key)
            continue
        if record["state"] != "ready":
            report.add(f"state {record['state']}", upload.key)
        for size in presets:
            if f"{size}/{upload.key}" not in stored:
                report.add("missing preset", f"{size}/{upload.key}")
    wanted = {"originals": len(report.uploads), "bytes": sum(u.bytes for u in report.uploads)}
    if usage != wanted:
        report.add("usage", f"{usage} != {wanted}")
    for key in set(by_key) - {upload.key for upload in report.uploads}:
        report.add("record nobody uploaded", key)
    dead = stack.queue_depth(stack.events_dlq_url)
    if dead:
        report.add("dead-lettered", f"{dead} message(s)")
    if report.peak_concurrency > report.max_concurrency:
        report.add("over the cap", f"{report.peak_concurrency} > {report.max_concurrency}")


def format_report(report: BurstReport) -> str:
    uploads = report.uploads
    if not uploads:
        return f"burst: no upload succeeded; {len(report.failed_uploads)} failed"
    first = min(u.started for u in uploads)
    last = max(u.stored for u in uploads)
    lines = [
        f"upload burst: {len(uploads)} uploads in {last - first:.1f} s "
        f"({len(uploads) / max(last - first, 1e-9):.1f}/s), {len(report.failed_uploads)} failed",
        f"drain: the last event handled {report.drained_at - first:.1f} s after the first "
        f"upload, {report.drained_at - last:.1f} s after the last",
        f"peak concurrency: {report.peak_concurrency} of a cap of {report.max_concurrency}",
        f"usage: {report.usage.get('originals')} originals, {report.usage.get('bytes')} bytes",
    ]
    for kind, items in report.problems.items():
        lines.append(f"  {kind}: {len(items)}, e.g. {items[0]}")
    lines.extend(f"  {failure}" for failure in report.failed_uploads[:5])
    lines.append(
        f"burst: {len(report.failed_uploads)} lost uploads, "
        f"{sum(len(v) for v in report.problems.values())} problems"
    )
    return "\n".join(lines)


@dataclass(frozen=True)
class ChangeDelays:
    """Seconds from a change to the website showing it, per round."""

    upload: list[float]  # upload stored → its 320x preset is a plain hit
    overwrite: list[float]  # new bytes stored → the 320x URL serves the new picture
    delete: list[float]  # deleted → the 320x URL answers 404


def until(check: Any, timeout: float = 60.0) -> float:
    """Seconds until ``check()`` holds (polled every 20 ms)."""
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > timeout:
            raise TimeoutError("the website did not show the change")
        time.sleep(0.02)
    return time.monotonic() - start


def measure_change_delays(stack: LocalStack, rounds: int) -> ChangeDelays:
    """On an idle queue: how long until a browser sees an upload, an overwrite, a delete."""
    delays = ChangeDelays([], [], [])
    for number in range(rounds):
        upload_delay, overwrite_delay, delete_delay = one_round(stack, number)
        delays.upload.append(upload_delay)
        delays.overwrite.append(overwrite_delay)
        delays.delete.append(delete_delay)
    return delays


def one_round(stack: LocalStack, number: int) -> tuple[float, float, float]:
    made = upload(stack, photo(10_000 + number), number)
    url = f"{stack.public_url}/320x/{made.key}"

    def served(follow: bool = False) -> requests.Response:
        return requests.get(url, allow_redirects=follow, timeout=TIMEOUT)

    upload_delay = until(lambda: served().status_code == 200)
    before = served().content
    stack.put_original(made.key, photo(20_000 + number), "image/jpeg")
    overwrite_delay = until(lambda: served().content not in (before, b""))
    stack.s3_client().delete_object(Bucket=stack.originals_bucket, Key=made.key)
    delete_delay = until(lambda: served(follow=True).status_code == 404)
    return upload_delay, overwrite_delay, delete_delay


def format_delays(delays: ChangeDelays) -> str:
    def spread(values: list[float]) -> str:
        ordered = sorted(values)
        return f"median {ordered[len(ordered) // 2] * 1000:.0f} ms, max {ordered[-1] * 1000:.0f} ms"

    return "\n".join(
        [
            f"change → website, {len(delays.upload)} rounds on an idle queue:",
            f"  upload → preset is a hit:       {spread(delays.upload)}",
            f"  overwrite → new picture served: {spread(delays.overwrite)}",
            f"  delete → 404:                   {spread(delays.delete)}",
        ]
    )


def burst_stack(data_dir: Path, max_concurrency: int) -> LocalStack:
    return LocalStack(
        data_dir,
        s3_port=free_port(),
        api_port=free_port(),
        event_handler=APP_EVENT_HANDLER,
        events=EventSettings(max_concurrency=max_concurrency),
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--uploads", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=16, help="uploading clients")
    parser.add_argument("--max-concurrency", type=int, default=2, help="the poller's cap")
    parser.add_argument("--rounds", type=int, default=5, help="change-delay rounds (0: none)")
    args = parser.parse_args(argv)
    presets = [token.strip() for token in DEFAULT_PRESET_SIZES.split(",")]
    with (
        tempfile.TemporaryDirectory(prefix="burst-") as temporary,
        burst_stack(Path(temporary), args.max_concurrency) as stack,
    ):
        print(f"stack: {stack.api_url}, events {stack.events_queue_url}")
        report = run_burst(stack, args.uploads, args.concurrency, presets)
        delays = measure_change_delays(stack, args.rounds) if args.rounds else None
    if delays:
        print(format_delays(delays))
    print(format_report(report))
    return 1 if report.bad else 0


if __name__ == "__main__":
    sys.exit(main())
