//! Binance's portfolio margin (`model = "binance_pm"`, docs/BINANCE.md §1):
//! equity at collateral rates over maintenance margin from brackets and loans.
//!
//! It evaluates the same [`Book`] as the scenario model: wallets net of
//! loans with the loans kept gross, each contract's UPnL in its margin asset
//! and its bracketed size. What this file adds is the netting Binance does:
//! none. Each contract pays its bracket's MM, each loan its rate, and the
//! account's uniMMR is account equity over their sum.
//!
//! A live account's what-if (`evaluate_after`) brackets only the contract
//! the order changes and recomputes only its margin asset, the rest kept from
//! the current margin's evaluation (`evaluate_keeping`): the same terms
//! summed in the same order, so the same bits as `evaluate`.

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
    evaluate_full(engine, book, out, |_| {}, |_| {});
}

/// [`evaluate`], also keeping in `kept` each asset's and each contract's part
/// of the account's sums, which an [`evaluate_after`] of a what-if on this
/// book starts from.
pub(crate) fn evaluate_keeping(engine: &Engine, book: &Book, kept: &mut Kept, out: &mut MarginResult) {
    kept.probe = None; // a new evaluation: the what-if buffer's rows are not this one's
    let Kept { assets, rows, .. } = kept;
    assets.clear();
    rows.clear();
    evaluate_full(engine, book, out, |p| assets.push(p), |p| rows.push(p));
}

/// What a `binance_pm` evaluation with detail keeps for the what-ifs that
/// follow it (see `evaluate_after`): each asset's and each contract's part
/// of the account's sums, and which rows of the what-if buffer differ from
/// the kept result's.
/// Valid for the book it was kept from only: its owner evaluates again after
/// any change of its own.
#[derive(Debug, Default)]
pub struct Kept {
    assets: Vec<AssetPart>,
    rows: Vec<RowPart>,
    probe: Option<ProbeRows>,
}

impl Kept {
    /// Forget what is known of the what-if buffer's rows: for a caller that
    /// replaced that buffer some other way (it may come back at the same address).
    pub(crate) fn forget_probe(&mut self) {
        self.probe = None;
    }
}

/// The what-if buffer whose rows (by address) are the kept result's except
/// position row `row` and asset row `asset`.
#[derive(Debug, Clone, Copy)]
struct ProbeRows {
    positions: usize,
    assets: usize,
    row: usize,
    asset: usize,
}

/// One asset's row (its MM the loan's alone, the contracts' added later) and
/// what it adds to the account's sums.
#[derive(Debug, Clone, Copy)]
struct AssetPart {
    row: AssetMargin,
    /// The loan's MM and IM (USD), counted only when there is a loan (`row.loan > 0`).
    loan_mm: f64,
    loan_im: f64,
    negative_wallet: bool,
}

/// A contract row's part of the account's sums: its MM and IM at its margin
/// asset's price (USD), and its MM in that asset.
#[derive(Debug, Clone, Copy)]
struct RowPart {
    mm: f64,
    im: f64,
    asset_mm: f64,
    asset: u32,
}

impl RowPart {
    #[inline]
    fn of(row: &PositionMargin, price: f64) -> Self {
        let (mm, im) = (row.maintenance_margin * price, row.initial_margin * price);
        RowPart { mm, im, asset_mm: row.maintenance_margin, asset: row.asset }
    }
}

/// The sums of `rows`' MM and IM (USD) and of the MM of those margined in
/// `asset` (its units), added in order to `acc`.
#[inline]
fn sum_rows(rows: &[RowPart], asset: u32, acc: (f64, f64, f64)) -> (f64, f64, f64) {
    let (mut mm, mut im, mut asset_mm) = acc;
    for p in rows {
        mm += p.mm;
        im += p.im;
        if p.asset == asset {
            asset_mm += p.asset_mm;
        }
    }
    (mm, im, asset_mm)
}

