#!/usr/bin/env python3
"""Print a signed variant URL (the first of SIGNING_KEYS signs).

    SIGNING_KEYS=... python -m scripts.ops.sign_url --public-url https://img.example.com \\
        300x200 "photos/café.jpg" [--expires-in 3600]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from urllib.parse import quote

from chalicelib.resize.grammar import check_key, parse_size
from chalicelib.resize.signing import sign


def signed_url(public_url: str, secret: bytes, size: str, key: str, expires: int | None) -> str:
    spec = parse_size(size, max_dimension=16384)
    check_key(key)
    signature = sign(secret, spec.token, key, expires)
    return f"{public_url.rstrip('/')}/{signature}/{quote(spec.variant_key(key), safe='/')}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("size", help="canonical size token, e.g. 300x200-cover.webp")
    parser.add_argument("key", help="the original's key, not percent-encoded")
    parser.add_argument("--public-url", default=os.environ.get("PUBLIC_URL", ""))
    parser.add_argument("--expires-in", type=int, help="seconds until new variants are refused")
    args = parser.parse_args(argv)
    secrets = [k.strip() for k in os.environ.get("SIGNING_KEYS", "").split(",") if k.strip()]
    if not secrets or not args.public_url:
        parser.error("set SIGNING_KEYS and --public-url (or PUBLIC_URL)")
    expires = int(time.time()) + args.expires_in if args.expires_in else None
    print(signed_url(args.public_url, secrets[0].encode(), args.size, args.key, expires))
    return 0


if __name__ == "__main__":
    sys.exit(main())
