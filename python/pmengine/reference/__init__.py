"""The pure-Python reference implementation of METHODOLOGY.md §1–§4.

Written to be read, not to be fast: no numpy, one function per step of the
methodology, in its order. It is the oracle the Rust engine is tested against
(relative 1e-9) and the baseline of the benchmarks.

    from pmengine import reference
    profile = reference.default_profile()
    result = reference.margin(portfolio_dict, market_dict, profile)   # the §8 result dict

``margin`` evaluates the profile's model: the scenario model here
(``scenario_margin``), or Binance's (``model = "binance_pm"``,
``reference_binance.margin``, docs/BINANCE.md).

Inputs are the JSON formats of §8 (already parsed). Bad input raises the same
error classes as the engine (``pmengine.errors``), naming the field.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from pmengine.errors import InvalidInputError, MissingMarketDataError, ProfileError

YEAR_SECONDS = 365.0 * 86400.0
MM_DUST = 1e-9  # an MM below this is floating-point dust (§4)
SCAN_TOL = 1e-9  # relative tolerance of the worst-scenario choice (§3 step 6)


# --------------------------------------------------------------------------------------
# Profile (§7): group tables inherit from "*", assets map to groups and collateral tiers
# --------------------------------------------------------------------------------------

GROUP_KEYS = (
    "price_range",
    "price_points",
    "vol_shocks",
    "extreme_multiple",
    "extreme_cover",
    "basis_rate",
    "som_rate",
    "concentration",
)


@dataclass
class Group:
    price_range: float
    price_points: int
    vol_shocks: list[float]
    extreme_multiple: float
    extreme_cover: float
    basis_rate: float
    som_rate: float
    concentration: list[tuple[float, float]]  # (above, rate)


MODELS = ("scenario", "binance_pm")


@dataclass
class Binance:
    """``[binance]``: what Binance's formula needs beyond brackets and collateral."""

    loan_leverage: float  # a loan's leverage where its asset gives none
    loan_mmr: dict[float, float]  # loan MM rate by leverage
    default_collateral_rate: float | None  # an asset without bands; None: an error


# A bracket: (up_to, mmr, max_leverage, cum); up_to and cum in the table's units
# (margin asset for USDⓈ-M, coin for COIN-M), the last up_to may be inf.
Bracket = tuple[float, float, float, float]


@dataclass
class Profile:
    im_factor: float
    vol_floor: float
    borrow_mmr: float
    star: Group
    groups: dict[str, Group]
    asset_group: dict[str, str]
    collateral: dict[str, list[tuple[float, float]]]  # asset -> [(rate, up_to)]
    asset_borrow_mmr: dict[str, float]
    offsets: list[tuple[str, str, float]]  # sorted by descending rate, ties in file order
    systemic: list[tuple[float, float, dict[str, float]]]  # (multiple, vol_shock, overrides)
    status: list[tuple[str, float]]  # (name, above); the last above is -inf
    raw: dict[str, Any] = field(default_factory=dict)
    model: str = "scenario"  # "scenario" or "binance_pm"
    loan_leverage: dict[str, float] = field(default_factory=dict)  # asset -> its loans' leverage
    binance: Binance | None = None
    brackets: dict[str, dict[str, list[Bracket]]] = field(
        default_factory=lambda: {"usdm": {}, "coinm": {}}
    )  # "usdm" / "coinm" -> symbol -> brackets

    def group_of(self, asset: str) -> str:
        return self.asset_group.get(asset, asset)

    def group(self, name: str) -> Group:
        return self.groups.get(name, self.star)

    def is_collateral(self, asset: str) -> bool:
        tiers = self.collateral.get(asset, [])
        return bool(tiers) and tiers[0][0] > 0


