"""The liquidation plan: the ordered actions (close positions, sell collateral
to repay loans) that bring uniMMR back to a target, as a liquidation engine
would take them."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from pmengine._core import Engine, MarginResult, Market, Portfolio
from pmengine.errors import InvalidInputError
from pmengine.risk._json import _json_dict
from pmengine.risk.buffer import AMOUNT_TOL
from pmengine.risk.ladder import _check_target, _ladder, status_rank
from pmengine.risk.moves import _uni


@dataclass(frozen=True)
class PlanAction:
    """One step of a liquidation plan.

    ``kind``: ``cancel_orders``, ``close_position`` (``fraction`` of position
    ``position`` closed at its mark, its value realised in its settle asset)
    or ``repay_loan`` (``qty`` of ``asset`` sold at index for ``repaid`` of
    ``loan_asset``). ``usd``: the USD value traded. uniMMR and MM before and
    after the step."""

    step: int
    kind: str
    description: str
    group: str | None
    asset: str | None
    symbol: str | None
    position: int | None
    fraction: float
    qty: float
    usd: float
    loan_asset: str | None
    repaid: float
    uni_mmr_before: float
    uni_mmr_after: float
    mm_before: float
    mm_after: float

    def to_dict(self) -> dict[str, Any]:
        return _json_dict(asdict(self))


@dataclass(frozen=True)
class LiquidationPlan:
    """The actions that bring uniMMR to ``target_ratio`` or above, in order.

    ``needed``: the account is at or below the liquidation threshold (status
    LIQUIDATION or BANKRUPT). ``reached``: uniMMR ≥ ``target_ratio`` after the
    actions. ``sold_usd``: USD traded per asset (contracts by underlying,
    collateral by asset), how the plan spreads across the book."""

    status: str
    uni_mmr: float
    target: str
    target_ratio: float
    needed: bool
    reached: bool
    actions: list[PlanAction]
    sold_usd: dict[str, float]
    portfolio_after: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return _json_dict(asdict(self))


def _no_worse(before: MarginResult, after: MarginResult) -> bool:
    """A step that does not add risk: MM does not rise, adjusted equity does not fall
    (so uniMMR does not fall while adjusted equity is positive)."""
    tol = 1e-9 * (1.0 + abs(before.adjusted_equity))
    return (
        after.maintenance_margin <= before.maintenance_margin + 1e-9
        and after.adjusted_equity >= before.adjusted_equity - tol
    )


def _close(
    engine: Engine, d: dict[str, Any], i: int, fraction: float, market: Market
) -> dict[str, Any]:
    """``d`` with ``fraction`` of position ``i`` closed; its value (the equity it
    carries) is credited to its margin asset, so equity is unchanged."""
    before = Portfolio.from_dict(d)
    settle = engine.position_terms(before, market)[i]["margin_asset"]
    out = copy.deepcopy(d)
    p = out["positions"][i]
    key = "contracts" if p["type"] == "inverse" else "qty"
    if fraction >= 1.0:
        del out["positions"][i]
    else:
        p[key] = p[key] * (1.0 - fraction)
    e_before = engine.margin(before, market).equity
    e_after = engine.margin(Portfolio.from_dict(out), market).equity
    value = (e_before - e_after) / market.prices[settle]
    out["balances"][settle] = out["balances"].get(settle, 0.0) + value
    return out


def _repay(
    d: dict[str, Any], loan: str, collateral: str, repaid: float, market: Market
) -> dict[str, Any]:
    out = copy.deepcopy(d)
    prices = market.prices
    out["balances"][loan] += repaid
    out["balances"][collateral] -= repaid * prices[loan] / prices[collateral]
    return out


def liquidation_plan(
    engine: Engine,
    portfolio: Portfolio,
    market: Market,
    *,
    target: str = "MARGIN_CALL",
    force: bool = False,
    rel_tol: float = AMOUNT_TOL,
) -> LiquidationPlan:
    """The deterministic greedy plan of a liquidation engine, until uniMMR is
    at least the threshold of ``target`` (default: out of reduce-only).

    1. Cancel open orders (none are modelled: a portfolio file has none).
    2. Repeatedly close the position whose full close lowers MM the most (ties:
       the first); close only the smallest fraction that reaches the target
       (bisection to ``rel_tol``) when less than all of it does. A position
       whose close would not lower MM is left alone.
    3. Sell collateral at index to repay loans: the (loan, collateral) pair
       that raises uniMMR the most first, partially when that is enough.
    No step raises MM or lowers adjusted equity (so none lowers uniMMR while
    adjusted equity is positive); the plan stops when the target is
    reached or nothing is left to do (``reached`` says which). An account above
    the liquidation threshold gets no actions unless ``force`` (a de-risking
    plan to the target)."""
    params = engine.params
    _check_target(params, target)
    ladder = dict(_ladder(params))
    t = ladder[target]
    if not math.isfinite(t):
        t = 0.0
    prices = market.prices

    def margin(d: dict[str, Any]) -> MarginResult:
        return engine.margin(Portfolio.from_dict(d), market)

    d = portfolio.to_dict()
    index = list(range(len(d["positions"])))  # the original index of each open position
    r0 = margin(d)
    liq_rank = len(ladder) - 1
    needed = status_rank(params, r0.status) >= liq_rank
    actions: list[PlanAction] = []
    sold: dict[str, float] = {}

    def reached(r: MarginResult) -> bool:
        return _uni(r) >= t

    def record(kind: str, desc: str, before: MarginResult, after: MarginResult, **kw: Any) -> None:
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
        """The smallest fraction in (0, 1] whose step reaches the target (1 if none)."""
        if not reached(margin(step(1.0))):
            return 1.0
        lo, hi = 0.0, 1.0
        while hi - lo > rel_tol:
            mid = 0.5 * (lo + hi)
            if mid in (lo, hi):
                break  # adjacent floats: a tolerance of 0 or below ends here
            if reached(margin(step(mid))):
                hi = mid
            else:
                lo = mid
        return hi

    # 2. close positions, largest MM contribution first
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
        terms = engine.position_terms(Portfolio.from_dict(d), market)[i]
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

    # 3. sell collateral to repay loans
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

        def repay(
            f: float, loan: str = loan, c: str = c, y_max: float = y_max, d: dict[str, Any] = d
        ) -> dict[str, Any]:
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


def apply_plan(
    engine: Engine, portfolio: Portfolio, market: Market, actions: Sequence[PlanAction]
) -> Portfolio:
    """``portfolio`` after ``actions``, replayed from their records alone: a
    close takes ``fraction`` of what is left of position ``position`` (an index
    into the original portfolio) at its mark and credits its value to its
    settle asset; a repayment sells ``-qty`` of ``asset`` for ``repaid`` of
    ``loan_asset``."""
    d = portfolio.to_dict()
    index = list(range(len(d["positions"])))
    for a in actions:
        if a.kind == "close_position":
            if a.position not in index:
                raise InvalidInputError.at(
                    f"actions[{a.step - 1}].position", f"{a.position} is closed"
                )
            i = index.index(a.position)
            d = _close(engine, d, i, a.fraction, market)
            if a.fraction >= 1.0:
                del index[i]
        elif a.kind == "repay_loan":
            if a.asset is None or a.loan_asset is None:
                raise InvalidInputError.at(f"actions[{a.step - 1}]", "a repayment names its assets")
            bal = d["balances"]
            bal[a.loan_asset] = bal.get(a.loan_asset, 0.0) + a.repaid
            bal[a.asset] = bal.get(a.asset, 0.0) + a.qty
        elif a.kind != "cancel_orders":
            raise InvalidInputError.at(f"actions[{a.step - 1}].kind", f"unknown {a.kind!r}")
    return Portfolio.from_dict(d)
