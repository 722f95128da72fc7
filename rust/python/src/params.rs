//! `RiskParams`: a compiled, immutable risk profile.

use crate::convert::{to_profile_value, to_py};
use crate::errors::{entry, guard};
use pmengine_core::params::{toml_value, DEFAULT_PROFILE_TOML};
use pmengine_core::{CoreError, RiskParams};
use pyo3::prelude::*;
use serde_json::{json, Value};
use std::sync::Arc;

/// A risk profile (METHODOLOGY.md §7), compiled once and shared by engines.
#[pyclass(name = "RiskParams", module = "pmengine._core", frozen)]
pub struct PyRiskParams {
    pub inner: Arc<RiskParams>,
    source: Value,
}

impl PyRiskParams {
    pub fn default_params() -> PyResult<Self> {
        Self::compile(guard(|| toml_value(DEFAULT_PROFILE_TOML))?)
    }

    fn compile(source: Value) -> PyResult<Self> {
        let inner = guard(|| RiskParams::from_value(&source))?;
        Ok(PyRiskParams { inner: Arc::new(inner), source })
    }
}

#[pymethods]
impl PyRiskParams {
    /// The bundled default profile (`DEFAULT_PROFILE_TOML`).
    #[staticmethod]
    fn default() -> PyResult<Self> {
        Self::default_params()
    }

    /// Compile a TOML profile file, read with the command line's limits
    /// (`pmengine.files`): a regular file of at most 64 MiB of UTF-8, no string
    /// longer than 65,536 characters. Errors name the file.
    #[staticmethod]
    fn from_toml(path: std::path::PathBuf) -> PyResult<Self> {
        entry(|| {
            let file = path.display().to_string();
            let fail = |m: String| crate::errors::to_py(CoreError::profile(file.as_str(), m));
            let text = read_text(&path).map_err(fail)?;
            let source = toml_value(&text).map_err(|e| match e.field() {
                "profile" => crate::errors::to_py(CoreError::profile(file.as_str(), e.message()).with_code(e.code())),
                _ => crate::errors::to_py(e),
            })?;
            longest_string(&source).map_err(fail)?;
            Self::compile(source)
        })
    }

    /// Compile a profile from TOML text.
    #[staticmethod]
    fn from_toml_str(text: &str) -> PyResult<Self> {
        Self::compile(guard(|| toml_value(text))?)
    }

    /// Compile a profile from a dict shaped like the TOML file.
    #[staticmethod]
    fn from_dict(d: &Bound<'_, PyAny>) -> PyResult<Self> {
        entry(|| Self::compile(to_profile_value(d)?))
    }

