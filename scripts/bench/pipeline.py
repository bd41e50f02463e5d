#!/usr/bin/env python3
"""How close is ``chalicelib.imaging.render`` to the fastest a resize can be?

For each original (scripts/bench/photos.py) and output box, four methods are timed
interleaved in one run, single-threaded, medians over rounds.  Times are this
process's CPU time per call (see scripts/bench/timing.py); the ``wall/CPU`` column
says how much longer the same rounds took in wall-clock time, i.e. how busy the
machine was meanwhile (1.00: the benchmark had a core to itself).

- ``render``: the app's pipeline, exactly as a miss runs it.
- ``floor``: what any pipeline must at least do: decode (a JPEG at the DCT
  scale render drafts to, i.e. the smallest of 1/1, 1/2, 1/4, 1/8 still covering
  the output) and encode the output pixels with render's save settings.  For
  other formats: a plain decode + encode.  No resampling at all.
- ``naive``: open, ``resize(LANCZOS)`` without ``draft``, save; the common recipe.
- ``vips``: ``pyvips.Image.thumbnail_buffer`` + save at the same settings, if
  pyvips imports (``requirements-bench.txt``); one thread (``VIPS_CONCURRENCY=1``).

Peak memory: each method runs once in a fresh process, which reports how far
its peak resident set rose during the call over its own idle peak (imports
done, original read).  Pillow allocates pixels in C, where tracemalloc sees
nothing.  The peak is Linux's VmHWM, not ``ru_maxrss``: a child started by
``subprocess`` (vfork + exec) inherits the parent's ``ru_maxrss``, so after
the parent decoded a 20 MP photo every child reported the same value, delta 0.

    python -m scripts.bench.pipeline [--quick] [--photos DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from types import ModuleType
from typing import Any

import PIL
from PIL import Image, ImageOps, ImageSequence

from chalicelib import imaging
from chalicelib.imaging import encoders, formats, heif, pipeline
from chalicelib.imaging.geometry import SWAPPING_ORIENTATIONS
from chalicelib.resize.grammar import ResizeSpec, parse_size
from scripts.bench import photos as photo_source
from scripts.bench.timing import (
    CPU,
    WALL,
    interleaved,
    median,
    peak_rss_kib,
    write_summary,
)

# libvips would otherwise use every core; Pillow uses one, and so does a small Lambda.
os.environ.setdefault("VIPS_CONCURRENCY", "1")
# The floor and naive methods open HEIC originals with Pillow too; render, as a warm Lambda
# would, finds pillow-heif registered (its import: docs/decisions.md).
heif.register_opener()


ROOT = Path(__file__).resolve().parents[2]


OUTPUTS = ("300x300", "1000x1000")
# The largest dimension the grammar accepts at all; specs are always built by the parser.
MAX_DIMENSION = 16384
METHODS = ("render", "floor", "naive", "vips")
MEMORY_METHODS = ("render", "naive", "vips")  # the floor is a bound, not a pipeline anyone runs
ROUNDS = 11  # with 1 warm-up and the memory probes: about 2 minutes here
QUICK_ROUNDS = 3
# EXIF orientations 5–8 store the picture on its side: the stored target is swapped.
ORIENTATION_TAG = 0x0112

Call = Callable[[], object]


@dataclass(frozen=True)
class Job:
    """One original and one output box, with what render will resize to."""

    data: bytes
    spec: ResizeSpec
    source_format: str
    target: tuple[int, int]  # in the file's stored orientation, as render resizes
    frames: int = 1  # as render keeps them: more than 1 for a resized animation


@dataclass(frozen=True)
class Row:
    case: str
    source: str
    output: str
    is_jpeg: bool
    ms: dict[str, float]
    wall_per_cpu: float
    peak_mib: dict[str, float]
    format: str = "JPEG"  # the original's, as Pillow names it

    def ratio(self, other: str) -> float | None:
        if other not in self.ms or self.ms[other] <= 0:
            return None
        return self.ms["render"] / self.ms[other]


def spec_for(token: str) -> ResizeSpec:
    return parse_size(token, MAX_DIMENSION)


def plan(data: bytes, token: str) -> Job:
    """Render once: whatever size render produces is the size every method must produce."""
    spec = spec_for(token)
    rendered = imaging.render(data, spec)
    with Image.open(BytesIO(data)) as image:
        source_format = str(image.format)
        swaps = int(image.getexif().get(ORIENTATION_TAG, 1)) in SWAPPING_ORIENTATIONS
    upright = (rendered.width, rendered.height)
    target = (upright[1], upright[0]) if swaps else upright
    return Job(data, spec, source_format, target, rendered.frames)


def save_options(source_format: str) -> dict[str, Any]:
    """render's own settings (quality included), so a change there moves every baseline."""
    output = formats.FORMATS[formats.DEFAULT_OUTPUT[source_format]]
    options = dict(encoders.SAVE_OPTIONS.get(output.pillow, {}))
    quality = output.default_quality
    if quality is not None:
        options["quality"] = quality
    return options


