"""The hand-written stubs match the native module (mypy.stubtest), and the
package type-checks against them."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_stubtest_native_module():
    pytest.importorskip("mypy")
    r = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", "pmengine._core", "--ignore-missing-stub"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert r.returncode == 0, r.stdout + r.stderr


def test_package_typechecks():
    pytest.importorskip("mypy")
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-incremental",
            "python/pmengine/cli.py",
            "python/pmengine/present/render.py",
            "python/pmengine/errors.py",
            "python/pmengine/account.py",
            "python/pmengine/compare.py",
            "python/pmengine/risk",
            "python/pmengine/present/report.py",
            "python/pmengine/present/commands.py",
            "python/pmengine/__init__.py",
            "python/pmengine/book/batch.py",
            "python/pmengine/book/scan.py",
            "python/pmengine/book/synthetic.py",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert r.returncode == 0, r.stdout + r.stderr


def _literals() -> dict[str, tuple[str, ...]]:
    """The stubs' option aliases (``_Name = Literal[...]``) and their values."""
    tree = ast.parse((ROOT / "python/pmengine/_core.pyi").read_text())
    out = {}
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Subscript)
            and isinstance(node.value.value, ast.Name)
            and node.value.value.id == "Literal"
        ):
            elts = (
                node.value.slice.elts
                if isinstance(node.value.slice, ast.Tuple)
                else [node.value.slice]
            )
            out[node.targets[0].id] = tuple(e.value for e in elts)
    return out


def test_every_option_literal_is_what_the_module_accepts():
    import numpy as np

    import pmengine as pm

    lit = _literals()
    engine = pm.Engine()
    market = pm.Market("2026-11-24T00:00:00Z", prices={"BTC": 60_000, "USDT": 1}, vols={"BTC": 0.5})
    book = pm.Portfolio.from_dict(
        {
            "balances": {"USDT": 10_000},
            "positions": [
                {
                    "type": "linear",
                    "symbol": "BTCUSDT",
                    "underlying": "BTC",
                    "qty": 0.1,
                    "entry_price": 60_000,
                }
            ],
        }
    )
    live = pm.LiveAccount(engine, book, market)
    cols = {
        "account": np.array([1]),
        "type": ["linear"],
        "symbol": ["BTCUSDT"],
        "underlying": ["BTC"],
    }
    cols |= {"qty": np.array([0.1]), "entry_price": np.array([60_000.0])}
    options = {
        "_ClassicMode": lambda v: engine.classic(book, market, v),
        "_OnError": lambda v: engine.margin_batch(cols, None, market, errors=v),
        "_Side": lambda v: live.max_order_size("BTCUSDT", v),
        "_OptionKind": lambda v: pm.Portfolio().add_option("X", "BTC", v, 1.0, "2027-01-01", 1.0),
        "_Model": lambda v: engine.params.with_model(v),
    }
    for alias, call in options.items():
        for value in lit[alias]:
            call(value)
        with pytest.raises(pm.InvalidInputError):
            call("no such option")
    for output in ("arrow", "numpy"):
        engine.margin_batch(cols, None, market, output=output)
    assert engine.classic(book, market).status in lit["_ClassicStatus"]
