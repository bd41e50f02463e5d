"""Sign-in under the local stack: the page through the local OpenID provider, and forged tokens.

The provider (scripts/local/oidc.js) is given a signing key made here (OIDC_JWKS_FILE), so
the tests can sign tokens as it does: a genuine one is accepted, and an expired one, one
for another client, and one signed by a key the provider does not have get 401.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from io import BytesIO
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import rsa
from PIL import Image

from scripts.local.stack import APP_EVENT_HANDLER, OIDC_CLIENT_ID, OIDC_USER, EventSettings
from tests.support import started_stack
from tests.support.browser import WAIT_MS
from tests.test_browser import photo_file, upload, wait_for_gallery

pytestmark = pytest.mark.e2e

KID = "local-test-key"
# The provider's ID tokens live this long; the page refreshes a minute before expiry, so
# about 15 s after signing in (page/signin.js REFRESH_BEFORE_MS).
ID_TOKEN_TTL_SECONDS = 75
STORED_ID_TOKEN = "JSON.parse(sessionStorage.getItem('image-resizer-oidc') || '{}').id_token"


def private_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def provider_key() -> rsa.RSAPrivateKey:
    return private_key()


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory, provider_key: rsa.RSAPrivateKey
) -> Iterator[Any]:
    """make run's processes with the page; the provider signs with ``provider_key``."""
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(provider_key))
    jwks = tmp_path_factory.mktemp("jwks") / "jwks.json"
    jwks.write_text(json.dumps({"keys": [{**jwk, "kid": KID, "alg": "RS256", "use": "sig"}]}))
    with started_stack(
        tmp_path_factory,
        "signin",
        {},
        event_handler=APP_EVENT_HANDLER,
        events=EventSettings(visibility_timeout=2),
        page=True,
        oidc_env={"OIDC_JWKS_FILE": str(jwks), "OIDC_ID_TOKEN_TTL": str(ID_TOKEN_TTL_SECONDS)},
    ) as started:
        yield started


@contextmanager
def page_at(browser: Any, url: str) -> Iterator[Any]:
    """The page at ``url`` in a fresh context (its own cookies and storage), once ready."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = context.new_page()
        page.set_default_timeout(WAIT_MS)
        page.goto(url)
        page.wait_for_selector("body[data-ready='true']")
        yield page
    finally:
        context.close()


def jpeg() -> bytes:
    out = BytesIO()
    Image.new("RGB", (640, 480), (200, 80, 40)).save(out, "JPEG")
    return out.getvalue()


def test_a_new_user_signs_in_uploads_sees_the_gallery_and_signs_out(
    browser: Any, stack: Any, tmp_path: Path
) -> None:
    with page_at(browser, stack.page_url) as page:
        page.get_by_role("button", name="Log in with your account").click()
        page.wait_for_url(f"{stack.oidc_issuer}/interaction/**")
        page.get_by_label("User name").fill(OIDC_USER)
        page.get_by_label("Password").fill(stack.oidc_password)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_selector("#upload:not([hidden])")
        assert page.evaluate("location.search") == ""  # the code is taken off the URL
        first = page.evaluate(STORED_ID_TOKEN)
        key = upload(page, photo_file(tmp_path, "phone.jpg", jpeg()))
        assert key.split("/")[1] == OIDC_USER  # the ID token's sub names the folder
        figures = wait_for_gallery(page)
        assert figures
        assert all(figure["result"] != "failed" for figure in figures), figures
        # The refresh token brings a new ID token before this one expires; the page sends it.
        page.wait_for_function(f"(first) => {STORED_ID_TOKEN} !== first", arg=first)
        refreshed = page.evaluate(STORED_ID_TOKEN)
        assert page.evaluate("state.token") == refreshed
        listed = requests.get(
            f"{stack.api_url}/uploads",
            headers={"Authorization": f"Bearer {refreshed}"},
            timeout=30,
        )
        assert listed.status_code == 200
        page.get_by_role("button", name="Sign out").click()
        page.wait_for_url(lambda url: url.startswith(stack.page_url))
        page.wait_for_selector("body[data-ready='true']")
        assert page.is_visible("#sign-in")
        assert not page.is_visible("#upload")
        assert page.evaluate("sessionStorage.length") == 0
        # The provider's session ended too: signing in asks for the password again.
        page.get_by_role("button", name="Log in with your account").click()
        page.wait_for_url(f"{stack.oidc_issuer}/interaction/**")


def token(key: rsa.RSAPrivateKey, stack: Any, **changes: Any) -> str:
    now = int(time.time())
    claims = {"iss": stack.oidc_issuer, "sub": "someone", "aud": OIDC_CLIENT_ID}
    claims |= {"iat": now, "exp": now + 600, **changes}
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": KID})


def answers(stack: Any, bearer: str) -> tuple[int, int]:
    headers = {"Authorization": f"Bearer {bearer}"}
    listed = requests.get(f"{stack.api_url}/uploads", headers=headers, timeout=30)
    body = {"filename": "a.jpg", "content_type": "image/jpeg"}
    created = requests.post(f"{stack.api_url}/uploads", json=body, headers=headers, timeout=30)
    return listed.status_code, created.status_code


def test_only_the_providers_own_current_tokens_for_the_page_are_accepted(
    stack: Any, provider_key: rsa.RSAPrivateKey
) -> None:
    assert answers(stack, token(provider_key, stack)) == (200, 201)
    assert answers(stack, token(private_key(), stack)) == (401, 401)
    assert answers(stack, token(provider_key, stack, exp=int(time.time()) - 120)) == (401, 401)
    assert answers(stack, token(provider_key, stack, aud="another-client")) == (401, 401)


def test_a_sign_in_answer_this_page_did_not_ask_for_is_refused(browser: Any, stack: Any) -> None:
    with page_at(browser, f"{stack.page_url}?code=stolen&state=forged") as page:
        assert "(state)" in page.inner_text("#sign-in-error")
        assert not page.is_visible("#upload")
        assert page.evaluate("location.search") == ""
