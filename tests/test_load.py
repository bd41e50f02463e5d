"""The load script's core, with tiny numbers, against the session's real local stack."""

from __future__ import annotations

import uuid
from collections import Counter
from typing import Any

import pytest

from chalicelib.config import DEFAULT_PRESET_SIZES
from scripts.bench import load
from scripts.local.samples import ORIENTATION_RIGHT_TOP, badge, photo
from tests.support import corpus


def put(s3: Any, bucket: str, key: str, body: bytes, content_type: str) -> None:
    s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type)


def small_originals(prefix: str) -> list[load.Original]:
    return [
        load.Original.of(f"{prefix}/photos/café (1).jpg", photo((400, 300))),
        load.Original.of(
            f"{prefix}/side/IMG 1.jpg", photo((300, 200), orientation=ORIENTATION_RIGHT_TOP)
        ),
        load.Original.of(f"{prefix}/logos/日本 badge.png", badge((200, 200))),
    ]


@pytest.fixture(scope="module")
def run(local_stack: Any) -> tuple[load.Target, load.Report]:
    target = load.Target(
        local_stack.public_url,
        local_stack.bucket,
        local_stack.originals_bucket,
        local_stack.s3_client(),
        2000,
    )
    originals = small_originals(f"load-test-{uuid.uuid4().hex[:8]}")
    report = load.run_load(
        target,
        originals,
        misses=6,
        duplicate_groups=1,
        duplicate_clients=3,
        hits=20,
        concurrency=4,
    )
    return target, report


@pytest.mark.e2e
def test_tiny_run_counts_and_verifies_every_variant(run: tuple[load.Target, load.Report]) -> None:
    _, report = run
    misses, hits = report.phases
    assert len(misses.outcomes) == 6 + 2  # one variant asked by 3 clients
    assert len(hits.outcomes) == 20
    assert report.errors == 0, load.format_report(report)
    # A variant asked once is a real miss: website 307 → API 307 → image.
    asks = Counter(o.variant for o in misses.outcomes)
    assert sorted(asks.values()) == [1, 1, 1, 1, 1, 3]
    asked_once = [o for o in misses.outcomes if asks[o.variant] == 1]
    assert {o.redirects for o in asked_once} == {2}
    assert {o.redirects for o in hits.outcomes} == {0}
    assert report.duplicates.requests == 3
    assert report.verification.checked == 6
    assert report.verification.bad == 0
    assert load.format_report(report).endswith("load: 0 errors, 0 corrupt or missing variants")


@pytest.mark.e2e
def test_verifier_finds_corrupt_resized_deleted_and_stray_variants(
    run: tuple[load.Target, load.Report],
) -> None:
    target, report = run
    variants = sorted({o.variant for o in report.phases[0].outcomes}, key=lambda v: v.key)
    truncated, wrong_size, deleted = variants[:3]
    stray = f"17x/{variants[0].original.key}"
    s3, bucket = target.s3, target.bucket
    body = s3.get_object(Bucket=bucket, Key=truncated.key)["Body"].read()
    put(s3, bucket, truncated.key, body[: len(body) // 2], truncated.original.content_type)
    small = corpus.encode(corpus.quadrants((3, 3)), wrong_size.original.format)
    put(s3, bucket, wrong_size.key, small, wrong_size.original.content_type)
    s3.delete_object(Bucket=bucket, Key=deleted.key)
    put(s3, bucket, stray, corpus.jpeg((17, 13)), "image/jpeg")

    prefix = variants[0].original.key.split("/", 1)[0]
    served = load.served_digests(report.phases)
    found = load.verify(s3, bucket, prefix, variants, served, 2000)

    assert found.problems["undecodable"] == [truncated.key]
    assert found.problems["missing"] == [deleted.key]
    assert found.problems["unexpected key"] == [stray]
    assert found.problems["wrong size"] == [wrong_size.key]
    assert found.problems["wrong type"] == []
    assert sorted(found.problems["served other bytes"]) == sorted([truncated.key, wrong_size.key])
    assert found.bad == 4


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert load.percentile(values, 0.50) == 50
    assert load.percentile(values, 0.99) == 99
    assert load.percentile(values, 1.00) == 100
    assert load.percentile([3.0], 0.95) == 3.0
    assert load.PhaseResult("empty", [], wall=0.0).latency(50) == 0.0


# --- the upload burst through the events pipeline ---------------------------------------------


@pytest.fixture(scope="module")
def burst(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from scripts.bench import upload_burst

    with upload_burst.burst_stack(tmp_path_factory.mktemp("burst"), max_concurrency=2) as stack:
        report = upload_burst.run_burst(stack, 8, concurrency=4, presets=PRESETS)
        yield stack, report


# What the burst stack renders on upload: the default presets.
PRESETS = [token.strip() for token in DEFAULT_PRESET_SIZES.split(",")]


@pytest.mark.e2e
def test_a_small_burst_drains_with_nothing_lost(burst: Any) -> None:
    from scripts.bench import upload_burst

    _, report = burst
    assert len(report.uploads) == 8
    assert report.bad == 0, upload_burst.format_report(report)
    assert report.usage == {"originals": 8, "bytes": sum(u.bytes for u in report.uploads)}
    assert 1 <= report.peak_concurrency <= 2
    assert upload_burst.format_report(report).endswith("burst: 0 lost uploads, 0 problems")


@pytest.mark.e2e
def test_the_burst_verifier_finds_a_missing_preset_and_a_wrong_total(burst: Any) -> None:
    from scripts.bench import upload_burst

    stack, report = burst
    victim = report.uploads[0]
    stack.s3_client().delete_object(Bucket=stack.bucket, Key=f"320x/{victim.key}")
    checked = upload_burst.BurstReport(
        report.uploads[1:], [], report.drained_at, report.peak_concurrency, 2
    )
    upload_burst.verify(stack, checked, PRESETS)
    assert checked.problems["usage"]  # the one left out is still counted by the store
    assert checked.problems["record nobody uploaded"] == [victim.key]
    again = upload_burst.BurstReport(report.uploads, [], report.drained_at, 3, 2)
    upload_burst.verify(stack, again, PRESETS)
    assert again.problems["missing preset"] == [f"320x/{victim.key}"]
    assert again.problems["over the cap"] == ["3 > 2"]
