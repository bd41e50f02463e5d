"""The image bucket's website configuration, and how S3 applies its RoutingRules.

A missing variant on the website endpoint answers 404; the rule built here
turns that 404 into a 307 to the API's resize route.  ``apply_routing_rules``
mirrors S3's documented evaluation so tests (moto serves no website endpoint)
and the doctor can check a configuration without AWS.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

# 307, not 301: browsers and CDNs cache a 301 forever, which turns the first
# miss into a permanent loop once the variant exists.
REDIRECT_CODE = "307"


@dataclass(frozen=True)
class WebsiteRedirect:
    status: int
    location: str


def website_configuration(api_url: str) -> dict[str, Any]:
    """The bucket website config that sends every 404 to ``<api_url>/resize/<key>``."""
    api = urlsplit(api_url.rstrip("/"))
    if api.scheme not in ("http", "https") or not api.netloc:
        raise ValueError(f"api_url must be an absolute http(s) URL, got {api_url!r}")
    stage_path = api.path.strip("/")
    return {
        "IndexDocument": {"Suffix": "index.html"},
        "RoutingRules": [
            {
                "Condition": {"HttpErrorCodeReturnedEquals": "404"},
                "Redirect": {
                    "Protocol": api.scheme,
                    "HostName": api.netloc,
                    "ReplaceKeyPrefixWith": f"{stage_path}/resize/" if stage_path else "resize/",
                    "HttpRedirectCode": REDIRECT_CODE,
                },
            }
        ],
    }


def apply_routing_rules(
    config: dict[str, Any],
    key: str,
    status: int,
    *,
    request_protocol: str = "http",
    request_host: str,
) -> WebsiteRedirect | None:
    """The redirect S3's website endpoint answers instead of ``status`` for ``key``, if any.

    The first rule whose every condition holds wins.  ``ReplaceKeyPrefixWith``
    replaces the ``KeyPrefixEquals`` prefix (or prepends when there is none);
    ``ReplaceKeyWith`` replaces the whole key; the code defaults to 301 and the
    protocol and host to the request's.  The key is percent-encoded in Location.
    """
    for rule in config.get("RoutingRules", []):
        condition = rule.get("Condition", {})
        prefix = condition.get("KeyPrefixEquals", "")
        wanted_status = condition.get("HttpErrorCodeReturnedEquals")
        if not key.startswith(prefix):
            continue
        if wanted_status is not None and int(wanted_status) != status:
            continue
        redirect = rule["Redirect"]
        if "ReplaceKeyWith" in redirect:
            new_key = redirect["ReplaceKeyWith"]
        else:
            new_key = redirect.get("ReplaceKeyPrefixWith", prefix) + key[len(prefix) :]
        protocol = redirect.get("Protocol", request_protocol)
        host = redirect.get("HostName", request_host)
        return WebsiteRedirect(
            status=int(redirect.get("HttpRedirectCode", "301")),
            location=f"{protocol}://{host}/{quote(new_key, safe='/')}",
        )
    return None
