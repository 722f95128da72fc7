//! Option series priced on one market snapshot: value, greeks and scenario
//! P&L per unit, computed once and shared by every portfolio and every call
//! that holds the series (METHODOLOGY.md §1, §3).
//!
//! The cache lives in the [`Market`](crate::Market) it was priced on, so it is
//! per snapshot by construction: changing a price, mark, vol or the time
//! clears it. Entries are keyed by the engine that priced them (grids belong
//! to a profile) and by the series' terms.

use crate::lanes::{revalue, SeriesPoint, LANES};
use crate::portfolio::{OptionKind, PositionRef};
use crate::pricing::{self, at_expiry, black76_delta, black76_parts, intrinsic, Deviation, Parts};
use rustc_hash::FxHashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

/// One option series on one snapshot, per unit of quantity.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub kind: OptionKind,
    /// Forward in settle units, `P_b / P_s`.
    pub forward: f64,
    pub strike: f64,
    /// Market implied vol (annualised).
    pub vol: f64,
    /// Years to expiry; ≤ 0: expired, priced at intrinsic value.
    pub tau: f64,
    /// Underlying and settle index prices, USD.
    pub underlying_price: f64,
    pub settle_price: f64,
    /// Black-76 value, settle units.
    pub value: f64,
    /// `∂V/∂F` (1, 0 or −1 at or past expiry).
    pub delta: f64,
    /// Coin delta change per USD of underlying price, per unit.
    pub gamma: f64,
    /// USD per vol point (0.01 of σ), per unit.
    pub vega: f64,
    /// USD per calendar day, per unit.
    pub theta: f64,
    /// Scenario P&L in USD per unit, in the group grid's order.
    pub grid_pnl: Vec<f64>,
    /// P&L in USD per unit under each systemic scenario of the profile, in order.
    pub systemic_pnl: Vec<f64>,
}

/// Where a series is revalued: its group's grid and systemic scenarios,
/// arranged once per profile for the lanes (`lanes.rs`). A point `(r, v)` moves
/// the forward by `g = 1 + r` and shocks the vol by `v`; each point carries
/// `ln g`, so pricing a series takes one logarithm, `ln(F/K)`, and none a
/// point, and `1 + v`, and the index of its vol shock among the distinct ones
/// (its level), so points of one level share `σ√τ` and its inverse. The points
/// are in output order (the grid's, then the systemic scenarios), padded to
/// whole steps of [`LANES`] with the last point (the padding is priced and dropped).
#[derive(Debug, Clone, PartialEq)]
pub struct Revaluation {
    growth: Vec<f64>,
    ln_growth: Vec<f64>,
    vol_growth: Vec<f64>,
    least_vol_growth: f64,
    level: Vec<u32>,
    /// Each level's `1 + v`, the distinct ones in order of first appearance.
    level_growth: Vec<f64>,
    grid_len: usize,
    /// The group's return in each systemic scenario, in order.
    systemic_returns: Vec<f64>,
    own_point: Option<usize>,
    pub vol_floor: f64,
}

