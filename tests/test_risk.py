"""Risk tools: liquidation prices, stress tests, the stablecoin buffer, exposure
warnings and the liquidation plan, each checked against its definition."""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pmengine as pm
from pmengine import risk
from pmengine.errors import InvalidInputError
from pmengine.testing import assert_close

from . import strategies
from .conftest import EXAMPLES

ENGINE = pm.Engine()
PARAMS = ENGINE.params
MARKET = pm.Market.from_json((EXAMPLES / "market.json").read_text())


def example(name: str) -> pm.Portfolio:
    return pm.Portfolio.from_json((EXAMPLES / f"{name}.json").read_text())


def uni_at(
    portfolio: pm.Portfolio, market: pm.Market, group: str, f: float, co_move: bool = False
) -> float:
    beta = risk.co_movement(PARAMS, group, down=f < 1) if co_move else {}
    factors = {}
    for a in market.prices:
        h = PARAMS.group_of(a)
        factors[a] = f if h == group else f ** beta.get(h, beta.get("*", 0.0))
    r = ENGINE.margin(portfolio, risk.moved_market(market, portfolio, factors))
    return -math.inf if r.status == "BANKRUPT" else r.uni_mmr


def moved(portfolio: pm.Portfolio, **groups: float) -> pm.Market:
    return risk.apply_scenario(risk.Scenario("t", groups=groups), portfolio, MARKET, PARAMS)


# -- moving the market -------------------------------------------------------------------


def test_moved_market_moves_prices_and_marks():
    p = example("near_liquidation")
    m = risk.moved_market(MARKET, p, {"BTC": 0.9, "USDT": 0.5}, vol_factor=2.0)
    d = m.to_dict()
    assert d["prices"]["BTC"] == pytest.approx(54000)
    assert d["prices"]["USDT"] == pytest.approx(0.5)
    # a linear mark is in settle units: BTC in USDT moves by 0.9 / 0.5
    assert d["marks"]["BTCUSDT"] == pytest.approx(60030 * 0.9 / 0.5)
    assert d["marks"]["ETHUSDT"] == pytest.approx(3001.5 / 0.5)
    assert d["vols"]["BTC"] == pytest.approx(1.0)
    assert MARKET.prices["BTC"] == 60000  # the original is untouched


def test_inverse_mark_moves_with_its_underlying():
    p = example("coin_margined_hedge")
    m = risk.moved_market(MARKET, p, {"BTC": 1.1, "USDT": 0.5})
    assert m.to_dict()["marks"]["BTCUSD_PERP"] == pytest.approx(60025 * 1.1)


def test_scenario_groups_and_star():
    s = risk.Scenario("s", groups={"*": -0.3, "ETH": 0.1}, assets={"WBTC": -0.5})
    f = risk.scenario_factors(s, MARKET, PARAMS)
    assert f["BTC"] == pytest.approx(0.7)
    assert f["ETH"] == pytest.approx(1.1)
    assert f["WBTC"] == pytest.approx(0.5)
    assert "USDT" not in f  # "*" leaves the stablecoins (price_range 0) alone


# -- scenarios from TOML and the command line ----------------------------------------


def test_builtin_scenarios():
    names = [s.name for s in risk.builtin_scenarios()]
    assert names == ["crash_30", "crash_50", "squeeze", "usdt_depeg", "vol_spike"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[[stress]]\ngroups = {BTC = -0.1}", "stress[0].name"),
        ('[[stress]]\nname = "a"\ngroups = {BTC = -1.0}', "stress[0].groups.BTC: must be > -1"),
        ('[[stress]]\nname = "a"\nvol_shock = "x"', "stress[0].vol_shock: must be a finite"),
        ('[[stress]]\nname = "a"\nprice = 1', "stress[0].price: unknown key"),
        ('[[stress]]\nname = "a"\n[[stress]]\nname = "a"', "duplicate name"),
        ("stress = 3", "array of tables"),
        ("[[stress]\n", "not valid TOML"),
    ],
)
def test_bad_scenario_files(text, message):
    with pytest.raises(InvalidInputError, match=message.replace("[", r"\[").replace("]", r"\]")):
        risk.load_scenarios(text, "f.toml")


