#!/usr/bin/env python3
"""What one miss costs for each resource bomb: wall time, CPU time and peak memory.

Each case renders a generated original (``tests/bombs.py``, full size) with
``chalicelib.imaging.render`` at its default limits, in a fresh process, so the
peak resident set (VmHWM) is that one request's: interpreter, Pillow, the
original's bytes and the render, as in one Lambda invocation.  A case runs
``--repeat`` times and the worst run is reported.  ``--before REV`` runs every
case a second time against ``chalicelib/`` as of that commit (extracted with
``git archive`` into a temporary directory; the working tree is not touched)
and prints both side by side.  A child still running after ``--timeout``
seconds is stopped, and reported with its peak so far.

Then the mutation sweep (scripts/bench/mutations.py): ``--sweep`` cuts and as
many seeded mutants of one small original per input format, each through
``inspect``, ``render``, ``describe`` and (where the code has it)
``check_watermark``, in a child per code version; it
prints the outcomes, every kind of escape (an exception that is not a 4xx:
the service's 500) and the slowest case.

    python -m scripts.bench.bombs [--quick] [--before REV] [--only NAME ...] [--sweep N]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from scripts.bench import bomb_files as bombs
from scripts.bench.measure_lambda import encoded, photo
from scripts.bench.timing import peak_rss_kib

ROOT = Path(__file__).resolve().parents[2]


REPEAT, QUICK_REPEAT = 3, 1
TIMEOUT_SECONDS = 120.0
SWEEP, QUICK_SWEEP = 2000, 400  # cuts and mutants per original


@dataclass(frozen=True)
class Case:
    name: str
    make: Callable[[], bytes]
    token: str = "300x300"
    bad: bool = True  # a bomb; False: the largest original of its kind the defaults accept


def _photo_png() -> bytes:
    """A 60 MP RGB PNG of smooth photo-like content: 36 MB, under MAX_SOURCE_BYTES."""
    return encoded(photo((7745, 7745), detail=0.0), "PNG", compress_level=6)


def _photo_jpeg(progressive: bool) -> bytes:
    """A 50 MP phone-sized JPEG of photo-like content."""
    return encoded(photo((8160, 6120)), "JPEG", quality=90, progressive=progressive)


def _photo_heic() -> bytes:
    """A 12 MP phone-sized HEIC of photo-like content, in 512² tiles as phones store it."""
    return bombs.heic(picture=photo((4032, 3024)), quality=80, tile_size=512)


CASES = (
    # The cases, full size.
    Case("gif: 2nd frame at (12999, 12999) on a 1×1 screen", bombs.gif_offscreen_frame),
    Case("webp: 7745² canvas, one 1×1 frame", lambda: bombs.webp_animation((7745, 7745))),
    Case("gif: 2×2, 20 frames, padded", bombs.gif_tiny_frames, "4096x4096-pad"),
    Case("jpeg: 7745² grey, 1 DC + 4000 AC scans", bombs.jpeg_progressive),
    Case("tiff: 60,000 chained 1×1 pages", bombs.tiff_pages),
    Case("png: 3.49 M private chunks before IDAT", bombs.png_many_chunks),
    Case("png: 7745² palette with tRNS", bombs.png_palette_transparent),
    Case("avif: ispe claims 7745² over 64² data", bombs.avif_declaring),
    Case("heif: 64×64 grid naming one 16² tile 4096 times", bombs.heif_grid),
    Case("heif: ispe claims 7745² over 64² data", bombs.heif_declaring),
    Case("heif: 65,000 items", bombs.heif_many_items),
    Case("heif: 10,000 nested boxes", bombs.heif_nested),
    Case("heif: truncated in its coded data", bombs.heif_truncated),
    Case("jpeg: 7745² 3-component progressive", lambda: bombs.jpeg_progressive(7745, 3, 3)),
    # Variations: other parsers that walk one step at a time, other ways to ask.
    Case("tiff: 60,000 pages, asked for as WebP", bombs.tiff_pages, "300x300.webp"),
    Case("gif: 10 M empty extensions", bombs.gif_many_extensions),
    Case("gif: 1 M frames of 1×1", bombs.gif_many_frames),
    Case("jpeg: 10 M comment markers", bombs.jpeg_many_markers),
    Case("jpeg: 40 MB of 0xFF fill", bombs.jpeg_fill),
    Case("png: 3.49 M private chunks after IDAT", lambda: bombs.png_many_chunks(after_idat=True)),
    Case("webp: 500,000 frames of 1×1", lambda: bombs.webp_animation((1, 1), 500_000)),
    Case("tiff: 4 M strips", bombs.tiff_many_strips),
    Case("bmp: 7745² RLE4", bombs.bmp_rle4),
    # Bombs tuned to just pass every cap: the worst an attacker still gets.
    Case("jpeg: 2000² grey, 100 scans (the scan cap)", lambda: bombs.jpeg_progressive(2000, 1, 99)),
    Case("jpeg: 7745² grey, 53 scans (the block cap)", lambda: bombs.jpeg_progressive(7745, 1, 52)),
    Case(
        "jpeg: 7745² 3-component, 17 DC scans (the block cap)",
        lambda: bombs.jpeg_progressive(7745, 3, 0, dc_scans=17),
    ),
    Case(
        "jpeg: 7745² 3-component, 100 DC scans",
        lambda: bombs.jpeg_progressive(7745, 3, 0, dc_scans=100),
    ),
    Case("png: 100,000 chunks (the cap)", lambda: bombs.png_many_chunks(99_997)),
    Case("gif: 400,000 blocks (the cap)", lambda: bombs.gif_many_extensions(399_993)),
    Case("tiff: 131,064 strips (the cap)", lambda: bombs.tiff_many_strips(131_064)),
    Case("bmp: 4000² RLE4 (the cap)", lambda: bombs.bmp_rle4(4000)),
    Case(
        "gif: 300 frames of 408² (the animation budget)",
        lambda: bombs.gif(
            (408, 408), [bombs.GifFrame(0, 0, 408, 408, 1 + i % 3) for i in range(300)]
        ),
        "300x300.webp",
    ),
    Case("webp: 5700² canvas, one 1×1 frame", lambda: bombs.webp_animation((5700, 5700))),
    # Metadata: EXIF of a million RATIONALs (8 MB) in each container, and broken files.
    Case("png: eXIf of 1 M rationals", bombs.png_exif),
    Case("webp: EXIF of 1 M rationals", bombs.webp_exif),
    Case("jpeg: EXIF of 1 M rationals in 124 APP1s", bombs.jpeg_exif),
    Case("tiff: Exif IFD of 1 M rationals", bombs.tiff_exif),
    Case("avif: Exif item of 200 K rationals, orientation in irot", bombs.avif_exif),
    Case("png: eXIf of 8,180 rationals (the EXIF cap)", lambda: bombs.png_exif(8180)),
    Case("jpeg: orientation 6, ImageWidth as ASCII", bombs.jpeg_wrongly_typed_exif),
    Case("gif: cut inside the 2nd frame's header", bombs.gif_cut_in_a_later_frame),
    Case("avif: pitm names a missing item", bombs.avif_missing_primary_item),
    # The largest ordinary originals the defaults accept, at the largest output.
    Case("png: 7745² photo-like RGB", _photo_png, "4096x4096-cover", bad=False),
    Case("jpeg: 50 MP photo-like", lambda: _photo_jpeg(False), "4096x4096-cover", bad=False),
    Case("jpeg: 50 MP progressive", lambda: _photo_jpeg(True), "4096x4096-cover", bad=False),
    Case("png: 7745² RGBA", lambda: bombs.png((7745, 7745), colour_type=6), bad=False),
    Case("heic: 12 MP photo-like, 512² tiles", _photo_heic, "4096x4096-cover", bad=False),
)


def child(root: str, path: str, token: str) -> dict[str, object]:
    """One render in this fresh process, with ``root``'s chalicelib."""
    sys.path.insert(0, root)
    from chalicelib.errors import ServiceError
    from chalicelib.imaging import render
    from chalicelib.resize.grammar import parse_size

    original = Path(path).read_bytes()
    spec = parse_size(token, 16384)
    idle = peak_rss_kib()
    wall, cpu = time.perf_counter(), time.process_time()
    try:
        rendered = render(original, spec)
        frames = f", {rendered.frames} frames" if rendered.frames > 1 else ""
        kind = rendered.content_type.split("/")[1]
        outcome = f"{kind} {rendered.width}×{rendered.height}{frames}"
    except ServiceError as err:
        outcome = f"{err.status} {err.code}"
    except Exception as err:  # what the service would answer 500 to
        outcome = f"500 ({type(err).__name__})"
    return {
        "outcome": outcome,
        "wall_s": time.perf_counter() - wall,
        "cpu_s": time.process_time() - cpu,
        "idle_mib": idle / 1024,
        "peak_mib": peak_rss_kib() / 1024,
    }


