//! Python objects <-> JSON values, so that dicts, JSON text and TOML all reach
//! the core's one parser (and its one set of field-named errors).

use pmengine_core::input::{float_value, Source, MAX_DEPTH};
use pyo3::exceptions::{PyOverflowError, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use serde_json::{Map, Value};

/// A Python value as JSON. Non-finite floats are kept as the strings the core
/// reads back as numbers, so its finiteness check names the field. Errors are
/// `InvalidInputError` naming `at`'s path.
pub fn to_value(obj: &Bound<'_, PyAny>, at: &str) -> PyResult<Value> {
    value(obj, at, 0, Source::Input)
}

/// [`to_value`] for a risk profile: its errors are `ProfileError`.
pub fn to_profile_value(obj: &Bound<'_, PyAny>) -> PyResult<Value> {
    value(obj, "", 0, Source::Profile)
}

fn value(obj: &Bound<'_, PyAny>, at: &str, depth: usize, src: Source) -> PyResult<Value> {
    let field = || if at.is_empty() { "input" } else { at };
    let fail = |message: String| crate::errors::to_py(src.err(field(), message));
    if obj.is_none() {
        return Ok(Value::Null);
    }
    if let Ok(b) = obj.cast::<PyBool>() {
        return Ok(Value::Bool(b.is_true()));
    }
    if let Ok(i) = obj.cast::<PyInt>() {
        if let Ok(x) = i.extract::<i64>() {
            return Ok(Value::from(x));
        }
        return match i.extract::<f64>() {
            Ok(x) => Ok(float_value(x)),
            Err(_) => {
                Err(fail(format!("must be a number, got an integer too large for a float ({} digits)", digits(i))))
            }
        };
    }
    if let Ok(f) = obj.cast::<PyFloat>() {
        return Ok(float_value(f.value()));
    }
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(Value::String(text(s).ok_or_else(|| fail(format!("must be valid Unicode text, {SURROGATE}")))?));
    }
    // The same bound as the JSON parser's: a deeper structure is refused, not recursed into.
    let nested = obj.cast::<PyDict>().is_ok() || obj.cast::<PyList>().is_ok() || obj.cast::<PyTuple>().is_ok();
    if nested && depth + 1 >= MAX_DEPTH {
        return Err(fail(format!("nested {MAX_DEPTH} levels deep, the limit (as in JSON text)")));
    }
    if let Ok(d) = obj.cast::<PyDict>() {
        let mut m = Map::with_capacity(d.len());
        for (k, v) in d.iter() {
            let key = text(&k.str()?).ok_or_else(|| fail(format!("keys must be valid Unicode text, {SURROGATE}")))?;
            let sub = if at.is_empty() { key.clone() } else { format!("{at}.{key}") };
            m.insert(key, value(&v, &sub, depth + 1, src)?);
        }
        return Ok(Value::Object(m));
    }
    if nested {
        let mut out = Vec::new();
        for (i, v) in obj.try_iter()?.enumerate() {
            out.push(value(&v?, &format!("{at}[{i}]"), depth + 1, src)?);
        }
        return Ok(Value::Array(out));
    }
    // datetime / date: ISO text; numpy scalars and other numbers: float.
    if obj.hasattr("isoformat")? {
        return Ok(Value::String(obj.call_method0("isoformat")?.extract()?));
    }
    if let Ok(x) = obj.extract::<f64>() {
        return Ok(float_value(x));
    }
    let ty = obj.get_type().name()?.to_string();
    Err(fail(format!("unsupported type {ty}")))
}

const SURROGATE: &str = "got a lone surrogate";

/// A time as seconds since the epoch (UTC): a number as it is, ISO-8601 text or
/// a `datetime` read by the core's parser (no zone: UTC; a bare date: midnight
/// UTC). The one reading of a time for every way in (`Market`, an option's
/// expiry, `pmengine.parse_time`); errors name `at`.
pub fn time_arg(t: &Bound<'_, PyAny>, at: &str) -> PyResult<f64> {
    if let Ok(x) = t.extract::<f64>() {
        return Ok(x);
    }
    match to_value(t, at)? {
        Value::String(s) => crate::errors::guard(|| pmengine_core::input::parse_time(&s, at)),
        _ => Err(crate::errors::invalid(
            pmengine_core::error::Code::WrongType,
            at,
            "must be an ISO-8601 time, a datetime or epoch seconds",
        )),
    }
}

/// The core's time reader for Python: seconds since the epoch (UTC) of ISO-8601
/// text, a `datetime` or a number (as it is); `InvalidInputError` naming `field`.
#[pyfunction]
#[pyo3(signature = (t, field="time"))]
pub fn parse_time(t: &Bound<'_, PyAny>, field: &str) -> PyResult<f64> {
    crate::errors::entry(|| time_arg(t, field))
}