impl Revaluation {
    /// `grid` in grid order, then `systemic` as `(return of the group, vol shock)` per scenario.
    pub fn new(grid: &[crate::grid::Scenario], systemic: &[(f64, f64)], vol_floor: f64) -> Self {
        let mut at = Revaluation {
            growth: Vec::new(),
            ln_growth: Vec::new(),
            vol_growth: Vec::new(),
            least_vol_growth: f64::INFINITY,
            level: Vec::new(),
            level_growth: Vec::new(),
            grid_len: grid.len(),
            systemic_returns: systemic.iter().map(|&(r, _)| r).collect(),
            own_point: None,
            vol_floor,
        };
        for (r, v) in grid.iter().map(|s| (s.r, s.v)).chain(systemic.iter().copied()) {
            let g = 1.0 + r;
            at.growth.push(g);
            at.ln_growth.push(libm::log(g));
            at.vol_growth.push(1.0 + v);
            let level = match at.level_growth.iter().position(|f| f.to_bits() == (1.0 + v).to_bits()) {
                Some(l) => l,
                None => {
                    at.level_growth.push(1.0 + v);
                    at.level_growth.len() - 1
                }
            };
            at.level.push(level as u32);
        }
        at.own_point = (0..at.growth.len()).find(|&i| at.growth[i] == 1.0 && at.vol_growth[i] == 1.0);
        at.least_vol_growth = at.vol_growth.iter().copied().fold(f64::INFINITY, f64::min);
        let n = at.growth.len().div_ceil(LANES) * LANES;
        if let (Some(&g), Some(&lg), Some(&vg), Some(&l)) =
            (at.growth.last(), at.ln_growth.last(), at.vol_growth.last(), at.level.last())
        {
            at.growth.resize(n, g);
            at.ln_growth.resize(n, lg);
            at.vol_growth.resize(n, vg);
            at.level.resize(n, l);
        }
        at
    }

    /// The first point with `r = 0` and `v = 0`, where a series is priced at
    /// its own forward and vol (`1 + r` is exactly 1 and the vol shock 0), if any.
    pub fn own_point(&self) -> Option<usize> {
        self.own_point
    }

    /// Each point's growth factor `1 + r`, padded.
    pub fn growth(&self) -> &[f64] {
        &self.growth
    }

    /// Each point's `ln(1 + r)`, padded.
    pub fn ln_growth(&self) -> &[f64] {
        &self.ln_growth
    }

    /// Each point's vol factor `1 + v`, padded.
    pub fn vol_growth(&self) -> &[f64] {
        &self.vol_growth
    }

    /// Each point's level: its index in [`Self::level_growth`], padded.
    pub fn level(&self) -> &[u32] {
        &self.level
    }

    /// Each level's vol factor `1 + v`.
    pub fn level_growth(&self) -> &[f64] {
        &self.level_growth
    }

    /// The least vol factor of the points (∞ when there are none).
    pub fn least_vol_growth(&self) -> f64 {
        self.least_vol_growth
    }

    pub fn grid_len(&self) -> usize {
        self.grid_len
    }

    pub fn systemic_len(&self) -> usize {
        self.systemic_returns.len()
    }

    /// The group's return in each systemic scenario, in order.
    pub fn systemic_returns(&self) -> &[f64] {
        &self.systemic_returns
    }
}

/// What a series is priced from: its kind and strike, and the snapshot's
/// numbers for it (USD prices, annualised vol, years to expiry).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quote {
    pub kind: OptionKind,
    /// Underlying and settle index prices, USD.
    pub underlying_price: f64,
    pub settle_price: f64,
    pub strike: f64,
    pub vol: f64,
    /// Years to expiry; ≤ 0: expired.
    pub tau: f64,
}

impl Series {
    /// Price a series: its value and greeks once, at the snapshot, then its
    /// scenario P&L at every point of `at` in lanes.
    pub fn price(quote: Quote, at: &Revaluation) -> Self {
        let mut series = Series {
            kind: quote.kind,
            forward: 0.0,
            strike: quote.strike,
            vol: quote.vol,
            tau: quote.tau,
            underlying_price: quote.underlying_price,
            settle_price: quote.settle_price,
            value: 0.0,
            delta: 0.0,
            gamma: 0.0,
            vega: 0.0,
            theta: 0.0,
            grid_pnl: Vec::new(),
            systemic_pnl: Vec::new(),
        };
        series.reprice(quote, at);
        series
    }

    /// What the series was priced from.
    pub fn quote(&self) -> Quote {
        Quote {
            kind: self.kind,
            underlying_price: self.underlying_price,
            settle_price: self.settle_price,
            strike: self.strike,
            vol: self.vol,
            tau: self.tau,
        }
    }

