//! The liquidation plan: the ordered actions (cancel open orders, close
//! positions at their mark, sell collateral at index to repay loans) that bring
//! uniMMR back to a target, as a liquidation engine would take them, and the
//! replay of such actions on an account (`pmengine.risk.plan` presents them).
//!
//! Every candidate action is applied to the account held here and margined as
//! `Engine::margin` margins it: a close scales (or removes) the position and
//! credits the equity it carried to its margin asset, a repayment moves two
//! wallet balances. The greedy search, its bisections and its tie-breaks are
//! those the plan has always had, so the plan is the same number for number.

use crate::engine::{Engine, Scratch};
use crate::error::{CoreError, Result};
use crate::input::{amount, path, MAX_MAGNITUDE};
use crate::market::Market;
use crate::portfolio::{Portfolio, Position};
use crate::result::MarginResult;
use crate::roots::tolerance;
use crate::status::Status;

/// One action of a plan, as a replay needs it.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Cancel every open order (a portfolio records none: nothing changes).
    CancelOrders,
    /// Close `fraction` (in (0, 1]) of what is left of position `position` (an
    /// index into the original portfolio) at its mark; the equity it carried is
    /// credited to its margin asset (the settle asset; an inverse contract's coin).
    ClosePosition { position: usize, fraction: f64 },
    /// Sell `sold` units of `asset` at index for `repaid` units of `loan_asset`.
    RepayLoan { asset: String, loan_asset: String, sold: f64, repaid: f64 },
}

/// One step of a plan: the action, what it trades and the account around it.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanStep {
    pub action: Action,
    /// The fraction of the position closed, or of the largest repayment the pair allows.
    pub fraction: f64,
    /// A close: the signed quantity closed, as the position states it
    /// (contracts of an inverse contract, underlying units otherwise). A
    /// repayment: minus the units of collateral sold.
    pub qty: f64,
    /// The USD value traded: the closed part's notional, or the loan repaid at index.
    pub usd: f64,
    pub uni_mmr_before: f64,
    pub uni_mmr_after: f64,
    /// USD.
    pub mm_before: f64,
    pub mm_after: f64,
}

/// A liquidation plan and the account it leaves.
#[derive(Debug, Clone)]
pub struct LiquidationPlan {
    /// The account before the plan.
    pub start: MarginResult,
    /// The uniMMR the plan aims at (the target level's threshold; 0 when it has none).
    pub target_ratio: f64,
    /// The account is at or below the liquidation level (LIQUIDATION or BANKRUPT).
    pub needed: bool,
    /// uniMMR is at least `target_ratio` after the steps.
    pub reached: bool,
    pub steps: Vec<PlanStep>,
    /// The portfolio after the steps.
    pub portfolio: Portfolio,
}

/// The figures of one evaluation that the plan reads (USD).
#[derive(Debug, Clone, Copy)]
struct Figures {
    equity: f64,
    adjusted_equity: f64,
    maintenance_margin: f64,
    uni_mmr: f64,
    bankrupt: bool,
}

impl Figures {
    fn of(r: &MarginResult) -> Self {
        Figures {
            equity: r.equity,
            adjusted_equity: r.adjusted_equity,
            maintenance_margin: r.maintenance_margin,
            uni_mmr: r.uni_mmr,
            bankrupt: r.status == Status::BANKRUPT,
        }
    }

    /// uniMMR as the target reads it: a bankrupt account is below every level.
    fn uni(&self) -> f64 {
        if self.bankrupt {
            f64::NEG_INFINITY
        } else {
            self.uni_mmr
        }
    }

    /// `after` adds no risk: MM does not rise and adjusted equity does not fall
    /// (so uniMMR does not fall while adjusted equity is positive).
    fn no_worse(&self, after: &Figures) -> bool {
        let tol = 1e-9 * (1.0 + self.adjusted_equity.abs());
        after.maintenance_margin <= self.maintenance_margin + 1e-9
            && after.adjusted_equity >= self.adjusted_equity - tol
    }
}

/// An account margined again and again on one market, with buffers reused.
struct Margins<'a> {
    engine: &'a Engine,
    market: &'a Market,
    scratch: Scratch,
    out: MarginResult,
}

