//! A live account for trading bots: the book is kept between calls, so a
//! fill, a deposit or a loan changes a few fields and re-margining costs
//! O(assets + groups × scenarios), not a rebuild of every position.
//!
//! - `deposit` / `withdraw` / `borrow` / `repay` on an asset the account holds:
//!   one wallet field.
//! - `apply_fill` on a symbol the account holds (or a new contract on assets it
//!   holds): the position is merged as an exchange does (average entry on an
//!   increase, realised P&L to the settle wallet on a reduction) and the book
//!   takes the difference; an option fill adds its series' vectors times the
//!   quantity, O(scenarios).
//! - `what_if`: the same change applied to the book, evaluated and undone
//!   (saved fields restored, so the state is bit-for-bit unchanged). An order
//!   on a held contract is planned from the book (one symbol lookup, none with
//!   a current [`SymbolKey`]; its mark kept with the position). The
//!   evaluation starts from the current margin's (`Engine::evaluate_keeping`,
//!   re-run after any change, so nothing else needs invalidating): under the
//!   scenario model `Engine::evaluate_after` recomputes the settle asset's
//!   figures (re-summing the account's in order), re-runs financing only when
//!   its inputs move, recomputes the order's group and any group whose netted
//!   sums change,
//!   keeps every other group's figures, re-runs offsets only when a
//!   recomputed group is in a pair, and takes the systemic P&L from the kept
//!   one by difference (the usual order, on one group with financing
//!   unchanged, in a narrow pass that reads and writes only those groups'
//!   figures and result rows); each group's scan is also reused while its inputs are
//!   the same bits (`Scratch::keeping_scans`). Under `binance_pm`
//!   (`binance::evaluate_after`) only the changed contract is bracketed and
//!   only its margin asset's figures recomputed; every other row and asset is
//!   the current margin's, the account re-summed from them in order, and the
//!   what-if buffer's rows rewritten where they differ: bit for bit a full
//!   evaluation of the changed book. Sums updated by differences: the held
//!   contract's group delta, netted delta and settle asset UPnL (the fill's
//!   difference rather than a re-sum of the positions), the order's group's
//!   netted-contract sums (Σ|d|, Σ long, Σ short) and each systemic
//!   scenario's P&L. So a what-if agrees
//!   with a full evaluation of the filled account to a few ulps of the book's
//!   gross size (`tests/test_live_what_if.py` and `tests/live.rs` check
//!   1e-12), and bit for bit elsewhere.
//! - The what-if buffer is shared (`what_if_result`): written in place while
//!   nobody holds the last result, copied first when someone does.
//! - A price, mark or vol update re-resolves only the positions it touches
//!   (an option: its one series, from the snapshot's cache or priced now) and
//!   re-sums the groups and assets they belong to, in the portfolio's order,
//!   so the book is bit-for-bit what a rebuild gives. A time update reprices
//!   everything.
//! - A fill on a held symbol re-resolves that position and re-sums its group
//!   and settle asset the same way.
//! - Anything structural (a new asset, a new option series, a closed position)
//!   rebuilds the book from the portfolio: the same code as `Engine::margin`.
//! - Every operation is all-or-nothing: it is checked (and a rebuilt book
//!   built) before anything is applied, so a refused one leaves the portfolio,
//!   the market, the margin and the counters as they were.
//!
//! The buffers of an evaluation are kept between calls: a tick, a what-if or
//! an order check on linear instruments allocates nothing, under either model
//! (`tests/alloc.rs`).
//! After every operation `margin()` equals `Engine::margin(portfolio, market)`
//! (to rounding; the tests check rel 1e-9).

use crate::engine::{Book, BookSlot, Engine, GroupSlot, Kept, Scratch, Touched};
use crate::error::{CoreError, Result};
use crate::input::{fmt_num, path};
use crate::instrument::{contract_terms, mark_or_index, merge_fill, ContractTerms};
use crate::market::Market;
use crate::params::Model;
use crate::portfolio::{validate, Loan, Portfolio, Position, PositionRef};
use crate::result::MarginResult;
use crate::series::SeriesHint;
use crate::status::Status;
use rustc_hash::FxHashMap;
use std::sync::Arc;

/// An order or a fill: `qty` is signed (positive buys), in base units for a
/// linear contract, contracts for an inverse one, units for an option.
/// `price` is the fill price in the contract's quote units (default: the mark,
/// or the option's model value). `instrument` describes a symbol the account
/// does not hold yet (a position in the portfolio format; its quantity and
/// entry price are ignored).
#[derive(Debug, Clone, PartialEq)]
pub struct Order {
    pub symbol: String,
    pub qty: f64,
    pub price: Option<f64>,
    pub instrument: Option<Position>,
}

/// An [`Order`] borrowed: what an order's check reads, so a caller holding the
/// symbol as a `&str` checks an order without allocating.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OrderRef<'a> {
    pub symbol: &'a str,
    pub qty: f64,
    pub price: Option<f64>,
    pub instrument: Option<&'a Position>,
    /// Where the account holds `symbol`, from [`LiveAccount::symbol_key`] of
    /// this symbol: a caller ordering it again skips its name lookup. A key of
    /// another layout (or another account) is ignored and the symbol looked up.
    pub key: Option<SymbolKey>,
}

impl<'a> From<&'a Order> for OrderRef<'a> {
    fn from(o: &'a Order) -> Self {
        OrderRef { symbol: &o.symbol, qty: o.qty, price: o.price, instrument: o.instrument.as_ref(), key: None }
    }
}

