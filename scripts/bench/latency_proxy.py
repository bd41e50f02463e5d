"""An HTTP proxy in front of s3rver that delays every request, and records when each ran.

S3 on AWS is a network round trip away; s3rver on loopback is not.  The
app's S3 client pointed here pays ``latency`` seconds before each request
reaches s3rver, so a miss shows how many round trips it makes one after
another (:func:`sequential_round_trips`).  Every method is forwarded with
its headers and body (s3rver checks no signatures); only the app's boto3
calls go through it, the browser's website requests go to s3rver directly.
"""

from __future__ import annotations

import http.client
import socket
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

# Hop-by-hop, or recomputed by this proxy.
DROPPED_HEADERS = frozenset({"connection", "keep-alive", "transfer-encoding", "expect", "host"})


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    start: float  # time.monotonic() when the request arrived
    end: float  # when its answer had been sent


class LatencyProxy:
    """Forwards to ``upstream`` after sleeping ``latency`` seconds; records every call."""

    def __init__(self, upstream: str, latency: float) -> None:
        parts = urlsplit(upstream)
        self.upstream_host = parts.hostname or "127.0.0.1"
        self.upstream_port = parts.port or 80
        self.latency = latency
        self.calls: list[Call] = []
        self._lock = threading.Condition()
        self._in_flight = 0  # requests arrived and not yet recorded
        self._local = threading.local()  # each handler thread's upstream connection
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def arrived(self) -> None:
        with self._lock:
            self._in_flight += 1

    def record(self, call: Call) -> None:
        with self._lock:
            self.calls.append(call)
            self._in_flight -= 1
            self._lock.notify_all()

    def take_calls(self, timeout: float = 10.0) -> list[Call]:
        """The calls recorded since the last take, oldest first, once none is in flight.

        A call is recorded just after its answer was sent, so the client may
        have its answer a moment before the record exists: wait for it.
        """
        with self._lock:
            self._lock.wait_for(lambda: self._in_flight == 0, timeout)
            calls, self.calls = self.calls, []
        return sorted(calls, key=lambda call: call.start)

    def forward(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Any:
        """Send the request upstream on this thread's kept-alive connection, so the proxy
        adds its delay and little else; once more on a new one if the server had closed it."""
        try:
            return _send(self._connection(), method, path, headers, body)
        except (http.client.HTTPException, ConnectionError):
            self._connection().close()
            self._local.connection = None
            return _send(self._connection(), method, path, headers, body)

    def _connection(self) -> http.client.HTTPConnection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = http.client.HTTPConnection(
                self.upstream_host, self.upstream_port, timeout=60
            )
            self._local.connection = connection
        return connection

    def __enter__(self) -> LatencyProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def _send(
    connection: http.client.HTTPConnection,
    method: str,
    path: str,
    headers: dict[str, str],
    body: bytes,
) -> tuple[int, list[tuple[str, str]], bytes]:
    connection.request(method, path, body=body or None, headers=headers)
    response = connection.getresponse()
    return response.status, response.getheaders(), response.read()


def sequential_round_trips(calls: Iterable[Call]) -> int:
    """The most calls that ran strictly one after another (each began after the last ended).

    Concurrent calls count once: three look-ups made together are one
    round trip of waiting, a PUT after them a second.  Greedy by end time
    finds the longest such chain.
    """
    count, free_at = 0, float("-inf")
    for call in sorted(calls, key=lambda call: call.end):
        if call.start >= free_at:
            count, free_at = count + 1, call.end
    return count


def _handler(proxy: LatencyProxy) -> Any:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as with S3: connections are reused

        def setup(self) -> None:
            super().setup()
            # Without it, an empty PUT's answer waits ~40 ms behind its "100 Continue"
            # for the client's delayed ACK (Nagle): an artefact of this proxy, not of S3.
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def relay(self) -> None:
            start = time.monotonic()
            proxy.arrived()
            try:
                self.answer()
            finally:
                proxy.record(Call(self.command, self.path, start, time.monotonic()))

        def answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = {k: v for k, v in self.headers.items() if k.lower() not in DROPPED_HEADERS}
            time.sleep(proxy.latency)
            status, answer_headers, data = proxy.forward(self.command, self.path, headers, body)
            self.send_response(status)
            for name, value in answer_headers:
                if name.lower() not in DROPPED_HEADERS and name.lower() != "content-length":
                    self.send_header(name, value)
            if self.command == "HEAD":
                declared = dict((k.lower(), v) for k, v in answer_headers).get("content-length")
                self.send_header("Content-Length", declared or "0")
                self.end_headers()
            else:
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            self.wfile.flush()

        do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = relay

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler
