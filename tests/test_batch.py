"""Engine.margin_batch: the same numbers as Engine.margin account by account,
whatever the threads, chunking, row order and input format; bad rows named."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pmengine as pm
from pmengine.book.batch import RESULT_COLUMNS, margin_stream, to_columns
from pmengine.book.synthetic import generate_book, market_dict
from pmengine.testing import same_table

from . import strategies as s
from . import strategies_binance as sb

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


def _encodings(table):
    """The same table with its string columns in other Arrow layouts: a dictionary
    holding duplicate and unused values, large strings, and three chunks."""
    import pyarrow.compute as pc

    def messy_dictionary(col):
        # Values: every distinct string twice plus one no row uses; keys point at the copies.
        arr = pc.dictionary_encode(col.combine_chunks())
        values = arr.dictionary.to_pylist()
        doubled = pa.array([*values, *values, "UNUSED"], pa.string())
        keys = pc.add(arr.indices, pa.scalar(len(values), arr.indices.type))
        return pa.DictionaryArray.from_arrays(keys, doubled)

    strings = [f.name for f in table.schema if pa.types.is_string(f.type)]
    out = {}
    messy = table
    large = table
    for name in strings:
        i = table.schema.get_field_index(name)
        messy = messy.set_column(i, name, messy_dictionary(table.column(name)))
        large = large.set_column(i, name, table.column(name).cast(pa.large_string()))
    out["messy dictionary"] = messy
    out["large strings"] = large
    n = table.num_rows
    out["three chunks"] = pa.concat_tables(
        [table.slice(0, n // 3), table.slice(n // 3, n // 3), table.slice(2 * (n // 3))]
    )
    return out


def _plain(table):
    """Dictionary columns decoded to plain strings."""
    for i, f in enumerate(table.schema):
        if pa.types.is_dictionary(f.type):
            table = table.set_column(i, f.name, table.column(f.name).cast(pa.string()))
    return table


def test_input_layouts_give_identical_results(engine):
    dictionary_pos, dictionary_bal = generate_book(300, seed=11, option_share=0.25)
    positions, balances = _plain(dictionary_pos), _plain(dictionary_bal)
    market = pm.Market.from_dict(market_dict())
    want = engine.margin_batch(positions, balances, market)
    layouts = {"dictionary": (dictionary_pos, dictionary_bal)}
    for (label, p), b in zip(
        _encodings(positions).items(), _encodings(balances).values(), strict=True
    ):
        layouts[label] = (p, b)
    for label, (p, b) in layouts.items():
        # Same rows; a dictionary's unused values may add unused output dictionary values.
        assert _plain(engine.margin_batch(p, b, market)).equals(_plain(want)), label


def _one_bad(position=None, balances=None):
    row = {"type": "linear", "symbol": "BTCUSDT", "underlying": "BTC", "qty": 1.0}
    row |= {"entry_price": 60000.0} | (position or {})
    pos = {c: [row.get(c)] for c in ("type", "symbol", "underlying", "qty", "entry_price")}
    for c in ("settle", "kind", "strike", "expiry", "contract_size"):
        if c in row:
            pos[c] = [row[c]]
    pos["account"] = [1]
    bal = {"account": [1] * len(balances or {}), "asset": list(balances or {})}
    bal["qty"] = [float(q) for q in (balances or {}).values()]
    return pa.table(pos), pa.table(bal, schema=None) if balances else None


@pytest.mark.parametrize(
    ("position", "balances", "error", "message"),
    [
        ({"type": "perp"}, None, pm.InvalidInputError, r"positions\[0\]\.type: must be \"linear\""),
        ({"type": None}, None, pm.InvalidInputError, r"positions\[0\]\.type: required"),
        ({"symbol": None}, None, pm.InvalidInputError, r"positions\[0\]\.symbol: required"),
        (
            {"type": "option", "kind": "straddle", "strike": 6e4, "expiry": 1.8e9},
            None,
            pm.InvalidInputError,
            r"positions\[0\]\.kind: must be \"call\" or \"put\", got \"straddle\"",
        ),
        (
            {"type": "option", "kind": None, "strike": 6e4, "expiry": 1.8e9},
            None,
            pm.InvalidInputError,
            r"positions\[0\]\.kind: required for an option",
        ),
        (
            {
                "type": "option",
                "underlying": "BNB",
                "kind": "put",
                "strike": 600.0,
                "expiry": 1.8e9,
            },
            None,
            pm.MissingMarketDataError,
            r"positions\[0\]\.symbol: no vol for BTCUSDT or BNB",
        ),
        (
            {"type": "inverse", "settle": "USDT", "contract_size": 100.0},
            None,
            pm.InvalidInputError,
            r"positions\[0\]\.settle: an inverse contract settles in its underlying BTC",
        ),
        (
            {"settle": "NOPE"},
            None,
            pm.MissingMarketDataError,
            r"positions\[0\]\.settle: no price for NOPE in market\.prices",
        ),
        ({"qty": math.inf}, None, pm.InvalidInputError, r"positions\[0\]\.qty: must be finite"),
        (
            None,
            {"ZZZ": 1.0},
            pm.MissingMarketDataError,
            r"balances\[0\]\.asset: no price for ZZZ in market\.prices",
        ),
        (None, {"USDT": math.nan}, pm.InvalidInputError, r"balances\[0\]\.qty: must be finite"),
    ],
)
def test_every_bad_row_is_named(engine, position, balances, error, message):
    positions, bal = _one_bad(position, balances)
    with pytest.raises(error, match=message):
        engine.margin_batch(positions, bal, MARKET)
    out = engine.margin_batch(positions, bal, MARKET, errors="collect").to_pydict()
    assert out["status"] == ["ERROR"]
    assert out["error"][0] is not None


# binance_pm: the batch gives Engine.margin's figures under the second model too.
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    books=st.lists(sb.portfolio(), min_size=1, max_size=8),
    market=sb.market(),
    profile=sb.profile(),
    threads=st.sampled_from((1, 2)),
    chunk=st.sampled_from((1, 3, 512)),
)
def test_binance_pm_batch_equals_margin(books, market, profile, threads, chunk):
    engine = pm.Engine(pm.RiskParams.from_dict(profile))
    m = pm.Market.from_dict(market)
    accounts = list(enumerate(books))
    positions, balances = tables(accounts)
    out = engine.margin_batch(positions, balances, m, threads=threads, chunk_size=chunk)
    ids = out["account"].to_pylist()
    for k, i in enumerate(ids):
        want = engine.margin(pm.Portfolio.from_dict(books[i]), m)
        for f in FIGURES:
            got = out[f][k].as_py()
            assert same(got, getattr(want, f)), (i, f, got, getattr(want, f))
        assert out["status"][k].as_py() == want.status


def _stream(table, rows):
    return pa.Table.from_batches(table.to_batches(max_chunksize=rows)).to_reader()


@pytest.mark.parametrize("part_rows", [1, 37, 1000, 10**7])
def test_stream_equals_one_call(engine, part_rows):
    """Accounts spanning record batches and parts: the same table as one call."""
    positions, balances = generate_book(1500, seed=4, option_share=0.25)
    market = pm.Market.from_dict(market_dict())
    want = engine.margin_batch(positions, balances, market)
    got = margin_stream(
        engine, _stream(positions, 333), _stream(balances, 101), market, part_rows=part_rows
    ).read_all()
    assert same_table(got, want)
    # margin_batch given a reader streams too, and returns a reader.
    reader = engine.margin_batch(_stream(positions, 500), balances, market, threads=1)
    assert isinstance(reader, pa.RecordBatchReader)
    assert same_table(reader.read_all(), want)
    parts = list(margin_stream(engine, _stream(positions, 77), None, market, output="numpy"))
    assert sum(len(p["account"]) for p in parts) == len(positions.column("account").unique())


def test_stream_names_rows_of_the_stream_and_collects(engine):
    positions, balances = generate_book(400, seed=8)
    market = pm.Market.from_dict(market_dict())
    row = positions.num_rows - 5
    prices = positions.column("entry_price").to_numpy().copy()
    prices[row] = -1.0
    bad = positions.set_column(5, "entry_price", pa.array(prices))
    with pytest.raises(
        pm.InvalidInputError, match=rf"positions\[{row}\]\.entry_price: must be > 0"
    ):
        margin_stream(engine, _stream(bad, 100), balances, market, part_rows=50).read_all()
    out = margin_stream(
        engine, _stream(bad, 100), balances, market, part_rows=50, errors="collect"
    ).read_all()
    errors = [e for e in out.column("error").to_pylist() if e]
    assert errors == [f"positions[{row}].entry_price: must be > 0, got -1"]
    qty = balances.column("qty").to_numpy().copy()
    qty[300] = np.nan
    bad_bal = balances.set_column(2, "qty", pa.array(qty))
    with pytest.raises(pm.InvalidInputError, match=r"balances\[300\]\.qty"):
        margin_stream(
            engine, _stream(positions, 64), _stream(bad_bal, 64), market, part_rows=10
        ).read_all()


def test_stream_must_be_sorted_by_account(engine):
    positions, _ = generate_book(50, seed=2)
    market = pm.Market.from_dict(market_dict())
    order = np.r_[0:100, 200:300, 100:200, 300 : positions.num_rows]
    with pytest.raises(
        pm.InvalidInputError, match=r"positions\[200\]\.account: a stream must be sorted"
    ):
        margin_stream(engine, _stream(positions.take(order), 64), None, market).read_all()


def _shifted(t, base, kind):
    """``t`` with ``base`` added to its account ids, as Arrow type ``kind``."""
    ids = t.column("account").to_numpy().astype(object) + base
    return t.set_column(0, "account", pa.array(ids.tolist(), kind))


@pytest.mark.parametrize(
    ("base", "kinds"),
    [
        (2**53 + 1, (pa.int64(), pa.int64())),
        (2**63 - 2000, (pa.int64(), pa.int64())),
        (-(2**63), (pa.int64(), pa.int64())),
        (2**53, (pa.uint64(), pa.uint64())),
        (2**53, (pa.int64(), pa.uint64())),
        (2**53, (pa.uint64(), pa.int64())),
    ],
    ids=["2**53+1", "2**63-2000", "-2**63", "uint64", "int64-uint64", "uint64-int64"],
)
def test_stream_cuts_large_account_ids_exactly(engine, base, kinds):
    """Ids a float cannot tell apart (above 2**53), signed or not, the two
    tables of one type or not: parts are cut between accounts by integer
    comparison (as floats the cut fell before every row and the stream never
    ended, or split an account; NumPy compares uint64 with int64 as floats)."""
    positions, balances = generate_book(300, seed=3)
    market = pm.Market.from_dict(market_dict())
    positions, balances = _shifted(positions, base, kinds[0]), _shifted(balances, base, kinds[1])
    want = engine.margin_batch(positions, balances, market)
    assert len(set(want.column("account").to_pylist())) == 300
    for part_rows in (1, 7, 500):
        got = margin_stream(
            engine, _stream(positions, 13), _stream(balances, 5), market, part_rows=part_rows
        ).read_all()
        assert same_table(got, want), part_rows


@pytest.mark.parametrize(
    ("account", "field", "code"),
    [
        (pa.array([1, None], pa.int64()), r"positions\[1\]\.account", "missing"),
        (pa.array([1.0, 2.0]), r"positions\.account", "wrong_type"),
        (pa.array(["a", "b"]), r"positions\.account", "wrong_type"),
        (pa.array([1, 2**63], pa.uint64()), r"positions\[1\]\.account", "out_of_range"),
    ],
)
def test_account_column_refused_alike_in_a_call_and_a_stream(engine, account, field, code):
    market = pm.Market.from_dict(market_dict())
    positions = pa.table(
        {
            "account": account,
            "type": ["linear"] * 2,
            "symbol": ["BTCUSDT"] * 2,
            "underlying": ["BTC"] * 2,
            "qty": [1.0, 2.0],
            "entry_price": [60_000.0] * 2,
        }
    )
    said = []
    for book in (positions, positions.to_reader()):
        with pytest.raises(pm.InvalidInputError, match=field) as e:
            out = engine.margin_batch(book, None, market)
            if isinstance(out, pa.RecordBatchReader):
                out.read_all()
        assert e.value.code == code
        said.append(str(e.value))
    if code != "wrong_type":  # Arrow's type names differ: Float64 in Rust, double in Python
        assert said[0] == said[1]


def test_plain_strings_equal_dictionary_strings(engine):
    """Plain string columns (one chunk or many, nulls included) encode to the same codes' meaning."""
    positions, balances = generate_book(2000, seed=9, option_share=0.3)
    market = pm.Market.from_dict(market_dict())
    want = engine.margin_batch(positions, balances, market)
    plain_p, plain_b = _plain(positions), _plain(balances)
    for chunks in (None, 999, 70_000):
        p = plain_p if chunks is None else pa.Table.from_batches(plain_p.to_batches(chunks))
        got = engine.margin_batch(p, plain_b, market, threads=2)
        assert same_table(got, want), chunks


