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
//! Wallet balances stay per asset in the book (long spot, liabilities and
//! financing are derived in step 2), so a deposit, a loan or a realised P&L is
//! one field to change: the live account (`live.rs`) relies on it.

use crate::addons;
use crate::brackets::BracketKind;
use crate::collateral::adjusted_value;
use crate::error::{CoreError, Result};
use crate::grid::{scan, Grid, Scenario};
use crate::instrument::contract_terms;
use crate::market::Market;
use crate::offsets::{offset_credit, OffsetLeg, OffsetPair};
use crate::params::{AssetParams, GroupParams, Model, RiskParams, SystemicScenario};
use crate::portfolio::{Loan, OptionKind, Portfolio, PositionRef};
use crate::pricing::YEAR_SECONDS;
use crate::result::{GroupResult, MarginResult, Names};
use crate::series::{Revaluation, Series, SeriesReader, SeriesTerms};
use crate::status::Status;
use rustc_hash::FxHashMap as HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Below this an MM is floating-point dust and counts as 0 (USD).
pub const MM_DUST: f64 = 1e-9;
/// Relative tolerance of the worst-scenario choice (§3 step 6).
pub const SCAN_TOL: f64 = 1e-9;

struct GroupTable {
    name: Arc<str>,
    params: GroupParams,
    grid: Grid,
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
    /// Each systemic scenario's return for each named table's group (`[scenario][table]`).
    systemic_by_table: Vec<Vec<f64>>,
    /// The profile's assets, indexed once so a book resolves each asset a single time.
    asset_table: Vec<AssetParams>,
    asset_index: HashMap<String, u32>,
    /// Identifies this engine's entries in a market's series cache.
    id: u64,
}

static NEXT_ENGINE_ID: AtomicU64 = AtomicU64::new(1);

/// An asset the account touches: wallet balance plus what settles in it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AssetSlot {
    /// Index of the asset's parameters in the engine (`None`: not in the profile).
    pub params: Option<u32>,
    /// Index price, USD.
    pub price: f64,
    /// Net wallet (asset units): balance less the loan; negative: a liability.
    pub wallet: f64,
    /// The margin loan (asset units), already netted in `wallet`.
    pub loan: Loan,
    /// `e_a` without the wallet: UPnL and option values settling in the asset (asset units).
    pub settled: f64,
    pub group: usize,
    /// First collateral tier rate > 0.
    pub collateral: bool,
}

impl AssetSlot {
    /// `e_a`: wallet + UPnL + option values (asset units).
    pub fn equity(&self) -> f64 {
        self.wallet + self.settled
    }
}

/// A risk group the account touches.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GroupSlot {
    /// Listed in the result: holds a balance entry or is a position's underlying.
    pub listed: bool,
    table: usize,
    /// Dollar delta of linear and inverse contracts (USD).
    pub d_contracts: f64,
    /// Dollar delta of options (USD).
    pub d_options: f64,
    /// Σ|q·Δ·P_b| over options (USD), for the scan tolerance.
    pub abs_options: f64,
    /// Any option position, whatever its quantity: the grid has a vol dimension.
    pub has_options: bool,
    /// Σ|q|·P_b over short options (USD).
    pub short_option_notional: f64,
    /// Σ q·(scenario P&L per unit) over options, USD, in the group grid's order
    /// (empty without options or when the group has no grid).
    pub option_pnl: Vec<f64>,
    /// Σ q·(P&L per unit) over options in each systemic scenario, USD.
    pub option_systemic: Vec<f64>,
}

/// An option position and its series priced on the snapshot.
#[derive(Debug, Clone)]
pub struct OptionSlot {
    pub group: usize,
    /// Index of the position in the portfolio.
    pub position: usize,
    /// Asset slot of the settle asset (receives `qty · value`).
    pub settle: usize,
    pub qty: f64,
    pub series: Arc<Series>,
}

/// One position of the portfolio, in order, as the book resolved it, with what
/// it adds to its group and to the asset its P&L settles in: the live account
/// re-sums a group or an asset from these after a tick or a fill.
#[derive(Debug, Clone)]
pub enum BookSlot {
    /// A linear or inverse contract: its dollar delta (USD), underlying price
    /// (USD), interned symbol, the asset slot receiving its UPnL (the margin
    /// asset: the settle asset, an inverse contract's underlying) and that UPnL
    /// (asset units); its bracketed size (`ContractTerms::size`), leverage and,
    /// under `binance_pm`, the index of its bracket table (`u32::MAX` otherwise);
    /// `netted`: its symbol's entry in `Book::contracts`.
    Contract {
        group: usize,
        dollar_delta: f64,
        underlying_price: f64,
        symbol: u32,
        netted: usize,
        receiver: usize,
        upnl: f64,
        size: f64,
        inverse: bool,
        leverage: f64,
        brackets: u32,
    },
    /// An option: index into `Book::options`.
    Option(usize),
}

/// Contract dollar deltas netted per symbol, as the basis add-on wants them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NettedContract {
    pub group: usize,
    /// Interned symbol (per book).
    pub symbol: u32,
    /// USD.
    pub delta: f64,
}

/// A portfolio resolved against a market snapshot.
#[derive(Debug, Clone)]
pub struct Book {
    /// Shared names: a result clones them without allocating.
    pub group_names: Vec<Arc<str>>,
    pub assets: Vec<AssetSlot>,
    pub groups: Vec<GroupSlot>,
    pub options: Vec<OptionSlot>,
    /// One entry per position, in the portfolio's order (none in the batch's
    /// books for the scenario model, which reads none).
    pub slots: Vec<BookSlot>,
    pub contracts: Vec<NettedContract>,
    /// The profile's offsets between listed groups, as group indices, in the profile's order.
    pub offset_pairs: Vec<OffsetPair>,
    /// Under `binance_pm`, when `detail` (its result names assets and
    /// positions): each asset slot's name, each position's symbol in order.
    pub names: Option<Arc<Names>>,
    /// Keep names for a per-position and per-asset result (`binance_pm`); the
    /// batch engine, which returns account figures only, turns it off.
    pub detail: bool,
}

