"""A self-contained HTML risk report: figures drawn with matplotlib (the
``pmengine[plot]`` extra), embedded as base64 PNG, no script and no external
resource, so the page opens offline and can be mailed as one file.

Sections: the margin summary; per risk group a risk matrix (the account's P&L,
USD, for a price move of the group × a relative vol shock of every option);
uniMMR against each group's price move over the status bands; margin usage;
the stress tests; liquidation prices; leverage and concentration warnings; the
liquidation plan when the account is in liquidation; and the position-by-position
margin (every position margined alone, no netting) to compare with.
"""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Sequence
from typing import Any

from pmengine._core import BANKRUPT, Engine, Market, Portfolio
from pmengine.errors import MissingExtraError
from pmengine.risk import RiskReport, moved_market, price_groups, price_range, warning_thresholds

STATUS_COLOURS = {
    "NORMAL": "#2e7d32",
    "MARGIN_CALL": "#f9a825",
    "REDUCE_ONLY": "#ef6c00",
    "LIQUIDATION": "#c62828",
    BANKRUPT: "#4a0000",
}
#: uniMMR is drawn between these bounds (the ratio is unbounded as MM → 0).
UNI_MIN, UNI_MAX = -0.5, 3.0


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise MissingExtraError(
            "the HTML report draws its figures with matplotlib: "
            "pip install 'pmengine[plot]' (or matplotlib>=3.8)"
        ) from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    fig.clf()
    _pyplot().close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _img(data: str, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _group_moves(engine: Engine, group: str) -> list[float]:
    pr = price_range(engine.params, group)
    hi = min(0.9, 3 * pr)
    return [hi * (2 * i / 12 - 1) for i in range(13)]


def _vol_shocks(engine: Engine, group: str) -> list[float]:
    params = engine.params
    groups = params.groups
    shocks = {0.0, *groups.get(group, groups["*"])["vol_shocks"]}
    shocks |= {s["vol_shock"] for s in params.systemic}
    return sorted(shocks)


def risk_matrix(
    engine: Engine, portfolio: Portfolio, market: Market, group: str
) -> tuple[list[float], list[float], list[list[float]]]:
    """The account's P&L (USD) for each (vol shock, price move) of ``group``:
    rows are vol shocks (every option's vol times 1 + v; the profile's grid
    shocks and the systemic ones; only 0 when the group holds no option),
    columns price moves (±3 price ranges, capped at ±90 %)."""
    e0 = engine.margin(portfolio, market).equity
    moves = _group_moves(engine, group)
    members = [a for a in market.prices if engine.params.group_of(a) == group]
    has_options = any(
        p["type"] == "option" and engine.params.group_of(p["underlying"]) == group
        for p in portfolio.positions
    )
    # without options on the group, vols move nothing: one row
    vols = _vol_shocks(engine, group) if has_options else [0.0]
    rows = []
    for v in vols:
        row = []
        for r in moves:
            m = moved_market(market, portfolio, {a: 1 + r for a in members}, 1 + v)
            row.append(engine.margin(portfolio, m).equity - e0)
        rows.append(row)
    return moves, vols, rows


def uni_curve(
    engine: Engine, portfolio: Portfolio, market: Market, group: str, points: int = 121
) -> tuple[list[float], list[float]]:
    """uniMMR against the group's price move (others fixed), up to ±5 price ranges."""
    hi = min(0.95, 5 * price_range(engine.params, group))
    members = [a for a in market.prices if engine.params.group_of(a) == group]
    xs = [hi * (2 * i / (points - 1) - 1) for i in range(points)]
    ys = []
    for r in xs:
        res = engine.margin(portfolio, moved_market(market, portfolio, {a: 1 + r for a in members}))
        u = -math.inf if res.status == BANKRUPT else res.uni_mmr
        ys.append(u)
    return xs, ys


def _bands(ax: Any, engine: Engine) -> None:
    levels = engine.params.status_levels
    top = UNI_MAX
    for name, above in levels:
        bottom = max(above, UNI_MIN) if math.isfinite(above) else UNI_MIN
        ax.axhspan(bottom, top, color=STATUS_COLOURS.get(name, "#999"), alpha=0.15, lw=0)
        if math.isfinite(above):
            ax.axhline(above, color=STATUS_COLOURS.get(name, "#999"), lw=0.8, ls="--")
        ax.text(
            1.01, (bottom + top) / 2, name, transform=ax.get_yaxis_transform(), fontsize=8,
            va="center",
        )  # fmt: skip
        top = bottom


def _clip(u: float) -> float:
    return min(max(u, UNI_MIN), UNI_MAX)


def _k(x: float) -> str:
    """A P&L cell for people, at most six characters: USD below a thousand, else
    thousands (k) to three significant digits."""
    return f"{x:.0f}" if abs(x) < 999.5 else f"{x / 1000:.3g}k"


def heatmap_png(
    moves: Sequence[float], vols: Sequence[float], pnl: Sequence[Sequence[float]], group: str
) -> str:
    plt = _pyplot()
    from matplotlib.colors import TwoSlopeNorm

    # a row per vol shock, each tall enough for its text; one row is a strip
    fig, ax = plt.subplots(figsize=(9, 0.45 * len(vols) + 1.5))
    span = max((abs(x) for row in pnl for x in row), default=0.0) or 1.0
    im = ax.imshow(
        pnl, cmap="RdYlGn", norm=TwoSlopeNorm(0.0, -span, span), aspect="auto", origin="lower"
    )
    ax.set_xticks(range(len(moves)), [f"{m * 100:+.0f}%" for m in moves], fontsize=9)
    ax.set_yticks(range(len(vols)), [f"{v * 100:+.0f}%" for v in vols], fontsize=9)
    ax.set_xlabel(f"{group} price move")
    ax.set_ylabel("vol shock" if len(vols) > 1 else "vol shock\n(no option)")
    for i, row in enumerate(pnl):
        for j, x in enumerate(row):
            dark = abs(x) > 0.6 * span  # the ends of the colour map: white text reads better
            colour = "white" if dark else "black"
            ax.text(j, i, _k(x), ha="center", va="center", fontsize=8.5, color=colour)
    fig.colorbar(im, ax=ax, label="P&L, USD", pad=0.02)
    ax.set_title(f"risk matrix {group}: P&L (USD; k = thousand)")
    return _png(fig)


def uni_png(
    engine: Engine,
    curves: dict[str, tuple[list[float], list[float]]],
    crossings: Sequence[tuple[str, float, float]],
) -> str:
    """uniMMR against each group's move over the status bands; ``crossings``
    (group, move, threshold) are marked on the curves (the table under the figure
    gives their prices), not labelled, so that close ones cannot overlap."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(9, 4.2))
    _bands(ax, engine)
    colours = {}
    above = []
    for g, (xs, ys) in curves.items():
        (line,) = ax.plot([x * 100 for x in xs], [_clip(y) for y in ys], lw=1.8, label=g)
        colours[g] = line.get_color()
        if all(y > UNI_MAX for y in ys):
            above.append(g)
    if above:  # drawn along the top edge, where it is easy to miss
        ax.text(
            0.5, 0.93, f"{', '.join(above)}: uniMMR above {UNI_MAX * 100:.0f} % over the whole range",
            transform=ax.transAxes, ha="center", fontsize=9,
        )  # fmt: skip
    ax.axvline(0, color="k", lw=0.6)
    for k, (g, x, threshold) in enumerate(crossings):
        ax.plot(
            x * 100, _clip(threshold), "o", ms=6, mfc="white", mec=colours.get(g, "k"), mew=1.8,
            label="threshold crossed (table below)" if k == 0 else None,
        )  # fmt: skip
    ax.set_ylim(UNI_MIN, UNI_MAX)
    ax.set_xlabel("price move of the group, % (others fixed)")
    ax.set_ylabel("uniMMR (BANKRUPT at the bottom edge)")
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title("uniMMR against price moves, with the status bands")
    return _png(fig)


def usage_png(values: dict[str, float], lines: dict[str, float]) -> str:
    """Horizontal bars of margin usage (fractions, drawn up to 3), each with its
    value; threshold lines labelled above the axes, staggered so they cannot overlap."""
    plt = _pyplot()
    labels = list(values)
    fig, ax = plt.subplots(figsize=(9, 0.5 * len(labels) + 1.6))
    vals = [min(v, 3.0) if math.isfinite(v) else 3.0 for v in values.values()]
    ax.barh(labels, [v * 100 for v in vals], color="#1565c0")
    right = max([*vals, *lines.values()]) * 100 * 1.18
    for k, (v, shown) in enumerate(zip(values.values(), vals, strict=True)):
        more = "" if math.isfinite(v) and v <= 3.0 else " (off scale)"
        ax.text(shown * 100, k, f" {_pct(v)}{more}", va="center", fontsize=9)
    for k, (name, x) in enumerate(sorted(lines.items(), key=lambda kv: kv[1])):
        ax.axvline(x * 100, color="#c62828", lw=0.8, ls="--")
        ax.annotate(
            f"{name} ({x * 100:.0f} %)", (x * 100, 1.0), xycoords=("data", "axes fraction"),
            xytext=(0, 4 + 11 * (k % 2)), textcoords="offset points", ha="center", fontsize=8,
            color="#c62828",
        )  # fmt: skip
    ax.set_xlim(0, right)
    ax.set_xlabel("% of adjusted equity")
    ax.invert_yaxis()
    ax.set_title("margin usage", pad=30)
    return _png(fig)


def stress_png(
    engine: Engine, names: Sequence[str], unis: Sequence[float], statuses: Sequence[str]
) -> str:
    """uniMMR after each scenario over the status bands, each bar in its status's
    colour and labelled with its value; a bar beyond the drawn range ends in an
    arrow at the edge (a BANKRUPT one at the bottom) and says so."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(9, 4.2))
    _bands(ax, engine)
    shown = [
        _clip(u) if status != "BANKRUPT" else UNI_MIN
        for u, status in zip(unis, statuses, strict=True)
    ]
    colours = [STATUS_COLOURS.get(status, "#1565c0") for status in statuses]
    ax.bar(names, shown, color=colours, edgecolor="black", lw=0.6)
    for k, (u, y, status) in enumerate(zip(unis, shown, statuses, strict=True)):
        if status == "BANKRUPT":
            text, y_at, va = "▼ BANKRUPT", UNI_MIN, "bottom"
        elif y != u:
            text = f"{_pct(u)} {'▲' if u > y else '▼'}"
            y_at, va = y, "top" if u > y else "bottom"
        elif y > 0.9 * UNI_MAX:  # no room above the bar: inside its top
            text, y_at, va = _pct(u), y, "top"
        else:
            text, y_at, va = _pct(u), y, "bottom" if y >= 0 else "top"
        inside = status == "BANKRUPT" or y != u or y > 0.9 * UNI_MAX
        ax.text(k, y_at, text, ha="center", va=va, fontsize=9, fontweight="bold",
                color="white" if inside else "black")  # fmt: skip
    ax.set_ylim(UNI_MIN, UNI_MAX)
    ax.set_ylabel("uniMMR after the move")
    ax.tick_params(axis="x", labelsize=9)
    ax.set_title("stress tests")
    return _png(fig)


def _table(head: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    th = "".join(f"<th>{html.escape(str(h))}</th>" for h in head)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def _usd(x: float) -> str:
    return f"{x:,.2f}"


def _pct(x: float) -> str:
    return ("∞" if x > 0 else "-∞") if math.isinf(x) else f"{x * 100:,.1f} %"


CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 60em; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 1.8em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: 0.6em 0; font-size: 0.9em; }
th, td { border: 1px solid #ddd; padding: 0.25em 0.6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
img { max-width: 100%; display: block; margin: 0.6em 0; }
.status { font-weight: bold; padding: 0.1em 0.4em; color: white; border-radius: 3px; }
.warn { color: #8a4b00; } p.note { color: #555; font-size: 0.9em; }
"""


def html_page(
    engine: Engine, portfolio: Portfolio, market: Market, facts: RiskReport, title: str = "account"
) -> str:
    """The report as one HTML string."""
    from pmengine.compare import compare, engine_for, standalone_margin

    r = facts.result
    params = engine.params
    groups = price_groups(engine, portfolio, market)
    colour = STATUS_COLOURS.get(r.status, "#555")
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>pmengine risk report: {html.escape(title)}</title>",
        f"<style>{CSS}</style></head><body>",
        f"<h1>Risk report: {html.escape(title)}</h1>",
        f"<p>Profile {html.escape(params.name)} {html.escape(params.version)}; "
        f"market time {html.escape(market.iso_time)}. Money in USD.</p>",
        f'<p>Status <span class="status" style="background:{colour}">'
        f"{html.escape(r.status)}</span> uniMMR {_pct(r.uni_mmr)}</p>",
        _table(
            ["figure", "USD"],
            [
                ["equity", _usd(r.equity)],
                ["adjusted equity", _usd(r.adjusted_equity)],
                ["maintenance margin", _usd(r.maintenance_margin)],
                ["initial margin", _usd(r.initial_margin)],
                ["available", _usd(r.available)],
            ],
        ),
    ]

    out.append("<h2>Risk matrix per group</h2>")
    if not groups:
        out.append("<p>No group with price risk.</p>")
    for g in groups:
        moves, vols, pnl = risk_matrix(engine, portfolio, market, g)
        out.append(_img(heatmap_png(moves, vols, pnl, g), f"risk matrix {g}"))

    out.append("<h2>uniMMR against price moves</h2>")
    if groups:
        curves = {g: uni_curve(engine, portfolio, market, g) for g in groups}
        crossings = [
            (lp.group, lp.move, lp.threshold)
            for lp in facts.liquidation_prices
            if lp.move is not None and abs(lp.move) <= 0.95
        ]
        out.append(_img(uni_png(engine, curves, crossings), "uniMMR against price moves"))
    lp_rows = [
        [
            lp.group,
            _pct(lp.threshold),
            lp.status,
            lp.direction,
            "none" if lp.price is None else f"{lp.price:,.6g}",
            "" if lp.move is None else f"{lp.move * 100:+.2f} %",
        ]
        for lp in facts.liquidation_prices
    ]
    out.append(
        _table(["group", "threshold", "status beyond", "direction", "price", "move"], lp_rows)
    )

    x = facts.exposure
    out.append("<h2>Margin usage, leverage and concentration</h2>")
    limits = warning_thresholds()
    out.append(
        _img(
            usage_png(
                {"MM / adjusted equity": x.mm_usage, "IM / adjusted equity": x.im_usage},
                {
                    "MM warning": limits["mm_usage"],
                    "IM warning": limits["im_usage"],
                    "all of it": 1.0,
                },
            ),
            "margin usage",
        )
    )
    rows = [
        ["gross notional, USD", _usd(x.gross_notional)],
        ["effective leverage", "∞" if math.isinf(x.leverage) else f"{x.leverage:.2f}×"],
        *[[f"net exposure {g}, USD", _usd(v)] for g, v in x.net_exposure.items()],
        ["BTC-correlated share", _pct(x.btc_correlated_share)],
        ["MM / adjusted equity", _pct(x.mm_usage)],
        ["IM / adjusted equity", _pct(x.im_usage)],
    ]
    out.append(_table(["figure", "value"], rows))
    if x.warnings:
        out.append(
            "<ul>"
            + "".join(f'<li class="warn">{html.escape(w.message)}</li>' for w in x.warnings)
            + "</ul>"
        )
    else:
        out.append("<p>No leverage or concentration warning.</p>")

    out.append("<h2>Stress tests</h2>")
    out.append(
        _img(
            stress_png(
                engine,
                [s.name for s in facts.stresses],
                [s.uni_mmr for s in facts.stresses],
                [s.status for s in facts.stresses],
            ),
            "stress tests",
        )
    )
    out.append(
        _table(
            ["scenario", "P&L", "equity", "adj. equity", "MM", "uniMMR", "status"],
            [
                [
                    s.name,
                    _usd(s.pnl),
                    _usd(s.equity),
                    _usd(s.adjusted_equity),
                    _usd(s.maintenance_margin),
                    _pct(s.uni_mmr),
                    s.status,
                ]
                for s in facts.stresses
            ],
        )
    )
    a = facts.buffer_asset
    through = f" through {facts.buffer_scenario}" if facts.buffer_scenario else ""
    dep = "unreachable" if facts.deposit is None else f"{facts.deposit:,.2f} {a}"
    out.append(
        f"<p>Stablecoin buffer: deposit needed to stay {html.escape(facts.buffer_target)}"
        f"{html.escape(through)}: {html.escape(dep)}; withdrawable now while staying "
        f"{html.escape(facts.buffer_target)}: {facts.withdrawal:,.2f} {html.escape(a)}.</p>"
    )

    plan = facts.plan
    out.append("<h2>Liquidation plan</h2>")
    if plan.actions:
        out.append(
            _table(
                ["step", "action", "uniMMR before", "after", "MM after"],
                [
                    [
                        s.step,
                        s.description,
                        _pct(s.uni_mmr_before),
                        _pct(s.uni_mmr_after),
                        _usd(s.mm_after),
                    ]
                    for s in plan.actions
                ],
            )
        )
        spread = ", ".join(f"{k}: {_usd(v)} USD" for k, v in plan.sold_usd.items())
        out.append(f"<p>Sold per asset: {html.escape(spread or 'none')}.</p>")
    else:
        out.append(f"<p>None needed: the account is {html.escape(r.status)}.</p>")

    out.append("<h2>Classic margin against portfolio margin</h2>")
    cmp = compare(engine, portfolio, market)
    bn = cmp["binance_pm"]
    ok = "error" not in bn
    modes = [cmp["isolated"], cmp["cross"], cmp["portfolio"]]

    def ratio_cell(x: float | None) -> str:
        return "∞" if x is None else f"{x * 100:,.1f} %"

    def binance(f: Any, key: str) -> str:
        return str(f(bn[key])) if ok else "—"

    rows = [
        [label, *(_usd(m[key]) for m in modes), binance(_usd, key)]
        for label, key in (
            ("maintenance margin, USD", "maintenance_margin"),
            ("initial margin, USD", "initial_margin"),
            ("available, USD", "available"),
        )
    ]
    rows.append(
        [
            "margin ratio (liquidation at 100 %) / uniMMR",
            ratio_cell(cmp["isolated"]["margin_ratio"]),
            ratio_cell(cmp["cross"]["margin_ratio"]),
            ratio_cell(cmp["portfolio"]["uni_mmr"]),
            binance(ratio_cell, "uni_mmr"),
        ]
    )
    rows.append(["status", *(m["status"] for m in modes), binance(str, "status")])
    for symbol, iso in cmp["isolated"]["liquidation_prices"].items():
        cross = cmp["cross"]["liquidation_prices"][symbol]
        whole = cmp["portfolio"]["liquidation_prices"].get(symbol)
        cells = ["none" if p is None else _usd(p) for p in (iso, cross, whole)]
        cells[2] += " (index, account)"
        if ok:
            p = bn["liquidation_prices"].get(symbol)
            cells.append(("none" if p is None else _usd(p)) + " (index, account)")
        else:
            cells.append("—")
        rows.append([f"liquidation price {symbol}", *cells])
    rows.append(
        [
            "every position margined alone (no netting), MM, USD",
            "",
            "",
            _usd(standalone_margin(engine_for(engine, "scenario"), portfolio, market)),
            "",
        ]
    )
    out.append(_table(["", "isolated", "cross", "portfolio (scenario)", "Binance PM"], rows))
    if cmp["recognised"]:
        out.append(
            "<p>Portfolio margin (scenario model) recognises: "
            f"{html.escape('; '.join(cmp['recognised']))}.</p>"
        )
    if ok:
        out.append(f"<p>Binance PM: {html.escape('; '.join(bn['recognised']))}.</p>")
    else:
        out.append(f"<p>Binance PM cannot margin this account: {html.escape(bn['error'])}.</p>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"
