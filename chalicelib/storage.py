"""S3 objects behind a tiny interface: the originals bucket and the variants bucket alike."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from chalicelib.aws import aws_errors
from chalicelib.errors import (
    EmptyOriginal,
    OriginalNotFound,
    OriginalTooManyBytes,
    StorageUnavailable,
)

_STORAGE = "storage"
T = TypeVar("T")

# A miss's look-ups (the ledger's LIST, the original's GET) are independent;
# made concurrently they cost one S3 round trip instead of two, and the
# ledger claim's PUT and the original's HEAD overlap the render.  Threads
# start on first use and are kept (the S3 clients are thread-safe).
S3_WORKERS = 8
S3_CALLS = ThreadPoolExecutor(max_workers=S3_WORKERS, thread_name_prefix="s3-call")
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
    metadata: Mapping[str, str] = field(default_factory=dict)  # x-amz-meta-*, names lowercased


@dataclass(frozen=True)
class ObjectInfo:
    size: int
    etag: str
    last_modified: datetime
    metadata: Mapping[str, str] = field(default_factory=dict)  # x-amz-meta-*, names lowercased
    content_type: str = ""


class ImageStore:
    """Reads originals and writes variants in one bucket."""

    def __init__(self, client: Any, bucket: str) -> None:
        self._client = client
        self._bucket = bucket

    def head(self, key: str) -> ObjectInfo | None:
        """Size, ETag and age of an object, or None if there is none."""
        with aws_errors(_STORAGE, expect=_MISSING) as missing:
            response = self._client.head_object(Bucket=self._bucket, Key=key)
        if missing:
            return None
        return ObjectInfo(
            response["ContentLength"],
            response["ETag"],
            response["LastModified"],
            _metadata(response),
            response.get("ContentType", ""),
        )

    def replace_metadata(self, key: str, info: ObjectInfo, metadata: Mapping[str, str]) -> None:
        """Give the object ``info`` describes new metadata: S3 copies it onto itself.

        The bytes, and so the ETag of a single-part upload, stay; the copy is an
        ObjectCreated:Copy event like any write.  Only if the object is still the
        version ``info`` describes (``CopySourceIfMatch``): a replacement is
        never overwritten with the old bytes.
        """
        with aws_errors(_STORAGE, expect=_MISSING | {"PreconditionFailed"}) as missing:
            self._client.copy_object(
                Bucket=self._bucket,
                Key=key,
                CopySource={"Bucket": self._bucket, "Key": key},
                CopySourceIfMatch=info.etag,
                MetadataDirective="REPLACE",
                Metadata=dict(metadata),
                ContentType=info.content_type or "application/octet-stream",
            )
        if missing:
            raise OriginalNotFound("the original changed or went meanwhile", key) from missing.error

    def get_original(self, key: str, max_bytes: int) -> Original:
        """An original's bytes and ETag in one streaming GET, its size checked before reading.

        The size, the bytes and the ETag all come from this one response, so
        no replacement of the object can slip between measuring and reading.
        An oversized original is refused from ``Content-Length`` with the body
        unread (its connection is closed); at most ``max_bytes + 1`` bytes are
        ever read, and a body shorter than its ``Content-Length`` is an error.
        """
        with aws_errors(_STORAGE, expect=_MISSING) as missing:
            return _read_original(self._client.get_object(Bucket=self._bucket, Key=key), max_bytes)
        raise OriginalNotFound("the original image does not exist", key) from missing.error

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
        with aws_errors(_STORAGE, expect=_ALREADY_WRITTEN) as written:
            self._put(key, body, content_type, cache_control, IfNoneMatch="*", **options)
        return not written

    def put(self, key: str, body: bytes, *, content_type: str, cache_control: str) -> None:
        """Write the whole object in one request, replacing any: it is written now."""
        with aws_errors(_STORAGE):
            self._put(key, body, content_type, cache_control)

    def _put(
        self, key: str, body: bytes, content_type: str, cache_control: str, **options: Any
    ) -> None:
        self._client.put_object(
            Bucket=self._bucket,
            Key=key,
            Body=body,
            ContentType=content_type,
            CacheControl=cache_control,
            **options,
        )

    def delete(self, key: str) -> None:
        """Remove an object (nothing happens if there is none)."""
        with aws_errors(_STORAGE):
            self._client.delete_object(Bucket=self._bucket, Key=key)

    def delete_many(self, keys: Iterable[str]) -> None:
        """Remove objects, a thousand a request; any key S3 could not delete is an error."""
        batch = list(dict.fromkeys(keys))
        for start in range(0, len(batch), DELETE_BATCH):
            objects = [{"Key": key} for key in batch[start : start + DELETE_BATCH]]
            with aws_errors(_STORAGE):
                response = self._client.delete_objects(
                    Bucket=self._bucket, Delete={"Objects": objects, "Quiet": True}
                )
            if response.get("Errors"):
                raise StorageUnavailable(
                    "storage is unavailable, try again", repr(response["Errors"][:5])
                )

    def list_all(self, prefix: str) -> dict[str, datetime]:
        """Every key under ``prefix`` (the prefix removed) → when it was written; all pages."""
        found: dict[str, datetime] = {}
        token: dict[str, str] = {}
        while True:
            with aws_errors(_STORAGE):
                response = self._client.list_objects_v2(Bucket=self._bucket, Prefix=prefix, **token)
            for item in response.get("Contents", []):
                found[item["Key"][len(prefix) :]] = item["LastModified"]
            if not response.get("IsTruncated"):
                return found
            token = {"ContinuationToken": response["NextContinuationToken"]}

    def list_names(self, prefix: str, limit: int) -> list[str]:
        """Up to ``limit`` key names under ``prefix``, the prefix removed (one LIST request)."""
        with aws_errors(_STORAGE):
            response = self._client.list_objects_v2(
                Bucket=self._bucket, Prefix=prefix, MaxKeys=limit
            )
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
    return Original(data, response["ETag"], _metadata(response))


def _metadata(response: dict[str, Any]) -> dict[str, str]:
    """An object's ``x-amz-meta-*``, names lowercased."""
    return {name.lower(): value for name, value in response.get("Metadata", {}).items()}


def started(call: Callable[..., T], *args: Any, **kwargs: Any) -> Future[T]:
    """``call`` running on the S3 threads, returned once it has begun (not finished)."""
    begun = threading.Event()

    def run() -> T:
        begun.set()
        return call(*args, **kwargs)

    future = S3_CALLS.submit(run)
    begun.wait()
    return future
