"""Engine.margin_batch's columnar path (rust/core/src/batch/columnar.rs): every
figure of every account bit for bit Engine.margin's, under both models, on
books that mix what the path takes (balances, loans, linear and inverse
contracts, own leverages, options) with what it leaves to the per-account
path (bad rows), at any thread count and chunk size."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pmengine as pm
from pmengine.book.batch import RESULT_COLUMNS, to_columns

from . import strategies as s
from . import strategies_binance as sb

pa = pytest.importorskip("pyarrow")
pc = pytest.importorskip("pyarrow.compute")

FIGURES = (
    "equity",
    "adjusted_equity",
    "maintenance_margin",
    "initial_margin",
    "available",
    "uni_mmr",
)


def _bits(x: float) -> int:
    return int(np.float64(x).view(np.uint64))


def scenario_market() -> dict:
    """The scenario strategies' market with the binance strategies' assets priced too."""
    m = s.market({"BTCUSDT": 60100.0, "BTCUSD_PERP": 59900.0, "ETHUSDC": 3002.0})
    m["prices"] = sb.PRICES | m["prices"]
    return m


@st.composite
def scaled(draw, book: dict) -> dict:
    """``book`` with every size times 1, 1,000 or 100,000: collateral tiers and
    concentration add-ons in play."""
    k = draw(st.sampled_from((1.0, 1e3, 1e5)))
    out = dict(book)
    out["balances"] = {a: q * k for a, q in book.get("balances", {}).items()}
    if "loans" in book:
        out["loans"] = {a: {f: x * k for f, x in loan.items()} for a, loan in book["loans"].items()}
    sized = []
    for p in book.get("positions", []):
        p = dict(p)
        key = "contracts" if p["type"] == "inverse" else "qty"
        p[key] = p[key] * k
        sized.append(p)
    out["positions"] = sized
    return out


# Loans, leverages, hedge pairs and wide balances (binance strategies); options,
# inverse contracts, USDC settlement and an unlisted asset (scenario strategies).
scenario_books = st.lists(
    st.one_of(sb.portfolio(), s.portfolio(max_positions=6)).flatmap(scaled), min_size=1, max_size=10
)


def check(engine: pm.Engine, market: pm.Market, books: list[dict], out) -> None:
    """Each output row against Engine.margin on the account alone, bit for bit."""
    ids = out["account"].to_pylist()
    assert ids == [
        i for i, b in enumerate(books) if b.get("balances") or b.get("loans") or b.get("positions")
    ]
    for k, i in enumerate(ids):
        want = engine.margin(pm.Portfolio.from_dict(books[i]), market)
        for f in FIGURES:
            got = out[f][k].as_py()
            assert _bits(got) == _bits(getattr(want, f)), (i, f, got, getattr(want, f))
        assert out["status"][k].as_py() == want.status
        assert out["error"][k].as_py() is None
        reqs = [(g.requirement, n) for n, g in want.groups.items() if g.requirement > 0]
        worst = out["worst_group"][k].as_py()
        if reqs:
            top = max(r for r, _ in reqs)
            name = next(n for r, n in reqs if r == top)
            assert worst == name
            move, shock = want.groups[name].worst_scenario
            assert _bits(out["worst_price_move"][k].as_py()) == _bits(move)
            assert _bits(out["worst_vol_shock"][k].as_py()) == _bits(shock)
        else:
            assert worst is None


def tables(books: list[dict]):
    pos, bal = to_columns(enumerate(books))
    return pa.table(pos), pa.table(bal)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(books=scenario_books, threads=st.sampled_from((1, 2)), chunk=st.sampled_from((1, 2, 512)))
def test_scenario_model_bit_for_bit(engine, books, threads, chunk):
    check_scenario_batch(engine, books, threads, chunk)


def check_scenario_batch(engine: pm.Engine, books, threads: int, chunk: int) -> None:
    """`engine`'s batch of `books` on the scenario market equals its `margin`, bit for bit."""
    market = pm.Market.from_dict(scenario_market())
    positions, balances = tables(books)
    out = engine.margin_batch(positions, balances, market, threads=threads, chunk_size=chunk)
    check(engine, market, books, out)