def _group(d: dict[str, Any], base: Group | None, at: str) -> Group:
    for k in d:
        if k not in GROUP_KEYS:
            raise ProfileError.at(f"{at}.{k}", "unknown key", "unknown_key")
    get = lambda k: d[k] if k in d else getattr(base, k)  # noqa: E731
    g = Group(
        price_range=float(get("price_range")),
        price_points=int(get("price_points")),
        vol_shocks=[float(v) for v in get("vol_shocks")],
        extreme_multiple=float(get("extreme_multiple")),
        extreme_cover=float(get("extreme_cover")),
        basis_rate=float(get("basis_rate")),
        som_rate=float(get("som_rate")),
        concentration=[(float(t["above"]), float(t["rate"])) for t in d["concentration"]]
        if "concentration" in d
        else (list(base.concentration) if base else []),
    )
    if not 0 <= g.price_range < 1:
        raise ProfileError.at(
            f"{at}.price_range", f"must be in [0, 1), got {g.price_range}", "out_of_range"
        )
    if g.price_points < 3 or g.price_points % 2 == 0:
        raise ProfileError.at(
            f"{at}.price_points", f"must be odd and >= 3, got {g.price_points}", "out_of_range"
        )
    if g.extreme_multiple < 1 or g.extreme_multiple * g.price_range >= 1:
        raise ProfileError.at(
            f"{at}.extreme_multiple",
            "must be >= 1 with extreme_multiple·price_range < 1",
            "out_of_range",
        )
    return g


def _num(x: float) -> str:
    """A number as the engine's messages write it: whole numbers without a fraction."""
    return str(int(x)) if math.isfinite(x) and x == int(x) and abs(x) < 1e15 else str(x)


def _bracket_table(rows: Any, at: str) -> list[Bracket]:
    """One bracket table, ``cum`` as given, else derived so MM is continuous:
    ``cum_1 = 0``, ``cum_k = cum_{k−1} + up_to_{k−1}·(mmr_k − mmr_{k−1})``."""
    if not isinstance(rows, list) or not rows:
        raise ProfileError.at(at, "must list at least one bracket", "out_of_range")
    out: list[Bracket] = []
    for i, b in enumerate(rows):
        bat = f"{at}[{i}]"
        for k in b:
            if k not in ("up_to", "mmr", "max_leverage", "cum"):
                raise ProfileError.at(f"{bat}.{k}", "unknown key", "unknown_key")
        mmr = float(b["mmr"])
        if not (math.isfinite(mmr) and 0 <= mmr <= 1):
            raise ProfileError.at(
                f"{bat}.mmr", f"must be a rate in [0, 1], got {_num(mmr)}", "out_of_range"
            )
        max_leverage = float(b["max_leverage"])
        if not (math.isfinite(max_leverage) and max_leverage > 0):
            raise ProfileError.at(
                f"{bat}.max_leverage", f"must be > 0, got {_num(max_leverage)}", "out_of_range"
            )
        if "up_to" in b:
            up_to = float(b["up_to"])
            if not (math.isfinite(up_to) and up_to > 0):
                raise ProfileError.at(
                    f"{bat}.up_to", f"must be > 0, got {_num(up_to)}", "out_of_range"
                )
        elif i + 1 == len(rows):
            up_to = math.inf
        else:
            raise ProfileError.at(
                f"{bat}.up_to", "required on every bracket but the last", "missing"
            )
        if out and up_to <= out[-1][0]:
            raise ProfileError.at(
                f"{bat}.up_to",
                f"brackets must be sorted by increasing up_to, got {_num(up_to)} after {_num(out[-1][0])}",
            )
        if "cum" in b:  # Binance's exported cum is used as it is
            cum = float(b["cum"])
            if not math.isfinite(cum):
                raise ProfileError.at(
                    f"{bat}.cum", f"must be finite, got {_num(cum)}", "out_of_range"
                )
        elif out:
            prev_up_to, prev_mmr, _, prev_cum = out[-1]
            cum = prev_cum + prev_up_to * (mmr - prev_mmr)
        else:
            cum = 0.0
        out.append((up_to, mmr, max_leverage, cum))
    return out


def _brackets(d: dict[str, Any]) -> dict[str, dict[str, list[Bracket]]]:
    if "brackets" in d.get("classic", {}):
        raise ProfileError.at("classic.brackets", "moved to [brackets.usdm] and [brackets.coinm]")
    t = d.get("brackets", {})
    for k in t:
        if k not in ("usdm", "coinm"):
            raise ProfileError.at(f"brackets.{k}", "unknown key", "unknown_key")
    return {
        kind: {
            sym: _bracket_table(rows, f"brackets.{kind}.{sym}")
            for sym, rows in t.get(kind, {}).items()
        }
        for kind in ("usdm", "coinm")
    }