def test_a_move_may_name_an_asset_alone():
    f = risk.scenario_factors(risk.parse_move("WBTC=-0.5"), MARKET, PARAMS)
    assert f == {"WBTC": 0.5}
    risk.check_scenario(risk.parse_move("WBTC=-0.5,ETH=0.1,*=0.1"), PARAMS, MARKET)
    with pytest.raises(InvalidInputError, match=r"assets\.DAI: no price"):
        risk.check_scenario(risk.Scenario("x", assets={"DAI": -0.1}), PARAMS, MARKET)


def test_parse_move():
    s = risk.parse_move("BTC=-0.2,ETH=0.1,vol=0.5")
    assert s.groups == {"BTC": -0.2, "ETH": 0.1}
    assert s.vol_shock == 0.5
    for bad in ("BTC", "BTC=x", "BTC=-1.5", "=1"):
        with pytest.raises(InvalidInputError, match="--move"):
            risk.parse_move(bad)


# -- stress tests ------------------------------------------------------------------------


def test_stress_by_hand():
    # leveraged_spot: 3 BTC on a 120,000 USDT loan; -30 % costs 3 * 18,000
    p = example("leveraged_spot")
    by_name = {s.name: s for s in risk.stress_test(ENGINE, p, MARKET)}
    assert by_name["crash_30"].pnl == pytest.approx(-54000)
    assert by_name["vol_spike"].pnl == pytest.approx(0)
    assert by_name["squeeze"].pnl == pytest.approx(54000)
    # the depeg makes the USDT loan cheaper: +12,000
    assert by_name["usdt_depeg"].pnl == pytest.approx(12000)
    after = ENGINE.margin(p, moved(p, BTC=-0.3))
    assert by_name["crash_30"].maintenance_margin == pytest.approx(after.maintenance_margin)
    assert by_name["crash_30"].status == after.status


# -- liquidation prices ------------------------------------------------------------------


def check_liquidation_prices(p: pm.Portfolio, market: pm.Market, co_move: bool = False) -> int:
    """Each reported price crosses its threshold, and just inside it the ratio is
    on the current side. Returns how many prices were checked."""
    checked = 0
    for lp in risk.liquidation_prices(ENGINE, p, market, co_move=co_move):
        u0 = uni_at(p, market, lp.group, 1.0)
        side = u0 > lp.threshold
        if lp.price is None:
            continue
        f = lp.price / lp.current_price
        u = uni_at(p, market, lp.group, f, co_move)
        assert (u > lp.threshold) != side, lp
        assert u == pytest.approx(lp.uni_mmr)
        # just inside: beyond the root finder's bracket, towards the current price (unless
        # the crossing is within the bracket of the current price itself: an expired
        # at-the-money option's ratio jumps right there, and no point is inside)
        inside = f + math.copysign(min(abs(1 - f) / 2, 10 * risk.PRICE_TOL * f), 1 - f)
        if abs(1 - f) > 2 * risk.PRICE_TOL * f:
            assert (uni_at(p, market, lp.group, inside, co_move) > lp.threshold) == side, lp
        if math.isfinite(u):
            # continuous in the price unless an expired option's delta jumps
            assert abs(u - lp.threshold) <= 1e-6 * (1 + lp.threshold) or any(
                q["type"] == "option" for q in p.positions
            ), (lp, u)
        checked += 1
    return checked