def sweep_child(root: str, per_seed: str) -> dict[str, object]:
    """The mutation sweep in this fresh process, with ``root``'s chalicelib."""
    sys.path.insert(0, root)
    import logging

    from scripts.bench import mutations

    logging.disable(logging.WARNING)  # each refused animation and broken profile logs a line
    start = time.perf_counter()
    report = mutations.sweep(int(per_seed), keep=0)
    return {
        "cases": report.cases,
        "calls": list(mutations.CALLS),
        "outcomes": dict(report.outcomes.most_common()),
        "escapes": dict(report.escape_kinds.most_common()),
        "wall_s": time.perf_counter() - start,
        "worst_s": report.worst_seconds,
        "worst_case": report.worst_case,
        "peak_mib": peak_rss_kib() / 1024,
    }


def run_sweep(root: Path, per_seed: int) -> dict[str, object]:
    command = [sys.executable, "-m", __spec__.name, "--sweep-child", str(root), str(per_seed)]
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, check=False)
    if done.returncode:
        return {"failed": done.stderr[-2000:]}
    return json.loads(done.stdout)


def sweep_lines(label: str, report: dict[str, object]) -> list[str]:
    if "failed" in report:
        return [f"{label}: the sweep failed: {report['failed']}"]
    escapes = report["escapes"] or "none"
    return [
        f"{label}: {report['cases']} cases × {', '.join(report['calls'])} in "
        f"{float(report['wall_s']):.1f} s (slowest call {float(report['worst_s']) * 1000:.0f} ms, "
        f"{report['worst_case']}; peak {float(report['peak_mib']):.0f} MiB)",
        f"  outcomes: {report['outcomes']}",
        f"  escapes (500s): {escapes}",
    ]


