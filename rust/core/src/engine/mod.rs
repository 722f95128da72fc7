//! The portfolio-margin engine (METHODOLOGY.md §2–§4).
//!
//! Margining an account is two steps:
//! 1. [`Engine::book`] resolves the portfolio against a market: prices, marks,
//!    per-asset wallet and equity, each group's contract and option deltas, and
//!    each group's option P&L per scenario (options priced once per snapshot,
//!    see `series.rs`). This is the part that grows with positions.
//! 2. [`Engine::evaluate`] nets the book: spot in use, financed spot, the scan,
//!    the short-option minimum, offsets, systemic scenarios, add-ons, collateral,
//!    ratio and status. Linear exposure enters every scenario as `D·r` and the
//!    options as their group's aggregated vector, so this step costs
//!    O(assets + groups × scenarios), whatever the number of positions.
//!
//! Files: this one compiles the profile into group tables and holds the entry
//! points; `book.rs` is the book's model, `builder.rs` builds it, `evaluate.rs`
//! nets it.
//!
//! Wallet balances stay per asset in the book (long spot, liabilities and
//! financing are derived in step 2), so a deposit, a loan or a realised P&L is
//! one field to change: the live account (`live.rs`) relies on it.

use crate::addons;
use crate::brackets::BracketKind;
use crate::collateral::adjusted_value;
use crate::error::{CoreError, Result};
use crate::grid::{Grid, Scenario};
use crate::instrument::contract_terms;
use crate::market::Market;
use crate::offsets::{offset_credit, OffsetLeg, OffsetPair};
use crate::params::{AssetParams, GroupParams, Model, RiskParams, SystemicScenario};
use crate::portfolio::{Loan, Portfolio, PositionRef};
use crate::pricing::YEAR_SECONDS;
use crate::result::{GroupResult, MarginResult, Names};
use crate::series::{Quote, Revaluation, Series, SeriesHint, SeriesKey, SeriesReader, SeriesTerms};
use crate::status::Status;
use rustc_hash::FxHashMap as HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

mod book;
mod builder;
mod evaluate;

pub use book::{AssetSlot, Book, BookSlot, GroupSlot, NettedContract, OptionSlot};
pub use builder::AssetTerms;
pub(crate) use builder::BookBuilder;
pub(crate) use evaluate::WorstGroup;
pub use evaluate::{Kept, Scratch, Touched};

/// Below this an MM is floating-point dust and counts as 0 (USD).
pub const MM_DUST: f64 = 1e-9;
/// Relative tolerance of the worst-scenario choice (§3 step 6).
pub const SCAN_TOL: f64 = 1e-9;

struct GroupTable {
    name: Arc<str>,
    params: GroupParams,
    grid: Grid,
    /// Where the group's option series are revalued (its grid with the vol
    /// dimension, none when the range is 0, and its systemic returns).
    revaluation: Revaluation,
}

impl GroupTable {
    fn new(name: &str, gp: &GroupParams, params: &RiskParams) -> Self {
        let grid = Grid::new(gp);
        let points = if gp.price_range > 0.0 { grid.scenarios(true) } else { &[] };
        let systemic: Vec<(f64, f64)> =
            params.systemic.iter().map(|s| (systemic_return(s, name, gp), s.vol_shock)).collect();
        let revaluation = Revaluation::new(points, &systemic, params.vol_floor);
        GroupTable { name: Arc::from(name), params: gp.clone(), grid, revaluation }
    }
}

/// A compiled risk profile: grids and tables built once, shared by every call.
pub struct Engine {
    params: RiskParams,
    /// `[0]` is `"*"`; then one per named group.
    tables: Vec<GroupTable>,
    table_index: HashMap<String, usize>,
    /// The tables of each offset's two groups, in the profile's order (0: a group
    /// without a table of its own, found by name).
    offset_tables: Vec<(usize, usize)>,
    /// Each systemic scenario's return for each table's group, a table's
    /// scenarios side by side (`[table * scenarios + scenario]`; table 0's
    /// entries are unused: its groups may be overridden by name).
    systemic_by_table: Vec<f64>,
    /// The profile's assets, indexed once so a book resolves each asset a single time.
    asset_table: Vec<AssetParams>,
    asset_index: HashMap<String, u32>,
    /// Identifies this engine's entries in a market's series cache.
    id: u64,
}

