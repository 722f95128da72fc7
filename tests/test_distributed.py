"""Ray Data and Dask scans give exactly the single-machine results."""

from __future__ import annotations

import itertools

import pyarrow.parquet as pq
import pytest

import pmengine as pm
from pmengine.book.synthetic import generate_book, market_dict
from pmengine.testing import same_table

pytest.importorskip("pyarrow")


@pytest.fixture(scope="module")
def book(tmp_path_factory):
    out = tmp_path_factory.mktemp("book")
    positions, balances = generate_book(450, option_share=0.25, seed=11)
    pq.write_table(positions, out / "positions.parquet", row_group_size=500)
    pq.write_table(balances, out / "balances.parquet")
    local = pm.Engine().margin_batch(positions, balances, pm.Market.from_dict(market_dict()))
    return out, local


def test_account_parts_cover_every_account(book):
    from pmengine.book.distributed import account_parts

    path, _ = book
    parts = account_parts(path, accounts_per_part=100)
    assert len(parts) == 5
    assert parts[0][0] == 0 and parts[-1][1] == 449
    assert all(a[1] < b[0] for a, b in itertools.pairwise(parts))


def test_dask_equals_local(book):
    pytest.importorskip("dask.dataframe")
    distributed = pytest.importorskip("distributed")
    from pmengine.book.distributed import scan_dask

    path, local = book
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster),
    ):
        got = scan_dask(path, market_dict(), accounts_per_part=100)
    assert same_table(got, local)


def test_ray_equals_local(book):
    ray = pytest.importorskip("ray")
    pytest.importorskip("ray.data")
    from pmengine.book.distributed import scan_ray

    path, local = book
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        got = scan_ray(path, pm.Market.from_dict(market_dict()), accounts_per_part=100)
    finally:
        ray.shutdown()
    assert same_table(got, local)


def test_a_part_names_bad_rows_by_their_rows_in_the_files(book, tmp_path):
    """A worker's part reads only the row groups its accounts are in, and names
    a bad row by its row in its file, raised or collected (it named the row's
    place in the part)."""
    import numpy as np
    import pyarrow as pa

    from pmengine.book.distributed import PartScanner

    path, local = book
    positions = pq.read_table(path / "positions.parquet")
    ids = positions.column("account").to_numpy()
    row = int(np.flatnonzero(ids == 333)[1])
    qty = positions.column("qty").to_pylist()
    qty[row] = float("nan")
    bad = positions.set_column(positions.schema.get_field_index("qty"), "qty", pa.array(qty))
    pq.write_table(bad, tmp_path / "positions.parquet", row_group_size=97)
    (tmp_path / "balances.parquet").write_bytes((path / "balances.parquet").read_bytes())
    market = market_dict()
    with pytest.raises(pm.InvalidInputError, match=rf"^positions\[{row}\]\.qty: must be finite"):
        PartScanner(str(tmp_path), market).scan(300, 399)
    got = PartScanner(str(tmp_path), market, errors="collect").scan(300, 399)
    assert got.column("error").drop_null().to_pylist() == [
        f"positions[{row}].qty: must be finite, got nan"
    ]
    # The part's other accounts, as the whole book gives them.
    import pyarrow.compute as pc

    def others(t):
        keep = pc.and_(pc.greater_equal(t["account"], 300), pc.less_equal(t["account"], 399))
        return t.filter(pc.and_(keep, pc.not_equal(t["account"], 333))).drop_columns(["error"])

    assert same_table(others(got), others(local))