def test_liquidation_prices_of_the_near_liquidation_account():
    p = example("near_liquidation")
    lps = risk.liquidation_prices(ENGINE, p, MARKET)
    down = {(x.group, x.status): x for x in lps if x.direction == "down"}
    assert down["BTC", "LIQUIDATION"].price == pytest.approx(59501.28, abs=0.01)
    assert down["BTC", "LIQUIDATION"].uni_mmr == pytest.approx(1.05, abs=1e-8)
    assert down["BTC", "MARGIN_CALL"].price is None  # already below that threshold
    up = {(x.group, x.status): x for x in lps if x.direction == "up"}
    assert up["BTC", "NORMAL"].threshold == 1.5  # rising back above 150 %
    assert check_liquidation_prices(p, MARKET) == 6


def test_a_long_has_no_upside_liquidation_price():
    p = example("leveraged_spot")
    lps = risk.liquidation_prices(ENGINE, p, MARKET)
    assert [x.price is None for x in lps if x.direction == "up"] == [True] * 3
    assert all(x.price is not None for x in lps if x.direction == "down")
    check_liquidation_prices(p, MARKET)


def test_linear_liquidation_price_closed_form():
    # 1 BTC long perp on 10,000 USDT, no mark: MM = 10 % of the notional (the grid's
    # worst loss), E_adj = 10,000 + (P - 60,000); E_adj = 1.05 * 0.1 * P at the price
    p = pm.Portfolio.from_dict(
        {
            "balances": {"USDT": 10000},
            "positions": [
                {
                    "type": "linear",
                    "symbol": "BTCUSDT",
                    "underlying": "BTC",
                    "qty": 1,
                    "entry_price": 60000,
                }
            ],
        }
    )
    m = pm.Market.from_dict({"time": "2026-11-24", "prices": {"BTC": 60000, "USDT": 1}})
    r = ENGINE.margin(p, m)
    assert r.maintenance_margin == pytest.approx(6000)
    lps = {(x.status, x.direction): x for x in risk.liquidation_prices(ENGINE, p, m)}
    want = 50000 / (1 - 1.05 * 0.1)
    assert lps["LIQUIDATION", "down"].price == pytest.approx(want, rel=1e-9)


def test_co_movement_moves_the_other_groups():
    beta = risk.co_movement(PARAMS, "BTC", down=True)
    assert beta["ETH"] == pytest.approx(0.12 / 0.10)
    assert beta["USD"] == 0
    assert beta["*"] == pytest.approx(0.20 / 0.10)  # DOGE and every unlisted asset
    p = example("btc_eth_spread")
    alone = {
        (x.group, x.status, x.direction): x.price
        for x in risk.liquidation_prices(ENGINE, p, MARKET)
    }
    co = {
        (x.group, x.status, x.direction): x.price
        for x in risk.liquidation_prices(ENGINE, p, MARKET, co_move=True)
    }
    # long BTC against short ETH: with ETH falling faster, a BTC fall hurts less
    assert alone["BTC", "LIQUIDATION", "down"] is not None
    assert co["BTC", "LIQUIDATION", "down"] is None


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(p=strategies.portfolio(max_positions=5), marks=strategies.marks(), co_move=st.booleans())
def test_liquidation_prices_on_generated_accounts(p, marks, co_move):
    portfolio = pm.Portfolio.from_dict(p)
    market = pm.Market.from_dict(strategies.market(marks))
    check_liquidation_prices(portfolio, market, co_move)


# -- stablecoin buffer -------------------------------------------------------------------


def status_ok(p: pm.Portfolio, target: str, scenario: risk.Scenario | None) -> bool:
    m = MARKET if scenario is None else risk.apply_scenario(scenario, p, MARKET, PARAMS)
    r = ENGINE.margin(p, m)
    return risk.status_rank(PARAMS, r.status) <= risk.status_rank(PARAMS, target)


def plus(p: pm.Portfolio, asset: str, qty: float) -> pm.Portfolio:
    d = p.to_dict()
    d["balances"][asset] = d["balances"].get(asset, 0.0) + qty
    return pm.Portfolio.from_dict(d)


SCENARIOS = {s.name: s for s in risk.builtin_scenarios()}


