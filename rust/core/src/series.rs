//! Option series priced on one market snapshot: value, greeks and scenario
//! P&L per unit, computed once and shared by every portfolio and every call
//! that holds the series (METHODOLOGY.md §1, §3).
//!
//! The cache lives in the [`Market`](crate::Market) it was priced on, so it is
//! per snapshot by construction: changing a price, mark, vol or the time
//! clears it. Entries are keyed by the engine that priced them (grids belong
//! to a profile) and by the series' terms.

use crate::lanes::black76_many;
use crate::portfolio::OptionKind;
use crate::pricing::{at_expiry, black76, black76_delta, norm_pdf, shocked_vol};
use rustc_hash::{FxHashMap, FxHashSet};
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

/// Where the series is revalued: the group's grid and systemic returns.
pub struct Revaluation<'a> {
    pub grid: &'a [crate::grid::Scenario],
    /// `(return of the series' group, vol shock)` per systemic scenario.
    pub systemic: &'a [(f64, f64)],
    pub vol_floor: f64,
}

impl Series {
    #[allow(clippy::too_many_arguments)]
    pub fn price(
        kind: OptionKind,
        underlying_price: f64,
        settle_price: f64,
        strike: f64,
        vol: f64,
        tau: f64,
        at: &Revaluation<'_>,
    ) -> Self {
        let forward = underlying_price / settle_price;
        let value = black76(kind, forward, strike, vol, tau);
        let delta = black76_delta(kind, forward, strike, vol, tau);
        let (gamma, vega, theta) = if !at_expiry(vol, tau) {
            let sd = vol * tau.sqrt();
            let d1 = (libm::log(forward / strike) + 0.5 * sd * sd) / sd;
            let pdf = norm_pdf(d1);
            // Γ_F = φ(d1)/(F σ √τ) per forward unit; dF/dP_b = 1/P_s.
            let gamma = pdf / (forward * sd) / settle_price;
            let vega = forward * pdf * tau.sqrt() * settle_price * 0.01;
            let theta = -forward * pdf * vol / (2.0 * tau.sqrt()) * settle_price / 365.0;
            (gamma, vega, theta)
        } else {
            (0.0, 0.0, 0.0)
        };
        // A scenario `(r, v)` is priced at the forward `F(1+r)` and the shocked vol; the
        // grid and the systemic scenarios in one pass (the lanes' last step is shared).
        let at_point = |(r, v): (f64, f64)| (forward * (1.0 + r), shocked_vol(vol, v, at.vol_floor));
        let grid = at.grid.iter().map(|s| (s.r, s.v));
        let mut grid_pnl =
            revalue(kind, strike, tau, value, settle_price, &mut grid.chain(at.systemic.iter().copied()).map(at_point));
        let systemic_pnl = grid_pnl.split_off(at.grid.len());
        Series {
            kind,
            forward,
            strike,
            vol,
            tau,
            underlying_price,
            settle_price,
            value,
            delta,
            gamma,
            vega,
            theta,
            grid_pnl,
            systemic_pnl,
        }
    }
}

/// `(black76(kind, f, strike, σ, tau) − value) · settle_price` at each point
/// `(f, σ)`, priced together in SIMD lanes (bit for bit the scalar pricer's values).
fn revalue(
    kind: OptionKind,
    strike: f64,
    tau: f64,
    value: f64,
    settle_price: f64,
    points: &mut dyn Iterator<Item = (f64, f64)>,
) -> Vec<f64> {
    let (f, sigma): (Vec<f64>, Vec<f64>) = points.unzip();
    let mut out = vec![0.0; f.len()];
    black76_many(kind, strike, tau, &f, &sigma, &mut out);
    out.iter_mut().for_each(|v| *v = (*v - value) * settle_price);
    out
}

/// What identifies a series within one snapshot, beside its symbol.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesTerms {
    pub engine: u64,
    pub underlying: String,
    pub settle: String,
    pub kind: OptionKind,
    pub strike: f64,
    pub expiry: f64,
}

