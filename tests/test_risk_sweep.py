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


def stresses_by_rows(engine, p, m, scenarios) -> list[risk.StressResult]:
    """The stress test as it ran before its columns came straight from the sweep:
    a factor dict per scenario, the sweep's rows as MovedMargin tuples, one
    StressResult built per row."""
    from pmengine.risk.moves import _factor_rows

    e0 = engine.margin(p, m).equity
    factors = _factor_rows(scenarios, m, engine.params)
    vols = [1.0 + s.vol_shock for s in scenarios]
    rows = risk.margins_on_moved_markets(engine, p, m, factors, vols, sweep=True)
    return [
        risk.StressResult(s.name, s.description, *r, r.equity - e0)
        for s, r in zip(scenarios, rows, strict=True)
    ]


def same_columns(engine, p, m, scenarios) -> None:
    fast = risk.stress_test(engine, p, m, scenarios)
    old = stresses_by_rows(engine, p, m, scenarios)
    # The same returns reach the sweep: the same results, bit for bit, and the same objects.
    assert fast == old
    assert [type(r) for r in fast] == [risk.StressResult] * len(old)
    assert [r.to_dict() for r in fast] == [r.to_dict() for r in old]
    assert [hash(r) for r in fast] == [hash(r) for r in old]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    p=strategies.portfolio(max_positions=6),
    marks=strategies.marks(),
    scenarios=st.lists(scenario, max_size=8),
    builtin=st.booleans(),
)
def test_stress_columns_equal_the_rows(p, marks, scenarios, builtin):
    portfolio = pm.Portfolio.from_dict(p)
    market = pm.Market.from_dict(strategies.market(marks))
    chosen = [*risk.builtin_scenarios(), *scenarios] if builtin else scenarios
    same_columns(ENGINE, portfolio, market, chosen)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(acct=strategies_binance.account(max_positions=4), scenarios=st.lists(scenario, max_size=4))
def test_stress_columns_equal_the_rows_binance_pm(acct, scenarios):
    p, m, profile = acct
    engine = pm.Engine(pm.RiskParams.from_dict(profile))
    chosen = [*risk.builtin_scenarios(), *scenarios]
    same_columns(engine, pm.Portfolio.from_dict(p), pm.Market.from_dict(m), chosen)


@pytest.mark.parametrize("name", ["near_liquidation", "btc_eth_spread", "covered_call"])
def test_examples_fast_equal_old(name):
    from .conftest import EXAMPLES

    p = pm.Portfolio.from_json((EXAMPLES / f"{name}.json").read_text())
    m = pm.Market.from_json((EXAMPLES / "market.json").read_text())
    same_liquidation_prices(ENGINE, p, m, co_move=False)
    same_stresses(ENGINE, p, m, None)


# The stablecoin buffer's search as it ran in Python before it moved to the core:
# each amount a new Portfolio from the dict, margined on the moved market.


def _with_balance(portfolio: pm.Portfolio, asset: str, delta: float) -> pm.Portfolio:
    d = portfolio.to_dict()
    d["balances"][asset] = d["balances"].get(asset, 0.0) + delta
    return pm.Portfolio.from_dict(d)


def _ok(engine, market, target, scenario):
    params = engine.params
    rank = risk.status_rank(params, target)

    def ok(p: pm.Portfolio) -> bool:
        m = market if scenario is None else risk.apply_scenario(scenario, p, market, params)
        return risk.status_rank(params, engine.margin(p, m).status) <= rank

    return ok


def old_deposit_needed(engine, portfolio, market, asset, target, scenario, rel_tol=1e-9):
    ok = _ok(engine, market, target, scenario)
    if ok(portfolio):
        return 0.0
    price = market.prices[asset]
    base = engine.margin(portfolio, market)
    hi = max(1.0, abs(base.equity), base.maintenance_margin) / price
    while not ok(_with_balance(portfolio, asset, hi)):
        hi *= 2.0
        if hi * price > 1e15:
            return None
    lo = 0.0
    while hi - lo > rel_tol * hi:
        mid = 0.5 * (lo + hi)
        if ok(_with_balance(portfolio, asset, mid)):
            hi = mid
        else:
            lo = mid
    return hi


