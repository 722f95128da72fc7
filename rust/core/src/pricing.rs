//! Pricing: Black-76 at zero rates for European options, intrinsic value at
//! or past expiry. Linear and inverse contracts need no model: their scenario
//! P&L is a dollar delta times the return (METHODOLOGY.md §1).
//!
//! One formula values every option point, [`black76_at`], on log-moneyness:
//! the scalar pricer calls it on one point and `lanes.rs` on a whole scenario
//! grid, so the two give the same bits. Its functions (the normal tail and the
//! exponential) are this file's own, branch-free and `#[inline(always)]`, with
//! no fused multiply-add, so the compiler vectorises them and every CPU gives
//! the same bits. Their accuracy is pinned against an arbitrary-precision
//! oracle (`tests/pricing_oracle.rs`): values to a relative 1e-12, or
//! 1e-15·(F+K) where they vanish, deltas to 1e-15; the tail's coefficients are
//! fitted by `tests/oracle/tail_fit.py`.

use crate::portfolio::OptionKind;

/// Seconds in the 365-day year that `τ` is measured in.
pub const YEAR_SECONDS: f64 = 365.0 * 86400.0;

/// Below this `σ·√τ` an option is valued as at expiry (intrinsic value, a step
/// delta, no gamma): Black-76's own limit, reached without dividing by a
/// deviation that vanishes or underflows to 0 (a vol of 1e-300 gave NaN).
pub const MIN_SD: f64 = 1e-12;

/// Whether an option is valued at expiry: `τ ≤ 0`, or `σ·√τ` below [`MIN_SD`].
#[inline(always)]
pub fn at_expiry(sigma: f64, tau: f64) -> bool {
    !(tau > 0.0 && sigma * tau.sqrt() >= MIN_SD)
}

/// The standard normal upper tail `Q(a) = N(−a)` for `a ≥ 0`, within a
/// relative 1e-15 from `a = 0` to its underflow near 37.5 (exactly 0 beyond):
/// `Q(a) = e^(−a²/2) · scaled_tail(a)`.
#[inline(always)]
pub fn upper_tail(a: f64) -> f64 {
    scaled_tail(a) * exp_half_square(a)
}

/// `Q(a)·e^(a²/2)` for `a ≥ 0` (a Mills ratio over √(2π)): `P(a)/D(a)`, a
/// rational function of degrees 9 and 10 fitted to the relative error on
/// `0 ≤ a ≤ 40` (`tests/oracle/tail_fit.py`: within 6e-17 before rounding),
/// its argument clamped at 40. `Q(a)` underflows by `a ≈ 37.5`, so past the
/// clamp only a factor that is exactly 0 multiplies the result (in
/// [`black76_parts`], `k·Q(|d2|) = f·e^(−d1²/2)·scaled_tail(|d2|)` with
/// `f·e^(−d1²/2) = k·e^(−d2²/2)`, far below 1e-15·k). Every coefficient is
/// positive, so evaluating them adds no cancellation. One formula for every
/// `a`: no ranges and no branch, so it runs the same in SIMD lanes
/// (`lanes.rs`) as here.
#[inline(always)]
fn scaled_tail(a: f64) -> f64 {
    let (p, d) = tail_ratio(clamp_tail(a));
    p / d
}

/// Where [`scaled_tail`] stops following its argument.
const TAIL_MAX: f64 = 40.0;

/// `min(a, TAIL_MAX)` in one instruction (`minpd`: no NaN handling; a NaN
/// argument makes the exponential beside it NaN anyway).
#[inline(always)]
fn clamp_tail(a: f64) -> f64 {
    if a < TAIL_MAX {
        a
    } else {
        TAIL_MAX
    }
}

/// [`scaled_tail`] of `a1` and `a2` on one division: `1/D(a1)` and `1/D(a2)`
/// from `1/(D(a1)·D(a2))` (below 1e11 each, so the product is finite).
#[inline(always)]
fn scaled_tails(a1: f64, a2: f64) -> (f64, f64) {
    let ((p1, d1), (p2, d2)) = (tail_ratio(clamp_tail(a1)), tail_ratio(clamp_tail(a2)));
    let inv = 1.0 / (d1 * d2);
    (p1 * (d2 * inv), p2 * (d1 * inv))
}

