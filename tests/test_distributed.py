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
