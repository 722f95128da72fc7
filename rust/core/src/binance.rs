//! Binance's portfolio margin (`model = "binance_pm"`, docs/BINANCE.md §1):
//! equity at collateral rates over maintenance margin from brackets and loans.
//!
//! It evaluates the same [`Book`] as the scenario model: wallets net of
//! loans with the loans kept gross, each contract's UPnL in its margin asset
//! and its bracketed size. What this file adds is the netting Binance does:
//! none. Each contract pays its bracket's MM, each loan its rate, and the
//! account's uniMMR is account equity over their sum.

use crate::brackets::{bracket_of, BracketKind};
use crate::collateral::adjusted_value;
use crate::engine::{AssetSlot, AssetTerms, Book, BookSlot, Engine};
use crate::error::{CoreError, Result};
use crate::params::BinanceParams;
use crate::result::{AssetMargin, MarginResult, PositionMargin};

/// The profile's `[binance]` table: present whenever the model is `binance_pm`
/// (the profile does not compile without it).
fn params(engine: &Engine) -> &BinanceParams {
    engine.params().binance.as_ref().expect("a binance_pm profile has a [binance] table")
}

/// An asset may enter a `binance_pm` book only with a collateral rate: its own
/// bands, or the profile's default rate (reading of docs/BINANCE.md §1).
pub(crate) fn check_asset(engine: &Engine, t: &AssetTerms<'_>) -> Result<()> {
    let has_bands = t.params.is_some_and(|i| !engine.asset_params(i).collateral.is_empty());
    if has_bands || params(engine).default_collateral_rate.is_some() {
        return Ok(());
    }
    Err(CoreError::profile(
        format!("{}.collateral", crate::input::path("assets", t.name)),
        format!("no collateral rate for {}: give its bands, or [binance] default_collateral_rate", t.name),
    ))
}

/// The index of `symbol`'s bracket table among the profile's tables of `kind`.
pub(crate) fn bracket_table(engine: &Engine, kind: BracketKind, symbol: &str) -> Result<u32> {
    let tables = &engine.params().brackets;
    match tables.index(kind, symbol) {
        Some(i) => Ok(i as u32),
        None => tables.for_symbol(kind, symbol).map(|_| 0), // the error naming the missing table
    }
}

/// `collateral_a(v · P)`: the asset's bands, else the default rate; a deficit in full.
fn collateral_value(engine: &Engine, a: &AssetSlot, value: f64) -> f64 {
    match a.params.map(|i| engine.asset_params(i).collateral.as_slice()) {
        Some(bands) if !bands.is_empty() => adjusted_value(value, bands),
        _ if value < 0.0 => value,
        _ => value * params(engine).default_collateral_rate.unwrap_or(0.0),
    }
}

/// A loan's leverage and MM rate.
fn loan_terms(engine: &Engine, a: &AssetSlot) -> (f64, f64) {
    let bp = params(engine);
    let leverage = a.params.and_then(|i| engine.asset_params(i).loan_leverage).unwrap_or(bp.loan_leverage);
    (leverage, bp.loan_mmr(leverage))
}

/// Evaluate `book` with Binance's formula into `out`. Per-position and
/// per-asset figures are written when the book keeps names (`Book::detail`).
pub(crate) fn evaluate(engine: &Engine, book: &Book, out: &mut MarginResult) {
    let rows = book.slots.iter().enumerate().filter_map(|(i, slot)| contract_row(engine, i, slot));
    evaluate_rows(engine, book, out, |positions| positions.extend(rows));
}