    /// [`Series::price`] into this series, reusing its P&L buffers: a tick
    /// reprices the series it held without allocating.
    pub fn reprice(&mut self, quote: Quote, at: &Revaluation) {
        let Quote { kind, underlying_price, settle_price, strike, vol, tau } = quote;
        let forward = underlying_price / settle_price;
        let ln_moneyness = pricing::ln_moneyness(forward, strike);
        let point = SeriesPoint { kind, strike, forward, ln_moneyness, vol, tau, settle_price };
        let mut greeks = (0.0, 0.0, 0.0, 0.0);
        // The value and greeks at the snapshot: from the lanes' own point when
        // the grid has one (the same bits), else priced here.
        let value = |own: Option<Parts>| {
            if at_expiry(vol, tau) {
                greeks.0 = black76_delta(kind, forward, strike, vol, tau);
                return intrinsic(kind, forward, strike);
            }
            let root = tau.sqrt();
            let dev = Deviation::new(vol * root);
            let parts = own.unwrap_or_else(|| black76_parts(kind, forward, strike, ln_moneyness, dev));
            let pdf = parts.pdf();
            // Γ_F = φ(d1)/(F σ √τ) per forward unit; dF/dP_b = 1/P_s.
            let gamma = pdf / (forward * dev.sd) / settle_price;
            let vega = forward * pdf * root * settle_price * 0.01;
            let theta = -forward * pdf * vol / (2.0 * root) * settle_price / 365.0;
            greeks = (parts.delta(kind), gamma, vega, theta);
            parts.value
        };
        // Every element is written by `revalue`: resizing only sets the lengths.
        self.grid_pnl.resize(at.grid_len(), 0.0);
        self.systemic_pnl.resize(at.systemic_len(), 0.0);
        let value = revalue(&point, at, &mut self.grid_pnl, &mut self.systemic_pnl, value);
        let (delta, gamma, vega, theta) = greeks;
        (self.kind, self.forward, self.strike, self.vol, self.tau) = (kind, forward, strike, vol, tau);
        (self.underlying_price, self.settle_price) = (underlying_price, settle_price);
        (self.value, self.delta, self.gamma, self.vega, self.theta) = (value, delta, gamma, vega, theta);
    }
}

/// What identifies a series within one snapshot: the engine that prices it
/// (grids belong to a profile), its symbol (a vol may be quoted per symbol)
/// and its terms. Borrowed, so a lookup allocates nothing; [`SeriesTerms`] is
/// the same key owned.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SeriesKey<'a> {
    // The numbers first: the derived comparison tries them before the names.
    pub engine: u64,
    pub kind: OptionKind,
    pub strike: f64,
    pub expiry: f64,
    pub symbol: &'a str,
    pub underlying: &'a str,
    pub settle: &'a str,
}

impl<'a> SeriesKey<'a> {
    /// The key of option `pos` priced by engine `engine` (`None` for a contract).
    pub fn of(engine: u64, pos: PositionRef<'a>) -> Option<Self> {
        match pos {
            PositionRef::Option { symbol, underlying, settle, kind, strike, expiry, .. } => {
                Some(SeriesKey { engine, kind, strike, expiry, symbol, underlying, settle })
            }
            _ => None,
        }
    }
}

/// A [`SeriesKey`] owned: what a cache entry keeps.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesTerms {
    engine: u64,
    kind: OptionKind,
    strike: f64,
    expiry: f64,
    symbol: String,
    underlying: String,
    settle: String,
}

impl SeriesTerms {
    pub fn of(key: &SeriesKey<'_>) -> Self {
        let SeriesKey { engine, kind, strike, expiry, symbol, underlying, settle } = *key;
        SeriesTerms {
            engine,
            kind,
            strike,
            expiry,
            symbol: symbol.into(),
            underlying: underlying.into(),
            settle: settle.into(),
        }
    }

