"""Risk tools for traders, built on :meth:`Engine.margin`.

- :func:`liquidation_prices`: the price of one risk group at which uniMMR
  reaches each status threshold, going down and going up.
- :func:`stress_test`: equity, MM, uniMMR and status after named moves
  (built-in ones in ``risk.toml``, or the user's, from TOML or ``--move``).
- :func:`deposit_needed` / :func:`max_withdrawal`: the stablecoin buffer.
- :func:`exposure_report`: leverage, net exposure per group, BTC-correlated
  share, margin usage and plain-language warnings.
- :func:`liquidation_plan`: the ordered actions a liquidation engine would take.

Units: money in USD, balances in coin units, moves and vol shocks as fractions
(0.10 = 10 %), uniMMR as a ratio (1.5 = 150 %).

**Moving a price.** A move of asset ``a`` by return ``r`` multiplies its index
price by ``1 + r``. The mark of a contract moves with its quote: a linear
contract's mark (settle units) by ``(1 + r_b) / (1 + r_s)``, an inverse
contract's (USD) by ``1 + r_b``; contracts without a mark follow ``P_b / P_s``
in the engine anyway. Moving a risk group moves every priced asset of the group
(``RiskParams.group_of``) by the same return. A vol shock ``v`` multiplies every
implied vol of the market by ``1 + v``.
"""

from __future__ import annotations

import copy
import functools
import math
import tomllib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from importlib import resources
from typing import Any, NamedTuple

from pmengine._core import Engine, MarginResult, Market, Portfolio, RiskParams
from pmengine.errors import InvalidInputError


def _numpy() -> Any:
    """numpy, or None without it (the risk tools then copy the market per
    evaluation). Imported on first use: ``import pmengine`` does not load it."""
    try:
        import numpy
    except ImportError:
        return None
    return numpy


#: Liquidation prices are searched between these multiples of the current price.
MIN_FACTOR = 1e-3
MAX_FACTOR = 10.0
#: Relative price tolerance of the liquidation-price root finder.
PRICE_TOL = 1e-10
#: Relative tolerance of the buffer and liquidation-plan bisections.
AMOUNT_TOL = 1e-9


def _search_grid(direction: str) -> list[float]:
    """Price factors scanned from the current price outwards (excluding 1)."""
    if direction == "down":
        pts = [1.0 - 0.005 * k for k in range(1, 200)]  # 0.995 .. 0.005
        return [*pts, 0.0025, MIN_FACTOR]
    pts = [1.0 + 0.005 * k for k in range(1, 401)]  # 1.005 .. 3.0
    f = 3.0
    while f < MAX_FACTOR:
        f = min(f * 1.02, MAX_FACTOR)
        pts.append(f)
    return pts


# -- scenarios ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    """A market move: returns per risk group (``"*"``: every group with
    ``price_range > 0`` not named) and per asset (wins over its group), and a
    relative shock of every implied vol."""

    name: str
    description: str = ""
    groups: Mapping[str, float] = field(default_factory=dict)
    assets: Mapping[str, float] = field(default_factory=dict)
    vol_shock: float = 0.0

    @staticmethod
    def from_dict(d: Mapping[str, Any], at: str = "scenario") -> Scenario:
        """A scenario from its TOML table; bad fields raise InvalidInputError naming them."""
        if not isinstance(d, Mapping):
            raise InvalidInputError(f"{at}: must be a table, got {d!r}")
        unknown = sorted(set(d) - {"name", "description", "groups", "assets", "vol_shock"})
        if unknown:
            raise InvalidInputError(f"{at}.{unknown[0]}: unknown key")
        name = d.get("name")
        if not isinstance(name, str) or not name:
            raise InvalidInputError(f"{at}.name: must be a non-empty string, got {name!r}")
        description = d.get("description", "")
        if not isinstance(description, str):
            raise InvalidInputError(f"{at}.description: must be a string, got {description!r}")

        def moves(key: str) -> dict[str, float]:
            table = d.get(key, {})
            if not isinstance(table, Mapping):
                raise InvalidInputError(f"{at}.{key}: must be a table, got {table!r}")
            return {str(k): _move(v, f"{at}.{key}.{k}") for k, v in table.items()}

        return Scenario(
            name=name,
            description=description,
            groups=moves("groups"),
            assets=moves("assets"),
            vol_shock=_move(d.get("vol_shock", 0.0), f"{at}.vol_shock"),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "groups": dict(self.groups),
            "assets": dict(self.assets),
            "vol_shock": self.vol_shock,
        }


def _json(obj: Any) -> Any:
    """``obj`` with every infinite or NaN float replaced by None (JSON has no
    infinity: an unbounded uniMMR or leverage is written ``null``, as in the
    margin result)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _json(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_json(v) for v in obj]
    return obj


