"""Run the Python code blocks of a Markdown page, in order, in one namespace.

Used by the docs test (every block of README.md, from the repository root) and
by ``make test``'s wheel check (the five-minute tour, with the installed wheel,
outside the source tree)::

    python tests/readme_blocks.py README.md --section "The API in five minutes" --outside

A block right after ``<!-- docs-test: skip: why -->`` is not run (a cluster,
files the reader has and the test has not).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

FENCE = re.compile(r"^```python\n(.*?)^```$", re.MULTILINE | re.DOTALL)
SKIP = re.compile(r"<!--\s*docs-test:\s*skip\b.*?-->\s*$", re.DOTALL)


@dataclass
class Block:
    line: int  # of the opening fence, 1-based
    section: str  # the `## ` heading the block is under
    code: str
    skip: bool


def blocks(text: str) -> list[Block]:
    """The ```python blocks of a Markdown text."""
    out = []
    for m in FENCE.finditer(text):
        before = text[: m.start()]
        headings = re.findall(r"^## (.*)$", before, re.MULTILINE)
        out.append(
            Block(
                line=before.count("\n") + 1,
                section=headings[-1].strip() if headings else "",
                code=m.group(1),
                skip=bool(SKIP.search(before.rstrip("\n").rsplit("\n\n", 1)[-1])),
            )
        )
    return out


def run(page: Path, section: str | None = None) -> tuple[int, int]:
    """Run the page's blocks (of one section) in one namespace: (run, skipped)."""
    ns: dict[str, object] = {"__name__": "__readme__"}
    ran = skipped = 0
    for b in blocks(page.read_text()):
        if section is not None and b.section != section:
            continue
        if b.skip:
            skipped += 1
            continue
        exec(compile(b.code, f"{page.name}:{b.line}", "exec"), ns)
        ran += 1
    return ran, skipped


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("page", type=Path)
    ap.add_argument("--section", help="only the blocks under this `## ` heading")
    ap.add_argument(
        "--outside",
        action="store_true",
        help="run in a fresh folder whose examples/ is the installed package's",
    )
    args = ap.parse_args()
    page = args.page.resolve()
    with tempfile.TemporaryDirectory(prefix="pmengine-tour-") as tmp:
        if args.outside:
            from importlib import resources

            examples = Path(str(resources.files("pmengine") / "examples"))
            (Path(tmp) / "examples").symlink_to(examples)
            os.chdir(tmp)
        ran, skipped = run(page, args.section)
    import pmengine

    if args.outside and not Path(pmengine.__file__).is_relative_to(sys.prefix):
        print(f"pmengine came from {pmengine.__file__}, not from {sys.prefix}", file=sys.stderr)
        return 1
    print(
        f"{page.name}: ran {ran} blocks ({skipped} skipped) with pmengine {pmengine.__version__} "
        f"from {Path(pmengine.__file__).parent}"
    )
    return 0 if ran else 1


if __name__ == "__main__":
    sys.exit(main())