/// Buffers `Engine::evaluate_into` reuses from call to call, so re-margining a
/// live account allocates nothing once they have grown to the book's size.
#[derive(Debug, Default)]
pub struct Scratch {
    net: Vec<Net>,
    pnl: Vec<f64>,
    legs: Vec<OffsetLeg>,
    remainder: Vec<f64>,
    budget: Vec<f64>,
}

/// Per-group figures of `Engine::evaluate` before the scan.
#[derive(Debug, Clone, Copy, Default)]
struct Net {
    /// `S_g`: value of long wallet balances (USD).
    spot_long: f64,
    /// Value of negative wallet balances (USD, ≤ 0).
    liabilities: f64,
    /// `Λ_g`: Σ max(0, −e_a·P_a) over the group's assets (USD).
    borrowing: f64,
    /// `u_g`: long spot recognised as a hedge (USD).
    in_use: f64,
    /// Linear coefficient of the group's P&L: contracts, liabilities, scanned spot (USD).
    scanned_delta: f64,
    /// Σ over the group's long collateral balances of `w·P·(1 − u_g)·φ`: financed spot (USD).
    financed: f64,
    /// Over the group's netted contract deltas, in order: Σ|d|, Σ d > 0, Σ −d for d < 0 (USD).
    contracts_abs: f64,
    contracts_long: f64,
    contracts_short: f64,
}

