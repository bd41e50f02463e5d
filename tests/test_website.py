"""The bucket's website rules: built, stored, and applied the way S3 applies them."""

from __future__ import annotations

from typing import Any

import pytest

from scripts.ops.configure_bucket import configure_bucket
from scripts.ops.website import WebsiteRedirect, apply_routing_rules, website_configuration

HOST = "img.example.com"


def test_local_api_rule_prepends_resize() -> None:
    config = website_configuration("http://127.0.0.1:8000")
    redirect = apply_routing_rules(config, "300x300/photos/cat.jpg", 404, request_host=HOST)
    assert redirect == WebsiteRedirect(307, "http://127.0.0.1:8000/resize/300x300/photos/cat.jpg")


def test_api_gateway_stage_path_is_kept() -> None:
    config = website_configuration("https://abc.execute-api.us-east-1.amazonaws.com/api/")
    redirect = apply_routing_rules(config, "x100/a.png", 404, request_host=HOST)
    assert redirect is not None
    assert (
        redirect.location == "https://abc.execute-api.us-east-1.amazonaws.com/api/resize/x100/a.png"
    )


def test_only_404_redirects() -> None:
    config = website_configuration("http://127.0.0.1:8000")
    assert apply_routing_rules(config, "300x/a.jpg", 403, request_host=HOST) is None


def test_key_is_percent_encoded_in_location() -> None:
    config = website_configuration("http://api")
    redirect = apply_routing_rules(config, "300x/café au lait 100%.jpg", 404, request_host=HOST)
    assert redirect is not None
    assert redirect.location == "http://api/resize/300x/caf%C3%A9%20au%20lait%20100%25.jpg"


@pytest.mark.parametrize(
    ("rule", "key", "expected"),
    [
        # KeyPrefixEquals is replaced, not prepended to.
        (
            {"Condition": {"KeyPrefixEquals": "docs/"}, "Redirect": {"ReplaceKeyPrefixWith": "d/"}},
            "docs/a.html",
            WebsiteRedirect(301, f"http://{HOST}/d/a.html"),
        ),
        # Defaults: the request's host and protocol, code 301.
        (
            {
                "Condition": {"HttpErrorCodeReturnedEquals": "404"},
                "Redirect": {"ReplaceKeyWith": "missing.html"},
            },
            "any/thing",
            WebsiteRedirect(301, f"http://{HOST}/missing.html"),
        ),
        # A prefix that doesn't match: no redirect.
        (
            {"Condition": {"KeyPrefixEquals": "docs/"}, "Redirect": {"HostName": "x"}},
            "img/a.png",
            None,
        ),
    ],
)
def test_s3_rule_semantics(
    rule: dict[str, Any], key: str, expected: WebsiteRedirect | None
) -> None:
    assert apply_routing_rules({"RoutingRules": [rule]}, key, 404, request_host=HOST) == expected


def test_first_matching_rule_wins() -> None:
    rules = {
        "RoutingRules": [
            {"Condition": {"KeyPrefixEquals": "a/"}, "Redirect": {"HostName": "first"}},
            {"Redirect": {"HostName": "second"}},
        ]
    }
    assert apply_routing_rules(rules, "a/x", 404, request_host=HOST).location == "http://first/a/x"  # type: ignore[union-attr]
    assert apply_routing_rules(rules, "b/x", 404, request_host=HOST).location == "http://second/b/x"  # type: ignore[union-attr]


def test_api_url_must_be_absolute() -> None:
    with pytest.raises(ValueError, match="absolute"):
        website_configuration("127.0.0.1:8000")


def test_configure_bucket_round_trips_through_s3(s3: Any) -> None:
    configure_bucket(s3, "fresh", "https://api.example.com/api", create=True)
    configure_bucket(s3, "fresh", "https://api.example.com/api", create=True)  # idempotent
    stored = s3.get_bucket_website(Bucket="fresh")
    redirect = apply_routing_rules(stored, "300x/a.jpg", 404, request_host=HOST)
    assert redirect == WebsiteRedirect(307, "https://api.example.com/api/resize/300x/a.jpg")
