"""scripts/ops/configure_bucket.py: website rules, and public reads on AWS (moto) and s3rver."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests

from chalicelib.website import website_configuration
from scripts.ops.configure_bucket import PUBLIC_ACCESS_BLOCK, configure_bucket, public_read_policy
from tests.conftest import BUCKET

API_URL = "https://abc123.execute-api.us-east-1.amazonaws.com/api"
OBJECT_URL = f"https://{BUCKET}.s3.amazonaws.com/photos/cat.jpg"


def test_public_read_opens_anonymous_gets_and_is_idempotent(s3: Any) -> None:
    s3.put_object(Bucket=BUCKET, Key="photos/cat.jpg", Body=b"jpeg")
    assert requests.get(OBJECT_URL, timeout=5).status_code == 403

    for _ in range(2):
        assert configure_bucket(s3, BUCKET, API_URL, public_read=True) == []

    assert requests.get(OBJECT_URL, timeout=5).status_code == 200
    policy = json.loads(s3.get_bucket_policy(Bucket=BUCKET)["Policy"])
    assert policy == public_read_policy(BUCKET)
    block = s3.get_public_access_block(Bucket=BUCKET)["PublicAccessBlockConfiguration"]
    assert block == PUBLIC_ACCESS_BLOCK
    website = s3.get_bucket_website(Bucket=BUCKET)
    assert website["RoutingRules"] == website_configuration(API_URL)["RoutingRules"]


def test_website_only_leaves_the_bucket_private(s3: Any) -> None:
    s3.put_object(Bucket=BUCKET, Key="photos/cat.jpg", Body=b"jpeg")
    configure_bucket(s3, BUCKET, API_URL)
    assert requests.get(OBJECT_URL, timeout=5).status_code == 403


def test_public_read_policy_grants_exactly_get_and_list() -> None:
    statements = public_read_policy("pics")["Statement"]
    assert [(s["Principal"], s["Action"], s["Resource"]) for s in statements] == [
        ("*", "s3:GetObject", "arn:aws:s3:::pics/*"),
        ("*", "s3:ListBucket", "arn:aws:s3:::pics"),
    ]


@pytest.mark.e2e
def test_s3rver_skips_the_policy_steps_and_says_so(local_stack: Any) -> None:
    notes = configure_bucket(
        local_stack.s3_client(), local_stack.bucket, local_stack.api_url, public_read=True
    )
    assert notes == [
        "public access block: not implemented by this S3 server, skipped",
        "bucket policy: not implemented by this S3 server, skipped",
    ]
