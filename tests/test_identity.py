"""Sign-in tokens the app verifies: signature (JWKS found by discovery), issuer, client, expiry."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import boto3
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from moto import mock_aws

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


def test_a_cognito_id_token_names_its_client_as_audience(issuer: str) -> None:
    id_token = token(issuer, token_use="id", email="ana@example.com")
    assert uploader_id(settings(issuer), None, f"Bearer {id_token}") == SUBJECT


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
    # Cognito's ID token names the client in aud, its access token in client_id: not crossed.
    "id token naming the client only in client_id": lambda issuer: token(
        issuer, aud="another-client", client_id=CLIENT, token_use="id"
    ),
    "access token for another client_id": lambda issuer: token(
        issuer, aud=CLIENT, client_id="another-client", token_use="access"
    ),
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


# --- doctor: the deployed hosted UI, the page's app client, the API's authorizer ----------

PAGE = "https://d111.cloudfront.net"


def test_doctor_passes_a_hosted_ui_that_the_issuer_sends_people_to(served: Issuer) -> None:
    target = replace(_doctor_target(served.url), hosted_ui_url=served.url)
    assert doctor.hosted_ui(target).mark == doctor.PASS
    elsewhere = replace(target, hosted_ui_url="https://images-1.auth.eu-west-1.amazoncognito.com")
    result = doctor.hosted_ui(elsewhere)
    assert result.mark == doctor.FAIL
    assert "authorization_endpoint" in result.detail


@pytest.fixture
def pool(app_env: dict[str, str]) -> Iterator[dict[str, Any]]:
    """A moto user pool, its page client as the stack makes it, and a REST API."""
    with mock_aws():
        cognito = boto3.client("cognito-idp", region_name="us-east-1")
        apigateway = boto3.client("apigateway", region_name="us-east-1")
        pool = cognito.create_user_pool(PoolName="resizer-uploaders")["UserPool"]
        yield {"cognito": cognito, "apigateway": apigateway, "pool": pool}


def _client_target(pool: dict[str, Any], **client: Any) -> doctor.Target:
    made = pool["cognito"].create_user_pool_client(
        UserPoolId=pool["pool"]["Id"],
        ClientName="resizer-page",
        AllowedOAuthFlowsUserPoolClient=True,
        AllowedOAuthScopes=["openid"],
        SupportedIdentityProviders=["COGNITO"],
        **{
            "AllowedOAuthFlows": ["code"],
            "CallbackURLs": [f"{PAGE}/", f"{PAGE}/index.html"],
            "LogoutURLs": [f"{PAGE}/", f"{PAGE}/index.html"],
            **client,
        },
    )["UserPoolClient"]
    return replace(
        _doctor_target(""),
        public_url=PAGE,
        user_pool_id=pool["pool"]["Id"],
        user_pool_client_id=made["ClientId"],
        cognito=pool["cognito"],
    )


def test_doctor_passes_the_page_client_as_the_stack_makes_it(pool: dict[str, Any]) -> None:
    assert doctor.sign_in_client(_client_target(pool)).mark == doctor.PASS


@pytest.mark.parametrize(
    ("client", "expected"),
    [
        ({"CallbackURLs": [f"{PAGE}/"]}, f"CallbackURLs lack {PAGE}/index.html"),
        ({"LogoutURLs": ["https://elsewhere.example/"]}, "LogoutURLs lack"),
        ({"AllowedOAuthFlows": ["implicit"]}, "no authorization-code flow"),
        ({"GenerateSecret": True}, "it has a secret"),
    ],
    ids=["callback", "logout", "implicit", "secret"],
)
def test_doctor_names_what_is_wrong_with_the_page_client(
    pool: dict[str, Any], client: dict[str, Any], expected: str
) -> None:
    result = doctor.sign_in_client(_client_target(pool, **client))
    assert result.mark == doctor.FAIL
    assert expected in result.detail


def _api_target(pool: dict[str, Any], pool_arn: str | None) -> doctor.Target:
    apigateway = pool["apigateway"]
    api = apigateway.create_rest_api(name="resizer")["id"]
    if pool_arn is not None:
        apigateway.create_authorizer(
            restApiId=api,
            name="UploadersPool",
            type="COGNITO_USER_POOLS",
            providerARNs=[pool_arn],
            identitySource="method.request.header.Authorization",
        )
    return replace(
        _doctor_target(""),
        api_url=f"https://{api}.execute-api.us-east-1.amazonaws.com/api",
        user_pool_id=pool["pool"]["Id"],
        apigateway=apigateway,
    )


def test_doctor_passes_an_api_whose_authorizer_is_the_pool(pool: dict[str, Any]) -> None:
    result = doctor.api_authorizer(_api_target(pool, pool["pool"]["Arn"]))
    assert (result.mark, result.detail) == (doctor.PASS, "UploadersPool")


@pytest.mark.parametrize(
    "pool_arn", [None, "arn:aws:cognito-idp:us-east-1:123456789012:userpool/x"]
)
def test_doctor_catches_an_api_without_the_pools_authorizer(
    pool: dict[str, Any], pool_arn: str | None
) -> None:
    result = doctor.api_authorizer(_api_target(pool, pool_arn))
    assert result.mark == doctor.FAIL
    assert pool["pool"]["Id"] in result.detail


def test_doctor_skips_the_client_and_authorizer_without_a_pool() -> None:
    target = _doctor_target("")
    assert doctor.sign_in_client(target).mark == doctor.SKIP
    assert doctor.api_authorizer(target).mark == doctor.SKIP
    assert doctor.hosted_ui(target).mark == doctor.SKIP
