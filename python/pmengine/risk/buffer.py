"""The stablecoin buffer: the smallest deposit that keeps the account at a
target status through a stress, and the largest withdrawal that keeps it there
now (coin units of the asset; bisection to a relative ``AMOUNT_TOL``)."""

from __future__ import annotations

from pmengine._core import Engine, Market, Portfolio
from pmengine.errors import InvalidInputError
from pmengine.risk.ladder import _check_target, status_rank
from pmengine.risk.moves import apply_scenario
from pmengine.risk.scenarios import Scenario

#: Relative tolerance of the buffer and liquidation-plan bisections.
AMOUNT_TOL = 1e-9


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
    _asset_price(market, asset)
    params = engine.params
    # The search runs in the core on the account resolved once (Engine.deposit_needed).
    stressed = None if scenario is None else apply_scenario(scenario, portfolio, market, params)
    return engine.deposit_needed(
        portfolio,
        market,
        asset,
        status_rank(params, target),
        stressed=stressed,
        rel_tol=rel_tol,
    )


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
    params = engine.params
    # The search runs in the core on the account resolved once (Engine.max_withdrawal).
    m = market if scenario is None else apply_scenario(scenario, portfolio, market, params)
    return engine.max_withdrawal(portfolio, m, asset, status_rank(params, target), rel_tol=rel_tol)
