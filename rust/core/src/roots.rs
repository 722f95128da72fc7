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
use crate::error::{Code, CoreError, Result};
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
        let tol = tolerance(tol, "tol")?;
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
                        if mid == lo || mid == hi {
                            break; // adjacent floats: as close as it gets
                        }
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
            let price = *market.prices.get(asset).ok_or_else(|| CoreError::no_price(at(), asset))?;
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

/// An account whose wallet of one asset is changed and re-margined, for the
/// stablecoin buffer: the book of the portfolio with that balance entry is
/// resolved once, and each amount sets the one wallet as `Engine::book` would
/// (`0 + balance`, less the loan), so each evaluation is bit for bit `margin`
/// of the portfolio with the balance changed.
struct WalletProbe {
    book: crate::engine::Book,
    slot: usize,
    asset: String,
    /// The balance held now (0 without an entry) and the loan owed, if any.
    held: f64,
    owed: Option<f64>,
    scratch: crate::engine::Scratch,
    out: crate::result::MarginResult,
}

impl WalletProbe {
    fn new(engine: &Engine, portfolio: &Portfolio, market: &Market, asset: &str) -> Result<Self> {
        let mut p = portfolio.clone();
        let held = match p.balances.get(asset) {
            Some(&q) => q,
            None => {
                p.balances.insert(asset, 0.0);
                0.0
            }
        };
        let book = engine.book(&p, market)?;
        // Slots are the distinct assets in `Portfolio::assets` order.
        let mut seen = rustc_hash::FxHashSet::default();
        let slot =
            (p.assets().filter(|a| seen.insert(*a))).position(|a| a == asset).expect("the balance entry has a slot");
        let owed = p.loans.get(asset).map(|l| l.owed());
        Ok(WalletProbe {
            book,
            slot,
            asset: asset.to_string(),
            held,
            owed,
            scratch: Default::default(),
            out: Default::default(),
        })
    }

    /// The status rank (0: the healthiest; the ladder's length: bankrupt) with
    /// `change` added to the balance (asset units, any sign).
    fn rank(&mut self, engine: &Engine, change: f64) -> Result<usize> {
        let q = self.held + change;
        if q.is_nan() || q.abs() > MAX_MAGNITUDE {
            crate::input::amount(q, &crate::input::path("balances", &self.asset))?;
        }
        let mut wallet = 0.0 + q;
        if let Some(owed) = self.owed {
            wallet -= owed;
        }
        self.book.assets[self.slot].wallet = wallet;
        engine.evaluate_into(&self.book, &mut self.scratch, &mut self.out);
        Ok(engine.status_rank(self.out.status))
    }
}

/// The largest deposit the buffer search tries (USD).
const MAX_DEPOSIT_USD: f64 = 1e15;