    pub fn key(&self) -> SeriesKey<'_> {
        let SeriesTerms { engine, kind, strike, expiry, ref symbol, ref underlying, ref settle } = *self;
        SeriesKey { engine, kind, strike, expiry, symbol, underlying, settle }
    }
}

/// A key's terms and the series priced under them. An entry that a price
/// or vol change dropped keeps its terms with no series (`None`), so pricing
/// the series again on the next tick finds its place without allocating; the
/// entries go with [`SeriesCache::clear`] (a new time) or the snapshot.
type Entry = (SeriesTerms, Option<Arc<Series>>);

/// Where a key's entry is in a cache, to reach it again without a lookup by
/// name: the live account keeps one per option it holds, so a tick goes
/// straight to the entry of each series it reprices. Valid while the cache
/// keeps its entries (they are only appended until [`SeriesCache::clear`]):
/// each cache, and each clear, has its own epoch, so a hint from another
/// snapshot or from before a clear is never taken. The default is no hint.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SeriesHint {
    epoch: u64,
    index: u32,
}

/// The next cache epoch (0 is no hint's).
fn next_epoch() -> u64 {
    static EPOCH: AtomicU64 = AtomicU64::new(1);
    EPOCH.fetch_add(1, Ordering::Relaxed)
}

/// Priced series of one snapshot, by symbol (a symbol may carry several
/// entries when engines or terms differ).
#[derive(Debug, Default)]
pub struct SeriesCache {
    map: RwLock<Table>,
}

#[derive(Debug)]
struct Table {
    /// Every entry, in the order they were made.
    entries: Vec<Entry>,
    /// The entries of each symbol.
    by_symbol: FxHashMap<String, Vec<usize>>,
    /// The entries on each asset (as underlying or settle): what a price or vol
    /// change of the asset drops, found without a scan of the whole cache (a
    /// scan per `set_price` made setting many prices quadratic) and without a
    /// lookup per symbol.
    by_asset: FxHashMap<String, Vec<usize>>,
    /// What [`SeriesHint`]s into these entries carry.
    epoch: u64,
}

impl Default for Table {
    fn default() -> Self {
        Table {
            entries: Vec::new(),
            by_symbol: FxHashMap::default(),
            by_asset: FxHashMap::default(),
            epoch: next_epoch(),
        }
    }
}

impl Table {
    /// The entry of `key`.
    fn find(&self, key: &SeriesKey<'_>) -> Option<usize> {
        self.by_symbol.get(key.symbol)?.iter().copied().find(|&i| self.entries[i].0.key() == *key)
    }

    /// The entry of `key`: at `hint` when it is this table's, else looked up
    /// (and `hint` set to it).
    fn find_hinted(&self, key: &SeriesKey<'_>, hint: &mut SeriesHint) -> Option<usize> {
        if hint.epoch == self.epoch {
            let i = hint.index as usize;
            debug_assert!(self.entries[i].0.key() == *key, "a hint is kept for one key");
            return Some(i);
        }
        let i = self.find(key)?;
        *hint = SeriesHint { epoch: self.epoch, index: i as u32 };
        Some(i)
    }

    /// Put `series` at entry `at` if that entry holds none (a series already
    /// present is kept); `terms()` makes an entry when there is none. Returns
    /// the entry.
    fn put(&mut self, at: Option<usize>, terms: impl FnOnce() -> SeriesTerms, series: Arc<Series>) -> usize {
        match at {
            Some(i) => {
                let slot = &mut self.entries[i].1;
                if slot.is_none() {
                    *slot = Some(series);
                }
                i
            }
            None => {
                let (terms, i) = (terms(), self.entries.len());
                list(&mut self.by_symbol, &terms.symbol, i);
                list(&mut self.by_asset, &terms.underlying, i);
                if terms.settle != terms.underlying {
                    list(&mut self.by_asset, &terms.settle, i);
                }
                self.entries.push((terms, Some(series)));
                i
            }
        }
    }
}

