//! Collateral: what an asset's equity is worth to the margin system
//! (METHODOLOGY.md §2). Positive equity counts through marginal tiers, like
//! tax brackets; negative equity (a loan, a loss beyond the balance) in full.

use crate::params::CollateralTier;

/// Adjusted USD value of an asset equity worth `value` USD.
pub fn adjusted_value(value: f64, tiers: &[CollateralTier]) -> f64 {
    if value <= 0.0 {
        return value;
    }
    let mut adjusted = 0.0;
    let mut lower = 0.0;
    for t in tiers {
        if value <= lower {
            break;
        }
        adjusted += t.rate * (value.min(t.up_to) - lower);
        lower = t.up_to;
    }
    adjusted
}

#[cfg(test)]
mod tests {
    use super::*;

    fn btc() -> Vec<CollateralTier> {
        vec![
            CollateralTier { rate: 0.95, up_to: 5e6 },
            CollateralTier { rate: 0.90, up_to: 2e7 },
            CollateralTier { rate: 0.80, up_to: f64::INFINITY },
        ]
    }

    #[test]
    fn tiers_are_marginal() {
        assert_eq!(adjusted_value(1e6, &btc()), 0.95e6);
        // 5M at 0.95 + 1M at 0.90
        assert!((adjusted_value(6e6, &btc()) - (4.75e6 + 0.9e6)).abs() < 1e-6);
        // 5M·0.95 + 15M·0.90 + 5M·0.80
        assert!((adjusted_value(25e6, &btc()) - (4.75e6 + 13.5e6 + 4e6)).abs() < 1e-6);
    }

    #[test]
    fn negative_counts_in_full_and_no_tiers_is_zero() {
        assert_eq!(adjusted_value(-1000.0, &btc()), -1000.0);
        assert_eq!(adjusted_value(1000.0, &[]), 0.0);
        assert_eq!(adjusted_value(-1000.0, &[]), -1000.0);
    }
}
