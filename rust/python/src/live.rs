//! `LiveAccount`: the core's live account behind a read-write lock.

use crate::convert::to_value;
use crate::engine::PyEngine;
use crate::errors::{entry, guard};
use crate::market::PyMarket;
use crate::portfolio::PyPortfolio;
use crate::result::PyMarginResult;
use pmengine_core::portfolio::parse_position;
use pmengine_core::{CoreError, LiveAccount, Order};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::sync::RwLock;

/// An account kept live in Rust for a trading bot: ticks, fills, deposits and
/// loans update it in place, and `margin()` is as fresh as a full recompute.
///
/// Thread-safe: any number of threads may call `margin()` while one updates;
/// updates and what-ifs are serialised (a what-if applies the order, evaluates
/// and restores, under the write lock).
#[pyclass(name = "LiveAccount", module = "pmengine._core", frozen)]
pub struct PyLiveAccount {
    inner: RwLock<LiveAccount>,
}

/// The outcome of `LiveAccount.check_order`.
#[pyclass(name = "OrderCheck", module = "pmengine._core", frozen, freelist = 16)]
pub struct PyOrderCheck {
    #[pyo3(get)]
    allowed: bool,
    /// `None`, or `"liquidation"`, `"reduce_only"`, `"insufficient_available_margin"`.
    #[pyo3(get)]
    reason: Option<&'static str>,
    /// The margin after the order.
    #[pyo3(get)]
    result: Py<PyMarginResult>,
}

#[pymethods]
impl PyOrderCheck {
    fn __repr__(&self) -> String {
        format!("OrderCheck(allowed={}, reason={:?})", if self.allowed { "True" } else { "False" }, self.reason)
    }
}

fn order(symbol: &str, qty: f64, price: Option<f64>, instrument: Option<&Bound<'_, PyDict>>) -> PyResult<Order> {
    entry(|| order_of(symbol, qty, price, instrument))
}

fn order_of(symbol: &str, qty: f64, price: Option<f64>, instrument: Option<&Bound<'_, PyDict>>) -> PyResult<Order> {
    let instrument = match instrument {
        None => None,
        Some(d) => {
            let mut v = to_value(d.as_any(), "order.instrument")?;
            // Quantity and entry of a description are not used: fill them if absent.
            if let serde_json::Value::Object(m) = &mut v {
                m.entry("symbol").or_insert_with(|| symbol.into());
                let ty = m.get("type").and_then(|t| t.as_str()).unwrap_or("").to_string();
                let size_key = if ty == "inverse" { "contracts" } else { "qty" };
                m.entry(size_key).or_insert(0.into());
                if ty != "option" {
                    m.entry("entry_price").or_insert(1.into());
                }
            }
            Some(guard(|| parse_position(&v, "order.instrument"))?)
        }
    };
    Ok(Order { symbol: symbol.to_string(), qty, price, instrument })
}

impl PyLiveAccount {
    fn write<T>(&self, f: impl FnOnce(&mut LiveAccount) -> Result<T, CoreError>) -> PyResult<T> {
        let mut live = self.inner.write().unwrap_or_else(|p| p.into_inner());
        guard(|| f(&mut live))
    }
    fn read(&self) -> std::sync::RwLockReadGuard<'_, LiveAccount> {
        self.inner.read().unwrap_or_else(|p| p.into_inner())
    }
}

#[pymethods]
impl PyLiveAccount {
    #[new]
    fn new(
        engine: PyRef<'_, PyEngine>,
        portfolio: PyRef<'_, PyPortfolio>,
        market: PyRef<'_, PyMarket>,
    ) -> PyResult<Self> {
        let live = guard(|| LiveAccount::new(engine.core(), portfolio.inner.clone(), market.inner.clone()))?;
        Ok(PyLiveAccount { inner: RwLock::new(live) })
    }

    /// The account's margin now.
    fn margin(&self) -> PyResult<PyMarginResult> {
        guard(|| Ok::<_, CoreError>(PyMarginResult { inner: self.read().margin() }))
    }

