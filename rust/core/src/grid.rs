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
    /// How many leading scenarios of `flat` have weight 1 and strictly
    /// ascending returns, the rest being two of one weight (the extremes):
    /// the layout [`Grid::scan_linear`] reads; 0 when `flat` is not laid out so.
    ascending: usize,
    /// `flat`'s and `with_vol`'s returns and negated weights as columns, for
    /// [`Grid::scan_linear`] and [`Grid::scan_options`] (`−w·p` is `(−w)·p`, bit for bit).
    flat_r: Vec<f64>,
    flat_neg_w: Vec<f64>,
    vol_r: Vec<f64>,
    vol_neg_w: Vec<f64>,
}

impl Grid {
    pub fn new(g: &GroupParams) -> Self {
        let n = g.price_points;
        let returns: Vec<f64> = (0..n).map(|i| g.price_range * (2.0 * i as f64 / (n - 1) as f64 - 1.0)).collect();
        let extremes =
            [-1.0, 1.0].map(|s| Scenario { r: s * g.extreme_multiple * g.price_range, v: 0.0, w: g.extreme_cover });
        let flat: Vec<Scenario> = returns.iter().map(|&r| Scenario { r, v: 0.0, w: 1.0 }).chain(extremes).collect();
        let with_vol: Vec<Scenario> = returns
            .iter()
            .flat_map(|&r| g.vol_shocks.iter().map(move |&v| Scenario { r, v, w: 1.0 }))
            .chain(extremes)
            .collect();
        let ascending = linear_layout(&flat);
        let columns = |sc: &[Scenario]| -> (Vec<f64>, Vec<f64>) { sc.iter().map(|s| (s.r, -s.w)).unzip() };
        let ((flat_r, flat_neg_w), (vol_r, vol_neg_w)) = (columns(&flat), columns(&with_vol));
        Grid { flat, with_vol, ascending, flat_r, flat_neg_w, vol_r, vol_neg_w }
    }

    /// [`scan`] over `with_vol` of a group with options, whose P&L at scenario
    /// `k` is `d·r_k + options_k` (`options_k` 0 past its end), written to
    /// `pnl`, bit for bit: each point's P&L is the same two roundings, and
    /// the maximum of the losses is the same value whatever the order it is
    /// taken in (no loss is NaN for a finite `d`; a zero's sign never
    /// decides the loss or the first point within `tol > 0`), so it runs in
    /// [`MAX_LANES`] lanes over the columns.
    pub fn scan_options(&self, d: f64, options: &[f64], tol: f64, pnl: &mut Vec<f64>) -> (f64, usize) {
        let (r, neg_w) = (self.vol_r.as_slice(), self.vol_neg_w.as_slice());
        let n = r.len();
        pnl.resize(n, 0.0); // every point is written below: a buffer of the length is not cleared
        let m = options.len().min(n);
        if !d.is_finite() || tol <= 0.0 {
            pnl.iter_mut().zip(r).for_each(|(p, r)| *p = d * r);
            pnl.iter_mut().zip(options).for_each(|(p, o)| *p += o);
            return scan(pnl, &self.with_vol, tol);
        }
        let (best, worst) = worst_loss(d, r, neg_w, &options[..m], tol, pnl);
        (if best < tol { 0.0 } else { best }, worst)
    }

    /// [`scan`] of a linear group's P&L `d·r` over `flat`, bit for bit, in
    /// O(log points): a product by `d` then by `−w` is monotone in `r` (each
    /// rounding is), so each weight's largest loss is at its smallest or
    /// largest return, and the first scenario within `tol` of the maximum is
    /// the first point (`d ≥ 0`), found by bisection (`d < 0`), or an extreme.
    pub fn scan_linear(&self, d: f64, tol: f64) -> (f64, usize) {
        let n = self.ascending;
        if n == 0 || !d.is_finite() {
            return scan_by(&self.flat, tol, |_, s| d * s.r);
        }
        // The layout's `n` points and two extremes, as columns (`−w·x` is `(−w)·x`).
        let (r, neg_w) = (&self.flat_r[..n + 2], &self.flat_neg_w[..n + 2]);
        let loss = |k: usize| neg_w[k] * (d * r[k]);
        let best = loss(0).max(loss(n - 1)).max(loss(n)).max(loss(n + 1));
        let floor = best - tol;
        let worst = if d >= 0.0 {
            (loss(0) >= floor).then_some(0)
        } else {
            // The points' weight is 1: `−1·x` is `−x`.
            let k = r[..n].partition_point(|&r| -(d * r) < floor);
            (k < n).then_some(k)
        };
        let worst = worst.or_else(|| (n..n + 2).find(|&k| loss(k) >= floor)).unwrap_or(0);
        (if best < tol { 0.0 } else { best }, worst)
    }

    pub fn scenarios(&self, has_options: bool) -> &[Scenario] {
        if has_options {
            &self.with_vol
        } else {
            &self.flat
        }
    }
}

