"""Leverage and concentration: gross notional over equity, net exposure per
group, the BTC-correlated share, margin usage (USD and ratios) and a
plain-language warning for each figure above its threshold (``[warnings]`` of
``risk.toml``)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from pmengine._core import Engine, Market, Portfolio
from pmengine.risk._json import _json_dict
from pmengine.risk.moves import price_range
from pmengine.risk.scenarios import _defaults


def warning_thresholds() -> dict[str, float]:
    """The warning thresholds of ``risk.toml`` (``[warnings]``)."""
    table = _defaults()["warnings"]
    return {str(k): float(v) for k, v in table.items()}


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

    ``gross_notional``: Σ notional of the positions (``Engine.position_terms``:
    linear ``|q·M|·P_s``, inverse ``|n·C/M|·P_b``, options ``|q|·P_b``) and
    |value| of the balances in
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
    gross: dict[str, float] = {}

    def add(group: str, x: float) -> None:
        gross[group] = gross.get(group, 0.0) + abs(x)

    for a, q in portfolio.balances:
        if price_range(params, params.group_of(a)) > 0:
            add(params.group_of(a), q * prices[a])
    for t in engine.position_terms(portfolio, market):
        add(t["group"], t["notional"])
    total = sum(gross.values())
    greeks = engine.greeks(portfolio, market)
    net = {
        g: float(v["delta_usd"]) for g, v in greeks["groups"].items() if price_range(params, g) > 0
    }
    btc = params.group_of("BTC")
    correlated = [btc]
    for a, b, rate in params.offsets:
        if btc in (a, b) and rate > 0:
            other = b if a == btc else a
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
