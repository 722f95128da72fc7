"""Stress tests: the account's equity, margin, uniMMR and status (USD) after
each scenario."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from pmengine._core import Engine, Market, Portfolio
from pmengine.risk._json import _json_dict
from pmengine.risk.moves import (
    _factor_rows,
    _numpy,
    _scenario_moves,
    margins_on_moved_markets,
)
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

    @classmethod
    def _rows(cls, columns: Sequence[Iterable[Any]]) -> list[StressResult]:
        """One result per row of ``columns`` (one column per field, in order). A
        thousand scenarios make a thousand results: each is filled in directly
        rather than through the frozen ``__init__``, whose per-field
        ``object.__setattr__`` would cost more than the sweep that computed them."""
        new = object.__new__
        out = []
        for name, description, e, ae, mm, im, uni, status, pnl in zip(*columns, strict=True):
            r = new(cls)
            r.__dict__.update(
                name=name,
                description=description,
                equity=e,
                adjusted_equity=ae,
                maintenance_margin=mm,
                initial_margin=im,
                uni_mmr=uni,
                status=status,
                pnl=pnl,
            )
            out.append(r)
        return out


def stress_test(
    engine: Engine,
    portfolio: Portfolio,
    market: Market,
    scenarios: Sequence[Scenario] | None = None,
    *,
    sweep: bool | None = None,
) -> list[StressResult]:
    """The account after each scenario (default: the built-in ones), in order:
    all of them in one :meth:`Engine.sweep` when numpy is installed (``sweep``
    None or True), its columns read once; else (``sweep`` False) one margin call
    per scenario on a moved copy of the market (:func:`margins_on_moved_markets`).
    The figures are the same either way."""
    params = engine.params
    e0 = engine.margin(portfolio, market).equity
    chosen = builtin_scenarios() if scenarios is None else list(scenarios)
    names = [s.name for s in chosen]
    descriptions = [s.description for s in chosen]
    np = _numpy()
    if sweep is None:
        sweep = np is not None
    if not sweep or not chosen or np is None:
        factors = _factor_rows(chosen, market, params)
        vol_factors = [1.0 + s.vol_shock for s in chosen]
        moved = margins_on_moved_markets(
            engine, portfolio, market, factors, vol_factors, sweep=sweep
        )
        columns = [list(c) for c in zip(*moved, strict=True)] or [[]] * 6
        pnl = [e - e0 for e in columns[0]]
        return StressResult._rows([names, descriptions, *columns, pnl])
    assets, moves, vol_shifts = _scenario_moves(chosen, market, params)
    swept = engine.sweep(portfolio, market, moves, assets, vol_shifts=vol_shifts, threads=1)
    status = np.asarray(swept["status_names"], dtype=object)[swept["status"]]
    figures = [
        swept[k]
        for k in ("equity", "adjusted_equity", "maintenance_margin", "initial_margin", "uni_mmr")
    ]
    return StressResult._rows(
        [
            names,
            descriptions,
            *(f.tolist() for f in figures),
            status.tolist(),
            (figures[0] - e0).tolist(),
        ]
    )