/// A Python string as Rust text; `None` for a lone surrogate (not encodable as UTF-8).
fn text(s: &Bound<'_, PyString>) -> Option<String> {
    s.to_str().ok().map(str::to_string)
}

// -- numeric arguments ---------------------------------------------------------------
//
// Every number a method takes from Python is read here, not by PyO3's own
// extraction: that raises `OverflowError` for an integer beyond the target type,
// where a wrong *value* must be an `InvalidInputError` naming the argument. A
// wrong *type* stays a `TypeError`, naming the argument too.

/// A float argument (a float, an int, anything with `__float__`). An integer
/// beyond a float's range (or any overflow converting to one) is an
/// `InvalidInputError` naming `field`; the value's bounds are the core's to check.
pub fn float_arg(obj: &Bound<'_, PyAny>, field: &str) -> PyResult<f64> {
    obj.extract::<f64>().map_err(|e| numeric_error(obj, e, field, "a number"))
}

/// [`float_arg`] for an optional argument: absent or `None` is `None`.
pub fn opt_float_arg(obj: Option<&Bound<'_, PyAny>>, field: &str) -> PyResult<Option<f64>> {
    obj.filter(|x| !x.is_none()).map(|x| float_arg(x, field)).transpose()
}

/// An integer argument (anything with `__index__`; a float is a `TypeError`) from
/// `lo` to `hi` (no upper bound when `None`: a larger integer, however large, is
/// read as `i64::MAX`, as large as any count). Another value is an
/// `InvalidInputError` naming `field` and the bounds.
pub fn int_arg(obj: &Bound<'_, PyAny>, field: &str, lo: i64, hi: Option<i64>) -> PyResult<i64> {
    let int = obj
        .py()
        .import("operator")?
        .call_method1("index", (obj,))
        .map_err(|e| numeric_error(obj, e, field, "an integer"))?;
    let bounds = || match hi {
        Some(hi) => format!("must be >= {lo} and <= {hi}"),
        None => format!("must be >= {lo}"),
    };
    let shown = || match int.cast::<PyInt>() {
        Ok(i) if digits(i) > 20 => format!("an integer of {} digits", digits(i)),
        _ => int.to_string(),
    };
    let n = match int.extract::<i64>() {
        Ok(n) => n,
        Err(_) if hi.is_none() && int.gt(0)? => i64::MAX,
        Err(_) => return Err(invalid(field, format!("{}, got {}", bounds(), shown()))),
    };
    if n < lo || hi.is_some_and(|hi| n > hi) {
        return Err(invalid(field, format!("{}, got {}", bounds(), shown())));
    }
    Ok(n)
}

/// The error of a numeric argument that did not convert: an overflow is a wrong
/// value (`InvalidInputError`), a `TypeError` a wrong type; each names `field`.
fn numeric_error(obj: &Bound<'_, PyAny>, e: PyErr, field: &str, what: &str) -> PyErr {
    let py = obj.py();
    if let Ok(i) = obj.cast::<PyInt>() {
        if e.is_instance_of::<PyOverflowError>(py) {
            let n = digits(i);
            return invalid(field, format!("must be {what}, got an integer too large for a float ({n} digits)"));
        }
    }
    if e.is_instance_of::<PyOverflowError>(py) {
        return invalid(field, format!("must be {what} within a float's range, got {}", e.value(py)));
    }
    if e.is_instance_of::<PyTypeError>(py) {
        let ty = obj.get_type().name().map_or_else(|_| "?".to_string(), |n| n.to_string());
        return PyTypeError::new_err(format!("{field}: must be {what}, got {ty}"));
    }
    e
}

/// A numeric argument out of its range: `InvalidInputError`, code `out_of_range`.
fn invalid(field: &str, message: String) -> PyErr {
    crate::errors::invalid(pmengine_core::error::Code::OutOfRange, field, message)
}

fn digits(i: &Bound<'_, PyInt>) -> usize {
    i.str().map_or(0, |s| s.to_string_lossy().trim_start_matches('-').len())
}

/// A JSON value as Python objects (dict, list, float, str, bool, None).
pub fn to_py<'py>(py: Python<'py>, v: &Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match v {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
        Value::Number(n) => match n.as_i64() {
            Some(i) if !n.is_f64() => i.into_pyobject(py)?.into_any(),
            _ => PyFloat::new(py, n.as_f64().unwrap_or(f64::NAN)).into_any(),
        },
        Value::String(s) => PyString::new(py, s).into_any(),
        Value::Array(a) => {
            let items = a.iter().map(|x| to_py(py, x)).collect::<PyResult<Vec<_>>>()?;
            PyList::new(py, items)?.into_any()
        }
        Value::Object(m) => {
            let d = PyDict::new(py);
            for (k, x) in m {
                d.set_item(k, to_py(py, x)?)?;
            }
            d.into_any()
        }
    })
}
