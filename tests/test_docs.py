"""The docs: every relative link and anchor resolves, and the configuration table is complete.

Links are checked in README.md and docs/*.md, outside code blocks and inline
code; http(s) and mailto links are not followed.  An anchor must match a
heading's GitHub slug in the target page (duplicates get -1, -2, ...).  The
configuration page's table must list exactly the variables that
``Settings.from_env`` reads: those it asks a recording environment for, and
every env-like string in chalicelib/config.py (in case a branch is not taken).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from urllib.parse import unquote

import pytest

from chalicelib.config import Settings

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS_DIR = ROOT / "docs"
PAGES = [README, *sorted(DOCS_DIR.glob("*.md"))]
CONFIGURATION = DOCS_DIR / "configuration.md"
CONFIG_SOURCE = ROOT / "chalicelib" / "config.py"
MINIMAL_ENV = {"IMAGE_BUCKET": "images", "PUBLIC_URL": "http://127.0.0.1:4568/images"}

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_INLINE_CODE = re.compile(r"(`+)(?!`).+?(?<!`)\1(?!`)", re.DOTALL)
_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^()\s<>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
_REFERENCE = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?([^\s>]+)>?", re.MULTILINE)
_HEADING = re.compile(r"^ {0,3}#{1,6}\s+(.*?)(?:\s+#+)?\s*$")
_HTML_ANCHOR = re.compile(r"<a\s[^>]*\b(?:id|name)=\"([^\"]+)\"")
_EXTERNAL = ("http://", "https://", "mailto:")
_ENV_NAME = re.compile(r"[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+")


def prose_lines(text: str) -> Iterator[str]:
    """The lines outside fenced code blocks (a fenced block's lines come back empty)."""
    fence = ""
    for line in text.splitlines():
        match = _FENCE.match(line)
        if fence:
            if match and match.group(1)[0] == fence[0] and len(match.group(1)) >= len(fence):
                fence = ""
            yield ""
        elif match:
            fence = match.group(1)
            yield ""
        else:
            yield line


def prose(text: str) -> str:
    """The page without code blocks and inline code, where no link is a link."""
    return _INLINE_CODE.sub("", "\n".join(prose_lines(text)))


def github_slug(heading: str) -> str:
    """GitHub's anchor for a heading: its text, lowercased, punctuation but - and _ dropped."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link's text only
    text = re.sub(r"<[^>]+>", "", text)  # inline HTML
    return re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """Every anchor a page offers: its headings' slugs (duplicates numbered) and HTML ids."""
    text = page.read_text(encoding="utf-8")
    seen: dict[str, int] = {}
    found: set[str] = set()
    for line in prose_lines(text):
        match = _HEADING.match(line)
        if not match:
            continue
        slug = github_slug(match.group(1))
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        found.add(slug if count == 0 else f"{slug}-{count}")
    found.update(_HTML_ANCHOR.findall(text))
    return found


def link_targets(page: Path) -> list[str]:
    text = prose(page.read_text(encoding="utf-8"))
    return [*_LINK.findall(text), *_REFERENCE.findall(text)]


def broken_links(page: Path) -> list[str]:
    problems = []
    for target in link_targets(page):
        if target.lower().startswith(_EXTERNAL):
            continue
        path_part, _, anchor = target.partition("#")
        linked = (page.parent / unquote(path_part)).resolve() if path_part else page
        if not linked.is_relative_to(ROOT):
            problems.append(f"{target}: outside the repository")
        elif not linked.exists():
            problems.append(f"{target}: no such file")
        elif anchor and linked.suffix != ".md":
            problems.append(f"{target}: an anchor in a file that is not Markdown")
        elif anchor and unquote(anchor) not in anchors(linked):
            problems.append(f"{target}: no heading with that anchor in {linked.name}")
    return problems


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_every_relative_link_and_anchor_resolves(page: Path) -> None:
    assert broken_links(page) == []


def test_the_readme_links_every_docs_page() -> None:
    linked = {
        (README.parent / target.partition("#")[0]).resolve() for target in link_targets(README)
    }
    assert [page.name for page in PAGES[1:] if page.resolve() not in linked] == []


@pytest.mark.parametrize(
    ("heading", "slug"),
    [
        ("Sizing: memory, timeout, architecture", "sizing-memory-timeout-architecture"),
        ("The plain `chalice deploy` route", "the-plain-chalice-deploy-route"),
        ("ISA-L (`isal`) under Pillow's inflate", "isa-l-isal-under-pillows-inflate"),
        ("See [Limits](limits.md) first", "see-limits-first"),
        ("SNAP_TO_ALLOWED_SIZES", "snap_to_allowed_sizes"),
    ],
)
def test_github_slug(heading: str, slug: str) -> None:
    assert github_slug(heading) == slug


def test_anchors_number_duplicate_headings_and_skip_code(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("# Notes\n## Notes\n```sh\n# not a heading\n```\n## Notes\n", encoding="utf-8")
    assert anchors(page) == {"notes", "notes-1", "notes-2"}


def test_links_in_code_are_not_links(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "[ok](#here)\n# Here\n`[no](missing.md)`\n```\n[no](missing.md)\n```\n", encoding="utf-8"
    )
    assert link_targets(page) == ["#here"]


class RecordingEnv(Mapping[str, str]):
    """An environment that remembers every name it was asked for."""

    def __init__(self, values: Mapping[str, str]) -> None:
        self._values = dict(values)
        self.asked: set[str] = set()

    def __getitem__(self, name: str) -> str:
        self.asked.add(name)
        return self._values[name]

    def get(self, name: str, default: str | None = None) -> str | None:
        self.asked.add(name)
        return self._values.get(name, default)

    def __contains__(self, name: object) -> bool:
        if isinstance(name, str):
            self.asked.add(name)
        return name in self._values

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)


def variables_settings_read() -> set[str]:
    env = RecordingEnv(MINIMAL_ENV)
    Settings.from_env(env)
    assert set(MINIMAL_ENV) <= env.asked, "the recording environment saw no reads"
    tree = ast.parse(CONFIG_SOURCE.read_text(encoding="utf-8"))
    in_source = {
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and _ENV_NAME.fullmatch(node.value)
    }
    return env.asked | in_source


def documented_variables() -> set[str]:
    """The names in the first column of configuration.md's one `variable` table."""
    tables: list[set[str]] = []
    rows: set[str] | None = None
    for line in prose_lines(CONFIGURATION.read_text(encoding="utf-8")):
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if not line.lstrip().startswith("|"):
            rows = None
        elif rows is None and cells[0].lower() == "variable":
            rows = set()
            tables.append(rows)
        elif rows is not None and not set(cells[0]) <= set("-: "):
            rows.update(n for n in re.findall(r"`([^`]+)`", cells[0]) if _ENV_NAME.fullmatch(n))
    assert len(tables) == 1, f"configuration.md has {len(tables)} tables headed 'variable'"
    return tables[0]


def test_the_configuration_table_lists_every_variable_settings_reads() -> None:
    assert sorted(variables_settings_read() - documented_variables()) == []


def test_the_configuration_table_lists_only_variables_settings_reads() -> None:
    assert sorted(documented_variables() - variables_settings_read()) == []
