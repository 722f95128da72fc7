"""Isolated, cross and portfolio margin of one account, side by side (§5, §6),
portfolio margin under both models: the scenario model and Binance's
(``binance_pm``, docs/BINANCE.md).

    from pmengine.compare import compare
    table = compare(engine, portfolio, market)
    # {"isolated": {...}, "cross": {...}, "portfolio": {...}, "binance_pm": {...}, "recognised": [...]}

Each mode gives MM, IM and available (USD), its health ratio and status,
and liquidation prices per futures position: in classic the position's mark
at which it (isolated) or its wallet (cross) is liquidated, the rest fixed;
under portfolio margin the index price of the position's group asset at
which the whole account enters the last status of the ladder (LIQUIDATION)
when that group alone moves against the position (``risk.liquidation_prices``).
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pmengine._core import ClassicResult, Engine, MarginResult, Market, Portfolio
from pmengine.errors import PmError


def _finite(x: float | None) -> float | None:
    return x if x is not None and math.isfinite(x) else None


def classic_summary(c: ClassicResult) -> dict[str, Any]:
    """Headline figures of a classic result. ``margin_ratio``: the highest of
    the futures wallets' margin ratios and the isolated positions' MM /
    (margin + UPnL), liquidation at 1 (None: infinite); ``cross_margin_level``
    of the loans (None: no loans)."""
    ratios = [w["margin_ratio"] for w in [c.usdm, *c.coinm]]
    ratios += [p["margin_ratio"] for p in c.positions if p["isolated_margin"] is not None]
    worst = max((math.inf if x is None else x for x in ratios), default=0.0)
    return {
        "maintenance_margin": c.maintenance_margin,
        "initial_margin": c.initial_margin,
        "available": c.available,
        "margin_ratio": _finite(worst),
        "cross_margin_level": c.cross_margin["margin_level"],
        "status": c.status,
        "liquidation_prices": {p["symbol"]: p["liquidation_price"] for p in c.positions},
    }


def portfolio_summary(r: MarginResult) -> dict[str, Any]:
    return {
        "maintenance_margin": r.maintenance_margin,
        "initial_margin": r.initial_margin,
        "available": r.available,
        "uni_mmr": _finite(r.uni_mmr),
        "status": r.status,
    }


def portfolio_liquidation_prices(
    engine: Engine, portfolio: Portfolio, market: Market
) -> dict[str, float | None]:
    """Per linear or inverse symbol: the index price (USD) of its group's asset at
    which the account enters the ladder's last status when that group alone moves
    against the position (down for a long, up for a short); None when no price
    does. Symbols held long and short net to the sign of their total."""
    from pmengine.risk import liquidation_prices

    last = engine.params.status_levels[-1][0]
    found = {
        (x.group, x.direction): x.price
        for x in liquidation_prices(engine, portfolio, market)
        if x.status == last
    }
    held: dict[str, tuple[str, float]] = {}
    for t in engine.position_terms(portfolio, market):
        if t["type"] != "option":
            group, total = held.get(t["symbol"], (t["group"], 0.0))
            held[t["symbol"]] = (group, total + t["quantity"])
    return {
        symbol: found.get((group, "down" if qty > 0 else "up")) if qty != 0 else None
        for symbol, (group, qty) in held.items()
    }


def engine_for(engine: Engine, model: Literal["scenario", "binance_pm"]) -> Engine:
    """``engine`` itself when its profile's model is ``model``, else an engine of
    the same profile under ``model`` (``ProfileError`` when the profile cannot
    serve it: ``binance_pm`` needs a ``[binance]`` table)."""
    return engine if engine.params.model == model else Engine(engine.params.with_model(model))


def compare(engine: Engine, portfolio: Portfolio, market: Market) -> dict[str, Any]:
    """The account under isolated, cross and both portfolio-margin models (the
    scenario model as ``portfolio``, Binance's as ``binance_pm``), and what each
    portfolio model recognises, in words. Where ``binance_pm`` cannot margin the
    account (an option, an asset without a collateral rate), its entry is
    ``{"error": message}``."""
    scenario = engine_for(engine, "scenario")
    r = scenario.margin(portfolio, market)
    out = {
        "isolated": classic_summary(engine.classic(portfolio, market, "isolated")),
        "cross": classic_summary(engine.classic(portfolio, market, "cross")),
        "portfolio": portfolio_summary(r)
        | {"liquidation_prices": portfolio_liquidation_prices(scenario, portfolio, market)},
        "recognised": recognised(r),
    }
    try:
        binance = engine_for(engine, "binance_pm")
        b = binance.margin(portfolio, market)
        out["binance_pm"] = (
            portfolio_summary(b)
            | {"liquidation_prices": portfolio_liquidation_prices(binance, portfolio, market)}
            | {"recognised": binance_recognised(b)}
        )
    except PmError as e:
        out["binance_pm"] = {"error": str(e)}
    return out


def initial_margins(
    engine: Engine, portfolio: Portfolio, market: Market, result: MarginResult
) -> dict[str, Any]:
    """Initial margin (USD) of the account under classic cross margin
    (``classic_cross``, with its ``classic_status``), portfolio margin
    (``portfolio``: ``result``, the engine's margin of it) and Binance's portfolio
    margin (``binance_pm``; None where its formula cannot margin the account)."""
    c = engine.classic(portfolio, market, "cross")
    try:
        b: float | None = engine_for(engine, "binance_pm").margin(portfolio, market).initial_margin
    except PmError:
        b = None
    return {
        "classic_cross": c.initial_margin,
        "classic_status": c.status,
        "portfolio": result.initial_margin,
        "binance_pm": b,
    }


def usd(x: float) -> str:
    """A USD amount for people: thousands separators, cents."""
    return f"{x:,.2f}"


def recognised(r: MarginResult) -> list[str]:
    """Plain-language facts of what portfolio margin recognised in this account."""
    facts = []
    for name, g in r.groups.items():
        if g.spot_in_use > 0:
            facts.append(f"{name}: {usd(g.spot_in_use)} USD of long spot hedges short contracts")
        if g.financed_spot > 0:
            facts.append(
                f"{name}: {usd(g.financed_spot)} USD of spot is financed by loans and scanned"
            )
        if g.som > 0 and g.som >= g.scan_loss:
            facts.append(f"{name}: the short-option minimum ({usd(g.som)} USD) binds")
        if g.basis > 0:
            facts.append(f"{name}: basis between hedged instruments costs {usd(g.basis)} USD")
        if g.concentration > 0:
            facts.append(f"{name}: concentration add-on {usd(g.concentration)} USD")
    if r.offset_credit > 0:
        facts.append(f"correlated groups offset each other: {usd(r.offset_credit)} USD of credit")
    if r.systemic > r.scan:
        facts.append(f"the systemic scenario binds: {usd(r.systemic)} USD above the scan")
    return facts


def binance_recognised(r: MarginResult) -> list[str]:
    """Plain-language facts of how Binance's formula (``binance_pm``) treats the account."""
    facts = []
    contracts = sum(p["maintenance_margin"] * _unit_usd(r, p["asset"]) for p in r.positions)
    if r.positions:
        facts.append(
            f"each of {len(r.positions)} contracts pays its own bracket MM, "
            f"{usd(contracts)} USD in all: no hedge or offset is netted"
        )
    if r.borrow_margin > 0:
        facts.append(f"margin loans cost {usd(r.borrow_margin)} USD of MM at their leverage's rate")
    haircut = r.equity - r.adjusted_equity
    if haircut > 0:
        facts.append(f"collateral rates take {usd(haircut)} USD off equity")
    return facts


def _unit_usd(r: MarginResult, asset: str) -> float:
    """USD per unit of ``asset`` in a ``binance_pm`` result (its equity over ``v``)."""
    a = r.assets[asset]
    return a["equity"] / a["v"] if a["v"] else math.nan


def standalone_margin(engine: Engine, portfolio: Portfolio, market: Market) -> float:
    """MM with every position margined alone and the wallet (balances and margin
    loans) alone, no netting between them, USD."""
    d = portfolio.to_dict()
    parts = [{"balances": d["balances"], "loans": d.get("loans", {}), "positions": []}]
    parts += [{"balances": {}, "positions": [p]} for p in d["positions"]]
    return sum(engine.margin(Portfolio.from_dict(p), market).maintenance_margin for p in parts)