/// What an account holds of a symbol, as of one layout of its positions
/// (every layout of every account has its own stamp, so a key is never
/// read against positions it does not describe).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SymbolKey {
    layout: u64,
    held: Held,
}

/// The next layout stamp: unique across accounts, so a key cannot match another account.
fn next_layout() -> u64 {
    static LAYOUTS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    LAYOUTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// Why `check_order` refuses an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The account is in liquidation (or bankrupt): only the liquidation engine trades.
    Liquidation,
    /// Reduce-only status and the order adds risk (raises MM).
    ReduceOnly,
    /// Available margin after the order is negative and the order adds risk.
    InsufficientAvailableMargin,
}

impl Refusal {
    pub fn code(self) -> &'static str {
        match self {
            Refusal::Liquidation => "liquidation",
            Refusal::ReduceOnly => "reduce_only",
            Refusal::InsufficientAvailableMargin => "insufficient_available_margin",
        }
    }
}

/// A change to the book, computed before it is applied.
enum Change {
    /// Fields of the book: position `position`'s group and its symbol's netted entry, an asset's
    /// wallet and settled amounts, and the position's new terms.
    Contract {
        position: usize,
        group: usize,
        netted: usize,
        delta: f64,
        asset: usize,
        settled: f64,
        wallet: f64,
        terms: ContractTerms,
    },
    /// An option already in the book: `dq` more units.
    Option { slot: usize, dq: f64, settle: usize, wallet: f64 },
    /// Anything else: rebuild from this portfolio.
    Rebuild,
}

pub struct LiveAccount {
    engine: Arc<Engine>,
    portfolio: Portfolio,
    market: Market,
    book: Book,
    /// Book asset slot by asset name; what the account holds of each symbol (one lookup an order).
    assets: FxHashMap<String, usize>,
    symbols: FxHashMap<String, Held>,
    /// The stamp of the positions' layout the name tables index (see [`SymbolKey`]).
    layout: u64,
    /// Each asset slot's name, and whether the portfolio lists a balance of it.
    asset_names: Vec<String>,
    balance_listed: Vec<bool>,
    /// Positions (indices) whose underlying or settle asset is each asset slot.
    touching: Vec<Vec<usize>>,
    /// Each position's underlying and settle asset slots.
    ends: Vec<(usize, usize)>,
    /// Each position's mark in the market (its symbol's), so a tick or an
    /// order on it looks up no name: marks change only in `update_mark`.
    marks: Vec<Option<f64>>,
    /// Where each option slot's series is in the snapshot's cache: a tick
    /// reaches it without a lookup by symbol. Reset with the book's layout.
    series_hints: Vec<SeriesHint>,
    /// Operations that re-resolved the whole book (a diagnostic: the rest took the fast path).
    rebuilds: u64,
    /// Evaluation buffers, the current margin (valid when `fresh`) and the last what-if's.
    scratch: Scratch,
    current: MarginResult,
    fresh: bool,
    /// What the current margin's evaluation kept for a what-if's (valid when `fresh`).
    kept: Kept,
    /// The last what-if's result, shared with whoever keeps it (`what_if_result`):
    /// written in place when nobody does, copied first when someone does.
    probe: Arc<MarginResult>,
    saved_group: GroupSlot,
    dirty_groups: Vec<bool>,
    dirty_assets: Vec<bool>,
    /// Evaluate `binance_pm` what-ifs in full (see [`LiveAccount::full_what_ifs`]).
    full_what_ifs: bool,
}

