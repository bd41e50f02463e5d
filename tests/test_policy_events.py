"""Policy changes through the events pipeline in-process (moto): activate, purge, recheck.

The policy document and the watermark images are uploads to ``_policy/`` in the
originals bucket; their S3 events reach the same ``OriginalLifecycle`` as
photos'.  A valid document becomes the active one and exactly the originals
under the prefixes whose rule changed lose their variants; an invalid one is
reported and never replaces the active one.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from moto import mock_aws

from chalicelib import imaging
from chalicelib.config import API_TIMEOUT_SECONDS, Settings
from chalicelib.originals.events import Change, MalformedEvent, parse_message, recheck_prefix_body
from chalicelib.originals.purge import Rechecker
from chalicelib.policies.document import ACTIVE_KEY, PENDING_KEY, SOURCE_POLICY
from chalicelib.policies.store import PolicyStore
from chalicelib.resize.grammar import parse_size
from chalicelib.resize.service import ResizeService
from chalicelib.storage import ImageStore
from tests.support import BUCKET
from tests.support.marks import difference_box, frames, mark_png
from tests.support.s3_events import sqs_event_for
from tests.test_lifecycle import ORIGINALS, Aws, photo

MARK = "_policy/marks/logo.png"
OTHER_MARK = "_policy/marks/other.png"
SHOP = "shop/alice/1/cat.jpg"
STUDIO = "studio/bob/2/dog.jpg"
FREE = "uploads/carol/3/bird.jpg"


def document(opacity: float = 0.9, **extra: Any) -> bytes:
    rules = [
        {"prefix": "shop/", "watermark": {"key": MARK, "opacity": opacity, "min_size": 200}},
        {"prefix": "studio/", "watermark": {"key": OTHER_MARK, "min_size": 200}},
    ]
    return json.dumps({"version": 1, "rules": rules, **extra}).encode()


class Policies:
    """The lifecycle harness, with policy uploads and the prefix rechecks it schedules."""

    def __init__(self, aws: Aws) -> None:
        self.aws = aws
        self.rechecks: list[tuple[str, int]] = []

    def upload(self, key: str, body: bytes) -> list[str]:
        """Store a file under _policy/ and handle its event; the failed message ids."""
        return self.aws.handle(self.aws.put(key, body, uploader=None))

    def active(self) -> bytes:
        return self.aws.s3.get_object(Bucket=ORIGINALS, Key=ACTIVE_KEY)["Body"].read()

    def made(self) -> dict[str, str]:
        """Every variant (not the ledger) → the rule fingerprint it records ('' for none)."""
        listed = self.aws.s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])
        return {
            item["Key"]: self.aws.s3.head_object(Bucket=BUCKET, Key=item["Key"])["Metadata"].get(
                SOURCE_POLICY, ""
            )
            for item in listed
            if not item["Key"].startswith("_variants/")
        }

    def of(self, key: str) -> dict[str, str]:
        return {variant: rule for variant, rule in self.made().items() if variant.endswith(key)}

    def marked(self, token: str, key: str) -> bool:
        """Whether the stored ``token`` of ``key`` differs from its unmarked render."""
        body = self.aws.s3.get_object(Bucket=BUCKET, Key=f"{token}/{key}")["Body"].read()
        original = self.aws.s3.get_object(Bucket=ORIGINALS, Key=key)["Body"].read()
        plain = imaging.render(original, parse_size(token, 4096), self.aws.settings.imaging).body
        return difference_box(frames(body)[0], frames(plain)[0]) is not None


@pytest.fixture
def policies(app_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[Policies]:
    with mock_aws():
        harness = Policies(Aws(presets=("320x", "120x"), policy_cache_seconds=0))

        def scheduled(_self: Rechecker, bucket: str, prefix: str, delay_seconds: int) -> None:
            harness.rechecks.append((prefix, delay_seconds))

        monkeypatch.setattr(Rechecker, "schedule_prefix", scheduled)
        for key in (SHOP, STUDIO, FREE):
            assert harness.aws.handle(harness.aws.put(key, photo((800, 600)))) == []
        harness.aws.notifications()
        yield harness


def activated(policies: Policies) -> None:
    assert policies.upload(MARK, mark_png((200, 100), (128, 128, 128))) == []
    assert policies.upload(OTHER_MARK, mark_png((200, 100), (255, 255, 255))) == []
    assert policies.upload(PENDING_KEY, document()) == []


def test_a_policy_upload_purges_exactly_the_originals_under_its_prefixes(
    policies: Policies,
) -> None:
    before = policies.made()
    assert set(before.values()) == {""}  # made before any policy
    activated(policies)
    after = policies.made()
    assert policies.of(SHOP) == {}
    assert policies.of(STUDIO) == {}
    assert policies.of(FREE) == {k: v for k, v in before.items() if k.endswith(FREE)}
    notified = [n for n in policies.aws.notifications() if n["key"] == PENDING_KEY]
    assert notified[-1]["state"] == "policy_activated"
    assert notified[-1]["changed_prefixes"] == ["shop/", "studio/"]
    assert sorted(prefix for prefix, _ in policies.rechecks) == ["shop/", "studio/"]
    # The next views render with the policy.
    policies.aws.service.resize("320x", SHOP.split("/"))
    assert policies.marked("320x", SHOP)
    assert policies.of(SHOP)[f"320x/{SHOP}"] != ""
    assert not policies.marked("320x", FREE)
    assert set(policies.made()) - set(after) == {f"320x/{SHOP}"}


def test_policy_files_are_never_originals(policies: Policies) -> None:
    activated(policies)
    for key in (MARK, OTHER_MARK, PENDING_KEY, ACTIVE_KEY):
        assert policies.aws.catalog.get(key) is None
        assert not [variant for variant in policies.made() if variant.endswith(key)]
    assert policies.aws.catalog.usage("alice").originals == 3  # the three photos (put as alice)


def test_an_invalid_document_never_replaces_the_active_one(policies: Policies) -> None:
    activated(policies)
    policies.aws.service.resize("320x", SHOP.split("/"))
    active, made = policies.active(), policies.made()
    policies.aws.notifications()
    bad = document(opacity=1.5)
    assert policies.upload(PENDING_KEY, bad) == []  # handled: retrying cannot fix it
    assert policies.active() == active
    assert policies.made() == made
    (notified,) = policies.aws.notifications()
    assert notified["state"] == "policy_rejected"
    assert notified["errors"] == ["rules[0].watermark.opacity: must be > 0 and <= 1"]
    assert policies.upload(PENDING_KEY, b"{") == []
    assert policies.active() == active


def test_a_broken_watermark_image_is_refused_and_the_old_one_stays_active(
    policies: Policies,
) -> None:
    activated(policies)
    active = policies.active()
    assert policies.upload(MARK, b"GIF89a not really") == []
    assert policies.active() == active
    (notified,) = [n for n in policies.aws.notifications() if n["state"] == "policy_rejected"]
    assert notified["errors"][0].startswith(f"rules[0].watermark.key: {MARK!r}: ")


def test_a_watermark_replacement_purges_the_rules_that_use_it(policies: Policies) -> None:
    activated(policies)
    for key in (SHOP, STUDIO):
        policies.aws.service.resize("320x", key.split("/"))
    old_shop = policies.aws.s3.get_object(Bucket=BUCKET, Key=f"320x/{SHOP}")["Body"].read()
    studio = policies.of(STUDIO)
    free = policies.of(FREE)
    assert policies.upload(MARK, mark_png((200, 100), (0, 0, 0))) == []
    assert policies.of(SHOP) == {}
    assert policies.of(STUDIO) == studio
    assert policies.of(FREE) == free
    policies.aws.service.resize("320x", SHOP.split("/"))
    new_shop = policies.aws.s3.get_object(Bucket=BUCKET, Key=f"320x/{SHOP}")["Body"].read()
    assert difference_box(frames(new_shop)[0], frames(old_shop)[0]) is not None
    assert policies.marked("320x", SHOP)


def test_deleting_the_document_lifts_every_rule(policies: Policies) -> None:
    activated(policies)
    policies.aws.service.resize("320x", SHOP.split("/"))
    assert policies.aws.handle(policies.aws.delete(PENDING_KEY)) == []
    assert policies.of(SHOP) == {}
    policies.aws.service.resize("320x", SHOP.split("/"))
    assert not policies.marked("320x", SHOP)
    assert policies.of(SHOP) == {f"320x/{SHOP}": ""}


def test_the_same_document_again_purges_nothing(policies: Policies) -> None:
    activated(policies)
    policies.aws.service.resize("320x", SHOP.split("/"))
    made = policies.made()
    policies.rechecks.clear()
    assert policies.upload(PENDING_KEY, document()) == []
    assert policies.made() == made
    assert policies.rechecks == []


def test_a_late_write_under_the_old_policy_is_removed_by_the_prefix_recheck(
    policies: Policies,
) -> None:
    """A warm function still holding the old document stores an unmarked variant after the
    purge; the delayed prefix recheck, past every cached copy, removes it."""
    aws = policies.aws
    warm_settings = Settings(
        bucket=BUCKET, public_url=aws.settings.public_url, originals_bucket=ORIGINALS
    )
    originals = ImageStore(aws.s3, ORIGINALS)
    warm = ResizeService(
        warm_settings,
        ImageStore(aws.s3, BUCKET),
        originals,
        policies=PolicyStore(originals, warm_settings, clock=lambda: 0.0),
    )
    assert warm.policies.rule_for(SHOP) is None  # cached: no rules yet
    activated(policies)
    warm.resize("500x", SHOP.split("/"))
    assert policies.of(SHOP) == {f"500x/{SHOP}": ""}  # unmarked, under no rule
    assert not policies.marked("500x", SHOP)
    delays = {delay for _, delay in policies.rechecks}
    assert delays == {aws.settings.policy_recheck_delay}
    for prefix, _ in policies.rechecks:
        record = {"messageId": f"r-{prefix}", "body": recheck_prefix_body(ORIGINALS, prefix)}
        assert aws.handle(record) == []
    assert policies.of(SHOP) == {}
    assert policies.of(FREE) != {}


def test_the_recheck_comes_after_every_cached_copy_and_its_last_render() -> None:
    for cache, recheck in ((0, 0), (30, 150), (600, 150), (600, 900)):
        settings = Settings(
            bucket=BUCKET,
            public_url="https://x",
            policy_cache_seconds=cache,
            recheck_delay_seconds=recheck,
        )
        assert settings.policy_recheck_delay >= min(900, cache + API_TIMEOUT_SECONDS)
        assert settings.policy_recheck_delay >= recheck
        assert settings.policy_recheck_delay <= 900  # SQS's longest delay


def test_a_prefix_recheck_goes_through_the_queue_with_its_delay(app_env: dict[str, str]) -> None:
    with mock_aws():
        aws = Aws()
        Rechecker(aws.sqs, aws.events_queue, delay_seconds=0).schedule_prefix(ORIGINALS, "shop/", 0)
        (record,) = aws.queued_rechecks()
        (event,) = parse_message(record)
        assert (event.change, event.bucket, event.key) == (
            Change.RECHECK_PREFIX,
            ORIGINALS,
            "shop/",
        )


@pytest.mark.parametrize("item", [{}, {"bucket": "b"}, {"bucket": "b", "prefix": ""}, "shop/"])
def test_a_malformed_prefix_recheck_is_refused(item: Any) -> None:
    with pytest.raises(MalformedEvent):
        parse_message({"messageId": "m", "body": json.dumps({"RecheckPrefix": item})})


def test_meta_says_whether_an_original_is_watermarked(lifecycle_app: Any, s3: Any) -> None:
    def handled(key: str, body: bytes) -> None:
        etag = s3.put_object(Bucket="originals", Key=key, Body=body)["ETag"]
        event = sqs_event_for(lifecycle_app, key, etag, len(body))
        answer = lifecycle_app.lambda_.invoke("on_original_event", event)
        assert answer.payload == {"batchItemFailures": []}

    def watermarked(key: str) -> bool:
        return json.loads(lifecycle_app.http.get(f"/meta/{key}").body)["watermarked"]

    handled("shop/a.jpg", photo((640, 480)))
    handled("free/b.jpg", photo((640, 480)))
    assert not watermarked("shop/a.jpg")
    handled(MARK, mark_png())
    handled(OTHER_MARK, mark_png())
    handled(PENDING_KEY, document())
    assert watermarked("shop/a.jpg")
    assert not watermarked("free/b.jpg")


def doctor_says(policies: Policies) -> tuple[str, str]:
    from scripts.ops import doctor

    target = doctor.Target(
        bucket=BUCKET,
        originals_bucket=ORIGINALS,
        api_url="",
        website_url="",
        public_url="",
        s3=policies.aws.s3,
    )
    result = doctor.policies(target)
    return result.mark, result.detail


def test_the_doctor_validates_the_document_in_service_and_the_uploaded_one(
    policies: Policies,
) -> None:
    assert doctor_says(policies)[0] == "–"  # no policy document: skipped
    activated(policies)
    assert doctor_says(policies) == ("✓", "2 rule(s), 2 mark(s)")
    policies.upload(PENDING_KEY, document(opacity=0))
    mark, detail = doctor_says(policies)
    assert mark == "✗"
    assert "rules[0].watermark.opacity: must be > 0 and <= 1" in detail
    assert "stays in service" in detail
    policies.upload(PENDING_KEY, document())
    policies.aws.s3.put_object(Bucket=ORIGINALS, Key=OTHER_MARK, Body=b"replaced, no event")
    assert doctor_says(policies) == (
        "✗",
        f"the mark {OTHER_MARK} was replaced, not activated: its prefixes answer 409",
    )
    policies.aws.s3.delete_object(Bucket=ORIGINALS, Key=OTHER_MARK)
    assert "is missing" in doctor_says(policies)[1]
    policies.upload(OTHER_MARK, mark_png())
    policies.aws.s3.put_object(Bucket=ORIGINALS, Key=PENDING_KEY, Body=document(opacity=0.5))
    assert doctor_says(policies) == ("✗", f"{PENDING_KEY} is not the document in service")
    policies.aws.s3.put_object(Bucket=ORIGINALS, Key=ACTIVE_KEY, Body=b"{}")
    assert doctor_says(policies)[1].startswith(f"{ACTIVE_KEY} is unreadable")


def test_an_active_document_deleted_or_altered_by_hand_is_restored(policies: Policies) -> None:
    activated(policies)
    active = policies.active()
    made = policies.made()
    assert policies.aws.handle(policies.aws.delete(ACTIVE_KEY)) == []
    assert policies.active() == active
    assert policies.made() == made  # the same rules: nothing purged
    assert policies.upload(ACTIVE_KEY, b'{"version": 1, "rules": []}') == []
    assert policies.active() == active
    assert policies.upload(ACTIVE_KEY, b"not json") == []
    assert policies.active() == active
