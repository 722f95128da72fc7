"""Market sweeps: scenario evaluations per second of `Engine.sweep`.

One account under many random market moves (every asset of the account moved
at once, uniform in ±30 %), timed as one call from Python (best of 5), on one
thread and on all cores, under both margin models. Accounts: the 50-position
linear account and the 20-option account of `benches/latency.py`.

    python benches/sweep.py [--readme README.md] [-n SCENARIOS]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from pathlib import Path

import numpy as np

import pmengine as pm

sys.path.insert(0, str(Path(__file__).parent))
from latency import MARKET, linear_account, option_account
from readme import rewrite

ASSETS = ["BTC", "ETH", "SOL"]


def best_of(f, k: int = 5) -> float:
    f()
    times = []
    for _ in range(k):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    return min(times)


def rows(n: int) -> list[tuple[str, str, int, int, float, float]]:
    rnd = random.Random(7)
    accounts = [("50 linear", linear_account(rnd)), ("20 options", option_account(rnd))]
    moves = np.random.default_rng(11).uniform(-0.3, 0.3, size=(n, len(ASSETS)))
    market = pm.Market.from_dict(MARKET)
    cores = os.cpu_count() or 1
    out = []
    for model in ("scenario", "binance_pm"):
        engine = pm.Engine(pm.RiskParams.default().with_model(model))
        for name, account in accounts:
            if model == "binance_pm" and name == "20 options":
                continue  # binance_pm has no option formula
            portfolio = pm.Portfolio.from_dict(account)
            k = n if name == "50 linear" else max(n // 50, 1000)
            for threads in sorted({1, cores}):
                t = best_of(
                    lambda e=engine, p=portfolio, k=k, th=threads: e.sweep(
                        p, market, moves[:k], ASSETS, threads=th
                    )
                )
                out.append((name, model, threads, k, t, k / t / threads))
    return out


def table(rs: list[tuple[str, str, int, int, float, float]]) -> str:
    lines = [
        "| account | model | threads | scenarios | time | evaluations / s / core |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for name, model, threads, k, t, per_core in rs:
        lines.append(
            f"| {name} | {model} | {threads} | {k:,} | {t * 1e3:,.1f} ms | {per_core:,.0f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=200_000, help="scenarios of the linear account")
    ap.add_argument(
        "--readme", type=Path, help="rewrite the README section between the sweep markers"
    )
    args = ap.parse_args(argv)
    text = table(rows(args.n))
    print(text)
    if args.readme:
        rewrite(args.readme, "sweep", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
