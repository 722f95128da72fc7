//! Risk parameters: a versioned profile (TOML or an equivalent JSON/dict value)
//! compiled once into the tables the engine reads. Nothing here is a constant
//! of the model: every number comes from the profile (METHODOLOGY.md §7).

use crate::brackets::BracketTables;
use crate::error::{Code, Result};
use crate::input::{
    array, float_value, fmt_num, non_negative, number, path, positive, string, table, tier_table, up_to, Fields, Source,
};
use crate::status::{Status, BANKRUPT};
use rustc_hash::FxHashMap as HashMap;
use serde_json::Value;

const P: Source = Source::Profile;

/// The default profile (`rust/core/profiles/default.toml`, METHODOLOGY.md §7),
/// compiled into the binary: the crate owns it, and the Python package reads it
/// from here (`pmengine.DEFAULT_PROFILE_TOML`).
pub const DEFAULT_PROFILE_TOML: &str = include_str!("../profiles/default.toml");

/// Most scenarios one group's grid may have (`price_points × len(vol_shocks)`),
/// and all groups together: a real profile has tens to hundreds per group; the
/// bounds stop a few bytes of profile from asking for gigabytes.
pub const MAX_GROUP_SCENARIOS: usize = 100_001;
pub const MAX_TOTAL_SCENARIOS: usize = 1_000_000;
pub use crate::status::MAX_STATUS_LEVELS;

/// TOML text as the JSON-shaped value the profile parser reads. Floats go
/// through [`float_value`], so `nan` or `inf` is reported by the finiteness
/// check naming its key (serde alone turns them into null, which reads as an
/// absent key and silently takes the default).
pub fn toml_value(text: &str) -> Result<Value> {
    fn json(v: toml::Value) -> Value {
        match v {
            toml::Value::String(s) => Value::String(s),
            toml::Value::Integer(i) => Value::from(i),
            toml::Value::Float(x) => float_value(x),
            toml::Value::Boolean(b) => Value::Bool(b),
            toml::Value::Datetime(d) => Value::String(d.to_string()),
            toml::Value::Array(a) => Value::Array(a.into_iter().map(json).collect()),
            toml::Value::Table(t) => Value::Object(t.into_iter().map(|(k, v)| (k, json(v))).collect()),
        }
    }
    let v: toml::Value = toml::from_str(text).map_err(|e| {
        crate::error::CoreError::profile("profile", format!("not valid TOML: {}", e.message())).with_code(Code::Syntax)
    })?;
    Ok(json(v))
}

/// A marginal band of collateral value: `rate` on the USD value below `up_to`.
#[derive(Debug, Clone, PartialEq)]
pub struct CollateralTier {
    pub rate: f64,
    /// Upper end of the band in USD (`f64::INFINITY` for the last band).
    pub up_to: f64,
}

/// A marginal concentration band: `rate` on the part of |D| above `above`.
#[derive(Debug, Clone, PartialEq)]
pub struct ConcentrationTier {
    pub above: f64,
    pub rate: f64,
}

/// Grid and add-on parameters of one risk group.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupParams {
    pub price_range: f64,
    pub price_points: usize,
    pub vol_shocks: Vec<f64>,
    pub extreme_multiple: f64,
    pub extreme_cover: f64,
    pub basis_rate: f64,
    pub som_rate: f64,
    pub concentration: Vec<ConcentrationTier>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AssetParams {
    pub group: String,
    /// Empty: not collateral.
    pub collateral: Vec<CollateralTier>,
    pub borrow_mmr: Option<f64>,
    /// Leverage of a margin loan in this asset (`binance_pm`); `None`: `[binance] loan_leverage`.
    pub loan_leverage: Option<f64>,
}

/// The margin model a profile evaluates a book with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Model {
    /// METHODOLOGY.md: scenario grids, offsets, systemic scenarios.
    #[default]
    Scenario,
    /// Binance's uniMMR: brackets, collateral rates, loan MMR (docs/BINANCE.md).
    BinancePm,
}

impl Model {
    pub fn name(self) -> &'static str {
        match self {
            Model::Scenario => "scenario",
            Model::BinancePm => "binance_pm",
        }
    }
}

/// `[binance]`: what Binance's formula needs beyond brackets and collateral.
#[derive(Debug, Clone, PartialEq)]
pub struct BinanceParams {
    /// Leverage of a margin loan in an asset without `loan_leverage`.
    pub loan_leverage: f64,
    /// MM rate of a loan by its leverage, `(leverage, rate)` sorted by leverage.
    pub loan_mmr: Vec<(f64, f64)>,
    /// Collateral rate of an asset the profile gives no bands; `None`: such an asset is an error.
    pub default_collateral_rate: Option<f64>,
}

