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

Everything is drawn with NumPy and built as Arrow columns (dictionary-encoded
strings over fixed dictionaries: every symbol the book can hold), block by
block of ``BLOCK`` accounts, each block from its own stream of the seed: the
same seed gives the same book, whether it is built at once
(``generate_book``) or block by block (``iter_book``, what ``pmengine gen``
writes, so memory holds one block whatever the book's size). No row becomes
a Python object.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from importlib import resources
from typing import Any

UNDERLYINGS = ("BTC", "ETH", "SOL", "BNB")
OPTION_UNDERLYINGS = ("BTC", "ETH")
EXPIRIES = ("2026-12-04T08:00:00Z", "2026-12-25T08:00:00Z", "2027-03-26T08:00:00Z")
STYLES = ("hedge", "spread", "leveraged", "directional")
#: Accounts per block: each block is drawn from its own stream of the seed.
BLOCK = 1 << 16
#: Option strikes: moneyness 0.80, 0.85, ..., 1.20 of the index, on a 1,000 (BTC) or 50 (ETH) grid.
MONEYNESS = tuple(0.8 + 0.05 * i for i in range(9))
CONTRACTS = (*(f"{x}USDT" for x in UNDERLYINGS), "BTCUSD_PERP", "ETHUSD_PERP", "BTCUSDT_261225")


def market_dict() -> dict[str, Any]:
    """The bundled market snapshot (``pmengine/examples/market.json``)."""
    text = resources.files("pmengine").joinpath("examples/market.json").read_text()
    data: dict[str, Any] = json.loads(text)
    return data


def _strike(price: float, m: float, underlying: int) -> float:
    step = 1000.0 if underlying == 0 else 50.0
    return float(round(price * m / step) * step)


def _option_symbols(prices: dict[str, float]) -> list[str]:
    """Every option series, coded ``((underlying·9 + moneyness)·3 + expiry)·2 + put``."""
    out = []
    for ui, u in enumerate(OPTION_UNDERLYINGS):
        for m in MONEYNESS:
            strike = _strike(prices[u], m, ui)
            for e in EXPIRIES:
                tag = e[2:10].replace("-", "")
                out += [f"{u}-{tag}-{int(strike)}-C", f"{u}-{tag}-{int(strike)}-P"]
    return out


def generate_book(
    accounts: int,
    *,
    positions_per_account: int = 8,
    option_share: float = 0.1,
    seed: int = 0,
) -> tuple[Any, Any]:
    """``(positions, balances)`` as ``pyarrow.Table``; account ids ``0..accounts-1``,
    ``positions_per_account`` rows each, of which about ``option_share`` are options."""
    import pyarrow as pa  # type: ignore[import-untyped]

    blocks = list(
        iter_book(
            accounts,
            positions_per_account=positions_per_account,
            option_share=option_share,
            seed=seed,
        )
    )
    if not blocks:
        blocks = [_block(0, 0, positions_per_account, option_share, seed)]
    positions = pa.Table.from_batches([p for p, _ in blocks]).combine_chunks()
    balances = pa.Table.from_batches([b for _, b in blocks]).combine_chunks()
    return positions, balances


def iter_book(
    accounts: int,
    *,
    positions_per_account: int = 8,
    option_share: float = 0.1,
    seed: int = 0,
) -> Iterator[tuple[Any, Any]]:
    """The book of ``generate_book`` as ``(positions, balances)`` record batches,
    one per block of ``BLOCK`` accounts, rows in ascending account order."""
    _check(accounts, positions_per_account, option_share, seed)
    return _blocks(accounts, positions_per_account, option_share, seed)


def _blocks(accounts: int, k: int, option_share: float, seed: int) -> Iterator[tuple[Any, Any]]:
    for start in range(0, accounts, BLOCK):
        yield _block(start, min(BLOCK, accounts - start), k, option_share, seed)


def _check(accounts: int, positions_per_account: int, option_share: float, seed: int) -> None:
    """A book's sizes, option share and seed, each named when out of range
    (``InvalidInputError``): checked before anything is drawn or written."""
    from pmengine.book.batch import at_least
    from pmengine.errors import InvalidInputError

    for name, value in [
        ("accounts", accounts),
        ("positions_per_account", positions_per_account),
        ("seed", seed),
    ]:
        at_least(name, value, 0)
    if not 0.0 <= option_share <= 1.0:  # NaN too
        raise InvalidInputError.at(
            "option_share", f"must be >= 0 and <= 1, got {option_share}", "out_of_range"
        )


def write_book(
    directory: Any,
    accounts: int,
    *,
    positions_per_account: int = 8,
    option_share: float = 0.1,
    seed: int = 0,
) -> tuple[int, int]:
    """Write ``generate_book``'s book to ``positions.parquet`` and
    ``balances.parquet`` in ``directory`` (made if need be), block by block (one
    row group each; a thread writes a block while the next is drawn). Returns
    the row counts (positions, balances)."""
    from concurrent.futures import ThreadPoolExecutor
    from pathlib import Path

    import pyarrow.parquet as pq  # type: ignore[import-untyped]

    _check(accounts, positions_per_account, option_share, seed)
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    first = _block(0, 0, positions_per_account, option_share, seed)
    # Strings stay dictionary-encoded; numbers are not (random floats do not repeat).
    # Statistics for the account column alone, by which a distributed scan's
    # workers skip row groups (book.parts.accounts_in): on every column they
    # took a quarter of the writing.
    options = {
        "compression": "lz4",
        "use_dictionary": ["type", "symbol", "underlying", "kind", "asset"],
        "write_statistics": ["account"],
    }
    rows = [0, 0]
    with (
        pq.ParquetWriter(out / "positions.parquet", first[0].schema, **options) as pw,
        pq.ParquetWriter(out / "balances.parquet", first[1].schema, **options) as bw,
        ThreadPoolExecutor(1) as pool,
    ):

        def write(p: Any, b: Any) -> None:
            pw.write_batch(p, row_group_size=p.num_rows or None)
            bw.write_batch(b, row_group_size=b.num_rows or None)
            rows[0] += p.num_rows
            rows[1] += b.num_rows

        pending = None
        for p, b in _blocks(accounts, positions_per_account, option_share, seed):  # checked above
            if pending is not None:
                pending.result()
            pending = pool.submit(write, p, b)
        if pending is not None:
            pending.result()
        if accounts == 0:
            write(*first)
    return rows[0], rows[1]


def _block(start: int, n: int, k: int, option_share: float, seed: int) -> tuple[Any, Any]:
    """Accounts ``start .. start+n-1`` (block ``start // BLOCK`` of the seed)."""
    import numpy as np
    import pyarrow as pa

    from pmengine.book.batch import epoch_seconds

    m = market_dict()
    prices = m["prices"]
    rng = np.random.default_rng([seed, start // BLOCK])
    rows = n * k
    account = np.repeat(np.arange(start, start + n, dtype=np.int64), k)
    style = rng.integers(0, len(STYLES), n)
    draw = rng.random((8, rows))

    # Instruments: underlying, type, then symbol.
    u = np.searchsorted(np.array([0.45, 0.75, 0.9]), draw[0], side="right")
    is_option = draw[1] < option_share
    u = np.where(is_option, u % 2, u)  # options on BTC and ETH only
    is_inverse = ~is_option & (u < 2) & (draw[2] < 0.15)
    quarterly = ~is_option & ~is_inverse & (u == 0) & (draw[2] >= 0.15) & (draw[2] < 0.35)
    type_code = np.where(is_option, 2, np.where(is_inverse, 1, 0)).astype(np.int32)
    index_price = np.array([prices[x] for x in UNDERLYINGS], dtype=np.float64)
    price = index_price[u]

    # Sizes: a USD notional per position; in a spread every odd row offsets the row before.
    notional = np.exp(np.log(20_000) + rng.standard_normal(rows))
    sign = np.where(draw[3] < 0.5, -1.0, 1.0)
    spread = np.repeat(style == 1, k) & (np.arange(rows) % 2 == 1)
    sign[spread] = -sign[np.flatnonzero(spread) - 1]
    hedge = np.repeat(style == 0, k)
    sign[hedge & ~is_option] = -1.0  # short contracts against long spot
    qty = sign * notional / price

    # Options: one of nine strikes around the index, one of three expiries, call or put.
    mi = (draw[4] * len(MONEYNESS)).astype(np.int64)
    ei = (draw[5] * len(EXPIRIES)).astype(np.int64)
    put = draw[6] < 0.5
    strikes = np.array(
        [
            [_strike(prices[x], mm, ui) for mm in MONEYNESS]
            for ui, x in enumerate(OPTION_UNDERLYINGS)
        ]
    )
    strike = strikes[u % 2, mi]
    qty = np.where(is_option, np.round(qty, 2), qty)

    # Symbols as codes into a fixed dictionary: the contracts, then every option series.
    symbols = [*CONTRACTS, *_option_symbols(prices)]
    series = len(CONTRACTS) + ((u % 2 * len(MONEYNESS) + mi) * len(EXPIRIES) + ei) * 2 + put
    symbol = np.where(is_option, series, np.where(is_inverse, 4 + u, np.where(quarterly, 6, u)))

    entry = price * (0.9 + 0.2 * draw[7])
    nan = np.full(rows, np.nan)
    expiries = np.array([epoch_seconds(e) for e in EXPIRIES])

    def dictionary(codes: Any, values: list[str], valid: Any = None) -> Any:
        mask = None if valid is None else ~valid
        return pa.DictionaryArray.from_arrays(
            pa.array(codes.astype(np.int32), pa.int32(), mask=mask), pa.array(values, pa.string())
        )

    positions = pa.record_batch(
        {
            "account": account,
            "type": dictionary(type_code, ["linear", "inverse", "option"]),
            "symbol": dictionary(symbol, symbols),
            "underlying": dictionary(u, list(UNDERLYINGS)),
            "qty": np.where(is_inverse, np.round(qty * price / 100.0), qty),
            "entry_price": np.where(is_option, nan, entry),
            "contract_size": np.where(is_inverse, 100.0, nan),
            "strike": np.where(is_option, strike, nan),
            "expiry": np.where(is_option, expiries[ei], nan),
            "kind": dictionary(put.astype(np.int32), ["call", "put"], valid=is_option),
        }
    )

    # Balances: USDT collateral for all (first, per account), then spot by style.
    gross = np.bincount(account - start, weights=notional, minlength=n)
    collateral = gross * rng.uniform(0.03, 0.6, n)
    first_u = u[::k] if k else np.zeros(n, dtype=np.int64)
    spot_value = np.where(style == 0, gross * 0.5, np.where(style == 2, gross, 0.0))
    has_spot = spot_value > 0
    loan = np.where(style == 2, -0.8 * spot_value, 0.0)
    spot_qty = spot_value / index_price[first_u]
    per_account = 1 + has_spot.astype(np.int64)
    ids = np.arange(start, start + n, dtype=np.int64)
    bal_account = np.repeat(ids, per_account)
    first = np.cumsum(per_account) - per_account  # each account's USDT row
    bal_asset = np.empty(len(bal_account), np.int32)
    bal_qty = np.empty(len(bal_account))
    bal_asset[first] = len(UNDERLYINGS)
    bal_qty[first] = collateral + loan
    spot_rows = first[has_spot] + 1
    bal_asset[spot_rows] = first_u[has_spot]
    bal_qty[spot_rows] = spot_qty[has_spot]
    balances = pa.record_batch(
        {
            "account": bal_account,
            "asset": dictionary(bal_asset, [*UNDERLYINGS, "USDT"]),
            "qty": bal_qty,
        }
    )
    return positions, balances
