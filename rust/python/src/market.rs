//! `Market`: a market snapshot held in Rust, converted once.

use crate::convert::{float_arg, to_py, to_value};
use crate::errors::{entry, guard};
use pmengine_core::input::path;
use pmengine_core::Market;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

/// A market snapshot: index prices (USD), contract marks (quote units),
/// implied vols (annualised, per option symbol or per underlying), and a time.
#[pyclass(name = "Market", module = "pmengine._core")]
#[derive(Clone)]
pub struct PyMarket {
    /// Change it through `PyMarket`'s methods only: each takes a new `stamp`.
    pub inner: Market,
    /// Names this snapshot's numbers: taken anew by every change, kept by a copy
    /// (same numbers), so a portfolio's resolution on it is refreshed only when it moved.
    pub stamp: u64,
}

static NEXT_STAMP: AtomicU64 = AtomicU64::new(1);

impl PyMarket {
    pub fn new_from(inner: Market) -> Self {
        PyMarket { inner, stamp: NEXT_STAMP.fetch_add(1, Ordering::Relaxed) }
    }

    /// After a change of the numbers.
    fn touched(&mut self) {
        self.stamp = NEXT_STAMP.fetch_add(1, Ordering::Relaxed);
    }
}

fn sorted<'a>(m: impl IntoIterator<Item = (&'a String, &'a f64)>) -> BTreeMap<String, f64> {
    m.into_iter().map(|(k, v)| (k.clone(), *v)).collect()
}

fn time_value(time: &Bound<'_, PyAny>) -> PyResult<f64> {
    crate::convert::time_arg(time, "market.time")
}

