"""The package's layers: computation never imports presentation. Only
``pmengine.present`` and the command line import the terminal tables, the HTML
report, rich or matplotlib, and only the command bodies import the command line."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "python" / "pmengine"
PRESENTATION = ("pmengine.present", "pmengine.cli", "rich", "matplotlib")


def imported(path: Path) -> set[str]:
    """Every module ``path`` imports, at the top or inside a function."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names |= {f"{node.module}.{a.name}" for a in node.names}
    return names


def module(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_under(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


MODULES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=[module(p) for p in MODULES])
def test_computation_does_not_import_presentation(path):
    name = module(path)
    if is_under(name, ("pmengine.present", "pmengine.cli", "pmengine.__main__")):
        return
    found = sorted(n for n in imported(path) if is_under(n, PRESENTATION))
    assert not found, f"{name} imports {found}"


def test_only_the_command_bodies_import_the_command_line():
    for path in MODULES:
        name = module(path)
        if name in ("pmengine.cli", "pmengine.__main__", "pmengine.present.commands"):
            continue
        found = sorted(n for n in imported(path) if is_under(n, ("pmengine.cli",)))
        assert not found, f"{name} imports {found}"


def test_the_walk_sees_the_package():
    names = {module(p) for p in MODULES}
    assert {"pmengine.risk.liquidation", "pmengine.present.render", "pmengine.cli"} <= names
    assert "pmengine.present.report" in names
    assert "rich.table" in imported(PACKAGE / "present" / "render.py")
