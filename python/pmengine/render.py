"""Terminal rendering of margin results with rich: tables for people.

Programs should use ``MarginResult.to_json()`` (``pmengine ... --json``) instead.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from pmengine._core import MarginResult, Portfolio

STATUS_STYLE = {
    "NORMAL": "bold green",
    "MARGIN_CALL": "bold yellow",
    "REDUCE_ONLY": "bold dark_orange",
    "LIQUIDATION": "bold red",
    "BANKRUPT": "bold white on red",
    "ERROR": "bold magenta",
}


def usd(x: float) -> str:
    """A USD amount for people: thousands separators, cents."""
    return f"{x:,.2f}"


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
    t.add_row("scan after offsets, USD", usd(r.scan))
    t.add_row("systemic, USD", usd(r.systemic))
    t.add_row("offset credit, USD", usd(r.offset_credit))
    t.add_row("borrowing add-on, USD", usd(r.borrow_margin))
    return t


def groups_table(r: MarginResult) -> Table:
    t = Table(title="risk groups (USD)", title_justify="left")
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


def recognised(r: MarginResult) -> list[str]:
    """Plain-language facts of what portfolio margin recognised in this account."""
    facts = []
    for name, g in r.groups.items():
        if g.spot_in_use > 0:
            facts.append(f"{name}: {usd(g.spot_in_use)} USD of long spot hedges short contracts")
        if g.financed_spot > 0:
            facts.append(
                f"{name}: {usd(g.financed_spot)} USD of spot is financed by loans and scanned"
            )
        if g.som > 0 and g.som >= g.scan_loss:
            facts.append(f"{name}: the short-option minimum ({usd(g.som)} USD) binds")
        if g.basis > 0:
            facts.append(f"{name}: basis between hedged instruments costs {usd(g.basis)} USD")
        if g.concentration > 0:
            facts.append(f"{name}: concentration add-on {usd(g.concentration)} USD")
    if r.offset_credit > 0:
        facts.append(f"correlated groups offset each other: {usd(r.offset_credit)} USD of credit")
    if r.systemic > r.scan:
        facts.append(f"the systemic scenario binds: {usd(r.systemic)} USD above the scan")
    return facts


def margin_panel(r: MarginResult, title: str = "portfolio margin") -> Panel:
    facts = recognised(r)
    parts: list[RenderableType] = [summary_table(r), Text(""), groups_table(r)]
    if facts:
        parts += [Text(""), Text("recognised: " + "; ".join(facts), style="italic")]
    return Panel(Group(*parts), title=title, title_align="left")


def console(*, stderr: bool = False) -> Console:
    # A pipe or a CI log has no width: use one that fits the tables.
    stream = sys.stderr if stderr else sys.stdout
    return Console(stderr=stderr, highlight=False, width=None if stream.isatty() else 120)


def comparison_table(rows: Sequence[tuple[str, Portfolio, MarginResult, float]]) -> Table:
    """One line per account: portfolio MM against the position-by-position MM."""
    t = Table(title="portfolio margin against position by position (USD)", title_justify="left")
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


def greeks_table(greeks: dict[str, Any]) -> Table:
    """Greeks per position, then per group (units in the column headers)."""
    t = Table(title="greeks", title_justify="left")
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
    by = Table(title="accounts by status", title_justify="left")
    by.add_column("status")
    by.add_column("accounts", justify="right")
    by.add_column("share", justify="right")
    for status, n in sorted(s["by_status"].items(), key=lambda kv: -kv[1]):
        share = f"{n / s['accounts'] * 100:.1f} %" if s["accounts"] else "—"
        by.add_row(status_text(status), f"{n:,}", share)
    risky = Table(title="riskiest accounts (lowest uniMMR)", title_justify="left")
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
