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

/// What is left of a leg while the pairs are applied: its requirement and
/// its delta budget (USD).
#[derive(Debug, Clone, Copy, Default)]
pub struct Remaining {
    requirement: f64,
    budget: f64,
}

/// Total credit over the offsets between the legs (`pairs` index `legs`, in
/// the profile's order: descending rate). `left` is a scratch buffer (what
/// is left of each leg), reused so the hot path does not allocate.
pub fn offset_credit(pairs: &[OffsetPair], legs: &[OffsetLeg], left: &mut Vec<Remaining>) -> f64 {
    left.clear();
    left.extend(legs.iter().map(|l| Remaining { requirement: l.requirement, budget: l.delta.abs() * l.price_range }));
    let mut credit = 0.0;
    for &OffsetPair { a, b, rate } in pairs {
        if legs[a].delta * legs[b].delta >= 0.0 {
            continue;
        }
        let (la, lb) = (left[a], left[b]);
        let m = least(least(la.budget, lb.budget), least(la.requirement, lb.requirement));
        if m <= 0.0 {
            continue;
        }
        credit += rate * m;
        left[a] = Remaining { requirement: la.requirement - m, budget: la.budget - m };
        left[b] = Remaining { requirement: lb.requirement - m, budget: lb.budget - m };
    }
    credit
}

/// The smaller of two figures that are never NaN: one `minsd` (`f64::min`
/// adds NaN handling, measurable at a what-if's few hundred instructions).
/// Zeros of either sign skip the pair, so which one is returned is moot.
#[inline(always)]
fn least(a: f64, b: f64) -> f64 {
    if a < b {
        a
    } else {
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn btc_long_eth_short() {
        // BTC +60k delta, R = 6000; ETH −60k, R = 7200 (12 %): m = min(6000, 7200, 6000, 7200)
        let offs = [OffsetPair { a: 0, b: 1, rate: 0.5 }];
        let credit = |legs: &[OffsetLeg]| offset_credit(&offs, legs, &mut Vec::new());
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