def _binance(d: dict[str, Any], loan_leverage: dict[str, float]) -> Binance | None:
    """``[binance]``, checked against the assets' ``loan_leverage``: every leverage in use
    has an MM rate. Required under ``model = "binance_pm"``."""
    if "binance" not in d:
        if d.get("model") == "binance_pm":
            raise ProfileError.at(
                "binance",
                'required under model = "binance_pm" (loan leverage and MM rates)',
                "missing",
            )
        return None
    t = d["binance"]
    for k in t:
        if k not in ("loan_leverage", "loan_mmr", "default_collateral_rate"):
            raise ProfileError.at(f"binance.{k}", "unknown key", "unknown_key")
    for k in ("loan_leverage", "loan_mmr"):
        if k not in t:
            raise ProfileError.at(f"binance.{k}", "required", "missing")
    rates: dict[float, float] = {}
    for key, r in t["loan_mmr"].items():
        at = f"binance.loan_mmr.{key}"
        try:
            lev = float(key)
        except ValueError:
            raise ProfileError.at(at, f"the key must be a leverage, got {key!r}") from None
        if not (math.isfinite(lev) and lev > 1):
            raise ProfileError.at(at, f"a loan's leverage must be > 1, got {_num(lev)}")
        if not (math.isfinite(float(r)) and 0 <= float(r) <= 1):
            raise ProfileError.at(
                at, f"must be a rate in [0, 1], got {_num(float(r))}", "out_of_range"
            )
        rates[lev] = float(r)
    default_rate = t.get("default_collateral_rate")
    if default_rate is not None and not (0 <= float(default_rate) <= 1):
        raise ProfileError.at(
            "binance.default_collateral_rate",
            f"must be in [0, 1], got {_num(float(default_rate))}",
            "out_of_range",
        )
    lev = float(t["loan_leverage"])
    if lev not in rates:
        raise ProfileError.at(
            "binance.loan_leverage", f"has no rate in binance.loan_mmr, got {_num(lev)}"
        )
    for a in sorted(loan_leverage):
        if loan_leverage[a] not in rates:
            raise ProfileError.at(
                f"assets.{a}.loan_leverage",
                f"has no rate in binance.loan_mmr, got {_num(loan_leverage[a])}",
            )
    return Binance(
        loan_leverage=lev,
        loan_mmr=rates,
        default_collateral_rate=None if default_rate is None else float(default_rate),
    )


def load_profile(source: str | Path | dict[str, Any]) -> Profile:
    """A profile from a TOML file path or an already-parsed dict. Besides the scenario
    model's tables it reads ``model``, ``[brackets]``, ``[binance]`` and
    ``assets.<A>.loan_leverage`` (docs/BINANCE.md); the dict stays in ``profile.raw``."""
    d = source if isinstance(source, dict) else tomllib.loads(Path(source).read_text())
    model = d.get("model", "scenario")
    if not isinstance(model, str):
        raise ProfileError.at("model", f"must be a string, got {model!r}", "wrong_type")
    if model not in MODELS:
        raise ProfileError.at("model", f'must be "scenario" or "binance_pm", got "{model}"')
    margin_t = d.get("margin", {})
    star = _group(d["groups"]["*"], None, 'groups."*"')
    groups = {
        name: _group(g, star, f"groups.{name}") for name, g in d["groups"].items() if name != "*"
    }
    asset_group, collateral, borrow, loan_leverage = {}, {}, {}, {}
    for a, t in d.get("assets", {}).items():
        asset_group[a] = t.get("group", a)
        collateral[a] = [
            (float(x["rate"]), float(x.get("up_to", math.inf))) for x in t.get("collateral", [])
        ]
        if "borrow_mmr" in t:
            borrow[a] = float(t["borrow_mmr"])
        if "loan_leverage" in t:
            loan_leverage[a] = float(t["loan_leverage"])
    offsets = [(o["a"], o["b"], float(o["rate"])) for o in d.get("offsets", [])]
    offsets.sort(key=lambda o: -o[2])  # stable: ties keep file order
    systemic = [
        (float(s["multiple"]), float(s.get("vol_shock", 0.0)), dict(s.get("overrides", {})))
        for s in d.get("systemic", [])
    ]
    status = [(s["name"], float(s.get("above", -math.inf))) for s in d["status"]]
    return Profile(
        im_factor=float(margin_t.get("im_factor", 1.5)),
        vol_floor=float(margin_t.get("vol_floor", 0.0)),
        borrow_mmr=float(margin_t.get("borrow_mmr", 0.0)),
        star=star,
        groups=groups,
        asset_group=asset_group,
        collateral=collateral,
        asset_borrow_mmr=borrow,
        offsets=offsets,
        systemic=systemic,
        status=status,
        raw=d,
        model=model,
        loan_leverage=loan_leverage,
        binance=_binance(d, loan_leverage),
        brackets=_brackets(d),
    )


