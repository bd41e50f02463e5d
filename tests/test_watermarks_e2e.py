"""Watermarks through the real local stack, as `make run` runs it: policy, marks, purges.

The sample policy and its generated mark are uploaded the way `make run` does;
the events pipeline (s3rver's events, SQS, the poller) activates them; every
view goes through the website and `chalice local`.  The mark is found by pixel
comparison with the unmarked render of the same original and size.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from urllib.parse import quote

import pytest
import requests

from chalicelib import imaging
from chalicelib.policies.document import ACTIVE_KEY, PENDING_KEY
from chalicelib.resize.grammar import parse_size
from scripts.local.samples import (
    SAMPLE_MARK_KEY,
    WATERMARKED_PREFIX,
    sample_originals,
    sample_policy,
    watermarked_originals,
)
from scripts.local.stack import APP_EVENT_HANDLER, LocalStack, watermarked_urls
from tests.support import corpus, started_stack
from tests.support.marks import difference_box, frames, mark_png
from tests.support.waiting import wait_for

pytestmark = pytest.mark.e2e

PRESETS = ("160x160-cover-focus", "320x")
[PHOTO] = watermarked_originals()
OUTSIDE = next(iter(sample_originals()))


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    # Every miss reads the policy in service: the cache's race is tested in-process.
    with started_stack(
        tmp_path_factory,
        "watermarks",
        {"PRESET_SIZES": ",".join(PRESETS), "POLICY_CACHE_SECONDS": "0"},
        event_handler=APP_EVENT_HANDLER,
    ) as started:
        started.upload_samples()
        started.upload_sample_policy()
        wait_for(lambda: _meta(started, PHOTO).get("presets"), "the sample's presets")
        yield started


def _meta(stack: LocalStack, key: str) -> dict[str, object]:
    answer = requests.get(f"{stack.api_url}/meta/{quote(key)}", timeout=30)
    return answer.json() if answer.status_code == 200 else {}  # type: ignore[no-any-return]


def view(stack: LocalStack, size: str, key: str, accept: str | None = None) -> bytes:
    headers = {"Accept": accept} if accept else {}
    answer = requests.get(f"{stack.public_url}/{size}/{quote(key)}", headers=headers, timeout=60)
    assert answer.status_code == 200, answer.text[:300]
    return answer.content


def original(stack: LocalStack, key: str) -> bytes:
    found = stack.s3_client().get_object(Bucket=stack.originals_bucket, Key=key)
    return found["Body"].read()  # type: ignore[no-any-return]


def marked(stack: LocalStack, size: str, key: str, body: bytes) -> list[bool]:
    """Per frame: whether ``body`` differs from the unmarked render of ``size``."""
    plain = imaging.render(original(stack, key), parse_size(size, 4096)).body
    return [
        difference_box(a, b) is not None for a, b in zip(frames(body), frames(plain), strict=True)
    ]


def stored(stack: LocalStack, key: str) -> set[str]:
    listed = stack.s3_client().list_objects_v2(Bucket=stack.bucket).get("Contents", [])
    return {item["Key"] for item in listed if item["Key"].endswith(key)}


def test_the_sample_policy_is_active_and_make_runs_urls_say_which_are_marked(
    stack: LocalStack,
) -> None:
    wait_for(lambda: _object(stack, ACTIVE_KEY), "the policy to be activated")
    assert _meta(stack, PHOTO)["watermarked"] is True
    assert _meta(stack, OUTSIDE)["watermarked"] is False
    for line in watermarked_urls(stack.public_url, [PHOTO]):
        url, note = line.split()[0], line.split("(", 1)[1]
        size = url.removeprefix(f"{stack.public_url}/").split("/", 1)[0]
        body = requests.get(url, timeout=60).content
        assert all(marked(stack, size, PHOTO, body)) == note.startswith("watermarked")


@pytest.mark.parametrize(
    "size", ["320x", "800x", "500x300-cover-smart", "400x400-cover-nw", "600x300-pad", "500x.webp"]
)
def test_every_path_marks_the_protected_sample(stack: LocalStack, size: str) -> None:
    assert all(marked(stack, size, PHOTO, view(stack, size, PHOTO)))


def test_auto_is_marked_in_the_format_the_browser_gets(stack: LocalStack) -> None:
    answer = requests.get(
        f"{stack.api_url}/resize/500x.auto/{quote(PHOTO)}",
        headers={"Accept": "image/avif,image/webp,*/*"},
        timeout=60,
    )
    size = answer.url.removeprefix(f"{stack.public_url}/").split("/", 1)[0]
    assert size == "500x.avif"
    assert all(marked(stack, size, PHOTO, answer.content))


def test_an_animation_under_the_prefix_is_marked_on_every_frame(stack: LocalStack) -> None:
    key = f"{WATERMARKED_PREFIX}anim.gif"
    stack.put_original(key, corpus.animated("GIF", 3, (600, 300)), "image/gif")
    assert marked(stack, "400x", key, view(stack, "400x", key)) == [True, True, True]


def test_below_min_size_and_outside_the_prefix_nothing_is_marked(stack: LocalStack) -> None:
    assert not any(
        marked(stack, "160x160-cover-focus", PHOTO, view(stack, "160x160-cover-focus", PHOTO))
    )
    assert not any(marked(stack, "800x", OUTSIDE, view(stack, "800x", OUTSIDE)))


def test_a_policy_change_purges_and_the_next_view_renders_with_it(stack: LocalStack) -> None:
    before = view(stack, "800x", PHOTO)
    outside = stored(stack, OUTSIDE)
    policy = json.loads(sample_policy())
    policy["rules"][0]["watermark"]["anchor"] = "nw"
    stack.put_original(PENDING_KEY, json.dumps(policy).encode(), "application/json")
    wait_for(lambda: f"800x/{PHOTO}" not in stored(stack, PHOTO), "the purge")
    after = view(stack, "800x", PHOTO)
    assert difference_box(frames(after)[0], frames(before)[0]) is not None
    assert all(marked(stack, "800x", PHOTO, after))
    assert stored(stack, OUTSIDE) == outside  # other prefixes keep their variants


def test_a_mark_replacement_purges_and_the_next_view_shows_the_new_mark(
    stack: LocalStack,
) -> None:
    before = view(stack, "800x", PHOTO)
    stack.put_original(SAMPLE_MARK_KEY, mark_png((300, 100), (255, 0, 255)), "image/png")
    wait_for(lambda: f"800x/{PHOTO}" not in stored(stack, PHOTO), "the purge")
    after = view(stack, "800x", PHOTO)
    assert difference_box(frames(after)[0], frames(before)[0]) is not None
    assert all(marked(stack, "800x", PHOTO, after))


def _object(stack: LocalStack, key: str) -> bytes | None:
    try:
        found = stack.s3_client().get_object(Bucket=stack.originals_bucket, Key=key)
    except stack.s3_client().exceptions.NoSuchKey:
        return None
    return found["Body"].read()  # type: ignore[no-any-return]