impl BinanceParams {
    /// The MM rate of a loan at `leverage` (validated when the profile compiled).
    pub fn loan_mmr(&self, leverage: f64) -> f64 {
        self.loan_mmr.iter().find(|(l, _)| *l == leverage).map_or(f64::NAN, |(_, r)| *r)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Offset {
    pub a: String,
    pub b: String,
    pub rate: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SystemicScenario {
    pub name: String,
    pub multiple: f64,
    pub vol_shock: f64,
    /// Absolute returns for named groups, replacing `multiple · price_range`.
    pub overrides: Vec<(String, f64)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StatusLevel {
    pub name: String,
    /// uniMMR must be strictly above this; `-inf` for the last entry.
    pub above: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ClassicParams {
    /// Spot cross margin: margin level of the call and of liquidation.
    pub cross_margin_call: f64,
    pub cross_margin_liquidation: f64,
    /// Futures wallets: margin ratio of the call (liquidation is at 1).
    pub futures_margin_call: f64,
    /// Leverage of a futures position that does not set one (classic and
    /// `binance_pm` initial margin).
    pub default_leverage: f64,
}

/// Binance's levels: a margin call at 1.3 and liquidation at 1.1 (cross
/// margin level), a futures call at a margin ratio of 0.8, 20x leverage.
impl Default for ClassicParams {
    fn default() -> Self {
        ClassicParams {
            cross_margin_call: 1.3,
            cross_margin_liquidation: 1.1,
            futures_margin_call: 0.8,
            default_leverage: 20.0,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct EligibilityParams {
    pub min_equity: f64,
    pub min_kyc_level: i64,
    pub require_futures_enabled: bool,
    pub require_quiz: bool,
    pub min_trading_days: i64,
    pub restricted_jurisdictions: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SwitchingParams {
    pub switch_min_ratio: f64,
    pub switch_max_margin_ratio: f64,
    pub min_switch_interval: f64,
    pub allow_options_in_classic: bool,
}

/// A compiled risk profile.
#[derive(Debug, Clone, PartialEq)]
pub struct RiskParams {
    pub name: String,
    pub version: String,
    pub model: Model,
    pub im_factor: f64,
    pub vol_floor: f64,
    pub borrow_mmr: f64,
    /// `[groups."*"]`: the parameters of every group without its own table.
    pub default_group: GroupParams,
    pub groups: HashMap<String, GroupParams>,
    pub assets: HashMap<String, AssetParams>,
    /// Sorted by descending rate, ties in file order.
    pub offsets: Vec<Offset>,
    pub systemic: Vec<SystemicScenario>,
    pub status: Vec<StatusLevel>,
    pub classic: ClassicParams,
    /// Futures brackets (classic margin and `binance_pm`).
    pub brackets: BracketTables,
    /// `[binance]`; required under `model = "binance_pm"`.
    pub binance: Option<BinanceParams>,
    pub eligibility: EligibilityParams,
    pub switching: SwitchingParams,
}

impl GroupParams {
    /// Scenarios of the group's grid with the vol dimension (the extremes aside).
    pub fn scenarios(&self) -> usize {
        self.price_points * self.vol_shocks.len()
    }
}

impl RiskParams {
    pub fn default_profile() -> Self {
        Self::from_toml_str(DEFAULT_PROFILE_TOML).expect("the bundled default profile compiles")
    }

    pub fn from_toml_str(text: &str) -> Result<Self> {
        Self::from_value(&toml_value(text)?)
    }

    pub fn from_json_str(text: &str) -> Result<Self> {
        let v: Value = serde_json::from_str(text).map_err(|e| {
            crate::error::CoreError::profile("profile", format!("not valid JSON: {e}")).with_code(Code::Syntax)
        })?;
        Self::from_value(&v)
    }

    /// Compile a parsed profile; every error names its key path.
    pub fn from_value(v: &Value) -> Result<Self> {
        let mut f = Fields::new(v, "", P)?;
        let name = f.opt_str("name")?.unwrap_or("custom").to_string();
        let version = match f.get("version") {
            None => String::new(),
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            Some(o) => {
                return Err(P
                    .err("version", format!("must be a string, got {}", crate::input::show(o)))
                    .with_code(Code::WrongType))
            }
        };
        let model = match f.opt_str("model")? {
            None | Some("scenario") => Model::Scenario,
            Some("binance_pm") => Model::BinancePm,
            Some(o) => return Err(P.err("model", format!("must be \"scenario\" or \"binance_pm\", got {o:?}"))),
        };

        let (im_factor, vol_floor, borrow_mmr) = match f.get("margin") {
            Some(m) => {
                let mut m = Fields::new(m, "margin", P)?;
                let im = m.f64_or("im_factor", 1.5)?;
                if !(im.is_finite() && (1.0..=MAX_FACTOR).contains(&im)) {
                    let bounds = format!("must be >= 1 and <= {}", fmt_num(MAX_FACTOR));
                    return Err(P
                        .err("margin.im_factor", format!("{bounds}, got {}", fmt_num(im)))
                        .with_code(Code::OutOfRange));
                }
                let floor = non_negative(m.f64_or("vol_floor", 0.0)?, "margin.vol_floor", P)?;
                if floor > crate::input::MAX_VOL {
                    let bounds = format!("must be <= {} (a vol)", fmt_num(crate::input::MAX_VOL));
                    return Err(P.err("margin.vol_floor", format!("{bounds}, got {}", fmt_num(floor))));
                }
                let bm = rate_p(m.f64_or("borrow_mmr", 0.0)?, "margin.borrow_mmr")?;
                m.finish()?;
                (im, floor, bm)
            }
            None => (1.5, 0.0, 0.0),
        };

        // Groups: "*" first, then each named table over it.
        let groups_v = f.req("groups")?;
        let groups_t = table(groups_v, "groups", P)?;
        let star = groups_t.get("*").ok_or_else(|| {
            P.err("groups.\"*\"", "required: the parameters of every other group".into()).with_code(Code::Missing)
        })?;
        let default_group = parse_group(star, "groups.\"*\"", None)?;
        let mut groups = HashMap::default();
        for (g, gv) in groups_t {
            if g != "*" {
                groups.insert(g.clone(), parse_group(gv, &path("groups", g), Some(&default_group))?);
            }
        }
        let total: usize = std::iter::once(&default_group).chain(groups.values()).map(GroupParams::scenarios).sum();
        if total > MAX_TOTAL_SCENARIOS {
            return Err(P.err(
                "groups",
                format!("{total} scenarios in all (price_points × len(vol_shocks) summed), more than the limit of {MAX_TOTAL_SCENARIOS}"),
            ));
        }

        let mut assets = HashMap::default();
        if let Some(av) = f.get("assets") {
            for (a, v) in table(av, "assets", P)? {
                let at = path("assets", a);
                let mut af = Fields::new(v, &at, P)?;
                let group = af.opt_str("group")?.unwrap_or(a).to_string();
                let collateral = match af.get("collateral") {
                    Some(c) => parse_collateral(c, &af.path("collateral"))?,
                    None => Vec::new(),
                };
                let borrow = af.opt_f64("borrow_mmr")?.map(|x| rate_p(x, &af.path("borrow_mmr"))).transpose()?;
                let loan_leverage = af.opt_f64("loan_leverage")?;
                af.finish()?;
                assets.insert(a.clone(), AssetParams { group, collateral, borrow_mmr: borrow, loan_leverage });
            }
        }

        // A group "exists" when it has a table or an asset maps to it.
        let exists = |g: &str| groups.contains_key(g) || assets.values().any(|a: &AssetParams| a.group == g);

        let mut offsets = Vec::new();
        if let Some(ov) = f.get("offsets") {
            for (i, o) in array(ov, "offsets", P)?.iter().enumerate() {
                let at = format!("offsets[{i}]");
                let mut of = Fields::new(o, &at, P)?;
                let a = of.str("a")?.to_string();
                let b = of.str("b")?.to_string();
                let rate = of.f64("rate")?;
                of.finish()?;
                for (k, g) in [("a", &a), ("b", &b)] {
                    if !exists(g) {
                        return Err(P.err(&format!("{at}.{k}"), format!("names no group of the profile, got {g:?}")));
                    }
                }
                if a == b {
                    return Err(P.err(&format!("{at}.b"), format!("must differ from a, got {b:?}")));
                }
                if !(rate.is_finite() && (0.0..=1.0).contains(&rate)) {
                    return Err(P
                        .err(&format!("{at}.rate"), format!("must be in [0, 1], got {}", fmt_num(rate)))
                        .with_code(Code::OutOfRange));
                }
                offsets.push(Offset { a, b, rate });
            }
        }
        // Descending rate, ties in file order (sort_by is stable).
        offsets.sort_by(|x, y| y.rate.total_cmp(&x.rate));

        let mut systemic = Vec::new();
        if let Some(sv) = f.get("systemic") {
            for (i, s) in array(sv, "systemic", P)?.iter().enumerate() {
                let at = format!("systemic[{i}]");
                let mut sf = Fields::new(s, &at, P)?;
                let name = sf.opt_str("name")?.map(str::to_string).unwrap_or_else(|| format!("systemic{i}"));
                let multiple = factor_p(sf.f64("multiple")?, &sf.path("multiple"))?;
                let vol_shock = factor_p(sf.f64_or("vol_shock", 0.0)?, &sf.path("vol_shock"))?;
                if 1.0 + vol_shock <= 0.0 {
                    return Err(P
                        .err(&sf.path("vol_shock"), format!("must be > -1, got {}", fmt_num(vol_shock)))
                        .with_code(Code::OutOfRange));
                }
                let mut overrides = Vec::new();
                if let Some(ov) = sf.get("overrides") {
                    let oat = sf.path("overrides");
                    for (g, r) in table(ov, &oat, P)? {
                        let rat = path(&oat, g);
                        let r = factor_p(number(r, &rat, P)?, &rat)?;
                        if !exists(g) {
                            return Err(P.err(&rat, format!("names no group of the profile, got {g:?}")));
                        }
                        if r <= -1.0 {
                            return Err(
                                P.err(&rat, format!("a move of -100 % or worse is impossible, got {}", fmt_num(r)))
                            );
                        }
                        overrides.push((g.clone(), r));
                    }
                }
                sf.finish()?;
                // The moved price of every group must stay positive.
                for (g, gp) in std::iter::once(("*", &default_group)).chain(groups.iter().map(|(k, v)| (k.as_str(), v)))
                {
                    if multiple * gp.price_range <= -1.0 && !overrides.iter().any(|(o, _)| o == g) {
                        return Err(P.err(
                            &sf_path(&at, "multiple"),
                            format!("moves group {g} by {} (-100 % or worse)", fmt_num(multiple * gp.price_range)),
                        ));
                    }
                }
                systemic.push(SystemicScenario { name, multiple, vol_shock, overrides });
            }
        }

        let status = parse_status(f.req("status")?)?;
        let classic = f.get("classic").map(parse_classic).transpose()?.unwrap_or_default();
        let brackets = BracketTables::parse(f.get("brackets"))?;
        let binance = f.get("binance").map(|b| parse_binance(b, &assets)).transpose()?;
        if model == Model::BinancePm && binance.is_none() {
            return Err(P
                .err("binance", "required under model = \"binance_pm\" (loan leverage and MM rates)".into())
                .with_code(Code::Missing));
        }
        let eligibility = parse_eligibility(f.get("eligibility"))?;
        let switching = parse_switching(f.get("switching"), &status)?;
        f.finish()?;

        Ok(RiskParams {
            name,
            version,
            im_factor,
            vol_floor,
            borrow_mmr,
            default_group,
            groups,
            assets,
            offsets,
            systemic,
            status,
            classic,
            brackets,
            binance,
            eligibility,
            switching,
            model,
        })
    }

    /// The risk group an asset belongs to (its own symbol unless the profile says).
    pub fn group_of<'a>(&'a self, asset: &'a str) -> &'a str {
        self.assets.get(asset).map_or(asset, |a| a.group.as_str())
    }

    /// A group's parameters: its own table, else `"*"`.
    pub fn group_params(&self, group: &str) -> &GroupParams {
        self.groups.get(group).unwrap_or(&self.default_group)
    }

    /// Collateral tiers of an asset (empty: not collateral).
    pub fn collateral(&self, asset: &str) -> &[CollateralTier] {
        self.assets.get(asset).map_or(&[], |a| a.collateral.as_slice())
    }

    pub fn is_collateral(&self, asset: &str) -> bool {
        self.collateral(asset).first().is_some_and(|t| t.rate > 0.0)
    }

    pub fn borrow_mmr(&self, asset: &str) -> f64 {
        self.assets.get(asset).and_then(|a| a.borrow_mmr).unwrap_or(self.borrow_mmr)
    }

    /// The ladder's status for a uniMMR: the first level it is strictly above, else
    /// the last (`BANKRUPT` is decided by equity, not here).
    pub fn status_for(&self, uni_mmr: f64) -> Status {
        let last = self.status.len() - 1;
        Status::level(self.status[..last].iter().position(|s| uni_mmr > s.above).unwrap_or(last))
    }

    /// Every status name indexed by its code ([`Status::code`]): the ladder,
    /// healthiest first, then [`BANKRUPT`].
    pub fn status_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.status.iter().map(|l| l.name.clone()).collect();
        names.push(BANKRUPT.into());
        names
    }

    /// The name of a status: its ladder level's, or [`BANKRUPT`].
    pub fn status_name(&self, s: Status) -> &str {
        s.index().map_or(BANKRUPT, |i| &self.status[i].name)
    }

    /// The status named `name` (a ladder level or `BANKRUPT`), if any.
    pub fn status_named(&self, name: &str) -> Option<Status> {
        if name == BANKRUPT {
            return Some(Status::BANKRUPT);
        }
        self.status.iter().position(|s| s.name == name).map(Status::level)
    }

    /// The uniMMR threshold of a named status (the margin-call threshold, say).
    pub fn status_threshold(&self, name: &str) -> Option<f64> {
        self.status.iter().find(|s| s.name == name).map(|s| s.above)
    }
}

fn sf_path(at: &str, key: &str) -> String {
    format!("{at}.{key}")
}

fn finite_p(x: f64, at: &str) -> Result<f64> {
    crate::input::finite(x, at, P)
}

/// The largest rate or factor a profile may give (a cover, an add-on rate, an MM
/// rate, `im_factor`, a systemic multiple or vol shock). Real ones are fractions
/// or single digits; with the input bounds (`input::MAX_MAGNITUDE`) this keeps
/// every product of the model finite: an `im_factor` of 1e308 passed every check
/// and made IM infinite.
pub const MAX_FACTOR: f64 = 1000.0;

fn rate_p(x: f64, at: &str) -> Result<f64> {
    if x.is_finite() && (0.0..=MAX_FACTOR).contains(&x) {
        Ok(x)
    } else {
        Err(P.err(at, format!("must be a rate >= 0 and <= {}, got {}", fmt_num(MAX_FACTOR), fmt_num(x))))
    }
}

/// A finite number of magnitude at most [`MAX_FACTOR`].
fn factor_p(x: f64, at: &str) -> Result<f64> {
    if x.is_finite() && x.abs() <= MAX_FACTOR {
        Ok(x)
    } else {
        Err(P.err(at, format!("must be within ±{}, got {}", fmt_num(MAX_FACTOR), fmt_num(x))))
    }
}

fn parse_group(v: &Value, at: &str, base: Option<&GroupParams>) -> Result<GroupParams> {
    let mut f = Fields::new(v, at, P)?;
    // Without a base ("*" itself) every key is required.
    macro_rules! num {
        ($key:literal, $field:ident) => {
            match (f.opt_f64($key)?, base) {
                (Some(x), _) => x,
                (None, Some(b)) => b.$field as f64,
                (None, None) => return Err(P.err(&path(at, $key), "required".into()).with_code(Code::Missing)),
            }
        };
    }
    let price_range = num!("price_range", price_range);
    let points = num!("price_points", price_points);
    let extreme_multiple = num!("extreme_multiple", extreme_multiple);
    let extreme_cover = num!("extreme_cover", extreme_cover);
    let basis_rate = num!("basis_rate", basis_rate);
    let som_rate = num!("som_rate", som_rate);
    let vol_shocks = match (f.get("vol_shocks"), base) {
        (Some(v), _) => {
            let vat = path(at, "vol_shocks");
            let arr = array(v, &vat, P)?;
            if arr.is_empty() {
                return Err(P.err(&vat, "must list at least one shock".into()).with_code(Code::OutOfRange));
            }
            let mut out = Vec::with_capacity(arr.len());
            for (i, x) in arr.iter().enumerate() {
                let xat = format!("{vat}[{i}]");
                let x = factor_p(number(x, &xat, P)?, &xat)?;
                if x <= -1.0 {
                    return Err(P.err(&xat, format!("must be > -1, got {}", fmt_num(x))).with_code(Code::OutOfRange));
                }
                out.push(x);
            }
            out
        }
        (None, Some(b)) => b.vol_shocks.clone(),
        (None, None) => return Err(P.err(&path(at, "vol_shocks"), "required".into()).with_code(Code::Missing)),
    };
    let concentration = match (f.get("concentration"), base) {
        (Some(v), _) => parse_concentration(v, &path(at, "concentration"))?,
        (None, Some(b)) => b.concentration.clone(),
        (None, None) => Vec::new(),
    };
    f.finish()?;

    if !(price_range.is_finite() && (0.0..1.0).contains(&price_range)) {
        return Err(P
            .err(&path(at, "price_range"), format!("must be in [0, 1), got {}", fmt_num(price_range)))
            .with_code(Code::OutOfRange));
    }
    if !(points.is_finite() && points >= 3.0 && points.fract() == 0.0 && (points as i64) % 2 == 1) {
        return Err(P
            .err(&path(at, "price_points"), format!("must be odd and >= 3, got {}", fmt_num(points)))
            .with_code(Code::OutOfRange));
    }
    if points > 100_001.0 {
        return Err(P
            .err(&path(at, "price_points"), format!("must be <= 100001, got {}", fmt_num(points)))
            .with_code(Code::OutOfRange));
    }
    if !(extreme_multiple.is_finite() && extreme_multiple >= 1.0) {
        return Err(P
            .err(&path(at, "extreme_multiple"), format!("must be >= 1, got {}", fmt_num(extreme_multiple)))
            .with_code(Code::OutOfRange));
    }
    if extreme_multiple * price_range >= 1.0 {
        return Err(P.err(
            &path(at, "extreme_multiple"),
            format!(
                "extreme_multiple·price_range must be < 1, got {}·{} = {}",
                fmt_num(extreme_multiple),
                fmt_num(price_range),
                fmt_num(extreme_multiple * price_range)
            ),
        ));
    }
    let scenarios = points as usize * vol_shocks.len();
    if scenarios > MAX_GROUP_SCENARIOS {
        return Err(P.err(
            at,
            format!(
                "price_points × len(vol_shocks) = {} × {} = {scenarios} scenarios, more than the limit of {MAX_GROUP_SCENARIOS} per group",
                fmt_num(points),
                vol_shocks.len()
            ),
        ));
    }
    let extreme_cover = rate_p(extreme_cover, &path(at, "extreme_cover"))?;
    let basis_rate = rate_p(basis_rate, &path(at, "basis_rate"))?;
    let som_rate = rate_p(som_rate, &path(at, "som_rate"))?;
    Ok(GroupParams {
        price_range,
        price_points: points as usize,
        vol_shocks,
        extreme_multiple,
        extreme_cover,
        basis_rate,
        som_rate,
        concentration,
    })
}

fn parse_collateral(v: &Value, at: &str) -> Result<Vec<CollateralTier>> {
    tier_table(v, at, P, ("tiers", "up_to"), |f, tat, last| {
        let rate = f.f64("rate")?;
        if !(rate.is_finite() && (0.0..=1.0).contains(&rate)) {
            return Err(P
                .err(&format!("{tat}.rate"), format!("must be in [0, 1], got {}", fmt_num(rate)))
                .with_code(Code::OutOfRange));
        }
        let up_to = up_to(f, tat, last, "tier", P)?;
        Ok((up_to, CollateralTier { rate, up_to }))
    })
}

fn parse_concentration(v: &Value, at: &str) -> Result<Vec<ConcentrationTier>> {
    tier_table(v, at, P, ("tiers", "above"), |f, tat, _| {
        let above = non_negative(f.f64("above")?, &format!("{tat}.above"), P)?;
        let rate = rate_p(f.f64("rate")?, &format!("{tat}.rate"))?;
        Ok((above, ConcentrationTier { above, rate }))
    })
}

fn parse_status(v: &Value) -> Result<Vec<StatusLevel>> {
    let arr = array(v, "status", P)?;
    if arr.len() < 2 {
        return Err(P
            .err("status", format!("must list at least two levels, got {}", arr.len()))
            .with_code(Code::OutOfRange));
    }
    if arr.len() > MAX_STATUS_LEVELS {
        return Err(P
            .err("status", format!("must list at most {MAX_STATUS_LEVELS} levels, got {}", arr.len()))
            .with_code(Code::OutOfRange));
    }
    let mut out: Vec<StatusLevel> = Vec::with_capacity(arr.len());
    for (i, s) in arr.iter().enumerate() {
        let at = format!("status[{i}]");
        let mut f = Fields::new(s, &at, P)?;
        let name = f.str("name")?.to_string();
        let last = i + 1 == arr.len();
        let above = match f.opt_f64("above")? {
            Some(x) if !last => finite_p(x, &format!("{at}.above"))?,
            Some(_) => {
                return Err(P.err(&format!("{at}.above"), "the last level catches everything: no threshold".into()))
            }
            None if last => f64::NEG_INFINITY,
            None => {
                return Err(P
                    .err(&format!("{at}.above"), "required on every level but the last".into())
                    .with_code(Code::Missing))
            }
        };
        f.finish()?;
        if name == BANKRUPT {
            return Err(P.err(&format!("{at}.name"), format!("{BANKRUPT} is reserved (E < 0)")));
        }
        if let Some(prev) = out.last() {
            if above >= prev.above {
                return Err(P.err(
                    &format!("{at}.above"),
                    format!(
                        "levels go from healthiest down: must be < {}, got {}",
                        fmt_num(prev.above),
                        fmt_num(above)
                    ),
                ));
            }
        }
        out.push(StatusLevel { name, above });
    }
    Ok(out)
}

fn parse_classic(v: &Value) -> Result<ClassicParams> {
    let d = ClassicParams::default();
    let mut f = Fields::new(v, "classic", P)?;
    let call = positive(f.f64_or("cross_margin_call", d.cross_margin_call)?, "classic.cross_margin_call", P)?;
    let liq = positive(
        f.f64_or("cross_margin_liquidation", d.cross_margin_liquidation)?,
        "classic.cross_margin_liquidation",
        P,
    )?;
    if liq >= call {
        return Err(P
            .err("classic.cross_margin_liquidation", format!("must be < cross_margin_call, got {}", fmt_num(liq)))
            .with_code(Code::OutOfRange));
    }
    let futures_call =
        positive(f.f64_or("futures_margin_call", d.futures_margin_call)?, "classic.futures_margin_call", P)?;
    if futures_call >= 1.0 {
        return Err(P
            .err("classic.futures_margin_call", format!("must be < 1, got {}", fmt_num(futures_call)))
            .with_code(Code::OutOfRange));
    }
    let default_leverage = positive(f.f64_or("default_leverage", d.default_leverage)?, "classic.default_leverage", P)?;
    if f.get("brackets").is_some() {
        return Err(P.err("classic.brackets", "moved to [brackets.usdm] and [brackets.coinm]".into()));
    }
    f.finish()?;
    Ok(ClassicParams {
        cross_margin_call: call,
        cross_margin_liquidation: liq,
        futures_margin_call: futures_call,
        default_leverage,
    })
}

/// `[binance]`, checked against the assets' `loan_leverage`: every leverage in
/// use has an MM rate.
fn parse_binance(v: &Value, assets: &HashMap<String, AssetParams>) -> Result<BinanceParams> {
    let mut f = Fields::new(v, "binance", P)?;
    let loan_leverage = f.f64("loan_leverage")?;
    let mut loan_mmr = Vec::new();
    for (k, r) in table(f.req("loan_mmr")?, "binance.loan_mmr", P)? {
        let at = path("binance.loan_mmr", k);
        let lev: f64 = k.trim().parse().map_err(|_| P.err(&at, format!("the key must be a leverage, got {k:?}")))?;
        if !(lev.is_finite() && lev > 1.0) {
            return Err(P.err(&at, format!("a loan's leverage must be > 1, got {}", fmt_num(lev))));
        }
        let r = number(r, &at, P)?;
        if !(r.is_finite() && (0.0..=1.0).contains(&r)) {
            return Err(P
                .err(&at, format!("must be a rate in [0, 1], got {}", fmt_num(r)))
                .with_code(Code::OutOfRange));
        }
        loan_mmr.push((lev, r));
    }
    loan_mmr.sort_by(|a, b| a.0.total_cmp(&b.0));
    let default_collateral_rate = f.opt_f64("default_collateral_rate")?;
    if let Some(r) = default_collateral_rate {
        if !(r.is_finite() && (0.0..=1.0).contains(&r)) {
            return Err(P
                .err("binance.default_collateral_rate", format!("must be in [0, 1], got {}", fmt_num(r)))
                .with_code(Code::OutOfRange));
        }
    }
    f.finish()?;
    let has_rate = |lev: f64| loan_mmr.iter().any(|(l, _)| *l == lev);
    if !has_rate(loan_leverage) {
        return Err(
            P.err("binance.loan_leverage", format!("has no rate in binance.loan_mmr, got {}", fmt_num(loan_leverage)))
        );
    }
    let mut names: Vec<&String> = assets.keys().collect();
    names.sort();
    for a in names {
        if let Some(lev) = assets[a].loan_leverage {
            if !has_rate(lev) {
                return Err(P.err(
                    &path(&path("assets", a), "loan_leverage"),
                    format!("has no rate in binance.loan_mmr, got {}", fmt_num(lev)),
                ));
            }
        }
    }
    Ok(BinanceParams { loan_leverage, loan_mmr, default_collateral_rate })
}

fn int_p(x: f64, at: &str) -> Result<i64> {
    if x.is_finite() && x.fract() == 0.0 && x >= 0.0 {
        Ok(x as i64)
    } else {
        Err(P.err(at, format!("must be a whole number >= 0, got {}", fmt_num(x))).with_code(Code::WrongType))
    }
}

fn parse_eligibility(v: Option<&Value>) -> Result<EligibilityParams> {
    let mut e = EligibilityParams {
        min_equity: 0.0,
        min_kyc_level: 0,
        require_futures_enabled: false,
        require_quiz: false,
        min_trading_days: 0,
        restricted_jurisdictions: Vec::new(),
    };
    let Some(v) = v else { return Ok(e) };
    let mut f = Fields::new(v, "eligibility", P)?;
    e.min_equity = non_negative(f.f64_or("min_equity", e.min_equity)?, "eligibility.min_equity", P)?;
    e.min_kyc_level = int_p(f.f64_or("min_kyc_level", e.min_kyc_level as f64)?, "eligibility.min_kyc_level")?;
    e.require_futures_enabled = f.opt_bool("require_futures_enabled")?.unwrap_or(e.require_futures_enabled);
    e.require_quiz = f.opt_bool("require_quiz")?.unwrap_or(e.require_quiz);
    e.min_trading_days =
        int_p(f.f64_or("min_trading_days", e.min_trading_days as f64)?, "eligibility.min_trading_days")?;
    if let Some(j) = f.get("restricted_jurisdictions") {
        for (i, x) in array(j, "eligibility.restricted_jurisdictions", P)?.iter().enumerate() {
            e.restricted_jurisdictions
                .push(string(x, &format!("eligibility.restricted_jurisdictions[{i}]"), P)?.to_string());
        }
    }
    f.finish()?;
    Ok(e)
}

fn parse_switching(v: Option<&Value>, status: &[StatusLevel]) -> Result<SwitchingParams> {
    // Default: the margin-call threshold, i.e. the first level's.
    let mut s = SwitchingParams {
        switch_min_ratio: status[0].above,
        switch_max_margin_ratio: 0.8,
        min_switch_interval: 0.0,
        allow_options_in_classic: true,
    };
    let Some(v) = v else { return Ok(s) };
    let mut f = Fields::new(v, "switching", P)?;
    s.switch_min_ratio = positive(f.f64_or("switch_min_ratio", s.switch_min_ratio)?, "switching.switch_min_ratio", P)?;
    s.switch_max_margin_ratio = positive(
        f.f64_or("switch_max_margin_ratio", s.switch_max_margin_ratio)?,
        "switching.switch_max_margin_ratio",
        P,
    )?;
    s.min_switch_interval =
        non_negative(f.f64_or("min_switch_interval", s.min_switch_interval)?, "switching.min_switch_interval", P)?;
    s.allow_options_in_classic = f.opt_bool("allow_options_in_classic")?.unwrap_or(s.allow_options_in_classic);
    f.finish()?;
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(edit: impl FnOnce(&mut toml::Table)) -> Result<RiskParams> {
        let mut t: toml::Table = toml::from_str(DEFAULT_PROFILE_TOML).unwrap();
        edit(&mut t);
        RiskParams::from_toml_str(&toml::to_string(&t).unwrap())
    }

    fn group<'a>(t: &'a mut toml::Table, g: &str) -> &'a mut toml::Table {
        t["groups"].as_table_mut().unwrap()[g].as_table_mut().unwrap()
    }

    #[test]
    fn default_profile_has_the_methodology_numbers() {
        let p = RiskParams::default_profile();
        assert_eq!(p.im_factor, 1.5);
        assert_eq!(p.vol_floor, 0.05);
        assert_eq!(p.group_params("BTC").price_range, 0.10);
        assert_eq!(p.group_params("DOGE").price_range, 0.20);
        assert_eq!(p.group_of("WBTC"), "BTC");
        assert_eq!(p.group_of("XRP"), "XRP");
        assert!(p.is_collateral("USDC") && !p.is_collateral("DOGE"));
        assert_eq!(p.offsets[0].rate, 0.5);
        assert_eq!(p.offsets.iter().map(|o| o.rate).collect::<Vec<_>>(), [0.5, 0.3, 0.3, 0.3, 0.3]);
        assert_eq!(p.status_name(p.status_for(1.5)), "MARGIN_CALL");
        assert_eq!(p.status_name(p.status_for(1.5000001)), "NORMAL");
        assert_eq!(p.status_name(p.status_for(1.05)), "LIQUIDATION");
        assert_eq!(p.status_name(p.status_for(f64::NEG_INFINITY)), "LIQUIDATION");
        assert_eq!(p.status_name(Status::BANKRUPT), BANKRUPT);
        for name in ["NORMAL", "LIQUIDATION", BANKRUPT] {
            assert_eq!(p.status_named(name).map(|s| p.status_name(s)), Some(name));
        }
        assert_eq!(p.status_named("ERROR"), None);
        assert_eq!(p.switching.switch_min_ratio, 1.5);
    }

    #[test]
    fn bad_profiles_name_the_key() {
        let e = with(|t| {
            group(t, "BTC").insert("price_points".into(), 20.into());
        })
        .unwrap_err();
        assert_eq!(e.to_string(), "groups.BTC.price_points: must be odd and >= 3, got 20");
        let e = with(|t| {
            group(t, "ETH").insert("extreme_multiple".into(), 9.0.into());
        })
        .unwrap_err();
        assert!(e.to_string().starts_with("groups.ETH.extreme_multiple: extreme_multiple·price_range must be < 1"));
        let e = with(|t| {
            group(t, "BTC").insert("price_rnage".into(), 0.1.into());
        })
        .unwrap_err();
        assert_eq!(e.to_string(), "groups.BTC.price_rnage: unknown key");
        let e = with(|t| {
            group(t, "BTC").insert("price_range".into(), "wide".into());
        })
        .unwrap_err();
        assert_eq!(e.to_string(), "groups.BTC.price_range: must be a number, got \"wide\"");
        let e = with(|t| {
            let c = t["assets"]["BTC"]["collateral"].as_array_mut().unwrap();
            c[1].as_table_mut().unwrap().insert("up_to".into(), 1000.into());
        })
        .unwrap_err();
        assert!(e.to_string().starts_with("assets.BTC.collateral[1].up_to: tiers must be sorted"), "{e}");
        let e = with(|t| {
            t["offsets"].as_array_mut().unwrap()[0].as_table_mut().unwrap().insert("a".into(), "NOPE".into());
        })
        .unwrap_err();
        assert_eq!(e.to_string(), "offsets[0].a: names no group of the profile, got \"NOPE\"");
        let e = with(|t| {
            t["assets"]["USDT"]["collateral"][0].as_table_mut().unwrap().insert("rate".into(), 1.2.into());
        })
        .unwrap_err();
        assert_eq!(e.to_string(), "assets.USDT.collateral[0].rate: must be in [0, 1], got 1.2");
    }
}
