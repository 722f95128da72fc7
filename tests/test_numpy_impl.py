"""The NumPy baseline of the benchmarks (benches/numpy_impl.py): every golden case, agreement
with the Rust engine on seeded random accounts, and its erfc against the standard library."""

from __future__ import annotations

import importlib
import math
import random
import sys
import tomllib

import numpy as np
import pytest

import pmengine as pm
from pmengine.testing import assert_close

from .conftest import GOLDEN, MARKET, ROOT

sys.path.insert(0, str(ROOT / "benches"))
numpy_impl = importlib.import_module("numpy_impl")

PROFILE = numpy_impl.compile_profile(
    tomllib.loads((ROOT / "profiles" / "default.toml").read_text())
)
ENGINE = pm.Engine()

UNDERLYINGS = {
    "BTC": (60000.0, 1.0, 100.0),
    "ETH": (3000.0, 20.0, 10.0),
    "SOL": (150.0, 400.0, 10.0),
}
EXPIRIES = (
    "2026-11-20T08:00:00Z",  # expired
    "2026-11-24T00:00:00Z",  # expiring now
    "2026-11-27T08:00:00Z",
    "2026-12-25T08:00:00Z",
    "2027-03-26",
)


def random_account(seed: int) -> tuple[dict, dict]:
    """A seeded account mixing balances, loans, linear, inverse and options on BTC, ETH, SOL."""
    rnd = random.Random(seed)
    market = {
        "time": "2026-11-24T00:00:00Z",
        "prices": dict(MARKET["prices"], USDC=rnd.choice([1.0, 0.9998, 1.0003])),
        "marks": {},
        "vols": {"BTC": 0.5, "ETH": 0.6, "SOL": 0.8},
    }
    balances: dict[str, float] = {}
    for asset in rnd.sample(
        ["BTC", "ETH", "SOL", "USDT", "USDC", "WBTC", "DOGE"], rnd.randint(1, 5)
    ):
        scale = 1e4 / market["prices"][asset]
        balances[asset] = round(rnd.uniform(-1.0, 3.0) * scale, 6)  # sometimes a loan
    positions = []
    for _ in range(rnd.randint(0, 25)):
        u = rnd.choice(list(UNDERLYINGS))
        price, unit, size = UNDERLYINGS[u]
        kind = rnd.choices(["linear", "inverse", "option"], weights=[4, 2, 3])[0]
        if kind == "linear":
            sym = rnd.choice([f"{u}USDT", f"{u}USDT_261225", f"{u}USDC"])
            pos = {
                "type": "linear",
                "symbol": sym,
                "underlying": u,
                "qty": round(rnd.uniform(-5, 5) * unit, 4),
                "entry_price": round(price * rnd.uniform(0.85, 1.15), 2),
            }
            if sym.endswith("USDC"):
                pos["settle"] = "USDC"
        elif kind == "inverse":
            sym = f"{u}USD_PERP"
            pos = {
                "type": "inverse",
                "symbol": sym,
                "underlying": u,
                "contract_size": size,
                "contracts": float(rnd.randint(-300, 300)),
                "entry_price": round(price * rnd.uniform(0.85, 1.15), 2),
            }
        else:
            ok = rnd.choice(["call", "put"])
            strike = round(price * rnd.uniform(0.6, 1.4), 1)
            expiry = rnd.choice(EXPIRIES)
            sym = f"{u}-{expiry[2:10]}-{strike}-{ok[0].upper()}"
            pos = {
                "type": "option",
                "symbol": sym,
                "underlying": u,
                "kind": ok,
                "strike": strike,
                "expiry": expiry,
                "qty": round(rnd.uniform(-3, 3) * unit, 4),
            }
            if rnd.random() < 0.2:
                pos["settle"] = "USDC"
            if rnd.random() < 0.3:
                market["vols"][sym] = round(rnd.uniform(0.03, 1.2), 3)
        if kind != "option" and rnd.random() < 0.4:
            market["marks"][sym] = round(price * rnd.uniform(0.995, 1.005), 2)
        positions.append(pos)
    return {"balances": balances, "positions": positions}, market