impl LiveAccount {
    pub fn new(engine: Arc<Engine>, portfolio: Portfolio, market: Market) -> Result<Self> {
        let book = engine.book(&portfolio, &market)?;
        let mut live = LiveAccount {
            engine,
            portfolio,
            market,
            book,
            assets: FxHashMap::default(),
            symbols: FxHashMap::default(),
            layout: 0,
            asset_names: Vec::new(),
            balance_listed: Vec::new(),
            touching: Vec::new(),
            ends: Vec::new(),
            marks: Vec::new(),
            series_hints: Vec::new(),
            rebuilds: 0,
            scratch: Scratch::keeping_scans(),
            current: MarginResult::default(),
            fresh: false,
            kept: Kept::default(),
            probe: Arc::default(),
            saved_group: GroupSlot::default(),
            dirty_groups: Vec::new(),
            dirty_assets: Vec::new(),
            full_what_ifs: false,
        };
        live.index();
        Ok(live)
    }

    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }
    pub fn portfolio(&self) -> &Portfolio {
        &self.portfolio
    }
    pub fn market(&self) -> &Market {
        &self.market
    }

    /// How many operations re-resolved the whole book (market updates and
    /// structural changes); fills, what-ifs and wallet changes on held
    /// instruments and assets do not.
    pub fn rebuilds(&self) -> u64 {
        self.rebuilds
    }

    /// The account's margin now.
    pub fn margin(&self) -> MarginResult {
        if self.fresh {
            self.current.clone()
        } else {
            self.engine.evaluate(&self.book)
        }
    }

    /// The account's margin now, evaluated into the account's own buffers
    /// (no allocation once they have grown).
    pub fn margin_ref(&mut self) -> &MarginResult {
        if !self.fresh {
            self.engine.evaluate_keeping(&self.book, &mut self.scratch, &mut self.kept, &mut self.current);
            self.fresh = true;
        }
        &self.current
    }

    /// Take `portfolio`, a structural change of the account's (new names to
    /// index). Its book is built first: a refusal (an asset without a price, an
    /// option without a vol) leaves the account as it was.
    fn adopt(&mut self, portfolio: Portfolio) -> Result<()> {
        let book = self.engine.book(&portfolio, &self.market)?;
        (self.portfolio, self.book) = (portfolio, book);
        self.rebuilds += 1;
        self.fresh = false;
        self.index();
        Ok(())
    }

    /// Re-resolve the book on a new snapshot: same positions, same slots and ids.
    fn reprice(&mut self) -> Result<()> {
        self.book = self.engine.book(&self.portfolio, &self.market)?;
        self.rebuilds += 1;
        self.fresh = false;
        Ok(())
    }

    /// Re-resolve position `i` on the current snapshot (its slot only) and mark
    /// its group and the asset it settles in for re-summing. `moved`: only
    /// index prices changed since the slot was resolved (an option keeps its
    /// series' vol and years, and looks up nothing but the cache).
    fn resolve_position(&mut self, i: usize, moved: bool) -> Result<()> {
        let price = |a: usize| self.book.assets[a].price;
        match self.book.slots[i] {
            BookSlot::Contract { group, receiver, .. } => {
                let pos = &self.portfolio.positions[i];
                let (pb, ps) = (price(self.ends[i].0), price(self.ends[i].1));
                let t = contract_terms(pos.view(), self.marks[i], pb, ps);
                if let BookSlot::Contract { dollar_delta, underlying_price, upnl, size, .. } = &mut self.book.slots[i] {
                    (*dollar_delta, *underlying_price, *upnl, *size) = (t.dollar_delta, pb, t.upnl, t.size);
                }
                self.dirty_groups[group] = true;
                self.dirty_assets[receiver] = true;
            }
            BookSlot::Option(o) => {
                let (g, settle) = (self.book.options[o].group, self.book.options[o].settle);
                let pos = self.portfolio.positions[i].view();
                let hint = &mut self.series_hints[o];
                if moved {
                    let prices = (price(self.ends[i].0), price(self.ends[i].1));
                    self.engine.option_series_moved(&mut self.book, o, pos, &self.market, hint, prices)?;
                } else {
                    self.engine.option_series(&mut self.book, o, pos, &self.market, hint)?;
                }
                self.dirty_groups[g] = true;
                self.dirty_assets[settle] = true;
            }
        }
        Ok(())
    }

    /// Re-resolve the positions `select` picks and re-sum what they touch.
    fn resolve_where(&mut self, select: impl Fn(&Position) -> bool) -> Result<()> {
        self.begin_resum();
        for i in 0..self.portfolio.positions.len() {
            if select(&self.portfolio.positions[i]) {
                self.resolve_position(i, false)?;
            }
        }
        self.finish_resum();
        Ok(())
    }

    fn begin_resum(&mut self) {
        self.fresh = false;
        self.dirty_groups.clear();
        self.dirty_groups.resize(self.book.groups.len(), false);
        self.dirty_assets.clear();
        self.dirty_assets.resize(self.book.assets.len(), false);
    }

    fn finish_resum(&mut self) {
        for g in 0..self.dirty_groups.len() {
            if self.dirty_groups[g] {
                self.book.resum_group(g);
            }
        }
        for a in 0..self.dirty_assets.len() {
            if self.dirty_assets[a] {
                self.book.resum_settled(a);
            }
        }
    }

    /// The name tables, in the order `Engine::book` creates slots and ids.
    fn index(&mut self) {
        self.assets.clear();
        self.symbols.clear();
        self.layout = next_layout();
        let add_asset = |assets: &mut FxHashMap<String, usize>, a: &str| {
            let n = assets.len();
            assets.entry(a.to_string()).or_insert(n);
        };
        for a in self.portfolio.assets() {
            add_asset(&mut self.assets, a);
        }
        let mut option_slot = 0;
        self.asset_names.clear();
        self.asset_names.resize(self.assets.len(), String::new());
        for (name, &a) in &self.assets {
            self.asset_names[a].clone_from(name);
        }
        self.balance_listed.clear();
        self.balance_listed.extend(self.asset_names.iter().map(|a| self.portfolio.balances.contains(a)));
        self.touching.clear();
        self.touching.resize(self.assets.len(), Vec::new());
        self.ends.clear();
        self.marks.clear();
        // A new layout: each option slot may hold another series than before.
        self.series_hints.clear();
        self.series_hints.resize(self.book.options.len(), SeriesHint::default());
        for (i, p) in self.portfolio.positions.iter().enumerate() {
            let (b, s) = (self.assets[p.underlying()], self.assets[p.settle()]);
            self.touching[b].push(i);
            self.ends.push((b, s));
            self.marks.push(self.market.marks.get(p.symbol()).copied());
            if s != b {
                self.touching[s].push(i);
            }
            let held = self.symbols.entry(p.symbol().to_string()).or_default();
            match p {
                Position::Option { .. } => {
                    held.option.get_or_insert(option_slot);
                    option_slot += 1;
                }
                _ => {
                    held.contract.get_or_insert(i);
                }
            }
        }
    }

    // -- market updates --------------------------------------------------------------

    /// A new index price (USD): the positions on `asset` (as underlying or
    /// settle asset) are re-resolved, their groups and settle assets re-summed.
    pub fn update_price(&mut self, asset: &str, price: f64) -> Result<()> {
        self.market.set_price(asset, price)?;
        let Some(&a) = self.assets.get(asset) else {
            return Ok(()); // not an asset of the account
        };
        self.begin_resum();
        self.book.assets[a].price = price;
        for k in 0..self.touching[a].len() {
            self.resolve_position(self.touching[a][k], true)?;
        }
        self.finish_resum();
        Ok(())
    }

    /// Several prices at once: all are checked before any is applied.
    pub fn update_prices(&mut self, prices: &[(String, f64)]) -> Result<()> {
        for (a, p) in prices {
            crate::market::check("prices", *p, &path("market.prices", a))?;
        }
        for (a, p) in prices {
            self.update_price(a, *p)?;
        }
        Ok(())
    }

    /// A new contract mark (quote units): the contracts of that symbol are re-resolved.
    pub fn update_mark(&mut self, symbol: &str, mark: f64) -> Result<()> {
        self.market.set_mark(symbol, mark)?;
        for (m, p) in self.marks.iter_mut().zip(&self.portfolio.positions) {
            if p.symbol() == symbol {
                *m = Some(mark);
            }
        }
        self.resolve_where(|p| !matches!(p, Position::Option { .. }) && p.symbol() == symbol)
    }

    /// A new vol for an option symbol or an underlying: the options it may
    /// price are re-resolved (their series come from the snapshot's cache,
    /// which kept the series the change does not touch).
    pub fn update_vol(&mut self, key: &str, vol: f64) -> Result<()> {
        self.market.set_vol(key, vol)?;
        self.resolve_where(|p| matches!(p, Position::Option { .. }) && (p.symbol() == key || p.underlying() == key))
    }

    pub fn set_time(&mut self, time: f64) -> Result<()> {
        let before = self.market.time;
        self.market.set_time(time)?;
        let repriced = self.reprice();
        if repriced.is_err() {
            self.market.time = before;
        }
        repriced
    }

    // -- wallet ----------------------------------------------------------------------

    /// Change a wallet balance by `qty` asset units (any sign).
    fn wallet(&mut self, asset: &str, qty: f64, field: &str) -> Result<()> {
        crate::input::finite(qty, field, crate::input::Source::Input)?;
        let listed = self.portfolio.balances.contains(asset);
        match self.assets.get(asset) {
            // The slot exists and its group is already listed: one field.
            Some(&a) if listed => {
                self.portfolio.add_balance(asset, qty)?;
                self.sync_wallet(a);
                Ok(())
            }
            _ => {
                let mut portfolio = self.portfolio.clone();
                portfolio.add_balance(asset, qty)?;
                self.adopt(portfolio)
            }
        }
    }

    /// Set asset slot `a`'s net wallet and loan from the portfolio, with the
    /// operations `Engine::book` uses (so the slot is bit-for-bit a rebuild's).
    fn sync_wallet(&mut self, a: usize) {
        let name = self.asset_names[a].as_str();
        let loan = self.portfolio.loan(name);
        let slot = &mut self.book.assets[a];
        slot.wallet = self.portfolio.balance(name).map_or(0.0, |q| 0.0 + q);
        if self.portfolio.loans.contains(name) {
            slot.wallet -= loan.owed();
        }
        slot.loan = loan;
        self.fresh = false;
    }

    fn positive(qty: f64, field: &str) -> Result<f64> {
        crate::input::positive(qty, field, crate::input::Source::Input)
    }

    /// Add `qty` (> 0) units of `asset` to the wallet.
    pub fn deposit(&mut self, asset: &str, qty: f64) -> Result<()> {
        let q = Self::positive(qty, "deposit.qty")?;
        self.wallet(asset, q, "deposit.qty")
    }

    /// Take `qty` (> 0) units out; the wallet may not go below zero (that is a loan: `borrow`).
    pub fn withdraw(&mut self, asset: &str, qty: f64) -> Result<()> {
        let q = Self::positive(qty, "withdraw.qty")?;
        let held = self.balance(asset);
        if q > held {
            return Err(CoreError::invalid(
                "withdraw.qty",
                format!("exceeds the {asset} wallet: {} > {}", fmt_num(q), fmt_num(held.max(0.0))),
            ));
        }
        self.wallet(asset, -q, "withdraw.qty")
    }

    /// Borrow `qty` (> 0) units as a margin loan, as an exchange does: the
    /// wallet is credited `qty` coins and the loan books `qty` borrowed, so the
    /// net wallet and equity do not change (the loan's margin does).
    pub fn borrow(&mut self, asset: &str, qty: f64) -> Result<()> {
        let q = Self::positive(qty, "borrow.qty")?;
        self.loan_change(asset, q, Loan { borrowed: q, interest: 0.0 })
    }

    /// Repay `qty` (> 0) units of the margin loan from the wallet: interest
    /// first, then principal; at most what is owed and what the wallet holds.
    pub fn repay(&mut self, asset: &str, qty: f64) -> Result<()> {
        let q = Self::positive(qty, "repay.qty")?;
        let loan = self.portfolio.loan(asset);
        let held = self.balance(asset);
        let refuse = |what: &str, limit: f64| {
            Err(CoreError::invalid(
                "repay.qty",
                format!("exceeds the {asset} {what}: {} > {}", fmt_num(q), fmt_num(limit)),
            ))
        };
        if q > loan.owed() {
            return refuse("loan", loan.owed());
        }
        if q > held {
            return refuse("wallet", held.max(0.0));
        }
        let interest = q.min(loan.interest);
        self.loan_change(asset, -q, Loan { borrowed: -(q - interest), interest: -interest })
    }

    /// Add `qty` to the wallet of `asset` and `loan` to its loan (either may be
    /// negative): the net wallet stays, the gross loan moves. All or nothing, as
    /// `wallet`: a new asset is tried on a copy of the portfolio first.
    fn loan_change(&mut self, asset: &str, qty: f64, loan: Loan) -> Result<()> {
        let listed = self.portfolio.balances.contains(asset);
        match self.assets.get(asset) {
            Some(&a) if listed => {
                self.portfolio.add_balance(asset, qty)?;
                self.portfolio.change_loan(asset, loan);
                self.sync_wallet(a);
                Ok(())
            }
            _ => {
                let mut portfolio = self.portfolio.clone();
                portfolio.add_balance(asset, qty)?;
                portfolio.change_loan(asset, loan);
                self.adopt(portfolio)
            }
        }
    }

    pub fn balance(&self, asset: &str) -> f64 {
        self.portfolio.balance(asset).unwrap_or(0.0)
    }

    // -- orders ----------------------------------------------------------------------

    /// Apply a fill to the account.
    pub fn apply_fill<'o>(&mut self, order: impl Into<OrderRef<'o>>) -> Result<()> {
        let (edit, change) = self.plan(order.into())?;
        let edit = edit.into_owned();
        if let Change::Rebuild = change {
            let mut portfolio = self.portfolio.clone();
            edit.apply(&mut portfolio)?;
            return self.adopt(portfolio);
        }
        let mut portfolio = std::mem::take(&mut self.portfolio);
        let applied = edit.apply(&mut portfolio);
        self.portfolio = portfolio;
        applied?;
        // The held position is re-resolved from its new terms and its group and
        // settle asset re-summed: the same sums as a rebuild, not the increments.
        self.begin_resum();
        match change {
            Change::Rebuild => unreachable!("adopted above"),
            Change::Contract { position, asset, .. } => {
                self.sync_wallet(asset);
                self.resolve_position(position, false)?;
            }
            Change::Option { slot, dq, settle, .. } => {
                self.sync_wallet(settle);
                self.book.options[slot].qty += dq;
                self.dirty_groups[self.book.options[slot].group] = true;
                self.dirty_assets[settle] = true;
            }
        }
        self.finish_resum();
        Ok(())
    }

    /// The margin after `order`, leaving the account as it is. The result is
    /// the account's what-if buffer (clone it to keep it): on a held contract
    /// the change is applied to the book, evaluated and undone, allocating nothing.
    pub fn what_if<'o>(&mut self, order: impl Into<OrderRef<'o>>) -> Result<&MarginResult> {
        let (edit, change) = self.plan(order.into())?;
        match change {
            Change::Rebuild => {
                let mut portfolio = self.portfolio.clone();
                edit.apply(&mut portfolio)?;
                self.probe = Arc::new(self.engine.margin(&portfolio, &self.market)?);
                self.scratch.forget_rows(); // the what-if buffer is another book's evaluation now
                self.kept.binance.forget_probe();
            }
            Change::Contract { position, group, netted, asset, .. } => {
                // The current margin's evaluation is the kept one, under either model.
                self.margin_ref();
                let BookSlot::Contract { dollar_delta, upnl, size, .. } = self.book.slots[position] else {
                    unreachable!("a contract change is on a contract slot")
                };
                let saved_group = self.book.groups[group].d_contracts;
                let saved_asset = self.book.assets[asset];
                let saved_delta = self.book.contracts[netted].delta;
                self.commit(&change);
                let probe = Arc::make_mut(&mut self.probe);
                if self.engine.params().model == Model::BinancePm && self.full_what_ifs {
                    self.engine.evaluate_into(&self.book, &mut self.scratch, probe);
                } else if self.engine.params().model == Model::BinancePm {
                    let (kept, current) = (&mut self.kept.binance, &self.current);
                    crate::binance::evaluate_after(&self.engine, &self.book, kept, current, (position, asset), probe);
                } else {
                    let touched = Touched { group, netted: Some((netted, saved_delta)), asset: Some(asset) };
                    self.engine.evaluate_after(&self.book, &mut self.scratch, &self.kept, touched, probe);
                }
                if let BookSlot::Contract { dollar_delta: d, upnl: u, size: z, .. } = &mut self.book.slots[position] {
                    (*d, *u, *z) = (dollar_delta, upnl, size);
                }
                self.book.groups[group].d_contracts = saved_group;
                self.book.assets[asset] = saved_asset;
                self.book.contracts[netted].delta = saved_delta;
            }
            Change::Option { slot, settle, .. } => {
                let g = self.book.options[slot].group;
                self.margin_ref();
                self.book.groups[g].save_into(&mut self.saved_group);
                let saved_asset = self.book.assets[settle];
                let saved_qty = self.book.options[slot].qty;
                self.commit(&change);
                let touched = Touched { group: g, netted: None, asset: Some(settle) };
                let probe = Arc::make_mut(&mut self.probe);
                self.engine.evaluate_after(&self.book, &mut self.scratch, &self.kept, touched, probe);
                self.saved_group.save_into(&mut self.book.groups[g]);
                self.book.assets[settle] = saved_asset;
                self.book.options[slot].qty = saved_qty;
            }
        }
        Ok(&self.probe)
    }

    /// Evaluate the `binance_pm` what-ifs on held contracts in full (every
    /// contract bracketed, every asset recomputed) rather than from the current
    /// margin: the oracle the narrow evaluation is checked against, bit for bit.
    #[doc(hidden)]
    pub fn full_what_ifs(&mut self, on: bool) {
        self.full_what_ifs = on;
        self.kept.binance.forget_probe(); // the what-if buffer is rewritten by other code
    }

    /// The last `what_if`'s (or `check_order`'s) result, shared rather than
    /// copied: the account writes its next what-if in place only when every
    /// holder has dropped this one.
    pub fn what_if_result(&self) -> Arc<MarginResult> {
        Arc::clone(&self.probe)
    }

    /// Whether the account may send `order`, and the margin after it (the
    /// what-if buffer, as in `what_if`).
    pub fn check_order<'o>(&mut self, order: impl Into<OrderRef<'o>>) -> Result<(Option<Refusal>, &MarginResult)> {
        let before = self.margin_ref();
        let (mm_before, status) = (before.maintenance_margin, before.status);
        // The ladder's last level liquidates and the one above it is reduce-only.
        let levels = self.engine.params().status.len();
        let after = self.what_if(order)?;
        let adds_risk = after.maintenance_margin > mm_before;
        let reduce_only = levels >= 2 && status == Status::level(levels - 2);
        let refusal = if status >= Status::level(levels - 1) {
            Some(Refusal::Liquidation)
        } else if reduce_only && adds_risk {
            Some(Refusal::ReduceOnly)
        } else if adds_risk && after.available < 0.0 {
            Some(Refusal::InsufficientAvailableMargin)
        } else {
            None
        };
        Ok((refusal, after))
    }

    /// The largest quantity (≥ 0, in the order's units) of `order`'s side that
    /// keeps uniMMR ≥ `target_ratio` and available margin ≥ 0, found by
    /// doubling then bisection to a relative 1e-9 (never over the limit).
    /// `order.qty`'s sign is the side; its size is ignored.
    pub fn max_order_size(&mut self, order: &Order, target_ratio: f64) -> Result<f64> {
        let side = if order.qty < 0.0 { -1.0 } else { 1.0 };
        let mut probe = order.clone();
        let mut ok = |q: f64, live: &mut Self| -> Result<bool> {
            probe.qty = side * q;
            let r = live.what_if(&probe)?;
            Ok(r.uni_mmr >= target_ratio && r.available >= 0.0)
        };
        // Start from one unit of notional-ish size and double until the limit breaks.
        let mut lo = 0.0;
        let mut hi = 1e-6;
        while ok(hi, self)? {
            lo = hi;
            hi *= 2.0;
            if hi > 1e15 {
                return Ok(lo); // no limit within any real size
            }
        }
        if lo == 0.0 && !ok(0.0, self)? {
            return Ok(0.0);
        }
        while hi - lo > 1e-9 * hi.max(1e-12) {
            let mid = 0.5 * (lo + hi);
            if ok(mid, self)? {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        Ok(lo)
    }

    /// Where the account holds `symbol` now (held or not), for orders on it
    /// until the positions' layout changes (a fill that opens or closes a
    /// position, a new balance): see [`OrderRef::key`].
    pub fn symbol_key(&self, symbol: &str) -> SymbolKey {
        SymbolKey { layout: self.layout, held: self.symbols.get(symbol).copied().unwrap_or_default() }
    }

    /// Whether `key` describes the current layout (else [`symbol_key`](Self::symbol_key) anew).
    pub fn is_current(&self, key: SymbolKey) -> bool {
        key.layout == self.layout
    }

    /// The first position holding `symbol`, from the name table (a contract's
    /// first position, an option's slot) rather than a search of the positions,
    /// and the option slot when that position is an option.
    fn held(&self, symbol: &str, key: Option<SymbolKey>) -> (Option<usize>, Option<usize>) {
        let Held { contract, option } = match key {
            Some(k) if k.layout == self.layout => k.held,
            _ => self.symbols.get(symbol).copied().unwrap_or_default(),
        };
        let option_at = option.map(|o| self.book.options[o].position);
        match (contract, option_at) {
            (Some(c), Some(o)) if c < o => (Some(c), None),
            (_, Some(o)) => (Some(o), option),
            (c, None) => (c, None),
        }
    }

    /// The fill's effect: the edit to the portfolio and the change to the book.
    /// Nothing is cloned on the fast path (a what-if on a held symbol).
    fn plan<'a>(&'a self, order: OrderRef<'a>) -> Result<(Edit<'a>, Change)> {
        let qty = crate::input::amount(order.qty, "order.qty")?;
        if let Some(p) = order.price {
            crate::input::price(p, "order.price")?;
        }
        let (held, option_slot) = self.held(order.symbol, order.key);
        if let (Some(i), None, None) = (held, option_slot, order.instrument) {
            return self.plan_held_contract(i, qty, order.price);
        }
        let template: &Position = match (held, order.instrument) {
            (Some(i), Some(inst)) if !same_terms(&self.portfolio.positions[i], inst) => {
                return Err(CoreError::invalid(
                    "order.instrument",
                    format!("differs from the held {} position's terms", order.symbol),
                ))
            }
            (Some(i), _) => &self.portfolio.positions[i],
            (None, Some(inst)) => {
                if inst.symbol() != order.symbol {
                    return Err(CoreError::invalid(
                        "order.instrument.symbol",
                        format!("must be the order's symbol {:?}, got {:?}", order.symbol, inst.symbol()),
                    ));
                }
                validate(inst, "order.instrument")?;
                inst
            }
            (None, None) => {
                return Err(CoreError::invalid(
                    path("order", "symbol"),
                    format!("{:?} is not held: describe it with an instrument", order.symbol),
                ))
            }
        };
        let (pb, ps) = (self.market.price(template.underlying())?, self.market.price(template.settle())?);
        let symbol = template.symbol();
        match template {
            Position::Linear { settle, .. } | Position::Inverse { underlying: settle, .. } => {
                let inverse = matches!(template, Position::Inverse { .. });
                let mark = mark_or_index(self.market.marks.get(symbol).copied(), inverse, pb, ps);
                let price = order.price.unwrap_or(mark);
                let (old_size, old_e) = match held.map(|i| self.portfolio.positions[i].view()) {
                    Some(PositionRef::Linear { qty, entry_price, .. }) => (qty, entry_price),
                    Some(PositionRef::Inverse { contracts, entry_price, .. }) => (contracts, entry_price),
                    _ => (0.0, price),
                };
                let contract_size = match template {
                    Position::Inverse { contract_size, .. } => *contract_size,
                    _ => 1.0,
                };
                let (new_size, new_e, realized) = merge_fill(inverse, old_size, old_e, qty, price, contract_size);
                // The position's terms before and after, as the book resolves them.
                let terms = |size: f64, e: f64| {
                    let mut pos = template.view();
                    set_size(&mut pos, size, e);
                    contract_terms(pos, Some(mark), pb, ps)
                };
                let (old, new) = (terms(old_size, old_e), terms(new_size, new_e));
                let change = (new.dollar_delta - old.dollar_delta, new.upnl - old.upnl, new);
                self.contract_change(template, held, (new_size, new_e), settle, change, realized)
            }
            Position::Option { settle, .. } => {
                let Some(i) = held else {
                    // A new series: the rebuild prices it (and so does the model-value premium).
                    let mut pos = template.clone();
                    if let Position::Option { qty: q, .. } = &mut pos {
                        *q = qty;
                    }
                    let cost = match order.price {
                        Some(p) => p * qty,
                        None => {
                            let mut probe = self.portfolio.clone();
                            probe.positions.push(pos.clone());
                            qty * option_value(&self.engine, &probe, &self.market, probe.positions.len() - 1)?
                        }
                    };
                    return Ok((
                        Edit { position: PositionEdit::Push(Box::new(pos)), wallet: Some((settle.into(), -cost)) },
                        Change::Rebuild,
                    ));
                };
                let slot = option_slot.expect("a held option has a slot");
                let series = &self.book.options[slot].series;
                let cost = order.price.unwrap_or(series.value) * qty;
                let new_q = self.book.options[slot].qty + qty;
                let settle_listed = self.portfolio.balances.contains(settle);
                let edit = Edit {
                    position: if new_q == 0.0 { PositionEdit::Remove(i) } else { PositionEdit::AddQty(i, qty) },
                    wallet: Some((settle.into(), -cost)),
                };
                if new_q == 0.0 || !settle_listed {
                    return Ok((edit, Change::Rebuild));
                }
                Ok((edit, Change::Option { slot, dq: qty, settle: self.assets[settle.as_str()], wallet: -cost }))
            }
        }
    }

    /// [`plan`](Self::plan) for position `i`, a contract the account holds, ordered
    /// without an instrument description: its prices from the book and its mark
    /// from `marks` (which every update keeps equal to the market's), its slots
    /// from the position's, so the order looks up no name beyond the symbol.
    fn plan_held_contract(&self, i: usize, qty: f64, price: Option<f64>) -> Result<(Edit<'_>, Change)> {
        let BookSlot::Contract { group, netted, receiver, underlying_price: pb, inverse, .. } = self.book.slots[i]
        else {
            unreachable!("a held contract has a contract slot")
        };
        // The asset receiving the UPnL: the settle asset, an inverse contract's coin (its settle asset too).
        let ps = self.book.assets[receiver].price;
        let pos = self.portfolio.positions[i].view();
        let mark = mark_or_index(self.marks[i], inverse, pb, ps);
        let (old_size, old_e, contract_size) = match pos {
            PositionRef::Linear { qty, entry_price, .. } => (qty, entry_price, 1.0),
            PositionRef::Inverse { contracts, entry_price, contract_size, .. } => {
                (contracts, entry_price, contract_size)
            }
            PositionRef::Option { .. } => unreachable!("a contract slot holds a contract"),
        };
        let (size, entry, realized) = merge_fill(inverse, old_size, old_e, qty, price.unwrap_or(mark), contract_size);
        let terms = |size: f64, e: f64| {
            let mut pos = pos;
            set_size(&mut pos, size, e);
            contract_terms(pos, Some(mark), pb, ps)
        };
        let (old, new) = (terms(old_size, old_e), terms(size, entry));
        let closed = size == 0.0;
        let edit = Edit {
            position: if closed { PositionEdit::Remove(i) } else { PositionEdit::SetContract(i, size, entry) },
            wallet: (realized != 0.0).then(|| (self.asset_names[receiver].as_str().into(), realized)),
        };
        if closed || (realized != 0.0 && !self.balance_listed[receiver]) {
            return Ok((edit, Change::Rebuild));
        }
        let (delta, settled) = (new.dollar_delta - old.dollar_delta, new.upnl - old.upnl);
        let change = Change::Contract {
            position: i,
            group,
            netted,
            delta,
            asset: receiver,
            settled,
            wallet: realized,
            terms: new,
        };
        Ok((edit, change))
    }

    /// A contract fill's edit, and the book change when it is a held symbol that
    /// stays open with its settle wallet already listed (else a rebuild).
    #[allow(clippy::too_many_arguments)]
    fn contract_change<'a>(
        &self,
        template: &'a Position,
        held: Option<usize>,
        (size, entry): (f64, f64),
        settle: &'a str,
        (delta, settled, terms): (f64, f64, ContractTerms),
        realized: f64,
    ) -> Result<(Edit<'a>, Change)> {
        let closed = size == 0.0;
        let position = match held {
            Some(i) if closed => PositionEdit::Remove(i),
            Some(i) => PositionEdit::SetContract(i, size, entry),
            None => {
                let mut pos = template.clone();
                set_contract(&mut pos, size, entry);
                PositionEdit::Push(Box::new(pos))
            }
        };
        let edit = Edit { position, wallet: (realized != 0.0).then_some((settle.into(), realized)) };
        let wallet_listed = realized == 0.0 || self.portfolio.balances.contains(settle);
        let fast = (held.is_some() && !closed && wallet_listed)
            .then(|| {
                Some((
                    self.symbols.get(template.symbol())?.contract?,
                    self.assets.get(settle)?,
                    self.assets.get(template.underlying())?,
                ))
            })
            .flatten();
        let Some((_, &asset, &under)) = fast else {
            return Ok((edit, Change::Rebuild));
        };
        let group = self.book.assets[under].group;
        let position = held.expect("the fast path is for held symbols");
        let BookSlot::Contract { netted, .. } = self.book.slots[position] else {
            return Ok((edit, Change::Rebuild)); // not reached: a held contract has a contract slot
        };
        Ok((edit, Change::Contract { position, group, netted, delta, asset, settled, wallet: realized, terms }))
    }

    fn commit(&mut self, change: &Change) {
        match *change {
            Change::Contract { position, group, netted, delta, asset, settled, wallet, terms } => {
                self.book.add_contract_delta(group, netted, delta);
                self.book.assets[asset].settled += settled;
                self.book.assets[asset].wallet += wallet;
                if let BookSlot::Contract { dollar_delta, upnl, size, .. } = &mut self.book.slots[position] {
                    (*dollar_delta, *upnl, *size) = (terms.dollar_delta, terms.upnl, terms.size);
                }
            }
            Change::Option { slot, dq, settle, wallet } => {
                let (g, old_q, series) = {
                    let o = &self.book.options[slot];
                    (o.group, o.qty, Arc::clone(&o.series))
                };
                let new_q = old_q + dq;
                self.book.add_option_exposure(g, dq, &series);
                let pb = series.underlying_price;
                let group = &mut self.book.groups[g];
                group.abs_options += (new_q * series.delta * pb).abs() - (old_q * series.delta * pb).abs();
                group.short_option_notional += (-new_q).max(0.0) * pb - (-old_q).max(0.0) * pb;
                self.book.options[slot].qty = new_q;
                let a = &mut self.book.assets[settle];
                a.settled += dq * series.value;
                a.wallet += wallet;
            }
            Change::Rebuild => unreachable!("rebuilds do not commit fields"),
        }
    }
}