/// [`evaluate`] of a book that differs from the one `kept` was evaluated on
/// (with detail) only in contract `changed` and in asset wallets and UPnL (a
/// what-if): every other contract's row is `kept`'s, so only the changed one
/// is bracketed again. The same rows summed in the same order: the same bits.
pub(crate) fn evaluate_reusing(
    engine: &Engine,
    book: &Book,
    kept: &[PositionMargin],
    changed: usize,
    out: &mut MarginResult,
) {
    debug_assert!(book.detail && kept.len() == book.slots.len());
    debug_assert!(kept.iter().enumerate().all(|(r, row)| row.index == r));
    out.model = crate::params::Model::BinancePm;
    evaluate_rows(engine, book, out, |positions| {
        positions.extend_from_slice(kept);
        if let Some(row) = contract_row(engine, changed, &book.slots[changed]) {
            positions[changed] = row;
        }
    });
}

/// Position `i`'s row: its bracket, MM and IM in its margin asset (`None`: not a contract).
#[inline]
fn contract_row(engine: &Engine, i: usize, slot: &BookSlot) -> Option<PositionMargin> {
    let BookSlot::Contract { receiver, size, inverse, leverage, brackets, upnl, .. } = *slot else {
        return None; // options never enter a binance_pm book
    };
    let kind = if inverse { BracketKind::Coinm } else { BracketKind::Usdm };
    let table = &engine.params().brackets.tables(kind)[brackets as usize].1;
    let k = bracket_of(table, size);
    Some(PositionMargin {
        index: i,
        asset: receiver as u32,
        notional: size,
        bracket: k + 1,
        mmr: table[k].mmr,
        cum: table[k].cum,
        maintenance_margin: table[k].maintenance(size),
        initial_margin: size / leverage,
        leverage,
        upnl,
    })
}

/// [`evaluate`] with the contracts' rows, in portfolio order, written by `rows`.
#[inline]
fn evaluate_rows(engine: &Engine, book: &Book, out: &mut MarginResult, rows: impl FnOnce(&mut Vec<PositionMargin>)) {
    let detail = book.detail;
    out.groups.clear();
    out.names.clone_from(&book.names);
    let (positions, assets) = (out.positions.reuse(), out.assets.reuse());

    // Equity, account equity and the loans, asset by asset.
    let (mut equity, mut adjusted_equity) = (0.0, 0.0);
    let (mut loan_mm, mut loan_im) = (0.0, 0.0);
    let mut negative_wallet = false;
    for (k, a) in book.assets.iter().enumerate() {
        let v = a.equity();
        let value = v * a.price;
        let collateral = collateral_value(engine, a, value);
        equity += value;
        adjusted_equity += collateral;
        negative_wallet |= a.wallet < 0.0;
        // `L_a`: what is owed, a negative balance included; IM on the principal only.
        let balance = a.wallet + a.loan.owed();
        let loan = a.loan.owed().max(-a.wallet);
        let (leverage, rate) = if loan > 0.0 { loan_terms(engine, a) } else { (0.0, 0.0) };
        let loan_margin = loan * rate;
        if loan > 0.0 {
            loan_mm += loan_margin * a.price;
            loan_im += (a.loan.borrowed + (-balance).max(0.0)) / (leverage - 1.0) * a.price;
        }
        if detail {
            assets.push(AssetMargin {
                asset: k as u32,
                v,
                equity: value,
                collateral_value: collateral,
                loan,
                loan_margin,
                maintenance_margin: loan_margin,
            });
        }
    }

    // Each contract on its own bracket, in its margin asset (without detail the
    // rows are summed, then dropped: the result has none).
    let (mut contract_mm, mut contract_im) = (0.0, 0.0);
    positions.reserve(book.slots.len());
    rows(positions);
    for row in positions.iter() {
        let price = book.assets[row.asset as usize].price;
        contract_mm += row.maintenance_margin * price;
        contract_im += row.initial_margin * price;
        if detail {
            assets[row.asset as usize].maintenance_margin += row.maintenance_margin;
        }
    }
    if !detail {
        positions.clear();
    }

    let im = contract_im + loan_im;
    engine.write_account(out, equity, adjusted_equity, negative_wallet, contract_mm + loan_mm, |_| im);
    out.scan = 0.0;
    out.systemic = 0.0;
    out.offset_credit = 0.0;
    out.borrow_margin = loan_mm;
}
