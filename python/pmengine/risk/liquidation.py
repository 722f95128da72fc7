"""Liquidation prices: the index price (USD) of one risk group's asset at which
uniMMR crosses each status threshold, going down and going up, the other groups
fixed (or moving with it, ``co_move``)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from pmengine._core import Engine, Market, Portfolio, RiskParams
from pmengine.errors import InvalidInputError
from pmengine.risk._json import _json_dict
from pmengine.risk.ladder import _ladder
from pmengine.risk.moves import (
    _uni,
    margins_on_moved_markets,
    price_groups,
)
from pmengine.risk.profile import group_table, systemic_table

#: Liquidation prices are searched between these multiples of the current price.
MIN_FACTOR = 1e-3
MAX_FACTOR = 10.0
#: Relative price tolerance of the liquidation-price root finder.
PRICE_TOL = 1e-10


@functools.cache
def _search_grid(direction: str) -> tuple[float, ...]:
    """Price factors scanned from the current price outwards (excluding 1); built
    once per process."""
    if direction == "down":
        pts = [1.0 - 0.005 * k for k in range(1, 200)]  # 0.995 .. 0.005
        return (*pts, 0.0025, MIN_FACTOR)
    pts = [1.0 + 0.005 * k for k in range(1, 401)]  # 1.005 .. 3.0
    f = 3.0
    while f < MAX_FACTOR:
        f = min(f * 1.02, MAX_FACTOR)
        pts.append(f)
    return tuple(pts)


@dataclass(frozen=True)
class LiquidationPrice:
    """Where one group's price takes uniMMR through one status threshold.

    ``status`` is the status on the far side of the crossing: the one entered
    when uniMMR falls to or below ``threshold`` (from above it now), or rises
    above it (from at or below it now); ``price`` (USD, of the group's ``asset``) is the first price
    in ``direction`` from the current one at which uniMMR crosses the threshold
    (within ``PRICE_TOL`` relative), or None if it does not within
    ``[MIN_FACTOR, MAX_FACTOR]`` times the current price. ``move`` = price /
    current − 1; ``uni_mmr`` is the ratio at ``price``."""

    group: str
    asset: str
    status: str
    threshold: float
    direction: str
    current_price: float
    price: float | None
    move: float | None
    uni_mmr: float | None

    def to_dict(self) -> dict[str, Any]:
        return _json_dict(asdict(self))


def reference_asset(params: RiskParams, market: Market, group: str) -> str:
    """The asset whose price stands for the group: the group's name if priced,
    else its first priced asset by name."""
    prices = market.prices
    if group in prices:
        return group
    members = sorted(a for a in prices if params.group_of(a) == group)
    if not members:
        raise InvalidInputError.at("", f"group {group!r}: no asset of the group has a price")
    return members[0]


def co_movement(params: RiskParams, group: str, down: bool) -> dict[str, float]:
    """Exponents ``β_h`` of the systemic co-movement: when ``group``'s price is
    multiplied by ``f``, group ``h``'s is multiplied by ``f ** β_h``.

    ``β_h = r_h / r_g`` from the first ``[[systemic]]`` entry that moves
    ``group`` in the same direction (``r`` = the override, or ``multiple ×
    price_range``; key ``"*"``: every group the profile does not list); every
    ``β`` is 0 (others fixed) if none does. The power
    law keeps prices positive and matches the systemic proportions for
    small moves."""
    gp = group_table(params)

    def ret(entry: Mapping[str, Any], h: str) -> float:
        overrides: Mapping[str, float] = entry["overrides"]
        if h in overrides:
            return overrides[h]
        pr = gp.get(h, gp["*"])["price_range"]
        return float(entry["multiple"]) * pr if pr > 0 else 0.0

    for entry in systemic_table(params):
        rg = ret(entry, group)
        if (rg < 0) if down else (rg > 0):
            return {h: ret(entry, h) / rg for h in gp if h != group}
    return {}


def liquidation_prices(
    engine: Engine,
    portfolio: Portfolio,
    market: Market,
    *,
    groups: Iterable[str] | None = None,
    co_move: bool = False,
    tol: float = PRICE_TOL,
    sweep: bool | None = None,
) -> list[LiquidationPrice]:
    """Liquidation prices per risk group, each status threshold, both directions.

    Only one group's price moves (every asset of the group, and the marks on
    it); the others stay fixed unless ``co_move``, in which case they follow
    the systemic scenario's proportions (:func:`co_movement`). uniMMR is not
    monotone in the price in general (options), so the price is scanned outwards
    from the current one (steps of 0.5 % up to 3×, then 2 % up to ``MAX_FACTOR``;
    down to ``MIN_FACTOR``) to bracket the first crossing, which is then
    bisected to ``tol`` relative. Groups: those the account touches with
    ``price_range > 0`` (stablecoins move in the depeg stress instead), under
    either margin model.

    By default (``sweep`` None) every group and direction is one path of one
    :meth:`Engine.crossings` call: the scan stops at the last threshold's first
    crossing and the bisections run on the book resolved once. With ``sweep``
    True or False the same search runs here on :func:`margins_on_moved_markets`
    (``sweep``: see there): the whole scan in one sweep, then one per bisection
    step for all the thresholds of a direction; the results are the same."""
    params = engine.params
    base = engine.margin(portfolio, market)
    names = price_groups(engine, portfolio, market) if groups is None else list(groups)
    ladder = _ladder(params)[:-1]
    prices = market.prices
    group_of = {a: params.group_of(a) for a in prices}
    out: list[LiquidationPrice] = []
    if sweep is None:
        u0 = _uni(base)
        grids = {d: _search_grid(d) for d in ("down", "up")}
        keys: list[tuple[str, str, str]] = []
        paths: list[tuple[list[tuple[str, float]], Sequence[float]]] = []
        for g in names:
            asset = reference_asset(params, market, g)
            for direction in ("down", "up"):
                beta = co_movement(params, g, direction == "down") if co_move else {}
                exponents = []
                for a, h in group_of.items():
                    if h == g:
                        exponents.append((a, 1.0))
                    elif (e := beta.get(h, beta.get("*", 0.0))) != 0.0:
                        exponents.append((a, e))
                keys.append((g, asset, direction))
                paths.append((exponents, grids[direction]))
        thresholds = [t for _, t in ladder]
        answers = engine.crossings(portfolio, market, paths, thresholds, tol=tol)
        for (g, asset, direction), row in zip(keys, answers, strict=True):
            for i, (_, t) in enumerate(ladder):
                # the status on the far side of the crossing
                status = _ladder(params)[i + 1 if u0 > t else i][0]
                crossing = row[i]
                price, move, uni = (
                    (None, None, None)
                    if crossing is None
                    else (prices[asset] * crossing[0], crossing[0] - 1.0, crossing[1])
                )
                out.append(
                    LiquidationPrice(
                        g, asset, status, t, direction, prices[asset], price, move, uni
                    )
                )
        return out
    for g in names:
        asset = reference_asset(params, market, g)
        for direction in ("down", "up"):
            beta = co_movement(params, g, direction == "down") if co_move else {}

            def moved(f: float, g: str = g, beta: dict[str, float] = beta) -> dict[str, float]:
                factors = {}
                for a, h in group_of.items():
                    if h == g:
                        factors[a] = f
                    elif (b := beta.get(h, beta.get("*", 0.0))) != 0.0:
                        factors[a] = f**b
                return factors

            def unis(
                fs: Sequence[float], moved: Callable[[float], dict[str, float]] = moved
            ) -> list[float]:
                rows = [moved(f) for f in fs]
                return [
                    _uni(r)
                    for r in margins_on_moved_markets(engine, portfolio, market, rows, sweep=sweep)
                ]

            u0 = _uni(base)
            grid = _search_grid(direction)
            values = unis(grid)
            # One bracket [lo, hi] per threshold; the thresholds' bisections step
            # together, one sweep a step (each follows its own sequence: the same
            # prices as one after the other).
            found: list[tuple[str, float, bool, list[float]] | None] = []
            for i, (_, t) in enumerate(ladder):
                side = u0 > t
                # the status on the far side of the crossing
                status = _ladder(params)[i + 1 if side else i][0]
                lo, hi = 1.0, None
                for f, u in zip(grid, values, strict=True):
                    if (u > t) != side:
                        hi = f
                        break
                    lo = f
                found.append(None if hi is None else (status, t, side, [lo, hi]))
            open_ = [b for b in found if b is not None]
            while True:
                stepping = [
                    b
                    for b in open_
                    if abs(b[3][1] - b[3][0]) > tol * max(b[3])
                    and 0.5 * (b[3][0] + b[3][1]) not in b[3]  # not yet adjacent floats
                ]
                if not stepping:
                    break
                mids = [0.5 * (b[3][0] + b[3][1]) for b in stepping]
                for b, mid, u in zip(stepping, mids, unis(mids), strict=True):
                    _, t, side, bracket = b
                    bracket[0 if (u > t) == side else 1] = mid
            at_hi = iter(unis([b[3][1] for b in open_]))
            for i, (_, t) in enumerate(ladder):
                entry = found[i]
                if entry is None:
                    side = u0 > t
                    status = _ladder(params)[i + 1 if side else i][0]
                    out.append(
                        LiquidationPrice(
                            g, asset, status, t, direction, prices[asset], None, None, None
                        )
                    )
                    continue
                status, _, _, (_, hi) = entry
                out.append(
                    LiquidationPrice(
                        g,
                        asset,
                        status,
                        t,
                        direction,
                        prices[asset],
                        prices[asset] * hi,
                        hi - 1.0,
                        next(at_hi),
                    )
                )
    return out
