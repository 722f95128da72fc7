//! `Portfolio`: an account's balances and positions, held in Rust.

use crate::convert::{float_arg, opt_float_arg, to_py, to_value};
use crate::errors::{entry, guard};
use crate::market::PyMarket;
use pmengine_core::input::path;
use pmengine_core::resolved::Resolved;
use pmengine_core::{ClassicTerms, CoreError, Engine, MarginResult, OptionKind, Portfolio, Position};
use pyo3::prelude::*;
use std::sync::Mutex;

/// An account: wallet balances (asset units; negative = a loan), margin loans
/// and positions. Build it with the `add_*` methods or from the portfolio JSON format.
#[pyclass(name = "Portfolio", module = "pmengine._core")]
#[derive(Default)]
pub struct PyPortfolio {
    /// Change it through `PyPortfolio`'s methods only: each drops `resolved`.
    pub inner: Portfolio,
    /// The portfolio resolved by the last engine that margined it, and the
    /// stamp of the market it was last refreshed on.
    resolved: Mutex<Option<(Resolved, u64)>>,
}

impl Clone for PyPortfolio {
    /// A copy starts without a resolution (it may be changed apart from this one).
    fn clone(&self) -> Self {
        PyPortfolio::new_from(self.inner.clone())
    }
}

impl PyPortfolio {
    pub fn new_from(inner: Portfolio) -> Self {
        PyPortfolio { inner, resolved: Mutex::new(None) }
    }

