"""Hostile input (issue 16): each finding's minimal repro, and the class it stands for.

Nothing crashes the interpreter, no panic reaches Python as anything but a
pmengine error, a refused operation changes nothing, and every error names the
field (or the limit) it is about.
"""

from __future__ import annotations

import ast
import json
import math
import tomllib
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

import pmengine as pm
from pmengine import InvalidInputError, ProfileError
from pmengine.book.batch import to_columns

from .conftest import MARKET

DEFAULT = pm.RiskParams.default().to_dict()


def nested(depth: int, leaf: object = 1) -> object:
    """`depth` nested one-key dicts around `leaf` (built without recursion)."""
    out = leaf
    for _ in range(depth):
        out = {"a": out}
    return out


def nested_lists(depth: int) -> object:
    out: object = []
    for _ in range(depth - 1):
        out = [out]
    return out


# -- finding 2: nesting depth, the same bound on every way in -------------------------


@pytest.mark.parametrize(
    ("build", "error"),
    [
        (lambda x: pm.Portfolio.from_dict({"account": x}), InvalidInputError),
        (lambda x: pm.Market.from_dict({**MARKET, "prices": {"BTC": x}}), InvalidInputError),
        (lambda x: pm.RiskParams.from_dict({**DEFAULT, "eligibility": x}), ProfileError),
    ],
)
def test_deep_structures_are_refused_not_recursed_into(build, error):
    for deep in (nested(15_000), nested_lists(15_000)):
        with pytest.raises(error, match=r"nested 128 levels deep, the limit"):
            build(deep)


def test_from_dict_accepts_what_from_json_accepts():
    for depth in (126, 127, 128, 129):  # JSON text stops at 128
        doc = {"balances": {"USDT": 1}, "account": nested(depth - 1)}  # depth tables in all
        text = json.dumps(doc)
        try:
            pm.Portfolio.from_json(text)
            json_ok = True
        except InvalidInputError:
            json_ok = False
        try:
            pm.Portfolio.from_dict(doc)
            dict_ok = True
        except InvalidInputError:
            dict_ok = False
        assert json_ok == dict_ok, depth


def test_the_error_names_the_field():
    with pytest.raises(InvalidInputError) as e:
        pm.Portfolio.from_dict({"account": {"kyc": nested(200)}})
    assert e.value.field.startswith("account.kyc.a.a")


# -- finding 8: values Python holds that JSON cannot -----------------------------------


def test_integer_beyond_a_float():
    with pytest.raises(
        InvalidInputError, match=r"^balances\.USDT: must be a number, got an integer"
    ):
        pm.Portfolio.from_dict({"balances": {"USDT": 10**400}})
    with pytest.raises(InvalidInputError, match=r"^market\.prices\.BTC: must be a number"):
        pm.Market.from_dict({**MARKET, "prices": {"BTC": -(10**400)}})


def test_lone_surrogates():
    with pytest.raises(InvalidInputError, match=r"^name: must be valid Unicode text"):
        pm.Portfolio.from_dict({"name": "x\ud800"})
    with pytest.raises(InvalidInputError, match=r"^balances: keys must be valid Unicode text"):
        pm.Portfolio.from_dict({"balances": {"US\udfff": 1}})
    with pytest.raises(ProfileError, match=r"^name: must be valid Unicode text"):
        pm.RiskParams.from_dict({**DEFAULT, "name": "\ud800"})


def test_json_floats_round_trip():
    p = pm.Portfolio.from_json('{"balances": {"USDT": 0.9999999999999999}}')
    assert p.balances == [("USDT", 0.9999999999999999)]
    for x in (0.1, 2.2250738585072014e-308, 999999999999999.9, 5e-324, 0.30000000000000004):
        p = pm.Portfolio.from_json(json.dumps({"balances": {"USDT": x}}))
        assert p.balances[0][1] == x
        assert pm.Portfolio.from_json(p.to_json()).balances[0][1] == x


# -- finding 3: no panic reaches Python; batch dictionary codes on every path ------------


def batch_with_type(column) -> pa.Table:
    n = len(column)
    return pa.table(
        {
            "account": pa.array(range(n), pa.int64()),
            "type": column,
            "symbol": pa.array(["BTCUSDT"] * n),
            "underlying": pa.array(["BTC"] * n),
            "qty": pa.array([1.0] * n),
            "entry_price": pa.array([60000.0] * n),
        }
    )


def damaged(codes: list[int], values: list[str]) -> pa.DictionaryArray:
    return pa.DictionaryArray.from_arrays(pa.array(codes, pa.int32()), pa.array(values), safe=False)


@pytest.mark.parametrize(
    "column",
    [
        damaged([0, 7], ["linear"]),  # one chunk, distinct values: read in place
        damaged([0, 7], ["linear", "linear"]),  # repeated values: remapped
        damaged([0, -3], ["linear"]),  # a negative code that is not null
        pa.chunked_array([damaged([0], ["linear"]), damaged([7], ["linear"])]),  # chunked
    ],
    ids=["single", "repeated", "negative", "chunked"],
)
def test_batch_dictionary_codes_out_of_range(engine, column):
    market = pm.Market.from_dict(MARKET)
    with pytest.raises(
        InvalidInputError, match=r"^positions\[1\]\.type: dictionary code -?\d+ out of range"
    ):
        engine.margin_batch(batch_with_type(column), None, market)
    with pytest.raises(InvalidInputError, match=r"out of range"):
        engine.margin_batch(batch_with_type(column), None, market, errors="collect")
    # A part of a stream names the row in the stream.
    with pytest.raises(InvalidInputError, match=r"^positions\[101\]\.type: dictionary code"):
        engine.margin_batch(batch_with_type(column), None, market, first_rows=(100, 0))


