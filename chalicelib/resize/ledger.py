"""The ledger of what is stored for each original, kept as empty objects under ``_variants/``.

Two kinds of entry, both read with one LIST request (outputs sort first):

* ``_variants/<n>/<key>/o/<canonical token>=<path>``: the output named by
  the canonical token (see :func:`chalicelib.imaging.canonical_spec`) is
  stored at ``<path>/<key>``.  ``<path>`` is the spelling that first asked
  for it, ``[<signature>/]<size token>``.
* ``_variants/<n>/<key>/r/<path>``: ``<path>/<key>`` is a redirect to one
  of the outputs (another spelling of the same pixels).

``<n>`` is the key's length in characters.  Without it the entries of
``users/bob`` and ``users/bob/avatar.jpg`` would share a prefix; with it,
one original's prefix can never begin another's.  Neither size tokens nor
signatures contain ``=``, so an output entry splits unambiguously.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property

LEDGER_ROOT = "_variants/"
OUTPUTS = "o/"
ALIASES = "r/"  # after OUTPUTS in S3's (UTF-8 byte) listing order
# One LIST page (S3 returns at most 1000 keys) holds both kinds at the largest budget.
MAX_BUDGET = 499
# The longest canonical token (``16384x16384-cover-smart-q100.webp`` and kin) has
# fewer characters than this; the key-length check budgets for it.
MAX_CANONICAL_TOKEN_CHARS = 40


@dataclass(frozen=True)
class Ledger:
    """What is stored for one original: where each distinct output lives, and the redirects."""

    # Every output entry, (canonical token, path): two spellings of one output asked for
    # at once both store theirs, and a purge must find both, not just the one served.
    stored: frozenset[tuple[str, str]] = frozenset()
    aliases: frozenset[str] = frozenset()  # paths that hold a redirect to an output

    @classmethod
    def from_names(cls, names: Iterable[str]) -> Ledger:
        """Read the entry names listed under :func:`original_prefix` (the prefix removed)."""
        stored: set[tuple[str, str]] = set()
        aliases: set[str] = set()
        for name in names:
            kind, rest = name[: len(OUTPUTS)], name[len(OUTPUTS) :]
            token, separator, path = rest.partition("=")
            if kind == OUTPUTS and separator:
                stored.add((token, path))
            elif kind == ALIASES:
                aliases.add(rest)
        return cls(frozenset(stored), frozenset(aliases))

    @cached_property
    def outputs(self) -> Mapping[str, str]:
        """Canonical token → the path that serves it: of several, the first in listing order."""
        outputs: dict[str, str] = {}
        for token, path in sorted(self.stored):
            outputs.setdefault(token, path)
        return outputs

    @cached_property
    def paths(self) -> frozenset[str]:
        """Every path an object of this original is stored at (output or redirect)."""
        return frozenset(path for _, path in self.stored) | self.aliases

    def with_output(self, canonical_token: str, path: str) -> Ledger:
        """This ledger once the output ``canonical_token`` is stored at ``path`` (if it wasn't)."""
        if canonical_token in self.outputs:
            return self
        return Ledger(self.stored | {(canonical_token, path)}, self.aliases)

    def entries(self, key: str) -> dict[str, str]:
        """Each stored object of ``key`` (output or redirect) → the ledger entry naming it."""
        stored = {f"{path}/{key}": output_entry(key, token, path) for token, path in self.stored}
        stored.update({f"{path}/{key}": alias_entry(key, path) for path in self.aliases})
        return stored


def original_prefix(key: str) -> str:
    """Every ledger entry of ``key``, and nothing of any other original, starts with this."""
    return f"{LEDGER_ROOT}{len(key)}/{key}/"


def output_entry(key: str, canonical_token: str, path: str) -> str:
    """The entry saying the output ``canonical_token`` of ``key`` is stored at ``<path>/<key>``."""
    return f"{original_prefix(key)}{OUTPUTS}{canonical_token}={path}"


def alias_entry(key: str, path: str) -> str:
    """The entry saying ``<path>/<key>`` redirects to one of the outputs."""
    return f"{original_prefix(key)}{ALIASES}{path}"


def longest_entry_bytes(key: str, path: str) -> int:
    """UTF-8 bytes in the longest entry a request for ``<path>/<key>`` can write."""
    prefix = original_prefix(key) + OUTPUTS
    return len(prefix.encode()) + MAX_CANONICAL_TOKEN_CHARS + 1 + len(path.encode())