/// What the account holds of a symbol: its first contract position, its option slot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Held {
    contract: Option<usize>,
    option: Option<usize>,
}

/// A fill's change to the portfolio.
struct Edit<'a> {
    position: PositionEdit,
    /// Realised P&L or an option premium, into (or out of) a wallet.
    wallet: Option<(std::borrow::Cow<'a, str>, f64)>,
}

enum PositionEdit {
    /// A contract's new size (qty or contracts) and entry price.
    SetContract(usize, f64, f64),
    /// An option's quantity change.
    AddQty(usize, f64),
    Remove(usize),
    /// A new position (boxed: the planned edit of every order stays small to move).
    Push(Box<Position>),
}

impl Edit<'_> {
    /// The same edit, borrowing nothing (to apply it to the portfolio it was planned on).
    fn into_owned(self) -> Edit<'static> {
        Edit { position: self.position, wallet: self.wallet.map(|(a, q)| (a.into_owned().into(), q)) }
    }

    fn apply(self, p: &mut Portfolio) -> Result<()> {
        if let Some((asset, q)) = self.wallet {
            p.add_balance(&asset, q)?;
        }
        match self.position {
            PositionEdit::SetContract(i, size, entry) => set_contract(&mut p.positions[i], size, entry),
            PositionEdit::AddQty(i, dq) => {
                if let Position::Option { qty, .. } = &mut p.positions[i] {
                    *qty += dq;
                }
            }
            PositionEdit::Remove(i) => drop(p.positions.remove(i)),
            PositionEdit::Push(pos) => p.positions.push(*pos),
        }
        Ok(())
    }
}

