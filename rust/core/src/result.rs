//! The margin result of one account (METHODOLOGY.md §8 "Result JSON").

use serde_json::{json, Map, Value};

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

/// Account figures, USD; `uni_mmr` is a ratio (±inf when MM = 0).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MarginResult {
    pub equity: f64,
    pub adjusted_equity: f64,
    pub maintenance_margin: f64,
    pub initial_margin: f64,
    pub available: f64,
    pub uni_mmr: f64,
    pub status: std::sync::Arc<str>,
    pub scan: f64,
    pub systemic: f64,
    pub offset_credit: f64,
    pub borrow_margin: f64,
    pub groups: Vec<GroupResult>,
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
    pub fn to_value(&self) -> Value {
        let groups: Map<String, Value> = self.groups.iter().map(|g| (g.name.to_string(), g.to_value())).collect();
        json!({
            "equity": self.equity,
            "adjusted_equity": self.adjusted_equity,
            "maintenance_margin": self.maintenance_margin,
            "initial_margin": self.initial_margin,
            "available": self.available,
            "uni_mmr": finite_or_null(self.uni_mmr),
            "status": &*self.status,
            "scan": self.scan,
            "systemic": self.systemic,
            "offset_credit": self.offset_credit,
            "borrow_margin": self.borrow_margin,
            "groups": groups,
        })
    }

    pub fn group(&self, name: &str) -> Option<&GroupResult> {
        self.groups.iter().find(|g| &*g.name == name)
    }
}
