"""The demo page says which of a user's uploads carry a watermark (Chromium, the real stack)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
import requests

from chalicelib.policies.document import PENDING_KEY
from scripts.local.stack import APP_EVENT_HANDLER
from tests.support import corpus, started_stack
from tests.support.marks import mark_png
from tests.support.waiting import wait_for
from tests.test_browser import screenshot, signed_in

pytestmark = pytest.mark.e2e

MARK = "_policy/marks/page.png"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, browser: Any) -> Iterator[Any]:
    with started_stack(
        tmp_path_factory,
        "watermarks-page",
        {"POLICY_CACHE_SECONDS": "0"},
        event_handler=APP_EVENT_HANDLER,
        page=True,
    ) as started:
        yield started


def meta(stack: Any, key: str) -> dict[str, Any]:
    answer = requests.get(f"{stack.api_url}/meta/{quote(key)}", timeout=30)
    return answer.json() if answer.status_code == 200 else {}  # type: ignore[no-any-return]


def test_the_upload_list_labels_the_watermarked_uploads(stack: Any, browser: Any) -> None:
    marked, plain = (stack.upload(corpus.jpeg((800, 600)))["key"] for _ in range(2))
    for key in (marked, plain):
        wait_for(lambda key=key: meta(stack, key).get("state") == "ready", f"{key} ready")
    stack.put_original(MARK, mark_png(), "image/png")
    rule = {"prefix": marked, "watermark": {"key": MARK}}
    stack.put_original(PENDING_KEY, json.dumps({"version": 1, "rules": [rule]}).encode())
    wait_for(lambda: meta(stack, marked).get("watermarked"), "the policy to apply")
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = context.new_page()
        page.goto(stack.page_url)
        page.wait_for_selector("body[data-ready='true']")
        signed_in(page, stack)
        page.wait_for_selector(".upload-entry")
        labels = page.evaluate(
            """() => Object.fromEntries([...document.querySelectorAll('.upload-entry')].map(
                (entry) => [entry.dataset.key,
                            entry.querySelector('.watermark-label')?.textContent ?? null]))"""
        )
        assert labels == {marked: "watermarked", plain: None}
        # The marked one's thumbnail was purged with the policy change: made again on view.
        page.wait_for_function(
            """() => [...document.querySelectorAll('.upload-entry img')].every(
                (img) => img.classList.contains('loaded') || img.classList.contains('failed'))"""
        )
        assert page.locator(".upload-entry img.failed").count() == 0
        screenshot(page, "watermark-label")
        page.locator(f".upload-entry[data-key='{marked}']").click()
        page.wait_for_selector("#item-state[data-state='ready']")
        fact = page.locator("dd[data-fact='watermark']")
        assert fact.inner_text().startswith("yes")
    finally:
        context.close()
