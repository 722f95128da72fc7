//! The portfolio-margin engine (METHODOLOGY.md §2–§4).
//!
//! Margining an account is two steps:
//! 1. [`Engine::book`] resolves the portfolio against a market: prices, marks,
//!    per-asset equity, each group's dollar deltas and long balances, and each
//!    option's P&L per unit over its group's scenarios. This is the part that
//!    depends on positions × scenarios.
//! 2. [`Engine::evaluate`] nets the book: spot in use, financed spot, the scan,
//!    the short-option minimum, offsets, systemic scenarios, add-ons, collateral,
//!    ratio and status. Linear exposure enters every scenario as `D·r`, so this
//!    step costs O(groups × scenarios) plus the option vectors.

use crate::addons;
use crate::collateral::adjusted_value;
use crate::error::{CoreError, Result};
use crate::grid::{scan, Grid, Scenario};
use crate::market::Market;
use crate::offsets::{offset_credit, OffsetLeg};
use crate::params::{GroupParams, RiskParams};
use crate::portfolio::{OptionKind, Portfolio, Position};
use crate::pricing::YEAR_SECONDS;
use crate::result::{GroupResult, MarginResult};
use crate::series::{Revaluation, Series, SeriesTerms};
use rustc_hash::FxHashMap as HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Below this an MM is floating-point dust and counts as 0 (USD).
pub const MM_DUST: f64 = 1e-9;
/// Relative tolerance of the worst-scenario choice (§3 step 6).
pub const SCAN_TOL: f64 = 1e-9;

struct GroupTable {
    params: GroupParams,
    grid: Grid,
}

/// A compiled risk profile: grids and tables built once, shared by every call.
pub struct Engine {
    params: RiskParams,
    /// `[0]` is `"*"`; then one per named group.
    tables: Vec<GroupTable>,
    table_index: HashMap<String, usize>,
    /// Identifies this engine's entries in a market's series cache.
    id: u64,
}

static NEXT_ENGINE_ID: AtomicU64 = AtomicU64::new(1);

/// An asset the account touches: wallet balance plus what settles in it.
#[derive(Debug, Clone)]
pub struct AssetSlot {
    pub name: String,
    /// Index price, USD.
    pub price: f64,
    /// Wallet balance (asset units).
    pub wallet: f64,
    /// `e_a`: wallet + UPnL + option values settling in the asset (asset units).
    pub equity: f64,
    pub group: usize,
    /// First collateral tier rate > 0.
    pub collateral: bool,
}

/// What nets in the basis add-on: one entry per contract symbol or per asset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BasisKey {
    /// A contract symbol, interned per book (`Book::symbols`).
    Symbol(u32),
    Asset(usize),
}

#[derive(Debug, Clone)]
pub struct GroupSlot {
    pub name: String,
    /// Listed in the result: holds a balance entry or is a position's underlying.
    pub listed: bool,
    table: usize,
    /// Dollar delta of contracts and liabilities (USD).
    pub d_lin: f64,
    /// Dollar delta of options (USD).
    pub d_opt: f64,
    /// Σ|item dollar deltas| of contracts, options and liabilities (USD), for the scan tolerance.
    pub abs_items: f64,
    /// Any option position, whatever its quantity: the grid has a vol dimension.
    pub has_options: bool,
    /// Σ|q|·P_b over short options (USD).
    pub short_option_notional: f64,
    /// Long wallet balances (asset index) in the group.
    pub longs: Vec<usize>,
    pub basis: Vec<(BasisKey, f64)>,
    pub options: Vec<usize>,
}

/// An option position and its series priced on the snapshot (shared through the market's cache).
#[derive(Debug, Clone)]
pub struct OptionSlot {
    pub group: usize,
    /// Interned symbol (`Book::symbols`).
    pub symbol: u32,
    /// Index of the position in the portfolio.
    pub position: usize,
    pub qty: f64,
    pub series: Arc<Series>,
}

/// One position of the portfolio, in order, as the book resolved it.
#[derive(Debug, Clone)]
pub enum BookSlot {
    /// A linear or inverse contract: its dollar delta (USD) and underlying price (USD).
    Linear { group: usize, symbol: u32, dollar_delta: f64, underlying_price: f64 },
    /// An option: index into `Book::options`.
    Option(usize),
}

