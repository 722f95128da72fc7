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
A book read as a stream (``margin_stream``, or ``Engine.margin_batch`` given a
``pyarrow.RecordBatchReader``) must come sorted by account instead, and is
margined part by part as it is read.

``to_columns`` turns JSON-shaped portfolios into such columns; it loops in
Python and is meant for tests and small books, not for the fast path.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from pmengine._core import (
    BATCH_BALANCE_COLUMNS,
    BATCH_POSITION_COLUMNS,
    BATCH_RESULT_COLUMNS,
    parse_time,
)

#: The input's columns (the native module's own lists).
POSITION_COLUMNS: tuple[str, ...] = BATCH_POSITION_COLUMNS
BALANCE_COLUMNS: tuple[str, ...] = BATCH_BALANCE_COLUMNS
#: The result's columns, in order (the native module's own list).
RESULT_COLUMNS: tuple[str, ...] = BATCH_RESULT_COLUMNS


def epoch_seconds(t: str | float | int) -> float:
    """ISO-8601 text (no zone: UTC; a bare date: midnight UTC) or epoch seconds,
    read by the core's parser as ``Market`` and ``Portfolio`` read times."""
    return parse_time(t, "expiry")


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


#: Position rows per part of a streamed scan (``margin_stream``).
PART_ROWS = 1 << 20


def _reader(obj: Any) -> Any:
    """A ``pyarrow.RecordBatchReader`` over a reader, a table, a batch or a dict of columns."""
    import pyarrow as pa  # type: ignore[import-untyped]

    if isinstance(obj, pa.RecordBatchReader):
        return obj
    if isinstance(obj, pa.RecordBatch):
        obj = pa.Table.from_batches([obj])
    elif not isinstance(obj, pa.Table):
        obj = pa.table(obj)
    return obj.to_reader()


def account_ids(rows: Any, name: str, at: int) -> Any:
    """The account ids of ``rows`` (a record batch or table of the book's
    ``name`` table, whose first row is the table's row ``at``) as a NumPy
    ``int64`` array, exactly: every id is then compared as an integer (NumPy
    compares a ``uint64`` with an ``int64`` as floats, which merge ids above
    2**53). A column the engine would refuse (not integers, a null, a
    ``uint64`` id above the largest ``int64``) raises ``InvalidInputError`` by
    the engine's field, code and words."""
    import numpy as np
    import pyarrow as pa

    from pmengine.errors import InvalidInputError

    if "account" not in rows.schema.names:
        raise InvalidInputError.at(f"{name}.account", "required column", "missing")
    col = rows.column("account")
    if not pa.types.is_integer(col.type):
        raise InvalidInputError.at(
            f"{name}.account", f"must be integers, got Arrow type {col.type}", "wrong_type"
        )
    if col.null_count:
        r = int(np.flatnonzero(col.is_null().to_numpy(zero_copy_only=False))[0])
        raise InvalidInputError.at(f"{name}[{at + r}].account", "required", "missing")
    ids = col.to_numpy()
    top = np.iinfo(np.int64).max
    if ids.dtype == np.uint64 and len(ids) and ids.max() > top:
        r = int(np.argmax(ids > top))
        raise InvalidInputError.at(
            f"{name}[{at + r}].account",
            f"must be at most {top} (a signed 64-bit integer), got {int(ids[r])}",
            "out_of_range",
        )
    return ids.astype(np.int64, copy=False)


def at_least(field: str, value: Any, least: float) -> None:
    """Refuse ``value`` below ``least`` (or NaN): ``InvalidInputError``
    ``field: must be >= least, got value``, code ``out_of_range``."""
    from pmengine.errors import InvalidInputError

    if not value >= least:
        raise InvalidInputError.at(field, f"must be >= {least}, got {value}", "out_of_range")


def distinct(ids: Any) -> Any:
    """The distinct values of a NumPy array of ids, ascending, by a sort
    (``np.unique`` hashes, and took 10.8 s for 8 M ids where this takes 0.3 s)."""
    import numpy as np

    a = np.sort(ids)
    return a[np.concatenate(([True], a[1:] != a[:-1]))] if len(a) else a


