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
//! runs per point; points of one vol shock (a level) share `σ√τ`, its
//! inverse and half, computed once a level (a division each: the lanes'
//! only other division is the normal tails', and on AVX-512 the divider is
//! what they wait on) and looked up by each point's level with the CPU's
//! permutations (`vpermpd` under AVX-512, `vpermps` under AVX2), exact loads.
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
    revalue_kernel::<Scalar>(s, at, grid, systemic, value)
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
    revalue_kernel::<x86::Avx512>(s, at, grid, systemic, value)
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
    revalue_kernel::<x86::Avx2>(s, at, grid, systemic, value)
}

/// [`revalue`] on this CPU's lanes: the P&L pass too, so it runs as wide as the values.
#[inline(always)]
fn revalue_kernel<G: Gather>(
    s: &SeriesPoint,
    at: &Revaluation,
    grid: &mut [f64],
    systemic: &mut [f64],
    value: impl FnOnce(Option<Parts>) -> f64,
) -> f64 {
    let own = values_kernel::<G>(s, at, grid, systemic);
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
fn values_kernel<G: Gather>(
    s: &SeriesPoint,
    at: &Revaluation,
    grid: &mut [f64],
    systemic: &mut [f64],
) -> Option<Parts> {
    if at.level_growth().len() <= LEVELS {
        // Each level's deviation, its inverse and half, in three tables; an
        // expiring level's stand-in deviation is 1.
        let mut t = Levels { sd: [1.0; LEVELS], inv: [1.0; LEVELS], half: [0.5; LEVELS], n: at.level_growth().len() };
        let root = s.tau.sqrt();
        for (l, &f) in at.level_growth().iter().enumerate() {
            let sigma = scaled_vol(s.vol, f, at.vol_floor);
            let dev = Deviation::new(if at_expiry(sigma, s.tau) { 1.0 } else { sigma * root });
            (t.sd[l], t.inv[l], t.half[l]) = (dev.sd, dev.inv, dev.half);
        }
        return steps(s, at, grid, systemic, &Table::<G> { t, level: at.level(), gather: std::marker::PhantomData });
    }
    steps(s, at, grid, systemic, &PerLane { s, at })
}

/// Levels whose deviations the kernel keeps in tables.
const LEVELS: usize = 8;

/// Each level's deviation `σ_ℓ√τ`, its inverse and half, for the first `n` levels.
#[derive(Debug, Clone, Copy)]
struct Levels {
    sd: [f64; LEVELS],
    inv: [f64; LEVELS],
    half: [f64; LEVELS],
    n: usize,
}

/// Where a step's deviations come from: `fill` writes the deviation, inverse
/// and half of the `W` points from `first`.
trait Deviations {
    fn fill<const W: usize>(&self, first: usize, sd: &mut [f64; W], inv: &mut [f64; W], half: &mut [f64; W]);
}

/// Computed in each lane, from the point's vol factor (a division a lane):
/// for profiles of more than [`LEVELS`] levels.
struct PerLane<'a> {
    s: &'a SeriesPoint,
    at: &'a Revaluation,
}

impl Deviations for PerLane<'_> {
    #[inline(always)]
    fn fill<const W: usize>(&self, first: usize, sd: &mut [f64; W], inv: &mut [f64; W], half: &mut [f64; W]) {
        let (s, root) = (self.s, self.s.tau.sqrt());
        let vg = &self.at.vol_growth()[first..first + W];
        for j in 0..W {
            let sigma = scaled_vol(s.vol, vg[j], self.at.vol_floor);
            let dev = Deviation::new(if at_expiry(sigma, s.tau) { 1.0 } else { sigma * root });
            (sd[j], inv[j], half[j]) = (dev.sd, dev.inv, dev.half);
        }
    }
}

/// Looked up in the levels' tables by each point's level, with `G`'s instructions.
struct Table<'a, G> {
    t: Levels,
    level: &'a [u32],
    gather: std::marker::PhantomData<G>,
}

impl<G: Gather> Deviations for Table<'_, G> {
    #[inline(always)]
    fn fill<const W: usize>(&self, first: usize, sd: &mut [f64; W], inv: &mut [f64; W], half: &mut [f64; W]) {
        let level: &[u32; W] = self.level[first..first + W].try_into().expect("a whole step of levels");
        G::gather(&self.t, level, [sd, inv, half]);
    }
}

