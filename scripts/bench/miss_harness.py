#!/usr/bin/env python3
"""Where a miss's time goes, with the handler invoked in-process as Lambda invokes it.

Lambda calls ``app(event, context)`` with API Gateway's event; so does this
harness, in its own process, with no `chalice local` and no HTTP server in
front.  S3 is s3rver in another process, behind scripts/local/proxy.py (in a
third process) answering every call 20 ms after it arrived, as S3 on AWS
would: s3rver's own work counts within those 20 ms, and only what it takes
beyond them shows (the plain GET and HEAD rows: no botocore, just s3rver and
the proxy).  Each miss's line (chalicelib/observe.py) gives its parts: the
look-ups' round trip, the render (its encode inside), what is left after the
render of the claim's PUT and the original's HEAD, the variant's PUT, and the
rest (what the function adds: routing, parsing, policy, building the
response and the line).  The process's CPU per miss is measured too, against
the same render called directly here.

    python -m scripts.bench.miss_harness [--quick] [--photos DIR]

Its last line, ``miss at 20 ms S3 latency minus render (in-process handler)``,
is written to .local/bench/ for `make bench`'s summary; scripts/bench/stack.py
measures the same through `chalice local`.
"""

from __future__ import annotations

import argparse
import http.client
import multiprocessing
import os
import sys
import tempfile
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from scripts.bench import photos as photo_source
from scripts.bench.stack import KEY, S3_LATENCY_MS, Samples, row, stack_photo
from scripts.bench.timing import median, write_summary
from scripts.local.stack import LocalStack, free_port

MISSES, QUICK_MISSES = 15, 5
SIDE = 300  # sizes step down from it, as scripts/bench/stack.py's do
# The parts of one miss, from its line's ``ms``; "the rest" is the total minus these.
PARTS = ("s3_lookup", "render", "s3_claim_wait", "s3_store")


def serve_proxy(upstream: str, latency: float, pipe: Connection) -> None:
    """The latency proxy in a process of its own: its CPU is not the function's."""
    from scripts.local.proxy import Proxy

    with Proxy(upstream, latency=latency) as proxy:
        pipe.send(proxy.url)
        pipe.recv()  # until told to stop


class Context:
    """What Lambda passes as ``context`` (the parts chalice reads)."""

    aws_request_id = "harness"
    function_name = "image-resizer-resize"
    memory_limit_in_mb = 1769
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:harness"

    def get_remaining_time_in_millis(self) -> int:
        return 25_000


def api_event(size: str, key: str) -> dict[str, Any]:
    """API Gateway's proxy event for ``GET /resize/<size>/<key>`` (REST API, as deployed)."""
    segments = key.split("/")
    resource = "/resize/{size}/" + "/".join(f"{{k{i}}}" for i in range(len(segments)))
    parameters = {"size": size, **{f"k{i}": s for i, s in enumerate(segments)}}
    return {
        "resource": resource,
        "path": f"/resize/{size}/{key}",
        "httpMethod": "GET",
        "headers": {"Host": "abc123.execute-api.us-east-1.amazonaws.com"},
        "multiValueHeaders": {"Host": ["abc123.execute-api.us-east-1.amazonaws.com"]},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": parameters,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": resource,
            "httpMethod": "GET",
            "path": f"/api/resize/{size}/{key}",
            "stage": "api",
            "requestId": f"harness-{size}",
            "identity": {"sourceIp": "127.0.0.1"},
        },
        "body": None,
        "isBase64Encoded": False,
    }


def invoke(handler: Callable[..., Any], size: str, lines: list[dict[str, Any]]) -> dict[str, Any]:
    """One miss through the handler: its line, plus its wall and process CPU ms."""
    wall, cpu = time.perf_counter(), time.process_time()
    answer = handler(api_event(size, KEY), Context())
    wall, cpu = (time.perf_counter() - wall) * 1000, (time.process_time() - cpu) * 1000
    if answer["statusCode"] != 307:
        raise RuntimeError(f"{size}: expected a miss's 307, got {answer}")
    line = lines.pop()
    if line.get("outcome") != "miss":
        raise RuntimeError(f"{size}: expected a miss, the line says {line}")
    return {**line, "wall": wall, "cpu": cpu}


