"""Greeks per position and per group: units, sums, and finite differences of
the engine's own valuation (equity) under a bumped market."""

from __future__ import annotations

import copy

import pytest

import pmengine as pm

from .conftest import MARKET

BOOK = {
    "balances": {"USDT": 50000, "BTC": 0.5},
    "positions": [
        {
            "type": "linear",
            "symbol": "BTCUSDT",
            "underlying": "BTC",
            "qty": -0.3,
            "entry_price": 60000,
        },
        {
            "type": "inverse",
            "symbol": "BTCUSD_PERP",
            "underlying": "BTC",
            "contract_size": 100,
            "contracts": 120,
            "entry_price": 58000,
        },
        {
            "type": "option",
            "symbol": "BTC-261225-65000-C",
            "underlying": "BTC",
            "kind": "call",
            "strike": 65000,
            "expiry": "2026-12-25T08:00:00Z",
            "qty": -2,
        },
        {
            "type": "option",
            "symbol": "ETH-261225-2800-P",
            "underlying": "ETH",
            "kind": "put",
            "strike": 2800,
            "expiry": "2026-12-25T08:00:00Z",
            "qty": 5,
        },
    ],
}


def equity(market: dict) -> float:
    return pm.Engine().margin(pm.Portfolio.from_dict(BOOK), pm.Market.from_dict(market)).equity


def bumped(**changes) -> dict:
    m = copy.deepcopy(MARKET)
    for k, v in changes.items():
        section, key = k.split("__")
        m[section][key] = v
    return m


def test_shape_and_sums(engine):
    g = engine.greeks(pm.Portfolio.from_dict(BOOK), pm.Market.from_dict(MARKET))
    assert [p["symbol"] for p in g["positions"]] == [p["symbol"] for p in BOOK["positions"]]
    assert list(g["groups"]) == ["USD", "BTC", "ETH"]
    btc = g["groups"]["BTC"]
    parts = [p for p in g["positions"] if p["group"] == "BTC"]
    # Group = its positions + its wallet balances (0.5 BTC).
    assert btc["delta"] == pytest.approx(sum(p["delta"] for p in parts) + 0.5, rel=1e-12)
    assert btc["gamma"] == pytest.approx(sum(p["gamma"] for p in parts), rel=1e-12)
    lin = g["positions"][0]
    assert (
        lin["delta"] == pytest.approx(-0.3) and lin["gamma"] == lin["vega"] == lin["theta"] == 0.0
    )
    inv = g["positions"][1]
    assert inv["delta_usd"] == pytest.approx(120 * 100 * 60000 / 58000)  # n·C·P_b/E
    short_call = g["positions"][2]
    assert (
        short_call["delta"] < 0
        and short_call["gamma"] < 0
        and short_call["vega"] < 0
        and short_call["theta"] > 0
    )


def test_delta_and_gamma_are_derivatives_of_equity(engine):
    # USD equity moves with P_BTC by the coin delta: balances q, linear q, inverse
    # n·C/E (its USD UPnL is n·C·(P/E − 1)), options q·N(d1) (marks follow the index).
    g = engine.greeks(pm.Portfolio.from_dict(BOOK), pm.Market.from_dict(MARKET))["groups"]["BTC"]
    h = 1.0
    up, down = (equity(bumped(prices__BTC=60000 + s * h)) for s in (1, -1))
    assert (up - down) / (2 * h) == pytest.approx(g["delta"], rel=1e-6)
    h = 50.0
    up, mid, down = (equity(bumped(prices__BTC=60000 + s * h)) for s in (1, 0, -1))
    assert (up - 2 * mid + down) / h**2 == pytest.approx(g["gamma"], rel=1e-3)


def test_vega_and_theta(engine):
    g = engine.greeks(pm.Portfolio.from_dict(BOOK), pm.Market.from_dict(MARKET))
    eth_put = g["positions"][3]
    base = equity(MARKET)
    vol_up = equity(bumped(vols__ETH=0.61))
    assert vol_up - base == pytest.approx(eth_put["vega"], rel=2e-2)
    later = copy.deepcopy(MARKET)
    later["time"] = "2026-11-25T00:00:00Z"
    day = equity(later) - base
    total_theta = sum(p["theta"] for p in g["positions"])
    assert day == pytest.approx(total_theta, rel=2e-2)
