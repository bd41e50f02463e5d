"""The code's shape: Pillow only in imaging/, a docstring per module, no reaching into privates."""

from __future__ import annotations

import ast
import subprocess

import pytest

from tests.support import ROOT
from tests.support.layout import imports_of, module_path, own_modules, runtime_modules

IMAGING = "chalicelib.imaging"
# Notes kept beside the repository, which a reader of the repository doesn't have.
OUTSIDE_CITATIONS = ("FACTS" + ".md", "../" + "shared")
PATH_HACK = "sys.path" + ".insert("
# These import another tree on purpose: the bombs bench's child another revision's
# chalicelib (`--before REV`), the package smoke test the unpacked Lambda zip.
ANOTHER_TREE = {"scripts/bench/bombs.py", "scripts/ops/package.py"}


def package_of(module: str) -> str:
    return module if module_path(module).name == "__init__.py" else module.rpartition(".")[0]


@pytest.mark.parametrize("module", sorted(own_modules() | {"app"}))
def test_pillow_is_imported_only_inside_imaging(module: str) -> None:
    if module.startswith(IMAGING):
        return
    imported = {name for name, _ in imports_of(module)}
    assert not {name for name in imported if name == "PIL" or name.startswith("PIL.")}, module


@pytest.mark.parametrize("module", sorted(own_modules()))
def test_every_module_says_what_it_is(module: str) -> None:
    docstring = ast.get_docstring(ast.parse(module_path(module).read_text()))
    assert docstring, f"{module} has no docstring"


@pytest.mark.parametrize("module", sorted(own_modules() | {"app"}))
def test_no_module_reaches_into_another_packages_private_names(module: str) -> None:
    for imported, names in imports_of(module):
        if not imported.startswith("chalicelib") or package_of(imported) == package_of(module):
            continue
        private = [name for name in names if name.startswith("_")]
        assert not private, f"{module} imports {private} from {imported}"


@pytest.mark.parametrize(
    "package", sorted(m for m in own_modules() if module_path(m).name == "__init__.py")
)
def test_packages_say_what_they_expose(package: str) -> None:
    tree = ast.parse(module_path(package).read_text())
    exported = [
        node
        for node in tree.body
        if isinstance(node, ast.Assign)
        and any(getattr(t, "id", "") == "__all__" for t in node.targets)
    ]
    assert exported, f"{package} has no __all__"


def test_every_runtime_module_is_reached_from_the_app() -> None:
    # Nothing ships that the functions never import (operations code lives in scripts/).
    assert own_modules() == set(runtime_modules())


def test_no_path_hacks_and_no_citations_outside_the_repository() -> None:
    tracked = subprocess.run(
        ["git", "ls-files", "*.py", "*.js", "Makefile", "*.md", "*.toml"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    for name in tracked:
        text = (ROOT / name).read_text()
        if name not in ANOTHER_TREE:
            assert PATH_HACK not in text, name
        for outside in OUTSIDE_CITATIONS:
            assert outside not in text, name