/// Asset slot `k`'s figures: equity and account equity, and `L_a`, owed with
/// any negative balance (IM on the principal only).
#[inline(always)] // a batch evaluates millions of accounts: no call per asset
fn asset_part(engine: &Engine, k: usize, a: &AssetSlot) -> AssetPart {
    let v = a.equity();
    let value = v * a.price;
    let collateral = collateral_value(engine, a, value);
    let balance = a.wallet + a.loan.owed();
    let loan = a.loan.owed().max(-a.wallet);
    let (mut loan_margin, mut loan_mm, mut loan_im) = (0.0, 0.0, 0.0);
    if loan > 0.0 {
        let (leverage, rate) = loan_terms(engine, a);
        loan_margin = loan * rate;
        loan_mm = loan_margin * a.price;
        loan_im = (a.loan.borrowed + (-balance).max(0.0)) / (leverage - 1.0) * a.price;
    }
    let row = AssetMargin {
        asset: k as u32,
        v,
        equity: value,
        collateral_value: collateral,
        loan,
        loan_margin,
        maintenance_margin: loan_margin,
    };
    AssetPart { row, loan_mm, loan_im, negative_wallet: a.wallet < 0.0 }
}

/// The account's sums, in book order (assets) and portfolio order (contracts), USD.
#[derive(Debug, Default)]
struct Sums {
    equity: f64,
    adjusted_equity: f64,
    negative_wallet: bool,
    loan_mm: f64,
    loan_im: f64,
    contract_mm: f64,
    contract_im: f64,
}

impl Sums {
    #[inline]
    fn add_asset(&mut self, p: &AssetPart) {
        self.equity += p.row.equity;
        self.adjusted_equity += p.row.collateral_value;
        self.negative_wallet |= p.negative_wallet;
        if p.row.loan > 0.0 {
            self.loan_mm += p.loan_mm;
            self.loan_im += p.loan_im;
        }
    }

    #[inline]
    fn add_row(&mut self, p: &RowPart) {
        self.contract_mm += p.mm;
        self.contract_im += p.im;
    }

    /// The account figures from the sums.
    fn write(&self, engine: &Engine, out: &mut MarginResult) {
        let im = self.contract_im + self.loan_im;
        let mm = self.contract_mm + self.loan_mm;
        engine.write_account(out, self.equity, self.adjusted_equity, self.negative_wallet, mm, |_| im);
        out.scan = 0.0;
        out.systemic = 0.0;
        out.offset_credit = 0.0;
        out.borrow_margin = self.loan_mm;
    }
}

/// The result's model, groups (none) and names: the book's.
#[inline]
fn begin(book: &Book, out: &mut MarginResult) {
    out.model = crate::params::Model::BinancePm;
    out.groups.clear();
    let same_names = match (&out.names, &book.names) {
        (Some(a), Some(b)) => std::sync::Arc::ptr_eq(a, b),
        (None, None) => true,
        _ => false,
    };
    if !same_names {
        out.names.clone_from(&book.names);
    }
}

/// [`evaluate`], handing each asset's and each contract's part to `keep_asset`
/// and `keep_row` (a batch keeps none: no-ops, compiled away).
#[inline]
fn evaluate_full(
    engine: &Engine,
    book: &Book,
    out: &mut MarginResult,
    mut keep_asset: impl FnMut(AssetPart),
    mut keep_row: impl FnMut(RowPart),
) {
    let detail = book.detail;
    begin(book, out);
    let (positions, assets) = (out.positions.reuse(), out.assets.reuse());
    let mut sums = Sums::default();
    for (k, a) in book.assets.iter().enumerate() {
        let part = asset_part(engine, k, a);
        sums.add_asset(&part);
        if detail {
            assets.push(part.row);
        }
        keep_asset(part);
    }

    // Each contract on its own bracket, in its margin asset, summed as it is
    // bracketed (without detail its row is not kept: the result has none).
    if detail {
        positions.reserve(book.slots.len());
    }
    for (i, slot) in book.slots.iter().enumerate() {
        let Some(row) = contract_row(engine, i, slot) else { continue };
        let part = RowPart::of(&row, book.assets[row.asset as usize].price);
        sums.add_row(&part);
        if detail {
            assets[row.asset as usize].maintenance_margin += row.maintenance_margin;
            positions.push(row);
        }
        keep_row(part);
    }
    sums.write(engine, out);
}

