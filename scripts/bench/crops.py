#!/usr/bin/env python3
"""What a smart crop and a placeholder cost.

Smart crops: ``-cover-smart`` against the centred ``-cover`` on the JPEG
cases, each the whole miss render (``chalicelib.imaging.render``).
Placeholders: an upload's default presets rendered with one shared decode,
as the events path does, against the same plus the placeholder
(``chalicelib.imaging.placeholder``), on every original.  Timed interleaved
in one process, CPU time per call, medians over rounds
(scripts/bench/timing.py).  The closing lines: the worst ratio of smart to
centre (the budget is 1.10 at 12 MP → 300 px), and the worst placeholder
cost per upload in ms.

    python -m scripts.bench.crops [--quick] [--photos DIR]
"""

from __future__ import annotations

import sys
from functools import partial

from chalicelib import imaging
from chalicelib.config import DEFAULT_PRESET_SIZES
from chalicelib.imaging.placeholder import placeholder
from chalicelib.resize.grammar import parse_size
from scripts.bench import photos as photo_source
from scripts.bench.timing import CPU, interleaved, median, write_summary

BOXES = ("300x300", "160x160")
ANCHORS = ("-cover", "-cover-smart")
ROUNDS = 11
QUICK_ROUNDS = 3
MAX_DIMENSION = 16384


def measure(data: bytes, box: str, rounds: int) -> dict[str, float]:
    """Median CPU ms of a centre and a smart cover render of ``data``."""
    specs = {anchor: parse_size(box + anchor, MAX_DIMENSION) for anchor in ANCHORS}
    calls = {anchor: partial(imaging.render, data, spec) for anchor, spec in specs.items()}
    samples = interleaved(calls, rounds, clock=CPU)
    return {name: median(values) for name, values in samples.items()}


def upload_work(data: bytes, with_placeholder: bool) -> None:
    """The events path's image work for one upload: its presets, one decode shared."""
    limits = imaging.ImagingLimits()
    shared = imaging.SharedDecode()
    for token in DEFAULT_PRESET_SIZES.split(","):
        imaging.render(data, parse_size(token, MAX_DIMENSION), limits, shared)
    if with_placeholder:
        placeholder(data, limits, shared)


def measure_placeholder(data: bytes, rounds: int) -> dict[str, float]:
    """Median CPU ms of an upload's presets, without and with its placeholder."""
    calls = {
        "presets": partial(upload_work, data, False),
        "with placeholder": partial(upload_work, data, True),
    }
    samples = interleaved(calls, rounds, clock=CPU)
    return {name: median(values) for name, values in samples.items()}


def main() -> int:
    originals, rounds = photo_source.photos_and_rounds_or_exit(
        "Time -cover-smart against -cover, and placeholders.", ROUNDS, QUICK_ROUNDS
    )
    print("| case | box | centre ms | smart ms | smart/centre |")
    print("|---|---|---|---|---|")
    ratios = []
    for photo in originals:
        if photo.path.suffix.lower() not in photo_source.JPEG_SUFFIXES:
            continue
        data = photo.path.read_bytes()
        for box in BOXES:
            ms = measure(data, box, rounds)
            ratio = ms["-cover-smart"] / ms["-cover"]
            ratios.append(ratio)
            centre, smart = ms["-cover"], ms["-cover-smart"]
            print(f"| {photo.name} | {box} | {centre:.1f} | {smart:.1f} | {ratio:.2f} |")
    if not ratios:
        print("bench: no JPEG originals", file=sys.stderr)
        return 1
    print()
    print("| case | presets ms | presets + placeholder ms | placeholder ms |")
    print("|---|---|---|---|")
    costs = []
    for photo in originals:
        ms = measure_placeholder(photo.path.read_bytes(), rounds)
        cost = ms["with placeholder"] - ms["presets"]
        costs.append(cost)
        print(f"| {photo.name} | {ms['presets']:.1f} | {ms['with placeholder']:.1f} | {cost:.1f} |")
    closing = [
        f"worst smart crop ratio to centre crop (JPEG): {max(ratios):.2f}",
        f"worst placeholder cost per upload: {max(costs):.0f} ms",
    ]
    write_summary("crops", closing)
    print("\n".join(closing))
    return 0


if __name__ == "__main__":
    sys.exit(main())