def default_profile() -> Profile:
    """The bundled default profile (the core's ``profiles/default.toml``)."""
    from pmengine._core import DEFAULT_PROFILE_TOML

    return load_profile(tomllib.loads(DEFAULT_PROFILE_TOML))


# --------------------------------------------------------------------------------------
# Inputs (§1, §8): times, numbers, prices
# --------------------------------------------------------------------------------------


def parse_time(text: str, at: str) -> float:
    """ISO-8601 to epoch seconds: a zone is honoured, none means UTC, a bare date is midnight."""
    if not isinstance(text, str):
        raise InvalidInputError.at(at, f"must be an ISO-8601 time, got {text!r}")
    try:
        t = datetime.fromisoformat(text.strip())
    except ValueError:
        try:
            t = datetime.combine(date.fromisoformat(text.strip()), datetime.min.time())
        except ValueError:
            raise InvalidInputError.at(at, f"must be an ISO-8601 time, got {text!r}") from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return t.timestamp()


def positive(x: Any, at: str) -> float:
    if not isinstance(x, int | float) or isinstance(x, bool) or not math.isfinite(x) or x <= 0:
        raise InvalidInputError.at(at, f"must be > 0, got {x}", "out_of_range")
    return float(x)


def finite(x: Any, at: str) -> float:
    if not isinstance(x, int | float) or isinstance(x, bool) or not math.isfinite(x):
        raise InvalidInputError.at(at, f"must be finite, got {x}", "out_of_range")
    return float(x)


def non_negative(x: Any, at: str) -> float:
    if not isinstance(x, int | float) or isinstance(x, bool) or not math.isfinite(x) or x < 0:
        raise InvalidInputError.at(at, f"must be >= 0, got {x}", "out_of_range")
    return float(x)


def price(market: dict[str, Any], asset: str, at: str) -> float:
    if asset not in market.get("prices", {}):
        raise MissingMarketDataError.at(
            at, f"no price for {asset} in market.prices", "missing_price"
        )
    return positive(market["prices"][asset], f"market.prices.{asset}")


def check_market(market: dict[str, Any]) -> float:
    """The market's time (epoch seconds), after checking every price, mark and vol is > 0."""
    now = parse_time(market["time"], "market.time")
    for section in ("prices", "marks", "vols"):
        for k, x in market.get(section, {}).items():
            positive(x, f"market.{section}.{k}")
    return now


def margin_loans(portfolio: dict[str, Any]) -> dict[str, tuple[float, float]]:
    """``portfolio.loans``: asset -> (borrowed, interest), asset units, each >= 0."""
    t = portfolio.get("loans", {})
    if not isinstance(t, dict):
        raise InvalidInputError.at("loans", f"must be a table, got {t!r}", "wrong_type")
    out = {}
    for a, loan in t.items():
        at = f"loans.{a}"
        if not isinstance(loan, dict):
            raise InvalidInputError.at(at, f"must be a table, got {loan!r}", "wrong_type")
        for k in loan:
            if k not in ("borrowed", "interest"):
                raise InvalidInputError.at(f"{at}.{k}", "unknown key", "unknown_key")
        if "borrowed" not in loan:
            raise InvalidInputError.at(f"{at}.borrowed", "required", "missing")
        borrowed = non_negative(loan["borrowed"], f"{at}.borrowed")
        interest = non_negative(loan.get("interest", 0.0), f"{at}.interest")
        out[a] = (borrowed, interest)
    return out


