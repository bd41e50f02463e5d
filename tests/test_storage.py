"""ImageStore over boto3: moto for behaviour, botocore's Stubber for S3's failures."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from chalicelib.errors import OriginalNotFound, StorageUnavailable
from chalicelib.storage import ImageStore
from tests.conftest import BUCKET


def test_put_then_get_round_trips_with_headers(s3: Any) -> None:
    store = ImageStore(s3, BUCKET)
    assert store.put_new(
        "300x/a.jpg", b"bytes", content_type="image/jpeg", cache_control="max-age=1"
    )
    assert store.get("300x/a.jpg") == b"bytes"
    head = s3.head_object(Bucket=BUCKET, Key="300x/a.jpg")
    assert head["ContentType"] == "image/jpeg"
    assert head["CacheControl"] == "max-age=1"


def test_missing_original_is_not_found(s3: Any) -> None:
    with pytest.raises(OriginalNotFound) as info:
        ImageStore(s3, BUCKET).get("nope.jpg")
    assert info.value.status == 404


@pytest.mark.parametrize(
    ("code", "http_status"), [("SlowDown", 503), ("InternalError", 500), ("AccessDenied", 403)]
)
def test_s3_failures_on_get_are_unavailable(code: str, http_status: int) -> None:
    client = boto3.client(
        "s3", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    with Stubber(client) as stubber:
        stubber.add_client_error("get_object", code, http_status_code=http_status)
        with pytest.raises(StorageUnavailable) as info:
            ImageStore(client, BUCKET).get("a.jpg")
    assert info.value.status == 503
    assert info.value.headers["Retry-After"]


def test_s3_failure_on_put_is_unavailable() -> None:
    client = boto3.client(
        "s3", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    with Stubber(client) as stubber:
        stubber.add_client_error("put_object", "SlowDown", http_status_code=503)
        with pytest.raises(StorageUnavailable):
            ImageStore(client, BUCKET).put_new(
                "k", b"b", content_type="image/png", cache_control="x"
            )