/// `P(a)` and `D(a)` of [`scaled_tail`], by Estrin's scheme on shared powers
/// of `a` (a short dependency chain: the lanes are bound by latency).
#[inline(always)]
fn tail_ratio(a: f64) -> (f64, f64) {
    const P: [f64; 10] = [
        0.5,
        0.7748631354412936,
        0.5940186475366378,
        0.28930512789640217,
        0.09768342480923027,
        0.02361638077722733,
        0.004087749725609405,
        0.0004901443962338278,
        3.7224235214364995e-05,
        1.3840679990273256e-06,
    ];
    const D: [f64; 11] = [
        1.0,
        2.3476108316854436,
        2.5611597324489597,
        1.7142761684849976,
        0.7819556169969879,
        0.2549158774294128,
        0.0604191593325794,
        0.010339776351405906,
        0.0012320791464248595,
        9.330732048779644e-05,
        3.469343980383616e-06,
    ];
    let a2 = a * a;
    let a4 = a2 * a2;
    let a8 = a4 * a4;
    let pair = |c: &[f64], i: usize| c[i] + c[i + 1] * a;
    let quad = |c: &[f64], i: usize| pair(c, i) + pair(c, i + 2) * a2;
    let p = quad(&P, 0) + quad(&P, 4) * a4 + pair(&P, 8) * a8;
    let d = quad(&D, 0) + quad(&D, 4) * a4 + (pair(&D, 8) + D[10] * a2) * a8;
    (p, d)
}

/// `e^(−a²/2)` for `a ≥ 0`, within 1 ulp: the exponent in two parts, the
/// first exact (`hi` keeps 26 bits of `a`, so `hi²` is exact), since in the
/// far tail it is in the hundreds and rounding it whole would cost 1e-13.
#[inline(always)]
fn exp_half_square(a: f64) -> f64 {
    let hi = f64::from_bits(a.to_bits() & !((1u64 << 27) - 1));
    exp_neg_sum(-0.5 * hi * hi, -0.5 * (a - hi) * (a + hi))
}

/// `e^x` for `x ≤ 0`, within 1 ulp; exactly 0 below −708 (where `e^x` leaves
/// the normal numbers, far below any value this crate prices).
#[inline(always)]
pub fn exp_neg(x: f64) -> f64 {
    exp_neg_sum(x, 0.0)
}

/// `e^(hi+lo)` for `hi + lo ≤ 0`, `|lo|` small beside `|hi|` or both small:
/// the sum is never rounded into one double. `hi + lo = k·ln2 + r`,
/// `|r| ≤ ln2/2`, `e^r = 1 + r + r²/2 + r³·T(r)` with `T` of degree 8 fitted
/// to the least maximum relative error of `e^r` (`tests/oracle/exp_fit.py`:
/// 2.5e-17 before rounding; the Taylor polynomial needs degree 13 for as
/// much), times `2^k` built from its bits. Branch-free. 0 below −708.
#[inline(always)]
fn exp_neg_sum(hi: f64, lo: f64) -> f64 {
    const LN2_HI: f64 = 0.6931471803691238; // 32 bits: k·LN2_HI is exact
    const LN2_LO: f64 = 1.9082149292705877e-10;
    const SHIFT: f64 = 6755399441055744.0; // 1.5·2^52: adding it rounds to an integer
                                           // T's coefficients, r^0 to r^8 (near 1/n!, n = 3..=11).
    const T: [f64; 9] = [
        0.1666666666666665,
        0.041666666666652016,
        0.00833333333338173,
        0.0013888888905435762,
        0.00019841269646919812,
        2.480153713578809e-05,
        2.7557557300916135e-06,
        2.761344936698555e-07,
        2.4979870042771548e-08,
    ];
    let x = hi + lo;
    let kd = x.max(-708.0) * std::f64::consts::LOG2_E + SHIFT;
    let bits = kd.to_bits();
    let k = kd - SHIFT;
    let r = ((hi - k * LN2_HI) + lo) - k * LN2_LO;
    let r2 = r * r;
    let r4 = r2 * r2;
    // By Estrin's scheme.
    let e = |i: usize| T[i] + T[i + 1] * r;
    let tail = (e(0) + e(2) * r2) + ((e(4) + e(6) * r2) + T[8] * r4) * r4;
    let er = 1.0 + (r + (0.5 * r2 + r2 * r * tail));
    // The low bits of kd hold 2^51 + k: 2^k is (k + 1023) << 52.
    let scale = f64::from_bits(bits.wrapping_add(1023u64.wrapping_sub(1 << 51)) << 52);
    let y = er * scale;
    if x < -708.0 {
        0.0
    } else {
        y
    }
}

