"""The docs: every relative link and every repository path they name exists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from .readme_blocks import blocks, run

ROOT = Path(__file__).resolve().parents[1]
DOCS = [
    ROOT / "README.md",
    ROOT / "CHANGELOG.md",
    ROOT / "rust" / "core" / "tests" / "golden" / "README.md",
    *sorted((ROOT / "docs").glob("*.md")),
]

#: Markdown links `[text](target)` and reference definitions `[id]: target`.
LINK = re.compile(r"\]\(([^)\s]+)\)|^\[[^\]]+\]:\s*(\S+)", re.MULTILINE)
#: A path in backticks that starts at a top-level folder of the repository.
TOP = ("python/", "rust/", "tests/", "benches/", "docs/", "examples/", "profiles/", "../")
CODE_PATH = re.compile(r"`((?:" + "|".join(re.escape(t) for t in TOP) + r")[\w./-]*\w)`")


def _anchors(text: str) -> set[str]:
    """GitHub's anchors for the headings of a Markdown page."""
    out = set()
    for title in re.findall(r"^#+\s+(.*)$", text, re.MULTILINE):
        slug = re.sub(r"[^\w\- ]", "", title.strip().lower()).replace(" ", "-")
        out.add(slug)
    return out


def _targets(doc: Path) -> list[str]:
    text = doc.read_text()
    found = [a or b for a, b in LINK.findall(text)]
    return [t for t in found if not re.match(r"[a-z]+:", t)]  # http:, https:, mailto:


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_exist(doc: Path) -> None:
    missing = []
    for target in _targets(doc):
        path, _, anchor = target.partition("#")
        dest = (doc.parent / path).resolve() if path else doc
        if not dest.exists():
            missing.append(target)
        elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest.read_text()):
            missing.append(target)
    assert not missing, f"{doc.relative_to(ROOT)} links to what does not exist: {missing}"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_named_repository_paths_exist(doc: Path) -> None:
    # Paths are written from the repository root (or from the page, for `../`).
    missing = []
    for path in CODE_PATH.findall(doc.read_text()):
        base = doc.parent if path.startswith("../") else ROOT
        if not (base / path).exists():
            missing.append(path)
    assert not missing, f"{doc.relative_to(ROOT)} names paths that do not exist: {missing}"


def test_no_source_cites_a_missing_design_page() -> None:
    # DESIGN.md lives outside the repository: the code cites pages readers have.
    cited = []
    for src in list((ROOT / "rust").rglob("*.rs")) + list((ROOT / "python").rglob("*.py")):
        for page in re.findall(r"\b([A-Z][A-Z_]+\.md)\b", src.read_text()):
            if not (ROOT / page).exists() and not (ROOT / "docs" / page).exists():
                cited.append(f"{src.relative_to(ROOT)}: {page}")
    assert not cited, cited


def test_every_python_block_of_the_readme_runs(monkeypatch):
    # In order, in one namespace, from the repository root: the README is the API's
    # first test. A block marked `<!-- docs-test: skip: why -->` is only compiled.
    monkeypatch.chdir(ROOT)
    ran, skipped = run(ROOT / "README.md")
    found = blocks((ROOT / "README.md").read_text())
    # Skipped: the two blocks that read a Parquet book and the cluster one.
    assert ran == len(found) - skipped and skipped <= 3, (ran, skipped)
    for b in found:
        compile(b.code, f"README.md:{b.line}", "exec")


@pytest.mark.parametrize("doc", DOCS[1:], ids=lambda p: str(p.relative_to(ROOT)))
def test_python_blocks_of_the_other_pages_run(doc, monkeypatch):
    monkeypatch.chdir(ROOT)
    run(doc)