static NEXT_ENGINE_ID: AtomicU64 = AtomicU64::new(1);

impl Engine {
    pub fn new(params: RiskParams) -> Self {
        let mut tables = vec![GroupTable::new("*", &params.default_group, &params)];
        let mut table_index = HashMap::default();
        let mut names: Vec<&String> = params.groups.keys().collect();
        names.sort();
        for g in names {
            let gp = &params.groups[g];
            table_index.insert(g.clone(), tables.len());
            tables.push(GroupTable::new(g, gp, &params));
        }
        let mut asset_names: Vec<&String> = params.assets.keys().collect();
        asset_names.sort();
        let asset_table = asset_names.iter().map(|a| params.assets[*a].clone()).collect();
        let asset_index = asset_names.iter().enumerate().map(|(i, a)| ((*a).clone(), i as u32)).collect();
        let table = |g: &str| table_index.get(g).copied().unwrap_or(0);
        let offset_tables = params.offsets.iter().map(|o| (table(&o.a), table(&o.b))).collect();
        let systemic_by_table = (tables.iter())
            .flat_map(|t| params.systemic.iter().map(|s| systemic_return(s, &t.name, &t.params)))
            .collect();
        Engine {
            tables,
            table_index,
            offset_tables,
            systemic_by_table,
            asset_table,
            asset_index,
            id: NEXT_ENGINE_ID.fetch_add(1, Ordering::Relaxed),
            params,
        }
    }

    pub fn params(&self) -> &RiskParams {
        &self.params
    }

    /// Identifies this engine: a book resolved by one engine is evaluated only
    /// by an engine with the same id.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The profile's parameters of asset index `i` (an `AssetSlot::params`).
    pub(crate) fn asset_params(&self, i: u32) -> &AssetParams {
        &self.asset_table[i as usize]
    }

    fn table_of(&self, group: &str) -> usize {
        self.table_index.get(group).copied().unwrap_or(0)
    }

    pub fn group_params(&self, g: &GroupSlot) -> &GroupParams {
        &self.tables[g.table].params
    }

    /// Whether an option may settle in a group of parameters table `table`: a
    /// stablecoin's (`price_range` 0).
    pub(crate) fn settles_options(&self, table: usize) -> bool {
        self.tables[table].params.price_range == 0.0
    }

    /// The scenarios a group is scanned on (vol dimension only with options).
    pub fn scenarios(&self, g: &GroupSlot) -> &[Scenario] {
        self.tables[g.table].grid.scenarios(g.has_options)
    }

    /// Margin of one account on one market snapshot.
    pub fn margin(&self, portfolio: &Portfolio, market: &Market) -> Result<MarginResult> {
        Ok(self.evaluate(&self.book(portfolio, market)?))
    }

    /// The risk groups the account touches (a balance, a loan or a position's
    /// underlying), in the order the book lists them, whichever the model.
    pub fn risk_groups(&self, portfolio: &Portfolio, market: &Market) -> Result<Vec<String>> {
        let book = self.book(portfolio, market)?;
        let listed = book.groups.iter().zip(&book.group_names).filter(|(g, _)| g.listed);
        Ok(listed.map(|(_, n)| n.to_string()).collect())
    }

    /// Greeks per position and per group (units in `greeks.rs`).
    pub fn greeks(&self, portfolio: &Portfolio, market: &Market) -> Result<crate::greeks::GreeksResult> {
        Ok(crate::greeks::greeks(portfolio, &self.book(portfolio, market)?))
    }

