#!/usr/bin/env python3
"""The closing lines of `make bench`: each benchmark's summary, measured in this run.

pipeline.py, crops.py, watermarks.py, stack.py, miss_harness.py, cold_start.py
and bytes_per_view.py write theirs to .local/bench/*.summary; `make bench`
removes those files before it starts, so a line printed here is from this
run or the run fails.

    python -m scripts.bench.summary
"""

from __future__ import annotations

import sys
from pathlib import Path

from scripts.bench.timing import SUMMARY_DIR

ROOT = Path(__file__).resolve().parents[2]


ORDER = ("pipeline", "crops", "watermarks", "stack", "harness", "cold", "views")


def main() -> int:
    missing = [name for name in ORDER if not (SUMMARY_DIR / f"{name}.summary").exists()]
    if missing:
        print(f"bench summary: no result from {', '.join(missing)} in this run", file=sys.stderr)
        return 1
    for name in ORDER:
        print((SUMMARY_DIR / f"{name}.summary").read_text().rstrip("\n"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
