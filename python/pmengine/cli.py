"""The ``pmengine`` command line: a thin layer over the API.

Exit codes: 0 success, 2 bad input (usage, file, portfolio, market or profile),
3 a mode switch refused (every reason printed), 1 an unexpected error.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from pmengine import files, risk
from pmengine._core import Engine, MarginResult, Market, Portfolio, RiskParams, __version__
from pmengine.account import Account
from pmengine.compare import compare, standalone_margin
from pmengine.errors import InputFileError, MissingExtraError, PmError

try:  # the terminal tables: the CLI's extra, pmengine[cli]
    from pmengine import render

    NO_RICH = False
except ModuleNotFoundError as e:
    if (e.name or "").partition(".")[0] != "rich":
        raise
    NO_RICH = True

EXIT_OK, EXIT_ERROR, EXIT_BAD_INPUT, EXIT_REFUSED = 0, 1, 2, 3

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
    from pmengine import report as html_report

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
    con.print(render.classic_comparison_table(engine, rows, market))
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
    from pmengine.scan import ScanSummary, scan_files

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
    from pmengine.synthetic import market_dict, write_book

    if args.accounts < 0 or args.positions_per_account < 0:
        raise InputFileError.at("", "--accounts and --positions-per-account must be >= 0")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
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


def _parity_value(x: Any, unit: str) -> str:
    if x is None:
        return "—"
    if isinstance(x, str):
        return x
    if unit == "ratio":
        return render.ratio(x)
    if unit in ("USD", "USDT", "USDC"):
        return render.usd(x)
    return f"{x:,.8f}"


def _parity_check(row: dict[str, Any]) -> Any:
    from rich.text import Text

    if row["binance"] is None:
        return Text("not reported", style="dim")
    if row["pmengine"] is None:
        return Text("no figure", style="dim")
    if row["differs"]:
        rel = row["rel_diff"]
        how = f"differs by {rel:.2e} relative" if rel is not None else "differs"
        return Text(how, style="bold red")
    if row["rel_diff"] is None and not isinstance(row["binance"], str):
        return Text("—", style="dim")
    rel = row["rel_diff"]
    if rel and rel > 1e-6:  # above the relative tolerance, within Binance's last digit
        return Text(f"matches to 8 decimals ({rel:.1e})", style="green")
    return Text("matches" + (f" ({rel:.1e})" if rel else ""), style="green")


PARITY_LABELS = {
    "equity": "actual equity",
    "adjusted_equity": "account equity",
    "maintenance_margin": "maintenance margin",
    "initial_margin": "initial margin",
    "available": "available",
    "uni_mmr": "uniMMR",
    "status": "status",
    "upnl": "unrealised P&L",
}


def parity_tables(report: dict[str, Any]) -> list[Any]:
    """The parity report for people: the account, then each position (rich tables)."""
    from rich.table import Table
    from rich.text import Text

    cols = ("figure", "unit", "Binance", "pmengine binance_pm", "check", "pmengine scenario")
    acct = Table(title=f"account at {report['time']}", title_justify="left")
    for c in cols:
        acct.add_column(c, justify="left" if c in ("figure", "unit", "check") else "right")
    for r in report["account"]:
        cells: list[Any] = [_parity_value(r[k], r["unit"]) for k in ("binance", "pmengine")]
        scen = _parity_value(r["scenario"], r["unit"])
        if r["figure"] == "status":
            cells = [render.status_text(x) if x not in (None, "—") else Text("—") for x in cells]
        acct.add_row(
            PARITY_LABELS.get(r["figure"], r["figure"]), r["unit"], *cells, _parity_check(r), scen
        )
    pos = Table(
        title="positions (margin asset units; scenario: the position margined alone)",
        title_justify="left",
    )
    for c in ("position", *cols):
        pos.add_column(
            c, justify="left" if c in ("position", "figure", "unit", "check") else "right"
        )
    for p in report["positions"]:
        for k, r in enumerate(p["figures"]):
            pos.add_row(
                f"{p['market'].upper()} {p['label']}" if k == 0 else "",
                PARITY_LABELS.get(r["figure"], r["figure"]),
                r["unit"],
                _parity_value(r["binance"], r["unit"]),
                _parity_value(r["pmengine"], r["unit"]),
                _parity_check(r),
                _parity_value(r["scenario"], r["unit"]),
                end_section=k == len(p["figures"]) - 1,
            )
    s = report["summary"]
    style = "bold red" if s["differ"] else "bold green"
    out: list[Any] = [acct, pos, Text(s["text"], style=style)]
    if s["scenario_error"]:
        out.append(Text(f"scenario model: {s['scenario_error']}", style="yellow"))
    out += [Text(f"! {w}", style="yellow") for w in s["warnings"]]
    return out


def cmd_parity(args: argparse.Namespace) -> int:
    from pmengine.exchanges import binance

    report = binance.parity(binance.load_export(args.dir))
    if args.json:
        print(json.dumps(report, indent=2, allow_nan=False))
    else:
        con = render.console()
        con.print(f"[bold]parity with Binance[/] — {args.dir}")
        for part in parity_tables(report):
            con.print(part)
    return EXIT_OK


#: The example in each subcommand's --help (run from a clone, where examples/ is
#: the bundled folder; tests/test_cli.py checks that each parses).
EXAMPLES = {
    "margin": [
        "pmengine margin --portfolio examples/btc_eth_spread.json --market examples/market.json"
    ],
    "greeks": [
        "pmengine greeks --portfolio examples/covered_call.json --market examples/market.json"
    ],
    "compare": [
        "pmengine compare --portfolio examples/cash_and_carry.json --market examples/market.json"
    ],
    "switch": [
        "pmengine switch --to portfolio --portfolio examples/cash_and_carry.json \\",
        "    --market examples/market.json --now 2026-11-24T12:00:00Z",
    ],
    "risk": [
        "pmengine risk --portfolio examples/near_liquidation.json --market examples/market.json \\",
        "    --move BTC=-0.2,ETH=-0.25,vol=0.5",
    ],
    "report": [
        "pmengine report --portfolio examples/near_liquidation.json --market examples/market.json \\",
        "    --out report.html",
    ],
    "demo": ["pmengine demo"],
    "scan": [
        "pmengine gen --accounts 10000 --out book/",
        "pmengine scan --positions book/positions.parquet --balances book/balances.parquet \\",
        "    --market book/market.json --out results.parquet",
    ],
    "gen": ["pmengine gen --accounts 100000 --out book/"],
    "import": ["pmengine import binance examples/binance_export --out my_account"],
    "import binance": ["pmengine import binance examples/binance_export --out my_account"],
    "parity": ["pmengine parity binance examples/binance_export"],
    "parity binance": ["pmengine parity binance examples/binance_export"],
}


def time_arg(text: str) -> float:
    """ISO-8601 text or epoch seconds, read as the API reads a market's time."""
    try:
        return Market(float(text) if _is_number(text) else text).time
    except PmError:
        raise argparse.ArgumentTypeError(
            f"must be an ISO-8601 time or seconds since the epoch, got {text!r}"
        ) from None


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="pmengine", description="Portfolio margin for crypto accounts."
    )
    p.add_argument("--version", action="version", version=f"pmengine {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    def command(subs: Any, name: str, help: str) -> argparse.ArgumentParser:
        """A subcommand whose --help gives its description and an example."""
        described: argparse.ArgumentParser = subs.add_parser(
            name.split()[-1],
            help=help,
            description=help[0].upper() + help[1:] + ".",
            epilog="example:\n  " + "\n  ".join(EXAMPLES[name]),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        return described

    def account_command(name: str, help: str, json_help: str, run: Any) -> argparse.ArgumentParser:
        c = command(sub, name, help)
        c.add_argument("--portfolio", required=True, help="portfolio JSON file")
        c.add_argument("--market", required=True, help="market JSON file")
        c.add_argument(
            "--params", help="risk profile (TOML, or JSON); default: the bundled profile"
        )
        c.add_argument("--json", action="store_true", help=json_help)
        c.set_defaults(run=run)
        return c

    def risk_arguments(c: argparse.ArgumentParser) -> None:
        c.add_argument(
            "--stress",
            action="append",
            default=[],
            metavar="FILE",
            help="TOML file of [[stress]] scenarios, added to the built-in ones (repeatable)",
        )
        c.add_argument(
            "--move",
            action="append",
            default=[],
            metavar="SPEC",
            help="a scenario such as BTC=-0.2,ETH=-0.25,vol=0.5 (group or asset returns; repeatable)",
        )
        c.add_argument(
            "--co-move",
            action="store_true",
            help="liquidation prices with the other groups moving in the proportions of the "
            "profile's systemic scenario (default: the other groups fixed)",
        )
        c.add_argument("--asset", default="USDT", help="stablecoin of the buffer (default: USDT)")
        c.add_argument(
            "--target",
            default="NORMAL",
            help="status the buffer keeps: the deposit through --buffer-stress, "
            "the withdrawal now (default: NORMAL)",
        )
        c.add_argument(
            "--buffer-stress",
            default="crash_30",
            metavar="NAME",
            help="scenario the deposit must survive (default: crash_30; 'none': now)",
        )
        c.add_argument(
            "--plan-target",
            default="MARGIN_CALL",
            metavar="STATUS",
            help="status the liquidation plan restores (default: MARGIN_CALL, out of reduce-only)",
        )

    account_command(
        "margin", "margin one account on one market snapshot", "print the result JSON", cmd_margin
    )
    account_command(
        "greeks",
        "delta, gamma, vega and theta per position and per group",
        "print JSON",
        cmd_greeks,
    )

    account_command(
        "compare",
        "isolated, cross and portfolio margin side by side, and what portfolio margin recognises",
        "print JSON",
        cmd_compare,
    )
    sw = command(
        sub, "switch", "check a mode switch (dry run); exit 3 with every reason if refused"
    )
    sw.add_argument("--to", required=True, choices=("portfolio", "classic"), help="target mode")
    sw.add_argument(
        "--portfolio", required=True, help="portfolio JSON file (its 'account' table is used)"
    )
    sw.add_argument("--market", required=True, help="market JSON file")
    sw.add_argument(
        "--account", help="account JSON file (mode, kyc_level, ...); overrides the portfolio's"
    )
    sw.add_argument("--params", help="risk profile (TOML, or JSON)")
    sw.add_argument(
        "--now",
        type=time_arg,
        help="ISO-8601 time (no zone: UTC) or seconds since the epoch (default: the clock)",
    )
    sw.add_argument("--json", action="store_true", help="print the audit record JSON")
    sw.set_defaults(run=cmd_switch)
    risk_arguments(
        account_command(
            "risk",
            "liquidation prices, stress tests, stablecoin buffer, warnings, liquidation plan",
            "print JSON",
            cmd_risk,
        )
    )
    rep = account_command(
        "report",
        "a self-contained HTML risk report (needs matplotlib: pmengine[plot])",
        "also print the facts as JSON",
        cmd_report,
    )
    risk_arguments(rep)
    rep.add_argument("--out", required=True, help="HTML file to write")

    d = command(sub, "demo", "margin the bundled example accounts and show what is recognised")
    d.add_argument("--market", help="market JSON file (default: the bundled examples/market.json)")
    d.add_argument("--params", help="risk profile (TOML, or JSON)")
    d.add_argument("--json", action="store_true", help="print JSON")
    d.set_defaults(run=cmd_demo)

    sc = command(sub, "scan", "margin every account of a columnar book (Parquet files)")
    sc.add_argument("--positions", required=True, help="positions Parquet file (pmengine.batch)")
    sc.add_argument("--balances", help="balances Parquet file")
    sc.add_argument("--market", required=True, help="market JSON file")
    sc.add_argument("--out", required=True, help="results Parquet file to write")
    sc.add_argument("--params", help="risk profile (TOML, or JSON)")
    sc.add_argument("--threads", type=int, help="worker threads (default: one per core)")
    sc.add_argument(
        "--errors",
        choices=("raise", "collect"),
        default="raise",
        help="a bad row fails the scan (raise) or marks its account ERROR (collect)",
    )
    sc.add_argument(
        "--part-size", type=int, default=50_000, help="accounts read and margined at a time"
    )
    sc.add_argument("--top", type=int, default=10, help="riskiest accounts to list")
    sc.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bar (default: when stderr is a terminal)",
    )
    sc.add_argument("--json", action="store_true", help="print the summary as JSON")
    sc.set_defaults(run=cmd_scan)

    g = command(sub, "gen", "write a seeded synthetic book for demos and benchmarks")
    g.add_argument("--accounts", type=int, required=True, help="number of accounts")
    g.add_argument("--out", required=True, help="directory for positions/balances Parquet files")
    g.add_argument("--positions-per-account", type=int, default=8)
    g.add_argument(
        "--option-share", type=float, default=0.1, help="share of positions that are options"
    )
    g.add_argument("--seed", type=int, default=0)
    g.set_defaults(run=cmd_gen)

    imp = command(
        sub, "import", "an exchange export as portfolio.json, market.json and profile.toml"
    )
    imp_sub = imp.add_subparsers(dest="exchange", required=True)
    ib = command(
        imp_sub,
        "import binance",
        "a Binance Portfolio Margin export (a folder of API responses, docs/BINANCE.md)",
    )
    ib.add_argument("dir", metavar="DIR", help="folder of the export's JSON files")
    ib.add_argument("--out", required=True, help="folder to write (all three files or none)")
    ib.add_argument("--json", action="store_true", help="print what was written as JSON")
    ib.set_defaults(run=cmd_import)

    par = command(
        sub, "parity", "an exchange's own margin figures beside pmengine's, figure by figure"
    )
    par_sub = par.add_subparsers(dest="exchange", required=True)
    pb = command(
        par_sub,
        "parity binance",
        "Binance's reported uniMMR, equity, MM and IM beside pmengine's binance_pm "
        "and scenario models",
    )
    pb.add_argument("dir", metavar="DIR", help="folder of the export's JSON files")
    pb.add_argument("--json", action="store_true", help="print the comparison as JSON")
    pb.set_defaults(run=cmd_parity)
    return p


def _reader_gone() -> int:
    """stdout's reader went away (``pmengine demo | head``): stop quietly. stdout
    goes to the null device so the interpreter's last flush has nothing to report
    (as Python's documentation on SIGPIPE advises); exit 1, as rich does."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return EXIT_ERROR


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if NO_RICH:
        print(
            "pmengine: error: the command line draws its tables with rich: "
            "pip install 'pmengine[cli]' (or rich>=13)",
            file=sys.stderr,
        )
        return EXIT_ERROR
    try:
        code: int = args.run(args)
        sys.stdout.flush()  # a reader that went away shows here, not at exit
        return code
    except BrokenPipeError:
        return _reader_gone()
    except MissingExtraError as e:
        _error(e)
        return EXIT_ERROR
    except PmError as e:
        _error(e)
        return EXIT_BAD_INPUT


def _error(e: Exception) -> None:
    """One line on stderr, whatever the message holds (a file name with a newline)."""
    text = str(e).replace("\n", "\\n").replace("\r", "\\r")
    print(f"pmengine: error: {text}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
