#!/usr/bin/env python3
"""What a browser waits for, through the real local stack (s3rver + `chalice local`).

A miss is ``GET <public_url>/<size>/<key>`` followed the way a browser does:
s3rver's website answers 404 → routing rule → 307 to the API, the app renders
and stores the variant and answers 307 back, s3rver serves it with 200.  Each
repetition asks for a size never asked before (301x301, 302x302, ...), so every
one is a true miss; the very first miss is reported on its own (cold: the app
creates its S3 client then).  A hit is a GET of a variant that exists.

The sizes step down from the box (299x299, 298x298, ...), not up: render's
shrink-on-load picks the DCT scale from ``width // target``.  On the 12 MP
photo, 1000x1000 decodes at 1/4 to exactly 1000×750 and skips resampling
(27 ms CPU when measured), 999x999 stays at 1/4 but resamples (42 ms), and
1001x1001 falls back to 1/2 and resamples 3 MP (72 ms).  Stepping down keeps a
series on its box's DCT scale; it still pays a resample 1000x1000 itself avoids.

The miss is broken down per hop (``requests`` times each response's headers)
and into the app's render, called directly in this process on the same bytes
right after each miss, versus everything else (S3 round trips, HTTP, routing).

A second stack then puts the app's S3 calls behind scripts/local/proxy.py,
which answers each 20 ms after it arrived, s3rver's own work included (as S3
on AWS would; loopback has no latency), and reports the API hop (the function's part of a miss), the
render, and how many S3 calls ran one after another.  Its median of API hop
minus render is the last line, written to .local/bench/ for `make bench`'s
summary as well.

Times are wall-clock: the work spans three processes.

    python -m scripts.bench.stack [--quick] [--photos DIR]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import requests

from chalicelib.imaging import render
from scripts.bench import photos as photo_source
from scripts.bench.pipeline import spec_for
from scripts.bench.timing import median, percentile, timed, write_summary
from scripts.local.proxy import Proxy, sequential_round_trips
from scripts.local.stack import LocalStack, free_port

ROOT = Path(__file__).resolve().parents[2]


KEY = "bench/photo.jpg"
PNG_KEY = "bench/photo.png"  # a second series: a PNG miss must decode it once
SERIES = (300, 1000)  # output box sides; each repetition takes 1 px off to get a new variant
MISSES, QUICK_MISSES = 15, 5
HITS, QUICK_HITS = 100, 20
MISS_HOPS = ("website 404 → 307", "API: get + render + put → 307", "GET variant from S3")
S3_LATENCY_MS = 20


@dataclass
class Samples:
    """Wall ms per repetition, by what was timed."""

    by_name: dict[str, list[float]] = field(default_factory=dict)

    def add(self, name: str, value: float) -> None:
        self.by_name.setdefault(name, []).append(value)


def variant_url(stack: LocalStack, token: str, key: str = KEY) -> str:
    return f"{stack.public_url}/{token}/{quote(key)}"


def get_miss(
    session: requests.Session, stack: LocalStack, token: str, key: str = KEY
) -> tuple[float, list[float]]:
    """One miss followed to the image: total ms and ms per hop; refuses anything but a miss."""
    total, response = timed(lambda: session.get(variant_url(stack, token, key), timeout=120))
    codes = [r.status_code for r in response.history] + [response.status_code]
    if codes != [307, 307, 200]:
        raise RuntimeError(f"{token}: expected a miss (307, 307, 200), got {codes}")
    hops = [r.elapsed.total_seconds() * 1000.0 for r in [*response.history, response]]
    return total, hops


def get_hit(session: requests.Session, stack: LocalStack, token: str) -> float:
    total, response = timed(lambda: session.get(variant_url(stack, token), timeout=30))
    if response.status_code != 200 or response.history:
        raise RuntimeError(f"{token}: expected a plain 200, got {response.status_code}")
    return total


def misses(
    session: requests.Session, stack: LocalStack, data: bytes, side: int, n: int, key: str = KEY
) -> Samples:
    """n true misses, each followed by the same render in this process (paired, interleaved)."""
    samples = Samples()
    for step in range(1, n + 1):
        token = f"{side - step}x{side - step}"
        total, hops = get_miss(session, stack, token, key)
        render_ms, _ = timed(lambda token=token: render(data, spec_for(token)))
        samples.add("miss", total)
        for name, value in zip(MISS_HOPS, hops, strict=True):
            samples.add(name, value)
        samples.add("render (direct)", render_ms)
        samples.add("rest = miss - render", total - render_ms)
    return samples


def hits(session: requests.Session, stack: LocalStack, token: str, n: int) -> list[float]:
    return [get_hit(session, stack, token) for _ in range(n)]


def row(label: str, values: list[float]) -> str:
    p90 = f"{percentile(values, 0.9):.1f}" if len(values) > 1 else "–"
    return f"| {label} | {len(values)} | {median(values):.1f} | {p90} |"


def report(
    cold: float,
    series: dict[str, Samples],
    hit_samples: dict[str, list[float]],
) -> None:
    print("| what | n | median ms | p90 ms |")
    print("|---|---|---|---|")
    print(row("cold first miss 300x300", [cold]))
    for label, samples in series.items():
        for name, values in samples.by_name.items():
            print(row(f"miss {label}" if name == "miss" else f"  {name}", values))
    for token, values in hit_samples.items():
        print(row(f"hit {token}", values))


def latency_misses(
    session: requests.Session,
    stack: LocalStack,
    proxy: Proxy,
    data: bytes,
    side: int,
    n: int,
) -> Samples:
    """n true misses with every S3 call of the app delayed; the API hop against the render."""
    samples = Samples()
    for step in range(1, n + 1):
        token = f"{side - step}x{side - step}"
        proxy.take_calls()
        _, hops = get_miss(session, stack, token)
        calls = proxy.take_calls()
        render_ms, _ = timed(lambda token=token: render(data, spec_for(token)))
        api_ms = hops[MISS_HOPS.index("API: get + render + put → 307")]
        samples.add("API hop (the function's part)", api_ms)
        samples.add("render (direct)", render_ms)
        samples.add("API hop - render", api_ms - render_ms)
        samples.add("S3 calls", float(len(calls)))
        samples.add("sequential S3 round trips", float(sequential_round_trips(calls)))
    return samples


def with_latency(data: bytes, n: int) -> dict[int, Samples]:
    """A stack whose app reaches s3rver through the latency proxy; the browser does not."""
    s3_port = free_port()
    with (
        tempfile.TemporaryDirectory() as tmp,
        Proxy(f"http://127.0.0.1:{s3_port}", latency=S3_LATENCY_MS / 1000) as proxy,
    ):
        app_env = {"S3_ENDPOINT_URL": proxy.url}
        stack = LocalStack(Path(tmp), s3_port=s3_port, api_port=free_port(), app_env=app_env)
        with stack, requests.Session() as session:
            stack.put_original(KEY, data)
            get_miss(session, stack, "300x300")  # cold: the client and its connections
            return {side: latency_misses(session, stack, proxy, data, side, n) for side in SERIES}


def latency_summary(series: dict[int, Samples]) -> str:
    """The worst series' median of API hop minus render: what S3 adds to a miss."""
    worst = max(median(s.by_name["API hop - render"]) for s in series.values())
    return f"miss at {S3_LATENCY_MS} ms S3 latency minus render: {worst:.0f} ms"


