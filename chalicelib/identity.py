"""Sign-in tokens verified by the app itself: an OIDC issuer's JWTs, against its published keys.

API Gateway's Cognito authorizer checks tokens on AWS; ``chalice local`` and
any route it doesn't guard would take a forged one.  With ``OIDC_ISSUER`` and
``OIDC_CLIENT_ID`` set, a bearer token is accepted only when it is signed by a
key in the issuer's JWKS (found through OIDC discovery, cached), names that
issuer, was issued to that client (``aud`` for ID tokens, ``client_id`` for
Cognito's access tokens), is an ID or access token where it says
(``token_use``, Cognito's claim) and has not expired (30 s of clock skew
allowed).  PyJWT and cryptography are imported on the first token, not at
cold start (docs/decisions.md).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from chalicelib.errors import IdentityProviderUnavailable, Unauthorized

LEEWAY_SECONDS = 30
ALGORITHMS = ("RS256",)  # what Cognito and oidc-provider sign with
TOKEN_USES = frozenset({"id", "access"})
DISCOVERY_PATH = "/.well-known/openid-configuration"
DISCOVERY_TIMEOUT_SECONDS = 3
JWKS_LIFESPAN_SECONDS = 3600  # keys are fetched again after this, or for an unknown kid


class TokenVerifier:
    """One issuer and client; ``signing_key`` finds a token's key (default: the JWKS)."""

    def __init__(
        self,
        issuer: str,
        client_id: str,
        signing_key: Callable[[str], Any] | None = None,
    ) -> None:
        self.issuer = issuer.rstrip("/")
        self.client_id = client_id
        self._signing_key = signing_key
        self._lock = threading.Lock()

    def subject(self, token: str) -> str:
        """The token's ``sub`` once every check passes; Unauthorized (401) otherwise."""
        import jwt

        try:
            key = self.signing_key(token)
            claims = jwt.decode(
                token,
                key,
                algorithms=list(ALGORITHMS),
                issuer=self.issuer,
                leeway=LEEWAY_SECONDS,
                options={"require": ["exp", "iss", "sub"], "verify_aud": False},
            )
        except jwt.PyJWKClientConnectionError as err:
            raise IdentityProviderUnavailable(
                "the sign-in provider's keys can't be fetched", str(err)
            ) from err
        except jwt.PyJWTError as err:
            raise Unauthorized("the sign-in token is not valid", repr(err)) from err
        self._check_client(claims)
        subject = claims["sub"]
        if not isinstance(subject, str):
            raise Unauthorized("the sign-in token is not valid", "sub is not a string")
        return subject

    def _check_client(self, claims: dict[str, Any]) -> None:
        """An ID token (or any without ``token_use``) names the client in ``aud``; a
        Cognito access token (``token_use`` access) has no ``aud`` and names it in ``client_id``."""
        use = claims.get("token_use")
        if use is not None and use not in TOKEN_USES:
            raise Unauthorized("the sign-in token is not valid", f"token_use {use!r}")
        if use == "access":
            issued_to = claims.get("client_id") == self.client_id
        else:
            audience = claims.get("aud")
            issued_to = self.client_id in (audience if isinstance(audience, list) else [audience])
        if not issued_to:
            raise Unauthorized("the sign-in token was issued to another client")

    def signing_key(self, token: str) -> Any:
        with self._lock:
            if self._signing_key is None:
                self._signing_key = _jwks_signing_key(self.issuer)
        return self._signing_key(token)


def _jwks_signing_key(issuer: str) -> Callable[[str], Any]:
    """PyJWT's JWKS client for the issuer's ``jwks_uri`` (discovery), keys cached."""
    import urllib.request  # ~15 ms: only once a token is to be checked

    import jwt

    try:
        with urllib.request.urlopen(  # the issuer is configuration: https, or loopback
            issuer + DISCOVERY_PATH, timeout=DISCOVERY_TIMEOUT_SECONDS
        ) as response:
            discovery = json.load(response)
    except (OSError, ValueError) as err:
        raise IdentityProviderUnavailable(
            "the sign-in provider's discovery document can't be read", repr(err)
        ) from err
    client = jwt.PyJWKClient(
        str(discovery["jwks_uri"]), cache_keys=True, lifespan=JWKS_LIFESPAN_SECONDS
    )
    return lambda token: client.get_signing_key_from_jwt(token).key


@lru_cache(maxsize=4)
def verifier(issuer: str, client_id: str) -> TokenVerifier:
    """One verifier (and one key cache) per issuer and client, for the process."""
    return TokenVerifier(issuer, client_id)
