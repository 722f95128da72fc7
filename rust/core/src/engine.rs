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
use crate::params::{AssetParams, GroupParams, RiskParams};
use crate::portfolio::{OptionKind, Portfolio, Position};
use crate::pricing::YEAR_SECONDS;
use crate::result::{GroupResult, MarginResult};
use crate::series::{Revaluation, Series, SeriesReader, SeriesTerms};
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
    /// The profile's assets, indexed once so a book resolves each asset a single time.
    asset_table: Vec<AssetParams>,
    asset_index: HashMap<String, u32>,
    /// Identifies this engine's entries in a market's series cache.
    id: u64,
}

static NEXT_ENGINE_ID: AtomicU64 = AtomicU64::new(1);

/// An asset the account touches: wallet balance plus what settles in it.
#[derive(Debug, Clone)]
pub struct AssetSlot {
    /// Index of the asset's parameters in the engine (`None`: not in the profile).
    pub params: Option<u32>,
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
    /// A contract symbol, interned per book.
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
    /// Σ value of long wallet balances `S_g` (USD).
    pub spot_long: f64,
}

/// An option position and its series priced on the snapshot (shared through the market's cache).
#[derive(Debug, Clone)]
pub struct OptionSlot {
    pub group: usize,
    /// Index of the position in the portfolio.
    pub position: usize,
    pub qty: f64,
    pub series: Arc<Series>,
}

/// One position of the portfolio, in order, as the book resolved it.
#[derive(Debug, Clone)]
pub enum BookSlot {
    /// A linear or inverse contract: its dollar delta (USD) and underlying price (USD).
    Linear { group: usize, dollar_delta: f64, underlying_price: f64 },
    /// An option: index into `Book::options`.
    Option(usize),
}