@pytest.mark.parametrize("threads", [1, 2])
def test_plain_string_layouts_equal_dictionary_strings(engine, threads):
    """Plain strings of every Arrow layout, over more rows than one slice of the
    encoder (32,768) and sliced at an odd row, give what dictionary input gives:
    short values read from inside the values buffer and at its very end (the
    last rows' values, fewer than 8 bytes before the end) alike."""
    positions, balances = generate_book(1700, seed=5, option_share=0.2)
    market = pm.Market.from_dict(market_dict())
    for lo in (0, 3):
        dict_p, dict_b = positions.slice(lo), balances.slice(lo)
        want = engine.margin_batch(dict_p, dict_b, market, threads=threads)
        # Arrays sliced after decoding: their offsets start inside their values buffer.
        plain_p, plain_b = _plain(positions).slice(lo), _plain(balances).slice(lo)
        for layout in (pa.string(), pa.large_string(), pa.string_view()):
            p, b = _cast_strings(plain_p, layout), _cast_strings(plain_b, layout)
            got = engine.margin_batch(p, b, market, threads=threads)
            assert same_table(got, want), (lo, layout)


@pytest.mark.parametrize("errors", ["raise", "collect"])
def test_optional_string_columns_without_a_value_read_as_absent(engine, errors):
    """A ``kind`` or ``settle`` column null in every row (plain strings, Arrow's
    null type, or a dictionary) gives what the absent column gives, an option
    row without its kind named alike; a dictionary settle column keeps its
    values among the call's groups."""
    positions, balances = generate_book(300, seed=4, option_share=0.0)
    positions = positions.drop_columns(["kind"])
    option = {
        "account": [0],
        "type": ["option"],
        "symbol": ["BTC-X-C"],
        "underlying": ["BTC"],
        "qty": [1.0],
        "strike": [60000.0],
        "expiry": [1.9e9],
    }
    market = pm.Market.from_dict(market_dict())
    nulls = {
        "plain": lambda m: pa.nulls(m, pa.string()),
        "null type": pa.nulls,
        "dictionary": lambda m: pa.DictionaryArray.from_arrays(
            pa.nulls(m, pa.int32()), pa.array(["call", "put"])
        ),
    }
    for rows in (positions, _with_option_row(positions, option)):
        if errors == "raise" and rows is not positions:
            with pytest.raises(pm.InvalidInputError, match=r"^positions\[0\]\.kind: "):
                engine.margin_batch(rows, balances, market)
            continue
        want = engine.margin_batch(rows, balances, market, errors=errors)
        m = rows.num_rows
        for name, column in nulls.items():
            for col in ("kind", "settle"):
                got = engine.margin_batch(
                    rows.append_column(col, column(m)), balances, market, errors=errors
                )
                assert same_table(got, want), (col, name)
    btc = pa.table(
        {
            "account": [0],
            "type": ["linear"],
            "symbol": ["BTCUSDT"],
            "underlying": ["BTC"],
            "qty": [1.0],
            "entry_price": [60000.0],
        }
    )
    sol = pa.DictionaryArray.from_arrays(pa.nulls(1, pa.int32()), pa.array(["SOL"]))
    got = engine.margin_batch(btc.append_column("settle", sol), None, market)
    assert got["worst_group"].chunk(0).dictionary.to_pylist() == ["BTC", "SOL", "USD"]


