"""End to end: s3rver and `chalice local` as real processes, followed with `requests`."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import quote

import pytest
import requests

from tests.support import bad_inputs, corpus, started_stack

pytestmark = pytest.mark.e2e


def put(stack: Any, key: str, body: bytes) -> None:
    stack.put_original(key, body)


def url(stack: Any, size: str, key: str) -> str:
    return f"{stack.public_url}/{size}/{quote(key)}"


def test_miss_redirects_through_api_then_hit_is_plain_200(local_stack: Any) -> None:
    put(local_stack, "e2e/cat.jpg", corpus.jpeg((1600, 1200)))
    first = requests.get(url(local_stack, "300x300", "e2e/cat.jpg"), timeout=30)
    assert first.status_code == 200
    assert [r.status_code for r in first.history] == [307, 307]
    assert first.history[0].headers["Location"].startswith(f"{local_stack.api_url}/resize/")
    assert first.history[1].headers["Location"] == url(local_stack, "300x300", "e2e/cat.jpg")
    assert first.headers["Content-Type"] == "image/jpeg"
    assert first.headers["Cache-Control"] == "public, max-age=86400, s-maxage=31536000"
    assert corpus.opened(first.content).size == (300, 225)

    second = requests.get(url(local_stack, "300x300", "e2e/cat.jpg"), timeout=30)
    assert second.status_code == 200
    assert second.history == []
    assert second.content == first.content


def test_missing_original_is_404_json_without_loop(local_stack: Any) -> None:
    response = requests.get(url(local_stack, "300x300", "e2e/none.jpg"), timeout=30)
    assert response.status_code == 404
    assert response.json()["code"] == "original_not_found"
    assert [r.status_code for r in response.history] == [307]


@pytest.mark.parametrize(
    "key",
    [
        "e2e/café au lait (1).jpg",
        "e2e/a/b/c/d/e/f/g/h/nine deep.jpg",
        "e2e/plus+sign 'quoted' 100%.jpg",
        "e2e/日本語/x-ray 300x200.jpg",
    ],
)
def test_awkward_keys_through_the_website_endpoint(local_stack: Any, key: str) -> None:
    put(local_stack, key, corpus.jpeg((400, 300)))
    response = requests.get(url(local_stack, "x150", key), timeout=30)
    assert response.status_code == 200, response.text
    assert corpus.opened(response.content).size == (200, 150)
    stored = local_stack.s3_client().head_object(Bucket=local_stack.bucket, Key=f"x150/{key}")
    assert stored["ContentType"] == "image/jpeg"


def test_png_keeps_its_type(local_stack: Any) -> None:
    put(local_stack, "e2e/logo.png", corpus.png_rgba((400, 400)))
    response = requests.get(url(local_stack, "100x", "e2e/logo.png"), timeout=30)
    assert response.headers["Content-Type"] == "image/png"
    assert corpus.opened(response.content).mode == "RGBA"


def test_bad_size_is_400_and_stores_nothing(local_stack: Any) -> None:
    put(local_stack, "e2e/bad.jpg", corpus.jpeg((400, 300)))
    response = requests.get(url(local_stack, "0300x", "e2e/bad.jpg"), timeout=30)
    assert response.status_code == 400
    assert response.json()["code"] == "non_canonical_size"
    assert "'300x'" in response.json()["message"]
    listed = local_stack.s3_client().list_objects_v2(Bucket=local_stack.bucket, Prefix="0300x/")
    assert listed["KeyCount"] == 0
    # The service is still healthy afterwards.
    assert requests.get(url(local_stack, "300x", "e2e/bad.jpg"), timeout=30).status_code == 200


def test_over_max_dimension_is_refused(local_stack: Any) -> None:
    put(local_stack, "e2e/max.jpg", corpus.jpeg((400, 300)))
    response = requests.get(
        url(local_stack, "2001x", "e2e/max.jpg"), timeout=30
    )  # MAX_DIMENSION=2000
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_size"


def test_concurrent_misses_all_succeed_with_identical_bytes(local_stack: Any) -> None:
    put(local_stack, "e2e/busy.jpg", corpus.jpeg((2000, 1500)))
    target = url(local_stack, "500x", "e2e/busy.jpg")
    with ThreadPoolExecutor(max_workers=8) as pool:
        responses = list(pool.map(lambda _: requests.get(target, timeout=60), range(8)))
    assert {r.status_code for r in responses} == {200}
    assert len({r.content for r in responses}) == 1
    assert corpus.opened(responses[0].content).size == (500, 375)


def test_fidelity_cases_through_the_website(local_stack: Any) -> None:
    """Every in-process fidelity check, once more through s3rver and chalice local."""
    client = local_stack.s3_client()
    failures = []
    for number, case in enumerate(corpus.CASES):
        key = f"e2e/fidelity/{number}/original"
        local_stack.put_original(key, case.original())
        response = requests.get(url(local_stack, case.token, key), timeout=30)
        try:
            assert response.status_code == 200, response.text
            assert [r.status_code for r in response.history] == [307, 307]
            stored = client.head_object(Bucket=local_stack.bucket, Key=f"{case.token}/{key}")
            assert stored["ContentType"] == response.headers["Content-Type"]
            corpus.check_variant(case, response.content, response.headers["Content-Type"])
        except AssertionError as err:
            failures.append(f"{case.name}: {err}")
    assert not failures, "\n".join(failures)


def stored_keys(stack: Any) -> set[str]:
    pages = stack.s3_client().get_paginator("list_objects_v2").paginate(Bucket=stack.bucket)
    return {item["Key"] for page in pages for item in page.get("Contents", [])}


@pytest.fixture(scope="module")
def bad_originals(local_stack: Any) -> Any:
    for key, body in bad_inputs.originals().items():
        put(local_stack, key, body)
    return local_stack


@pytest.mark.parametrize(("path", "status", "code"), bad_inputs.BAD_REQUESTS)
def test_bad_input_through_the_api(bad_originals: Any, path: str, status: int, code: str) -> None:
    before = stored_keys(bad_originals)
    response = requests.get(
        f"{bad_originals.api_url}/resize/{path}", timeout=30, allow_redirects=False
    )
    assert response.status_code == status, response.text
    assert response.json()["code"] == code
    assert response.headers["Cache-Control"] == "no-store"
    assert stored_keys(bad_originals) == before
    assert requests.get(f"{bad_originals.api_url}/health", timeout=10).status_code == 200


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        row
        for row in bad_inputs.BAD_REQUESTS
        if (row[2].endswith("size") or row[1] in (413, 415, 422))
        # s3rver answers 500 for a key with NUL or a segment over 255 bytes
        # (its file store can't hold them); S3 answers 404 and redirects.
        # The API-level test covers both.
        and "%00" not in row[0]
        and max(len(segment) for segment in row[0].split("/")) <= 255
    ],
)
def test_bad_input_through_the_website(
    bad_originals: Any, path: str, status: int, code: str
) -> None:
    before = stored_keys(bad_originals)
    response = requests.get(f"{bad_originals.public_url}/{path}", timeout=30)
    assert [r.status_code for r in response.history] == [307]
    assert response.status_code == status, response.text
    assert response.json()["code"] == code
    assert stored_keys(bad_originals) == before


def test_another_spelling_is_a_website_redirect_to_the_stored_output(local_stack: Any) -> None:
    put(local_stack, "e2e/wide.jpg", corpus.jpeg((1000, 500)))
    first = requests.get(url(local_stack, "600x300", "e2e/wide.jpg"), timeout=30)
    assert first.status_code == 200
    alias = requests.get(url(local_stack, "300x150@2x", "e2e/wide.jpg"), timeout=30)
    assert [r.status_code for r in alias.history] == [307, 307]
    assert alias.url == url(local_stack, "600x300", "e2e/wide.jpg")
    assert alias.content == first.content
    # Now the website answers that spelling with S3's object redirect, no API involved.
    again = requests.get(url(local_stack, "300x150@2x", "e2e/wide.jpg"), timeout=30)
    assert [r.status_code for r in again.history] == [301]
    assert again.content == first.content
    stored = {key for key in stored_keys(local_stack) if key.endswith("/e2e/wide.jpg")}
    assert stored == {"600x300/e2e/wide.jpg", "300x150@2x/e2e/wide.jpg"}


def test_head_of_a_missing_variant_is_answered_like_get(local_stack: Any) -> None:
    put(local_stack, "e2e/head.jpg", corpus.jpeg((400, 300)))
    response = requests.head(
        url(local_stack, "120x", "e2e/head.jpg"), timeout=30, allow_redirects=True
    )
    assert response.status_code == 200
    assert [r.status_code for r in response.history] == [307, 307]
    assert response.headers["Content-Type"] == "image/jpeg"


def test_a_raw_semicolon_stays_part_of_the_key(local_stack: Any) -> None:
    put(local_stack, "e2e/semi", corpus.jpeg((400, 300)))
    response = requests.get(f"{local_stack.api_url}/resize/100x/e2e/semi;colon.jpg", timeout=30)
    assert response.status_code == 404, response.text
    assert response.json()["code"] == "original_not_found"
    put(local_stack, "e2e/semi;colon.jpg", corpus.jpeg((400, 300)))
    response = requests.get(
        f"{local_stack.api_url}/resize/100x/e2e/semi;colon.jpg", timeout=30, allow_redirects=False
    )
    assert response.status_code == 307
    assert "100x/e2e/semi%3Bcolon.jpg" in response.headers["Location"]


@pytest.fixture(scope="module")
def budget_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A second local stack whose originals may have five variants each."""
    with started_stack(
        tmp_path_factory, "budget-stack", {"MAX_VARIANTS_PER_ORIGINAL": "5"}
    ) as stack:
        yield stack