/// A portfolio resolved against a market snapshot.
#[derive(Debug, Clone)]
pub struct Book {
    /// Distinct contract symbols, in the order first met (indexed by `BasisKey::Symbol`).
    pub symbols: Vec<String>,
    pub assets: Vec<AssetSlot>,
    pub groups: Vec<GroupSlot>,
    pub options: Vec<OptionSlot>,
    /// One entry per position, in the portfolio's order.
    pub slots: Vec<BookSlot>,
}

impl Engine {
    pub fn new(params: RiskParams) -> Self {
        let mut tables =
            vec![GroupTable { grid: Grid::new(&params.default_group), params: params.default_group.clone() }];
        let mut table_index = HashMap::default();
        let mut names: Vec<&String> = params.groups.keys().collect();
        names.sort();
        for g in names {
            let gp = &params.groups[g];
            table_index.insert(g.clone(), tables.len());
            tables.push(GroupTable { grid: Grid::new(gp), params: gp.clone() });
        }
        Engine { params, tables, table_index, id: NEXT_ENGINE_ID.fetch_add(1, Ordering::Relaxed) }
    }

    pub fn params(&self) -> &RiskParams {
        &self.params
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

    /// Greeks per position and per group (units in `greeks.rs`).
    pub fn greeks(&self, portfolio: &Portfolio, market: &Market) -> Result<crate::greeks::GreeksResult> {
        Ok(crate::greeks::greeks(&self.book(portfolio, market)?))
    }

    /// Resolve a portfolio against a market (step 1 of the module doc).
    pub fn book(&self, portfolio: &Portfolio, market: &Market) -> Result<Book> {
        let mut b = BookBuilder {
            engine: self,
            symbol_ids: HashMap::default(),
            book: Book {
                symbols: Vec::new(),
                assets: Vec::new(),
                groups: Vec::new(),
                options: Vec::new(),
                slots: Vec::with_capacity(portfolio.positions.len()),
            },
        };

        for (asset, qty) in &portfolio.balances {
            let a = b.asset(asset, market, || crate::input::path("balances", asset))?;
            b.book.groups[b.book.assets[a].group].listed = true;
            b.book.assets[a].wallet += qty;
            b.book.assets[a].equity += qty;
        }
        for (i, pos) in portfolio.positions.iter().enumerate() {
            b.position(i, pos, market)?;
        }
        // Long balances and liabilities, once wallets are summed.
        for a in 0..b.book.assets.len() {
            let (wallet, price, g) = (b.book.assets[a].wallet, b.book.assets[a].price, b.book.assets[a].group);
            let group = &mut b.book.groups[g];
            if wallet > 0.0 {
                group.longs.push(a);
            } else if wallet < 0.0 {
                let d = wallet * price;
                group.d_lin += d;
                group.abs_items += d.abs();
                add_basis(&mut group.basis, BasisKey::Asset(a), d);
            }
        }
        Ok(b.book)
    }

    /// Net a book into the account's margin (step 2 of the module doc).
    pub fn evaluate(&self, book: &Book) -> MarginResult {
        let p = &self.params;
        let ng = book.groups.len();

        // §2 equity and adjusted equity.
        let mut equity = 0.0;
        let mut adjusted_equity = 0.0;
        let mut negative_wallet = false;
        let mut borrowing = vec![0.0; ng]; // Λ_g
        let mut borrow_margin = 0.0;
        for a in &book.assets {
            let value = a.equity * a.price;
            equity += value;
            adjusted_equity += adjusted_value(value, p.collateral(&a.name));
            borrowing[a.group] += (-value).max(0.0);
            if a.wallet < 0.0 {
                negative_wallet = true;
                borrow_margin += p.borrow_mmr(&a.name) * (-a.wallet) * a.price;
            }
        }

        // §3 steps 1–2: spot in use.
        let spot_long: Vec<f64> = book
            .groups
            .iter()
            .map(|g| g.longs.iter().map(|&a| book.assets[a].wallet * book.assets[a].price).sum())
            .collect();
        let in_use: Vec<f64> = book
            .groups
            .iter()
            .zip(&spot_long)
            .map(|(g, &s)| {
                let d_rest = g.d_lin + g.d_opt;
                if d_rest < 0.0 && s > 0.0 {
                    s.min(-d_rest)
                } else {
                    0.0
                }
            })
            .collect();

        // §3 step 3: financed spot, stablecoins first.
        let borrowed: f64 = (0..ng).map(|g| (borrowing[g] - in_use[g]).max(0.0)).sum();
        let free_fraction = |g: usize| if spot_long[g] > 0.0 { 1.0 - in_use[g] / spot_long[g] } else { 0.0 };
        let stable = |g: usize| self.group_params(&book.groups[g]).price_range == 0.0;
        let (mut free_stable, mut free_risky) = (0.0, 0.0);
        for (g, group) in book.groups.iter().enumerate() {
            for &a in &group.longs {
                let asset = &book.assets[a];
                if asset.collateral {
                    let free = asset.wallet * asset.price * free_fraction(g);
                    if stable(g) {
                        free_stable += free
                    } else {
                        free_risky += free
                    }
                }
            }
        }
        let fraction = |num: f64, den: f64| if den > 0.0 { (num / den).min(1.0) } else { 0.0 };
        let phi_stable = fraction(borrowed, free_stable);
        let phi_risky = fraction((borrowed - free_stable).max(0.0), free_risky);

        let mut groups = Vec::with_capacity(ng);
        let mut legs = Vec::with_capacity(ng);
        let mut names: Vec<&str> = Vec::with_capacity(ng);
        let mut scanned_delta = vec![0.0; ng]; // linear coefficient of each group's P&L
        let (mut sum_req, mut sum_som, mut sum_basis, mut sum_conc) = (0.0, 0.0, 0.0, 0.0);
        let mut pnl = Vec::new();
        for (g, group) in book.groups.iter().enumerate() {
            let gp = self.group_params(group);
            let phi = if stable(g) { phi_stable } else { phi_risky };
            // Each long balance: its in-use fraction plus the financed part of the rest.
            let mut basis_items = group.basis.clone();
            let mut financed = 0.0;
            let mut scanned_spot = 0.0;
            for &a in &group.longs {
                let asset = &book.assets[a];
                let value = asset.wallet * asset.price;
                let fin = if asset.collateral { value * free_fraction(g) * phi } else { 0.0 };
                let scanned = if spot_long[g] > 0.0 { value * in_use[g] / spot_long[g] } else { 0.0 } + fin;
                financed += fin;
                scanned_spot += scanned;
                add_basis(&mut basis_items, BasisKey::Asset(a), scanned);
            }
            let d_lin = group.d_lin + in_use[g] + financed;
            scanned_delta[g] = d_lin;
            let delta = d_lin + group.d_opt;

            // §3 steps 5–6: the grid.
            let (scan_loss, worst) = if gp.price_range > 0.0 {
                let sc = self.scenarios(group);
                pnl.clear();
                pnl.extend(sc.iter().map(|s| d_lin * s.r));
                for &o in &group.options {
                    let opt = &book.options[o];
                    let q = opt.qty;
                    for (x, u) in pnl.iter_mut().zip(&opt.series.grid_pnl) {
                        *x += q * u;
                    }
                }
                let tol = SCAN_TOL * (1.0 + group.abs_items + scanned_spot);
                let (loss, k) = scan(&pnl, sc, tol);
                (loss, (sc[k].r, sc[k].v))
            } else {
                (0.0, (0.0, 0.0))
            };
            // §3 step 7.
            let som = gp.som_rate * group.short_option_notional;
            let requirement = scan_loss.max(som);
            // §4 add-ons.
            let basis = addons::basis(gp.basis_rate, basis_items.iter().map(|(_, d)| *d));
            let concentration = addons::concentration(delta.abs(), &gp.concentration);

            if group.listed {
                sum_req += requirement;
                sum_som += som;
                sum_basis += basis;
                sum_conc += concentration;
                names.push(group.name.as_str());
                legs.push(OffsetLeg { requirement, delta, price_range: gp.price_range });
                groups.push(GroupResult {
                    name: group.name.clone(),
                    scan_loss,
                    requirement,
                    delta,
                    spot_in_use: in_use[g],
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
        let offset = offset_credit(&p.offsets, &names, &legs);
        let scan_total = (sum_req - offset).max(sum_som);
        let systemic = self.systemic_loss(book, &scanned_delta);
        let mm_risk = scan_total.max(systemic);

        let mut mm = mm_risk + sum_basis + sum_conc + borrow_margin;
        if mm < MM_DUST {
            mm = 0.0;
        }
        let im = p.im_factor * mm;
        let uni_mmr = if mm > 0.0 {
            adjusted_equity / mm
        } else if adjusted_equity >= 0.0 {
            f64::INFINITY
        } else {
            f64::NEG_INFINITY
        };
        let status = if equity < 0.0 || (equity == 0.0 && negative_wallet) {
            "BANKRUPT".to_string()
        } else {
            p.status_for(uni_mmr).to_string()
        };
        MarginResult {
            equity,
            adjusted_equity,
            maintenance_margin: mm,
            initial_margin: im,
            available: adjusted_equity - im,
            uni_mmr,
            status,
            scan: scan_total,
            systemic,
            offset_credit: offset,
            borrow_margin,
            groups,
        }
    }

    /// `SYS`: the worst systemic scenario's loss over the scanned exposure, ≥ 0.
    fn systemic_loss(&self, book: &Book, scanned_delta: &[f64]) -> f64 {
        let mut worst = 0.0_f64;
        for (e, s) in self.params.systemic.iter().enumerate() {
            let mut pnl = 0.0;
            for (g, group) in book.groups.iter().enumerate() {
                pnl += scanned_delta[g] * self.systemic_return(s, &group.name, self.group_params(group));
                for &o in &group.options {
                    let opt = &book.options[o];
                    pnl += opt.qty * opt.series.systemic_pnl[e];
                }
            }
            worst = worst.max(-pnl);
        }
        worst
    }

    /// A group's return in a systemic scenario: its override, else `multiple · price_range`.
    fn systemic_return(&self, s: &crate::params::SystemicScenario, group: &str, gp: &GroupParams) -> f64 {
        s.overrides.iter().find(|(n, _)| n == group).map_or(s.multiple * gp.price_range, |(_, r)| *r)
    }

    /// Price an option series for a group: value, greeks, P&L per unit on the
    /// group's grid (none when the range is 0) and in each systemic scenario.
    #[allow(clippy::too_many_arguments)]
    fn price_series(
        &self,
        group: &GroupSlot,
        kind: OptionKind,
        underlying_price: f64,
        settle_price: f64,
        strike: f64,
        vol: f64,
        tau: f64,
    ) -> Series {
        let table = &self.tables[group.table];
        let grid = if table.params.price_range > 0.0 { table.grid.scenarios(true) } else { &[] };
        let systemic: Vec<(f64, f64)> = self
            .params
            .systemic
            .iter()
            .map(|s| (self.systemic_return(s, &group.name, &table.params), s.vol_shock))
            .collect();
        let at = Revaluation { grid, systemic: &systemic, vol_floor: self.params.vol_floor };
        Series::price(kind, underlying_price, settle_price, strike, vol, tau, &at)
    }
}

fn add_basis(items: &mut Vec<(BasisKey, f64)>, key: BasisKey, d: f64) {
    match items.iter_mut().find(|(k, _)| *k == key) {
        Some((_, x)) => *x += d,
        None => items.push((key, d)),
    }
}

struct BookBuilder<'e, 'p> {
    engine: &'e Engine,
    symbol_ids: HashMap<&'p str, u32>,
    book: Book,
}

impl<'p> BookBuilder<'_, 'p> {
    fn intern(&mut self, s: &'p str) -> u32 {
        let next = self.symbol_ids.len() as u32;
        let id = *self.symbol_ids.entry(s).or_insert(next);
        if id == next {
            self.book.symbols.push(s.to_string());
        }
        id
    }

    fn group(&mut self, name: &str) -> usize {
        if let Some(i) = self.book.groups.iter().position(|g| g.name == name) {
            return i;
        }
        self.book.groups.push(GroupSlot {
            name: name.to_string(),
            listed: false,
            table: self.engine.table_of(name),
            d_lin: 0.0,
            d_opt: 0.0,
            abs_items: 0.0,
            has_options: false,
            short_option_notional: 0.0,
            longs: Vec::new(),
            basis: Vec::new(),
            options: Vec::new(),
        });
        self.book.groups.len() - 1
    }

    /// The slot of an asset, creating it (and its group) on first use.
    /// A linear or inverse contract of dollar delta `d` in group `g`.
    fn contract(&mut self, g: usize, symbol: &'p str, d: f64, underlying_price: f64) {
        let id = self.intern(symbol);
        let group = &mut self.book.groups[g];
        group.d_lin += d;
        group.abs_items += d.abs();
        add_basis(&mut group.basis, BasisKey::Symbol(id), d);
        self.book.slots.push(BookSlot::Linear { group: g, symbol: id, dollar_delta: d, underlying_price });
    }

    /// `field` names the input on error only (building it costs more than the lookup).
    fn asset(&mut self, name: &str, market: &Market, field: impl FnOnce() -> String) -> Result<usize> {
        if let Some(i) = self.book.assets.iter().position(|a| a.name == name) {
            return Ok(i);
        }
        let price = match market.prices.get(name) {
            Some(&p) => p,
            None => return Err(CoreError::missing(field(), format!("no price for {name} in market.prices"))),
        };
        let p = &self.engine.params;
        let group = self.group(p.group_of(name));
        self.book.assets.push(AssetSlot {
            name: name.to_string(),
            price,
            wallet: 0.0,
            equity: 0.0,
            group,
            collateral: p.is_collateral(name),
        });
        Ok(self.book.assets.len() - 1)
    }

    fn position(&mut self, i: usize, pos: &'p Position, market: &Market) -> Result<()> {
        let at = |k: &str| format!("positions[{i}].{k}");
        let b = self.asset(pos.underlying(), market, || at("underlying"))?;
        let s = self.asset(pos.settle(), market, || at("settle"))?;
        let g = self.book.assets[b].group;
        self.book.groups[g].listed = true;
        let (pb, ps) = (self.book.assets[b].price, self.book.assets[s].price);
        match pos {
            Position::Linear { symbol, qty, entry_price, .. } => {
                let mark = market.marks.get(symbol).copied().unwrap_or(pb / ps);
                self.book.assets[s].equity += qty * (mark - entry_price);
                let d = qty * mark * ps;
                self.contract(g, symbol, d, pb);
            }
            Position::Inverse { symbol, contract_size, contracts, entry_price, .. } => {
                let mark = market.marks.get(symbol).copied().unwrap_or(pb);
                let notional = contracts * contract_size;
                self.book.assets[b].equity += notional * (1.0 / entry_price - 1.0 / mark);
                let d = notional * pb / entry_price;
                self.contract(g, symbol, d, pb);
            }
            Position::Option { symbol, underlying, settle, kind, strike, expiry, qty } => {
                let settle_group = self.book.assets[s].group;
                if self.engine.group_params(&self.book.groups[settle_group]).price_range != 0.0 {
                    return Err(CoreError::invalid(
                        at("settle"),
                        format!("an option must settle in a stablecoin (a group with price_range = 0), got {settle:?}"),
                    ));
                }
                let engine = self.engine.id;
                let series = match market.series.get(engine, symbol, underlying, settle, *kind, *strike, *expiry) {
                    Some(series) => series,
                    None => {
                        let vol = match market.vols.get(symbol).or_else(|| market.vols.get(underlying)) {
                            Some(&v) => v,
                            None => {
                                return Err(CoreError::missing(
                                    crate::input::path("market.vols", symbol),
                                    format!("no vol for {symbol} or {underlying} in market.vols"),
                                ))
                            }
                        };
                        let tau = (expiry - market.time) / YEAR_SECONDS;
                        let priced = self.engine.price_series(&self.book.groups[g], *kind, pb, ps, *strike, vol, tau);
                        let series = Arc::new(priced);
                        let terms = SeriesTerms {
                            engine,
                            underlying: underlying.clone(),
                            settle: settle.clone(),
                            kind: *kind,
                            strike: *strike,
                            expiry: *expiry,
                        };
                        market.series.insert(symbol, terms, Arc::clone(&series));
                        series
                    }
                };
                self.book.assets[s].equity += qty * series.value;
                let d = qty * series.delta * pb;
                let group = &mut self.book.groups[g];
                group.d_opt += d;
                group.abs_items += d.abs();
                group.has_options = true;
                if *qty < 0.0 {
                    group.short_option_notional += qty.abs() * pb;
                }
                group.options.push(self.book.options.len());
                let symbol = self.intern(symbol);
                self.book.slots.push(BookSlot::Option(self.book.options.len()));
                self.book.options.push(OptionSlot { group: g, symbol, position: i, qty: *qty, series });
            }
        }
        Ok(())
    }
}
