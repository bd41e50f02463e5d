"""What `make run` prints before and while it starts: install notes and example URLs."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from scripts.local.stack import MISS_NOTE, PAGE_PRESET_SIZES, PRESET_NOTE, example_urls
from tests.support import ROOT

KEYS = ["samples/a.jpg", "samples/b.png", "samples/c.gif"]


def make(*args: str) -> str:
    if shutil.which("make") is None:
        pytest.skip("needs make")
    return subprocess.run(
        ["make", "--no-print-directory", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def test_a_first_install_says_what_it_does_and_how_long(tmp_path: Path) -> None:
    note = make("-s", "install-note", f"VENV={tmp_path}")
    assert note.strip() == (
        f"installing Python and Node dependencies into {tmp_path} and node_modules, "
        "about 2 minutes the first time"
    )
    planned = make("-n", "install", f"VENV={tmp_path}").splitlines()
    assert planned[0].endswith(f'echo "{note.strip()}"')  # before anything is installed
    [pip] = [line for line in planned if "pip install" in line]
    assert "--quiet" not in pip  # pip's own progress shows


def test_example_urls_say_which_are_presets_and_which_are_misses() -> None:
    lines = example_urls("http://img", KEYS, PAGE_PRESET_SIZES)
    urls = dict(line.split("\n") for line in lines)
    assert urls == {
        "  http://img/300x300/samples/a.jpg": f"      ({MISS_NOTE})",
        "  http://img/500x/samples/b.png": f"      ({MISS_NOTE})",
        "  http://img/x120/samples/c.gif": f"      ({MISS_NOTE})",
        "  http://img/160x160-cover-focus/samples/a.jpg": f"      ({PRESET_NOTE})",
    }


def test_without_presets_every_example_is_a_miss() -> None:
    lines = example_urls("http://img", KEYS, "")
    assert len(lines) == 3
    assert all(MISS_NOTE in line for line in lines)
