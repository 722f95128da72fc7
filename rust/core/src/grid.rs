//! The scenario grid of a risk group and its scan (METHODOLOGY.md §3 steps 5–6):
//! price points × vol shocks in grid order (price outer, vol inner), then the
//! two extremes (− first) weighted by `extreme_cover`.

use crate::params::GroupParams;

/// One scenario: price return `r`, relative vol shock `v`, loss weight `w`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scenario {
    pub r: f64,
    pub v: f64,
    pub w: f64,
}

/// A group's scenarios, with and without the vol dimension, built once per profile.
#[derive(Debug, Clone, PartialEq)]
pub struct Grid {
    pub flat: Vec<Scenario>,
    pub with_vol: Vec<Scenario>,
}

impl Grid {
    pub fn new(g: &GroupParams) -> Self {
        let n = g.price_points;
        let returns: Vec<f64> = (0..n).map(|i| g.price_range * (2.0 * i as f64 / (n - 1) as f64 - 1.0)).collect();
        let extremes =
            [-1.0, 1.0].map(|s| Scenario { r: s * g.extreme_multiple * g.price_range, v: 0.0, w: g.extreme_cover });
        let flat = returns.iter().map(|&r| Scenario { r, v: 0.0, w: 1.0 }).chain(extremes).collect();
        let with_vol = returns
            .iter()
            .flat_map(|&r| g.vol_shocks.iter().map(move |&v| Scenario { r, v, w: 1.0 }))
            .chain(extremes)
            .collect();
        Grid { flat, with_vol }
    }

    pub fn scenarios(&self, has_options: bool) -> &[Scenario] {
        if has_options {
            &self.with_vol
        } else {
            &self.flat
        }
    }
}

/// The scan of one group's P&L vector: loss `L = max(0, max_k −w_k·pnl_k)` and
/// the first scenario within `tol` of the maximum (dust never decides it).
/// A loss below `tol` counts as 0.
pub fn scan(pnl: &[f64], scenarios: &[Scenario], tol: f64) -> (f64, usize) {
    debug_assert_eq!(pnl.len(), scenarios.len());
    scan_by(scenarios, tol, |k, _| pnl[k])
}

/// [`scan`] of the P&L vector whose scenario `k` is `pnl(k, &scenarios[k])`,
/// without writing it out (a linear group's `D·r`: the same products, the
/// same bits).
#[inline]
pub fn scan_by(scenarios: &[Scenario], tol: f64, pnl: impl Fn(usize, &Scenario) -> f64) -> (f64, usize) {
    let mut best = f64::NEG_INFINITY;
    for (k, s) in scenarios.iter().enumerate() {
        best = best.max(-s.w * pnl(k, s));
    }
    let worst = scenarios.iter().enumerate().position(|(k, s)| -s.w * pnl(k, s) >= best - tol).unwrap_or(0);
    let loss = if best < tol { 0.0 } else { best };
    (loss, worst)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::RiskParams;

    #[test]
    fn grid_order_and_extremes() {
        let p = RiskParams::default_profile();
        let g = Grid::new(p.group_params("BTC"));
        assert_eq!(g.flat.len(), 23);
        assert_eq!(g.with_vol.len(), 65);
        assert_eq!(g.flat[0].r, -0.1);
        assert_eq!(g.flat[10].r, 0.0);
        assert_eq!(g.flat[20].r, 0.1);
        assert!((g.flat[21].r + 0.3).abs() < 1e-15 && g.flat[21].w == 0.33);
        assert_eq!((g.with_vol[0].r, g.with_vol[0].v), (-0.1, -0.3));
        assert_eq!((g.with_vol[2].r, g.with_vol[2].v), (-0.1, 0.3));
    }

    #[test]
    fn scan_takes_the_first_worst_within_tolerance() {
        let sc: Vec<Scenario> = [-0.1, 0.0, 0.1].iter().map(|&r| Scenario { r, v: 0.0, w: 1.0 }).collect();
        assert_eq!(scan(&[-5.0, 0.0, -5.0 + 1e-12], &sc, 1e-9), (5.0, 0));
        assert_eq!(scan(&[1.0, 0.0, 2.0], &sc, 1e-9), (0.0, 1));
        assert_eq!(scan(&[1.0, -1e-12, 2.0], &sc, 1e-9), (0.0, 1));
    }
}
