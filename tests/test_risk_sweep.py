"""The risk tools on Engine.sweep give what they gave through market copies,
and liquidation prices on Engine.crossings what they gave on sweeps:
liquidation prices and stress tests, fast path against the old one, on
generated accounts of both margin models."""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pmengine as pm
from pmengine import risk

from . import strategies, strategies_binance

ENGINE = pm.Engine()


def close(a: float | None, b: float | None, rel: float = 1e-9) -> bool:
    if a is None or b is None:
        return a is b
    if math.isinf(a) or math.isinf(b):
        return a == b
    return abs(a - b) <= rel * max(abs(a), abs(b), 1e-12)


def same_liquidation_prices(engine, p, m, co_move: bool) -> None:
    core = risk.liquidation_prices(engine, p, m, co_move=co_move)
    fast = risk.liquidation_prices(engine, p, m, co_move=co_move, sweep=True)
    old = risk.liquidation_prices(engine, p, m, co_move=co_move, sweep=False)
    # Engine.crossings evaluates the sweep's points: the same answers, bit for bit.
    assert core == fast
    assert len(fast) == len(old)
    for a, b in zip(fast, old, strict=True):
        assert (a.group, a.status, a.direction, a.threshold) == (
            b.group,
            b.status,
            b.direction,
            b.threshold,
        )
        # The sweep prices P·(1 + (f − 1)): P·f itself for factors from 0.5 up, within an
        # ulp below; a bisection to 1e-10 lands within its tolerance either way.
        assert close(a.price, b.price, 1e-9), (a, b)
        assert close(a.uni_mmr, b.uni_mmr, 1e-6), (a, b)


def same_stresses(engine, p, m, scenarios) -> None:
    fast = risk.stress_test(engine, p, m, scenarios, sweep=True)
    old = risk.stress_test(engine, p, m, scenarios, sweep=False)
    for a, b in zip(fast, old, strict=True):
        assert a.status == b.status, (a, b)
        for f in (
            "equity",
            "adjusted_equity",
            "maintenance_margin",
            "initial_margin",
            "uni_mmr",
            "pnl",
        ):
            assert close(getattr(a, f), getattr(b, f), 1e-12), (f, a, b)


scenario = st.builds(
    risk.Scenario,
    name=st.just("s"),
    groups=st.dictionaries(
        st.sampled_from(["BTC", "ETH", "SOL", "*", "USD"]), st.floats(-0.7, 0.7), max_size=3
    ),
    assets=st.dictionaries(
        st.sampled_from(["WBTC", "USDC", "DOGE"]), st.floats(-0.3, 0.3), max_size=2
    ),
    vol_shock=st.floats(-0.6, 1.0),
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(p=strategies.portfolio(max_positions=5), marks=strategies.marks(), co_move=st.booleans())
def test_liquidation_prices_fast_equal_old(p, marks, co_move):
    same_liquidation_prices(
        ENGINE, pm.Portfolio.from_dict(p), pm.Market.from_dict(strategies.market(marks)), co_move
    )


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(acct=strategies_binance.account(max_positions=4), co_move=st.booleans())
def test_liquidation_prices_fast_equal_old_binance_pm(acct, co_move):
    p, m, profile = acct
    engine = pm.Engine(pm.RiskParams.from_dict(profile))
    same_liquidation_prices(engine, pm.Portfolio.from_dict(p), pm.Market.from_dict(m), co_move)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    p=strategies.portfolio(max_positions=6),
    marks=strategies.marks(),
    scenarios=st.lists(scenario, max_size=6),
)
def test_stress_fast_equals_old(p, marks, scenarios):
    portfolio = pm.Portfolio.from_dict(p)
    market = pm.Market.from_dict(strategies.market(marks))
    same_stresses(ENGINE, portfolio, market, None)
    same_stresses(ENGINE, portfolio, market, scenarios)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(acct=strategies_binance.account(max_positions=4))
def test_stress_fast_equals_old_binance_pm(acct):
    p, m, profile = acct
    engine = pm.Engine(pm.RiskParams.from_dict(profile))
    same_stresses(engine, pm.Portfolio.from_dict(p), pm.Market.from_dict(m), None)


@pytest.mark.parametrize("name", ["near_liquidation", "btc_eth_spread", "covered_call"])
def test_examples_fast_equal_old(name):
    from .conftest import EXAMPLES

    p = pm.Portfolio.from_json((EXAMPLES / f"{name}.json").read_text())
    m = pm.Market.from_json((EXAMPLES / "market.json").read_text())
    same_liquidation_prices(ENGINE, p, m, co_move=False)
    same_stresses(ENGINE, p, m, None)
