"""Terminal rendering of margin results with rich: tables for people.

Programs should use ``MarginResult.to_json()`` (``pmengine ... --json``) instead.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from pmengine._core import BANKRUPT, MarginResult, Portfolio
from pmengine.compare import binance_recognised, recognised
from pmengine.compare import usd as usd  # re-exported: the CLI formats with render.usd
from pmengine.risk import Exposure, LiquidationPlan, LiquidationPrice, RiskReport, StressResult

STATUS_STYLE = {
    "NORMAL": "bold green",
    "MARGIN_CALL": "bold yellow",
    "REDUCE_ONLY": "bold dark_orange",
    "LIQUIDATION": "bold red",
    BANKRUPT: "bold white on red",
    "ERROR": "bold magenta",
}


class FitTable:
    """A table laid out for the width it is printed at: a number is never cut.

    Columns made with ``wrap=False`` (numbers, statuses, names) are exactly as
    wide as their widest cell, so no cell of theirs is wrapped or shortened. When the columns do not fit side by side, the
    table is printed as several tables, each repeating the first ``keys``
    columns, with as many of the others as fit; headers wrap at spaces.
    ``legend`` is printed under the last part (what jargon headers mean).
    """

    def __init__(self, title: str = "", keys: int = 1, legend: str = "") -> None:
        self.title, self.keys, self.legend = title, keys, legend
        self.columns: list[tuple[str, dict[str, Any]]] = []
        self.rows: list[tuple[list[Any], dict[str, Any]]] = []

    def add_column(self, header: str, *, wrap: bool = False, **kwargs: Any) -> None:
        self.columns.append((header, {"wrap": wrap, **kwargs}))

    def add_row(self, *cells: Any, **kwargs: Any) -> None:
        self.rows.append((list(cells), kwargs))

    def _need(self, i: int, tight: bool) -> int:
        """Column ``i``'s width with padding (2): its widest unbreakable cell and its
        header (``tight``: the header's longest word, the header wrapping)."""
        header, opts = self.columns[i]
        cells = [Text(r[i]) if isinstance(r[i], str) else r[i] for r, _ in self.rows]
        lens = [
            max((len(w) for w in c.plain.split()), default=0) if opts["wrap"] else c.cell_len
            for c in cells
            if isinstance(c, Text)
        ]
        head = max((len(w) for w in header.split()), default=0) if tight else len(header)
        return max([*lens, head, 1]) + 2

    def parts(self, width: int) -> list[Table]:
        """The tables that print this one in ``width`` columns of text."""
        n = len(self.columns)
        tight = sum(self._need(i, False) + 1 for i in range(n)) + 1 > width
        need = [self._need(i, tight) + 1 for i in range(n)]  # + its left border
        keys = list(range(min(self.keys, n)))
        widest = max(need[len(keys) :], default=0)
        while len(keys) > 1 and sum(need[i] for i in keys) + 1 + widest > width:
            keys.pop()  # the repeated columns leave no room: repeat fewer of them
        base = sum(need[i] for i in keys) + 1
        chunks: list[list[int]] = []
        for i in range(len(keys), n):
            if chunks and base + sum(need[j] for j in chunks[-1]) + need[i] <= width:
                chunks[-1].append(i)
            else:
                chunks.append([i])
        out = []
        for k, chunk in enumerate(chunks or [[]]):
            cont = " (cont.)" if k else ""
            t = Table(title=self.title + cont if self.title else None, title_justify="left")
            for i in keys + chunk:
                header, opts = self.columns[i]
                opts = dict(opts)
                if not opts.pop("wrap"):  # as wide as its widest cell: never cut
                    opts["width"] = need[i] - 3
                t.add_column(header, **opts)
            for cells, kwargs in self.rows:
                t.add_row(*(cells[i] for i in keys + chunk), **kwargs)
            out.append(t)
        return out

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        parts = self.parts(options.max_width)
        for k, t in enumerate(parts):
            if k:
                yield Text("")
            yield t
        if self.legend:
            yield Text(self.legend, style="dim")


def ratio(x: float) -> str:
    """uniMMR as a percentage (inf when there is no margin)."""
    if math.isinf(x):
        return "∞" if x > 0 else "-∞"
    return f"{x * 100:,.1f} %"


def status_text(status: str) -> Text:
    return Text(status, style=STATUS_STYLE.get(status, "bold"))


def summary_table(r: MarginResult) -> Table:
    t = Table(show_header=False, box=None, pad_edge=False)
    t.add_column(style="dim")
    t.add_column(justify="right")
    t.add_row("status", status_text(r.status))
    t.add_row("uniMMR (adjusted equity / MM)", ratio(r.uni_mmr))
    t.add_row("equity, USD", usd(r.equity))
    t.add_row("adjusted equity, USD", usd(r.adjusted_equity))
    t.add_row("maintenance margin, USD", usd(r.maintenance_margin))
    t.add_row("initial margin, USD", usd(r.initial_margin))
    t.add_row("available, USD", usd(r.available))
    if r.model == "binance_pm":
        t.add_row("of which loans, USD", usd(r.borrow_margin))
        return t
    t.add_row("scan after offsets, USD", usd(r.scan))
    t.add_row("systemic, USD", usd(r.systemic))
    t.add_row("offset credit, USD", usd(r.offset_credit))
    t.add_row("borrowing add-on, USD", usd(r.borrow_margin))
    return t


def groups_table(r: MarginResult) -> FitTable:
    t = FitTable(
        title="risk groups (USD)",
        legend="in use: long spot netted against short contracts; financed: spot bought "
        "with loans, scanned; scan loss: the group's worst grid loss; SOM: short-option "
        "minimum; basis: add-on between hedged instruments; conc.: concentration add-on; "
        "worst move: the price move (and vol shock) of the scan loss",
    )
    for col in (
        "group",
        "delta",
        "in use",
        "financed",
        "scan loss",
        "SOM",
        "basis",
        "conc.",
        "worst move",
    ):
        t.add_column(col, justify="left" if col == "group" else "right")
    for name, g in r.groups.items():
        move, vol = g.worst_scenario
        worst = f"{move * 100:+.1f} %" + (f", vol {vol * 100:+.0f} %" if vol else "")
        t.add_row(
            name,
            usd(g.delta),
            usd(g.spot_in_use),
            usd(g.financed_spot),
            usd(g.scan_loss),
            usd(g.som),
            usd(g.basis),
            usd(g.concentration),
            worst,
        )
    return t


def binance_positions_table(r: MarginResult) -> FitTable:
    t = FitTable(title="contracts (margin asset units; COIN-M size in coin)")
    for col in ("symbol", "asset", "size", "bracket", "MMR", "cum", "MM", "IM", "UPnL"):
        t.add_column(col, justify="left" if col in ("symbol", "asset") else "right")
    for p in r.positions:
        t.add_row(
            p["symbol"],
            p["asset"],
            f"{p['notional']:,.6g}",
            str(p["bracket"]),
            f"{p['mmr'] * 100:.2f} %",
            f"{p['cum']:,.6g}",
            f"{p['maintenance_margin']:,.6g}",
            f"{p['initial_margin']:,.6g}",
            f"{p['upnl']:,.6g}",
        )
    return t


def binance_assets_table(r: MarginResult) -> FitTable:
    t = FitTable(title="assets (v, loan and MM in asset units; USD columns marked)")
    for col in ("asset", "v", "equity USD", "collateral USD", "loan", "loan MM", "MM"):
        t.add_column(col, justify="left" if col == "asset" else "right")
    for name, a in r.assets.items():
        t.add_row(
            name,
            f"{a['v']:,.8g}",
            usd(a["equity"]),
            usd(a["collateral_value"]),
            f"{a['loan']:,.8g}",
            f"{a['loan_margin']:,.8g}",
            f"{a['maintenance_margin']:,.8g}",
        )
    return t


def margin_panel(r: MarginResult, title: str = "portfolio margin") -> Panel:
    if r.model == "binance_pm":
        facts = binance_recognised(r)
        parts: list[RenderableType] = [
            summary_table(r),
            Text(""),
            binance_positions_table(r),
            Text(""),
            binance_assets_table(r),
        ]
        title = f"{title} (Binance's formula, binance_pm)"
    else:
        facts = recognised(r)
        parts = [summary_table(r), Text(""), groups_table(r)]
    if facts:
        parts += [Text(""), Text("recognised: " + "; ".join(facts), style="italic")]
    return Panel(Group(*parts), title=title, title_align="left")


def console(*, stderr: bool = False) -> Console:
    # A pipe or a CI log has no width: use one that fits the tables, unless
    # COLUMNS names one (rich reads it).
    stream = sys.stderr if stderr else sys.stdout
    sized = stream.isatty() or os.environ.get("COLUMNS", "").isdigit()
    return Console(stderr=stderr, highlight=False, width=None if sized else 120)


def comparison_table(rows: Sequence[tuple[str, Portfolio, MarginResult, float]]) -> FitTable:
    """One line per account: portfolio MM against the position-by-position MM."""
    t = FitTable(title="portfolio margin against position by position (USD)")
    for col in ("account", "status", "uniMMR", "portfolio MM", "position by position", "saving"):
        t.add_column(col, justify="left" if col in ("account", "status") else "right")
    for name, _, r, alone in rows:
        saving = f"{(1 - r.maintenance_margin / alone) * 100:.0f} %" if alone > 0 else "—"
        t.add_row(
            name,
            status_text(r.status),
            ratio(r.uni_mmr),
            usd(r.maintenance_margin),
            usd(alone),
            saving,
        )
    return t


def classic_comparison_table(rows: Sequence[tuple[str, dict[str, Any]]]) -> FitTable:
    """One line per account: initial margin under classic cross margin against
    portfolio margin, and Binance's portfolio margin ("—" where its formula cannot
    margin the account: options); ``rows`` as :func:`pmengine.compare.initial_margins`
    gives them."""
    t = FitTable(title="initial margin: classic cross against portfolio margin (USD)")
    cols = ("account", "classic status", "classic IM", "portfolio IM", "classic / portfolio")
    for col in (*cols, "Binance PM IM"):
        t.add_column(col, justify="left" if col in ("account", "classic status") else "right")
    for name, m in rows:
        pm, classic, b = m["portfolio"], m["classic_cross"], m["binance_pm"]
        times = f"{classic / pm:.1f}×" if pm > 0 else "—"
        t.add_row(
            name,
            status_text(m["classic_status"]),
            usd(classic),
            usd(pm),
            times,
            "—" if b is None else usd(b),
        )
    return t


def greeks_table(greeks: Mapping[str, Any]) -> FitTable:
    """Greeks per position, then per group (units in the column headers)."""
    t = FitTable(title="greeks")
    cols = (
        "",
        "group",
        "delta (coin)",
        "delta (USD)",
        "gamma (coin/USD)",
        "vega (USD/vol pt)",
        "theta (USD/day)",
    )
    for col in cols:
        t.add_column(col, justify="left" if col in ("", "group") else "right")

    def row(label: str, group: str, g: dict[str, float], style: str = "") -> None:
        t.add_row(
            label,
            group,
            f"{g['delta']:,.6g}",
            usd(g["delta_usd"]),
            f"{g['gamma']:.6g}",
            usd(g["vega"]),
            usd(g["theta"]),
            style=style,
        )

    for p in greeks["positions"]:
        row(f"#{p['position']} {p['symbol']}", p["group"], p)
    for name, g in greeks["groups"].items():
        row("group total", name, g, style="bold")
    return t


# -- risk tools (pmengine risk) ----------------------------------------------------------


def price(x: float) -> str:
    """A price for people: cents above 1 USD, six significant digits below."""
    return f"{x:,.2f}" if abs(x) >= 1 else f"{x:.6g}"


def move(x: float) -> str:
    return f"{x * 100:+.2f} %"


def liquidation_table(lps: Sequence[LiquidationPrice], co_move: bool = False) -> FitTable:
    """Per group and threshold: the price down and up at which uniMMR crosses it."""
    how = "the others in the systemic proportions" if co_move else "the others fixed"
    t = FitTable(title=f"liquidation prices (one group moves, {how})")
    for col in ("group", "uniMMR threshold", "status beyond", "down to", "move", "up to", "move "):
        t.add_column(col, justify="left" if col in ("group", "status beyond") else "right")
    rows: dict[tuple[str, float], dict[str, LiquidationPrice]] = {}
    for lp in lps:
        rows.setdefault((lp.group, lp.threshold), {})[lp.direction] = lp
    for (group, threshold), by_dir in rows.items():
        cells: list[str] = []
        statuses = []
        for d in ("down", "up"):
            x = by_dir.get(d)
            if x is None or x.price is None or x.move is None:
                cells += ["none", ""]
            else:
                cells += [price(x.price), move(x.move)]
                statuses.append(x.status)
        label = " / ".join(dict.fromkeys(statuses)) or "—"
        t.add_row(f"{group}", ratio(threshold), label, *cells)
    return t


def stress_table(stresses: Sequence[StressResult]) -> FitTable:
    t = FitTable(title="stress tests (USD)")
    for col in ("scenario", "P&L", "equity", "adj. equity", "MM", "uniMMR", "status"):
        t.add_column(col, justify="left" if col in ("scenario", "status") else "right")
    for s in stresses:
        t.add_row(
            s.name,
            usd(s.pnl),
            usd(s.equity),
            usd(s.adjusted_equity),
            usd(s.maintenance_margin),
            ratio(s.uni_mmr),
            status_text(s.status),
        )
    return t


def exposure_table(x: Exposure) -> FitTable:
    t = FitTable(title="leverage and concentration")
    t.add_column("figure", style="dim", wrap=True)
    t.add_column("value", justify="right")
    lev = "∞" if math.isinf(x.leverage) else f"{x.leverage:.2f}×"
    t.add_row("gross notional, USD", usd(x.gross_notional))
    t.add_row("effective leverage (gross / equity)", lev)
    for g, v in x.net_exposure.items():
        t.add_row(f"net exposure {g}, USD", usd(v))
    t.add_row(
        f"BTC-correlated share ({', '.join(x.btc_correlated_groups)})",
        f"{x.btc_correlated_share * 100:.1f} %",
    )
    t.add_row("margin usage MM / adjusted equity", ratio(x.mm_usage))
    t.add_row("margin usage IM / adjusted equity", ratio(x.im_usage))
    return t


def plan_table(plan: LiquidationPlan) -> FitTable:
    t = FitTable(title=f"liquidation plan, to uniMMR ≥ {ratio(plan.target_ratio)} ({plan.target})")
    for col in ("step", "action", "uniMMR before", "after", "MM after, USD"):
        t.add_column(col, justify="left" if col == "action" else "right", wrap=col == "action")
    for a in plan.actions:
        t.add_row(
            str(a.step),
            a.description,
            ratio(a.uni_mmr_before),
            ratio(a.uni_mmr_after),
            usd(a.mm_after),
        )
    return t


def risk_panel(report: RiskReport, title: str = "risk") -> Panel:
    """Every risk tool on one account, for people."""
    r = report.result
    head = Text.assemble(
        "status ",
        status_text(r.status),
        f", uniMMR {ratio(r.uni_mmr)}, equity {usd(r.equity)} USD, "
        f"adjusted equity {usd(r.adjusted_equity)} USD, MM {usd(r.maintenance_margin)} USD",
    )
    parts: list[RenderableType] = [head, Text("")]
    if report.liquidation_prices:
        parts += [liquidation_table(report.liquidation_prices, report.co_move), Text("")]
    else:
        parts += [Text("liquidation prices: no group with price risk"), Text("")]
    parts += [stress_table(report.stresses), Text("")]
    stress = f" through {report.buffer_scenario}" if report.buffer_scenario else ""
    a = report.buffer_asset
    if report.deposit is None:
        dep = f"no deposit of {a} keeps {report.buffer_target}{stress}"
    elif report.deposit == 0:
        dep = f"no {a} needed to stay {report.buffer_target}{stress}"
    else:
        dep = f"deposit {usd(report.deposit)} {a} to stay {report.buffer_target}{stress}"
    parts += [
        Text(f"stablecoin buffer: {dep}; withdrawable now, staying {report.buffer_target}: ")
        + Text(f"{usd(report.withdrawal)} {a}"),
        Text(""),
        exposure_table(report.exposure),
    ]
    if report.exposure.warnings:
        parts += [Text("warnings:", style="bold yellow")]
        parts += [Text(f"  ! {w.message}", style="yellow") for w in report.exposure.warnings]
    else:
        parts += [Text("no leverage or concentration warning")]
    plan = report.plan
    parts.append(Text(""))
    if plan.actions:
        parts.append(plan_table(plan))
        spread = ", ".join(f"{k} {usd(v)}" for k, v in plan.sold_usd.items())
        outcome = "target reached" if plan.reached else "target NOT reached: nothing left to sell"
        parts.append(Text(f"sold per asset, USD: {spread or 'none'}; {outcome}"))
    else:
        parts.append(Text(f"liquidation plan: none needed ({r.status})"))
    return Panel(Group(*parts), title=title, title_align="left")


def _opt_ratio(x: float | None, *, percent: bool = True) -> str:
    if x is None:
        return "∞"
    return f"{x * 100:,.1f} %" if percent else f"{x:,.3f}"


def mode_comparison_table(c: dict[str, Any]) -> FitTable:
    """Isolated, cross and both portfolio-margin models side by side
    (`pmengine.compare.compare`); a model that cannot margin the account shows "—"."""
    iso, cross, pm = c["isolated"], c["cross"], c["portfolio"]
    bn = c.get("binance_pm", {"error": "not computed"})
    ok = "error" not in bn
    t = FitTable(title="isolated, cross and portfolio margin (USD)")
    t.add_column("", wrap=True)
    for col in ("isolated", "cross", "portfolio (scenario)", "Binance PM"):
        t.add_column(col, justify="right")

    def b(f: Any, key: str) -> Any:
        return f(bn[key]) if ok else "—"

    for label, key in (
        ("maintenance margin", "maintenance_margin"),
        ("initial margin", "initial_margin"),
        ("available", "available"),
    ):
        t.add_row(label, usd(iso[key]), usd(cross[key]), usd(pm[key]), b(usd, key))
    t.add_row(
        "margin ratio (liq. at 100 %) / uniMMR",
        _opt_ratio(iso["margin_ratio"]),
        _opt_ratio(cross["margin_ratio"]),
        _opt_ratio(pm["uni_mmr"]),
        b(_opt_ratio, "uni_mmr"),
    )
    t.add_row(
        "cross margin level (loans)",
        _opt_ratio(iso["cross_margin_level"], percent=False),
        _opt_ratio(cross["cross_margin_level"], percent=False),
        "—",
        "—",
    )
    t.add_row(
        "status",
        status_text(iso["status"]),
        status_text(cross["status"]),
        status_text(pm["status"]),
        b(status_text, "status"),
    )

    def liq(p: float | None) -> str:
        return "none" if p is None else usd(p)

    for symbol in iso["liquidation_prices"]:
        t.add_row(
            f"liquidation price {symbol}",
            liq(iso["liquidation_prices"][symbol]),
            liq(cross["liquidation_prices"][symbol]),
            liq(pm["liquidation_prices"].get(symbol)) + " (index)",
            liq(bn["liquidation_prices"].get(symbol)) + " (index)" if ok else "—",
        )
    return t


def switch_panel(result: Any) -> Panel:
    """A mode switch attempt (`pmengine.account.SwitchResult`)."""
    d = result.to_dict()
    head = Text.assemble(
        (f"{d['from']} → {d['to']}: ", "bold"),
        (
            "allowed" if result.allowed else "refused",
            "bold green" if result.allowed else "bold red",
        ),
    )
    lines: list[RenderableType] = [head]
    for r in result.reasons:
        lines.append(Text(f"  ✗ {r.code}: {r.message}", style="red"))
    for label, fig in (("before", d["before"]), ("after", d["after"])):
        shown = ", ".join(
            f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in fig.items()
        )
        lines.append(Text(f"  {label}: {shown}", style="dim"))
    return Panel(
        Group(*lines),
        title="mode switch (dry run)" if result.dry_run else "mode switch",
        title_align="left",
    )


def scan_summary(s: dict[str, Any]) -> Group:
    """The end of a batch scan: accounts by status, total MM, the riskiest, throughput."""
    head = Table(show_header=False, box=None, pad_edge=False)
    head.add_column(style="dim")
    head.add_column(justify="right")
    head.add_row("accounts", f"{s['accounts']:,}")
    head.add_row("positions / balances (rows)", f"{s['positions']:,} / {s['balances']:,}")
    head.add_row("total maintenance margin, USD", usd(s["total_maintenance_margin"]))
    head.add_row("accounts in error", f"{s['errors']:,}")
    rate = s["accounts_per_second"]
    head.add_row(
        "time, throughput",
        f"{s['seconds']:.2f} s, {rate:,.0f} accounts/s" if math.isfinite(rate) else "—",
    )
    head.add_row("results", s["out"])
    by = FitTable(title="accounts by status")
    by.add_column("status")
    by.add_column("accounts", justify="right")
    by.add_column("share", justify="right")
    for status, n in sorted(s["by_status"].items(), key=lambda kv: -kv[1]):
        share = f"{n / s['accounts'] * 100:.1f} %" if s["accounts"] else "—"
        by.add_row(status_text(status), f"{n:,}", share)
    risky = FitTable(title="riskiest accounts (lowest uniMMR)")
    for col in ("account", "status", "uniMMR", "MM", "worst group"):
        risky.add_column(col, justify="right" if col in ("uniMMR", "MM") else "left")
    for r in s["riskiest"]:
        risky.add_row(
            str(r["account"]),
            status_text(r["status"]),
            ratio(r["uni_mmr"]),
            usd(r["maintenance_margin"]),
            r["worst_group"] or "—",
        )
    return Group(head, Text(""), by, Text(""), risky)


# -- parity with Binance (pmengine parity) -------------------------------------------------


def _parity_value(x: Any, unit: str) -> str:
    if x is None:
        return "—"
    if isinstance(x, str):
        return x
    if unit == "ratio":
        return ratio(x)
    if unit in ("USD", "USDT", "USDC"):
        return usd(x)
    return f"{x:,.8f}"


def _parity_check(row: dict[str, Any]) -> Any:
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
    cols = ("figure", "unit", "Binance", "pmengine binance_pm", "check", "pmengine scenario")
    acct = FitTable(title=f"account at {report['time']}")
    for c in cols:
        acct.add_column(
            c, justify="left" if c in ("figure", "unit", "check") else "right", wrap=c == "check"
        )
    for r in report["account"]:
        cells: list[Any] = [_parity_value(r[k], r["unit"]) for k in ("binance", "pmengine")]
        scen = _parity_value(r["scenario"], r["unit"])
        if r["figure"] == "status":
            cells = [status_text(x) if x not in (None, "—") else Text("—") for x in cells]
        acct.add_row(
            PARITY_LABELS.get(r["figure"], r["figure"]), r["unit"], *cells, _parity_check(r), scen
        )
    pos = FitTable(
        title="positions (margin asset units; scenario: the position margined alone)", keys=2
    )
    for c in ("position", *cols):
        pos.add_column(
            c,
            justify="left" if c in ("position", "figure", "unit", "check") else "right",
            wrap=c == "check",
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
