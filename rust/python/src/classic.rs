//! `ClassicResult`: classic (isolated / cross) margin of an account.

use crate::convert::to_py;
use crate::errors::guard;
use pmengine_core::ClassicResult;
use pyo3::prelude::*;

/// Classic margin (METHODOLOGY.md §5), USD: wallets kept apart, positions on
/// their symbol's brackets. `usdm`, `coinm`, `cross_margin` and `positions`
/// are dicts (see `to_dict`).
#[pyclass(name = "ClassicResult", module = "pmengine._core", frozen)]
pub struct PyClassicResult {
    pub inner: ClassicResult,
}

#[pymethods]
impl PyClassicResult {
    /// `"as_given"`, `"cross"` or `"isolated"`.
    #[getter]
    fn mode(&self) -> &'static str {
        self.inner.mode.name()
    }
    #[getter]
    fn equity(&self) -> f64 {
        self.inner.equity
    }
    #[getter]
    fn maintenance_margin(&self) -> f64 {
        self.inner.maintenance_margin
    }
    #[getter]
    fn initial_margin(&self) -> f64 {
        self.inner.initial_margin
    }
    #[getter]
    fn available(&self) -> f64 {
        self.inner.available
    }
    /// The worst of the wallets' and isolated positions' statuses.
    #[getter]
    fn status(&self) -> &'static str {
        self.inner.status
    }
    /// The USDⓈ-M futures wallet.
    #[getter]
    fn usdm<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        guard(|| to_py(py, &self.inner.usdm.to_value()))
    }
    /// One COIN-M futures wallet per coin.
    #[getter]
    fn coinm<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        guard(|| to_py(py, &self.inner.to_value()["coinm"]))
    }
    /// The spot cross margin account (loans).
    #[getter]
    fn cross_margin<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        guard(|| to_py(py, &self.inner.to_value()["cross_margin"]))
    }
    /// The futures positions, in portfolio order, with bracket, MM, IM and liquidation price.
    #[getter]
    fn positions<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        guard(|| to_py(py, &self.inner.to_value()["positions"]))
    }
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        guard(|| to_py(py, &self.inner.to_value()))
    }
    /// The result as JSON, indented by `indent` spaces (0 to 64).
    #[pyo3(signature = (indent=None))]
    fn to_json(&self, indent: Option<&Bound<'_, PyAny>>) -> PyResult<String> {
        Ok(crate::result::json_text(&self.inner.to_value(), crate::result::indent_arg(indent)?))
    }
    fn __repr__(&self) -> String {
        format!(
            "ClassicResult(mode={:?}, maintenance_margin={}, status={:?})",
            self.inner.mode.name(),
            self.inner.maintenance_margin,
            self.inner.status
        )
    }
}
