"""Routes that end in an object key: one per key depth, for the app and the packaged stack."""

from __future__ import annotations

# `/resize/{size}/{key+}` would be the natural route, but `chalice local` and
# chalice.test.Client only match routes with as many segments as the path.
# One route per key depth works the same in both and in API Gateway; the
# segments arrive percent-encoded everywhere and are joined and decoded once in
# grammar.parse_key.  Deeper keys get API Gateway's own 403.
MAX_KEY_DEPTH = 32


def key_path(depth: int) -> str:
    """The path template of a key with ``depth`` segments: ``{k0}/{k1}/…``."""
    return "/".join(f"{{k{i}}}" for i in range(depth))


def owner_paths() -> list[str]:
    """``DELETE /uploads/<key>``'s paths, every depth: behind the uploads authorizer."""
    return [f"/uploads/{key_path(depth)}" for depth in range(1, MAX_KEY_DEPTH + 1)]
