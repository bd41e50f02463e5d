"""Sign-in tokens the app verifies: signature (JWKS found by discovery), issuer, client, expiry."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from chalicelib import identity
from chalicelib.config import ConfigError, Settings
from chalicelib.errors import Unauthorized
from chalicelib.uploads import uploader_id
from scripts.ops import doctor
from tests.support.oidc import Issuer, served_issuer

CLIENT = "page-client"
BASE = {"IMAGE_BUCKET": "b", "PUBLIC_URL": "https://pics.example.com"}
SUBJECT = "5f0c2d4e-0000-4000-8000-000000000001"
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def served() -> Iterator[Issuer]:
    with served_issuer(KEY.public_key()) as issuer:
        yield issuer


@pytest.fixture
def issuer(served: Issuer) -> str:
    return served.url


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


def test_keys_are_fetched_once_for_many_tokens(served: Issuer) -> None:
    verifier, before = identity.TokenVerifier(served.url, CLIENT), len(served.jwks_fetches)
    for _ in range(5):
        assert verifier.subject(token(served.url)) == SUBJECT
    assert len(served.jwks_fetches) == before + 1


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


# --- doctor: the deployed issuer's discovery document ------------------------------------


def _doctor_target(issuer: str) -> doctor.Target:
    return doctor.Target("b", "o", "", "", "", s3=None, sign_in_issuer=issuer)


def test_doctor_passes_an_issuer_that_publishes_its_keys_and_the_code_flow(served: Issuer) -> None:
    result = doctor.sign_in_discovery(_doctor_target(served.url))
    assert (result.mark, result.detail) == (doctor.PASS, "1 signing key(s)")


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"issuer": "https://elsewhere.example"}, "names the issuer"),
        ({"response_types_supported": ["token"]}, "no authorization-code flow"),
        ({"jwks_uri": None}, "publishes no keys"),
    ],
    ids=["other issuer", "no code flow", "no keys"],
)
def test_doctor_names_what_is_wrong_with_the_discovery_document(
    served: Issuer, change: dict[str, Any], expected: str
) -> None:
    saved = dict(served.discovery)
    served.discovery.update(change)
    try:
        result = doctor.sign_in_discovery(_doctor_target(served.url))
    finally:
        served.discovery.clear()
        served.discovery.update(saved)
    assert result.mark == doctor.FAIL
    assert expected in result.detail


def test_doctor_skips_the_sign_in_without_an_issuer() -> None:
    assert doctor.sign_in_discovery(_doctor_target("")).mark == doctor.SKIP