fn set_contract(pos: &mut Position, size: f64, entry: f64) {
    match pos {
        Position::Linear { qty, entry_price, .. } => (*qty, *entry_price) = (size, entry),
        Position::Inverse { contracts, entry_price, .. } => (*contracts, *entry_price) = (size, entry),
        Position::Option { .. } => unreachable!("contracts only"),
    }
}

/// [`set_contract`] on borrowed terms.
fn set_size(pos: &mut PositionRef<'_>, size: f64, entry: f64) {
    match pos {
        PositionRef::Linear { qty, entry_price, .. } => (*qty, *entry_price) = (size, entry),
        PositionRef::Inverse { contracts, entry_price, .. } => (*contracts, *entry_price) = (size, entry),
        PositionRef::Option { .. } => unreachable!("contracts only"),
    }
}

fn same_terms(held: &Position, inst: &Position) -> bool {
    match (held, inst) {
        (Position::Linear { underlying: a, settle: s, .. }, Position::Linear { underlying: b, settle: t, .. }) => {
            a == b && s == t
        }
        (
            Position::Inverse { underlying: a, contract_size: c, .. },
            Position::Inverse { underlying: b, contract_size: d, .. },
        ) => a == b && c == d,
        (
            Position::Option { underlying: a, settle: s, kind: k, strike: x, expiry: e, .. },
            Position::Option { underlying: b, settle: t, kind: l, strike: y, expiry: f, .. },
        ) => a == b && s == t && k == l && x == y && e == f,
        _ => false,
    }
}

/// The model value (settle units) of the option at `index` of a portfolio.
fn option_value(engine: &Engine, portfolio: &Portfolio, market: &Market, index: usize) -> Result<f64> {
    let book = engine.book(portfolio, market)?;
    let slot = book.options.iter().find(|o| o.position == index).expect("the option was just added");
    Ok(slot.series.value)
}
