"""Option ticks on the live account: each option keeps where its series is in
the snapshot's cache, so a tick reprices it without a lookup by symbol. After
options are opened, closed and listed again under other terms, with two symbols
of the same terms (one with a vol of its own), vol updates and new times (which
clear the cache) between ticks, the account's margin is `Engine.margin` on the
same portfolio and market, bit for bit."""

from __future__ import annotations

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

import pmengine as pm

ENGINE = pm.Engine()
PRICES = {"BTC": 60000.0, "ETH": 3000.0, "USDT": 1.0}
MARKET = {
    "time": "2026-11-24T00:00:00Z",
    "prices": PRICES,
    "vols": {"BTC": 0.5, "ETH": 0.6, "A": 0.7},
}
EXPIRY = "2026-12-25T08:00:00Z"


def option(underlying: str, kind: str, strike: float) -> dict:
    return {
        "type": "option",
        "underlying": underlying,
        "kind": kind,
        "strike": strike,
        "expiry": EXPIRY,
    }


#: "A" and "B" have the same terms; "A" has a vol of its own, so their series differ.
LISTED = {
    "A": option("BTC", "call", 60000),
    "B": option("BTC", "call", 60000),
    "P": option("BTC", "put", 55000),
    "E": option("ETH", "call", 3100),
}
START = {
    "balances": {"USDT": 200000.0},
    "positions": [
        {"symbol": "A", "qty": 1.0, **LISTED["A"]},
        {"symbol": "B", "qty": -2.0, **LISTED["B"]},
    ],
}


class OptionTicks(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.live = pm.LiveAccount(
            ENGINE, pm.Portfolio.from_dict(START), pm.Market.from_dict(MARKET)
        )
        self.terms = dict(LISTED)

    def held(self, symbol: str) -> float:
        return sum(
            p["qty"] for p in self.live.portfolio.to_dict()["positions"] if p["symbol"] == symbol
        )

    @rule(
        asset=st.sampled_from(sorted(PRICES)),
        moves=st.lists(st.floats(min_value=0.95, max_value=1.05), min_size=1, max_size=4),
    )
    def ticks(self, asset, moves):
        for move in moves:
            self.live.update_price(asset, PRICES[asset] * move)

    @rule(
        symbol=st.sampled_from(sorted(LISTED)),
        qty=st.floats(min_value=-3, max_value=3),
        close=st.booleans(),
    )
    def fill(self, symbol, qty, close):
        held = self.held(symbol)
        q = -held if close and held else qty
        if abs(q) > 1e-3:
            self.live.apply_fill(symbol, q, 100.0, instrument=self.terms[symbol])

    @rule(strike=st.floats(min_value=50000, max_value=60000), kind=st.sampled_from(["call", "put"]))
    def relist_p(self, strike, kind):
        held = self.held("P")
        if held:
            self.live.apply_fill("P", -held, 50.0, instrument=self.terms["P"])
        self.terms["P"] = option("BTC", kind, round(strike))
        self.live.apply_fill("P", 1.5, 80.0, instrument=self.terms["P"])

    @rule(
        key=st.sampled_from(["A", "B", "BTC", "ETH"]), vol=st.floats(min_value=0.3, max_value=0.8)
    )
    def vol(self, key, vol):
        self.live.update_vol(key, vol)

    @rule(hours=st.floats(min_value=0.01, max_value=5))
    def later(self, hours):
        self.live.set_time(self.live.market.time + 3600 * hours)

    @invariant()
    def equals_engine_margin(self):
        assert (
            self.live.margin().to_dict()
            == ENGINE.margin(self.live.portfolio, self.live.market).to_dict()
        )


OptionTicks.TestCase.settings = settings(max_examples=40, stateful_step_count=25, deadline=None)
TestOptionTicks = OptionTicks.TestCase