    /// The terms of every position on the snapshot, in order (`instrument.rs`):
    /// mark, notional, dollar delta and value, whichever margin model the
    /// profile evaluates with.
    pub fn position_terms(
        &self,
        portfolio: &Portfolio,
        market: &Market,
    ) -> Result<Vec<crate::instrument::PositionTerms>> {
        Ok(crate::instrument::position_terms(portfolio, market, &self.scenario_book(portfolio, market)?))
    }

    /// Resolve a portfolio against a market (step 1 of the module doc). Asset
    /// slots are created in the order of [`Portfolio::assets`].
    pub fn book(&self, portfolio: &Portfolio, market: &Market) -> Result<Book> {
        self.book_for(portfolio, market, self.params.model)
    }

    /// A book for the scenario model whatever the profile's model (classic
    /// margin asks the scenario model what a short option needs alone).
    pub(crate) fn scenario_book(&self, portfolio: &Portfolio, market: &Market) -> Result<Book> {
        self.book_for(portfolio, market, Model::Scenario)
    }

    /// A book scenario-evaluated (see [`Engine::scenario_book`]).
    pub(crate) fn evaluate_scenario_of(&self, book: &Book) -> MarginResult {
        let mut out = MarginResult::default();
        self.evaluate_scenario(book, &mut Scratch::default(), &mut out);
        out
    }