/// Lanes of [`worst_loss`]'s maximum.
const MAX_LANES: usize = 4;
/// Points a step of [`worst_loss`]'s search for the first point within the tolerance.
const SEARCH_LANES: usize = 8;

/// [`Grid::scan_options`]'s passes: `pnl[k] = d·r_k + options_k`
/// (`options` no longer than `r`, 0 past its end), the largest loss
/// `neg_w_k · pnl[k]`, and the first point whose loss is within `tol` of it
/// (0 when none is), in the widest lanes this CPU has (AVX2 on x86-64,
/// picked at run time; the same bits on any).
#[inline]
fn worst_loss(d: f64, r: &[f64], neg_w: &[f64], options: &[f64], tol: f64, pnl: &mut [f64]) -> (f64, usize) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2, checked just above.
        return unsafe { worst_loss_avx2(d, r, neg_w, options, tol, pnl) };
    }
    worst_loss_lanes(d, r, neg_w, options, tol, pnl)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn worst_loss_avx2(
    d: f64,
    r: &[f64],
    neg_w: &[f64],
    options: &[f64],
    tol: f64,
    pnl: &mut [f64],
) -> (f64, usize) {
    worst_loss_lanes(d, r, neg_w, options, tol, pnl)
}

#[inline(always)]
fn worst_loss_lanes(d: f64, r: &[f64], neg_w: &[f64], options: &[f64], tol: f64, pnl: &mut [f64]) -> (f64, usize) {
    let (n, m) = (r.len(), options.len());
    let (pnl, neg_w) = (&mut pnl[..n], &neg_w[..n]);
    let body = m / MAX_LANES * MAX_LANES;
    let mut lanes = [f64::NEG_INFINITY; MAX_LANES];
    for ((p, r), (o, w)) in (pnl[..body].chunks_exact_mut(MAX_LANES).zip(r[..body].chunks_exact(MAX_LANES)))
        .zip(options[..body].chunks_exact(MAX_LANES).zip(neg_w[..body].chunks_exact(MAX_LANES)))
    {
        for i in 0..MAX_LANES {
            p[i] = d * r[i] + o[i];
            // `f64::max`'s value (a NaN loss is passed over, a lane never holds
            // one) in one instruction, not three: only a tie of ±0 may keep the
            // other zero, and a zero's sign decides nothing (`tol > 0`).
            let loss = w[i] * p[i];
            lanes[i] = if loss > lanes[i] { loss } else { lanes[i] };
        }
    }
    let mut best = lanes.iter().fold(f64::NEG_INFINITY, |a, &b| a.max(b));
    for k in body..n {
        pnl[k] = if k < m { d * r[k] + options[k] } else { d * r[k] };
        best = best.max(neg_w[k] * pnl[k]);
    }
    // The first point within `tol`: a step of points at a time (one branch a
    // step, not one a point), then the point in the step.
    let floor = best - tol;
    let within = |p: f64, w: f64| w * p >= floor;
    let mut from = n / SEARCH_LANES * SEARCH_LANES;
    for (s, (p, w)) in pnl.chunks_exact(SEARCH_LANES).zip(neg_w.chunks_exact(SEARCH_LANES)).enumerate() {
        let mut any = false;
        for i in 0..SEARCH_LANES {
            any |= within(p[i], w[i]);
        }
        if any {
            from = s * SEARCH_LANES;
            break;
        }
    }
    let worst = (from..n).find(|&k| within(pnl[k], neg_w[k])).unwrap_or(0);
    (best, worst)
}

/// [`Grid::ascending`] of `flat`.
fn linear_layout(flat: &[Scenario]) -> usize {
    let Some(n) = flat.len().checked_sub(2).filter(|&n| n > 0) else { return 0 };
    let (points, extremes) = flat.split_at(n);
    let ascending = points.iter().all(|s| s.w == 1.0) && points.windows(2).all(|p| p[0].r < p[1].r);
    let extremes_ok = extremes[0].w == extremes[1].w && extremes.iter().all(|s| s.w.is_finite() && s.r.is_finite());
    if ascending && points.iter().all(|s| s.r.is_finite()) && extremes_ok {
        n
    } else {
        0
    }
}

/// The scan of one group's P&L vector: loss `L = max(0, max_k −w_k·pnl_k)` and
/// the first scenario within `tol` of the maximum (dust never decides it).
/// A loss below `tol` counts as 0.
pub fn scan(pnl: &[f64], scenarios: &[Scenario], tol: f64) -> (f64, usize) {
    debug_assert_eq!(pnl.len(), scenarios.len());
    // Zipped slices: the maximum runs in SIMD lanes (an indexed closure keeps it scalar).
    scan_pairs(|| pnl.iter().zip(scenarios).map(|(&p, s)| (p, s)), tol)
}

