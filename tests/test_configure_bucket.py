"""scripts/ops/configure_bucket.py: website rules, public reads, private originals.

On moto and s3rver.  Neither refuses anonymous listings (moto lists to anyone,
whatever the policy), so "not listable" is checked on the policy document and
by the doctor against a live stack, not here.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests

from scripts.ops.configure_bucket import (
    PRIVATE_ACCESS_BLOCK,
    PUBLIC_ACCESS_BLOCK,
    configure_bucket,
    configure_originals,
    originals_cors,
    public_read_policy,
)
from scripts.ops.website import website_configuration
from tests.support import BUCKET

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


def test_public_read_policy_grants_get_and_never_list() -> None:
    statements = public_read_policy("pics")["Statement"]
    assert [(s["Principal"], s["Action"], s["Resource"]) for s in statements] == [
        ("*", "s3:GetObject", "arn:aws:s3:::pics/*"),
    ]


def test_originals_are_private_and_accept_form_posts_from_the_page(s3: Any) -> None:
    origins = ["https://app.example.com", "http://localhost:8000"]
    for _ in range(2):  # idempotent
        assert configure_originals(s3, "originals", origins, create=True) == []
    s3.put_object(Bucket="originals", Key="uploads/u/1/cat.jpg", Body=b"jpeg")
    assert (
        requests.get(
            "https://originals.s3.amazonaws.com/uploads/u/1/cat.jpg", timeout=5
        ).status_code
        == 403
    )
    block = s3.get_public_access_block(Bucket="originals")["PublicAccessBlockConfiguration"]
    assert block == PRIVATE_ACCESS_BLOCK
    assert all(block.values())
    [rule] = s3.get_bucket_cors(Bucket="originals")["CORSRules"]
    [wanted] = originals_cors(origins)["CORSRules"]
    assert {name: rule.get(name) for name in wanted} == wanted


@pytest.mark.e2e
def test_s3rver_skips_the_policy_steps_and_says_so(local_stack: Any) -> None:
    notes = configure_bucket(
        local_stack.s3_client(), local_stack.bucket, local_stack.api_url, public_read=True
    )
    assert notes == [
        "public access block: not implemented by this S3 server, skipped",
        "bucket policy: not implemented by this S3 server, skipped",
    ]
    notes = configure_originals(
        local_stack.s3_client(), local_stack.originals_bucket, local_stack.page_origins
    )
    assert notes == ["public access block: not implemented by this S3 server, skipped"]
