"""The project's own import graph, read from the source (nothing is imported)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from functools import cache
from pathlib import Path

from tests.support import ROOT

RUNTIME_PACKAGE = "chalicelib"


def module_path(module: str) -> Path:
    """The file a dotted module name of this repository lives in."""
    base = ROOT / module.replace(".", "/")
    return base / "__init__.py" if base.is_dir() else base.with_suffix(".py")


def imports_of(module: str) -> Iterator[tuple[str, list[str]]]:
    """Every ``(module, names)`` the module imports, at any depth (lazy imports too)."""
    tree = ast.parse(module_path(module).read_text())
    package = module if module_path(module).name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, []
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            yield base, [alias.name for alias in node.names]


def own_modules() -> set[str]:
    """Every module under chalicelib/, as dotted names."""
    return {
        ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        for path in (ROOT / RUNTIME_PACKAGE).rglob("*.py")
    }


@cache
def runtime_modules() -> frozenset[str]:
    """The chalicelib modules app.py reaches through its imports, lazy ones included."""
    known = own_modules()
    reached: set[str] = set()
    pending = ["app"]
    while pending:
        module = pending.pop()
        for imported, names in imports_of(module):
            candidates = [imported, *(f"{imported}.{name}" for name in names)]
            for candidate in candidates:
                if candidate in known and candidate not in reached:
                    reached.add(candidate)
                    pending.append(candidate)
    # A package's __init__ names its modules lazily (chalicelib.imaging): its homes count.
    return frozenset(reached | {m.rpartition(".")[0] for m in reached if "." in m})
