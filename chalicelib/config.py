"""Settings, read once from the environment into a frozen, validated value.

Every key is documented in docs/configuration.md.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from chalicelib.errors import Misconfigured, ServiceError
from chalicelib.imaging.limits import ImagingLimits
from chalicelib.resize.grammar import ResizeSpec, parse_size
from chalicelib.resize.ledger import MAX_BUDGET
from chalicelib.resize.negotiate import auto_targets

# Variants: the CDN keeps them a year (an overwrite or delete invalidates its
# paths); browsers revalidate after VARIANT_BROWSER_MAX_AGE (an ETag match is a
# 304), since nothing can purge a browser's cache.
CDN_MAX_AGE_SECONDS = 31_536_000
DEFAULT_BROWSER_MAX_AGE_SECONDS = 86_400
# The packaged functions' timeouts (.chalice/config.json; a test compares them).
API_TIMEOUT_SECONDS = 25
EVENTS_TIMEOUT_SECONDS = 120
# A queue's visibility timeout is this many times its function's, as AWS advises
# (infra/resources.json: 720 s; the local poller follows the same rule).
VISIBILITY_PER_FUNCTION_TIMEOUT = 6
# A write of a variant checks the original just before it (resize/variants.py);
# one that lands after an overwrite's purge is at most a function's run away, so
# a second purge this much later (past the longer timeout, with a margin) finds
# it.  SQS delays a message by at most 900 s.
DEFAULT_RECHECK_DELAY_SECONDS = max(API_TIMEOUT_SECONDS, EVENTS_TIMEOUT_SECONDS) + 30
# A warm function reads the active policy document again after this long (docs/watermarks.md).
DEFAULT_POLICY_CACHE_SECONDS = 30
MAX_POLICY_CACHE_SECONDS = 600
# SQS delays a message by at most this much.
MAX_SQS_DELAY_SECONDS = 900
# A lossy variant of a photo at its format's highest quality takes 0.2–0.35 bytes a
# pixel, of noise 1–2.7 (scripts/bench/quality.py): past this, it is refused.
DEFAULT_VARIANT_BYTES_PER_PIXEL = 1
# The queue the events function reads (app.py) and the local stack creates.
EVENTS_QUEUE_NAME = "image-events"
# Rendered as soon as an original arrives: a gallery's thumbnail (on the focal point,
# else the most detailed square) and common widths.
DEFAULT_PRESET_SIZES = "160x160-cover-focus,320x,640x,1280x"
# MAX_DIMENSION's range.
DEFAULT_MAX_DIMENSION = 4096
MAX_MAX_DIMENSION = 16384
MIN_SIGNING_KEY_BYTES = 16
MIN_UPLOAD_TOKEN_CHARS = 12
_UPLOAD_PREFIX = re.compile(r"[a-z][a-z0-9-]{0,62}")
_UPLOAD_PREFIX_SIZE = re.compile(r"x[0-9].*")  # would read as a size token (x200)


class ConfigError(Misconfigured):
    """The environment does not describe a usable deployment."""

    def __init__(self, detail: str) -> None:
        super().__init__("the service is misconfigured", detail)


@dataclass(frozen=True)
class Settings:
    bucket: str
    public_url: str
    s3_endpoint_url: str | None = None
    max_dimension: int = 4096
    allowed_sizes: frozenset[ResizeSpec] | None = None
    imaging: ImagingLimits = field(default_factory=ImagingLimits)
    snap_to_allowed_sizes: bool = False
    signing_keys: tuple[bytes, ...] = ()
    max_variants_per_original: int = 100
    max_source_bytes: int = 40 * 1024 * 1024
    max_variant_bytes_per_pixel: int = DEFAULT_VARIANT_BYTES_PER_PIXEL
    loop_grace_seconds: int = 60
    s3_connect_timeout: int = 2
    s3_read_timeout: int = 10
    s3_max_attempts: int = 3
    # Originals and uploads (docs/uploads.md).  Empty: originals share `bucket`.
    originals_bucket: str = ""
    upload_token: str | None = None
    oidc_issuer: str = ""  # with oidc_client_id: the app verifies sign-in tokens itself
    oidc_client_id: str = ""
    allow_anonymous_uploads: bool = False
    cors_origins: tuple[str, ...] = ()
    upload_expiry_seconds: int = 300
    upload_prefix: str = "uploads"
    # The originals' lifecycle (docs/lifecycle.md).
    metadata_table: str = ""
    notify_topic_arn: str = ""
    preset_sizes: tuple[ResizeSpec, ...] = ()
    keep_gps_metadata: bool = False
    variant_browser_max_age: int = DEFAULT_BROWSER_MAX_AGE_SECONDS
    cdn_distribution_id: str = ""
    events_queue_url: str = ""
    recheck_delay_seconds: int = DEFAULT_RECHECK_DELAY_SECONDS
    trace_aws_calls: bool = False  # X-Ray subsegments for every AWS call (docs/operations.md)
    policy_cache_seconds: int = DEFAULT_POLICY_CACHE_SECONDS

    @property
    def policy_recheck_delay(self) -> int:
        """When to purge again after a policy change: past every cached copy and its last render."""
        return min(
            MAX_SQS_DELAY_SECONDS,
            max(self.recheck_delay_seconds, self.policy_cache_seconds + API_TIMEOUT_SECONDS),
        )

    @property
    def variant_cache_control(self) -> str:
        """Long at the CDN, short in browsers: a purge reaches the first, never the second."""
        return f"public, max-age={self.variant_browser_max_age}, s-maxage={CDN_MAX_AGE_SECONDS}"

    @property
    def originals(self) -> str:
        """The bucket originals are read from (and uploaded to)."""
        return self.originals_bucket or self.bucket

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Settings:
        """Build settings from ``IMAGE_BUCKET``, ``PUBLIC_URL`` and friends."""
        bucket = env.get("IMAGE_BUCKET", "").strip()
        if not bucket:
            raise ConfigError("IMAGE_BUCKET is required")
        max_dimension = _int(
            env, "MAX_DIMENSION", DEFAULT_MAX_DIMENSION, low=1, high=MAX_MAX_DIMENSION
        )
        allowed_sizes = _allowed_sizes(env.get("ALLOWED_SIZES", ""), max_dimension)
        return cls(
            bucket=bucket,
            public_url=_public_url(env.get("PUBLIC_URL", "")),
            s3_endpoint_url=env.get("S3_ENDPOINT_URL") or None,
            max_dimension=max_dimension,
            allowed_sizes=allowed_sizes,
            imaging=ImagingLimits(
                background=_colour(env.get("BACKGROUND_COLOR", "")),
                max_frames=_int(
                    env, "MAX_ANIMATION_FRAMES", ImagingLimits.max_frames, low=1, high=10_000
                ),
                max_animation_pixels=_int(
                    env,
                    "MAX_ANIMATION_PIXELS",
                    ImagingLimits.max_animation_pixels,
                    low=1,
                    high=10_000_000_000,
                ),
                max_source_pixels=_int(
                    env,
                    "MAX_SOURCE_PIXELS",
                    ImagingLimits.max_source_pixels,
                    low=1,
                    high=1_000_000_000,
                ),
                # MiB in the environment, bytes in the model; Lambda's memory tops out at 10 GB.
                max_render_bytes=_int(
                    env, "MAX_RENDER_MIB", ImagingLimits.max_render_bytes >> 20, low=64, high=10_240
                )
                << 20,
            ),
            snap_to_allowed_sizes=_bool(env, "SNAP_TO_ALLOWED_SIZES"),
            signing_keys=_signing_keys(env.get("SIGNING_KEYS", "")),
            max_variants_per_original=_int(
                env, "MAX_VARIANTS_PER_ORIGINAL", 100, low=0, high=MAX_BUDGET
            ),
            max_source_bytes=_int(env, "MAX_SOURCE_BYTES", 40 * 1024 * 1024, low=1, high=2**31),
            max_variant_bytes_per_pixel=_int(
                env,
                "MAX_VARIANT_BYTES_PER_PIXEL",
                DEFAULT_VARIANT_BYTES_PER_PIXEL,
                low=0,
                high=64,
            ),
            loop_grace_seconds=_int(env, "LOOP_GRACE_SECONDS", 60, low=0, high=86_400),
            s3_connect_timeout=_int(env, "S3_CONNECT_TIMEOUT", 2, low=1, high=60),
            s3_read_timeout=_int(env, "S3_READ_TIMEOUT", 10, low=1, high=300),
            s3_max_attempts=_int(env, "S3_MAX_ATTEMPTS", 3, low=1, high=10),
            originals_bucket=env.get("ORIGINALS_BUCKET", "").strip(),
            upload_token=_upload_token(env.get("UPLOAD_TOKEN", "")),
            oidc_issuer=_oidc_issuer(env.get("OIDC_ISSUER", "")),
            oidc_client_id=env.get("OIDC_CLIENT_ID", "").strip(),
            allow_anonymous_uploads=_bool(env, "ALLOW_ANONYMOUS_UPLOADS"),
            cors_origins=_cors_origins(env.get("CORS_ORIGINS", "")),
            upload_expiry_seconds=_int(env, "UPLOAD_EXPIRY_SECONDS", 300, low=10, high=3600),
            upload_prefix=_upload_prefix(env.get("UPLOAD_PREFIX", "uploads")),
            metadata_table=env.get("METADATA_TABLE", "").strip(),
            notify_topic_arn=_arn(env, "NOTIFY_TOPIC_ARN", "sns"),
            preset_sizes=_preset_sizes(env.get("PRESET_SIZES"), max_dimension, allowed_sizes),
            keep_gps_metadata=_bool(env, "KEEP_GPS_METADATA"),
            variant_browser_max_age=_int(
                env,
                "VARIANT_BROWSER_MAX_AGE",
                DEFAULT_BROWSER_MAX_AGE_SECONDS,
                low=0,
                high=CDN_MAX_AGE_SECONDS,
            ),
            cdn_distribution_id=_distribution_id(env.get("CDN_DISTRIBUTION_ID", "")),
            events_queue_url=env.get("EVENTS_QUEUE_URL", "").strip(),
            recheck_delay_seconds=_int(
                env,
                "RECHECK_DELAY_SECONDS",
                DEFAULT_RECHECK_DELAY_SECONDS,
                low=0,
                high=MAX_SQS_DELAY_SECONDS,
            ),
            policy_cache_seconds=_int(
                env,
                "POLICY_CACHE_SECONDS",
                DEFAULT_POLICY_CACHE_SECONDS,
                low=0,
                high=MAX_POLICY_CACHE_SECONDS,
            ),
            trace_aws_calls=_bool(env, "TRACE_AWS_CALLS"),
        )


def _int(env: Mapping[str, str], name: str, default: int, *, low: int, high: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    if not raw.isascii() or not raw.isdigit() or not low <= int(raw) <= high:
        raise ConfigError(f"{name} must be a whole number from {low} to {high}, got {raw!r}")
    return int(raw)


def _bool(env: Mapping[str, str], name: str) -> bool:
    raw = env.get(name, "").strip().lower()
    if raw not in ("", "0", "1", "true", "false"):
        raise ConfigError(f"{name} must be true or false, got {raw!r}")
    return raw in ("1", "true")


def _signing_keys(raw: str) -> tuple[bytes, ...]:
    """Comma-separated secrets; the first signs, any verifies (rotation)."""
    keys = tuple(key.strip().encode() for key in raw.split(",") if key.strip())
    if any(len(key) < MIN_SIGNING_KEY_BYTES for key in keys):
        raise ConfigError(f"each SIGNING_KEYS secret needs at least {MIN_SIGNING_KEY_BYTES} bytes")
    return keys


def _oidc_issuer(raw: str) -> str:
    """An OpenID issuer URL: https, or http on loopback (the local provider)."""
    issuer = raw.strip().rstrip("/")
    if not issuer:
        return ""
    parts = urlsplit(issuer)
    loopback = parts.hostname in ("127.0.0.1", "localhost", "::1")
    if parts.scheme != "https" and not (parts.scheme == "http" and loopback):
        raise ConfigError(f"OIDC_ISSUER must be an https URL (http only on loopback): {raw!r}")
    return issuer


def _upload_token(raw: str) -> str | None:
    """A shared bearer token for uploads where no user pool authenticates (local runs)."""
    token = raw.strip()
    if token and (len(token) < MIN_UPLOAD_TOKEN_CHARS or not token.isascii() or " " in token):
        raise ConfigError(
            f"UPLOAD_TOKEN must be at least {MIN_UPLOAD_TOKEN_CHARS} ASCII characters, no spaces"
        )
    return token or None


def _cors_origins(raw: str) -> tuple[str, ...]:
    """Origins allowed to call the API from a page: ``*`` or ``scheme://host[:port]`` each."""
    origins = tuple(origin.strip().rstrip("/") for origin in raw.split(",") if origin.strip())
    for origin in origins:
        parts = urlsplit(origin)
        if origin != "*" and (
            parts.scheme not in ("http", "https") or not parts.netloc or parts.path
        ):
            raise ConfigError(f"CORS_ORIGINS: {origin!r} is not '*' or scheme://host[:port]")
    return origins


