"""The Rust engine under ``binance_pm`` (docs/BINANCE.md) against the reference,
and every entry point under it: the batch equals single calls, the live account
equals a rebuild after random ticks, fills and loans, the risk tools and
``compare`` serve both portfolio-margin models."""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pmengine as pm
from pmengine import reference
from pmengine.book.batch import to_columns
from pmengine.compare import compare
from pmengine.risk import builtin_scenarios, liquidation_plan, liquidation_prices, stress_test
from pmengine.testing import assert_close
from tests.strategies_binance import account

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def engine_of(profile: dict) -> pm.Engine:
    return pm.Engine(pm.RiskParams.from_dict(profile))


@FAST
@given(acc=account())
def test_engine_equals_reference(acc):
    portfolio, market, profile = acc
    got = engine_of(profile).margin(pm.Portfolio.from_dict(portfolio), pm.Market.from_dict(market))
    want = reference.margin(portfolio, market, reference.load_profile(profile))
    assert_close(got.to_dict(), want, rel=1e-9, abs_=1e-6)
    assert got.model == "binance_pm"
    assert all(math.isfinite(x) for x in (got.equity, got.maintenance_margin, got.initial_margin))
    assert got.maintenance_margin >= 0


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    accs=st.lists(account(max_positions=5), min_size=1, max_size=6), threads=st.sampled_from([1, 2])
)
def test_batch_equals_single_calls(accs, threads):
    """One profile for the whole book (the first account's), loans and leverage as columns."""
    np = pytest.importorskip("numpy")
    profile = accs[0][2]
    engine = engine_of(profile)
    market = pm.Market.from_dict(accs[0][1])
    pos, bal = to_columns((i, p) for i, (p, _, _) in enumerate(accs))
    out = engine.margin_batch(
        {k: np.asarray(v) for k, v in pos.items()},
        {k: np.asarray(v) for k, v in bal.items()},
        market,
        threads=threads,
        chunk_size=2,
        output="numpy",
        errors="collect",
    )
    row = {int(a): k for k, a in enumerate(out["account"])}  # an account exists through its rows
    for i, (p, _, _) in enumerate(accs):
        if i not in row:
            assert not p.get("balances") and not p.get("loans") and not p["positions"]
            continue
        i = row[i]
        try:
            want = engine.margin(pm.Portfolio.from_dict(p), market)
        except pm.PmError:
            assert out["status"][i] == "ERROR"
            continue
        assert out["status"][i] == want.status
        for col, x in (
            ("equity", want.equity),
            ("adjusted_equity", want.adjusted_equity),
            ("maintenance_margin", want.maintenance_margin),
            ("initial_margin", want.initial_margin),
            ("available", want.available),
        ):
            assert out[col][i] == x, (col, out[col][i], x)


TV1_PORTFOLIO = {
    "balances": {"USDT": 6000, "BTC": 0.2, "ETH": 20},
    "loans": {"BTC": {"borrowed": 0.04}, "ETH": {"borrowed": 15}},
    "positions": [
        {
            "type": "linear",
            "symbol": "BTCUSDT",
            "underlying": "BTC",
            "qty": -0.05,
            "entry_price": 52000,
        },
        {"type": "linear", "symbol": "ETHUSDT", "underlying": "ETH", "qty": 2, "entry_price": 3100},
        {
            "type": "inverse",
            "symbol": "BTCUSD_PERP",
            "underlying": "BTC",
            "contract_size": 100,
            "contracts": 100,
            "entry_price": 50000,
        },
    ],
}
TV1_MARKET = {
    "time": "2026-11-24T00:00:00Z",
    "prices": {"USDT": 1, "BTC": 40000, "ETH": 3000},
    "marks": {"BTCUSDT": 40000, "BTCUSD_PERP": 40000},
}


def binance_engine() -> pm.Engine:
    return pm.Engine(pm.RiskParams.default().with_model("binance_pm"))


op = st.one_of(
    st.tuples(st.just("price"), st.sampled_from(["BTC", "ETH"]), st.floats(0.6, 1.5)),
    st.tuples(st.just("mark"), st.sampled_from(["BTCUSDT", "BTCUSD_PERP"]), st.floats(0.6, 1.5)),
    st.tuples(st.just("borrow"), st.sampled_from(["USDT", "BTC", "ETH"]), st.floats(0.01, 5)),
    st.tuples(st.just("repay"), st.sampled_from(["BTC", "ETH"]), st.floats(0.0, 1.0)),
    st.tuples(st.just("deposit"), st.sampled_from(["USDT", "BTC"]), st.floats(0.01, 100)),
    st.tuples(
        st.just("fill"), st.sampled_from(["BTCUSDT", "ETHUSDT", "BTCUSD_PERP"]), st.floats(-3, 3)
    ),
)


@settings(max_examples=60, deadline=None)
@given(ops=st.lists(op, max_size=25))
def test_live_account_equals_a_rebuild(ops):
    engine = binance_engine()
    live = pm.LiveAccount(
        engine, pm.Portfolio.from_dict(TV1_PORTFOLIO), pm.Market.from_dict(TV1_MARKET)
    )
    base = {"BTC": 40000.0, "ETH": 3000.0, "BTCUSDT": 40000.0, "BTCUSD_PERP": 40000.0}
    for kind, name, x in ops:
        if kind == "price":
            live.update_price(name, base[name] * x)
        elif kind == "mark":
            live.update_mark(name, base[name] * x)
        elif kind == "borrow":
            live.borrow(name, x)
        elif kind == "repay":
            owed = dict(live.portfolio.loans).get(name, (0.0, 0.0))
            q = min(sum(owed), dict(live.portfolio.balances).get(name, 0.0)) * x
            if q > 0:
                live.repay(name, q)
        elif kind == "deposit":
            live.deposit(name, x)
        else:
            qty = x * (100 if name == "BTCUSD_PERP" else 1)
            if qty == 0:
                continue
            before = live.margin().to_dict()
            probe = live.what_if(name, qty).to_dict()
            assert live.margin().to_dict() == before  # a what-if changes nothing
            live.apply_fill(name, qty)
            assert_close(probe, live.margin().to_dict(), rel=1e-9, abs_=1e-6)
        rebuilt = engine.margin(live.portfolio, live.market)
        assert live.margin().to_dict() == rebuilt.to_dict()