@pytest.mark.parametrize("rows", [3, 200_000])
@pytest.mark.parametrize("threads", [1, 2])
def test_batch_dictionary_code_out_of_range_after_garbage_under_nulls(engine, rows, threads):
    # A null's key may be any number; the first bad key of a valid row is named,
    # whichever slice of rows a thread checks first.
    keys = np.zeros(rows, np.int32)
    null = np.zeros(rows, bool)
    keys[:2], null[:2] = (99, -5), True
    keys[rows - 1] = 7
    if rows > 3:
        keys[rows // 2], null[rows // 2] = 1 << 30, True
    column = pa.DictionaryArray.from_arrays(
        pa.array(keys, mask=null), pa.array(["linear"]), safe=False
    )
    market = pm.Market.from_dict(MARKET)
    with pytest.raises(
        InvalidInputError, match=rf"^positions\[{rows - 1}\]\.type: dictionary code 7 out of range"
    ):
        engine.margin_batch(batch_with_type(column), None, market, threads=threads)


@pytest.mark.parametrize("threads", [-1, 0, 2**64, 5000])
def test_batch_threads_value(engine, threads):
    book = batch_with_type(pa.array(["linear"]))
    with pytest.raises(InvalidInputError, match=r"^threads: must be >= 1 and <= 1024, got -?\d+$"):
        engine.margin_batch(book, None, pm.Market.from_dict(MARKET), threads=threads)


def test_batch_threads_and_chunk_size_types(engine):
    book = batch_with_type(pa.array(["linear"]))
    market = pm.Market.from_dict(MARKET)
    with pytest.raises(TypeError):
        engine.margin_batch(book, None, market, threads=1.5)
    with pytest.raises(InvalidInputError, match=r"^chunk_size: must be >= 1, got -1$"):
        engine.margin_batch(book, None, market, chunk_size=-1)
    out = engine.margin_batch(book, None, market, threads=1, chunk_size=2**62)
    assert out.num_rows == 1


# -- finding 4: scenario counts --------------------------------------------------------


def profile_with(**groups) -> dict:
    d = json.loads(json.dumps(DEFAULT))
    for name, changes in groups.items():
        d["groups"].setdefault(name, {}).update(changes)
    return d


def test_scenarios_per_group_are_capped():
    bomb = profile_with(BTC={"price_points": 100_001, "vol_shocks": [0.0] * 100})
    with pytest.raises(ProfileError, match=r"^groups\.BTC: .*limit of 100001 per group$"):
        pm.RiskParams.from_dict(bomb)
    ok = profile_with(BTC={"price_points": 33_333, "vol_shocks": [-0.1, 0.0, 0.1]})
    pm.RiskParams.from_dict(ok)


def test_scenarios_in_total_are_capped():
    groups = {f"G{i}": {"price_points": 33_333, "vol_shocks": [-0.1, 0.0, 0.1]} for i in range(11)}
    with pytest.raises(ProfileError, match=r"^groups: \d+ scenarios in all .*limit of 1000000$"):
        pm.RiskParams.from_dict(profile_with(**groups))


def test_the_bomb_through_toml_and_the_command_line(tmp_path, capsys):
    from pmengine import cli

    text = pm._core.DEFAULT_PROFILE_TOML.replace(
        "[groups.BTC]\nprice_range = 0.10\nprice_points = 21\nvol_shocks = [-0.3, 0.0, 0.3]",
        "[groups.BTC]\nprice_range = 0.10\nprice_points = 99999\nvol_shocks = ["
        + ", ".join(["0.0"] * 500)
        + "]",
    )
    assert "99999" in text
    with pytest.raises(ProfileError, match=r"^groups\.BTC: price_points × len\(vol_shocks\)"):
        pm.RiskParams.from_toml_str(text)
    params = tmp_path / "bomb.toml"
    params.write_text(text)
    portfolio = tmp_path / "p.json"
    portfolio.write_text(json.dumps({"balances": {"USDT": 1}}))
    market = tmp_path / "m.json"
    market.write_text(json.dumps(MARKET))
    argv = [
        "margin",
        "--portfolio",
        str(portfolio),
        "--market",
        str(market),
        "--params",
        str(params),
    ]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "groups.BTC" in err[0]


def test_status_ladder_is_capped():
    d = json.loads(json.dumps(DEFAULT))
    d["status"] = [{"name": f"L{i}", "above": 5000.0 - i} for i in range(1024)] + [{"name": "LAST"}]
    with pytest.raises(
        ProfileError, match=r"^status: must list at most 1024 levels, got 1025$"
    ) as e:
        pm.RiskParams.from_dict(d)
    assert (e.value.field, e.value.code) == ("status", "out_of_range")


def test_a_long_ladder_names_every_status_in_batch_and_sweep():
    # 300 levels from uniMMR 3.0 down by 0.01: accounts land past level 255, where a
    # status stored in one byte would wrap to another level's name.
    d = json.loads(json.dumps(DEFAULT))
    d["status"] = [{"name": f"L{i}", "above": round(3.0 - 0.01 * i, 2)} for i in range(299)]
    d["status"].append({"name": "LAST"})
    engine = pm.Engine(pm.RiskParams.from_dict(d))
    market = pm.Market.from_dict(MARKET)
    accounts = []
    for i, usdt in enumerate([1e6, 4_000.0, 1_500.0, 1_000.0, 800.0, 700.0, 100.0, -50_000.0]):
        pf = {
            "balances": {"USDT": usdt},
            "positions": [
                {
                    "type": "linear",
                    "symbol": "BTCUSDT",
                    "underlying": "BTC",
                    "qty": 1.0,
                    "entry_price": 60_000,
                }
            ],
        }
        accounts.append((i, pf))
    want = [engine.margin(pm.Portfolio.from_dict(pf), market).status for _, pf in accounts]
    assert any(int(w[1:]) > 255 for w in want if w.startswith("L")), want
    assert "LAST" in want and pm.BANKRUPT in want
    pos, bal = to_columns(accounts)
    out = engine.margin_batch(pa.table(pos), pa.table(bal), market)
    assert out.column("status").to_pylist() == want
    numpy_out = engine.margin_batch(pos, bal, market, output="numpy")
    assert numpy_out["status"].tolist() == want
    assert [engine.params.status_rank(w) for w in want] == sorted(
        engine.params.status_rank(w) for w in want
    )
    assert engine.params.status_rank(pm.BANKRUPT) == len(engine.params.status_levels)
    # One account under moves that take it down the whole ladder.
    pf = pm.Portfolio.from_dict(accounts[2][1])
    moves = {"BTC": [0.0, -0.002, -0.004, -0.006, -0.01, -0.03, -0.5]}
    swept = engine.sweep(pf, market, moves)
    got = [swept["status_names"][k] for k in swept["status"].tolist()]
    assert got == [engine.margin(pf, _moved(market, r)).status for r in moves["BTC"]]
    assert any(g.startswith("L") and int(g[1:]) > 255 for g in got), got


def _moved(market: pm.Market, r: float) -> pm.Market:
    d = market.to_dict()
    d["prices"]["BTC"] *= 1 + r
    return pm.Market.from_dict(d)


# -- finding 9: a non-finite profile value is an error naming the key -------------------


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "+nan"])
def test_non_finite_toml_values_name_the_key(value):
    text = pm._core.DEFAULT_PROFILE_TOML.replace(
        "[groups.BTC]\nprice_range = 0.10", f"[groups.BTC]\nprice_range = {value}"
    )
    assert f"price_range = {value}" in text
    with pytest.raises(
        ProfileError, match=r"^groups\.BTC\.price_range: must be in \[0, 1\), got -?(nan|inf)$"
    ):
        pm.RiskParams.from_toml_str(text)