@pytest.mark.parametrize(
    "name", ["near_liquidation", "leveraged_spot", "btc_eth_spread", "short_straddle"]
)
@pytest.mark.parametrize("stress", ["crash_30", "squeeze", "usdt_depeg", None])
@pytest.mark.parametrize(("asset", "target"), [("USDT", "NORMAL"), ("USDC", "MARGIN_CALL")])
def test_deposit_lands_at_the_target(name, stress, asset, target):
    p = example(name)
    s = None if stress is None else SCENARIOS[stress]
    x = risk.deposit_needed(ENGINE, p, MARKET, asset=asset, target=target, scenario=s)
    assert x is not None
    if x == 0:
        assert status_ok(p, target, s)
        return
    assert status_ok(plus(p, asset, x), target, s)
    assert not status_ok(plus(p, asset, 0.99 * x), target, s)


@pytest.mark.parametrize(
    "name", ["short_straddle", "btc_eth_spread", "covered_call", "cash_and_carry"]
)
def test_withdrawal_keeps_the_target(name):
    p = example(name)
    w = risk.max_withdrawal(ENGINE, p, MARKET, asset="USDT", target="NORMAL")
    balance = dict(p.balances).get("USDT", 0.0)
    assert 0 <= w <= balance
    assert status_ok(plus(p, "USDT", -w), "NORMAL", None)
    if 0 < w < balance:
        assert not status_ok(plus(p, "USDT", -1.01 * w), "NORMAL", None)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    p=strategies.portfolio(max_positions=5),
    stress=st.sampled_from(["crash_30", "squeeze", "usdt_depeg", "vol_spike"]),
    target=st.sampled_from(["NORMAL", "MARGIN_CALL", "REDUCE_ONLY"]),
)
def test_deposit_on_generated_accounts(p, stress, target):
    portfolio = pm.Portfolio.from_dict(p)
    market = pm.Market.from_dict(strategies.market())
    s = SCENARIOS[stress]

    def ok(q: pm.Portfolio) -> bool:
        r = ENGINE.margin(q, risk.apply_scenario(s, q, market, PARAMS))
        return risk.status_rank(PARAMS, r.status) <= risk.status_rank(PARAMS, target)

    x = risk.deposit_needed(ENGINE, portfolio, market, target=target, scenario=s)
    if x is None:  # e.g. a loan against assets that are not collateral, never covered
        return
    if x == 0:
        assert ok(portfolio)
    else:
        assert ok(plus(portfolio, "USDT", x))
        assert not ok(plus(portfolio, "USDT", 0.99 * x))


def test_buffer_rejects_unknown_target():
    with pytest.raises(InvalidInputError, match="target: unknown status 'SAFE'"):
        risk.deposit_needed(ENGINE, example("leveraged_spot"), MARKET, target="SAFE")


def test_json_has_no_infinity():
    # no margin at all: uniMMR and the usage ratios are unbounded or zero
    import json

    p = pm.Portfolio.from_dict({"balances": {"USDT": 1000}, "positions": []})
    d = risk.risk_report(ENGINE, p, MARKET).to_dict()
    text = json.dumps(d, allow_nan=False)
    assert json.loads(text)["stresses"][0]["uni_mmr"] is None


# -- exposure ----------------------------------------------------------------------------


def test_exposure_by_hand():
    p = example("near_liquidation")
    x = risk.exposure_report(ENGINE, p, MARKET)
    r = ENGINE.margin(p, MARKET)
    assert x.gross_notional == pytest.approx(5 * 60030 + 60 * 3001.5)
    assert x.leverage == pytest.approx(x.gross_notional / r.equity)
    assert x.net_exposure["BTC"] == pytest.approx(5 * 60030)
    assert x.btc_correlated_share == 1.0
    assert x.mm_usage == pytest.approx(r.maintenance_margin / r.adjusted_equity)
    assert x.im_usage == pytest.approx(r.initial_margin / r.adjusted_equity)
    metrics = [w.metric for w in x.warnings]
    assert metrics == [
        "leverage",
        "group_exposure.BTC",
        "group_exposure.ETH",
        "btc_correlated_share",
        "mm_usage",
        "im_usage",
    ]
    assert "8.5×" in x.warnings[0].message


