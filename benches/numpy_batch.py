"""The portfolio-margin model in NumPy, vectorised across accounts: the batch baseline.

What a quant would write to margin a whole book at once in NumPy, reading the same
columns as ``Engine.margin_batch`` (``pmengine.book.batch``) as numpy arrays, strings as
dictionary codes. Every per-account quantity is a dense ``(accounts, assets)`` or
``(accounts, groups)`` array; positions reach them through ``np.bincount`` on flat cell
indices; contract deltas are netted per (account, group, symbol) with one sort; each
distinct option series is priced once on its group's grid and the systemic scenarios
(Black-76 from ``numpy_impl``), its P&L vector gathered per position and summed per
(account, group); the scan takes (accounts, groups, scenarios) at once; the offsets
loop over the profile's few pairs, vectorised across accounts.

Same formulas as ``numpy_impl.margin`` (METHODOLOGY.md §2-§4); no input validation
beyond what the benchmark books need (the engine's tests cover bad input).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from numpy_impl import MM_DUST, SCAN_TOL, YEAR_SECONDS, NumpyProfile, _black76, _parse_time

Columns = dict[str, Any]


def _codes(col: Any) -> tuple[np.ndarray, list[str]]:
    """A pyarrow dictionary column (or plain strings) as int32 codes and the values."""
    import pyarrow as pa
    import pyarrow.compute as pc

    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    if not pa.types.is_dictionary(arr.type):
        arr = pc.dictionary_encode(arr)
    codes = arr.indices.to_numpy(zero_copy_only=False)
    codes = np.where(np.isnan(codes.astype(float)), -1, codes).astype(np.int64)
    return codes, [str(v) for v in arr.dictionary.to_pylist()]


def _floats(table: Any, name: str) -> np.ndarray:
    if name not in table.column_names:
        return np.full(table.num_rows, np.nan)
    return table.column(name).to_numpy().astype(float)


def margin_batch(positions: Any, balances: Any, market: dict, profile: NumpyProfile) -> Columns:
    """Result columns (``account``, ``equity``, ..., ``status``) of every account of the
    pyarrow tables ``positions`` and ``balances``, ascending account id."""
    prices: dict = market["prices"]
    marks: dict = market.get("marks") or {}
    vols: dict = market.get("vols") or {}
    now = _parse_time(market["time"])

    # ---- accounts, assets, groups ----------------------------------------------------------
    p_acc = positions.column("account").to_numpy()
    b_acc = balances.column("account").to_numpy()
    accounts, inv = np.unique(np.concatenate([p_acc, b_acc]), return_inverse=True)
    pa_i, ba_i = inv[: len(p_acc)], inv[len(p_acc) :]
    n = len(accounts)

    ty, ty_names = _codes(positions.column("type"))
    sym, sym_names = _codes(positions.column("symbol"))
    und, und_names = _codes(positions.column("underlying"))
    if "settle" in positions.column_names:
        stl, stl_names = _codes(positions.column("settle"))
    else:
        stl, stl_names = np.full(len(p_acc), -1), []
    kind, kind_names = _codes(positions.column("kind"))
    basset, basset_names = _codes(balances.column("asset"))

    asset_names = sorted(set(und_names) | set(stl_names) | set(basset_names) | {"USDT"})
    a_of = {a: i for i, a in enumerate(asset_names)}
    n_assets = len(asset_names)
    price = np.array([prices[a] for a in asset_names], dtype=float)
    group_names = sorted({profile.asset_group.get(a, a) for a in asset_names})
    g_of = {g: i for i, g in enumerate(group_names)}
    n_groups = len(group_names)
    a_group = np.array([g_of[profile.asset_group.get(a, a)] for a in asset_names])
    onehot = (a_group[:, None] == np.arange(n_groups)[None, :]).astype(float)  # (A, G)
    table = np.array([profile.table_index.get(g, 0) for g in group_names], dtype=np.intp)
    price_range = profile.price_range[table]
    row = np.array([profile.asset_index.get(a, len(profile.asset_index)) for a in asset_names])

    def lookup(codes: np.ndarray, names: list[str], default: int) -> np.ndarray:
        to_asset = np.array([a_of[x] for x in names] + [default], dtype=np.intp)
        return to_asset[np.where(codes < 0, len(names), codes)]

    b = lookup(und, und_names, 0)
    type_is = {t: np.array([x == t for x in ty_names] + [False])[ty] for t in ty_names}
    lin = type_is.get("linear", np.zeros(len(ty), bool))
    inv_ = type_is.get("inverse", np.zeros(len(ty), bool))
    opt = type_is.get("option", np.zeros(len(ty), bool))
    s = np.where(inv_, b, lookup(stl, stl_names, a_of["USDT"]))

    # ---- wallets -------------------------------------------------------------------------------
    ba = lookup(basset, basset_names, 0)
    bq = balances.column("qty").to_numpy().astype(float)
    wallet = np.bincount(ba_i * n_assets + ba, bq, minlength=n * n_assets).reshape(n, n_assets)
    settled = np.zeros(n * n_assets)
    cell_g = pa_i * n_groups + a_group[b]  # (account, group) cell of each position

    # ---- contracts: UPnL, dollar delta, netted per (account, group, symbol) ----------------
    qty = _floats(positions, "qty")
    entry = _floats(positions, "entry_price")
    size = _floats(positions, "contract_size")
    mark_of = np.array([marks.get(x, np.nan) for x in sym_names] + [np.nan])
    c = np.flatnonzero(lin | inv_)
    pb, ps = price[b[c]], price[s[c]]
    ci = inv_[c]
    mark = mark_of[sym[c]]
    mark = np.where(np.isnan(mark), np.where(ci, pb, pb / ps), mark)
    notional = qty[c] * np.where(ci, size[c], 1.0)
    upnl = np.where(ci, notional * (1.0 / entry[c] - 1.0 / mark), qty[c] * (mark - entry[c]))
    settled += np.bincount(pa_i[c] * n_assets + s[c], upnl, minlength=n * n_assets)
    c_delta = np.where(ci, notional * pb / entry[c], qty[c] * mark * ps)
    key = cell_g[c].astype(np.int64) * (len(sym_names) + 1) + sym[c]
    keys, key_inv = np.unique(key, return_inverse=True)
    netted = np.bincount(key_inv, c_delta, minlength=len(keys))
    key_cell = keys // (len(sym_names) + 1)
    cells = n * n_groups

    def per_cell(idx: np.ndarray, w: np.ndarray) -> np.ndarray:
        return np.bincount(idx, w, minlength=cells).reshape(n, n_groups)

    d_contracts = per_cell(key_cell, netted)

    # ---- options: each distinct series priced once, P&L vectors summed per cell -------------
    width = profile.grid_r.shape[2]
    n_sys = len(profile.systemic)
    sys_ret = np.empty((n_groups, n_sys))
    for e, (multiple, _, overrides) in enumerate(profile.systemic):
        sys_ret[:, e] = multiple * price_range
        for j, g in enumerate(group_names):
            if g in overrides:
                sys_ret[j, e] = overrides[g]
    o = np.flatnonzero(opt)
    group_opt = np.zeros((cells, width + n_sys))
    has_options = np.zeros(cells, dtype=bool)
    d_options = abs_options = short_notional = np.zeros((n, n_groups))
    if len(o):
        strike = _floats(positions, "strike")[o]
        expiry = _floats(positions, "expiry")[o]
        sign_of = np.array([1.0 if k == "call" else -1.0 for k in kind_names] + [np.nan])
        series_key = np.stack([sym[o], b[o], s[o], sign_of[kind[o]], strike, expiry], axis=1)
        series, s_inv = np.unique(series_key, axis=0, return_inverse=True)
        s_inv = s_inv.reshape(-1)
        s_sym, s_b, s_s = (series[:, i].astype(np.intp) for i in range(3))
        s_sign, s_strike, s_exp = series[:, 3], series[:, 4], series[:, 5]
        s_vol = np.array(
            [
                vols.get(sym_names[x], vols.get(asset_names[u], np.nan))
                for x, u in zip(s_sym, s_b, strict=True)
            ]
        )
        s_g = a_group[s_b]
        s_tab = table[s_g]
        r = np.concatenate([profile.option_r[s_tab], sys_ret[s_g]], axis=1)
        v = np.concatenate(
            [profile.option_v[s_tab], np.broadcast_to(profile.sys_vol_shock, (len(series), n_sys))],
            axis=1,
        )
        col = (slice(None), None)
        sigma = np.maximum(s_vol[col] * (1.0 + v), np.minimum(s_vol, profile.vol_floor)[col])
        fwd = price[s_b] / price[s_s]
        tau = (s_exp - now) / YEAR_SECONDS
        values, n1 = _black76(s_sign[col], fwd[col] * (1.0 + r), s_strike[col], sigma, tau[col])
        value = values[:, 0]
        expired = np.where(s_sign * (fwd - s_strike) > 0.0, s_sign, 0.0)
        delta = np.where(tau > 0.0, s_sign * n1[:, 0], expired)
        pnl_unit = (values[:, 1:] - value[col]) * price[s_s][col]  # (series, grid + systemic)
        oq = qty[o]
        ocell = cell_g[o]
        settled += np.bincount(pa_i[o] * n_assets + s[o], oq * value[s_inv], minlength=n * n_assets)
        items = oq * delta[s_inv] * price[b[o]]
        d_options = per_cell(ocell, items)
        abs_options = per_cell(ocell, np.abs(items))
        short_notional = per_cell(ocell, np.where(oq < 0.0, -oq * price[b[o]], 0.0))
        has_options[ocell] = True
        # Sum q * pnl_unit per cell: sort positions by cell, one reduceat over the rows.
        order = np.argsort(ocell, kind="stable")
        starts = np.flatnonzero(np.r_[True, np.diff(ocell[order]) != 0])
        sums = np.add.reduceat(oq[order][:, None] * pnl_unit[s_inv[order]], starts, axis=0)
        group_opt[ocell[order][starts]] = sums
    has_options = has_options.reshape(n, n_groups)
    group_opt = group_opt.reshape(n, n_groups, width + n_sys)

    # ---- §2 equity and collateral --------------------------------------------------------------
    settled = settled.reshape(n, n_assets)
    value = (wallet + settled) * price
    equity = value.sum(axis=1)
    lower = profile.coll_lower[row]
    banded = np.maximum(np.minimum(value[:, :, None], profile.coll_upper[row]) - lower, 0.0)
    adjusted = np.where(value <= 0.0, value, (profile.coll_rate[row] * banded).sum(axis=2))
    adjusted_equity = adjusted.sum(axis=1)
    wallet_usd = wallet * price
    is_long, is_loan = wallet > 0.0, wallet < 0.0
    spot_long = np.where(is_long, wallet_usd, 0.0) @ onehot
    liabilities = np.where(is_loan, wallet_usd, 0.0) @ onehot
    borrowing = np.maximum(-value, 0.0) @ onehot
    borrow_margin = np.where(is_loan, profile.asset_borrow_mmr[row] * -wallet_usd, 0.0).sum(axis=1)

    # ---- §3 steps 1-3: spot in use, financed spot -------------------------------------------
    d_rest = d_contracts + d_options + liabilities
    in_use = np.where((d_rest < 0.0) & (spot_long > 0.0), np.minimum(spot_long, -d_rest), 0.0)
    frac = np.divide(in_use, spot_long, out=np.zeros_like(in_use), where=spot_long > 0.0)
    borrowed = np.maximum(borrowing - in_use, 0.0).sum(axis=1)
    stable = price_range == 0.0
    financeable = is_long & profile.is_collateral[row]
    free = np.where(financeable, wallet_usd * (1.0 - frac[:, a_group]), 0.0)
    free_stable = free[:, stable[a_group]].sum(axis=1)
    free_risky = free[:, ~stable[a_group]].sum(axis=1)
    phi_s = np.minimum(np.divide(borrowed, free_stable, out=np.zeros(n), where=free_stable > 0), 1)
    rest = np.maximum(borrowed - free_stable, 0.0)
    phi_r = np.minimum(np.divide(rest, free_risky, out=np.zeros(n), where=free_risky > 0), 1)
    phi = np.where(stable[None, :], phi_s[:, None], phi_r[:, None])  # (N, G)
    financed = (free * phi[:, a_group]) @ onehot
    scanned_spot = in_use + financed
    d_lin = d_contracts + liabilities + scanned_spot
    delta = d_lin + d_options

    # ---- §3 steps 5-7: the scan, (accounts, groups, scenarios) -----------------------------
    dim = has_options.astype(np.intp)
    tab = np.broadcast_to(table, (n, n_groups))
    grid_r = profile.grid_r[tab, dim]
    pnl = d_lin[:, :, None] * grid_r + group_opt[:, :, :width]
    loss = np.where(profile.grid_valid[tab, dim], profile.grid_nw[tab, dim] * pnl, -np.inf)
    best = loss.max(axis=2)
    abs_items = per_cell(key_cell, np.abs(netted)) + abs_options - liabilities + scanned_spot
    tol = SCAN_TOL * (1.0 + abs_items)
    worst = np.argmax(loss >= (best - tol)[:, :, None], axis=2)
    gridded = (price_range > 0.0)[None, :]
    scan_loss = np.where(gridded & (best >= tol), best, 0.0)
    worst_r = np.where(gridded, np.take_along_axis(grid_r, worst[:, :, None], 2)[:, :, 0], 0.0)
    som = profile.som_rate[table] * short_notional
    requirement = np.maximum(scan_loss, som)

    # ---- §4 add-ons -------------------------------------------------------------------------
    long_ = (
        per_cell(key_cell, np.maximum(netted, 0.0))
        + np.maximum(liabilities, 0.0)
        + np.maximum(scanned_spot, 0.0)
    )
    short = (
        per_cell(key_cell, np.maximum(-netted, 0.0))
        + np.maximum(-liabilities, 0.0)
        + np.maximum(-scanned_spot, 0.0)
    )
    basis = profile.basis_rate[table] * np.minimum(long_, short)
    abs_delta = np.abs(delta)[:, :, None]
    above = profile.conc_above[table]
    conc = (
        profile.conc_rate[table]
        * np.maximum(np.minimum(abs_delta, profile.conc_upper[table]) - above, 0.0)
    ).sum(axis=2)

    # ---- offsets: the profile's pairs in order, every account at once -----------------------
    rem = requirement.copy()
    budget = np.abs(delta) * price_range
    offset = np.zeros(n)
    for ga, gb, rate in profile.offsets:
        if ga not in g_of or gb not in g_of:
            continue
        a, b2 = g_of[ga], g_of[gb]
        m = np.minimum(np.minimum(budget[:, a], budget[:, b2]), np.minimum(rem[:, a], rem[:, b2]))
        m = np.where((delta[:, a] * delta[:, b2] < 0.0) & (m > 0.0), m, 0.0)
        offset += rate * m
        for g in (a, b2):
            rem[:, g] -= m
            budget[:, g] -= m
    scan_total = np.maximum(requirement.sum(axis=1) - offset, som.sum(axis=1))
    sys_pnl = (d_lin[:, :, None] * sys_ret[None] + group_opt[:, :, width:]).sum(axis=1)
    systemic = np.maximum(0.0, (-sys_pnl).max(axis=1)) if n_sys else np.zeros(n)

    mm = np.maximum(scan_total, systemic) + basis.sum(axis=1) + conc.sum(axis=1) + borrow_margin
    mm = np.where(mm < MM_DUST, 0.0, mm)
    im = profile.im_factor * mm
    with np.errstate(divide="ignore", invalid="ignore"):
        uni = np.where(
            mm > 0.0, adjusted_equity / mm, np.where(adjusted_equity >= 0.0, np.inf, -np.inf)
        )
    names = [name for name, _ in profile.status]
    conds = [uni > above for _, above in profile.status[:-1]]
    code = np.select(conds, list(range(len(conds))), default=len(names) - 1)
    bankrupt = (equity < 0.0) | ((equity == 0.0) & is_loan.any(axis=1))
    status = np.array([*names, "BANKRUPT"])[np.where(bankrupt, len(names), code)]
    wg = np.argmax(requirement, axis=1)
    has_req = requirement.max(axis=1) > 0.0
    return {
        "account": accounts,
        "equity": equity,
        "adjusted_equity": adjusted_equity,
        "maintenance_margin": mm,
        "initial_margin": im,
        "available": adjusted_equity - im,
        "uni_mmr": uni,
        "status": status,
        "worst_group": np.where(has_req, np.array(group_names)[wg], ""),
        "worst_price_move": np.where(has_req, worst_r[np.arange(n), wg], np.nan),
    }
