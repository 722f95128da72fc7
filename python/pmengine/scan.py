"""Scan a book stored in Parquet files: ``pmengine scan``.

The accounts are split into parts by account id; each part's rows are read
from the files with a filter (a file sorted by account lets Parquet skip the
row groups of other parts), margined with ``Engine.margin_batch`` and appended
to the output file, so memory holds one part at a time. Accounts are
independent, so the output is the same whatever the number of parts.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pmengine._core import Engine, Market
from pmengine.errors import InputFileError


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


def _dataset(path: str | Path) -> Any:
    import pyarrow.dataset as ds  # type: ignore[import-untyped]

    try:
        return ds.dataset(str(path), format="parquet")
    except (OSError, ValueError) as e:
        raise InputFileError(f"{path}: cannot read as Parquet: {e}") from None


def _account_ids(*datasets: Any) -> Any:
    import numpy as np

    ids = [np.asarray(d.to_table(columns=["account"]).column("account")) for d in datasets]
    return np.unique(np.concatenate(ids)) if ids else np.empty(0, dtype=np.int64)


def scan_files(
    engine: Engine,
    positions: str | Path,
    balances: str | Path | None,
    market: Market,
    out: str | Path,
    *,
    threads: int | None = None,
    errors: str = "raise",
    accounts_per_part: int = 50_000,
    top: int = 10,
    on_part: Callable[[int, int], None] | None = None,
) -> ScanSummary:
    """Margin every account of the Parquet files into ``out`` (Parquet), part by part.
    ``on_part(done, total)`` is called after each part (accounts)."""
    import numpy as np
    import pyarrow.dataset as ds
    import pyarrow.parquet as pq  # type: ignore[import-untyped]

    start = time.perf_counter()
    pos_ds = _dataset(positions)
    bal_ds = _dataset(balances) if balances is not None else None
    if "account" not in pos_ds.schema.names:
        raise InputFileError(f"{positions}: no account column")
    ids = _account_ids(pos_ds, *([bal_ds] if bal_ds is not None else []))
    parts = max(1, math.ceil(len(ids) / max(1, accounts_per_part)))
    bounds = np.array_split(ids, parts)
    summary = ScanSummary(out=str(out))
    candidates: list[tuple[float, int, float, str, str | None]] = []
    writer = None
    done = 0
    try:
        for part in bounds:
            if len(part) == 0:
                continue
            lo, hi = int(part[0]), int(part[-1])
            where = (ds.field("account") >= lo) & (ds.field("account") <= hi)
            p = pos_ds.to_table(filter=where)
            b = bal_ds.to_table(filter=where) if bal_ds is not None else None
            r = engine.margin_batch(p, b, market, threads=threads, errors=errors)
            if writer is None:
                writer = pq.ParquetWriter(str(out), r.schema)
            writer.write_table(r)
            summary.positions += p.num_rows
            summary.balances += b.num_rows if b is not None else 0
            _summarise(summary, r, candidates, top)
            done += len(part)
            if on_part is not None:
                on_part(done, len(ids))
    finally:
        if writer is not None:
            writer.close()
    if writer is None:  # no account at all: still write an empty result file
        empty = engine.margin_batch(pos_ds.to_table().slice(0, 0), None, market)
        pq.write_table(empty, str(out))
    candidates.sort(key=lambda c: (c[0], c[1]))
    summary.riskiest = [
        {"account": a, "uni_mmr": u, "maintenance_margin": mm, "status": s, "worst_group": g}
        for u, a, mm, s, g in candidates[:top]
    ]
    summary.seconds = time.perf_counter() - start
    return summary


def _summarise(
    s: ScanSummary,
    r: Any,
    candidates: list[tuple[float, int, float, str, str | None]],
    top: int,
) -> None:
    import numpy as np
    import pyarrow.compute as pc  # type: ignore[import-untyped]

    s.accounts += r.num_rows
    for row in pc.value_counts(r.column("status").combine_chunks().dictionary_decode()).to_pylist():
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
