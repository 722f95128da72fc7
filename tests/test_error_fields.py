"""Errors carry structure: ``err.field`` (the path the message names) and
``err.code`` (a short stable machine code), set where the error is raised, by
the Rust core or by Python, never read back from the message."""

from __future__ import annotations

import copy
import math
import pickle
import typing

import numpy as np
import pytest

import pmengine as pm
from pmengine import _core, errors, reference
from pmengine.account import AccountProfile
from pmengine.exchanges import ccxt
from pmengine.files import read_json

from .conftest import MARKET

LINEAR = {
    "type": "linear",
    "symbol": "BTCUSDT",
    "underlying": "BTC",
    "qty": 1,
    "entry_price": 60000,
}
OPTION = {
    "type": "option",
    "symbol": "BTC-261225-70000-C",
    "underlying": "BTC",
    "kind": "call",
    "strike": 70000,
    "expiry": "2026-12-25T08:00:00Z",
    "qty": -1,
}


def book(*positions: dict, **balances: float) -> dict:
    return {"balances": balances or {"USDT": 1000.0}, "positions": list(positions)}


def changed(pos: dict, **changes: object) -> dict:
    p = copy.deepcopy(pos)
    for k, v in changes.items():
        if v is None:
            del p[k]
        else:
            p[k] = v
    return p


def no_vol() -> dict:
    m = copy.deepcopy(MARKET)
    m["vols"] = {}
    return m


def test_codes_are_one_list_documented_once():
    codes = typing.get_args(errors.ErrorCode)
    assert set(_core.ERROR_CODES) <= set(codes)
    assert len(set(codes)) == len(codes)
    for c in codes:
        assert f"``{c}``" in (errors.__doc__ or ""), c


# Bad accounts and markets: the field and code from the Rust core, and the same
# field, code and class from the reference on the same input.
BAD_ACCOUNTS = [
    (book(changed(LINEAR, entry_price=0)), MARKET, "positions[0].entry_price", "out_of_range"),
    (book(changed(LINEAR, qty=math.nan)), MARKET, "positions[0].qty", "out_of_range"),
    (book(changed(LINEAR, type="swap")), MARKET, "positions[0].type", "invalid_value"),
    (book(changed(OPTION, strike=-1)), MARKET, "positions[0].strike", "out_of_range"),
    (book(changed(OPTION, kind="straddle")), MARKET, "positions[0].kind", "invalid_value"),
    (book(changed(OPTION, expiry="24/12/2026")), MARKET, "positions[0].expiry", "invalid_value"),
    (book(LINEAR, PEPE=1.0), MARKET, "balances.PEPE", "missing_price"),
    (book(changed(LINEAR, underlying="PEPE")), MARKET, "positions[0].underlying", "missing_price"),
    (book(OPTION), no_vol(), "market.vols.BTC-261225-70000-C", "missing_vol"),
]


@pytest.mark.parametrize(("portfolio", "market", "field", "code"), BAD_ACCOUNTS)
def test_rust_and_reference_name_the_same_field_and_code(portfolio, market, field, code):
    with pytest.raises(pm.PmError) as rust:
        pm.Engine().margin(pm.Portfolio.from_dict(portfolio), pm.Market.from_dict(market))
    with pytest.raises(pm.PmError) as ref:
        reference.margin(portfolio, market, reference.default_profile())
    assert (rust.value.field, rust.value.code) == (field, code), str(rust.value)
    assert (ref.value.field, ref.value.code) == (field, code), str(ref.value)
    assert type(rust.value) is type(ref.value)
    assert str(rust.value).startswith(f"{field}: ")


# The document's shape: checked by the core (the reference reads valid documents).
BAD_SHAPES = [
    (book(changed(LINEAR, qty=None)), "positions[0].qty", "missing"),
    (book(changed(LINEAR, qty="1")), "positions[0].qty", "wrong_type"),
    (book(changed(LINEAR, colour="red")), "positions[0].colour", "unknown_key"),
    ({"balances": {"USDT": 1}, "positions": {}}, "positions", "wrong_type"),
]


@pytest.mark.parametrize(("portfolio", "field", "code"), BAD_SHAPES)
def test_the_core_names_the_field_and_code_of_a_bad_shape(portfolio, field, code):
    with pytest.raises(pm.InvalidInputError) as e:
        pm.Portfolio.from_dict(portfolio)
    assert (e.value.field, e.value.code) == (field, code), str(e.value)


def raises(call: typing.Callable[[], object]) -> pm.PmError:
    with pytest.raises(pm.PmError) as e:
        call()
    return e.value


def engine_batch(**options: object) -> object:
    pos = {
        "account": np.array([1]),
        "type": ["linear"],
        "symbol": ["BTCUSDT"],
        "underlying": ["BTC"],
    }
    pos |= {"qty": np.array([1.0]), "entry_price": np.array([60000.0])}
    return pm.Engine().margin_batch(pos, None, pm.Market.from_dict(MARKET), **options)


