"""Every bad input of METHODOLOGY.md §8 raises a named pmengine error that names
the field and the value; nothing panics, nothing returns NaN as a margin."""

from __future__ import annotations

import copy
import math

import pytest

import pmengine as pm
from pmengine import InvalidInputError, MissingMarketDataError, ProfileError

from .conftest import MARKET

OPTION = {
    "type": "option",
    "symbol": "BTC-261225-70000-C",
    "underlying": "BTC",
    "kind": "call",
    "strike": 70000,
    "expiry": "2026-12-25T08:00:00Z",
    "qty": -1,
}
LINEAR = {
    "type": "linear",
    "symbol": "BTCUSDT",
    "underlying": "BTC",
    "qty": 1,
    "entry_price": 60000,
}
INVERSE = {
    "type": "inverse",
    "symbol": "BTCUSD_PERP",
    "underlying": "BTC",
    "contract_size": 100,
    "contracts": -10,
    "entry_price": 60000,
}


def run(portfolio: dict, market: dict | None = None):
    m = pm.Market.from_dict(market if market is not None else MARKET)
    return pm.Engine().margin(pm.Portfolio.from_dict(portfolio), m)


def with_position(pos: dict, **changes) -> dict:
    p = copy.deepcopy(pos)
    p.update(changes)
    return {"balances": {"USDT": 1000}, "positions": [LINEAR, p]}


def market_with(section: str, key: str, value) -> dict:
    m = copy.deepcopy(MARKET)
    m.setdefault(section, {})[key] = value
    return m


# -- missing market data ---------------------------------------------------------------


def test_balance_without_price():
    with pytest.raises(MissingMarketDataError) as e:
        run({"balances": {"PEPE": 1}})
    assert str(e.value) == "balances.PEPE: no price for PEPE in market.prices"
    assert isinstance(e.value, KeyError) and isinstance(e.value, pm.PmError)


def test_position_underlying_and_settle_without_price():
    with pytest.raises(
        MissingMarketDataError, match=r"^positions\[1\]\.underlying: no price for PEPE"
    ):
        run(with_position(LINEAR, underlying="PEPE"))
    with pytest.raises(MissingMarketDataError, match=r"^positions\[1\]\.settle: no price for DAI"):
        run(with_position(LINEAR, settle="DAI"))


def test_option_without_vol():
    m = copy.deepcopy(MARKET)
    del m["vols"]["BTC"]
    with pytest.raises(MissingMarketDataError, match=r"^market\.vols\.BTC-261225-70000-C: no vol"):
        run(with_position(OPTION), m)


# -- non-finite or non-positive numbers ------------------------------------------------


@pytest.mark.parametrize("value", [0, -1, math.nan, math.inf])
@pytest.mark.parametrize("section", ["prices", "marks", "vols"])
def test_market_numbers(section, value):
    with pytest.raises(
        InvalidInputError, match=rf"^market\.{section}\.BTC[A-Z]*: must be > 0, got"
    ):
        pm.Market.from_dict(market_with(section, "BTCUSDT" if section == "marks" else "BTC", value))


@pytest.mark.parametrize(
    ("pos", "field"),
    [
        (OPTION, "strike"),
        (INVERSE, "contract_size"),
        (INVERSE, "entry_price"),
        (LINEAR, "entry_price"),
    ],
)
@pytest.mark.parametrize("value", [0, -5, math.nan, math.inf])
def test_position_positive_fields(pos, field, value):
    with pytest.raises(InvalidInputError) as e:
        run(with_position(pos, **{field: value}))
    assert str(e.value).startswith(f"positions[1].{field}: must be > 0, got ")


@pytest.mark.parametrize(
    ("pos", "field"), [(LINEAR, "qty"), (INVERSE, "contracts"), (OPTION, "qty")]
)
@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_quantities(pos, field, value):
    with pytest.raises(InvalidInputError, match=rf"^positions\[1\]\.{field}: must be finite"):
        run(with_position(pos, **{field: value}))


def test_non_finite_balance():
    with pytest.raises(InvalidInputError, match=r"^balances\.BTC: must be finite, got nan"):
        run({"balances": {"BTC": math.nan}})


def test_wrong_types_name_the_field():
    with pytest.raises(InvalidInputError, match=r'^positions\[1\]\.qty: must be a number, got "1"'):
        run(with_position(LINEAR, qty="1"))
    with pytest.raises(InvalidInputError, match=r"^positions\[1\]\.entry_price: required"):
        p = with_position(LINEAR)
        del p["positions"][1]["entry_price"]
        run(p)
    with pytest.raises(InvalidInputError, match=r"^positions\[1\]\.size: unknown key"):
        run(with_position(LINEAR, size=3))


# -- unknown type or kind, malformed times --------------------------------------------


def test_unknown_type_and_kind():
    with pytest.raises(InvalidInputError, match=r'^positions\[1\]\.type: must be .* got "spot"'):
        run(with_position(LINEAR, type="spot"))
    with pytest.raises(
        InvalidInputError, match=r'^positions\[1\]\.kind: must be "call" or "put", got "C"'
    ):
        run(with_position(OPTION, kind="C"))


def test_malformed_times():
    with pytest.raises(
        InvalidInputError, match=r'^positions\[1\]\.expiry: must be an ISO-8601 time, got "Dec 25"'
    ):
        run(with_position(OPTION, expiry="Dec 25"))
    with pytest.raises(InvalidInputError, match=r"^market\.time: must be an ISO-8601 time"):
        pm.Market.from_dict({**MARKET, "time": "yesterday"})


