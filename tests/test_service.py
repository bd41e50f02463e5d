"""The service's policy and flow over moto: limits, signatures, snapping, budget, loops."""

from __future__ import annotations

import dataclasses
import threading
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.response import StreamingBody

from chalicelib import imaging
from chalicelib.config import Settings
from chalicelib.errors import (
    OriginalChanged,
    OriginalNotFound,
    OriginalTooManyBytes,
    RedirectLoop,
    SignatureRequired,
    SizeNotAllowed,
    StorageUnavailable,
    VariantBudgetExhausted,
    VariantTooLarge,
)
from chalicelib.policies.store import PolicyStore
from chalicelib.resize import variants
from chalicelib.resize.grammar import parse_size
from chalicelib.resize.ledger import alias_entry, original_prefix, output_entry
from chalicelib.resize.request import nearest_allowed
from chalicelib.resize.service import ResizeService
from chalicelib.resize.signing import sign
from chalicelib.resize.variants import SOURCE_ETAG, VariantWriter
from chalicelib.storage import ImageStore
from tests.support import BUCKET, PUBLIC_URL, corpus

SECRET = b"a-signing-secret-of-some-length"


def make_service(s3: Any, settings: Settings, now: float | None = None) -> ResizeService:
    clock = (lambda: now) if now is not None else datetime.now(UTC).timestamp
    return ResizeService(settings, ImageStore(s3, BUCKET), clock=clock)


@pytest.fixture
def original(s3: Any) -> str:
    s3.put_object(Bucket=BUCKET, Key="photos/cat.jpg", Body=corpus.jpeg((800, 600)))
    return "photos/cat.jpg"


def keys(s3: Any) -> set[str]:
    return {item["Key"] for item in s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])}


