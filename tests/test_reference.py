"""The pure-Python reference: golden cases and hand-computed figures."""

from __future__ import annotations

import pytest

from pmengine import reference
from pmengine.testing import assert_close

from .conftest import GOLDEN, MARKET

PROFILE = reference.default_profile()


@pytest.mark.parametrize("case", GOLDEN, ids=[c["name"] for c in GOLDEN])
def test_reference_reproduces_golden_case(case):
    assert_close(reference.margin(case["portfolio"], case["market"], PROFILE), case["expected"])


def test_black76_known_value_and_parity():
    assert reference.black76("call", 100, 100, 0.2, 1.0) == pytest.approx(
        7.965567455405804, abs=1e-12
    )
    c, p = reference.black76("call", 100, 90, 0.5, 0.3), reference.black76("put", 100, 90, 0.5, 0.3)
    assert c - p == pytest.approx(10.0, abs=1e-9)


def test_leveraged_spot_by_hand():
    # 1 BTC on a 48,000 USDT loan: Λ_USD = 48,000 finances 0.8 of the BTC (φ = 48k/60k);
    # scanned spot 48,000 on a ±10 % grid: loss 4,800 = MM; E_adj = 57,000 − 48,000.
    r = reference.margin({"balances": {"BTC": 1, "USDT": -48000}}, MARKET, PROFILE)
    assert r["groups"]["BTC"]["financed_spot"] == pytest.approx(48000)
    assert r["maintenance_margin"] == pytest.approx(4800)
    assert r["adjusted_equity"] == pytest.approx(9000)
    assert r["uni_mmr"] == pytest.approx(9000 / 4800)


def test_btc_eth_offset_by_hand():
    # Long 1 BTC perp (D = 60k, L = 6,000), short 20 ETH perp (D = −60k, L = 7,200):
    # m = min(6k, 7.2k, 6k, 7.2k) = 6,000 -> credit 0.5 · 6,000 = 3,000; systemic crash/squeeze:
    # 60k·0.1 − 60k·0.12 = −1,200 in the squeeze -> 1,200 < scan 10,200.
    pos = [
        {
            "type": "linear",
            "symbol": "BTCUSDT",
            "underlying": "BTC",
            "qty": 1,
            "entry_price": 60000,
        },
        {
            "type": "linear",
            "symbol": "ETHUSDT",
            "underlying": "ETH",
            "qty": -20,
            "entry_price": 3000,
        },
    ]
    r = reference.margin({"balances": {"USDT": 50000}, "positions": pos}, MARKET, PROFILE)
    assert r["offset_credit"] == pytest.approx(3000)
    assert r["scan"] == pytest.approx(6000 + 7200 - 3000)
    assert r["maintenance_margin"] == pytest.approx(10200)


def test_collateral_tiers_by_hand():
    # 100 BTC = 6M: 5M at 0.95 + 1M at 0.90.
    r = reference.margin({"balances": {"BTC": 100}}, MARKET, PROFILE)
    assert r["adjusted_equity"] == pytest.approx(4.75e6 + 0.9e6)
    assert r["maintenance_margin"] == 0 and r["uni_mmr"] is None
