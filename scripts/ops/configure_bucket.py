#!/usr/bin/env python3
"""Set up the two buckets (idempotent): the public variants website and the private originals.

Used by `make run` against s3rver and, for the plain `chalice deploy` route,
against real buckets:

    python -m scripts.ops.configure_bucket --bucket my-images --public-read \\
        --api-url https://abc123.execute-api.us-east-1.amazonaws.com/api \\
        --originals my-originals --cors-origin https://app.example.com

``--public-read`` lets anonymous users read (never list) the variants bucket:
a bucket policy, and Block Public Access lifted for policies only.
``--originals`` blocks every kind of public access to the originals bucket and
gives it the CORS rules a browser's form POST needs.  Local S3 servers that do
not implement bucket policies or access blocks (s3rver) are told so and the
step is skipped.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

import boto3
from botocore.exceptions import ClientError

from chalicelib.aws import error_code
from scripts.ops.website import website_configuration

# Policies are what make the website public; ACLs stay off (BucketOwnerEnforced).
PUBLIC_ACCESS_BLOCK = {
    "BlockPublicAcls": True,
    "IgnorePublicAcls": True,
    "BlockPublicPolicy": False,
    "RestrictPublicBuckets": False,
}


def public_read_policy(bucket: str, partition: str = "aws") -> dict[str, Any]:
    """Anyone may read any variant; nobody anonymous may list the bucket.

    The website endpoint answers 404 for a missing key with only public
    s3:GetObject (AWS, "Permissions required for website access"), so the
    404 rule fires without s3:ListBucket, which would expose every key.
    The same document is in infra/resources.json (a test keeps them equal).
    """
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "PublicReadVariants",
                "Effect": "Allow",
                "Principal": "*",
                "Action": "s3:GetObject",
                "Resource": f"arn:{partition}:s3:::{bucket}/*",
            }
        ],
    }


# Originals: no public access of any kind, ever.
PRIVATE_ACCESS_BLOCK = {
    "BlockPublicAcls": True,
    "IgnorePublicAcls": True,
    "BlockPublicPolicy": True,
    "RestrictPublicBuckets": True,
}
# A browser's form POST of an upload: S3 answers 201 with XML naming the key
# and ETag, which the page reads.  The same rule is in infra/resources.json.
CORS_MAX_AGE_SECONDS = 3000


def originals_cors(origins: Sequence[str]) -> dict[str, Any]:
    """The originals bucket's CORS: form POSTs from ``origins``, nothing else."""
    return {
        "CORSRules": [
            {
                "AllowedOrigins": list(origins),
                "AllowedMethods": ["POST"],
                "AllowedHeaders": ["*"],
                "ExposeHeaders": ["ETag", "Location"],
                "MaxAgeSeconds": CORS_MAX_AGE_SECONDS,
            }
        ]
    }


def configure_bucket(
    client: Any, bucket: str, api_url: str, *, create: bool = False, public_read: bool = False
) -> list[str]:
    """Create the variants bucket if asked and missing, set its website rule, maybe open reads.

    Returns notes about steps the server could not do (s3rver has no policies).
    """
    if create:
        _create(client, bucket)
    client.put_bucket_website(Bucket=bucket, WebsiteConfiguration=website_configuration(api_url))
    return make_public(client, bucket) if public_read else []


def configure_originals(
    client: Any, bucket: str, cors_origins: Sequence[str], *, create: bool = False
) -> list[str]:
    """Create the originals bucket if asked and missing, block public access, allow form POSTs."""
    if create:
        _create(client, bucket)
    notes = _apply(
        client,
        bucket,
        (
            "public access block",
            client.put_public_access_block,
            {"PublicAccessBlockConfiguration": PRIVATE_ACCESS_BLOCK},
        ),
    )
    if cors_origins:
        client.put_bucket_cors(Bucket=bucket, CORSConfiguration=originals_cors(cors_origins))
    return notes


def _create(client: Any, bucket: str) -> None:
    try:
        client.head_bucket(Bucket=bucket)
    except ClientError:
        client.create_bucket(Bucket=bucket)


def make_public(client: Any, bucket: str) -> list[str]:
    """Lift Block Public Access for policies, then attach the public-read policy."""
    # Order matters on AWS: while BlockPublicPolicy is on, a public policy is refused.
    return _apply(
        client,
        bucket,
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


def _apply(client: Any, bucket: str, *steps: tuple[str, Any, dict[str, Any]]) -> list[str]:
    """Run each step; a server that doesn't implement one gets a note instead of an error."""
    notes = []
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
    parser.add_argument("--bucket", required=True, help="the public variants bucket")
    parser.add_argument("--api-url", required=True, help="API base URL, with its stage path")
    parser.add_argument("--endpoint-url", help="S3 endpoint (a local S3 server)")
    parser.add_argument("--create", action="store_true", help="create the buckets if missing")
    parser.add_argument(
        "--public-read",
        action="store_true",
        help="let anyone read (not list) the variants bucket (needed for the website)",
    )
    parser.add_argument("--originals", help="the private originals bucket to set up as well")
    parser.add_argument(
        "--cors-origin",
        action="append",
        default=[],
        help="a page origin allowed to POST uploads to the originals bucket (repeatable)",
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
        print(f"s3://{args.bucket}: anyone may now read it (not list it)")
    if args.originals:
        for note in configure_originals(
            client, args.originals, args.cors_origin, create=args.create
        ):
            print(f"s3://{args.originals}: {note}")
        origins = ", ".join(args.cors_origin) or "no origin"
        print(f"s3://{args.originals}: private; form POSTs allowed from {origins}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
