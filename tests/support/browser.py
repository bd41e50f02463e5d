"""The one Chromium of a test session: Debian's ``chromium`` driven by the ``playwright`` wheel.

One sync Playwright per process: a second ``sync_playwright()`` while the
first runs fails ("Sync API inside the asyncio loop"), so every browser
test file takes the session's ``browser`` fixture (conftest.py).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# Known to work as root on this kind of machine (Debian's chromium, Playwright driving it as root).
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WAIT_MS = 120_000  # the machine is shared: generous, never a timing assertion


def find_chromium() -> str | None:
    named = os.environ.get("CHROMIUM")
    if named:
        return named if Path(named).exists() else None
    for candidate in ("/usr/bin/chromium", *map(shutil.which, ("chromium", "chromium-browser"))):
        if candidate and Path(candidate).exists():
            return candidate
    return None


def launched_browser() -> Iterator[Any]:
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
