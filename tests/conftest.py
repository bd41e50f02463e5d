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
from tests.support.browser import launched_browser


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


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    """moto's S3 over HTTP, in this process: it shares its buckets with ``mock_aws``."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def client(s3: Any, moto_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """chalice.test.Client over the real app, its S3 calls answered by moto.

    ``mock_aws`` answers botocore's calls in-process; the miss path's
    LeanS3Client sends real HTTP, so it is pointed at moto's server instead.
    """
    from chalice.test import Client

    from app import app
    from chalicelib import lean_s3

    lean = functools.partial(lean_s3.LeanS3Client, endpoint_url=moto_url)
    monkeypatch.setattr(lean_s3, "LeanS3Client", lean)
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


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """The session's Chromium (tests/support/browser.py), shared by every browser test file."""
    yield from launched_browser()
