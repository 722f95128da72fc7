"""A vectorised NumPy implementation of the portfolio-margin model (METHODOLOGY.md §1-§4, §8).

The baseline the benchmarks compare the Rust core with: what a quant would write in NumPy.
It depends on NumPy alone and reads the JSON-shaped inputs of METHODOLOGY.md §8:

    >>> import tomllib
    >>> profile = compile_profile(tomllib.load(open("profiles/default.toml", "rb")))
    >>> result = margin(portfolio_dict, market_dict, profile)   # the §8 result dict

Layout of the computation:

- `compile_profile` resolves the profile once: group tables (missing keys from `"*"`), every
  group's scenario grid, with and without the vol dimension, padded to one width so that all
  groups are scanned in one array operation; collateral and concentration tiers as padded
  arrays; offsets sorted by descending rate (ties in file order).
- `margin` reads the dicts into columns (the one Python loop over positions), then works on
  arrays: contracts (positions), options (positions x scenarios: every option is revalued with
  Black-76 on its group's grid and on the systemic scenarios in a single call), per-asset
  equity and collateral, and per-group sums through `np.bincount` (or a one-hot matrix
  product for the options' P&L vectors). The scan takes every group at once (groups x
  scenarios). Only the cross-group offsets, sequential by definition, loop in Python.

The normal CDF is `N(x) = 0.5 * erfc(-x / sqrt 2)`. NumPy has no `erfc` and SciPy is not a
dependency of the benchmarks, so `erfc` below is a vectorised port of FreeBSD msun's
`s_erf.c` (Sun Microsystems' fdlibm, the algorithm of the Rust `libm` crate the engine uses):
rational approximations on [0, 0.84375), [0.84375, 1.25), [1.25, 1/0.35), [1/0.35, 28), with
published error bounds below 2**-57. It is within a few ulp of CPython's `math.erfc` (the
platform libm) on [-40, 40] (tested: at most 4 ulp, 95 % bit-equal) and keeps full relative
precision in the tail. `N(x)` is then accurate to 2e-16 absolute (the METHODOLOGY asks for
1e-14); its relative error in the far tail is set by the rounding of `x / sqrt 2` (4e-15 at
`x = -10`), as for any erfc-based `N`.
"""

from __future__ import annotations

import datetime as _dt
import functools
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["MarginInputError", "NumpyProfile", "compile_profile", "erfc", "margin", "norm_cdf"]

YEAR_SECONDS = 365.0 * 86400.0
MM_DUST = 1e-9  # an MM below this (USD) counts as 0
SCAN_TOL = 1e-9  # relative tolerance of the worst-scenario choice
_FRAC_1_SQRT_2 = 0.7071067811865476


class MarginInputError(ValueError):
    """Bad input or profile: the message names the field and the value."""


# --------------------------------------------------------------------------------------------
# erfc: a vectorised port of FreeBSD /usr/src/lib/msun/src/s_erf.c
#
# ====================================================
# Copyright (C) 1993 by Sun Microsystems, Inc. All rights reserved.
#
# Developed at SunPro, a Sun Microsystems, Inc. business.
# Permission to use, copy, modify, and distribute this
# software is freely granted, provided that this notice
# is preserved.
# ====================================================
# --------------------------------------------------------------------------------------------

_ERX = 8.45062911510467529297e-01
# erf on [0, 0.84375]
_PP = (
    1.28379167095512558561e-01,
    -3.25042107247001499370e-01,
    -2.84817495755985104766e-02,
    -5.77027029648944159157e-03,
    -2.37630166566501626084e-05,
)
_QQ = (
    3.97917223959155352819e-01,
    6.50222499887672944485e-02,
    5.08130628187576562776e-03,
    1.32494738004321644526e-04,
    -3.96022827877536812320e-06,
)
# erf on [0.84375, 1.25]
_PA = (
    -2.36211856075265944077e-03,
    4.14856118683748331666e-01,
    -3.72207876035701323847e-01,
    3.18346619901161753674e-01,
    -1.10894694282396677476e-01,
    3.54783043256182359371e-02,
    -2.16637559486879084300e-03,
)
_QA = (
    1.06420880400844228286e-01,
    5.40397917702171048937e-01,
    7.18286544141962662868e-02,
    1.26171219808761642112e-01,
    1.36370839120290507362e-02,
    1.19844998467991074170e-02,
)
# erfc on [1.25, 1/0.35]
_RA = (
    -9.86494403484714822705e-03,
    -6.93858572707181764372e-01,
    -1.05586262253232909814e01,
    -6.23753324503260060396e01,
    -1.62396669462573470355e02,
    -1.84605092906711035994e02,
    -8.12874355063065934246e01,
    -9.81432934416914548592e00,
)
_SA = (
    1.96512716674392571292e01,
    1.37657754143519042600e02,
    4.34565877475229228821e02,
    6.45387271733267880336e02,
    4.29008140027567833386e02,
    1.08635005541779435134e02,
    6.57024977031928170135e00,
    -6.04244152148580987438e-02,
)
# erfc on [1/0.35, 28]
_RB = (
    -9.86494292470009928597e-03,
    -7.99283237680523006574e-01,
    -1.77579549177547519889e01,
    -1.60636384855821916062e02,
    -6.37566443368389627722e02,
    -1.02509513161107724954e03,
    -4.83519191608651397019e02,
)
_SB = (
    3.03380607434824582924e01,
    3.25792512996573918826e02,
    1.53672958608443695994e03,
    3.19985821950859553908e03,
    2.55305040643316442583e03,
    4.74528541206955367215e02,
    -2.24409524465858183362e01,
)