def report_latency(series: dict[int, Samples]) -> None:
    print(f"\nEvery S3 call answered {S3_LATENCY_MS} ms after it was sent (latency proxy):")
    print("| what | n | median | p90 |")
    print("|---|---|---|---|")
    for side, samples in series.items():
        for name, values in samples.by_name.items():
            print(row(f"~{side} px: {name}", values))


def stack_photo(found: list[photo_source.Photo]) -> photo_source.Photo:
    """The 12 MP JPEG by default; with the user's photos, their first JPEG."""
    named = [p for p in found if p.name == "jpeg-12mp"]
    return (named or found)[0]


def stack_png(found: list[photo_source.Photo]) -> photo_source.Photo | None:
    """The 2000×2000 RGBA PNG of the default photos; None with the user's (JPEGs only)."""
    return next((p for p in found if p.name == "png-rgba"), None)


def main() -> int:
    parser = argparse.ArgumentParser(description="Miss and hit latency through the local stack.")
    parser.add_argument("--quick", action="store_true", help="fewer misses and hits")
    photo_source.add_photos_argument(parser)
    args = parser.parse_args()
    try:
        found = photo_source.get_photos(photo_source.photos_dir_from(args.photos))
    except photo_source.PhotosUnavailable as err:
        print(f"bench_stack: {err}", file=sys.stderr)
        return 1
    photo, png = stack_photo(found), stack_png(found)
    n_miss, n_hit = (QUICK_MISSES, QUICK_HITS) if args.quick else (MISSES, HITS)
    data = photo.path.read_bytes()
    with tempfile.TemporaryDirectory() as tmp:
        stack = LocalStack(Path(tmp), s3_port=free_port(), api_port=free_port())
        with stack, requests.Session() as session:
            stack.put_original(KEY, data)
            print(f"Stack: s3rver + chalice local; original {photo.name}, {len(data) / 1e6:.1f} MB")
            cold, _ = get_miss(session, stack, "300x300")
            series = {f"~{side} px": misses(session, stack, data, side, n_miss) for side in SERIES}
            if png is not None:
                png_data = png.path.read_bytes()
                stack.put_original(PNG_KEY, png_data)
                label = f"~300 px of {png.name}"
                series[label] = misses(session, stack, png_data, 300, QUICK_MISSES, PNG_KEY)
            existing = ("300x300", f"{SERIES[-1] - 1}x{SERIES[-1] - 1}")
            hit_samples = {t: hits(session, stack, t, n_hit) for t in existing}
    report(cold, series, hit_samples)
    print("Medians of parts need not add up to the median of the whole.")
    delayed = with_latency(data, n_miss)
    report_latency(delayed)
    summary = latency_summary(delayed)
    write_summary("stack", [summary])
    print(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