def old_max_withdrawal(engine, portfolio, market, asset, target, scenario, rel_tol=1e-9):
    ok = _ok(engine, market, target, scenario)
    balance = dict(portfolio.balances).get(asset, 0.0)
    if balance <= 0 or not ok(portfolio):
        return 0.0
    if ok(_with_balance(portfolio, asset, -balance)):
        return balance
    lo, hi = 0.0, balance
    while hi - lo > rel_tol * balance:
        mid = 0.5 * (lo + hi)
        if ok(_with_balance(portfolio, asset, -mid)):
            lo = mid
        else:
            hi = mid
    return lo


def same_buffer(engine, p, m, asset, target, scenario) -> None:
    # Each amount is evaluated on the same book bit for bit: the same bisection.
    kw = {"asset": asset, "target": target, "scenario": scenario}
    assert risk.deposit_needed(engine, p, m, **kw) == old_deposit_needed(engine, p, m, **kw)
    assert risk.max_withdrawal(engine, p, m, **kw) == old_max_withdrawal(engine, p, m, **kw)


BUILTIN = {s.name: s for s in risk.builtin_scenarios()}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    p=strategies.portfolio(max_positions=5),
    marks=strategies.marks(),
    asset=st.sampled_from(["USDT", "USDC", "BTC"]),
    stress=st.sampled_from([None, "crash_30", "squeeze", "usdt_depeg", "vol_spike"]),
    target=st.sampled_from(["NORMAL", "MARGIN_CALL", "REDUCE_ONLY"]),
)
def test_buffer_core_equals_old(p, marks, asset, stress, target):
    portfolio = pm.Portfolio.from_dict(p)
    market = pm.Market.from_dict(strategies.market(marks))
    scenario = None if stress is None else BUILTIN[stress]
    same_buffer(ENGINE, portfolio, market, asset, target, scenario)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    acct=strategies_binance.account(max_positions=4),
    stress=st.sampled_from([None, "crash_30", "squeeze"]),
    target=st.sampled_from(["NORMAL", "MARGIN_CALL"]),
)
def test_buffer_core_equals_old_binance_pm(acct, stress, target):
    p, m, profile = acct
    engine = pm.Engine(pm.RiskParams.from_dict(profile))
    portfolio, market = pm.Portfolio.from_dict(p), pm.Market.from_dict(m)
    scenario = None if stress is None else BUILTIN[stress]
    asset = sorted(market.prices)[0]
    same_buffer(engine, portfolio, market, asset, target, scenario)


def short_btc() -> tuple[pm.Engine, pm.Portfolio, pm.Market, pm.Market]:
    """A short BTC contract on 5,000 USDT, its market and the market after BTC +50 %."""
    p = pm.Portfolio()
    p.add_balance("USDT", 5_000.0)
    p.add_linear("BTCUSDT", "BTC", -1.0, 60_000.0)
    m = pm.Market(0, prices={"BTC": 60_000.0, "USDT": 1.0})
    stressed = pm.Market(0, prices={"BTC": 90_000.0, "USDT": 1.0})
    return pm.Engine(), p, m, stressed


@pytest.mark.parametrize("tol", [0.0, -1.0, float("nan"), float("inf"), 1.0])
def test_a_tolerance_that_would_never_stop_is_refused(tol):
    """A bisection tolerance outside (0, 1) is an InvalidInputError naming it, not
    a search that never ends (0, below 0) or one that never starts (NaN)."""
    engine, p, m, stressed = short_btc()
    calls = {
        "rel_tol": (
            lambda: engine.deposit_needed(p, m, "USDT", 0, stressed=stressed, rel_tol=tol),
            lambda: engine.max_withdrawal(p, m, "USDT", 0, rel_tol=tol),
        ),
        "tol": (
            lambda: engine.crossings(p, m, [([("BTC", 1.0)], [1.1, 1.5, 2.0])], [0.5], tol=tol),
        ),
    }
    for field, fs in calls.items():
        for f in fs:
            with pytest.raises(pm.InvalidInputError) as e:
                f()
            assert (e.value.field, e.value.code) == (field, "out_of_range")


def test_a_tiny_tolerance_ends_at_adjacent_floats():
    """A tolerance below a float's resolution stops where the bracket cannot
    narrow, with the answer still on the safe side."""
    engine, p, m, stressed = short_btc()
    tight = engine.deposit_needed(p, m, "USDT", 0, stressed=stressed, rel_tol=1e-300)
    loose = engine.deposit_needed(p, m, "USDT", 0, stressed=stressed, rel_tol=1e-9)
    assert tight == pytest.approx(loose, rel=1e-8) and tight <= loose
    assert engine.crossings(p, m, [([("BTC", 1.0)], [1.1, 1.5, 2.0])], [0.5], tol=1e-300)[0][0]