def offsets_engine() -> pm.Engine:
    """The default profile with a group MEME of its own (DOGE's, which the
    strategies hold as balances only), offset against BTC before the
    profile's offsets and against SOL and ETH after them, and systemic
    overrides for it: the batch resolves offsets to its call's groups once."""
    d = pm.RiskParams.default().to_dict()
    d["groups"]["MEME"] = dict(d["groups"]["*"], price_range=0.3)
    d["assets"]["DOGE"] = {"group": "MEME", "collateral": [{"rate": 0.5}]}
    d["offsets"] = [
        {"a": "MEME", "b": "BTC", "rate": 0.4},
        *d["offsets"],
        {"a": "SOL", "b": "MEME", "rate": 0.2},
        {"a": "ETH", "b": "MEME", "rate": 0.1},
    ]
    d["systemic"] = [dict(e, overrides={"MEME": 0.6 * e["multiple"]}) for e in d["systemic"]]
    return pm.Engine(pm.RiskParams.from_dict(d))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(books=scenario_books, threads=st.sampled_from((1, 2)), chunk=st.sampled_from((1, 3, 512)))
def test_offsets_and_overrides_of_a_group_reached_by_balances_bit_for_bit(books, threads, chunk):
    check_scenario_batch(offsets_engine(), books, threads, chunk)


def untabled_override_engine() -> pm.Engine:
    """The default profile with DOGE in a group MEME that has no table of its
    own (the default group's), overridden by name in the first systemic
    scenario only: its returns are looked up by name, not read from a table."""
    d = pm.RiskParams.default().to_dict()
    d["assets"]["DOGE"] = {"group": "MEME", "collateral": [{"rate": 0.5}]}
    first, *rest = d["systemic"]
    d["systemic"] = [dict(first, overrides={"MEME": -0.7}), *rest]
    return pm.Engine(pm.RiskParams.from_dict(d))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(books=scenario_books, threads=st.sampled_from((1, 2)), chunk=st.sampled_from((1, 3, 512)))
def test_systemic_override_of_a_group_without_a_table_bit_for_bit(books, threads, chunk):
    check_scenario_batch(untabled_override_engine(), books, threads, chunk)


@st.composite
def shared_option_symbols(draw) -> dict:
    """A scenario book whose options share a few symbols across different terms
    (strike, expiry, kind, stablecoin settle), so one symbol names several series:
    the columnar path reads each series by its symbol and its terms."""
    book = draw(s.portfolio(max_positions=4))
    options = []
    for _ in range(draw(st.integers(1, 5))):
        o = draw(s.option())
        o["symbol"] = draw(st.sampled_from(("OPT-A", "OPT-B", "ETH-261225-3000-C")))
        o["settle"] = draw(st.sampled_from(("USDT", "USDC")))
        options.append(o)
    book["positions"] = draw(st.permutations(book["positions"] + options))
    return book


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    books=st.lists(shared_option_symbols().flatmap(scaled), min_size=1, max_size=8),
    threads=st.sampled_from((1, 2)),
    chunk=st.sampled_from((1, 3, 512)),
)
def test_options_sharing_symbols_bit_for_bit(engine, books, threads, chunk):
    check_at_any_layout(engine, books, threads, chunk)


def check_at_any_layout(engine, books, threads, chunk):
    """``books`` margined by the batch at ``threads`` and ``chunk`` equal
    ``engine.margin`` bit for bit, and the other thread count and another chunk
    size give the same bits."""
    market = pm.Market.from_dict(scenario_market())
    positions, balances = tables(books)
    out = engine.margin_batch(positions, balances, market, threads=threads, chunk_size=chunk)
    check(engine, market, books, out)
    again = engine.margin_batch(positions, balances, market, threads=3 - threads, chunk_size=2)
    for name in out.column_names:
        a, b = out[name].to_pylist(), again[name].to_pylist()
        if name in FIGURES or name.startswith("worst_price") or name.startswith("worst_vol"):
            a, b = [_bits(x) for x in a], [_bits(x) for x in b]
        assert a == b, name


@st.composite
def symbols_on_two_underlyings(draw) -> dict:
    """A scenario book whose contracts share a few symbols across underlyings
    (one symbol in two groups), interleaved: the columnar path finds a symbol's
    netted entry by its id, and searches only when the id's entry is another
    group's."""
    book = draw(s.portfolio(max_positions=3, options=False))
    contracts = []
    for _ in range(draw(st.integers(2, 8))):
        c = draw(st.one_of(s.linear(), s.inverse()))
        c["symbol"] = draw(st.sampled_from(("SHARED-A", "SHARED-B")))
        contracts.append(c)
    book["positions"] = draw(st.permutations(book["positions"] + contracts))
    return book


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    books=st.lists(symbols_on_two_underlyings().flatmap(scaled), min_size=1, max_size=8),
    threads=st.sampled_from((1, 2)),
    chunk=st.sampled_from((1, 3, 512)),
)
def test_contracts_sharing_symbols_across_groups_bit_for_bit(engine, books, threads, chunk):
    check_at_any_layout(engine, books, threads, chunk)


