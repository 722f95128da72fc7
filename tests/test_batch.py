"""Engine.margin_batch: the same numbers as Engine.margin account by account,
whatever the threads, chunking, row order and input format; bad rows named."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pmengine as pm
from pmengine.batch import RESULT_COLUMNS, to_columns
from pmengine.synthetic import generate_book, market_dict

from . import strategies as s

pa = pytest.importorskip("pyarrow")

FIGURES = (
    "equity",
    "adjusted_equity",
    "maintenance_margin",
    "initial_margin",
    "available",
    "uni_mmr",
)
MARKET = pm.Market.from_dict(s.market({"BTCUSDT": 60100.0, "BTCUSD_PERP": 59900.0}))


def tables(accounts):
    pos, bal = to_columns(accounts)
    return pa.table(pos), pa.table(bal)


def same(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


def check_against_single(engine, accounts, out):
    by_id = {}
    for i, p in accounts:
        if p["balances"] or p["positions"]:
            by_id[i] = p
    ids = sorted(by_id)
    assert out["account"].to_pylist() == ids
    for k, i in enumerate(ids):
        want = engine.margin(pm.Portfolio.from_dict(by_id[i]), MARKET)
        for f in FIGURES:
            got = out[f][k].as_py()
            assert same(got, getattr(want, f)), (i, f, got, getattr(want, f))
        assert out["status"][k].as_py() == want.status
        assert out["error"][k].as_py() is None
        reqs = [(g.requirement, n) for n, g in want.groups.items() if g.requirement > 0]
        worst = out["worst_group"][k].as_py()
        if reqs:
            top = max(r for r, _ in reqs)
            assert worst == next(n for r, n in reqs if r == top)
            assert out["worst_price_move"][k].as_py() == want.groups[worst].worst_scenario[0]
        else:
            assert worst is None


books = st.lists(s.portfolio(max_positions=6), min_size=1, max_size=12)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(books=books, seed=st.integers(0, 2**32 - 1))
def test_batch_equals_margin_account_by_account(engine, books, seed):
    rng = np.random.default_rng(seed)
    ids = rng.choice(10_000, size=len(books), replace=False).tolist()
    accounts = list(zip(ids, books, strict=True))
    positions, balances = tables(accounts)
    # Accounts' rows interleaved at random, each account's own rows in order:
    # the batch groups them stably by account.
    perm = rng.permutation(len(positions))
    acc = positions.column("account").to_numpy()[perm]
    for a in np.unique(acc):
        slots = np.flatnonzero(acc == a)
        perm[slots] = np.sort(perm[slots])
    shuffled = positions.take(perm)
    out = engine.margin_batch(shuffled, balances, MARKET, threads=2, chunk_size=3)
    assert out.column_names == list(RESULT_COLUMNS)
    check_against_single(engine, accounts, out)


def test_threads_and_chunks_are_bit_identical(engine):
    positions, balances = generate_book(2000, seed=3, option_share=0.25)
    market = pm.Market.from_dict(market_dict())
    one = engine.margin_batch(positions, balances, market, threads=1, chunk_size=4096)
    for threads, chunk in [(2, 1), (2, 64), (2, 512)]:
        other = engine.margin_batch(positions, balances, market, threads=threads, chunk_size=chunk)
        for c in RESULT_COLUMNS:
            a, b = one[c], other[c]
            if pa.types.is_floating(a.type):
                assert np.array_equal(a.to_numpy().view(np.uint64), b.to_numpy().view(np.uint64)), c
            else:
                assert a.equals(b), c


def test_numpy_input_and_output(engine):
    accounts = [
        (7, {"balances": {"BTC": 1.0, "USDT": 1000.0}, "positions": []}),
        (
            3,
            {
                "balances": {"USDT": 5000.0},
                "positions": [
                    {
                        "type": "linear",
                        "symbol": "BTCUSDT",
                        "underlying": "BTC",
                        "qty": 0.5,
                        "entry_price": 59000.0,
                    }
                ],
            },
        ),
    ]
    pos, bal = to_columns(accounts)
    pos_np = {k: np.asarray(v) for k, v in pos.items()}
    bal_np = {k: np.asarray(v) for k, v in bal.items()}
    out = engine.margin_batch(pos_np, bal_np, MARKET, output="numpy")
    assert list(out) == list(RESULT_COLUMNS)
    assert out["account"].tolist() == [3, 7]
    assert out["maintenance_margin"].dtype == np.float64
    assert out["status"].dtype.kind == "U"
    want = engine.margin(pm.Portfolio.from_dict(accounts[1][1]), MARKET)
    assert out["maintenance_margin"][0] == want.maintenance_margin
    assert out["status"][0] == want.status
    assert out["error"].tolist() == ["", ""]
    arrow = engine.margin_batch(pa.table(pos), pa.table(bal), MARKET)
    assert arrow.column("maintenance_margin").to_pylist() == out["maintenance_margin"].tolist()
    # A RecordBatch and a multi-chunk table give the same numbers.
    rb = pa.table(pos).to_batches()[0]
    chunked = pa.concat_tables([pa.table(pos).slice(0, 0), pa.table(pos)])
    for p in (rb, chunked):
        again = engine.margin_batch(p, pa.table(bal), MARKET)
        assert again.column("equity").equals(arrow.column("equity"))


def test_balances_optional_and_empty(engine):
    pos, _ = to_columns([(1, {"balances": {}, "positions": []})])
    out = engine.margin_batch(pa.table(pos, schema=None), None, MARKET)
    assert out.num_rows == 0


def bad_book():
    good = {"balances": {"USDT": 1000.0}, "positions": []}
    bad = {
        "balances": {"USDT": 1000.0},
        "positions": [
            {
                "type": "linear",
                "symbol": "BTCUSDT",
                "underlying": "BTC",
                "qty": 1,
                "entry_price": 1,
            },
            {"type": "linear", "symbol": "XUSDT", "underlying": "NOPE", "qty": 1, "entry_price": 1},
        ],
    }
    return tables([(1, good), (2, bad), (3, good)])


def test_bad_row_raises_naming_row_and_field(engine):
    positions, balances = bad_book()
    with pytest.raises(
        pm.MissingMarketDataError, match=r"positions\[1\]\.underlying: no price for NOPE"
    ):
        engine.margin_batch(positions, balances, MARKET)
    broken = positions.set_column(
        positions.schema.get_field_index("entry_price"),
        "entry_price",
        pa.array([1.0, -5.0]),
    )
    with pytest.raises(
        pm.InvalidInputError, match=r"positions\[1\]\.entry_price: must be > 0, got -5"
    ):
        engine.margin_batch(broken, balances, MARKET)


def test_collect_marks_the_account_and_goes_on(engine):
    positions, balances = bad_book()
    out = engine.margin_batch(positions, balances, MARKET, errors="collect").to_pydict()
    assert out["account"] == [1, 2, 3]
    assert out["status"] == ["NORMAL", "ERROR", "NORMAL"]
    assert out["error"][0] is None and out["error"][2] is None
    assert out["error"][1].startswith("positions[1].underlying: no price for NOPE")
    assert math.isnan(out["maintenance_margin"][1])
    assert out["equity"][0] == 1000.0


def test_bad_arguments(engine):
    positions, balances = bad_book()
    with pytest.raises(pm.InvalidInputError, match="errors: must be"):
        engine.margin_batch(positions, balances, MARKET, errors="ignore")
    with pytest.raises(pm.InvalidInputError, match="threads: must be >= 1"):
        engine.margin_batch(positions, balances, MARKET, threads=0)
    with pytest.raises(pm.InvalidInputError, match=r"positions\.colour: unknown column"):
        engine.margin_batch(
            positions.append_column("colour", pa.array(["r", "g"])), balances, MARKET
        )
    with pytest.raises(pm.InvalidInputError, match=r"positions\.symbol: required column"):
        engine.margin_batch(positions.drop_columns(["symbol"]), balances, MARKET)
    with pytest.raises(pm.InvalidInputError, match=r"balances\.account: must be integers"):
        engine.margin_batch(
            positions, balances.set_column(0, "account", pa.array(["a", "b", "c"])), MARKET
        )
    with pytest.raises(pm.InvalidInputError, match="positions: must be an Arrow table"):
        engine.margin_batch(42, balances, MARKET)


def test_expiry_as_arrow_timestamp(engine):
    opt = {
        "balances": {"USDT": 10_000.0},
        "positions": [
            {
                "type": "option",
                "symbol": "BTC-261225-60000-C",
                "underlying": "BTC",
                "kind": "call",
                "strike": 60000,
                "expiry": "2026-12-25T08:00:00Z",
                "qty": -1,
            }
        ],
    }
    positions, balances = tables([(1, opt)])
    i = positions.schema.get_field_index("expiry")
    ts = pa.array(
        (positions.column("expiry").to_numpy() * 1e6).astype("int64"), pa.timestamp("us", "UTC")
    )
    out = engine.margin_batch(positions.set_column(i, "expiry", ts), balances, MARKET)
    want = engine.margin(pm.Portfolio.from_dict(opt), MARKET)
    assert out["maintenance_margin"][0].as_py() == pytest.approx(want.maintenance_margin, rel=1e-12)
