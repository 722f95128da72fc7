"""The stablecoin buffer: the smallest deposit that keeps the account at a
target status through a stress, and the largest withdrawal that keeps it there
now (coin units of the asset; bisection to a relative ``AMOUNT_TOL``)."""

from __future__ import annotations

from collections.abc import Callable

from pmengine._core import Engine, Market, Portfolio
from pmengine.errors import InvalidInputError
from pmengine.risk.ladder import _check_target, status_rank
from pmengine.risk.moves import apply_scenario
from pmengine.risk.scenarios import Scenario

#: Relative tolerance of the buffer and liquidation-plan bisections.
AMOUNT_TOL = 1e-9


def _with_balance(portfolio: Portfolio, asset: str, delta: float) -> Portfolio:
    d = portfolio.to_dict()
    d["balances"][asset] = d["balances"].get(asset, 0.0) + delta
    return Portfolio.from_dict(d)


def _status_ok(
    engine: Engine, market: Market, target: str
) -> Callable[[Portfolio, Scenario | None], bool]:
    params = engine.params
    rank = status_rank(params, target)

    def ok(p: Portfolio, scenario: Scenario | None) -> bool:
        m = market if scenario is None else apply_scenario(scenario, p, market, params)
        return status_rank(params, engine.margin(p, m).status) <= rank

    return ok


def _asset_price(market: Market, asset: str) -> float:
    price = market.prices.get(asset)
    if price is None:
        raise InvalidInputError.at(
            "asset", f"{asset!r} has no price in the market", "missing_price"
        )
    return price


def deposit_needed(
    engine: Engine,
    portfolio: Portfolio,
    market: Market,
    *,
    asset: str = "USDT",
    target: str = "NORMAL",
    scenario: Scenario | None = None,
    rel_tol: float = AMOUNT_TOL,
) -> float | None:
    """The smallest deposit of ``asset`` (coin units) that keeps the account at
    ``target`` or a healthier status after ``scenario`` (None: now). 0 if none
    is needed; None if no deposit up to 1e15 USD does it. Bisection to
    ``rel_tol`` relative, rounded up: the amount returned is sufficient."""
    _check_target(engine.params, target)
    price = _asset_price(market, asset)
    ok = _status_ok(engine, market, target)
    if ok(portfolio, scenario):
        return 0.0
    base = engine.margin(portfolio, market)
    hi = max(1.0, abs(base.equity), base.maintenance_margin) / price
    while not ok(_with_balance(portfolio, asset, hi), scenario):
        hi *= 2.0
        if hi * price > 1e15:
            return None
    lo = 0.0
    while hi - lo > rel_tol * hi:
        mid = 0.5 * (lo + hi)
        if ok(_with_balance(portfolio, asset, mid), scenario):
            hi = mid
        else:
            lo = mid
    return hi


def max_withdrawal(
    engine: Engine,
    portfolio: Portfolio,
    market: Market,
    *,
    asset: str = "USDT",
    target: str = "NORMAL",
    scenario: Scenario | None = None,
    rel_tol: float = AMOUNT_TOL,
) -> float:
    """The largest withdrawal of ``asset`` (coin units, at most its positive
    wallet balance: a withdrawal never opens a loan) that keeps the account at
    ``target`` or a healthier status, now or after ``scenario``. Bisection to
    ``rel_tol`` relative, rounded down: the amount returned is safe."""
    _check_target(engine.params, target)
    _asset_price(market, asset)
    ok = _status_ok(engine, market, target)
    balance = dict(portfolio.balances).get(asset, 0.0)
    if balance <= 0 or not ok(portfolio, scenario):
        return 0.0
    if ok(_with_balance(portfolio, asset, -balance), scenario):
        return balance
    lo, hi = 0.0, balance
    while hi - lo > rel_tol * balance:
        mid = 0.5 * (lo + hi)
        if ok(_with_balance(portfolio, asset, -mid), scenario):
            lo = mid
        else:
            hi = mid
    return lo