def test_oversized_original_is_refused_without_downloading(
    s3: Any, settings: Settings, original: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The GET's Content-Length refuses it: its body is never read."""

    def no_download(*_: object, **__: object) -> bytes:
        raise AssertionError("the original was downloaded")

    monkeypatch.setattr(StreamingBody, "read", no_download)
    service = make_service(s3, dataclasses.replace(settings, max_source_bytes=1000))
    with pytest.raises(OriginalTooManyBytes) as info:
        service.resize("100x", original.split("/"))
    assert info.value.status == 413
    assert keys(s3) == {original}


def test_signed_url_creates_a_signed_variant(s3: Any, settings: Settings, original: str) -> None:
    service = make_service(s3, dataclasses.replace(settings, signing_keys=(SECRET,)))
    signature = sign(SECRET, "100x", original)
    url = service.resize(signature, ["100x", *original.split("/")])
    assert url == f"{PUBLIC_URL}/{signature}/100x/{original}"
    assert f"{signature}/100x/{original}" in keys(s3)


def test_unsigned_url_is_refused_when_signing_is_on(
    s3: Any, settings: Settings, original: str
) -> None:
    service = make_service(s3, dataclasses.replace(settings, signing_keys=(SECRET,)))
    with pytest.raises(SignatureRequired):
        service.resize("100x", original.split("/"))
    assert keys(s3) == {original}


def test_snapping_redirects_to_the_nearest_allowed_size(
    s3: Any, settings: Settings, original: str
) -> None:
    allowed = frozenset(parse_size(t, 4096) for t in ("100x", "300x", "300x300-cover"))
    snapping = dataclasses.replace(settings, allowed_sizes=allowed, snap_to_allowed_sizes=True)
    service = make_service(s3, snapping)
    assert service.resize("280x", original.split("/")) == f"{PUBLIC_URL}/300x/{original}"
    assert service.resize("250x260-cover", original.split("/")) == (
        f"{PUBLIC_URL}/300x300-cover/{original}"
    )
    assert keys(s3) == {original}  # a snap stores nothing; the website makes the allowed size
    with pytest.raises(SizeNotAllowed):  # nothing of the same kind to snap to
        service.resize("300x200", original.split("/"))


def test_snapping_with_signing_signs_the_target(s3: Any, settings: Settings, original: str) -> None:
    service = make_service(
        s3,
        dataclasses.replace(
            settings,
            allowed_sizes=frozenset({parse_size("300x", 4096)}),
            snap_to_allowed_sizes=True,
            signing_keys=(SECRET,),
        ),
    )
    url = service.resize(sign(SECRET, "280x", original), ["280x", *original.split("/")])
    assert url == f"{PUBLIC_URL}/{sign(SECRET, '300x', original)}/300x/{original}"


@pytest.mark.parametrize(
    ("token", "expected"),
    [("90x", "100x"), ("110x", "100x"), ("200x", "300x"), ("x50", "x40"), ("5000x", "300x")],
)
def test_nearest_allowed(token: str, expected: str) -> None:
    allowed = frozenset(parse_size(t, 8192) for t in ("100x", "300x", "x40", "300x300"))
    nearest = nearest_allowed(parse_size(token, 8192), allowed)
    assert nearest is not None
    assert nearest.token == expected


def test_variant_budget_caps_distinct_sizes(s3: Any, settings: Settings, original: str) -> None:
    service = make_service(s3, dataclasses.replace(settings, max_variants_per_original=2))
    service.resize("100x", original.split("/"))
    service.resize("200x", original.split("/"))
    with pytest.raises(VariantBudgetExhausted):
        service.resize("300x", original.split("/"))
    assert "300x/photos/cat.jpg" not in keys(s3)
    # An existing size is not a new variant: asking again within the minute still works.
    assert service.resize("100x", original.split("/")).endswith("/100x/photos/cat.jpg")


def test_recently_stored_variant_is_a_race_not_a_loop(
    s3: Any, settings: Settings, original: str
) -> None:
    service = make_service(s3, settings)
    service.resize("100x", original.split("/"))
    stored = s3.get_object(Bucket=BUCKET, Key="100x/photos/cat.jpg")["Body"].read()
    assert service.resize("100x", original.split("/")).endswith("/100x/photos/cat.jpg")
    assert s3.get_object(Bucket=BUCKET, Key="100x/photos/cat.jpg")["Body"].read() == stored


def test_long_stored_variant_asked_for_again_is_a_loop(
    s3: Any, settings: Settings, original: str
) -> None:
    make_service(s3, settings).resize("100x", original.split("/"))
    later = datetime.now(UTC).timestamp() + settings.loop_grace_seconds + 5
    with pytest.raises(RedirectLoop) as info:
        make_service(s3, settings, now=later).resize("100x", original.split("/"))
    assert info.value.status == 508
    assert "doctor" in info.value.public_message


def test_conditional_write_never_overwrites(s3: Any, settings: Settings) -> None:
    store = ImageStore(s3, BUCKET)
    assert store.put_new("k", b"first", content_type="image/png", cache_control="x")
    assert not store.put_new("k", b"second", content_type="image/png", cache_control="x")
    assert s3.get_object(Bucket=BUCKET, Key="k")["Body"].read() == b"first"


@pytest.fixture
def wide(s3: Any) -> str:
    s3.put_object(Bucket=BUCKET, Key="photos/wide.jpg", Body=corpus.jpeg((1000, 500)))
    return "photos/wide.jpg"


def count_renders(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    rendered: list[str] = []
    real_render = imaging.render

    def counting(original: bytes, spec: Any, *options: Any) -> Any:
        rendered.append(spec.token)
        return real_render(original, spec, *options)

    monkeypatch.setattr(imaging, "render", counting)
    return rendered


def stored_outputs(s3: Any, key: str) -> dict[str, str]:
    """Each stored object of ``key``'s variants: 'image' or where its redirect points."""
    found = {}
    for item in s3.list_objects_v2(Bucket=BUCKET).get("Contents", []):
        if item["Key"].endswith(f"/{key}") and not item["Key"].startswith("_variants/"):
            head = s3.head_object(Bucket=BUCKET, Key=item["Key"])
            found[item["Key"]] = head.get("WebsiteRedirectLocation", "image")
    return found


def test_spellings_of_one_output_store_it_once_and_redirect_the_rest(
    s3: Any, settings: Settings, wide: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    rendered = count_renders(monkeypatch)
    service = make_service(s3, settings)
    first, *others = corpus.SAME_OUTPUT_OF_1000x500
    assert service.resize(first, wide.split("/")) == f"{PUBLIC_URL}/{first}/{wide}"
    for token in others:
        assert service.resize(token, wide.split("/")) == f"{PUBLIC_URL}/{first}/{wide}", token
    assert rendered == [first]
    redirect = f"{PUBLIC_URL}/{first}/{wide}"
    assert stored_outputs(s3, wide) == {
        f"{first}/{wide}": "image",
        **{f"{token}/{wide}": redirect for token in others},
    }
    # The redirects are empty objects; only one object holds pixels.
    for token in others:
        assert s3.head_object(Bucket=BUCKET, Key=f"{token}/{wide}")["ContentLength"] == 0


def test_boxes_larger_than_the_original_are_one_output(
    s3: Any, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    s3.put_object(Bucket=BUCKET, Key="small.jpg", Body=corpus.jpeg((200, 100)))
    rendered = count_renders(monkeypatch)
    service = make_service(s3, settings)
    urls = {service.resize(token, ["small.jpg"]) for token in ("300x300", "4000x", "x101", "250x")}
    assert urls == {f"{PUBLIC_URL}/300x300/small.jpg"}
    assert rendered == ["300x300"]


def test_the_budget_counts_outputs_not_spellings(s3: Any, settings: Settings, wide: str) -> None:
    service = make_service(s3, dataclasses.replace(settings, max_variants_per_original=2))
    for token in corpus.SAME_OUTPUT_OF_1000x500:
        service.resize(token, wide.split("/"))
    service.resize("100x", wide.split("/"))
    with pytest.raises(VariantBudgetExhausted):
        service.resize("200x", wide.split("/"))
    # Spellings of outputs that exist keep working once the budget is spent.
    assert service.resize("50x50@2x", wide.split("/")) == f"{PUBLIC_URL}/100x/{wide}"


def test_redirects_are_capped_too_then_answered_without_storing(
    s3: Any, settings: Settings, wide: str
) -> None:
    service = make_service(s3, dataclasses.replace(settings, max_variants_per_original=2))
    service.resize("600x300", wide.split("/"))
    for token in ("600x", "x300", "600x301", "601x300"):
        assert service.resize(token, wide.split("/")) == f"{PUBLIC_URL}/600x300/{wide}"
    assert set(stored_outputs(s3, wide)) == {f"{t}/{wide}" for t in ("600x300", "600x", "x300")}


def test_signed_spellings_share_one_output_and_count_against_the_budget(
    s3: Any, settings: Settings, wide: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    rendered = count_renders(monkeypatch)
    signing = dataclasses.replace(settings, signing_keys=(SECRET,), max_variants_per_original=3)
    service = make_service(s3, signing, now=1_000)
    # Per-page-view URLs: the same size, a new expiry each time.
    signatures = [sign(SECRET, "200x", wide, expires=2_000 + view) for view in range(10)]
    urls = {service.resize(signature, ["200x", *wide.split("/")]) for signature in signatures}
    assert urls == {f"{PUBLIC_URL}/{signatures[0]}/200x/{wide}"}
    assert rendered == ["200x"]
    stored = stored_outputs(s3, wide)
    assert len(stored) == 1 + 3  # one image, then redirects up to the budget
    assert list(stored.values()).count("image") == 1


def test_ledgers_of_nested_keys_do_not_mix(s3: Any, settings: Settings) -> None:
    s3.put_object(Bucket=BUCKET, Key="users/bob", Body=corpus.jpeg((400, 300)))
    s3.put_object(Bucket=BUCKET, Key="users/bob/avatar.jpg", Body=corpus.jpeg((400, 300)))
    service = make_service(s3, dataclasses.replace(settings, max_variants_per_original=1))
    service.resize("100x", ["users", "bob", "avatar.jpg"])
    assert service.resize("100x", ["users", "bob"]) == f"{PUBLIC_URL}/100x/users/bob"
    with pytest.raises(VariantBudgetExhausted):
        service.resize("200x", ["users", "bob"])


def test_a_failed_render_gives_its_budget_slot_back(
    s3: Any, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    s3.put_object(Bucket=BUCKET, Key="a.jpg", Body=corpus.jpeg((400, 300)))
    service = make_service(s3, dataclasses.replace(settings, max_variants_per_original=1))

    def failing(*_: object, **__: object) -> None:
        raise RuntimeError("encoder crashed")

    monkeypatch.setattr(imaging, "render", failing)
    with pytest.raises(RuntimeError):
        service.resize("100x", ["a.jpg"])
    assert keys(s3) == {"a.jpg"}
    monkeypatch.undo()
    assert service.resize("200x", ["a.jpg"]) == f"{PUBLIC_URL}/200x/a.jpg"


def test_originals_are_read_from_their_own_bucket_and_variants_written_to_the_public_one(
    s3: Any, settings: Settings
) -> None:
    s3.create_bucket(Bucket="originals")
    s3.put_object(Bucket="originals", Key="cat.jpg", Body=corpus.jpeg((400, 300)))
    service = ResizeService(settings, ImageStore(s3, BUCKET), ImageStore(s3, "originals"))
    assert service.resize("100x", ["cat.jpg"]) == f"{PUBLIC_URL}/100x/cat.jpg"
    assert "100x/cat.jpg" in keys(s3)
    assert "cat.jpg" not in keys(s3)
    with pytest.raises(OriginalNotFound):
        ResizeService(settings, ImageStore(s3, BUCKET)).resize("200x", ["cat.jpg"])


def test_a_found_variant_answers_whatever_the_originals_get_found(
    s3: Any, settings: Settings, original: str
) -> None:
    """The original's GET runs alongside the variant's HEAD; a race's winner needs neither."""
    service = make_service(s3, settings)
    service.resize("100x", original.split("/"))
    s3.delete_object(Bucket=BUCKET, Key=original)
    assert service.resize("100x", original.split("/")).endswith("/100x/photos/cat.jpg")
    with pytest.raises(OriginalNotFound):
        service.resize("200x", original.split("/"))


def test_the_claim_goes_out_before_the_render_and_lands_before_the_variant(
    s3: Any, settings: Settings, original: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The render waits here until the claim is stored: only a claim already under way lands."""
    events: list[str] = []
    claimed = threading.Event()
    put_new, render = ImageStore.put_new, imaging.render

    def recorded_put(self: ImageStore, key: str, *args: Any, **kwargs: Any) -> bool:
        kind = "claim" if key.startswith("_variants/") else "variant"
        events.append(f"{kind} sent")
        written = put_new(self, key, *args, **kwargs)
        events.append(f"{kind} stored")
        if kind == "claim":
            claimed.set()
        return written

    def render_once_claimed(*args: Any, **kwargs: Any) -> Any:
        assert claimed.wait(timeout=30), "the claim was not sent before rendering"
        events.append("render")
        return render(*args, **kwargs)

    monkeypatch.setattr(ImageStore, "put_new", recorded_put)
    monkeypatch.setattr(imaging, "render", render_once_claimed)
    make_service(s3, settings).resize("100x", original.split("/"))
    assert events == ["claim sent", "claim stored", "render", "variant sent", "variant stored"]


def test_a_failed_claim_stores_no_variant(
    s3: Any, settings: Settings, original: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    put_new = ImageStore.put_new

    def failing_claim(self: ImageStore, key: str, *args: Any, **kwargs: Any) -> bool:
        if key.startswith("_variants/"):
            raise StorageUnavailable("storage is unavailable, try again")
        return put_new(self, key, *args, **kwargs)

    monkeypatch.setattr(ImageStore, "put_new", failing_claim)
    with pytest.raises(StorageUnavailable):
        make_service(s3, settings).resize("100x", original.split("/"))
    assert keys(s3) == {original}


CHROMIUM = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8"


def _auto(service: ResizeService, token: str, key: str, accept: str | None) -> str:
    answer = service.answer(token, key.split("/"), accept)
    assert answer.negotiated
    return answer.url.removeprefix(f"{PUBLIC_URL}/")


@pytest.mark.parametrize(
    ("body", "accept", "expected"),
    [
        (corpus.jpeg((800, 600)), CHROMIUM, "640x.avif"),
        (corpus.jpeg((800, 600)), "image/webp,*/*", "640x.webp"),
        (corpus.jpeg((800, 600)), "*/*", "640x"),
        (corpus.png_rgba((800, 600)), None, "640x"),
        (corpus.png_rgba((800, 600)), CHROMIUM, "640x.avif"),
        (corpus.in_format("WEBP", (800, 600)), "*/*", "640x.jpeg"),
        (corpus.animated("GIF", 5, (800, 600)), CHROMIUM, "640x.webp"),
        (corpus.animated("GIF", 5, (800, 600)), "*/*", "640x"),
    ],
    ids=["photo", "photo-webp", "photo-any", "alpha-none", "alpha", "webp-any", "gif", "gif-any"],
)
def test_auto_redirects_to_the_negotiated_variant_and_stores_nothing_under_auto(
    s3: Any, settings: Settings, body: bytes, accept: str | None, expected: str
) -> None:
    s3.put_object(Bucket=BUCKET, Key="a/b.img", Body=body)
    service = make_service(s3, settings)
    assert _auto(service, "640x.auto", "a/b.img", accept) == f"{expected}/a/b.img"
    stored = keys(s3)
    assert f"{expected}/a/b.img" in stored
    assert not [key for key in stored if ".auto" in key]
    # Asked again, the stored variant answers: nothing rendered twice.
    assert _auto(service, "640x.auto", "a/b.img", accept) == f"{expected}/a/b.img"


def test_avif_of_an_animation_is_a_redirect_to_its_animated_webp(
    s3: Any, settings: Settings
) -> None:
    s3.put_object(Bucket=BUCKET, Key="anim.gif", Body=corpus.animated("GIF", 5, (400, 200)))
    service = make_service(s3, settings)
    assert service.resize("200x.avif", ["anim.gif"]) == f"{PUBLIC_URL}/200x.webp/anim.gif"
    assert stored_outputs(s3, "anim.gif") == {
        "200x.webp/anim.gif": "image",
        "200x.avif/anim.gif": f"{PUBLIC_URL}/200x.webp/anim.gif",
    }
    webp = s3.get_object(Bucket=BUCKET, Key="200x.webp/anim.gif")["Body"].read()
    assert corpus.opened(webp).n_frames == 5


def test_the_originals_own_format_named_is_a_redirect_to_the_short_spelling(
    s3: Any, settings: Settings, original: str
) -> None:
    service = make_service(s3, settings)
    assert service.resize("200x.jpeg", original.split("/")) == f"{PUBLIC_URL}/200x/{original}"
    assert stored_outputs(s3, original) == {
        f"200x/{original}": "image",
        f"200x.jpeg/{original}": f"{PUBLIC_URL}/200x/{original}",
    }


def test_auto_presets_make_every_format_the_rule_can_give(s3: Any, settings: Settings) -> None:
    service = make_service(s3, settings)
    cases = {
        "p.jpg": (corpus.jpeg((800, 600)), {"640x.avif", "640x.webp", "640x"}),
        "a.png": (corpus.png_rgba((800, 600)), {"640x.avif", "640x.webp", "640x"}),
        "g.gif": (corpus.animated("GIF", 5, (800, 600)), {"640x.avif", "640x.webp", "640x"}),
    }
    for key, (body, tokens) in cases.items():
        etag = s3.put_object(Bucket=BUCKET, Key=key, Body=body)["ETag"]  # the current version
        urls = service.prerender(key, body, etag, [parse_size("640x.auto", 4096)])
        assert {url.removeprefix(f"{PUBLIC_URL}/") for url in urls.values()} <= {
            f"{token}/{key}" for token in tokens
        }
        assert set(stored_outputs(s3, key)) == {f"{token}/{key}" for token in tokens}, key
    assert stored_outputs(s3, "g.gif")["640x.avif/g.gif"] == f"{PUBLIC_URL}/640x.webp/g.gif"
    assert not [key for key in keys(s3) if ".auto" in key]
    # Every browser's first view is a stored variant: rendered by no request.
    for key in cases:
        before = keys(s3)
        for accept in (CHROMIUM, "image/webp", "*/*"):
            assert f"{_auto(service, '640x.auto', key, accept)}" in before
        assert keys(s3) == before


def test_auto_and_the_budget_count_concrete_outputs(s3: Any, settings: Settings) -> None:
    s3.put_object(Bucket=BUCKET, Key="p.jpg", Body=corpus.jpeg((800, 600)))
    service = make_service(s3, dataclasses.replace(settings, max_variants_per_original=2))
    _auto(service, "640x.auto", "p.jpg", CHROMIUM)
    _auto(service, "640x.auto", "p.jpg", "image/webp")
    with pytest.raises(VariantBudgetExhausted):
        _auto(service, "640x.auto", "p.jpg", "*/*")


def changing_the_original(s3: Any, monkeypatch: pytest.MonkeyPatch, step: str, change: Any) -> None:
    """``imaging.<step>`` (render, or inspect for a redirect) runs ``change`` first: the
    original is replaced or deleted after the miss read it and before it stores anything."""
    real = getattr(imaging, step)

    def slow(*args: Any, **kwargs: Any) -> Any:
        change()
        return real(*args, **kwargs)

    monkeypatch.setattr(imaging, step, slow)


def checking_the_original(
    monkeypatch: pytest.MonkeyPatch, original: str, before: Any = None, after: Any = None
) -> None:
    """The original's HEADs (the check before a write) run ``before`` first, ``after`` last."""
    head = ImageStore.head

    def checked(self: ImageStore, key: str) -> Any:
        if key == original and before is not None:
            before()
        found = head(self, key)
        if key == original and after is not None:
            after()
        return found

    monkeypatch.setattr(ImageStore, "head", checked)


@pytest.mark.parametrize(
    ("change", "error"),
    [("overwrite", OriginalChanged), ("delete", OriginalNotFound)],
)
@pytest.mark.parametrize("when", ["before the check", "during a long render"])
def test_a_miss_whose_original_changed_meanwhile_stores_nothing(
    s3: Any,
    settings: Settings,
    original: str,
    monkeypatch: pytest.MonkeyPatch,
    change: str,
    error: type[Exception],
    when: str,
) -> None:
    """Changed before the check sent with the claim, or while a render outlasts that check."""

    def overwrite() -> None:
        s3.put_object(Bucket=BUCKET, Key=original, Body=corpus.jpeg((300, 300)))

    def delete() -> None:
        s3.delete_object(Bucket=BUCKET, Key=original)

    act = {"overwrite": overwrite, "delete": delete}[change]
    before = keys(s3) - {original}
    if when == "before the check":
        checking_the_original(monkeypatch, original, before=act)
    else:  # every render is older than the check's max age: it checks again
        monkeypatch.setattr(variants, "ORIGINAL_CHECK_MAX_AGE_SECONDS", 0.0)
        changing_the_original(s3, monkeypatch, "render", act)
    with pytest.raises(error) as info:
        make_service(s3, settings).resize("100x", original.split("/"))
    assert info.value.status == {"overwrite": 409, "delete": 404}[change]  # type: ignore[attr-defined]
    assert keys(s3) - {original} == before  # no variant, and its claim given back


def test_a_quick_miss_checks_its_original_while_rendering(
    s3: Any, settings: Settings, original: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check goes with the claim, so a miss's only S3 call after its render is the write."""
    events: list[str] = []
    head, put_new, render = ImageStore.head, ImageStore.put_new, imaging.render

    def recorded_head(self: ImageStore, key: str) -> Any:
        events.append("original checked" if key == original else "variant looked up")
        return head(self, key)

    def recorded_put(self: ImageStore, key: str, *args: Any, **kwargs: Any) -> bool:
        events.append("claim" if key.startswith("_variants/") else "variant")
        return put_new(self, key, *args, **kwargs)

    def recorded_render(*args: Any, **kwargs: Any) -> Any:
        rendered = render(*args, **kwargs)
        events.append("rendered")
        return rendered

    monkeypatch.setattr(ImageStore, "head", recorded_head)
    monkeypatch.setattr(ImageStore, "put_new", recorded_put)
    monkeypatch.setattr(imaging, "render", recorded_render)
    make_service(s3, settings).resize("100x", original.split("/"))
    assert events[-2:] == ["rendered", "variant"]
    # No HEAD of the variant: no ledger entry names its path, so it is not stored.
    assert sorted(events[:-2]) == ["claim", "original checked"]


def test_the_variant_is_looked_up_only_where_its_ledger_may_name_it(
    settings: Settings,
) -> None:
    """An entry for the path, or a LIST cut at its limit: only then a HEAD can find it."""
    budget = dataclasses.replace(settings, max_variants_per_original=2)
    store = ImageStore(None, BUCKET)  # no call is made
    ledger_writer = VariantWriter(budget, store, store, lambda r: r, PolicyStore(store, budget))
    entries = [output_entry("k", "100x75", "100x").removeprefix(original_prefix("k"))]
    assert ledger_writer.may_hold(entries, "100x")
    assert not ledger_writer.may_hold(entries, "200x")
    alias = alias_entry("k", "100x75").removeprefix(original_prefix("k"))
    assert ledger_writer.may_hold([*entries, alias], "100x75")
    full = [f"o/{size}x={size}x" for size in range(100, 106)]  # 2 × (budget + 1) names
    assert ledger_writer.may_hold(full, "200x")
    assert not ledger_writer.may_hold(full[:-1], "200x")


def test_a_miss_walks_its_originals_container_once(
    s3: Any, settings: Settings, original: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The walk make() checks with (inspect) is the render's: a 20 MP JPEG's takes ~1.5 ms."""
    from chalicelib.imaging import containers

    walks: list[int] = []
    walk = containers.walk

    def counted(data: bytes, *args: Any) -> Any:
        walks.append(len(data))
        return walk(data, *args)

    monkeypatch.setattr(containers, "walk", counted)
    make_service(s3, settings).resize("100x", original.split("/"))
    assert len(walks) == 1


def test_a_change_after_a_recent_check_is_left_to_the_recheck(
    s3: Any, settings: Settings, original: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Within ORIGINAL_CHECK_MAX_AGE_SECONDS of its check a variant is stored, with its entry
    and the ETag it was made from: the overwrite's purge or its recheck finds it."""
    made_from = s3.head_object(Bucket=BUCKET, Key=original)["ETag"]
    checking_the_original(
        monkeypatch,
        original,
        after=lambda: s3.put_object(Bucket=BUCKET, Key=original, Body=corpus.jpeg((300, 300))),
    )
    make_service(s3, settings).resize("100x", original.split("/"))
    stored = s3.head_object(Bucket=BUCKET, Key=f"100x/{original}")["Metadata"]
    assert stored[SOURCE_ETAG] == made_from != s3.head_object(Bucket=BUCKET, Key=original)["ETag"]
    assert any(key.startswith(original_prefix(original)) for key in keys(s3))


def test_a_miss_writes_the_ledger_entry_its_claim_just_made_once(
    s3: Any, settings: Settings, original: str
) -> None:
    """The claim's entry is fresh when the variant is stored: the original's HEAD goes alone
    (tests/test_lifecycle.py: a claim older than half the in-flight window is written again)."""
    puts: list[str] = []
    s3.meta.events.register(
        "before-parameter-build.s3.PutObject", lambda params, **_: puts.append(params["Key"])
    )
    make_service(s3, settings).resize("100x", original.split("/"))
    entries = [key for key in puts if key.startswith(original_prefix(original))]
    assert len(entries) == 1
    assert sorted(puts) == sorted([*entries, f"100x/{original}"])


def test_a_redirect_to_an_output_is_not_stored_once_the_original_changed(
    s3: Any, settings: Settings, wide: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second, *_ = corpus.SAME_OUTPUT_OF_1000x500
    service = make_service(s3, settings)
    service.resize(first, wide.split("/"))
    before = keys(s3)
    changing_the_original(
        s3,
        monkeypatch,
        "inspect",
        lambda: s3.put_object(Bucket=BUCKET, Key=wide, Body=corpus.jpeg((1000, 501))),
    )
    with pytest.raises(OriginalChanged):
        service.resize(second, wide.split("/"))
    assert keys(s3) == before


def test_distinct_qualities_are_distinct_outputs_within_the_budget(
    s3: Any, settings: Settings, original: str
) -> None:
    service = make_service(s3, dataclasses.replace(settings, max_variants_per_original=3))
    for quality in (70, 71, 72):
        service.resize(f"100x-q{quality}.webp", original.split("/"))
    with pytest.raises(VariantBudgetExhausted):
        service.resize("100x-q73.webp", original.split("/"))
    assert "100x-q73.webp/photos/cat.jpg" not in keys(s3)


def test_a_variant_over_its_bytes_per_pixel_is_refused_and_stores_nothing(
    s3: Any, settings: Settings
) -> None:
    noise = corpus.encode(corpus.noise((600, 600)), "PNG")
    s3.put_object(Bucket=BUCKET, Key="noise.png", Body=noise)
    service = make_service(s3, dataclasses.replace(settings, max_variants_per_original=1))
    with pytest.raises(VariantTooLarge) as info:
        service.resize("600x-q100.webp", ["noise.png"])  # ~2.7 bytes a pixel
    assert info.value.status == 422
    assert keys(s3) == {"noise.png"}  # no variant, and its claim given back:
    assert service.resize("600x.webp", ["noise.png"]).endswith("/600x.webp/noise.png")


def test_an_anchored_auto_size_keeps_its_anchor_and_records_the_focal_point(
    s3: Any, settings: Settings
) -> None:
    from chalicelib.focus import SOURCE_FOCUS

    body = corpus.jpeg((800, 600))
    s3.put_object(Bucket=BUCKET, Key="p.jpg", Body=body, Metadata={"focus": "0.1,0.5"})
    service = make_service(s3, settings)
    for accept, expected in (
        (CHROMIUM, "160x160-cover-focus.avif"),
        ("*/*", "160x160-cover-focus"),
    ):
        assert _auto(service, "160x160-cover-focus.auto", "p.jpg", accept) == f"{expected}/p.jpg"
        head = s3.head_object(Bucket=BUCKET, Key=f"{expected}/p.jpg")
        assert head["Metadata"][SOURCE_FOCUS] == "0.1,0.5", expected