# --------------------------------------------------------------------------------------
# Pricing (§1): Black-76 at zero rates, intrinsic value at or past expiry
# --------------------------------------------------------------------------------------


def norm_cdf(x: float) -> float:
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


def black76(kind: str, f: float, k: float, sigma: float, tau: float) -> float:
    if tau <= 0:
        return max(f - k, 0.0) if kind == "call" else max(k - f, 0.0)
    sd = sigma * math.sqrt(tau)
    d1 = (math.log(f / k) + 0.5 * sd * sd) / sd
    d2 = d1 - sd
    if kind == "call":
        return f * norm_cdf(d1) - k * norm_cdf(d2)
    return k * norm_cdf(-d2) - f * norm_cdf(-d1)


def black76_delta(kind: str, f: float, k: float, sigma: float, tau: float) -> float:
    if tau <= 0:
        if kind == "call":
            return 1.0 if f > k else 0.0
        return -1.0 if f < k else 0.0
    sd = sigma * math.sqrt(tau)
    d1 = (math.log(f / k) + 0.5 * sd * sd) / sd
    return norm_cdf(d1) if kind == "call" else norm_cdf(d1) - 1.0


def shocked_vol(sigma: float, v: float, floor: float) -> float:
    """A scenario's vol: max(σ(1+v), min(σ, floor)); v = 0 gives σ itself."""
    return max(sigma * (1.0 + v), min(sigma, floor))


# --------------------------------------------------------------------------------------
# Collateral (§2): marginal tiers on positive equity, negative equity in full
# --------------------------------------------------------------------------------------


def adjusted_value(value: float, tiers: list[tuple[float, float]]) -> float:
    if value <= 0:
        return value
    total, lower = 0.0, 0.0
    for rate, up_to in tiers:
        if value <= lower:
            break
        total += rate * (min(value, up_to) - lower)
        lower = up_to
    return total


# --------------------------------------------------------------------------------------
# Grid (§3 steps 5–6)
# --------------------------------------------------------------------------------------


def grid(g: Group, with_vol: bool) -> list[tuple[float, float, float]]:
    """(return, vol shock, loss weight): price points outer, vol shocks inner, extremes last."""
    n = g.price_points
    returns = [g.price_range * (2 * i / (n - 1) - 1) for i in range(n)]
    shocks = g.vol_shocks if with_vol else [0.0]
    scenarios = [(r, v, 1.0) for r in returns for v in shocks]
    for sign in (-1.0, 1.0):
        scenarios.append((sign * g.extreme_multiple * g.price_range, 0.0, g.extreme_cover))
    return scenarios


def scan(
    pnl: list[float], scenarios: list[tuple[float, float, float]], tol: float
) -> tuple[float, int]:
    losses = [-w * p for p, (_, _, w) in zip(pnl, scenarios, strict=True)]
    best = max(losses)
    worst = next(k for k, x in enumerate(losses) if x >= best - tol)
    return (0.0 if best < tol else best), worst


# --------------------------------------------------------------------------------------
# The account
# --------------------------------------------------------------------------------------


@dataclass
class Option:
    group: str
    qty: float
    kind: str
    forward: float
    strike: float
    vol: float
    tau: float
    settle_price: float
    value: float

    def pnl(self, r: float, v: float, floor: float) -> float:
        """Scenario P&L in USD of the position."""
        moved = black76(
            self.kind,
            self.forward * (1 + r),
            self.strike,
            shocked_vol(self.vol, v, floor),
            self.tau,
        )
        return self.qty * (moved - self.value) * self.settle_price


