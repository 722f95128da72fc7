//! Black-76 on many scenario points at once: the option series of a snapshot
//! is revalued on its whole grid (`series.rs`), so the logarithm, the
//! exponential and the normal CDF run in SIMD lanes, [`LANES`] points a step.
//!
//! The lanes are hand-written (`[f64; LANES]` arrays whose loops the compiler
//! vectorises) rather than taken from a SIMD crate, because they must give the
//! scalar pricer's numbers bit for bit: each function is the scalar one's
//! algorithm (musl's `log`, `exp` and `erfc` as the `libm` crate writes them),
//! the same operations in the same order, with no fused multiply-add. A lane
//! outside the common path (a subnormal, an infinity, an `exp` that under- or
//! overflows, an `erfc` argument beyond ±28) is recomputed by the scalar
//! function, so every lane is exactly what the scalar call returns.
//!
//! `erfc` has four rational approximations by range of `|x|`; the points are
//! sorted by range first, so each step computes one approximation on full
//! lanes instead of every approximation on mixed ones. Eight lanes (two AVX2
//! registers) keep two independent chains of divisions in flight. On x86-64
//! the kernel is compiled twice, for the baseline (SSE2) and for AVX2, and the
//! CPU picks at run time.

// The constants are musl's, digit for digit, as the scalar functions have them.
#![allow(clippy::excessive_precision)]

use crate::portfolio::OptionKind;
use crate::pricing::{at_expiry, intrinsic};
use std::f64::consts::{FRAC_1_SQRT_2, LOG2_E};

/// Scenario points a step.
pub const LANES: usize = 8;
type V = [f64; LANES];

