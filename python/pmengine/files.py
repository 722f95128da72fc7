"""Reading the files the command line is given: the one way in for every input file.

Every file the CLI reads (portfolio, market, profile, stress scenarios,
account, the Binance export's files, the batch Parquet files) goes through
:func:`open_regular`, and the text formats through :func:`read_text`,
:func:`read_json` or :func:`read_toml`, with these limits:

- a regular file: a FIFO, a device (``/dev/zero``) or a folder where a file is
  expected is refused before anything is read (nothing blocks on it);
- JSON and TOML files: at most :data:`MAX_TEXT_BYTES` (64 MiB), UTF-8
  (a byte-order mark is allowed);
- JSON: standard JSON only (no ``NaN``, ``Infinity`` or ``-Infinity``),
  arrays and tables nested less than :data:`MAX_DEPTH` (128) deep, as the
  core's own parser; TOML the same depth;
- every string (key or value) at most :data:`MAX_STRING_CHARS` characters;
- the top level of the type the command expects (a JSON object, say).

A file that cannot be read as one raises :class:`~pmengine.errors.InputFileError`,
one whose content breaks one raises :class:`~pmengine.errors.InvalidInputError`;
both name the file and the limit; the CLI prints them as one line and exits 2.
"""

from __future__ import annotations

import json
import math
import os
import stat
from pathlib import Path
from typing import Any

from pmengine.errors import InputFileError, InvalidInputError

#: The largest JSON or TOML input file, in bytes (64 MiB).
MAX_TEXT_BYTES = 64 * 2**20
#: Arrays and tables may nest less deep than this (the core's JSON parser's bound).
MAX_DEPTH = 128
#: The longest string (a key or a value) in a JSON or TOML input file, in characters.
MAX_STRING_CHARS = 65_536

_KINDS = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a pipe (FIFO)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def _fail(path: str | Path, message: str) -> InputFileError:
    """The file cannot be read (as a file: its kind, its size, the system)."""
    return InputFileError.at(path, message)


def _bad(path: str | Path, message: str) -> InvalidInputError:
    """The file was read; what it holds is not valid input."""
    return InvalidInputError.at(path, message)


def check_regular(path: str | Path) -> None:
    """Refuse a path that is not a regular file (following links), without opening it."""
    try:
        st = os.stat(path)
    except OSError as e:
        raise _fail(path, f"cannot read: {e.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        raise _fail(path, f"{_kind(st.st_mode)}, a regular file expected")


def read_bytes(path: str | Path, limit: int = MAX_TEXT_BYTES) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes.

    The file is opened without blocking (a FIFO opened for reading would wait
    for a writer) and checked on the open descriptor, so a file swapped for a
    FIFO between a check and the read is refused too."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as e:
        raise _fail(path, f"cannot read: {e.strerror}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise _fail(path, f"{_kind(st.st_mode)}, a regular file expected")
        if st.st_size > limit:
            raise _fail(path, f"{st.st_size:,} bytes, more than the limit of {limit:,}")
        chunks = []
        size = 0
        while size <= limit:
            chunk = os.read(fd, min(1 << 20, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > limit:  # the file grew while it was read
            raise _fail(path, f"more than the limit of {limit:,} bytes")
        return b"".join(chunks)
    except OSError as e:
        raise _fail(path, f"cannot read: {e.strerror}") from None
    finally:
        os.close(fd)


def read_text(path: str | Path, limit: int = MAX_TEXT_BYTES) -> str:
    """The UTF-8 text of a regular file of at most ``limit`` bytes (a BOM is dropped)."""
    data = read_bytes(path, limit)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise _bad(
            path, f"not UTF-8 text: byte 0x{data[e.start]:02x} at offset {e.start}"
        ) from None


def _type_name(x: Any) -> str:
    if isinstance(x, dict):
        return "a table"
    if isinstance(x, list):
        return "an array"
    if isinstance(x, str):
        return "a string"
    if isinstance(x, bool):
        return "a boolean"
    if x is None:
        return "null"
    return "a number"


def _huge(x: int) -> bool:
    try:
        float(x)
    except OverflowError:
        return True
    return False


def check_structure(path: str | Path, doc: Any) -> None:
    """Depth below :data:`MAX_DEPTH`, strings at most :data:`MAX_STRING_CHARS`, numbers
    within a float's range (checked without recursion)."""
    stack: list[tuple[Any, int]] = [(doc, 1)]
    while stack:
        x, depth = stack.pop()
        if isinstance(x, str):
            if len(x) > MAX_STRING_CHARS:
                raise _bad(
                    path,
                    f"a string of {len(x):,} characters, more than the limit of {MAX_STRING_CHARS:,}",
                )
            continue
        if (isinstance(x, float) and not math.isfinite(x)) or (isinstance(x, int) and _huge(x)):
            raise _bad(path, "a number beyond ±1.8e308, out of a float's range")
        if not isinstance(x, dict | list):
            continue
        if depth >= MAX_DEPTH:
            raise _bad(path, f"nested {MAX_DEPTH} levels deep, the limit")
        if isinstance(x, dict):
            for k, v in x.items():
                stack.append((k, depth))
                stack.append((v, depth + 1))
        else:
            stack.extend((v, depth + 1) for v in x)


def _expect(path: str | Path, doc: Any, expect: type | None, what: str) -> Any:
    if expect is not None and not isinstance(doc, expect):
        shape = "a table" if expect is dict else "an array" if expect is list else expect.__name__
        raise _bad(path, f"{what} must be {shape}, got {_type_name(doc)}")
    return doc


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def parse_json(path: str | Path, text: str, expect: type | None = dict) -> Any:
    """Parse JSON text read from ``path`` under the limits of this module."""
    try:
        doc = json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError as e:
        raise _bad(path, f"not valid JSON: {e.msg} (line {e.lineno} column {e.colno})") from None
    except ValueError as e:  # NaN, Infinity
        raise _bad(path, f"not valid JSON: {e}") from None
    except RecursionError:
        raise _bad(path, f"nested {MAX_DEPTH} levels deep or more, the limit") from None
    check_structure(path, doc)
    return _expect(path, doc, expect, "the document")


def read_json(path: str | Path, expect: type | None = dict) -> Any:
    """A JSON file, checked: see the module doc. ``expect``: the top level's type."""
    return parse_json(path, read_text(path), expect)


def parse_toml(path: str | Path, text: str) -> dict[str, Any]:
    """Parse TOML text read from ``path`` under the limits of this module (by the
    core's TOML reader: ``tomllib`` takes time and memory quadratic in a dotted
    key's length, and a 100,000-part key exhausts the memory)."""
    from pmengine._core import toml_loads

    try:
        doc = toml_loads(text)
    except InvalidInputError as e:
        raise _bad(path, str(e)) from None
    check_structure(path, doc)
    return doc


def read_toml(path: str | Path) -> dict[str, Any]:
    """A TOML file, checked: see the module doc."""
    return parse_toml(path, read_text(path))


__all__ = [
    "MAX_DEPTH",
    "MAX_STRING_CHARS",
    "MAX_TEXT_BYTES",
    "check_regular",
    "check_structure",
    "parse_json",
    "parse_toml",
    "read_bytes",
    "read_json",
    "read_text",
    "read_toml",
]
