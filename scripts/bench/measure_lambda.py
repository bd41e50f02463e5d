#!/usr/bin/env python3
"""Measure what one miss costs in time and memory, to size the Lambda function.

Each case renders a synthetic original with ``chalicelib.imaging.render`` in a
fresh child process, so the peak RSS belongs to that one case: the
interpreter, Pillow, the original's bytes and the render, as in a Lambda
invocation.  Originals are generated here, not committed; their JPEG
entropy is close to a real photo's (a 12 MP one is ~2 MB at quality 90).

    .venv/bin/python -m scripts.bench.measure_lambda [--memory 1769] [--repeat 5]

The cost line assumes what docs/deploy.md's cost notes state: Lambda CPU share is
proportional to memory up to 1769 MB (one vCPU), this machine's core is
comparable to Lambda's, and the S3 GET + PUT of a miss take ``--io-ms``.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from scripts.bench.timing import peak_rss_kib

ROOT = Path(__file__).resolve().parents[2]


# Lambda prices (x86_64, us-east-1): per GB-second and per request.
PRICE_GB_SECOND = 0.0000166667
PRICE_REQUEST = 0.20 / 1_000_000
ONE_VCPU_MB = 1769


@dataclass(frozen=True)
class Case:
    name: str
    make: Callable[[], bytes]
    size: str


def photo(size: tuple[int, int], detail: float = 0.2) -> Image.Image:
    """Smooth gradients plus noise at a few scales: compresses like a photo, unlike flat fills."""

    def noise(divisor: int, sigma: float) -> Image.Image:
        small = (max(1, size[0] // divisor), max(1, size[1] // divisor))
        return Image.effect_noise(small, sigma).resize(size, Image.Resampling.BICUBIC)

    red = Image.blend(Image.linear_gradient("L").resize(size), noise(32, 60), 0.5)
    green = Image.blend(noise(32, 60), noise(4, 40), detail)
    blue = Image.blend(Image.radial_gradient("L").resize(size), noise(2, 30), detail)
    return Image.merge("RGB", (red, green, blue))


def encoded(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


TWELVE_MP, TWENTY_MP = (4000, 3000), (5472, 3648)


def as_jpeg(size: tuple[int, int]) -> Callable[[], bytes]:
    return lambda: encoded(photo(size), "JPEG", quality=90)


CASES = [
    Case("JPEG 12 MP → 300x300", as_jpeg(TWELVE_MP), "300x300"),
    Case("JPEG 12 MP → 1000x", as_jpeg(TWELVE_MP), "1000x"),
    Case("JPEG 20 MP → 300x300", as_jpeg(TWENTY_MP), "300x300"),
    # MAX_DIMENSION's default: the largest output a URL may ask for.
    Case("JPEG 20 MP → 4096x", as_jpeg(TWENTY_MP), "4096x"),
    Case("WebP 12 MP → 300x300", lambda: encoded(photo(TWELVE_MP), "WEBP", quality=90), "300x300"),
    Case(
        "PNG RGBA 24 MP → 300x300",
        lambda: encoded(photo((6000, 4000)).convert("RGBA"), "PNG", compress_level=1),
        "300x300",
    ),
    # Pillow's decompression-bomb warning starts at 89.5 MP: the largest
    # "normal" image, decoded whole because PNG has no shrink-on-load.
    Case(
        "PNG RGB 89 MP → 300x300",
        lambda: encoded(photo((10900, 8200)), "PNG", compress_level=1),
        "300x300",
    ),
]


def child(path: str, size: str, repeat: int) -> dict[str, float]:
    """Runs in the child: read the original, render it ``repeat`` times, report."""
    from chalicelib.imaging import render
    from chalicelib.resize.grammar import parse_size

    original = Path(path).read_bytes()
    spec = parse_size(size, 16384)
    before = peak_rss_kib() / 1024
    timings = []
    for _ in range(repeat + 1):  # the first run warms caches and is dropped
        start = time.perf_counter()
        render(original, spec)
        timings.append(time.perf_counter() - start)
    return {
        "median_ms": statistics.median(timings[1:]) * 1000,
        "max_ms": max(timings[1:]) * 1000,
        "baseline_mib": before,
        "peak_mib": peak_rss_kib() / 1024,
    }


def measure(case: Case, repeat: int, workdir: Path) -> dict[str, float]:
    original = case.make()
    path = workdir / "original"
    path.write_bytes(original)
    command = [sys.executable, "-m", __spec__.name, "--child", str(path), case.size, str(repeat)]
    result = subprocess.run(command, capture_output=True, text=True, check=True, cwd=ROOT)
    return {**json.loads(result.stdout), "original_mb": len(original) / 1e6}


def miss_cost(render_ms: float, memory_mb: int, io_ms: float) -> tuple[float, float]:
    """Billed milliseconds and dollars for one miss at ``memory_mb``."""
    cpu_share = min(1.0, memory_mb / ONE_VCPU_MB)
    billed_ms = render_ms / cpu_share + io_ms
    dollars = memory_mb / 1024 * billed_ms / 1000 * PRICE_GB_SECOND + PRICE_REQUEST
    return billed_ms, dollars


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--memory", type=int, default=ONE_VCPU_MB, help="Lambda memory, MB")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--io-ms", type=float, default=100.0, help="assumed S3 GET+PUT time")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        path, size, repeat = args.child
        print(json.dumps(child(path, size, int(repeat))))
        return 0

    print(f"| case | original MB | median ms | peak RSS MiB | $ per miss at {args.memory} MB |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as workdir:
        for case in CASES:
            row = measure(case, args.repeat, Path(workdir))
            billed_ms, dollars = miss_cost(row["median_ms"], args.memory, args.io_ms)
            print(
                f"| {case.name} | {row['original_mb']:.1f} | {row['median_ms']:.0f} "
                f"| {row['peak_mib']:.0f} (before render {row['baseline_mib']:.0f}) "
                f"| {dollars:.8f} ({billed_ms:.0f} ms billed) |",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
