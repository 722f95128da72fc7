"""Stress tests: the account's equity, margin, uniMMR and status (USD) after
each scenario."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from pmengine._core import Engine, Market, Portfolio
from pmengine.risk._json import _json_dict
from pmengine.risk.moves import _factor_rows, margins_on_moved_markets
from pmengine.risk.scenarios import Scenario, builtin_scenarios


@dataclass(frozen=True)
class StressResult:
    """The account after one scenario (USD; ``pnl`` = equity change)."""

    name: str
    description: str
    equity: float
    adjusted_equity: float
    maintenance_margin: float
    initial_margin: float
    uni_mmr: float
    status: str
    pnl: float

    def to_dict(self) -> dict[str, Any]:
        return _json_dict(asdict(self))


def stress_test(
    engine: Engine,
    portfolio: Portfolio,
    market: Market,
    scenarios: Sequence[Scenario] | None = None,
    *,
    sweep: bool | None = None,
) -> list[StressResult]:
    """The account after each scenario (default: the built-in ones), in order:
    all of them in one :func:`margins_on_moved_markets` (``sweep``: see there)."""
    params = engine.params
    e0 = engine.margin(portfolio, market).equity
    chosen = builtin_scenarios() if scenarios is None else list(scenarios)
    factors = _factor_rows(chosen, market, params)
    vol_factors = [1.0 + s.vol_shock for s in chosen]
    moved = margins_on_moved_markets(engine, portfolio, market, factors, vol_factors, sweep=sweep)
    out = []
    for s, r in zip(chosen, moved, strict=True):
        out.append(
            StressResult(
                s.name,
                s.description,
                r.equity,
                r.adjusted_equity,
                r.maintenance_margin,
                r.initial_margin,
                r.uni_mmr,
                r.status,
                r.equity - e0,
            )
        )
    return out