def margin(
    portfolio: dict[str, Any], market: dict[str, Any], profile: Profile | None = None
) -> dict[str, Any]:
    """The margin of one account under the profile's model: the result dict of
    METHODOLOGY.md §8 (scenario), or of docs/BINANCE.md (``binance_pm``)."""
    p = profile or default_profile()
    if p.model == "binance_pm":
        from pmengine.reference import binance as reference_binance  # it builds on this module

        return reference_binance.margin(portfolio, market, p)
    return scenario_margin(portfolio, market, p)


def underlying_and_settle(pos: dict[str, Any], at: str) -> tuple[str, str]:
    """A position's underlying and the asset its value is paid in: its ``settle``
    (default USDT), an inverse contract's underlying."""
    b = pos["underlying"]
    if pos.get("type") != "inverse":
        return b, pos.get("settle", "USDT")
    if pos.get("settle", b) != b:
        raise InvalidInputError.at(
            f"{at}.settle", f"an inverse contract settles in its underlying {b}"
        )
    return b, b


def scenario_margin(
    portfolio: dict[str, Any], market: dict[str, Any], profile: Profile | None = None
) -> dict[str, Any]:
    """The margin of one account under the scenario model, whatever the profile's
    ``model``: the result dict of METHODOLOGY.md §8."""
    p = profile or default_profile()
    owed = margin_loans(portfolio)
    now = check_market(market)

    listed: list[str] = []  # groups in the result, in the order first met

    def touch(group: str) -> None:
        if group not in listed:
            listed.append(group)

    wallet: dict[str, float] = {}  # asset -> wallet balance
    equity: dict[str, float] = {}  # asset -> e_a (wallet + UPnL + option values)
    prices: dict[str, float] = {}

    def asset(a: str, at: str) -> None:
        if a not in prices:
            prices[a] = price(market, a, at)
            equity.setdefault(a, 0.0)
            wallet.setdefault(a, 0.0)

    for a, q in portfolio.get("balances", {}).items():
        asset(a, f"balances.{a}")
        q = finite(q, f"balances.{a}")
        wallet[a] += q
        equity[a] += q
        touch(p.group_of(a))
    # A margin loan is netted exactly as a negative balance: W = balance − borrowed − interest.
    for a, (borrowed, interest) in owed.items():
        asset(a, f"loans.{a}")
        wallet[a] -= borrowed + interest
        equity[a] -= borrowed + interest
        touch(p.group_of(a))

    contracts: dict[tuple[str, str], float] = {}  # (group, symbol) -> dollar delta, netted
    d_options: dict[str, float] = {}
    abs_options: dict[str, float] = {}
    som_notional: dict[str, float] = {}
    options: list[Option] = []
    has_options: set[str] = set()
    for i, pos in enumerate(portfolio.get("positions", [])):
        at = f"positions[{i}]"
        kind_of = pos.get("type")
        b, s = underlying_and_settle(pos, at)
        asset(b, f"{at}.underlying")
        asset(s, f"{at}.settle")
        g = p.group_of(b)
        touch(g)
        pb, ps = prices[b], prices[s]
        sym = pos["symbol"]
        if kind_of == "linear":
            q = finite(pos["qty"], f"{at}.qty")
            e = positive(pos["entry_price"], f"{at}.entry_price")
            mark = market.get("marks", {}).get(sym, pb / ps)
            equity[s] += q * (mark - e)  # UPnL in the settle asset
            contracts[(g, sym)] = contracts.get((g, sym), 0.0) + q * mark * ps
        elif kind_of == "inverse":
            c = positive(pos["contract_size"], f"{at}.contract_size")
            n = finite(pos["contracts"], f"{at}.contracts")
            e = positive(pos["entry_price"], f"{at}.entry_price")
            mark = market.get("marks", {}).get(sym, pb)
            equity[b] += n * c * (1 / e - 1 / mark)  # UPnL in the underlying
            contracts[(g, sym)] = contracts.get((g, sym), 0.0) + n * c * pb / e
        elif kind_of == "option":
            kind = pos["kind"]
            if kind not in ("call", "put"):
                raise InvalidInputError.at(f"{at}.kind", f'must be "call" or "put", got {kind!r}')
            k = positive(pos["strike"], f"{at}.strike")
            q = finite(pos["qty"], f"{at}.qty")
            expiry = parse_time(pos["expiry"], f"{at}.expiry")
            if p.group(p.group_of(s)).price_range != 0:
                raise InvalidInputError.at(
                    f"{at}.settle", f"an option must settle in a stablecoin, got {s!r}"
                )
            vols = market.get("vols", {})
            if sym not in vols and b not in vols:
                raise MissingMarketDataError.at(
                    f"market.vols.{sym}", f"no vol for {sym} or {b} in market.vols", "missing_vol"
                )
            vol = vols.get(sym, vols.get(b))
            tau = (expiry - now) / YEAR_SECONDS
            f = pb / ps
            value = black76(kind, f, k, vol, tau)
            delta = q * black76_delta(kind, f, k, vol, tau) * pb
            equity[s] += q * value  # option value in the settle asset
            d_options[g] = d_options.get(g, 0.0) + delta
            abs_options[g] = abs_options.get(g, 0.0) + abs(delta)
            if q < 0:
                som_notional[g] = som_notional.get(g, 0.0) + abs(q) * pb
            has_options.add(g)
            options.append(Option(g, q, kind, f, k, vol, tau, ps, value))
        else:
            raise InvalidInputError.at(
                f"{at}.type", f'must be "linear", "inverse" or "option", got {kind_of!r}'
            )

    all_groups = list(dict.fromkeys([*listed, *(p.group_of(a) for a in prices)]))

    # §2 equity and adjusted equity.
    total_equity = sum(equity[a] * prices[a] for a in prices)
    adjusted = sum(adjusted_value(equity[a] * prices[a], p.collateral.get(a, [])) for a in prices)

    # §3 steps 1–2: spot in use.
    def assets_of(g: str) -> list[str]:
        return [a for a in prices if p.group_of(a) == g]

    spot_long = {
        g: sum(wallet[a] * prices[a] for a in assets_of(g) if wallet[a] > 0) for g in all_groups
    }
    liabilities = {
        g: sum(wallet[a] * prices[a] for a in assets_of(g) if wallet[a] < 0) for g in all_groups
    }
    d_contracts = {g: sum(d for (cg, _), d in contracts.items() if cg == g) for g in all_groups}
    in_use = {}
    for g in all_groups:
        d_rest = d_contracts[g] + d_options.get(g, 0.0) + liabilities[g]
        in_use[g] = min(spot_long[g], -d_rest) if d_rest < 0 and spot_long[g] > 0 else 0.0

    # §3 step 3: financed spot — stablecoins first, then the other free collateral.
    borrowing = {g: sum(max(0.0, -equity[a] * prices[a]) for a in assets_of(g)) for g in all_groups}
    borrowed = sum(max(0.0, borrowing[g] - in_use[g]) for g in all_groups)

    def free(a: str) -> float:
        g = p.group_of(a)
        return wallet[a] * prices[a] * (1 - in_use[g] / spot_long[g])

    collateral_longs = [a for a in prices if wallet[a] > 0 and p.is_collateral(a)]
    stable = [a for a in collateral_longs if p.group(p.group_of(a)).price_range == 0]
    risky = [a for a in collateral_longs if p.group(p.group_of(a)).price_range > 0]
    s_stable, s_risky = sum(map(free, stable)), sum(map(free, risky))
    phi_stable = min(1.0, borrowed / s_stable) if s_stable > 0 else 0.0
    phi_risky = min(1.0, max(0.0, borrowed - s_stable) / s_risky) if s_risky > 0 else 0.0
    financed = {g: 0.0 for g in all_groups}
    for a in stable:
        financed[p.group_of(a)] += free(a) * phi_stable
    for a in risky:
        financed[p.group_of(a)] += free(a) * phi_risky

    # §3 steps 4–7 per group.
    scanned_delta = {}
    results = {}
    for g in all_groups:
        gp = p.group(g)
        scanned_spot = in_use[g] + financed[g]
        d_lin = d_contracts[g] + liabilities[g] + scanned_spot  # the scanned spot moves with r
        scanned_delta[g] = d_lin
        delta = d_lin + d_options.get(g, 0.0)
        group_options = [o for o in options if o.group == g]
        if gp.price_range > 0:
            scenarios = grid(gp, g in has_options)
            pnl = [
                d_lin * r + sum(o.pnl(r, v, p.vol_floor) for o in group_options)
                for r, v, _ in scenarios
            ]
            items = sum(abs(d) for (cg, _), d in contracts.items() if cg == g)
            tol = SCAN_TOL * (1 + items + abs_options.get(g, 0.0) - liabilities[g] + scanned_spot)
            scan_loss, k = scan(pnl, scenarios, tol)
            worst = (scenarios[k][0], scenarios[k][1])
        else:
            scan_loss, worst = 0.0, (0.0, 0.0)
        som = gp.som_rate * som_notional.get(g, 0.0)
        # §4 add-ons: basis over dollar deltas netted per instrument; liabilities are all
        # negative and scanned balances all positive, so their sums net like their items.
        netted = [d for (cg, _), d in contracts.items() if cg == g] + [liabilities[g], scanned_spot]
        long, short = sum(d for d in netted if d > 0), -sum(d for d in netted if d < 0)
        concentration = 0.0
        for t, (above, rate) in enumerate(gp.concentration):
            upper = gp.concentration[t + 1][0] if t + 1 < len(gp.concentration) else math.inf
            if abs(delta) > above:
                concentration += rate * (min(abs(delta), upper) - above)
        results[g] = {
            "scan_loss": scan_loss,
            "requirement": max(scan_loss, som),
            "delta": delta,
            "spot_in_use": in_use[g],
            "financed_spot": financed[g],
            "basis": gp.basis_rate * min(long, short),
            "concentration": concentration,
            "som": som,
            "worst_scenario": {"price_move": worst[0], "vol_shock": worst[1]},
        }

    # Offsets: remainders and delta budgets persist from pair to pair.
    remainder = {g: results[g]["requirement"] for g in listed}
    budget = {g: abs(results[g]["delta"]) * p.group(g).price_range for g in listed}
    credit = 0.0
    for a, b, rate in p.offsets:
        if a in remainder and b in remainder and results[a]["delta"] * results[b]["delta"] < 0:
            m = min(budget[a], budget[b], remainder[a], remainder[b])
            if m > 0:
                credit += rate * m
                for g in (a, b):
                    remainder[g] -= m
                    budget[g] -= m
    sum_som = sum(results[g]["som"] for g in listed)
    scan_total = max(sum(results[g]["requirement"] for g in listed) - credit, sum_som)

    # Systemic scenarios: every group at once, options fully revalued.
    systemic = 0.0
    for multiple, vol_shock, overrides in p.systemic:
        pnl = 0.0
        for g in all_groups:
            r = overrides.get(g, multiple * p.group(g).price_range)
            pnl += scanned_delta[g] * r
            pnl += sum(o.pnl(r, vol_shock, p.vol_floor) for o in options if o.group == g)
        systemic = max(systemic, -pnl)

    borrow_margin = sum(
        p.asset_borrow_mmr.get(a, p.borrow_mmr) * -wallet[a] * prices[a]
        for a in prices
        if wallet[a] < 0
    )
    mm = max(scan_total, systemic) + borrow_margin
    mm += sum(results[g]["basis"] + results[g]["concentration"] for g in listed)
    if mm < MM_DUST:
        mm = 0.0
    im = p.im_factor * mm
    if mm > 0:
        uni_mmr: float | None = adjusted / mm
    else:
        uni_mmr = math.inf if adjusted >= 0 else -math.inf
    if total_equity < 0 or (total_equity == 0 and any(q < 0 for q in wallet.values())):
        status = "BANKRUPT"
    else:
        status = next((name for name, above in p.status[:-1] if uni_mmr > above), p.status[-1][0])
    return {
        "equity": total_equity,
        "adjusted_equity": adjusted,
        "maintenance_margin": mm,
        "initial_margin": im,
        "available": adjusted - im,
        "uni_mmr": uni_mmr if math.isfinite(uni_mmr) else None,
        "status": status,
        "scan": scan_total,
        "systemic": systemic,
        "offset_credit": credit,
        "borrow_margin": borrow_margin,
        "groups": {g: results[g] for g in listed},
    }