    /// A new index price (USD per unit of `asset`).
    fn update_price(&self, asset: &str, price: f64) -> PyResult<()> {
        self.write(|l| l.update_price(asset, price))
    }
    /// Several index prices at once: `{asset: price}`.
    fn update_prices(&self, prices: std::collections::HashMap<String, f64>) -> PyResult<()> {
        let mut v: Vec<(String, f64)> = prices.into_iter().collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        self.write(|l| l.update_prices(&v))
    }
    /// A new contract mark (quote units).
    fn update_mark(&self, symbol: &str, mark: f64) -> PyResult<()> {
        self.write(|l| l.update_mark(symbol, mark))
    }
    /// A new implied vol for an option symbol or an underlying.
    fn update_vol(&self, key: &str, vol: f64) -> PyResult<()> {
        self.write(|l| l.update_vol(key, vol))
    }
    /// Move the snapshot's clock (seconds since the epoch, UTC).
    fn set_time(&self, time: f64) -> PyResult<()> {
        self.write(|l| l.set_time(time))
    }
    /// Add `qty` > 0 units of `asset` to the wallet.
    fn deposit(&self, asset: &str, qty: f64) -> PyResult<()> {
        self.write(|l| l.deposit(asset, qty))
    }
    /// Take `qty` > 0 units out of the wallet (at most what it holds).
    fn withdraw(&self, asset: &str, qty: f64) -> PyResult<()> {
        self.write(|l| l.withdraw(asset, qty))
    }
    /// Borrow `qty` > 0 units (the wallet balance goes down by `qty`: a loan).
    fn borrow(&self, asset: &str, qty: f64) -> PyResult<()> {
        self.write(|l| l.borrow(asset, qty))
    }
    /// Repay `qty` > 0 units of a loan (at most the loan).
    fn repay(&self, asset: &str, qty: f64) -> PyResult<()> {
        self.write(|l| l.repay(asset, qty))
    }

    /// Apply a fill: `qty` signed (+ buy), base units (linear), contracts
    /// (inverse) or units (option); `price` in quote units (default: the mark,
    /// or the option's model value). A symbol not held needs `instrument`, a
    /// position dict in the portfolio format (its qty and entry are ignored).
    #[pyo3(signature = (symbol, qty, price=None, *, instrument=None))]
    fn apply_fill(
        &self,
        symbol: &str,
        qty: f64,
        price: Option<f64>,
        instrument: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<()> {
        let o = order(symbol, qty, price, instrument)?;
        self.write(|l| l.apply_fill(&o))
    }

    /// The margin after the order, without changing the account.
    #[pyo3(signature = (symbol, qty, price=None, *, instrument=None))]
    fn what_if(
        &self,
        symbol: &str,
        qty: f64,
        price: Option<f64>,
        instrument: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<PyMarginResult> {
        let o = order(symbol, qty, price, instrument)?;
        Ok(PyMarginResult { inner: self.write(|l| l.what_if(&o).cloned())? })
    }

    /// Whether the order may be sent, why not, and the margin after it.
    #[pyo3(signature = (symbol, qty, price=None, *, instrument=None))]
    fn check_order(
        &self,
        py: Python<'_>,
        symbol: &str,
        qty: f64,
        price: Option<f64>,
        instrument: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<PyOrderCheck> {
        let o = order(symbol, qty, price, instrument)?;
        let (refusal, after) = self.write(|l| l.check_order(&o).map(|(r, after)| (r, after.clone())))?;
        Ok(PyOrderCheck {
            allowed: refusal.is_none(),
            reason: refusal.map(|r| r.code()),
            result: Py::new(py, PyMarginResult { inner: after })?,
        })
    }

    /// The largest quantity on `side` ("buy" or "sell") that keeps uniMMR at or
    /// above `target_ratio` (default: the profile's first status threshold, the
    /// margin-call line) and available margin ≥ 0; relative tolerance 1e-9,
    /// never over the limit. Units as in `apply_fill`.
    #[pyo3(signature = (symbol, side, *, target_ratio=None, price=None, instrument=None))]
    fn max_order_size(
        &self,
        symbol: &str,
        side: &str,
        target_ratio: Option<f64>,
        price: Option<f64>,
        instrument: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<f64> {
        let sign = match side {
            "buy" => 1.0,
            "sell" => -1.0,
            _ => {
                return guard(|| Err(CoreError::invalid("side", format!("must be \"buy\" or \"sell\", got {side:?}"))))
            }
        };
        let o = order(symbol, sign, price, instrument)?;
        self.write(|l| {
            let target = target_ratio.unwrap_or(l.engine().params().status[0].above);
            l.max_order_size(&o, target)
        })
    }

    /// Operations that re-resolved the whole book (the rest took the fast path).
    #[getter]
    fn rebuilds(&self) -> u64 {
        self.read().rebuilds()
    }
    /// A copy of the account's portfolio now.
    #[getter]
    fn portfolio(&self) -> PyPortfolio {
        PyPortfolio { inner: self.read().portfolio().clone() }
    }
    /// A copy of the account's market snapshot now.
    #[getter]
    fn market(&self) -> PyMarket {
        PyMarket { inner: self.read().market().clone() }
    }
    fn __repr__(&self) -> String {
        let l = self.read();
        format!("LiveAccount({} balances, {} positions)", l.portfolio().balances.len(), l.portfolio().positions.len())
    }
}