def test_an_option_the_columnar_path_refuses_is_named():
    """An option settling in a coin with a price range: its account alone gets the
    per-account path's error (raise or collect), its neighbours their figures. The
    account after it, in the same chunk, prices a new series into the cache while
    the failed book's builder still had the cache open."""
    engine = pm.Engine()
    option = {
        "type": "option",
        "symbol": "BTC-261225-60000-C",
        "underlying": "BTC",
        "kind": "call",
        "strike": 60000,
        "expiry": "2026-12-25T08:00:00Z",
        "qty": 1.0,
    }
    other = dict(option, symbol="BTC-261225-65000-C", strike=65000)
    good = [
        {"balances": {"USDT": 1e5}, "positions": [option]},
        {"balances": {"USDT": 1e5}, "positions": [other, option]},
    ]
    bad = {"balances": {"USDT": 1e5}, "positions": [option, dict(option, settle="BTC")]}
    positions, balances = tables([good[0], bad, good[1]])
    with pytest.raises(
        pm.InvalidInputError, match=r"^positions\[2\]\.settle: an option must settle"
    ):
        engine.margin_batch(positions, balances, pm.Market.from_dict(scenario_market()))
    market = pm.Market.from_dict(scenario_market())
    out = engine.margin_batch(positions, balances, market, errors="collect")
    assert out["status"].to_pylist()[1] == "ERROR"
    assert out["error"][1].as_py().startswith("positions[2].settle: ")
    for k, book in ((0, good[0]), (2, good[1])):
        want = engine.margin(pm.Portfolio.from_dict(book), market)
        for f in FIGURES:
            assert _bits(out[f][k].as_py()) == _bits(getattr(want, f)), (k, f)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    books=st.lists(sb.portfolio().flatmap(scaled), min_size=1, max_size=8),
    market=sb.market(),
    profile=sb.profile(),
    threads=st.sampled_from((1, 2)),
    chunk=st.sampled_from((1, 3, 512)),
)
def test_binance_pm_bit_for_bit(books, market, profile, threads, chunk):
    engine = pm.Engine(pm.RiskParams.from_dict(profile))
    m = pm.Market.from_dict(market)
    positions, balances = tables(books)
    out = engine.margin_batch(positions, balances, m, threads=threads, chunk_size=chunk)
    check(engine, m, books, out)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(books=scenario_books, bad=st.data())
def test_bad_rows_beside_good_accounts(engine, books, bad):
    """A bad row is named (raise) or marks its account alone (collect), whichever
    path its neighbours take; the others keep Engine.margin's figures."""
    market = pm.Market.from_dict(scenario_market())
    positions, balances = tables(books)
    if positions.num_rows == 0:
        return
    row = bad.draw(st.integers(0, positions.num_rows - 1))
    field, value = bad.draw(st.sampled_from((("qty", math.nan), ("qty", 1e16))))
    qty = positions.column(field).to_pylist()
    qty[row] = value
    positions = positions.set_column(positions.schema.get_field_index(field), field, pa.array(qty))
    with pytest.raises(pm.InvalidInputError, match=rf"^positions\[{row}\]\.qty: "):
        engine.margin_batch(positions, balances, market, threads=2, chunk_size=2)
    out = engine.margin_batch(
        positions, balances, market, threads=2, chunk_size=2, errors="collect"
    )
    bad_account = positions.column("account")[row].as_py()
    ids = out["account"].to_pylist()
    k = ids.index(bad_account)
    assert out["status"][k].as_py() == "ERROR"
    assert out["error"][k].as_py().startswith(f"positions[{row}].qty: ")
    good = [i for i in ids if i != bad_account]
    rest = out.filter(pc.not_equal(out["account"], bad_account))
    assert rest["account"].to_pylist() == good
    assert rest.column_names == list(RESULT_COLUMNS)
    for k, i in enumerate(good):
        want = engine.margin(pm.Portfolio.from_dict(books[i]), market)
        for f in FIGURES:
            assert _bits(rest[f][k].as_py()) == _bits(getattr(want, f)), (i, f)