def encode(frames: list[Image.Image], job: Job) -> bytes:
    """render's own encoder, with the animation options render would pass."""
    output = formats.output_format(job.source_format, job.spec)
    animation: dict[str, Any] = {}
    if len(frames) > 1:
        with Image.open(BytesIO(job.data)) as image:
            durations = [frame.info.get("duration", 0) for frame in ImageSequence.Iterator(image)]
            loop = image.info.get("loop", 0)
        animation = {
            "save_all": True,
            "append_images": frames[1:],
            "duration": durations,
            "loop": loop,
        }
    background = imaging.ImagingLimits().background
    return encoders.encode(frames, output, job.spec, background, **animation).body


def floor_decode(data: bytes, target: tuple[int, int], frames: int = 1) -> Image.Image:
    """Decode only: a JPEG at the smallest DCT scale still at least ``target``; every frame."""
    image = Image.open(BytesIO(data))
    if image.format == "JPEG":
        image.draft(None, target)
    for index in range(frames):
        image.seek(index)
        image.load()
    return image


def output_pixels(job: Job) -> list[Image.Image]:
    """The frames render encodes, made outside the timed floor.

    Not render's output decoded again: a GIF decoded has at most 256 colours,
    which Pillow quantizes far faster than the resampled photo render encodes.
    """
    image = floor_decode(job.data, job.target)
    # Animations: RGBA frames, as render makes them (Pillow's GIF writer
    # quantizes RGBA with a fast octree, RGB with a far slower median cut).
    frames = (
        [frame.convert("RGBA") for frame in ImageSequence.all_frames(image)]
        if job.frames > 1
        else [image]
    )
    return [
        ImageOps.exif_transpose(
            pipeline.normalise_mode(frame).resize(job.target, Image.Resampling.LANCZOS)
        )
        for frame in frames
    ]


def render_call(job: Job) -> Call:
    return lambda: imaging.render(job.data, job.spec)


def floor_call(job: Job) -> Call:
    pixels = output_pixels(job)

    def floor() -> bytes:
        floor_decode(job.data, job.target, job.frames)
        return encode(pixels, job)

    return floor


def naive_call(job: Job) -> Call:
    def naive() -> bytes:
        with Image.open(BytesIO(job.data)) as image:
            resized = pipeline.normalise_mode(image).resize(job.target, Image.Resampling.LANCZOS)
        return encode([resized], job)

    return naive


def vips_call(job: Job, pyvips: ModuleType) -> Call:
    suffix, options = vips_save_options(job.source_format)
    # thumbnail needs a width; "no limit" is any number larger than the image.
    width = job.spec.width or 10 * MAX_DIMENSION
    height = job.spec.height or 10 * MAX_DIMENSION

    def vips() -> bytes:
        thumb = pyvips.Image.thumbnail_buffer(job.data, width, height=height, size="down")
        return bytes(thumb.write_to_buffer(suffix, keep="none", **options))

    return vips


