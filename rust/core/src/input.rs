//! Reading untyped JSON/TOML values into typed fields, with the field path in
//! every error. Shared by the portfolio, market and profile parsers so each
//! rule ("finite and > 0", "a string", "no unknown keys") is written once.

use crate::error::{Code, CoreError, Result};
use chrono::{DateTime, NaiveDate, NaiveDateTime};
use serde_json::{Map, Value};

/// How deep a JSON document or a Python structure may nest: serde_json's parser
/// refuses a document whose arrays and tables nest 128 deep, and every other way
/// in (`from_dict`) is held to the same bound rather than recursing until the
/// stack runs out.
pub const MAX_DEPTH: usize = 128;

/// A float as a JSON value. JSON has no inf/nan: they are kept as the strings
/// [`number`] reads back, so the finiteness check, not a type error (or a null
/// read as "absent"), reports them and names the field.
pub fn float_value(x: f64) -> Value {
    match serde_json::Number::from_f64(x) {
        Some(n) => Value::Number(n),
        None if x.is_nan() => Value::String("NaN".into()),
        None if x > 0.0 => Value::String("Infinity".into()),
        None => Value::String("-Infinity".into()),
    }
}

/// Which error a failed check raises: input data or a risk profile.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Source {
    Input,
    Profile,
}

impl Source {
    pub fn err(self, field: &str, message: String) -> CoreError {
        match self {
            Source::Input => CoreError::invalid(field, message),
            Source::Profile => CoreError::profile(field, message),
        }
    }
}

/// A short rendering of a value for messages (`got "abc"`, `got 0`).
pub fn show(v: &Value) -> String {
    match v {
        Value::Number(n) => fmt_num(n.as_f64().unwrap_or(f64::NAN)),
        Value::String(s) => format!("{s:?}"),
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Array(_) => "an array".into(),
        Value::Object(_) => "a table".into(),
    }
}

/// `0`, `1.5`, `-inf`, `nan`: what a person typed, not `0.0`.
pub fn fmt_num(x: f64) -> String {
    if x.is_nan() {
        "nan".into()
    } else if x.is_infinite() {
        if x > 0.0 {
            "inf".into()
        } else {
            "-inf".into()
        }
    } else if x == x.trunc() && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        format!("{x}")
    }
}

pub fn path(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else if !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
        format!("{parent}.{key}")
    } else {
        format!("{parent}.{key:?}")
    }
}

/// A table's fields, read by name; `finish` rejects the keys nobody asked for.
pub struct Fields<'a> {
    pub at: String,
    pub src: Source,
    map: &'a Map<String, Value>,
    seen: Vec<&'static str>,
}

impl<'a> Fields<'a> {
    pub fn new(v: &'a Value, at: &str, src: Source) -> Result<Self> {
        match v {
            Value::Object(map) => Ok(Fields { at: at.to_string(), src, map, seen: Vec::new() }),
            other => Err(src.err(at, format!("must be a table, got {}", show(other))).with_code(Code::WrongType)),
        }
    }

    pub fn path(&self, key: &str) -> String {
        path(&self.at, key)
    }