# Bad values by the position type they apply to: (field, value, message start);
# the columnar path reads names by dictionary code and checks numbers without a
# field to name, so each of these must reach the per-account path's message.
# (An empty underlying is checked after an option's vol and an inverse
# contract's settle, so only a linear contract names it.)
COMMON_BAD = (
    ("symbol", "", "must not be empty"),
    ("type", "future", 'must be "linear", "inverse" or "option", got "future"'),
    ("qty", math.nan, ""),
    ("qty", -1e16, ""),
)
BAD_BY_TYPE = {
    "linear": (
        ("underlying", "", "must not be empty"),
        ("entry_price", 0.0, "must be > 0"),
        ("leverage", -2.0, "must be > 0"),
    ),
    "inverse": (
        ("entry_price", math.inf, ""),
        ("contract_size", 0.0, "must be > 0"),
        ("leverage", math.inf, ""),
        ("settle", "XYZ", "an inverse contract settles in its underlying"),
    ),
    "option": (
        ("strike", -1.0, "must be > 0"),
        ("expiry", 1.8e12, ""),
        ("kind", "straddle", ""),
        ("kind", None, "required for an option"),
    ),
}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(books=scenario_books, bad=st.data(), threads=st.sampled_from((1, 2)))
def test_bad_names_and_numbers_are_named(engine, books, bad, threads):
    """A bad value in one row (a name in a dictionary only that row uses, a
    number of any checked field) is named ``positions[row].field`` (raise), or
    marks its account alone with that message (collect); the other accounts
    keep Engine.margin's figures bit for bit."""
    market = pm.Market.from_dict(scenario_market())
    positions, balances = tables(books)
    if positions.num_rows == 0:
        return
    row = bad.draw(st.integers(0, positions.num_rows - 1))
    kind = positions.column("type")[row].as_py()
    field, value, message = bad.draw(st.sampled_from(COMMON_BAD + BAD_BY_TYPE[kind]))
    values = positions.column(field).to_pylist()
    values[row] = value
    kind_of_column = positions.schema.field(field).type
    column = pa.array(
        values, type=pa.string() if pa.types.is_null(kind_of_column) else kind_of_column
    )
    if pa.types.is_string(column.type):
        column = column.dictionary_encode()  # the bad value: a code only this row uses
    positions = positions.set_column(positions.schema.get_field_index(field), field, column)
    named = rf"^positions\[{row}\]\.{field}: {message}"
    with pytest.raises(pm.InvalidInputError, match=named) as raised:
        engine.margin_batch(positions, balances, market, threads=threads, chunk_size=3)
    out = engine.margin_batch(
        positions, balances, market, threads=threads, chunk_size=3, errors="collect"
    )
    bad_account = positions.column("account")[row].as_py()
    ids = out["account"].to_pylist()
    k = ids.index(bad_account)
    assert out["status"][k].as_py() == "ERROR"
    assert out["error"][k].as_py() == str(raised.value)
    for k, i in enumerate(ids):
        if i == bad_account:
            continue
        want = engine.margin(pm.Portfolio.from_dict(books[i]), market)
        for f in FIGURES:
            assert _bits(out[f][k].as_py()) == _bits(getattr(want, f)), (i, f)


def _interleaved(table, rng):
    """``table``'s rows with the accounts interleaved at random, each account's
    own rows in their order (so every sum is taken in the same order)."""
    account = np.asarray(table["account"])
    keys = rng.random(len(account))
    for a in np.unique(account):
        rows = np.flatnonzero(account == a)
        keys[rows] = np.sort(keys[rows])
    return table.take(np.argsort(keys, kind="stable"))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    books=scenario_books,
    seed=st.integers(0, 2**32 - 1),
    which=st.sampled_from(("positions", "balances", "both")),
)
def test_rows_in_any_account_order(engine, books, seed, which):
    """Rows not grouped by account (in one table, the other or both) give the
    table of rows grouped in ascending order, bit for bit."""
    market = pm.Market.from_dict(scenario_market())
    positions, balances = tables(books)
    want = engine.margin_batch(positions, balances, market)
    rng = np.random.default_rng(seed)
    if which != "balances":
        positions = _interleaved(positions, rng)
    if which != "positions":
        balances = _interleaved(balances, rng)
    got = engine.margin_batch(positions, balances, market, threads=2, chunk_size=2)
    assert got.column_names == want.column_names
    for name in want.column_names:
        a, b = got[name].to_numpy(zero_copy_only=False), want[name].to_numpy(zero_copy_only=False)
        if a.dtype == np.float64:
            assert (a.view(np.uint64) == b.view(np.uint64)).all(), name
        else:
            assert list(a) == list(b), name
