"""The pure-Python reference of Binance's portfolio margin (docs/BINANCE.md §1).

Written to be read, not to be fast: one function per step of the formula, in its
order. It is the oracle the engine's ``model = "binance_pm"`` is tested against
(relative 1e-9); ``reference.margin`` dispatches here when the profile's model is
``binance_pm``, so one entry point serves both models.

    from pmengine import reference
    raw = {**reference.default_profile().raw, "model": "binance_pm"}
    result = reference.margin(portfolio_dict, market_dict, reference.load_profile(raw))

For every asset ``a`` the account touches, with index price ``P_a``::

    W_a = balance_a − borrowed_a − interest_a      net wallet (units of a)
    v_a = W_a + U_a                                 U_a: UPnL of the contracts settling in a
    E = Σ v_a·P_a          E_adj = Σ collateral_a(v_a·P_a)
    MM = Σ_UM MM_p·P_settle + Σ_CM MM_p·P_coin + Σ_a L_a·loan_mmr(λ_a)·P_a
    uniMMR = E_adj / MM

Money is USD unless a unit is given.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from pmengine import reference
from pmengine.errors import InvalidInputError, ProfileError
from pmengine.reference import classic as reference_classic

MODEL = "binance_pm"


@dataclass
class Asset:
    """One asset of the account; quantities in units of the asset."""

    price: float  # P_a, USD per unit (market.prices)
    balance: float = 0.0  # what the wallets hold (borrowed coins included)
    owed: float = 0.0  # borrowed + interest of its margin loan
    borrowed: float = 0.0
    upnl: float = 0.0  # U_a: UPnL of the contracts settling in the asset
    positions_mm: float = 0.0  # MM of the contracts margined in the asset

    @property
    def wallet(self) -> float:
        """W_a: the net wallet, a loan netted exactly as a negative balance."""
        return self.balance - self.owed

    @property
    def value(self) -> float:
        """v_a = W_a + U_a."""
        return self.wallet + self.upnl


# --------------------------------------------------------------------------------------
# The book: every asset the account touches, in first-touch order
# --------------------------------------------------------------------------------------


def binance_params(p: reference.Profile) -> reference.Binance:
    """The profile's ``[binance]`` table (loan leverage and MM rates)."""
    if p.binance is None:  # load_profile refuses binance_pm without it; a hand-built profile
        raise ProfileError.at(
            "binance", 'required under model = "binance_pm" (loan leverage and MM rates)', "missing"
        )
    return p.binance


def collateral_bands(a: str, p: reference.Profile) -> list[tuple[float, float]]:
    """The marginal bands of ``assets.<a>.collateral``, else ``[binance]
    default_collateral_rate`` as one flat band, else a ProfileError (reading)."""
    tiers = p.collateral.get(a, [])
    if tiers:
        return tiers
    rate = binance_params(p).default_collateral_rate
    if rate is None:
        raise ProfileError.at(
            f"assets.{a}.collateral",
            f"no collateral rate for {a}: give its bands, or [binance] default_collateral_rate",
        )
    return [(rate, math.inf)]


def touch(
    assets: dict[str, Asset], market: dict[str, Any], p: reference.Profile, a: str, at: str
) -> Asset:
    """The asset ``a``, added the first time the account touches it: its index price, and
    a collateral rate it must have (every asset of the account enters its equity)."""
    if a not in assets:
        price = reference.price(market, a, at)
        collateral_bands(a, p)
        assets[a] = Asset(price=price)
    return assets[a]


def wallets(
    portfolio: dict[str, Any],
    market: dict[str, Any],
    p: reference.Profile,
    owed: dict[str, tuple[float, float]],
) -> dict[str, Asset]:
    """Balances, then margin loans: an asset only in ``loans`` is an asset of the account."""
    assets: dict[str, Asset] = {}
    for a, q in portfolio.get("balances", {}).items():
        x = touch(assets, market, p, a, f"balances.{a}")
        x.balance += reference.finite(q, f"balances.{a}")
    for a, (borrowed, interest) in owed.items():
        x = touch(assets, market, p, a, f"loans.{a}")
        x.borrowed += borrowed
        x.owed += borrowed + interest
    return assets


# --------------------------------------------------------------------------------------
# Contracts: each position pays its own bracket MM (hedge-mode rows never netted)
# --------------------------------------------------------------------------------------


