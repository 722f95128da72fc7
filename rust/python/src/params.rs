//! `RiskParams`: a compiled, immutable risk profile.

use crate::convert::{to_profile_value, to_py};
use crate::errors::{entry, guard, ProfileError};
use pmengine_core::params::{toml_value, DEFAULT_PROFILE_TOML};
use pmengine_core::RiskParams;
use pyo3::prelude::*;
use serde_json::Value;
use std::sync::Arc;

/// A risk profile (METHODOLOGY.md §7), compiled once and shared by engines.
#[pyclass(name = "RiskParams", module = "pmengine._core", frozen)]
pub struct PyRiskParams {
    pub inner: Arc<RiskParams>,
    source: Value,
}

impl PyRiskParams {
    pub fn default_params() -> PyResult<Self> {
        Self::compile(guard(|| toml_value(DEFAULT_PROFILE_TOML))?)
    }

    fn compile(source: Value) -> PyResult<Self> {
        let inner = guard(|| RiskParams::from_value(&source))?;
        Ok(PyRiskParams { inner: Arc::new(inner), source })
    }
}

#[pymethods]
impl PyRiskParams {
    /// The bundled default profile (`DEFAULT_PROFILE_TOML`).
    #[staticmethod]
    fn default() -> PyResult<Self> {
        Self::default_params()
    }

    /// Compile a TOML profile file.
    #[staticmethod]
    fn from_toml(path: std::path::PathBuf) -> PyResult<Self> {
        entry(|| {
            let text = std::fs::read_to_string(&path)
                .map_err(|e| ProfileError::new_err(format!("{}: cannot read: {e}", path.display())))?;
            Self::from_toml_str(&text)
        })
    }

    /// Compile a profile from TOML text.
    #[staticmethod]
    fn from_toml_str(text: &str) -> PyResult<Self> {
        Self::compile(guard(|| toml_value(text))?)
    }

    /// Compile a profile from a dict shaped like the TOML file.
    #[staticmethod]
    fn from_dict(d: &Bound<'_, PyAny>) -> PyResult<Self> {
        entry(|| Self::compile(to_profile_value(d)?))
    }

    /// The profile as a dict (the source it was compiled from).
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        guard(|| to_py(py, &self.source))
    }

    /// The same profile evaluated by another margin model: ``"scenario"`` or
    /// ``"binance_pm"`` (which needs the profile's ``[binance]`` table).
    fn with_model(&self, model: &str) -> PyResult<Self> {
        let mut source = self.source.clone();
        match &mut source {
            Value::Object(m) => {
                m.insert("model".into(), Value::String(model.into()));
            }
            _ => unreachable!("a compiled profile is a table"),
        }
        Self::compile(source)
    }

    /// The margin model: ``"scenario"`` (METHODOLOGY.md) or ``"binance_pm"`` (docs/BINANCE.md).
    #[getter]
    fn model(&self) -> &'static str {
        self.inner.model.name()
    }

    #[getter]
    fn name(&self) -> &str {
        &self.inner.name
    }
    #[getter]
    fn version(&self) -> &str {
        &self.inner.version
    }
    /// IM = im_factor · MM.
    #[getter]
    fn im_factor(&self) -> f64 {
        self.inner.im_factor
    }
    #[getter]
    fn vol_floor(&self) -> f64 {
        self.inner.vol_floor
    }
    /// Status ladder, healthiest first: `[(name, above), ...]`; the last `above` is -inf.
    #[getter]
    fn status_levels(&self) -> Vec<(String, f64)> {
        self.inner.status.iter().map(|s| (s.name.to_string(), s.above)).collect()
    }
    /// The risk group of an asset.
    fn group_of(&self, asset: &str) -> String {
        self.inner.group_of(asset).to_string()
    }
    /// Whether an asset counts as collateral (first tier rate > 0).
    fn is_collateral(&self, asset: &str) -> bool {
        self.inner.is_collateral(asset)
    }
    /// The status a uniMMR falls in (BANKRUPT is decided by equity, not here).
    fn status_for(&self, uni_mmr: f64) -> String {
        self.inner.status_for(uni_mmr).to_string()
    }

    fn __repr__(&self) -> String {
        format!("RiskParams(name={:?}, version={:?})", self.inner.name, self.inner.version)
    }
}