def _json_dict(d: dict[str, Any]) -> dict[str, Any]:
    return {k: _json(v) for k, v in d.items()}


def _move(x: Any, at: str) -> float:
    if isinstance(x, bool) or not isinstance(x, int | float) or not math.isfinite(x):
        raise InvalidInputError(f"{at}: must be a finite number, got {x!r}")
    if x <= -1:
        raise InvalidInputError(f"{at}: must be > -1 (a price or vol cannot reach 0), got {x!r}")
    return float(x)


def load_scenarios(text: str | dict[str, Any], source: str = "stress") -> list[Scenario]:
    """Scenarios from TOML text, or the document already parsed (the command line's
    reader, ``pmengine.files``): a ``[[stress]]`` array of tables (see ``risk.toml``)."""
    if isinstance(text, dict):
        doc = text
    else:
        try:
            doc = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            raise InvalidInputError(f"{source}: not valid TOML: {e}") from None
    entries = doc.get("stress", [])
    if not isinstance(entries, list):
        raise InvalidInputError(f"{source}: stress must be an array of tables ([[stress]])")
    out = [Scenario.from_dict(e, f"{source}: stress[{i}]") for i, e in enumerate(entries)]
    names = [s.name for s in out]
    for i, n in enumerate(names):
        if n in names[:i]:
            raise InvalidInputError(f"{source}: stress[{i}].name: duplicate name {n!r}")
    return out


def parse_move(spec: str) -> Scenario:
    """A scenario from ``NAME=RETURN[,NAME=RETURN...]`` (``BTC=-0.2,vol=0.5``).

    NAME is a risk group, ``*`` (every crypto group) or ``vol`` (the vol shock);
    an asset that is not a group name is moved alone (WBTC without BTC)."""
    groups: dict[str, float] = {}
    vol = 0.0
    for part in spec.split(","):
        key, sep, value = part.partition("=")
        key = key.strip()
        if not sep or not key:
            raise InvalidInputError(f"--move {spec!r}: expected NAME=RETURN, got {part!r}")
        try:
            x = float(value)
        except ValueError:
            raise InvalidInputError(
                f"--move {spec!r}: {key}: not a number: {value.strip()!r}"
            ) from None
        if key.lower() == "vol":
            vol = _move(x, f"--move {key}")
        else:
            groups[key] = _move(x, f"--move {key}")
    return Scenario(name=f"move {spec}", groups=groups, vol_shock=vol)


def check_scenario(scenario: Scenario, params: RiskParams, market: Market) -> None:
    """Every name a user scenario moves exists: a group is ``"*"``, a group of
    the profile or the group of a priced asset; an asset has a price. A typo
    would otherwise move nothing, silently."""
    prices = market.prices
    groups = {g for g in _profile(params)["groups"] if g != "*"}
    groups |= {params.group_of(a) for a in prices}
    for g in scenario.groups:
        if g != "*" and g not in groups and g not in prices:
            raise InvalidInputError(
                f"scenario {scenario.name!r}: groups.{g}: no such risk group or priced asset"
            )
    for a in scenario.assets:
        if a not in prices:
            raise InvalidInputError(
                f"scenario {scenario.name!r}: assets.{a}: no price in the market"
            )


def builtin_scenarios() -> list[Scenario]:
    """The built-in stress scenarios of ``risk.toml``."""
    return load_scenarios(_defaults(), "risk.toml")


@functools.cache
def _defaults() -> dict[str, Any]:
    """``risk.toml``, parsed once per process (read only: callers build their own objects)."""
    return tomllib.loads((resources.files("pmengine") / "risk.toml").read_text())


