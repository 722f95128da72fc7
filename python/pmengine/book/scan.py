"""Scan a book stored in Parquet files: ``pmengine scan``.

Files sorted by account (as ``pmengine gen`` writes them) are streamed: their
row groups are read in order and margined part by part
(``pmengine.book.batch.margin_stream``: an account's rows may span row groups), each
part's results appended to the output file as it is done. Memory holds one
part (about ``part_rows`` position rows and their results) and the next
part's rows, read ahead of it on a thread, whatever the book's size; a first
pass reads the account column alone, row group by row group, to check the
order.

Files in another order are split into parts by account id instead: every
account id is held in memory (8 bytes each), the ids are cut into parts of
``accounts_per_part``, each file's rows are dealt to their parts in one pass,
row group by row group, into a hidden folder beside ``out`` (Arrow with LZ4:
1.25 times the positions file's size for a ``gen`` book, removed at the
end), and each part is
margined with ``Engine.margin_batch`` in account order. A bad row is named by
its row in its file, as a stream names it.

Accounts are independent, so the output is the same whichever way and
whatever the number of parts.

Results are written as they come, each part on a thread while the next is
margined, to a hidden file beside ``out`` (a local path; through a link, its
target) that takes its name only when the scan ends well: a scan that fails
with an error or an interrupt leaves no results file, and an earlier one at
``out`` as it was (a killed process leaves its hidden ``.partial`` file and
``.parts`` folder). A
file that cannot be read part-way is named (``InputFileError``).
"""

from __future__ import annotations

import contextlib
import itertools
import math
import os
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pmengine._core import Engine, Market
from pmengine.book import parts
from pmengine.errors import InputFileError

if TYPE_CHECKING:
    from pmengine._core import _OnError


@dataclass
class ScanSummary:
    """What a scan found: counts by status, total MM (USD), the riskiest accounts."""

    accounts: int = 0
    positions: int = 0
    balances: int = 0
    by_status: dict[str, int] = field(default_factory=dict)
    total_maintenance_margin: float = 0.0
    errors: int = 0
    riskiest: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    out: str = ""

    @property
    def accounts_per_second(self) -> float:
        return self.accounts / self.seconds if self.seconds > 0 else math.inf

    def to_dict(self) -> dict[str, Any]:
        return {
            "accounts": self.accounts,
            "positions": self.positions,
            "balances": self.balances,
            "by_status": dict(sorted(self.by_status.items())),
            "total_maintenance_margin": self.total_maintenance_margin,
            "errors": self.errors,
            "riskiest": self.riskiest,
            "seconds": self.seconds,
            "accounts_per_second": self.accounts_per_second,
            "out": self.out,
        }


class _Named:
    """A Parquet file or dataset whose reads name its path when they fail
    (``InputFileError``, not Arrow's error): a corrupt page found part-way."""

    def __init__(self, path: str | Path, source: Any) -> None:
        self.path, self.source = path, source

    def __getattr__(self, attr: str) -> Any:
        import pyarrow as pa  # type: ignore[import-untyped]

        value = getattr(self.source, attr)
        if not callable(value):
            return value

        def read(*args: Any, **kwargs: Any) -> Any:
            try:
                return value(*args, **kwargs)
            except (OSError, pa.ArrowException) as e:
                raise InputFileError.at(self.path, f"cannot read: {e}") from None

        return read


def _parquet(path: str | Path) -> Any:
    import pyarrow.parquet as pq  # type: ignore[import-untyped]

    try:
        return _Named(path, pq.ParquetFile(str(path)))
    except (OSError, ValueError) as e:
        raise InputFileError.at(path, f"cannot read as Parquet: {e}") from None


def _account_column(f: Any, name: str) -> Iterator[Any]:
    """The account ids of each row group of the book's ``name`` file, read
    alone (``book.batch.account_ids``: int64, its rules named by row)."""
    from pmengine.book.batch import account_ids

    at = 0
    for i in range(f.num_row_groups):
        ids = account_ids(f.read_row_group(i, columns=["account"]), name, at)
        at += len(ids)
        yield ids