/// [`scan`] of the P&L vector whose scenario `k` is `pnl(k, &scenarios[k])`,
/// without writing it out (a linear group's `D·r`: the same products, the
/// same bits).
#[inline]
pub fn scan_by(scenarios: &[Scenario], tol: f64, pnl: impl Fn(usize, &Scenario) -> f64) -> (f64, usize) {
    scan_pairs(|| scenarios.iter().enumerate().map(|(k, s)| (pnl(k, s), s)), tol)
}

/// The scan over `(pnl_k, scenario_k)` pairs, walked twice: the maximum, then
/// the first scenario within `tol` of it.
#[inline(always)]
fn scan_pairs<'s, I: Iterator<Item = (f64, &'s Scenario)>>(pairs: impl Fn() -> I, tol: f64) -> (f64, usize) {
    let mut best = f64::NEG_INFINITY;
    for (p, s) in pairs() {
        best = best.max(-s.w * p);
    }
    let worst = pairs().position(|(p, s)| -s.w * p >= best - tol).unwrap_or(0);
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

    /// Uniform numbers in [0, 1) from a xorshift of `seed`: reproducible cases without a dependency.
    fn uniform(mut x: u64) -> impl FnMut() -> f64 {
        move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 11) as f64 / (1u64 << 53) as f64
        }
    }

    #[test]
    fn linear_scan_is_the_full_scan() {
        let p = RiskParams::default_profile();
        let mut f = uniform(0x2545f4914f6cdd1d);
        for name in ["BTC", "ETH", "SOL", "DOGE"] {
            let g = Grid::new(p.group_params(name));
            assert!(g.ascending > 0);
            let r_max = g.flat.iter().map(|s| s.r.abs()).fold(0.0, f64::max);
            for i in 0..20_000 {
                let d = match i % 5 {
                    0 => 0.0,
                    1 => -0.0,
                    2 => (f() - 0.5) * 1e-6,
                    _ => (f() - 0.5) * 10f64.powf(12.0 * f()),
                };
                // Tolerances from none to ones that cover several points (ties).
                let tol = match i % 4 {
                    0 => 1e-9 * (1.0 + d.abs()),
                    1 => 0.0,
                    _ => f() * d.abs() * r_max,
                };
                assert_eq!(g.scan_linear(d, tol), scan_by(&g.flat, tol, |_, s| d * s.r), "{name} d={d} tol={tol}");
            }
        }
    }

    #[test]
    fn options_scan_is_the_full_scan() {
        let p = RiskParams::default_profile();
        let mut f = uniform(0x9e37_79b9_7f4a_7c15);
        let mut pnl = Vec::new();
        for name in ["BTC", "ETH", "SOL", "DOGE"] {
            let g = Grid::new(p.group_params(name));
            let n = g.with_vol.len();
            for i in 0..5_000 {
                let d = match i % 5 {
                    0 => 0.0,
                    1 => -0.0,
                    2 => (f() - 0.5) * 1e-6,
                    _ => (f() - 0.5) * 10f64.powf(9.0 * f()),
                };
                let scale = 10f64.powf(7.0 * f());
                // Full vectors, vectors shorter than the grid, ties (every point the same), none.
                let len = match i % 7 {
                    0 => 0,
                    1 => n - 3,
                    _ => n,
                };
                let tied = i % 11 == 0;
                let mut options: Vec<f64> = (0..len).map(|_| if tied { -scale } else { (f() - 0.5) * scale }).collect();
                // A NaN point (passed over by the maximum and the search alike).
                if i % 13 == 0 && len > 0 {
                    options[(f() * len as f64) as usize] = f64::NAN;
                }
                let tol = match i % 4 {
                    0 => 1e-9 * (1.0 + d.abs() + scale),
                    1 => 0.0,
                    _ => f() * scale,
                };
                let mut full: Vec<f64> = g.with_vol.iter().map(|s| d * s.r).collect();
                full.iter_mut().zip(&options).for_each(|(p, o)| *p += o);
                let want = scan(&full, &g.with_vol, tol);
                let got = g.scan_options(d, &options, tol, &mut pnl);
                assert_eq!((got.0.to_bits(), got.1), (want.0.to_bits(), want.1), "{name} d={d} tol={tol}");
                assert!(pnl.iter().zip(&full).all(|(a, b)| a.to_bits() == b.to_bits()));
            }
        }
    }

    #[test]
    fn scan_takes_the_first_worst_within_tolerance() {
        let sc: Vec<Scenario> = [-0.1, 0.0, 0.1].iter().map(|&r| Scenario { r, v: 0.0, w: 1.0 }).collect();
        assert_eq!(scan(&[-5.0, 0.0, -5.0 + 1e-12], &sc, 1e-9), (5.0, 0));
        assert_eq!(scan(&[1.0, 0.0, 2.0], &sc, 1e-9), (0.0, 1));
        assert_eq!(scan(&[1.0, -1e-12, 2.0], &sc, 1e-9), (0.0, 1));
    }
}
