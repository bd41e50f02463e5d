"""The policy document, parsed purely into frozen values; every error names its field's path.

A document is JSON: ``{"version": 1, "rules": [{"prefix": ..., "watermark": {...},
"sizes": [...], "formats": [...], "signed": false}, ...]}``.  The longest
matching prefix wins; a key no rule matches is served as if there were no
document.  The active copy (written by the events function) also records
each watermark image's ETag, so a rule's fingerprint changes when its image
is replaced.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from chalicelib.errors import ServiceError
from chalicelib.imaging.formats import FORMATS  # plain data, no Pillow
from chalicelib.imaging.watermark import MARK_ANCHORS, MARK_FRACTIONS, Watermark, is_fraction
from chalicelib.resize.grammar import ResizeSpec, parse_size
from chalicelib.resize.negotiate import auto_targets

VERSION = 1
# Keys under here are the service's own: no upload form can target them (their first
# segment is UPLOAD_PREFIX, a lowercase word), no URL renders them, no event records them.
POLICY_ROOT = "_policy/"
PENDING_KEY = f"{POLICY_ROOT}policies.json"  # what an operator uploads
ACTIVE_KEY = f"{POLICY_ROOT}active.json"  # what the functions read: only ever a valid one
MAX_DOCUMENT_BYTES = 256 * 1024
ANCHORS = tuple(MARK_ANCHORS)
# A variant's x-amz-meta- name for the fingerprint of the rule it was made under.
SOURCE_POLICY = "source-policy"
NO_POLICY = ""  # the fingerprint of a key no rule matches (and what an unmarked variant records)
_RESERVED_PREFIX = "_"
_FINGERPRINT_CHARS = 16


class InvalidPolicy(ValueError):
    """A document that cannot be used; ``errors`` name each problem's field path."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = tuple(errors)


# A mark's placement when the document leaves it out: the imaging Watermark's defaults.
_MARK_DEFAULTS = {field.name: field.default for field in fields(Watermark)}


@dataclass(frozen=True)
class WatermarkRule:
    """Which image marks a prefix's outputs, where, how large, how strong, and from what size."""

    key: str
    anchor: str = _MARK_DEFAULTS["anchor"]
    margin: float = _MARK_DEFAULTS["margin"]
    width: float = _MARK_DEFAULTS["width"]
    opacity: float = _MARK_DEFAULTS["opacity"]
    min_size: int = _MARK_DEFAULTS["min_size"]
    etag: str = ""  # the image's ETag when the document was activated

    def to_dict(self) -> dict[str, Any]:
        fields = {
            "key": self.key,
            "anchor": self.anchor,
            "margin": self.margin,
            "width": self.width,
            "opacity": self.opacity,
            "min_size": self.min_size,
        }
        return fields | ({"etag": self.etag} if self.etag else {})


@dataclass(frozen=True)
class Rule:
    """What applies to every original whose key starts with ``prefix``."""

    prefix: str
    watermark: WatermarkRule | None = None
    size_tokens: tuple[str, ...] | None = None  # as written; None: any size
    sizes: frozenset[ResizeSpec] | None = None  # parsed, a .auto one with its concrete targets
    formats: frozenset[str] | None = None  # output format names; None: any
    signed: bool = False

    def to_dict(self) -> dict[str, Any]:
        found: dict[str, Any] = {"prefix": self.prefix}
        if self.watermark is not None:
            found["watermark"] = self.watermark.to_dict()
        if self.size_tokens is not None:
            found["sizes"] = list(self.size_tokens)
        if self.formats is not None:
            found["formats"] = sorted(self.formats)
        return found | ({"signed": True} if self.signed else {})

    @property
    def fingerprint(self) -> str:
        """Short hash of everything in the rule (the watermark's ETag too)."""
        text = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:_FINGERPRINT_CHARS]