/// Standard normal CDF, accurate to a relative 1e-15 in the lower tail and
/// 2e-16 absolute above 0 ([`upper_tail`]).
#[inline(always)]
pub fn norm_cdf(x: f64) -> f64 {
    let q = upper_tail(x.abs());
    if x < 0.0 {
        q
    } else {
        1.0 - q
    }
}

#[inline(always)]
pub fn norm_pdf(x: f64) -> f64 {
    exp_half_square(x.abs()) * FRAC_1_SQRT_2PI
}

/// `1/√(2π)`.
const FRAC_1_SQRT_2PI: f64 = 0.398_942_280_401_432_7;

#[inline]
pub fn intrinsic(kind: OptionKind, f: f64, k: f64) -> f64 {
    match kind {
        OptionKind::Call => (f - k).max(0.0),
        OptionKind::Put => (k - f).max(0.0),
    }
}

/// The deviation `σ·√τ` of one vol level, with what every point priced at it
/// shares: its inverse and its half.
#[derive(Debug, Clone, Copy)]
pub struct Deviation {
    pub sd: f64,
    /// `1/sd` and `sd/2`: [`Deviation::new`] computes them.
    pub(crate) inv: f64,
    pub(crate) half: f64,
}

impl Deviation {
    #[inline(always)]
    pub fn new(sd: f64) -> Self {
        Deviation { sd, inv: 1.0 / sd, half: 0.5 * sd }
    }

    /// `d1 = x/sd + sd/2` for log-moneyness `x = ln(F/K)`.
    #[inline(always)]
    pub fn d1(&self, x: f64) -> f64 {
        x * self.inv + self.half
    }
}

/// `±1`: Black-76 is `s·(F·N(s·d1) − K·N(s·d2))`, `s = 1` for a call, −1 for a put.
#[inline(always)]
fn sign(kind: OptionKind) -> f64 {
    match kind {
        OptionKind::Call => 1.0,
        OptionKind::Put => -1.0,
    }
}

/// Black-76 at one point, on log-moneyness: forward `f`, strike `k`,
/// `x = ln(f/k)` (given, so a grid that moves the forward by known factors adds
/// their logarithms instead of taking one a point) and deviation `dev` (above
/// [`MIN_SD`]). The one formula of the crate's option values: [`black76`] calls
/// it on one point and `lanes.rs` on a grid, so both give the same bits.
///
/// `s·(f·N(s·d1) − k·N(s·d2))`, `s = ±1`, with each `N` as `Q` or `1 − Q` by
/// the sign of its argument, and one exponential for both: `k·φ(d2) = f·φ(d1)`
/// (`d1² − d2² = 2x`), so `k·Q(|d2|) = f·e^(−d1²/2)·scaled_tail(|d2|)`.
#[inline(always)]
pub fn black76_at(kind: OptionKind, f: f64, k: f64, x: f64, dev: Deviation) -> f64 {
    black76_parts(kind, f, k, x, dev).value
}

/// What one evaluation of [`black76_at`] knows beside the value.
#[derive(Debug, Clone, Copy)]
pub struct Parts {
    pub value: f64,
    /// `d1` and `e^(−d1²/2)`.
    pub d1: f64,
    pub exp_d1: f64,
    /// `Q(|d1|) = N(−|d1|)`.
    pub tail_d1: f64,
}

impl Parts {
    /// `∂V/∂F`: `s·N(s·d1)`.
    #[inline(always)]
    pub fn delta(&self, kind: OptionKind) -> f64 {
        let s = sign(kind);
        s * if s * self.d1 < 0.0 { self.tail_d1 } else { 1.0 - self.tail_d1 }
    }

