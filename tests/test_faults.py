"""Storage faults: S3 failing mid-request, hanging, throttling, or stopped altogether."""

from __future__ import annotations

import io
import json
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import pytest
import requests
from botocore.response import StreamingBody
from botocore.stub import ANY, Stubber

from chalicelib import runtime
from tests import corpus
from tests.conftest import BUCKET


@pytest.fixture
def fault_client(app_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The app over the test client; each test points S3_ENDPOINT_URL at its own fault."""
    from chalice.test import Client

    from app import app

    monkeypatch.setenv("S3_READ_TIMEOUT", "1")
    monkeypatch.setenv("S3_CONNECT_TIMEOUT", "1")
    monkeypatch.setenv("S3_MAX_ATTEMPTS", "2")
    runtime.reset()
    with Client(app, stage_name="local") as client:
        yield client
    runtime.reset()


def assert_unavailable(response: Any) -> None:
    assert response.status_code == 503
    assert json.loads(response.body)["code"] == "storage_unavailable"
    assert int(response.headers["Retry-After"]) > 0
    assert "Location" not in response.headers


def test_put_failing_after_a_good_read_stores_nothing_and_answers_503(
    fault_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = boto3.client("s3", region_name="us-east-1")
    original = corpus.jpeg((400, 300))
    modified = datetime.now(UTC)
    with Stubber(client) as stubber, monkeypatch.context() as patch:
        stubber.add_client_error("head_object", "404", http_status_code=404)  # no variant yet
        stubber.add_response(
            "head_object", {"ContentLength": len(original), "ETag": '"e"', "LastModified": modified}
        )
        stubber.add_response(
            "get_object",
            {"Body": StreamingBody(io.BytesIO(original), len(original))},
            {"Bucket": BUCKET, "Key": "a.jpg", "IfMatch": '"e"'},
        )
        stubber.add_response(
            "list_objects_v2",
            {"KeyCount": 0},
            {"Bucket": BUCKET, "Prefix": "_variants/a.jpg/", "MaxKeys": ANY},
        )
        stubber.add_client_error("put_object", "SlowDown", http_status_code=503)
        patch.setattr(runtime, "get_s3_client", lambda: client)
        runtime.get_service.cache_clear()
        assert_unavailable(fault_client.http.get("/resize/100x/a.jpg"))
        stubber.assert_no_pending_responses()  # no marker written after the failed put
        runtime.get_service.cache_clear()


class _Hanging:
    """Accepts connections and never answers: a storage endpoint that hangs."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.accepted = 0
        self._held: list[socket.socket] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            self._held.append(connection)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def close(self) -> None:
        self.sock.close()
        for connection in self._held:
            connection.close()


def test_hanging_storage_times_out_with_bounded_retries(
    fault_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    hanging = _Hanging()
    try:
        monkeypatch.setenv("S3_ENDPOINT_URL", hanging.url)
        runtime.reset()
        assert_unavailable(fault_client.http.get("/resize/100x/a.jpg"))
        assert hanging.accepted == 2  # S3_MAX_ATTEMPTS, then give up
    finally:
        hanging.close()


def test_throttling_storage_is_retried_then_503(
    fault_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[str] = []

    class SlowDown(BaseHTTPRequestHandler):
        def do_HEAD(self) -> None:
            seen.append(self.path)
            self.send_response(503)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), SlowDown)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("S3_ENDPOINT_URL", f"http://127.0.0.1:{server.server_port}")
        runtime.reset()
        assert_unavailable(fault_client.http.get("/resize/100x/a.jpg"))
        assert seen == ["/images/100x/a.jpg"] * 2
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.e2e
def test_stopped_s3rver_gives_503_then_recovers(tmp_path: Any) -> None:
    """A real outage: s3rver stopped under a running `chalice local`, then started again."""
    from scripts.local_stack import LocalStack, free_port

    stack = LocalStack(
        tmp_path,
        s3_port=free_port(),
        api_port=free_port(),
        app_env={"S3_MAX_ATTEMPTS": "2", "S3_CONNECT_TIMEOUT": "1"},
    )
    with stack:
        stack.s3_client().put_object(Bucket=stack.bucket, Key="a.jpg", Body=corpus.jpeg())
        stack.stop_process("s3rver")
        down = requests.get(f"{stack.api_url}/resize/100x/a.jpg", timeout=30)
        assert down.status_code == 503
        assert down.json()["code"] == "storage_unavailable"
        assert down.headers["Retry-After"]
        stack.start_s3()
        up = requests.get(f"{stack.public_url}/100x/a.jpg", timeout=30)
        assert up.status_code == 200
        assert corpus.opened(up.content).size == (100, 75)