def _sorted_accounts(f: Any, name: str) -> int | None:
    """How many accounts the file holds when its account ids never decrease,
    else ``None`` (read column by column, row group by row group); ids that
    are not integers or a null raise ``InvalidInputError`` naming the row of
    the book's ``name`` table."""
    import numpy as np

    last, accounts = None, 0
    for ids in _account_column(f, name):
        if len(ids) == 0:
            continue
        if (last is not None and ids[0] < last) or np.any(ids[1:] < ids[:-1]):
            return None
        accounts += int(np.count_nonzero(ids[1:] != ids[:-1])) + int(last is None or ids[0] != last)
        last = ids[-1]
    return accounts


#: Accounts a part of a book not sorted by account holds, unless told.
ACCOUNTS_PER_PART = 50_000

#: Called as a scan goes: ``(position rows read, position rows in all, accounts done)``.
Progress = Callable[[int, int, int], None]

#: The result columns written with dictionary pages: those whose values repeat
#: (a status, a group's name, an error, a scenario's move). The margins are
#: distinct numbers, which a dictionary only makes larger and slower to write
#: (1 M results: 0.58 s and 68 MB with dictionaries on every column, 0.22 s and
#: 56 MB with these alone).
RESULT_DICTIONARY = ("status", "worst_group", "error", "worst_price_move", "worst_vol_shock")


def _cannot_write(out: str | Path, e: OSError) -> InputFileError:
    """``out`` cannot be written, by ``e``'s number where it has one (Arrow's
    message names the hidden file written beside ``out``)."""
    return InputFileError.at(out, f"cannot write: {os.strerror(e.errno) if e.errno else e}")


def _output_path(out: str | Path) -> Path:
    """The local file ``out`` names (through a link, its target); a URI or a
    folder raises ``InputFileError`` naming ``out``, before any work is done."""
    if "://" in str(out):
        raise InputFileError.at(out, "cannot write: a local path is needed, not a URI")
    path = Path(os.path.realpath(out))
    if path.is_dir():
        raise InputFileError.at(out, "cannot write: Is a directory")
    return path


def _write_results(
    out: str | Path, schema: Any, results: Iterable[Any], each: Callable[[Any], None]
) -> None:
    """Write ``results`` (tables or record batches, in order) to the
    local Parquet file ``out`` (through a symbolic link, to its target), each
    on a thread while the next is made; ``each`` is called on every part, in
    order, in the calling thread. The file is written beside ``out`` under a
    hidden name of its own and renamed to it at the end: when ``results`` raises
    (an error or an interrupt), no file is left and an earlier ``out`` stays as
    it was. A file that cannot be written raises ``InputFileError`` naming
    ``out``."""
    import secrets

    import pyarrow.fs as pafs  # type: ignore[import-untyped]
    import pyarrow.parquet as pq

    path = _output_path(out)
    # Unique to this write (two scans to one file do not share it), and short
    # enough for any name the file system takes.
    partial = path.with_name(f".{path.name[:64]}.{secrets.token_hex(6)}.partial")
    dictionary = [c for c in RESULT_DICTIONARY if c in schema.names]

    def written(write: Callable[[], Any]) -> Any:
        try:
            return write()
        except OSError as e:
            raise _cannot_write(out, e) from None

    def write_of(part: Any) -> Callable[[], Any]:
        return lambda: writer.write(part)

    local = pafs.LocalFileSystem()
    try:
        writer = written(
            lambda: pq.ParquetWriter(
                str(partial), schema, filesystem=local, use_dictionary=dictionary
            )
        )
        try:
            with ThreadPoolExecutor(1) as pool:
                pending: Future[Any] | None = None
                for part in results:
                    if pending is not None:
                        pending.result()
                    pending = pool.submit(written, write_of(part))
                    each(part)
                if pending is not None:
                    pending.result()
        except BaseException:
            with contextlib.suppress(Exception):  # the first error is the one to tell
                writer.close()
            raise
        written(writer.close)
        written(lambda: os.replace(partial, path))
    except BaseException:
        with contextlib.suppress(OSError):
            partial.unlink(missing_ok=True)
        raise


