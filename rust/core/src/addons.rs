//! Add-ons on top of the risk requirement (METHODOLOGY.md §4): basis between
//! instruments of one group, concentration on large net deltas, borrowing.

use crate::params::ConcentrationTier;

/// Basis add-on: `rate · min(long, |short|)` over dollar deltas already netted
/// per instrument (contract symbol, liability, scanned long balance).
pub fn basis(rate: f64, netted_deltas: impl IntoIterator<Item = f64>) -> f64 {
    basis_after(rate, (0.0, 0.0), netted_deltas)
}

/// [`basis`] of deltas following others already summed into `(long, short)`
/// (short as a positive sum), in the same order of addition.
pub fn basis_after(rate: f64, (mut long, mut short): (f64, f64), netted_deltas: impl IntoIterator<Item = f64>) -> f64 {
    for d in netted_deltas {
        if d > 0.0 {
            long += d;
        } else {
            short -= d;
        }
    }
    rate * long.min(short)
}

/// Concentration add-on: marginal tiers on `|D_g|` (each rate on the part of
/// the delta between its threshold and the next).
pub fn concentration(abs_delta: f64, tiers: &[ConcentrationTier]) -> f64 {
    let mut total = 0.0;
    for (i, t) in tiers.iter().enumerate() {
        if abs_delta <= t.above {
            break;
        }
        let upper = tiers.get(i + 1).map_or(f64::INFINITY, |n| n.above);
        total += t.rate * (abs_delta.min(upper) - t.above);
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basis_nets_long_against_short() {
        assert_eq!(basis(0.005, [60000.0, -60000.0]), 300.0);
        assert_eq!(basis(0.005, [60000.0, -20000.0, 10000.0]), 100.0);
        assert_eq!(basis(0.005, [60000.0]), 0.0);
    }

    #[test]
    fn concentration_is_marginal() {
        let tiers = [ConcentrationTier { above: 5e6, rate: 0.01 }, ConcentrationTier { above: 2e7, rate: 0.02 }];
        assert_eq!(concentration(4e6, &tiers), 0.0);
        assert_eq!(concentration(6e6, &tiers), 10_000.0);
        // 15M at 1 % + 5M at 2 %
        assert_eq!(concentration(2.5e7, &tiers), 150_000.0 + 100_000.0);
    }
}