impl Engine {
    /// The smallest deposit of `asset` (asset units) that keeps the account's
    /// status at rank `target` or healthier on `stressed` (the market after a
    /// scenario, or `market` itself): 0 when none is needed, `None` when no
    /// deposit up to 1e15 USD does. The search starts at max(1, |equity|, MM)
    /// on `market`, in asset units, doubles until enough, then bisects to
    /// `rel_tol` relative, rounded up (the amount returned is enough).
    pub fn deposit_needed(
        &self,
        portfolio: &Portfolio,
        market: &Market,
        stressed: &Market,
        asset: &str,
        target: usize,
        rel_tol: f64,
    ) -> Result<Option<f64>> {
        let rel_tol = tolerance(rel_tol, "rel_tol")?;
        if self.status_rank(self.margin(portfolio, stressed)?.status) <= target {
            return Ok(Some(0.0));
        }
        let price = *market.prices.get(asset).ok_or_else(|| CoreError::no_price("asset", asset))?;
        let base = self.margin(portfolio, market)?;
        let mut probe = WalletProbe::new(self, portfolio, stressed, asset)?;
        let mut hi = 1.0_f64.max(base.equity.abs()).max(base.maintenance_margin) / price;
        while probe.rank(self, hi)? > target {
            hi *= 2.0;
            if hi * price > MAX_DEPOSIT_USD {
                return Ok(None);
            }
        }
        let mut lo = 0.0;
        while hi - lo > rel_tol * hi {
            let mid = 0.5 * (lo + hi);
            if mid == lo || mid == hi {
                break;
            }
            if probe.rank(self, mid)? <= target {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        Ok(Some(hi))
    }

    /// The largest withdrawal of `asset` (asset units, at most its positive
    /// balance: a withdrawal never opens a loan) that keeps the account's status
    /// at rank `target` or healthier on `stressed` (see [`Engine::deposit_needed`]),
    /// bisected to `rel_tol` of the balance, rounded down (the amount returned is safe).
    pub fn max_withdrawal(
        &self,
        portfolio: &Portfolio,
        stressed: &Market,
        asset: &str,
        target: usize,
        rel_tol: f64,
    ) -> Result<f64> {
        let rel_tol = tolerance(rel_tol, "rel_tol")?;
        let balance = portfolio.balances.get(asset).copied().unwrap_or(0.0);
        if balance <= 0.0 || self.status_rank(self.margin(portfolio, stressed)?.status) > target {
            return Ok(0.0);
        }
        let mut probe = WalletProbe::new(self, portfolio, stressed, asset)?;
        if probe.rank(self, -balance)? <= target {
            return Ok(balance);
        }
        let (mut lo, mut hi) = (0.0, balance);
        while hi - lo > rel_tol * balance {
            let mid = 0.5 * (lo + hi);
            if mid == lo || mid == hi {
                break;
            }
            if probe.rank(self, -mid)? <= target {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        Ok(lo)
    }
}

/// A bisection's relative tolerance: finite, in (0, 1). A zero, negative or
/// NaN one would never stop the loop or would skip it.
pub(crate) fn tolerance(tol: f64, field: &str) -> Result<f64> {
    if tol.is_finite() && tol > 0.0 && tol < 1.0 {
        Ok(tol)
    } else {
        Err(CoreError::invalid(field, format!("must be a relative tolerance in (0, 1), got {}", fmt_num(tol)))
            .with_code(Code::OutOfRange))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RiskParams;

    fn account() -> (Engine, Portfolio, Market) {
        let engine = Engine::new(RiskParams::default_profile());
        let portfolio = Portfolio::from_json_str(
            r#"{"balances": {"USDT": 60000},
                "positions": [{"type": "linear", "symbol": "BTCUSDT", "underlying": "BTC", "qty": -2,
                               "entry_price": 60000}]}"#,
        )
        .unwrap();
        let market =
            Market::from_json_str(r#"{"time": "2026-11-24T00:00:00Z", "prices": {"BTC": 60000, "USDT": 1}}"#).unwrap();
        (engine, portfolio, market)
    }

    fn uni_at(engine: &Engine, portfolio: &Portfolio, market: &Market, f: f64) -> f64 {
        let mut m = market.clone();
        m.set_price("BTC", 60_000.0 * f).unwrap();
        let r = engine.margin(portfolio, &m).unwrap();
        if engine.status_rank(r.status) >= engine.params().status.len() {
            f64::NEG_INFINITY
        } else {
            r.uni_mmr
        }
    }

    #[test]
    fn a_short_crosses_each_threshold_going_up_within_the_tolerance() {
        let (engine, portfolio, market) = account();
        let thresholds: Vec<f64> = engine.params().status[..3].iter().map(|l| l.above).collect();
        let up: Vec<f64> = (1..400).map(|k| 1.0 + 0.005 * k as f64).collect();
        let down: Vec<f64> = (1..200).map(|k| 1.0 - 0.005 * k as f64).collect();
        let exponents = [("BTC".to_string(), 1.0)];
        let paths = [PricePath { exponents: &exponents, grid: &up }, PricePath { exponents: &exponents, grid: &down }];
        let found = engine.crossings(&portfolio, &market, &paths, &thresholds, 1e-10).unwrap();
        let u0 = uni_at(&engine, &portfolio, &market, 1.0);
        for (j, &t) in thresholds.iter().enumerate() {
            assert!(u0 > t, "the account starts above every threshold");
            let c = found[0][j].expect("a short crosses going up");
            assert!(c.factor > 1.0 && c.uni_mmr <= t);
            assert_eq!(c.uni_mmr, uni_at(&engine, &portfolio, &market, c.factor));
            // Just inside the crossing the account is still above the threshold.
            assert!(uni_at(&engine, &portfolio, &market, c.factor * (1.0 - 1e-9)) > t);
            assert!(found[1][j].is_none(), "falling prices only help a short");
        }
    }

    #[test]
    fn the_buffer_lands_on_the_target() {
        let (engine, portfolio, market) = account();
        let mut stressed = market.clone();
        stressed.set_price("BTC", 84_000.0).unwrap();
        let x = engine.deposit_needed(&portfolio, &market, &stressed, "USDT", 0, 1e-9).unwrap().unwrap();
        let with = |q: f64| {
            let mut p = portfolio.clone();
            p.add_balance("USDT", q).unwrap();
            engine.status_rank(engine.margin(&p, &stressed).unwrap().status)
        };
        assert!(x > 0.0 && with(x) == 0 && with(0.999 * x) > 0);
        let w = engine.max_withdrawal(&portfolio, &market, "USDT", 0, 1e-9).unwrap();
        let rank = |q: f64| {
            let mut p = portfolio.clone();
            p.add_balance("USDT", -q).unwrap();
            engine.status_rank(engine.margin(&p, &market).unwrap().status)
        };
        assert!(w > 0.0 && w < 60_000.0 && rank(w) == 0 && rank(1.001 * w) > 0);
    }
}
