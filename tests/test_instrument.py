"""Contract terms as the core owns them (``rust/core/src/instrument.rs``), read
through ``Engine.position_terms``: hand-computed cases, and on generated
accounts the identities that tie them to the margin result and the greeks."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings

import pmengine as pm

from . import strategies as gen

ENGINE = pm.Engine(pm.RiskParams.default())


def test_hand_computed_terms():
    p = pm.Portfolio.from_dict(
        {
            "balances": {"USDT": 10_000.0},
            "positions": [
                {
                    "type": "linear",
                    "symbol": "BTCUSDT",
                    "underlying": "BTC",
                    "qty": -2.0,
                    "entry_price": 61_000.0,
                },
                {
                    "type": "inverse",
                    "symbol": "BTCUSD_PERP",
                    "underlying": "BTC",
                    "contracts": 300.0,
                    "contract_size": 100.0,
                    "entry_price": 50_000.0,
                },
            ],
        }
    )
    m = pm.Market.from_dict(
        {
            "time": "2026-11-24T00:00:00Z",
            "prices": {"BTC": 60_000.0, "USDT": 1.0},
            "marks": {"BTCUSDT": 59_900.0},
        }
    )
    lin, inv = ENGINE.position_terms(p, m)
    assert lin == {
        "type": "linear",
        "symbol": "BTCUSDT",
        "group": "BTC",
        "margin_asset": "USDT",
        "quantity": -2.0,
        "mark": 59_900.0,
        "notional": 2.0 * 59_900.0,
        "dollar_delta": -2.0 * 59_900.0,
        "value": -2.0 * (59_900.0 - 61_000.0),
    }
    # No mark for the inverse contract: it marks at the index, 30,000 USD of face
    # value is 0.5 BTC; long from 50,000 it has gained 30,000·(1/50,000 − 1/60,000) BTC.
    assert inv["type"] == "inverse" and inv["margin_asset"] == "BTC"
    assert inv["mark"] == 60_000.0 and inv["quantity"] == 300.0
    assert inv["notional"] == pytest.approx(30_000.0, rel=1e-15)
    assert inv["value"] == pytest.approx(30_000.0 * (1 / 50_000 - 1 / 60_000), rel=1e-12)
    assert inv["dollar_delta"] == pytest.approx(30_000.0 * 60_000 / 50_000, rel=1e-15)


@settings(max_examples=150, deadline=None)
@given(d=gen.portfolio(), marks=gen.marks())
def test_terms_add_up_to_equity_and_greeks(d, marks):
    """Balances plus every position's value, at index, is the account's equity;
    per group, the positions' dollar deltas are the greeks' less the balances'."""
    p, m = pm.Portfolio.from_dict(d), pm.Market.from_dict(gen.market(marks))
    try:
        r = ENGINE.margin(p, m)
    except pm.InvalidInputError:
        return  # an account the model refuses (tested elsewhere)
    terms = ENGINE.position_terms(p, m)
    prices = m.prices
    assert [t["symbol"] for t in terms] == [x["symbol"] for x in p.positions]
    equity = sum(q * prices[a] for a, q in p.balances)
    equity += sum(t["value"] * prices[t["margin_asset"]] for t in terms)
    assert equity == pytest.approx(r.equity, rel=1e-9, abs=1e-6)
    greeks = ENGINE.greeks(p, m)
    for i, t in enumerate(terms):
        g = greeks["positions"][i]
        assert (t["group"], t["symbol"]) == (g["group"], g["symbol"])
        assert t["dollar_delta"] == pytest.approx(g["delta_usd"], rel=1e-12, abs=1e-9)
        assert t["notional"] >= 0.0 and math.isfinite(t["mark"])


def test_compiled_tables_are_read_from_the_core():
    """Eligibility, switching and classic parameters come compiled, defaults filled
    by the core (the one owner); ``switch_min_ratio`` defaults to the margin call."""
    d = pm.RiskParams.default().to_dict()
    for key in ("eligibility", "switching"):
        d.pop(key, None)
    d["status"] = [
        {"name": "NORMAL", "above": 2.0},
        {"name": "MARGIN_CALL", "above": 1.2},
        {"name": "LIQUIDATION"},
    ]
    p = pm.RiskParams.from_dict(d)
    assert p.eligibility == {
        "min_equity": 0.0,
        "min_kyc_level": 0,
        "require_futures_enabled": False,
        "require_quiz": False,
        "min_trading_days": 0,
        "restricted_jurisdictions": [],
    }
    assert p.switching == {
        "switch_min_ratio": 2.0,
        "switch_max_margin_ratio": 0.8,
        "min_switch_interval": 0.0,
        "allow_options_in_classic": True,
    }
    default = pm.RiskParams.default()
    assert default.classic["cross_margin_call"] == 1.3
    assert default.groups["*"].keys() == default.groups["BTC"].keys()
    assert ("BTC", "ETH", 0.5) in default.offsets
    assert set(default.assets) == set(default.to_dict()["assets"])