    /// After a change of the account: its resolution is stale.
    fn changed(&mut self) {
        *self.resolved.get_mut().unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// `engine.margin(self, market)`, resolving the portfolio once per engine:
    /// later calls re-read only the market's numbers, and only when it changed
    /// (its stamp), so a call on an unchanged market is an evaluation alone. A
    /// call racing another on this portfolio (free-threaded Python) resolves
    /// its own book.
    pub fn margin(&self, engine: &Engine, market: &PyMarket) -> Result<MarginResult, CoreError> {
        let Ok(mut held) = self.resolved.try_lock() else {
            return engine.margin(&self.inner, &market.inner);
        };
        if let Some((resolved, stamp)) = held.as_mut().filter(|(r, _)| r.is_for(engine)) {
            if *stamp != market.stamp {
                if resolved.refresh(engine, &self.inner, &market.inner).is_err() {
                    // A price or vol the account needs is missing: the full path names the field.
                    *held = None;
                    return engine.margin(&self.inner, &market.inner);
                }
                *stamp = market.stamp;
            }
            return Ok(resolved.evaluate(engine));
        }
        let mut resolved = Resolved::new(engine, &self.inner, &market.inner)?;
        let result = resolved.evaluate(engine);
        *held = Some((resolved, market.stamp));
        Ok(result)
    }
}

/// A contract's classic terms, each named `at.<key>` when it is not a number.
fn classic_terms(
    at: &str,
    isolated_margin: Option<&Bound<'_, PyAny>>,
    leverage: Option<&Bound<'_, PyAny>>,
) -> PyResult<ClassicTerms> {
    Ok(ClassicTerms {
        isolated_margin: opt_float_arg(isolated_margin, &path(at, "isolated_margin"))?,
        leverage: opt_float_arg(leverage, &path(at, "leverage"))?,
    })
}

impl PyPortfolio {
    /// The path of the position the next `add_*` appends (errors name it).
    fn next_position(&self) -> String {
        format!("positions[{}]", self.inner.positions.len())
    }
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
            Ok(PyPortfolio::new_from(guard(|| Portfolio::from_value(&v))?))
        })
    }

    /// From portfolio JSON text.
    #[staticmethod]
    fn from_json(text: &str) -> PyResult<Self> {
        Ok(PyPortfolio::new_from(guard(|| Portfolio::from_json_str(text))?))
    }

    /// Add `qty` units of `asset` to its wallet balance (negative: borrow).
    fn add_balance(&mut self, asset: &str, qty: &Bound<'_, PyAny>) -> PyResult<()> {
        let qty = float_arg(qty, &path("balances", asset))?;
        self.changed();
        guard(|| self.inner.add_balance(asset, qty))
    }

    /// A margin loan of `asset`: `borrowed` principal and accrued `interest`
    /// (asset units, each ≥ 0). The balance holds the borrowed coins; the net
    /// wallet is balance − borrowed − interest (docs/BINANCE.md §3).
    #[pyo3(signature = (asset, borrowed, interest=None), text_signature = "($self, asset, borrowed, interest=0.0)")]
    fn add_loan(
        &mut self,
        asset: &str,
        borrowed: &Bound<'_, PyAny>,
        interest: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let at = path("loans", asset);
        let borrowed = float_arg(borrowed, &path(&at, "borrowed"))?;
        let interest = opt_float_arg(interest, &path(&at, "interest"))?.unwrap_or(0.0);
        self.changed();
        guard(|| self.inner.add_loan(asset, borrowed, interest))
    }

    /// A USDⓈ-margined future or perpetual: `qty` in base units (negative
    /// short), `entry_price` in settle units per base unit.
    #[pyo3(signature = (symbol, underlying, qty, entry_price, *, settle="USDT", isolated_margin=None, leverage=None))]
    #[allow(clippy::too_many_arguments)]
    fn add_linear(
        &mut self,
        symbol: &str,
        underlying: &str,
        qty: &Bound<'_, PyAny>,
        entry_price: &Bound<'_, PyAny>,
        settle: &str,
        isolated_margin: Option<&Bound<'_, PyAny>>,
        leverage: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        self.changed();
        let at = self.next_position();
        let position = Position::Linear {
            symbol: symbol.into(),
            underlying: underlying.into(),
            settle: settle.into(),
            qty: float_arg(qty, &path(&at, "qty"))?,
            entry_price: float_arg(entry_price, &path(&at, "entry_price"))?,
            classic: classic_terms(&at, isolated_margin, leverage)?,
        };
        guard(|| self.inner.add_position(position))
    }

    /// A coin-margined future or perpetual: `contracts` (negative short) of
    /// `contract_size` USD each, `entry_price` in USD per coin; settles in the underlying.
    #[pyo3(signature = (symbol, underlying, contract_size, contracts, entry_price, *, isolated_margin=None, leverage=None))]
    #[allow(clippy::too_many_arguments)]
    fn add_inverse(
        &mut self,
        symbol: &str,
        underlying: &str,
        contract_size: &Bound<'_, PyAny>,
        contracts: &Bound<'_, PyAny>,
        entry_price: &Bound<'_, PyAny>,
        isolated_margin: Option<&Bound<'_, PyAny>>,
        leverage: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        self.changed();
        let at = self.next_position();
        let position = Position::Inverse {
            symbol: symbol.into(),
            underlying: underlying.into(),
            contract_size: float_arg(contract_size, &path(&at, "contract_size"))?,
            contracts: float_arg(contracts, &path(&at, "contracts"))?,
            entry_price: float_arg(entry_price, &path(&at, "entry_price"))?,
            classic: classic_terms(&at, isolated_margin, leverage)?,
        };
        guard(|| self.inner.add_position(position))
    }

    /// A European option: `qty` in underlying units (negative short), `strike`
    /// in settle units, `expiry` ISO-8601 text, a datetime or epoch seconds.
    #[pyo3(signature = (symbol, underlying, kind, strike, expiry, qty, *, settle="USDT"))]
    #[allow(clippy::too_many_arguments)]
    fn add_option(
        &mut self,
        symbol: &str,
        underlying: &str,
        kind: &str,
        strike: &Bound<'_, PyAny>,
        expiry: &Bound<'_, PyAny>,
        qty: &Bound<'_, PyAny>,
        settle: &str,
    ) -> PyResult<()> {
        self.changed();
        entry(|| {
            let at = self.next_position();
            let kind = guard(|| OptionKind::parse(kind, &path(&at, "kind")))?;
            let strike = float_arg(strike, &path(&at, "strike"))?;
            let expiry = crate::convert::time_arg(expiry, &path(&at, "expiry"))?;
            let qty = float_arg(qty, &path(&at, "qty"))?;
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
        self.inner.balances.to_vec()
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
    /// A deep copy is a copy: the object holds no Python objects.
    fn __deepcopy__(&self, _memo: &Bound<'_, PyAny>) -> Self {
        self.clone()
    }
    /// Pickled as its JSON document, read back by `from_json`.
    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<(Bound<'py, PyAny>, (String,))> {
        Ok((slf.get_type().getattr("from_json")?, (slf.borrow().to_json(),)))
    }

    fn __repr__(&self) -> String {
        format!("Portfolio({} balances, {} positions)", self.inner.balances.len(), self.inner.positions.len())
    }
}
