//! `MarginResult` and `GroupResult`: read-only views of a core result.

use crate::convert::to_py;
use crate::errors::guard;
use crate::reuse::{sole, Reusable};
use pmengine_core::{Engine, GroupResult, MarginResult};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::sync::{Arc, LazyLock};

/// Per risk group figures, USD (`worst_scenario` is a return and a vol shock).
#[pyclass(name = "GroupResult", module = "pmengine._core", frozen, freelist = 64)]
pub struct PyGroupResult {
    inner: GroupResult,
}

#[pymethods]
impl PyGroupResult {
    #[getter]
    fn name(&self) -> &str {
        &self.inner.name
    }
    /// Worst weighted scenario loss, USD.
    #[getter]
    fn scan_loss(&self) -> f64 {
        self.inner.scan_loss
    }
    /// max(scan_loss, som), USD, before offsets.
    #[getter]
    fn requirement(&self) -> f64 {
        self.inner.requirement
    }
    /// Dollar delta of the scanned exposure, USD.
    #[getter]
    fn delta(&self) -> f64 {
        self.inner.delta
    }
    /// Long spot recognised as a hedge, USD.
    #[getter]
    fn spot_in_use(&self) -> f64 {
        self.inner.spot_in_use
    }
    /// Long spot financed by loans, USD.
    #[getter]
    fn financed_spot(&self) -> f64 {
        self.inner.financed_spot
    }
    #[getter]
    fn basis(&self) -> f64 {
        self.inner.basis
    }
    #[getter]
    fn concentration(&self) -> f64 {
        self.inner.concentration
    }
    /// Short-option minimum, USD.
    #[getter]
    fn som(&self) -> f64 {
        self.inner.som
    }
    /// `(price_move, vol_shock)` of the worst scenario, as fractions.
    #[getter]
    fn worst_scenario(&self) -> (f64, f64) {
        (self.inner.worst_price_move, self.inner.worst_vol_shock)
    }
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        guard(|| to_py(py, &self.inner.to_value()))
    }
    fn __repr__(&self) -> String {
        format!(
            "GroupResult({:?}, requirement={}, delta={}, worst_scenario=({}, {}))",
            self.inner.name,
            self.inner.requirement,
            self.inner.delta,
            self.inner.worst_price_move,
            self.inner.worst_vol_shock
        )
    }
}

/// An account's margin. Money in USD; `uni_mmr` is adjusted equity / MM
/// (`inf` when MM = 0 and adjusted equity ≥ 0, `-inf` when below).
#[pyclass(name = "MarginResult", module = "pmengine._core", frozen, freelist = 64)]
pub struct PyMarginResult {
    /// Replaced only when a live account reuses the object (`crate::reuse`).
    inner: Reusable<Figures>,
    /// The engine that evaluated it: its profile names the status.
    engine: Arc<Engine>,
}

/// A result's figures: its own, or shared with the live account that
/// evaluated them (its what-if buffer, which the account copies before
/// writing the next what-if while this result is alive), or none while a
/// live account holds the object to refill it (never seen by Python).
pub enum Figures {
    Owned(MarginResult),
    Shared(Arc<MarginResult>),
    Released,
}

/// What a released result reads as (nothing reads it: see [`Figures`]).
static RELEASED: LazyLock<MarginResult> = LazyLock::new(MarginResult::default);

impl std::ops::Deref for Figures {
    type Target = MarginResult;
    fn deref(&self) -> &MarginResult {
        match self {
            Figures::Owned(r) => r,
            Figures::Shared(r) => r,
            Figures::Released => &RELEASED,
        }
    }
}

impl Figures {
    /// A live account's what-if buffer, or none (released).
    pub fn shared(after: Option<Arc<MarginResult>>) -> Figures {
        after.map_or(Figures::Released, Figures::Shared)
    }
}

impl PyMarginResult {
    pub fn new(inner: MarginResult, engine: &Arc<Engine>) -> Self {
        PyMarginResult::with(Figures::Owned(inner), engine)
    }

    /// A result sharing a live account's what-if buffer.
    pub fn shared(inner: Arc<MarginResult>, engine: &Arc<Engine>) -> Self {
        PyMarginResult::with(Figures::Shared(inner), engine)
    }

    /// A result of `figures`, evaluated by `engine`.
    pub fn with(figures: Figures, engine: &Arc<Engine>) -> Self {
        PyMarginResult { inner: Reusable::new(figures), engine: Arc::clone(engine) }
    }

    /// The figures read by every getter.
    fn figures(&self) -> &MarginResult {
        self.inner.get()
    }

    /// Share `after` (release the figures when `None`) in `result` in place of
    /// its own figures when the caller's reference is its only one, else give it back.
    pub fn refill(
        py: Python<'_>,
        result: &Py<Self>,
        after: Option<Arc<MarginResult>>,
    ) -> Result<(), Option<Arc<MarginResult>>> {
        match sole(py, result) {
            // SAFETY: `sole`: nobody else holds the object, so nobody reads its figures.
            Some(r) => unsafe { r.get().inner.set(Figures::shared(after)) },
            None => return Err(after),
        }
        Ok(())
    }