def warning_thresholds() -> dict[str, float]:
    """The warning thresholds of ``risk.toml`` (``[warnings]``)."""
    table = _defaults()["warnings"]
    return {str(k): float(v) for k, v in table.items()}


# -- moving the market -------------------------------------------------------------------


@functools.lru_cache(maxsize=8)
def _profile(params: RiskParams) -> dict[str, Any]:
    """``params.to_dict()``, once per profile (a RiskParams is immutable; read only)."""
    return params.to_dict()


@functools.lru_cache(maxsize=8)
def _group_params(params: RiskParams) -> dict[str, dict[str, Any]]:
    """Each group's parameters over the ``"*"`` defaults (read only)."""
    groups: dict[str, dict[str, Any]] = _profile(params)["groups"]
    base = groups["*"]
    return {name: {**base, **g} for name, g in groups.items()}


def price_range(params: RiskParams, group: str) -> float:
    """The group's grid price range (fraction)."""
    gp = _group_params(params)
    return float(gp.get(group, gp["*"])["price_range"])


def scenario_factors(scenario: Scenario, market: Market, params: RiskParams) -> dict[str, float]:
    """Price factor ``1 + r`` per priced asset that the scenario moves."""
    return _factor_rows([scenario], market, params)[0]


def _factor_rows(
    scenarios: Sequence[Scenario], market: Market, params: RiskParams
) -> list[dict[str, float]]:
    """:func:`scenario_factors` of each scenario, the market and profile read once."""
    gp = _group_params(params)
    prices = market.prices
    group_of = {a: params.group_of(a) for a in prices}
    groups_of_prices = set(group_of.values())
    moving = {g for g in groups_of_prices if gp.get(g, gp["*"])["price_range"] > 0}
    rows = []
    for scenario in scenarios:
        out: dict[str, float] = {}
        groups, assets = scenario.groups, scenario.assets
        for asset, g in group_of.items():
            if asset in assets:
                r = assets[asset]
            elif asset in groups and asset not in groups_of_prices:
                r = groups[asset]  # an asset named where a group was expected
            elif g in groups:
                r = groups[g]
            elif "*" in groups and g in moving:
                r = groups["*"]
            else:
                continue
            out[asset] = 1.0 + r
        rows.append(out)
    return rows


def moved_market(
    market: Market, portfolio: Portfolio, factors: Mapping[str, float], vol_factor: float = 1.0
) -> Market:
    """A copy of ``market`` with index prices times ``factors`` (per asset), the
    marks of the portfolio's contracts moved with them, every vol times ``vol_factor``."""
    m = copy.copy(market)
    prices = market.prices
    for asset, f in factors.items():
        if f != 1.0:
            m.set_price(asset, prices[asset] * f)
    marks = market.marks
    done: set[str] = set()
    for p in portfolio.positions:
        sym = p["symbol"]
        if sym not in marks or sym in done or p["type"] == "option":
            continue
        done.add(sym)
        fb = factors.get(p["underlying"], 1.0)
        fs = fb if p["type"] == "inverse" else factors.get(p.get("settle", "USDT"), 1.0)
        f = fb if p["type"] == "inverse" else fb / fs
        if f != 1.0:
            m.set_mark(sym, marks[sym] * f)
    if vol_factor != 1.0:
        for key, vol in market.vols.items():
            m.set_vol(key, vol * vol_factor)
    return m


def apply_scenario(
    scenario: Scenario, portfolio: Portfolio, market: Market, params: RiskParams
) -> Market:
    """The market after ``scenario``."""
    return moved_market(
        market, portfolio, scenario_factors(scenario, market, params), 1.0 + scenario.vol_shock
    )


# -- status ladder -----------------------------------------------------------------------


def _ladder(params: RiskParams) -> list[tuple[str, float]]:
    return list(params.status_levels)


def status_rank(params: RiskParams, status: str) -> int:
    """0 for the healthiest status; BANKRUPT (not on the ladder) is below the last."""
    names = [n for n, _ in _ladder(params)]
    return names.index(status) if status in names else len(names)


