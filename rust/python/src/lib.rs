//! pmengine._core: PyO3 bindings of pmengine-core. Conversion and error mapping
//! only; the margin model lives in the core crate.

// Python signatures decide the argument counts here, not Rust style.
#![allow(clippy::too_many_arguments)]

mod batch;
mod classic;
mod convert;
mod engine;
mod errors;
mod live;
mod market;
mod params;
mod plan;
mod portfolio;
mod result;
mod reuse;
mod sweep;

use pyo3::prelude::*;

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("DEFAULT_PROFILE_TOML", pmengine_core::params::DEFAULT_PROFILE_TOML)?;
    m.add("BANKRUPT", pmengine_core::BANKRUPT)?;
    let names = |v: &[&str]| pyo3::types::PyTuple::new(m.py(), v);
    m.add("ERROR_CODES", names(&pmengine_core::error::Code::ALL.map(|c| c.as_str()))?)?;
    m.add("BATCH_POSITION_COLUMNS", names(&batch::POSITION_COLUMNS)?)?;
    m.add("BATCH_BALANCE_COLUMNS", names(&batch::BALANCE_COLUMNS)?)?;
    m.add("BATCH_RESULT_COLUMNS", names(&batch::OUTPUT_COLUMNS)?)?;
    m.add_function(wrap_pyfunction!(params::toml_loads, m)?)?;
    m.add_function(wrap_pyfunction!(convert::parse_time, m)?)?;
    m.add_class::<params::PyRiskParams>()?;
    m.add_class::<market::PyMarket>()?;
    m.add_class::<portfolio::PyPortfolio>()?;
    m.add_class::<engine::PyEngine>()?;
    m.add_class::<result::PyMarginResult>()?;
    m.add_class::<result::PyGroupResult>()?;
    m.add_class::<live::PyLiveAccount>()?;
    m.add_class::<live::PyOrderCheck>()?;
    m.add_class::<classic::PyClassicResult>()?;
    Ok(())
}