/// Table lookups of `W` lanes: `out[k][j]` is table `k`'s entry at `level[j]`
/// (sd, inv, half), exact loads whatever the instructions.
trait Gather {
    fn gather<const W: usize>(t: &Levels, level: &[u32; W], out: [&mut [f64; W]; 3]);
}

/// One load a lane: the baseline kernel's, and any case the others do not cover.
struct Scalar;

impl Gather for Scalar {
    #[inline(always)]
    fn gather<const W: usize>(t: &Levels, level: &[u32; W], [sd, inv, half]: [&mut [f64; W]; 3]) {
        for j in 0..W {
            let l = level[j] as usize % LEVELS;
            (sd[j], inv[j], half[j]) = (t.sd[l], t.inv[l], t.half[l]);
        }
    }
}

/// Lanes permuted from the tables held in registers.
#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{Gather, Levels, Scalar, LEVELS};
    use std::arch::x86_64::*;

    /// Within `revalue_avx2` only (AVX2 detected): four levels in a 256-bit
    /// register, a permutation of 32-bit halves (`vpermps`) per four lanes.
    pub(super) struct Avx2;

    /// Within `revalue_avx512` only (AVX-512F detected): eight levels in a
    /// 512-bit register, one permutation (`vpermpd`) per eight lanes.
    pub(super) struct Avx512;

    impl Gather for Avx2 {
        #[inline(always)]
        fn gather<const W: usize>(t: &Levels, level: &[u32; W], out: [&mut [f64; W]; 3]) {
            if t.n <= 4 && W.is_multiple_of(4) {
                // SAFETY: only revalue_avx2 and revalue_avx512 use this type, after detecting AVX2.
                unsafe { gather4(t, level, out) }
            } else {
                Scalar::gather(t, level, out)
            }
        }
    }

    impl Gather for Avx512 {
        #[inline(always)]
        fn gather<const W: usize>(t: &Levels, level: &[u32; W], out: [&mut [f64; W]; 3]) {
            if W == LEVELS {
                // SAFETY: only revalue_avx512 uses this type, after detecting AVX-512F.
                unsafe { gather8(t, level, out) }
            } else {
                Avx2::gather(t, level, out)
            }
        }
    }

    /// [`Gather::gather`] of up to four levels, `W` a multiple of 4.
    #[target_feature(enable = "avx2")]
    unsafe fn gather4<const W: usize>(t: &Levels, level: &[u32; W], [sd, inv, half]: [&mut [f64; W]; 3]) {
        let table = |x: &[f64; LEVELS]| _mm256_castpd_ps(_mm256_loadu_pd(x.as_ptr()));
        let (tsd, tinv, thalf) = (table(&t.sd), table(&t.inv), table(&t.half));
        for q in (0..W).step_by(4) {
            // Level l of a lane selects the 32-bit halves 2l and 2l + 1.
            let l = _mm256_cvtepu32_epi64(_mm_loadu_si128(level[q..].as_ptr().cast()));
            let lo = _mm256_add_epi64(l, l);
            let idx = _mm256_or_si256(lo, _mm256_slli_epi64(_mm256_add_epi64(lo, _mm256_set1_epi64x(1)), 32));
            let pick = |tab: __m256| _mm256_castps_pd(_mm256_permutevar8x32_ps(tab, idx));
            _mm256_storeu_pd(sd[q..].as_mut_ptr(), pick(tsd));
            _mm256_storeu_pd(inv[q..].as_mut_ptr(), pick(tinv));
            _mm256_storeu_pd(half[q..].as_mut_ptr(), pick(thalf));
        }
    }

    /// [`Gather::gather`] of up to eight levels, eight lanes.
    #[target_feature(enable = "avx512f")]
    unsafe fn gather8<const W: usize>(t: &Levels, level: &[u32; W], [sd, inv, half]: [&mut [f64; W]; 3]) {
        debug_assert!(W == LEVELS);
        let idx = _mm512_cvtepu32_epi64(_mm256_loadu_si256(level.as_ptr().cast()));
        let pick = |x: &[f64; LEVELS]| _mm512_permutexvar_pd(idx, _mm512_loadu_pd(x.as_ptr()));
        _mm512_storeu_pd(sd.as_mut_ptr(), pick(&t.sd));
        _mm512_storeu_pd(inv.as_mut_ptr(), pick(&t.inv));
        _mm512_storeu_pd(half.as_mut_ptr(), pick(&t.half));
    }
}

