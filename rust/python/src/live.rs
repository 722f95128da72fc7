//! `LiveAccount`: the core's live account behind a read-write lock.

use crate::convert::{float_arg, to_value};
use crate::engine::PyEngine;
use crate::errors::{entry, guard};
use crate::market::PyMarket;
use crate::portfolio::PyPortfolio;
use crate::result::{Figures, PyMarginResult};
use crate::reuse::{sole, Reusable};
use pmengine_core::portfolio::{parse_position, Position};
use pmengine_core::{CoreError, Engine, LiveAccount, MarginResult, Order, OrderRef, SymbolKey};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyString};
use std::sync::{Arc, RwLock, RwLockWriteGuard, TryLockError};

/// An account kept live in Rust for a trading bot: ticks, fills, deposits and
/// loans update it in place, and `margin()` is as fresh as a full recompute.
///
/// Thread-safe: any number of threads may call `margin()` while one updates;
/// updates and what-ifs are serialised (a what-if applies the order, evaluates
/// and restores, under the write lock). The GIL is released while a call waits
/// for the lock and while it works on a large account or does heavy work
/// (options repriced, a search for the largest order); a small account's tick,
/// fill or read keeps it (microseconds, less than releasing it costs).
#[pyclass(name = "LiveAccount", module = "pmengine._core", frozen)]
pub struct PyLiveAccount {
    inner: RwLock<Live>,
    /// The account's engine (fixed for its life): it names its results' statuses.
    engine: Arc<Engine>,
}

/// What the lock guards: the account, the last ordered symbol, and the last
/// what-if's and order check's objects (read and written only while the GIL
/// is held: they own Python objects).
struct Live {
    account: LiveAccount,
    last_symbol: Option<LastSymbol>,
    /// Kept to be refilled by the next call when nobody else holds them
    /// (`crate::reuse`); released (their figures dropped, so the account's
    /// what-if buffer is written in place) before every order.
    spare_result: Option<Py<PyMarginResult>>,
    spare_check: Option<Py<PyOrderCheck>>,
}

impl Live {
    /// Drop the spare objects' figures, or the spares that someone else holds.
    fn release_spares(&mut self, py: Python<'_>) {
        if let Some(r) = &self.spare_result {
            if PyMarginResult::refill(py, r, None).is_err() {
                self.spare_result = None;
            }
        }
        if let Some(c) = &self.spare_check {
            if PyOrderCheck::refill(py, c, Check::RELEASED).is_err() {
                self.spare_check = None;
            }
        }
    }

    /// A what-if's result object: the spare refilled, or a new one kept as the spare.
    fn result(
        &mut self,
        py: Python<'_>,
        after: Arc<MarginResult>,
        engine: &Arc<Engine>,
    ) -> PyResult<Py<PyMarginResult>> {
        let after = match &self.spare_result {
            Some(r) => match PyMarginResult::refill(py, r, Some(after)) {
                Ok(()) => return Ok(r.clone_ref(py)),
                Err(a) => a,
            },
            None => Some(after),
        };
        let r = Py::new(py, PyMarginResult::with(Figures::shared(after), engine))?;
        self.spare_result = Some(r.clone_ref(py));
        Ok(r)
    }

    /// An order check's object, as [`result`](Self::result).
    fn check(&mut self, py: Python<'_>, check: Check, engine: &Arc<Engine>) -> PyResult<Py<PyOrderCheck>> {
        let check = match &self.spare_check {
            Some(c) => match PyOrderCheck::refill(py, c, check) {
                Ok(()) => return Ok(c.clone_ref(py)),
                Err(k) => k,
            },
            None => check,
        };
        let c = Py::new(py, PyOrderCheck::new(check, engine))?;
        self.spare_check = Some(c.clone_ref(py));
        Ok(c)
    }
}

/// A bot orders the same few symbols with the same string objects: the last
/// one's text and key are kept with a strong reference to the object (so
/// while it is kept no other string can take its address), and a symbol
/// passed again as the same object is neither decoded nor looked up.
struct LastSymbol {
    object: Py<PyString>,
    text: String,
    key: SymbolKey,
}

#[pyclass(name = "OrderCheck", module = "pmengine._core", frozen, freelist = 16)]
pub struct PyOrderCheck {
    /// Replaced only when the live account reuses the object (`crate::reuse`).
    check: Reusable<Check>,
    engine: Arc<Engine>,
    /// The margin after the order as a Python object, made when first asked for.
    result: PyOnceLock<Py<PyMarginResult>>,
}

