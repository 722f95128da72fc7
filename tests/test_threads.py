"""Threads on one live account (issue 16, finding 11): the GIL is released where the
work is in Rust and the state is behind the account's lock, so readers and a writer
really overlap; every read is a state the writer produced; nothing deadlocks.

Overlap is shown, not timed: a pure-Python thread advances a counter while a heavy
call is inside Rust, which it could not if the call held the GIL.
"""

from __future__ import annotations

import itertools
import json
import threading
import time

import pmengine as pm
from pmengine.testing import assert_close

from .conftest import MARKET

JOIN_SECONDS = 120  # a deadlock detector, far above the run's time


def option_account(n: int = 120) -> tuple[pm.Engine, pm.Portfolio, pm.Market]:
    options = [
        {
            "type": "option",
            "symbol": f"BTC-{i}",
            "underlying": "BTC" if i % 2 else "ETH",
            "kind": "call" if i % 3 else "put",
            "strike": (60000 if i % 2 else 3000) * (0.8 + 0.4 * i / n),
            "expiry": "2026-12-25T08:00:00Z",
            "qty": 1.0 if i % 4 else -2.0,
        }
        for i in range(n)
    ]
    contracts = [
        {
            "type": "linear",
            "symbol": "BTCUSDT",
            "underlying": "BTC",
            "qty": -3,
            "entry_price": 60100,
        }
    ]
    p = pm.Portfolio.from_dict(
        {"balances": {"USDT": 5e6, "BTC": 2}, "positions": options + contracts}
    )
    return pm.Engine(), p, pm.Market.from_dict(MARKET)


def key(r: pm.MarginResult) -> str:
    return json.dumps(r.to_dict(), sort_keys=True)


# The writer's script: each step a heavy-ish call (options repriced or a rebuild).
STEPS = [
    *[("update_price", ("BTC", 60000.0 + 150.0 * k)) for k in range(1, 9)],
    ("update_vol", ("BTC", 0.55)),
    ("set_time", (1_795_500_000.0,)),
    ("update_prices", ({"BTC": 59000.0, "ETH": 3100.0},)),
    ("deposit", ("USDC", 1000.0)),  # a new asset: a rebuild
    ("apply_fill", ("BTCUSDT", 0.5)),
]


def states_of_the_script() -> list[str]:
    """Every state the script passes through, from a twin account run alone."""
    engine, p, m = option_account()
    twin = pm.LiveAccount(engine, p, m)
    out = [key(twin.margin())]
    for name, args in STEPS:
        getattr(twin, name)(*args)
        out.append(key(twin.margin()))
    return out


def test_readers_see_only_states_the_writer_produced():
    states = states_of_the_script()
    engine, p, m = option_account()
    live = pm.LiveAccount(engine, p, m)
    done = threading.Event()
    seen: list[str] = []
    failures: list[BaseException] = []

    def reader() -> None:
        try:
            while not done.is_set():
                seen.append(key(live.margin()))
                live.portfolio  # noqa: B018 (a read of the state under the lock)
        except BaseException as e:
            failures.append(e)

    def writer() -> None:
        try:
            for name, args in STEPS:
                getattr(live, name)(*args)
                time.sleep(0.001)
        except BaseException as e:
            failures.append(e)
        finally:
            done.set()

    threads = [threading.Thread(target=reader) for _ in range(6)]
    threads.append(threading.Thread(target=writer))
    for t in threads:
        t.start()
    for t in threads:
        t.join(JOIN_SECONDS)
        assert not t.is_alive(), "a thread is stuck: deadlock?"
    assert not failures, failures
    assert seen and set(seen) <= set(states), "a read that no step of the writer produced"
    assert key(live.margin()) == states[-1]
    assert_close(live.margin().to_dict(), engine.margin(live.portfolio, live.market).to_dict())