def leverage(pos: dict[str, Any], at: str, p: reference.Profile) -> float:
    """The position's ``leverage``, else ``[classic] default_leverage`` (no cap here)."""
    if "leverage" in pos:
        return reference.positive(pos["leverage"], f"{at}.leverage")
    return reference_classic.classic_table(p)["default_leverage"]


def bracketed(
    i: int,
    pos: dict[str, Any],
    p: reference.Profile,
    kind: str,
    asset: str,
    size: float,
    upnl: float,
) -> dict[str, Any]:
    """A position's row: ``size`` (notional in the margin asset, or coin quantity) on its
    ``[brackets.<kind>]`` table; MM = max(0, size·mmr − cum), IM = size / leverage, all in
    units of ``asset``."""
    table = reference_classic.brackets_for(p, pos["symbol"], kind)
    k, mm = reference_classic.maintenance(table, size)
    lev = leverage(pos, f"positions[{i}]", p)
    return {
        "index": i,
        "symbol": pos["symbol"],
        "asset": asset,
        "notional": size,
        "bracket": k + 1,
        "mmr": table[k][1],
        "cum": table[k][3],
        "maintenance_margin": mm,
        "initial_margin": size / lev,
        "upnl": upnl,
        "leverage": lev,
    }


def linear_contract(
    i: int,
    pos: dict[str, Any],
    market: dict[str, Any],
    assets: dict[str, Asset],
    p: reference.Profile,
) -> dict[str, Any]:
    """USDⓈ-M: mark m (``market.marks``, else P_underlying / P_settle), notional
    N = |qty·m| in the margin asset; UPnL qty·(m − entry) in the margin asset."""
    at = f"positions[{i}]"
    b, s = pos["underlying"], pos.get("settle", "USDT")
    pb, ps = assets[b].price, assets[s].price
    q = reference.finite(pos["qty"], f"{at}.qty")
    e = reference.positive(pos["entry_price"], f"{at}.entry_price")
    m = market.get("marks", {}).get(pos["symbol"], pb / ps)
    return bracketed(i, pos, p, "usdm", s, abs(q * m), q * (m - e))


def inverse_contract(
    i: int,
    pos: dict[str, Any],
    market: dict[str, Any],
    assets: dict[str, Asset],
    p: reference.Profile,
) -> dict[str, Any]:
    """COIN-M: mark m (``market.marks``, else P_underlying), quantity
    q = |contracts·contract_size / m| in coin, bracketed on q (reading); UPnL
    contracts·contract_size·(1/entry − 1/m) in coin."""
    at = f"positions[{i}]"
    b = pos["underlying"]
    pb = assets[b].price
    c = reference.positive(pos["contract_size"], f"{at}.contract_size")
    n = reference.finite(pos["contracts"], f"{at}.contracts")
    e = reference.positive(pos["entry_price"], f"{at}.entry_price")
    m = market.get("marks", {}).get(pos["symbol"], pb)
    return bracketed(i, pos, p, "coinm", b, abs(n * c / m), n * c * (1 / e - 1 / m))


def contracts(
    portfolio: dict[str, Any],
    market: dict[str, Any],
    assets: dict[str, Asset],
    p: reference.Profile,
) -> list[dict[str, Any]]:
    """Every position's row, in portfolio order; UPnL and MM booked to its asset."""
    rows = []
    for i, pos in enumerate(portfolio.get("positions", [])):
        at = f"positions[{i}]"
        kind = pos.get("type")
        b, s = reference.underlying_and_settle(pos, at)
        touch(assets, market, p, b, f"{at}.underlying")
        touch(assets, market, p, s, f"{at}.settle")
        if kind == "linear":
            row = linear_contract(i, pos, market, assets, p)
        elif kind == "inverse":
            row = inverse_contract(i, pos, market, assets, p)
        elif kind == "option":
            # Binance's published formula has none (PM Pro SPAN is unpublished).
            raise InvalidInputError.at(
                f"{at}.type",
                f"binance_pm has no option formula (Binance publishes none), got option {pos['symbol']}",
            )
        else:
            raise InvalidInputError.at(
                f"{at}.type", f'must be "linear" or "inverse" under binance_pm, got {kind!r}'
            )
        assets[row["asset"]].upnl += row["upnl"]
        assets[row["asset"]].positions_mm += row["maintenance_margin"]
        rows.append(row)
    return rows