def _check_target(params: RiskParams, target: str, at: str = "target") -> None:
    names = [n for n, _ in _ladder(params)]
    if target not in names:
        raise InvalidInputError(f"{at}: unknown status {target!r}, expected one of {names}")


# -- liquidation prices ------------------------------------------------------------------


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
        raise InvalidInputError(f"group {group!r}: no asset of the group has a price")
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
    gp = _group_params(params)

    def ret(entry: Mapping[str, Any], h: str) -> float:
        overrides = entry.get("overrides", {})
        if h in overrides:
            return float(overrides[h])
        pr = float(gp.get(h, gp["*"])["price_range"])
        return float(entry["multiple"]) * pr if pr > 0 else 0.0

    for entry in _profile(params)["systemic"]:
        rg = ret(entry, group)
        if (rg < 0) if down else (rg > 0):
            return {h: ret(entry, h) / rg for h in gp if h != group}
    return {}


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
        raise InvalidInputError("sweep: needs numpy (pip install 'pmengine[numpy]')")
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
    return -math.inf if result.status == "BANKRUPT" else result.uni_mmr


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
        paths: list[tuple[list[tuple[str, float]], list[float]]] = []
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
                stepping = [b for b in open_ if abs(b[3][1] - b[3][0]) > tol * max(b[3])]
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


# -- stress tests ------------------------------------------------------------------------


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


# -- stablecoin buffer -------------------------------------------------------------------


def _asset_price(market: Market, asset: str) -> float:
    price = market.prices.get(asset)
    if price is None:
        raise InvalidInputError(f"asset: {asset!r} has no price in the market")
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


# -- leverage and concentration ----------------------------------------------------------


@dataclass(frozen=True)
class RiskWarning:
    """A figure above its threshold, with a sentence for people."""

    metric: str
    value: float
    threshold: float
    message: str


@dataclass(frozen=True)
class Exposure:
    """Leverage and concentration figures (USD, ratios as fractions).

    ``gross_notional``: Σ |notional| of the contracts (linear ``|q|·M·P_s``,
    inverse ``|n|·C``, options ``|q|·P_b``) and |value| of the balances in
    groups with ``price_range > 0`` (stablecoins are cash, not exposure).
    ``leverage`` = gross / equity (∞ when equity ≤ 0). ``net_exposure``: dollar
    delta per group with price risk (``price_range > 0``), balances included. ``btc_correlated_share``: share of the
    gross notional in BTC's group and the groups offset against it in the
    profile (its warning needs leverage above ``correlated_leverage`` too: an
    unlevered crypto book is always BTC-correlated). ``mm_usage`` = MM / adjusted equity, ``im_usage`` = IM / adjusted
    equity (∞ when adjusted equity ≤ 0 and there is a margin)."""

    equity: float
    adjusted_equity: float
    gross_notional: float
    leverage: float
    net_exposure: dict[str, float]
    gross_by_group: dict[str, float]
    btc_correlated_groups: list[str]
    btc_correlated_share: float
    mm_usage: float
    im_usage: float
    warnings: list[RiskWarning]

    def to_dict(self) -> dict[str, Any]:
        return _json_dict(asdict(self))


def _ratio(num: float, den: float) -> float:
    if den > 0:
        return num / den
    return 0.0 if num == 0 else math.inf