def _upload_prefix(raw: str) -> str:
    """The first segment of every uploaded key: lowercase letters, digits, hyphens; not a size."""
    prefix = raw.strip()
    if not _UPLOAD_PREFIX.fullmatch(prefix) or _UPLOAD_PREFIX_SIZE.fullmatch(prefix):
        raise ConfigError(f"UPLOAD_PREFIX must be a word like 'uploads', got {raw!r}")
    return prefix


def _colour(raw: str) -> tuple[int, int, int]:
    """``#rrggbb`` (the default, white, when empty)."""
    text = raw.strip() or "#ffffff"
    if len(text) != 7 or text[0] != "#" or not all(c in "0123456789abcdefABCDEF" for c in text[1:]):
        raise ConfigError(f"BACKGROUND_COLOR must look like #rrggbb, got {raw!r}")
    red, green, blue = (int(text[i : i + 2], 16) for i in (1, 3, 5))
    return red, green, blue


def _public_url(raw: str) -> str:
    """The base every redirect points at: absolute http(s), no query, no trailing slash."""
    url = raw.strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise ConfigError(f"PUBLIC_URL must be an absolute http(s) URL, got {raw!r}")
    return url


def _preset_sizes(
    raw: str | None, max_dimension: int, allowed: frozenset[ResizeSpec] | None
) -> tuple[ResizeSpec, ...]:
    """Size tokens rendered on upload, each canonical and allowed; empty: none.

    Unset: those of the defaults that MAX_DIMENSION and ALLOWED_SIZES allow.
    Set: every token must be valid and allowed.
    """
    tokens = [t.strip() for t in (DEFAULT_PRESET_SIZES if raw is None else raw).split(",")]
    specs: dict[ResizeSpec, None] = {}
    for token in filter(None, tokens):
        try:
            spec = parse_size(token, max_dimension)
        except ServiceError as err:
            if raw is None:
                continue  # a default over this deployment's MAX_DIMENSION
            raise ConfigError(f"PRESET_SIZES: {err.public_message}") from err
        if allowed is not None and spec not in allowed:
            if raw is None:
                continue
            raise ConfigError(f"PRESET_SIZES: {token} is not in ALLOWED_SIZES")
        specs[spec] = None
    return tuple(specs)


def _arn(env: Mapping[str, str], name: str, service: str) -> str:
    raw = env.get(name, "").strip()
    if raw and not re.fullmatch(rf"arn:aws[a-z-]*:{service}:[a-z0-9-]+:[0-9]{{12}}:[\w.-]+", raw):
        raise ConfigError(f"{name} must be an {service.upper()} ARN, got {raw!r}")
    return raw


def _distribution_id(raw: str) -> str:
    text = raw.strip()
    if text and not re.fullmatch(r"[A-Z0-9]{8,32}", text):
        raise ConfigError(f"CDN_DISTRIBUTION_ID must look like E2QWRUHAPOMQZL, got {raw!r}")
    return text


def _allowed_sizes(raw: str, max_dimension: int) -> frozenset[ResizeSpec] | None:
    tokens = [token.strip() for token in raw.split(",") if token.strip()]
    if not tokens:
        return None
    try:
        specs = [parse_size(token, max_dimension) for token in tokens]
    except ServiceError as err:
        raise ConfigError(f"ALLOWED_SIZES: {err.public_message}") from err
    # A listed .auto allows each concrete spelling it resolves to (docs/urls.md).
    return frozenset(specs).union(*(auto_targets(spec) for spec in specs if spec.is_auto))