    /// `φ(d1)`.
    #[inline(always)]
    pub fn pdf(&self) -> f64 {
        self.exp_d1 * FRAC_1_SQRT_2PI
    }
}

/// [`black76_at`] with its parts, for the greeks of the series' own point.
#[inline(always)]
pub fn black76_parts(kind: OptionKind, f: f64, k: f64, x: f64, dev: Deviation) -> Parts {
    let s = sign(kind);
    let d1 = dev.d1(x);
    let d2 = d1 - dev.sd;
    let e = exp_half_square(d1.abs());
    let (t1, t2) = scaled_tails(d1.abs(), d2.abs());
    let fe = f * e;
    let (fq1, kq2) = (fe * t1, fe * t2);
    let fn1 = if s * d1 < 0.0 { fq1 } else { f - fq1 };
    let kn2 = if s * d2 < 0.0 { kq2 } else { k - kq2 };
    Parts { value: s * (fn1 - kn2), d1, exp_d1: e, tail_d1: t1 * e }
}

/// `ln(f/k)`, to a relative 2e-16 even as `f/k → 1`: near the money as
/// `ln(1 + (f−k)/k)` (`f − k` is exact there), so a forward within 1e-12 of the
/// strike keeps its log-moneyness, which `d1 = x/σ√τ` magnifies when `σ√τ` is small.
#[inline]
pub fn ln_moneyness(f: f64, k: f64) -> f64 {
    let ratio = f / k;
    if (0.5..=2.0).contains(&ratio) {
        libm::log1p((f - k) / k)
    } else {
        libm::log(ratio)
    }
}

/// Black-76 value of one option on forward `f`, strike `k`, vol `sigma`,
/// `tau` years to expiry, in the forward's units. At expiry ([`at_expiry`]): intrinsic.
/// Accurate to a relative 1e-12 of the exact Black-76 value of the same
/// inputs, or 1e-15·(f + k) absolute where the value vanishes against `f` and
/// `k` (deep out of the money, or `σ√τ` tiny at the money), as tested against
/// an arbitrary-precision oracle (tests/test_pricing_oracle.py).
#[inline]
pub fn black76(kind: OptionKind, f: f64, k: f64, sigma: f64, tau: f64) -> f64 {
    if at_expiry(sigma, tau) {
        return intrinsic(kind, f, k);
    }
    black76_at(kind, f, k, ln_moneyness(f, k), Deviation::new(sigma * tau.sqrt()))
}

/// Black-76 delta `∂V/∂F`: `N(d1)` for a call, `−N(−d1)` for a put; at or
/// past expiry 1, 0 or −1 by moneyness (0 at the money).
#[inline]
pub fn black76_delta(kind: OptionKind, f: f64, k: f64, sigma: f64, tau: f64) -> f64 {
    if at_expiry(sigma, tau) {
        return match kind {
            OptionKind::Call if f > k => 1.0,
            OptionKind::Put if f < k => -1.0,
            _ => 0.0,
        };
    }
    delta_at(kind, ln_moneyness(f, k), Deviation::new(sigma * tau.sqrt()))
}

/// [`black76_delta`] on log-moneyness `x`, off expiry.
#[inline(always)]
pub fn delta_at(kind: OptionKind, x: f64, dev: Deviation) -> f64 {
    let s = sign(kind);
    s * norm_cdf(s * dev.d1(x))
}

/// The vol of a scenario with relative shock `v`: `max(σ(1+v), min(σ, floor))`,
/// so `v = 0` gives `σ` itself and a downward shock stops at the floor.
#[inline]
pub fn shocked_vol(sigma: f64, v: f64, floor: f64) -> f64 {
    scaled_vol(sigma, 1.0 + v, floor)
}

