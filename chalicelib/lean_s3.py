"""A lean S3 client for the miss path: the few calls a miss makes, as signed urllib3 requests.

botocore spends 2.5–4.5 ms of CPU on each call (event hooks, the user agent
rebuilt per call, the parameter model, the endpoint ruleset, the response
parser): ~25 of the ~27 ms a miss adds to its render, for its 5–6 calls.  Here
HEAD, GET, PUT and LIST are plain urllib3 requests signed by botocore's own
S3SigV4Auth (about a third of botocore's CPU a call), taking boto3's keyword
names and giving boto3's answer shapes, errors and standard-mode retries, so
ImageStore cannot tell it from the boto3 client.  Everything else
(delete_object, copy_object, delete_objects, presigned posts, ``meta``) is
delegated to the wrapped client.
"""

from __future__ import annotations

import http.client
import random
import ssl
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import botocore
import urllib3
from botocore import exceptions as boto
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest, AWSResponse
from botocore.httpsession import get_cert_path
from botocore.retries import standard
from botocore.utils import check_dns_name
from urllib3 import exceptions as u3

from chalicelib.config import Settings
from chalicelib.storage import S3_WORKERS
from chalicelib.wiring import timestamp

_META = "x-amz-meta-"
_HEADERS: dict[str, tuple[str, Callable[[str], Any]]] = {
    "Content-Length": ("ContentLength", int),
    "ETag": ("ETag", str),
    "Last-Modified": ("LastModified", timestamp),
    "Content-Type": ("ContentType", str),
}
_TRANSPORT_ERRORS: tuple[tuple[type[Exception], type[boto.BotoCoreError]], ...] = (
    (u3.NewConnectionError, boto.EndpointConnectionError),
    (u3.ConnectTimeoutError, boto.ConnectTimeoutError),
    (u3.ReadTimeoutError, boto.ReadTimeoutError),
    (u3.SSLError, boto.SSLError),
    (u3.ProtocolError, boto.ConnectionClosedError),
)
_USER_AGENT = f"image-resizer-lean-s3 botocore/{botocore.__version__}"
# botocore's own standard-mode checks (5xx, timeouts, connection errors,
# throttling codes, 429) and backoff; no operation model, so no modeled errors.
_RETRYABLE = standard.OrRetryChecker(
    [
        standard.TransientRetryableChecker(),
        standard.ThrottledRetryableChecker(),
        standard.ThrottlingStatusCodeChecker(),
    ]
)