def _with_option_row(positions, option):
    """`positions` with an option row without a kind put first (account 0)."""
    row = {c: option.get(c, [None]) for c in positions.column_names}
    first = pa.table(row).cast(positions.schema)
    return pa.concat_tables([first, positions]).combine_chunks()


def _cast_strings(table, layout):
    """Plain string columns cast to `layout`."""
    for i, f in enumerate(table.schema):
        if pa.types.is_string(f.type):
            table = table.set_column(i, f.name, table.column(f.name).cast(layout))
    return table


@pytest.mark.parametrize(
    "layout, offset_type", [(pa.string(), np.int32), (pa.large_string(), np.int64)]
)
@pytest.mark.parametrize("errors", ["raise", "collect"])
def test_string_offsets_outside_their_buffer_are_named(engine, layout, offset_type, errors):
    """A plain string column whose offsets run backwards past its values buffer
    (Arrow's cheap validation checks only the first and last offsets, and the
    C Data Interface promises nothing more) is refused by name, in either error
    mode, instead of being read out of bounds."""
    positions, balances = generate_book(10, seed=5)
    market = pm.Market.from_dict(market_dict())
    n = positions.num_rows
    ends = np.full(n + 1, 7, dtype=offset_type)
    ends[0], ends[1] = 0, 100  # row 0 spans bytes 0..100 of a 21-byte buffer
    data = pa.py_buffer(b"BTCUSDT" * 3)
    bad = pa.Array.from_buffers(layout, n, [None, pa.py_buffer(ends.tobytes()), data])
    table = positions.set_column(positions.schema.get_field_index("symbol"), "symbol", bad)
    with pytest.raises(pm.InvalidInputError, match="offsets point outside") as e:
        engine.margin_batch(table, balances, market, errors=errors)
    assert (e.value.field, e.value.code) == ("positions[0].symbol", "invalid_value")
    # In a second chunk, the row is counted from the table's first row.
    good = positions.column("symbol").cast(layout).combine_chunks()
    two = pa.chunked_array([good, bad])
    doubled = pa.concat_tables([positions, positions])
    table = doubled.set_column(doubled.schema.get_field_index("symbol"), "symbol", two)
    with pytest.raises(pm.InvalidInputError, match="offsets point outside") as e:
        engine.margin_batch(table, None, market, errors=errors)
    assert (e.value.field, e.value.code) == (f"positions[{n}].symbol", "invalid_value")


