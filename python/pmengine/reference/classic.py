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

A margin loan (``portfolio.loans``) is netted into its asset's balance exactly
as a negative balance: ``balance − borrowed − interest``.

Brackets (docs/BINANCE.md "Brackets"): a linear contract on ``[brackets.usdm]``
(caps on its notional in the margin asset), an inverse one on
``[brackets.coinm]`` (caps on its quantity in the coin, ``cum`` in coin).

    from pmengine.reference import classic as reference_classic
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


def brackets_for(
    profile: reference.Profile, symbol: str, kind: str = "usdm"
) -> list[reference.Bracket]:
    """``[(up_to, mmr, max_leverage, cum)]`` of a symbol in ``[brackets.<kind>]``
    (``usdm`` or ``coinm``): its own table, else its pair's (the symbol before the
    first ``_``: ``BTCUSDT_250627`` → ``BTCUSDT``), else ``default``."""
    tables = profile.brackets[kind]
    pair = symbol.split("_", 1)[0]
    for name in (symbol, pair, "default"):
        if name in tables:
            return tables[name]
    raise ProfileError.at(f"brackets.{kind}", f"no table for {symbol} and no default")


def bracket(brackets: list[reference.Bracket], size: float) -> tuple[int, float]:
    """The bracket a size (notional, or coin quantity on a COIN-M table) falls in, the
    first with ``size ≤ up_to`` (the last above every cap), and its ``cum``."""
    for i, b in enumerate(brackets):
        if size <= b[0] or i == len(brackets) - 1:
            return i, b[3]
    raise AssertionError("a bracket table is never empty")


def maintenance(brackets: list[reference.Bracket], size: float) -> tuple[int, float]:
    """The bracket of a size and its MM, ``max(0, size·mmr − cum)`` in the table's units.
    The floor matters only for an exported ``cum`` that overshoots; a derived one never does."""
    k, cum = bracket(brackets, size)
    return k, max(0.0, size * brackets[k][1] - cum)


def linear_liquidation_price(
    brackets: list[reference.Bracket], q: float, e: float, ps: float, m: float
) -> float | None:
    """Mark solving ``m/ps + q·(M − e) = |q|·M·mmr − cum`` (margin asset; ``m`` in USD)
    in the bracket its notional ``|q|·M`` falls in."""
    if q == 0:
        return None
    lo = 0.0
    for k, (up_to, mmr, _, cum) in enumerate(brackets):
        if k > 0:
            lo = brackets[k - 1][0]
        mark = (q * e - m / ps - cum) / (q - abs(q) * mmr)
        notional = abs(q) * mark
        tol = 1e-9 * max(notional, 1.0)
        if mark > 0 and lo - tol <= notional <= up_to + tol:
            return mark
    return None


def inverse_liquidation_price(
    brackets: list[reference.Bracket], n: float, e: float, w: float
) -> float | None:
    """Mark solving ``w + n/e − n/M = |n|/M·mmr − cum`` (coin) in the COIN-M bracket its
    quantity ``|n|/M`` falls in: ``n`` the signed USD size (contracts · contract size),
    ``w`` the coin cushion besides this position's UPnL and MM (its isolated margin, or
    its wallet's balance and other UPnL less the other positions' MM). Everything is in
    coin, so the coin's index does not enter: ``M = (n + |n|·mmr) / (w + n/e + cum)``."""
    if n == 0:
        return None
    lo = 0.0
    for k, (up_to, mmr, _, cum) in enumerate(brackets):
        if k > 0:
            lo = brackets[k - 1][0]
        den = w + n / e + cum
        if den == 0:
            continue
        mark = (n + abs(n) * mmr) / den
        if not (mark > 0 and math.isfinite(mark)):
            continue
        qty = abs(n) / mark
        tol = 1e-9 * max(qty, 1.0)
        # The cushion crosses zero once on M > 0 (MM is continuous, its slope mmr < 1),
        # or never: a hedged short has none.
        if lo - tol <= qty <= up_to + tol:
            return mark
    return None


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


#: ``[classic]`` keys a profile may leave out, and what they then are.
CLASSIC_DEFAULTS = {
    "cross_margin_call": 1.3,
    "cross_margin_liquidation": 1.1,
    "futures_margin_call": 0.8,
    "default_leverage": 20.0,
}


