"""Storage faults: S3 failing mid-request, hanging, throttling, or stopped altogether.

botocore's Stubber covers the storage layer's error mapping (test_storage.py);
here the whole app meets the faults, through the miss path's LeanS3Client.
"""

from __future__ import annotations

import json
import socket
import threading
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests
from botocore.exceptions import ClientError

from chalicelib import wiring
from chalicelib.lean_s3 import LeanS3Client
from chalicelib.policies.document import ACTIVE_KEY, EMPTY
from chalicelib.policies.store import PolicyStore
from tests.support import BUCKET, corpus


@pytest.fixture
def fault_client(app_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The app over the test client; each test points S3_ENDPOINT_URL at its own fault."""
    from chalice.test import Client

    from app import app

    monkeypatch.setenv("S3_READ_TIMEOUT", "1")
    monkeypatch.setenv("S3_CONNECT_TIMEOUT", "1")
    monkeypatch.setenv("S3_MAX_ATTEMPTS", "2")
    wiring.reset()
    with Client(app, stage_name="local") as client:
        yield client
    wiring.reset()


@pytest.fixture
def policies_known(monkeypatch: pytest.MonkeyPatch) -> None:
    """The policy document already cached (no rules): a miss's first round is its look-ups."""
    monkeypatch.setattr(PolicyStore, "active", lambda _self: EMPTY)


def assert_unavailable(response: Any) -> None:
    assert response.status_code == 503
    assert json.loads(response.body)["code"] == "storage_unavailable"
    assert int(response.headers["Retry-After"]) > 0
    assert "Location" not in response.headers


def test_put_failing_after_a_good_read_stores_nothing_and_answers_503(
    s3: Any, client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """S3 answers 503 mid-request: the original was read, the variant's PUT fails."""
    s3.put_object(Bucket=BUCKET, Key="a.jpg", Body=corpus.jpeg((400, 300)))
    failed_puts: list[str] = []
    put = LeanS3Client.put_object  # the miss path's client (chalicelib/lean_s3.py)

    def slow_down(self: LeanS3Client, **params: Any) -> dict[str, Any]:
        if params["Key"].startswith("_variants/"):
            return put(self, **params)  # the ledger entry is written; only the variant's PUT fails
        failed_puts.append(params["Key"])
        error = {
            "Error": {"Code": "SlowDown", "Message": "Reduce your request rate."},
            "ResponseMetadata": {"HTTPStatusCode": 503},
        }
        raise ClientError(error, "PutObject")  # type: ignore[arg-type]

    monkeypatch.setattr(LeanS3Client, "put_object", slow_down)
    assert_unavailable(client.http.get("/resize/100x/a.jpg"))
    assert failed_puts == ["100x/a.jpg"]
    # The ledger entry claimed before rendering is given back: no slot for nothing.
    keys = {item["Key"] for item in s3.list_objects_v2(Bucket=BUCKET)["Contents"]}
    assert keys == {"a.jpg"}


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
    fault_client: Any, monkeypatch: pytest.MonkeyPatch, policies_known: None
) -> None:
    hanging = _Hanging()
    try:
        monkeypatch.setenv("S3_ENDPOINT_URL", hanging.url)
        wiring.reset()
        assert_unavailable(fault_client.http.get("/resize/100x/a.jpg"))
        # Two concurrent look-ups (the original, the ledger's LIST), each tried
        # S3_MAX_ATTEMPTS times, then given up; no LIST, no variant's HEAD.
        assert hanging.accepted == 2 * 2
    finally:
        hanging.close()


def test_throttling_storage_is_retried_then_503(
    fault_client: Any, monkeypatch: pytest.MonkeyPatch, policies_known: None
) -> None:
    seen = _throttled(fault_client, monkeypatch)
    requests_seen = Counter(seen)
    assert requests_seen["GET /images/a.jpg"] == 2  # S3_MAX_ATTEMPTS each; one GET, no HEAD
    listing = [r for r in requests_seen if r.startswith("GET /images?list-type=2")]
    assert len(listing) == 1
    assert requests_seen[listing[0]] == 2
    assert sum(requests_seen.values()) == 4  # no ledger, no variant's HEAD


def test_an_unreadable_policy_document_is_a_503_before_anything_else(
    fault_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fail closed: with the prefix rules unknown, nothing is made (it might need a mark)."""
    seen = _throttled(fault_client, monkeypatch)
    assert Counter(seen) == {f"GET /images/{ACTIVE_KEY}": 2}


def _throttled(fault_client: Any, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every S3 request answered 503; the requests one miss made."""
    seen: list[str] = []

    class SlowDown(BaseHTTPRequestHandler):
        def answer(self) -> None:
            seen.append(f"{self.command} {self.path}")
            self.send_response(503)
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_HEAD = do_GET = answer

        def log_message(self, *_: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), SlowDown)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("S3_ENDPOINT_URL", f"http://127.0.0.1:{server.server_port}")
        wiring.reset()
        assert_unavailable(fault_client.http.get("/resize/100x/a.jpg"))
        return seen
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.e2e
def test_stopped_s3rver_gives_503_then_recovers(tmp_path: Any) -> None:
    """A real outage: s3rver stopped under a running `chalice local`, then started again."""
    from scripts.local.stack import LocalStack, free_port

    stack = LocalStack(
        tmp_path,
        s3_port=free_port(),
        api_port=free_port(),
        app_env={"S3_MAX_ATTEMPTS": "2", "S3_CONNECT_TIMEOUT": "1"},
    )
    with stack:
        stack.put_original("a.jpg", corpus.jpeg())
        stack.stop_process("s3rver")
        down = requests.get(f"{stack.api_url}/resize/100x/a.jpg", timeout=30)
        assert down.status_code == 503
        assert down.json()["code"] == "storage_unavailable"
        assert down.headers["Retry-After"]
        stack.start_s3()
        up = requests.get(f"{stack.public_url}/100x/a.jpg", timeout=30)
        assert up.status_code == 200
        assert corpus.opened(up.content).size == (100, 75)