def _horner(s: np.ndarray, coeffs: tuple[float, ...]) -> np.ndarray:
    """c0 + s*(c1 + s*(c2 + ...)), in fdlibm's order of operations, in place."""
    acc = s * coeffs[-1]
    acc += coeffs[-2]
    for c in coeffs[-3::-1]:
        acc *= s
        acc += c
    return acc


def _one_plus_horner(s: np.ndarray, coeffs: tuple[float, ...]) -> np.ndarray:
    """1 + s*(c1 + s*(c2 + ...))."""
    acc = _horner(s, coeffs)
    acc *= s
    acc += 1.0
    return acc


_TAIL = 0x4006DB6D  # high word of 1/0.35


def erfc(x: np.ndarray) -> np.ndarray:
    """Complementary error function, elementwise (fdlibm's algorithm and coefficients).

    The ranges are chosen on the high word of |x|, as in fdlibm; each is computed on its own
    elements only. (fdlibm's `|x| < 2**-56: 1 - x` branch only avoids a floating-point flag:
    the general formula rounds to the same 1.0.)
    """
    x = np.asarray(x, dtype=np.float64)
    flat = x.ravel()
    out = np.empty_like(flat)
    ix = (flat.view(np.uint64) >> np.uint64(32)).astype(np.uint32) & np.uint32(0x7FFFFFFF)
    neg = np.signbit(flat)

    # |x| < 0.84375: erfc = 1 - erf, erf = x + x*R(x^2); for x in [1/4, 0.84375)
    # 0.5 - (x - 0.5 + x*R) keeps the last bits
    i = np.flatnonzero(ix < 0x3FEB0000)
    if i.size:
        xs = flat[i]
        z = xs * xs
        xy = xs * (_horner(z, _PP) / _one_plus_horner(z, _QQ))
        low = neg[i] | (ix[i] < 0x3FD00000)
        out[i] = np.where(low, 1.0 - (xs + xy), 0.5 - (xs - 0.5 + xy))

    # 0.84375 <= |x| < 1.25: erfc(|x|) = (1 - c) - P1(s)/Q1(s), s = |x| - 1
    i = np.flatnonzero((ix >= 0x3FEB0000) & (ix < 0x3FF40000))
    if i.size:
        s = np.abs(flat[i]) - 1.0
        v = 1.0 - _ERX - _horner(s, _PA) / _one_plus_horner(s, _QA)
        out[i] = np.where(neg[i], 2.0 - v, v)

    # 1.25 <= |x| < 28: erfc(|x|) = exp(-z*z - 0.5625) * exp((z - |x|)(z + |x|) + R/S) / |x|,
    # z = |x| with the low word cleared; R/S on [1.25, 1/0.35) and on [1/0.35, 28)
    i = np.flatnonzero((ix >= 0x3FF40000) & (ix < 0x403C0000))
    if i.size:
        ax = np.abs(flat[i])
        s = 1.0 / (ax * ax)
        near = ix[i] < _TAIL
        ratio = np.empty_like(s)
        if near.all():
            ratio = _horner(s, _RA) / _one_plus_horner(s, _SA)
        elif not near.any():
            ratio = _horner(s, _RB) / _one_plus_horner(s, _SB)
        else:
            sn, sf = s[near], s[~near]
            ratio[near] = _horner(sn, _RA) / _one_plus_horner(sn, _SA)
            ratio[~near] = _horner(sf, _RB) / _one_plus_horner(sf, _SB)
        z = (ax.view(np.uint64) & np.uint64(0xFFFFFFFF00000000)).view(np.float64)
        v = np.exp(-z * z - 0.5625) * np.exp((z - ax) * (z + ax) + ratio) / ax
        out[i] = np.where(neg[i], 2.0 - v, v)

    # |x| >= 28, inf, nan: 0 (underflow) or 2; nan stays nan
    i = np.flatnonzero(ix >= 0x403C0000)
    if i.size:
        xs = flat[i]
        out[i] = np.where(xs > 0.0, 0.0, np.where(xs < 0.0, 2.0, np.nan))
    return out.reshape(x.shape)


def norm_cdf(x: np.ndarray) -> np.ndarray:
    """Standard normal CDF through erfc: full relative precision in the lower tail."""
    return 0.5 * erfc(-np.asarray(x, dtype=np.float64) * _FRAC_1_SQRT_2)


