"""The pure-Python reference of classic margin (METHODOLOGY.md §5).

Written to be read; the oracle ``Engine.classic`` is tested against. Wallets
(the readings are in docs/CLASSIC.md):

- USDⓈ-M futures: positive balances of the assets linear contracts and
  options settle in, less the isolated margins posted from them; its cross
  positions are linear contracts and options (a short option needs what the
  portfolio engine asks of it alone, a long one nothing);
- COIN-M futures, one per coin: the coin's positive balance less isolated
  margins; its cross positions are the coin's inverse contracts;
- isolated positions: their own margin;
- cross margin: every loan and every other positive balance.

    from pmengine import reference_classic
    result = reference_classic.classic(portfolio_dict, market_dict, profile, mode="cross")
"""

from __future__ import annotations

import math
from typing import Any

from pmengine import reference
from pmengine.errors import InvalidInputError, ProfileError

NORMAL, MARGIN_CALL, LIQUIDATION = "NORMAL", "MARGIN_CALL", "LIQUIDATION"
_RANK = {NORMAL: 0, MARGIN_CALL: 1, LIQUIDATION: 2}


def worse(a: str, b: str) -> str:
    return b if _RANK[b] > _RANK[a] else a


def brackets_for(profile: reference.Profile, symbol: str) -> list[tuple[float, float, float]]:
    """``[(up_to, mmr, max_leverage)]`` of a symbol: its own table, else ``default``."""
    tables = profile.raw.get("classic", {}).get("brackets", {})
    table = tables.get(symbol, tables.get("default"))
    if table is None:
        raise ProfileError(f"classic.brackets: no table for {symbol} and no default")
    return [
        (float(b.get("up_to", math.inf)), float(b["mmr"]), float(b["max_leverage"])) for b in table
    ]


def bracket(brackets: list[tuple[float, float, float]], notional: float) -> tuple[int, float]:
    """The bracket a USD notional falls in and its ``cum``:
    ``cum_1 = 0``, ``cum_i = cum_{i−1} + cap_{i−1}·(mmr_i − mmr_{i−1})``."""
    cum = 0.0
    for i, (up_to, mmr, _) in enumerate(brackets):
        if i > 0:
            cum += brackets[i - 1][0] * (mmr - brackets[i - 1][1])
        if notional <= up_to or i == len(brackets) - 1:
            return i, cum
    raise AssertionError("a bracket table is never empty")


def linear_liquidation_price(
    brackets: list[tuple[float, float, float]], q: float, e: float, ps: float, m: float
) -> float | None:
    """Mark solving ``m + q·(M − e)·ps = |q|·M·ps·mmr − cum`` in the bracket its notional falls in."""
    if q == 0:
        return None
    cum, lo = 0.0, 0.0
    for k, (up_to, mmr, _) in enumerate(brackets):
        if k > 0:
            cum += brackets[k - 1][0] * (mmr - brackets[k - 1][1])
            lo = brackets[k - 1][0]
        mark = (q * e * ps - m - cum) / (ps * (q - abs(q) * mmr))
        notional = abs(q) * mark * ps
        tol = 1e-9 * max(notional, 1.0)
        if mark > 0 and lo - tol <= notional <= up_to + tol:
            return mark
    return None


def inverse_liquidation_price(
    n: float, e: float, k: float, w: float, mm_usd: float
) -> float | None:
    """Mark solving ``mm_usd / (k·M) = w + n/e − n/M`` (index = k·mark, so MM in USD stays put)."""
    if n == 0:
        return None
    den = w + n / e
    if den == 0:
        return None
    # The cushion (w + n/e) − (n + mm_usd/k)/M crosses zero once on M > 0, or never.
    mark = (n + mm_usd / k) / den
    return mark if mark > 0 and math.isfinite(mark) else None


def futures_wallet(
    name: str, balance: float, upnl: float, mm: float, im: float, call: float
) -> dict[str, Any]:
    margin_balance = balance + upnl
    if mm <= 0:
        ratio = 0.0
    elif margin_balance <= 0:
        ratio = math.inf
    else:
        ratio = mm / margin_balance
    status = LIQUIDATION if ratio >= 1 else MARGIN_CALL if ratio >= call else NORMAL
    return {
        "name": name,
        "balance": balance,
        "upnl": upnl,
        "margin_balance": margin_balance,
        "maintenance_margin": mm,
        "initial_margin": im,
        "available": margin_balance - im,
        "margin_ratio": ratio,
        "status": status,
    }


