"""Lazy getters for settings, the S3 client and the service.

Nothing is built at import time (cold starts pay only for what a request
uses) and tests can swap any piece by calling :func:`reset`.  A lock makes
the first build happen once: `chalice local` serves requests on threads, and
boto3's default session is not safe to build clients from concurrently.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import boto3
from botocore.config import Config

from chalicelib.catalog import Catalog
from chalicelib.config import Settings
from chalicelib.errors import Misconfigured
from chalicelib.lifecycle import CdnInvalidator, Notifier, OriginalLifecycle, Purger, Rechecker
from chalicelib.service import ResizeService
from chalicelib.storage import ImageStore
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


@_built_once
def get_s3_client() -> Any:
    settings = get_settings()
    config = Config(
        connect_timeout=settings.s3_connect_timeout,
        read_timeout=settings.s3_read_timeout,
        # Standard mode retries throttling, 5xx and timeouts with jittered backoff.
        retries={"mode": "standard", "total_max_attempts": settings.s3_max_attempts},
        # Local S3 servers answer on one host, not <bucket>.host.
        s3={"addressing_style": "path"} if settings.s3_endpoint_url else None,
        # Presigned upload forms are signed like requests: SigV4, in the function's region.
        signature_version="s3v4",
    )
    return boto3.client("s3", endpoint_url=settings.s3_endpoint_url, config=config)


@_built_once
def get_service() -> ResizeService:
    settings = get_settings()
    client = get_s3_client()
    return ResizeService(
        settings, ImageStore(client, settings.bucket), ImageStore(client, settings.originals)
    )


@_built_once
def get_uploads() -> UploadService:
    return UploadService(get_settings(), get_s3_client())


def _aws_config() -> Config:
    settings = get_settings()
    return Config(
        connect_timeout=settings.s3_connect_timeout,
        read_timeout=settings.s3_read_timeout,
        retries={"mode": "standard", "total_max_attempts": settings.s3_max_attempts},
    )


@_built_once
def get_catalog() -> Catalog:
    """The metadata store; AWS_ENDPOINT_URL_DYNAMODB points boto3 at a local one."""
    table = get_settings().metadata_table
    if not table:
        raise Misconfigured("metadata is not configured", "METADATA_TABLE is not set")
    return Catalog(boto3.client("dynamodb", config=_aws_config()), table)


@_built_once
def get_lifecycle() -> OriginalLifecycle:
    settings = get_settings()
    client = get_s3_client()
    variants = ImageStore(client, settings.bucket)
    cdn = (
        CdnInvalidator(
            boto3.client("cloudfront", config=_aws_config()), settings.cdn_distribution_id
        )
        if settings.cdn_distribution_id
        else None
    )
    notifier = (
        Notifier(boto3.client("sns", config=_aws_config()), settings.notify_topic_arn)
        if settings.notify_topic_arn
        else None
    )
    rechecker = (
        Rechecker(
            boto3.client("sqs", config=_aws_config()),
            settings.events_queue_url,
            settings.recheck_delay_seconds,
        )
        if settings.events_queue_url
        else None
    )
    return OriginalLifecycle(
        settings,
        ImageStore(client, settings.originals),
        get_service(),
        get_catalog(),
        Purger(variants, cdn, in_flight_seconds=settings.recheck_delay_seconds),
        notifier,
        rechecker,
    )


def reset() -> None:
    """Forget everything built so far (tests change the environment between cases)."""
    for getter in (
        get_settings,
        get_s3_client,
        get_service,
        get_uploads,
        get_catalog,
        get_lifecycle,
    ):
        getter.cache_clear()
