"""Storage: the image bucket behind a tiny interface, over a boto3 S3 client."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.errors import (
    EmptyOriginal,
    OriginalNotFound,
    OriginalTooManyBytes,
    StorageUnavailable,
)

# S3 says "this object is not there" with any of these error codes.
_MISSING = frozenset({"NoSuchKey", "404", "NotFound"})
# A conditional write lost: the object exists (412) or another write is under way (409).
_ALREADY_WRITTEN = frozenset({"PreconditionFailed", "ConditionalRequestConflict"})


# S3's DeleteObjects takes at most this many keys a request.
DELETE_BATCH = 1000


@dataclass(frozen=True)
class Original:
    body: bytes
    etag: str


@dataclass(frozen=True)
class ObjectInfo:
    size: int
    etag: str
    last_modified: datetime
    metadata: Mapping[str, str] = field(default_factory=dict)  # x-amz-meta-*, names lowercased


class ImageStore:
    """Reads originals and writes variants in one bucket."""

    def __init__(self, client: Any, bucket: str) -> None:
        self._client = client
        self._bucket = bucket

    def head(self, key: str) -> ObjectInfo | None:
        """Size, ETag and age of an object, or None if there is none."""
        try:
            response = self._client.head_object(Bucket=self._bucket, Key=key)
        except ClientError as err:
            if error_code(err) in _MISSING:
                return None
            raise _unavailable(err) from err
        except BotoCoreError as err:
            raise _unavailable(err) from err
        return ObjectInfo(
            response["ContentLength"],
            response["ETag"],
            response["LastModified"],
            {name.lower(): value for name, value in response.get("Metadata", {}).items()},
        )

    def get_original(self, key: str, max_bytes: int) -> Original:
        """An original's bytes and ETag in one streaming GET, its size checked before reading.

        The size, the bytes and the ETag all come from this one response, so
        no replacement of the object can slip between measuring and reading.
        An oversized original is refused from ``Content-Length`` with the body
        unread (its connection is closed); at most ``max_bytes + 1`` bytes are
        ever read, and a body shorter than its ``Content-Length`` is an error.
        """
        try:
            response = self._client.get_object(Bucket=self._bucket, Key=key)
            return _read_original(response, max_bytes)
        except ClientError as err:
            if error_code(err) in _MISSING:
                raise OriginalNotFound("the original image does not exist", key) from err
            raise _unavailable(err) from err
        except BotoCoreError as err:
            raise _unavailable(err) from err

    def put_new(
        self,
        key: str,
        body: bytes,
        *,
        content_type: str,
        cache_control: str,
        redirect_to: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> bool:
        """Write the whole object in one request unless it exists; False if it did.

        One PUT: S3 never shows a partial object.  ``If-None-Match: *`` means a
        stored variant is never overwritten; S3 servers that ignore it just
        write the same bytes again.  With ``redirect_to`` the object is a
        website redirect: the website endpoint answers it with a 301 there.
        """
        options: dict[str, Any] = {"WebsiteRedirectLocation": redirect_to} if redirect_to else {}
        if metadata:
            options["Metadata"] = dict(metadata)
        try:
            self._client.put_object(
                Bucket=self._bucket,
                Key=key,
                Body=body,
                ContentType=content_type,
                CacheControl=cache_control,
                IfNoneMatch="*",
                **options,
            )
        except ClientError as err:
            if error_code(err) in _ALREADY_WRITTEN:
                return False
            raise _unavailable(err) from err
        except BotoCoreError as err:
            raise _unavailable(err) from err
        return True

    def delete(self, key: str) -> None:
        """Remove an object (nothing happens if there is none)."""
        try:
            self._client.delete_object(Bucket=self._bucket, Key=key)
        except (ClientError, BotoCoreError) as err:
            raise _unavailable(err) from err

    def delete_many(self, keys: Iterable[str]) -> None:
        """Remove objects, a thousand a request; any key S3 could not delete is an error."""
        batch = list(dict.fromkeys(keys))
        for start in range(0, len(batch), DELETE_BATCH):
            objects = [{"Key": key} for key in batch[start : start + DELETE_BATCH]]
            try:
                response = self._client.delete_objects(
                    Bucket=self._bucket, Delete={"Objects": objects, "Quiet": True}
                )
            except (ClientError, BotoCoreError) as err:
                raise _unavailable(err) from err
            if response.get("Errors"):
                raise StorageUnavailable(
                    "storage is unavailable, try again", repr(response["Errors"][:5])
                )

    def list_all(self, prefix: str) -> dict[str, datetime]:
        """Every key under ``prefix`` (the prefix removed) → when it was written; all pages."""
        found: dict[str, datetime] = {}
        token: dict[str, str] = {}
        while True:
            try:
                response = self._client.list_objects_v2(Bucket=self._bucket, Prefix=prefix, **token)
            except (ClientError, BotoCoreError) as err:
                raise _unavailable(err) from err
            for item in response.get("Contents", []):
                found[item["Key"][len(prefix) :]] = item["LastModified"]
            if not response.get("IsTruncated"):
                return found
            token = {"ContinuationToken": response["NextContinuationToken"]}

    def list_names(self, prefix: str, limit: int) -> list[str]:
        """Up to ``limit`` key names under ``prefix``, the prefix removed (one LIST request)."""
        try:
            response = self._client.list_objects_v2(
                Bucket=self._bucket, Prefix=prefix, MaxKeys=limit
            )
        except (ClientError, BotoCoreError) as err:
            raise _unavailable(err) from err
        return [item["Key"][len(prefix) :] for item in response.get("Contents", [])]


def _read_original(response: dict[str, Any], max_bytes: int) -> Original:
    body = response["Body"]
    size = int(response["ContentLength"])
    if size > max_bytes:
        body.close()  # the body stays unread: the connection is dropped, not drained
        raise OriginalTooManyBytes(f"the original is {size} bytes, over the limit of {max_bytes}")
    if size == 0:
        body.close()
        raise EmptyOriginal("the original is empty")
    data = body.read(max_bytes + 1)
    if len(data) > max_bytes:
        body.close()
        raise OriginalTooManyBytes(f"the original is larger than {max_bytes} bytes")
    if len(data) != size:
        raise StorageUnavailable(
            "the original was cut short while reading it, try again",
            f"{len(data)} of {size} bytes",
        )
    return Original(data, response["ETag"])


def error_code(err: ClientError) -> str:
    """S3's error code (``NoSuchKey``, ``SlowDown``, ...): told apart by it, never by text."""
    return str(err.response.get("Error", {}).get("Code", ""))


def _unavailable(err: Exception) -> StorageUnavailable:
    return StorageUnavailable("storage is unavailable, try again", repr(err))
