"""A book margined in parts of accounts, its bad rows named by their rows in
its files: what a scan of files out of account order and the distributed
scans share.

A part's rows carry their row numbers in their file (``ROW``); a part is
margined sorted by account (stably: each account's rows in file order, the
order the engine reads fastest, with the same result), and the
``positions[k]`` or ``balances[k]`` an error names by the part's row ``k`` is
made the row's number in its file, whether it is raised or collected.
"""

from __future__ import annotations

import re
from typing import Any

from pmengine.errors import PmError

#: The column a part keeps each row's number in its file under.
ROW = "__pmengine_row"


def ranges(ids: Any, accounts_per_part: int) -> list[tuple[int, int]]:
    """The ``(first, last)`` account id of each part of ``accounts_per_part``
    consecutive ids of ``ids`` (distinct, ascending), parts as even as they go."""
    import numpy as np

    n = max(1, -(-len(ids) // max(1, accounts_per_part)))
    return [(int(p[0]), int(p[-1])) for p in np.array_split(ids, n) if len(p)]


def numbered(table: Any, rows: Any) -> Any:
    """``table`` with its rows' numbers in their file, ``rows``, as ``ROW``."""
    import pyarrow as pa

    return table.append_column(ROW, pa.array(rows, pa.int64()))


def by_account(table: Any) -> tuple[Any, Any]:
    """``table`` (rows with their numbers in ``ROW``) sorted by account, stably,
    without ``ROW``, and the rows' numbers in that order."""
    import numpy as np

    table = table.take(np.argsort(table.column("account").to_numpy(), kind="stable"))
    return table.drop_columns([ROW]), table.column(ROW).to_numpy()


def accounts_in(f: Any, name: str, first: int, last: int) -> Any:
    """The rows of the Parquet file ``f`` (the book's ``name`` table) whose
    account is in ``[first, last]``, in file order, with their numbers in
    ``ROW``; a row group whose statistics put its accounts outside is not read."""
    import numpy as np
    import pyarrow as pa

    from pmengine.book.batch import account_ids

    md = f.metadata
    column = next((j for j in range(md.num_columns) if md.schema.column(j).path == "account"), None)
    pieces, at = [], 0
    for i in range(f.num_row_groups):
        n = md.row_group(i).num_rows
        stats = md.row_group(i).column(column).statistics if column is not None else None
        if stats is not None and stats.has_min_max and (stats.max < first or stats.min > last):
            at += n
            continue
        group = f.read_row_group(i)
        ids = account_ids(group, name, at)
        keep = np.flatnonzero((ids >= first) & (ids <= last))
        pieces.append(numbered(group.take(keep), at + keep))
        at += n
    if not pieces:
        return numbered(f.schema_arrow.empty_table(), [])
    return pa.concat_tables(pieces)


def margin(engine: Any, tables: dict[str, Any], market: Any, **options: Any) -> Any:
    """``engine.margin_batch`` of a part: ``tables`` maps ``positions`` (and
    ``balances``) to their rows with ``ROW``; a bad row is named by its row in
    its file, raised or collected."""
    import pyarrow as pa

    parts = {name: by_account(t) for name, t in tables.items()}
    rows = {name: numbers for name, (_, numbers) in parts.items()}
    p = parts["positions"][0]
    b = parts["balances"][0] if "balances" in parts else None
    try:
        r = engine.margin_batch(p, b, market, **options)
    except PmError as e:
        raise type(e)(in_files(str(e), rows), field=in_files(e.field, rows), code=e.code) from None
    if r.column("error").null_count == r.num_rows:
        return r
    i = r.schema.get_field_index("error")
    texts = [None if t is None else in_files(t, rows) for t in r.column("error").to_pylist()]
    return r.set_column(i, r.schema.field(i), pa.array(texts, r.schema.field(i).type))


def in_files(text: str, rows: dict[str, Any]) -> str:
    """``text`` (an error's field, or its message, which starts with its field)
    with the ``positions[k]`` or ``balances[k]`` it starts with made the row's
    number in its file (``rows[name][k]``); the rest is left as it is (a name
    may look like a row)."""

    def renumbered(m: re.Match[str]) -> str:
        numbers = rows.get(m.group(1))
        k = int(m.group(2))
        return (
            f"{m.group(1)}[{numbers[k]}]"
            if numbers is not None and k < len(numbers)
            else m.group(0)
        )

    return re.sub(r"^(positions|balances)\[(\d+)\]", renumbered, text, count=1)
