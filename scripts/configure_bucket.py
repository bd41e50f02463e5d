#!/usr/bin/env python3
"""Point an image bucket's website hosting at the resize API (idempotent).

Used by `make run` against s3rver and, for the plain `chalice deploy` route,
against a real bucket:

    python scripts/configure_bucket.py --bucket my-images \\
        --api-url https://abc123.execute-api.us-east-1.amazonaws.com/api
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import ClientError

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from chalicelib.website import website_configuration


def configure_bucket(client: Any, bucket: str, api_url: str, *, create: bool = False) -> None:
    """Create the bucket if asked and missing, then set its website rules."""
    if create:
        try:
            client.head_bucket(Bucket=bucket)
        except ClientError:
            client.create_bucket(Bucket=bucket)
    client.put_bucket_website(Bucket=bucket, WebsiteConfiguration=website_configuration(api_url))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bucket", required=True)
    parser.add_argument("--api-url", required=True, help="API base URL, with its stage path")
    parser.add_argument("--endpoint-url", help="S3 endpoint (a local S3 server)")
    parser.add_argument("--create", action="store_true", help="create the bucket if missing")
    args = parser.parse_args(argv)
    client = boto3.client("s3", endpoint_url=args.endpoint_url)
    configure_bucket(client, args.bucket, args.api_url, create=args.create)
    print(f"s3://{args.bucket}: website misses now redirect (307) to {args.api_url}/resize/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
