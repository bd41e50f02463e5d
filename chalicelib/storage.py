"""Storage: the image bucket behind a tiny interface, over a boto3 S3 client."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.errors import OriginalNotFound, StorageUnavailable

# S3 says "this object is not there" with any of these error codes.
_MISSING = frozenset({"NoSuchKey", "404", "NotFound"})


class ImageStore:
    """Reads originals and writes variants in one bucket."""

    def __init__(self, client: Any, bucket: str) -> None:
        self._client = client
        self._bucket = bucket

    def get(self, key: str) -> bytes:
        """The object's bytes; OriginalNotFound if there is none."""
        try:
            response = self._client.get_object(Bucket=self._bucket, Key=key)
            return response["Body"].read()
        except ClientError as err:
            if _error_code(err) in _MISSING:
                raise OriginalNotFound("the original image does not exist", key) from err
            raise StorageUnavailable("storage is unavailable, try again", repr(err)) from err
        except BotoCoreError as err:
            raise StorageUnavailable("storage is unavailable, try again", repr(err)) from err

    def put(self, key: str, body: bytes, *, content_type: str, cache_control: str) -> None:
        """Write the whole object in one request: S3 never shows a partial object."""
        try:
            self._client.put_object(
                Bucket=self._bucket,
                Key=key,
                Body=body,
                ContentType=content_type,
                CacheControl=cache_control,
            )
        except (ClientError, BotoCoreError) as err:
            raise StorageUnavailable("storage is unavailable, try again", repr(err)) from err


def _error_code(err: ClientError) -> str:
    return str(err.response.get("Error", {}).get("Code", ""))