    fn status_name(&self) -> &str {
        self.engine.params().status_name(self.figures().status)
    }
}

#[pymethods]
impl PyMarginResult {
    /// Account equity E, USD.
    #[getter]
    fn equity(&self) -> f64 {
        self.figures().equity
    }
    /// Collateral value after haircuts, USD.
    #[getter]
    fn adjusted_equity(&self) -> f64 {
        self.figures().adjusted_equity
    }
    #[getter]
    fn maintenance_margin(&self) -> f64 {
        self.figures().maintenance_margin
    }
    #[getter]
    fn initial_margin(&self) -> f64 {
        self.figures().initial_margin
    }
    /// Adjusted equity − IM, USD (negative: no new risk may be opened).
    #[getter]
    fn available(&self) -> f64 {
        self.figures().available
    }
    #[getter]
    fn uni_mmr(&self) -> f64 {
        self.figures().uni_mmr
    }
    /// NORMAL, MARGIN_CALL, REDUCE_ONLY, LIQUIDATION (the profile's ladder) or BANKRUPT.
    #[getter]
    fn status(&self) -> &str {
        self.status_name()
    }
    /// Scan requirement after offsets, floored by the short-option minimum, USD.
    #[getter]
    fn scan(&self) -> f64 {
        self.figures().scan
    }
    /// Worst systemic-scenario loss, USD.
    #[getter]
    fn systemic(&self) -> f64 {
        self.figures().systemic
    }
    #[getter]
    fn offset_credit(&self) -> f64 {
        self.figures().offset_credit
    }
    #[getter]
    fn borrow_margin(&self) -> f64 {
        self.figures().borrow_margin
    }
    /// The model that evaluated the account: ``"scenario"`` or ``"binance_pm"``.
    #[getter]
    fn model(&self) -> &'static str {
        self.figures().model.name()
    }
    /// ``binance_pm``: each contract's bracket, MM and IM (in its margin asset:
    /// settle units, coin for an inverse contract), as dicts in portfolio order;
    /// empty under the scenario model.
    #[getter]
    fn positions<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py(py, &self.figures().positions_value())
    }
    /// ``binance_pm``: per asset, ``v`` and the loan in asset units, equity and
    /// collateral value in USD, MM in asset units; empty under the scenario model.
    #[getter]
    fn assets<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py(py, &self.figures().assets_value())
    }
    /// Per group results, in the order the account first touches each group.
    #[getter]
    fn groups<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        for g in &self.figures().groups {
            d.set_item(&*g.name, Py::new(py, PyGroupResult { inner: g.clone() })?)?;
        }
        Ok(d)
    }
    /// The result JSON of METHODOLOGY.md §8 as a dict (`uni_mmr` None when infinite).
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        guard(|| to_py(py, &self.figures().to_value(self.engine.params())))
    }
    /// The result JSON of METHODOLOGY.md §8, indented by `indent` spaces (0 to 64).
    #[pyo3(signature = (indent=None))]
    fn to_json(&self, indent: Option<&Bound<'_, PyAny>>) -> PyResult<String> {
        Ok(json_text(&self.figures().to_value(self.engine.params()), indent_arg(indent)?))
    }
    fn __repr__(&self) -> String {
        let r = self.figures();
        format!(
            "MarginResult(status={:?}, equity={}, maintenance_margin={}, uni_mmr={})",
            self.status_name(),
            r.equity,
            r.maintenance_margin,
            r.uni_mmr
        )
    }
}

/// Most spaces `to_json` indents by: the text grows with the indent times the
/// lines, so a huge one is an allocation bomb, not a layout.
const MAX_INDENT: i64 = 64;

/// The `indent` argument of `to_json`: `None`, or 0 to [`MAX_INDENT`].
pub fn indent_arg(indent: Option<&Bound<'_, PyAny>>) -> PyResult<Option<usize>> {
    let indent = indent.filter(|i| !i.is_none());
    Ok(indent.map(|i| crate::convert::int_arg(i, "indent", 0, Some(MAX_INDENT))).transpose()?.map(|n| n as usize))
}

/// JSON text of a result, compact or indented by `indent` spaces.
pub fn json_text(v: &serde_json::Value, indent: Option<usize>) -> String {
    match indent {
        None => v.to_string(),
        Some(n) => {
            let ind = " ".repeat(n);
            let fmt = serde_json::ser::PrettyFormatter::with_indent(ind.as_bytes());
            let mut out = Vec::new();
            let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
            serde::Serialize::serialize(&v, &mut ser).expect("a JSON value serialises");
            String::from_utf8(out).expect("JSON is UTF-8")
        }
    }
}