def vips_save_options(source_format: str) -> tuple[str, dict[str, Any]]:
    """render's SAVE_OPTIONS translated into libvips' names."""
    pil = save_options(source_format)
    output_format = formats.FORMATS[formats.DEFAULT_OUTPUT[source_format]].pillow
    if output_format == "JPEG":
        return ".jpg", {"Q": pil.get("quality", 75), "optimize_coding": bool(pil.get("optimize"))}
    if output_format == "PNG":
        return ".png", {"compression": pil.get("compress_level", 6)}
    if output_format == "WEBP":
        return ".webp", {"Q": pil.get("quality", 80), "effort": pil.get("method", 4)}
    return ".gif", {}


def vips_reads(job: Job, pyvips: ModuleType) -> bool:
    """Whether this libvips decodes the original (pyvips-binary's has no HEVC decoder)."""
    try:
        pyvips.Image.new_from_buffer(job.data, "", access="sequential").avg()
    except pyvips.Error:
        return False
    return True


def load_pyvips() -> ModuleType | None:
    try:
        import pyvips
    except (ImportError, OSError):
        return None
    pyvips.cache_set_max(0)  # its operation cache would answer a repeated call from memory
    return pyvips


def calls_for(job: Job, methods: tuple[str, ...], pyvips: ModuleType | None) -> dict[str, Call]:
    builders: dict[str, Callable[[Job], Call]] = {
        "render": render_call,
        "floor": floor_call,
        "naive": naive_call,
    }
    if pyvips is not None and vips_reads(job, pyvips):
        builders["vips"] = lambda job: vips_call(job, pyvips)
    return {name: builders[name](job) for name in methods if name in builders}


def time_job(job: Job, rounds: int, pyvips: ModuleType | None) -> tuple[dict[str, float], float]:
    """Median CPU ms per method, and wall time over CPU time for all the rounds."""
    calls = calls_for(job, METHODS, pyvips)
    wall, cpu = WALL(), CPU()
    samples = interleaved(calls, rounds, clock=CPU)
    wall_per_cpu = (WALL() - wall) / max(CPU() - cpu, 1e-9)
    return {name: median(values) for name, values in samples.items()}, wall_per_cpu


def peak_mib(path: Path, token: str, job: Job, method: str) -> float:
    """Run one call in a fresh process; its ru_maxrss rise over its own idle value, in MiB."""
    command = [sys.executable, "-m", __spec__.name, "--child", method, str(path), token]
    command += [str(job.target[0]), str(job.target[1])]
    result = subprocess.run(command, capture_output=True, text=True, check=True, cwd=ROOT)
    report = json.loads(result.stdout)
    return (report["peak_kib"] - report["idle_kib"]) / 1024.0


def child(method: str, path: str, token: str, width: str, height: str) -> int:
    """The body of one memory probe: prepare everything, note the idle peak, call once."""
    data = Path(path).read_bytes()
    with Image.open(BytesIO(data)) as image:
        source_format = str(image.format)
    job = Job(data, spec_for(token), source_format, (int(width), int(height)))
    calls = calls_for(job, (method,), load_pyvips() if method == "vips" else None)
    idle = peak_rss_kib()
    calls[method]()
    peak = peak_rss_kib()
    print(json.dumps({"idle_kib": idle, "peak_kib": peak}))
    return 0


def describe_source(photo: photo_source.Photo, data: bytes) -> str:
    with Image.open(BytesIO(data)) as image:
        width, height = image.size
        return f"{width}×{height} {image.format} {len(data) / 1e6:.1f} MB"


def measure(photo: photo_source.Photo, token: str, rounds: int, pyvips: ModuleType | None) -> Row:
    data = photo.path.read_bytes()
    job = plan(data, token)
    ms, wall_per_cpu = time_job(job, rounds, pyvips)
    methods = [m for m in MEMORY_METHODS if m in ms]  # vips: only where it ran
    memory = {m: peak_mib(photo.path, token, job, m) for m in methods}
    output = f"{token} → {job.target[0]}×{job.target[1]}"
    source = describe_source(photo, data)
    is_jpeg = job.source_format == "JPEG"
    return Row(photo.name, source, output, is_jpeg, ms, wall_per_cpu, memory, job.source_format)