@pytest.mark.parametrize("case", GOLDEN, ids=[c["name"] for c in GOLDEN])
def test_numpy_impl_reproduces_golden_case(case):
    got = numpy_impl.margin(case["portfolio"], case["market"], PROFILE)
    assert_close(got, case["expected"])


@pytest.mark.parametrize("seed", range(60))
def test_numpy_impl_equals_engine_on_random_accounts(seed):
    portfolio, market = random_account(seed)
    want = ENGINE.margin(pm.Portfolio.from_dict(portfolio), pm.Market.from_dict(market))
    got = numpy_impl.margin(portfolio, market, PROFILE)
    assert_close(got, want.to_dict(), rel=1e-9, abs_=1e-6)


def test_random_accounts_cover_every_instrument():
    kinds = set()
    loans = 0
    for seed in range(60):
        portfolio, _ = random_account(seed)
        kinds |= {p["type"] for p in portfolio["positions"]}
        loans += any(q < 0 for q in portfolio["balances"].values())
    assert kinds == {"linear", "inverse", "option"}
    assert loans >= 5


def test_numpy_impl_matches_engine_with_a_profile_edit():
    """The profile is data: a changed grid and offset table give the same figures in both."""
    text = (ROOT / "profiles" / "default.toml").read_text()
    edited = text.replace("price_range = 0.10", "price_range = 0.08").replace(
        "rate = 0.5", "rate = 0.4"
    )
    profile = numpy_impl.compile_profile(tomllib.loads(edited))
    engine = pm.Engine(pm.RiskParams.from_toml_str(edited))
    for seed in range(10):
        portfolio, market = random_account(100 + seed)
        want = engine.margin(pm.Portfolio.from_dict(portfolio), pm.Market.from_dict(market))
        assert_close(numpy_impl.margin(portfolio, market, profile), want.to_dict())


def test_erfc_within_a_few_ulp_of_the_standard_library():
    rng = np.random.default_rng(1)
    x = np.concatenate(
        [
            rng.uniform(-40.0, 40.0, 20000),
            rng.uniform(-3.0, 3.0, 20000),
            [0.0, -0.0, 1e-300, 0.25, 0.84375, 1.25, 1 / 0.35, 27.9, 28.0, -28.0, 6.0, -6.0],
        ]
    )
    got = numpy_impl.erfc(x)
    want = np.array([math.erfc(v) for v in x])
    # fdlibm and the platform libm behind math.erfc differ by at most a few ulp (4 seen)
    assert np.all(np.abs(got - want) <= 5 * np.spacing(np.abs(want)))
    assert numpy_impl.erfc(np.array([np.inf, -np.inf]))[0] == 0.0
    assert numpy_impl.erfc(np.array([-np.inf]))[0] == 2.0
    assert np.isnan(numpy_impl.erfc(np.array([np.nan])))[0]
    # the lower tail keeps its relative precision: N(-10) = 7.6198530241605e-24
    assert abs(numpy_impl.norm_cdf(np.array([-10.0]))[0] / 7.619853024160527e-24 - 1) < 1e-13


def test_numpy_batch_equals_the_engine_on_a_synthetic_book() -> None:
    """The batch baseline of benches/batch.py margins what the engine margins."""
    import numpy as np

    from pmengine.book.synthetic import generate_book, market_dict

    numpy_batch = importlib.import_module("numpy_batch")
    positions, balances = generate_book(300, positions_per_account=12, option_share=0.25, seed=3)
    mdict = market_dict()
    want = ENGINE.margin_batch(positions, balances, pm.Market.from_dict(mdict), output="numpy")
    got = numpy_batch.margin_batch(positions, balances, mdict, PROFILE)
    for key in ("equity", "adjusted_equity", "maintenance_margin", "initial_margin", "available"):
        np.testing.assert_allclose(got[key], want[key], rtol=1e-9, atol=1e-6, err_msg=key)