    pub fn get(&mut self, key: &'static str) -> Option<&'a Value> {
        self.seen.push(key);
        self.map.get(key).filter(|v| !v.is_null())
    }

    pub fn req(&mut self, key: &'static str) -> Result<&'a Value> {
        let at = self.path(key);
        self.get(key).ok_or_else(|| self.src.err(&at, "required".into()).with_code(Code::Missing))
    }

    pub fn f64(&mut self, key: &'static str) -> Result<f64> {
        let v = self.req(key)?;
        number(v, &self.path(key), self.src)
    }

    pub fn f64_or(&mut self, key: &'static str, default: f64) -> Result<f64> {
        match self.get(key) {
            Some(v) => number(v, &self.path(key), self.src),
            None => Ok(default),
        }
    }

    pub fn opt_f64(&mut self, key: &'static str) -> Result<Option<f64>> {
        match self.get(key) {
            Some(v) => number(v, &self.path(key), self.src).map(Some),
            None => Ok(None),
        }
    }

    pub fn str(&mut self, key: &'static str) -> Result<&'a str> {
        let v = self.req(key)?;
        string(v, &self.path(key), self.src)
    }

    pub fn opt_str(&mut self, key: &'static str) -> Result<Option<&'a str>> {
        match self.get(key) {
            Some(v) => string(v, &self.path(key), self.src).map(Some),
            None => Ok(None),
        }
    }

    pub fn opt_bool(&mut self, key: &'static str) -> Result<Option<bool>> {
        match self.get(key) {
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(v) => Err(self
                .src
                .err(&self.path(key), format!("must be true or false, got {}", show(v)))
                .with_code(Code::WrongType)),
            None => Ok(None),
        }
    }

    /// Every key must have been read: a typo is an error, not a silent default.
    pub fn finish(self) -> Result<()> {
        for k in self.map.keys() {
            if !self.seen.iter().any(|s| s == k) {
                return Err(self.src.err(&path(&self.at, k), "unknown key".into()).with_code(Code::UnknownKey));
            }
        }
        Ok(())
    }
}

pub fn number(v: &Value, at: &str, src: Source) -> Result<f64> {
    match v {
        Value::Number(n) => {
            n.as_f64().ok_or_else(|| src.err(at, format!("must be a number, got {n}")).with_code(Code::WrongType))
        }
        // JSON has no inf/nan; accept the strings Python's json module writes for them so the
        // finiteness check below, not a type error, reports them.
        Value::String(s) if matches!(s.as_str(), "NaN" | "Infinity" | "-Infinity" | "nan" | "inf" | "-inf") => Ok(s
            .trim_start_matches('-')
            .parse::<f64>()
            .map(|x| if s.starts_with('-') { -x } else { x })
            .unwrap_or(f64::NAN)),
        other => Err(src.err(at, format!("must be a number, got {}", show(other))).with_code(Code::WrongType)),
    }
}

pub fn string<'a>(v: &'a Value, at: &str, src: Source) -> Result<&'a str> {
    match v {
        Value::String(s) => Ok(s),
        other => Err(src.err(at, format!("must be a string, got {}", show(other))).with_code(Code::WrongType)),
    }
}

pub fn array<'a>(v: &'a Value, at: &str, src: Source) -> Result<&'a Vec<Value>> {
    match v {
        Value::Array(a) => Ok(a),
        other => Err(src.err(at, format!("must be an array, got {}", show(other))).with_code(Code::WrongType)),
    }
}

/// A tier table (collateral tiers, concentration tiers, brackets): an array
/// of tables, each read by `one(fields, path, is_last)` into its bound and its
/// tier; bounds strictly increasing (`bound` names the key in the message,
/// `noun` the rows).
pub fn tier_table<T>(
    v: &Value,
    at: &str,
    src: Source,
    (noun, bound): (&str, &str),
    mut one: impl FnMut(&mut Fields<'_>, &str, bool) -> Result<(f64, T)>,
) -> Result<Vec<T>> {
    let arr = array(v, at, src)?;
    let mut out = Vec::with_capacity(arr.len());
    let mut prev: Option<f64> = None;
    for (i, t) in arr.iter().enumerate() {
        let tat = format!("{at}[{i}]");
        let mut f = Fields::new(t, &tat, src)?;
        let (b, tier) = one(&mut f, &tat, i + 1 == arr.len())?;
        f.finish()?;
        if let Some(p) = prev.filter(|p| b <= *p) {
            return Err(src.err(
                &format!("{tat}.{bound}"),
                format!("{noun} must be sorted by increasing {bound}, got {} after {}", fmt_num(b), fmt_num(p)),
            ));
        }
        prev = Some(b);
        out.push(tier);
    }
    Ok(out)
}

/// A tier's `up_to`: required on every row of `noun` but the last, whose
/// missing `up_to` is no cap (infinity).
pub fn up_to(f: &mut Fields<'_>, tat: &str, last: bool, noun: &str, src: Source) -> Result<f64> {
    match (f.opt_f64("up_to")?, last) {
        (None, true) => Ok(f64::INFINITY),
        (None, false) => Err(src
            .err(&format!("{tat}.up_to"), format!("required on every {noun} but the last"))
            .with_code(Code::Missing)),
        (Some(c), _) => positive(c, &format!("{tat}.up_to"), src),
    }
}

pub fn table<'a>(v: &'a Value, at: &str, src: Source) -> Result<&'a Map<String, Value>> {
    match v {
        Value::Object(m) => Ok(m),
        other => Err(src.err(at, format!("must be a table, got {}", show(other))).with_code(Code::WrongType)),
    }
}