# -- found by the long fuzz pass: a finite but absurd profile factor made MM or IM inf ---


def profile_setting(path: tuple, value: float) -> dict:
    d = json.loads(json.dumps(DEFAULT))
    target = d
    for k in path[:-1]:
        target = target[k]
    target[path[-1]] = value
    return d


PROFILE_FACTORS = [
    (("margin", "im_factor"), r"margin\.im_factor: must be >= 1 and <= 1000"),
    (("margin", "borrow_mmr"), r"margin\.borrow_mmr: must be a rate >= 0 and <= 1000"),
    (("margin", "vol_floor"), r"margin\.vol_floor: must be <= 10"),
    (("groups", "BTC", "extreme_cover"), r"groups\.BTC\.extreme_cover: must be a rate"),
    (("groups", "BTC", "basis_rate"), r"groups\.BTC\.basis_rate: must be a rate"),
    (("groups", "BTC", "som_rate"), r"groups\.BTC\.som_rate: must be a rate"),
    (("groups", "BTC", "vol_shocks"), r"groups\.BTC\.vol_shocks\[0\]: must be within ±1000"),
    (("systemic", 0, "multiple"), r"systemic\[0\]\.multiple: must be within ±1000"),
    (("systemic", 0, "vol_shock"), r"systemic\[0\]\.vol_shock: must be within ±1000"),
]


@pytest.mark.parametrize(("path", "message"), PROFILE_FACTORS)
@pytest.mark.parametrize("value", [1.7976931348623157e308, 1e4])
def test_profile_factors_are_bounded(path, message, value):
    # The fuzz pass's repros: im_factor and extreme_cover at 1.8e308 gave IM or MM = inf.
    v = [value] if path[-1] == "vol_shocks" else value
    with pytest.raises(ProfileError, match=rf"^{message}"):
        pm.RiskParams.from_dict(profile_setting(path, v))


@pytest.mark.parametrize(("path", "message"), PROFILE_FACTORS)
def test_profile_factors_at_their_bound_keep_figures_finite(engine, path, message):
    value = 10.0 if path[-1] == "vol_floor" else 1000.0
    v = [value] if path[-1] == "vol_shocks" else value
    params = pm.RiskParams.from_dict(profile_setting(path, v))
    e = pm.Engine(params)
    p = pm.Portfolio.from_dict(START_BIG)
    r = e.margin(p, pm.Market.from_dict(MARKET))
    for x in (r.equity, r.adjusted_equity, r.maintenance_margin, r.initial_margin, r.available):
        assert math.isfinite(x), (path, r.to_dict())
    assert r.status == "BANKRUPT" or r.status == params.status_for(r.uni_mmr)


# A book at the input bounds (±1e15): the profile's bounds keep its products finite.
START_BIG = {
    "balances": {"BTC": 1e15, "USDT": -1e15},
    "loans": {"ETH": {"borrowed": 1e15, "interest": 1e15}},
    "positions": [
        {
            "type": "linear",
            "symbol": "BTCUSDT",
            "underlying": "BTC",
            "qty": -1e15,
            "entry_price": 1e15,
        },
        {
            "type": "option",
            "symbol": "BTC-C",
            "underlying": "BTC",
            "kind": "call",
            "strike": 60000,
            "expiry": "2026-12-25T08:00:00Z",
            "qty": -1e15,
        },
    ],
}


def test_toml_profile_keeps_its_key_order():
    text = pm._core.DEFAULT_PROFILE_TOML
    assert pm.RiskParams.from_toml_str(text).to_dict() == tomllib.loads(text)
    assert list(pm.RiskParams.from_toml_str(text).to_dict()) == list(tomllib.loads(text))


