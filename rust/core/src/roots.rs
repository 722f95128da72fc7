//! Root finding on a resolved book: where, along a path of market moves,
//! uniMMR first crosses each status threshold (the liquidation prices of
//! `pmengine.risk`).
//!
//! A path multiplies the prices of some assets by powers of one factor `f`:
//! asset `a` by `f^e_a` (`e_a = 1`: the moved group's own assets; others
//! follow a systemic co-movement, or stay). Marks move with their quote as in
//! a sweep (`sweep.rs`), and every point is a sweep's scenario: the account
//! resolved once, each evaluation re-resolving what the prices move, bit for
//! bit `Engine::margin` on the moved market.
//!
//! uniMMR need not be monotone in `f` (options), so the first crossing is
//! bracketed by scanning a grid of factors outwards from 1 (the caller's: the
//! risk tools own their grid), then bisected to a relative tolerance. The
//! thresholds of a path bracket in one scan, which stops once every threshold
//! has crossed; each then bisects on its own. A price is `P·(1 + (x − 1))`
//! with `x = f^e`, the return a sweep takes, so the points are those of a
//! sweep given the returns `x − 1`.

use crate::engine::Engine;
use crate::error::{CoreError, Result};
use crate::input::{fmt_num, MAX_MAGNITUDE, MIN_PRICE};
use crate::market::Market;
use crate::portfolio::Portfolio;
use crate::sweep::{Plan, Row, Worker};

/// A path of market moves: on factor `f`, asset `a`'s price is multiplied by
/// `f^e` for each `(a, e)` of `exponents` (`e = 1`: by `f` itself); assets not
/// named keep their price.
#[derive(Debug, Clone, Copy)]
pub struct PricePath<'a> {
    pub exponents: &'a [(String, f64)],
    /// The factors scanned, in order, to bracket the first crossing (outwards from 1).
    pub grid: &'a [f64],
}

/// Where a path first takes uniMMR across a threshold.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Crossing {
    /// The factor on the far side of the crossing, within the tolerance of it.
    pub factor: f64,
    /// uniMMR at `factor` (−inf when the account is bankrupt there).
    pub uni_mmr: f64,
}

/// uniMMR as the thresholds read it: a bankrupt account is below every one.
fn uni(row: &Row, ladder: usize) -> f64 {
    if usize::from(row.status) >= ladder {
        f64::NEG_INFINITY
    } else {
        row.uni_mmr
    }
}

impl Engine {
    /// For each path, for each of `thresholds` (uniMMR levels), the first factor
    /// along the path's grid at which uniMMR crosses the threshold (from above
    /// it now to at or below it, or the reverse), bisected until the bracket is
    /// within `tol` relative; `None` when the grid never crosses it. Errors: a
    /// path asset without a price (naming `paths[i].exponents.ASSET`), or a grid
    /// point taking a price out of the input bounds.
    pub fn crossings(
        &self,
        portfolio: &Portfolio,
        market: &Market,
        paths: &[PricePath<'_>],
        thresholds: &[f64],
        tol: f64,
    ) -> Result<Vec<Vec<Option<Crossing>>>> {
        let plan = Plan::new(self, portfolio, market)?;
        let mut worker = Worker::new(&plan, false);
        let ladder = self.params().status.len();
        let eval = |w: &mut Worker, moved: &[(usize, f64)], f: f64| {
            w.factors.iter_mut().for_each(|x| *x = 1.0);
            for &(slot, e) in moved {
                let x = if e == 1.0 { f } else { f.powf(e) };
                w.factors[slot] = 1.0 + (x - 1.0);
            }
            uni(&w.run(&plan, None), ladder)
        };
        let u0 = eval(&mut worker, &[], 1.0);
        let mut out = Vec::with_capacity(paths.len());
        for (i, path) in paths.iter().enumerate() {
            let moved = Self::path_slots(&plan, market, path, i)?;
            let sides: Vec<bool> = thresholds.iter().map(|&t| u0 > t).collect();
            // Bracket each threshold's first crossing: [lo, hi] with hi across it.
            let mut brackets: Vec<Option<(f64, f64, f64)>> = vec![None; thresholds.len()];
            let mut lo = 1.0;
            for &f in path.grid {
                let u = eval(&mut worker, &moved, f);
                for (j, &t) in thresholds.iter().enumerate() {
                    if brackets[j].is_none() && (u > t) != sides[j] {
                        brackets[j] = Some((lo, f, u));
                    }
                }
                if brackets.iter().all(Option::is_some) {
                    break;
                }
                lo = f;
            }
            let mut found = Vec::with_capacity(thresholds.len());
            for (j, &t) in thresholds.iter().enumerate() {
                found.push(brackets[j].map(|(mut lo, mut hi, mut u_hi)| {
                    while (hi - lo).abs() > tol * lo.max(hi) {
                        let mid = 0.5 * (lo + hi);
                        let u = eval(&mut worker, &moved, mid);
                        if (u > t) == sides[j] {
                            lo = mid;
                        } else {
                            (hi, u_hi) = (mid, u);
                        }
                    }
                    Crossing { factor: hi, uni_mmr: u_hi }
                }));
            }
            out.push(found);
        }
        Ok(out)
    }

    /// The book asset slots path `i` moves, with their exponents, once its grid
    /// is checked to keep every moved price (the book's or not) within the input bounds.
    fn path_slots(plan: &Plan<'_>, market: &Market, path: &PricePath<'_>, i: usize) -> Result<Vec<(usize, f64)>> {
        let mut moved = Vec::new();
        for (asset, e) in path.exponents {
            let at = || format!("paths[{i}].exponents.{asset}");
            let price = *market
                .prices
                .get(asset)
                .ok_or_else(|| CoreError::missing(at(), format!("no price for {asset} in market.prices")))?;
            if !e.is_finite() {
                return Err(CoreError::invalid(at(), format!("must be finite, got {}", fmt_num(*e))));
            }
            for &f in path.grid {
                let x = if *e == 1.0 { f } else { f.powf(*e) };
                let p = price * (1.0 + (x - 1.0));
                if !(f.is_finite() && (MIN_PRICE..=MAX_MAGNITUDE).contains(&p)) {
                    return Err(CoreError::invalid(
                        format!("paths[{i}].grid"),
                        format!(
                            "factor {} moves {asset} to {} (must keep the price within [{}, {}])",
                            fmt_num(f),
                            fmt_num(p),
                            fmt_num(MIN_PRICE),
                            fmt_num(MAX_MAGNITUDE)
                        ),
                    ));
                }
            }
            if *e != 0.0 {
                if let Some(slot) = plan.names.iter().position(|n| n == asset) {
                    moved.push((slot, *e));
                }
            }
        }
        Ok(moved)
    }
}