pub fn finite(x: f64, at: &str, src: Source) -> Result<f64> {
    if x.is_finite() {
        Ok(x)
    } else {
        Err(src.err(at, format!("must be finite, got {}", fmt_num(x))).with_code(Code::OutOfRange))
    }
}

pub fn positive(x: f64, at: &str, src: Source) -> Result<f64> {
    if x.is_finite() && x > 0.0 {
        Ok(x)
    } else {
        Err(src.err(at, format!("must be > 0, got {}", fmt_num(x))).with_code(Code::OutOfRange))
    }
}

pub fn non_negative(x: f64, at: &str, src: Source) -> Result<f64> {
    if x.is_finite() && x >= 0.0 {
        Ok(x)
    } else {
        Err(src.err(at, format!("must be >= 0, got {}", fmt_num(x))).with_code(Code::OutOfRange))
    }
}

/// The largest magnitude of a figure of an account or a market: a quantity, a
/// balance, a price, a mark, a strike, a contract size, an entry price. A real
/// account is far inside (1e15 USD is several times the world's money); the
/// bound keeps every product and sum of the model finite.
pub const MAX_MAGNITUDE: f64 = 1e15;
/// The smallest price, mark, strike, contract size or entry price (the model
/// divides by them).
pub const MIN_PRICE: f64 = 1e-15;
/// The largest implied vol (annualised: 0.5 = 50 %); above, it was most likely
/// given in percent.
pub const MAX_VOL: f64 = 10.0;
/// The largest time in epoch seconds (the year 5138); above, it was most likely
/// given in milliseconds (as ccxt gives it).
pub const MAX_EPOCH_SECONDS: f64 = 1e11;

// The rules of a number alone, without a field to name: the checks below and
// the batch's row checks (which name a field only when one fails) both call them.

/// [`amount`]'s rule: finite and within ±[`MAX_MAGNITUDE`].
#[inline(always)]
pub fn is_amount(x: f64) -> bool {
    // One comparison (false for NaN and ±inf too).
    x.abs() <= MAX_MAGNITUDE
}

/// [`loan_amount`]'s rule: an amount ≥ 0.
#[inline(always)]
pub fn is_loan_amount(x: f64) -> bool {
    (0.0..=MAX_MAGNITUDE).contains(&x)
}

/// [`price`]'s rule: from [`MIN_PRICE`] to [`MAX_MAGNITUDE`] (false for NaN).
#[inline(always)]
pub fn is_price(x: f64) -> bool {
    (MIN_PRICE..=MAX_MAGNITUDE).contains(&x)
}

/// [`epoch_seconds`]'s rule: finite and within ±[`MAX_EPOCH_SECONDS`].
#[inline(always)]
pub fn is_epoch_seconds(x: f64) -> bool {
    x.abs() <= MAX_EPOCH_SECONDS
}

/// A quantity or a balance: finite and within ±[`MAX_MAGNITUDE`].
#[inline]
pub fn amount(x: f64, at: &str) -> Result<f64> {
    if is_amount(x) {
        return Ok(x);
    }
    not_an_amount(x, at)
}