# -- finding 1: a refused LiveAccount operation changes nothing ------------------------

NAN, INF = float("nan"), float("inf")
NEW_OPTION = {
    "type": "option",
    "underlying": "SOL",
    "kind": "call",
    "strike": 200,
    "expiry": "2026-12-25T08:00:00Z",
}


def live_account() -> pm.LiveAccount:
    from .test_live import ENGINE, START

    market = {**MARKET, "vols": {"BTC": 0.5, "ETH": 0.6}}  # SOL priced, no vol
    return pm.LiveAccount(ENGINE, pm.Portfolio.from_dict(START), pm.Market.from_dict(market))


def state(live: pm.LiveAccount) -> tuple:
    return (
        live.portfolio.to_dict(),
        live.market.to_dict(),
        live.margin().to_dict(),
        live.rebuilds,
        repr(live),
    )


# Every operation with every reason it can be refused: (operation, error, message start).
REFUSALS = [
    (lambda a: a.update_price("BTC", 0.0), InvalidInputError, "market.prices.BTC: must be > 0"),
    (lambda a: a.update_price("BTC", NAN), InvalidInputError, "market.prices.BTC: must be > 0"),
    (lambda a: a.update_price("NEW", -1.0), InvalidInputError, "market.prices.NEW: must be > 0"),
    (
        lambda a: a.update_prices({"BTC": 61000.0, "ETH": INF, "USDC": 1.0}),
        InvalidInputError,
        "market.prices.ETH: must be > 0",
    ),
    (lambda a: a.update_prices({"AAA": 1.0, "ZZZ": 0.0}), InvalidInputError, "market.prices.ZZZ"),
    (
        lambda a: a.update_mark("BTCUSDT", -5.0),
        InvalidInputError,
        "market.marks.BTCUSDT: must be > 0",
    ),
    (lambda a: a.update_vol("BTC", 0.0), InvalidInputError, "market.vols.BTC: must be > 0"),
    (lambda a: a.set_time(NAN), InvalidInputError, "market.time: must be finite"),
    (lambda a: a.deposit("USDT", 0.0), InvalidInputError, "deposit.qty: must be > 0"),
    (lambda a: a.deposit("USDT", NAN), InvalidInputError, "deposit.qty: must be > 0"),
    (lambda a: a.deposit("PEPE", 10.0), pm.MissingMarketDataError, "balances.PEPE: no price"),
    (lambda a: a.deposit("", 10.0), InvalidInputError, "balances: an asset name must not be empty"),
    (lambda a: a.withdraw("USDT", -1.0), InvalidInputError, "withdraw.qty: must be > 0"),
    (lambda a: a.withdraw("USDT", 1e9), InvalidInputError, "withdraw.qty: exceeds the USDT wallet"),
    (lambda a: a.withdraw("PEPE", 1.0), InvalidInputError, "withdraw.qty: exceeds the PEPE wallet"),
    (lambda a: a.borrow("", 990.0), InvalidInputError, "balances: an asset name must not be empty"),
    (lambda a: a.borrow("PEPE", 1.0), pm.MissingMarketDataError, "balances.PEPE: no price"),
    (lambda a: a.borrow("ETH", INF), InvalidInputError, "borrow.qty: must be > 0"),
    (lambda a: a.repay("USDT", 0.0), InvalidInputError, "repay.qty: must be > 0"),
    (lambda a: a.repay("USDT", 1.0), InvalidInputError, "repay.qty: exceeds the USDT loan"),
    (lambda a: a.repay("PEPE", 1.0), InvalidInputError, "repay.qty: exceeds the PEPE loan"),
]
ORDER_REFUSALS = [
    (("BTCUSDT", NAN), {}, InvalidInputError, "order.qty: must be finite"),
    (("BTCUSDT", 1.0, -3.0), {}, InvalidInputError, "order.price: must be > 0"),
    (("DOGEUSDT", 1.0), {}, InvalidInputError, 'order.symbol: "DOGEUSDT" is not held'),
    (
        ("BTCUSDT", 1.0),
        {"instrument": {"type": "linear", "underlying": "ETH"}},
        InvalidInputError,
        "order.instrument: differs from the held BTCUSDT",
    ),
    (
        ("PEPEUSDT", 1.0),
        {"instrument": {"type": "linear", "underlying": "PEPE"}},
        pm.MissingMarketDataError,
        "market.prices.PEPE: no price",
    ),
    (
        ("SOLUSDT", 1.0),
        {"instrument": {"type": "linear", "underlying": "SOL", "leverage": -5}},
        InvalidInputError,
        "order.instrument.leverage: must be > 0",
    ),
    # A new series without a vol: refused by the rebuild, after the plan passed.
    (("SOL-C", 1.0, 5.0), {"instrument": NEW_OPTION}, pm.MissingMarketDataError, "market.vols"),
    (("SOL-C", 1.0), {"instrument": NEW_OPTION}, pm.MissingMarketDataError, "market.vols"),
    # A new series settling in a coin: refused by the rebuild.
    (
        ("BTC-C", 1.0, 500.0),
        {"instrument": {**NEW_OPTION, "underlying": "BTC", "settle": "ETH", "strike": 70000}},
        InvalidInputError,
        "positions[4].settle: an option must settle in a stablecoin",
    ),
]


@pytest.mark.parametrize(("operation", "error", "message"), REFUSALS)
def test_a_refused_operation_changes_nothing(operation, error, message):
    live = live_account()
    live.update_price("BTC", 60500.0)  # some history first
    live.apply_fill("ETHUSDT", 1.0)
    before = state(live)
    with pytest.raises(error) as e:
        operation(live)
    assert str(e.value).startswith(message), str(e.value)
    assert state(live) == before