def test_borrow_credits_the_coins_and_books_the_loan():
    engine = binance_engine()
    live = pm.LiveAccount(
        engine, pm.Portfolio.from_dict(TV1_PORTFOLIO), pm.Market.from_dict(TV1_MARKET)
    )
    before = live.margin()
    live.deposit("USDT", 10_000)
    live.borrow("USDT", 5_000)
    assert dict(live.portfolio.balances)["USDT"] == 21_000
    assert dict(live.portfolio.loans)["USDT"] == (5_000, 0.0)
    after = live.margin()
    assert after.equity == pytest.approx(before.equity + 10_000)
    # 5,000 USDT at the default loan leverage (3×): 10 % MM.
    assert after.maintenance_margin == pytest.approx(before.maintenance_margin + 500)
    live.repay("USDT", 5_000)
    assert "USDT" not in dict(live.portfolio.loans)
    assert dict(live.portfolio.balances)["USDT"] == 16_000
    with pytest.raises(pm.InvalidInputError, match=r"repay.qty: exceeds the USDT loan"):
        live.repay("USDT", 1)


def test_check_order_and_max_order_size_under_binance_pm():
    engine = binance_engine()
    live = pm.LiveAccount(
        engine, pm.Portfolio.from_dict(TV1_PORTFOLIO), pm.Market.from_dict(TV1_MARKET)
    )
    q = live.max_order_size("ETHUSDT", "buy", target_ratio=1.5)
    assert q > 0
    after = live.what_if("ETHUSDT", q)
    assert after.uni_mmr >= 1.5 and after.available >= 0
    check = live.check_order("ETHUSDT", 2 * q + 1)
    assert not check.allowed


def test_risk_tools_under_binance_pm():
    engine = binance_engine()
    p, m = pm.Portfolio.from_dict(TV1_PORTFOLIO), pm.Market.from_dict(TV1_MARKET)
    lps = liquidation_prices(engine, p, m)
    assert {lp.group for lp in lps} == {"BTC", "ETH"}
    down = [lp for lp in lps if lp.status == "LIQUIDATION" and lp.direction == "down"]
    for lp in down:
        if lp.price is None:
            continue
        # Just beyond the price the account is in liquidation under Binance's formula.
        moved = {
            a: lp.price / lp.current_price
            for a in m.prices
            if engine.params.group_of(a) == lp.group
        }
        from pmengine.risk import moved_market

        r = engine.margin(p, moved_market(m, p, {a: f * (1 - 1e-6) for a, f in moved.items()}))
        assert r.uni_mmr <= 1.05 or r.status == "BANKRUPT"
    stresses = stress_test(engine, p, m, builtin_scenarios())
    assert all(math.isfinite(s.maintenance_margin) for s in stresses)
    plan = liquidation_plan(engine, p, m, force=True)
    assert plan.to_dict()["actions"] is not None


def test_compare_shows_both_portfolio_models():
    for model in ("scenario", "binance_pm"):
        engine = pm.Engine(pm.RiskParams.default().with_model(model))
        c = compare(engine, pm.Portfolio.from_dict(TV1_PORTFOLIO), pm.Market.from_dict(TV1_MARKET))
        b = binance_engine().margin(
            pm.Portfolio.from_dict(TV1_PORTFOLIO), pm.Market.from_dict(TV1_MARKET)
        )
        s = pm.Engine().margin(
            pm.Portfolio.from_dict(TV1_PORTFOLIO), pm.Market.from_dict(TV1_MARKET)
        )
        assert c["binance_pm"]["maintenance_margin"] == b.maintenance_margin
        assert c["portfolio"]["maintenance_margin"] == s.maintenance_margin
        assert any("bracket MM" in f for f in c["binance_pm"]["recognised"])


def test_compare_says_why_binance_pm_cannot_margin_options():
    p = pm.Portfolio.from_dict(
        {
            "balances": {"USDT": 10_000},
            "positions": [
                {
                    "type": "option",
                    "symbol": "BTC-C",
                    "underlying": "BTC",
                    "kind": "call",
                    "strike": 60000,
                    "expiry": "2027-01-01T00:00:00Z",
                    "qty": -1,
                }
            ],
        }
    )
    m = pm.Market.from_dict(
        {"time": "2026-11-24T00:00:00Z", "prices": {"USDT": 1, "BTC": 60000}, "vols": {"BTC": 0.5}}
    )
    c = compare(pm.Engine(), p, m)
    assert "positions[0].type" in c["binance_pm"]["error"]
    # Classic margin under a binance_pm profile still prices a short option alone.
    classic = binance_engine().classic(p, m, "cross")
    assert classic.maintenance_margin == pm.Engine().classic(p, m, "cross").maintenance_margin


def test_with_model_and_its_errors():
    params = pm.RiskParams.default()
    assert params.model == "scenario"
    assert params.with_model("binance_pm").model == "binance_pm"
    with pytest.raises(pm.ProfileError, match=r"model: must be"):
        params.with_model("span")
    bare = params.to_dict()
    del bare["binance"]
    with pytest.raises(pm.ProfileError, match=r"binance: required"):
        pm.RiskParams.from_dict(bare).with_model("binance_pm")
