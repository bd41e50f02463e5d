"""Settings: defaults, validation, and ALLOWED_SIZES parsing."""

from __future__ import annotations

import pytest

from chalicelib.config import ConfigError, Settings
from chalicelib.resize.grammar import ResizeSpec

BASE = {"IMAGE_BUCKET": "images", "PUBLIC_URL": "https://img.example.com/"}


def test_defaults() -> None:
    settings = Settings.from_env(BASE)
    assert settings.bucket == "images"
    assert settings.public_url == "https://img.example.com"  # trailing slash dropped
    assert settings.max_dimension == 4096
    assert settings.allowed_sizes is None
    assert settings.s3_endpoint_url is None
    assert settings.imaging.background == (255, 255, 255)
    assert settings.imaging.max_frames == 300


def test_imaging_settings() -> None:
    settings = Settings.from_env(
        {
            **BASE,
            "BACKGROUND_COLOR": "#0a0B0c",
            "MAX_ANIMATION_FRAMES": "12",
            "MAX_ANIMATION_PIXELS": "5000",
        }
    )
    assert settings.imaging.background == (10, 11, 12)
    assert settings.imaging.max_frames == 12
    assert settings.imaging.max_animation_pixels == 5000


def test_decode_limits_default_to_the_sized_bound_and_can_be_set() -> None:
    defaults = Settings.from_env(BASE).imaging
    assert defaults.max_render_bytes == 640 * 2**20
    assert defaults.max_animation_pixels == 50_000_000
    assert defaults.max_source_pixels == 60_000_000
    settings = Settings.from_env({**BASE, "MAX_RENDER_MIB": "1024", "MAX_SOURCE_PIXELS": "1000"})
    assert settings.imaging.max_render_bytes == 1024 * 2**20
    assert settings.imaging.max_source_pixels == 1000


def test_allowed_sizes_are_parsed_with_the_url_grammar() -> None:
    settings = Settings.from_env({**BASE, "ALLOWED_SIZES": "300x300, 640x ,x120"})
    assert settings.allowed_sizes == {
        ResizeSpec(300, 300),
        ResizeSpec(640, None),
        ResizeSpec(None, 120),
    }


@pytest.mark.parametrize(
    "env",
    [
        {"PUBLIC_URL": "https://x"},
        {**BASE, "IMAGE_BUCKET": " "},
        {**BASE, "PUBLIC_URL": "img.example.com"},
        {**BASE, "PUBLIC_URL": "ftp://img.example.com"},
        {**BASE, "PUBLIC_URL": "https://img.example.com/?a=1"},
        {**BASE, "MAX_DIMENSION": "0"},
        {**BASE, "MAX_DIMENSION": "lots"},
        {**BASE, "MAX_DIMENSION": "99999"},
        {**BASE, "ALLOWED_SIZES": "300X300"},
        {**BASE, "MAX_DIMENSION": "100", "ALLOWED_SIZES": "300x300"},
        {**BASE, "BACKGROUND_COLOR": "white"},
        {**BASE, "BACKGROUND_COLOR": "#fff"},
        {**BASE, "MAX_ANIMATION_FRAMES": "0"},
        {**BASE, "MAX_RENDER_MIB": "63"},
        {**BASE, "MAX_RENDER_MIB": "10241"},
        {**BASE, "MAX_RENDER_MIB": "1.5"},
        {**BASE, "POLICY_CACHE_SECONDS": "601"},
        {**BASE, "POLICY_CACHE_SECONDS": "-1"},
    ],
)
def test_bad_settings_fail_loudly(env: dict[str, str]) -> None:
    with pytest.raises(ConfigError) as info:
        Settings.from_env(env)
    assert info.value.status == 500


def test_settings_are_frozen() -> None:
    settings = Settings.from_env(BASE)
    with pytest.raises(AttributeError):
        settings.bucket = "other"  # type: ignore[misc]


def test_allowed_sizes_match_whole_tokens() -> None:
    settings = Settings.from_env({**BASE, "ALLOWED_SIZES": "300x300-cover.webp,640x@2x"})
    assert settings.allowed_sizes is not None
    assert {spec.token for spec in settings.allowed_sizes} == {"300x300-cover.webp", "640x@2x"}


def test_the_function_timeouts_are_the_packaged_stacks_and_the_recheck_outlasts_them() -> None:
    import json

    from chalicelib.config import (
        API_TIMEOUT_SECONDS,
        DEFAULT_RECHECK_DELAY_SECONDS,
        EVENTS_TIMEOUT_SECONDS,
    )
    from tests.support import ROOT

    prod = json.loads((ROOT / ".chalice" / "config.json").read_text())["stages"]["prod"]
    assert prod["lambda_timeout"] == API_TIMEOUT_SECONDS
    assert prod["lambda_functions"]["on_original_event"]["lambda_timeout"] == EVENTS_TIMEOUT_SECONDS
    assert Settings.from_env(BASE).recheck_delay_seconds == DEFAULT_RECHECK_DELAY_SECONDS
    assert max(API_TIMEOUT_SECONDS, EVENTS_TIMEOUT_SECONDS) < DEFAULT_RECHECK_DELAY_SECONDS


def test_the_policy_cache_is_read_and_the_policy_recheck_outlasts_it() -> None:
    from chalicelib.config import (
        API_TIMEOUT_SECONDS,
        DEFAULT_POLICY_CACHE_SECONDS,
        DEFAULT_RECHECK_DELAY_SECONDS,
    )

    assert Settings.from_env(BASE).policy_cache_seconds == DEFAULT_POLICY_CACHE_SECONDS
    settings = Settings.from_env({**BASE, "POLICY_CACHE_SECONDS": "300"})
    assert settings.policy_cache_seconds == 300
    assert settings.policy_recheck_delay == 300 + API_TIMEOUT_SECONDS
    assert Settings.from_env(BASE).policy_recheck_delay == DEFAULT_RECHECK_DELAY_SECONDS
