"""Columnar books for ``Engine.margin_batch``.

A book is two tables, one row per position and one row per wallet balance,
each row tagged with an integer ``account`` id:

positions
    ``account`` (int), ``type`` ("linear" / "inverse" / "option"), ``symbol``,
    ``underlying``, ``qty`` (signed: base units for a linear contract,
    contracts for an inverse one, underlying units for an option), and as the
    type needs them ``entry_price`` (settle units; USD for inverse),
    ``contract_size`` (USD per contract), ``strike`` (settle units), ``expiry``
    (seconds since the epoch, UTC, or an Arrow timestamp), ``kind`` ("call" /
    "put"), ``settle`` (null: USDT, or the underlying for inverse),
    ``leverage`` (a contract's own; ``binance_pm``'s IM). Null numbers may be NaN.
balances
    ``account`` (int), ``asset``, ``qty`` (asset units, negative: a loan) and,
    optionally, a margin loan in that asset: ``borrowed`` and ``interest``
    (asset units, ≥ 0; docs/BINANCE.md).

Rows need not be sorted or contiguous; an account exists through its rows.
The result has one row per account in ascending id (see ``RESULT_COLUMNS``).

``to_columns`` turns JSON-shaped portfolios into such columns; it loops in
Python and is meant for tests and small books, not for the fast path.
"""

from __future__ import annotations

import datetime as _dt
import math
from collections.abc import Iterable, Mapping
from typing import Any

from pmengine._core import BATCH_BALANCE_COLUMNS, BATCH_POSITION_COLUMNS, BATCH_RESULT_COLUMNS

#: The input's columns (the native module's own lists).
POSITION_COLUMNS: tuple[str, ...] = BATCH_POSITION_COLUMNS
BALANCE_COLUMNS: tuple[str, ...] = BATCH_BALANCE_COLUMNS
#: The result's columns, in order (the native module's own list).
RESULT_COLUMNS: tuple[str, ...] = BATCH_RESULT_COLUMNS


def epoch_seconds(t: str | float | int) -> float:
    """ISO-8601 text (no zone: UTC; a bare date: midnight UTC) or epoch seconds."""
    if isinstance(t, int | float):
        return float(t)
    d = _dt.datetime.fromisoformat(t.strip())
    if d.tzinfo is None:
        d = d.replace(tzinfo=_dt.UTC)
    return d.timestamp()


def to_columns(
    accounts: Iterable[tuple[int, Mapping[str, Any]]],
) -> tuple[dict[str, list[Any]], dict[str, list[Any]]]:
    """Positions and balances columns (lists) of ``(account id, portfolio dict)``
    pairs in the portfolio JSON format, rows in each portfolio's order. Pass them
    through ``numpy.asarray`` or ``pyarrow.table`` before ``margin_batch``."""
    pos: dict[str, list[Any]] = {c: [] for c in POSITION_COLUMNS}
    bal: dict[str, list[Any]] = {c: [] for c in BALANCE_COLUMNS}
    nan = math.nan
    for account, p in accounts:
        loans = p.get("loans") or {}
        balances = p.get("balances") or {}
        # One row per asset: its balance and its loan (a loan-only asset holds 0).
        for asset in [*balances, *(a for a in loans if a not in balances)]:
            loan = loans.get(asset, {})
            bal["account"].append(account)
            bal["asset"].append(asset)
            bal["qty"].append(float(balances.get(asset, 0.0)))
            bal["borrowed"].append(float(loan.get("borrowed", 0.0)))
            bal["interest"].append(float(loan.get("interest", 0.0)))
        for x in p.get("positions") or []:
            inverse = x["type"] == "inverse"
            row = {
                "account": account,
                "type": x["type"],
                "symbol": x["symbol"],
                "underlying": x["underlying"],
                "settle": x.get("settle"),
                "qty": float(x["contracts"] if inverse else x["qty"]),
                "entry_price": float(x.get("entry_price", nan)),
                "contract_size": float(x.get("contract_size", nan)),
                "strike": float(x.get("strike", nan)),
                "expiry": epoch_seconds(x["expiry"]) if "expiry" in x else nan,
                "kind": x.get("kind"),
                "leverage": float(x.get("leverage", nan)),
            }
            for c in POSITION_COLUMNS:
                pos[c].append(row[c])
    return pos, bal