@pytest.mark.parametrize("method", ["apply_fill", "what_if", "check_order"])
@pytest.mark.parametrize(("args", "kwargs", "error", "message"), ORDER_REFUSALS)
def test_a_refused_order_changes_nothing(method, args, kwargs, error, message):
    live = live_account()
    before = state(live)
    with pytest.raises(error) as e:
        getattr(live, method)(*args, **kwargs)
    assert str(e.value).startswith(message), str(e.value)
    assert state(live) == before


def test_a_refused_max_order_size_changes_nothing():
    live = live_account()
    before = state(live)
    with pytest.raises(InvalidInputError, match=r'^side: must be "buy" or "sell"'):
        live.max_order_size("BTCUSDT", "long")
    with pytest.raises(pm.MissingMarketDataError):
        live.max_order_size("SOL-C", "buy", instrument=NEW_OPTION)
    assert state(live) == before


def test_the_refused_balance_can_still_be_margined():
    # The repro: the phantom balance made engine.margin raise afterwards.
    from .test_live import ENGINE

    live = pm.LiveAccount(ENGINE, pm.Portfolio(), pm.Market.from_dict(MARKET))
    with pytest.raises(InvalidInputError):
        live.borrow("", 990.0)
    with pytest.raises(pm.MissingMarketDataError):
        live.deposit("PEPE", 990.0)
    assert live.portfolio.balances == []
    assert ENGINE.margin(live.portfolio, live.market).to_dict() == live.margin().to_dict()


# -- finding 9: one validation owner for every way a position is built -----------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"leverage": -5.0}, r"^positions\[0\]\.leverage: must be > 0, got -5$"),
        ({"leverage": 0.0}, r"^positions\[0\]\.leverage: must be > 0, got 0$"),
        ({"leverage": INF}, r"^positions\[0\]\.leverage: must be > 0, got inf$"),
        ({"isolated_margin": -500.0}, r"^positions\[0\]\.isolated_margin: must be > 0, got -500$"),
        ({"isolated_margin": NAN}, r"^positions\[0\]\.isolated_margin: must be > 0, got nan$"),
    ],
)
def test_builders_validate_like_the_json_format(kwargs, message):
    p = pm.Portfolio()
    with pytest.raises(InvalidInputError, match=message):
        p.add_linear("BTCUSDT", "BTC", 1.0, 60000.0, **kwargs)
    with pytest.raises(InvalidInputError, match=message):
        p.add_inverse("BTCUSD_PERP", "BTC", 100.0, 1.0, 60000.0, **kwargs)
    assert len(p) == 0
    position = {
        "type": "linear",
        "symbol": "BTCUSDT",
        "underlying": "BTC",
        "qty": 1,
        "entry_price": 60000,
    }
    with pytest.raises(InvalidInputError, match=message):
        pm.Portfolio.from_dict({"positions": [{**position, **kwargs}]})


# -- findings 6 and 10: no non-finite figure; bounds a real account is inside ------------


def option_book(vol: float) -> tuple[pm.Portfolio, pm.Market]:
    call = {"type": "option", "symbol": "C", "underlying": "BTC", "kind": "call"}
    call |= {"strike": 60000, "expiry": "2026-12-25T08:00:00Z", "qty": -1}
    p = pm.Portfolio.from_dict({"balances": {"USDT": 10000}, "positions": [call]})
    return p, pm.Market.from_dict({**MARKET, "vols": {"BTC": vol}})


@pytest.mark.parametrize("vol", [5e-324, 1e-300, 1e-20])
def test_a_vanishing_vol_prices_at_intrinsic(engine, vol):
    r = engine.margin(*option_book(vol)).to_dict()
    numbers = [v for k, v in r.items() if isinstance(v, float)]
    assert all(abs(x) < 1e300 for x in numbers), r
    assert r == engine.margin(*option_book(1e-13)).to_dict()
    assert r["status"] == "NORMAL"


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda p: p.add_balance("USDT", 1e308), r"^balances\.USDT: must be within ±1e15"),
        (
            lambda p: p.add_linear("B", "BTC", 1e300, 60000.0),
            r"^positions\[0\]\.qty: must be within ±1e15",
        ),
        (
            lambda p: p.add_linear("B", "BTC", 1.0, 1e300),
            r"^positions\[0\]\.entry_price: must be from 1e-15",
        ),
        (
            lambda p: p.add_inverse("B", "BTC", 100.0, 1.0, 1e-300),
            r"^positions\[0\]\.entry_price: must be from",
        ),
        (
            lambda p: p.add_option("C", "BTC", "call", 60000.0, 1.8e12, 1.0),
            r"^positions\[0\]\.expiry: 1800000000000 looks like milliseconds",
        ),
    ],
)
def test_figures_beyond_any_real_account(build, message):
    p = pm.Portfolio()
    with pytest.raises(InvalidInputError, match=message):
        build(p)
    assert p.to_dict() == pm.Portfolio().to_dict()


def test_a_balance_that_would_overflow_is_refused_unchanged():
    p = pm.Portfolio()
    p.add_balance("USDT", 9e14)
    with pytest.raises(InvalidInputError, match=r"^balances\.USDT: must be within ±1e15"):
        p.add_balance("USDT", 9e14)
    assert p.balances == [("USDT", 9e14)]