impl Engine {
    pub fn new(params: RiskParams) -> Self {
        let mut tables = vec![GroupTable {
            name: Arc::from("*"),
            grid: Grid::new(&params.default_group),
            params: params.default_group.clone(),
        }];
        let mut table_index = HashMap::default();
        let mut names: Vec<&String> = params.groups.keys().collect();
        names.sort();
        for g in names {
            let gp = &params.groups[g];
            table_index.insert(g.clone(), tables.len());
            tables.push(GroupTable { name: Arc::from(g.as_str()), grid: Grid::new(gp), params: gp.clone() });
        }
        let mut asset_names: Vec<&String> = params.assets.keys().collect();
        asset_names.sort();
        let asset_table = asset_names.iter().map(|a| params.assets[*a].clone()).collect();
        let asset_index = asset_names.iter().enumerate().map(|(i, a)| ((*a).clone(), i as u32)).collect();
        let table = |g: &str| table_index.get(g).copied().unwrap_or(0);
        let offset_tables = params.offsets.iter().map(|o| (table(&o.a), table(&o.b))).collect();
        let systemic_by_table = (params.systemic.iter())
            .map(|s| tables.iter().map(|t| systemic_return(s, &t.name, &t.params)).collect())
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
        let listed = move |name: &str, t: usize| find(name, t).filter(|&g| groups[g].listed);
        (self.offset_tables.iter().zip(&self.params.offsets))
            .filter_map(move |(&(a, b), o)| Some(OffsetPair { a: listed(&o.a, a)?, b: listed(&o.b, b)?, rate: o.rate }))
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
    /// snapshot's cache, or priced now and cached. The live account's path to
    /// reprice the one series a tick touches.
    pub fn option_series(&self, book: &Book, g: usize, pos: PositionRef<'_>, market: &Market) -> Result<Arc<Series>> {
        let PositionRef::Option { symbol, underlying, settle, kind, strike, expiry, .. } = pos else {
            return Err(CoreError::invalid("position", format!("{} is not an option", pos.symbol())));
        };
        if let Some(s) = market.series.read().get(self.id, symbol, underlying, settle, kind, strike, expiry) {
            return Ok(s);
        }
        let (terms, series) =
            self.price_option(book, g, pos, market, market.price(underlying)?, market.price(settle)?)?;
        let series = Arc::new(series);
        market.series.insert_all([(symbol, terms, Arc::clone(&series))]);
        Ok(series)
    }

    /// Price option `pos` of group `g` (its vol looked up per symbol, then per underlying).
    fn price_option(
        &self,
        book: &Book,
        g: usize,
        pos: PositionRef<'_>,
        market: &Market,
        pb: f64,
        ps: f64,
    ) -> Result<(SeriesTerms, Series)> {
        let PositionRef::Option { symbol, underlying, settle, kind, strike, expiry, .. } = pos else {
            unreachable!("options only")
        };
        let vol = market.vol(symbol, underlying)?;
        let tau = (expiry - market.time) / YEAR_SECONDS;
        let series = self.price_series(&book.groups[g], &book.group_names[g], kind, pb, ps, strike, vol, tau);
        let terms = SeriesTerms {
            engine: self.id,
            underlying: underlying.to_string(),
            settle: settle.to_string(),
            kind,
            strike,
            expiry,
        };
        Ok((terms, series))
    }

    /// Net a book into the account's margin (step 2 of the module doc).
    pub fn evaluate(&self, book: &Book) -> MarginResult {
        let mut out = MarginResult::default();
        self.evaluate_into(book, &mut Scratch::default(), &mut out);
        out
    }

    /// `evaluate` writing into `out` (its lists are reused) with `scratch`'s
    /// buffers: no allocation once both have grown to the book's size. The
    /// profile's model decides how the book is netted.
    pub fn evaluate_into(&self, book: &Book, scratch: &mut Scratch, out: &mut MarginResult) {
        out.model = self.params.model;
        match self.params.model {
            Model::Scenario => self.evaluate_scenario(book, scratch, out),
            Model::BinancePm => crate::binance::evaluate(self, book, out),
        }
    }

    /// The scenario model (METHODOLOGY.md §2–§4).
    fn evaluate_scenario(&self, book: &Book, scratch: &mut Scratch, out: &mut MarginResult) {
        let p = &self.params;
        let ng = book.groups.len();
        let stable = |g: usize| self.group_params(&book.groups[g]).price_range == 0.0;
        let Scratch { net, pnl, legs, remainder, budget } = scratch;

        // §2 equity and adjusted equity; wallets by sign.
        let (mut equity, mut adjusted_equity, mut borrow_margin) = (0.0, 0.0, 0.0);
        let mut negative_wallet = false;
        net.clear();
        net.resize(ng, Net::default());
        for a in &book.assets {
            let value = a.equity() * a.price;
            let params = a.params.map(|i| &self.asset_table[i as usize]);
            equity += value;
            adjusted_equity += adjusted_value(value, params.map_or(&[], |ap| ap.collateral.as_slice()));
            let n = &mut net[a.group];
            n.borrowing += (-value).max(0.0);
            if a.wallet > 0.0 {
                n.spot_long += a.wallet * a.price;
            } else if a.wallet < 0.0 {
                negative_wallet = true;
                n.liabilities += a.wallet * a.price;
                let rate = params.and_then(|ap| ap.borrow_mmr).unwrap_or(p.borrow_mmr);
                borrow_margin += rate * (-a.wallet) * a.price;
            }
        }

        // §3 steps 1–2: spot in use.
        for (n, g) in net.iter_mut().zip(&book.groups) {
            let d_rest = g.d_contracts + g.d_options + n.liabilities;
            n.in_use = if d_rest < 0.0 && n.spot_long > 0.0 { n.spot_long.min(-d_rest) } else { 0.0 };
        }
        let in_use_fraction = |n: &Net| if n.spot_long > 0.0 { n.in_use / n.spot_long } else { 0.0 };

        // §3 step 3: financed spot, free stablecoins first, then the other free collateral.
        let borrowed: f64 = net.iter().map(|n| (n.borrowing - n.in_use).max(0.0)).sum();
        let (mut free_stable, mut free_risky) = (0.0, 0.0);
        for a in book.assets.iter().filter(|a| a.wallet > 0.0 && a.collateral) {
            let free = a.wallet * a.price * (1.0 - in_use_fraction(&net[a.group]));
            if stable(a.group) {
                free_stable += free
            } else {
                free_risky += free
            }
        }
        let fraction = |num: f64, den: f64| if den > 0.0 { (num / den).min(1.0) } else { 0.0 };
        let phi_stable = fraction(borrowed, free_stable);
        let phi_risky = fraction((borrowed - free_stable).max(0.0), free_risky);
        // Per-group sums over assets and netted contracts, one pass each (in order, so
        // each sum is the one a per-group filter gives, bit for bit).
        for a in book.assets.iter().filter(|a| a.wallet > 0.0 && a.collateral) {
            let n = &mut net[a.group];
            let phi = if stable(a.group) { phi_stable } else { phi_risky };
            n.financed += a.wallet * a.price * (1.0 - in_use_fraction(n)) * phi;
        }
        for c in &book.contracts {
            let n = &mut net[c.group];
            n.contracts_abs += c.delta.abs();
            if c.delta > 0.0 {
                n.contracts_long += c.delta;
            } else {
                n.contracts_short -= c.delta;
            }
        }

        out.groups.clear();
        legs.clear();
        let (mut sum_req, mut sum_som, mut sum_basis, mut sum_conc) = (0.0, 0.0, 0.0, 0.0);
        for (g, group) in book.groups.iter().enumerate() {
            let gp = self.group_params(group);
            let n = net[g];
            // Long balances: the in-use fraction of each, plus the financed part of the
            // free rest of each collateral balance.
            let financed = n.financed;
            let scanned_spot = n.in_use + financed;
            let d_lin = group.d_contracts + n.liabilities + scanned_spot;
            net[g].scanned_delta = d_lin;
            let delta = d_lin + group.d_options;

            // §3 steps 5–6: the grid.
            let (scan_loss, worst) = if gp.price_range > 0.0 {
                let sc = self.scenarios(group);
                pnl.clear();
                pnl.extend(sc.iter().map(|s| d_lin * s.r));
                if group.has_options {
                    for (x, o) in pnl.iter_mut().zip(&group.option_pnl) {
                        *x += o;
                    }
                }
                let abs_items: f64 = n.contracts_abs + group.abs_options - n.liabilities + scanned_spot;
                let (loss, k) = scan(pnl, sc, SCAN_TOL * (1.0 + abs_items));
                (loss, (sc[k].r, sc[k].v))
            } else {
                (0.0, (0.0, 0.0))
            };
            // §3 step 7.
            let som = gp.som_rate * group.short_option_notional;
            let requirement = scan_loss.max(som);
            // §4 add-ons. Liabilities are all negative and scanned long balances all
            // positive, so each sum nets the same as its items one by one.
            let contracts = (n.contracts_long, n.contracts_short);
            let basis = addons::basis_after(gp.basis_rate, contracts, [n.liabilities, scanned_spot]);
            let concentration = addons::concentration(delta.abs(), &gp.concentration);

            // Offset legs by group index; only listed groups appear in `offset_pairs`.
            legs.push(OffsetLeg { requirement, delta, price_range: gp.price_range });
            if group.listed {
                sum_req += requirement;
                sum_som += som;
                sum_basis += basis;
                sum_conc += concentration;
                out.groups.push(GroupResult {
                    name: Arc::clone(&book.group_names[g]),
                    scan_loss,
                    requirement,
                    delta,
                    spot_in_use: n.in_use,
                    financed_spot: financed,
                    basis,
                    concentration,
                    som,
                    worst_price_move: worst.0,
                    worst_vol_shock: worst.1,
                });
            }
        }

        // Offsets, floored by the short-option minimum.
        let offset = offset_credit(&book.offset_pairs, legs, remainder, budget);
        let scan_total = (sum_req - offset).max(sum_som);
        let systemic = self.systemic_loss(book, net);
        let mm_risk = scan_total.max(systemic);

        let mm = mm_risk + sum_basis + sum_conc + borrow_margin;
        self.write_account(out, equity, adjusted_equity, negative_wallet, mm, |mm| p.im_factor * mm);
        out.scan = scan_total;
        out.systemic = systemic;
        out.offset_credit = offset;
        out.borrow_margin = borrow_margin;
    }

    /// The account figures every model ends with, given equity, adjusted equity,
    /// whether a wallet is negative, the MM (USD) and the IM as a function of the
    /// final MM: an MM below [`MM_DUST`] is 0; `uniMMR = adjusted equity / MM`
    /// (±inf when MM is 0); `BANKRUPT` when equity is below 0 (or 0 with a
    /// liability), else the profile's ladder on uniMMR; available = adjusted
    /// equity − IM.
    pub(crate) fn write_account(
        &self,
        out: &mut MarginResult,
        equity: f64,
        adjusted_equity: f64,
        negative_wallet: bool,
        mm: f64,
        im: impl FnOnce(f64) -> f64,
    ) {
        let mm = if mm < MM_DUST { 0.0 } else { mm };
        let im = im(mm);
        let uni_mmr = if mm > 0.0 {
            adjusted_equity / mm
        } else if adjusted_equity >= 0.0 {
            f64::INFINITY
        } else {
            f64::NEG_INFINITY
        };
        out.status = if equity < 0.0 || (equity == 0.0 && negative_wallet) {
            Status::BANKRUPT
        } else {
            self.params.status_for(uni_mmr)
        };
        out.equity = equity;
        out.adjusted_equity = adjusted_equity;
        out.maintenance_margin = mm;
        out.initial_margin = im;
        out.available = adjusted_equity - im;
        out.uni_mmr = uni_mmr;
    }

    /// A status's rank on the profile's ladder: 0 the healthiest, the ladder's
    /// length for `BANKRUPT`.
    pub fn status_rank(&self, status: Status) -> usize {
        usize::from(status.code(self.params.status.len()))
    }

    /// `SYS`: the worst systemic scenario's loss over the scanned exposure, ≥ 0.
    fn systemic_loss(&self, book: &Book, net: &[Net]) -> f64 {
        let mut worst = 0.0_f64;
        for (e, s) in self.params.systemic.iter().enumerate() {
            let mut pnl = 0.0;
            for (g, group) in book.groups.iter().enumerate() {
                // A named group's return is the one its table gives; others may be overridden by name.
                let r = match group.table {
                    0 => systemic_return(s, &book.group_names[g], self.group_params(group)),
                    t => self.systemic_by_table[e][t],
                };
                pnl += net[g].scanned_delta * r;
                pnl += group.option_systemic.get(e).copied().unwrap_or(0.0);
            }
            worst = worst.max(-pnl);
        }
        worst
    }

    /// Price an option series for a group: value, greeks, P&L per unit on the
    /// group's grid (none when the range is 0) and in each systemic scenario.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn price_series(
        &self,
        group: &GroupSlot,
        group_name: &str,
        kind: OptionKind,
        underlying_price: f64,
        settle_price: f64,
        strike: f64,
        vol: f64,
        tau: f64,
    ) -> Series {
        let table = &self.tables[group.table];
        let grid = if table.params.price_range > 0.0 { table.grid.scenarios(true) } else { &[] };
        let systemic: Vec<(f64, f64)> =
            self.params.systemic.iter().map(|s| (systemic_return(s, group_name, &table.params), s.vol_shock)).collect();
        let at = Revaluation { grid, systemic: &systemic, vol_floor: self.params.vol_floor };
        Series::price(kind, underlying_price, settle_price, strike, vol, tau, &at)
    }
}