/// An order check's answer.
struct Check {
    allowed: bool,
    reason: Option<&'static str>,
    /// The margin after the order (the account's what-if buffer), none when released.
    after: Option<Arc<MarginResult>>,
}

impl Check {
    /// A spare's answer while the account holds it to refill it (never seen by Python).
    const RELEASED: Check = Check { allowed: false, reason: None, after: None };
}

impl PyOrderCheck {
    fn new(check: Check, engine: &Arc<Engine>) -> Self {
        PyOrderCheck { check: Reusable::new(check), engine: Arc::clone(engine), result: PyOnceLock::new() }
    }

    /// Put `check` in `object` in place of its own (returned) when the caller's
    /// reference is its only one and its result was never asked for, else give it back.
    fn refill(py: Python<'_>, object: &Py<Self>, check: Check) -> Result<(), Check> {
        match sole(py, object) {
            // SAFETY: `sole`: nobody else holds the object, so nobody reads its answer.
            Some(c) if c.get().result.get(py).is_none() => unsafe { c.get().check.set(check) },
            _ => return Err(check),
        }
        Ok(())
    }
}

#[pymethods]
impl PyOrderCheck {
    #[getter]
    fn allowed(&self) -> bool {
        self.check.get().allowed
    }
    /// `None`, or `"liquidation"`, `"reduce_only"`, `"insufficient_available_margin"`.
    #[getter]
    fn reason(&self) -> Option<&'static str> {
        self.check.get().reason
    }
    /// The margin after the order.
    #[getter]
    fn result(&self, py: Python<'_>) -> PyResult<Py<PyMarginResult>> {
        let after = || Figures::shared(self.check.get().after.clone());
        let r = self.result.get_or_try_init(py, || Py::new(py, PyMarginResult::with(after(), &self.engine)))?;
        Ok(r.clone_ref(py))
    }
    fn __repr__(&self) -> String {
        let Check { allowed, reason, .. } = self.check.get();
        format!("OrderCheck(allowed={}, reason={:?})", if *allowed { "True" } else { "False" }, reason)
    }
}

/// An order's arguments as passed: symbol, quantity, price, instrument description.
type OrderArgs<'a, 'py> =
    (&'a Bound<'py, PyString>, &'a Bound<'py, PyAny>, Option<&'a Bound<'py, PyAny>>, Option<&'a Bound<'py, PyDict>>);

/// An order's quantity and price arguments as floats (errors name `order.qty`, `order.price`).
fn order_numbers(qty: &Bound<'_, PyAny>, price: Option<&Bound<'_, PyAny>>) -> PyResult<(f64, Option<f64>)> {
    Ok((float_arg(qty, "order.qty")?, price.map(|p| float_arg(p, "order.price")).transpose()?))
}

fn order(symbol: &str, qty: f64, price: Option<f64>, instrument: Option<&Bound<'_, PyDict>>) -> PyResult<Order> {
    let instrument = instrument_of(symbol, instrument)?;
    Ok(Order { symbol: symbol.to_string(), qty, price, instrument })
}

/// An order's `instrument` description parsed (errors name `order.instrument`).
/// Inlined: the usual order has none, and a call returning an `Option<Position>` costs more than the check.
#[inline(always)]
fn instrument_of(symbol: &str, instrument: Option<&Bound<'_, PyDict>>) -> PyResult<Option<Position>> {
    match instrument {
        None => Ok(None), // the usual order, on a held symbol: nothing to parse
        Some(_) => entry(|| instrument_parsed(symbol, instrument)),
    }
}

fn instrument_parsed(symbol: &str, instrument: Option<&Bound<'_, PyDict>>) -> PyResult<Option<Position>> {
    Ok(match instrument {
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
    })
}

/// How much work an operation is on the account it is called on.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Work {
    /// Microseconds on a small account: kept under the GIL when the lock is free.
    Light,
    /// Light, but reprices the options a market update touches.
    Market,
    /// Always released (many evaluations).
    Heavy,
}

/// Up to this many balances, loans and positions an account is small.
const SMALL_ACCOUNT: usize = 64;

