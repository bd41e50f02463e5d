"""The negotiation rule: one table for the API's rule and the CloudFront Function (in Node)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from chalicelib.config import Settings
from chalicelib.errors import InvalidSize
from chalicelib.resize.grammar import ResizeSpec, parse_size
from chalicelib.resize.negotiate import (
    Traits,
    auto_targets,
    candidates,
    cdn_format,
    concrete,
    negotiate,
)

ROOT = Path(__file__).resolve().parents[1]
CASES = json.loads((ROOT / "tests" / "support" / "accept_cases.json").read_text())["cases"]
ORIGINALS = {
    "photo": Traits("JPEG"),
    "alpha_png": Traits("PNG", alpha=True),
    "opaque_png": Traits("PNG"),
    "animated_gif": Traits("GIF", animated=True),
}


@pytest.mark.parametrize("case", CASES, ids=[case["name"] for case in CASES])
def test_the_rule_follows_the_table(case: dict[str, str | None]) -> None:
    for original, traits in ORIGINALS.items():
        assert negotiate(case["accept"], traits) == case[original], original
    assert cdn_format(case["accept"]) == case["cdn"]


@pytest.mark.parametrize("case", CASES, ids=[case["name"] for case in CASES])
def test_what_the_cdn_picks_is_what_the_rule_serves(case: dict[str, str | None]) -> None:
    """The CDN's pick, for any original, ends where the rule would send the browser."""
    picked = case["cdn"]
    if picked is None:
        return
    for original, traits in ORIGINALS.items():
        served = "webp" if picked == "avif" and traits.animated else picked
        assert served == case[original], original


def test_every_choice_is_a_candidate_for_presets() -> None:
    for case in CASES:
        for traits in ORIGINALS.values():
            assert negotiate(case["accept"], traits) in candidates(traits)


def test_auto_parses_and_takes_no_quality() -> None:
    spec = parse_size("300x200-cover@2x.auto", 4096)
    assert spec.is_auto
    assert spec.token == "300x200-cover@2x.auto"
    assert not parse_size("300x200.avif", 4096).is_auto
    with pytest.raises(InvalidSize):
        parse_size("300x-q70.auto", 4096)


def test_concrete_spelling_leaves_out_the_originals_own_format() -> None:
    spec = parse_size("640x.auto", 4096)
    assert concrete(spec, "avif", "JPEG").token == "640x.avif"
    assert concrete(spec, "jpeg", "JPEG").token == "640x"
    assert concrete(spec, "png", "PNG").token == "640x"
    assert concrete(spec, "gif", "GIF").token == "640x"
    assert concrete(spec, "png", "WEBP").token == "640x.png"
    assert {t.token for t in auto_targets(spec)} == {
        "640x",
        "640x.jpeg",
        "640x.png",
        "640x.webp",
        "640x.avif",
    }
    assert ResizeSpec(640, None) in auto_targets(spec)


def test_the_cloudfront_function_in_node() -> None:
    """tests/cdn/: the function's rewrite table and this file's Accept table, and the local CDN."""
    if shutil.which("node") is None:
        if os.environ.get("CI") == "true":  # CI must run the function, not skip it
            pytest.fail("CI without node: the CloudFront Function's tests cannot run")
        pytest.skip("NODE TESTS SKIPPED: no node on PATH (the local stack needs it too)")
    result = subprocess.run(
        ["node", "--test", str(ROOT / "tests" / "cdn")],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_allowed_auto_allows_what_it_resolves_to() -> None:
    settings = Settings.from_env(
        {"IMAGE_BUCKET": "b", "PUBLIC_URL": "https://img.example.com", "ALLOWED_SIZES": "640x.auto"}
    )
    allowed = {spec.token for spec in settings.allowed_sizes or ()}
    assert {"640x.auto", "640x", "640x.avif", "640x.webp", "640x.png", "640x.jpeg"} == allowed
