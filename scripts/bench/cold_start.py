#!/usr/bin/env python3
"""A cold start's CPU, each figure from fresh interpreters: ``import app``, a first 4xx, tracing.

``import app`` and the first request Lambda hands a new container, a 400
(``/resize/0x0/<key>`` with API Gateway's event, as scripts/bench/miss_harness.py
invokes the handler), are timed in CPU ms in fresh processes, RUNS each.
With ``--baseline DIR`` (another checkout of the project) the same is timed
there, the runs alternating, and the ratios printed.  Last, building the
S3 client with TRACE_AWS_CALLS off and on (on: the X-Ray SDK's import and
its patch of botocore) in fresh processes of this tree (and of the baseline).

    python -m scripts.bench.cold_start [--quick] [--baseline DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from scripts.bench.miss_harness import api_event
from scripts.bench.timing import median, write_summary

ROOT = Path(__file__).resolve().parents[2]
RUNS, QUICK_RUNS = 7, 3
ENVIRONMENT = {
    "IMAGE_BUCKET": "images",
    "PUBLIC_URL": "https://img.example.com",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
}

# Run in a fresh interpreter, the event as argv[1]: nothing is imported before the clock starts.
FIRST_REQUEST = """
import json, sys, time
start = time.process_time()
import app
imported = time.process_time()
class Context:
    aws_request_id = "cold"
    function_name = "image-resizer-resize"
    memory_limit_in_mb = 1769
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:cold"
    def get_remaining_time_in_millis(self):
        return 25_000
answer = app.app(json.loads(sys.argv[1]), Context())
done = time.process_time()
print(json.dumps([answer["statusCode"], (imported - start) * 1000, (done - imported) * 1000]))
"""

CLIENT = """
import json, time
from chalicelib import wiring
start = time.process_time()
wiring.get_s3_client()
print(json.dumps((time.process_time() - start) * 1000))
"""


def fresh(code: str, tree: Path, *args: str, **environment: str) -> object:
    """What ``code`` prints last, run by a fresh interpreter in ``tree``."""
    done = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        check=True,
        cwd=tree,
        env={**os.environ, **ENVIRONMENT, **environment, "PYTHONPATH": str(tree)},
    )
    return json.loads(done.stdout.splitlines()[-1])


def first_request(tree: Path) -> tuple[float, float]:
    """CPU ms of ``import app`` and of the first request, a 400, in a fresh process."""
    event = json.dumps(api_event("0x0", "bench/photo.jpg"))
    status, imported, answered = fresh(FIRST_REQUEST, tree, event)  # type: ignore[misc]
    if status != 400:
        raise RuntimeError(f"{tree}: the first request answered {status}, not 400")
    return imported, answered


def spread(values: list[float]) -> str:
    return f"{min(values):.0f}–{max(values):.0f} (median {median(values):.0f})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs")
    parser.add_argument("--baseline", type=Path, help="another checkout, timed alternately")
    parser.add_argument("--photos", help=argparse.SUPPRESS)  # make bench's BENCH_ARGS
    args = parser.parse_args()
    runs = QUICK_RUNS if args.quick else RUNS
    trees = {"this tree": ROOT, **({"baseline": args.baseline.resolve()} if args.baseline else {})}
    found: dict[str, dict[str, list[float]]] = {
        name: {"import app": [], "first 4xx": []} for name in trees
    }
    for _ in range(runs):
        for name, tree in trees.items():
            imported, answered = first_request(tree)
            found[name]["import app"].append(imported)
            found[name]["first 4xx"].append(answered)
    print(
        f"\nCold start, CPU ms in fresh processes, {runs} runs each, alternating; "
        f"load average {os.getloadavg()[0]:.1f}:"
    )
    print("| tree | import app | first 4xx |")
    print("|---|---|---|")
    for name, figures in found.items():
        print(f"| {name} | {spread(figures['import app'])} | {spread(figures['first 4xx'])} |")
    lines = [
        f"cold start CPU: import app {median(found['this tree']['import app']):.0f} ms, "
        f"first 4xx {median(found['this tree']['first 4xx']):.0f} ms"
    ]
    if args.baseline:
        ratios = [
            median(found["this tree"][part]) / median(found["baseline"][part])
            for part in ("import app", "first 4xx")
        ]
        lines.append(
            f"cold start vs baseline: import app {ratios[0]:.2f}, first 4xx {ratios[1]:.2f}"
        )
    builds = [("off", ROOT, "false"), ("on", ROOT, "true")]
    if args.baseline:
        builds.append(("baseline", args.baseline.resolve(), "false"))
    clients: dict[str, list[float]] = {name: [] for name, _, _ in builds}
    for _ in range(runs):
        for name, tree, flag in builds:
            clients[name].append(float(fresh(CLIENT, tree, TRACE_AWS_CALLS=flag)))  # type: ignore[arg-type]
    print("\nThe S3 client's first build (boto3 imported), CPU ms, TRACE_AWS_CALLS off / on:")
    print("; ".join(f"{name} {spread(values)}" for name, values in clients.items()))
    lines.append(
        f"X-Ray SDK when tracing is on: +{median(clients['on']) - median(clients['off']):.0f} ms "
        f"CPU on the first AWS call"
    )
    write_summary("cold", lines)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
