//! `Portfolio`: an account's balances and positions, held in Rust.

use crate::convert::{to_py, to_value};
use crate::errors::{entry, guard};
use pmengine_core::{ClassicTerms, OptionKind, Portfolio, Position};
use pyo3::prelude::*;

/// An account: wallet balances (asset units; negative = a loan), margin loans
/// and positions. Build it with the `add_*` methods or from the portfolio JSON format.
#[pyclass(name = "Portfolio", module = "pmengine._core")]
#[derive(Clone, Default)]
pub struct PyPortfolio {
    pub inner: Portfolio,
}

#[pymethods]
impl PyPortfolio {
    #[new]
    fn new() -> Self {
        Self::default()
    }

    /// From a dict in the portfolio JSON format (METHODOLOGY.md §8).
    #[staticmethod]
    fn from_dict(d: &Bound<'_, PyAny>) -> PyResult<Self> {
        entry(|| {
            let v = to_value(d, "")?;
            Ok(PyPortfolio { inner: guard(|| Portfolio::from_value(&v))? })
        })
    }

    /// From portfolio JSON text.
    #[staticmethod]
    fn from_json(text: &str) -> PyResult<Self> {
        Ok(PyPortfolio { inner: guard(|| Portfolio::from_json_str(text))? })
    }

    /// Add `qty` units of `asset` to its wallet balance (negative: borrow).
    fn add_balance(&mut self, asset: &str, qty: f64) -> PyResult<()> {
        guard(|| self.inner.add_balance(asset, qty))
    }

    /// A margin loan of `asset`: `borrowed` principal and accrued `interest`
    /// (asset units, each ≥ 0). The balance holds the borrowed coins; the net
    /// wallet is balance − borrowed − interest (docs/BINANCE.md §3).
    #[pyo3(signature = (asset, borrowed, interest=0.0))]
    fn add_loan(&mut self, asset: &str, borrowed: f64, interest: f64) -> PyResult<()> {
        guard(|| self.inner.add_loan(asset, borrowed, interest))
    }

    /// A USDⓈ-margined future or perpetual: `qty` in base units (negative
    /// short), `entry_price` in settle units per base unit.
    #[pyo3(signature = (symbol, underlying, qty, entry_price, *, settle="USDT", isolated_margin=None, leverage=None))]
    fn add_linear(
        &mut self,
        symbol: &str,
        underlying: &str,
        qty: f64,
        entry_price: f64,
        settle: &str,
        isolated_margin: Option<f64>,
        leverage: Option<f64>,
    ) -> PyResult<()> {
        guard(|| {
            self.inner.add_position(Position::Linear {
                symbol: symbol.into(),
                underlying: underlying.into(),
                settle: settle.into(),
                qty,
                entry_price,
                classic: ClassicTerms { isolated_margin, leverage },
            })
        })
    }

    /// A coin-margined future or perpetual: `contracts` (negative short) of
    /// `contract_size` USD each, `entry_price` in USD per coin; settles in the underlying.
    #[pyo3(signature = (symbol, underlying, contract_size, contracts, entry_price, *, isolated_margin=None, leverage=None))]
    fn add_inverse(
        &mut self,
        symbol: &str,
        underlying: &str,
        contract_size: f64,
        contracts: f64,
        entry_price: f64,
        isolated_margin: Option<f64>,
        leverage: Option<f64>,
    ) -> PyResult<()> {
        guard(|| {
            self.inner.add_position(Position::Inverse {
                symbol: symbol.into(),
                underlying: underlying.into(),
                contract_size,
                contracts,
                entry_price,
                classic: ClassicTerms { isolated_margin, leverage },
            })
        })
    }

    /// A European option: `qty` in underlying units (negative short), `strike`
    /// in settle units, `expiry` ISO-8601 text, a datetime or epoch seconds.
    #[pyo3(signature = (symbol, underlying, kind, strike, expiry, qty, *, settle="USDT"))]
    fn add_option(
        &mut self,
        symbol: &str,
        underlying: &str,
        kind: &str,
        strike: f64,
        expiry: &Bound<'_, PyAny>,
        qty: f64,
        settle: &str,
    ) -> PyResult<()> {
        entry(|| {
            let at = format!("positions[{}]", self.inner.positions.len());
            let kind = guard(|| OptionKind::parse(kind, &format!("{at}.kind")))?;
            let expiry = crate::convert::time_arg(expiry, &format!("{at}.expiry"))?;
            guard(|| {
                self.inner.add_position(Position::Option {
                    symbol: symbol.into(),
                    underlying: underlying.into(),
                    settle: settle.into(),
                    kind,
                    strike,
                    expiry,
                    qty,
                })
            })
        })
    }

    /// Informational name of the account (the format's `name`).
    #[getter]
    fn name(&self) -> Option<&str> {
        self.inner.name.as_deref()
    }

    /// Informational description (the format's `description`).
    #[getter]
    fn description(&self) -> Option<&str> {
        self.inner.description.as_deref()
    }

    /// Wallet balances, asset units (a copy).
    #[getter]
    fn balances(&self) -> Vec<(String, f64)> {
        self.inner.balances.clone()
    }

    /// Margin loans: asset -> (borrowed, interest), asset units (a copy).
    #[getter]
    fn loans(&self) -> Vec<(String, (f64, f64))> {
        self.inner.loans.iter().map(|(a, l)| (a.clone(), (l.borrowed, l.interest))).collect()
    }

    /// Positions as dicts in the JSON format (a copy).
    #[getter]
    fn positions<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        guard(|| to_py(py, &self.inner.to_value()["positions"]))
    }

    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        guard(|| to_py(py, &self.inner.to_value()))
    }

    fn to_json(&self) -> String {
        self.inner.to_value().to_string()
    }

    fn __len__(&self) -> usize {
        self.inner.positions.len()
    }

    fn __copy__(&self) -> Self {
        self.clone()
    }

    fn __repr__(&self) -> String {
        format!("Portfolio({} balances, {} positions)", self.inner.balances.len(), self.inner.positions.len())
    }
}
