//! Cross-group offsets (METHODOLOGY.md §3): delta-based credits between groups
//! that move together, like SPAN's inter-commodity spreads. Each group's
//! remainder and delta budget persist from pair to pair, so a group's delta
//! is never used twice and a nearly delta-neutral book earns almost nothing.

use crate::params::Offset;

/// What a group brings to the offsets.
#[derive(Debug, Clone, Copy)]
pub struct OffsetLeg {
    /// Requirement `R_g` before offsets (USD).
    pub requirement: f64,
    /// Group dollar delta `D_g` (USD).
    pub delta: f64,
    pub price_range: f64,
}

/// Total credit over the offsets (already sorted by descending rate), for the
/// legs found by `leg(group name)`; groups the account does not touch are skipped.
pub fn offset_credit<'a>(offsets: &'a [Offset], names: &[&'a str], legs: &[OffsetLeg]) -> f64 {
    let mut rem: Vec<f64> = legs.iter().map(|l| l.requirement).collect();
    let mut budget: Vec<f64> = legs.iter().map(|l| l.delta.abs() * l.price_range).collect();
    let mut credit = 0.0;
    for o in offsets {
        let (Some(a), Some(b)) = (names.iter().position(|n| *n == o.a), names.iter().position(|n| *n == o.b)) else {
            continue;
        };
        if legs[a].delta * legs[b].delta >= 0.0 {
            continue;
        }
        let m = budget[a].min(budget[b]).min(rem[a]).min(rem[b]);
        if m <= 0.0 {
            continue;
        }
        credit += o.rate * m;
        rem[a] -= m;
        rem[b] -= m;
        budget[a] -= m;
        budget[b] -= m;
    }
    credit
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn btc_long_eth_short() {
        // BTC +60k delta, R = 6000; ETH −60k, R = 7200 (12 %): m = min(6000, 7200, 6000, 7200)
        let offs = [Offset { a: "BTC".into(), b: "ETH".into(), rate: 0.5 }];
        let legs = [
            OffsetLeg { requirement: 6000.0, delta: 60000.0, price_range: 0.10 },
            OffsetLeg { requirement: 7200.0, delta: -60000.0, price_range: 0.12 },
        ];
        assert_eq!(offset_credit(&offs, &["BTC", "ETH"], &legs), 3000.0);
        // Same sign: no credit.
        let legs2 = [legs[0], OffsetLeg { delta: 60000.0, ..legs[1] }];
        assert_eq!(offset_credit(&offs, &["BTC", "ETH"], &legs2), 0.0);
    }
}
