"""A seeded synthetic book for demos and benchmarks (``pmengine gen``).

Accounts on the bundled market (``examples/market.json``): linear perpetuals
and a quarterly future, inverse perpetuals, BTC and ETH options on a strike
grid and three expiries, USDT collateral, and per account one of these
styles:

- ``hedge``: long spot against the account's short contracts (cash and carry);
- ``spread``: every second position offsets the one before it (calendar and
  cross-asset spreads, partly hedged);
- ``leveraged``: long spot financed by a USDT loan, plus directional contracts;
- ``directional``: contracts on USDT collateral.

Everything is drawn with NumPy from one seed and built as Arrow columns
(dictionary-encoded strings), so a million rows take well under a second
and no row becomes a Python object. Same seed, same book.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

UNDERLYINGS = ("BTC", "ETH", "SOL", "BNB")
OPTION_UNDERLYINGS = ("BTC", "ETH")
EXPIRIES = ("2026-12-04T08:00:00Z", "2026-12-25T08:00:00Z", "2027-03-26T08:00:00Z")
STYLES = ("hedge", "spread", "leveraged", "directional")


def market_dict() -> dict[str, Any]:
    """The bundled market snapshot (``pmengine/examples/market.json``)."""
    text = resources.files("pmengine").joinpath("examples/market.json").read_text()
    data: dict[str, Any] = json.loads(text)
    return data


def generate_book(
    accounts: int,
    *,
    positions_per_account: int = 8,
    option_share: float = 0.1,
    seed: int = 0,
) -> tuple[Any, Any]:
    """``(positions, balances)`` as ``pyarrow.Table``; account ids ``0..accounts-1``,
    ``positions_per_account`` rows each, of which about ``option_share`` are options."""
    import numpy as np
    import pyarrow as pa  # type: ignore[import-untyped]

    from pmengine.batch import epoch_seconds

    m = market_dict()
    prices = m["prices"]
    rng = np.random.default_rng(seed)
    n, k = accounts, positions_per_account
    rows = n * k
    account = np.repeat(np.arange(n, dtype=np.int64), k)
    style = rng.integers(0, len(STYLES), n)

    # Instruments: underlying, type, then symbol.
    u = rng.choice(len(UNDERLYINGS), size=rows, p=[0.45, 0.3, 0.15, 0.1])
    is_option = rng.random(rows) < option_share
    u = np.where(is_option, u % 2, u)  # options on BTC and ETH only
    is_inverse = ~is_option & (u < 2) & (rng.random(rows) < 0.15)
    quarterly = ~is_option & ~is_inverse & (u == 0) & (rng.random(rows) < 0.2)
    type_code = np.where(is_option, 2, np.where(is_inverse, 1, 0)).astype(np.int32)
    price = np.array([prices[x] for x in UNDERLYINGS])[u]

    # Sizes: a USD notional per position; in a spread every odd row offsets the row before.
    notional = np.exp(rng.normal(np.log(20_000), 1.0, rows))
    sign = np.where(rng.random(rows) < 0.5, -1.0, 1.0)
    spread = np.repeat(style == 1, k) & (np.arange(rows) % 2 == 1)
    sign[spread] = -sign[np.flatnonzero(spread) - 1]
    hedge = np.repeat(style == 0, k)
    sign[hedge & ~is_option] = -1.0  # short contracts against long spot
    qty = sign * notional / price

    # Options: strike on a 5 % grid around the index, one of three expiries.
    moneyness = 0.8 + 0.05 * rng.integers(0, 9, rows)
    strike_step = np.where(u == 0, 1000.0, 50.0)
    strike = np.round(price * moneyness / strike_step) * strike_step
    expiry_i = rng.integers(0, len(EXPIRIES), rows)
    call = rng.random(rows) < 0.5
    qty = np.where(is_option, np.round(qty, 2), qty)

    # Symbols as dictionary codes: perps and inverse per underlying, one quarterly,
    # then every option series that occurs.
    symbols = [f"{x}USDT" for x in UNDERLYINGS] + ["BTCUSD_PERP", "ETHUSD_PERP", "BTCUSDT_261225"]
    symbol = np.where(is_inverse, 4 + u, np.where(quarterly, 6, u)).astype(np.int32)
    opt_rows = np.flatnonzero(is_option)
    if len(opt_rows):
        key = np.stack([u[opt_rows], strike[opt_rows], expiry_i[opt_rows], call[opt_rows]], axis=1)
        series, inverse_idx = np.unique(key, axis=0, return_inverse=True)
        for su, sk, se, sc in series:
            tag = EXPIRIES[int(se)][2:10].replace("-", "")
            symbols.append(f"{UNDERLYINGS[int(su)]}-{tag}-{int(sk)}-{'C' if sc else 'P'}")
        symbol[opt_rows] = 7 + inverse_idx.reshape(-1).astype(np.int32)

    entry = price * rng.uniform(0.9, 1.1, rows)
    nan = np.full(rows, np.nan)
    expiries = np.array([epoch_seconds(e) for e in EXPIRIES])

    def dictionary(codes: Any, values: list[str], valid: Any = None) -> Any:
        mask = None if valid is None else ~valid
        return pa.DictionaryArray.from_arrays(
            pa.array(codes, pa.int32(), mask=mask), pa.array(values, pa.string())
        )

    positions = pa.table(
        {
            "account": account,
            "type": dictionary(type_code, ["linear", "inverse", "option"]),
            "symbol": dictionary(symbol, symbols),
            "underlying": dictionary(u.astype(np.int32), list(UNDERLYINGS)),
            "qty": np.where(is_inverse, np.round(qty * price / 100.0), qty),
            "entry_price": np.where(is_option, nan, entry),
            "contract_size": np.where(is_inverse, 100.0, nan),
            "strike": np.where(is_option, strike, nan),
            "expiry": np.where(is_option, expiries[expiry_i], nan),
            "kind": dictionary(call.astype(np.int32) ^ 1, ["call", "put"], valid=is_option),
        }
    )

    # Balances: USDT collateral for all; spot by style.
    gross = np.bincount(account, weights=notional, minlength=n)
    collateral = gross * rng.uniform(0.03, 0.6, n)
    first_u = u[::k] if k else np.zeros(n, dtype=np.int64)
    spot_asset = first_u.astype(np.int32)
    spot_value = np.where(style == 0, gross * 0.5, np.where(style == 2, gross, 0.0))
    has_spot = spot_value > 0
    loan = np.where(style == 2, -0.8 * spot_value, 0.0)
    assets = [*UNDERLYINGS, "USDT"]
    spot_price = np.array([prices[x] for x in UNDERLYINGS])[first_u]
    bal_account = np.concatenate([np.arange(n), np.flatnonzero(has_spot)])
    bal_asset = np.concatenate([np.full(n, 4, np.int32), spot_asset[has_spot]])
    bal_qty = np.concatenate([collateral + loan, (spot_value / spot_price)[has_spot]])
    order = np.argsort(bal_account, kind="stable")
    balances = pa.table(
        {
            "account": bal_account[order].astype(np.int64),
            "asset": dictionary(bal_asset[order], assets),
            "qty": bal_qty[order],
        }
    )
    return positions, balances
