"""Moving the market: index prices, the marks that quote on them and implied
vols, and the account margined on many moved markets at once (``Engine.sweep``
when numpy is installed).

A move of asset ``a`` by return ``r`` multiplies its index
price by ``1 + r``. The mark of a contract moves with its quote: a linear
contract's mark (settle units) by ``(1 + r_b) / (1 + r_s)``, an inverse
contract's (USD) by ``1 + r_b``; contracts without a mark follow ``P_b / P_s``
in the engine anyway. Moving a risk group moves every priced asset of the group
(``RiskParams.group_of``) by the same return. A vol shock ``v`` multiplies every
implied vol of the market by ``1 + v``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from operator import attrgetter, itemgetter
from typing import TYPE_CHECKING, Any, NamedTuple

from pmengine._core import BANKRUPT, Engine, MarginResult, Market, Portfolio, RiskParams
from pmengine.errors import InvalidInputError
from pmengine.risk.profile import group_table

if TYPE_CHECKING:
    from pmengine.risk.scenarios import Scenario


def _numpy() -> Any:
    """numpy, or None without it (the risk tools then copy the market per
    evaluation). Imported on first use: ``import pmengine`` does not load it."""
    try:
        import numpy
    except ImportError:
        return None
    return numpy


def price_range(params: RiskParams, group: str) -> float:
    """The group's grid price range (fraction), as the profile compiled it."""
    gp = group_table(params)
    return gp.get(group, gp["*"])["price_range"]


def scenario_factors(scenario: Scenario, market: Market, params: RiskParams) -> dict[str, float]:
    """Price factor ``1 + r`` per priced asset that the scenario moves."""
    return _factor_rows([scenario], market, params)[0]


Source = tuple[str, bool, str]
"""How a scenario moves one asset: (asset, from the scenario's ``assets`` table?, the key)."""


def _shapes(
    scenarios: Sequence[Scenario], market: Market, params: RiskParams
) -> tuple[list[list[Source]], list[int]]:
    """Which key of each scenario moves each priced asset (the asset itself, its
    group, ``"*"``, or none): the sources of each distinct shape of scenario, and
    the shape of each scenario, the market and profile read once.

    The sources depend only on the keys a scenario names, so they are worked
    out once per such shape: a thousand scenarios of one shape cost one lookup each."""
    gp = group_table(params)
    group_of = {a: params.group_of(a) for a in market.prices}
    groups_of_prices = set(group_of.values())
    moving = {g for g in groups_of_prices if gp.get(g, gp["*"])["price_range"] > 0}

    def sources(groups: Iterable[str], assets: Iterable[str]) -> list[Source]:
        named_groups, named_assets = set(groups), set(assets)
        out = []
        for asset, g in group_of.items():
            if asset in named_assets:
                out.append((asset, True, asset))
            elif asset in named_groups and asset not in groups_of_prices:
                out.append((asset, False, asset))  # an asset named where a group was expected
            elif g in named_groups:
                out.append((asset, False, g))
            elif "*" in named_groups and g in moving:
                out.append((asset, False, "*"))
        return out

    index: dict[tuple[tuple[str, ...], tuple[str, ...]], int] = {}
    shapes: list[list[Source]] = []
    shape_of = []
    for scenario in scenarios:
        groups, assets = scenario.groups, scenario.assets
        key = (tuple(groups), tuple(assets))
        k = index.get(key)
        if k is None:
            k = index[key] = len(shapes)
            shapes.append(sources(groups, assets))
        shape_of.append(k)
    return shapes, shape_of


def _factor_rows(
    scenarios: Sequence[Scenario], market: Market, params: RiskParams
) -> list[dict[str, float]]:
    """:func:`scenario_factors` of each scenario, the market and profile read once."""
    shapes, shape_of = _shapes(scenarios, market, params)
    return [
        {a: 1.0 + (s.assets[k] if own else s.groups[k]) for a, own, k in shapes[j]}
        for s, j in zip(scenarios, shape_of, strict=True)
    ]


def _scenario_moves(
    scenarios: Sequence[Scenario], market: Market, params: RiskParams
) -> tuple[list[str], Any, Any]:
    """The scenarios as :meth:`Engine.sweep` takes them: the assets moved, the
    returns (scenarios x assets, numpy) and the vol shifts (one per scenario),
    built column by column from each shape's keys.

    A return is ``(1 + r) - 1``, as the factor rows give it (``f − 1`` of the
    factor ``f = 1 + r``), so the sweep's prices are those of the rows bit for
    bit; an asset a scenario does not move has the return 0."""
    np = _numpy()
    shapes, shape_of = _shapes(scenarios, market, params)
    assets = list(dict.fromkeys(a for src in shapes for a, _, _ in src))
    column = {a: j for j, a in enumerate(assets)}
    n = len(scenarios)
    moves = np.zeros((n, len(assets)))
    shape_array = np.fromiter(shape_of, np.intp, n) if len(shapes) > 1 else None
    for j, src in enumerate(shapes):
        rows: Any = slice(None)  # every row: one shape (the common case)
        members = scenarios
        if shape_array is not None:
            rows = np.flatnonzero(shape_array == j)
            members = [scenarios[i] for i in rows.tolist()]
        values: dict[tuple[bool, str], Any] = {}
        for a, own, k in src:
            v = values.get((own, k))
            if v is None:
                tables = map(attrgetter("assets" if own else "groups"), members)
                v = np.fromiter(map(itemgetter(k), tables), float, len(members))
                v = values[(own, k)] = (1.0 + v) - 1.0
            moves[rows, column[a]] = v
    vols = np.fromiter(map(attrgetter("vol_shock"), scenarios), float, n)
    return assets, moves, (1.0 + vols) - 1.0