    fn book_for<'p>(&self, portfolio: &'p Portfolio, market: &Market, model: Model) -> Result<Book> {
        let mut b = BookBuilder::<&str>::new(self, market);
        b.model = model;
        b.book.slots.reserve(portfolio.positions.len());
        let mut symbol_ids: HashMap<&str, u32> =
            HashMap::with_capacity_and_hasher(portfolio.positions.len(), Default::default());
        let resolve = |name: &'p str, field: &dyn Fn() -> String| {
            self.asset_terms(name, market).ok_or_else(|| CoreError::no_price(field(), name))
        };
        for (asset, qty) in &portfolio.balances {
            let a = b.asset(asset, || resolve(asset, &|| crate::input::path("balances", asset)))?;
            b.balance(a, *qty);
        }
        for (asset, loan) in &portfolio.loans {
            let a = b.asset(asset, || resolve(asset, &|| crate::input::path("loans", asset)))?;
            b.loan(a, *loan);
        }
        for (i, pos) in portfolio.positions.iter().enumerate() {
            let pos = pos.view();
            let at = |k: &str| format!("positions[{i}].{k}");
            let u = b.asset(pos.underlying(), || resolve(pos.underlying(), &|| at("underlying")))?;
            let s = b.asset(pos.settle(), || resolve(pos.settle(), &|| at("settle")))?;
            let (symbol, mark) = match pos {
                PositionRef::Option { .. } => (0, None),
                _ => {
                    let next = symbol_ids.len() as u32;
                    (*symbol_ids.entry(pos.symbol()).or_insert(next), market.marks.get(pos.symbol()).copied())
                }
            };
            b.position(i, pos, u, s, symbol, mark)?;
        }
        b.finish();
        Ok(b.book)
    }

    /// The profile's offsets between a book's listed groups (`groups`), in the
    /// profile's order; `find(name, table)`: the book's slot of a group, if any.
    pub(crate) fn offset_pairs<'s>(
        &'s self,
        find: impl Fn(&str, usize) -> Option<usize> + 's,
        groups: &'s [GroupSlot],
    ) -> impl Iterator<Item = OffsetPair> + 's {
        self.offsets_between(find).filter_map(move |p| listed_pair(p, Some, groups))
    }

    /// The profile's offsets between the groups `find(name, table)` finds
    /// (listed or not: a batch resolves them to its call's group ids once),
    /// in the profile's order.
    pub(crate) fn offsets_between<'s>(
        &'s self,
        find: impl Fn(&str, usize) -> Option<usize> + 's,
    ) -> impl Iterator<Item = OffsetPair> + 's {
        (self.offset_tables.iter().zip(&self.params.offsets))
            .filter_map(move |(&(a, b), o)| Some(OffsetPair { a: find(&o.a, a)?, b: find(&o.b, b)?, rate: o.rate }))
    }

    /// An asset as a book needs it, or `None` when the market has no price for it.
    pub fn asset_terms<'a>(&'a self, name: &'a str, market: &Market) -> Option<AssetTerms<'a>> {
        let price = *market.prices.get(name)?;
        let group = self.params.group_of(name);
        Some(AssetTerms {
            name,
            price,
            params: self.asset_index.get(name).copied(),
            collateral: self.params.is_collateral(name),
            group,
            table: self.table_of(group),
        })
    }

    /// The series of option `pos` (in group `g` of `book`) on `market`: from the
    /// snapshot's cache, or priced now and cached. The batch's path, which reads
    /// a series once per symbol and terms and keeps it for the accounts after.
    pub fn cached_series(&self, book: &Book, g: usize, pos: PositionRef<'_>, market: &Market) -> Result<Arc<Series>> {
        let key = self.series_key(pos)?;
        if let Some(s) = market.series.read().get(&key) {
            return Ok(s);
        }
        market.series.get_or_price(&key, &mut SeriesHint::default(), || {
            let (pb, ps) = (market.price(key.underlying)?, market.price(key.settle)?);
            Ok(Arc::new(self.price_position(book, g, pos, market, pb, ps)?))
        })
    }

    /// Set option slot `o` of `book` (position `pos`) to its series on `market`:
    /// from the snapshot's cache, or priced now and cached. The live account's
    /// path to reprice the one series a tick touches: a series the slot alone
    /// holds (the cache dropped it) is repriced in place, without allocating.
    /// `hint`: where the slot's series was found in the cache last time (kept
    /// per slot by the caller, see [`SeriesHint`]).
    pub fn option_series(
        &self,
        book: &mut Book,
        o: usize,
        pos: PositionRef<'_>,
        market: &Market,
        hint: &mut SeriesHint,
    ) -> Result<()> {
        self.option_series_quoted(book, o, pos, market, hint, |_| {
            let (underlying, settle) = (pos.underlying(), pos.settle());
            quote(pos, market, market.price(underlying)?, market.price(settle)?)
        })
    }

    /// [`Self::option_series`] after a move of index prices alone, the vols and
    /// the time being those slot `o` was last resolved on: the series is quoted
    /// at the prices `pb` and `ps` (USD, the market's) with the vol and years
    /// of the series the slot holds, so only the cache is looked up.
    pub fn option_series_moved(
        &self,
        book: &mut Book,
        o: usize,
        pos: PositionRef<'_>,
        market: &Market,
        hint: &mut SeriesHint,
        (pb, ps): (f64, f64),
    ) -> Result<()> {
        self.option_series_quoted(book, o, pos, market, hint, |held| {
            let q = Quote { underlying_price: pb, settle_price: ps, ..held.quote() };
            debug_assert!(quote(pos, market, pb, ps).is_ok_and(|want| want == q), "{q:?}");
            Ok(q)
        })
    }

    /// [`Self::option_series`] with the quote, priced when the cache has no
    /// series, given by `quote_of` from the series the slot holds.
    fn option_series_quoted(
        &self,
        book: &mut Book,
        o: usize,
        pos: PositionRef<'_>,
        market: &Market,
        hint: &mut SeriesHint,
        quote_of: impl FnOnce(&Series) -> Result<Quote>,
    ) -> Result<()> {
        let key = self.series_key(pos)?;
        let g = book.options[o].group;
        let Book { groups, group_names, options, .. } = book;
        let held = &mut options[o].series;
        let series = market.series.get_or_price(&key, hint, || {
            let quote = quote_of(held)?;
            self.reprice_series(held, &groups[g], &group_names[g], quote);
            Ok::<_, CoreError>(Arc::clone(held))
        })?;
        options[o].series = series;
        Ok(())
    }

    /// Price option `pos` of group `g` (its vol looked up per symbol, then per
    /// underlying), with the terms that key it in the snapshot's cache.
    fn price_option(
        &self,
        book: &Book,
        g: usize,
        pos: PositionRef<'_>,
        market: &Market,
        pb: f64,
        ps: f64,
    ) -> Result<(SeriesTerms, Series)> {
        let terms = SeriesTerms::of(&self.series_key(pos)?);
        Ok((terms, self.price_position(book, g, pos, market, pb, ps)?))
    }

    /// What identifies option `pos`'s series priced by this engine in a snapshot's cache.
    pub fn series_key<'a>(&self, pos: PositionRef<'a>) -> Result<SeriesKey<'a>> {
        SeriesKey::of(self.id, pos)
            .ok_or_else(|| CoreError::invalid("position", format!("{} is not an option", pos.symbol())))
    }

    /// [`Self::price_option`] without the terms.
    fn price_position(
        &self,
        book: &Book,
        g: usize,
        pos: PositionRef<'_>,
        market: &Market,
        pb: f64,
        ps: f64,
    ) -> Result<Series> {
        Ok(self.price_series(&book.groups[g], &book.group_names[g], quote(pos, market, pb, ps)?))
    }

    /// Price an option series for a group: value, greeks, P&L per unit on the
    /// group's grid (none when the range is 0) and in each systemic scenario.
    pub(crate) fn price_series(&self, group: &GroupSlot, group_name: &str, quote: Quote) -> Series {
        self.with_revaluation(group, group_name, |at| Series::price(quote, at))
    }

    /// Set `held` to [`Self::price_series`] of the arguments: in place when
    /// `held` is its series' only holder (no allocation), else a new series.
    pub(crate) fn reprice_series(&self, held: &mut Arc<Series>, group: &GroupSlot, group_name: &str, quote: Quote) {
        match Arc::get_mut(held) {
            Some(series) => self.with_revaluation(group, group_name, |at| series.reprice(quote, at)),
            None => *held = Arc::new(self.price_series(group, group_name, quote)),
        }
    }

    /// `f` on the points a group's series are revalued at: its table's, unless a
    /// systemic override names this group and not the table (a group without a
    /// table of its own shares the default one).
    fn with_revaluation<R>(&self, group: &GroupSlot, group_name: &str, f: impl FnOnce(&Revaluation) -> R) -> R {
        let table = &self.tables[group.table];
        let own = table.revaluation.systemic_returns();
        let returns = self.params.systemic.iter().map(|s| systemic_return(s, group_name, &table.params));
        if returns.zip(own).all(|(r, &o)| r.to_bits() == o.to_bits()) {
            return f(&table.revaluation);
        }
        f(&GroupTable::new(group_name, &table.params, &self.params).revaluation)
    }
}