def test_market_bounds_and_unit_mistakes():
    with pytest.raises(
        InvalidInputError, match=r"^market\.prices\.BTC: must be from 1e-15 to 1e15"
    ):
        pm.Market.from_dict({**MARKET, "prices": {"BTC": 1e300}})
    with pytest.raises(
        InvalidInputError, match=r"^market\.vols\.BTC: must be <= 10 .*is it in percent\?$"
    ):
        pm.Market.from_dict({**MARKET, "vols": {"BTC": 50}})
    with pytest.raises(
        InvalidInputError, match=r"^market\.time: 1795478400000 looks like milliseconds"
    ):
        pm.Market(1_795_478_400_000, prices={"BTC": 60000.0})
    m = pm.Market(1_795_478_400, prices={"BTC": 60000.0})
    with pytest.raises(InvalidInputError, match=r"^market\.vols\.BTC: must be <= 10"):
        m.set_vol("BTC", 45.0)
    with pytest.raises(InvalidInputError, match=r"^market\.marks\.X: must be from 1e-15"):
        m.set_mark("X", 1e-300)


@pytest.mark.parametrize(
    ("operation", "message"),
    [
        (lambda a: a.set_time(1_795_478_400_000.0), r"^market\.time: .* looks like milliseconds"),
        (lambda a: a.update_vol("BTC", 50.0), r"^market\.vols\.BTC: must be <= 10"),
        (
            lambda a: a.update_prices({"BTC": 61000.0, "ETH": 1e300}),
            r"^market\.prices\.ETH: must be from",
        ),
        (lambda a: a.deposit("USDT", 1e300), r"^balances\.USDT: must be within ±1e15"),
        (lambda a: a.apply_fill("BTCUSDT", 1e300), r"^order\.qty: must be within ±1e15"),
    ],
)
def test_live_bounds_refuse_and_change_nothing(operation, message):
    live = live_account()
    before = state(live)
    with pytest.raises(InvalidInputError, match=message):
        operation(live)
    assert state(live) == before


def test_batch_bounds(engine):
    book = batch_with_type(pa.array(["linear"]))
    balances = {"account": [0], "asset": ["USDT"], "qty": [1e300]}
    with pytest.raises(InvalidInputError, match=r"^balances\[0\]\.qty: must be within ±1e15"):
        engine.margin_batch(book, balances, pm.Market.from_dict(MARKET))


# -- found by the fuzz pass: an integer beyond a float as a live account's argument ----


@pytest.mark.parametrize(
    ("operation", "field"),
    [
        (lambda a: a.deposit("USDT", 10**400), "deposit.qty"),
        (lambda a: a.repay("USDT", -(10**400)), "repay.qty"),
        (lambda a: a.update_price("BTC", 10**400), "market.prices.BTC"),
        (lambda a: a.update_prices({"ETH": 10**400}), "market.prices.ETH"),
        (lambda a: a.update_vol("BTC", 10**400), "market.vols.BTC"),
        (lambda a: a.set_time(10**400), "market.time"),
        (lambda a: a.apply_fill("BTCUSDT", 10**400), "order.qty"),
        (lambda a: a.what_if("BTCUSDT", 1.0, 10**400), "order.price"),
        (lambda a: a.max_order_size("BTCUSDT", "buy", target_ratio=10**400), "target_ratio"),
    ],
)
def test_live_arguments_beyond_a_float(operation, field):
    live = live_account()
    before = state(live)
    with pytest.raises(InvalidInputError, match=rf"^{field}: must be a number, got an integer"):
        operation(live)
    assert state(live) == before
    with pytest.raises(TypeError):
        live.deposit("USDT", "10")


# -- every numeric argument of the binding: a huge integer is a wrong value ------------
#
# PyO3's own conversion raised OverflowError for an integer beyond a float (or beyond
# the integer type); every number a method takes goes through one converter now, so
# 10**400 is an InvalidInputError naming the argument. The table covers every
# parameter the stubs type as a number, which `test_every_numeric_parameter_is_covered`
# checks, so a new one cannot be missed.

HUGE = 10**400
STUBS = Path(pm._core.__file__).with_name("_core.pyi")


def numeric_parameters() -> set[str]:
    """`Class.method.parameter` of every public parameter the stubs type with a number."""
    tree = ast.parse(STUBS.read_text())
    aliases = {
        node.targets[0].id: node.value
        for node in tree.body
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)
    }

    def numeric(annotation: ast.AST | None) -> bool:
        for n in ast.walk(annotation) if annotation is not None else ():
            if isinstance(n, ast.Name) and (
                n.id in ("float", "int") or (n.id in aliases and numeric(aliases[n.id]))
            ):
                return True
        return False

    out = set()
    for cls in (n for n in tree.body if isinstance(n, ast.ClassDef)):
        for f in (n for n in cls.body if isinstance(n, ast.FunctionDef)):
            args = f.args.posonlyargs + f.args.args + f.args.kwonlyargs
            for a in args[1:]:  # self / cls
                if numeric(a.annotation) and not (f.name.startswith("_") and f.name != "__new__"):
                    out.add(f"{cls.name}.{f.name}.{a.arg}")
    return out


def new_portfolio() -> pm.Portfolio:
    p = pm.Portfolio()
    p.add_balance("USDT", 1000.0)
    return p


def margin_result(engine: pm.Engine) -> pm.MarginResult:
    return engine.margin(new_portfolio(), pm.Market.from_dict(MARKET))


def small_book() -> pa.Table:
    return pa.table(
        {
            "account": [1],
            "type": ["linear"],
            "symbol": ["BTCUSDT"],
            "underlying": ["BTC"],
            "qty": [1.0],
            "entry_price": [60000.0],
        }
    )