def _black76(
    sign: np.ndarray, f: np.ndarray, k: np.ndarray, sigma: np.ndarray, tau: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Black-76 at zero rates, elementwise (sign +1 call, -1 put); tau <= 0: intrinsic.

    Returns the value and `N(sign * d1)` (so the live delta is `sign * N(sign * d1)`).
    `sign * (F N(sign d1) - K N(sign d2))` is the call formula for a call and exactly
    `K N(-d2) - F N(-d1)` for a put: no put-call-parity cancellation in the wings, and both
    CDFs come from a single erfc call.
    """
    live = tau > 0.0
    sd = sigma * np.sqrt(np.where(live, tau, 1.0))
    d1 = (np.log(f / k) + 0.5 * sd * sd) / sd
    d2 = d1 - sd
    n1, n2 = norm_cdf(np.stack(np.broadcast_arrays(sign * d1, sign * d2)))
    value = sign * (f * n1 - k * n2)
    intrinsic = np.maximum(sign * (f - k), 0.0)
    return np.where(live, value, intrinsic), n1


# --------------------------------------------------------------------------------------------
# Profile
# --------------------------------------------------------------------------------------------

_GROUP_KEYS = (
    "price_range",
    "price_points",
    "vol_shocks",
    "extreme_multiple",
    "extreme_cover",
    "basis_rate",
    "som_rate",
    "concentration",
)


@dataclass(frozen=True)
class NumpyProfile:
    """A profile compiled into arrays. Tables: index 0 is `"*"`, then the named groups."""

    im_factor: float
    vol_floor: float
    borrow_mmr: float
    table_index: dict[str, int]  # named group -> table (a group without one uses 0, "*")
    price_range: np.ndarray  # (T,)
    basis_rate: np.ndarray  # (T,)
    som_rate: np.ndarray  # (T,)
    # grids, padded to K columns: flat (price points, then extremes) and with the vol dimension
    grid_r: np.ndarray  # (T, 2, K) returns; [:, 0] flat, [:, 1] with vol shocks
    grid_v: np.ndarray  # (T, 2, K) vol shocks
    grid_nw: np.ndarray  # (T, 2, K) minus the loss weight (-1, -extreme_cover)
    grid_valid: np.ndarray  # (T, 2, K) False: padding
    option_r: np.ndarray  # (T, 1 + K): r = 0 (the market), then the grid with vol shocks
    option_v: np.ndarray  # (T, 1 + K)
    conc_above: np.ndarray  # (T, C) tier thresholds (padding: inf)
    conc_upper: np.ndarray  # (T, C) next threshold (inf for the last)
    conc_rate: np.ndarray  # (T, C)
    asset_index: dict[str, int]  # profile asset -> row; unknown assets use the last row
    asset_group: dict[str, str]
    coll_rate: np.ndarray  # (A+1, M) collateral tier rates (padding: 0)
    coll_lower: np.ndarray  # (A+1, M)
    coll_upper: np.ndarray  # (A+1, M)
    is_collateral: np.ndarray  # (A+1,) first tier rate > 0
    asset_borrow_mmr: np.ndarray  # (A+1,)
    offsets: tuple[tuple[str, str, float], ...]  # descending rate, ties in file order
    systemic: tuple[tuple[float, float, dict[str, float]], ...]  # (multiple, vol_shock, overrides)
    sys_vol_shock: np.ndarray  # (E,)
    status: tuple[tuple[str, float], ...]  # healthiest first; the last catches everything


def _err(field: str, msg: str) -> MarginInputError:
    return MarginInputError(f"{field}: {msg}")


def _group_table(d: dict, base: dict | None, at: str) -> dict:
    g = dict(base or {})
    for k, v in d.items():
        if k not in _GROUP_KEYS:
            raise _err(f"{at}.{k}", "unknown key")
        g[k] = v
    missing = [k for k in _GROUP_KEYS if k not in g]
    if missing:
        raise _err(f"{at}.{missing[0]}", "required")
    pr, n, em = float(g["price_range"]), int(g["price_points"]), float(g["extreme_multiple"])
    if not 0.0 <= pr < 1.0:
        raise _err(f"{at}.price_range", f"must be in [0, 1), got {pr}")
    if n < 3 or n % 2 == 0 or n != g["price_points"]:
        raise _err(f"{at}.price_points", f"must be odd and >= 3, got {g['price_points']}")
    if em < 1.0 or em * pr >= 1.0:
        raise _err(f"{at}.extreme_multiple", f"must be >= 1 with multiple * range < 1, got {em}")
    prev = -np.inf
    for i, t in enumerate(g["concentration"]):
        if t["above"] <= prev:
            raise _err(f"{at}.concentration[{i}].above", "tiers must be sorted")
        if t["rate"] < 0:
            raise _err(f"{at}.concentration[{i}].rate", f"must be >= 0, got {t['rate']}")
        prev = t["above"]
    if not g["vol_shocks"] or any(1.0 + v <= 0.0 for v in g["vol_shocks"]):
        raise _err(f"{at}.vol_shocks", f"must be non-empty and > -1, got {g['vol_shocks']}")
    return g


def _grids(g: dict) -> tuple[list[tuple[float, float, float]], list[tuple[float, float, float]]]:
    """(r, v, w) of the flat grid and of the grid with the vol dimension, in grid order."""
    n, pr = int(g["price_points"]), float(g["price_range"])
    returns = pr * (2.0 * np.arange(n) / (n - 1) - 1.0)
    em, cover = float(g["extreme_multiple"]), float(g["extreme_cover"])
    extremes = [(s * em * pr, 0.0, cover) for s in (-1.0, 1.0)]
    flat = [(float(r), 0.0, 1.0) for r in returns] + extremes
    shocks = [float(v) for v in g["vol_shocks"]]
    with_vol = [(float(r), v, 1.0) for r in returns for v in shocks] + extremes
    return flat, with_vol


def compile_profile(profile: dict[str, Any]) -> NumpyProfile:
    """Compile a profile dict (`tomllib.load` of a profile TOML) into a `NumpyProfile`."""
    mg = profile.get("margin", {})
    im_factor = float(mg.get("im_factor", 1.5))
    vol_floor = float(mg.get("vol_floor", 0.0))
    borrow_mmr = float(mg.get("borrow_mmr", 0.0))
    if im_factor < 1.0:
        raise _err("margin.im_factor", f"must be >= 1, got {im_factor}")

    groups = profile["groups"]
    if "*" not in groups:
        raise _err('groups."*"', "required: the parameters of every other group")
    star = _group_table(groups["*"], None, 'groups."*"')
    tables = [star] + [_group_table(v, star, f"groups.{k}") for k, v in groups.items() if k != "*"]
    names = [k for k in groups if k != "*"]
    table_index = {k: i + 1 for i, k in enumerate(names)}
    n_tables = len(tables)

    grids = [_grids(t) for t in tables]
    width = max(len(w) for _, w in grids)
    grid_r = np.zeros((n_tables, 2, width))
    grid_v = np.zeros((n_tables, 2, width))
    grid_nw = np.zeros((n_tables, 2, width))
    grid_valid = np.zeros((n_tables, 2, width), dtype=bool)
    for i, pair in enumerate(grids):
        for j, sc in enumerate(pair):
            r, v, w = np.array(sc).T
            grid_r[i, j, : len(sc)] = r
            grid_v[i, j, : len(sc)] = v
            grid_nw[i, j, : len(sc)] = -w
            grid_valid[i, j, : len(sc)] = True

    n_conc = max(1, *(len(t["concentration"]) for t in tables))
    conc_above = np.full((n_tables, n_conc), np.inf)
    conc_upper = np.full((n_tables, n_conc), np.inf)
    conc_rate = np.zeros((n_tables, n_conc))
    for i, t in enumerate(tables):
        tiers = t["concentration"]
        for j, tier in enumerate(tiers):
            conc_above[i, j] = tier["above"]
            conc_rate[i, j] = tier["rate"]
            if j + 1 < len(tiers):
                conc_upper[i, j] = tiers[j + 1]["above"]

    assets = profile.get("assets", {})
    asset_index = {a: i for i, a in enumerate(assets)}
    asset_group = {a: v.get("group", a) for a, v in assets.items()}
    n_coll = max(1, *(len(v.get("collateral", [])) for v in assets.values()), 1)
    coll_rate = np.zeros((len(assets) + 1, n_coll))
    coll_lower = np.zeros((len(assets) + 1, n_coll))
    coll_upper = np.full((len(assets) + 1, n_coll), np.inf)
    asset_borrow = np.full(len(assets) + 1, borrow_mmr)
    for i, (a, v) in enumerate(assets.items()):
        lower = 0.0
        for j, tier in enumerate(v.get("collateral", [])):
            rate, up = float(tier["rate"]), float(tier.get("up_to", np.inf))
            if not 0.0 <= rate <= 1.0:
                raise _err(f"assets.{a}.collateral[{j}].rate", f"must be in [0, 1], got {rate}")
            if up <= lower:
                raise _err(f"assets.{a}.collateral[{j}].up_to", "tiers must be sorted")
            coll_rate[i, j], coll_lower[i, j], coll_upper[i, j] = rate, lower, up
            lower = up
        if "borrow_mmr" in v:
            asset_borrow[i] = float(v["borrow_mmr"])

    known = set(names) | set(asset_group.values())
    offsets = []
    for i, o in enumerate(profile.get("offsets", [])):
        for k in ("a", "b"):
            if o[k] not in known:
                raise _err(f"offsets[{i}].{k}", f"names no group of the profile, got {o[k]!r}")
        offsets.append((o["a"], o["b"], float(o["rate"])))
    offsets.sort(key=lambda o: -o[2])  # stable: ties keep file order

    systemic = []
    for i, s in enumerate(profile.get("systemic", [])):
        overrides = {g: float(r) for g, r in s.get("overrides", {}).items()}
        for g, r in overrides.items():
            if g not in known:
                raise _err(f"systemic[{i}].overrides.{g}", "names no group of the profile")
            if r <= -1.0:
                raise _err(f"systemic[{i}].overrides.{g}", f"a move of -100 % or worse, got {r}")
        systemic.append((float(s["multiple"]), float(s.get("vol_shock", 0.0)), overrides))

    levels = profile["status"]
    status = tuple((s["name"], float(s.get("above", -np.inf))) for s in levels)

    return NumpyProfile(
        im_factor=im_factor,
        vol_floor=vol_floor,
        borrow_mmr=borrow_mmr,
        table_index=table_index,
        price_range=np.array([float(t["price_range"]) for t in tables]),
        basis_rate=np.array([float(t["basis_rate"]) for t in tables]),
        som_rate=np.array([float(t["som_rate"]) for t in tables]),
        grid_r=grid_r,
        grid_v=grid_v,
        grid_nw=grid_nw,
        grid_valid=grid_valid,
        option_r=np.concatenate([np.zeros((n_tables, 1)), grid_r[:, 1]], axis=1),
        option_v=np.concatenate([np.zeros((n_tables, 1)), grid_v[:, 1]], axis=1),
        conc_above=conc_above,
        conc_upper=conc_upper,
        conc_rate=conc_rate,
        asset_index=asset_index,
        asset_group=asset_group,
        coll_rate=coll_rate,
        coll_lower=coll_lower,
        coll_upper=coll_upper,
        is_collateral=coll_rate[:, 0] > 0.0,
        asset_borrow_mmr=asset_borrow,
        offsets=tuple(offsets),
        systemic=tuple(systemic),
        sys_vol_shock=np.array([s[1] for s in systemic]),
        status=status,
    )


# --------------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=4096)
def _parse_time(t: str | float | int) -> float:
    """Seconds since the epoch: ISO-8601 (no zone: UTC; a bare date: midnight UTC) or a number."""
    if isinstance(t, int | float) and not isinstance(t, bool):
        return float(t)
    if not isinstance(t, str):
        raise MarginInputError(f"must be an ISO-8601 time, got {t!r}")
    try:
        d = _dt.datetime.fromisoformat(t)
    except ValueError:
        raise MarginInputError(f"malformed time {t!r}") from None
    if d.tzinfo is None:
        d = d.replace(tzinfo=_dt.UTC)
    return d.timestamp()


def _time(t: Any, field: str) -> float:
    try:
        return _parse_time(t)
    except (MarginInputError, TypeError) as e:
        raise _err(field, str(e)) from None


def _require(values: list, positive: bool, field: Any, optional: bool = False) -> np.ndarray:
    """`values` as floats, all finite (and > 0); else an error naming `field(j)` of the first
    bad one. `optional`: nan stands for "not given" and passes."""
    arr = np.array(values, dtype=np.float64)
    ok = (arr > 0.0) if positive else np.isfinite(arr)
    if positive:
        ok &= arr < np.inf
    if optional:
        ok |= np.isnan(arr)
    if not ok.all():
        j = int(np.argmin(ok))
        rule = "must be > 0" if positive else "must be finite"
        raise _err(field(j), f"{rule}, got {values[j]}")
    return arr


def _field(positions: list[int], key: str):
    """The error field of the j-th item of a column: `positions[i].key`."""
    return lambda j: f"positions[{positions[j]}].{key}"


_SIGN = {"call": 1.0, "put": -1.0}


# --------------------------------------------------------------------------------------------
# Margin
# --------------------------------------------------------------------------------------------


def margin(portfolio: dict, market: dict, profile: NumpyProfile) -> dict:
    """The METHODOLOGY §8 result dict of one account on one market snapshot."""
    prices: dict = market["prices"]
    marks: dict = market.get("marks") or {}
    vols: dict = market.get("vols") or {}
    now = _time(market["time"], "market.time")
    table_index = profile.table_index
    asset_group = profile.asset_group
    asset_index = profile.asset_index

    # ---- assets and groups, in order of first use --------------------------------------
    a_ix: dict[str, int] = {}
    a_names: list[str] = []
    a_price: list[float] = []
    a_group: list[int] = []
    g_ix: dict[str, int] = {}
    g_names: list[str] = []
    g_listed: list[bool] = []

    def asset(name: str, i: int, key: str) -> int:
        """A new asset (and its group): `positions[i].key` names it in errors (i < 0: balance)."""
        price = prices.get(name)
        if price is None:
            field = f"positions[{i}].{key}" if i >= 0 else f"balances.{name}"
            raise _err(field, f"no price for {name} in market.prices")
        gname = asset_group.get(name, name)
        g = g_ix.get(gname)
        if g is None:
            g = g_ix[gname] = len(g_names)
            g_names.append(gname)
            g_listed.append(False)
        j = a_ix[name] = len(a_names)
        a_names.append(name)
        a_price.append(price)
        a_group.append(g)
        return j

    balances = portfolio.get("balances") or {}
    bal_assets = []
    for name in balances:
        j = a_ix.get(name)
        if j is None:
            j = asset(name, -1, "")
        g_listed[a_group[j]] = True
        bal_assets.append(j)

    # ---- positions into columns: the one loop over positions ------------------------------
    c_pos: list[int] = []
    c_key: list[int] = []  # netting key: (group, symbol)
    c_inv: list[bool] = []
    c_b: list[int] = []
    c_s: list[int] = []
    c_qty: list[float] = []  # linear: qty (base units); inverse: contracts
    c_size: list[float] = []  # inverse: contract size (USD); linear: 1
    c_entry: list[float] = []
    c_mark: list[float] = []  # nan: no mark given
    keys: dict[tuple[int, str], int] = {}
    key_group: list[int] = []
    o_pos: list[int] = []
    o_b: list[int] = []
    o_s: list[int] = []
    o_sign: list[float] = []
    o_strike: list[float] = []
    o_expiry: list[float] = []
    o_qty: list[float] = []
    o_vol: list[float] = []
    nan = float("nan")

    for i, pos in enumerate(portfolio.get("positions") or ()):
        u = pos["underlying"]
        b = a_ix.get(u)
        if b is None:
            b = asset(u, i, "underlying")
        g = a_group[b]
        g_listed[g] = True
        kind = pos.get("type")
        if kind == "option":
            settle = pos.get("settle", "USDT")
            s = a_ix.get(settle)
            if s is None:
                s = asset(settle, i, "settle")
            sym = pos["symbol"]
            vol = vols.get(sym)
            if vol is None:
                vol = vols.get(u)
                if vol is None:
                    raise _err(f"market.vols.{sym}", f"no vol for {sym} or {u} in market.vols")
            sign = _SIGN.get(pos.get("kind"))
            if sign is None:
                raise _err(f"positions[{i}].kind", f"must be call or put, got {pos.get('kind')!r}")
            o_pos.append(i)
            o_b.append(b)
            o_s.append(s)
            o_sign.append(sign)
            o_strike.append(pos["strike"])
            o_expiry.append(_time(pos["expiry"], f"positions[{i}].expiry"))
            o_qty.append(pos["qty"])
            o_vol.append(vol)
        elif kind == "linear" or kind == "inverse":
            if kind == "linear":
                settle = pos.get("settle", "USDT")
                s = a_ix.get(settle)
                if s is None:
                    s = asset(settle, i, "settle")
                c_qty.append(pos["qty"])
                c_size.append(1.0)
            else:
                settle = pos.get("settle", u)
                if settle != u:
                    raise _err(
                        f"positions[{i}].settle",
                        f"an inverse contract settles in its underlying {u}, got {settle!r}",
                    )
                s = b
                c_qty.append(pos["contracts"])
                c_size.append(pos["contract_size"])
            sym = pos["symbol"]
            key = keys.get((g, sym))
            if key is None:
                key = keys[(g, sym)] = len(key_group)
                key_group.append(g)
            c_pos.append(i)
            c_key.append(key)
            c_inv.append(kind == "inverse")
            c_b.append(b)
            c_s.append(s)
            c_entry.append(pos["entry_price"])
            c_mark.append(marks.get(sym, nan))
        else:
            raise _err(f"positions[{i}].type", f"unknown position type {kind!r}")

    # ---- validation, vectorised --------------------------------------------------------------
    n_assets, n_groups = len(a_names), len(g_names)
    price = _require(a_price, True, lambda j: f"market.prices.{a_names[j]}")
    grp = np.array(a_group, dtype=np.intp)
    wallet = np.zeros(n_assets)
    wallet[bal_assets] = _require(
        list(balances.values()), False, lambda j: f"balances.{list(balances)[j]}"
    )
    table = np.array([table_index.get(n, 0) for n in g_names], dtype=np.intp)
    price_range = profile.price_range[table]
    row = np.array([asset_index.get(n, len(asset_index)) for n in a_names], dtype=np.intp)
    settled = np.zeros(n_assets)  # UPnL and option values settling in each asset (asset units)

    # ---- contracts: dollar delta, UPnL, netted per (group, symbol) --------------------------
    n_keys = len(key_group)
    key_grp = np.array(key_group, dtype=np.intp)
    if c_pos:
        qty = _require(c_qty, False, _field(c_pos, "qty"))
        size = _require(c_size, True, _field(c_pos, "contract_size"))
        entry = _require(c_entry, True, _field(c_pos, "entry_price"))
        mark = _require(c_mark, True, lambda j: "market.marks", optional=True)
        inv = np.array(c_inv)
        cb = np.array(c_b, dtype=np.intp)
        cs = np.array(c_s, dtype=np.intp)
        pb, ps = price[cb], price[cs]
        mark = np.where(np.isnan(mark), np.where(inv, pb, pb / ps), mark)
        notional = qty * size  # inverse: n C (USD); linear: q
        # linear: q (M - E) in the settle asset; inverse: n C (1/E - 1/M) in the underlying
        upnl = np.where(inv, notional * (1.0 / entry - 1.0 / mark), qty * (mark - entry))
        settled += np.bincount(cs, upnl, minlength=n_assets)
        c_delta = np.where(inv, notional * pb / entry, qty * mark * ps)
        netted = np.bincount(np.array(c_key, dtype=np.intp), c_delta, minlength=n_keys)
    else:
        netted = np.zeros(0)
    d_contracts = np.bincount(key_grp, netted, minlength=n_groups)

    # ---- options: positions x scenarios -----------------------------------------------------
    # Column 0 is the option at the market (r = 0, v = 0: exactly the market value), then the
    # group's grid with the vol dimension (padded), then the systemic scenarios.
    n_sys = len(profile.systemic)
    width = profile.grid_r.shape[2]
    sys_ret = _systemic_returns(profile, g_names, price_range)  # (groups, systemic)
    if o_pos:
        strike = _require(o_strike, True, _field(o_pos, "strike"))
        oq = _require(o_qty, False, _field(o_pos, "qty"))
        sigma = _require(o_vol, True, lambda j: "market.vols")
        ob = np.array(o_b, dtype=np.intp)
        os_ = np.array(o_s, dtype=np.intp)
        if (price_range[grp[os_]] != 0.0).any():
            j = int(np.argmax(price_range[grp[os_]] != 0.0))
            raise _err(
                f"positions[{o_pos[j]}].settle",
                f"an option must settle in a stablecoin, got {a_names[os_[j]]!r}",
            )
        og = grp[ob]
        sign = np.array(o_sign)
        tau = (np.array(o_expiry) - now) / YEAR_SECONDS
        pb, ps = price[ob], price[os_]
        fwd = pb / ps
        otab = table[og]
        r = np.concatenate([profile.option_r[otab], sys_ret[og]], axis=1)
        v = np.concatenate(
            [profile.option_v[otab], np.broadcast_to(profile.sys_vol_shock, (len(ob), n_sys))],
            axis=1,
        )
        col = (slice(None), None)
        shocked = np.maximum(sigma[col] * (1.0 + v), np.minimum(sigma, profile.vol_floor)[col])
        values, n1 = _black76(sign[col], fwd[col] * (1.0 + r), strike[col], shocked, tau[col])
        value = values[:, 0]
        expired_delta = np.where(sign * (fwd - strike) > 0.0, sign, 0.0)
        delta = np.where(tau > 0.0, sign * n1[:, 0], expired_delta)
        settled += np.bincount(os_, oq * value, minlength=n_assets)
        d_opt_items = oq * delta * pb
        d_options = np.bincount(og, d_opt_items, minlength=n_groups)
        abs_options = np.bincount(og, np.abs(d_opt_items), minlength=n_groups)
        short_notional = np.bincount(og, np.where(oq < 0.0, -oq * pb, 0.0), minlength=n_groups)
        has_options = np.bincount(og, minlength=n_groups) > 0
        pnl_unit = (values[:, 1:] - value[col]) * ps[col]  # USD per unit
        onehot = og == np.arange(n_groups)[:, None]
        group_opt = (onehot * oq) @ pnl_unit  # (groups, grid + systemic)
    else:
        d_options = abs_options = short_notional = np.zeros(n_groups)
        has_options = np.zeros(n_groups, dtype=bool)
        group_opt = np.zeros((n_groups, width + n_sys))

    # ---- §2 equity and collateral ------------------------------------------------------------
    value = (wallet + settled) * price
    equity = float(value.sum())
    lower = profile.coll_lower[row]
    banded = np.maximum(np.minimum(value[:, None], profile.coll_upper[row]) - lower, 0.0)
    adjusted = np.where(value <= 0.0, value, (profile.coll_rate[row] * banded).sum(axis=1))
    adjusted_equity = float(adjusted.sum())

    wallet_usd = wallet * price
    is_long = wallet > 0.0
    is_loan = wallet < 0.0
    spot_long = np.bincount(grp, np.where(is_long, wallet_usd, 0.0), minlength=n_groups)
    liabilities = np.bincount(grp, np.where(is_loan, wallet_usd, 0.0), minlength=n_groups)
    borrowing = np.bincount(grp, np.maximum(-value, 0.0), minlength=n_groups)
    borrow_margin = float(
        (np.where(is_loan, profile.asset_borrow_mmr[row] * -wallet_usd, 0.0)).sum()
    )

    # ---- §3 steps 1-3: spot in use, financed spot ------------------------------------------
    d_rest = d_contracts + d_options + liabilities
    in_use = np.where((d_rest < 0.0) & (spot_long > 0.0), np.minimum(spot_long, -d_rest), 0.0)
    in_use_frac = np.divide(in_use, spot_long, out=np.zeros(n_groups), where=spot_long > 0.0)
    borrowed = float(np.maximum(borrowing - in_use, 0.0).sum())
    stable = price_range == 0.0
    financeable = is_long & profile.is_collateral[row]
    free = np.where(financeable, wallet_usd * (1.0 - in_use_frac[grp]), 0.0)
    free_stable = float(free[stable[grp]].sum())
    free_risky = float(free[~stable[grp]].sum())
    phi_stable = min(borrowed / free_stable, 1.0) if free_stable > 0.0 else 0.0
    phi_risky = min(max(borrowed - free_stable, 0.0) / free_risky, 1.0) if free_risky > 0 else 0.0
    phi = np.where(stable, phi_stable, phi_risky)
    financed = np.bincount(grp, free * phi[grp], minlength=n_groups)
    scanned_spot = in_use + financed
    d_lin = d_contracts + liabilities + scanned_spot
    delta = d_lin + d_options

    # ---- §3 steps 5-7: the scan, every group at once ---------------------------------------
    dim = has_options.astype(np.intp)
    grid_r = profile.grid_r[table, dim]
    pnl = d_lin[:, None] * grid_r + group_opt[:, :width]
    loss = np.where(profile.grid_valid[table, dim], profile.grid_nw[table, dim] * pnl, -np.inf)
    best = loss.max(axis=1)
    abs_items = (
        np.bincount(key_grp, np.abs(netted), minlength=n_groups)
        + abs_options
        - liabilities
        + scanned_spot
    )
    tol = SCAN_TOL * (1.0 + abs_items)
    worst = np.argmax(loss >= (best - tol)[:, None], axis=1)
    gridded = price_range > 0.0
    scan_loss = np.where(gridded & (best >= tol), best, 0.0)
    rows = np.arange(n_groups)
    worst_r = np.where(gridded, grid_r[rows, worst], 0.0)
    worst_v = np.where(gridded, profile.grid_v[table, dim][rows, worst], 0.0)
    som = profile.som_rate[table] * short_notional
    requirement = np.maximum(scan_loss, som)

    # ---- §4 add-ons: basis (netted per instrument), concentration ---------------------------
    long_ = (
        np.bincount(key_grp, np.maximum(netted, 0.0), minlength=n_groups)
        + np.maximum(liabilities, 0.0)
        + np.maximum(scanned_spot, 0.0)
    )
    short = (
        np.bincount(key_grp, np.maximum(-netted, 0.0), minlength=n_groups)
        + np.maximum(-liabilities, 0.0)
        + np.maximum(-scanned_spot, 0.0)
    )
    basis = profile.basis_rate[table] * np.minimum(long_, short)
    abs_delta = np.abs(delta)[:, None]
    above = profile.conc_above[table]
    conc_part = np.maximum(np.minimum(abs_delta, profile.conc_upper[table]) - above, 0.0)
    concentration = (profile.conc_rate[table] * conc_part).sum(axis=1)

    # ---- cross-group offsets (sequential by definition), listed groups only -----------------
    listed = np.array(g_listed, dtype=bool)
    li = np.flatnonzero(listed)
    pos_of = {g_names[g]: j for j, g in enumerate(li)}
    rem = requirement[li].tolist()
    d_l = delta[li].tolist()
    budget = (np.abs(delta[li]) * price_range[li]).tolist()
    offset = 0.0
    for ga, gb, rate in profile.offsets:
        a, b = pos_of.get(ga), pos_of.get(gb)
        if a is None or b is None or d_l[a] * d_l[b] >= 0.0:
            continue
        m = min(budget[a], budget[b], rem[a], rem[b])
        if m <= 0.0:
            continue
        offset += rate * m
        rem[a] -= m
        rem[b] -= m
        budget[a] -= m
        budget[b] -= m
    sum_som = float(som[li].sum())
    scan_total = max(float(requirement[li].sum()) - offset, sum_som)

    # ---- systemic scenarios: every group's scanned exposure, every option revalued ----------
    systemic = 0.0
    if n_sys:
        sys_pnl = (d_lin[:, None] * sys_ret + group_opt[:, width:]).sum(axis=0)
        systemic = max(0.0, float((-sys_pnl).max()))

    mm = max(scan_total, systemic) + float(basis[li].sum() + concentration[li].sum())
    mm += borrow_margin
    if mm < MM_DUST:
        mm = 0.0
    im = profile.im_factor * mm
    if mm > 0.0:
        uni_mmr = adjusted_equity / mm
    else:
        uni_mmr = np.inf if adjusted_equity >= 0.0 else -np.inf
    if equity < 0.0 or (equity == 0.0 and bool(is_loan.any())):
        status = "BANKRUPT"
    else:
        status = next((n for n, above in profile.status[:-1] if uni_mmr > above), None)
        status = status or profile.status[-1][0]

    cols = zip(
        li.tolist(),
        scan_loss[li].tolist(),
        requirement[li].tolist(),
        delta[li].tolist(),
        in_use[li].tolist(),
        financed[li].tolist(),
        basis[li].tolist(),
        concentration[li].tolist(),
        som[li].tolist(),
        worst_r[li].tolist(),
        worst_v[li].tolist(),
        strict=True,
    )
    groups = {
        g_names[g]: {
            "scan_loss": sl,
            "requirement": rq,
            "delta": dl,
            "spot_in_use": u,
            "financed_spot": z,
            "basis": bs,
            "concentration": cc,
            "som": sm,
            "worst_scenario": {"price_move": wr, "vol_shock": wv},
        }
        for g, sl, rq, dl, u, z, bs, cc, sm, wr, wv in cols
    }
    return {
        "equity": equity,
        "adjusted_equity": adjusted_equity,
        "maintenance_margin": mm,
        "initial_margin": im,
        "available": adjusted_equity - im,
        "uni_mmr": float(uni_mmr) if np.isfinite(uni_mmr) else None,
        "status": status,
        "scan": scan_total,
        "systemic": systemic,
        "offset_credit": offset,
        "borrow_margin": borrow_margin,
        "groups": groups,
    }


def _systemic_returns(profile: NumpyProfile, g_names: list[str], price_range: np.ndarray):
    """(groups, systemic scenarios): a group's override, else multiple * price_range."""
    out = np.empty((len(g_names), len(profile.systemic)))
    for e, (multiple, _, overrides) in enumerate(profile.systemic):
        out[:, e] = multiple * price_range
        for j, name in enumerate(g_names):
            if name in overrides:
                out[j, e] = overrides[name]
    return out
