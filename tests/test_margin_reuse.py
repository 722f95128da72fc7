"""`Engine.margin` reuses a portfolio's resolution against the market: every
change of the portfolio or of the market is seen, and a reused result is bit
for bit the one a portfolio margined for the first time gets."""

from __future__ import annotations

import copy

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pmengine as pm

from . import strategies, strategies_binance

ENGINE = pm.Engine()
OTHER = pm.Engine()  # the same profile, another engine

ACCOUNT = {
    "balances": {"USDT": 20_000.0, "BTC": 0.5},
    "positions": [
        {
            "type": "linear",
            "symbol": "BTCUSDT",
            "underlying": "BTC",
            "qty": -0.7,
            "entry_price": 59_000,
        },
        {
            "type": "linear",
            "symbol": "ETHUSDT",
            "underlying": "ETH",
            "qty": 4.0,
            "entry_price": 3_100,
        },
        {
            "type": "inverse",
            "symbol": "BTCUSD_PERP",
            "underlying": "BTC",
            "contract_size": 100,
            "contracts": 30,
            "entry_price": 61_000,
        },
        {
            "type": "option",
            "symbol": "BTC-261225-65000-C",
            "underlying": "BTC",
            "kind": "call",
            "strike": 65_000,
            "expiry": "2026-12-25T08:00:00Z",
            "qty": -1.5,
        },
    ],
}


def cold(engine: pm.Engine, portfolio: pm.Portfolio, market: pm.Market) -> str:
    """The result of a portfolio never margined before (a fresh copy), as JSON."""
    return engine.margin(pm.Portfolio.from_json(portfolio.to_json()), market).to_json()


def check(engine: pm.Engine, portfolio: pm.Portfolio, market: pm.Market) -> None:
    assert engine.margin(portfolio, market).to_json() == cold(engine, portfolio, market)


def fresh() -> tuple[pm.Portfolio, pm.Market]:
    p = pm.Portfolio.from_dict(ACCOUNT)
    m = pm.Market.from_dict(strategies.market({"BTCUSDT": 60_030.0}))
    ENGINE.margin(p, m)  # resolved: what follows is a reuse
    return p, m


PORTFOLIO_CHANGES = {
    "add_balance held": lambda p: p.add_balance("USDT", -5_000.0),
    "add_balance new": lambda p: p.add_balance("SOL", 10.0),
    "add_loan": lambda p: p.add_loan("USDT", 3_000.0, 1.0),
    "add_linear held symbol": lambda p: p.add_linear("BTCUSDT", "BTC", 0.2, 60_500.0),
    "add_linear new": lambda p: p.add_linear("SOLUSDT", "SOL", -30.0, 140.0),
    "add_inverse": lambda p: p.add_inverse("ETHUSD_PERP", "ETH", 10, -40, 2_900.0),
    "add_option": lambda p: p.add_option(
        "ETH-261225-3000-P", "ETH", "put", 3_000.0, "2026-12-25T08:00:00Z", 2.0
    ),
}


@pytest.mark.parametrize("change", sorted(PORTFOLIO_CHANGES))
def test_every_portfolio_change_is_seen(change):
    p, m = fresh()
    before = ENGINE.margin(p, m).to_json()
    PORTFOLIO_CHANGES[change](p)
    after = ENGINE.margin(p, m).to_json()
    assert after != before
    check(ENGINE, p, m)


MARKET_CHANGES = {
    "set_price underlying": lambda m: m.set_price("BTC", 57_000.0),
    "set_price settle": lambda m: m.set_price("USDT", 0.98),
    "set_price new asset": lambda m: m.set_price("XRP", 2.0),
    "set_mark held": lambda m: m.set_mark("BTCUSDT", 58_000.0),
    "set_mark new": lambda m: m.set_mark("ETHUSDT", 3_050.0),
    "set_vol underlying": lambda m: m.set_vol("BTC", 0.9),
    "set_vol symbol": lambda m: m.set_vol("BTC-261225-65000-C", 0.3),
    "time": lambda m: setattr(m, "time", "2026-12-01T00:00:00Z"),
}


@pytest.mark.parametrize("change", sorted(MARKET_CHANGES))
def test_every_market_change_is_seen(change):
    p, m = fresh()
    before = ENGINE.margin(p, m).to_json()
    MARKET_CHANGES[change](m)
    after = ENGINE.margin(p, m).to_json()
    if change != "set_price new asset":
        assert after != before
    check(ENGINE, p, m)


def test_a_cleared_series_cache_is_priced_again():
    p, m = fresh()
    assert m.cached_series > 0
    m.clear_cache()
    assert m.cached_series == 0
    ENGINE.margin(p, m)
    assert m.cached_series > 0  # the reused resolution priced its series on the market again
    check(ENGINE, p, m)


def test_a_reused_result_equals_a_first_one_through_many_ticks():
    p, m = fresh()
    for i in range(50):
        m.set_price(
            "BTC" if i % 3 else "ETH", 60_000.0 * (1 + 0.01 * (i % 7 - 3)) if i % 3 else 3_000.0 + i
        )
        if i % 5 == 0:
            m.set_mark("BTCUSDT", 60_000.0 + 10 * i)
        if i % 11 == 0:
            m.set_vol("BTC", 0.4 + 0.01 * i)
        check(ENGINE, p, m)
        check(ENGINE, p, m)  # unchanged: the evaluation alone


