"""Linear cost in the size of the account (issue 16, finding 7): tens of thousands of
assets, option series and contract symbols are parsed, margined, classic-margined and
held live in time linear in their number.

The time budgets are hang detectors for a quadratic path (40,000 assets took 6 s to
parse and 22 s to margin; a million symbols over a minute), generous enough for a slow
machine and a debug build; they are not speed measurements.
"""

from __future__ import annotations

import json
import time

import pytest

import pmengine as pm

T = "2026-11-24T00:00:00Z"
BUDGET = 20.0  # seconds per case


class Budget:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def __enter__(self) -> Budget:
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        took = time.perf_counter() - self.start
        assert took < self.seconds, f"{took:.1f} s: a path quadratic in the input?"


def market(assets: list[str]) -> pm.Market:
    prices = {**dict.fromkeys(assets, 1.0), "USDT": 1.0, "BTC": 60000.0}
    return pm.Market.from_dict({"time": T, "prices": prices, "vols": {"BTC": 0.5}})


def test_forty_thousand_balance_assets(engine):
    assets = [f"A{i}" for i in range(40_000)]
    m = market(assets)
    with Budget(BUDGET):
        p = pm.Portfolio.from_json(json.dumps({"balances": dict.fromkeys(assets, 1.0)}))
        q = pm.Portfolio.from_dict({"balances": dict.fromkeys(assets, 1.0), "loans": {}})
        r = engine.margin(p, m)
        engine.classic(p, m)
        live = pm.LiveAccount(engine, q, m)
        live.deposit("A7", 1.0)
        live.update_price("A9", 2.0)
    assert len(r.groups) == 40_000 and r.equity == 40_000.0
    assert live.margin().equity == 40_002.0
    assert live.margin().to_dict() == engine.margin(live.portfolio, live.market).to_dict()


def test_forty_thousand_assets_one_call_at_a_time(engine):
    # Each builder and live call finds its asset by name: a search per call made
    # 40,000 add_balance calls take 56 s on a debug build.
    assets = [f"A{i}" for i in range(40_000)]
    m = market(assets)
    with Budget(BUDGET):
        p = pm.Portfolio()
        for a in assets:
            p.add_balance(a, 1.0)
        for a in assets:
            p.add_loan(a, 0.5)
        for a in assets:
            p.add_balance(a, 1.0)
        r = engine.margin(p, m)
        live = pm.LiveAccount(engine, p, m)
        for a in assets:
            live.deposit(a, 1.0)
        for a in assets[:10_000]:
            live.borrow(a, 1.0)
            live.repay(a, 0.25)
    assert p.balances[:2] == [("A0", 2.0), ("A1", 2.0)] and len(p.loans) == 40_000
    assert r.equity == 40_000 * 1.5
    assert live.rebuilds == 0  # every call on a held asset: one wallet field
    assert live.margin().equity == 40_000 * 2.5
    assert live.margin().to_json() == engine.margin(live.portfolio, live.market).to_json()


def test_many_option_series(engine):
    n = 20_000
    options = [
        {
            "type": "option",
            "symbol": f"C{i}",
            "underlying": "BTC",
            "kind": "call" if i % 2 else "put",
            "strike": 30_000 + i,
            "expiry": "2026-12-25T08:00:00Z",
            "qty": 1 if i % 3 else -1,
        }
        for i in range(n)
    ]
    p = pm.Portfolio.from_dict({"balances": {"USDT": 1e9}, "positions": options})
    others = [f"A{i}" for i in range(40_000)]
    with Budget(BUDGET):
        m = market([])
        r = engine.margin(p, m)
        again = engine.margin(p, m)  # from the snapshot's cache
        # A price change drops the series on its asset, found without a scan of the
        # cache (a scan per set_price: 40,000 prices took 36 s beside 20,000 series).
        for a in others:
            m.set_price(a, 1.0)
        kept = m.cached_series
        swept = engine.sweep(p, m, {"BTC": [-0.01]}, threads=1)
        live = pm.LiveAccount(engine, p, m)
        live.update_vol("BTC", 0.55)
    assert r.to_dict() == again.to_dict()
    assert kept == n
    moved = pm.Market.from_dict(
        {**m.to_dict(), "prices": {**m.prices, "BTC": 60000.0 * (1 - 0.01)}}
    )
    assert swept["maintenance_margin"][0] == engine.margin(p, moved).maintenance_margin
    assert live.margin().to_dict() == engine.margin(live.portfolio, live.market).to_dict()


@pytest.mark.parametrize("model", ["scenario", "binance_pm"])
def test_many_contract_symbols(engine, model):
    n = 100_000
    contracts = [
        {
            "type": "linear",
            "symbol": f"S{i}",
            "underlying": "BTC",
            "qty": 1 if i % 2 else -1,
            "entry_price": 60000,
        }
        for i in range(n)
    ]
    p = pm.Portfolio.from_dict({"balances": {"USDT": 1e9}, "positions": contracts})
    e = engine if model == "scenario" else pm.Engine(engine.params.with_model(model))
    with Budget(BUDGET):
        m = market([])
        r = e.margin(p, m)
        e.classic(p, m)
        swept = e.sweep(p, m, {"BTC": [0.01]}, threads=1)
        live = pm.LiveAccount(e, p, m)
        live.update_price("BTC", 61_000.0)
        live.what_if("S5", 1.0)
        live.apply_fill("S5", -0.5)
    assert r.maintenance_margin > 0
    moved = pm.Market.from_dict(
        {**m.to_dict(), "prices": {**m.prices, "BTC": 60000.0 * (1 + 0.01)}}
    )
    assert swept["maintenance_margin"][0] == e.margin(p, moved).maintenance_margin
    assert live.margin().to_dict() == e.margin(live.portfolio, live.market).to_dict()
