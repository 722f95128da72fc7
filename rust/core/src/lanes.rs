//! Black-76 on a whole scenario grid at once: the option series of a snapshot
//! is revalued at every point of its group's grid and systemic scenarios
//! (`series.rs`), [`LANES`] points a step, in SIMD lanes.
//!
//! The lanes run the scalar pricer's own formula, [`crate::pricing::black76_at`] (its normal
//! CDF and exponential included), on an array of points: the functions are
//! `#[inline(always)]` and branch-free, so the compiler vectorises the loop
//! over the lanes, and with no fused multiply-add (Rust never contracts `a*b+c`)
//! every lane gives the bits of the scalar call, whichever instruction set runs
//! it. On x86-64 the kernel is compiled three times, for the baseline (SSE2),
//! AVX2 and AVX-512, and the CPU picks at run time; all give the same bits.
//!
//! The grid's work is shared ([`Revaluation`]): a point moves the forward by a
//! factor `g = 1 + r` fixed by the profile, so its log-moneyness is
//! `ln(F/K) + ln g` with `ln g` computed once per profile, and no logarithm
//! runs per point; its vol shock `v` is kept as the factor `1 + v`.
//! The series' own point (`r = 0`, `v = 0`), where a grid has one, is the
//! series itself: its lane gives the value, delta and density the series
//! needs, in the bits of the scalar call, so the series is not priced twice.

use crate::portfolio::OptionKind;
use crate::pricing::{at_expiry, black76_parts, intrinsic, scaled_vol, Deviation, Parts};
use crate::series::Revaluation;

/// Scenario points a step.
pub const LANES: usize = 8;

/// What a series brings to its revaluation: its terms and its market at the snapshot.
#[derive(Debug, Clone, Copy)]
pub struct SeriesPoint {
    pub kind: OptionKind,
    pub strike: f64,
    /// Forward `F` in settle units and `ln(F/K)`.
    pub forward: f64,
    pub ln_moneyness: f64,
    /// Market vol and years to expiry.
    pub vol: f64,
    pub tau: f64,
    pub settle_price: f64,
}

