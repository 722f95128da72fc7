//! Pricing: Black-76 at zero rates for European options, intrinsic value at
//! or past expiry. Linear and inverse contracts need no model: their scenario
//! P&L is a dollar delta times the return (METHODOLOGY.md §1).

use crate::portfolio::OptionKind;

/// Seconds in the 365-day year that `τ` is measured in.
pub const YEAR_SECONDS: f64 = 365.0 * 86400.0;

/// Below this `σ·√τ` an option is valued as at expiry (intrinsic value, a step
/// delta, no gamma): Black-76's own limit, reached without dividing by a
/// deviation that vanishes or underflows to 0 (a vol of 1e-300 gave NaN).
pub const MIN_SD: f64 = 1e-12;

/// Whether an option is valued at expiry: `τ ≤ 0`, or `σ·√τ` below [`MIN_SD`].
#[inline]
pub fn at_expiry(sigma: f64, tau: f64) -> bool {
    !(tau > 0.0 && sigma * tau.sqrt() >= MIN_SD)
}

/// Standard normal CDF through `erfc`, accurate to ~1e-16 absolute in both tails.
#[inline]
pub fn norm_cdf(x: f64) -> f64 {
    0.5 * libm::erfc(-x * std::f64::consts::FRAC_1_SQRT_2)
}

#[inline]
pub fn norm_pdf(x: f64) -> f64 {
    (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt()
}

#[inline]
pub fn intrinsic(kind: OptionKind, f: f64, k: f64) -> f64 {
    match kind {
        OptionKind::Call => (f - k).max(0.0),
        OptionKind::Put => (k - f).max(0.0),
    }
}

/// Black-76 value of one option on forward `f`, strike `k`, vol `sigma`,
/// `tau` years to expiry, in the forward's units. At expiry ([`at_expiry`]): intrinsic.
/// The logarithm is `libm`'s (musl's), like `erfc`: the pricer gives the same
/// bits on every platform, and `lanes.rs` reproduces it exactly on a whole grid.
#[inline]
pub fn black76(kind: OptionKind, f: f64, k: f64, sigma: f64, tau: f64) -> f64 {
    if at_expiry(sigma, tau) {
        return intrinsic(kind, f, k);
    }
    let sd = sigma * tau.sqrt();
    let d1 = (libm::log(f / k) + 0.5 * sd * sd) / sd;
    let d2 = d1 - sd;
    match kind {
        OptionKind::Call => f * norm_cdf(d1) - k * norm_cdf(d2),
        OptionKind::Put => k * norm_cdf(-d2) - f * norm_cdf(-d1),
    }
}

/// Black-76 delta `∂V/∂F`: `N(d1)` for a call, `N(d1) − 1` for a put; at or
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
    let sd = sigma * tau.sqrt();
    let d1 = (libm::log(f / k) + 0.5 * sd * sd) / sd;
    match kind {
        OptionKind::Call => norm_cdf(d1),
        OptionKind::Put => norm_cdf(d1) - 1.0,
    }
}

/// The vol of a scenario with relative shock `v`: `max(σ(1+v), min(σ, floor))`,
/// so `v = 0` gives `σ` itself and a downward shock stops at the floor.
#[inline]
pub fn shocked_vol(sigma: f64, v: f64, floor: f64) -> f64 {
    (sigma * (1.0 + v)).max(sigma.min(floor))
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
        assert_eq!(norm_cdf(0.0), 0.5);
        // N(-10) = 7.61985302416e-24: erfc keeps the relative precision in the tail.
        assert!((norm_cdf(-10.0) / 7.619853024160527e-24 - 1.0).abs() < 1e-12);
        assert!((norm_cdf(10.0) - 1.0).abs() < 1e-15);
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
