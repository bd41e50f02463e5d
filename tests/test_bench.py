"""The benchmark harness measures what it says: sizes, DCT scale, memory probe, table format.

Small generated JPEGs only (the Debian photo is fetched by `make bench`, never by tests),
and no timing assertions: the machine is shared, only the harness logic is checked here.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import BytesIO
from pathlib import Path

import pytest
import requests
from PIL import Image

from chalicelib import imaging
from chalicelib.imaging import encoders, geometry, pipeline
from scripts.bench import photos, watermarks
from scripts.bench import pipeline as bench
from scripts.local import proxy as latency_proxy
from tests.support import corpus


def size_of(body: bytes) -> tuple[int, int]:
    with Image.open(BytesIO(body)) as image:
        return image.size


@pytest.mark.parametrize(
    ("token", "target", "drafted"),
    [
        # 1600×1200: 1/8 scale is 200×150, 1/4 is 400×300, 1/2 is 800×600.
        ("100x100", (100, 75), (200, 150)),
        ("300x300", (300, 225), (400, 300)),
        ("700x700", (700, 525), (800, 600)),
        ("1000x1000", (1000, 750), (1600, 1200)),
    ],
)
def test_floor_decodes_at_the_dct_scale_render_drafts_to(
    token: str, target: tuple[int, int], drafted: tuple[int, int]
) -> None:
    data = corpus.jpeg((1600, 1200))
    job = bench.plan(data, token)
    assert job.target == target
    assert bench.floor_decode(data, job.target).size == drafted
    with Image.open(BytesIO(data)) as image:
        pipeline.shrink_on_load(image, geometry.plan(image.size, job.spec))
        assert image.size == drafted


def test_target_is_in_stored_orientation_for_sideways_jpegs() -> None:
    data = corpus.jpeg((1600, 1200), orientation=6)
    job = bench.plan(data, "300x300")
    assert job.target == (300, 225)  # as stored; render's output is upright, 225×300
    assert size_of(imaging.render(data, job.spec).body) == (225, 300)
    assert bench.floor_decode(data, job.target).size == (400, 300)


@pytest.mark.parametrize(
    ("data", "token"),
    [
        (corpus.jpeg((1600, 1200)), "300x300"),
        (corpus.png_rgba((640, 480)), "200x200"),
        (corpus.encode(corpus.quadrants((640, 480)).quantize(16), "GIF"), "200x200"),
    ],
)
def test_every_method_makes_the_size_render_makes(data: bytes, token: str) -> None:
    job = bench.plan(data, token)
    calls = bench.calls_for(job, bench.METHODS, bench.load_pyvips())
    assert {"render", "floor", "naive"} <= set(calls)
    outputs = {name: call() for name, call in calls.items()}
    expected = (outputs["render"].width, outputs["render"].height)
    assert size_of(outputs["render"].body) == expected
    for name in ("floor", "naive"):
        assert size_of(outputs[name]) == expected, name
    if "vips" in outputs:  # libvips rounds on its own: within a pixel
        vips_size = size_of(outputs["vips"])
        assert all(abs(a - b) <= 1 for a, b in zip(vips_size, expected, strict=True))


def test_encode_uses_renders_save_options(monkeypatch: pytest.MonkeyPatch) -> None:
    pixels = [corpus.quadrants((320, 240))]
    job = bench.plan(corpus.jpeg((640, 480)), "320x240")
    monkeypatch.setitem(encoders.SAVE_OPTIONS, "JPEG", {"progressive": True})
    with Image.open(BytesIO(bench.encode(pixels, job))) as image:
        assert image.info.get("progressive") == 1
    monkeypatch.setitem(encoders.SAVE_OPTIONS, "JPEG", {})
    with Image.open(BytesIO(bench.encode(pixels, job))) as image:
        assert "progressive" not in image.info


def test_time_job_gives_a_median_per_method() -> None:
    job = bench.plan(corpus.jpeg((800, 600)), "300x300")
    medians, wall_per_cpu = bench.time_job(job, rounds=2, pyvips=None)
    assert set(medians) == {"render", "floor", "naive"}
    assert all(value > 0 for value in medians.values())
    assert wall_per_cpu > 0


def test_memory_probe_sees_a_full_size_decode(tmp_path: Path) -> None:
    # A 2000×1500 RGB decode alone is 8.6 MiB; the naive path also holds the resize buffers.
    path = tmp_path / "photo.jpg"
    path.write_bytes(corpus.jpeg((2000, 1500)))
    job = bench.plan(path.read_bytes(), "300x300")
    assert bench.peak_mib(path, "300x300", job, "naive") > 8


def row(case: str, is_jpeg: bool, render: float, floor: float) -> bench.Row:
    ms = {"render": render, "floor": floor, "naive": 9 * render}
    return bench.Row(case, "src", "300x300 → 300×225", is_jpeg, ms, 1.5, {"render": 2.0})


def test_table_rows_and_summary_line_parse() -> None:
    rows = [row("a", True, 11.0, 10.0), row("b", True, 13.0, 10.0), row("c", False, 50.0, 10.0)]
    lines = bench.table(rows)
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    assert lines[1] == "|" + "---|" * len(header)
    cells = dict(zip(header, (c.strip() for c in lines[3].strip("|").split("|")), strict=True))
    assert cells["render ms"] == "13.0"
    assert cells["render/floor"] == "1.30"
    assert cells["vips ms"] == "–"
    assert cells["peak MiB render / naive / vips"] == "2 / – / –"
    # The PNG row's 5.00 is not a JPEG case: the worst JPEG ratio is row b's.
    assert re.fullmatch(r"worst JPEG ratio to floor: \d+\.\d\d", bench.summary(rows))
    assert bench.summary(rows) == "worst JPEG ratio to floor: 1.30"


def test_photos_without_apt_get_name_the_directory_option(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(photos.shutil, "which", lambda tool: None)
    with pytest.raises(photos.PhotosUnavailable, match="--photos DIR"):
        photos.get_photos(None, tmp_path)


def test_user_photos_are_the_jpegs_in_the_directory(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "b.JPG").write_bytes(corpus.jpeg((64, 48)))
    (tmp_path / "a.jpeg").write_bytes(corpus.jpeg((64, 48)))
    (tmp_path / "notes.txt").write_text("not a photo")
    monkeypatch.setenv("BENCH_PHOTOS", str(tmp_path))
    found = photos.get_photos(photos.photos_dir_from(None))
    assert [p.path.name for p in found] == ["a.jpeg", "b.JPG"]
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(photos.PhotosUnavailable, match=r"no \.jpg"):
        photos.get_photos(empty)
    with pytest.raises(photos.PhotosUnavailable, match="not a directory"):
        photos.get_photos(tmp_path / "a.jpeg")


def call(start: float, end: float) -> latency_proxy.Call:
    return latency_proxy.Call("GET", "/", start, end)


@pytest.mark.parametrize(
    ("calls", "expected"),
    [
        ([], 0),
        ([call(0, 20), call(1, 21), call(2, 22)], 1),  # three together: one round trip
        ([call(0, 20), call(1, 21), call(25, 45), call(60, 80)], 3),
        ([call(0, 20), call(10, 70), call(30, 50)], 2),  # the long one overlaps both
    ],
)
def test_sequential_round_trips(calls: list[latency_proxy.Call], expected: int) -> None:
    assert latency_proxy.sequential_round_trips(calls) == expected


class Echo(BaseHTTPRequestHandler):
    """Answers each request with its method, path and body."""

    protocol_version = "HTTP/1.1"

    def answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = f"{self.command} {self.path} ".encode() + self.rfile.read(length)
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_HEAD = do_PUT = do_DELETE = answer

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def upstream() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


def test_latency_proxy_forwards_every_method_and_records_it(upstream: str) -> None:
    with latency_proxy.Proxy(upstream, latency=0.001) as proxy, requests.Session() as http:
        assert http.put(f"{proxy.url}/b/k", data=b"body").content == b"PUT /b/k body"
        head = http.head(f"{proxy.url}/b/k")
        assert (head.status_code, head.headers["Content-Length"]) == (200, str(len("HEAD /b/k ")))
        assert http.get(f"{proxy.url}/b?list-type=2").content == b"GET /b?list-type=2 "
        assert http.delete(f"{proxy.url}/b/k").content == b"DELETE /b/k "
        calls = proxy.take_calls()
    assert [(c.method, c.path) for c in calls] == [
        ("PUT", "/b/k"),
        ("HEAD", "/b/k"),
        ("GET", "/b?list-type=2"),
        ("DELETE", "/b/k"),
    ]
    assert latency_proxy.sequential_round_trips(calls) == 4  # one after another


def test_the_latency_proxy_answers_after_its_latency_with_the_servers_work_inside_it(
    upstream: str,
) -> None:
    """S3's own work is part of its latency: a server slower than it shows only its own time."""

    def slow(proxy: latency_proxy.Proxy, request: latency_proxy.Request) -> latency_proxy.Answer:
        time.sleep(0.4)
        return proxy.forward(request)

    with requests.Session() as http:
        for behaviour in (latency_proxy.passthrough, slow):
            with latency_proxy.Proxy(upstream, behaviour, latency=0.4) as proxy:
                assert http.get(f"{proxy.url}/b/k").content == b"GET /b/k "
                [call] = proxy.take_calls()
            assert 0.4 <= call.end - call.start < 0.7, behaviour  # not 0.8: one, not both