fn is_light(live: &LiveAccount, work: Work) -> bool {
    let p = live.portfolio();
    let small = p.balances.len() + p.loans.len() + p.positions.len() <= SMALL_ACCOUNT;
    match work {
        Work::Light => small,
        Work::Market => small && !p.positions.iter().any(|x| matches!(x, Position::Option { .. })),
        Work::Heavy => false,
    }
}

impl PyLiveAccount {
    /// Run `f` under the write lock: on this thread with the GIL held when the
    /// lock is free and the work light, else with the GIL released (waiting for
    /// the lock included; the lock is never held while the GIL is taken).
    fn write<T: Send>(
        &self,
        py: Python<'_>,
        work: Work,
        f: impl FnOnce(&mut LiveAccount) -> Result<T, CoreError> + Send,
    ) -> PyResult<T> {
        if let Some(mut live) = self.light_write(work) {
            return guard(|| f(&mut live.account));
        }
        py.detach(|| {
            let mut live = self.inner.write().unwrap_or_else(|p| p.into_inner());
            guard(|| f(&mut live.account))
        })
    }

    /// The write lock when it is free and `work` is light on the account (kept under the GIL).
    fn light_write(&self, work: Work) -> Option<RwLockWriteGuard<'_, Live>> {
        if work == Work::Heavy {
            return None;
        }
        let held = match self.inner.try_write() {
            Ok(g) => Some(g),
            Err(TryLockError::Poisoned(p)) => Some(p.into_inner()),
            Err(TryLockError::WouldBlock) => None,
        };
        held.filter(|l| is_light(&l.account, work))
    }

    /// Run `f` on the order under the write lock, as [`write`](Self::write).
    /// On the light path (GIL held) `symbol`'s text and key are the last
    /// order's when it is the same object, and kept for the next order, the
    /// spare objects are released before `f`, and the lock is returned held.
    fn order_write<T: Send>(
        &self,
        py: Python<'_>,
        (symbol, qty, price, instrument): OrderArgs<'_, '_>,
        f: impl FnOnce(&mut LiveAccount, OrderRef<'_>) -> Result<T, CoreError> + Send,
    ) -> PyResult<(T, Option<RwLockWriteGuard<'_, Live>>)> {
        let (qty, price) = order_numbers(qty, price)?;
        let Some(mut live) = self.light_write(Work::Light) else {
            let text = symbol.to_str()?;
            let instrument = instrument_of(text, instrument)?;
            let o = OrderRef { symbol: text, qty, price, instrument: instrument.as_ref(), key: None };
            return Ok((self.write(py, Work::Light, |l| f(l, o))?, None));
        };
        live.release_spares(py);
        let Live { account, last_symbol, .. } = &mut *live;
        // The kept object is alive (held here), so no other string has its address.
        let last = last_symbol.as_ref().filter(|l| l.object.as_ptr() == symbol.as_ptr());
        let (text, key) = match last {
            Some(l) => (l.text.as_str(), Some(l.key)),
            None => (symbol.to_str()?, None),
        };
        let instrument = instrument_of(text, instrument)?;
        let key = key.filter(|&k| account.is_current(k)).unwrap_or_else(|| account.symbol_key(text));
        let o = OrderRef { symbol: text, qty, price, instrument: instrument.as_ref(), key: Some(key) };
        let out = guard(|| f(account, o))?;
        match last_symbol {
            Some(l) if l.object.as_ptr() == symbol.as_ptr() => l.key = key,
            _ => {
                let text = symbol.to_str()?.to_owned();
                *last_symbol = Some(LastSymbol { object: symbol.clone().unbind(), text, key });
            }
        }
        Ok((out, Some(live)))
    }

    /// Run `f` under a read lock, as [`write`](Self::write) decides for light work.
    fn read<T: Send>(&self, py: Python<'_>, f: impl FnOnce(&LiveAccount) -> T + Send) -> PyResult<T> {
        let held = match self.inner.try_read() {
            Ok(g) => Some(g),
            Err(TryLockError::Poisoned(p)) => Some(p.into_inner()),
            Err(TryLockError::WouldBlock) => None,
        };
        if let Some(live) = held.filter(|l| is_light(&l.account, Work::Light)) {
            return guard(|| Ok::<_, CoreError>(f(&live.account)));
        }
        py.detach(|| {
            let live = self.inner.read().unwrap_or_else(|p| p.into_inner());
            guard(|| Ok::<_, CoreError>(f(&live.account)))
        })
    }
}