/// A group's return in a systemic scenario: its override, else `multiple · price_range`.
fn systemic_return(s: &SystemicScenario, group: &str, gp: &GroupParams) -> f64 {
    s.overrides.iter().find(|(n, _)| n == group).map_or(s.multiple * gp.price_range, |(_, r)| *r)
}

impl GroupSlot {
    /// The empty slot of a group whose parameters are the engine's table `table`.
    pub(crate) fn new(table: usize) -> Self {
        GroupSlot {
            listed: false,
            table,
            d_contracts: 0.0,
            d_options: 0.0,
            abs_options: 0.0,
            has_options: false,
            short_option_notional: 0.0,
            option_pnl: Vec::new(),
            option_systemic: Vec::new(),
        }
    }

    /// Copy into `dst`, reusing its vectors' storage (a what-if saves and
    /// restores a group this way without allocating).
    pub fn save_into(&self, dst: &mut GroupSlot) {
        dst.listed = self.listed;
        dst.table = self.table;
        dst.d_contracts = self.d_contracts;
        dst.d_options = self.d_options;
        dst.abs_options = self.abs_options;
        dst.has_options = self.has_options;
        dst.short_option_notional = self.short_option_notional;
        dst.option_pnl.clone_from(&self.option_pnl);
        dst.option_systemic.clone_from(&self.option_systemic);
    }
}

