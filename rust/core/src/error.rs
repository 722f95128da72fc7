//! The one error type of the core. Every message names the field path, the
//! value and what was expected: `positions[3].entry_price: must be > 0, got 0`.

use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Error)]
pub enum CoreError {
    /// Malformed or out-of-range input: a portfolio, a market or an order.
    #[error("{field}: {message}")]
    InvalidInput { field: String, message: String },
    /// A price or a vol the account needs is not in the market snapshot.
    #[error("{field}: {message}")]
    MissingMarketData { field: String, message: String },
    /// A risk profile that cannot be compiled (bad key, type or value).
    #[error("{field}: {message}")]
    Profile { field: String, message: String },
}

impl CoreError {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        CoreError::InvalidInput { field: field.into(), message: message.into() }
    }
    pub fn missing(field: impl Into<String>, message: impl Into<String>) -> Self {
        CoreError::MissingMarketData { field: field.into(), message: message.into() }
    }
    pub fn profile(field: impl Into<String>, message: impl Into<String>) -> Self {
        CoreError::Profile { field: field.into(), message: message.into() }
    }
    /// The field path the error names.
    pub fn field(&self) -> &str {
        match self {
            CoreError::InvalidInput { field, .. }
            | CoreError::MissingMarketData { field, .. }
            | CoreError::Profile { field, .. } => field,
        }
    }
}

pub type Result<T> = std::result::Result<T, CoreError>;