#[cold]
fn not_an_amount(x: f64, at: &str) -> Result<f64> {
    finite(x, at, Source::Input)?;
    Err(CoreError::invalid(at, format!("must be within ±1e15 (no real account holds more), got {x:e}"))
        .with_code(Code::OutOfRange))
}

/// A loan's principal or interest: an [`amount`] ≥ 0.
pub fn loan_amount(x: f64, at: &str) -> Result<f64> {
    non_negative(amount(x, at)?, at, Source::Input)
}

/// A price, a mark, a strike, a contract size or an entry price: > 0, from
/// [`MIN_PRICE`] to [`MAX_MAGNITUDE`].
pub fn price(x: f64, at: &str) -> Result<f64> {
    positive(x, at, Source::Input)?;
    if !is_price(x) {
        return Err(
            CoreError::invalid(at, format!("must be from 1e-15 to 1e15, got {x:e}")).with_code(Code::OutOfRange)
        );
    }
    Ok(x)
}

/// An implied vol: > 0 and at most [`MAX_VOL`].
pub fn vol(x: f64, at: &str) -> Result<f64> {
    positive(x, at, Source::Input)?;
    if x > MAX_VOL {
        return Err(CoreError::invalid(
            at,
            format!("must be <= 10 (annualised: 0.5 = 50 %), got {}: is it in percent?", fmt_num(x)),
        )
        .with_code(Code::OutOfRange));
    }
    Ok(x)
}

/// A time in seconds since the epoch: finite and at most [`MAX_EPOCH_SECONDS`] in size.
pub fn epoch_seconds(x: f64, at: &str) -> Result<f64> {
    finite(x, at, Source::Input)?;
    if !is_epoch_seconds(x) {
        return Err(CoreError::invalid(
            at,
            format!("{} looks like milliseconds since the epoch: seconds expected (divide by 1000)", fmt_num(x)),
        )
        .with_code(Code::OutOfRange));
    }
    Ok(x)
}

/// ISO-8601 to seconds since the epoch (UTC). A zone or offset is honoured,
/// none means UTC, a bare date is midnight UTC; sub-second precision is kept.
pub fn parse_time(s: &str, at: &str) -> Result<f64> {
    let t = s.trim();
    let secs = |dt: NaiveDateTime| {
        let u = dt.and_utc();
        u.timestamp() as f64 + f64::from(u.timestamp_subsec_nanos()) * 1e-9
    };
    if let Ok(dt) = DateTime::parse_from_rfc3339(t) {
        return Ok(secs(dt.naive_utc()));
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f%:z", "%Y-%m-%d %H:%M:%S%.f%:z", "%Y-%m-%dT%H:%M%:z"] {
        if let Ok(dt) = DateTime::parse_from_str(t, fmt) {
            return Ok(secs(dt.naive_utc()));
        }
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"] {
        if let Ok(dt) = NaiveDateTime::parse_from_str(t, fmt) {
            return Ok(secs(dt));
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        return Ok(secs(d.and_hms_opt(0, 0, 0).expect("midnight exists")));
    }
    Err(CoreError::invalid(at, format!("must be an ISO-8601 time, got {s:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        let z = parse_time("2026-11-24T00:00:00Z", "t").unwrap();
        assert_eq!(parse_time("2026-11-24T00:00:00", "t").unwrap(), z);
        assert_eq!(parse_time("2026-11-24", "t").unwrap(), z);
        assert_eq!(parse_time("2026-11-24T02:00:00+02:00", "t").unwrap(), z);
        assert_eq!(parse_time("2026-11-24T00:00:00.5Z", "t").unwrap(), z + 0.5);
        assert_eq!(z, 1_795_478_400.0);
        let e = parse_time("24/11/2026", "market.time").unwrap_err();
        assert_eq!(e.to_string(), "market.time: must be an ISO-8601 time, got \"24/11/2026\"");
    }

    #[test]
    fn numbers_print_as_typed() {
        assert_eq!(fmt_num(0.0), "0");
        assert_eq!(fmt_num(-1.5), "-1.5");
        assert_eq!(fmt_num(f64::NAN), "nan");
    }
}
