#!/usr/bin/env python3
"""Point an image bucket's website hosting at the resize API (idempotent).

Used by `make run` against s3rver and, for the plain `chalice deploy` route,
against a real bucket:

    python scripts/ops/configure_bucket.py --bucket my-images --public-read \\
        --api-url https://abc123.execute-api.us-east-1.amazonaws.com/api

``--public-read`` also lets anonymous users read the bucket (bucket policy, and
Block Public Access lifted for policies only).  Local S3 servers that do not
implement bucket policies (s3rver) are told so and the step is skipped.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import ClientError

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from chalicelib.storage import error_code
from chalicelib.website import website_configuration

# Policies are what make the website public; ACLs stay off (BucketOwnerEnforced).
PUBLIC_ACCESS_BLOCK = {
    "BlockPublicAcls": True,
    "IgnorePublicAcls": True,
    "BlockPublicPolicy": False,
    "RestrictPublicBuckets": False,
}


def public_read_policy(bucket: str, partition: str = "aws") -> dict[str, Any]:
    """Anyone may read any object, and list, so a missing key is 404 rather than 403.

    S3 answers 403 to a GET of a missing key unless the caller may
    s3:ListBucket; the website's 404 rule would then never fire.  Listing
    reveals key names; the README's deploy notes weigh the alternatives.
    The same document is in infra/resources.json (a test keeps them equal).
    """
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "PublicReadImages",
                "Effect": "Allow",
                "Principal": "*",
                "Action": "s3:GetObject",
                "Resource": f"arn:{partition}:s3:::{bucket}/*",
            },
            {
                "Sid": "PublicListSoMissingKeysAre404",
                "Effect": "Allow",
                "Principal": "*",
                "Action": "s3:ListBucket",
                "Resource": f"arn:{partition}:s3:::{bucket}",
            },
        ],
    }


def configure_bucket(
    client: Any, bucket: str, api_url: str, *, create: bool = False, public_read: bool = False
) -> list[str]:
    """Create the bucket if asked and missing, set its website rules, optionally open reads.

    Returns notes about steps the server could not do (s3rver has no policies).
    """
    if create:
        try:
            client.head_bucket(Bucket=bucket)
        except ClientError:
            client.create_bucket(Bucket=bucket)
    client.put_bucket_website(Bucket=bucket, WebsiteConfiguration=website_configuration(api_url))
    return make_public(client, bucket) if public_read else []


def make_public(client: Any, bucket: str) -> list[str]:
    """Lift Block Public Access for policies, then attach the public-read policy."""
    notes = []
    # Order matters on AWS: while BlockPublicPolicy is on, a public policy is refused.
    steps = (
        (
            "public access block",
            client.put_public_access_block,
            {"PublicAccessBlockConfiguration": PUBLIC_ACCESS_BLOCK},
        ),
        (
            "bucket policy",
            client.put_bucket_policy,
            {"Policy": json.dumps(public_read_policy(bucket))},
        ),
    )
    for name, call, arguments in steps:
        try:
            call(Bucket=bucket, **arguments)
        except ClientError as err:
            if error_code(err) != "NotImplemented":
                raise
            notes.append(f"{name}: not implemented by this S3 server, skipped")
    return notes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bucket", required=True)
    parser.add_argument("--api-url", required=True, help="API base URL, with its stage path")
    parser.add_argument("--endpoint-url", help="S3 endpoint (a local S3 server)")
    parser.add_argument("--create", action="store_true", help="create the bucket if missing")
    parser.add_argument(
        "--public-read",
        action="store_true",
        help="let anyone read and list the bucket (needed for the website)",
    )
    args = parser.parse_args(argv)
    client = boto3.client("s3", endpoint_url=args.endpoint_url)
    notes = configure_bucket(
        client, args.bucket, args.api_url, create=args.create, public_read=args.public_read
    )
    print(f"s3://{args.bucket}: website misses now redirect (307) to {args.api_url}/resize/")
    for note in notes:
        print(f"s3://{args.bucket}: {note}")
    if args.public_read and not notes:
        print(f"s3://{args.bucket}: anyone may now read and list it")
    return 0


if __name__ == "__main__":
    sys.exit(main())