    /// The profile as a dict (the source it was compiled from).
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        guard(|| to_py(py, &self.source))
    }

    /// The same profile evaluated by another margin model: ``"scenario"`` or
    /// ``"binance_pm"`` (which needs the profile's ``[binance]`` table).
    fn with_model(&self, model: &str) -> PyResult<Self> {
        let mut source = self.source.clone();
        match &mut source {
            Value::Object(m) => {
                m.insert("model".into(), Value::String(model.into()));
            }
            _ => unreachable!("a compiled profile is a table"),
        }
        Self::compile(source)
    }

    /// The margin model: ``"scenario"`` (METHODOLOGY.md) or ``"binance_pm"`` (docs/BINANCE.md).
    #[getter]
    fn model(&self) -> &'static str {
        self.inner.model.name()
    }

    #[getter]
    fn name(&self) -> &str {
        &self.inner.name
    }
    #[getter]
    fn version(&self) -> &str {
        &self.inner.version
    }
    /// IM = im_factor · MM.
    #[getter]
    fn im_factor(&self) -> f64 {
        self.inner.im_factor
    }
    #[getter]
    fn vol_floor(&self) -> f64 {
        self.inner.vol_floor
    }
    /// Status ladder, healthiest first: `[(name, above), ...]`; the last `above` is -inf.
    #[getter]
    fn status_levels(&self) -> Vec<(String, f64)> {
        self.inner.status.iter().map(|s| (s.name.to_string(), s.above)).collect()
    }
    /// `[eligibility]` as compiled (every key, defaults filled): ``min_equity``
    /// (USD), ``min_kyc_level``, ``require_futures_enabled``, ``require_quiz``,
    /// ``min_trading_days``, ``restricted_jurisdictions``.
    #[getter]
    fn eligibility<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let e = &self.inner.eligibility;
        to_py(
            py,
            &json!({
                "min_equity": e.min_equity, "min_kyc_level": e.min_kyc_level,
                "require_futures_enabled": e.require_futures_enabled, "require_quiz": e.require_quiz,
                "min_trading_days": e.min_trading_days, "restricted_jurisdictions": e.restricted_jurisdictions,
            }),
        )
    }
    /// `[switching]` as compiled: ``switch_min_ratio`` (uniMMR), ``switch_max_margin_ratio``,
    /// ``min_switch_interval`` (seconds), ``allow_options_in_classic``.
    #[getter]
    fn switching<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let s = &self.inner.switching;
        to_py(
            py,
            &json!({
                "switch_min_ratio": s.switch_min_ratio, "switch_max_margin_ratio": s.switch_max_margin_ratio,
                "min_switch_interval": s.min_switch_interval, "allow_options_in_classic": s.allow_options_in_classic,
            }),
        )
    }
    /// `[classic]` as compiled: ``cross_margin_call``, ``cross_margin_liquidation``
    /// (margin levels), ``futures_margin_call`` (margin ratio), ``default_leverage``.
    #[getter]
    fn classic<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let c = &self.inner.classic;
        to_py(
            py,
            &json!({
                "cross_margin_call": c.cross_margin_call, "cross_margin_liquidation": c.cross_margin_liquidation,
                "futures_margin_call": c.futures_margin_call, "default_leverage": c.default_leverage,
            }),
        )
    }
    /// The assets the profile lists (`[assets.*]`), sorted.
    #[getter]
    fn assets(&self) -> Vec<String> {
        let mut names: Vec<String> = self.inner.assets.keys().cloned().collect();
        names.sort_unstable();
        names
    }
    /// Every group's grid and add-on parameters as compiled, ``"*"`` for the
    /// groups without a table of their own: ``price_range`` (fraction),
    /// ``price_points``, ``vol_shocks``, ``extreme_multiple``, ``extreme_cover``,
    /// ``basis_rate``, ``som_rate``.
    #[getter]
    fn groups<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let one = |g: &pmengine_core::params::GroupParams| {
            json!({
                "price_range": g.price_range, "price_points": g.price_points, "vol_shocks": g.vol_shocks,
                "extreme_multiple": g.extreme_multiple, "extreme_cover": g.extreme_cover,
                "basis_rate": g.basis_rate, "som_rate": g.som_rate,
            })
        };
        let mut names: Vec<&String> = self.inner.groups.keys().collect();
        names.sort_unstable();
        let mut out = serde_json::Map::new();
        out.insert("*".into(), one(&self.inner.default_group));
        for n in names {
            out.insert(n.clone(), one(&self.inner.groups[n]));
        }
        to_py(py, &Value::Object(out))
    }
    /// Correlation offsets, highest rate first: ``(group a, group b, rate)``.
    #[getter]
    fn offsets(&self) -> Vec<(String, String, f64)> {
        self.inner.offsets.iter().map(|o| (o.a.clone(), o.b.clone(), o.rate)).collect()
    }
    /// Systemic scenarios in order: ``name``, ``multiple`` (of each group's
    /// price range), ``vol_shock`` and ``overrides`` (group → absolute return).
    #[getter]
    fn systemic<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let rows: Vec<Value> = (self.inner.systemic.iter())
            .map(|s| {
                let overrides: serde_json::Map<String, Value> =
                    s.overrides.iter().map(|(g, r)| (g.clone(), json!(r))).collect();
                json!({"name": s.name, "multiple": s.multiple, "vol_shock": s.vol_shock, "overrides": overrides})
            })
            .collect();
        to_py(py, &Value::Array(rows))
    }
    /// The risk group of an asset.
    fn group_of(&self, asset: &str) -> String {
        self.inner.group_of(asset).to_string()
    }
    /// Whether an asset counts as collateral (first tier rate > 0).
    fn is_collateral(&self, asset: &str) -> bool {
        self.inner.is_collateral(asset)
    }
    /// The status a uniMMR falls in (BANKRUPT is decided by equity, not here).
    fn status_for(&self, uni_mmr: &Bound<'_, PyAny>) -> PyResult<&str> {
        let uni_mmr = crate::convert::float_arg(uni_mmr, "uni_mmr")?;
        Ok(self.inner.status_name(self.inner.status_for(uni_mmr)))
    }
    /// A status's rank: its index on the ladder (0 the healthiest), BANKRUPT one
    /// past the last level. Raises `InvalidInputError` naming `status` for a name
    /// that is neither.
    fn status_rank(&self, status: &str) -> PyResult<usize> {
        let p = &self.inner;
        let rank = p.status_named(status).map(|s| usize::from(s.code(p.status.len())));
        guard(|| {
            rank.ok_or_else(|| {
                let names: Vec<&str> = p.status.iter().map(|s| s.name.as_str()).collect();
                CoreError::invalid(
                    "status",
                    format!("unknown status {status:?}, expected one of {names:?} or BANKRUPT"),
                )
            })
        })
    }

    fn __repr__(&self) -> String {
        format!("RiskParams(name={:?}, version={:?})", self.inner.name, self.inner.version)
    }
}