def classic_table(p: reference.Profile) -> dict[str, float]:
    """The profile's ``[classic]`` levels, defaults filled in."""
    given = p.raw.get("classic", {})
    return {k: float(given.get(k, v)) for k, v in CLASSIC_DEFAULTS.items()}


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
        raise InvalidInputError.at(
            "mode", f'must be "as_given", "cross" or "isolated", got {mode!r}'
        )
    cp = classic_table(p)
    default_leverage = cp["default_leverage"]
    prices = market.get("prices", {})
    marks = market.get("marks", {})
    owed = reference.margin_loans(portfolio)
    balances = dict(portfolio.get("balances", {}))
    for a in balances:
        reference.price(market, a, f"balances.{a}")
    # A loan is a negative balance, in the cross margin account like any other.
    for a, (borrowed, interest) in owed.items():
        reference.price(market, a, f"loans.{a}")
        balances[a] = balances.get(a, 0.0) - (borrowed + interest)

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
            # What the scenario engine asks of it alone, whatever the profile's model.
            r = reference.scenario_margin(alone, market, p)
            # The option's value: the account's equity with nothing else in it.
            options_value.append((settle, r["equity"] / ps))
            if pos["qty"] < 0:
                options_mm += r["maintenance_margin"]
            continue
        inverse = pos["type"] == "inverse"
        symbol = pos["symbol"]
        if inverse:
            # Bracketed on the coin quantity q = |n/M|; MM in coin. The USD notional
            # q·P_coin is what the position reports and its IM is taken on.
            size = pos["contracts"] * pos["contract_size"]
            mark = marks.get(symbol, pb)
            brackets = brackets_for(p, symbol, "coinm")
            k, mm_asset = maintenance(brackets, abs(size) / mark)
            upnl_asset = size * (1 / pos["entry_price"] - 1 / mark)
            asset, asset_price = pos["underlying"], pb
            notional = abs(size) / mark * pb
        else:
            size = pos["qty"]
            mark = marks.get(symbol, pb / ps)
            brackets = brackets_for(p, symbol, "usdm")
            k, mm_asset = maintenance(brackets, abs(size) * mark)
            upnl_asset = size * (mark - pos["entry_price"])
            asset, asset_price = settle, ps
            notional = abs(size) * mark * ps
        cum = brackets[k][3] * asset_price  # USD, so MM = notional·mmr − cum in USD
        max_leverage = brackets[k][2]
        leverage = float(pos.get("leverage", min(default_leverage, max_leverage)))
        if leverage > max_leverage:
            raise InvalidInputError.at(
                f"{at}.leverage", f"above the bracket's maximum {max_leverage:g}x, got {leverage:g}"
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
                "upnl_asset": upnl_asset,
                "mm_asset": mm_asset,
                "brackets": brackets,
                "pos": {
                    "index": i,
                    "symbol": symbol,
                    "wallet": wallet,
                    "notional": notional,
                    "mmr": brackets[k][1],
                    "cum": cum,
                    "maintenance_margin": mm_asset * asset_price,
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
        cp["futures_margin_call"],
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
        call = cp["futures_margin_call"]
        coinm.append(
            futures_wallet(
                f"coinm:{coin}", coin_balance[coin] * pc, upnl_coin * pc, mm_usd, im_usd, call
            )
        )
        mm_coin = sum(g["mm_asset"] for g in members)
        for g in members:
            others = coin_balance[coin] + upnl_coin - g["upnl_asset"] - (mm_coin - g["mm_asset"])
            g["pos"]["liquidation_price"] = inverse_liquidation_price(
                g["brackets"], g["size"], g["entry"], others
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
                g["brackets"], g["size"], g["entry"], m
            )
        else:
            pos["liquidation_price"] = linear_liquidation_price(
                g["brackets"], g["size"], g["entry"], g["asset_price"], m * g["asset_price"]
            )
    for w in coinm:
        status = worse(status, w["status"])

    # Cross margin (spot and loans).
    call, liq = cp["cross_margin_call"], cp["cross_margin_liquidation"]
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