def raw_call_ms(proxy_url: str, method: str, path: str) -> float:
    """A plain call through the proxy, no botocore: what s3rver, the proxy and its delay take."""
    parts = urlsplit(proxy_url)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=60)
    try:
        start = time.perf_counter()
        connection.request(method, path)
        connection.getresponse().read()
        return (time.perf_counter() - start) * 1000
    finally:
        connection.close()


def breakdown(line: dict[str, Any]) -> dict[str, float]:
    """One miss's parts in ms; ``rest`` is what none of the timed parts covers."""
    ms = line["ms"]
    parts = {name: ms.get(name, 0.0) for name in PARTS}
    parts["encode (inside render)"] = ms.get("encode", 0.0)
    parts["rest (the function's own)"] = ms["total"] - sum(parts[name] for name in PARTS)
    parts["handler, wall"] = line["wall"]
    parts["handler minus render"] = line["wall"] - ms["render"]
    return parts


def measure(data: bytes, n: int) -> Samples:
    """n misses through the handler in this process; S3 in others, 20 ms away."""
    from chalicelib import observe
    from chalicelib.imaging import render
    from scripts.bench.pipeline import spec_for

    samples = Samples()
    s3_port = free_port()
    context = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory() as tmp:
        stack = LocalStack(Path(tmp), s3_port=s3_port, api_port=free_port())
        with stack:
            stack.put_original(KEY, data)
            ours, theirs = context.Pipe()
            proxy = context.Process(
                target=serve_proxy,
                args=(f"http://127.0.0.1:{s3_port}", S3_LATENCY_MS / 1000, theirs),
            )
            proxy.start()
            try:
                proxy_url = ours.recv()
                env = {**stack.app_process_env(), "S3_ENDPOINT_URL": proxy_url}
                os.environ.update(env)
                lines: list[dict[str, Any]] = []
                observe.write = lines.append  # type: ignore[assignment]
                from app import app as handler

                invoke(handler, f"{SIDE}x{SIDE}", lines)  # cold: the client, its connections
                for step in range(1, n + 1):
                    token = f"{SIDE - step}x{SIDE - step}"
                    line = invoke(handler, token, lines)
                    start = time.process_time()
                    render(data, spec_for(token))
                    render_cpu = (time.process_time() - start) * 1000
                    for name, value in breakdown(line).items():
                        samples.add(name, value)
                    original = f"/{stack.originals_bucket}/{KEY}"
                    for method in ("GET", "HEAD"):
                        samples.add(
                            f"plain {method} of the original, no botocore",
                            raw_call_ms(proxy_url, method, original),
                        )
                    samples.add("CPU: handler", line["cpu"])
                    samples.add("CPU: render (direct)", render_cpu)
                    samples.add("CPU: handler minus render", line["cpu"] - render_cpu)
            finally:
                ours.send("stop")
                proxy.join(timeout=10)
    return samples


def summary(samples: Samples) -> list[str]:
    value = median(samples.by_name["handler minus render"])
    cpu = median(samples.by_name["CPU: handler minus render"])
    return [
        f"miss at {S3_LATENCY_MS} ms S3 latency minus render (in-process handler): {value:.0f} ms",
        f"CPU a miss adds to its render (in-process handler): {cpu:.0f} ms",
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer misses")
    photo_source.add_photos_argument(parser)
    args = parser.parse_args()
    try:
        found = photo_source.get_photos(photo_source.photos_dir_from(args.photos))
    except photo_source.PhotosUnavailable as err:
        print(f"miss_harness: {err}", file=sys.stderr)
        return 1
    photo = stack_photo(found)
    data = photo.path.read_bytes()
    samples = measure(data, QUICK_MISSES if args.quick else MISSES)
    print(
        f"\nOne miss ~{SIDE} px of {photo.name} through the handler in-process (Lambda-like), "
        f"every S3 call answered {S3_LATENCY_MS} ms after it was sent; "
        f"load average {os.getloadavg()[0]:.1f}:"
    )
    print("| what (ms) | n | median | p90 |")
    print("|---|---|---|---|")
    for name, values in samples.by_name.items():
        print(row(name, values))
    lines = summary(samples)
    write_summary("harness", lines)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
