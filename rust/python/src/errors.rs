//! The one conversion from core errors to Python exceptions. The classes live
//! in `pmengine/errors.py`, shared with the pure-Python reference.

use pmengine_core::CoreError;
use pyo3::prelude::*;

pyo3::import_exception!(pmengine.errors, PmError);
pyo3::import_exception!(pmengine.errors, InvalidInputError);
pyo3::import_exception!(pmengine.errors, ProfileError);
pyo3::import_exception!(pmengine.errors, MissingMarketDataError);

pub fn to_py(e: CoreError) -> PyErr {
    let msg = e.to_string();
    match e {
        CoreError::InvalidInput { .. } => InvalidInputError::new_err(msg),
        CoreError::MissingMarketData { .. } => MissingMarketDataError::new_err(msg),
        CoreError::Profile { .. } => ProfileError::new_err(msg),
    }
}

/// Run core code; a core error becomes its Python class and a panic (a bug,
/// never expected) becomes `PmError` instead of unwinding into the interpreter.
pub fn guard<T>(f: impl FnOnce() -> Result<T, CoreError>) -> PyResult<T> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(r) => r.map_err(to_py),
        Err(p) => {
            let what = p
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            Err(PmError::new_err(format!("internal error in pmengine core: {what}")))
        }
    }
}