def run_child(root: Path, path: Path, token: str, timeout: float) -> dict[str, object]:
    """A child's report; past ``timeout``, its peak so far and how long it ran."""
    command = [sys.executable, "-m", __spec__.name, "--child", str(root), str(path), token]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    start = time.perf_counter()
    try:
        stdout, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        peak = peak_rss_kib(process.pid) / 1024
        process.kill()
        process.communicate()
        return {"outcome": "stopped", "wall_s": time.perf_counter() - start, "peak_mib": peak}
    if process.returncode:
        return {"outcome": f"child exit {process.returncode}", "wall_s": 0.0, "peak_mib": 0.0}
    return json.loads(stdout)


def worst(reports: list[dict[str, object]]) -> dict[str, object]:
    """The slowest run's outcome, with the highest peak of any run."""
    slowest = max(reports, key=lambda report: float(report["wall_s"]))  # type: ignore[arg-type]
    return {**slowest, "peak_mib": max(float(r["peak_mib"]) for r in reports)}  # type: ignore[arg-type]


def measure(case: Case, roots: dict[str, Path], repeat: int, timeout: float, workdir: Path) -> dict:
    original = case.make()
    path = workdir / "original"
    path.write_bytes(original)
    results = {
        label: worst([run_child(root, path, case.token, timeout) for _ in range(repeat)])
        for label, root in roots.items()
    }
    return {"case": case, "bytes": len(original), **results}