/// Black-76 values of one series (kind, strike `k`, `tau` years) at forwards
/// `f[i]` and vols `sigma[i]`, into `out[i]`: bit for bit
/// `pricing::black76(kind, f[i], k, sigma[i], tau)`.
pub fn black76_many(kind: OptionKind, k: f64, tau: f64, f: &[f64], sigma: &[f64], out: &mut [f64]) {
    assert!(f.len() == sigma.len() && f.len() == out.len(), "one forward and one vol per output");
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2, checked just above.
            return unsafe { black76_avx2(kind, k, tau, f, sigma, out) };
        }
    }
    black76_kernel(kind, k, tau, f, sigma, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn black76_avx2(kind: OptionKind, k: f64, tau: f64, f: &[f64], sigma: &[f64], out: &mut [f64]) {
    black76_kernel(kind, k, tau, f, sigma, out)
}

/// `x[i] = log(x[i])` in steps of [`LANES`] (the last step padded with its first value).
#[inline(always)]
fn log_in_place(x: &mut [f64]) {
    for xs in x.chunks_mut(LANES) {
        let mut v = [xs[0]; LANES];
        v[..xs.len()].copy_from_slice(xs);
        let y = log_lanes(&v);
        xs.copy_from_slice(&y[..xs.len()]);
    }
}

/// Points priced per block: the block's intermediate values stay on the stack (and in
/// L1), a group grid with its systemic scenarios (67 points by default) in one block,
/// and the 2·BLOCK arguments of erfc indexed by a byte.
const BLOCK: usize = 128;

#[inline(always)]
fn black76_kernel(kind: OptionKind, k: f64, tau: f64, f: &[f64], sigma: &[f64], out: &mut [f64]) {
    for ((f, sigma), out) in f.chunks(BLOCK).zip(sigma.chunks(BLOCK)).zip(out.chunks_mut(BLOCK)) {
        black76_block(kind, k, tau, f, sigma, out);
    }
}

/// [`black76_kernel`] on at most [`BLOCK`] points.
#[inline(always)]
fn black76_block(kind: OptionKind, k: f64, tau: f64, f: &[f64], sigma: &[f64], out: &mut [f64]) {
    let n = f.len();
    let root = tau.sqrt();
    let (mut sd, mut ln) = ([0.0; BLOCK], [0.0; BLOCK]);
    for i in 0..n {
        sd[i] = sigma[i] * root;
        ln[i] = f[i] / k;
    }
    log_in_place(&mut ln[..n]);
    // The 2n arguments of erfc: N(d) = erfc(−d/√2)/2, as `pricing::norm_cdf` writes it;
    // a call takes N(d1), N(d2), a put N(−d2), N(−d1).
    let mut values = [0.0; 2 * BLOCK];
    for i in 0..n {
        let d1 = (ln[i] + 0.5 * sd[i] * sd[i]) / sd[i];
        let d2 = d1 - sd[i];
        let (a, b) = match kind {
            OptionKind::Call => (d1, d2),
            OptionKind::Put => (-d2, -d1),
        };
        values[i] = -a * FRAC_1_SQRT_2;
        values[n + i] = -b * FRAC_1_SQRT_2;
    }
    erfc_in_place(&mut values[..2 * n]);
    for i in 0..n {
        let (na, nb) = (0.5 * values[i], 0.5 * values[n + i]);
        let v = match kind {
            OptionKind::Call => f[i] * na - k * nb,
            OptionKind::Put => k * na - f[i] * nb,
        };
        out[i] = if at_expiry(sigma[i], tau) { intrinsic(kind, f[i], k) } else { v };
    }
}

#[inline(always)]
fn high_word(x: f64) -> u32 {
    (x.to_bits() >> 32) as u32
}

/// `if c { a } else { b }` with both already computed: a blend, not a branch.
#[inline(always)]
fn select(c: bool, a: f64, b: f64) -> f64 {
    let m = (c as u64).wrapping_neg();
    f64::from_bits((a.to_bits() & m) | (b.to_bits() & !m))
}

#[inline(always)]
fn select_i32(c: bool, a: i32, b: i32) -> i32 {
    let m = (c as i32).wrapping_neg();
    (a & m) | (b & !m)
}

/// Replace the lanes `special` marks with the scalar function's value.
#[inline(always)]
fn patch(out: &mut V, x: &V, special: &[bool; LANES], scalar: fn(f64) -> f64) {
    if special.iter().any(|&s| s) {
        for i in 0..LANES {
            if special[i] {
                out[i] = scalar(x[i]);
            }
        }
    }
}

const LN2_HI: f64 = 6.93147180369123816490e-01;
const LN2_LO: f64 = 1.90821492927058770002e-10;
const LG1: f64 = 6.666666666666735130e-01;
const LG2: f64 = 3.999999999940941908e-01;
const LG3: f64 = 2.857142874366239149e-01;
const LG4: f64 = 2.222219843214978396e-01;
const LG5: f64 = 1.818357216161805012e-01;
const LG6: f64 = 1.531383769920937332e-01;
const LG7: f64 = 1.479819860511658591e-01;

/// `libm::log` on each lane (musl's algorithm: `x = 2^k·(1+f)`, `f` in
/// `[√2/2−1, √2−1]`, a polynomial in `s = f/(2+f)`).
#[inline(always)]
pub fn log_lanes(x: &V) -> V {
    let mut special = [false; LANES];
    for i in 0..LANES {
        let (ui, hx) = (x[i].to_bits(), high_word(x[i]));
        // ≤ 0, subnormal, inf or NaN, or exactly 1.
        special[i] = hx < 0x0010_0000 || hx >> 31 != 0 || hx >= 0x7ff0_0000 || (hx == 0x3ff0_0000 && ui << 32 == 0);
    }
    let mut out = [0.0; LANES];
    for i in 0..LANES {
        let ui = x[i].to_bits();
        let mut hx = (ui >> 32) as u32;
        hx = hx.wrapping_add(0x3ff0_0000 - 0x3fe6_a09e);
        let k = ((hx >> 20) as i32) - 0x3ff;
        hx = (hx & 0x000f_ffff) + 0x3fe6_a09e;
        let y = f64::from_bits(((hx as u64) << 32) | (ui & 0xffff_ffff));
        let f = y - 1.0;
        let hfsq = 0.5 * f * f;
        let s = f / (2.0 + f);
        let z = s * s;
        let w = z * z;
        let t1 = w * (LG2 + w * (LG4 + w * LG6));
        let t2 = z * (LG1 + w * (LG3 + w * (LG5 + w * LG7)));
        let r = t2 + t1;
        let dk = k as f64;
        out[i] = s * (hfsq + r) + dk * LN2_LO - hfsq + f + dk * LN2_HI;
    }
    patch(&mut out, x, &special, libm::log);
    out
}

const P1: f64 = 1.66666666666666019037e-01;
const P2: f64 = -2.77777777770155933842e-03;
const P3: f64 = 6.61375632143793436117e-05;
const P4: f64 = -1.65339022054652515390e-06;
const P5: f64 = 4.13813679705723846039e-08;

/// `libm::exp` on each lane (musl's algorithm: `x = k·ln2 + r`, a rational
/// approximation of `exp(r)`, times `2^k`). `|x| ≥ 708.39` goes to the scalar.
#[inline(always)]
pub fn exp_lanes(x: &V) -> V {
    let mut special = [false; LANES];
    for i in 0..LANES {
        special[i] = high_word(x[i]) & 0x7fff_ffff >= 0x4086_232b;
    }
    let mut out = [0.0; LANES];
    for i in 0..LANES {
        let hx = high_word(x[i]);
        let sign = (hx >> 31) as i32;
        let hx = hx & 0x7fff_ffff;
        // Reduction: k = round(x/ln2) beyond 1.5·ln2, ±1 beyond ln2/2, else 0 (then hi = x
        // and lo = 0 exactly, as musl's own branch). Every candidate is computed and
        // selected, so the lanes stay in vector registers.
        let far = (LOG2_E * x[i] + 0.5f64.copysign(x[i])) as i32;
        let near = 1 - sign - sign;
        let k = select_i32(hx > 0x3fd6_2e42, select_i32(hx >= 0x3ff0_a2b2, far, near), 0);
        let hi = x[i] - k as f64 * LN2_HI;
        let lo = k as f64 * LN2_LO;
        let r = hi - lo;
        let rr = r * r;
        let c = r - rr * (P1 + rr * (P2 + rr * (P3 + rr * (P4 + rr * P5))));
        let y = 1.0 + (r * c / (2.0 - c) - lo + hi);
        // |x| < 708.39: k in [−1022, 1022], so 2^k is a normal number and scalbn one product.
        let scaled = y * f64::from_bits((0x3ff_i32.wrapping_add(k) as u64) << 52);
        // |x| ≤ 2^−28: musl returns 1 + x.
        out[i] = select(hx <= 0x3e30_0000, 1.0 + x[i], scaled);
    }
    patch(&mut out, x, &special, libm::exp);
    out
}

const ERX: f64 = 8.45062911510467529297e-01;
const PP0: f64 = 1.28379167095512558561e-01;
const PP1: f64 = -3.25042107247001499370e-01;
const PP2: f64 = -2.84817495755985104766e-02;
const PP3: f64 = -5.77027029648944159157e-03;
const PP4: f64 = -2.37630166566501626084e-05;
const QQ1: f64 = 3.97917223959155352819e-01;
const QQ2: f64 = 6.50222499887672944485e-02;
const QQ3: f64 = 5.08130628187576562776e-03;
const QQ4: f64 = 1.32494738004321644526e-04;
const QQ5: f64 = -3.96022827877536812320e-06;
const PA0: f64 = -2.36211856075265944077e-03;
const PA1: f64 = 4.14856118683748331666e-01;
const PA2: f64 = -3.72207876035701323847e-01;
const PA3: f64 = 3.18346619901161753674e-01;
const PA4: f64 = -1.10894694282396677476e-01;
const PA5: f64 = 3.54783043256182359371e-02;
const PA6: f64 = -2.16637559486879084300e-03;
const QA1: f64 = 1.06420880400844228286e-01;
const QA2: f64 = 5.40397917702171048937e-01;
const QA3: f64 = 7.18286544141962662868e-02;
const QA4: f64 = 1.26171219808761642112e-01;
const QA5: f64 = 1.36370839120290507362e-02;
const QA6: f64 = 1.19844998467991074170e-02;
const RA0: f64 = -9.86494403484714822705e-03;
const RA1: f64 = -6.93858572707181764372e-01;
const RA2: f64 = -1.05586262253232909814e+01;
const RA3: f64 = -6.23753324503260060396e+01;
const RA4: f64 = -1.62396669462573470355e+02;
const RA5: f64 = -1.84605092906711035994e+02;
const RA6: f64 = -8.12874355063065934246e+01;
const RA7: f64 = -9.81432934416914548592e+00;
const SA1: f64 = 1.96512716674392571292e+01;
const SA2: f64 = 1.37657754143519042600e+02;
const SA3: f64 = 4.34565877475229228821e+02;
const SA4: f64 = 6.45387271733267880336e+02;
const SA5: f64 = 4.29008140027567833386e+02;
const SA6: f64 = 1.08635005541779435134e+02;
const SA7: f64 = 6.57024977031928170135e+00;
const SA8: f64 = -6.04244152148580987438e-02;
const RB0: f64 = -9.86494292470009928597e-03;
const RB1: f64 = -7.99283237680523006574e-01;
const RB2: f64 = -1.77579549177547519889e+01;
const RB3: f64 = -1.60636384855821916062e+02;
const RB4: f64 = -6.37566443368389627722e+02;
const RB5: f64 = -1.02509513161107724954e+03;
const RB6: f64 = -4.83519191608651397019e+02;
const SB1: f64 = 3.03380607434824582924e+01;
const SB2: f64 = 3.25792512996573918826e+02;
const SB3: f64 = 1.53672958608443695994e+03;
const SB4: f64 = 3.19985821950859553908e+03;
const SB5: f64 = 2.55305040643316442583e+03;
const SB6: f64 = 4.74528541206955367215e+02;
const SB7: f64 = -2.24409524465858183362e+01;

/// The range of `erfc`'s argument by the high word of `|x|`: 0 below 0.84375,
/// 1 below 1.25, 2 below 1/0.35, 3 below 28; [`SCALAR`] for `|x| < 2^−56`,
/// `|x| ≥ 28` and NaN. Branch-free, so a slice of them vectorises.
#[inline(always)]
fn erfc_range(x: f64) -> u8 {
    let ix = high_word(x) & 0x7fff_ffff;
    let r = (ix >= 0x3feb_0000) as u8 + (ix >= 0x3ff4_0000) as u8 + (ix >= 0x4006_db6d) as u8;
    let special = !(0x3c70_0000..0x403c_0000).contains(&ix);
    let keep = (special as u8).wrapping_sub(1); // 0xff unless special
    (r & keep) | (SCALAR & !keep)
}
const SCALAR: u8 = 4;

/// `x[i] = libm::erfc(x[i])` (FreeBSD's `s_erf.c`), at most `2·BLOCK` points. The points are grouped by range ([`erfc_range`]) and each
/// group is computed [`LANES`] at a time with its own approximation.
#[inline(always)]
pub fn erfc_in_place(x: &mut [f64]) {
    let n = x.len();
    assert!(n <= 2 * BLOCK);
    let mut range = [0u8; 2 * BLOCK];
    let mut present = 0u8;
    for i in 0..n {
        range[i] = erfc_range(x[i]);
        present |= 1 << range[i];
    }
    let mut idx = [0u8; 2 * BLOCK];
    for r in (0..=SCALAR).filter(|r| present & (1 << r) != 0) {
        // The indices of range r, appended without a branch.
        let mut count = 0;
        for (i, &ri) in range[..n].iter().enumerate() {
            idx[count] = i as u8;
            count += (ri == r) as usize;
        }
        let idx = &idx[..count];
        if r == SCALAR {
            for &i in idx {
                x[i as usize] = libm::erfc(x[i as usize]);
            }
            continue;
        }
        for chunk in idx.chunks(LANES) {
            let mut v = [x[chunk[0] as usize]; LANES];
            for (j, &i) in chunk.iter().enumerate() {
                v[j] = x[i as usize];
            }
            let y = match r {
                0 => erfc_small(&v),
                1 => erfc_near_one(&v),
                2 => erfc_tail::<false>(&v),
                _ => erfc_tail::<true>(&v),
            };
            for (j, &i) in chunk.iter().enumerate() {
                x[i as usize] = y[j];
            }
        }
    }
}

/// `erfc` on `2^−56 ≤ |x| < 0.84375`: `1 − erf(x)`, `erf(x) = x + x·P(x²)/Q(x²)`.
#[inline(always)]
fn erfc_small(xs: &V) -> V {
    let mut out = [0.0; LANES];
    for i in 0..LANES {
        let x = xs[i];
        let z = x * x;
        let r = PP0 + z * (PP1 + z * (PP2 + z * (PP3 + z * PP4)));
        let s = 1.0 + z * (QQ1 + z * (QQ2 + z * (QQ3 + z * (QQ4 + z * QQ5))));
        let y = r / s;
        // x < 1/4 (negative included): 1 − (x + x·y); else 0.5 − (x − 0.5 + x·y).
        out[i] = select(x < 0.25, 1.0 - (x + x * y), 0.5 - (x - 0.5 + x * y));
    }
    out
}

/// `erfc` on `0.84375 ≤ |x| < 1.25`: around 1, `erf(1+s) − c = P(s)/Q(s)`.
#[inline(always)]
fn erfc_near_one(x: &V) -> V {
    let mut out = [0.0; LANES];
    for i in 0..LANES {
        let s = x[i].abs() - 1.0;
        let p = PA0 + s * (PA1 + s * (PA2 + s * (PA3 + s * (PA4 + s * (PA5 + s * PA6)))));
        let q = 1.0 + s * (QA1 + s * (QA2 + s * (QA3 + s * (QA4 + s * (QA5 + s * QA6)))));
        let e = 1.0 - ERX - p / q;
        out[i] = select(x[i] < 0.0, 2.0 - e, e);
    }
    out
}

/// `erfc` on `1.25 ≤ |x| < 28`: `exp(−x²−0.5625+R/S)/|x|`, `R/S` in `1/x²`
/// from the table below 1/0.35 or (`FAR`) above; `2 − that` for `x < 0`.
#[inline(always)]
fn erfc_tail<const FAR: bool>(x: &V) -> V {
    let (mut a1, mut a2, mut ax) = ([0.0; LANES], [0.0; LANES], [0.0; LANES]);
    for i in 0..LANES {
        ax[i] = x[i].abs();
        let s = 1.0 / (ax[i] * ax[i]);
        let ratio = if FAR {
            let r = RB0 + s * (RB1 + s * (RB2 + s * (RB3 + s * (RB4 + s * (RB5 + s * RB6)))));
            let big_s = 1.0 + s * (SB1 + s * (SB2 + s * (SB3 + s * (SB4 + s * (SB5 + s * (SB6 + s * SB7))))));
            r / big_s
        } else {
            let r = RA0 + s * (RA1 + s * (RA2 + s * (RA3 + s * (RA4 + s * (RA5 + s * (RA6 + s * RA7))))));
            let big_s =
                1.0 + s * (SA1 + s * (SA2 + s * (SA3 + s * (SA4 + s * (SA5 + s * (SA6 + s * (SA7 + s * SA8)))))));
            r / big_s
        };
        // exp(−x²) as exp(−z²)·exp((z−x)(z+x)), z = |x| with its low word cleared.
        let z = f64::from_bits(ax[i].to_bits() & 0xffff_ffff_0000_0000);
        a1[i] = -z * z - 0.5625;
        a2[i] = (z - ax[i]) * (z + ax[i]) + ratio;
    }
    let (e1, e2) = (exp_lanes(&a1), exp_lanes(&a2));
    let mut out = [0.0; LANES];
    for i in 0..LANES {
        let e = e1[i] * e2[i] / ax[i];
        out[i] = select(x[i] < 0.0, 2.0 - e, e);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pricing::black76;

    /// A deterministic spread of doubles: `n` points from `lo` to `hi` on a log
    /// scale when both are > 0, evenly otherwise, each nudged off the grid.
    fn spread(lo: f64, hi: f64, n: usize) -> Vec<f64> {
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        (0..n)
            .map(|i| {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                let jitter = (state >> 11) as f64 / (1u64 << 53) as f64;
                let t = (i as f64 + jitter) / n as f64;
                if lo > 0.0 {
                    (lo.ln() + t * (hi.ln() - lo.ln())).exp()
                } else {
                    lo + t * (hi - lo)
                }
            })
            .collect()
    }

    fn same(a: f64, b: f64) -> bool {
        a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
    }

    fn check_fn(xs: &[f64], lanes: fn(&V) -> V, scalar: fn(f64) -> f64, name: &str) {
        for c in xs.chunks(LANES) {
            let mut v = [c[0]; LANES];
            v[..c.len()].copy_from_slice(c);
            let got = lanes(&v);
            for i in 0..LANES {
                assert!(same(got[i], scalar(v[i])), "{name}({:e}): {:e} != {:e}", v[i], got[i], scalar(v[i]));
            }
        }
    }

    /// Every range of each function, its boundaries and its special values.
    #[test]
    fn functions_are_the_scalar_ones_bit_for_bit() {
        let mut xs = spread(-30.0, 30.0, 20_000);
        xs.extend(spread(1e-20, 30.0, 5_000));
        xs.extend(spread(1e-20, 30.0, 5_000).iter().map(|x| -x));
        for b in [0.84375, 1.25, 1.0 / 0.35, 28.0, 0.25, 6.0, 1e-17, 2f64.powi(-56), 2f64.powi(-28), 0.5] {
            for d in [-2e-16, -1e-16, 0.0, 1e-16, 2e-16] {
                xs.push(b * (1.0 + d));
                xs.push(-b * (1.0 + d));
            }
        }
        xs.extend([0.0, -0.0, f64::INFINITY, f64::NEG_INFINITY, f64::NAN, 1e-310, -1e-310, 1.0, -1.0]);
        for xs in xs.chunks(2 * BLOCK) {
            let mut got = xs.to_vec();
            erfc_in_place(&mut got);
            for (x, g) in xs.iter().zip(&got) {
                assert!(same(*g, libm::erfc(*x)), "erfc({x:e}): {g:e} != {:e}", libm::erfc(*x));
            }
        }

        let mut es = spread(-760.0, 720.0, 20_000);
        es.extend(spread(1e-12, 1.0, 5_000));
        es.extend(spread(1e-12, 1.0, 5_000).iter().map(|x| -x));
        for b in [0.5 * std::f64::consts::LN_2, 1.5 * std::f64::consts::LN_2, 708.39, 709.78, 745.13, 2f64.powi(-28)] {
            for d in [-2e-16, 0.0, 2e-16] {
                es.push(b * (1.0 + d));
                es.push(-b * (1.0 + d));
            }
        }
        es.extend([0.0, -0.0, f64::INFINITY, f64::NEG_INFINITY, f64::NAN, 1e-310]);
        check_fn(&es, exp_lanes, libm::exp, "exp");

        let mut ls = spread(1e-300, 1e300, 20_000);
        ls.extend(spread(0.5, 2.0, 10_000));
        ls.extend([
            1.0,
            1.0 + f64::EPSILON,
            1.0 - f64::EPSILON / 2.0,
            0.0,
            -0.0,
            -1.0,
            1e-310,
            f64::INFINITY,
            f64::NAN,
        ]);
        ls.extend([std::f64::consts::SQRT_2, std::f64::consts::FRAC_1_SQRT_2, f64::MAX, f64::MIN_POSITIVE]);
        check_fn(&ls, log_lanes, libm::log, "log");
    }

    /// Black-76 in lanes is the scalar pricer, bit for bit (so within any
    /// relative tolerance, 1e-12 included): across moneyness from 1e-6 to 1e6,
    /// T from 1e-12 years to 30 and at or past expiry, vols from the
    /// vanishing-deviation path (σ√T < 1e-12, valued at expiry) through the
    /// floor to 10, deep in and out of the money, calls and puts, in slices
    /// of every length modulo the lanes.
    #[test]
    fn black76_many_is_the_scalar_pricer() {
        let k = 60_000.0;
        let moneyness = spread(1e-6, 1e6, 61);
        let mut taus = spread(1e-12, 30.0, 25);
        taus.extend([0.0, -0.5, 1.0 / 365.0 / 86400.0]);
        let mut vols = spread(1e-16, 10.0, 23);
        vols.extend([0.05, 0.035, 1e-300, 1e-12, 1e-6]);
        let mut checked = 0;
        for kind in [OptionKind::Call, OptionKind::Put] {
            for &tau in &taus {
                for (j, &sigma) in vols.iter().enumerate() {
                    // Mixed vols in one slice: a vanishing one beside a normal one.
                    let f: Vec<f64> = moneyness.iter().map(|m| m * k).collect();
                    let s: Vec<f64> =
                        (0..f.len()).map(|i| if i % 2 == 0 { sigma } else { vols[(i + j) % vols.len()] }).collect();
                    let n = f.len() - j % LANES;
                    let mut got = vec![0.0; n];
                    black76_many(kind, k, tau, &f[..n], &s[..n], &mut got);
                    // The baseline build of the kernel too (the dispatch above takes AVX2 when present).
                    let mut baseline = vec![0.0; n];
                    black76_kernel(kind, k, tau, &f[..n], &s[..n], &mut baseline);
                    for i in 0..n {
                        let want = black76(kind, f[i], k, s[i], tau);
                        assert!(
                            same(got[i], want),
                            "{kind:?} f={} k={k} σ={} τ={tau}: {:e} != {want:e}",
                            f[i],
                            s[i],
                            got[i]
                        );
                        assert!(same(baseline[i], want));
                        checked += 1;
                    }
                }
            }
        }
        assert!(checked > 90_000, "{checked}");
    }
}
