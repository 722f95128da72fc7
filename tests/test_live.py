"""The live account: after every tick, fill, deposit, loan and what-if its
margin equals a full recompute (rel 1e-9) and a what-if leaves it unchanged;
max_order_size is the limit found by an independent bisection."""

from __future__ import annotations

import copy
import math
import threading

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

import pmengine as pm
from pmengine import reference
from pmengine.testing import assert_close

ENGINE = pm.Engine()
PROFILE = reference.default_profile()
MARKET = {
    "time": "2026-11-24T00:00:00Z",
    "prices": {"BTC": 60000.0, "ETH": 3000.0, "USDT": 1.0, "USDC": 1.0},
    "vols": {"BTC": 0.5, "ETH": 0.6},
}
START = {
    "balances": {"USDT": 40000.0, "BTC": 0.5},
    "positions": [
        {
            "type": "linear",
            "symbol": "BTCUSDT",
            "underlying": "BTC",
            "qty": -0.5,
            "entry_price": 60100,
        },
        {"type": "linear", "symbol": "ETHUSDT", "underlying": "ETH", "qty": 4, "entry_price": 2990},
        {
            "type": "inverse",
            "symbol": "BTCUSD_PERP",
            "underlying": "BTC",
            "contract_size": 100,
            "contracts": 50,
            "entry_price": 59000,
        },
        {
            "type": "option",
            "symbol": "BTC-261225-65000-C",
            "underlying": "BTC",
            "kind": "call",
            "strike": 65000,
            "expiry": "2026-12-25T08:00:00Z",
            "qty": -1,
        },
    ],
}
INSTRUMENTS = {
    "BTCUSDT": {"type": "linear", "underlying": "BTC"},
    "ETHUSDT": {"type": "linear", "underlying": "ETH"},
    "ETHUSDT_261225": {"type": "linear", "underlying": "ETH"},
    "BTCUSD_PERP": {"type": "inverse", "underlying": "BTC", "contract_size": 100},
    "BTC-261225-65000-C": {
        "type": "option",
        "underlying": "BTC",
        "kind": "call",
        "strike": 65000,
        "expiry": "2026-12-25T08:00:00Z",
    },
    "ETH-261225-2800-P": {
        "type": "option",
        "underlying": "ETH",
        "kind": "put",
        "strike": 2800,
        "expiry": "2026-12-25T08:00:00Z",
    },
}
SIZE = {"BTCUSD_PERP": 100.0, "ETHUSDT": 5.0, "ETHUSDT_261225": 5.0, "ETH-261225-2800-P": 5.0}


def new_account() -> pm.LiveAccount:
    return pm.LiveAccount(ENGINE, pm.Portfolio.from_dict(START), pm.Market.from_dict(MARKET))


def full(live: pm.LiveAccount) -> dict:
    return ENGINE.margin(live.portfolio, live.market).to_dict()


class LiveMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.live = new_account()

    @rule(asset=st.sampled_from(["BTC", "ETH"]), move=st.floats(min_value=0.85, max_value=1.15))
    def tick(self, asset, move):
        self.live.update_price(asset, MARKET["prices"][asset] * move)

    @rule(
        asset=st.sampled_from(["USDT", "USDC", "BTC"]),
        qty=st.floats(min_value=0.01, max_value=5000),
    )
    def deposit(self, asset, qty):
        self.live.deposit(asset, qty if asset != "BTC" else qty / 10000)

    @rule(
        asset=st.sampled_from(["USDT", "BTC", "ETH"]),
        qty=st.floats(min_value=0.01, max_value=20000),
    )
    def borrow(self, asset, qty):
        self.live.borrow(asset, qty / MARKET["prices"][asset])

    @precondition(lambda self: any(q < 0 for _, q in self.live.portfolio.balances))
    @rule(share=st.floats(min_value=0.01, max_value=1.0))
    def repay(self, share):
        asset, q = next((a, q) for a, q in self.live.portfolio.balances if q < 0)
        self.live.repay(asset, -q * share)

    @rule(
        symbol=st.sampled_from(sorted(INSTRUMENTS)),
        qty=st.floats(min_value=-1.0, max_value=1.0).filter(lambda x: abs(x) > 1e-3),
        at_mark=st.booleans(),
        slip=st.floats(min_value=0.97, max_value=1.03),
    )
    def fill_or_what_if(self, symbol, qty, at_mark, slip):
        q = qty * SIZE.get(symbol, 1.0)
        inst = INSTRUMENTS[symbol]
        price = None
        if not at_mark:
            base = self.live.market.prices[inst["underlying"]]
            price = base * slip if inst["type"] != "option" else base * 0.02 * slip
        before = self.live.margin().to_dict()
        wi = self.live.what_if(symbol, q, price, instrument=inst).to_dict()
        assert self.live.margin().to_dict() == before, "what_if changed the account"
        self.live.apply_fill(symbol, q, price, instrument=inst)
        assert_close(self.live.margin().to_dict(), wi)

    @invariant()
    def equals_full_recompute(self):
        assert_close(self.live.margin().to_dict(), full(self.live))


