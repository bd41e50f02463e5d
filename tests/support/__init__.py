"""Helpers the tests share: the repository's root, the test bucket, the real local stack."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUCKET = "images"
PUBLIC_URL = "https://img.example.com"


@contextmanager
def started_stack(
    tmp_path_factory: pytest.TempPathFactory, name: str, app_env: dict[str, str], **options: Any
) -> Iterator[Any]:
    """The local stack's processes on free ports, the app given ``app_env``."""
    from scripts.local.stack import LocalStack, free_port

    stack = LocalStack(
        tmp_path_factory.mktemp(name),
        s3_port=free_port(),
        api_port=free_port(),
        app_env=app_env,
        **options,
    )
    with stack:
        yield stack