impl Margins<'_> {
    fn of(&mut self, p: &Portfolio) -> Result<Figures> {
        let book = self.engine.book(p, self.market)?;
        self.engine.evaluate_into(&book, &mut self.scratch, &mut self.out);
        Ok(Figures::of(&self.out))
    }

    /// The smallest fraction in (0, 1] whose `change` reaches the target (1 if
    /// none does), bisected to `rel_tol`.
    fn smallest(
        &mut self,
        reached: impl Fn(&Figures) -> bool,
        rel_tol: f64,
        mut change: impl FnMut(&mut Self, f64) -> Result<Portfolio>,
    ) -> Result<f64> {
        let full = change(self, 1.0)?;
        if !reached(&self.of(&full)?) {
            return Ok(1.0);
        }
        let (mut lo, mut hi) = (0.0_f64, 1.0_f64);
        while hi - lo > rel_tol {
            let mid = 0.5 * (lo + hi);
            if mid == lo || mid == hi {
                break; // adjacent floats: as close as it gets
            }
            let p = change(self, mid)?;
            if reached(&self.of(&p)?) {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        Ok(hi)
    }

    /// The index price of `asset` (USD); the account's assets all have one.
    fn price(&self, asset: &str) -> Result<f64> {
        self.market.prices.get(asset).copied().ok_or_else(|| CoreError::no_price("asset", asset))
    }

    /// `p` with `fraction` of position `i` closed at its mark: its value (the
    /// equity it carried, `equity` before the close less after it) credited to
    /// its margin asset, so equity is unchanged.
    fn close(&mut self, p: &Portfolio, equity: f64, i: usize, fraction: f64) -> Result<Portfolio> {
        let mut out = p.clone();
        let settle = p.positions[i].settle();
        if fraction >= 1.0 {
            out.positions.remove(i);
        } else {
            let q = match &mut out.positions[i] {
                Position::Inverse { contracts, .. } => contracts,
                Position::Linear { qty, .. } | Position::Option { qty, .. } => qty,
            };
            *q *= 1.0 - fraction;
            let at = format!("positions[{i}]");
            crate::portfolio::validate(&out.positions[i], &at)?;
        }
        let value = (equity - self.of(&out)?.equity) / self.price(settle)?;
        credit(&mut out, settle, value)?;
        Ok(out)
    }

    /// `p` with `repaid` of `loan` bought back with `collateral` sold at index.
    fn repay(&self, p: &Portfolio, loan: &str, collateral: &str, repaid: f64) -> Result<Portfolio> {
        let mut out = p.clone();
        let sold = repaid * self.price(loan)? / self.price(collateral)?;
        credit(&mut out, loan, repaid)?;
        credit(&mut out, collateral, -sold)?;
        Ok(out)
    }
}

/// Add `x` to the wallet balance of `asset` (a new entry, last, when it has
/// none), with the checks a balance passes.
fn credit(p: &mut Portfolio, asset: &str, x: f64) -> Result<()> {
    let q = p.balance(asset).unwrap_or(0.0) + x;
    if q.is_nan() || q.abs() > MAX_MAGNITUDE {
        amount(q, &path("balances", asset))?; // the path is built for the error only
    }
    p.balances.insert(asset, q);
    Ok(())
}

impl Engine {
    /// The deterministic greedy plan of a liquidation engine, until uniMMR is at
    /// least the threshold of status rank `target` (0: the ladder's first level).
    ///
    /// 1. Cancel open orders (none are modelled).
    /// 2. Repeatedly close the position whose full close lowers MM the most
    ///    (ties: the first), only the smallest fraction that reaches the target
    ///    (bisection to `rel_tol`) when less than all of it does; a position
    ///    whose close would not lower MM, or would lower adjusted equity, is left.
    /// 3. Sell collateral at index to repay loans (negative balances): the
    ///    (loan, collateral) pair, by name, that raises uniMMR the most first,
    ///    partially when that is enough; at most 100 repayments.
    ///
    /// No step raises MM or lowers adjusted equity. An account above the
    /// liquidation level gets no steps unless `force` (a de-risking plan).
    /// Errors: `rel_tol` outside (0, 1), `target` past the ladder, or the
    /// account's own (a missing price).
    pub fn liquidation_plan(
        &self,
        portfolio: &Portfolio,
        market: &Market,
        target: usize,
        force: bool,
        rel_tol: f64,
    ) -> Result<LiquidationPlan> {
        let rel_tol = tolerance(rel_tol, "rel_tol")?;
        let levels = &self.params().status;
        let level = levels.get(target).ok_or_else(|| {
            CoreError::invalid("target", format!("must be a status rank below {}, got {target}", levels.len()))
        })?;
        let t = if level.above.is_finite() { level.above } else { 0.0 };
        let start = self.margin(portfolio, market)?;
        let needed = self.status_rank(start.status) + 1 >= levels.len();
        let mut m = Margins { engine: self, market, scratch: Scratch::default(), out: MarginResult::default() };
        let mut d = portfolio.clone();
        let mut r = Figures::of(&start);
        let reached = |f: &Figures| f.uni() >= t;
        let mut steps = Vec::new();
        if !(needed || force) {
            let reached = reached(&r);
            return Ok(LiquidationPlan { start, target_ratio: t, needed, reached, steps, portfolio: d });
        }
        let step = |action, fraction, qty, usd, before: &Figures, after: &Figures| PlanStep {
            action,
            fraction,
            qty,
            usd,
            uni_mmr_before: before.uni_mmr,
            uni_mmr_after: after.uni_mmr,
            mm_before: before.maintenance_margin,
            mm_after: after.maintenance_margin,
        };
        if !reached(&r) {
            steps.push(step(Action::CancelOrders, 0.0, 0.0, 0.0, &r, &r));
        }
        // 2. Close positions, the largest MM contribution first.
        let mut index: Vec<usize> = (0..d.positions.len()).collect();
        while !reached(&r) && !d.positions.is_empty() {
            let (mut best, mut best_gain) = (None, 0.0);
            for i in 0..d.positions.len() {
                let closed = m.close(&d, r.equity, i, 1.0)?;
                let after = m.of(&closed)?;
                let gain = r.maintenance_margin - after.maintenance_margin;
                if gain > best_gain && r.no_worse(&after) {
                    (best, best_gain) = (Some(i), gain);
                }
            }
            let Some(i) = best else { break };
            let equity = r.equity;
            let mut frac = m.smallest(reached, rel_tol, |m, f| m.close(&d, equity, i, f))?;
            let mut new = m.close(&d, equity, i, frac)?;
            let mut after = m.of(&new)?;
            if !r.no_worse(&after) {
                frac = 1.0;
                new = m.close(&d, equity, i, 1.0)?;
                after = m.of(&new)?;
            }
            let terms = self.position_terms(&d, market)?;
            let (usd, qty) = (terms[i].notional * frac, terms[i].quantity * frac);
            steps.push(step(Action::ClosePosition { position: index[i], fraction: frac }, frac, qty, usd, &r, &after));
            if frac >= 1.0 {
                index.remove(i);
            }
            (d, r) = (new, after);
        }

        // 3. Sell collateral to repay loans.
        for _ in 0..100 {
            if reached(&r) {
                break;
            }
            let mut loans: Vec<(&str, f64)> =
                d.balances.iter().filter(|(_, q)| *q < 0.0).map(|(a, q)| (a.as_str(), *q)).collect();
            let mut assets: Vec<(&str, f64)> =
                d.balances.iter().filter(|(_, q)| *q > 0.0).map(|(a, q)| (a.as_str(), *q)).collect();
            loans.sort_by(|a, b| a.0.cmp(b.0));
            assets.sort_by(|a, b| a.0.cmp(b.0));
            let mut best: Option<(&str, &str, f64)> = None;
            let mut best_uni = r.uni();
            for &(loan, owed) in &loans {
                for &(c, held) in &assets {
                    let (a, b) = (-owed, held * m.price(c)? / m.price(loan)?);
                    let y = if b < a { b } else { a };
                    if y.is_nan() || y <= 0.0 {
                        continue;
                    }
                    let repaid = m.repay(&d, loan, c, y)?;
                    let after = m.of(&repaid)?;
                    if after.uni() > best_uni && r.no_worse(&after) {
                        (best, best_uni) = (Some((loan, c, y)), after.uni());
                    }
                }
            }
            let Some((loan, c, y_max)) = best else { break };
            let (loan, c) = (loan.to_string(), c.to_string());
            let mut frac = m.smallest(reached, rel_tol, |m, f| m.repay(&d, &loan, &c, y_max * f))?;
            let mut new = m.repay(&d, &loan, &c, y_max * frac)?;
            let mut after = m.of(&new)?;
            if !r.no_worse(&after) {
                frac = 1.0;
                new = m.repay(&d, &loan, &c, y_max)?;
                after = m.of(&new)?;
            }
            let y = y_max * frac;
            let (pl, pc) = (m.price(&loan)?, m.price(&c)?);
            let (sold, usd) = (y * pl / pc, y * pl);
            let action = Action::RepayLoan { asset: c, loan_asset: loan, sold, repaid: y };
            steps.push(step(action, frac, -sold, usd, &r, &after));
            (d, r) = (new, after);
        }
        let reached = reached(&r);
        Ok(LiquidationPlan { start, target_ratio: t, needed, reached, steps, portfolio: d })
    }

    /// `portfolio` after `actions`, replayed from their records alone: a close
    /// takes its fraction of what is left of the position (an index into the
    /// original portfolio) at its mark and credits the value to its margin
    /// asset; a repayment adds `repaid` to the loan asset's balance and takes
    /// `sold` from the collateral's. Errors name `actions[i]` (a position
    /// already closed or out of range, a fraction outside (0, 1]).
    pub fn apply_actions(&self, portfolio: &Portfolio, market: &Market, actions: &[Action]) -> Result<Portfolio> {
        let mut m = Margins { engine: self, market, scratch: Scratch::default(), out: MarginResult::default() };
        let mut d = portfolio.clone();
        let mut index: Vec<usize> = (0..d.positions.len()).collect();
        for (k, a) in actions.iter().enumerate() {
            match a {
                Action::CancelOrders => {}
                &Action::ClosePosition { position, fraction } => {
                    let at = format!("actions[{k}].position");
                    let i = index.iter().position(|&j| j == position).ok_or_else(|| {
                        if position < portfolio.positions.len() {
                            CoreError::invalid(at, format!("{position} is closed"))
                        } else {
                            CoreError::invalid(
                                at,
                                format!("{position} is past the last position ({})", portfolio.positions.len()),
                            )
                        }
                    })?;
                    if !(fraction > 0.0 && fraction <= 1.0) {
                        let got = crate::input::fmt_num(fraction);
                        return Err(CoreError::invalid(
                            format!("actions[{k}].fraction"),
                            format!("must be in (0, 1], got {got}"),
                        ));
                    }
                    let equity = m.of(&d)?.equity;
                    d = m.close(&d, equity, i, fraction)?;
                    if fraction >= 1.0 {
                        index.remove(i);
                    }
                }
                Action::RepayLoan { asset, loan_asset, sold, repaid } => {
                    credit(&mut d, loan_asset, *repaid)?;
                    credit(&mut d, asset, -*sold)?;
                }
            }
        }
        Ok(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RiskParams;

    /// 60 ETH and 5 BTC long perps bought higher on 66,000 USDT, in liquidation after a 5 % fall.
    fn account() -> (Engine, Portfolio, Market) {
        let engine = Engine::new(RiskParams::default_profile());
        let portfolio = Portfolio::from_json_str(
            r#"{"balances": {"USDT": 66000},
                "positions": [
                  {"type": "linear", "symbol": "ETHUSDT", "underlying": "ETH", "qty": 60, "entry_price": 3080},
                  {"type": "linear", "symbol": "BTCUSDT", "underlying": "BTC", "qty": 5, "entry_price": 61000}]}"#,
        )
        .unwrap();
        let market = Market::from_json_str(
            r#"{"time": "2026-11-24T00:00:00Z", "prices": {"BTC": 57000, "ETH": 2850, "USDT": 1}}"#,
        )
        .unwrap();
        (engine, portfolio, market)
    }

    fn uni(engine: &Engine, p: &Portfolio, m: &Market) -> f64 {
        engine.margin(p, m).unwrap().uni_mmr
    }

    #[test]
    fn the_plan_reaches_the_target_and_its_replay_lands_on_the_same_account() {
        let (engine, portfolio, market) = account();
        let target = 1; // MARGIN_CALL: out of reduce-only
        let plan = engine.liquidation_plan(&portfolio, &market, target, false, 1e-9).unwrap();
        assert!(plan.needed && plan.reached, "{plan:?}");
        assert!(uni(&engine, &plan.portfolio, &market) >= plan.target_ratio);
        assert_eq!(plan.steps[0].action, Action::CancelOrders);
        // BTC carries the most margin: it goes first.
        assert_eq!(plan.steps[1].action, Action::ClosePosition { position: 1, fraction: plan.steps[1].fraction });
        let last = plan.steps.last().unwrap();
        assert!(last.fraction > 0.0 && last.fraction < 1.0, "the last close is partial");
        for s in &plan.steps {
            assert!(s.mm_after <= s.mm_before + 1e-9);
        }
        let actions: Vec<Action> = plan.steps.iter().map(|s| s.action.clone()).collect();
        let replayed = engine.apply_actions(&portfolio, &market, &actions).unwrap();
        assert_eq!(replayed, plan.portfolio);
        // Closing at the mark moves value, not equity.
        let (e0, e1) =
            (engine.margin(&portfolio, &market).unwrap().equity, engine.margin(&replayed, &market).unwrap().equity);
        assert!((e0 - e1).abs() <= 1e-9 * e0.abs());
        // A little less of the last close would not have been enough.
        let mut short = actions.clone();
        if let Some(Action::ClosePosition { fraction, .. }) = short.last_mut() {
            *fraction *= 0.999;
        }
        let p = engine.apply_actions(&portfolio, &market, &short).unwrap();
        assert!(uni(&engine, &p, &market) < plan.target_ratio);
    }

    #[test]
    fn a_healthy_account_gets_no_steps_unless_forced() {
        let (engine, portfolio, _) = account();
        let market = Market::from_json_str(
            r#"{"time": "2026-11-24T00:00:00Z", "prices": {"BTC": 60000, "ETH": 3000, "USDT": 1}}"#,
        )
        .unwrap();
        let plan = engine.liquidation_plan(&portfolio, &market, 0, false, 1e-9).unwrap();
        assert!(!plan.needed && plan.steps.is_empty() && plan.portfolio == portfolio);
        let forced = engine.liquidation_plan(&portfolio, &market, 0, true, 1e-9).unwrap();
        assert!(forced.reached && !forced.steps.is_empty());
    }

    #[test]
    fn a_loan_is_repaid_with_collateral() {
        let engine = Engine::new(RiskParams::default_profile());
        let portfolio =
            Portfolio::from_json_str(r#"{"balances": {"BTC": 2, "USDT": -90000}, "positions": []}"#).unwrap();
        let market =
            Market::from_json_str(r#"{"time": "2026-11-24T00:00:00Z", "prices": {"BTC": 50000, "USDT": 1}}"#).unwrap();
        let plan = engine.liquidation_plan(&portfolio, &market, 1, true, 1e-9).unwrap();
        let Some(Action::RepayLoan { asset, loan_asset, sold, repaid }) = plan.steps.last().map(|s| &s.action) else {
            panic!("a repayment: {plan:?}")
        };
        assert_eq!((asset.as_str(), loan_asset.as_str()), ("BTC", "USDT"));
        assert!((sold * 50_000.0 - repaid).abs() <= 1e-9 * repaid);
        assert_eq!(plan.portfolio.balance("USDT"), Some(-90_000.0 + repaid));
    }

    #[test]
    fn bad_arguments_name_their_field() {
        let (engine, portfolio, market) = account();
        let field = |e: CoreError| e.field().to_string();
        assert_eq!(field(engine.liquidation_plan(&portfolio, &market, 1, false, 0.0).unwrap_err()), "rel_tol");
        assert_eq!(field(engine.liquidation_plan(&portfolio, &market, 99, false, 1e-9).unwrap_err()), "target");
        let twice = [
            Action::ClosePosition { position: 0, fraction: 1.0 },
            Action::ClosePosition { position: 0, fraction: 0.5 },
        ];
        assert_eq!(field(engine.apply_actions(&portfolio, &market, &twice).unwrap_err()), "actions[1].position");
        let bad = [Action::ClosePosition { position: 1, fraction: 0.0 }];
        assert_eq!(field(engine.apply_actions(&portfolio, &market, &bad).unwrap_err()), "actions[0].fraction");
    }
}