def scan_files(
    engine: Engine,
    positions: str | Path,
    balances: str | Path | None,
    market: Market,
    out: str | Path,
    *,
    threads: int | None = None,
    errors: _OnError = "raise",
    accounts_per_part: int | None = None,
    part_rows: int | None = None,
    top: int = 10,
    on_progress: Progress | None = None,
) -> ScanSummary:
    """Margin every account of the Parquet files into ``out`` (Parquet), part by
    part: streamed when both files are sorted by account, in parts of
    ``part_rows`` position rows (default: ``accounts_per_part`` accounts' worth
    of rows at the file's mean rows an account, or
    ``pmengine.book.batch.PART_ROWS``), else split by account id into parts of
    ``accounts_per_part`` accounts (default ``ACCOUNTS_PER_PART``). ``top``:
    the riskiest accounts the summary lists."""
    from pmengine.book.batch import PART_ROWS, at_least

    _output_path(out)
    for name, value, least in [
        ("accounts_per_part", accounts_per_part, 1),
        ("part_rows", part_rows, 1),
        ("top", top, 0),
    ]:
        if value is not None:
            at_least(name, value, least)
    pf = _parquet(positions)
    bf = _parquet(balances) if balances is not None else None
    if "account" not in pf.schema_arrow.names:
        raise InputFileError.at(positions, "no account column")
    if bf is not None and "account" not in bf.schema_arrow.names:
        raise InputFileError.at(str(balances), "no account column")
    accounts = _sorted_accounts(pf, "positions")
    if accounts is not None and (bf is None or _sorted_accounts(bf, "balances") is not None):
        if part_rows is None and accounts_per_part is not None:
            rows_an_account = pf.metadata.num_rows / max(1, accounts)
            part_rows = max(1, math.ceil(accounts_per_part * rows_an_account))
        return _scan_stream(
            engine, pf, bf, market, out, threads, errors, part_rows or PART_ROWS, top, on_progress
        )
    return _scan_parts(
        engine,
        pf,
        bf,
        market,
        out,
        threads,
        errors,
        accounts_per_part or ACCOUNTS_PER_PART,
        top,
        on_progress,
    )


def _scan_stream(
    engine: Engine,
    pf: Any,
    bf: Any,
    market: Market,
    out: str | Path,
    threads: int | None,
    errors: _OnError,
    part_rows: int,
    top: int,
    on_progress: Progress | None,
) -> ScanSummary:
    import pyarrow as pa

    from pmengine.book.batch import margin_stream

    start = time.perf_counter()
    summary = ScanSummary(out=str(out))
    candidates: list[tuple[float, int, float, str, str | None]] = []
    total = pf.metadata.num_rows
    read = [0]

    def reader(f: Any) -> Any:
        # Row group by row group (ParquetFile.iter_batches keeps what it has read
        # alive to the end of the file, in pyarrow 26), read on a thread ahead of
        # the part being margined: up to a part's share of the file's rows ahead,
        # so the next part's rows are read by the time it starts, not the first
        # row group only.
        ahead = max(1, math.ceil(part_rows * f.metadata.num_rows / max(1, total)))
        sizes = [f.metadata.row_group(i).num_rows for i in range(f.num_row_groups)]

        def batches() -> Iterator[Any]:
            with ThreadPoolExecutor(1) as pool:
                queued: deque[tuple[Future[Any], int]] = deque()
                following, queued_rows = 0, 0  # the next row group to queue; rows queued

                def top_up() -> None:
                    nonlocal following, queued_rows
                    while following < len(sizes) and queued_rows < ahead:
                        queued.append((pool.submit(f.read_row_group, following), sizes[following]))
                        queued_rows += sizes[following]
                        following += 1

                top_up()
                while queued:
                    group, rows = queued.popleft()
                    queued_rows -= rows
                    top_up()
                    yield from group.result().to_batches(max_chunksize=1 << 16)

        return pa.RecordBatchReader.from_batches(f.schema_arrow, batches())

    def counted(rows: int) -> None:
        read[0] += rows

    results = margin_stream(
        engine,
        reader(pf),
        reader(bf) if bf is not None else None,
        market,
        threads=threads,
        errors=errors,
        part_rows=part_rows,
        on_batch=counted,
    )
    summary.positions = total
    summary.balances = bf.metadata.num_rows if bf is not None else 0

    def each(batch: Any) -> None:
        _summarise(summary, pa.Table.from_batches([batch]), candidates, top)
        if on_progress is not None:
            on_progress(read[0], total, summary.accounts)

    _write_results(out, results.schema, results, each)
    _finish(summary, candidates, top, start)
    return summary


