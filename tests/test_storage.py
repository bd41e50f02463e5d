"""ImageStore over boto3: moto for behaviour, botocore's Stubber for S3's failures."""

from __future__ import annotations

from io import BytesIO
from typing import Any

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber

from chalicelib.errors import (
    EmptyOriginal,
    OriginalNotFound,
    OriginalTooManyBytes,
    ServiceError,
    StorageUnavailable,
)
from chalicelib.storage import ImageStore, Original
from tests.support import BUCKET


def test_put_then_get_round_trips_with_headers(s3: Any) -> None:
    store = ImageStore(s3, BUCKET)
    assert store.put_new(
        "300x/a.jpg", b"bytes", content_type="image/jpeg", cache_control="max-age=1"
    )
    assert store.get_original("300x/a.jpg", max_bytes=5).body == b"bytes"
    head = s3.head_object(Bucket=BUCKET, Key="300x/a.jpg")
    assert head["ContentType"] == "image/jpeg"
    assert head["CacheControl"] == "max-age=1"


def test_missing_original_is_not_found(s3: Any) -> None:
    with pytest.raises(OriginalNotFound) as info:
        ImageStore(s3, BUCKET).get_original("nope.jpg", max_bytes=100)
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
            ImageStore(client, BUCKET).get_original("a.jpg", max_bytes=100)
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


class CountingStream(BytesIO):
    """A response body that remembers how many bytes were read from it, even once closed."""

    bytes_read = 0

    def read(self, size: int | None = -1) -> bytes:
        data = super().read(size)
        self.bytes_read += len(data)
        return data


def stubbed_get(content_length: int, stream: CountingStream, max_bytes: int) -> Original:
    """get_original over a GET whose headers say ``content_length`` and whose body is ``stream``."""
    client = boto3.client(
        "s3", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    response = {
        "Body": StreamingBody(stream, len(stream.getvalue())),
        "ContentLength": content_length,
        "ETag": '"abc"',
    }
    with Stubber(client) as stubber:
        stubber.add_response("get_object", response, {"Bucket": BUCKET, "Key": "a.jpg"})
        return ImageStore(client, BUCKET).get_original("a.jpg", max_bytes=max_bytes)


def test_get_original_gives_the_body_and_etag_of_one_response() -> None:
    original = stubbed_get(5, CountingStream(b"bytes"), max_bytes=5)
    assert (original.body, original.etag) == (b"bytes", '"abc"')


@pytest.mark.parametrize(
    ("content_length", "body", "error", "most_read"),
    [
        (2000, b"x" * 2000, OriginalTooManyBytes, 0),  # refused from the headers, body unread
        (0, b"", EmptyOriginal, 0),
        (10, b"x" * 2000, OriginalTooManyBytes, 1001),  # headers lied: at most limit + 1 read
        (900, b"x" * 300, StorageUnavailable, 900),  # cut short
    ],
    ids=["oversized", "empty", "longer than said", "truncated"],
)
def test_get_original_refuses_from_headers_and_reads_at_most_the_limit(
    content_length: int, body: bytes, error: type[ServiceError], most_read: int
) -> None:
    stream = CountingStream(body)
    with pytest.raises(error):
        stubbed_get(content_length, stream, max_bytes=1000)
    assert stream.bytes_read <= most_read