/// [`evaluate`] of a book that differs from the one `kept` and `current` were
/// kept from ([`evaluate_keeping`], with detail) only in contract `changed`
/// and in the wallet and UPnL of asset `asset`, its margin asset (a
/// what-if): only that contract is bracketed again and only that asset's
/// figures recomputed; every other row and asset part is `current`'s and
/// `kept`'s. The account's sums are re-summed in the same order from the same
/// terms, so the result is a full evaluation's, bit for bit. The rows of
/// `out` are rewritten only where they differ from `current`'s when `out` is
/// the what-if buffer this was last called with (the rows the last what-if
/// changed restored, this one's written); otherwise copied once.
pub(crate) fn evaluate_after(
    engine: &Engine,
    book: &Book,
    kept: &mut Kept,
    current: &MarginResult,
    (changed, asset): (usize, usize),
    out: &mut MarginResult,
) {
    // Known again only once this what-if's rows are written: a fallback rewrites them all.
    let last = kept.probe.take();
    let row = match contract_row(engine, changed, &book.slots[changed]) {
        Some(row) if row.asset as usize == asset => row,
        _ => return evaluate(engine, book, out), // not a what-if on one contract and its margin asset
    };
    let (rows, assets) = (book.slots.len(), book.assets.len());
    let kept_rows = current.positions.len() == rows && current.assets.len() == assets;
    if !book.detail || !kept_rows || kept.rows.len() != rows || kept.assets.len() != assets {
        return evaluate(engine, book, out);
    }
    debug_assert!(current.positions.iter().enumerate().all(|(r, row)| row.index == r));
    begin(book, out);
    let mut part = asset_part(engine, asset, &book.assets[asset]);
    let mut sums = Sums::default();
    for (k, p) in kept.assets.iter().enumerate() {
        sums.add_asset(if k == asset { &part } else { p });
    }
    // The contracts in portfolio order, the changed one's part new; the margin
    // asset's MM: its loan's, then its contracts'.
    let new = RowPart::of(&row, book.assets[asset].price);
    let acc = sum_rows(&kept.rows[..changed], new.asset, (0.0, 0.0, part.row.maintenance_margin));
    let acc = sum_rows(std::slice::from_ref(&new), new.asset, acc);
    let (mm, im, asset_mm) = sum_rows(&kept.rows[changed + 1..], new.asset, acc);
    (sums.contract_mm, sums.contract_im, part.row.maintenance_margin) = (mm, im, asset_mm);
    sums.write(engine, out);
    kept.probe = Some(write_rows(last, current, (changed, row), part.row, out));
}

/// `out`'s rows: `current`'s with row `changed.0` and asset row `asset.asset`
/// replaced, restoring in place the two the `last` what-if replaced when
/// `out`'s rows are the ones it wrote (and nobody else holds them), else
/// copied. Returns what the next what-if needs to know of them.
fn write_rows(
    last: Option<ProbeRows>,
    current: &MarginResult,
    (changed, row): (usize, PositionMargin),
    asset: AssetMargin,
    out: &mut MarginResult,
) -> ProbeRows {
    let a = asset.asset as usize;
    let last = last.filter(|p| (p.positions, p.assets) == (out.positions.address(), out.assets.address()));
    match (last, out.positions.unique_mut(), out.assets.unique_mut()) {
        (Some(last), Some(positions), Some(assets)) => {
            positions[last.row] = current.positions[last.row];
            assets[last.asset] = current.assets[last.asset];
            positions[changed] = row;
            assets[a] = asset;
        }
        _ => {
            let positions = out.positions.reuse();
            positions.extend_from_slice(&current.positions);
            positions[changed] = row;
            let assets = out.assets.reuse();
            assets.extend_from_slice(&current.assets);
            assets[a] = asset;
        }
    }
    ProbeRows { positions: out.positions.address(), assets: out.assets.address(), row: changed, asset: a }
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