def classic(
    portfolio: dict[str, Any],
    market: dict[str, Any],
    profile: reference.Profile | None = None,
    mode: str = "as_given",
) -> dict[str, Any]:
    """Classic margin of an account: the dict ``ClassicResult.to_dict`` gives
    (infinite ratios as ``math.inf`` rather than ``None``)."""
    p = profile or reference.default_profile()
    if mode not in ("as_given", "cross", "isolated"):
        raise InvalidInputError(f'mode: must be "as_given", "cross" or "isolated", got {mode!r}')
    cp = p.raw.get("classic", {})
    default_leverage = float(cp.get("default_leverage", 20.0))
    prices = market.get("prices", {})
    marks = market.get("marks", {})
    balances = portfolio.get("balances", {})
    for a in balances:
        reference.price(market, a, f"balances.{a}")

    legs: list[dict[str, Any]] = []
    options_mm = 0.0
    options_value: list[tuple[str, float]] = []
    for i, pos in enumerate(portfolio.get("positions", [])):
        at = f"positions[{i}]"
        settle = pos.get("settle", "USDT") if pos["type"] != "inverse" else pos["underlying"]
        pb = reference.price(market, pos["underlying"], f"{at}.underlying")
        ps = reference.price(market, settle, f"{at}.settle")
        if pos["type"] == "option":
            alone = {"balances": {}, "positions": [pos]}
            r = reference.margin(alone, market, p)
            # The option's value: the account's equity with nothing else in it.
            options_value.append((settle, r["equity"] / ps))
            if pos["qty"] < 0:
                options_mm += r["maintenance_margin"]
            continue
        inverse = pos["type"] == "inverse"
        symbol = pos["symbol"]
        if inverse:
            size = pos["contracts"] * pos["contract_size"]
            mark = marks.get(symbol, pb)
            notional = abs(size) * pb / mark
            upnl_asset = size * (1 / pos["entry_price"] - 1 / mark)
            asset, asset_price = pos["underlying"], pb
        else:
            size = pos["qty"]
            mark = marks.get(symbol, pb / ps)
            notional = abs(size) * mark * ps
            upnl_asset = size * (mark - pos["entry_price"])
            asset, asset_price = settle, ps
        brackets = brackets_for(p, symbol)
        k, cum = bracket(brackets, notional)
        max_leverage = brackets[k][2]
        leverage = float(pos.get("leverage", min(default_leverage, max_leverage)))
        if leverage > max_leverage:
            raise InvalidInputError(
                f"{at}.leverage: above the bracket's maximum {max_leverage:g}x, got {leverage:g}"
            )
        im = notional / leverage
        isolated = {
            "as_given": pos.get("isolated_margin"),
            "cross": None,
            "isolated": pos.get("isolated_margin", im / asset_price),
        }[mode]
        wallet = "isolated" if isolated is not None else f"coinm:{asset}" if inverse else "usdm"
        legs.append(
            {
                "inverse": inverse,
                "asset": asset,
                "size": size,
                "entry": float(pos["entry_price"]),
                "asset_price": asset_price,
                "basis": pb / mark,
                "upnl_asset": upnl_asset,
                "brackets": brackets,
                "pos": {
                    "index": i,
                    "symbol": symbol,
                    "wallet": wallet,
                    "notional": notional,
                    "mmr": brackets[k][1],
                    "cum": cum,
                    "maintenance_margin": notional * brackets[k][1] - cum,
                    "initial_margin": im,
                    "leverage": leverage,
                    "max_leverage": max_leverage,
                    "upnl": upnl_asset * asset_price,
                    "isolated_margin": isolated,
                    "liquidation_price": None,
                    "status": None,
                    "margin_ratio": None,
                },
            }
        )

    # Balances into wallets.
    usdm_assets = {
        pos.get("settle", "USDT")
        for pos in portfolio.get("positions", [])
        if pos["type"] != "inverse"
    }
    coins: list[str] = []
    for leg in legs:
        if leg["inverse"] and leg["asset"] not in coins:
            coins.append(leg["asset"])
    cm_assets = cm_liabilities = usdm_balance = equity = 0.0
    coin_balance = dict.fromkeys(coins, 0.0)
    for a, q in balances.items():
        equity += q * prices[a]
        if q < 0:
            cm_liabilities -= q * prices[a]
        elif a in coin_balance:
            coin_balance[a] += q
        elif a in usdm_assets:
            usdm_balance += q * prices[a]
        else:
            cm_assets += q * prices[a]
    for leg in legs:
        equity += leg["upnl_asset"] * leg["asset_price"]
        m = leg["pos"]["isolated_margin"]
        if m is not None:
            if leg["inverse"]:
                coin_balance[leg["asset"]] -= m
            else:
                usdm_balance -= m * leg["asset_price"]
    for settle, v in options_value:
        equity += v * prices[settle]

    # USDⓈ-M cross wallet and its liquidation prices.
    usdm_legs = [g for g in legs if not g["inverse"] and g["pos"]["isolated_margin"] is None]
    usdm = futures_wallet(
        "usdm",
        usdm_balance,
        sum(g["pos"]["upnl"] for g in usdm_legs) + sum(v * prices[s] for s, v in options_value),
        sum(g["pos"]["maintenance_margin"] for g in usdm_legs) + options_mm,
        sum(g["pos"]["initial_margin"] for g in usdm_legs) + p.im_factor * options_mm,
        float(cp.get("futures_margin_call", 0.8)),
    )
    for g in usdm_legs:
        pos = g["pos"]
        rest = (
            usdm["margin_balance"]
            - pos["upnl"]
            - (usdm["maintenance_margin"] - pos["maintenance_margin"])
        )
        pos["liquidation_price"] = linear_liquidation_price(
            g["brackets"], g["size"], g["entry"], g["asset_price"], rest
        )

    # COIN-M cross wallets, in coin, reported in USD.
    coinm = []
    for coin in coins:
        members = [
            g
            for g in legs
            if g["inverse"] and g["asset"] == coin and g["pos"]["isolated_margin"] is None
        ]
        pc = prices[coin]
        upnl_coin = sum(g["upnl_asset"] for g in members)
        mm_usd = sum(g["pos"]["maintenance_margin"] for g in members)
        im_usd = sum(g["pos"]["initial_margin"] for g in members)
        call = float(cp.get("futures_margin_call", 0.8))
        coinm.append(
            futures_wallet(
                f"coinm:{coin}", coin_balance[coin] * pc, upnl_coin * pc, mm_usd, im_usd, call
            )
        )
        for g in members:
            others = coin_balance[coin] + upnl_coin - g["upnl_asset"]
            g["pos"]["liquidation_price"] = inverse_liquidation_price(
                g["size"], g["entry"], g["basis"], others, mm_usd
            )

    # Isolated positions.
    status = usdm["status"]
    for g in legs:
        pos = g["pos"]
        m = pos["isolated_margin"]
        if m is None:
            continue
        cushion = m * g["asset_price"] + pos["upnl"]
        pos["status"] = LIQUIDATION if cushion <= pos["maintenance_margin"] else NORMAL
        pos["margin_ratio"] = pos["maintenance_margin"] / cushion if cushion > 0 else math.inf
        status = worse(status, pos["status"])
        if g["inverse"]:
            pos["liquidation_price"] = inverse_liquidation_price(
                g["size"], g["entry"], g["basis"], m, pos["maintenance_margin"]
            )
        else:
            pos["liquidation_price"] = linear_liquidation_price(
                g["brackets"], g["size"], g["entry"], g["asset_price"], m * g["asset_price"]
            )
    for w in coinm:
        status = worse(status, w["status"])

    # Cross margin (spot and loans).
    call, liq = (
        float(cp.get("cross_margin_call", 1.3)),
        float(cp.get("cross_margin_liquidation", 1.1)),
    )
    level = cm_assets / cm_liabilities if cm_liabilities > 0 else math.inf
    cm_status = LIQUIDATION if level <= liq else MARGIN_CALL if level <= call else NORMAL
    cross_margin = {
        "assets": cm_assets,
        "liabilities": cm_liabilities,
        "margin_level": level,
        "maintenance_margin": (liq - 1) * cm_liabilities,
        "initial_margin": (call - 1) * cm_liabilities,
        "status": cm_status,
    }
    status = worse(status, cm_status)

    isolated_legs = [g["pos"] for g in legs if g["pos"]["isolated_margin"] is not None]
    return {
        "mode": mode,
        "equity": equity,
        "maintenance_margin": usdm["maintenance_margin"]
        + sum(w["maintenance_margin"] for w in coinm)
        + sum(x["maintenance_margin"] for x in isolated_legs)
        + cross_margin["maintenance_margin"],
        "initial_margin": usdm["initial_margin"]
        + sum(w["initial_margin"] for w in coinm)
        + sum(x["initial_margin"] for x in isolated_legs)
        + cross_margin["initial_margin"],
        "available": usdm["available"]
        + sum(w["available"] for w in coinm)
        + (cm_assets - cm_liabilities - cross_margin["initial_margin"]),
        "status": status,
        "usdm": usdm,
        "coinm": coinm,
        "cross_margin": cross_margin,
        "positions": [g["pos"] for g in legs],
    }
