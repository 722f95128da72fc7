//! The margin result of one account (METHODOLOGY.md §8 "Result JSON").

use crate::params::{Model, RiskParams};
use crate::status::Status;
use serde_json::{json, Map, Value};
use std::sync::Arc;

/// Per risk group figures, USD.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupResult {
    pub name: std::sync::Arc<str>,
    /// `L_g`: the worst weighted scenario loss, 0 when nothing loses.
    pub scan_loss: f64,
    /// `R_g = max(L_g, SOM_g)`, before offsets.
    pub requirement: f64,
    /// `D_g`: dollar delta of the scanned exposure.
    pub delta: f64,
    pub spot_in_use: f64,
    pub financed_spot: f64,
    pub basis: f64,
    pub concentration: f64,
    pub som: f64,
    /// The worst scenario's price return (fraction) and relative vol shock.
    pub worst_price_move: f64,
    pub worst_vol_shock: f64,
}

/// The names of a book's asset slots and positions in one buffer: a
/// `binance_pm` result names its rows through it (one allocation per book,
/// shared by every result evaluated on it, not one per name).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Names {
    text: String,
    assets: Vec<(u32, u32)>,
    symbols: Vec<(u32, u32)>,
}

impl Names {
    fn push(text: &mut String, spans: &mut Vec<(u32, u32)>, name: &str) {
        let start = text.len() as u32;
        text.push_str(name);
        spans.push((start, text.len() as u32));
    }
    pub fn push_asset(&mut self, name: &str) {
        Self::push(&mut self.text, &mut self.assets, name);
    }
    pub fn push_symbol(&mut self, name: &str) {
        Self::push(&mut self.text, &mut self.symbols, name);
    }
    /// The name of asset slot `i`.
    pub fn asset(&self, i: u32) -> &str {
        let (a, b) = self.assets[i as usize];
        &self.text[a as usize..b as usize]
    }
    /// The symbol of position `i`.
    pub fn symbol(&self, i: usize) -> &str {
        let (a, b) = self.symbols[i];
        &self.text[a as usize..b as usize]
    }
    pub fn is_empty(&self) -> bool {
        self.assets.is_empty() && self.symbols.is_empty()
    }
    pub fn clear(&mut self) {
        self.text.clear();
        self.assets.clear();
        self.symbols.clear();
    }
}

/// A contract's margin under `binance_pm`, in its margin asset (settle units;
/// coin for an inverse contract) unless stated.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PositionMargin {
    /// Index of the position in the portfolio.
    pub index: usize,
    /// The margin asset's slot (settle asset, or an inverse contract's coin): see [`Names`].
    pub asset: u32,
    /// What the bracket is chosen on: notional in the margin asset, or coin quantity.
    pub notional: f64,
    /// 1-based, as Binance numbers them.
    pub bracket: usize,
    pub mmr: f64,
    pub cum: f64,
    pub maintenance_margin: f64,
    pub initial_margin: f64,
    pub leverage: f64,
    pub upnl: f64,
}

/// An asset's figures under `binance_pm`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AssetMargin {
    /// The asset's slot: see [`Names`].
    pub asset: u32,
    /// `v_a`: net wallet plus UPnL (asset units).
    pub v: f64,
    /// `v_a · P_a` (USD).
    pub equity: f64,
    /// The equity at the collateral rate (USD; a deficit in full).
    pub collateral_value: f64,
    /// `L_a`: borrowed, interest and any negative balance (asset units).
    pub loan: f64,
    /// The loan's MM (asset units).
    pub loan_margin: f64,
    /// MM of the contracts margined in this asset plus the loan's (asset units).
    pub maintenance_margin: f64,
}

/// Account figures, USD; `uni_mmr` is a ratio (±inf when MM = 0).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MarginResult {
    /// The model that evaluated the book.
    pub model: Model,
    pub equity: f64,
    pub adjusted_equity: f64,
    pub maintenance_margin: f64,
    pub initial_margin: f64,
    pub available: f64,
    pub uni_mmr: f64,
    /// An index into the profile's ladder, or `BANKRUPT`: named by [`RiskParams::status_name`].
    pub status: Status,
    pub scan: f64,
    pub systemic: f64,
    pub offset_credit: f64,
    pub borrow_margin: f64,
    /// Scenario model: per risk group; empty under `binance_pm`.
    pub groups: Vec<GroupResult>,
    /// `binance_pm`: per position and per asset, named by `names`; empty under
    /// the scenario model and in a batch (which returns account figures only).
    pub positions: Rows<PositionMargin>,
    pub assets: Rows<AssetMargin>,
    pub names: Option<Arc<Names>>,
}