/// Scenario P&L in USD per unit at each point of `at`:
/// `(black76_at(kind, F·g, K, ln(F/K) + ln g, σ_v√τ) − value) · settle_price`
/// (intrinsic value where `σ_v√τ` is below the floor of [`at_expiry`]), the
/// grid's points into `grid` and the systemic ones into `systemic`. `value`
/// gives the series' own value (settle units), subtracted from each point: it
/// is handed the parts of [`black76_parts`] at the series' own point
/// ([`Revaluation::own_point`]) when `at` has one and its deviation is above
/// the floor, the bits the scalar call on the series gives. Returns the value.
pub fn revalue(
    s: &SeriesPoint,
    at: &Revaluation,
    grid: &mut [f64],
    systemic: &mut [f64],
    value: impl FnOnce(Option<Parts>) -> f64,
) -> f64 {
    assert!(grid.len() == at.grid_len() && systemic.len() == at.systemic_len(), "one output per point");
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU supports AVX-512F, checked just above.
            return unsafe { revalue_avx512(s, at, grid, systemic, value) };
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2, checked just above.
            return unsafe { revalue_avx2(s, at, grid, systemic, value) };
        }
    }
    revalue_kernel(s, at, grid, systemic, value)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn revalue_avx512(
    s: &SeriesPoint,
    at: &Revaluation,
    grid: &mut [f64],
    systemic: &mut [f64],
    value: impl FnOnce(Option<Parts>) -> f64,
) -> f64 {
    revalue_kernel(s, at, grid, systemic, value)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn revalue_avx2(
    s: &SeriesPoint,
    at: &Revaluation,
    grid: &mut [f64],
    systemic: &mut [f64],
    value: impl FnOnce(Option<Parts>) -> f64,
) -> f64 {
    revalue_kernel(s, at, grid, systemic, value)
}

/// [`revalue`] on this CPU's lanes: the P&L pass too, so it runs as wide as the values.
#[inline(always)]
fn revalue_kernel(
    s: &SeriesPoint,
    at: &Revaluation,
    grid: &mut [f64],
    systemic: &mut [f64],
    value: impl FnOnce(Option<Parts>) -> f64,
) -> f64 {
    let own = values_kernel(s, at, grid, systemic);
    let value = value(own);
    for p in grid.iter_mut() {
        *p = (*p - value) * s.settle_price;
    }
    for p in systemic.iter_mut() {
        *p = (*p - value) * s.settle_price;
    }
    value
}

/// Each point's value (not yet P&L) into `grid` and `systemic`, and the parts
/// at the own point.
#[inline(always)]
fn values_kernel(s: &SeriesPoint, at: &Revaluation, grid: &mut [f64], systemic: &mut [f64]) -> Option<Parts> {
    let n_grid = grid.len();
    let n = n_grid + systemic.len();
    let own = at.own_point().unwrap_or(usize::MAX);
    // Whether any point expires: whether the one of least vol does (a point's
    // deviation grows with its vol factor, rounding included).
    let any_expiring = at_expiry(scaled_vol(s.vol, at.least_vol_growth(), at.vol_floor), s.tau);
    let mut own_parts = None;
    let mut first = 0;
    while first < n {
        // A last step of half the lanes or fewer runs on half the lanes (the
        // default profile's 67 points take 68 lanes, not 72); the step holding
        // the own point keeps its parts.
        let (half, has_own) = (n - first <= LANES / 2, own.wrapping_sub(first) < LANES);
        let steps = (any_expiring, &mut *grid, &mut *systemic);
        first += match (half, has_own) {
            (true, false) => step::<{ LANES / 2 }, false>(s, at, first, steps, &mut own_parts),
            (true, true) => step::<{ LANES / 2 }, true>(s, at, first, steps, &mut own_parts),
            (false, false) => step::<LANES, false>(s, at, first, steps, &mut own_parts),
            (false, true) => step::<LANES, true>(s, at, first, steps, &mut own_parts),
        };
    }
    own_parts
}

/// The `W` points of `at` from `first` (past the end: the padding), their
/// values into `grid` then `systemic`; with `OWN`, the step holds the own
/// point ([`Revaluation::own_point`]), whose parts go into `own_parts` unless
/// it expires. Returns `W`.
///
/// Each point's deviation is its own, from the point's vol factor `1 + v`:
/// `σ_v√τ`, its inverse and half computed in the lane (a division beside the
/// tails' one, which costs less than gathering them from a table of levels).
/// An expiring point (`σ_v√τ` below the floor of [`at_expiry`]) is priced with
/// a stand-in deviation of 1, and its value replaced by the intrinsic value
/// (looked for only when `any_expiring`).
#[inline(always)]
fn step<const W: usize, const OWN: bool>(
    s: &SeriesPoint,
    at: &Revaluation,
    first: usize,
    (any_expiring, grid, systemic): (bool, &mut [f64], &mut [f64]),
    own_parts: &mut Option<Parts>,
) -> usize {
    let root = s.tau.sqrt();
    let (g, lg, vg) =
        (&at.growth()[first..first + W], &at.ln_growth()[first..first + W], &at.vol_growth()[first..first + W]);
    let sigma = |j: usize| scaled_vol(s.vol, vg[j], at.vol_floor);
    let mut value = [0.0; W];
    // The parts beside the value: kept only in the step of the own point.
    let (mut d1, mut exp_d1, mut tail_d1) = ([0.0; W], [0.0; W], [0.0; W]);
    for j in 0..W {
        let sigma = sigma(j);
        let dev = Deviation::new(if at_expiry(sigma, s.tau) { 1.0 } else { sigma * root });
        let p = black76_parts(s.kind, s.forward * g[j], s.strike, s.ln_moneyness + lg[j], dev);
        value[j] = p.value;
        if OWN {
            (d1[j], exp_d1[j], tail_d1[j]) = (p.d1, p.exp_d1, p.tail_d1);
        }
    }
    if OWN {
        let j = at.own_point().map_or(W, |own| own - first);
        if j < W && !at_expiry(sigma(j), s.tau) {
            *own_parts = Some(Parts { value: value[j], d1: d1[j], exp_d1: exp_d1[j], tail_d1: tail_d1[j] });
        }
    }
    if any_expiring {
        for j in 0..W {
            if at_expiry(sigma(j), s.tau) {
                value[j] = intrinsic(s.kind, s.forward * g[j], s.strike);
            }
        }
    }
    if let Some(out) = grid.get_mut(first..first + W) {
        out.copy_from_slice(&value); // a whole step of the grid: one store
        return W;
    }
    let n_grid = grid.len();
    let n = n_grid + systemic.len();
    for (j, &p) in value.iter().enumerate().take(n.saturating_sub(first)) {
        let i = first + j;
        if i < n_grid {
            grid[i] = p;
        } else {
            systemic[i - n_grid] = p;
        }
    }
    W
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grid::Scenario;
    use crate::pricing::{black76_at, shocked_vol};

    /// A deterministic spread of `n` doubles from `lo` to `hi` (> 0) on a log
    /// scale, each nudged off the grid.
    fn spread(lo: f64, hi: f64, n: usize) -> Vec<f64> {
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        (0..n)
            .map(|i| {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                let jitter = (state >> 11) as f64 / (1u64 << 53) as f64;
                (lo.ln() + (i as f64 + jitter) / n as f64 * (hi.ln() - lo.ln())).exp()
            })
            .collect()
    }

    /// Every lane is the scalar formula on its point, bit for bit, in the
    /// dispatched kernel, the AVX2 one and the baseline one, and so are the
    /// parts handed over at the own point: moneyness from 1e-6 to 1e6,
    /// τ from 1e-12 years to 30 and at or past expiry, vols from a vanishing
    /// deviation through the floor to 10, calls and puts, a last step of
    /// whole and of half lanes.
    /// A build of [`revalue`] (baseline or AVX2), called directly.
    type Builds = fn(&SeriesPoint, &Revaluation, &mut [f64], &mut [f64], &mut dyn FnMut(Option<Parts>) -> f64) -> f64;

    #[test]
    fn lanes_are_the_scalar_formula() {
        let mut grid = Vec::new();
        for (i, r) in [-0.99, -0.5, -0.1, -0.03, 0.0, 0.02, 0.1, 0.7, 3.0].iter().enumerate() {
            for v in [-0.99, -0.3, 0.0, 0.3, 2.0].iter().take(1 + i % 5) {
                grid.push(Scenario { r: *r, v: *v, w: 1.0 });
            }
        }
        let systemic = [(-0.2, 0.5), (0.2, 0.0), (0.05, -0.2), (0.01, 0.1), (0.02, 0.15), (-0.05, 0.7)];
        // 31 points (a last step of whole lanes) and 27 (a last step of half).
        let all = Revaluation::new(&grid, &systemic, 0.05);
        let few = Revaluation::new(&grid, &systemic[..2], 0.05);
        assert_eq!((all.growth().len(), few.growth().len(), grid.len()), (32, 32, 25));
        let mut taus = spread(1e-12, 30.0, 17);
        taus.extend([0.0, -0.5, 1.0 / 365.0 / 86400.0]);
        let mut vols = spread(1e-16, 10.0, 15);
        vols.extend([0.05, 0.035, 1e-300, 1e-12]);
        let k = 60_000.0;
        let mut checked = 0;
        for (kind, at, systemic) in [
            (OptionKind::Call, &all, &systemic[..]),
            (OptionKind::Put, &all, &systemic[..]),
            (OptionKind::Call, &few, &systemic[..2]),
            (OptionKind::Put, &few, &systemic[..2]),
        ] {
            for m in spread(1e-6, 1e6, 41) {
                for &tau in &taus {
                    for &vol in &vols {
                        let forward = m * k;
                        let ln_moneyness = crate::pricing::ln_moneyness(forward, k);
                        let s = SeriesPoint { kind, strike: k, forward, ln_moneyness, vol, tau, settle_price: 0.999 };
                        let (mut grid_out, mut sys_out) = (vec![0.0; grid.len()], vec![0.0; systemic.len()]);
                        let mut own = None;
                        revalue(&s, at, &mut grid_out, &mut sys_out, |parts| {
                            own = parts;
                            1.5
                        });
                        let (mut grid_base, mut sys_base) = (vec![0.0; grid.len()], vec![0.0; systemic.len()]);
                        let own_base = values_kernel(&s, at, &mut grid_base, &mut sys_base);
                        let bits = |v: &[f64]| v.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                        // The baseline build, and the AVX2 one where AVX-512 took the dispatch.
                        let mut builds: Vec<Builds> = vec![|s, at, g, sy, v| revalue_kernel(s, at, g, sy, v)];
                        #[cfg(target_arch = "x86_64")]
                        if std::arch::is_x86_feature_detected!("avx2") {
                            builds.push(|s, at, g, sy, v| unsafe { revalue_avx2(s, at, g, sy, v) });
                        }
                        for build in builds {
                            let (mut g2, mut s2, mut own2) = (vec![0.0; grid.len()], vec![0.0; systemic.len()], None);
                            build(&s, at, &mut g2, &mut s2, &mut |p| {
                                own2 = p;
                                1.5
                            });
                            assert_eq!((bits(&g2), bits(&s2)), (bits(&grid_out), bits(&sys_out)));
                            assert_eq!(format!("{own2:?}"), format!("{own_base:?}"));
                        }
                        // The own point's parts are the scalar call's, bit for bit.
                        let dev = Deviation::new(vol * tau.sqrt());
                        match own {
                            Some(p) => {
                                let want = black76_parts(kind, forward, k, ln_moneyness, dev);
                                let bits = |p: Parts| [p.value, p.d1, p.exp_d1, p.tail_d1].map(f64::to_bits);
                                assert_eq!(bits(p), bits(want));
                                assert_eq!(format!("{own_base:?}"), format!("{own:?}"));
                            }
                            None => assert!(at_expiry(vol, tau), "the grid has an own point"),
                        }
                        let points = grid.iter().map(|p| (p.r, p.v)).chain(systemic.iter().copied());
                        let got = grid_out.iter().chain(&sys_out).zip(grid_base.iter().chain(&sys_base));
                        for ((r, v), (&got, &base)) in points.zip(got) {
                            let sigma = shocked_vol(vol, v, 0.05);
                            let (f, g) = (forward * (1.0 + r), 1.0 + r);
                            let value = if at_expiry(sigma, tau) {
                                intrinsic(kind, f, k)
                            } else {
                                black76_at(kind, f, k, ln_moneyness + libm::log(g), Deviation::new(sigma * tau.sqrt()))
                            };
                            let want = (value - 1.5) * 0.999;
                            assert_eq!(got.to_bits(), want.to_bits(), "{kind:?} F={forward} σ={sigma} τ={tau} r={r}");
                            assert_eq!(base.to_bits(), value.to_bits());
                            checked += 1;
                        }
                    }
                }
            }
        }
        assert!(checked > 100_000, "{checked}");
    }
}