#[pymethods]
impl PyMarket {
    /// `time`: ISO-8601 text, a `datetime`, or seconds since the epoch (UTC).
    #[new]
    #[pyo3(signature = (time, prices=None, marks=None, vols=None))]
    fn new(
        time: &Bound<'_, PyAny>,
        prices: Option<&Bound<'_, PyDict>>,
        marks: Option<&Bound<'_, PyDict>>,
        vols: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Self> {
        entry(|| {
            // One parser for every way in: the tables go through the JSON format's checks.
            let mut v = serde_json::json!({"time": "1970-01-01T00:00:00Z"});
            for (key, d) in [("prices", prices), ("marks", marks), ("vols", vols)] {
                if let Some(d) = d {
                    v[key] = to_value(d.as_any(), &format!("market.{key}"))?;
                }
            }
            let mut inner = guard(|| Market::from_value(&v))?;
            let t = time_value(time)?;
            guard(|| inner.set_time(t))?;
            Ok(PyMarket::new_from(inner))
        })
    }

    /// From a dict in the market JSON format (METHODOLOGY.md §8).
    #[staticmethod]
    fn from_dict(d: &Bound<'_, PyAny>) -> PyResult<Self> {
        entry(|| {
            let v = to_value(d, "market")?;
            Ok(PyMarket::new_from(guard(|| Market::from_value(&v))?))
        })
    }

    /// From market JSON text.
    #[staticmethod]
    fn from_json(text: &str) -> PyResult<Self> {
        Ok(PyMarket::new_from(guard(|| Market::from_json_str(text))?))
    }

    /// Set an index price (USD per unit of `asset`).
    fn set_price(&mut self, asset: &str, price: &Bound<'_, PyAny>) -> PyResult<()> {
        let price = float_arg(price, &path("market.prices", asset))?;
        self.touched();
        guard(|| self.inner.set_price(asset, price))
    }
    /// Set a contract mark (in the contract's quote units).
    fn set_mark(&mut self, symbol: &str, mark: &Bound<'_, PyAny>) -> PyResult<()> {
        let mark = float_arg(mark, &path("market.marks", symbol))?;
        self.touched();
        guard(|| self.inner.set_mark(symbol, mark))
    }
    /// Set an implied vol (annualised, 0.5 = 50 %) for an option symbol or an underlying.
    fn set_vol(&mut self, key: &str, vol: &Bound<'_, PyAny>) -> PyResult<()> {
        let vol = float_arg(vol, &path("market.vols", key))?;
        self.touched();
        guard(|| self.inner.set_vol(key, vol))
    }

    /// The market after a move: index prices times ``factors`` (asset → ``1 + r``),
    /// the marks of ``portfolio``'s contracts moved with their prices (a linear
    /// contract's by ``f_underlying / f_settle``, an inverse one's by
    /// ``f_underlying``), every vol times ``vol_factor``. A new snapshot; this one
    /// is unchanged.
    #[pyo3(signature = (portfolio, factors, vol_factor=None))]
    fn moved(
        &self,
        portfolio: PyRef<'_, crate::portfolio::PyPortfolio>,
        factors: &Bound<'_, PyDict>,
        vol_factor: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PyMarket> {
        let factors = (factors.iter())
            .map(|(k, v)| {
                let asset: String = k.extract()?;
                let f = float_arg(&v, &path("factors", &asset))?;
                Ok((asset, f))
            })
            .collect::<PyResult<Vec<_>>>()?;
        let vol_factor = crate::convert::opt_float_arg(vol_factor, "vol_factor")?.unwrap_or(1.0);
        let moved = guard(|| self.inner.moved(&portfolio.inner, &factors, vol_factor))?;
        Ok(PyMarket::new_from(moved))
    }

    /// Snapshot time, seconds since the epoch (UTC).
    #[getter]
    fn time(&self) -> f64 {
        self.inner.time
    }
    /// Snapshot time as ISO-8601 text, UTC (``2026-11-24T00:00:00Z``), as ``to_dict`` writes it.
    #[getter]
    fn iso_time(&self) -> String {
        self.inner.iso_time()
    }
    #[setter(time)]
    fn set_time(&mut self, time: &Bound<'_, PyAny>) -> PyResult<()> {
        self.touched();
        entry(|| {
            let t = time_value(time)?;
            guard(|| self.inner.set_time(t))
        })
    }
    /// Index prices, USD (a copy, in key order).
    #[getter]
    fn prices(&self) -> BTreeMap<String, f64> {
        sorted(&self.inner.prices)
    }
    /// Contract marks, in each contract's quote units (a copy, in key order).
    #[getter]
    fn marks(&self) -> BTreeMap<String, f64> {
        sorted(&self.inner.marks)
    }
    /// Implied vols, annualised, per option symbol or underlying (a copy, in key order).
    #[getter]
    fn vols(&self) -> BTreeMap<String, f64> {
        sorted(&self.inner.vols)
    }

    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        guard(|| to_py(py, &self.inner.to_value()))
    }

    fn to_json(&self) -> String {
        self.inner.to_value().to_string()
    }

    fn __copy__(&self) -> Self {
        self.clone()
    }
    /// A deep copy is a copy: the object holds no Python objects.
    fn __deepcopy__(&self, _memo: &Bound<'_, PyAny>) -> Self {
        self.clone()
    }
    /// Pickled as its JSON document, read back by `from_json`.
    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<(Bound<'py, PyAny>, (String,))> {
        Ok((slf.get_type().getattr("from_json")?, (slf.borrow().to_json(),)))
    }

    /// Number of option series priced on this snapshot and kept for reuse.
    #[getter]
    fn cached_series(&self) -> usize {
        self.inner.series.len()
    }

    /// Drop the priced option series (they are rebuilt on the next call: a
    /// portfolio's kept resolution re-reads this market).
    fn clear_cache(&mut self) {
        self.touched();
        self.inner.series.clear();
    }

    fn __repr__(&self) -> String {
        format!(
            "Market(time={:?}, {} prices, {} marks, {} vols)",
            self.inner.iso_time(),
            self.inner.prices.len(),
            self.inner.marks.len(),
            self.inner.vols.len()
        )
    }
}
