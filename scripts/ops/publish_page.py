#!/usr/bin/env python3
"""Publish the demo page (page/) into the public variants bucket, with its config.json.

The page is three static files at the bucket's root (``index.html``,
``app.js``, ``style.css``) plus ``config.json``, which tells it where the API
and the website are and how users sign in.  Root keys never collide with
variants (``<size>/<key>``).  `make run` publishes it into s3rver
(scripts/local/stack.py); `make deploy` runs this file against the stack:

    python -m scripts.ops.publish_page --stack image-resizer --region eu-west-1

It reads the stack's outputs (ApiURL, PublicURL, BucketName, and for the
sign-in SignInIssuer, UserPoolClientId, HostedUiURL) and prints the page's address.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import boto3

ROOT = Path(__file__).resolve().parents[2]
PAGE_DIR = ROOT / "page"
PAGE_FILES = {
    "index.html": "text/html; charset=utf-8",
    "signin.js": "text/javascript; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
}
CONFIG_KEY = "config.json"
INDEX_KEY = "index.html"
# Browsers and the CDN ask again every time (a 304 when unchanged), so a
# republished page shows at once; variants keep their long lifetimes.
PAGE_CACHE_CONTROL = "no-cache"
# Cognito's /logout endpoint takes the page to return to as logout_uri (not OIDC's
# post_logout_redirect_uri); it must be one of the app client's LogoutURLs.
COGNITO_LOGOUT_REDIRECT_PARAM = "logout_uri"
SIGN_IN_OUTPUTS = ("SignInIssuer", "UserPoolClientId", "HostedUiURL")


def local_config(
    api_url: str,
    public_url: str,
    upload_token: str,
    cdn_url: str = "",
    oidc: tuple[str, str] = ("", ""),
) -> dict[str, str]:
    """The page's config for `make run`: its dev token is printed there anyway.

    ``oidc`` is the local OpenID provider's issuer and the page's client id there
    (page/signin.js signs in with them); empty for no provider.
    """
    issuer, client_id = oidc
    return {
        "oidc_issuer": issuer,
        "oidc_client_id": client_id,
        "api_url": api_url,
        "public_url": public_url,
        # The gallery's .auto sizes go through the CDN (the stand-in runs its function).
        "cdn_url": cdn_url or public_url,
        "sign_in": "token",  # the provider's button and the dev-token form
        "authorization_scheme": "Bearer",
        "token_hint": f"make run accepts the token {upload_token}.",
    }


def stack_config(outputs: Mapping[str, str]) -> dict[str, str]:
    """The page's config for a deployed stack: users sign in through the pool's hosted UI.

    The same code flow as under `make run` (page/signin.js); Cognito's discovery
    document names no ``end_session_endpoint``, so its sign-out endpoint and the
    parameter naming the page to come back to are given here.  API Gateway's
    Cognito authorizer reads the bare ID token (no scheme).
    """
    hosted_ui = outputs.get("HostedUiURL", "").rstrip("/")
    return {
        "oidc_issuer": outputs.get("SignInIssuer", ""),
        "oidc_client_id": outputs.get("UserPoolClientId", ""),
        "oidc_logout_url": f"{hosted_ui}/logout" if hosted_ui else "",
        "oidc_logout_redirect_param": COGNITO_LOGOUT_REDIRECT_PARAM,
        "api_url": outputs["ApiURL"].rstrip("/"),
        "public_url": outputs["PublicURL"].rstrip("/"),
        "cdn_url": outputs["PublicURL"].rstrip("/"),  # PublicURL is CloudFront's
        "sign_in": "provider",  # the provider's button only
        "authorization_scheme": "",
    }


def page_addresses(public_url: str) -> tuple[str, str]:
    """The page's own addresses, its sign-in's redirect and logout URIs: the site root
    (the website's index document) and ``/index.html``; the app client registers both."""
    base = public_url.rstrip("/")
    return f"{base}/", f"{base}/{INDEX_KEY}"


def publish_page(client: Any, bucket: str, config: Mapping[str, str]) -> list[str]:
    """Put the page's files and its config.json at the root of ``bucket``; the keys written."""
    objects = {key: ((PAGE_DIR / key).read_bytes(), kind) for key, kind in PAGE_FILES.items()}
    objects[CONFIG_KEY] = (
        json.dumps(dict(config), indent=2).encode(),
        "application/json; charset=utf-8",
    )
    for key, (body, content_type) in objects.items():
        client.put_object(
            Bucket=bucket,
            Key=key,
            Body=body,
            ContentType=content_type,
            CacheControl=PAGE_CACHE_CONTROL,
        )
    return list(objects)


def stack_outputs(stack: str, region: str) -> dict[str, str]:
    described = boto3.client("cloudformation", region_name=region).describe_stacks(StackName=stack)
    return {o["OutputKey"]: o["OutputValue"] for o in described["Stacks"][0].get("Outputs", [])}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stack", required=True, help="the CloudFormation stack's name")
    parser.add_argument("--region", required=True)
    args = parser.parse_args(argv)
    outputs = stack_outputs(args.stack, args.region)
    missing = [name for name in ("ApiURL", "PublicURL", "BucketName") if name not in outputs]
    if missing:
        print(f"stack {args.stack} has no output {', '.join(missing)}", file=sys.stderr)
        return 1
    absent = [name for name in SIGN_IN_OUTPUTS if name not in outputs]
    if absent:  # a stack given an existing pool (UserPoolArn) makes no client or domain
        print(
            f"stack {args.stack} has no output {', '.join(absent)}: the page can't sign in",
            file=sys.stderr,
        )
    client = boto3.client("s3", region_name=args.region)
    publish_page(client, outputs["BucketName"], stack_config(outputs))
    print(f"Page: {outputs['PublicURL'].rstrip('/')}/{INDEX_KEY}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
