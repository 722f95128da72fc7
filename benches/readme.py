"""The README's benchmark tables, one owner for all of them: the text between
``<!-- NAME:start -->`` and ``<!-- NAME:end -->`` is replaced, markers kept."""

from __future__ import annotations

from pathlib import Path


def rewrite(path: Path, name: str, block: str) -> bool:
    """Put ``block`` between the ``name`` markers of ``path``; True when the file changed."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    text = path.read_text()
    i, j = text.find(start), text.find(end)
    if i < 0 or j < i:
        raise SystemExit(f"{path}: markers {start} ... {end} not found")
    new = text[: i + len(start)] + "\n" + block + "\n" + text[j:]
    if new != text:
        path.write_text(new)
    return new != text
