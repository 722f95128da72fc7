//! pmengine-core: a portfolio-margin engine for crypto accounts, in pure Rust.
//!
//! The model is METHODOLOGY.md: scenario grids per risk group netted across
//! spot, loans, linear and inverse futures and options; cross-group offsets;
//! systemic scenarios; add-ons; tiered collateral; uniMMR and status.
//!
//! ```
//! use pmengine_core::{Engine, Market, Portfolio, RiskParams};
//! let engine = Engine::new(RiskParams::default_profile());
//! let portfolio = Portfolio::from_json_str(r#"{"balances": {"BTC": 1, "USDT": 1000},
//!   "positions": [{"type": "linear", "symbol": "BTCUSDT", "underlying": "BTC", "qty": -1, "entry_price": 60000}]}"#).unwrap();
//! let market = Market::from_json_str(r#"{"time": "2026-11-24T00:00:00Z", "prices": {"BTC": 60000, "USDT": 1}}"#).unwrap();
//! let r = engine.margin(&portfolio, &market).unwrap();
//! assert_eq!(r.maintenance_margin, 300.0); // the basis add-on: 0.5 % of 60,000
//! ```

pub mod addons;
pub mod batch;
pub mod binance;
pub mod brackets;
pub mod classic;
pub mod collateral;
pub mod engine;
pub mod error;
pub mod greeks;
pub mod grid;
pub mod input;
pub mod instrument;
pub mod lanes;
pub mod live;
pub mod market;
pub mod offsets;
pub mod params;
pub mod plan;
pub mod portfolio;
pub mod pricing;
pub mod resolved;
pub mod result;
pub mod roots;
pub mod series;
pub mod status;
pub mod sweep;

pub use batch::{BalanceColumns, BatchOptions, BatchResult, OnError, PositionColumns, Strings};
pub use classic::{ClassicMode, ClassicResult};
pub use engine::{Book, Engine};
pub use error::{CoreError, Result};
pub use greeks::{Greeks, GreeksResult};
pub use live::{LiveAccount, Order, OrderRef, Refusal, SymbolKey};
pub use market::Market;
pub use params::{Model, RiskParams};
pub use portfolio::{AssetMap, ClassicTerms, Loan, OptionKind, Portfolio, Position};
pub use result::{AssetMargin, GroupResult, MarginResult, PositionMargin};
pub use status::{Status, BANKRUPT};
pub use sweep::{Moves, SweepResult};
