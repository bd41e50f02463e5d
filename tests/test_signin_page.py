"""page/signin.js on its own in Chromium: the sign-out address each provider's config makes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from scripts.ops.publish_page import PAGE_DIR, local_config, stack_config
from tests.test_publish_page import OUTPUTS

PAGE = "https://d111.cloudfront.net/index.html"


@pytest.fixture(scope="module")
def signin(browser: Any) -> Iterator[Any]:
    """A blank page with signin.js loaded (its functions are the page's globals)."""
    context = browser.new_context()
    try:
        page = context.new_page()
        page.set_content("<!doctype html><title>signin.js</title>")
        page.add_script_tag(content=(PAGE_DIR / "signin.js").read_text())
        yield page
    finally:
        context.close()


def logout_address(page: Any, config: dict[str, str], discovery: dict[str, str]) -> Any:
    return page.evaluate(
        "([config, discovery, page]) => logoutAddress(config, discovery, page)",
        [config, discovery, PAGE],
    )


def test_cognito_signs_out_through_its_logout_endpoint_with_logout_uri(signin: Any) -> None:
    # Cognito's discovery document has no end_session_endpoint; config.json names /logout.
    address = logout_address(signin, stack_config(OUTPUTS), {"issuer": OUTPUTS["SignInIssuer"]})
    assert address == (
        "https://images-1234.auth.eu-west-1.amazoncognito.com/logout"
        "?client_id=client123&logout_uri=https%3A%2F%2Fd111.cloudfront.net%2Findex.html"
    )


def test_an_oidc_provider_signs_out_through_its_end_session_endpoint(signin: Any) -> None:
    config = local_config("http://api", "http://web", "tok", oidc=("http://op", "page"))
    discovery = {"end_session_endpoint": "http://op/session/end"}
    assert logout_address(signin, config, discovery) == (
        "http://op/session/end?client_id=page"
        "&post_logout_redirect_uri=https%3A%2F%2Fd111.cloudfront.net%2Findex.html"
    )


def test_without_a_sign_out_endpoint_the_page_only_forgets_its_tokens(signin: Any) -> None:
    config = local_config("http://api", "http://web", "tok", oidc=("http://op", "page"))
    assert logout_address(signin, config, {}) is None