def test_batch_rows_and_arguments():
    e = raises(lambda: engine_batch(threads=-1))
    assert (type(e), e.field, e.code) == (pm.InvalidInputError, "threads", "out_of_range")
    e = raises(lambda: engine_batch(output="pandas"))
    assert (e.field, e.code) == ("output", "invalid_value")
    pos = {
        "account": np.array([1]),
        "type": ["linear"],
        "symbol": ["BTCUSDT"],
        "underlying": ["BTC"],
    }
    e = raises(lambda: pm.Engine().margin_batch(pos, None, pm.Market.from_dict(MARKET)))
    assert (e.field, e.code) == ("positions.qty", "missing")
    pos |= {"qty": np.array([1.0]), "entry_price": np.array([60000.0]), "colour": ["red"]}
    e = raises(lambda: pm.Engine().margin_batch(pos, None, pm.Market.from_dict(MARKET)))
    assert (e.field, e.code) == ("positions.colour", "unknown_key")


def test_documents_times_profiles_and_arguments():
    cases = [
        (lambda: pm.Portfolio.from_json("{"), "portfolio", "syntax"),
        (lambda: pm.RiskParams.from_toml_str("[groups"), "profile", "syntax"),
        (lambda: pm.Market(1.8e12, prices={"BTC": 1.0}), "market.time", "out_of_range"),
        (lambda: pm.Market("now", prices={"BTC": 1.0}), "market.time", "invalid_value"),
        (
            lambda: pm.Market.from_dict(MARKET | {"vols": {"BTC": 50}}),
            "market.vols.BTC",
            "out_of_range",
        ),
        (lambda: pm.RiskParams.default().status_rank("HEALTHY"), "status", "invalid_value"),
        (lambda: pm.Engine().params.with_model("cross"), "model", "invalid_value"),
        (lambda: pm.RiskParams.from_dict({"version": 1}), "groups", "missing"),
    ]
    for call, field, code in cases:
        e = raises(call)
        assert (e.field, e.code) == (field, code), str(e)


def test_live_account_arguments():
    p = pm.Portfolio.from_dict(book(LINEAR))
    live = pm.LiveAccount(pm.Engine(), p, pm.Market.from_dict(MARKET))
    e = raises(lambda: live.max_order_size("BTCUSDT", "up"))
    assert (e.field, e.code) == ("side", "invalid_value")
    e = raises(lambda: live.update_price("BTC", 10**400))
    assert (e.field, e.code) == ("market.prices.BTC", "out_of_range")
    e = raises(lambda: live.deposit("PEPE", 1.0))
    assert (type(e), e.code) == (pm.MissingMarketDataError, "missing_price")


def test_python_raised_errors_carry_them_too(tmp_path):
    e = raises(lambda: AccountProfile.from_dict({"kyc_level": -1}))
    assert (e.field, e.code) == ("account.kyc_level", "wrong_type")
    e = raises(lambda: ccxt.from_ccxt([{"symbol": "BTCUSDT"}], {"total": {}}))
    assert e.field == "positions[0].symbol" and e.code == "invalid_value"
    missing = tmp_path / "none.json"
    e = raises(lambda: read_json(missing))
    assert (type(e), e.field, e.code) == (pm.errors.InputFileError, str(missing), "unreadable")
    e = raises(lambda: pm.Account.from_dict({"account": {"mode": "hedge"}}))
    assert (e.field, e.code) == ("account.mode", "invalid_value")


def test_an_error_is_built_once_and_survives_pickling():
    e = pm.MissingMarketDataError.at(
        "market.prices.BTC", "no price for BTC in market.prices", "missing_price"
    )
    assert str(e) == "market.prices.BTC: no price for BTC in market.prices"
    again = pickle.loads(pickle.dumps(e))
    assert (type(again), str(again), again.field, again.code) == (type(e), str(e), e.field, e.code)
    rust = raises(lambda: pm.Portfolio.from_dict(book(changed(LINEAR, qty="x"))))
    again = pickle.loads(pickle.dumps(rust))
    assert (str(again), again.field, again.code) == (str(rust), rust.field, rust.code)
    # A class's own code when the raiser names none; a message with no field.
    assert pm.IneligibleError("kyc").code == "ineligible"
    assert pm.InvalidInputError.at("", "a whole document").field == ""
    assert str(pm.InvalidInputError.at("", "a whole document")) == "a whole document"


def test_a_refused_switch_keeps_its_reasons():
    e = pm.ModeSwitchError("kyc_level: too low", [{"code": "kyc_level"}])
    assert (e.reasons, e.code, e.field) == ([{"code": "kyc_level"}], "refused", "")
    e = pm.ModeSwitchError.at("target", "refused")
    assert (str(e), e.field, e.reasons) == ("target: refused", "target", [])