@dataclass(frozen=True)
class PolicyDocument:
    """Rules by prefix; the longest matching prefix wins."""

    rules: tuple[Rule, ...] = ()

    def rule_for(self, key: str) -> Rule | None:
        matching = [rule for rule in self.rules if key.startswith(rule.prefix)]
        return max(matching, key=lambda rule: len(rule.prefix), default=None)

    def fingerprint_for(self, key: str) -> str:
        """What a variant of ``key`` made under this document records (NO_POLICY: no rule)."""
        rule = self.rule_for(key)
        return NO_POLICY if rule is None else rule.fingerprint

    def watermark_keys(self) -> list[str]:
        return sorted({rule.watermark.key for rule in self.rules if rule.watermark is not None})

    def with_etags(self, etags: Mapping[str, str]) -> PolicyDocument:
        """This document with each watermark's image ETag recorded (activation)."""

        def marked(rule: Rule) -> Rule:
            if rule.watermark is None:
                return rule
            return replace(rule, watermark=replace(rule.watermark, etag=etags[rule.watermark.key]))

        return PolicyDocument(tuple(marked(rule) for rule in self.rules))

    def changed_prefixes(self, newer: PolicyDocument) -> list[str]:
        """Prefixes whose rule differs in ``newer`` (added, removed or changed)."""
        before = {rule.prefix: rule.fingerprint for rule in self.rules}
        after = {rule.prefix: rule.fingerprint for rule in newer.rules}
        return sorted(p for p in before.keys() | after.keys() if before.get(p) != after.get(p))

    def to_json(self) -> bytes:
        rules = [rule.to_dict() for rule in self.rules]
        return json.dumps({"version": VERSION, "rules": rules}, indent=2).encode()


EMPTY = PolicyDocument()


def parse_document(raw: bytes, max_dimension: int, *, active: bool = False) -> PolicyDocument:
    """A document's bytes → its rules; InvalidPolicy lists every problem, each by field path.

    ``active``: the activated copy, whose watermarks carry their image's ETag.
    """
    if len(raw) > MAX_DOCUMENT_BYTES:
        raise InvalidPolicy([f"document: over {MAX_DOCUMENT_BYTES} bytes"])
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, ValueError) as err:
        raise InvalidPolicy([f"document: not JSON ({err})"]) from err
    errors: list[str] = []
    parser = _Parser(errors, max_dimension, active)
    document = parser.document(body)
    if errors:
        raise InvalidPolicy(errors)
    return document


