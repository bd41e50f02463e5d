"""An HTTP proxy in front of s3rver: adds a network's latency, or answers as S3 or a CDN would.

S3 on AWS is a network round trip away; s3rver on loopback is not.  With a
``latency``, every call is answered that long after it arrived, s3rver's own
work included (S3's own work is part of its latency on AWS too): only what
s3rver takes beyond it shows.  Every call is recorded, so a miss shows how
many round trips it makes one after another (:func:`sequential_round_trips`;
``make bench``).

s3rver serves every object to anonymous users and ignores bucket policies,
so "private bucket" and "public but not listable" can't be configured on it.
A ``behaviour`` gives exactly the answers S3 gives in those cases (403
AccessDenied to anonymous GETs of a private bucket and to anonymous listings;
403 instead of the rule's redirect for a missing key when reads aren't
public) and, standing in for CloudFront, caches with or without regard to
Cache-Control (the doctor's tests).

Every method is forwarded with its headers and body (s3rver checks no
signatures) on a kept-alive connection per thread.
"""

from __future__ import annotations

import http.client
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

ACCESS_DENIED = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b"<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>"
)
# Hop-by-hop, or recomputed by this proxy.
DROPPED_HEADERS = frozenset(
    {"connection", "keep-alive", "transfer-encoding", "expect", "host", "content-length", "date"}
)


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes = b""


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    start: float  # time.monotonic() when the request arrived
    end: float  # when its answer had been sent


Behaviour = Callable[["Proxy", Request], Answer]


def passthrough(proxy: Proxy, request: Request) -> Answer:
    """Forward as it is."""
    return proxy.forward(request)


def denied() -> Answer:
    return Answer(403, {"Content-Type": "application/xml"}, ACCESS_DENIED)


def private_bucket(proxy: Proxy, request: Request) -> Answer:
    """No public policy: S3 refuses every anonymous GET."""
    return denied()


def missing_key_denied(proxy: Proxy, request: Request) -> Answer:
    """A website that answers a missing key with 403 (no public read), so no rule fires."""
    answer = proxy.forward(request)
    return denied() if 300 <= answer.status < 400 else answer


def s3_privacy(private_bucket_name: str) -> Behaviour:
    """S3's REST answers to anonymous users: no listing, nothing of the private bucket."""

    def behave(proxy: Proxy, request: Request) -> Answer:
        if "list-type=" in request.path or request.path.startswith(f"/{private_bucket_name}/"):
            return denied()
        return proxy.forward(request)

    return behave


def cdn(cache_everything: bool) -> Behaviour:
    """A CDN that caches every answer, or only those whose Cache-Control allows it."""

    def behave(proxy: Proxy, request: Request) -> Answer:
        if request.path in proxy.cache:
            cached = proxy.cache[request.path]
            return Answer(
                cached.status,
                {**cached.headers, "X-Cache": "Hit from cdn", "Age": "1"},
                cached.body,
            )
        answer = proxy.forward(request)
        if cache_everything or "max-age" in answer.headers.get("Cache-Control", ""):
            proxy.cache[request.path] = answer
        return Answer(answer.status, {**answer.headers, "X-Cache": "Miss from cdn"}, answer.body)

    return behave


class Proxy:
    """Serves on a free port: answers with ``behaviour``, no sooner than ``latency`` seconds."""

    def __init__(
        self, upstream: str, behaviour: Behaviour = passthrough, latency: float = 0.0
    ) -> None:
        parts = urlsplit(upstream)
        self.upstream_host = parts.hostname or "127.0.0.1"
        self.upstream_port = parts.port or 80
        self.behaviour = behaviour
        self.latency = latency
        self.cache: dict[str, Answer] = {}
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

    def forward(self, request: Request) -> Answer:
        """Send the request upstream on this thread's kept-alive connection, so the proxy
        adds its delay and little else; once more on a new one if the server had closed it."""
        try:
            return _send(self._connection(), request)
        except (http.client.HTTPException, ConnectionError):
            self._connection().close()
            self._local.connection = None
            return _send(self._connection(), request)

    def _connection(self) -> http.client.HTTPConnection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = http.client.HTTPConnection(
                self.upstream_host, self.upstream_port, timeout=60
            )
            self._local.connection = connection
        return connection

    def __enter__(self) -> Proxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def _send(connection: http.client.HTTPConnection, request: Request) -> Answer:
    connection.request(
        request.method, request.path, body=request.body or None, headers=request.headers
    )
    response = connection.getresponse()
    body = response.read()
    headers: dict[str, str] = {}
    for name, value in response.getheaders():
        if name.lower() not in DROPPED_HEADERS or (
            name.lower() == "content-length" and request.method == "HEAD"
        ):
            headers[name] = value
    return Answer(response.status, headers, body)


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


def _handler(proxy: Proxy) -> Any:
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
            if body:
                headers["Content-Length"] = str(len(body))
            due = time.monotonic() + proxy.latency
            answer = proxy.behaviour(proxy, Request(self.command, self.path, headers, body))
            time.sleep(max(0.0, due - time.monotonic()))
            self.send_response(answer.status)
            for name, value in answer.headers.items():
                if name.lower() != "content-length":
                    self.send_header(name, value)
            declared = answer.headers.get("Content-Length", answer.headers.get("content-length"))
            if self.command == "HEAD":
                self.send_header("Content-Length", declared or "0")
                self.end_headers()
            else:
                self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                self.wfile.write(answer.body)
            self.wfile.flush()

        do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = relay

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep test and bench output clean

    return Handler