class LeanS3Client:
    """boto3's S3 client for HEAD, GET, PUT and LIST without botocore's per-call machinery."""

    def __init__(
        self,
        client: Any,
        credentials: Any,
        settings: Settings,
        *,
        endpoint_url: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
        jitter: Callable[[], float] = random.random,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._client = client
        self._credentials = credentials
        self._region = client.meta.region_name
        self._path_endpoint = (endpoint_url or settings.s3_endpoint_url or "").rstrip("/")
        self._endpoint = urlsplit(client.meta.endpoint_url)
        self._attempts = settings.s3_max_attempts
        self._backoff = standard.ExponentialBackoff(
            random=jitter, throttling_detector=standard.ThrottlingErrorDetector(None)
        )
        self._sleep = sleep
        # botocore's CA bundle parsed once (``ssl_context``: the wrapped client's, already
        # holding it), only for HTTPS; enough connections that no S3_CALLS worker waits.
        https = (self._path_endpoint or client.meta.endpoint_url).startswith("https:")
        if https and ssl_context is None:
            ssl_context = ssl.create_default_context(cafile=get_cert_path(True))
        self._http = urllib3.PoolManager(
            maxsize=S3_WORKERS,
            ssl_context=ssl_context,
            retries=False,  # counted here, as botocore counts them
            timeout=urllib3.Timeout(
                connect=settings.s3_connect_timeout, read=settings.s3_read_timeout
            ),
        )

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def head_object(self, *, Bucket: str, Key: str) -> dict[str, Any]:
        """boto3's head_object."""
        return _object_answer(self._send("HeadObject", "HEAD", Bucket, Key))

    def get_object(self, *, Bucket: str, Key: str) -> dict[str, Any]:
        """boto3's get_object: the body streams, and closing it unread drops the connection."""
        response = self._send("GetObject", "GET", Bucket, Key, stream=True)
        return {**_object_answer(response), "Body": _Body(response)}

    def put_object(
        self,
        *,
        Bucket: str,
        Key: str,
        Body: bytes,
        ContentType: str,
        CacheControl: str,
        IfNoneMatch: str | None = None,
        WebsiteRedirectLocation: str | None = None,
        Metadata: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """boto3's put_object, for a body in memory (so a retry can send it again)."""
        headers = {"Content-Type": ContentType, "Cache-Control": CacheControl}
        if IfNoneMatch is not None:
            headers["If-None-Match"] = IfNoneMatch
        if WebsiteRedirectLocation is not None:
            headers["x-amz-website-redirect-location"] = WebsiteRedirectLocation
        headers.update({_META + name: value for name, value in (Metadata or {}).items()})
        response = self._send("PutObject", "PUT", Bucket, Key, headers=headers, body=Body)
        return {"ETag": response.headers.get("ETag", "")}

    def list_objects_v2(
        self,
        *,
        Bucket: str,
        Prefix: str,
        MaxKeys: int | None = None,
        ContinuationToken: str | None = None,
    ) -> dict[str, Any]:
        """boto3's list_objects_v2; keys come plain (no encoding-type=url asked for)."""
        query = {"list-type": "2", "prefix": Prefix}
        if MaxKeys is not None:
            query["max-keys"] = str(MaxKeys)
        if ContinuationToken is not None:
            query["continuation-token"] = ContinuationToken
        root = ET.fromstring(self._send("ListObjectsV2", "GET", Bucket, query=query).data)
        # The root's namespace, whichever it is: S3's, or s3rver's misspelling of it
        # (doc.s3.amazonaws.com); botocore reads the names alone.
        ns = root.tag[: root.tag.find("}") + 1]
        answer: dict[str, Any] = {
            "IsTruncated": root.findtext(f"{ns}IsTruncated") == "true",
            "KeyCount": int(root.findtext(f"{ns}KeyCount") or 0),
        }
        contents = [
            {
                "Key": item.findtext(f"{ns}Key") or "",
                "LastModified": timestamp(item.findtext(f"{ns}LastModified")),
                "ETag": item.findtext(f"{ns}ETag") or "",
                "Size": int(item.findtext(f"{ns}Size") or 0),
            }
            for item in root.iterfind(f"{ns}Contents")
        ]
        if contents:
            answer["Contents"] = contents
        if answer["IsTruncated"]:
            answer["NextContinuationToken"] = root.findtext(f"{ns}NextContinuationToken")
        return answer

    def url(self, bucket: str, key: str = "", query: Mapping[str, str] | None = None) -> str:
        """The URL botocore would send: path style for a local S3 or a non-DNS name, else
        virtual-hosted."""
        path = quote(key, safe="/~")
        # Path style: a local S3 answers on one host, and check_dns_name refuses a dotted
        # bucket (no TLS name matches it), as botocore does.
        if self._path_endpoint or not check_dns_name(bucket):
            base = self._path_endpoint or f"{self._endpoint.scheme}://{self._endpoint.netloc}"
            url = f"{base}/{bucket}" + (f"/{path}" if key else "")
        else:
            url = f"{self._endpoint.scheme}://{bucket}.{self._endpoint.netloc}/{path}"
        return url + ("?" + urlencode(query, quote_via=quote, safe="") if query else "")

    def _send(
        self,
        operation: str,
        method: str,
        bucket: str,
        key: str = "",
        *,
        query: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        body: bytes = b"",
        stream: bool = False,
    ) -> Any:
        """The 2xx answer, after up to ``s3_max_attempts`` tries; else botocore's exception."""
        url = self.url(bucket, key, query)
        for attempt in range(1, self._attempts + 1):
            request = AWSRequest(method, url, {"User-Agent": _USER_AGENT, **(headers or {})}, body)
            frozen = self._credentials.get_frozen_credentials()  # refreshes when due
            S3SigV4Auth(frozen, "s3", self._region).add_auth(request)
            try:
                response = self._http.request(
                    method,
                    url,
                    body=body or None,
                    headers=dict(request.headers.items()),
                    preload_content=not stream,
                    decode_content=False,  # the stored bytes, as botocore reads them
                    redirect=False,
                )
            except u3.HTTPError as err:
                error: Exception = _transport_error(err, url)
                context = standard.RetryContext(attempt, caught_exception=error)
            else:
                if response.status < 300:
                    return response
                parsed = _error(response)
                error = boto.ClientError(parsed, operation)  # type: ignore[arg-type]
                context = standard.RetryContext(
                    attempt,
                    parsed_response=parsed,
                    http_response=AWSResponse(url, response.status, response.headers, None),
                )
            if attempt == self._attempts or not _RETRYABLE.is_retryable(context):
                raise error
            self._sleep(self._backoff.delay_amount(context))
        raise AssertionError("unreachable: the last attempt returns or raises")


class _Body:
    """A GET's body as botocore's StreamingBody reads and closes it."""

    def __init__(self, response: Any) -> None:
        self._response = response

    def read(self, amt: int | None = None) -> bytes:
        try:
            return bytes(self._response.read(amt, decode_content=False))
        except u3.ReadTimeoutError as err:
            raise boto.ReadTimeoutError(endpoint_url=self._response.geturl(), error=err) from err
        except u3.HTTPError as err:
            raise boto.ResponseStreamingError(error=err) from err

    def close(self) -> None:
        self._response.close()  # an unread body is dropped with its connection, never drained
        self._response.release_conn()  # the pool's slot back; it reconnects when next used


def _object_answer(response: Any) -> dict[str, Any]:
    """head_object's answer from the headers (HEAD and GET alike); an absent header, no key."""
    headers = response.headers
    answer = {
        field: parse(headers[name]) for name, (field, parse) in _HEADERS.items() if name in headers
    }
    answer["Metadata"] = {
        name[len(_META) :].lower(): value
        for name, value in headers.items()
        if name.lower().startswith(_META)
    }
    return answer


def _error(response: Any) -> dict[str, Any]:
    """botocore's parse of an S3 error: the XML's fields, or the status alone (a HEAD's)."""
    data = response.data if response.data is not None else b""
    response.release_conn()
    status = response.status
    metadata = {
        "RequestId": response.headers.get("x-amz-request-id", ""),
        "HostId": response.headers.get("x-amz-id-2", ""),
        "HTTPStatusCode": status,
    }
    fields: dict[str, str] = {}
    if data.strip() and not data.lstrip().startswith(b"<html>"):
        try:
            root = ET.fromstring(data)
        except ET.ParseError:
            root = None
        if root is not None and root.tag == "Error":
            fields = {child.tag: child.text or "" for child in root}
            fields.pop("RequestId", None)
            fields.pop("HostId", None)
    if "Code" not in fields:
        fields = {"Code": str(status), "Message": http.client.responses.get(status, "")}
    return {"Error": fields, "ResponseMetadata": metadata}


def _transport_error(err: Exception, url: str) -> Exception:
    """urllib3's failure as botocore's URLLib3Session raises it."""
    for theirs, ours in _TRANSPORT_ERRORS:  # first match: NewConnectionError is a ConnectTimeout
        if isinstance(err, theirs):
            return ours(endpoint_url=url, error=err)
    return boto.HTTPClientError(error=err)
