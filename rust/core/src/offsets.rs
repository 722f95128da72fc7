//! Cross-group offsets (METHODOLOGY.md §3): delta-based credits between groups
//! that move together, like SPAN's inter-commodity spreads. Each group's
//! remainder and delta budget persist from pair to pair, so a group's delta
//! is never used twice and a nearly delta-neutral book earns almost nothing.

/// An offset between two groups of a book (indices into its groups), at `rate`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OffsetPair {
    pub a: usize,
    pub b: usize,
    pub rate: f64,
}

/// What a group brings to the offsets.
#[derive(Debug, Clone, Copy)]
pub struct OffsetLeg {
    /// Requirement `R_g` before offsets (USD).
    pub requirement: f64,
    /// Group dollar delta `D_g` (USD).
    pub delta: f64,
    pub price_range: f64,
}

/// Total credit over the offsets between the legs (`pairs` index `legs`, in
/// the profile's order: descending rate). `remainder` and `budget` are
/// scratch buffers, reused so the hot path does not allocate.
pub fn offset_credit(pairs: &[OffsetPair], legs: &[OffsetLeg], remainder: &mut Vec<f64>, budget: &mut Vec<f64>) -> f64 {
    remainder.clear();
    remainder.extend(legs.iter().map(|l| l.requirement));
    budget.clear();
    budget.extend(legs.iter().map(|l| l.delta.abs() * l.price_range));
    let mut credit = 0.0;
    for &OffsetPair { a, b, rate } in pairs {
        if legs[a].delta * legs[b].delta >= 0.0 {
            continue;
        }
        let m = budget[a].min(budget[b]).min(remainder[a]).min(remainder[b]);
        if m <= 0.0 {
            continue;
        }
        credit += rate * m;
        remainder[a] -= m;
        remainder[b] -= m;
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
        let offs = [OffsetPair { a: 0, b: 1, rate: 0.5 }];
        let credit = |legs: &[OffsetLeg]| offset_credit(&offs, legs, &mut Vec::new(), &mut Vec::new());
        let legs = [
            OffsetLeg { requirement: 6000.0, delta: 60000.0, price_range: 0.10 },
            OffsetLeg { requirement: 7200.0, delta: -60000.0, price_range: 0.12 },
        ];
        assert_eq!(credit(&legs), 3000.0);
        // Same sign: no credit.
        let legs2 = [legs[0], OffsetLeg { delta: 60000.0, ..legs[1] }];
        assert_eq!(credit(&legs2), 0.0);
    }
}
