//! The one error type of the core. Every message names the field path, the
//! value and what was expected: `positions[3].entry_price: must be > 0, got 0`.
//! Beside the message an error carries its field path and a short, stable
//! [`Code`], so a program tells errors apart without reading the text
//! (`err.field`, `err.code` in Python).

use thiserror::Error;

/// What kind of mistake an error reports: a short, stable machine code
/// ([`Code::as_str`]), the same from the Rust core and from Python.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Code {
    /// `"missing"`: a required field or argument is absent.
    Missing,
    /// `"unknown_key"`: a key the format does not have (a typo is not a default).
    UnknownKey,
    /// `"wrong_type"`: a number, string, table, array or boolean of the wrong kind.
    WrongType,
    /// `"out_of_range"`: a number outside its bounds (non-finite, ≤ 0, too large,
    /// a time in milliseconds, a vol in percent) or a list, string or nesting too long.
    OutOfRange,
    /// `"invalid_value"`: a value of the right type that is not accepted: an
    /// unknown name or option, a malformed time, an inconsistent combination.
    InvalidValue,
    /// `"syntax"`: text that does not parse (JSON, TOML).
    Syntax,
    /// `"missing_price"`: the market has no index price or mark the account needs.
    MissingPrice,
    /// `"missing_vol"`: the market has no implied vol for an option.
    MissingVol,
}

impl Code {
    pub const ALL: [Code; 8] = [
        Code::Missing,
        Code::UnknownKey,
        Code::WrongType,
        Code::OutOfRange,
        Code::InvalidValue,
        Code::Syntax,
        Code::MissingPrice,
        Code::MissingVol,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Code::Missing => "missing",
            Code::UnknownKey => "unknown_key",
            Code::WrongType => "wrong_type",
            Code::OutOfRange => "out_of_range",
            Code::InvalidValue => "invalid_value",
            Code::Syntax => "syntax",
            Code::MissingPrice => "missing_price",
            Code::MissingVol => "missing_vol",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Error)]
pub enum CoreError {
    /// Malformed or out-of-range input: a portfolio, a market or an order.
    #[error("{}", with_field(field, message))]
    InvalidInput { field: String, message: String, code: Code },
    /// A price or a vol the account needs is not in the market snapshot.
    #[error("{}", with_field(field, message))]
    MissingMarketData { field: String, message: String, code: Code },
    /// A risk profile that cannot be compiled (bad key, type or value).
    #[error("{}", with_field(field, message))]
    Profile { field: String, message: String, code: Code },
}

impl CoreError {
    /// Bad input; code `invalid_value` unless [`with_code`](Self::with_code) says otherwise.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        CoreError::InvalidInput { field: field.into(), message: message.into(), code: Code::InvalidValue }
    }
    /// A bad profile; code `invalid_value` unless [`with_code`](Self::with_code) says otherwise.
    pub fn profile(field: impl Into<String>, message: impl Into<String>) -> Self {
        CoreError::Profile { field: field.into(), message: message.into(), code: Code::InvalidValue }
    }
    /// The one "no price" error: `field: no price for {name} in market.prices`.
    pub fn no_price(field: impl Into<String>, name: &str) -> Self {
        CoreError::MissingMarketData {
            field: field.into(),
            message: format!("no price for {name} in market.prices"),
            code: Code::MissingPrice,
        }
    }
    /// The one "no vol" error: an option's symbol and its underlying both lack a vol.
    pub fn no_vol(field: impl Into<String>, symbol: &str, underlying: &str) -> Self {
        CoreError::MissingMarketData {
            field: field.into(),
            message: format!("no vol for {symbol} or {underlying} in market.vols"),
            code: Code::MissingVol,
        }
    }
    /// The same error with another code.
    pub fn with_code(mut self, new: Code) -> Self {
        match &mut self {
            CoreError::InvalidInput { code, .. }
            | CoreError::MissingMarketData { code, .. }
            | CoreError::Profile { code, .. } => *code = new,
        }
        self
    }
    /// The field path the error names.
    pub fn field(&self) -> &str {
        match self {
            CoreError::InvalidInput { field, .. }
            | CoreError::MissingMarketData { field, .. }
            | CoreError::Profile { field, .. } => field,
        }
    }
    /// What went wrong, without the field.
    pub fn message(&self) -> &str {
        match self {
            CoreError::InvalidInput { message, .. }
            | CoreError::MissingMarketData { message, .. }
            | CoreError::Profile { message, .. } => message,
        }
    }
    pub fn code(&self) -> Code {
        match self {
            CoreError::InvalidInput { code, .. }
            | CoreError::MissingMarketData { code, .. }
            | CoreError::Profile { code, .. } => *code,
        }
    }
}

/// `field: message`, or the message alone when no field applies (a whole document).
fn with_field(field: &str, message: &str) -> String {
    if field.is_empty() {
        message.to_string()
    } else {
        format!("{field}: {message}")
    }
}

pub type Result<T> = std::result::Result<T, CoreError>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Market, Portfolio, RiskParams};

    #[test]
    fn codes_are_distinct_and_set_where_the_error_is_made() {
        let names: std::collections::HashSet<&str> = Code::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(names.len(), Code::ALL.len());
        let e = Portfolio::from_json_str(r#"{"balances": {"USDT": "x"}}"#).unwrap_err();
        assert_eq!((e.field(), e.code()), ("balances.USDT", Code::WrongType));
        let e = Market::from_json_str("{").unwrap_err();
        assert_eq!((e.field(), e.code()), ("market", Code::Syntax));
        let e = Market::from_json_str(r#"{"time": 1.8e12, "prices": {}}"#).unwrap_err();
        assert_eq!(e.code(), Code::InvalidValue, "a number is not an ISO time: {e}");
        let e = RiskParams::from_value(&serde_json::json!({"version": 1})).unwrap_err();
        assert_eq!(e.code(), Code::Missing);
        let m = Market::from_json_str(r#"{"time": "2026-11-24", "prices": {"BTC": 1}}"#).unwrap();
        let e = m.price("ETH").unwrap_err();
        assert_eq!((e.field(), e.code()), ("market.prices.ETH", Code::MissingPrice));
        assert_eq!(e.to_string(), "market.prices.ETH: no price for ETH in market.prices");
        assert_eq!(m.vol("ETH-C", "ETH").unwrap_err().code(), Code::MissingVol);
        assert_eq!(CoreError::invalid("", "a whole document").to_string(), "a whole document");
    }
}