OPTION = ("BTC-C", "BTC", "call", 70000.0, "2026-12-25T08:00:00Z", 1.0)
# `Class.method.parameter` -> (a call with the hostile value x, the field its error names).
# Each runs with x = 10**400 and x = -10**400.
NUMERIC_ARGUMENTS: dict[str, tuple] = {
    "RiskParams.status_for.uni_mmr": (lambda e, x: e.engine.params.status_for(x), "uni_mmr"),
    "Market.__new__.time": (lambda e, x: pm.Market(x), "market.time"),
    "Market.__new__.prices": (lambda e, x: pm.Market(0, prices={"BTC": x}), "market.prices.BTC"),
    "Market.__new__.marks": (lambda e, x: pm.Market(0, marks={"S": x}), "market.marks.S"),
    "Market.__new__.vols": (lambda e, x: pm.Market(0, vols={"BTC": x}), "market.vols.BTC"),
    "Market.set_price.price": (lambda e, x: e.m.set_price("BTC", x), "market.prices.BTC"),
    "Market.set_mark.mark": (lambda e, x: e.m.set_mark("BTCUSDT", x), "market.marks.BTCUSDT"),
    "Market.set_vol.vol": (lambda e, x: e.m.set_vol("BTC", x), "market.vols.BTC"),
    "Market.time.value": (lambda e, x: setattr(e.m, "time", x), "market.time"),
    "Portfolio.add_balance.qty": (lambda e, x: e.p.add_balance("BTC", x), "balances.BTC"),
    "Portfolio.add_loan.borrowed": (lambda e, x: e.p.add_loan("BTC", x), "loans.BTC.borrowed"),
    "Portfolio.add_loan.interest": (
        lambda e, x: e.p.add_loan("BTC", 1.0, x),
        "loans.BTC.interest",
    ),
    "Portfolio.add_linear.qty": (
        lambda e, x: e.p.add_linear("S", "BTC", x, 60000.0),
        r"positions\[0\]\.qty",
    ),
    "Portfolio.add_linear.entry_price": (
        lambda e, x: e.p.add_linear("S", "BTC", 1.0, x),
        r"positions\[0\]\.entry_price",
    ),
    "Portfolio.add_linear.isolated_margin": (
        lambda e, x: e.p.add_linear("S", "BTC", 1.0, 60000.0, isolated_margin=x),
        r"positions\[0\]\.isolated_margin",
    ),
    "Portfolio.add_linear.leverage": (
        lambda e, x: e.p.add_linear("S", "BTC", 1.0, 60000.0, leverage=x),
        r"positions\[0\]\.leverage",
    ),
    "Portfolio.add_inverse.contract_size": (
        lambda e, x: e.p.add_inverse("S", "BTC", x, 1.0, 60000.0),
        r"positions\[0\]\.contract_size",
    ),
    "Portfolio.add_inverse.contracts": (
        lambda e, x: e.p.add_inverse("S", "BTC", 100.0, x, 60000.0),
        r"positions\[0\]\.contracts",
    ),
    "Portfolio.add_inverse.entry_price": (
        lambda e, x: e.p.add_inverse("S", "BTC", 100.0, 1.0, x),
        r"positions\[0\]\.entry_price",
    ),
    "Portfolio.add_inverse.isolated_margin": (
        lambda e, x: e.p.add_inverse("S", "BTC", 100.0, 1.0, 60000.0, isolated_margin=x),
        r"positions\[0\]\.isolated_margin",
    ),
    "Portfolio.add_inverse.leverage": (
        lambda e, x: e.p.add_inverse("S", "BTC", 100.0, 1.0, 60000.0, leverage=x),
        r"positions\[0\]\.leverage",
    ),
    "Portfolio.add_option.strike": (
        lambda e, x: e.p.add_option(*OPTION[:3], x, *OPTION[4:]),
        r"positions\[0\]\.strike",
    ),
    "Portfolio.add_option.expiry": (
        lambda e, x: e.p.add_option(*OPTION[:4], x, OPTION[5]),
        r"positions\[0\]\.expiry",
    ),
    "Portfolio.add_option.qty": (
        lambda e, x: e.p.add_option(*OPTION[:5], x),
        r"positions\[0\]\.qty",
    ),
    "MarginResult.to_json.indent": (lambda e, x: margin_result(e.engine).to_json(x), "indent"),
    "ClassicResult.to_json.indent": (
        lambda e, x: e.engine.classic(new_portfolio(), e.m).to_json(x),
        "indent",
    ),
    "Engine.margin_batch.threads": (
        lambda e, x: e.engine.margin_batch(small_book(), None, e.m, threads=x),
        "threads",
    ),
    "Engine.margin_batch.chunk_size": (
        lambda e, x: e.engine.margin_batch(small_book(), None, e.m, chunk_size=x),
        "chunk_size",
    ),
    "Engine.margin_batch.first_rows": (
        lambda e, x: e.engine.margin_batch(small_book(), None, e.m, first_rows=(0, x)),
        "first_rows",
    ),
    "Engine.sweep.threads": (
        lambda e, x: e.engine.sweep(new_portfolio(), e.m, {"BTC": [0.1]}, threads=x),
        "threads",
    ),
    "LiveAccount.update_price.price": (
        lambda e, x: e.a.update_price("BTC", x),
        "market.prices.BTC",
    ),
    "LiveAccount.update_prices.prices": (
        lambda e, x: e.a.update_prices({"ETH": x}),
        "market.prices.ETH",
    ),
    "LiveAccount.update_mark.mark": (
        lambda e, x: e.a.update_mark("BTCUSDT", x),
        "market.marks.BTCUSDT",
    ),
    "LiveAccount.update_vol.vol": (lambda e, x: e.a.update_vol("BTC", x), "market.vols.BTC"),
    "LiveAccount.set_time.time": (lambda e, x: e.a.set_time(x), "market.time"),
    "LiveAccount.deposit.qty": (lambda e, x: e.a.deposit("USDT", x), "deposit.qty"),
    "LiveAccount.withdraw.qty": (lambda e, x: e.a.withdraw("USDT", x), "withdraw.qty"),
    "LiveAccount.borrow.qty": (lambda e, x: e.a.borrow("USDT", x), "borrow.qty"),
    "LiveAccount.repay.qty": (lambda e, x: e.a.repay("USDT", x), "repay.qty"),
    **{
        f"LiveAccount.{m}.{arg}": (
            lambda e, x, m=m, arg=arg: getattr(e.a, m)("BTCUSDT", **{"qty": 1.0, arg: x}),
            f"order.{arg}",
        )
        for m in ("apply_fill", "what_if", "check_order")
        for arg in ("qty", "price")
    },
    "LiveAccount.max_order_size.target_ratio": (
        lambda e, x: e.a.max_order_size("BTCUSDT", "buy", target_ratio=x),
        "target_ratio",
    ),
    "LiveAccount.max_order_size.price": (
        lambda e, x: e.a.max_order_size("BTCUSDT", "buy", price=x),
        "order.price",
    ),
    "Market.moved.factors": (
        lambda e, x: e.m.moved(new_portfolio(), {"BTC": x}),
        "factors.BTC",
    ),
    "Market.moved.vol_factor": (
        lambda e, x: e.m.moved(new_portfolio(), {}, x),
        "vol_factor",
    ),
    "Engine.crossings.paths": (
        lambda e, x: e.engine.crossings(
            new_portfolio(), e.m, [([("BTC", 1.0)], [x])], [1.0], tol=1e-9
        ),
        r"paths\[0\]\.grid\[0\]",
    ),
    "Engine.crossings.thresholds": (
        lambda e, x: e.engine.crossings(new_portfolio(), e.m, [], [x], tol=1e-9),
        r"thresholds\[0\]",
    ),
    "Engine.crossings.tol": (
        lambda e, x: e.engine.crossings(new_portfolio(), e.m, [], [1.0], tol=x),
        "tol",
    ),
    **{
        f"Engine.{m}.{arg}": (
            lambda e, x, m=m, arg=arg: getattr(e.engine, m)(
                new_portfolio(), e.m, "USDT", **{"target": 0, "rel_tol": 1e-9, arg: x}
            ),
            arg,
        )
        for m in ("deposit_needed", "max_withdrawal")
        for arg in ("target", "rel_tol")
    },
    **{
        f"Engine.liquidation_plan.{arg}": (
            lambda e, x, arg=arg: e.engine.liquidation_plan(
                new_portfolio(), e.m, **{"target": 0, "rel_tol": 1e-9, arg: x}
            ),
            arg,
        )
        for arg in ("target", "rel_tol")
    },
}