def _view(length: int, inline: bytes = b"", buffer: int = 0, offset: int = 0) -> bytes:
    """One Arrow string view: its length, then its bytes up to 12, else a
    prefix, the data buffer's index and the offset in it."""
    head = np.uint32(length).tobytes()
    if length <= 12:
        return head + inline.ljust(12, b"\0")
    return head + b"BTCU" + np.uint32(buffer).tobytes() + np.uint32(offset).tobytes()


@pytest.mark.parametrize("errors", ["raise", "collect"])
@pytest.mark.parametrize("bad", [_view(20, offset=100), _view(20, buffer=5), _view(20, offset=10)])
def test_string_views_outside_their_buffers_are_named(engine, errors, bad):
    """A string view column whose view points past its data buffer, or at a
    buffer it does not have (the C Data Interface promises no check of
    views), is refused naming the row, not read out of bounds."""
    positions, _ = generate_book(10, seed=5)
    market = pm.Market.from_dict(market_dict())
    n = positions.num_rows
    views = [_view(20, offset=0)] * n
    views[3] = bad
    # 28 bytes: a view of 20 at 0 fits, one at 10 does not.
    data = pa.py_buffer(b"BTCUSDT_261225" * 2)
    array = pa.Array.from_buffers(pa.string_view(), n, [None, pa.py_buffer(b"".join(views)), data])
    table = positions.set_column(positions.schema.get_field_index("symbol"), "symbol", array)
    with pytest.raises(pm.InvalidInputError, match="string view points outside") as e:
        engine.margin_batch(table, None, market, errors=errors)
    assert (e.value.field, e.value.code) == ("positions[3].symbol", "invalid_value")
