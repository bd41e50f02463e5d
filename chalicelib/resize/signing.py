"""HMAC-SHA256 URL signatures, so only URLs you issued can create variants.

A signed URL is ``<public base>/<signature>/<size>/<key>``; the signature
segment is ``<mac>`` or ``<expires>.<mac>`` where ``expires`` is a Unix time
and ``mac`` is the first 16 bytes of HMAC-SHA256(secret, "<expires>/<size>/<key>"),
base64url without padding.  Several secrets may be valid at once (rotation).
The signature is part of the stored variant's key, so a signed variant keeps
serving from S3 after it was made; expiry only limits creating new ones.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Sequence

from chalicelib.errors import InvalidSignature, SignatureExpired, SignatureRequired

MAC_BYTES = 16
_SEGMENT = re.compile(r"(?:(?P<expires>[1-9][0-9]{0,11})\.)?(?P<mac>[A-Za-z0-9_-]{22})")


def sign(secret: bytes, size: str, key: str, expires: int | None = None) -> str:
    """The signature segment for ``<size>/<key>`` (key not percent-encoded)."""
    mac = _mac(secret, size, key, expires)
    return f"{expires}.{mac}" if expires else mac


def require_signature_segment(segment: str) -> re.Match[str]:
    """The segment's parts; refuses one that can't be a signature (an unsigned URL)."""
    match = _SEGMENT.fullmatch(segment)
    if match is None:
        raise SignatureRequired("this URL needs a signature: /<signature>/<size>/<key>")
    return match


def verify(segment: str, size: str, key: str, secrets: Sequence[bytes], now: float) -> None:
    """Raise unless ``segment`` signs ``<size>/<key>`` with one of ``secrets`` and is unexpired."""
    match = require_signature_segment(segment)
    expires = int(match["expires"]) if match["expires"] else None
    given = match["mac"].encode()
    # Compare against every secret, each in constant time.
    matches = [
        hmac.compare_digest(_mac(secret, size, key, expires).encode(), given) for secret in secrets
    ]
    if not any(matches):
        raise InvalidSignature("the URL's signature is not valid")
    if expires is not None and expires < now:
        raise SignatureExpired("the URL's signature has expired")


def _mac(secret: bytes, size: str, key: str, expires: int | None) -> str:
    message = f"{expires or ''}/{size}/{key}".encode()
    digest = hmac.new(secret, message, hashlib.sha256).digest()[:MAC_BYTES]
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