impl AssetSlot {
    /// The empty slot of an asset with terms `t`, in the book's group `group`.
    pub(crate) fn new(t: &AssetTerms<'_>, group: usize) -> Self {
        AssetSlot {
            params: t.params,
            price: t.price,
            wallet: 0.0,
            loan: Loan::default(),
            settled: 0.0,
            group,
            collateral: t.collateral,
        }
    }
}

impl Book {
    /// A margin loan of asset slot `a`: netted in its wallet, kept gross for
    /// `binance_pm`; its group is listed, as a negative balance's is.
    pub(crate) fn add_loan(&mut self, a: usize, loan: Loan) {
        self.groups[self.assets[a].group].listed = true;
        let slot = &mut self.assets[a];
        slot.wallet -= loan.owed();
        slot.loan.borrowed += loan.borrowed;
        slot.loan.interest += loan.interest;
    }

    /// A wallet balance of asset slot `a` (asset units): its group is listed.
    pub(crate) fn add_balance(&mut self, a: usize, qty: f64) {
        self.groups[self.assets[a].group].listed = true;
        self.assets[a].wallet += qty;
    }

    /// Add linear or inverse contract `pos` (marked at `mark`, the market's if
    /// any) on underlying slot `b`, settling in slot `s`: its UPnL to its margin
    /// asset, its dollar delta to its group and to netted entry `netted`. Returns
    /// its slot (`symbol`: its interned symbol; `brackets`: see
    /// `BookSlot::Contract`) for the caller to push to `slots`.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    pub(crate) fn add_contract(
        &mut self,
        engine: &Engine,
        pos: PositionRef<'_>,
        mark: Option<f64>,
        b: usize,
        s: usize,
        netted: usize,
        symbol: u32,
        brackets: u32,
    ) -> BookSlot {
        let (pb, ps) = (self.assets[b].price, self.assets[s].price);
        let t = contract_terms(pos, mark, pb, ps);
        let (inverse, leverage) = match pos {
            PositionRef::Inverse { leverage, .. } => (true, leverage),
            PositionRef::Linear { leverage, .. } => (false, leverage),
            PositionRef::Option { .. } => unreachable!("contracts only"),
        };
        let receiver = if inverse { b } else { s };
        let g = self.assets[b].group;
        self.assets[receiver].settled += t.upnl;
        self.add_contract_delta(g, netted, t.dollar_delta);
        BookSlot::Contract {
            group: g,
            dollar_delta: t.dollar_delta,
            underlying_price: pb,
            symbol,
            netted,
            receiver,
            upnl: t.upnl,
            size: t.size,
            inverse,
            leverage: leverage.unwrap_or(engine.params.classic.default_leverage),
            brackets,
        }
    }

    /// Recompute group `g`'s contract and option aggregates from its slots, in
    /// the portfolio's order, exactly as `Engine::book` sums them (so a live
    /// account re-summed after a tick is bit-identical to a rebuild).
    pub fn resum_group(&mut self, g: usize) {
        let group = &mut self.groups[g];
        group.d_contracts = 0.0;
        group.d_options = 0.0;
        group.abs_options = 0.0;
        group.short_option_notional = 0.0;
        group.option_pnl.iter_mut().for_each(|x| *x = 0.0);
        group.option_systemic.iter_mut().for_each(|x| *x = 0.0);
        // 0 + d is d exactly, so restarting the netted entries at 0 sums as the book did.
        self.contracts.iter_mut().filter(|c| c.group == g).for_each(|c| c.delta = 0.0);
        for i in 0..self.slots.len() {
            match self.slots[i] {
                BookSlot::Contract { group, dollar_delta, netted, .. } if group == g => {
                    self.groups[g].d_contracts += dollar_delta;
                    self.contracts[netted].delta += dollar_delta;
                }
                BookSlot::Option(o) if self.options[o].group == g => {
                    let (qty, series) = (self.options[o].qty, Arc::clone(&self.options[o].series));
                    self.add_option_terms(g, qty, &series);
                }
                _ => {}
            }
        }
    }

    /// Recompute every group's and asset's aggregates from the slots, in the
    /// portfolio's order, with the additions `Engine::book` makes (each
    /// accumulator receives the same terms in the same order: the same bits).
    /// A book whose prices were re-read (a sweep's scenario, a refreshed
    /// resolution) is summed again this way.
    pub fn resum_all(&mut self) {
        for g in &mut self.groups {
            g.d_contracts = 0.0;
            g.d_options = 0.0;
            g.abs_options = 0.0;
            g.short_option_notional = 0.0;
            g.option_pnl.iter_mut().for_each(|x| *x = 0.0);
            g.option_systemic.iter_mut().for_each(|x| *x = 0.0);
        }
        self.contracts.iter_mut().for_each(|c| c.delta = 0.0);
        self.assets.iter_mut().for_each(|a| a.settled = 0.0);
        for i in 0..self.slots.len() {
            match self.slots[i] {
                BookSlot::Contract { group, dollar_delta, netted, receiver, upnl, .. } => {
                    self.assets[receiver].settled += upnl;
                    self.add_contract_delta(group, netted, dollar_delta);
                }
                BookSlot::Option(o) => {
                    let (g, settle, qty) = (self.options[o].group, self.options[o].settle, self.options[o].qty);
                    let series = Arc::clone(&self.options[o].series);
                    self.assets[settle].settled += qty * series.value;
                    self.add_option_terms(g, qty, &series);
                }
            }
        }
    }

    /// Recompute asset slot `a`'s settled amount (UPnL and option values) from
    /// the slots settling in it, in the portfolio's order.
    pub fn resum_settled(&mut self, a: usize) {
        let mut settled = 0.0;
        for slot in &self.slots {
            match *slot {
                BookSlot::Contract { receiver, upnl, .. } if receiver == a => settled += upnl,
                BookSlot::Option(o) if self.options[o].settle == a => {
                    settled += self.options[o].qty * self.options[o].series.value
                }
                _ => {}
            }
        }
        self.assets[a].settled = settled;
    }

    /// An option position's whole contribution to its group: exposure vectors,
    /// the scan tolerance's |delta| and the short-option notional.
    pub fn add_option_terms(&mut self, g: usize, qty: f64, series: &Series) {
        self.add_option_exposure(g, qty, series);
        let pb = series.underlying_price;
        let group = &mut self.groups[g];
        group.abs_options += (qty * series.delta * pb).abs();
        if qty < 0.0 {
            group.short_option_notional += qty.abs() * pb;
        }
    }

    /// Add `qty` units of an option series to group `g`'s aggregates (negative
    /// removes them). Used when building the book and by the live account.
    pub fn add_option_exposure(&mut self, g: usize, qty: f64, series: &Series) {
        let group = &mut self.groups[g];
        let d = qty * series.delta * series.underlying_price;
        group.d_options += d;
        group.has_options = true;
        if group.option_pnl.len() < series.grid_pnl.len() {
            group.option_pnl.resize(series.grid_pnl.len(), 0.0);
        }
        for (x, u) in group.option_pnl.iter_mut().zip(&series.grid_pnl) {
            *x += qty * u;
        }
        if group.option_systemic.len() < series.systemic_pnl.len() {
            group.option_systemic.resize(series.systemic_pnl.len(), 0.0);
        }
        for (x, u) in group.option_systemic.iter_mut().zip(&series.systemic_pnl) {
            *x += qty * u;
        }
    }

    /// Add a contract's dollar delta to its group `g` and its symbol's netted entry `netted`.
    pub fn add_contract_delta(&mut self, g: usize, netted: usize, d: f64) {
        self.groups[g].d_contracts += d;
        self.contracts[netted].delta += d;
    }
}