# --------------------------------------------------------------------------------------
# Margin loans, collateral
# --------------------------------------------------------------------------------------


def loan_leverage(a: str, p: reference.Profile) -> float:
    """λ_a: ``assets.<a>.loan_leverage``, else ``[binance] loan_leverage``."""
    return p.loan_leverage.get(a, binance_params(p).loan_leverage)


def loan(a: str, x: Asset, p: reference.Profile) -> tuple[float, float]:
    """``(L_a, MM_loan)`` in units: L_a = max(borrowed + interest, −W_a), what the loan
    owes and any negative balance; MM_loan = L_a · loan_mmr(λ_a)."""
    owed = max(x.owed, -x.wallet)
    if owed == 0:
        return 0.0, 0.0
    return owed, owed * binance_params(p).loan_mmr[loan_leverage(a, p)]


def loan_initial_margin(a: str, x: Asset, p: reference.Profile) -> float:
    """IM of the loan in units: (borrowed + max(0, −balance)) / (λ_a − 1)."""
    principal = x.borrowed + max(0.0, -x.balance)
    return principal / (loan_leverage(a, p) - 1) if principal > 0 else 0.0


def collateral_value(a: str, usd: float, p: reference.Profile) -> float:
    """collateral_a(x): x when negative (a deficit counts in full), else the asset's
    marginal bands."""
    return reference.adjusted_value(usd, collateral_bands(a, p))


# --------------------------------------------------------------------------------------
# The account
# --------------------------------------------------------------------------------------


def status(equity: float, uni_mmr: float, assets: dict[str, Asset], p: reference.Profile) -> str:
    """BANKRUPT when actual equity < 0 (or 0 with a negative net wallet), else the ladder."""
    if equity < 0 or (equity == 0 and any(x.wallet < 0 for x in assets.values())):
        return "BANKRUPT"
    return next((name for name, above in p.status[:-1] if uni_mmr > above), p.status[-1][0])


def margin(
    portfolio: dict[str, Any], market: dict[str, Any], profile: reference.Profile | None = None
) -> dict[str, Any]:
    """Binance's uniMMR of one account: the result dict of ``reference.margin`` (``scan``,
    ``systemic``, ``offset_credit`` 0, ``groups`` empty) plus ``model``, ``positions`` and
    ``assets`` (docs/BINANCE.md)."""
    p = profile or reference.default_profile()
    binance_params(p)
    owed = reference.margin_loans(portfolio)
    reference.check_market(market)
    assets = wallets(portfolio, market, p, owed)
    rows = contracts(portfolio, market, assets, p)

    per_asset: dict[str, dict[str, float]] = {}
    loan_im = 0.0
    for a, x in assets.items():
        owed_a, loan_mm = loan(a, x, p)
        loan_im += loan_initial_margin(a, x, p) * x.price
        per_asset[a] = {
            "v": x.value,
            "equity": x.value * x.price,
            "collateral_value": collateral_value(a, x.value * x.price, p),
            "loan": owed_a,
            "loan_margin": loan_mm,
            "maintenance_margin": x.positions_mm + loan_mm,
        }

    equity = sum(r["equity"] for r in per_asset.values())
    adjusted = sum(r["collateral_value"] for r in per_asset.values())
    borrow_margin = sum(r["loan_margin"] * assets[a].price for a, r in per_asset.items())
    mm = sum(r["maintenance_margin"] * assets[a].price for a, r in per_asset.items())
    if mm < reference.MM_DUST:
        mm = 0.0
    im = sum(r["initial_margin"] * assets[r["asset"]].price for r in rows) + loan_im
    if mm > 0:
        uni_mmr = adjusted / mm
    else:
        uni_mmr = math.inf if adjusted >= 0 else -math.inf
    return {
        "equity": equity,
        "adjusted_equity": adjusted,
        "maintenance_margin": mm,
        "initial_margin": im,
        "available": adjusted - im,
        "uni_mmr": uni_mmr if math.isfinite(uni_mmr) else None,
        "status": status(equity, uni_mmr, assets, p),
        "scan": 0.0,
        "systemic": 0.0,
        "offset_credit": 0.0,
        "borrow_margin": borrow_margin,
        "groups": {},
        "model": MODEL,
        "positions": rows,
        "assets": per_asset,
    }
