"""Sign-in tokens the app verifies: signature (JWKS found by discovery), issuer, client, expiry."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from chalicelib import identity
from chalicelib.config import ConfigError, Settings
from chalicelib.errors import Unauthorized
from chalicelib.uploads import uploader_id

CLIENT = "page-client"
BASE = {"IMAGE_BUCKET": "b", "PUBLIC_URL": "https://pics.example.com"}
SUBJECT = "5f0c2d4e-0000-4000-8000-000000000001"
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
JWKS_FETCHES: list[str] = []


@pytest.fixture(scope="module")
def issuer() -> Iterator[str]:
    """A loopback issuer publishing a discovery document and its JWKS; counts JWKS fetches."""
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(KEY.public_key()))
    jwks = json.dumps({"keys": [{**jwk, "kid": "k1", "use": "sig", "alg": "RS256"}]}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == identity.DISCOVERY_PATH:
                body = json.dumps({"issuer": url, "jwks_uri": url + "/jwks"}).encode()
            elif self.path == "/jwks":
                JWKS_FETCHES.append(self.path)
                body = jwks
            else:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    url = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield url
    server.shutdown()


def token(issuer: str, key: Any = KEY, headers: dict[str, Any] | None = None, **claims: Any) -> str:
    now = int(time.time())
    body = {"iss": issuer, "sub": SUBJECT, "aud": CLIENT, "iat": now, "exp": now + 600, **claims}
    body = {name: value for name, value in body.items() if value is not None}
    return jwt.encode(body, key, algorithm="RS256", headers={"kid": "k1", **(headers or {})})


def settings(issuer: str) -> Settings:
    return Settings.from_env({**BASE, "OIDC_ISSUER": issuer, "OIDC_CLIENT_ID": CLIENT})


def test_an_id_token_from_the_issuer_names_its_user(issuer: str) -> None:
    assert uploader_id(settings(issuer), None, f"Bearer {token(issuer)}") == SUBJECT


def test_a_cognito_access_token_names_its_client_instead_of_an_audience(issuer: str) -> None:
    access = token(issuer, aud=None, client_id=CLIENT, token_use="access")
    assert uploader_id(settings(issuer), None, f"Bearer {access}") == SUBJECT


def test_keys_are_fetched_once_for_many_tokens(issuer: str) -> None:
    verifier, before = identity.TokenVerifier(issuer, CLIENT), len(JWKS_FETCHES)
    for _ in range(5):
        assert verifier.subject(token(issuer)) == SUBJECT
    assert len(JWKS_FETCHES) == before + 1


def _tampered(issuer: str) -> str:
    header, payload, signature = token(issuer).split(".")
    claims = json.loads(jwt.utils.base64url_decode(payload))
    claims["sub"] = "someone-else"
    forged = jwt.utils.base64url_encode(json.dumps(claims).encode()).decode()
    return f"{header}.{forged}.{signature}"


REFUSED = {
    "tampered": _tampered,
    "expired": lambda issuer: token(issuer, exp=int(time.time()) - 120),
    "other audience": lambda issuer: token(issuer, aud="another-client"),
    "other issuer": lambda issuer: token(issuer + "/other"),
    "other key": lambda issuer: token(issuer, key=OTHER_KEY),
    "refresh token_use": lambda issuer: token(issuer, token_use="refresh"),
    "no expiry": lambda issuer: token(issuer, exp=None),
    "unsigned": lambda issuer: jwt.encode(
        {"iss": issuer, "sub": SUBJECT, "aud": CLIENT, "exp": int(time.time()) + 600},
        None,
        algorithm="none",
    ),
}


@pytest.mark.parametrize("name", list(REFUSED))
def test_a_bad_token_is_401(issuer: str, name: str) -> None:
    with pytest.raises(Unauthorized) as info:
        uploader_id(settings(issuer), None, f"Bearer {REFUSED[name](issuer)}")
    assert info.value.status == 401


def test_a_token_just_expired_is_within_the_leeway(issuer: str) -> None:
    recent = token(issuer, exp=int(time.time()) - 10)  # clocks a few seconds apart
    assert uploader_id(settings(issuer), None, f"Bearer {recent}") == SUBJECT


def test_the_dev_token_still_works_beside_an_issuer(issuer: str) -> None:
    env = {**BASE, "OIDC_ISSUER": issuer, "OIDC_CLIENT_ID": CLIENT}
    local = Settings.from_env({**env, "UPLOAD_TOKEN": "local-dev-token"})
    assert uploader_id(local, None, "Bearer local-dev-token") == "local"
    assert uploader_id(local, None, f"Bearer {token(issuer)}") == SUBJECT
    with pytest.raises(Unauthorized):
        uploader_id(local, None, "Bearer not-the-token")


@pytest.mark.parametrize("issuer_url", ["http://example.com", "ftp://127.0.0.1", "example.com"])
def test_an_issuer_must_be_https_or_loopback(issuer_url: str) -> None:
    with pytest.raises(ConfigError):
        Settings.from_env({**BASE, "OIDC_ISSUER": issuer_url})