HEADER = (
    "| case | source | output | render ms | floor ms | naive ms | vips ms "
    "| render/floor | render/vips | peak MiB render / naive / vips | wall/CPU |"
)


def format_row(row: Row) -> str:
    def ms(name: str) -> str:
        return f"{row.ms[name]:.1f}" if name in row.ms else "–"

    def ratio(name: str) -> str:
        value = row.ratio(name)
        return f"{value:.2f}" if value is not None else "–"

    memory = " / ".join(
        f"{row.peak_mib[m]:.0f}" if m in row.peak_mib else "–" for m in MEMORY_METHODS
    )
    cells = [row.case, row.source, row.output, *(ms(m) for m in METHODS)]
    cells += [ratio("floor"), ratio("vips"), memory, f"{row.wall_per_cpu:.2f}"]
    return "| " + " | ".join(cells) + " |"


def worst_jpeg_ratio(rows: list[Row]) -> float:
    ratios = [r.ratio("floor") for r in rows if r.is_jpeg]
    found = [r for r in ratios if r is not None]
    if not found:
        raise ValueError("no JPEG cases")
    return max(found)


def worst_vips_ratio(rows: list[Row], source_format: str) -> float | None:
    """render/vips at its worst for originals of ``source_format``; None without libvips."""
    found = [r.ratio("vips") for r in rows if r.format == source_format]
    ratios = [ratio for ratio in found if ratio is not None]
    return max(ratios) if ratios else None


def summary(rows: list[Row]) -> str:
    """The last line of the output, for people and scripts alike."""
    return f"worst JPEG ratio to floor: {worst_jpeg_ratio(rows):.2f}"


def summaries(rows: list[Row]) -> list[str]:
    """The closing lines: JPEG against the floor, WebP and PNG against libvips."""
    lines = [summary(rows)]
    for pillow_name, shown_name in (("WEBP", "WebP"), ("PNG", "PNG")):
        worst = worst_vips_ratio(rows, pillow_name)
        shown = f"{worst:.2f}" if worst is not None else "– (no libvips, or no such original)"
        lines.append(f"worst {shown_name} ratio to libvips: {shown}")
    return lines


def table(rows: list[Row]) -> list[str]:
    lines = [HEADER, "|" + "---|" * (HEADER.count("|") - 1)]
    lines += [format_row(row) for row in rows]
    return lines


def environment(pyvips: ModuleType | None, rounds: int) -> str:
    vips = (
        f"libvips {pyvips.version(0)}.{pyvips.version(1)}.{pyvips.version(2)} "
        f"(VIPS_CONCURRENCY={os.environ['VIPS_CONCURRENCY']})"
        if pyvips is not None
        else "pyvips not importable: no vips column (pip install -r requirements-bench.txt)"
    )
    return (
        f"Python {platform.python_version()}, Pillow {PIL.__version__}, {vips}; "
        f"{os.cpu_count()} CPUs; CPU ms per call, medians of {rounds} interleaved rounds "
        "after 1 warm-up"
    )


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        return child(*sys.argv[2:7])
    parser = argparse.ArgumentParser(description="Time render against floor, naive and libvips.")
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_ROUNDS} rounds, not {ROUNDS}")
    photo_source.add_photos_argument(parser)
    args = parser.parse_args()
    try:
        originals = photo_source.get_photos(photo_source.photos_dir_from(args.photos))
    except photo_source.PhotosUnavailable as err:
        print(f"bench: {err}", file=sys.stderr)
        return 1
    rounds = QUICK_ROUNDS if args.quick else ROUNDS
    pyvips = load_pyvips()
    print(environment(pyvips, rounds))
    if photo_source.photos_dir_from(args.photos) is None:
        print(f"Photo: {photo_source.ATTRIBUTION}")
    rows = []
    for photo in originals:
        for token in OUTPUTS:
            rows.append(measure(photo, token, rounds, pyvips))
            print(f"  measured {photo.name} {token}", file=sys.stderr, flush=True)
    print("\n".join(table(rows)))
    closing = summaries(rows)
    write_summary("pipeline", closing)
    print("\n".join(closing))
    return 0


if __name__ == "__main__":
    sys.exit(main())
