"""What each ``pmengine`` subcommand does, given its parsed arguments
(:mod:`pmengine.cli` parses them): read the files it names, call the API, print
tables for people (:mod:`.render`) or JSON for programs. Each returns the exit code.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

from pmengine import files, risk
from pmengine._core import Engine, MarginResult, Market, Portfolio, RiskParams
from pmengine.account import Account
from pmengine.cli import EXIT_OK, EXIT_REFUSED
from pmengine.compare import compare, initial_margins, standalone_margin
from pmengine.errors import InputFileError, MissingExtraError
from pmengine.present import render

DEMO_ACCOUNTS = (
    "cash_and_carry",
    "leveraged_spot",
    "btc_eth_spread",
    "coin_margined_hedge",
    "near_liquidation",
    "covered_call",
    "short_straddle",
)


def _read_json(path: str | Path) -> str:
    """A JSON object file's text, read and checked by :mod:`pmengine.files` (which
    names the file in its errors); the core parses the same text again."""
    text = files.read_text(path)
    files.parse_json(path, text, dict)
    return text


def load_params(path: str | None) -> RiskParams:
    if path is None:
        return RiskParams.default()
    if str(path).endswith(".json"):
        return RiskParams.from_dict(files.read_json(path, dict))
    text = files.read_text(path)
    files.parse_toml(path, text)
    return RiskParams.from_toml_str(text)


def example_path(name: str) -> Path:
    """A bundled example file (``examples/NAME.json``)."""
    return Path(str(resources.files("pmengine") / "examples" / f"{name}.json"))


def load_inputs(args: argparse.Namespace) -> tuple[Engine, Portfolio, Market]:
    """The engine, portfolio and market named by --params, --portfolio and --market."""
    engine = Engine(load_params(args.params))
    portfolio = Portfolio.from_json(_read_json(args.portfolio))
    return engine, portfolio, Market.from_json(_read_json(args.market))


def cmd_margin(args: argparse.Namespace) -> int:
    engine, portfolio, market = load_inputs(args)
    result = engine.margin(portfolio, market)
    if args.json:
        print(result.to_json(indent=2))
    else:
        render.console().print(
            render.margin_panel(result, title=f"portfolio margin — {args.portfolio}")
        )
    return EXIT_OK


def cmd_greeks(args: argparse.Namespace) -> int:
    engine, portfolio, market = load_inputs(args)
    greeks = engine.greeks(portfolio, market)
    if args.json:
        print(json.dumps(greeks, indent=2))
    else:
        render.console().print(render.greeks_table(greeks))
    return EXIT_OK


def cmd_compare(args: argparse.Namespace) -> int:
    engine, portfolio, market = load_inputs(args)
    table = compare(engine, portfolio, market)
    if args.json:
        print(json.dumps(table, indent=2))
        return EXIT_OK
    con = render.console()
    con.print(render.mode_comparison_table(table))
    facts = table["recognised"]
    con.print(
        "portfolio margin (scenario) recognises: "
        + ("; ".join(facts) if facts else "no hedge or offset")
    )
    bn = table["binance_pm"]
    if "error" in bn:
        con.print(f"Binance PM cannot margin this account: {bn['error']}")
    else:
        con.print("Binance PM: " + ("; ".join(bn["recognised"]) or "no margin"))
    return EXIT_OK


def cmd_switch(args: argparse.Namespace) -> int:
    engine = Engine(load_params(args.params))
    market = Market.from_json(_read_json(args.market))
    d = files.read_json(args.portfolio, dict)
    if args.account:
        d = {**d, "account": files.read_json(args.account, dict)}
    account = Account.from_dict(d)
    result = account.switch_mode(args.to, engine, market, now=args.now, dry_run=True)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        render.console().print(render.switch_panel(result))
    return EXIT_OK if result.allowed else EXIT_REFUSED


def risk_inputs(args: argparse.Namespace) -> tuple[Portfolio, Market, risk.RiskReport]:
    """The risk report of the account named by the command line."""
    engine, portfolio, market = load_inputs(args)
    user = [
        s for path in args.stress for s in risk.load_scenarios(files.read_toml(path), str(path))
    ]
    user += [risk.parse_move(spec) for spec in args.move]
    for s in user:
        risk.check_scenario(s, engine.params, market)
    scenarios = risk.builtin_scenarios() + user
    report = risk.risk_report(
        engine,
        portfolio,
        market,
        scenarios=scenarios,
        co_move=args.co_move,
        buffer_asset=args.asset,
        target=args.target,
        buffer_scenario=None if args.buffer_stress == "none" else args.buffer_stress,
        plan_target=args.plan_target,
    )
    return portfolio, market, report


def cmd_risk(args: argparse.Namespace) -> int:
    _, _, report = risk_inputs(args)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2, allow_nan=False))
    else:
        render.console().print(render.risk_panel(report, title=f"risk — {args.portfolio}"))
    return EXIT_OK


def cmd_report(args: argparse.Namespace) -> int:
    from pmengine.present import report as html_report

    portfolio, market, facts = risk_inputs(args)
    engine = Engine(load_params(args.params))
    page = html_report.html_page(engine, portfolio, market, facts, title=str(args.portfolio))
    try:
        Path(args.out).write_text(page)
    except OSError as e:
        raise InputFileError.at(args.out, f"cannot write: {e.strerror}") from None
    if args.json:
        print(json.dumps(facts.to_dict(), indent=2, allow_nan=False))
    else:
        print(f"wrote {args.out}")
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    engine = Engine(load_params(args.params))
    market = Market.from_json(_read_json(args.market or example_path("market")))
    rows: list[tuple[str, Portfolio, MarginResult, float]] = []
    for name in DEMO_ACCOUNTS:
        portfolio = Portfolio.from_json(_read_json(example_path(name)))
        result = engine.margin(portfolio, market)
        rows.append((name, portfolio, result, standalone_margin(engine, portfolio, market)))
    if args.json:
        out = {
            name: {"result": r.to_dict(), "standalone_maintenance_margin": alone}
            for name, _, r, alone in rows
        }
        print(json.dumps(out, indent=2))
        return EXIT_OK
    con = render.console()
    con.print(
        f"[bold]pmengine demo[/] — {len(rows)} example accounts, market {args.market or 'examples/market.json'}\n"
    )
    for name, portfolio, r, alone in rows:
        if portfolio.description:
            con.print(f"[bold]{name}[/]: {portfolio.description}")
        con.print(render.margin_panel(r, title=name))
        con.print(
            f"  position by position the same book needs {render.usd(alone)} USD of MM; "
            f"portfolio margin asks {render.usd(r.maintenance_margin)} USD\n"
        )
    con.print(render.comparison_table(rows))
    im = [(name, initial_margins(engine, p, market, r)) for name, p, r, _ in rows]
    con.print(render.classic_comparison_table(im))
    for name, portfolio, _, _ in rows:
        if name != "near_liquidation":
            continue
        falls = [
            lp
            for lp in risk.liquidation_prices(engine, portfolio, market)
            if lp.direction == "down" and lp.status == "LIQUIDATION" and lp.price is not None
        ]
        for lp in falls:
            con.print(
                f"{name}: {lp.group} at {render.price(lp.price or 0.0)} USD "
                f"({render.move(lp.move or 0.0)}, the others fixed) takes uniMMR to "
                f"{render.ratio(lp.threshold)}: liquidation"
            )
        con.print(
            f"  stresses, buffer and liquidation plan: pmengine risk --portfolio {name}.json ..."
        )
    from pmengine.exchanges import binance

    export = Path(str(resources.files("pmengine") / "examples" / "binance_export"))
    parity = binance.parity(binance.load_export(export))
    con.print(
        f"\nexamples/binance_export, a Binance account's export: {parity['summary']['text']} "
        "(pmengine parity binance examples/binance_export)"
    )
    return EXIT_OK


def require_arrow(command: str) -> None:
    """Raise MissingExtraError naming the extra when pyarrow or numpy is missing."""
    try:
        import numpy  # noqa: F401
        import pyarrow  # type: ignore[import-untyped]  # noqa: F401
    except ModuleNotFoundError as e:
        raise MissingExtraError(
            f"{command} reads and writes Parquet with pyarrow and numpy ({e.name} is not "
            "installed): pip install 'pmengine[arrow]'"
        ) from None


def cmd_scan(args: argparse.Namespace) -> int:
    require_arrow("pmengine scan")
    from pmengine.book.scan import ScanSummary, scan_files

    engine = Engine(load_params(args.params))
    market = Market.from_json(_read_json(args.market))
    for path in (args.positions, args.balances):
        if path is not None:
            files.check_regular(path)

    def run(step: Any = None) -> ScanSummary:
        return scan_files(
            engine,
            args.positions,
            args.balances,
            market,
            args.out,
            threads=args.threads,
            errors=args.errors,
            accounts_per_part=args.part_size,
            top=args.top,
            on_progress=step,
        )

    err = render.console(stderr=True)
    if args.progress if args.progress is not None else err.is_terminal:
        import time

        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        columns = (
            "scanning",
            BarColumn(),
            TextColumn("{task.percentage:>3.0f}%"),
            TextColumn(
                "{task.fields[accounts]:>12,} accounts  {task.fields[rate]:>10,.0f} accounts/s"
            ),
            TimeRemainingColumn(),
        )
        start = time.perf_counter()
        with Progress(*columns, console=err, transient=True) as bar:
            task = bar.add_task("scan", total=None, accounts=0, rate=0.0)

            def step(rows: int, total: int, accounts: int) -> None:
                rate = accounts / max(time.perf_counter() - start, 1e-9)
                bar.update(task, completed=rows, total=total, accounts=accounts, rate=rate)

            summary = run(step)
    else:
        summary = run()
    if args.json:
        print(json.dumps(summary.to_dict(), indent=2))
    else:
        render.console().print(render.scan_summary(summary.to_dict()))
    return EXIT_OK


def cmd_gen(args: argparse.Namespace) -> int:
    require_arrow("pmengine gen")
    from pmengine.book.synthetic import market_dict, write_book

    out = Path(args.out)
    rows = write_book(
        out,
        args.accounts,
        positions_per_account=args.positions_per_account,
        option_share=args.option_share,
        seed=args.seed,
    )
    (out / "market.json").write_text(json.dumps(market_dict(), indent=2) + "\n")
    print(
        f"wrote {args.accounts:,} accounts: {out / 'positions.parquet'} ({rows[0]:,} rows), "
        f"{out / 'balances.parquet'} ({rows[1]:,} rows), {out / 'market.json'}"
    )
    return EXIT_OK


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def cmd_import(args: argparse.Namespace) -> int:
    from pmengine.exchanges import binance

    account = binance.load_export(args.dir)
    try:
        out = account.to_files(args.out)
    except OSError as e:
        raise InputFileError.at(args.out, f"cannot write: {e.strerror or e}") from None
    for w in account.warnings:
        print(f"pmengine: warning: {w}", file=sys.stderr)
    if args.json:
        print(
            json.dumps(
                {
                    "out": str(out),
                    "files": ["portfolio.json", "market.json", "profile.toml"],
                    "positions": len(account.portfolio["positions"]),
                    "assets": sorted(account.portfolio["balances"]),
                    "loans": sorted(account.portfolio["loans"]),
                    "time": account.market["time"],
                    "warnings": account.warnings,
                },
                indent=2,
            )
        )
    else:
        p = account.portfolio
        print(
            f"wrote {out / 'portfolio.json'}, {out / 'market.json'}, {out / 'profile.toml'}: "
            f"{_count(len(p['balances']), 'asset')}, {_count(len(p['loans']), 'loan')}, "
            f"{_count(len(p['positions']), 'position')} "
            f"at {account.market['time']} (model binance_pm)"
        )
    return EXIT_OK


def cmd_parity(args: argparse.Namespace) -> int:
    from pmengine.exchanges import binance

    report = binance.parity(binance.load_export(args.dir))
    if args.json:
        print(json.dumps(report, indent=2, allow_nan=False))
    else:
        con = render.console()
        con.print(f"[bold]parity with Binance[/] — {args.dir}")
        for part in render.parity_tables(report):
            con.print(part)
    return EXIT_OK


#: The body of each subcommand, by the name the parser gives it.
COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "margin": cmd_margin,
    "greeks": cmd_greeks,
    "compare": cmd_compare,
    "switch": cmd_switch,
    "risk": cmd_risk,
    "report": cmd_report,
    "demo": cmd_demo,
    "scan": cmd_scan,
    "gen": cmd_gen,
    "import": cmd_import,
    "parity": cmd_parity,
}