/// Add entry `i` to the list of `key`.
fn list(lists: &mut FxHashMap<String, Vec<usize>>, key: &str, i: usize) {
    match lists.get_mut(key) {
        Some(list) => list.push(i),
        None => {
            lists.insert(key.to_string(), vec![i]);
        }
    }
}

impl SeriesCache {
    /// A read view for looking up many series under one lock.
    pub fn read(&self) -> SeriesReader<'_> {
        SeriesReader(self.map.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// Insert priced series (a series already present is kept).
    pub fn insert_all(&self, items: impl IntoIterator<Item = (SeriesTerms, Arc<Series>)>) {
        let mut table = self.map.write().unwrap_or_else(|p| p.into_inner());
        for (terms, series) in items {
            let at = table.find(&terms.key());
            table.put(at, || terms, series);
        }
    }

    /// The series of `key`: the one cached, else the one `price` gives,
    /// cached, under one lock and one lookup (a tick's case: the entry is
    /// there, its series dropped by the price or vol change). The entry is
    /// found at `hint` when the hint is this cache's (a hint is kept for one
    /// key: it must have been set by a call with this `key`), else looked up
    /// by symbol and `hint` set to it.
    pub fn get_or_price<E>(
        &self,
        key: &SeriesKey<'_>,
        hint: &mut SeriesHint,
        price: impl FnOnce() -> Result<Arc<Series>, E>,
    ) -> Result<Arc<Series>, E> {
        let mut table = self.map.write().unwrap_or_else(|p| p.into_inner());
        let at = table.find_hinted(key, hint);
        if let Some(i) = at {
            let slot = &mut table.entries[i].1;
            if let Some(series) = slot.as_ref() {
                return Ok(Arc::clone(series));
            }
            return Ok(Arc::clone(slot.insert(price()?)));
        }
        let series = price()?;
        let i = table.put(None, || SeriesTerms::of(key), Arc::clone(&series));
        *hint = SeriesHint { epoch: table.epoch, index: i as u32 };
        Ok(series)
    }

    /// Drop the series a changed price or vol touches: `key` is an asset (as an
    /// underlying or a settle asset) or an option symbol. Costs the series on
    /// `key`, not the whole cache.
    pub fn invalidate(&self, key: &str) {
        let mut table = self.map.write().unwrap_or_else(|p| p.into_inner());
        let Table { entries, by_symbol, by_asset, .. } = &mut *table;
        for &i in by_symbol.get(key).into_iter().chain(by_asset.get(key)).flatten() {
            entries[i].1 = None;
        }
    }

    /// Drop every entry; hints into them are no longer taken (a new epoch).
    pub fn clear(&self) {
        let mut table = self.map.write().unwrap_or_else(|p| p.into_inner());
        table.entries.clear();
        table.by_symbol.clear();
        table.by_asset.clear();
        table.epoch = next_epoch();
    }

    /// Number of priced series held.
    pub fn len(&self) -> usize {
        let table = self.map.read().unwrap_or_else(|p| p.into_inner());
        table.entries.iter().filter(|(_, s)| s.is_some()).count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The cache locked for reading.
pub struct SeriesReader<'a>(std::sync::RwLockReadGuard<'a, Table>);

impl SeriesReader<'_> {
    pub fn get(&self, key: &SeriesKey<'_>) -> Option<Arc<Series>> {
        let i = self.0.find(key)?;
        self.0.entries[i].1.clone()
    }
}

impl Clone for SeriesCache {
    /// A copied market is a new snapshot: it starts with an empty cache.
    fn clone(&self) -> Self {
        SeriesCache::default()
    }
}

impl PartialEq for SeriesCache {
    fn eq(&self, _: &Self) -> bool {
        true // a cache never makes two snapshots differ
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pricing::black76;

    fn quote(kind: OptionKind, underlying_price: f64, settle_price: f64, strike: f64, vol: f64, tau: f64) -> Quote {
        Quote { kind, underlying_price, settle_price, strike, vol, tau }
    }

    #[test]
    fn greeks_match_finite_differences() {
        let at = Revaluation::new(&[], &[], 0.05);
        let (pb, ps, k, s, t) = (60000.0, 1.0, 65000.0, 0.5, 0.25);
        let v = |pb: f64, s: f64, t: f64| black76(OptionKind::Call, pb / ps, k, s, t) * ps;
        let x = Series::price(quote(OptionKind::Call, pb, ps, k, s, t), &at);
        let h = 1.0;
        let d_up = (v(pb + 2.0 * h, s, t) - v(pb, s, t)) / (2.0 * h);
        let d_dn = (v(pb, s, t) - v(pb - 2.0 * h, s, t)) / (2.0 * h);
        assert!((x.gamma - (d_up - d_dn) / (2.0 * h)).abs() < 1e-7, "gamma {}", x.gamma);
        let vega_fd = (v(pb, s + 1e-5, t) - v(pb, s - 1e-5, t)) / 2e-5 * 0.01;
        assert!((x.vega - vega_fd).abs() < 1e-6 * vega_fd.abs(), "vega {} {vega_fd}", x.vega);
        let day = 1.0 / 365.0;
        let theta_fd = (v(pb, s, t - 1e-4 * day) - v(pb, s, t + 1e-4 * day)) / 2e-4;
        assert!((x.theta - theta_fd).abs() < 1e-6 * theta_fd.abs(), "theta {} {theta_fd}", x.theta);
    }

    /// The grid priced in lanes is the scalar pricer scenario by scenario, bit
    /// for bit, on log-moneyness `ln(F/K) + ln(1+r)`: odd grid lengths (a padded
    /// last step), the vol floor, a vanishing σ√τ, expiry; and within 1e-12 of
    /// the pricer on the moved forward itself (`ln(F(1+r)/K)`, a logarithm a point).
    #[test]
    fn grid_pnl_is_the_scalar_revaluation() {
        use crate::pricing::{black76_at, shocked_vol};
        let mut grid = Vec::new();
        for i in 0..21 {
            for v in [-0.3, 0.0, 0.3, -0.99] {
                grid.push(crate::grid::Scenario { r: 0.1 * (i as f64 / 10.0 - 1.0), v, w: 1.0 });
            }
        }
        grid.push(crate::grid::Scenario { r: -0.3, v: 0.0, w: 0.33 });
        let systemic = [(-0.1, 0.5), (0.1, 0.5), (0.05, -0.2)];
        for (vol, tau) in [(0.5, 0.25), (0.06, 1e-4), (0.04, 2.0), (1e-13, 0.5), (0.5, 0.0), (0.5, -1.0), (3.0, 1e-9)] {
            for kind in [OptionKind::Call, OptionKind::Put] {
                for strike in [30_000.0, 59_000.0, 60_000.0, 90_000.0, 600_000.0] {
                    for n in [grid.len(), grid.len() - 1, 3, 1] {
                        let at = Revaluation::new(&grid[..n], &systemic, 0.05);
                        let (pb, ps) = (60_000.0, 0.999);
                        let x = Series::price(quote(kind, pb, ps, strike, vol, tau), &at);
                        assert_eq!(x.value, black76(kind, x.forward, strike, vol, tau));
                        let reval = |r: f64, v: f64| {
                            let sigma = shocked_vol(vol, v, at.vol_floor);
                            let (f, g) = (x.forward * (1.0 + r), 1.0 + r);
                            let value = if at_expiry(sigma, tau) {
                                intrinsic(kind, f, strike)
                            } else {
                                let x_log = pricing::ln_moneyness(x.forward, strike) + libm::log(g);
                                black76_at(kind, f, strike, x_log, Deviation::new(sigma * tau.sqrt()))
                            };
                            let moved = black76(kind, f, strike, sigma, tau);
                            assert!((value - moved).abs() <= 1e-12 * moved.abs() + 1e-15 * (f + strike));
                            (value - x.value) * ps
                        };
                        let want: Vec<f64> = grid[..n].iter().map(|s| reval(s.r, s.v)).collect();
                        let want_sys: Vec<f64> = systemic.iter().map(|&(r, v)| reval(r, v)).collect();
                        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                        assert_eq!(bits(&x.grid_pnl), bits(&want), "{kind:?} K={strike} σ={vol} τ={tau}");
                        assert_eq!(bits(&x.systemic_pnl), bits(&want_sys));
                    }
                }
            }
        }
    }

    /// A grid with the own point (`r = 0`, `v = 0`) hands its lane's parts to
    /// the series: value and greeks are the bits of the scalar pricer's.
    #[test]
    fn own_point_gives_the_scalar_value_and_greeks() {
        let grid: Vec<_> = [(-0.1, 0.0), (0.0, 0.3), (0.0, 0.0), (0.1, 0.0)]
            .iter()
            .map(|&(r, v)| crate::grid::Scenario { r, v, w: 1.0 })
            .collect();
        let with = Revaluation::new(&grid, &[(0.2, 0.0)], 0.05);
        let without = Revaluation::new(&grid[..2], &[], 0.05);
        assert_eq!((with.own_point(), without.own_point()), (Some(2), None));
        for (vol, tau) in [(0.5, 0.25), (0.06, 1e-4), (0.04, 2.0), (1e-13, 0.5), (0.5, 0.0), (3.0, 1e-9)] {
            for kind in [OptionKind::Call, OptionKind::Put] {
                for strike in [30_000.0, 59_999.0, 60_000.0, 90_000.0] {
                    let a = Series::price(quote(kind, 60_000.0, 0.999, strike, vol, tau), &with);
                    let b = Series::price(quote(kind, 60_000.0, 0.999, strike, vol, tau), &without);
                    let bits = |s: &Series| [s.value, s.delta, s.gamma, s.vega, s.theta].map(f64::to_bits);
                    assert_eq!(bits(&a), bits(&b), "{kind:?} K={strike} σ={vol} τ={tau}");
                    assert_eq!(a.grid_pnl[2], 0.0);
                }
            }
        }
    }

    fn key<'a>(engine: u64, symbol: &'a str, underlying: &'a str, settle: &'a str, strike: f64) -> SeriesKey<'a> {
        SeriesKey { engine, kind: OptionKind::Call, strike, expiry: 5.0, symbol, underlying, settle }
    }