class _Rows:
    """The rows of a stream sorted by account, read batch by batch: ``take(cut)``
    returns (and drops) every buffered row with an account id below ``cut``."""

    def __init__(self, reader: Any, name: str, on_batch: Callable[[int], None] | None) -> None:
        self.reader, self.name, self.on_batch = reader, name, on_batch
        self.pending: list[tuple[Any, Any]] = []  # record batches and their ids, in order
        self.rows = 0  # buffered rows
        self.first = 0  # stream row number of the first buffered row
        self.last_id: int | None = None  # largest id read so far
        self.done = False

    def read(self) -> bool:
        """Buffer the next non-empty batch; False at the end of the stream."""
        import numpy as np

        from pmengine.errors import InvalidInputError

        while not self.done:
            try:
                batch = self.reader.read_next_batch()
            except StopIteration:
                self.done = True
                break
            if batch.num_rows == 0:
                continue
            at = self.first + self.rows
            ids = account_ids(batch, self.name, at)
            prev = np.empty_like(ids)
            prev[0] = ids[0] if self.last_id is None else self.last_id
            prev[1:] = ids[:-1]
            bad = np.flatnonzero(ids < prev)
            if len(bad):
                r = int(bad[0])
                raise InvalidInputError.at(
                    f"{self.name}[{at + r}].account",
                    f"a stream must be sorted by account, got {int(ids[r])} after {int(prev[r])}",
                )
            self.last_id = int(ids[-1])
            self.pending.append((batch, ids))
            self.rows += batch.num_rows
            if self.on_batch is not None:
                self.on_batch(batch.num_rows)
            return True
        return False

    def id_at(self, k: int) -> int:
        """The account id of buffered row ``k`` (below ``rows``)."""
        for _, ids in self.pending:
            if k < len(ids):
                return int(ids[k])
            k -= len(ids)
        raise IndexError(k)

    def above(self, account: int) -> int | None:
        """The smallest buffered account id above ``account``, or ``None``."""
        import numpy as np

        for _, ids in self.pending:
            if ids[-1] > account:
                return int(ids[np.searchsorted(ids, account, side="right")])
        return None

    def fill(self, cut: int | None) -> None:
        """Read until a row with an id of at least ``cut`` is buffered, or the
        end (``cut`` None: to the end)."""
        while (cut is None or self.last_id is None or self.last_id < cut) and self.read():
            pass

    def take(self, cut: int | None) -> tuple[Any, int]:
        """The buffered rows with an id below ``cut`` (``None``: every one) as a
        table, and the first one's row number. Ids are compared as integers:
        a float would merge ids above 2**53."""
        import numpy as np
        import pyarrow as pa

        head: list[Any] = []
        k = 0
        while self.pending:
            batch, ids = self.pending[0]
            n = len(ids) if cut is None or ids[-1] < cut else int(np.searchsorted(ids, cut))
            if n < len(ids):
                if n > 0:
                    head.append(batch.slice(0, n))
                    self.pending[0] = (batch.slice(n), ids[n:])
                k += n
                break
            head.append(batch)
            self.pending.pop(0)
            k += n
        first = self.first
        self.rows -= k
        self.first += k
        return pa.Table.from_batches(head, schema=self.reader.schema), first


def margin_stream(
    engine: Any,
    positions: Any,
    balances: Any,
    market: Any,
    *,
    threads: int | None = None,
    errors: str = "raise",
    output: str = "arrow",
    chunk_size: int = 512,
    part_rows: int = PART_ROWS,
    on_batch: Callable[[int], None] | None = None,
) -> Any:
    """Margin a book read as a stream, part by part: what ``Engine.margin_batch``
    does with a ``pyarrow.RecordBatchReader``.

    The contract: the rows of ``positions`` and of ``balances`` (readers, tables
    or dicts of columns) come in ascending account order, so an account's rows
    are contiguous; they may span record batches (Parquet row groups). A part
    holds the accounts of its first ``part_rows`` position rows but the last
    (whose rows may go on), or one account whole when it has more rows than
    that, with every balance row of its accounts; so memory holds one part and
    a record batch, whatever the book's size. A row
    out of order raises ``InvalidInputError`` naming it (``positions[row].account``).

    Returns a ``pyarrow.RecordBatchReader`` of results (one batch per part, the
    columns of ``Engine.margin_batch``, accounts ascending), computed as it is
    read; with ``output="numpy"``, an iterator of dicts of numpy arrays. The
    rows are those of one ``margin_batch`` call over the whole book, and bad
    rows are named by their row in the stream. ``on_batch(rows)`` is called as
    each position batch is read (progress)."""
    import pyarrow as pa

    kw = {"threads": threads, "errors": errors, "chunk_size": chunk_size}
    pos = _Rows(_reader(positions), "positions", on_batch)
    bal = _Rows(_reader(balances), "balances", None) if balances is not None else None
    if output not in ("arrow", "numpy"):
        from pmengine.errors import InvalidInputError

        raise InvalidInputError.at("output", f'must be "arrow" or "numpy", got {output!r}')

    def parts() -> Iterator[Any]:
        while True:
            # Read past a part's rows; the part ends before the account of its
            # row `part_rows` (whose rows may go on), or, when one account holds
            # more than a part, at the next account read.
            size = max(1, part_rows)
            while pos.rows <= size and pos.read():
                pass
            cut: int | None = None  # None: the rest of the stream
            if pos.rows > size:
                first, cut = pos.id_at(0), pos.id_at(size)
                if cut == first:
                    while (cut := pos.above(first)) is None and pos.read():
                        pass
            p, p0 = pos.take(cut)
            b, b0 = (None, 0)
            if bal is not None:
                bal.fill(cut)
                b, b0 = bal.take(cut)
            if p.num_rows == 0 and (b is None or b.num_rows == 0):
                if cut is None:
                    return
                continue
            yield engine.margin_batch(p, b, market, output=output, first_rows=(p0, b0), **kw)
            if cut is None:
                return

    if output == "numpy":
        return parts()
    schema = _result_schema(engine, market)

    def batches() -> Iterator[Any]:
        for table in parts():
            yield from table.combine_chunks().to_batches()

    return pa.RecordBatchReader.from_batches(schema, batches())


def _result_schema(engine: Any, market: Any) -> Any:
    """The schema of ``margin_batch``'s Arrow result (that of an empty book)."""
    import pyarrow as pa

    empty = pa.table(
        {
            "account": pa.array([], pa.int64()),
            "type": pa.array([], pa.string()),
            "symbol": pa.array([], pa.string()),
            "underlying": pa.array([], pa.string()),
            "qty": pa.array([], pa.float64()),
        }
    )
    return engine.margin_batch(empty, None, market).schema
