"""Timing helpers shared by the benchmarks: wall-clock samples, medians, percentiles.

The machine the benchmarks run on is shared and noisy, so every number is a
median over repetitions, and competing methods are timed interleaved (one call
of each per round, the order rotating) so a burst of background load hits all
of them alike instead of whichever happened to run at that moment.

Two clocks: wall time for anything spanning processes (HTTP through the local
stack), and this process's CPU time for in-process work, which does not count
the time other programs held the CPU: on a busy shared machine that is the
closer estimate of an uncontended run.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

Clock = Callable[[], float]
WALL: Clock = time.perf_counter
CPU: Clock = time.process_time  # user + system time of all this process's threads


def timed(call: Callable[[], T], clock: Clock = WALL) -> tuple[float, T]:
    """Milliseconds one call takes on ``clock``, and what it returned."""
    start = clock()
    result = call()
    return (clock() - start) * 1000.0, result


def elapsed_ms(call: Callable[[], object], clock: Clock = WALL) -> float:
    return timed(call, clock)[0]


def interleaved(
    calls: Mapping[str, Callable[[], object]],
    rounds: int,
    warmup: int = 1,
    clock: Clock = WALL,
) -> dict[str, list[float]]:
    """Samples in ms per name: each round calls each function once, in a rotated order."""
    names = list(calls)
    for _ in range(warmup):
        for name in names:
            calls[name]()
    samples: dict[str, list[float]] = {name: [] for name in names}
    for round_index in range(rounds):
        # Rotating the order keeps one method from always running right after another's
        # cache-evicting work.
        shift = round_index % len(names) if names else 0
        for name in names[shift:] + names[:shift]:
            samples[name].append(elapsed_ms(calls[name], clock))
    return samples


def median(samples: list[float]) -> float:
    return statistics.median(samples)


def percentile(samples: list[float], fraction: float) -> float:
    """Nearest-rank percentile: a value actually observed, never an interpolation."""
    if not samples:
        raise ValueError("no samples")
    ordered = sorted(samples)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def peak_rss_kib(pid: int | str = "self") -> int:
    """A process's peak resident set so far (VmHWM), in KiB: this one's by default.

    Not ``ru_maxrss``: a child started by ``subprocess`` inherits its parent's,
    so after the parent decoded a big photo every child would report that.
    """
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmHWM in /proc/{pid}/status: peak memory needs Linux")


SUMMARY_DIR = Path(__file__).resolve().parents[2] / ".local" / "bench"


def write_summary(name: str, lines: list[str]) -> None:
    """A benchmark's closing lines, for the end of `make bench` (scripts/bench/summary.py)."""
    SUMMARY_DIR.mkdir(parents=True, exist_ok=True)
    (SUMMARY_DIR / f"{name}.summary").write_text("\n".join(lines) + "\n")