/// Up to this many entries a book finds an asset, a group or a contract symbol
/// by a linear search (faster than hashing for the few an account holds); past
/// it, by a hash map built then, so a book of 40,000 assets or a million symbols
/// costs linear time, not quadratic. 64: the 50-position benchmark account
/// (18 netted symbols) measured 25 % slower on `engine.margin` with 16, the
/// map built per book.
const LINEAR_LOOKUP: usize = 64;

/// Keys in insertion order, found by a linear search while few and by a hash
/// map once there are more than [`LINEAR_LOOKUP`].
#[derive(Debug)]
struct Lookup<K> {
    keys: Vec<K>,
    index: HashMap<K, usize>,
}

impl<K: Copy + Eq + std::hash::Hash> Lookup<K> {
    fn new() -> Self {
        Lookup { keys: Vec::new(), index: HashMap::default() }
    }

    #[inline]
    fn get(&self, key: K) -> Option<usize> {
        if self.keys.len() <= LINEAR_LOOKUP {
            self.keys.iter().position(|k| *k == key)
        } else {
            self.index.get(&key).copied()
        }
    }

    /// Add `key` (not present) as entry `keys.len()`.
    #[inline]
    fn push(&mut self, key: K) {
        self.keys.push(key);
        if self.keys.len() > LINEAR_LOOKUP {
            if self.index.is_empty() {
                self.index.extend(self.keys.iter().enumerate().map(|(i, k)| (*k, i)));
            } else {
                self.index.insert(key, self.keys.len() - 1);
            }
        }
    }

    fn clear(&mut self) {
        self.keys.clear();
        self.index.clear();
    }
}

/// An asset resolved against the profile and the market snapshot.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AssetTerms<'a> {
    pub name: &'a str,
    /// Index price, USD.
    pub price: f64,
    /// Index of its parameters in the engine (`None`: not in the profile).
    pub params: Option<u32>,
    /// First collateral tier rate > 0.
    pub collateral: bool,
    /// Its risk group, and the engine's table of that group's parameters (0: `"*"`,
    /// shared by every group the profile does not name).
    pub group: &'a str,
    pub table: usize,
}

/// Builds a book position by position. Assets are identified by a key `K`: their
/// name for one portfolio, a dictionary code for the batch engine (which resolves
/// each code once per call, not once per account). The batch engine keeps one
/// builder per worker and `clear`s it between accounts, so its buffers are reused.
pub(crate) struct BookBuilder<'e, 'm, K> {
    engine: &'e Engine,
    /// The model the book is for (the profile's, but for classic margin's option books).
    model: Model,
    market: &'m Market,
    /// Key of each of `book.assets`, in order.
    asset_keys: Lookup<K>,
    /// Each of `book.groups` by name (a group with a table of its own has the table's name).
    group_keys: HashMap<Arc<str>, usize>,
    /// The builder's own copies of the tables' names (empty: the engine's are shared).
    table_names: Vec<Arc<str>>,
    /// Each of `book.contracts` by (group, symbol id).
    netted_keys: Lookup<(usize, u32)>,
    /// The snapshot's priced series, read-locked at the book's first option (a book
    /// without options never touches the lock, which parallel batch workers would
    /// otherwise all write to) and released by `finish`.
    cache: Option<SeriesReader<'m>>,
    /// Series priced by this book, inserted into the cache by `finish`, and
    /// (past [`LINEAR_LOOKUP`] of them) their indices by symbol.
    priced: Vec<(String, SeriesTerms, Arc<Series>)>,
    /// The book's names under `binance_pm` (see `Book::names`), shared by `finish`.
    names: Names,
    priced_index: HashMap<String, Vec<usize>>,
    /// The storage of the previous book's offset pairs, reused by `finish`.
    offset_buffer: Vec<OffsetPair>,
    /// `binance_pm`: each symbol id's bracket table (`2·id` USDⓈ-M, `2·id + 1`
    /// COIN-M; `u32::MAX`: not looked up yet). Kept by `clear`.
    bracket_tables: Vec<u32>,
    pub(crate) book: Book,
}