def _finish(
    summary: ScanSummary,
    candidates: list[tuple[float, int, float, str, str | None]],
    top: int,
    start: float,
) -> None:
    candidates.sort(key=lambda c: (c[0], c[1]))
    summary.riskiest = [
        {"account": a, "uni_mmr": u, "maintenance_margin": mm, "status": s, "worst_group": g}
        for u, a, mm, s, g in candidates[:top]
    ]
    summary.seconds = time.perf_counter() - start


def _scan_parts(
    engine: Engine,
    pf: Any,
    bf: Any,
    market: Market,
    out: str | Path,
    threads: int | None,
    errors: _OnError,
    accounts_per_part: int,
    top: int,
    on_progress: Progress | None,
) -> ScanSummary:
    """A book not sorted by account: its account ids are gathered (8 bytes
    each), cut into parts of ``accounts_per_part``, and each file's rows are
    dealt to its part in one pass, row group by row group, into files of a
    hidden folder beside ``out`` (each row with its row number in the file);
    then each part is margined, its bad rows named by their rows in the files."""
    import tempfile

    import numpy as np

    from pmengine.book.batch import _result_schema, distinct

    start = time.perf_counter()
    tables = [("positions", pf), *([("balances", bf)] if bf is not None else [])]
    ids = distinct(np.concatenate([_unique_ids(f, name) for name, f in tables]))
    lasts = [last for _, last in parts.ranges(ids, accounts_per_part)]
    summary = ScanSummary(out=str(out))
    candidates: list[tuple[float, int, float, str, str | None]] = []
    total = pf.metadata.num_rows
    place = _output_path(out).parent

    def results(folder: Path) -> Iterator[Any]:
        # Input files raise InputFileError naming them (`_Named`): an OSError here
        # is the hidden folder's, written or read back.
        try:
            for name, f in tables:
                _deal(f, name, np.asarray(lasts), folder)
            for k in range(len(lasts)):
                part = {name: _part(folder, name, k, f.schema_arrow) for name, f in tables}
                summary.positions += part["positions"].num_rows
                summary.balances += part["balances"].num_rows if "balances" in part else 0
                yield parts.margin(engine, part, market, threads=threads, errors=errors)
        except OSError as e:
            raise _cannot_write(out, e) from None

    def each(r: Any) -> None:
        _summarise(summary, r, candidates, top)
        if on_progress is not None:
            on_progress(summary.positions, total, summary.accounts)

    try:
        folder = tempfile.TemporaryDirectory(
            prefix=f".{Path(out).name[:64]}.", suffix=".parts", dir=place
        )
    except OSError as e:
        raise _cannot_write(out, e) from None
    with folder:
        _write_results(out, _result_schema(engine, market), results(Path(folder.name)), each)
    _finish(summary, candidates, top, start)
    return summary