LiveMachine.TestCase.settings = settings(max_examples=60, stateful_step_count=25, deadline=None)
TestLiveAccount = LiveMachine.TestCase


def test_fills_merge_like_an_exchange():
    live = new_account()
    live.apply_fill("BTCUSDT", 0.2, 61000)  # reduce the short: realise (60100 - 61000) * 0.2
    pos = next(p for p in live.portfolio.positions if p["symbol"] == "BTCUSDT")
    assert pos["qty"] == pytest.approx(-0.3) and pos["entry_price"] == 60100
    assert dict(live.portfolio.balances)["USDT"] == pytest.approx(40000 - 180)
    live.apply_fill("ETHUSDT", 4, 3010)  # increase: average entry
    pos = next(p for p in live.portfolio.positions if p["symbol"] == "ETHUSDT")
    assert pos["qty"] == 8 and pos["entry_price"] == pytest.approx(3000)
    live.apply_fill("ETHUSDT", -8, 3000)  # close: the position goes, P&L stays
    assert "ETHUSDT" not in [p["symbol"] for p in live.portfolio.positions]


def test_check_order_reasons():
    live = new_account()
    ok = live.check_order("BTCUSDT", 0.1)
    assert ok.allowed and ok.reason is None
    big = live.check_order("ETHUSDT", 500)
    assert not big.allowed and big.reason == "insufficient_available_margin"
    assert big.result.available < 0
    # A reducing order is allowed even when available margin is short.
    live.withdraw("USDT", 39000)
    r = live.margin()
    if r.status in ("NORMAL", "MARGIN_CALL", "REDUCE_ONLY"):
        assert live.check_order("ETHUSDT", -4).allowed


def test_max_order_size_against_a_bisection_in_the_reference():
    live = new_account()
    target = 1.5
    q = live.max_order_size("ETHUSDT", "buy", target_ratio=target)
    assert q > 0

    def ok(x: float) -> bool:
        p = copy.deepcopy(live.portfolio.to_dict())
        eth = next(pos for pos in p["positions"] if pos["symbol"] == "ETHUSDT")
        mark = 3000.0
        eth["entry_price"] = (eth["qty"] * eth["entry_price"] + x * mark) / (eth["qty"] + x)
        eth["qty"] += x
        r = reference.margin(p, live.market.to_dict(), PROFILE)
        ratio = math.inf if r["uni_mmr"] is None else r["uni_mmr"]
        return ratio >= target and r["available"] >= 0

    lo, hi = 0.0, 1.0
    while ok(hi):
        lo, hi = hi, hi * 2
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if ok(mid) else (lo, mid)
    assert q == pytest.approx(lo, rel=1e-8)
    assert ok(q)  # never over the limit
    r = live.what_if("ETHUSDT", q)
    assert r.uni_mmr >= target


def test_bad_input():
    live = new_account()
    with pytest.raises(pm.InvalidInputError, match=r'^order\.symbol: "DOGEUSDT" is not held'):
        live.what_if("DOGEUSDT", 1.0)
    with pytest.raises(pm.InvalidInputError, match=r'^side: must be "buy" or "sell", got "long"'):
        live.max_order_size("BTCUSDT", "long")
    with pytest.raises(pm.InvalidInputError, match=r"^market\.prices\.BTC: must be > 0, got 0"):
        live.update_price("BTC", 0.0)
    with pytest.raises(pm.InvalidInputError, match=r"^withdraw\.qty: exceeds the USDT wallet"):
        live.withdraw("USDT", 1e9)
    with pytest.raises(pm.InvalidInputError, match=r"^order\.qty: must be finite"):
        live.what_if("BTCUSDT", float("nan"))
    assert_close(live.margin().to_dict(), full(live))


def test_readers_and_a_writer_in_threads():
    live = new_account()
    errors: list[BaseException] = []

    def reader():
        try:
            for _ in range(2000):
                r = live.margin()
                assert r.maintenance_margin > 0
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    def writer():
        for i in range(500):
            live.update_price("BTC", 60000 + (i % 50))
            live.what_if("BTCUSDT", 0.01)

    threads = [threading.Thread(target=reader) for _ in range(3)] + [
        threading.Thread(target=writer)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert_close(live.margin().to_dict(), full(live))