/// A portfolio resolved against a market snapshot.
#[derive(Debug, Clone)]
pub struct Book {
    pub assets: Vec<AssetSlot>,
    pub groups: Vec<GroupSlot>,
    pub options: Vec<OptionSlot>,
    /// One entry per position, in the portfolio's order.
    pub slots: Vec<BookSlot>,
    /// Dollar deltas netted per instrument for the basis add-on: `(group, key, USD)`.
    pub basis: Vec<(usize, BasisKey, f64)>,
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
        let mut asset_names: Vec<&String> = params.assets.keys().collect();
        asset_names.sort();
        let asset_table = asset_names.iter().map(|a| params.assets[*a].clone()).collect();
        let asset_index = asset_names.iter().enumerate().map(|(i, a)| ((*a).clone(), i as u32)).collect();
        Engine {
            tables,
            table_index,
            asset_table,
            asset_index,
            id: NEXT_ENGINE_ID.fetch_add(1, Ordering::Relaxed),
            params,
        }
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
        Ok(crate::greeks::greeks(portfolio, &self.book(portfolio, market)?))
    }

    /// Resolve a portfolio against a market (step 1 of the module doc).
    pub fn book<'p>(&self, portfolio: &'p Portfolio, market: &Market) -> Result<Book> {
        let mut b = BookBuilder {
            engine: self,
            symbol_ids: HashMap::default(),
            asset_names: Vec::new(),
            cache: market.series.read(),
            priced: Vec::new(),
            book: Book {
                assets: Vec::new(),
                groups: Vec::new(),
                options: Vec::new(),
                slots: Vec::with_capacity(portfolio.positions.len()),
                basis: Vec::new(),
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
                group.spot_long += wallet * price;
            } else if wallet < 0.0 {
                let d = wallet * price;
                group.d_lin += d;
                group.abs_items += d.abs();
                add_basis(&mut b.book.basis, g, BasisKey::Asset(a), d);
            }
        }
        let BookBuilder { cache, priced, book, .. } = b;
        drop(cache);
        if !priced.is_empty() {
            market.series.insert_all(priced);
        }
        Ok(book)
    }

    /// Net a book into the account's margin (step 2 of the module doc).
    pub fn evaluate(&self, book: &Book) -> MarginResult {
        let p = &self.params;
        let ng = book.groups.len();

        // §2 equity and adjusted equity.
        let mut equity = 0.0;
        let mut adjusted_equity = 0.0;
        let mut negative_wallet = false;
        // Per group: Λ_g (borrowing), u_g (spot in use), then the scanned linear delta.
        let mut net = vec![Net::default(); ng];
        let mut borrow_margin = 0.0;
        for a in &book.assets {
            let value = a.equity * a.price;
            equity += value;
            let params = a.params.map(|i| &self.asset_table[i as usize]);
            adjusted_equity += adjusted_value(value, params.map_or(&[], |ap| ap.collateral.as_slice()));
            net[a.group].borrowing += (-value).max(0.0);
            if a.wallet < 0.0 {
                negative_wallet = true;
                let rate = params.and_then(|ap| ap.borrow_mmr).unwrap_or(p.borrow_mmr);
                borrow_margin += rate * (-a.wallet) * a.price;
            }
        }

        // §3 steps 1–2: spot in use.
        for (n, g) in net.iter_mut().zip(&book.groups) {
            let d_rest = g.d_lin + g.d_opt;
            n.in_use = if d_rest < 0.0 && g.spot_long > 0.0 { g.spot_long.min(-d_rest) } else { 0.0 };
        }

        // §3 step 3: financed spot, stablecoins first.
        let borrowed: f64 = net.iter().map(|n| (n.borrowing - n.in_use).max(0.0)).sum();
        // u_g / S_g: the in-use fraction of each of the group's long balances.
        for (n, g) in net.iter_mut().zip(&book.groups) {
            n.in_use_fraction = if g.spot_long > 0.0 { n.in_use / g.spot_long } else { 0.0 };
        }
        let stable = |g: usize| self.group_params(&book.groups[g]).price_range == 0.0;
        let (mut free_stable, mut free_risky) = (0.0, 0.0);
        for asset in book.assets.iter().filter(|a| a.wallet > 0.0 && a.collateral) {
            let free = asset.wallet * asset.price * (1.0 - net[asset.group].in_use_fraction);
            if stable(asset.group) {
                free_stable += free
            } else {
                free_risky += free
            }
        }
        let fraction = |num: f64, den: f64| if den > 0.0 { (num / den).min(1.0) } else { 0.0 };
        let phi_stable = fraction(borrowed, free_stable);
        let phi_risky = fraction((borrowed - free_stable).max(0.0), free_risky);

        let mut groups = Vec::with_capacity(ng);
        let mut legs = Vec::with_capacity(ng);
        let mut names: Vec<&str> = Vec::with_capacity(ng);
        let (mut sum_req, mut sum_som, mut sum_basis, mut sum_conc) = (0.0, 0.0, 0.0, 0.0);
        let mut pnl = Vec::new();
        for (g, group) in book.groups.iter().enumerate() {
            let gp = self.group_params(group);
            let phi = if stable(g) { phi_stable } else { phi_risky };
            // Long balances: the in-use fraction of each, plus the financed part of the
            // free rest of each collateral balance.
            let u = net[g].in_use_fraction;
            let financed: f64 = book
                .assets
                .iter()
                .filter(|a| a.group == g && a.wallet > 0.0 && a.collateral)
                .map(|a| a.wallet * a.price * (1.0 - u) * phi)
                .sum();
            let in_use = net[g].in_use;
            let scanned_spot = in_use + financed;
            let d_lin = group.d_lin + scanned_spot;
            net[g].scanned_delta = d_lin;
            let delta = d_lin + group.d_opt;

            // §3 steps 5–6: the grid.
            let (scan_loss, worst) = if gp.price_range > 0.0 {
                let sc = self.scenarios(group);
                pnl.clear();
                pnl.extend(sc.iter().map(|s| d_lin * s.r));
                for opt in book.options.iter().filter(|o| o.group == g) {
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
            // Scanned long balances are all positive and never share a key with a liability
            // (a wallet is long or borrowed), so their sum nets the same as each alone.
            let items = book.basis.iter().filter(|(bg, _, _)| *bg == g).map(|(_, _, d)| *d);
            let basis = addons::basis(gp.basis_rate, items.chain([scanned_spot]));
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
                    spot_in_use: in_use,
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
        let systemic = self.systemic_loss(book, &net);
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
    fn systemic_loss(&self, book: &Book, net: &[Net]) -> f64 {
        let mut worst = 0.0_f64;
        for (e, s) in self.params.systemic.iter().enumerate() {
            let mut pnl = 0.0;
            for (g, group) in book.groups.iter().enumerate() {
                pnl += net[g].scanned_delta * self.systemic_return(s, &group.name, self.group_params(group));
            }
            for opt in &book.options {
                pnl += opt.qty * opt.series.systemic_pnl[e];
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

fn add_basis(items: &mut Vec<(usize, BasisKey, f64)>, group: usize, key: BasisKey, d: f64) {
    match items.iter_mut().find(|(g, k, _)| *g == group && *k == key) {
        Some((_, _, x)) => *x += d,
        None => items.push((group, key, d)),
    }
}

/// Per-group scratch of `Engine::evaluate`.
#[derive(Debug, Clone, Copy, Default)]
struct Net {
    /// `Λ_g`: Σ max(0, −e_a·P_a) over the group's assets (USD).
    borrowing: f64,
    /// `u_g`: long spot recognised as a hedge (USD).
    in_use: f64,
    /// `u_g / S_g` (0 without long spot).
    in_use_fraction: f64,
    /// Linear coefficient of the group's P&L: contracts, liabilities, scanned spot (USD).
    scanned_delta: f64,
}

struct BookBuilder<'e, 'p, 'm> {
    engine: &'e Engine,
    symbol_ids: HashMap<&'p str, u32>,
    /// Names of `book.assets`, in order.
    asset_names: Vec<&'p str>,
    /// The snapshot's priced series, read-locked once for the whole book.
    cache: SeriesReader<'m>,
    /// Series priced by this book, inserted into the cache when it is done.
    priced: Vec<(&'p str, SeriesTerms, Arc<Series>)>,
    book: Book,
}

impl<'p> BookBuilder<'_, 'p, '_> {
    fn intern(&mut self, s: &'p str) -> u32 {
        let next = self.symbol_ids.len() as u32;
        *self.symbol_ids.entry(s).or_insert(next)
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
            spot_long: 0.0,
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
        add_basis(&mut self.book.basis, g, BasisKey::Symbol(id), d);
        self.book.slots.push(BookSlot::Linear { group: g, dollar_delta: d, underlying_price });
    }

    /// `field` names the input on error only (building it costs more than the lookup).
    fn asset(&mut self, name: &'p str, market: &Market, field: impl FnOnce() -> String) -> Result<usize> {
        if let Some(i) = self.asset_names.iter().position(|a| *a == name) {
            return Ok(i);
        }
        let price = match market.prices.get(name) {
            Some(&p) => p,
            None => return Err(CoreError::missing(field(), format!("no price for {name} in market.prices"))),
        };
        let p = &self.engine.params;
        let group = self.group(p.group_of(name));
        self.asset_names.push(name);
        self.book.assets.push(AssetSlot {
            params: self.engine.asset_index.get(name).copied(),
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
                let found = self.cache.get(engine, symbol, underlying, settle, *kind, *strike, *expiry).or_else(|| {
                    let new = self.priced.iter().find(|(s, t, _)| {
                        *s == symbol && t.matches(engine, underlying, settle, *kind, *strike, *expiry)
                    });
                    new.map(|(_, _, series)| Arc::clone(series))
                });
                let series = match found {
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
                        self.priced.push((symbol, terms, Arc::clone(&series)));
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
                self.book.slots.push(BookSlot::Option(self.book.options.len()));
                self.book.options.push(OptionSlot { group: g, position: i, qty: *qty, series });
            }
        }
        Ok(())
    }
}