impl SeriesTerms {
    pub fn matches(
        &self,
        engine: u64,
        underlying: &str,
        settle: &str,
        kind: OptionKind,
        strike: f64,
        expiry: f64,
    ) -> bool {
        self.engine == engine
            && self.kind == kind
            && self.strike == strike
            && self.expiry == expiry
            && self.underlying == underlying
            && self.settle == settle
    }
}

/// The priced series sharing one symbol.
type Entries = Vec<(SeriesTerms, Arc<Series>)>;

/// Priced series of one snapshot, by symbol (a symbol may carry several
/// entries when engines or terms differ).
#[derive(Debug, Default)]
pub struct SeriesCache {
    map: RwLock<Table>,
}

#[derive(Debug, Default)]
struct Table {
    by_symbol: FxHashMap<String, Entries>,
    /// The symbols with an entry on each asset (as underlying or settle): what a
    /// price or vol change of the asset drops, found without a scan of the whole
    /// cache (a scan per `set_price` made setting many prices quadratic). A symbol
    /// whose entries went another way stays listed until the asset changes.
    by_asset: FxHashMap<String, FxHashSet<String>>,
}

impl Table {
    fn list(&mut self, asset: &str, symbol: &str) {
        let symbols = match self.by_asset.get_mut(asset) {
            Some(s) => s,
            None => self.by_asset.entry(asset.to_string()).or_default(),
        };
        if !symbols.contains(symbol) {
            symbols.insert(symbol.to_string());
        }
    }
}

