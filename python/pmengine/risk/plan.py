"""The liquidation plan: the ordered actions (close positions, sell collateral
to repay loans) that bring uniMMR back to a target, as a liquidation engine
would take them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from pmengine._core import Engine, Market, Portfolio, RiskParams
from pmengine.risk._json import _json_dict
from pmengine.risk.buffer import AMOUNT_TOL
from pmengine.risk.ladder import _check_target, status_rank

if TYPE_CHECKING:
    from pmengine._core import _PlanStepDict


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


def _action(
    params: RiskParams, positions: list[dict[str, Any]], number: int, step: _PlanStepDict
) -> PlanAction:
    """A core step as a :class:`PlanAction`, with its description."""
    kind, frac, qty, usd = step["kind"], step["fraction"], step["qty"], step["usd"]
    fields: dict[str, Any] = {
        "group": None,
        "asset": None,
        "symbol": None,
        "position": None,
        "fraction": frac,
        "qty": qty,
        "usd": usd,
        "loan_asset": None,
        "repaid": step["repaid"],
    }
    if kind == "close_position":
        i = step["position"]
        assert i is not None
        p = positions[i]
        b = p["underlying"]
        side = "sell" if qty > 0 else "buy back"
        unit = "contracts" if p["type"] == "inverse" else b
        desc = (
            f"{side} {frac * 100:.4g} % of {p['symbol']} ({abs(qty):,.6g} {unit}, {usd:,.2f} USD)"
        )
        fields.update(group=params.group_of(b), asset=b, symbol=p["symbol"], position=i)
    elif kind == "repay_loan":
        c, loan = step["asset"], step["loan_asset"]
        assert c is not None
        desc = f"sell {-qty:,.6g} {c} ({usd:,.2f} USD) to repay {step['repaid']:,.6g} {loan}"
        fields.update(group=params.group_of(c), asset=c, loan_asset=loan)
    else:
        desc = "cancel every open order (none are recorded in the portfolio)"
    return PlanAction(
        number,
        kind,
        desc,
        uni_mmr_before=step["uni_mmr_before"],
        uni_mmr_after=step["uni_mmr_after"],
        mm_before=step["mm_before"],
        mm_after=step["mm_after"],
        **fields,
    )


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
    plan to the target).

    The search runs in the core (:meth:`Engine.liquidation_plan`), each candidate
    step applied to the account held there and margined as :meth:`Engine.margin`
    margins it."""
    params = engine.params
    _check_target(params, target)
    plan = engine.liquidation_plan(
        portfolio, market, status_rank(params, target), force=force, rel_tol=rel_tol
    )
    steps = plan["steps"]
    positions = portfolio.positions if steps else []
    actions = [_action(params, positions, k, s) for k, s in enumerate(steps, 1)]
    sold: dict[str, float] = {}
    for a in actions:
        if a.asset is not None:
            sold[a.asset] = sold.get(a.asset, 0.0) + a.usd
    return LiquidationPlan(
        plan["status"],
        plan["uni_mmr"],
        target,
        plan["target_ratio"],
        plan["needed"],
        plan["reached"],
        actions,
        sold,
        plan["portfolio"].to_dict(),
    )


def apply_plan(
    engine: Engine, portfolio: Portfolio, market: Market, actions: Sequence[PlanAction]
) -> Portfolio:
    """``portfolio`` after ``actions``, replayed from their records alone: a
    close takes ``fraction`` of what is left of position ``position`` (an index
    into the original portfolio) at its mark and credits its value to its
    settle asset; a repayment sells ``-qty`` of ``asset`` for ``repaid`` of
    ``loan_asset`` (:meth:`Engine.apply_plan`; errors name ``actions[i]``)."""
    return engine.apply_plan(portfolio, market, [asdict(a) for a in actions])
