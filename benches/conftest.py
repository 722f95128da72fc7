"""Benchmark accounts and the three implementations of the margin model.

- `linear_account()`: 50 entries over BTC, ETH, SOL: 4 balances (three coins and a USDT loan)
  and 46 linear and inverse futures, drawn by the same generator (seed, LCG and draw order) as
  the `margin/linear-50` kernel of `rust/core/benches/kernels.rs`, so `cargo bench` and this
  suite time the same account.
- `options_account()`: the 20 options on BTC and ETH of the `margin/options-20` kernel (63 grid
  scenarios per group: 21 price points x 3 vol shocks, plus the two extremes), with a USDT
  balance and three perpetuals on top.

Each account comes as a `Case`: the JSON-shaped dicts (for NumPy and the reference) and the
Rust `Portfolio` / `Market`, converted once, outside every timed call. Building a case checks
that the implementations agree on it (relative 1e-9), so no benchmark times a wrong answer.
"""

from __future__ import annotations

import importlib
import math
import sys
import tomllib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import pmengine as pm
from pmengine.testing import assert_close

BENCHES = Path(__file__).resolve().parent
ROOT = BENCHES.parent
sys.path.insert(0, str(BENCHES))
numpy_impl = importlib.import_module("numpy_impl")

T0 = 1_795_478_400.0  # 2026-11-24T00:00:00Z
PRICES = {"BTC": 60000.0, "ETH": 3000.0, "SOL": 150.0, "USDT": 1.0}

IMPLEMENTATIONS = ("rust", "numpy", "reference")


class Lcg:
    """The 64-bit LCG of kernels.rs: uniform doubles in [0, 1) from the top 53 bits."""

    def __init__(self, seed: int) -> None:
        self.state = seed

    def next(self) -> float:
        self.state = (self.state * 6364136223846793005 + 1442695040888963407) % 2**64
        return (self.state >> 11) / 2.0**53


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def market() -> dict:
    return {
        "time": iso(T0),
        "prices": dict(PRICES),
        "marks": {},
        "vols": {"BTC": 0.5, "ETH": 0.6},
    }


def linear_account(seed: int = 7) -> dict:
    """4 balances + 46 linear / inverse futures over BTC, ETH, SOL (kernels.rs linear_book)."""
    rnd = Lcg(seed)
    underlyings = list(PRICES.items())[:3]
    balances = {a: 2.0 for a, _ in underlyings}
    balances["USDT"] = -50000.0
    positions = []
    for i in range(46):
        u, price = underlyings[i % 3]
        if rnd.next() < 0.7:
            qty = rnd.next() * 20.0 - 10.0
            entry = price * (0.9 + 0.2 * rnd.next())
            positions.append(
                {
                    "type": "linear",
                    "symbol": f"{u}USDT{i % 5}",
                    "underlying": u,
                    "qty": qty,
                    "entry_price": entry,
                }
            )
        else:
            contracts = rnd.next() * 1000.0 - 500.0
            entry = price * (0.9 + 0.2 * rnd.next())
            positions.append(
                {
                    "type": "inverse",
                    "symbol": f"{u}USD_{i % 3}",
                    "underlying": u,
                    "contract_size": 100.0,
                    "contracts": contracts,
                    "entry_price": entry,
                }
            )
    return {"balances": balances, "positions": positions}


def options_account(seed: int = 11) -> dict:
    """20 options on BTC and ETH (kernels.rs option_book) plus three perpetuals."""
    rnd = Lcg(seed)
    underlyings = list(PRICES.items())[:2]
    positions: list[dict[str, Any]] = []
    for i in range(20):
        u, price = underlyings[i % 2]
        strike = float(math.floor(price * (0.8 + 0.4 * rnd.next()) + 0.5))
        kind = "call" if i % 4 < 2 else "put"
        expiry = T0 + 86400.0 * (7.0 + 30.0 * (i % 3))
        positions.append(
            {
                "type": "option",
                "symbol": f"{u}-{i}-{int(strike)}",
                "underlying": u,
                "kind": kind,
                "strike": strike,
                "expiry": iso(expiry),
                "qty": rnd.next() * 10.0 - 5.0,
            }
        )
    for u, price in underlyings:
        positions.append(
            {
                "type": "linear",
                "symbol": f"{u}USDT",
                "underlying": u,
                "qty": (rnd.next() * 4.0 - 2.0) * 60000.0 / price,
                "entry_price": price * (0.95 + 0.1 * rnd.next()),
            }
        )
    positions.append(
        {
            "type": "inverse",
            "symbol": "BTCUSD_PERP",
            "underlying": "BTC",
            "contract_size": 100.0,
            "contracts": rnd.next() * 1000.0 - 500.0,
            "entry_price": 60000.0 * (0.95 + 0.1 * rnd.next()),
        }
    )
    return {"balances": {"USDT": 100_000.0}, "positions": positions}


def reference_module() -> ModuleType | None:
    """`pmengine.reference` when it exists (it is written alongside the engine)."""
    try:
        return importlib.import_module("pmengine.reference")
    except ModuleNotFoundError as e:
        if e.name not in ("pmengine.reference", "pmengine"):
            raise
        return None


@dataclass
class Case:
    """One account on one snapshot, ready for every implementation."""

    name: str
    portfolio: dict
    market: dict
    rust_portfolio: pm.Portfolio
    rust_market: pm.Market
    engine: pm.Engine
    numpy_profile: Any
    reference: ModuleType | None
    reference_profile: Any

    def run(self, impl: str) -> dict:
        """The §8 result dict from one implementation (untimed: the agreement check)."""
        if impl == "rust":
            return self.engine.margin(self.rust_portfolio, self.rust_market).to_dict()
        if impl == "numpy":
            return numpy_impl.margin(self.portfolio, self.market, self.numpy_profile)
        assert self.reference is not None
        return self.reference.margin(self.portfolio, self.market, self.reference_profile)

    def check_agreement(self) -> None:
        want = self.run("rust")
        assert want["maintenance_margin"] > 0.0, f"{self.name}: a benchmark account has margin"
        assert_close(self.run("numpy"), want, f"{self.name} numpy", rel=1e-9)
        if self.reference is not None:
            assert_close(self.run("reference"), want, f"{self.name} reference", rel=1e-9)


def make_case(name: str, portfolio: dict, market_dict: dict) -> Case:
    profile_dict = tomllib.loads((ROOT / "profiles" / "default.toml").read_text())
    reference = reference_module()
    reference_profile = None
    if reference is not None:
        default = getattr(reference, "default_profile", None)
        reference_profile = default() if default is not None else profile_dict
    case = Case(
        name=name,
        portfolio=portfolio,
        market=market_dict,
        rust_portfolio=pm.Portfolio.from_dict(portfolio),
        rust_market=pm.Market.from_dict(market_dict),
        engine=pm.Engine(),
        numpy_profile=numpy_impl.compile_profile(profile_dict),
        reference=reference,
        reference_profile=reference_profile,
    )
    case.check_agreement()
    return case


@pytest.fixture(scope="module")
def linear_case() -> Case:
    return make_case("margin-50-linear", linear_account(), market())


@pytest.fixture(scope="module")
def options_case() -> Case:
    return make_case("margin-20-options", options_account(), market())