def _unique_ids(f: Any, name: str) -> Any:
    """The distinct account ids of a Parquet file, read row group by row group."""
    import numpy as np

    from pmengine.book.batch import distinct

    seen = [distinct(ids) for ids in _account_column(f, name)]
    return distinct(np.concatenate(seen)) if seen else np.empty(0, dtype=np.int64)


def _deal(f: Any, name: str, lasts: Any, folder: Path) -> None:
    """Deal the rows of the book's ``name`` file to the parts whose last
    account ids are ``lasts`` (ascending): ``folder/{name}-{k}.arrow``, Arrow
    IPC streams (LZ4; written and read back without Parquet's encoding), rows
    in file order, with their row numbers in ``parts.ROW``."""
    import numpy as np
    import pyarrow as pa

    from pmengine.book.batch import account_ids

    options = pa.ipc.IpcWriteOptions(compression="lz4")
    writers: dict[int, Any] = {}
    at = 0
    try:
        for i in range(f.num_row_groups):
            group = f.read_row_group(i)
            n = group.num_rows
            part = np.searchsorted(lasts, account_ids(group, name, at), side="left")
            group = parts.numbered(group, np.arange(at, at + n))
            at += n
            # By part, each part's rows in file order: one take, then a slice a
            # part. Part numbers as 16 bits where they fit: NumPy sorts those
            # stably by radix, not by merging.
            if len(lasts) <= 1 << 16:
                part = part.astype(np.uint16)
            order = np.argsort(part, kind="stable")
            group, part = group.take(order), part[order]
            cuts = [0, *(np.flatnonzero(np.diff(part)) + 1).tolist(), n]
            for lo, hi in itertools.pairwise(cuts):
                if hi == lo:  # an empty row group
                    continue
                k = int(part[lo])
                if k not in writers:
                    path = str(folder / f"{name}-{k}.arrow")
                    writers[k] = pa.ipc.new_stream(path, group.schema, options=options)
                writers[k].write_table(group.slice(lo, hi - lo))
    finally:
        for w in writers.values():
            w.close()


def _part(folder: Path, name: str, k: int, schema: Any) -> Any:
    """Part ``k`` of the book's ``name`` table as dealt, with ``parts.ROW``."""
    import pyarrow as pa

    path = folder / f"{name}-{k}.arrow"
    if not path.exists():
        return parts.numbered(schema.empty_table(), [])
    with pa.ipc.open_stream(str(path)) as reader:
        return reader.read_all()


def _summarise(
    s: ScanSummary,
    r: Any,
    candidates: list[tuple[float, int, float, str, str | None]],
    top: int,
) -> None:
    import numpy as np
    import pyarrow.compute as pc  # type: ignore[import-untyped]

    s.accounts += r.num_rows
    # Counted on the dictionary codes: no status decoded per row.
    for row in pc.value_counts(r.column("status").combine_chunks()).to_pylist():
        s.by_status[row["values"]] = s.by_status.get(row["values"], 0) + row["counts"]
    mm = r.column("maintenance_margin").to_numpy()
    s.total_maintenance_margin += float(np.nansum(mm))
    s.errors += r.num_rows - r.column("error").null_count
    # Riskiest: lowest uniMMR among accounts with a margin (errors are listed apart).
    ratio = r.column("uni_mmr").to_numpy()
    ok = ~np.isnan(ratio) & (mm > 0)
    idx = np.flatnonzero(ok)
    if len(idx) > top:
        idx = idx[np.argpartition(ratio[idx], top)[:top]]
    for i in idx.tolist():
        candidates.append(
            (
                float(ratio[i]),
                int(r.column("account")[i].as_py()),
                float(mm[i]),
                str(r.column("status")[i].as_py()),
                r.column("worst_group")[i].as_py(),
            )
        )
    candidates.sort(key=lambda c: (c[0], c[1]))
    del candidates[top:]