/// The kernel's loop over the steps, the deviations from `devs`.
#[inline(always)]
fn steps(
    s: &SeriesPoint,
    at: &Revaluation,
    grid: &mut [f64],
    systemic: &mut [f64],
    devs: &impl Deviations,
) -> Option<Parts> {
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
            (true, false) => step::<{ LANES / 2 }, false>(s, at, first, devs, steps, &mut own_parts),
            (true, true) => step::<{ LANES / 2 }, true>(s, at, first, devs, steps, &mut own_parts),
            (false, false) => step::<LANES, false>(s, at, first, devs, steps, &mut own_parts),
            (false, true) => step::<LANES, true>(s, at, first, devs, steps, &mut own_parts),
        };
    }
    own_parts
}

/// The `W` points of `at` from `first` (past the end: the padding), their
/// values into `grid` then `systemic`; with `OWN`, the step holds the own
/// point ([`Revaluation::own_point`]), whose parts go into `own_parts` unless
/// it expires. Returns `W`.
///
/// The points' deviations come from `devs` (their levels' tables, or computed
/// in the lane beyond [`LEVELS`] levels). An expiring point (`σ_v√τ` below the floor of [`at_expiry`]) is priced with
/// a stand-in deviation of 1, and its value replaced by the intrinsic value
/// (looked for only when `any_expiring`).
#[inline(always)]
fn step<const W: usize, const OWN: bool>(
    s: &SeriesPoint,
    at: &Revaluation,
    first: usize,
    devs: &impl Deviations,
    (any_expiring, grid, systemic): (bool, &mut [f64], &mut [f64]),
    own_parts: &mut Option<Parts>,
) -> usize {
    let (g, lg, vg) =
        (&at.growth()[first..first + W], &at.ln_growth()[first..first + W], &at.vol_growth()[first..first + W]);
    let sigma = |j: usize| scaled_vol(s.vol, vg[j], at.vol_floor);
    let (mut sd, mut inv, mut half) = ([0.0; W], [0.0; W], [0.0; W]);
    devs.fill(first, &mut sd, &mut inv, &mut half);
    let mut value = [0.0; W];
    // The parts beside the value: kept only in the step of the own point.
    let (mut d1, mut exp_d1, mut tail_d1) = ([0.0; W], [0.0; W], [0.0; W]);
    for j in 0..W {
        let dev = Deviation { sd: sd[j], inv: inv[j], half: half[j] };
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
        // 31 points (a last step of whole lanes) and 27 (a last step of half);
        // ten vol levels (the deviations computed per lane), six (a table, held
        // in one AVX-512 register) and four (in one AVX2 register).
        let all = Revaluation::new(&grid, &systemic, 0.05);
        let few = Revaluation::new(&grid, &systemic[..2], 0.05);
        let grid4: Vec<_> = grid.iter().filter(|p| p.v.abs() < 0.5).copied().collect();
        let four = Revaluation::new(&grid4, &systemic[..2], 0.05);
        assert_eq!((all.growth().len(), few.growth().len(), grid.len()), (32, 32, 25));
        let levels = [&all, &few, &four].map(|at| at.level_growth().len());
        assert_eq!(levels, [10, 6, 4]);
        let mut taus = spread(1e-12, 30.0, 17);
        taus.extend([0.0, -0.5, 1.0 / 365.0 / 86400.0]);
        let mut vols = spread(1e-16, 10.0, 15);
        vols.extend([0.05, 0.035, 1e-300, 1e-12]);
        let k = 60_000.0;
        let mut checked = 0;
        for (kind, at, grid, systemic) in [
            (OptionKind::Call, &all, &grid, &systemic[..]),
            (OptionKind::Put, &all, &grid, &systemic[..]),
            (OptionKind::Call, &few, &grid, &systemic[..2]),
            (OptionKind::Put, &few, &grid, &systemic[..2]),
            (OptionKind::Call, &four, &grid4, &systemic[..2]),
            (OptionKind::Put, &four, &grid4, &systemic[..2]),
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
                        let own_base = values_kernel::<Scalar>(&s, at, &mut grid_base, &mut sys_base);
                        let bits = |v: &[f64]| v.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                        // The baseline build, and the AVX2 one where AVX-512 took the dispatch.
                        let mut builds: Vec<Builds> = vec![|s, at, g, sy, v| revalue_kernel::<Scalar>(s, at, g, sy, v)];
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