def moved_market(
    market: Market, portfolio: Portfolio, factors: Mapping[str, float], vol_factor: float = 1.0
) -> Market:
    """A copy of ``market`` with index prices times ``factors`` (per asset), the
    marks of the portfolio's contracts moved with them, every vol times ``vol_factor``
    (``Market.moved``: the core owns how a mark follows its prices)."""
    return market.moved(portfolio, factors, vol_factor)


def apply_scenario(
    scenario: Scenario, portfolio: Portfolio, market: Market, params: RiskParams
) -> Market:
    """The market after ``scenario``."""
    return moved_market(
        market, portfolio, scenario_factors(scenario, market, params), 1.0 + scenario.vol_shock
    )


def price_groups(engine: Engine, portfolio: Portfolio, market: Market) -> list[str]:
    """The risk groups the account touches whose price moves (``price_range > 0``
    in the profile), in the order it first touches them."""
    params = engine.params
    return [g for g in engine.risk_groups(portfolio, market) if price_range(params, g) > 0]


class MovedMargin(NamedTuple):
    """The account's figures on one moved market (USD; ``status`` by name)."""

    equity: float
    adjusted_equity: float
    maintenance_margin: float
    initial_margin: float
    uni_mmr: float
    status: str


def margins_on_moved_markets(
    engine: Engine,
    portfolio: Portfolio,
    market: Market,
    factors: Sequence[Mapping[str, float]],
    vol_factors: Sequence[float] | None = None,
    *,
    sweep: bool | None = None,
) -> list[MovedMargin]:
    """The account on ``market`` moved by each entry of ``factors`` (price factor
    ``1 + r`` per asset, as :func:`moved_market` takes them) and of
    ``vol_factors``: row ``i`` is ``engine.margin(portfolio, moved_market(market,
    portfolio, factors[i], vol_factors[i]))``.

    With numpy installed (``sweep`` None or True) the rows are one
    :meth:`Engine.sweep` call: no market copy and no dict round trip per row. The
    sweep takes the return ``f − 1`` and prices ``P·(1 + (f − 1))``, which is
    ``P·f`` exactly for any factor from 0.5 up (below, within an ulp of it)."""
    np = _numpy()
    if sweep is None:
        sweep = np is not None
    if not factors:
        return []
    if not sweep:
        out = []
        for i, f in enumerate(factors):
            vf = 1.0 if vol_factors is None else vol_factors[i]
            r = engine.margin(portfolio, moved_market(market, portfolio, f, vf))
            out.append(
                MovedMargin(
                    r.equity,
                    r.adjusted_equity,
                    r.maintenance_margin,
                    r.initial_margin,
                    r.uni_mmr,
                    r.status,
                )
            )
        return out
    if np is None:
        raise InvalidInputError.at("sweep", "needs numpy (pip install 'pmengine[numpy]')")
    first = list(factors[0])
    if all(list(f) == first for f in factors):
        # Every row moves the same assets in the same order (as `_factor_rows` gives
        # them): the matrix is the rows' values, minus 1 elementwise.
        assets = first
        moves = np.array([list(f.values()) for f in factors], dtype=float) - 1.0
    else:
        assets = sorted({a for f in factors for a in f})
        # An asset a row does not move has the return 1.0 - 1.0 = 0.
        moves = np.array([[f.get(a, 1.0) - 1.0 for a in assets] for f in factors], dtype=float)
    moves = moves.reshape(len(factors), len(assets))
    vol_shifts = None if vol_factors is None else np.asarray(vol_factors, dtype=float) - 1.0
    swept = engine.sweep(portfolio, market, moves, assets, vol_shifts=vol_shifts, threads=1)
    names = swept["status_names"]
    columns = (
        swept["equity"].tolist(),
        swept["adjusted_equity"].tolist(),
        swept["maintenance_margin"].tolist(),
        swept["initial_margin"].tolist(),
        swept["uni_mmr"].tolist(),
        [names[s] for s in swept["status"].tolist()],
    )
    return [MovedMargin(*row) for row in zip(*columns, strict=True)]


def _uni(result: MarginResult | MovedMargin) -> float:
    # BANKRUPT is below every threshold whatever the ratio says.
    return -math.inf if result.status == BANKRUPT else result.uni_mmr