#[pymethods]
impl PyLiveAccount {
    #[new]
    fn new(
        py: Python<'_>,
        engine: PyRef<'_, PyEngine>,
        portfolio: PyRef<'_, PyPortfolio>,
        market: PyRef<'_, PyMarket>,
    ) -> PyResult<Self> {
        let (engine, portfolio, market) = (engine.core(), portfolio.inner.clone(), market.inner.clone());
        let live = py.detach(|| guard(|| LiveAccount::new(Arc::clone(&engine), portfolio, market)))?;
        let live = Live { account: live, last_symbol: None, spare_result: None, spare_check: None };
        Ok(PyLiveAccount { inner: RwLock::new(live), engine })
    }

    /// The account's margin now.
    fn margin(&self, py: Python<'_>) -> PyResult<PyMarginResult> {
        Ok(PyMarginResult::new(self.read(py, |l| l.margin())?, &self.engine))
    }

    /// A new index price (USD per unit of `asset`).
    fn update_price(&self, py: Python<'_>, asset: &str, price: &Bound<'_, PyAny>) -> PyResult<()> {
        let price = float_arg(price, &pmengine_core::input::path("market.prices", asset))?;
        self.write(py, Work::Market, |l| l.update_price(asset, price))
    }
    /// Several index prices at once: `{asset: price}`.
    fn update_prices(
        &self,
        py: Python<'_>,
        prices: std::collections::HashMap<String, Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let mut v: Vec<(String, f64)> = (prices.into_iter())
            .map(|(a, x)| Ok((a.clone(), float_arg(&x, &pmengine_core::input::path("market.prices", &a))?)))
            .collect::<PyResult<_>>()?;
        v.sort_by(|a, b| a.0.cmp(&b.0));
        self.write(py, Work::Market, |l| l.update_prices(&v))
    }
    /// A new contract mark (quote units).
    fn update_mark(&self, py: Python<'_>, symbol: &str, mark: &Bound<'_, PyAny>) -> PyResult<()> {
        let mark = float_arg(mark, &pmengine_core::input::path("market.marks", symbol))?;
        self.write(py, Work::Light, |l| l.update_mark(symbol, mark))
    }
    /// A new implied vol for an option symbol or an underlying.
    fn update_vol(&self, py: Python<'_>, key: &str, vol: &Bound<'_, PyAny>) -> PyResult<()> {
        let vol = float_arg(vol, &pmengine_core::input::path("market.vols", key))?;
        self.write(py, Work::Market, |l| l.update_vol(key, vol))
    }
    /// Move the snapshot's clock (seconds since the epoch, UTC).
    fn set_time(&self, py: Python<'_>, time: &Bound<'_, PyAny>) -> PyResult<()> {
        let time = float_arg(time, "market.time")?;
        self.write(py, Work::Market, |l| l.set_time(time))
    }
    /// Add `qty` > 0 units of `asset` to the wallet.
    fn deposit(&self, py: Python<'_>, asset: &str, qty: &Bound<'_, PyAny>) -> PyResult<()> {
        let qty = float_arg(qty, "deposit.qty")?;
        self.write(py, Work::Light, |l| l.deposit(asset, qty))
    }
    /// Take `qty` > 0 units out of the wallet (at most what it holds).
    fn withdraw(&self, py: Python<'_>, asset: &str, qty: &Bound<'_, PyAny>) -> PyResult<()> {
        let qty = float_arg(qty, "withdraw.qty")?;
        self.write(py, Work::Light, |l| l.withdraw(asset, qty))
    }
    /// Borrow `qty` > 0 units (the wallet balance goes down by `qty`: a loan).
    fn borrow(&self, py: Python<'_>, asset: &str, qty: &Bound<'_, PyAny>) -> PyResult<()> {
        let qty = float_arg(qty, "borrow.qty")?;
        self.write(py, Work::Light, |l| l.borrow(asset, qty))
    }
    /// Repay `qty` > 0 units of a loan (at most the loan).
    fn repay(&self, py: Python<'_>, asset: &str, qty: &Bound<'_, PyAny>) -> PyResult<()> {
        let qty = float_arg(qty, "repay.qty")?;
        self.write(py, Work::Light, |l| l.repay(asset, qty))
    }

