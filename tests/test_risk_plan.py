"""The liquidation plan in the core (``Engine.liquidation_plan``) gives the plan
the Python search gave when it edited portfolio dicts and margined each one
afresh: the same actions, figures and end state, bit for bit, on generated
accounts of both margin models, in liquidation and forced."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pmengine as pm
from pmengine import risk
from pmengine.risk.ladder import _ladder
from pmengine.risk.moves import _uni
from pmengine.risk.plan import LiquidationPlan, PlanAction

from . import strategies, strategies_binance
from .conftest import EXAMPLES

ENGINE = pm.Engine()
MARKET = pm.Market.from_json((EXAMPLES / "market.json").read_text())

# -- the Python search as it ran before it moved to the core (the oracle) ----------------


def _no_worse(before: pm.MarginResult, after: pm.MarginResult) -> bool:
    tol = 1e-9 * (1.0 + abs(before.adjusted_equity))
    return (
        after.maintenance_margin <= before.maintenance_margin + 1e-9
        and after.adjusted_equity >= before.adjusted_equity - tol
    )


def _close(engine, d: dict[str, Any], i: int, fraction: float, market) -> dict[str, Any]:
    before = pm.Portfolio.from_dict(d)
    settle = engine.position_terms(before, market)[i]["margin_asset"]
    out = copy.deepcopy(d)
    p = out["positions"][i]
    key = "contracts" if p["type"] == "inverse" else "qty"
    if fraction >= 1.0:
        del out["positions"][i]
    else:
        p[key] = p[key] * (1.0 - fraction)
    e_before = engine.margin(before, market).equity
    e_after = engine.margin(pm.Portfolio.from_dict(out), market).equity
    value = (e_before - e_after) / market.prices[settle]
    out["balances"][settle] = out["balances"].get(settle, 0.0) + value
    return out


def _repay(d: dict[str, Any], loan: str, collateral: str, repaid: float, market) -> dict:
    out = copy.deepcopy(d)
    prices = market.prices
    out["balances"][loan] += repaid
    out["balances"][collateral] -= repaid * prices[loan] / prices[collateral]
    return out


def old_liquidation_plan(
    engine, portfolio, market, *, target="MARGIN_CALL", force=False, rel_tol=1e-9
) -> LiquidationPlan:
    params = engine.params
    ladder = dict(_ladder(params))
    t = ladder[target]
    if not math.isfinite(t):
        t = 0.0
    prices = market.prices

    def margin(d: dict[str, Any]) -> pm.MarginResult:
        return engine.margin(pm.Portfolio.from_dict(d), market)

    d = portfolio.to_dict()
    index = list(range(len(d["positions"])))
    r0 = margin(d)
    liq_rank = len(ladder) - 1
    needed = risk.status_rank(params, r0.status) >= liq_rank
    actions: list[PlanAction] = []
    sold: dict[str, float] = {}

    def reached(r) -> bool:
        return _uni(r) >= t

    def record(kind: str, desc: str, before, after, **kw: Any) -> None:
        fields: dict[str, Any] = {
            "group": None,
            "asset": None,
            "symbol": None,
            "position": None,
            "fraction": 0.0,
            "qty": 0.0,
            "usd": 0.0,
            "loan_asset": None,
            "repaid": 0.0,
        }
        fields.update(kw)
        actions.append(
            PlanAction(
                len(actions) + 1,
                kind,
                desc,
                uni_mmr_before=before.uni_mmr,
                uni_mmr_after=after.uni_mmr,
                mm_before=before.maintenance_margin,
                mm_after=after.maintenance_margin,
                **fields,
            )
        )

    if not (needed or force):
        return LiquidationPlan(r0.status, r0.uni_mmr, target, t, needed, reached(r0), [], {}, d)
    if not reached(r0):
        record(
            "cancel_orders", "cancel every open order (none are recorded in the portfolio)", r0, r0
        )

    def smallest(step: Callable[[float], dict[str, Any]]) -> float:
        if not reached(margin(step(1.0))):
            return 1.0
        lo, hi = 0.0, 1.0
        while hi - lo > rel_tol:
            mid = 0.5 * (lo + hi)
            if mid in (lo, hi):
                break
            if reached(margin(step(mid))):
                hi = mid
            else:
                lo = mid
        return hi

    r = r0
    while not reached(r) and d["positions"]:
        best, best_gain = -1, 0.0
        for i in range(len(d["positions"])):
            after = margin(_close(engine, d, i, 1.0, market))
            gain = r.maintenance_margin - after.maintenance_margin
            if gain > best_gain and _no_worse(r, after):
                best, best_gain = i, gain
        if best < 0:
            break
        i = best

        def close(f: float, i: int = i, d: dict[str, Any] = d) -> dict[str, Any]:
            return _close(engine, d, i, f, market)

        frac = smallest(close)
        new = close(frac)
        after = margin(new)
        if not _no_worse(r, after):
            frac, new = 1.0, close(1.0)
            after = margin(new)
        p = d["positions"][i]
        b = p["underlying"]
        terms = engine.position_terms(pm.Portfolio.from_dict(d), market)[i]
        usd, qty = terms["notional"] * frac, terms["quantity"] * frac
        side = "sell" if qty > 0 else "buy back"
        record(
            "close_position",
            f"{side} {frac * 100:.4g} % of {p['symbol']} ({abs(qty):,.6g} "
            f"{'contracts' if p['type'] == 'inverse' else b}, {usd:,.2f} USD)",
            r,
            after,
            group=params.group_of(b),
            asset=b,
            symbol=p["symbol"],
            position=index[i],
            fraction=frac,
            qty=qty,
            usd=usd,
        )
        sold[b] = sold.get(b, 0.0) + usd
        if frac >= 1.0:
            del index[i]
        d, r = new, after

    for _ in range(100):
        if reached(r):
            break
        bal = d["balances"]
        loans = sorted(a for a, q in bal.items() if q < 0)
        assets = sorted(a for a, q in bal.items() if q > 0)
        best_pair: tuple[str, str, float] | None = None
        best_uni = _uni(r)
        for loan in loans:
            for c in assets:
                y = min(-bal[loan], bal[c] * prices[c] / prices[loan])
                after = margin(_repay(d, loan, c, y, market))
                if _uni(after) > best_uni and _no_worse(r, after) and y > 0:
                    best_pair, best_uni = (loan, c, y), _uni(after)
        if best_pair is None:
            break
        loan, c, y_max = best_pair

        def repay(f: float, loan=loan, c=c, y_max=y_max, d=d) -> dict[str, Any]:
            return _repay(d, loan, c, y_max * f, market)

        frac = smallest(repay)
        new, after = repay(frac), margin(repay(frac))
        if not _no_worse(r, after):
            new, after = repay(1.0), margin(repay(1.0))
            frac = 1.0
        y = y_max * frac
        qty = y * prices[loan] / prices[c]
        usd = y * prices[loan]
        record(
            "repay_loan",
            f"sell {qty:,.6g} {c} ({usd:,.2f} USD) to repay {y:,.6g} {loan}",
            r,
            after,
            group=params.group_of(c),
            asset=c,
            fraction=frac,
            qty=-qty,
            usd=usd,
            loan_asset=loan,
            repaid=y,
        )
        sold[c] = sold.get(c, 0.0) + usd
        d, r = new, after

    return LiquidationPlan(r0.status, r0.uni_mmr, target, t, needed, reached(r), actions, sold, d)


# -- the core plan against it -------------------------------------------------------------


def same_plan(engine, p: pm.Portfolio, m: pm.Market, **kw: Any) -> LiquidationPlan:
    core = risk.liquidation_plan(engine, p, m, **kw)
    old = old_liquidation_plan(engine, p, m, **kw)
    # Dataclass equality: every action's figures and the end state, float for float.
    assert core == old, (core, old)
    assert core.to_dict() == old.to_dict()
    # The end state keeps every value bit for bit, and the balances in order.
    assert list(core.portfolio_after["balances"].items()) == list(
        old.portfolio_after["balances"].items()
    )
    replayed = risk.apply_plan(engine, p, m, core.actions)
    assert replayed.to_dict() == core.portfolio_after
    return core


MOVES = [-0.4, -0.3, -0.2, -0.1, 0.0, 0.1, 0.2, 0.3]
TARGETS = ["NORMAL", "MARGIN_CALL", "REDUCE_ONLY"]


def moved(engine, p: pm.Portfolio, m: pm.Market, move: float) -> pm.Market:
    scenario = risk.Scenario("m", groups={"*": move})
    return risk.apply_scenario(scenario, p, m, engine.params)


@st.composite
def thin(draw, accounts: st.SearchStrategy[dict]) -> dict:
    """An account with its balances cut to a fraction: often in liquidation."""
    p = draw(accounts)
    k = draw(st.sampled_from([0.01, 0.05, 0.2, 1.0]))
    return {**p, "balances": {a: q * k for a, q in p["balances"].items()}}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    p=thin(strategies.portfolio(max_positions=5)),
    marks=strategies.marks(),
    move=st.sampled_from(MOVES),
    target=st.sampled_from(TARGETS),
    force=st.booleans(),
)
def test_core_plan_equals_the_python_search(p, marks, move, target, force):
    portfolio = pm.Portfolio.from_dict(p)
    market = moved(ENGINE, portfolio, pm.Market.from_dict(strategies.market(marks)), move)
    same_plan(ENGINE, portfolio, market, target=target, force=force)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    acct=strategies_binance.account(max_positions=4),
    move=st.sampled_from(MOVES),
    force=st.booleans(),
)
def test_core_plan_equals_the_python_search_binance_pm(acct, move, force):
    p, m, profile = acct
    engine = pm.Engine(pm.RiskParams.from_dict(profile))
    portfolio = pm.Portfolio.from_dict(p)
    market = moved(engine, portfolio, pm.Market.from_dict(m), move)
    same_plan(engine, portfolio, market, force=force)


@st.composite
def leveraged(draw) -> dict:
    """Spot bought on margin: coins held against stablecoin (or coin) loans, as
    negative balances, with a contract or two at times; often in liquidation, so
    the plan sells collateral to repay, choosing among the pairs."""
    coins = draw(st.lists(st.sampled_from(["BTC", "ETH", "SOL", "DOGE"]), min_size=1, unique=True))
    balances = {c: round(draw(st.floats(0.2, 3.0)) * 1e5 / strategies.PRICES[c], 6) for c in coins}
    held = sum(q * strategies.PRICES[c] for c, q in balances.items())
    loans = draw(st.lists(st.sampled_from(["USDT", "USDC", "ETH"]), min_size=1, unique=True))
    for asset in loans:
        share = draw(st.floats(0.3, 0.95)) / len(loans)
        balances[asset] = balances.get(asset, 0.0) - round(
            held * share / strategies.PRICES[asset], 6
        )
    positions = draw(st.lists(strategies.linear(), max_size=2))
    return {"balances": balances, "positions": positions}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(p=leveraged(), move=st.sampled_from(MOVES), force=st.booleans())
def test_core_plan_equals_the_python_search_with_loans(p, move, force):
    portfolio = pm.Portfolio.from_dict(p)
    market = moved(ENGINE, portfolio, pm.Market.from_dict(strategies.market()), move)
    same_plan(ENGINE, portfolio, market, force=force)


@pytest.mark.parametrize(
    ("name", "move"),
    [("near_liquidation", -0.05), ("leveraged_spot", -0.24), ("near_liquidation", -0.3)],
)
def test_examples_in_liquidation_equal_the_python_search(name, move):
    p = pm.Portfolio.from_json((EXAMPLES / f"{name}.json").read_text())
    plan = same_plan(ENGINE, p, moved(ENGINE, p, MARKET, move))
    assert plan.needed and plan.actions


def test_a_replay_names_the_action_at_fault():
    p = pm.Portfolio.from_json((EXAMPLES / "near_liquidation.json").read_text())
    m = moved(ENGINE, p, MARKET, -0.05)
    close = {"kind": "close_position", "position": 0, "fraction": 1.0}
    cases = {
        "actions[1].position": [close, close],
        "actions[0].position": [{**close, "position": 7}],
        "actions[0].fraction": [{**close, "fraction": 1.5}],
        "actions[0].kind": [{"kind": "sell_everything"}],
        "actions[0].loan_asset": [{"kind": "repay_loan", "asset": "BTC", "qty": -1.0, "repaid": 1}],
    }
    for field, actions in cases.items():
        with pytest.raises(pm.InvalidInputError) as e:
            ENGINE.apply_plan(p, m, actions)
        assert e.value.field == field, (field, e.value)


@pytest.mark.parametrize("tol", [0.0, -1.0, float("nan"), 1.0])
def test_a_plan_tolerance_that_would_never_stop_is_refused(tol):
    p = pm.Portfolio.from_json((EXAMPLES / "near_liquidation.json").read_text())
    with pytest.raises(pm.InvalidInputError) as e:
        risk.liquidation_plan(ENGINE, p, MARKET, rel_tol=tol)
    assert (e.value.field, e.value.code) == ("rel_tol", "out_of_range")