def progress_during(call) -> int:
    """How far a pure-Python counter thread advances while `call()` runs."""
    counter = [0]
    stop = threading.Event()

    def count() -> None:
        while not stop.is_set():
            counter[0] += 1

    t = threading.Thread(target=count)
    t.start()
    time.sleep(0.01)  # the counter is running
    before = counter[0]
    call()
    after = counter[0]
    stop.set()
    t.join(JOIN_SECONDS)
    return after - before


def deposit_new_asset(live: pm.LiveAccount, asset: str) -> None:
    live.update_price(asset, 1.0)  # not held yet: only the market changes
    live.deposit(asset, 1.0)


def test_heavy_calls_release_the_gil():
    # A large account (1,000 options, 1,000 wallet assets): each call below takes
    # milliseconds in Rust. With the GIL released the counter thread runs meanwhile;
    # a held GIL keeps it still for the whole call, every time.
    engine, p, m = option_account(1000)
    coins = {f"C{i}": 1.0 for i in range(1000)}
    for c in coins:
        p.add_balance(c, 1.0)
        m.set_price(c, 1.0)
    live = pm.LiveAccount(engine, p, m)
    # A tick reprices only the series of one asset, a fraction of a millisecond on
    # 500 series: those run on a larger account (2,000 series an asset), so that a
    # counter thread woken by the released GIL finds a core within the call.
    ticked = pm.LiveAccount(*option_account(4000))
    # A new price, vol or time on every try: a repeated one finds its series cached.
    ticks = itertools.count(1)
    heavy = {
        "set_time": lambda: live.set_time(1_795_500_000.0 + next(ticks)),
        "update_price": lambda: ticked.update_price("BTC", 60500.0 + next(ticks)),
        "update_vol": lambda: ticked.update_vol("ETH", 0.65 + next(ticks) * 1e-4),
        "max_order_size": lambda: live.max_order_size("BTCUSDT", "buy"),
        "deposit": lambda: deposit_new_asset(live, f"N{next(ticks)}"),  # a rebuild
        "classic": lambda: engine.classic(p, m),
        "greeks": lambda: engine.greeks(p, m),
        "LiveAccount": lambda: pm.LiveAccount(engine, p, m),
    }
    for name, call in heavy.items():
        # On a loaded machine the counter thread may not get a core during a
        # millisecond call: many tries, of which one is enough.
        assert any(progress_during(call) > 0 for _ in range(60)), name


def test_writers_and_readers_on_a_small_account_stay_consistent():
    # A small linear account keeps the GIL on its fast path; many threads still see
    # only whole states and end where a single thread would.
    engine = pm.Engine()
    start = {
        "balances": {"USDT": 100000.0},
        "positions": [
            {
                "type": "linear",
                "symbol": "BTCUSDT",
                "underlying": "BTC",
                "qty": 1,
                "entry_price": 60000,
            }
        ],
    }
    live = pm.LiveAccount(engine, pm.Portfolio.from_dict(start), pm.Market.from_dict(MARKET))
    failures: list[BaseException] = []

    def fills() -> None:
        try:
            for _ in range(200):
                live.apply_fill("BTCUSDT", 0.01)
                live.apply_fill("BTCUSDT", -0.01)
        except BaseException as e:
            failures.append(e)

    def reads() -> None:
        try:
            for _ in range(400):
                r = live.margin()
                assert r.maintenance_margin >= 0 and r.equity == r.equity
                live.what_if("BTCUSDT", 0.1)
        except BaseException as e:
            failures.append(e)

    threads = [threading.Thread(target=fills) for _ in range(2)]
    threads += [threading.Thread(target=reads) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(JOIN_SECONDS)
        assert not t.is_alive(), "a thread is stuck: deadlock?"
    assert not failures, failures
    qty = live.portfolio.to_dict()["positions"][0]["qty"]
    assert abs(qty - 1.0) < 1e-9
    assert live.margin().to_dict() == engine.margin(live.portfolio, live.market).to_dict()
