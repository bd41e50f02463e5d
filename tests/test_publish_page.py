"""The demo page's publisher: the files, their types and lifetimes, the config it writes."""

from __future__ import annotations

import json
from typing import Any

from scripts.ops.publish_page import PAGE_DIR, local_config, publish_page, stack_config
from tests.support import BUCKET

OUTPUTS = {
    "ApiURL": "https://abc123.execute-api.eu-west-1.amazonaws.com/api/",
    "PublicURL": "https://d111.cloudfront.net",
    "BucketName": "my-images",
    "UserPoolId": "eu-west-1_AbC",
    "UserPoolClientId": "client123",
    "SignInIssuer": "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbC",
    "HostedUiURL": "https://images-1234.auth.eu-west-1.amazoncognito.com",
}


def test_the_page_goes_to_the_bucket_root_with_types_and_no_cache(s3: Any) -> None:
    config = local_config(
        "http://api", "http://web/images", "tok", "http://cdn/images", ("http://op", "page")
    )
    keys = publish_page(s3, BUCKET, config)
    assert keys == ["index.html", "signin.js", "app.js", "style.css", "config.json"]
    for key, kind in (
        ("index.html", "text/html; charset=utf-8"),
        ("signin.js", "text/javascript; charset=utf-8"),
        ("app.js", "text/javascript; charset=utf-8"),
        ("style.css", "text/css; charset=utf-8"),
        ("config.json", "application/json; charset=utf-8"),
    ):
        stored = s3.get_object(Bucket=BUCKET, Key=key)
        assert stored["ContentType"] == kind
        assert stored["CacheControl"] == "no-cache"
        if key != "config.json":
            assert stored["Body"].read() == (PAGE_DIR / key).read_bytes()
    config = json.loads(s3.get_object(Bucket=BUCKET, Key="config.json")["Body"].read())
    assert config == {
        "oidc_issuer": "http://op",
        "oidc_client_id": "page",
        "api_url": "http://api",
        "public_url": "http://web/images",
        "cdn_url": "http://cdn/images",
        "sign_in": "token",
        "authorization_scheme": "Bearer",
        "token_hint": "make run accepts the token tok.",
    }


def test_a_stack_page_signs_in_through_the_pools_hosted_ui() -> None:
    assert stack_config(OUTPUTS) == {
        "oidc_issuer": "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbC",
        "oidc_client_id": "client123",
        # Cognito's discovery names no end_session_endpoint: its /logout, with logout_uri.
        "oidc_logout_url": "https://images-1234.auth.eu-west-1.amazoncognito.com/logout",
        "oidc_logout_redirect_param": "logout_uri",
        "api_url": "https://abc123.execute-api.eu-west-1.amazonaws.com/api",
        "public_url": "https://d111.cloudfront.net",
        "cdn_url": "https://d111.cloudfront.net",
        "sign_in": "provider",  # no pasted token on AWS
        "authorization_scheme": "",  # the authorizer reads the bare ID token
    }


def test_a_stack_without_its_own_pool_gets_no_sign_in() -> None:
    outputs = {name: OUTPUTS[name] for name in ("ApiURL", "PublicURL", "BucketName")}
    config = stack_config(outputs)
    assert (config["oidc_issuer"], config["oidc_client_id"], config["oidc_logout_url"]) == (
        "",
        "",
        "",
    )