def exposure_report(
    engine: Engine,
    portfolio: Portfolio,
    market: Market,
    thresholds: Mapping[str, float] | None = None,
) -> Exposure:
    """Leverage, exposure and margin usage, with a warning for each figure above
    its threshold (default: ``[warnings]`` of ``risk.toml``)."""
    params = engine.params
    th = {**warning_thresholds(), **(thresholds or {})}
    r = engine.margin(portfolio, market)
    prices = market.prices
    marks = market.marks
    gross: dict[str, float] = {}

    def add(group: str, x: float) -> None:
        gross[group] = gross.get(group, 0.0) + abs(x)

    for a, q in portfolio.balances:
        if price_range(params, params.group_of(a)) > 0:
            add(params.group_of(a), q * prices[a])
    for p in portfolio.positions:
        b = p["underlying"]
        g = params.group_of(b)
        if p["type"] == "linear":
            s = p.get("settle", "USDT")
            mark = marks.get(p["symbol"], prices[b] / prices[s])
            add(g, p["qty"] * mark * prices[s])
        elif p["type"] == "inverse":
            add(g, p["contracts"] * p["contract_size"])
        else:
            add(g, p["qty"] * prices[b])
    total = sum(gross.values())
    greeks = engine.greeks(portfolio, market)
    net = {
        g: float(v["delta_usd"]) for g, v in greeks["groups"].items() if price_range(params, g) > 0
    }
    btc = params.group_of("BTC")
    correlated = [btc]
    for o in _profile(params)["offsets"]:
        if btc in (o["a"], o["b"]) and o["rate"] > 0:
            other = o["b"] if o["a"] == btc else o["a"]
            if other not in correlated:
                correlated.append(other)
    share = sum(gross.get(g, 0.0) for g in correlated) / total if total > 0 else 0.0
    lev = _ratio(total, r.equity)
    mm_usage = _ratio(r.maintenance_margin, r.adjusted_equity)
    im_usage = _ratio(r.initial_margin, r.adjusted_equity)

    warnings = []

    def pct(x: float) -> str:
        return "∞" if math.isinf(x) else f"{x * 100:.0f} %"

    if lev > th["leverage"]:
        what = "equity is not positive" if r.equity <= 0 else f"{lev:.1f}×"
        warnings.append(
            RiskWarning(
                "leverage",
                lev,
                th["leverage"],
                f"effective leverage {what}: gross notional {total:,.0f} USD on "
                f"{r.equity:,.0f} USD of equity (warning above {th['leverage']:g}×)",
            )
        )
    for g, x in net.items():
        rel = _ratio(abs(x), r.equity)
        if x != 0 and rel > th["group_exposure"]:
            side = "long" if x > 0 else "short"
            warnings.append(
                RiskWarning(
                    f"group_exposure.{g}",
                    rel,
                    th["group_exposure"],
                    f"{g}: net {side} {abs(x):,.0f} USD, {pct(rel)} of equity "
                    f"(warning above {pct(th['group_exposure'])})",
                )
            )
    if share > th["btc_correlated_share"] and lev > th["correlated_leverage"]:
        warnings.append(
            RiskWarning(
                "btc_correlated_share",
                share,
                th["btc_correlated_share"],
                f"{pct(share)} of the gross notional is in groups that move with BTC "
                f"({', '.join(g for g in correlated if g in gross)}) at {lev:.1f}× leverage: "
                f"one market-wide move hits all of it (warning above {pct(th['btc_correlated_share'])} "
                f"when leverage is above {th['correlated_leverage']:g}×)",
            )
        )
    if mm_usage > th["mm_usage"]:
        warnings.append(
            RiskWarning(
                "mm_usage",
                mm_usage,
                th["mm_usage"],
                f"maintenance margin uses {pct(mm_usage)} of adjusted equity "
                f"(warning above {pct(th['mm_usage'])}): little room before liquidation",
            )
        )
    if im_usage > th["im_usage"]:
        warnings.append(
            RiskWarning(
                "im_usage",
                im_usage,
                th["im_usage"],
                f"initial margin uses {pct(im_usage)} of adjusted equity "
                f"(warning above {pct(th['im_usage'])}): few new positions can be opened",
            )
        )
    return Exposure(
        r.equity,
        r.adjusted_equity,
        total,
        lev,
        net,
        gross,
        correlated,
        share,
        mm_usage,
        im_usage,
        warnings,
    )


