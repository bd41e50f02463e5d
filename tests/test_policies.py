"""The policy document, parsed purely: every malformed document refused naming its field."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chalicelib.policies.document import (
    ACTIVE_KEY,
    EMPTY,
    MAX_DOCUMENT_BYTES,
    PENDING_KEY,
    InvalidPolicy,
    PolicyDocument,
    Rule,
    WatermarkRule,
    parse_document,
)
from chalicelib.resize.grammar import parse_size

MARK = "_policy/marks/logo.png"


def document(*rules: Any, version: Any = 1) -> bytes:
    return json.dumps({"version": version, "rules": list(rules)}).encode()


def rule(**fields: Any) -> dict[str, Any]:
    return {"prefix": "shop/", **fields}


def marked(**fields: Any) -> dict[str, Any]:
    return rule(watermark={"key": MARK, **fields})


MALFORMED = [
    (b"{not json", "document: not JSON"),
    (b"[]", "document: must be a JSON object"),
    (b'{"rules": []}', "document.version: is required"),
    (b'{"version": 1}', "document.rules: is required"),
    (document(version=2), "version: must be 1"),
    (document(version="1"), "version: must be 1"),
    (document(version=True), "version: must be 1"),
    (b'{"version": 1, "rules": {}}', "rules: must be a list"),
    (b'{"version": 1, "rules": [], "extra": 1}', "document.extra: is not a known field"),
    (document("shop/"), "rules[0]: must be a JSON object"),
    (document({}), "rules[0].prefix: is required"),
    (document(rule(prefix="")), "rules[0].prefix: must be a non-empty string"),
    (document(rule(prefix=3)), "rules[0].prefix: must be a non-empty string"),
    (document(rule(prefix="_policy/")), "rules[0].prefix: keys starting with '_' are reserved"),
    (document(rule(prefix="a" * 1025)), "rules[0].prefix: longer than an S3 key"),
    (document(rule(), rule()), "rules[1].prefix: repeats rules[0].prefix"),
    (document(rule(colour="red")), "rules[0].colour: is not a known field"),
    (document(rule(signed="yes")), "rules[0].signed: must be true or false"),
    (document(rule(signed=1)), "rules[0].signed: must be true or false"),
    (document(rule(sizes=[])), "rules[0].sizes: must be a non-empty list of size tokens"),
    (document(rule(sizes="300x")), "rules[0].sizes: must be a non-empty list of size tokens"),
    (document(rule(sizes=[300])), "rules[0].sizes: must be a non-empty list of size tokens"),
    (document(rule(sizes=["300x", "300y"])), "rules[0].sizes[1]: size must look like"),
    (document(rule(sizes=["99999x"])), "rules[0].sizes[0]: "),
    (document(rule(formats=[])), "rules[0].formats: must be a non-empty list of formats"),
    (document(rule(formats=["jpeg", "bmp"])), "rules[0].formats[1]: must be one of avif, gif"),
    (document(rule(watermark="logo.png")), "rules[0].watermark: must be a JSON object"),
    (document(rule(watermark={})), "rules[0].watermark.key: is required"),
    (document(rule(watermark={"key": "logo.png"})), "rules[0].watermark.key: must be the key"),
    (document(rule(watermark={"key": "_policy/"})), "rules[0].watermark.key: must be the key"),
    (document(rule(watermark={"key": PENDING_KEY})), "rules[0].watermark.key: names a policy"),
    (document(rule(watermark={"key": ACTIVE_KEY})), "rules[0].watermark.key: names a policy"),
    (document(marked(anchor="top")), "rules[0].watermark.anchor: must be one of c, n, ne"),
    (document(marked(margin=0.5)), "rules[0].watermark.margin: must be >= 0 and < 0.5"),
    (document(marked(margin=-0.1)), "rules[0].watermark.margin: must be >= 0 and < 0.5"),
    (document(marked(width=0)), "rules[0].watermark.width: must be > 0 and <= 1"),
    (document(marked(width=1.5)), "rules[0].watermark.width: must be > 0 and <= 1"),
    (document(marked(opacity=0)), "rules[0].watermark.opacity: must be > 0 and <= 1"),
    (document(marked(opacity="0.5")), "rules[0].watermark.opacity: must be > 0 and <= 1"),
    (document(marked(opacity=True)), "rules[0].watermark.opacity: must be > 0 and <= 1"),
    (document(marked(min_size=0)), "rules[0].watermark.min_size: must be a whole number"),
    (document(marked(min_size=2.5)), "rules[0].watermark.min_size: must be a whole number"),
    (document(marked(min_size=99999)), "rules[0].watermark.min_size: must be a whole number"),
    # ETags are the activation's to record, never the uploader's.
    (document(marked(etag='"abc"')), "rules[0].watermark.etag: is not a known field"),
    (b" " * (MAX_DOCUMENT_BYTES + 1), "document: over"),
]


@pytest.mark.parametrize(("raw", "error"), MALFORMED, ids=[e for _, e in MALFORMED])
def test_every_malformed_document_is_refused_naming_the_field(raw: bytes, error: str) -> None:
    with pytest.raises(InvalidPolicy) as info:
        parse_document(raw, 4096)
    assert any(found.startswith(error) for found in info.value.errors), info.value.errors


def test_every_problem_of_a_document_is_named_at_once() -> None:
    raw = document(marked(opacity=2), rule(prefix="b/", sizes=["nope"], signed="x"))
    with pytest.raises(InvalidPolicy) as info:
        parse_document(raw, 4096)
    assert [error.split(":")[0] for error in info.value.errors] == [
        "rules[0].watermark.opacity",
        "rules[1].sizes[0]",
        "rules[1].signed",
    ]


def test_a_valid_document_parses_with_its_defaults() -> None:
    raw = document(
        marked(anchor="nw", opacity=1, min_size=1),
        {"prefix": "shop/free/", "sizes": ["300x", "640x.auto"], "formats": ["jpeg"]},
        {"prefix": "private/", "signed": True},
    )
    parsed = parse_document(raw, 4096)
    mark = WatermarkRule(MARK, anchor="nw", opacity=1.0, min_size=1)
    assert parsed.rules[0] == Rule("shop/", watermark=mark)
    free = parsed.rules[1]
    assert free.size_tokens == ("300x", "640x.auto")
    # A listed .auto allows each concrete format it resolves to, as ALLOWED_SIZES does.
    assert {parse_size(t, 4096) for t in ("300x", "640x.webp", "640x.avif")} <= free.sizes
    assert free.formats == {"jpeg"}
    assert parsed.rules[2].signed


def test_the_longest_matching_prefix_wins_and_no_match_means_no_rule() -> None:
    parsed = parse_document(
        document(marked(), {"prefix": "shop/free/"}, {"prefix": "shop/free/x", "signed": True}),
        4096,
    )
    assert parsed.rule_for("shop/cat.jpg").prefix == "shop/"
    assert parsed.rule_for("shop/free/cat.jpg").prefix == "shop/free/"
    assert parsed.rule_for("shop/free/xmas.jpg").prefix == "shop/free/x"
    assert parsed.rule_for("shopping/cat.jpg") is None
    assert parsed.rule_for("uploads/a/1/cat.jpg") is None
    assert parsed.fingerprint_for("uploads/a/1/cat.jpg") == ""


def test_the_active_copy_round_trips_with_its_marks_etags() -> None:
    pending = parse_document(document(marked(), {"prefix": "b/", "sizes": ["300x"]}), 4096)
    active = pending.with_etags({MARK: '"e1"'})
    again = parse_document(active.to_json(), 4096, active=True)
    assert again == active
    assert again.rules[0].watermark is not None
    assert again.rules[0].watermark.etag == '"e1"'


def test_a_fingerprint_changes_with_every_field_and_the_marks_etag() -> None:
    base = Rule("shop/", WatermarkRule(MARK, etag='"e1"'))
    variants = [
        Rule("shop/", WatermarkRule(MARK, etag='"e2"')),
        Rule("shop/", WatermarkRule(MARK, etag='"e1"', opacity=0.5)),
        Rule("shop/", WatermarkRule(MARK, etag='"e1"', anchor="c")),
        Rule("shop/", WatermarkRule(MARK, etag='"e1"', min_size=100)),
        Rule("shop/", WatermarkRule(MARK, etag='"e1"'), signed=True),
        Rule("shop/", WatermarkRule(MARK, etag='"e1"'), formats=frozenset({"jpeg"})),
        Rule("shop/", WatermarkRule(MARK, etag='"e1"'), size_tokens=("300x",)),
        Rule("shop/"),
    ]
    prints = {base.fingerprint, *(other.fingerprint for other in variants)}
    assert len(prints) == len(variants) + 1
    assert Rule("shop/", WatermarkRule(MARK, etag='"e1"')).fingerprint == base.fingerprint


def test_changed_prefixes_are_the_added_removed_and_changed_rules() -> None:
    before = PolicyDocument((Rule("a/"), Rule("b/", signed=True), Rule("c/")))
    after = PolicyDocument((Rule("a/"), Rule("b/"), Rule("d/")))
    assert before.changed_prefixes(after) == ["b/", "c/", "d/"]
    assert before.changed_prefixes(before) == []
    assert EMPTY.changed_prefixes(before) == ["a/", "b/", "c/"]
