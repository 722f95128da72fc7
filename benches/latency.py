"""Latency of the live account from Python: p50 and p99 of single calls.

pytest-benchmark reports means and medians of batches; a bot cares about the
tail of single calls, so this times each call alone (time.perf_counter_ns),
after a warm-up, and prints a Markdown table. Accounts: 50 linear positions
over BTC, ETH and SOL (under the scenario model and under ``binance_pm``),
and 20 options on BTC and ETH. Compared with `engine.margin` on the same
Portfolio and Market (which keeps the portfolio's resolution: an evaluation)
and the pure-Python reference on the same account.
A second table times the risk tools (`pmengine.risk`) on the example accounts:
all liquidation prices, 1,000 user stress scenarios, the stablecoin buffer and
the whole `risk_report`, and the liquidation plan of example accounts moved
into liquidation.

    python benches/latency.py [--readme README.md] [--risk-rounds N]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Callable
from importlib import resources
from pathlib import Path

import pmengine as pm
from pmengine import reference, risk
from readme import rewrite

PRICES = {"BTC": 60000.0, "ETH": 3000.0, "SOL": 150.0, "USDT": 1.0}
MARKET = {
    "time": "2026-11-24T00:00:00Z",
    "prices": PRICES,
    "marks": {},
    "vols": {"BTC": 0.5, "ETH": 0.6},
}


def linear_account(rnd: random.Random) -> dict:
    positions = []
    for i in range(48):
        u = rnd.choice(["BTC", "ETH", "SOL"])
        positions.append(
            {
                "type": "linear",
                "symbol": f"{u}USDT{i % 6}",
                "underlying": u,
                "qty": round(rnd.uniform(-3, 3), 4),
                "entry_price": PRICES[u] * rnd.uniform(0.95, 1.05),
            }
        )
    return {"balances": {"USDT": 2e5, "BTC": 1.0}, "positions": positions}


def option_account(rnd: random.Random) -> dict:
    positions = []
    for i in range(20):
        u = "BTC" if i % 2 == 0 else "ETH"
        kind = "call" if i % 4 < 2 else "put"
        strike = round(PRICES[u] * rnd.uniform(0.8, 1.2))
        positions.append(
            {
                "type": "option",
                "symbol": f"{u}-{i}-{strike}",
                "underlying": u,
                "kind": kind,
                "strike": strike,
                "expiry": "2026-12-25T08:00:00Z",
                "qty": round(rnd.uniform(-5, 5), 3),
            }
        )
    return {"balances": {"USDT": 2e5}, "positions": positions}


def percentiles(f: Callable[[], object], n: int) -> tuple[float, float]:
    for _ in range(min(n, 1000)):
        f()
    ts = []
    clock = time.perf_counter_ns
    for _ in range(n):
        t = clock()
        f()
        ts.append(clock() - t)
    ts.sort()
    return ts[n // 2] / 1000, ts[int(n * 0.99)] / 1000


def account_rows(
    name: str, account: dict, qty: float, n: int, params: pm.RiskParams | None = None
) -> list[tuple[str, str, float, float]]:
    params = params or pm.RiskParams.default()
    engine = pm.Engine(params)
    profile = reference.load_profile(params.to_dict())
    symbol = account["positions"][0]["symbol"]  # an order on a held instrument
    portfolio, market = pm.Portfolio.from_dict(account), pm.Market.from_dict(MARKET)
    live = pm.LiveAccount(engine, portfolio, market)
    ticks = iter([60000.0 + i % 97 for i in range(2 * n + 2000)])
    calls: list[tuple[str, Callable[[], object], int]] = [
        ("update_price", lambda: live.update_price("BTC", next(ticks)), n),
        ("what_if", lambda: live.what_if(symbol, qty), n),
        ("check_order", lambda: live.check_order(symbol, qty), n),
        ("margin (live)", live.margin, n),
        ("engine.margin (kept resolution)", lambda: engine.margin(portfolio, market), n),
        ("reference.margin", lambda: reference.margin(account, MARKET, profile), max(n // 100, 50)),
    ]
    return [(name, call, *percentiles(f, k)) for call, f, k in calls]


def measure(n: int) -> list[tuple[str, str, float, float]]:
    rnd = random.Random(7)
    linear, options = linear_account(rnd), option_account(rnd)
    binance = pm.RiskParams.default().with_model("binance_pm")
    return (
        account_rows("50 linear", linear, 0.1, n)
        + account_rows("50 linear, binance_pm", linear, 0.1, n, binance)
        + account_rows("20 options", options, 0.5, n)
    )


def table(rows: list[tuple[str, str, float, float]]) -> str:
    out = ["| account | call | p50 µs | p99 µs |", "| --- | --- | ---: | ---: |"]
    out += [f"| {a} | {c} | {p50:,.2f} | {p99:,.2f} |" for a, c, p50, p99 in rows]
    return "\n".join(out)


RISK_ACCOUNTS = ("near_liquidation", "btc_eth_spread", "covered_call", "short_straddle")
#: Example accounts moved into liquidation, for the liquidation plan: contracts
#: closed (linear, then options) and collateral sold to repay a loan.
PLAN_CASES = (("near_liquidation", -0.05), ("leveraged_spot", -0.24), ("short_straddle", 0.5))


def risk_rows(rounds: int) -> list[tuple[str, str, float, float]]:
    """The risk tools on the example accounts, with the default profile."""
    examples = resources.files("pmengine") / "examples"
    market = pm.Market.from_json((examples / "market.json").read_text())
    engine = pm.Engine()
    rnd = random.Random(5)
    stresses = [
        risk.Scenario(
            f"user {i}", groups={"*": rnd.uniform(-0.5, 0.5)}, vol_shock=rnd.uniform(-0.3, 1.0)
        )
        for i in range(1000)
    ]
    crash = next(s for s in risk.builtin_scenarios() if s.name == "crash_30")
    rows = []
    for name in RISK_ACCOUNTS:
        p = pm.Portfolio.from_json((examples / f"{name}.json").read_text())
        calls: list[tuple[str, Callable[[], object]]] = [
            ("liquidation_prices", lambda p=p: risk.liquidation_prices(engine, p, market)),
            (
                "stress_test, 1,000 scenarios",
                lambda p=p: risk.stress_test(engine, p, market, stresses),
            ),
            (
                "deposit_needed, crash_30",
                lambda p=p: risk.deposit_needed(engine, p, market, scenario=crash),
            ),
            ("max_withdrawal", lambda p=p: risk.max_withdrawal(engine, p, market)),
            ("risk_report", lambda p=p: risk.risk_report(engine, p, market)),
        ]
        for call, f in calls:
            p50, p99 = percentiles(f, rounds)
            rows.append((name, call, p50 / 1000, p99 / 1000))
    for name, move in PLAN_CASES:
        p = pm.Portfolio.from_json((examples / f"{name}.json").read_text())
        scenario = risk.Scenario("m", groups={"*": move})
        m = risk.apply_scenario(scenario, p, market, engine.params)
        p50, p99 = percentiles(lambda p=p, m=m: risk.liquidation_plan(engine, p, m), rounds)
        rows.append((name, f"liquidation_plan, every group {move:+.0%}", p50 / 1000, p99 / 1000))
    return rows


def risk_table(rows: list[tuple[str, str, float, float]]) -> str:
    out = ["| account | call | p50 ms | p99 ms |", "| --- | --- | ---: | ---: |"]
    out += [f"| {a} | {c} | {p50:,.3f} | {p99:,.3f} |" for a, c, p50, p99 in rows]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=20000, help="calls timed per row")
    ap.add_argument(
        "--risk-rounds", type=int, default=30, help="calls timed per risk-tool row (0: none)"
    )
    ap.add_argument(
        "--readme",
        type=Path,
        help="rewrite the README sections between the latency and risk-latency markers",
    )
    args = ap.parse_args(argv)
    text = table(measure(args.n)) if args.n else ""
    print(text)
    risk_text = risk_table(risk_rows(args.risk_rounds)) if args.risk_rounds else ""
    print(risk_text)
    if args.readme:
        if text:
            rewrite(args.readme, "latency", text)
        if risk_text:
            rewrite(args.readme, "risk-latency", risk_text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