# -- liquidation plan --------------------------------------------------------------------


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
    carries) is credited to its settle asset, so equity is unchanged."""
    out = copy.deepcopy(d)
    p = out["positions"][i]
    key = "contracts" if p["type"] == "inverse" else "qty"
    if fraction >= 1.0:
        del out["positions"][i]
    else:
        p[key] = p[key] * (1.0 - fraction)
    e_before = engine.margin(Portfolio.from_dict(d), market).equity
    e_after = engine.margin(Portfolio.from_dict(out), market).equity
    settle = p["underlying"] if p["type"] == "inverse" else p.get("settle", "USDT")
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
        if p["type"] == "linear":
            s = p.get("settle", "USDT")
            mark = market.marks.get(p["symbol"], prices[b] / prices[s])
            usd, qty = abs(p["qty"]) * frac * mark * prices[s], p["qty"] * frac
        elif p["type"] == "inverse":
            usd, qty = abs(p["contracts"]) * frac * p["contract_size"], p["contracts"] * frac
        else:
            usd, qty = abs(p["qty"]) * frac * prices[b], p["qty"] * frac
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
                raise InvalidInputError(f"actions[{a.step - 1}].position: {a.position} is closed")
            i = index.index(a.position)
            d = _close(engine, d, i, a.fraction, market)
            if a.fraction >= 1.0:
                del index[i]
        elif a.kind == "repay_loan":
            if a.asset is None or a.loan_asset is None:
                raise InvalidInputError(f"actions[{a.step - 1}]: a repayment names its assets")
            bal = d["balances"]
            bal[a.loan_asset] = bal.get(a.loan_asset, 0.0) + a.repaid
            bal[a.asset] = bal.get(a.asset, 0.0) + a.qty
        elif a.kind != "cancel_orders":
            raise InvalidInputError(f"actions[{a.step - 1}].kind: unknown {a.kind!r}")
    return Portfolio.from_dict(d)


# -- everything at once ------------------------------------------------------------------


@dataclass(frozen=True)
class RiskReport:
    """Every risk tool on one account: what ``pmengine risk`` and ``report`` show."""

    result: MarginResult
    liquidation_prices: list[LiquidationPrice]
    stresses: list[StressResult]
    buffer_asset: str
    buffer_target: str
    buffer_scenario: str | None
    deposit: float | None
    withdrawal: float
    exposure: Exposure
    plan: LiquidationPlan
    co_move: bool = False

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types; infinite ratios are None."""
        return {
            "result": self.result.to_dict(),
            "liquidation_prices": [x.to_dict() for x in self.liquidation_prices],
            "co_move": self.co_move,
            "stresses": [s.to_dict() for s in self.stresses],
            "buffer": {
                "asset": self.buffer_asset,
                "target": self.buffer_target,
                "scenario": self.buffer_scenario,
                "deposit": self.deposit,
                "withdrawal": self.withdrawal,
            },
            "exposure": self.exposure.to_dict(),
            "liquidation_plan": self.plan.to_dict(),
        }


def risk_report(
    engine: Engine,
    portfolio: Portfolio,
    market: Market,
    *,
    scenarios: Sequence[Scenario] | None = None,
    co_move: bool = False,
    buffer_asset: str = "USDT",
    target: str = "NORMAL",
    buffer_scenario: str | None = "crash_30",
    plan_target: str = "MARGIN_CALL",
) -> RiskReport:
    """All the risk tools on one account. The deposit is the one that keeps
    ``target`` through ``buffer_scenario`` (a name among ``scenarios`` and the
    built-in ones; None: now); the withdrawal keeps ``target`` now."""
    params = engine.params
    _check_target(params, target, "target")
    _check_target(params, plan_target, "plan target")
    all_scenarios = list(builtin_scenarios() if scenarios is None else scenarios)
    by_name = {s.name: s for s in [*builtin_scenarios(), *all_scenarios]}
    stress = None
    if buffer_scenario is not None:
        if buffer_scenario not in by_name:
            raise InvalidInputError(
                f"buffer scenario: unknown {buffer_scenario!r}, expected one of {sorted(by_name)}"
            )
        stress = by_name[buffer_scenario]
    return RiskReport(
        engine.margin(portfolio, market),
        liquidation_prices(engine, portfolio, market, co_move=co_move),
        stress_test(engine, portfolio, market, all_scenarios),
        buffer_asset,
        target,
        buffer_scenario,
        deposit_needed(
            engine, portfolio, market, asset=buffer_asset, target=target, scenario=stress
        ),
        max_withdrawal(engine, portfolio, market, asset=buffer_asset, target=target),
        exposure_report(engine, portfolio, market),
        liquidation_plan(engine, portfolio, market, target=plan_target),
        co_move,
    )