/// [`shocked_vol`] with the shock given as the factor `1 + v` (a profile's
/// scenario points keep it).
#[inline(always)]
pub fn scaled_vol(sigma: f64, factor: f64, floor: f64) -> f64 {
    (sigma * factor).max(sigma.min(floor))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_value_and_parity() {
        let c = black76(OptionKind::Call, 100.0, 100.0, 0.2, 1.0);
        assert!((c - 7.965567455405804).abs() < 1e-12, "{c}");
        for &(f, k, s, t) in &[(100.0, 90.0, 0.5, 0.3), (60000.0, 70000.0, 0.5, 0.08), (1.0, 1.2, 0.05, 2.0)] {
            let c = black76(OptionKind::Call, f, k, s, t);
            let p = black76(OptionKind::Put, f, k, s, t);
            assert!((c - p - (f - k)).abs() < 1e-9 * f, "parity {f} {k}");
        }
    }

    #[test]
    fn cdf_tails() {
        assert!((norm_cdf(0.0) - 0.5).abs() <= f64::EPSILON / 4.0);
        // N(-10) = 7.61985302416e-24: the tail keeps its relative precision.
        assert!((norm_cdf(-10.0) / 7.619853024160527e-24 - 1.0).abs() < 1e-14);
        assert!((norm_cdf(10.0) - 1.0).abs() < 1e-15);
        assert_eq!(norm_cdf(-40.0), 0.0);
        assert_eq!(norm_cdf(40.0), 1.0);
        assert_eq!(norm_cdf(-1e300), 0.0);
    }

    /// `libm` (musl) as an independent oracle of the two functions, on a dense
    /// spread of their domains: `exp_neg` within 1 ulp (2.3e-16 relative) on
    /// [−708, 0], the upper tail within a relative 1e-15 of `erfc(a/√2)/2` up to
    /// its underflow (both tails of the CDF follow).
    #[test]
    fn functions_match_libm() {
        let n = 200_000;
        let mut worst = (0.0f64, 0.0f64);
        for i in 0..=n {
            let x = -708.0 * (i as f64 / n as f64).powi(3);
            let (got, want) = (exp_neg(x), libm::exp(x));
            let rel = (got / want - 1.0).abs();
            if rel > worst.0 {
                worst = (rel, x);
            }
        }
        assert!(worst.0 <= 2.3e-16, "exp_neg: rel {:e} at {}", worst.0, worst.1);
        assert_eq!(exp_neg(-708.5), 0.0);
        assert_eq!(exp_neg(0.0), 1.0);
        assert_eq!(exp_neg(-0.0), 1.0);
        let mut worst = (0.0f64, 0.0f64);
        for i in 0..=n {
            let a = 37.5 * (i as f64 / n as f64).powi(2);
            let (got, want) = (upper_tail(a), 0.5 * libm::erfc(a * std::f64::consts::FRAC_1_SQRT_2));
            // Less what rounding a/√2 costs this oracle (up to a relative a²·ε; the
            // arbitrary-precision oracle of tests/pricing_oracle.rs has no such term).
            let rel = (got / want - 1.0).abs() - a * a * f64::EPSILON;
            if rel > worst.0 {
                worst = (rel, a);
            }
        }
        assert!(worst.0 <= 1e-15, "upper_tail: rel {:e} at {}", worst.0, worst.1);
    }

    #[test]
    fn expiry_is_intrinsic() {
        assert_eq!(black76(OptionKind::Call, 110.0, 100.0, 0.5, 0.0), 10.0);
        assert_eq!(black76(OptionKind::Put, 110.0, 100.0, 0.5, -1.0), 0.0);
        assert_eq!(black76_delta(OptionKind::Call, 100.0, 100.0, 0.5, 0.0), 0.0);
        assert_eq!(black76_delta(OptionKind::Put, 90.0, 100.0, 0.5, 0.0), -1.0);
    }

    #[test]
    fn delta_matches_finite_difference() {
        for kind in [OptionKind::Call, OptionKind::Put] {
            let (f, k, s, t) = (100.0, 105.0, 0.4, 0.5);
            let h = 1e-4;
            let fd = (black76(kind, f + h, k, s, t) - black76(kind, f - h, k, s, t)) / (2.0 * h);
            assert!((fd - black76_delta(kind, f, k, s, t)).abs() < 1e-7);
        }
    }

    #[test]
    fn vol_floor() {
        assert_eq!(shocked_vol(0.5, 0.0, 0.05), 0.5);
        assert_eq!(shocked_vol(0.5, -0.3, 0.05), 0.35);
        assert_eq!(shocked_vol(0.06, -0.3, 0.05), 0.05);
        assert_eq!(shocked_vol(0.03, -0.3, 0.05), 0.03);
    }
}
