//! `Engine`: a compiled profile that margins accounts.

use crate::classic::PyClassicResult;
use crate::convert::{float_arg, int_arg};
use crate::errors::{entry, guard};
use crate::market::PyMarket;
use crate::params::PyRiskParams;
use crate::portfolio::PyPortfolio;
use crate::result::PyMarginResult;
use pmengine_core::roots::{Crossing, PricePath};
use pmengine_core::{ClassicMode, Engine};
use pyo3::prelude::*;
use std::sync::Arc;

/// A portfolio-margin engine compiled from a profile (default: the bundled one).
/// Thread-safe and immutable: share one engine across threads.
#[pyclass(name = "Engine", module = "pmengine._core", frozen)]
pub struct PyEngine {
    inner: Arc<Engine>,
    params: Py<PyRiskParams>,
}

impl PyEngine {
    pub fn core(&self) -> Arc<Engine> {
        Arc::clone(&self.inner)
    }
}

impl PyEngine {
    /// A status rank argument: 0 (the ladder's first level) to the ladder's
    /// length (BANKRUPT).
    fn status_rank_arg(&self, target: &Bound<'_, PyAny>) -> PyResult<usize> {
        let levels = self.inner.params().status.len() as i64;
        Ok(int_arg(target, "target", 0, Some(levels))? as usize)
    }
}

#[pymethods]
impl PyEngine {
    #[new]
    #[pyo3(signature = (params=None))]
    fn new(py: Python<'_>, params: Option<Py<PyRiskParams>>) -> PyResult<Self> {
        let params = match params {
            Some(p) => p,
            None => Py::new(py, PyRiskParams::default_params()?)?,
        };
        let inner = Arc::new(Engine::new((*params.get().inner).clone()));
        Ok(PyEngine { inner, params })
    }

    #[getter]
    fn params(&self, py: Python<'_>) -> Py<PyRiskParams> {
        self.params.clone_ref(py)
    }

    /// Portfolio margin of one account on one market snapshot. Runs on the
    /// calling thread with the GIL held: it takes microseconds. The portfolio
    /// keeps its resolution against the market (assets, groups, netted symbols)
    /// from call to call: a later call re-reads only the market's numbers when
    /// the market changed, and only evaluates when neither did; changing the
    /// portfolio, or margining it with another engine, resolves it again.
    fn margin(&self, portfolio: PyRef<'_, PyPortfolio>, market: PyRef<'_, PyMarket>) -> PyResult<PyMarginResult> {
        let inner = guard(|| portfolio.margin(&self.inner, &market))?;
        Ok(PyMarginResult::new(inner, &self.inner))
    }

    /// The risk groups the account touches (a balance, a loan or a position's
    /// underlying), in the order it first touches them, whichever the model.
    fn risk_groups(&self, portfolio: PyRef<'_, PyPortfolio>, market: PyRef<'_, PyMarket>) -> PyResult<Vec<String>> {
        guard(|| self.inner.risk_groups(&portfolio.inner, &market.inner))
    }

