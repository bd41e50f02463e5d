"""Shared fixtures: settings, a moto bucket, the Chalice test client, the real local stack."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from chalicelib import wiring
from chalicelib.config import Settings
from tests.support import BUCKET, PUBLIC_URL, started_stack


@pytest.fixture
def settings() -> Settings:
    return Settings(bucket=BUCKET, public_url=PUBLIC_URL)


@pytest.fixture
def app_env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The environment the deployed app reads; tests add keys before the first request."""
    env = {
        "IMAGE_BUCKET": BUCKET,
        "PUBLIC_URL": PUBLIC_URL,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    for name in ("S3_ENDPOINT_URL", "ALLOWED_SIZES", "MAX_DIMENSION", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


@pytest.fixture
def s3(app_env: dict[str, str]) -> Iterator[Any]:
    """A moto S3 client with an empty image bucket."""
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


@pytest.fixture
def client(s3: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """chalice.test.Client over the real app, its S3 calls answered by moto."""
    from chalice.test import Client

    from app import app

    wiring.reset()
    with Client(app, stage_name="local") as test_client:
        yield test_client
    wiring.reset()


@pytest.fixture
def pixel_loads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The formats of the images whose pixels Pillow decodes from now on."""
    from PIL import ImageFile

    loads: list[str] = []
    real = ImageFile.ImageFile.load

    def counting(image: ImageFile.ImageFile) -> Any:
        if image.tile:  # pixels still to decode
            loads.append(str(image.format))
        return real(image)

    monkeypatch.setattr(ImageFile.ImageFile, "load", counting)
    return loads


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Debian's chromium through the playwright wheel, one for the session's browser tests."""
    import os

    from tests.test_browser import CHROMIUM_FLAGS, find_chromium

    path = find_chromium()
    if path is None:
        reason = (
            "no chromium found (set CHROMIUM=/path, or as root: apt-get install chromium; "
            ".ci/run does this)"
        )
        if os.environ.get("CI") == "true":  # CI must prove the page works, not skip it
            pytest.fail(f"CI without a browser: {reason}")
        pytest.skip(f"BROWSER TESTS SKIPPED: {reason}")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as err:  # pragma: no cover - requirements-dev.txt pins it
        pytest.skip(f"BROWSER TESTS SKIPPED: the playwright package is missing ({err})")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=path, args=CHROMIUM_FLAGS)
        yield launched
        launched.close()


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The local stack for the whole session."""
    with started_stack(tmp_path_factory, "stack", {"MAX_DIMENSION": "2000"}) as stack:
        yield stack


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Say loudly when the browser tests did not run: a quiet skip reads as a pass."""
    skipped = [
        report
        for report in terminalreporter.stats.get("skipped", [])
        if "test_browser.py" in report.nodeid
    ]
    if not skipped:
        return
    longrepr = skipped[0].longrepr
    reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
    terminalreporter.write_sep("!", f"{len(skipped)} BROWSER TESTS SKIPPED", red=True, bold=True)
    terminalreporter.write_line(reason.removeprefix("Skipped: "), red=True, bold=True)


@pytest.fixture
def lifecycle_app(s3: Any, client: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The test client with an originals bucket and a metadata table, one preset."""
    import boto3

    from chalicelib.originals.metadata import TABLE_SCHEMA

    s3.create_bucket(Bucket="originals")
    boto3.client("dynamodb", region_name="us-east-1").create_table(
        TableName="image-metadata", **TABLE_SCHEMA
    )
    for name, value in {
        "ORIGINALS_BUCKET": "originals",
        "METADATA_TABLE": "image-metadata",
        "PRESET_SIZES": "120x",
    }.items():
        monkeypatch.setenv(name, value)
    # chalice's test client gives every invocation 3 s; the packaged function has its timeout.
    import chalice.test
    from chalice.local import LambdaContext

    from chalicelib.config import EVENTS_TIMEOUT_SECONDS

    monkeypatch.setattr(
        chalice.test,
        "LambdaContext",
        functools.partial(LambdaContext, max_runtime_ms=EVENTS_TIMEOUT_SECONDS * 1000),
    )
    wiring.reset()
    return client