/// Offset `pair` between a book's groups `slot(pair.a)` and `slot(pair.b)`
/// when both are listed (an offset is between listed groups only).
#[inline]
pub(crate) fn listed_pair(
    pair: OffsetPair,
    slot: impl Fn(usize) -> Option<usize>,
    groups: &[GroupSlot],
) -> Option<OffsetPair> {
    let listed = |g: usize| slot(g).filter(|&g| groups[g].listed);
    Some(OffsetPair { a: listed(pair.a)?, b: listed(pair.b)?, rate: pair.rate })
}

/// A group's return in a systemic scenario: its override, else `multiple · price_range`.
fn systemic_return(s: &SystemicScenario, group: &str, gp: &GroupParams) -> f64 {
    s.overrides.iter().find(|(n, _)| n == group).map_or(s.multiple * gp.price_range, |(_, r)| *r)
}

/// Option `pos` quoted on `market` at underlying and settle prices `pb`, `ps`
/// (USD): its vol looked up per symbol, then per underlying; years to expiry.
fn quote(pos: PositionRef<'_>, market: &Market, pb: f64, ps: f64) -> Result<Quote> {
    let PositionRef::Option { symbol, underlying, kind, strike, expiry, .. } = pos else {
        unreachable!("options only")
    };
    let vol = market.vol(symbol, underlying)?;
    let tau = (expiry - market.time) / YEAR_SECONDS;
    Ok(Quote { kind, underlying_price: pb, settle_price: ps, strike, vol, tau })
}
