"""A loopback OpenID issuer for tests: a discovery document and one RSA key's JWKS, served."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt

from chalicelib.identity import DISCOVERY_PATH


@dataclass
class Issuer:
    """Its URL, what it publishes (tests may change it) and the JWKS fetches seen."""

    url: str = ""
    discovery: dict[str, Any] = field(default_factory=dict)
    jwks: dict[str, Any] = field(default_factory=dict)
    jwks_fetches: list[str] = field(default_factory=list)


@contextmanager
def served_issuer(public_key: Any, kid: str = "k1") -> Iterator[Issuer]:
    """An issuer on 127.0.0.1 publishing ``public_key``, as Cognito's discovery describes one."""
    issuer = Issuer()
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(public_key))
    issuer.jwks = {"keys": [{**jwk, "kid": kid, "use": "sig", "alg": "RS256"}]}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == DISCOVERY_PATH:
                body = issuer.discovery
            elif self.path == "/jwks":
                issuer.jwks_fetches.append(self.path)
                body = issuer.jwks
            else:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(json.dumps(body).encode())

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    issuer.url = f"http://127.0.0.1:{server.server_port}"
    issuer.discovery = {
        "issuer": issuer.url,
        "jwks_uri": issuer.url + "/jwks",
        "authorization_endpoint": issuer.url + "/oauth2/authorize",
        "token_endpoint": issuer.url + "/oauth2/token",
        "response_types_supported": ["code", "token"],
    }
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield issuer
    finally:
        server.shutdown()
        server.server_close()
