"""Importers of exchange exports: an account as pmengine's portfolio, market and profile.

- :mod:`pmengine.exchanges.binance`: Binance Portfolio Margin API exports (a folder
  of JSON responses) → :class:`~pmengine.exchanges.binance.BinanceAccount`, whose
  profile has ``model = "binance_pm"`` and the account's own brackets, collateral
  rates and loan leverages (docs/BINANCE.md); a generator of synthetic exports.
- :mod:`pmengine.exchanges.ccxt`: ccxt's unified positions and balances → a
  portfolio and a market; Binance's raw rows kept by ccxt → a Binance export.

Also here: :func:`toml_dumps`, the small TOML writer the profiles are written
with, and :func:`write_files_atomically`.
"""

from __future__ import annotations

import math
import os
import re
import secrets
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["toml_dumps", "write_files_atomically"]

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\b": "\\b",
    "\t": "\\t",
    "\n": "\\n",
    "\f": "\\f",
    "\r": "\\r",
}


def _key(k: Any) -> str:
    if not isinstance(k, str):
        raise TypeError(f"TOML keys are strings, got {k!r}")
    return k if _BARE_KEY.match(k) else _string(k)


def _string(s: str) -> str:
    out = []
    for c in s:
        if c in _ESCAPES:
            out.append(_ESCAPES[c])
        elif ord(c) < 0x20 or ord(c) == 0x7F:
            out.append(f"\\u{ord(c):04X}")
        else:
            out.append(c)
    return '"' + "".join(out) + '"'


def _value(v: Any, at: str) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        text = repr(v)  # shortest round-tripping form: 0.004, 1e-05, 1.2e+16
        return text if any(c in text for c in ".en") else text + ".0"
    if isinstance(v, str):
        return _string(v)
    if isinstance(v, Mapping):
        inner = ", ".join(f"{_key(k)} = {_value(x, f'{at}.{k}')}" for k, x in v.items())
        return "{ " + inner + " }" if inner else "{}"
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_value(x, f"{at}[{i}]") for i, x in enumerate(v)) + "]"
    raise TypeError(f"{at}: TOML has no value for {type(v).__name__} {v!r}")


def _is_table(v: Any) -> bool:
    return isinstance(v, Mapping)


def _long_array(v: Any) -> bool:
    return isinstance(v, list | tuple) and len(v) > 1 and any(_is_table(x) for x in v)


def toml_dumps(data: Mapping[str, Any], *, header: str = "") -> str:
    """``data`` as TOML text that :func:`tomllib.loads` reads back equal to it.

    Nested dicts become ``[a.b]`` tables (after the plain keys of their parent),
    lists of dicts arrays of inline tables (one per line), and strings, ints,
    floats (``repr``, so they round-trip exactly, ``inf`` and ``nan`` included)
    and bools their TOML forms. ``None`` and other types are a ``TypeError``
    naming the key path. ``header`` lines are written first as comments.
    """
    lines: list[str] = [f"# {h}".rstrip() for h in header.splitlines()]

    def table(t: Mapping[str, Any], path: list[str]) -> None:
        plain = [(k, v) for k, v in t.items() if not _is_table(v)]
        subs = [(k, v) for k, v in t.items() if _is_table(v)]
        at = ".".join(path)
        if path and (plain or not subs):
            if lines:
                lines.append("")
            lines.append("[" + ".".join(_key(p) for p in path) + "]")
        for k, v in plain:
            kat = f"{at}.{k}" if at else str(k)
            if _long_array(v):
                lines.append(f"{_key(k)} = [")
                lines.extend(f"  {_value(x, f'{kat}[{i}]')}," for i, x in enumerate(v))
                lines.append("]")
            else:
                lines.append(f"{_key(k)} = {_value(v, kat)}")
        for k, v in subs:
            table(v, [*path, k])

    table(data, [])
    return "\n".join(lines) + "\n"


def write_files_atomically(out_dir: str | os.PathLike[str], files: Mapping[str, str]) -> Path:
    """Write ``files`` (name → text) into ``out_dir``, all of them or none.

    The files are written into a temporary folder beside ``out_dir`` (in its
    parent), which is then renamed to ``out_dir``; when ``out_dir`` exists
    already (a folder), each file is renamed into it (``os.replace``) only after
    every file has been written. On an error the temporary folder is removed
    and ``out_dir`` is as it was. Returns ``out_dir`` as a path.
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"{out}: exists and is not a folder")
    parent = out.absolute().parent
    parent.mkdir(parents=True, exist_ok=True)
    tmp = parent / f".{out.name}.{secrets.token_hex(6)}.tmp"
    tmp.mkdir()  # the umask's permissions, unlike tempfile.mkdtemp's 0700
    try:
        for name, text in files.items():
            with open(tmp / name, "w", encoding="utf-8") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
        if not out.exists():
            os.rename(tmp, out)
            return out
        for name in files:
            os.replace(tmp / name, out / name)
        tmp.rmdir()
        return out
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