/// TOML text as a dict, parsed by the core's TOML reader: nesting is bounded
/// and a long dotted key costs its length (Python's `tomllib` is quadratic in
/// it). `nan` and `inf` come back as the strings the core reads them as, a date
/// as its text. `InvalidInputError` (`not valid TOML: ...`) on a bad document.
#[pyfunction]
pub fn toml_loads<'py>(py: Python<'py>, text: &str) -> PyResult<Bound<'py, PyAny>> {
    entry(|| {
        let v = toml_value(text).map_err(|e| match e {
            CoreError::Profile { message, code, .. } => crate::errors::invalid(code, "", message),
            e => crate::errors::to_py(e),
        })?;
        to_py(py, &v)
    })
}

/// The largest JSON or TOML input file (bytes), as `pmengine.files.MAX_TEXT_BYTES`.
pub const MAX_TEXT_BYTES: u64 = 64 << 20;
/// The longest string of an input file (characters), as `pmengine.files.MAX_STRING_CHARS`.
pub const MAX_STRING_CHARS: usize = 65_536;

/// The UTF-8 text of a regular file of at most [`MAX_TEXT_BYTES`]: a FIFO, a
/// device or a folder is refused before it is read (nothing blocks on it).
fn read_text(path: &std::path::Path) -> Result<String, String> {
    use std::io::Read;
    let kind = |m: &std::fs::Metadata| {
        let t = m.file_type();
        #[cfg(unix)]
        {
            use std::os::unix::fs::FileTypeExt;
            for (is, name) in [
                (t.is_fifo(), "a pipe (FIFO)"),
                (t.is_char_device(), "a character device"),
                (t.is_block_device(), "a block device"),
                (t.is_socket(), "a socket"),
            ] {
                if is {
                    return Some(name);
                }
            }
        }
        match () {
            _ if t.is_file() => None,
            _ if t.is_dir() => Some("a folder"),
            _ => Some("not a regular file"),
        }
    };
    let cannot = |e: std::io::Error| format!("cannot read: {}", e.kind());
    let refuse = |k: &str| Err(format!("{k}, a regular file expected"));
    // Checked before opening (opening a FIFO waits for a writer), and again on the open file.
    if let Some(k) = kind(&std::fs::metadata(path).map_err(cannot)?) {
        return refuse(k);
    }
    let file = std::fs::File::open(path).map_err(cannot)?;
    let meta = file.metadata().map_err(cannot)?;
    if let Some(k) = kind(&meta) {
        return refuse(k);
    }
    let mut bytes = Vec::new();
    file.take(MAX_TEXT_BYTES + 1).read_to_end(&mut bytes).map_err(cannot)?;
    if bytes.len() as u64 > MAX_TEXT_BYTES {
        return Err(format!("more than the limit of {MAX_TEXT_BYTES} bytes"));
    }
    let text = String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        format!("not UTF-8 text: byte 0x{:02x} at offset {at}", e.as_bytes()[at])
    })?;
    Ok(text.strip_prefix('\u{feff}').map(str::to_string).unwrap_or(text))
}

/// Every string (key or value) at most [`MAX_STRING_CHARS`] characters.
fn longest_string(v: &Value) -> Result<(), String> {
    let check = |s: &str| {
        let n = s.chars().count();
        if n > MAX_STRING_CHARS {
            return Err(format!("a string of {n} characters, more than the limit of {MAX_STRING_CHARS}"));
        }
        Ok(())
    };
    match v {
        Value::String(s) => check(s),
        Value::Array(a) => a.iter().try_for_each(longest_string),
        Value::Object(m) => m.iter().try_for_each(|(k, x)| check(k).and_then(|()| longest_string(x))),
        _ => Ok(()),
    }
}
