"""Scans beyond one machine: Ray Data and Dask (extras ``pmengine[ray]``,
``pmengine[dask]``).

A book is a directory (or URI) holding ``positions.parquet`` and, optionally,
``balances.parquet`` in the columns of ``pmengine.book.batch`` (what ``pmengine
gen`` writes). The driver reads the ``account`` column only, cuts the sorted
account ids into parts of ``accounts_per_part`` and hands each part to a
worker, which reads the row groups whose statistics hold that part's
accounts, keeps their rows and margins them with ``Engine.margin_batch``
(``pmengine.book.parts``: a bad row is named by its row in its file). An account's rows always reach one worker, so the
result is exactly the single-machine result (rows in ascending account).
On a cluster the book must be on storage every worker reads (S3, GCS, HDFS,
a shared file system: any path pyarrow opens).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pmengine._core import Engine, Market, RiskParams
from pmengine.book import parts

_ENGINES: dict[str, Engine] = {}


def _params(params: RiskParams | str | None) -> str | None:
    """Parameters travel to workers as text: TOML as given, a RiskParams as JSON."""
    if params is None or isinstance(params, str):
        return params
    import json

    return json.dumps(params.to_dict())


def _engine(params: str | None) -> Engine:
    """One compiled engine per worker process and profile."""
    key = params or ""
    if key not in _ENGINES:
        if params is None:
            _ENGINES[key] = Engine()
        elif params.lstrip().startswith("{"):
            import json

            _ENGINES[key] = Engine(RiskParams.from_dict(json.loads(params)))
        else:
            _ENGINES[key] = Engine(RiskParams.from_toml_str(params))
    return _ENGINES[key]


def _market_dict(market: Market | dict[str, Any]) -> dict[str, Any]:
    return market.to_dict() if isinstance(market, Market) else market


def _paths(book: str | Path) -> tuple[str, str | None]:
    import pyarrow.fs as pafs  # type: ignore[import-untyped]

    root = str(book).rstrip("/")
    positions, balances = f"{root}/positions.parquet", f"{root}/balances.parquet"
    fs, path = (
        pafs.FileSystem.from_uri(balances)
        if "://" in balances
        else (pafs.LocalFileSystem(), balances)
    )
    has_balances = fs.get_file_info(path).type != pafs.FileType.NotFound
    return positions, balances if has_balances else None


def _open(path: str) -> Any:
    """A Parquet file by local path or URI."""
    import pyarrow.fs as pafs
    import pyarrow.parquet as pq  # type: ignore[import-untyped]

    if "://" not in path:
        return pq.ParquetFile(path)
    fs, inner = pafs.FileSystem.from_uri(path)
    return pq.ParquetFile(fs.open_input_file(inner))


def account_parts(book: str | Path, accounts_per_part: int = 50_000) -> list[tuple[int, int]]:
    """``(first, last)`` account id of each part, ascending."""
    import numpy as np
    import pyarrow.dataset as ds  # type: ignore[import-untyped]

    from pmengine.book.batch import account_ids, distinct

    positions, balances = _paths(book)
    files = [("positions", positions), ("balances", balances)]
    ids = [
        account_ids(ds.dataset(path).to_table(columns=["account"]), name, 0)
        for name, path in files
        if path is not None
    ]
    return parts.ranges(distinct(np.concatenate(ids)), accounts_per_part)


class PartScanner:
    """Margins parts of a book: ``__call__`` takes a table of ``first``/``last``
    account ids and returns the results of those accounts (``pyarrow.Table``).
    The engine and the market are built once per instance (per Ray worker)."""

    def __init__(
        self,
        book: str,
        market: dict[str, Any],
        params: str | None = None,
        *,
        threads: int | None = None,
        errors: str = "raise",
    ) -> None:
        self.positions, self.balances = _paths(book)
        self.engine = _engine(params)
        self.market = Market.from_dict(market)
        self.threads = threads
        self.errors = errors

    def scan(self, first: int, last: int) -> Any:
        """The results of accounts ``first`` to ``last``, a bad row named by its row in its file."""
        files = [("positions", self.positions), ("balances", self.balances)]
        tables = {
            name: parts.accounts_in(_open(path), name, first, last) for name, path in files if path
        }
        return parts.margin(
            self.engine, tables, self.market, threads=self.threads, errors=self.errors
        )

    def __call__(self, parts: Any) -> Any:
        import pyarrow as pa  # type: ignore[import-untyped]

        firsts, lasts = parts.column("first").to_pylist(), parts.column("last").to_pylist()
        tables = [self.scan(f, la) for f, la in zip(firsts, lasts, strict=True)]
        return pa.concat_tables(tables)


def scan_ray(
    book: str | Path,
    market: Market | dict[str, Any],
    params: RiskParams | str | None = None,
    *,
    accounts_per_part: int = 50_000,
    concurrency: int | None = None,
    threads: int | None = 1,
    errors: str = "raise",
) -> Any:
    """Margin every account of ``book`` on a Ray cluster (``ray.init()`` first, or
    Ray starts a local one) with Ray Data ``map_batches``: a callable class, one
    engine per worker, Arrow batches of one part each. ``threads`` per worker
    (default 1: Ray runs one worker per CPU). Returns a ``pyarrow.Table``
    sorted by account."""
    import pyarrow as pa
    import ray  # type: ignore[import-not-found, import-untyped, unused-ignore]
    import ray.data  # type: ignore[import-not-found, import-untyped, unused-ignore]

    parts = account_parts(book, accounts_per_part)
    spec = (str(book), _market_dict(market), _params(params), threads, errors)
    if not parts:
        return _scan_part((0, -1), spec)
    if not ray.is_initialized():
        ray.init()
    # One block per part, read straight from the driver: no shuffle task competes
    # with the scanner actors for CPUs.
    blocks = [pa.table({"first": [first], "last": [last]}) for first, last in parts]
    size = concurrency or min(len(parts), max(1, int(ray.cluster_resources().get("CPU", 1))))
    results = ray.data.from_arrow(blocks).map_batches(
        PartScanner,
        fn_constructor_args=spec[:3],
        fn_constructor_kwargs={"threads": threads, "errors": errors},
        batch_size=1,
        batch_format="pyarrow",
        compute=ray.data.ActorPoolStrategy(size=size),
    )
    tables = [t for t in results.iter_batches(batch_size=None, batch_format="pyarrow")]
    return pa.concat_tables(tables).sort_by("account")


def scan_dask(
    book: str | Path,
    market: Market | dict[str, Any],
    params: RiskParams | str | None = None,
    *,
    accounts_per_part: int = 50_000,
    threads: int | None = 1,
    errors: str = "raise",
) -> Any:
    """Margin every account of ``book`` with Dask: a ``dask.dataframe`` with one
    partition per part, computed on the current scheduler (a
    ``distributed.Client`` if one is active). Returns a ``pyarrow.Table``
    sorted by account."""
    import dask.dataframe as dd  # type: ignore[import-not-found, import-untyped, unused-ignore]
    import pyarrow as pa

    parts = account_parts(book, accounts_per_part)
    spec = (str(book), _market_dict(market), _params(params), threads, errors)
    empty = _scan_part((0, -1), spec)
    if not parts:
        return empty
    meta = empty.to_pandas()
    frame = dd.from_map(_scan_part_pandas, parts, spec=spec, meta=meta, enforce_metadata=False)
    table = pa.Table.from_pandas(frame.compute(), preserve_index=False)
    return table.cast(empty.schema).sort_by("account")


def _scan_part(part: tuple[int, int], spec: tuple[Any, ...]) -> Any:
    book, market, params, threads, errors = spec
    return PartScanner(book, market, params, threads=threads, errors=errors).scan(*part)


def _scan_part_pandas(part: tuple[int, int], spec: tuple[Any, ...]) -> Any:
    return _scan_part(part, spec).to_pandas()