def test_concurrent_new_sizes_overshoot_the_budget_boundedly_and_never_fail(
    budget_stack: Any,
) -> None:
    put(budget_stack, "e2e/budget.jpg", corpus.jpeg((2000, 1500)))
    sizes = [f"{100 + 10 * n}x" for n in range(50)]
    with ThreadPoolExecutor(max_workers=50) as pool:
        responses = list(
            pool.map(
                lambda s: requests.get(url(budget_stack, s, "e2e/budget.jpg"), timeout=120), sizes
            )
        )
    statuses = sorted(r.status_code for r in responses)
    assert set(statuses) <= {200, 403}, statuses
    refused = [r for r in responses if r.status_code == 403]
    assert {r.json()["code"] for r in refused} <= {"variant_budget_exhausted"}
    stored = [k for k in stored_keys(budget_stack) if k.endswith("x/e2e/budget.jpg")]
    assert 5 <= len(stored) == statuses.count(200)
    print(f"budget 5, 50 concurrent new sizes: {len(stored)} stored")
    # Listings longer than a page work again: a new size afterwards is a clean 403.
    later = requests.get(url(budget_stack, "99x", "e2e/budget.jpg"), timeout=30)
    assert later.status_code == 403
    assert later.json()["code"] == "variant_budget_exhausted"