def test_the_harness_event_reaches_the_resize_route_as_api_gateway_sends_it(
    app_env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    from app import app
    from chalicelib import wiring
    from scripts.bench import miss_harness

    wiring.reset()
    answer = app(miss_harness.api_event("0x0", "bench/photo.jpg"), miss_harness.Context())
    wiring.reset()
    assert answer["statusCode"] == 400
    line = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert (line["name"], line["id"], line["outcome"]) == ("resize", "harness-0x0", "invalid_size")


def test_the_harness_breakdown_leaves_the_untimed_rest() -> None:
    from scripts.bench.miss_harness import breakdown

    ms = {"s3_lookup": 21.0, "render": 30.0, "encode": 5.0, "s3_claim_wait": 1.0, "s3_store": 22.0}
    parts = breakdown({"ms": {**ms, "total": 80.0}, "wall": 81.0, "cpu": 40.0})
    assert parts["rest (the function's own)"] == 6.0
    assert parts["encode (inside render)"] == 5.0
    assert parts["handler minus render"] == 51.0


def test_the_watermark_bench_times_what_it_names() -> None:
    mark = imaging.Watermark(watermarks.sample_mark("a"))
    assert watermarks.sample_mark("a") != watermarks.sample_mark("b")  # a fresh decode each
    assert imaging.check_watermark(mark.image) == watermarks.MARK_SIZE
    ms = watermarks.measure(corpus.jpeg((1600, 1200)), "300x", mark, rounds=1)
    assert set(ms) == {"plain", "marked", "scaling", "compositing"}
    with pytest.raises(ValueError, match="min_size"):
        watermarks.measure(corpus.jpeg((1600, 1200)), "200x", mark, rounds=1)
