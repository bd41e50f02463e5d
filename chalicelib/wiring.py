"""The wiring: lazy getters that build settings, AWS clients and the services from them.

Nothing is imported or built at import time: a health check loads neither
boto3 nor Pillow, and a request refused before any I/O (a 4xx) builds no S3
client, since the service's stores reach the client through LazyClient.  The
resize service's stores call S3 through chalicelib/lean_s3.py (a miss's calls
without botocore's per-call CPU); uploads and everything else use boto3.
Tests can swap any piece by calling :func:`reset`.  A lock makes the first
build happen once: `chalice local` serves requests on threads, and boto3's
default session is not safe to build clients from concurrently.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from chalicelib.config import Settings
from chalicelib.errors import Misconfigured

if TYPE_CHECKING:
    from chalicelib.originals.lifecycle import OriginalLifecycle
    from chalicelib.originals.metadata import MetadataStore
    from chalicelib.resize.service import ResizeService
    from chalicelib.uploads import UploadService

T = TypeVar("T")
_build_lock = threading.RLock()


def _built_once(build: Callable[[], T]) -> functools._lru_cache_wrapper[T]:
    cached = functools.cache(build)

    @functools.wraps(build)
    def getter() -> T:
        with _build_lock:  # re-entrant: get_service builds the other two
            return cached()

    getter.cache_clear = cached.cache_clear  # type: ignore[attr-defined]
    return getter  # type: ignore[return-value]


@_built_once
def get_settings() -> Settings:
    return Settings.from_env()


def get_s3_client() -> Any:
    return _s3_client_and_tls()[0]


@_built_once
def _s3_client_and_tls() -> tuple[Any, Any]:
    """The boto3 S3 client, and its TLS context once it holds the CA bundle (else None)."""
    settings = get_settings()
    config = _client_config(
        # Local S3 servers answer on one host, not <bucket>.host.
        s3={"addressing_style": "path"} if settings.s3_endpoint_url else None,
        # Presigned upload forms are signed like requests: SigV4, in the function's region.
        signature_version="s3v4",
    )
    client = get_session().client("s3", endpoint_url=settings.s3_endpoint_url, config=config)
    return client, load_certificates_once(client)


def load_certificates_once(client: Any) -> Any:
    """Load the CA bundle into the client's TLS context once, not for every new connection.

    botocore hands urllib3 the bundle's path for each connection pool, and
    urllib3 then parses the whole file into the shared context again for
    every connection it opens (~14 ms of CPU here; a cold miss opens three).
    Loaded once up front, the pools are given no path: verification is
    unchanged (CERT_REQUIRED, hostname checked), the context already trusts
    the same bundle.  Reaches into botocore's URLLib3Session; when its
    internals differ, nothing is changed.  The context, or None if unchanged
    (the lean client verifies with the same one: the bundle costs ~23 ms of
    CPU to parse).
    """
    from botocore.httpsession import URLLib3Session, get_cert_path

    session = getattr(getattr(client, "_endpoint", None), "http_session", None)
    manager = getattr(session, "_manager", None)
    context = getattr(manager, "connection_pool_kw", {}).get("ssl_context")
    verify = getattr(session, "_verify", None)
    https = str(getattr(client.meta, "endpoint_url", "")).startswith("https:")
    if not https or not isinstance(session, URLLib3Session) or context is None or not verify:
        return None  # plain HTTP (a local S3) loads no bundle at all
    context.load_verify_locations(cafile=get_cert_path(verify))
    set_up = session._setup_ssl_cert

    def without_bundle_path(conn: Any, url: str, verify: Any) -> None:
        set_up(conn, url, verify)
        conn.ca_certs = None  # already in the context

    session._setup_ssl_cert = without_bundle_path  # type: ignore[method-assign]
    return context


@_built_once
def get_service() -> ResizeService:
    from chalicelib.resize.service import ResizeService
    from chalicelib.storage import ImageStore

    settings = get_settings()
    client = LazyClient(get_miss_client)
    return ResizeService(
        settings, ImageStore(client, settings.bucket), ImageStore(client, settings.originals)
    )


@_built_once
def get_uploads() -> UploadService:
    from chalicelib.uploads import UploadService

    return UploadService(get_settings(), LazyClient())


@_built_once
def get_miss_client() -> Any:
    """The resize service's S3 client: a LeanS3Client over get_s3_client's.

    With TRACE_AWS_CALLS it is get_s3_client's itself: X-Ray's patch of
    botocore sees only botocore's calls, and a traced miss should show all.
    """
    settings = get_settings()
    if settings.trace_aws_calls:
        return get_s3_client()
    from chalicelib.lean_s3 import LeanS3Client

    client, tls = _s3_client_and_tls()
    return LeanS3Client(client, get_session().get_credentials(), settings, ssl_context=tls)


class LazyClient:
    """An S3 client built on the first call made through it (by ``build``)."""

    def __init__(self, build: Callable[[], Any] = get_s3_client) -> None:
        self._build = build

    def __getattr__(self, name: str) -> Any:
        return getattr(self._build(), name)


def aws_client(service: str) -> Any:
    """A client for another AWS service, with the S3 client's timeouts and retries.

    ``AWS_ENDPOINT_URL_<SERVICE>`` points it at a local endpoint (botocore reads it).
    """
    return get_session().client(service, config=_client_config())


@_built_once
def get_session() -> Any:
    """The boto3 session every client comes from, its timestamps parsed by :func:`timestamp`.

    With TRACE_AWS_CALLS (the stack's ``Tracing`` parameter set to ``Active``),
    botocore is patched first, so every AWS call is an X-Ray subsegment; the
    X-Ray SDK is imported only then.
    """
    import boto3  # ~120 ms of CPU: only once a request needs AWS
    import botocore.session

    if get_settings().trace_aws_calls:
        from aws_xray_sdk.core import patch

        patch(("botocore",))
    session = botocore.session.get_session()
    session.get_component("response_parser_factory").set_parser_defaults(timestamp_parser=timestamp)
    return boto3.session.Session(botocore_session=session)


def timestamp(value: Any) -> Any:
    """An AWS timestamp as an aware datetime: ISO 8601 and HTTP dates without dateutil.

    botocore's default parser tries dateutil's general parser first (~0.5 ms of
    CPU per value; a HEAD has one, a LIST one per key).  S3's two forms are
    parsed by the standard library here; anything else goes to botocore's.
    """
    from email.utils import parsedate_to_datetime  # ~35 ms to import: not at cold start

    from botocore.utils import parse_timestamp

    if isinstance(value, str) and value:
        try:
            if value[0].isdigit() and "T" in value:
                parsed = datetime.fromisoformat(value)  # 2026-12-02T05:08:18.000Z
            else:
                parsed = parsedate_to_datetime(value)  # Wed, 02 Dec 2026 05:08:18 GMT
        except (TypeError, ValueError):
            pass
        else:
            if parsed.tzinfo is not None:  # a time without its zone: botocore's reading
                return parsed
    return parse_timestamp(value)


def _client_config(**options: Any) -> Any:
    """Every client's timeouts and retries, from the settings, plus ``options``."""
    from botocore.config import Config

    settings = get_settings()
    return Config(
        connect_timeout=settings.s3_connect_timeout,
        read_timeout=settings.s3_read_timeout,
        # Standard mode retries throttling, 5xx and timeouts with jittered backoff.
        retries={"mode": "standard", "total_max_attempts": settings.s3_max_attempts},
        # No CRC32 of every body sent or read unless the operation requires one
        # (botocore >= 1.36 computes them by default); TLS already guards the bytes.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        **options,
    )


@_built_once
def get_metadata_store() -> MetadataStore:
    from chalicelib.originals.metadata import MetadataStore

    table = get_settings().metadata_table
    if not table:
        raise Misconfigured("metadata is not configured", "METADATA_TABLE is not set")
    return MetadataStore(aws_client("dynamodb"), table)


@_built_once
def get_lifecycle() -> OriginalLifecycle:
    from chalicelib.originals.lifecycle import OriginalLifecycle
    from chalicelib.originals.notify import Notifier
    from chalicelib.originals.purge import CdnInvalidator, Purger, Rechecker
    from chalicelib.storage import ImageStore

    settings = get_settings()
    client = LazyClient()
    cdn = (
        CdnInvalidator(aws_client("cloudfront"), settings.cdn_distribution_id)
        if settings.cdn_distribution_id
        else None
    )
    notifier = (
        Notifier(aws_client("sns"), settings.notify_topic_arn)
        if settings.notify_topic_arn
        else None
    )
    rechecker = (
        Rechecker(aws_client("sqs"), settings.events_queue_url, settings.recheck_delay_seconds)
        if settings.events_queue_url
        else None
    )
    return OriginalLifecycle(
        settings,
        ImageStore(client, settings.originals),
        get_service(),
        get_metadata_store(),
        Purger(
            ImageStore(client, settings.bucket),
            cdn,
            in_flight_seconds=settings.recheck_delay_seconds,
        ),
        notifier,
        rechecker,
    )


def reset() -> None:
    """Forget everything built so far (tests change the environment between cases)."""
    for getter in (
        get_settings,
        get_session,
        _s3_client_and_tls,
        get_miss_client,
        get_service,
        get_uploads,
        get_metadata_store,
        get_lifecycle,
    ):
        getter.cache_clear()