def test_another_market_another_engine_a_copy():
    p, m = fresh()
    other = pm.Market.from_dict(strategies.market())
    other.set_price("ETH", 2_500.0)
    for _ in range(2):
        check(ENGINE, p, other)
        check(ENGINE, p, m)
        check(OTHER, p, m)
    m2 = copy.copy(m)  # the same numbers
    check(ENGINE, p, m2)
    m2.set_price("BTC", 50_000.0)
    check(ENGINE, p, m2)
    check(ENGINE, p, m)
    p2 = copy.copy(p)
    p2.add_balance("USDT", 1.0)
    check(ENGINE, p2, m)
    check(ENGINE, p, m)


def test_a_market_without_a_needed_price_raises_as_before():
    p, m = fresh()
    bare = pm.Market.from_dict({"time": "2026-11-24T00:00:00Z", "prices": {"BTC": 60_000.0}})
    with pytest.raises(pm.MissingMarketDataError) as reused:
        ENGINE.margin(p, bare)
    with pytest.raises(pm.MissingMarketDataError) as first:
        ENGINE.margin(pm.Portfolio.from_json(p.to_json()), bare)
    assert str(reused.value) == str(first.value)
    check(ENGINE, p, m)  # and the portfolio is margined again as before


def test_live_account_copies_are_fresh_objects():
    p, m = fresh()
    live = pm.LiveAccount(ENGINE, p, m)
    live.update_price("BTC", 61_000.0)
    lp, lm = live.portfolio, live.market
    check(ENGINE, lp, lm)
    assert ENGINE.margin(lp, lm).to_json() == live.margin().to_json()


op = st.one_of(
    st.tuples(
        st.just("price"),
        st.sampled_from(["BTC", "ETH", "SOL", "USDT", "USDC"]),
        st.floats(0.7, 1.3),
    ),
    st.tuples(
        st.just("mark"),
        st.sampled_from(["BTCUSDT", "ETHUSDT_261225", "BTCUSD_PERP"]),
        st.floats(0.97, 1.03),
    ),
    st.tuples(st.just("vol"), st.sampled_from(["BTC", "ETH"]), st.floats(0.5, 2.0)),
    st.tuples(st.just("balance"), st.sampled_from(["USDT", "BTC", "DOGE"]), st.floats(-1.0, 1.0)),
    st.tuples(st.just("margin"), st.just(""), st.just(1.0)),
)


def apply(op: tuple[str, str, float], p: pm.Portfolio, m: pm.Market) -> None:
    kind, key, x = op
    if kind == "price":
        m.set_price(key, strategies.PRICES.get(key, 1.0) * x)
    elif kind == "mark":
        m.set_mark(key, (60_000.0 if key.startswith("BTC") else 3_000.0) * x)
    elif kind == "vol":
        m.set_vol(key, 0.5 * x)
    elif kind == "balance":
        p.add_balance(key, 1_000.0 * x / strategies.PRICES[key])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(p=strategies.portfolio(max_positions=6), ops=st.lists(op, max_size=12))
def test_reuse_equals_first_margin_scenario(p, ops):
    portfolio = pm.Portfolio.from_dict(p)
    market = pm.Market.from_dict(strategies.market())
    ENGINE.margin(portfolio, market)
    for o in ops:
        apply(o, portfolio, market)
        check(ENGINE, portfolio, market)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    acct=strategies_binance.account(max_positions=5),
    moves=st.lists(st.floats(0.8, 1.2), max_size=8),
)
def test_reuse_equals_first_margin_binance_pm(acct, moves):
    p, m, profile = acct
    engine = pm.Engine(pm.RiskParams.from_dict(profile))
    portfolio, market = pm.Portfolio.from_dict(p), pm.Market.from_dict(m)
    engine.margin(portfolio, market)
    prices = market.prices
    for i, f in enumerate(moves):
        asset = sorted(prices)[i % len(prices)]
        market.set_price(asset, prices[asset] * f)
        check(engine, portfolio, market)


def test_copies_and_pickles_start_unresolved_and_equal():
    """deepcopy and pickle give an equal object with a fresh resolution."""
    import copy
    import pickle

    engine = pm.Engine()
    p = pm.Portfolio()
    p.add_balance("USDT", 10_000.0)
    p.add_linear("BTCUSDT", "BTC", -1.0, 60_000.0)
    m = pm.Market(0, prices={"BTC": 60_000.0, "USDT": 1.0}, marks={"BTCUSDT": 59_990.0})
    first = engine.margin(p, m).to_dict()
    for q, n in (
        (copy.deepcopy(p), copy.deepcopy(m)),
        (pickle.loads(pickle.dumps(p)), pickle.loads(pickle.dumps(m))),
    ):
        assert (q.to_json(), n.to_json()) == (p.to_json(), m.to_json())
        assert engine.margin(q, n).to_dict() == first
        n.set_price("BTC", 61_000.0)  # the copy moves alone
        assert engine.margin(p, m).to_dict() == first