def test_exposure_thresholds_and_quiet_accounts():
    p = example("covered_call")
    assert risk.exposure_report(ENGINE, p, MARKET).warnings == []
    loud = risk.exposure_report(ENGINE, p, MARKET, thresholds={"leverage": 1.0})
    assert [w.metric for w in loud.warnings] == ["leverage"]


# -- liquidation plan --------------------------------------------------------------------


def in_liquidation() -> list[tuple[str, pm.Portfolio, pm.Market]]:
    out = []
    for name, move in [("near_liquidation", -0.05), ("leveraged_spot", -0.24)]:
        p = example(name)
        out.append((name, p, moved(p, **{"*": move})))
    return out


def check_plan(p: pm.Portfolio, market: pm.Market, plan: risk.LiquidationPlan) -> None:
    before = ENGINE.margin(p, market)
    # the actions alone, replayed on the portfolio, give the plan's end state
    replayed = risk.apply_plan(ENGINE, p, market, plan.actions)
    assert_close(replayed.to_dict(), plan.portfolio_after)
    after = ENGINE.margin(replayed, market)
    assert after.equity == pytest.approx(before.equity, rel=1e-9, abs=1e-6)
    if plan.reached:
        assert after.uni_mmr >= plan.target_ratio
    for a in plan.actions:
        assert a.mm_after <= a.mm_before + 1e-9
        if a.uni_mmr_before > 0:
            assert a.uni_mmr_after >= a.uni_mmr_before
    if plan.actions:
        assert plan.actions[-1].uni_mmr_after == pytest.approx(after.uni_mmr)


@pytest.mark.parametrize("case", in_liquidation(), ids=lambda c: c[0])
def test_plan_restores_the_target(case):
    _, p, m = case
    plan = risk.liquidation_plan(ENGINE, p, m)
    assert plan.needed and plan.reached
    assert plan.status == "LIQUIDATION"
    assert plan.actions[0].kind == "cancel_orders"
    assert len(plan.actions) >= 2
    check_plan(p, m, plan)
    # the last step is partial: a little less would not reach the target
    last = plan.actions[-1]
    assert 0 < last.fraction < 1
    assert plan.to_dict() == risk.liquidation_plan(ENGINE, p, m).to_dict()


def test_plan_closes_the_largest_contribution_first():
    _, p, m = in_liquidation()[0]
    plan = risk.liquidation_plan(ENGINE, p, m)
    # 5 BTC (300k USD) carry more margin than 60 ETH (180k USD)
    assert plan.actions[1].symbol == "BTCUSDT"
    assert set(plan.sold_usd) == {"BTC"}


def test_plan_is_empty_for_a_healthy_account():
    plan = risk.liquidation_plan(ENGINE, example("near_liquidation"), MARKET)
    assert not plan.needed and plan.actions == []
    forced = risk.liquidation_plan(ENGINE, example("near_liquidation"), MARKET, force=True)
    assert forced.reached and len(forced.actions) == 2


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    p=strategies.portfolio(max_positions=5),
    move=st.sampled_from([-0.3, -0.15, 0.0, 0.15, 0.3]),
)
def test_plan_on_generated_accounts(p, move):
    portfolio = pm.Portfolio.from_dict(p)
    market = pm.Market.from_dict(strategies.market())
    market = risk.apply_scenario(risk.Scenario("m", groups={"*": move}), portfolio, market, PARAMS)
    plan = risk.liquidation_plan(ENGINE, portfolio, market, force=True)
    check_plan(portfolio, market, plan)
    assert plan.to_dict() == risk.liquidation_plan(ENGINE, portfolio, market, force=True).to_dict()