impl<'e, 'm, K: Copy + Eq + std::hash::Hash> BookBuilder<'e, 'm, K> {
    pub(crate) fn new(engine: &'e Engine, market: &'m Market) -> Self {
        BookBuilder {
            engine,
            model: engine.params.model,
            market,
            asset_keys: Lookup::new(),
            group_keys: HashMap::default(),
            table_names: Vec::new(),
            netted_keys: Lookup::new(),
            cache: None,
            priced: Vec::new(),
            names: Names::default(),
            priced_index: HashMap::default(),
            offset_buffer: Vec::new(),
            bracket_tables: Vec::new(),
            book: Book {
                group_names: Vec::new(),
                assets: Vec::new(),
                groups: Vec::new(),
                options: Vec::new(),
                slots: Vec::new(),
                contracts: Vec::new(),
                offset_pairs: Vec::new(),
                names: None,
                detail: true,
            },
        }
    }

    /// A builder of books that keep no names: account figures only (the batch).
    /// Its books name their groups with the builder's own copies of the tables'
    /// names, so parallel workers do not share one reference count.
    pub(crate) fn without_detail(engine: &'e Engine, market: &'m Market) -> Self {
        let mut b = Self::new(engine, market);
        b.book.detail = false;
        b.table_names = engine.tables.iter().map(|t| Arc::from(&*t.name)).collect();
        b
    }

    /// Start a new book, keeping the buffers (and dropping what a book that failed
    /// half-way left: its read lock on the series cache, its unpublished series).
    pub(crate) fn clear(&mut self) {
        self.cache = None;
        self.priced.clear();
        self.priced_index.clear();
        self.group_keys.clear();
        self.netted_keys.clear();
        let b = &mut self.book;
        b.group_names.clear();
        b.assets.clear();
        b.groups.clear();
        b.options.clear();
        b.slots.clear();
        b.contracts.clear();
        b.offset_pairs.clear();
        b.names = None;
        self.names.clear();
        self.asset_keys.clear();
    }

    /// The slot of group `name` (whose parameters are table `table`), if the book
    /// has one. A group with a table of its own is the only one using it, so a few
    /// groups are told apart by table without comparing names; many, by a hash map.
    fn find_group(&self, name: &str, table: usize) -> Option<usize> {
        if self.book.group_names.len() > LINEAR_LOOKUP {
            return self.group_keys.get(name).copied();
        }
        match table {
            0 => self.book.group_names.iter().position(|n| &**n == name),
            t => self.book.groups.iter().position(|g| g.table == t),
        }
    }

    /// The slot of group `name` (whose parameters are table `table`), created on first use.
    fn group(&mut self, name: &str, table: usize) -> usize {
        if let Some(i) = self.find_group(name, table) {
            return i;
        }
        let shared = self.table_names.get(table).unwrap_or(&self.engine.tables[table].name);
        self.book.group_names.push(if &**shared == name { Arc::clone(shared) } else { Arc::from(name) });
        let names = &self.book.group_names;
        if names.len() > LINEAR_LOOKUP {
            if self.group_keys.is_empty() {
                self.group_keys.extend(names.iter().enumerate().map(|(i, n)| (Arc::clone(n), i)));
            } else {
                self.group_keys.insert(Arc::clone(&names[names.len() - 1]), names.len() - 1);
            }
        }
        self.book.groups.push(GroupSlot::new(table));
        self.book.groups.len() - 1
    }