class _Parser:
    """Collects every error of one document instead of stopping at the first."""

    def __init__(self, errors: list[str], max_dimension: int, active: bool) -> None:
        self._errors = errors
        self._max_dimension = max_dimension
        self._active = active

    def fail(self, path: str, problem: str) -> None:
        self._errors.append(f"{path}: {problem}")

    def document(self, body: Any) -> PolicyDocument:
        if not self._object(body, "document", {"version", "rules"}, {"version", "rules"}):
            return EMPTY
        if type(body["version"]) is not int or body["version"] != VERSION:
            self.fail("version", f"must be {VERSION}")
        rules_raw = body["rules"]
        if not isinstance(rules_raw, list):
            self.fail("rules", "must be a list")
            return EMPTY
        rules = [self.rule(item, f"rules[{index}]") for index, item in enumerate(rules_raw)]
        seen: dict[str, int] = {}
        for index, rule in enumerate(rules):
            if rule is not None and rule.prefix in seen:
                self.fail(f"rules[{index}].prefix", f"repeats rules[{seen[rule.prefix]}].prefix")
            elif rule is not None:
                seen[rule.prefix] = index
        return PolicyDocument(tuple(rule for rule in rules if rule is not None))

    def rule(self, item: Any, path: str) -> Rule | None:
        known = {"prefix", "watermark", "sizes", "formats", "signed"}
        if not self._object(item, path, known, {"prefix"}):
            return None
        before = len(self._errors)
        prefix = item["prefix"]
        if not isinstance(prefix, str) or not prefix:
            self.fail(f"{path}.prefix", "must be a non-empty string")
        elif prefix.startswith(_RESERVED_PREFIX):
            self.fail(f"{path}.prefix", f"keys starting with {_RESERVED_PREFIX!r} are reserved")
        elif len(prefix.encode()) > 1024:
            self.fail(f"{path}.prefix", "longer than an S3 key (1024 bytes)")
        watermark = None
        if "watermark" in item:
            watermark = self.watermark(item["watermark"], f"{path}.watermark")
        tokens, sizes = self.sizes(item.get("sizes"), f"{path}.sizes")
        formats = self.formats(item.get("formats"), f"{path}.formats")
        signed = item.get("signed", False)
        if not isinstance(signed, bool):
            self.fail(f"{path}.signed", "must be true or false")
        if len(self._errors) > before:
            return None
        return Rule(prefix, watermark, tokens, sizes, formats, signed)

    def watermark(self, item: Any, path: str) -> WatermarkRule | None:
        known = {"key", "anchor", "margin", "width", "opacity", "min_size"}
        if not self._object(item, path, known | ({"etag"} if self._active else set()), {"key"}):
            return None
        key = item["key"]
        if not isinstance(key, str) or not key.startswith(POLICY_ROOT) or key == POLICY_ROOT:
            self.fail(f"{path}.key", f"must be the key of an image under {POLICY_ROOT!r}")
        elif key in (PENDING_KEY, ACTIVE_KEY):
            self.fail(f"{path}.key", "names a policy document, not an image")
        defaults = WatermarkRule(key="")
        anchor = item.get("anchor", defaults.anchor)
        if anchor not in ANCHORS:
            self.fail(f"{path}.anchor", f"must be one of {', '.join(ANCHORS)}")
        margin = self._fraction(item, "margin", defaults.margin, path)
        width = self._fraction(item, "width", defaults.width, path)
        opacity = self._fraction(item, "opacity", defaults.opacity, path)
        min_size = item.get("min_size", defaults.min_size)
        if type(min_size) is not int or not 1 <= min_size <= self._max_dimension:
            self.fail(f"{path}.min_size", f"must be a whole number from 1 to {self._max_dimension}")
        etag = item.get("etag", "")
        if not isinstance(etag, str):
            self.fail(f"{path}.etag", "must be a string")
        return WatermarkRule(key, anchor, margin, width, opacity, min_size, etag)

    def sizes(
        self, raw: Any, path: str
    ) -> tuple[tuple[str, ...] | None, frozenset[ResizeSpec] | None]:
        if raw is None:
            return None, None
        if not isinstance(raw, list) or not raw or not all(isinstance(t, str) for t in raw):
            self.fail(path, "must be a non-empty list of size tokens")
            return None, None
        specs: set[ResizeSpec] = set()
        for index, token in enumerate(raw):
            try:
                spec = parse_size(token, self._max_dimension)
            except ServiceError as err:
                self.fail(f"{path}[{index}]", err.public_message)
                continue
            specs |= {spec, *(auto_targets(spec) if spec.is_auto else ())}
        return tuple(raw), frozenset(specs)

    def formats(self, raw: Any, path: str) -> frozenset[str] | None:
        if raw is None:
            return None
        if not isinstance(raw, list) or not raw:
            self.fail(path, "must be a non-empty list of formats")
            return None
        for index, name in enumerate(raw):
            if name not in FORMATS:
                self.fail(f"{path}[{index}]", f"must be one of {', '.join(sorted(FORMATS))}")
        return frozenset(name for name in raw if isinstance(name, str))

    def _fraction(self, item: Mapping[str, Any], name: str, default: float, path: str) -> float:
        value = item.get(name, default)
        if not is_fraction(name, value):
            self.fail(f"{path}.{name}", f"must be {MARK_FRACTIONS[name][1]}")
            return default
        return float(value)

    def _object(self, item: Any, path: str, known: set[str], required: set[str]) -> bool:
        if not isinstance(item, dict):
            self.fail(path, "must be a JSON object")
            return False
        for name in sorted(set(item) - known):
            self.fail(f"{path}.{name}", "is not a known field")
        for name in sorted(required - set(item)):
            self.fail(f"{path}.{name}", "is required")
        return not (required - set(item))