class Subjects:
    """Fresh objects for one call, and their state before it."""

    def __init__(self, engine: pm.Engine) -> None:
        self.engine = engine
        self.p = pm.Portfolio()
        self.m = pm.Market.from_dict(MARKET)
        self.a = live_account()
        self.before = self.state()

    def state(self) -> tuple:
        return (self.p.to_json(), self.m.to_json(), state(self.a))


def test_every_numeric_parameter_is_covered():
    assert set(NUMERIC_ARGUMENTS) == numeric_parameters()


@pytest.mark.parametrize("x", [HUGE, -HUGE], ids=["huge", "-huge"])
@pytest.mark.parametrize("name", sorted(NUMERIC_ARGUMENTS))
def test_an_integer_beyond_any_number_is_a_wrong_value(engine, name, x):
    call, field = NUMERIC_ARGUMENTS[name]
    s = Subjects(engine)
    if name == "Engine.margin_batch.chunk_size" and x > 0:
        assert call(s, x).num_rows == 1  # at least 1: one chunk, however large
        return
    with pytest.raises(InvalidInputError, match=rf"^{field}: must be "):
        call(s, x)
    assert s.state() == s.before


@pytest.mark.parametrize("name", sorted(NUMERIC_ARGUMENTS))
def test_a_wrong_type_stays_a_type_error(engine, name):
    call, field = NUMERIC_ARGUMENTS[name]
    wrong = object()
    s = Subjects(engine)
    if name.startswith(("Market.__new__", "Market.time", "LiveAccount.update_prices")) or (
        name in ("Portfolio.add_option.expiry", "Engine.margin_batch.first_rows")
    ):
        # Read through the document format or a sequence: its error, naming the field.
        with pytest.raises((InvalidInputError, TypeError), match=rf"{field}"):
            call(s, wrong)
    else:
        with pytest.raises(TypeError, match=rf"^{field}: must be "):
            call(s, wrong)
    assert s.state() == s.before


@pytest.mark.parametrize("indent", [-1, 65, 2**40])
def test_to_json_indent_is_bounded(engine, indent):
    with pytest.raises(InvalidInputError, match=r"^indent: must be >= 0 and <= 64, got "):
        margin_result(engine).to_json(indent)
    assert json.loads(margin_result(engine).to_json(64)) == margin_result(engine).to_dict()


def test_sweep_arrays_beyond_a_float(engine):
    p, m = new_portfolio(), pm.Market.from_dict(MARKET)
    with pytest.raises(InvalidInputError, match=r'^moves\["BTC"\]: must hold numbers'):
        engine.sweep(p, m, {"BTC": [0.1, HUGE]})
    with pytest.raises(InvalidInputError, match=r"^moves: must hold numbers"):
        engine.sweep(p, m, [[HUGE]], ["BTC"])
    with pytest.raises(InvalidInputError, match=r"^vol_shifts: must be a number"):
        engine.sweep(p, m, {"BTC": [0.1]}, vol_shifts=HUGE)
    with pytest.raises(InvalidInputError, match=r"^vol_shifts: must hold numbers"):
        engine.sweep(p, m, {"BTC": [0.1]}, vol_shifts=[HUGE])
