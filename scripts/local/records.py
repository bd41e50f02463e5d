"""The local stack's request and event lines (chalicelib/observe.py), read back from its log files.

`make run` prints :func:`summary` when it stops; tests read the lines to
check the metrics against the requests they made.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

# The processes whose output holds the lines: chalice local (API) and the poller (events).
LOG_NAMES = ("chalice", "poller")


def sizes(paths: Iterable[Path]) -> dict[Path, int]:
    """Where each file ends now: :func:`read` from there gives only what is written later."""
    return {path: path.stat().st_size if path.exists() else 0 for path in paths}


def read(paths: Iterable[Path], since: dict[Path, int] | None = None) -> list[dict[str, Any]]:
    """Every EMF line in the files (after ``since``'s offsets), in file order."""
    found = []
    for path in paths:
        if not path.exists():
            continue
        with path.open("rb") as file:
            file.seek((since or {}).get(path, 0))
            text_read = file.read().decode("utf-8", errors="replace")
        for text in text_read.splitlines():
            if not text.startswith("{"):
                continue
            try:
                line = json.loads(text)
            except ValueError:
                continue
            if isinstance(line, dict) and "_aws" in line:
                found.append(line)
    return found


def log_paths(data_dir: Path) -> list[Path]:
    return [data_dir / f"{name}.log" for name in LOG_NAMES]


def totals(lines: Iterable[dict[str, Any]]) -> Counter[str]:
    """Each metric's sum over the lines, as CloudWatch's Sum would give it."""
    summed: Counter[str] = Counter()
    for line in lines:
        for directive in line["_aws"]["CloudWatchMetrics"]:
            if directive["Dimensions"] == [[]]:
                for metric in directive["Metrics"]:
                    summed[metric["Name"]] += line[metric["Name"]]
    return summed


def summary(lines: list[dict[str, Any]]) -> str:
    """Two lines: requests (misses, API hits, refusals by code) and events."""
    summed = totals(lines)
    codes = Counter(line["Code"] for line in lines if "Code" in line)
    refused = ", ".join(f"{code} {count}" for code, count in codes.most_common())
    return (
        f"requests {summed['Requests']:.0f}: misses {summed['Misses']:.0f}, "
        f"API hits {summed['Hits']:.0f}, refusals {summed['Refusals']:.0f}"
        + (f" ({refused})" if refused else "")
        + f"\nevents {summed['Events']:.0f}: failed {summed['EventFailures']:.0f}, "
        f"retried {summed['EventRetries']:.0f}, presets rendered {summed['PresetsRendered']:.0f}"
    )