    #[test]
    fn cache_keys_on_terms_and_engine() {
        let c = SeriesCache::default();
        let at = Revaluation::new(&[], &[], 0.05);
        let s = Arc::new(Series::price(quote(OptionKind::Call, 100.0, 1.0, 90.0, 0.5, 0.1), &at));
        c.insert_all([(SeriesTerms::of(&key(1, "C90", "BTC", "USDT", 90.0)), s)]);
        let r = c.read();
        assert!(r.get(&key(1, "C90", "BTC", "USDT", 90.0)).is_some());
        assert!(r.get(&key(2, "C90", "BTC", "USDT", 90.0)).is_none());
        assert!(r.get(&key(1, "C90", "BTC", "USDT", 95.0)).is_none());
        assert!(r.get(&key(1, "C90", "BTC", "USDC", 90.0)).is_none());
        assert!(r.get(&SeriesKey { kind: OptionKind::Put, ..key(1, "C90", "BTC", "USDT", 90.0) }).is_none());
        assert!(r.get(&key(1, "X90", "BTC", "USDT", 90.0)).is_none());
        drop(r);
        assert_eq!(c.clone().len(), 0);
        c.clear();
        assert!(c.is_empty());
    }

    /// A hint reaches its key's entry without a lookup, and is not taken by
    /// another cache or after a clear; two symbols of the same terms keep two
    /// entries (a vol may be quoted per symbol).
    #[test]
    fn hints_find_their_entry_until_the_cache_is_cleared() {
        let at = Revaluation::new(&[], &[], 0.05);
        let priced = |strike: f64| Arc::new(Series::price(quote(OptionKind::Call, 100.0, 1.0, strike, 0.5, 0.1), &at));
        let (a, b) = (key(1, "A", "BTC", "USDT", 90.0), key(1, "B", "BTC", "USDT", 90.0));
        let c = SeriesCache::default();
        let (mut ha, mut hb) = (SeriesHint::default(), SeriesHint::default());
        let got = |c: &SeriesCache, k: &SeriesKey<'_>, h: &mut SeriesHint, strike: f64| {
            c.get_or_price(k, h, || Ok::<_, ()>(priced(strike))).unwrap().strike
        };
        assert_eq!((got(&c, &a, &mut ha, 90.0), got(&c, &b, &mut hb, 91.0)), (90.0, 91.0));
        assert_ne!(ha, hb);
        assert_ne!(ha, SeriesHint::default());
        // Found again at the hints (the pricing closures are not called).
        assert_eq!((got(&c, &a, &mut ha, 0.0), got(&c, &b, &mut hb, 0.0)), (90.0, 91.0));
        c.invalidate("B");
        assert_eq!((got(&c, &a, &mut ha, 0.0), got(&c, &b, &mut hb, 92.0)), (90.0, 92.0));
        assert_eq!(c.len(), 2);
        // Another cache (a copied market) does not take the hints: it looks the keys up.
        let other = c.clone();
        let (ha0, hb0) = (ha, hb);
        assert_eq!((got(&other, &b, &mut hb, 93.0), got(&other, &a, &mut ha, 94.0)), (93.0, 94.0));
        assert!(ha != ha0 && hb != hb0);
        // After a clear the entries are new: the old hints are not taken.
        c.clear();
        let (mut ha, mut hb) = (ha0, hb0);
        assert_eq!((got(&c, &b, &mut hb, 95.0), got(&c, &a, &mut ha, 96.0)), (95.0, 96.0));
        assert!(ha != ha0 && hb != hb0);
        assert_eq!((got(&c, &a, &mut ha, 0.0), got(&c, &b, &mut hb, 0.0)), (96.0, 95.0));
    }

    #[test]
    fn invalidate_drops_what_the_key_touches_and_keeps_the_rest() {
        let c = SeriesCache::default();
        let at = Revaluation::new(&[], &[], 0.05);
        let s = Arc::new(Series::price(quote(OptionKind::Call, 100.0, 1.0, 90.0, 0.5, 0.1), &at));
        let keys = [
            key(1, "B1", "BTC", "USDT", 90.0),
            key(1, "B1", "BTC", "USDC", 90.0), // one symbol, two settles
            key(1, "B2", "BTC", "USDT", 95.0),
            key(1, "E1", "ETH", "USDC", 90.0),
        ];
        let all = || keys.map(|k| (SeriesTerms::of(&k), Arc::clone(&s)));
        let held = |c: &SeriesCache| {
            let r = c.read();
            keys.map(|k| r.get(&k).is_some())
        };
        c.insert_all(all());
        assert_eq!(c.len(), 4);
        c.invalidate("USDC"); // a settle asset: one of B1's entries and E1
        assert_eq!(held(&c), [true, false, true, false]);
        c.invalidate("ETH"); // nothing left on it; E1 listed under ETH still: harmless
        assert_eq!(held(&c), [true, false, true, false]);
        c.invalidate("B2"); // an option symbol (a vol per symbol)
        assert_eq!(held(&c), [true, false, false, false]);
        c.insert_all(all());
        c.invalidate("BTC");
        assert_eq!(held(&c), [false, false, false, true]);
        assert_eq!(c.len(), 1);
        c.invalidate("USDC");
        assert!(c.is_empty());
    }
}
