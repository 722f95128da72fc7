//! The one conversion from core errors to Python exceptions. The classes live
//! in `pmengine/errors.py`, shared with the pure-Python reference.

use pmengine_core::error::Code;
use pmengine_core::CoreError;
use pyo3::prelude::*;

pyo3::import_exception!(pmengine.errors, PmError);
pyo3::import_exception!(pmengine.errors, InvalidInputError);
pyo3::import_exception!(pmengine.errors, ProfileError);
pyo3::import_exception!(pmengine.errors, MissingMarketDataError);

/// The Python exception of a core error: its class, with the message, and the
/// field path and code as the `field` and `code` attributes (`PmError.__init__`).
pub fn to_py(e: CoreError) -> PyErr {
    let args = (e.to_string(), e.field().to_string(), e.code().as_str());
    match e {
        CoreError::InvalidInput { .. } => InvalidInputError::new_err(args),
        CoreError::MissingMarketData { .. } => MissingMarketDataError::new_err(args),
        CoreError::Profile { .. } => ProfileError::new_err(args),
    }
}

/// An `InvalidInputError` raised by the binding itself (an argument the core
/// never sees: a column, an option string, a thread count).
pub fn invalid(code: Code, field: impl Into<String>, message: impl Into<String>) -> PyErr {
    to_py(CoreError::invalid(field, message).with_code(code))
}

/// The code of an error that is a bug in pmengine, never a bad input.
pub const INTERNAL: &str = "internal";

/// What the body of an entry point may fail with: a core error (mapped by
/// [`to_py`]) or an error already raised in Python.
pub trait Failure {
    fn into_py_err(self) -> PyErr;
}

impl Failure for CoreError {
    fn into_py_err(self) -> PyErr {
        to_py(self)
    }
}

impl Failure for PyErr {
    fn into_py_err(self) -> PyErr {
        self
    }
}

/// The one way into the binding's code: every `#[pymethods]` entry point that
/// does more than read a field runs its body in here. A core error becomes its
/// Python class, and a panic (a bug, never expected) becomes `PmError` instead
/// of unwinding into the interpreter as `PanicException`, a `BaseException`
/// that `except Exception` misses.
pub fn guard<T, E: Failure>(f: impl FnOnce() -> Result<T, E>) -> PyResult<T> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(r) => r.map_err(Failure::into_py_err),
        Err(p) => {
            let what = p
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            Err(PmError::new_err((format!("internal error in pmengine core: {what}"), "", INTERNAL)))
        }
    }
}

/// [`guard`] for a body that raises Python errors as it goes (`?` on `PyResult`).
pub fn entry<T>(f: impl FnOnce() -> PyResult<T>) -> PyResult<T> {
    guard(f)
}