def test_inverse_settle_must_be_the_underlying():
    with pytest.raises(
        InvalidInputError,
        match=r"^positions\[1\]\.settle: an inverse contract settles in its underlying",
    ):
        run(with_position(INVERSE, settle="USDT"))
    run(with_position(INVERSE, settle="BTC"))  # written out, it is fine


def test_option_must_settle_in_a_stablecoin():
    with pytest.raises(
        InvalidInputError,
        match=r'^positions\[1\]\.settle: an option must settle in a stablecoin.*"BTC"',
    ):
        run(with_position(OPTION, settle="BTC"))


def test_builder_methods_check_too():
    p = pm.Portfolio()
    with pytest.raises(
        InvalidInputError, match=r"^positions\[0\]\.entry_price: must be > 0, got 0"
    ):
        p.add_linear("BTCUSDT", "BTC", 1.0, 0.0)
    assert len(p) == 0  # nothing half-added
    with pytest.raises(InvalidInputError, match=r"^positions\[0\]\.kind"):
        p.add_option("X", "BTC", "straddle", 100.0, "2026-12-25", 1.0)
    with pytest.raises(InvalidInputError, match=r"^balances\.BTC: must be finite"):
        p.add_balance("BTC", math.inf)
    with pytest.raises(InvalidInputError, match=r"^market\.prices\.BTC: must be > 0, got -1"):
        pm.Market("2026-11-24", prices={"BTC": -1})


def test_not_json():
    with pytest.raises(InvalidInputError, match=r"^portfolio: not valid JSON"):
        pm.Portfolio.from_json("{")
    with pytest.raises(InvalidInputError, match=r"^market: not valid JSON"):
        pm.Market.from_json("[1,")


# -- profiles --------------------------------------------------------------------------


def profile(edit) -> dict:
    d = pm.RiskParams.default().to_dict()
    edit(d)
    return d


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda d: d["groups"]["BTC"].update(price_points=20),
            r"^groups\.BTC\.price_points: must be odd and >= 3, got 20",
        ),
        (
            lambda d: d["groups"]["BTC"].update(price_points=1),
            r"^groups\.BTC\.price_points: must be odd and >= 3, got 1",
        ),
        (
            lambda d: d["groups"]["ETH"].update(price_range=1.0),
            r"^groups\.ETH\.price_range: must be in \[0, 1\), got 1",
        ),
        (
            lambda d: d["groups"]["ETH"].update(price_range=-0.1),
            r"^groups\.ETH\.price_range: must be in \[0, 1\)",
        ),
        (
            lambda d: d["groups"]["SOL"].update(extreme_multiple=0.5),
            r"^groups\.SOL\.extreme_multiple: must be >= 1",
        ),
        (
            lambda d: d["groups"]["*"].update(extreme_multiple=5),
            r'^groups\."\*"\.extreme_multiple: extreme_multiple·price_range must be < 1, got 5·0\.2 = 1',
        ),
        (
            lambda d: d["systemic"][0].update(overrides={"BTC": -1.0}),
            r"^systemic\[0\]\.overrides\.BTC: a move of -100 % or worse is impossible, got -1",
        ),
        (
            lambda d: d["systemic"][0].update(multiple=-5),
            r"^systemic\[0\]\.multiple: moves group .* \(-100 % or worse\)",
        ),
        (
            lambda d: d["assets"]["BTC"]["collateral"][1].update(up_to=1000),
            r"^assets\.BTC\.collateral\[1\]\.up_to: tiers must be sorted",
        ),
        (
            lambda d: d["groups"]["BTC"]["concentration"][1].update(above=1),
            r"^groups\.BTC\.concentration\[1\]\.above: tiers must be sorted",
        ),
        (
            lambda d: d["groups"]["BTC"].update(basis_rate=-0.01),
            r"^groups\.BTC\.basis_rate: must be a rate >= 0",
        ),
        (
            lambda d: d["assets"]["USDT"]["collateral"][0].update(rate=1.2),
            r"^assets\.USDT\.collateral\[0\]\.rate: must be in \[0, 1\], got 1\.2",
        ),
        (
            lambda d: d["offsets"][0].update(b="DOGE"),
            r'^offsets\[0\]\.b: names no group of the profile, got "DOGE"',
        ),
        (
            lambda d: d["systemic"][1].update(overrides={"NOPE": 0.1}),
            r'^systemic\[1\]\.overrides\.NOPE: names no group of the profile, got "NOPE"',
        ),
        (
            lambda d: d["groups"]["BTC"].update(pricerange=0.1),
            r"^groups\.BTC\.pricerange: unknown key",
        ),
        (lambda d: d.update(extra=1), r"^extra: unknown key"),
        (
            lambda d: d["groups"]["BTC"].update(price_range="10%"),
            r'^groups\.BTC\.price_range: must be a number, got "10%"',
        ),
        (lambda d: d["status"].pop(), r"^status\[2\]\.above: the last level catches everything"),
    ],
)
def test_bad_profiles(edit, message):
    with pytest.raises(ProfileError, match=message):
        pm.RiskParams.from_dict(profile(edit))


def test_profile_errors_are_invalid_input():
    assert issubclass(ProfileError, InvalidInputError) and issubclass(ProfileError, ValueError)
    with pytest.raises(ProfileError, match=r"^profile: not valid TOML"):
        pm.RiskParams.from_toml_str("[groups")


def test_no_nan_margin_on_extreme_but_valid_numbers(engine):
    # Huge and tiny but finite inputs give finite figures.
    for q in (1e-12, 1e12):
        p = {"balances": {"USDT": q}, "positions": [dict(LINEAR, qty=q), dict(OPTION, qty=-q)]}
        r = run(p)
        for k in ("equity", "maintenance_margin", "initial_margin", "available"):
            assert math.isfinite(getattr(r, k)), (q, k)