    /// Apply a fill: `qty` signed (+ buy), base units (linear), contracts
    /// (inverse) or units (option); `price` in quote units (default: the mark,
    /// or the option's model value). A symbol not held needs `instrument`, a
    /// position dict in the portfolio format (its qty and entry are ignored).
    #[pyo3(signature = (symbol, qty, price=None, *, instrument=None))]
    fn apply_fill(
        &self,
        py: Python<'_>,
        symbol: &Bound<'_, PyString>,
        qty: &Bound<'_, PyAny>,
        price: Option<&Bound<'_, PyAny>>,
        instrument: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<()> {
        self.order_write(py, (symbol, qty, price, instrument), |l, o| l.apply_fill(o))?;
        Ok(())
    }

    /// The margin after the order, without changing the account.
    #[pyo3(signature = (symbol, qty, price=None, *, instrument=None))]
    fn what_if(
        &self,
        py: Python<'_>,
        symbol: &Bound<'_, PyString>,
        qty: &Bound<'_, PyAny>,
        price: Option<&Bound<'_, PyAny>>,
        instrument: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Py<PyMarginResult>> {
        let (after, live) = self.order_write(py, (symbol, qty, price, instrument), |l, o| {
            l.what_if(o)?;
            Ok(l.what_if_result())
        })?;
        match live {
            Some(mut live) => live.result(py, after, &self.engine),
            None => Py::new(py, PyMarginResult::shared(after, &self.engine)),
        }
    }

    /// Whether the order may be sent, why not, and the margin after it.
    #[pyo3(signature = (symbol, qty, price=None, *, instrument=None))]
    fn check_order(
        &self,
        py: Python<'_>,
        symbol: &Bound<'_, PyString>,
        qty: &Bound<'_, PyAny>,
        price: Option<&Bound<'_, PyAny>>,
        instrument: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Py<PyOrderCheck>> {
        let ((refusal, after), live) = self.order_write(py, (symbol, qty, price, instrument), |l, o| {
            let (refusal, _) = l.check_order(o)?;
            Ok((refusal, l.what_if_result()))
        })?;
        let check = Check { allowed: refusal.is_none(), reason: refusal.map(|r| r.code()), after: Some(after) };
        match live {
            Some(mut live) => live.check(py, check, &self.engine),
            None => Py::new(py, PyOrderCheck::new(check, &self.engine)),
        }
    }

    /// The largest quantity on `side` ("buy" or "sell") that keeps uniMMR at or
    /// above `target_ratio` (default: the profile's first status threshold, the
    /// margin-call line) and available margin ≥ 0; relative tolerance 1e-9,
    /// never over the limit. Units as in `apply_fill`.
    #[pyo3(signature = (symbol, side, *, target_ratio=None, price=None, instrument=None))]
    fn max_order_size(
        &self,
        py: Python<'_>,
        symbol: &str,
        side: &str,
        target_ratio: Option<&Bound<'_, PyAny>>,
        price: Option<&Bound<'_, PyAny>>,
        instrument: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<f64> {
        let target_ratio = target_ratio.map(|t| float_arg(t, "target_ratio")).transpose()?;
        let price = price.map(|p| float_arg(p, "order.price")).transpose()?;
        let sign = match side {
            "buy" => 1.0,
            "sell" => -1.0,
            _ => {
                return guard(|| Err(CoreError::invalid("side", format!("must be \"buy\" or \"sell\", got {side:?}"))))
            }
        };
        let o = order(symbol, sign, price, instrument)?;
        self.write(py, Work::Heavy, |l| {
            let target = target_ratio.unwrap_or(l.engine().params().status[0].above);
            l.max_order_size(&o, target)
        })
    }

    /// Operations that re-resolved the whole book (the rest took the fast path).
    #[getter]
    fn rebuilds(&self, py: Python<'_>) -> PyResult<u64> {
        self.read(py, |l| l.rebuilds())
    }
    /// A copy of the account's portfolio now.
    #[getter]
    fn portfolio(&self, py: Python<'_>) -> PyResult<PyPortfolio> {
        Ok(PyPortfolio::new_from(self.read(py, |l| l.portfolio().clone())?))
    }
    /// A copy of the account's market snapshot now.
    #[getter]
    fn market(&self, py: Python<'_>) -> PyResult<PyMarket> {
        Ok(PyMarket::new_from(self.read(py, |l| l.market().clone())?))
    }
    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        self.read(py, |l| {
            format!(
                "LiveAccount({} balances, {} positions)",
                l.portfolio().balances.len(),
                l.portfolio().positions.len()
            )
        })
    }
}
