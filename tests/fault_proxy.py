"""An HTTP front for s3rver that answers like a misconfigured S3 bucket or CDN would.

s3rver serves every object to anonymous users and ignores bucket policies,
so "private bucket" and "public but not listable" cannot be configured on it.
This proxy produces exactly the answers S3 gives in those cases (403
AccessDenied to anonymous GETs of a private bucket and to anonymous listings;
403 instead of the rule's redirect for a missing key when reads aren't
public) and, as a stand-in for CloudFront, caches with or without
regard to Cache-Control.  Only the doctor's HTTP requests go through it; its
boto3 calls go to s3rver directly.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import requests

ACCESS_DENIED = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b"<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>"
)
# Hop-by-hop or recomputed by the proxy's own server.
DROPPED_HEADERS = {"connection", "keep-alive", "transfer-encoding", "content-length", "date"}


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


Behaviour = Callable[["FaultProxy", str], Answer]


def denied() -> Answer:
    return Answer(403, {"Content-Type": "application/xml"}, ACCESS_DENIED)


def private_bucket(proxy: FaultProxy, path: str) -> Answer:
    """No public policy: S3 refuses every anonymous GET."""
    return denied()


def missing_key_denied(proxy: FaultProxy, path: str) -> Answer:
    """A website that answers a missing key with 403 (no public read), so no rule fires."""
    answer = proxy.forward(path)
    return denied() if 300 <= answer.status < 400 else answer


def s3_privacy(private_bucket_name: str) -> Behaviour:
    """S3's REST answers to anonymous users: no listing, nothing of the private bucket."""

    def behave(proxy: FaultProxy, path: str) -> Answer:
        if "list-type=" in path or path.startswith(f"/{private_bucket_name}/"):
            return denied()
        return proxy.forward(path)

    return behave


def cdn(cache_everything: bool) -> Behaviour:
    """A CDN that caches every answer, or only those whose Cache-Control allows it."""

    def behave(proxy: FaultProxy, path: str) -> Answer:
        if path in proxy.cache:
            cached = proxy.cache[path]
            return Answer(
                cached.status,
                {**cached.headers, "X-Cache": "Hit from cdn", "Age": "1"},
                cached.body,
            )
        answer = proxy.forward(path)
        if cache_everything or "max-age" in answer.headers.get("Cache-Control", ""):
            proxy.cache[path] = answer
        return Answer(answer.status, {**answer.headers, "X-Cache": "Miss from cdn"}, answer.body)

    return behave


class FaultProxy:
    """Serves GETs on a free port, answering with ``behaviour`` over an upstream server."""

    def __init__(self, upstream: str, behaviour: Behaviour) -> None:
        self.upstream = upstream.rstrip("/")
        self.behaviour = behaviour
        self.cache: dict[str, Answer] = {}
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def forward(self, path: str) -> Answer:
        response = requests.get(f"{self.upstream}{path}", allow_redirects=False, timeout=30)
        headers = {k: v for k, v in response.headers.items() if k.lower() not in DROPPED_HEADERS}
        return Answer(response.status_code, headers, response.content)

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def _handler(proxy: FaultProxy) -> Any:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            answer = proxy.behaviour(proxy, self.path)
            self.send_response(answer.status)
            for name, value in answer.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(answer.body)))
            self.end_headers()
            self.wfile.write(answer.body)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep test output clean

    return Handler