def size_text(count: int) -> str:
    if count >= 1_000_000:
        return f"{count / 1e6:.1f} MB"
    return f"{count / 1e3:.1f} KB" if count >= 1000 else f"{count} B"


def cells(report: dict[str, object]) -> list[str]:
    seconds = float(report["wall_s"])  # type: ignore[arg-type]
    wall = f">{seconds:.0f}" if report["outcome"] == "stopped" else f"{seconds:.2f}"
    return [str(report["outcome"]), wall, f"{float(report['peak_mib']):.0f}"]  # type: ignore[arg-type]


def table(rows: list[dict], labels: list[str]) -> list[str]:
    header = ["case", "original", "token"]
    for label in labels:
        header += [f"{label}: outcome", f"{label}: wall s", f"{label}: peak MiB"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        case: Case = row["case"]
        line = [case.name, size_text(row["bytes"]), case.token]
        for label in labels:
            line += cells(row[label])
        lines.append("| " + " | ".join(line) + " |")
    return lines


def summary(rows: list[dict], labels: list[str]) -> list[str]:
    """The worst wall time and the highest peak, per code version, bombs and ordinary apart."""
    lines = []
    for label in labels:
        for bad, kind in ((True, "bad inputs"), (False, "largest accepted originals")):
            reports = [(row["case"].name, row[label]) for row in rows if row["case"].bad is bad]
            if not reports:
                continue
            slow_name, slow = max(reports, key=lambda item: float(item[1]["wall_s"]))
            big_name, big = max(reports, key=lambda item: float(item[1]["peak_mib"]))
            lines.append(
                f"{label}, {kind}: worst wall {float(slow['wall_s']):.2f} s ({slow_name}); "
                f"highest peak {float(big['peak_mib']):.0f} MiB ({big_name})"
            )
    return lines


def extract(rev: str, into: Path) -> Path:
    """``chalicelib/`` as of ``rev``, unpacked under ``into`` (git archive reads, never writes)."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", rev, "chalicelib"], capture_output=True, check=True
    )
    into.mkdir()
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return into


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        print(json.dumps(child(*sys.argv[2:5])))
        return 0
    if len(sys.argv) > 1 and sys.argv[1] == "--sweep-child":
        print(json.dumps(sweep_child(*sys.argv[2:4])))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_REPEAT} run, not {REPEAT}")
    parser.add_argument("--before", metavar="REV", help="also measure chalicelib/ as of REV")
    parser.add_argument("--only", nargs="*", default=[], help="cases whose name contains this")
    parser.add_argument("--timeout", type=float, default=TIMEOUT_SECONDS)
    parser.add_argument(
        "--sweep",
        type=int,
        metavar="N",
        help=f"cuts and mutants per original (default {SWEEP}, --quick {QUICK_SWEEP}; 0: none)",
    )
    parser.add_argument("--photos", help=argparse.SUPPRESS)  # make bench passes BENCH_ARGS to all
    args = parser.parse_args()
    repeat = QUICK_REPEAT if args.quick else REPEAT
    cases = [c for c in CASES if not args.only or any(part in c.name for part in args.only)]
    with tempfile.TemporaryDirectory() as workdir:
        roots = {"now": ROOT}
        if args.before:
            before = extract(args.before, Path(workdir) / "before")
            roots = {f"before ({args.before})": before, "now": ROOT}
        labels = list(roots)
        print(
            f"{os.cpu_count()} CPUs; each case in a fresh process, worst of {repeat}; "
            "peak MiB is the whole process's VmHWM"
        )
        rows = []
        for case in cases:
            rows.append(measure(case, roots, repeat, args.timeout, Path(workdir)))
            print(f"  measured {case.name}", file=sys.stderr, flush=True)
        per_seed = args.sweep if args.sweep is not None else QUICK_SWEEP if args.quick else SWEEP
        sweeps = (
            {label: run_sweep(root, per_seed) for label, root in roots.items()} if per_seed else {}
        )
    print("\n".join(table(rows, labels)))
    print("\n".join(summary(rows, labels)))
    for label, report in sweeps.items():
        print("\n".join(sweep_lines(label, report)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