/// A result's rows, shared, not copied, when the result is handed on (a live
/// account's what-if buffer is rewritten in place once nobody holds the last
/// result); no rows cost no allocation (the scenario model's results).
#[derive(Debug, Clone, PartialEq)]
pub struct Rows<T>(Option<Arc<Vec<T>>>);

impl<T> Default for Rows<T> {
    fn default() -> Self {
        Rows(None)
    }
}

impl<T> std::ops::Deref for Rows<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        self.0.as_deref().map_or(&[], Vec::as_slice)
    }
}

impl<T> Rows<T> {
    /// The rows emptied for writing: in place when no other result shares them,
    /// else a fresh vector of the same capacity (the holder keeps the old one).
    pub fn reuse(&mut self) -> &mut Vec<T> {
        let shared = match &mut self.0 {
            Some(v) => Arc::get_mut(v).is_none(),
            None => true,
        };
        if shared {
            self.0 = Some(Arc::new(Vec::with_capacity(self.len())));
        }
        let v = Arc::get_mut(self.0.as_mut().expect("set above")).expect("unique after the check above");
        v.clear();
        v
    }

    /// The rows for writing in place, as they are, when no other result shares them.
    pub fn unique_mut(&mut self) -> Option<&mut Vec<T>> {
        self.0.as_mut().and_then(Arc::get_mut)
    }

    /// Where the rows are (0: none): which buffer a result's rows are, compared, never read.
    pub fn address(&self) -> usize {
        self.0.as_ref().map_or(0, |v| Arc::as_ptr(v) as usize)
    }
}

/// JSON has no infinity: a non-finite ratio is written `null`.
pub fn finite_or_null(x: f64) -> Value {
    if x.is_finite() {
        json!(x)
    } else {
        Value::Null
    }
}

impl GroupResult {
    pub fn to_value(&self) -> Value {
        json!({
            "scan_loss": self.scan_loss,
            "requirement": self.requirement,
            "delta": self.delta,
            "spot_in_use": self.spot_in_use,
            "financed_spot": self.financed_spot,
            "basis": self.basis,
            "concentration": self.concentration,
            "som": self.som,
            "worst_scenario": {"price_move": self.worst_price_move, "vol_shock": self.worst_vol_shock},
        })
    }
}

impl MarginResult {
    /// The result JSON, the status named by `params` (the profile that evaluated it).
    pub fn to_value(&self, params: &RiskParams) -> Value {
        let groups: Map<String, Value> = self.groups.iter().map(|g| (g.name.to_string(), g.to_value())).collect();
        let mut out = json!({
            "equity": self.equity,
            "adjusted_equity": self.adjusted_equity,
            "maintenance_margin": self.maintenance_margin,
            "initial_margin": self.initial_margin,
            "available": self.available,
            "uni_mmr": finite_or_null(self.uni_mmr),
            "status": params.status_name(self.status),
            "scan": self.scan,
            "systemic": self.systemic,
            "offset_credit": self.offset_credit,
            "borrow_margin": self.borrow_margin,
            "groups": groups,
        });
        // The scenario model's result keeps METHODOLOGY.md §8's shape.
        if self.model == Model::BinancePm {
            out["model"] = self.model.name().into();
            out["positions"] = self.positions_value();
            out["assets"] = self.assets_value();
        }
        out
    }

    /// `binance_pm`'s per-position figures as JSON, in portfolio order.
    pub fn positions_value(&self) -> Value {
        let Some(names) = self.names.as_deref() else { return Value::Array(Vec::new()) };
        Value::Array(self.positions.iter().map(|p| p.to_value(names)).collect())
    }

    /// `binance_pm`'s per-asset figures as JSON, by asset name.
    pub fn assets_value(&self) -> Value {
        let Some(names) = self.names.as_deref() else { return Value::Object(Map::new()) };
        Value::Object(self.assets.iter().map(|a| (names.asset(a.asset).to_string(), a.to_value())).collect())
    }

    pub fn group(&self, name: &str) -> Option<&GroupResult> {
        self.groups.iter().find(|g| &*g.name == name)
    }
}

impl PositionMargin {
    pub fn to_value(&self, names: &Names) -> Value {
        json!({
            "index": self.index, "symbol": names.symbol(self.index), "asset": names.asset(self.asset),
            "notional": self.notional,
            "bracket": self.bracket, "mmr": self.mmr, "cum": self.cum,
            "maintenance_margin": self.maintenance_margin, "initial_margin": self.initial_margin,
            "upnl": self.upnl, "leverage": self.leverage,
        })
    }
}

impl AssetMargin {
    pub fn to_value(&self) -> Value {
        json!({
            "v": self.v, "equity": self.equity, "collateral_value": self.collateral_value, "loan": self.loan,
            "loan_margin": self.loan_margin, "maintenance_margin": self.maintenance_margin,
        })
    }
}
