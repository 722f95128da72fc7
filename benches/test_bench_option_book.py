"""10,000 accounts drawing on 200 option series (2 underlyings, 63 grid
scenarios per group): the per-snapshot series cache at work.

- rust cold: the market's series cache is emptied before each pass, so the
  first account holding a series prices it (200 series priced per pass);
- rust warm: the cache is full, no option is priced;
- numpy and the reference reprice every option of every account (they have
  no cache); they run on the first 100 accounts and are reported per account.

Figures are per account (the pass time divided by the accounts margined).
"""

from __future__ import annotations

import random

import pytest

import pmengine as pm
from conftest import numpy_impl

ACCOUNTS = 10_000
SAMPLE = 100
EXPIRIES = (
    "2026-12-04T08:00:00Z",
    "2026-12-25T08:00:00Z",
    "2027-03-26T08:00:00Z",
    "2027-06-25T08:00:00Z",
)
MARKET = {
    "time": "2026-11-24T00:00:00Z",
    "prices": {"BTC": 60000.0, "ETH": 3000.0, "USDT": 1.0},
    "marks": {},
    "vols": {"BTC": 0.5, "ETH": 0.6},
}


def series() -> list[dict]:
    """200 option series: 2 underlyings x 4 expiries x 25 strikes, calls and puts alternating."""
    out = []
    for u, px in (("BTC", 60000.0), ("ETH", 3000.0)):
        for e in EXPIRIES:
            for i in range(25):
                strike = round(px * (0.7 + 0.025 * i))
                kind = "call" if i % 2 else "put"
                sym = f"{u}-{e[2:10].replace('-', '')}-{strike}-{kind[0].upper()}"
                out.append(
                    {
                        "type": "option",
                        "symbol": sym,
                        "underlying": u,
                        "kind": kind,
                        "strike": strike,
                        "expiry": e,
                    }
                )
    return out


def book(seed: int = 42) -> list[dict]:
    rnd = random.Random(seed)
    all_series = series()
    accounts = []
    for _ in range(ACCOUNTS):
        positions = [
            dict(s, qty=round(rnd.uniform(-5, 5), 3))
            for s in rnd.sample(all_series, rnd.randint(2, 8))
        ]
        positions.append(
            {
                "type": "linear",
                "symbol": "BTCUSDT",
                "underlying": "BTC",
                "qty": round(rnd.uniform(-2, 2), 3),
                "entry_price": 60000.0,
            }
        )
        accounts.append(
            {"balances": {"USDT": round(rnd.uniform(2e4, 2e5), 2)}, "positions": positions}
        )
    return accounts


@pytest.fixture(scope="module")
def data():
    accounts = book()
    return {
        "dicts": accounts,
        "rust": [pm.Portfolio.from_dict(a) for a in accounts],
        "market": pm.Market.from_dict(MARKET),
        "engine": pm.Engine(),
        "profile": numpy_impl.compile_profile(pm.RiskParams.default().to_dict()),
    }


def test_book_agrees(data):
    from pmengine import reference

    ref_profile = reference.default_profile()
    for d, p in list(zip(data["dicts"], data["rust"], strict=True))[:20]:
        got = data["engine"].margin(p, data["market"]).maintenance_margin
        for want in (
            numpy_impl.margin(d, MARKET, data["profile"])["maintenance_margin"],
            reference.margin(d, MARKET, ref_profile)["maintenance_margin"],
        ):
            assert got == pytest.approx(want, rel=1e-9, abs=1e-6)


def per_account(benchmark, impl: str, n: int) -> None:
    benchmark.extra_info["implementation"] = impl
    benchmark.extra_info["accounts"] = n


@pytest.mark.benchmark(group="book-10k-options")
def test_rust_cold(benchmark, data):
    engine, market, ports = data["engine"], data["market"], data["rust"]

    def run():
        market.clear_cache()
        for p in ports:
            engine.margin(p, market)

    per_account(benchmark, "rust-cold", ACCOUNTS)
    benchmark.pedantic(run, rounds=5, iterations=1)
    assert market.cached_series == 200


@pytest.mark.benchmark(group="book-10k-options")
def test_rust_warm(benchmark, data):
    engine, market, ports = data["engine"], data["market"], data["rust"]
    for p in ports:
        engine.margin(p, market)

    def run():
        for p in ports:
            engine.margin(p, market)

    per_account(benchmark, "rust", ACCOUNTS)
    benchmark.pedantic(run, rounds=5, iterations=1)


@pytest.mark.benchmark(group="book-10k-options")
def test_numpy(benchmark, data):
    accounts, profile = data["dicts"][:SAMPLE], data["profile"]

    def run():
        for a in accounts:
            numpy_impl.margin(a, MARKET, profile)

    per_account(benchmark, "numpy", SAMPLE)
    benchmark.pedantic(run, rounds=3, iterations=1)


@pytest.mark.benchmark(group="book-10k-options")
def test_reference(benchmark, data):
    from pmengine import reference

    accounts, profile = data["dicts"][:SAMPLE], reference.default_profile()

    def run():
        for a in accounts:
            reference.margin(a, MARKET, profile)

    per_account(benchmark, "reference", SAMPLE)
    benchmark.pedantic(run, rounds=2, iterations=1)