impl SeriesCache {
    /// A read view for looking up many series under one lock.
    pub fn read(&self) -> SeriesReader<'_> {
        SeriesReader(self.map.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// Insert priced series (a series already present is kept).
    pub fn insert_all<'a>(&self, items: impl IntoIterator<Item = (&'a str, SeriesTerms, Arc<Series>)>) {
        let mut table = self.map.write().unwrap_or_else(|p| p.into_inner());
        for (symbol, terms, series) in items {
            let entries = table.by_symbol.entry(symbol.to_string()).or_default();
            if !entries.iter().any(|(t, _)| *t == terms) {
                let (underlying, settle) = (terms.underlying.clone(), terms.settle.clone());
                entries.push((terms, series));
                table.list(&underlying, symbol);
                table.list(&settle, symbol);
            }
        }
    }

    /// Drop the series a changed price or vol touches: `key` is an asset (as an
    /// underlying or a settle asset) or an option symbol. Costs the series on
    /// `key`, not the whole cache.
    pub fn invalidate(&self, key: &str) {
        let mut table = self.map.write().unwrap_or_else(|p| p.into_inner());
        table.by_symbol.remove(key);
        for symbol in table.by_asset.remove(key).unwrap_or_default() {
            if let Some(entries) = table.by_symbol.get_mut(&symbol) {
                entries.retain(|(t, _)| t.underlying != key && t.settle != key);
                if entries.is_empty() {
                    table.by_symbol.remove(&symbol);
                }
            }
        }
    }

    pub fn clear(&self) {
        let mut table = self.map.write().unwrap_or_else(|p| p.into_inner());
        table.by_symbol.clear();
        table.by_asset.clear();
    }

    /// Number of priced series held.
    pub fn len(&self) -> usize {
        self.map.read().unwrap_or_else(|p| p.into_inner()).by_symbol.values().map(Vec::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The cache locked for reading.
pub struct SeriesReader<'a>(std::sync::RwLockReadGuard<'a, Table>);

impl SeriesReader<'_> {
    #[allow(clippy::too_many_arguments)]
    pub fn get(
        &self,
        engine: u64,
        symbol: &str,
        underlying: &str,
        settle: &str,
        kind: OptionKind,
        strike: f64,
        expiry: f64,
    ) -> Option<Arc<Series>> {
        self.0
            .by_symbol
            .get(symbol)?
            .iter()
            .find(|(t, _)| t.matches(engine, underlying, settle, kind, strike, expiry))
            .map(|(_, s)| Arc::clone(s))
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

    #[test]
    fn greeks_match_finite_differences() {
        let at = Revaluation { grid: &[], systemic: &[], vol_floor: 0.05 };
        let (pb, ps, k, s, t) = (60000.0, 1.0, 65000.0, 0.5, 0.25);
        let v = |pb: f64, s: f64, t: f64| black76(OptionKind::Call, pb / ps, k, s, t) * ps;
        let x = Series::price(OptionKind::Call, pb, ps, k, s, t, &at);
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
    /// for bit: odd grid lengths (a padded last chunk), the vol floor, a
    /// vanishing σ√τ, expiry.
    #[test]
    fn grid_pnl_is_the_scalar_revaluation() {
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
                        let at = Revaluation { grid: &grid[..n], systemic: &systemic, vol_floor: 0.05 };
                        let (pb, ps) = (60_000.0, 0.999);
                        let x = Series::price(kind, pb, ps, strike, vol, tau, &at);
                        let reval = |r: f64, v: f64| {
                            let sigma = shocked_vol(vol, v, at.vol_floor);
                            (black76(kind, x.forward * (1.0 + r), strike, sigma, tau) - x.value) * ps
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

    #[test]
    fn cache_keys_on_terms_and_engine() {
        let c = SeriesCache::default();
        let at = Revaluation { grid: &[], systemic: &[], vol_floor: 0.05 };
        let s = Arc::new(Series::price(OptionKind::Put, 100.0, 1.0, 90.0, 0.5, 0.1, &at));
        let terms = SeriesTerms {
            engine: 1,
            underlying: "BTC".into(),
            settle: "USDT".into(),
            kind: OptionKind::Put,
            strike: 90.0,
            expiry: 5.0,
        };
        c.insert_all([("P90", terms, s)]);
        let r = c.read();
        assert!(r.get(1, "P90", "BTC", "USDT", OptionKind::Put, 90.0, 5.0).is_some());
        assert!(r.get(2, "P90", "BTC", "USDT", OptionKind::Put, 90.0, 5.0).is_none());
        assert!(r.get(1, "P90", "BTC", "USDT", OptionKind::Put, 95.0, 5.0).is_none());
        drop(r);
        assert_eq!(c.clone().len(), 0);
        c.clear();
        assert!(c.is_empty());
    }

    #[test]
    fn invalidate_drops_what_the_key_touches_and_keeps_the_rest() {
        let c = SeriesCache::default();
        let at = Revaluation { grid: &[], systemic: &[], vol_floor: 0.05 };
        let s = Arc::new(Series::price(OptionKind::Call, 100.0, 1.0, 90.0, 0.5, 0.1, &at));
        let terms = |underlying: &str, settle: &str, strike: f64| SeriesTerms {
            engine: 1,
            underlying: underlying.into(),
            settle: settle.into(),
            kind: OptionKind::Call,
            strike,
            expiry: 5.0,
        };
        let all = || {
            [
                ("B1", terms("BTC", "USDT", 90.0), Arc::clone(&s)),
                ("B1", terms("BTC", "USDC", 90.0), Arc::clone(&s)), // one symbol, two settles
                ("B2", terms("BTC", "USDT", 95.0), Arc::clone(&s)),
                ("E1", terms("ETH", "USDC", 90.0), Arc::clone(&s)),
            ]
        };
        let held = |c: &SeriesCache| {
            let r = c.read();
            let get = |sym: &str, u: &str, st: &str, k: f64| r.get(1, sym, u, st, OptionKind::Call, k, 5.0).is_some();
            [
                get("B1", "BTC", "USDT", 90.0),
                get("B1", "BTC", "USDC", 90.0),
                get("B2", "BTC", "USDT", 95.0),
                get("E1", "ETH", "USDC", 90.0),
            ]
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