    /// The slot of asset `key`, creating it (and its group) on first use with the
    /// terms `resolve` gives (called only then: its error names the input).
    pub(crate) fn asset<'t>(&mut self, key: K, resolve: impl FnOnce() -> Result<AssetTerms<'t>>) -> Result<usize> {
        if let Some(i) = self.asset_keys.get(key) {
            return Ok(i);
        }
        let t = resolve()?;
        if self.model == Model::BinancePm {
            crate::binance::check_asset(self.engine, &t)?;
            if self.book.detail {
                self.names.push_asset(t.name);
            }
        }
        let group = self.group(t.group, t.table);
        self.asset_keys.push(key);
        self.book.assets.push(AssetSlot::new(&t, group));
        Ok(self.book.assets.len() - 1)
    }

    /// See [`Book::add_loan`].
    pub(crate) fn loan(&mut self, a: usize, loan: Loan) {
        self.book.add_loan(a, loan);
    }

    /// See [`Book::add_balance`].
    pub(crate) fn balance(&mut self, a: usize, qty: f64) {
        self.book.add_balance(a, qty);
    }

    /// Position `i` of the input, its underlying and settle asset slots `b`, `s`;
    /// for a contract its symbol's id (equal ids net in the basis add-on) and mark.
    pub(crate) fn position(
        &mut self,
        i: usize,
        pos: PositionRef<'_>,
        b: usize,
        s: usize,
        symbol: u32,
        mark: Option<f64>,
    ) -> Result<()> {
        let g = self.book.assets[b].group;
        self.book.groups[g].listed = true;
        let (pb, ps) = (self.book.assets[b].price, self.book.assets[s].price);
        let binance = self.model == Model::BinancePm;
        if binance && self.book.detail {
            self.names.push_symbol(pos.symbol());
        }
        match pos {
            PositionRef::Linear { .. } | PositionRef::Inverse { .. } => {
                let brackets = if binance {
                    let kind =
                        if matches!(pos, PositionRef::Inverse { .. }) { BracketKind::Coinm } else { BracketKind::Usdm };
                    self.bracket_table(kind, symbol, pos.symbol())?
                } else {
                    u32::MAX
                };
                let netted = match self.netted_keys.get((g, symbol)) {
                    Some(n) => n,
                    None => {
                        self.netted_keys.push((g, symbol));
                        self.book.contracts.push(NettedContract { group: g, symbol, delta: 0.0 });
                        self.book.contracts.len() - 1
                    }
                };
                let slot = self.book.add_contract(self.engine, pos, mark, b, s, netted, symbol, brackets);
                self.book.slots.push(slot);
            }
            PositionRef::Option { .. } if binance => {
                return Err(CoreError::invalid(
                    format!("positions[{i}].type"),
                    format!("binance_pm has no option formula (Binance publishes none), got option {}", pos.symbol()),
                ));
            }
            PositionRef::Option { settle, qty, .. } => {
                let settle_group = self.book.assets[s].group;
                if self.engine.group_params(&self.book.groups[settle_group]).price_range != 0.0 {
                    return Err(CoreError::invalid(
                        format!("positions[{i}].settle"),
                        format!("an option must settle in a stablecoin (a group with price_range = 0), got {settle:?}"),
                    ));
                }
                let series = self.series(g, pos, pb, ps)?;
                self.book.assets[s].settled += qty * series.value;
                self.book.add_option_terms(g, qty, &series);
                self.book.slots.push(BookSlot::Option(self.book.options.len()));
                self.book.options.push(OptionSlot { group: g, position: i, settle: s, qty, series });
            }
        }
        Ok(())
    }

    /// The bracket table of contract symbol id `symbol` (named `name`), looked up
    /// once per id and kind while this builder lives: a batch's ids are its
    /// dictionary codes, the same in every account a worker builds.
    fn bracket_table(&mut self, kind: BracketKind, symbol: u32, name: &str) -> Result<u32> {
        let slot = 2 * symbol as usize + usize::from(kind == BracketKind::Coinm);
        match self.bracket_tables.get(slot) {
            Some(&t) if t != u32::MAX => Ok(t),
            _ => {
                let t = crate::binance::bracket_table(self.engine, kind, name)?;
                if self.bracket_tables.len() <= slot {
                    self.bracket_tables.resize(slot + 1, u32::MAX);
                }
                self.bracket_tables[slot] = t;
                Ok(t)
            }
        }
    }

    /// Close the book: resolve the offsets between its listed groups, release the
    /// series cache and publish the series this book priced.
    pub(crate) fn finish(&mut self) {
        self.cache = None;
        if !self.names.is_empty() {
            self.book.names = Some(Arc::new(std::mem::take(&mut self.names)));
        }
        if !self.priced.is_empty() {
            self.market.series.insert_all(self.priced.iter().map(|(s, t, x)| (s.as_str(), t.clone(), Arc::clone(x))));
            self.priced.clear();
        }
        // Into the buffer the last book left (the batch reuses one builder per worker).
        let mut buffer = std::mem::take(&mut self.offset_buffer);
        buffer.clear();
        buffer.extend(self.engine.offset_pairs(|name, t| self.find_group(name, t), &self.book.groups));
        self.offset_buffer = std::mem::replace(&mut self.book.offset_pairs, buffer);
    }

    /// The option's series on this snapshot: from the market's cache, from this
    /// book's own new series, or priced now.
    fn series(&mut self, g: usize, pos: PositionRef<'_>, pb: f64, ps: f64) -> Result<Arc<Series>> {
        let PositionRef::Option { symbol, underlying, settle, kind, strike, expiry, .. } = pos else {
            unreachable!("series() is called for options only")
        };
        let engine = self.engine.id;
        let market = self.market;
        let cache = self.cache.get_or_insert_with(|| market.series.read());
        let priced = &self.priced;
        let matches = |i: &usize| {
            let (s, t, _) = &priced[*i];
            s == symbol && t.matches(engine, underlying, settle, kind, strike, expiry)
        };
        let found = cache.get(engine, symbol, underlying, settle, kind, strike, expiry).or_else(|| {
            let mine = if priced.len() <= LINEAR_LOOKUP {
                (0..priced.len()).find(matches)
            } else {
                self.priced_index.get(symbol).and_then(|ix| ix.iter().copied().find(matches))
            };
            mine.map(|i| Arc::clone(&priced[i].2))
        });
        if let Some(series) = found {
            return Ok(series);
        }
        let (terms, series) = self.engine.price_option(&self.book, g, pos, market, pb, ps)?;
        let series = Arc::new(series);
        self.priced.push((symbol.to_string(), terms, Arc::clone(&series)));
        if self.priced.len() > LINEAR_LOOKUP {
            if self.priced_index.is_empty() {
                for (i, (s, _, _)) in self.priced.iter().enumerate() {
                    self.priced_index.entry(s.clone()).or_default().push(i);
                }
            } else {
                self.priced_index.entry(symbol.to_string()).or_default().push(self.priced.len() - 1);
            }
        }
        Ok(series)
    }
}