    /// Greeks per position and per group (computed with the GIL released), as a dict:
    /// `{"positions": [{position, symbol, group, delta, delta_usd, gamma, vega, theta}], "groups": {name: {...}}}`.
    /// Units: delta in coin, delta_usd in USD, gamma in coin per USD of underlying
    /// price, vega in USD per vol point, theta in USD per day.
    fn greeks<'py>(
        &self,
        py: Python<'py>,
        portfolio: PyRef<'_, PyPortfolio>,
        market: PyRef<'_, PyMarket>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (portfolio, market) = (&portfolio.inner, &market.inner);
        let g = py.detach(|| guard(|| self.inner.greeks(portfolio, market)))?;
        entry(|| crate::convert::to_py(py, &g.to_value()))
    }

    /// Every position's terms on the snapshot, in the portfolio's order: type,
    /// symbol, group, margin asset, signed quantity, mark (an option's model
    /// value per unit), notional and dollar delta (USD) and value (UPnL of a
    /// contract, `qty · value` of an option, in the margin asset).
    fn position_terms<'py>(
        &self,
        py: Python<'py>,
        portfolio: PyRef<'_, PyPortfolio>,
        market: PyRef<'_, PyMarket>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (portfolio, market) = (&portfolio.inner, &market.inner);
        let terms = py.detach(|| guard(|| self.inner.position_terms(portfolio, market)))?;
        let rows: Vec<_> = terms.iter().map(|t| t.to_value()).collect();
        entry(|| crate::convert::to_py(py, &serde_json::Value::Array(rows)))
    }

    /// Classic margin of the account (METHODOLOGY.md §5), USD, computed with the
    /// GIL released (the portfolio and market stay borrowed meanwhile). `mode`:
    /// `"as_given"` (positions with `isolated_margin` isolated, the rest
    /// cross), `"cross"` (every futures position cross) or `"isolated"` (every
    /// one isolated with its `isolated_margin`, else its initial margin).
    #[pyo3(signature = (portfolio, market, mode="as_given"))]
    fn classic(
        &self,
        py: Python<'_>,
        portfolio: PyRef<'_, PyPortfolio>,
        market: PyRef<'_, PyMarket>,
        mode: &str,
    ) -> PyResult<PyClassicResult> {
        let (portfolio, market) = (&portfolio.inner, &market.inner);
        let inner = py.detach(|| guard(|| self.inner.classic(portfolio, market, ClassicMode::parse(mode)?)))?;
        Ok(PyClassicResult { inner })
    }

    /// Margin of every account of a columnar book on one market snapshot, with
    /// the GIL released, on `threads` threads (default: one per core).
    ///
    /// `positions`: one row per position, columns `account` (integer id), `type`
    /// ("linear" / "inverse" / "option"), `symbol`, `underlying`, `qty` (base
    /// units, contracts for an inverse contract, underlying units for an
    /// option; signed), and as the types need them `entry_price` (settle units;
    /// USD for inverse), `contract_size` (USD), `strike` (settle units),
    /// `expiry` (seconds since the epoch, or an Arrow timestamp), `kind`
    /// ("call" / "put"), `settle` (default USDT). `balances`: `account`,
    /// `asset`, `qty` (asset units, negative: a loan). Either an Arrow object
    /// (pyarrow Table or RecordBatch, or anything with `__arrow_c_stream__`)
    /// or a dict of numpy arrays. Rows need not be sorted.
    ///
    /// Returns one row per account, ascending id: `account`, `equity`,
    /// `adjusted_equity`, `maintenance_margin`, `initial_margin`, `available`
    /// (USD), `uni_mmr`, `status`, `worst_group` (largest requirement), its
    /// `worst_price_move` and `worst_vol_shock`, and `error`; as a
    /// `pyarrow.Table`, or with `output="numpy"` a dict of numpy arrays.
    /// A bad row raises naming `positions[row].field`; with
    /// `errors="collect"` its account gets status "ERROR", NaN figures and the
    /// message, and the others go on. Results do not depend on `threads` or
    /// `chunk_size` (accounts per unit of work).
    /// `threads` is at most 1,024.
    ///
    /// A `pyarrow.RecordBatchReader` of positions (balances: a reader or a
    /// table) is margined as it is read, part by part (`pmengine.book.batch.margin_stream`:
    /// rows sorted by account), and gives a `pyarrow.RecordBatchReader` of results.
    /// `first_rows`: the row numbers of the first position and balance rows, for
    /// messages naming rows of a longer stream.
    #[pyo3(
        signature = (positions, balances, market, *, threads=None, errors="raise", output="arrow", chunk_size=None, first_rows=None),
        text_signature = "($self, positions, balances, market, *, threads=None, errors=\"raise\", output=\"arrow\", chunk_size=512, first_rows=...)"
    )]
    #[allow(clippy::too_many_arguments)]
    fn margin_batch<'py>(
        slf: &Bound<'py, Self>,
        positions: &Bound<'py, PyAny>,
        balances: Option<&Bound<'py, PyAny>>,
        market: Bound<'py, PyMarket>,
        threads: Option<&Bound<'py, PyAny>>,
        errors: &str,
        output: &str,
        chunk_size: Option<&Bound<'py, PyAny>>,
        first_rows: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        let chunk_size = chunk_size.map_or(Ok(512), |c| int_arg(c, "chunk_size", 1, None))? as i128;
        let first_rows = match first_rows {
            None => (0, 0),
            Some(f) => {
                let (a, b) = f.extract::<(Bound<'py, PyAny>, Bound<'py, PyAny>)>()?;
                // Bounded so that a row number added to either never overflows.
                let row = |x: &Bound<'py, PyAny>| int_arg(x, "first_rows", 0, Some(1 << 62)).map(i128::from);
                (row(&a)?, row(&b)?)
            }
        };
        if crate::batch::is_reader(positions)? {
            let kwargs = pyo3::types::PyDict::new(py);
            kwargs.set_item("threads", threads)?;
            kwargs.set_item("errors", errors)?;
            kwargs.set_item("output", output)?;
            kwargs.set_item("chunk_size", chunk_size)?;
            let stream = py.import("pmengine.book.batch")?.getattr("margin_stream")?;
            return stream.call((slf, positions, balances, market), Some(&kwargs));
        }
        let market = market.borrow();
        guard(|| {
            crate::batch::margin_batch(
                py,
                &slf.get().inner,
                positions,
                balances,
                &market.inner,
                threads,
                errors,
                output,
                chunk_size,
                first_rows,
            )
        })
    }

    /// The account's margin under many market moves at once, with the GIL
    /// released, on `threads` threads (default: one per core).
    ///
    /// `moves`: relative price moves, a 2-D array of scenarios x assets whose
    /// columns `assets` names (asset `j` of scenario `k` priced `P * (1 +
    /// moves[k, j])`; 0.1 is +10 %), or a mapping `{asset: 1-D array}`. Assets
    /// not named keep their price. Contract marks move with their quote as
    /// `pmengine.risk.moved_market` moves them (linear: `(1 + r_b) / (1 + r_s)`,
    /// inverse: `1 + r_b`). `vol_shifts`: relative implied-vol shifts, one
    /// number or one per scenario (every vol times `1 + v`). Options are
    /// repriced in every scenario; both margin models.
    ///
    /// Returns a dict of numpy arrays, one row per scenario: `equity`,
    /// `adjusted_equity`, `maintenance_margin`, `initial_margin`, `available`
    /// (USD), `uni_mmr`, `status` (uint16 index into `status_names`, the
    /// profile's ladder then "BANKRUPT"). Row `k` equals `margin` on the moved
    /// market, bit for bit, whatever `threads`.
    #[pyo3(signature = (portfolio, market, moves, assets=None, *, vol_shifts=None, threads=None))]
    fn sweep<'py>(
        &self,
        py: Python<'py>,
        portfolio: PyRef<'py, PyPortfolio>,
        market: PyRef<'py, PyMarket>,
        moves: &Bound<'py, PyAny>,
        assets: Option<Vec<String>>,
        vol_shifts: Option<&Bound<'py, PyAny>>,
        threads: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, pyo3::types::PyDict>> {
        guard(|| {
            crate::sweep::sweep(py, &self.inner, &portfolio.inner, &market.inner, moves, assets, vol_shifts, threads)
        })
    }

    /// Where uniMMR first crosses each of `thresholds` along each price path,
    /// computed with the GIL released.
    ///
    /// A path is `(exponents, grid)`: on factor `f`, each asset `a` of
    /// `exponents` (`[(asset, e), ...]`) is priced `P * f ** e` (taken as the return
    /// `f ** e - 1`, as `sweep` takes it; `e = 1`: `P * f`), marks move as in
    /// `sweep`, other prices stay. `grid`: the factors scanned in order to bracket
    /// the first crossing, which is then bisected until the bracket is within
    /// `tol` relative. uniMMR counts as `-inf` where the account is bankrupt.
    ///
    /// Returns, per path, per threshold, `None` (no crossing on the grid) or
    /// `(factor, uni_mmr)`: the factor on the far side of the crossing and
    /// uniMMR there. Both margin models.
    #[pyo3(signature = (portfolio, market, paths, thresholds, *, tol))]
    #[allow(clippy::type_complexity)]
    fn crossings(
        &self,
        py: Python<'_>,
        portfolio: PyRef<'_, PyPortfolio>,
        market: PyRef<'_, PyMarket>,
        paths: Vec<(Vec<(String, Bound<'_, PyAny>)>, Vec<Bound<'_, PyAny>>)>,
        thresholds: Vec<Bound<'_, PyAny>>,
        tol: &Bound<'_, PyAny>,
    ) -> PyResult<Vec<Vec<Option<(f64, f64)>>>> {
        let (portfolio, market) = (&portfolio.inner, &market.inner);
        // A grid is hundreds of floats a call: each one's field name is built only
        // when it does not convert (`float_arg` reads a float the same way).
        let numbers = |xs: &[Bound<'_, PyAny>], at: &str| -> PyResult<Vec<f64>> {
            let number = |(j, x): (usize, &Bound<'_, PyAny>)| match x.extract::<f64>() {
                Ok(v) => Ok(v),
                Err(_) => float_arg(x, &format!("{at}[{j}]")),
            };
            xs.iter().enumerate().map(number).collect()
        };
        let paths = (paths.iter().enumerate())
            .map(|(i, (exponents, grid))| {
                let exponents = (exponents.iter())
                    .map(|(a, e)| Ok((a.clone(), float_arg(e, &format!("paths[{i}].exponents.{a}"))?)))
                    .collect::<PyResult<Vec<_>>>()?;
                Ok((exponents, numbers(grid, &format!("paths[{i}].grid"))?))
            })
            .collect::<PyResult<Vec<_>>>()?;
        let thresholds = numbers(&thresholds, "thresholds")?;
        let tol = float_arg(tol, "tol")?;
        let found = py.detach(|| {
            let paths: Vec<PricePath<'_>> =
                paths.iter().map(|(exponents, grid)| PricePath { exponents, grid }).collect();
            guard(|| self.inner.crossings(portfolio, market, &paths, &thresholds, tol))
        })?;
        let pairs = |row: Vec<Option<Crossing>>| row.into_iter().map(|c| c.map(|c| (c.factor, c.uni_mmr))).collect();
        Ok(found.into_iter().map(pairs).collect())
    }

    /// The smallest deposit of `asset` (asset units) that keeps the account's
    /// status at rank `target` (0: the first on the profile's ladder) or
    /// healthier on `stressed` (default: `market`): 0 when none is needed, None
    /// when no deposit up to 1e15 USD does. Starts at max(1, |equity|, MM) on
    /// `market` in asset units, doubles until enough, then bisects to `rel_tol`
    /// relative, rounded up: the amount returned is enough.
    #[pyo3(signature = (portfolio, market, asset, target, *, stressed=None, rel_tol))]
    #[allow(clippy::too_many_arguments)]
    fn deposit_needed(
        &self,
        py: Python<'_>,
        portfolio: PyRef<'_, PyPortfolio>,
        market: PyRef<'_, PyMarket>,
        asset: &str,
        target: &Bound<'_, PyAny>,
        stressed: Option<PyRef<'_, PyMarket>>,
        rel_tol: &Bound<'_, PyAny>,
    ) -> PyResult<Option<f64>> {
        let (target, rel_tol) = (self.status_rank_arg(target)?, float_arg(rel_tol, "rel_tol")?);
        let stressed = stressed.as_deref().map_or(&market.inner, |m| &m.inner);
        let (portfolio, market) = (&portfolio.inner, &market.inner);
        py.detach(|| guard(|| self.inner.deposit_needed(portfolio, market, stressed, asset, target, rel_tol)))
    }

    /// The largest withdrawal of `asset` (asset units, at most its positive
    /// balance) that keeps the account's status at rank `target` or healthier
    /// on `market` (the market after a scenario, or now), bisected to `rel_tol`
    /// of the balance, rounded down: the amount returned is safe.
    #[pyo3(signature = (portfolio, market, asset, target, *, rel_tol))]
    fn max_withdrawal(
        &self,
        py: Python<'_>,
        portfolio: PyRef<'_, PyPortfolio>,
        market: PyRef<'_, PyMarket>,
        asset: &str,
        target: &Bound<'_, PyAny>,
        rel_tol: &Bound<'_, PyAny>,
    ) -> PyResult<f64> {
        let (target, rel_tol) = (self.status_rank_arg(target)?, float_arg(rel_tol, "rel_tol")?);
        let (portfolio, market) = (&portfolio.inner, &market.inner);
        py.detach(|| guard(|| self.inner.max_withdrawal(portfolio, market, asset, target, rel_tol)))
    }

    /// The liquidation plan of the account, computed with the GIL released:
    /// the greedy steps (cancel open orders; close the position whose close
    /// lowers MM the most, partially when a fraction reaches the target; sell
    /// collateral at index to repay loans) until uniMMR is at least the
    /// threshold of status rank `target` (0: the ladder's first level), each
    /// bisected to `rel_tol`. No step raises MM or lowers adjusted equity. An
    /// account above the liquidation level gets no steps unless `force`.
    ///
    /// Returns a dict: the account's `status` and `uni_mmr` before, the
    /// `target_ratio`, `needed` (at or below the liquidation level), `reached`,
    /// `steps` (dicts: `kind`, `position` (an index into `portfolio`, for a
    /// close), `asset` and `loan_asset` (for a repayment), `fraction`, `qty`
    /// (signed quantity closed, or minus the collateral sold), `usd` (USD
    /// traded), `repaid`, and uniMMR and MM (USD) before and after) and the
    /// `portfolio` after them. Both margin models.
    #[pyo3(signature = (portfolio, market, target, *, force=false, rel_tol))]
    fn liquidation_plan<'py>(
        &self,
        py: Python<'py>,
        portfolio: PyRef<'py, PyPortfolio>,
        market: PyRef<'py, PyMarket>,
        target: &Bound<'py, PyAny>,
        force: bool,
        rel_tol: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, pyo3::types::PyDict>> {
        entry(|| {
            let levels = self.inner.params().status.len() as i64;
            let target = int_arg(target, "target", 0, Some(levels - 1))? as usize;
            let rel_tol = float_arg(rel_tol, "rel_tol")?;
            crate::plan::liquidation_plan(py, &self.inner, &portfolio, &market.inner, target, force, rel_tol)
        })
    }

    /// `portfolio` after the plan steps `actions` (dicts as `liquidation_plan`
    /// gives them; a replay reads `kind`, and `position` and `fraction` of a
    /// close, `asset`, `loan_asset`, `qty` and `repaid` of a repayment), on
    /// `market`. A close takes its fraction of what is left of the position at
    /// its mark and credits its value to its margin asset. Errors name
    /// `actions[i].field`.
    fn apply_plan(
        &self,
        py: Python<'_>,
        portfolio: PyRef<'_, PyPortfolio>,
        market: PyRef<'_, PyMarket>,
        actions: &Bound<'_, PyAny>,
    ) -> PyResult<PyPortfolio> {
        entry(|| crate::plan::apply_plan(py, &self.inner, &portfolio, &market.inner, actions))
    }

    fn __repr__(&self) -> String {
        format!("Engine(params={:?})", self.inner.params().name)
    }
}
