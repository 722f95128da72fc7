"""The ``pmengine`` command line: argument parsing and dispatch. What each
command does (read its files, call the API, print tables or JSON) is in
:mod:`pmengine.present.commands`.

Exit codes: 0 success, 2 bad input (usage, file, portfolio, market or profile),
3 a mode switch refused (every reason printed), 1 an unexpected error.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any

from pmengine._core import Market, __version__
from pmengine.errors import MissingExtraError, PmError

EXIT_OK, EXIT_ERROR, EXIT_BAD_INPUT, EXIT_REFUSED = 0, 1, 2, 3

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

    def account_command(name: str, help: str, json_help: str, run: str) -> argparse.ArgumentParser:
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
        "margin", "margin one account on one market snapshot", "print the result JSON", "margin"
    )
    account_command(
        "greeks",
        "delta, gamma, vega and theta per position and per group",
        "print JSON",
        "greeks",
    )

    account_command(
        "compare",
        "isolated, cross and portfolio margin side by side, and what portfolio margin recognises",
        "print JSON",
        "compare",
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
    sw.set_defaults(run="switch")
    risk_arguments(
        account_command(
            "risk",
            "liquidation prices, stress tests, stablecoin buffer, warnings, liquidation plan",
            "print JSON",
            "risk",
        )
    )
    rep = account_command(
        "report",
        "a self-contained HTML risk report (needs matplotlib: pmengine[plot])",
        "also print the facts as JSON",
        "report",
    )
    risk_arguments(rep)
    rep.add_argument("--out", required=True, help="HTML file to write")

    d = command(sub, "demo", "margin the bundled example accounts and show what is recognised")
    d.add_argument("--market", help="market JSON file (default: the bundled examples/market.json)")
    d.add_argument("--params", help="risk profile (TOML, or JSON)")
    d.add_argument("--json", action="store_true", help="print JSON")
    d.set_defaults(run="demo")

    sc = command(sub, "scan", "margin every account of a columnar book (Parquet files)")
    sc.add_argument(
        "--positions", required=True, help="positions Parquet file (pmengine.book.batch)"
    )
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
        "--part-size",
        type=int,
        help="accounts read and margined at a time (default: about 1 M position rows' worth"
        " of a book sorted by account, 50,000 accounts of another)",
    )
    sc.add_argument("--top", type=int, default=10, help="riskiest accounts to list")
    sc.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bar (default: when stderr is a terminal)",
    )
    sc.add_argument("--json", action="store_true", help="print the summary as JSON")
    sc.set_defaults(run="scan")

    g = command(sub, "gen", "write a seeded synthetic book for demos and benchmarks")
    g.add_argument("--accounts", type=int, required=True, help="number of accounts")
    g.add_argument("--out", required=True, help="directory for positions/balances Parquet files")
    g.add_argument("--positions-per-account", type=int, default=8)
    g.add_argument(
        "--option-share", type=float, default=0.1, help="share of positions that are options"
    )
    g.add_argument("--seed", type=int, default=0)
    g.set_defaults(run="gen")

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
    ib.set_defaults(run="import")

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
    pb.set_defaults(run="parity")
    return p


def _reader_gone() -> int:
    """stdout's reader went away (``pmengine demo | head``): stop quietly. stdout
    goes to the null device so the interpreter's last flush has nothing to report
    (as Python's documentation on SIGPIPE advises); exit 1, as rich does."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return EXIT_ERROR


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:  # the terminal tables: the CLI's extra, pmengine[cli]
        from pmengine.present.commands import COMMANDS
    except ModuleNotFoundError as e:
        if (e.name or "").partition(".")[0] != "rich":
            raise
        print(
            "pmengine: error: the command line draws its tables with rich: "
            "pip install 'pmengine[cli]' (or rich>=13)",
            file=sys.stderr,
        )
        return EXIT_ERROR
    try:
        code: int = COMMANDS[args.run](args)
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
