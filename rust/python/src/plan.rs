//! `Engine.liquidation_plan` and `Engine.apply_plan`: the plan's steps as dicts
//! in and out (`pmengine.risk.plan` turns them into `PlanAction`s).

use crate::convert::{float_arg, int_arg};
use crate::errors::{guard, invalid};
use crate::portfolio::PyPortfolio;
use pmengine_core::error::Code;
use pmengine_core::plan::{Action, LiquidationPlan, PlanStep};
use pmengine_core::Engine;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

/// A step as `_PlanStepDict`: every key present, `None` where the kind has no such field.
fn step_dict<'py>(py: Python<'py>, s: &PlanStep) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    let (kind, position, asset, loan_asset, repaid) = match &s.action {
        Action::CancelOrders => ("cancel_orders", None, None, None, 0.0),
        Action::ClosePosition { position, .. } => ("close_position", Some(*position), None, None, 0.0),
        Action::RepayLoan { asset, loan_asset, repaid, .. } => {
            ("repay_loan", None, Some(asset.as_str()), Some(loan_asset.as_str()), *repaid)
        }
    };
    d.set_item("kind", kind)?;
    d.set_item("position", position)?;
    d.set_item("asset", asset)?;
    d.set_item("loan_asset", loan_asset)?;
    d.set_item("fraction", s.fraction)?;
    d.set_item("qty", s.qty)?;
    d.set_item("usd", s.usd)?;
    d.set_item("repaid", repaid)?;
    d.set_item("uni_mmr_before", s.uni_mmr_before)?;
    d.set_item("uni_mmr_after", s.uni_mmr_after)?;
    d.set_item("mm_before", s.mm_before)?;
    d.set_item("mm_after", s.mm_after)?;
    Ok(d)
}

pub fn liquidation_plan<'py>(
    py: Python<'py>,
    engine: &Engine,
    portfolio: &PyPortfolio,
    market: &pmengine_core::Market,
    target: usize,
    force: bool,
    rel_tol: f64,
) -> PyResult<Bound<'py, PyDict>> {
    let portfolio = &portfolio.inner;
    let plan: LiquidationPlan =
        py.detach(|| guard(|| engine.liquidation_plan(portfolio, market, target, force, rel_tol)))?;
    let d = PyDict::new(py);
    d.set_item("status", engine.params().status_name(plan.start.status))?;
    d.set_item("uni_mmr", plan.start.uni_mmr)?;
    d.set_item("target_ratio", plan.target_ratio)?;
    d.set_item("needed", plan.needed)?;
    d.set_item("reached", plan.reached)?;
    let steps = PyList::empty(py);
    for s in &plan.steps {
        steps.append(step_dict(py, s)?)?;
    }
    d.set_item("steps", steps)?;
    d.set_item("portfolio", Py::new(py, PyPortfolio::new_from(plan.portfolio))?)?;
    Ok(d)
}

/// One action read from its dict (the keys of `_PlanStepDict` that a replay reads).
fn action(a: &Bound<'_, PyAny>, k: usize) -> PyResult<Action> {
    let at = |key: &str| format!("actions[{k}].{key}");
    let item = |key: &str| -> PyResult<Bound<'_, PyAny>> {
        a.get_item(key).map_err(|_| invalid(Code::Missing, at(key), "required"))
    };
    let name = |key: &str| -> PyResult<String> {
        item(key)?.extract::<String>().map_err(|_| invalid(Code::WrongType, at(key), "must be an asset name"))
    };
    let kind: String = item("kind")?.extract().map_err(|_| invalid(Code::WrongType, at("kind"), "must be a string"))?;
    Ok(match kind.as_str() {
        "cancel_orders" => Action::CancelOrders,
        "close_position" => Action::ClosePosition {
            position: int_arg(&item("position")?, &at("position"), 0, None)? as usize,
            fraction: float_arg(&item("fraction")?, &at("fraction"))?,
        },
        "repay_loan" => Action::RepayLoan {
            asset: name("asset")?,
            loan_asset: name("loan_asset")?,
            sold: -float_arg(&item("qty")?, &at("qty"))?,
            repaid: float_arg(&item("repaid")?, &at("repaid"))?,
        },
        other => {
            return Err(invalid(
                Code::InvalidValue,
                at("kind"),
                format!("unknown {other:?}, expected \"cancel_orders\", \"close_position\" or \"repay_loan\""),
            ))
        }
    })
}

pub fn apply_plan(
    py: Python<'_>,
    engine: &Engine,
    portfolio: &PyPortfolio,
    market: &pmengine_core::Market,
    actions: &Bound<'_, PyAny>,
) -> PyResult<PyPortfolio> {
    let actions = (actions.try_iter()?.enumerate()).map(|(k, a)| action(&a?, k)).collect::<PyResult<Vec<Action>>>()?;
    let portfolio = &portfolio.inner;
    let after = py.detach(|| guard(|| engine.apply_actions(portfolio, market, &actions)))?;
    Ok(PyPortfolio::new_from(after))
}
