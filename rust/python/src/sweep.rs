//! `Engine.sweep`: one account under many market moves, numpy in and out.

use crate::errors::{guard, invalid};
use numpy::{PyArray1, PyArrayMethods, PyUntypedArrayMethods};
use pmengine_core::error::Code;
use pmengine_core::{Engine, Market, Moves, Portfolio};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyMapping, PyTuple};

/// `x` as a C-contiguous float64 numpy array (a copy only when it is not one).
/// A number beyond a float's range in it (numpy's `OverflowError`) is an
/// `InvalidInputError` naming `field`.
fn float_array<'py>(x: &Bound<'py, PyAny>, field: &str) -> PyResult<Bound<'py, PyAny>> {
    let np = x.py().import("numpy")?;
    np.call_method1("ascontiguousarray", (x, "float64")).map_err(|e| {
        if e.is_instance_of::<pyo3::exceptions::PyOverflowError>(x.py()) {
            invalid(Code::OutOfRange, field, format!("must hold numbers within a float's range, {}", e.value(x.py())))
        } else {
            e
        }
    })
}

/// The moves as `(scenarios, assets, row-major returns)`.
fn read_moves(moves: &Bound<'_, PyAny>, assets: Option<Vec<String>>) -> PyResult<(usize, Vec<String>, Vec<f64>)> {
    if let Ok(columns) = moves.cast::<PyMapping>() {
        if assets.is_some() {
            return Err(invalid(
                Code::InvalidValue,
                "assets",
                "give the columns by the mapping's keys or by assets, not both",
            ));
        }
        let mut names = Vec::new();
        let mut cols: Vec<Vec<f64>> = Vec::new();
        for item in columns.items()?.iter() {
            let (k, v) = item.extract::<(String, Bound<'_, PyAny>)>()?;
            let a = float_array(&v, &format!("moves[{k:?}]"))?;
            let a = a.cast::<numpy::PyArrayDyn<f64>>()?;
            if a.ndim() != 1 {
                return Err(invalid(
                    Code::WrongType,
                    format!("moves[{k:?}]"),
                    format!("must be 1-D (one move per scenario), got {} dimensions", a.ndim()),
                ));
            }
            cols.push(a.readonly().as_slice()?.to_vec());
            names.push(k);
        }
        let n = cols.first().map_or(0, Vec::len);
        if let Some((k, c)) = names.iter().zip(&cols).find(|(_, c)| c.len() != n) {
            return Err(invalid(
                Code::InvalidValue,
                format!("moves[{k:?}]"),
                format!("{} scenarios, the first column has {n}", c.len()),
            ));
        }
        let m = cols.len();
        let mut returns = vec![0.0; n * m];
        for (j, c) in cols.iter().enumerate() {
            for (k, r) in c.iter().enumerate() {
                returns[k * m + j] = *r;
            }
        }
        return Ok((n, names, returns));
    }
    let Some(assets) = assets else {
        return Err(invalid(Code::Missing, "assets", "name the columns of moves (or give moves as {asset: column})"));
    };
    let a = float_array(moves, "moves")?;
    let a = a.cast::<numpy::PyArrayDyn<f64>>()?;
    let m = assets.len();
    let shape = a.shape().to_vec();
    let n = match shape[..] {
        [n, c] if c == m => n,
        [n] if m == 1 => n,
        _ => {
            return Err(invalid(
                Code::InvalidValue,
                "moves",
                format!("must be scenarios x assets, {m} column(s) for assets {assets:?}, got shape {shape:?}"),
            ))
        }
    };
    Ok((n, assets, a.readonly().as_slice()?.to_vec()))
}

/// `vol_shifts`: None, one number for every scenario, or one per scenario.
fn read_vol_shifts(v: Option<&Bound<'_, PyAny>>, n: usize) -> PyResult<Option<Vec<f64>>> {
    let Some(v) = v.filter(|v| !v.is_none()) else { return Ok(None) };
    if v.cast::<pyo3::types::PyInt>().is_ok() || v.extract::<f64>().is_ok() {
        return Ok(Some(vec![crate::convert::float_arg(v, "vol_shifts")?; n]));
    }
    let a = float_array(v, "vol_shifts")?;
    let a = a.cast::<numpy::PyArrayDyn<f64>>()?;
    if a.ndim() != 1 || a.len() != n {
        return Err(invalid(
            Code::InvalidValue,
            "vol_shifts",
            format!("one per scenario ({n}), got shape {:?}", a.shape()),
        ));
    }
    Ok(Some(a.readonly().as_slice()?.to_vec()))
}

#[allow(clippy::too_many_arguments)]
pub fn sweep<'py>(
    py: Python<'py>,
    engine: &Engine,
    portfolio: &Portfolio,
    market: &Market,
    moves: &Bound<'py, PyAny>,
    assets: Option<Vec<String>>,
    vol_shifts: Option<&Bound<'py, PyAny>>,
    threads: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyDict>> {
    let threads = threads.filter(|t| !t.is_none()).map(crate::batch::threads_arg).transpose()?.unwrap_or(0);
    let (n, assets, returns) = read_moves(moves, assets)?;
    let vols = read_vol_shifts(vol_shifts, n)?;
    // Owned copies above: the arrays may change while the GIL is released.
    let r = py.detach(|| {
        let moves = Moves { scenarios: n, assets: &assets, returns: &returns, vol_shifts: vols.as_deref() };
        guard(|| engine.sweep(portfolio, market, &moves, threads))
    })?;
    let d = PyDict::new(py);
    d.set_item("equity", PyArray1::from_vec(py, r.equity))?;
    d.set_item("adjusted_equity", PyArray1::from_vec(py, r.adjusted_equity))?;
    d.set_item("maintenance_margin", PyArray1::from_vec(py, r.maintenance_margin))?;
    d.set_item("initial_margin", PyArray1::from_vec(py, r.initial_margin))?;
    d.set_item("available", PyArray1::from_vec(py, r.available))?;
    d.set_item("uni_mmr", PyArray1::from_vec(py, r.uni_mmr))?;
    d.set_item("status", PyArray1::from_vec(py, r.status))?;
    let names: Vec<&str> = r.status_names.iter().map(String::as_str).collect();
    d.set_item("status_names", PyTuple::new(py, names)?)?;
    Ok(d)
}
