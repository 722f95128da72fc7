//! Greeks of an account, per position and per risk group, from the same book
//! the margin is computed on (options from the snapshot's priced series).
//!
//! Units: `delta` in coin (underlying units), `delta_usd` in USD,
//! `gamma` in coin per USD of underlying price, `vega` in USD per vol point
//! (σ + 0.01), `theta` in USD per calendar day. Linear and inverse contracts
//! and balances carry delta only. Group figures are the sums over the group's
//! positions and wallet balances (the economic exposure, before netting rules).

use crate::engine::{Book, BookSlot};
use crate::portfolio::Portfolio;
use serde_json::{json, Value};

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Greeks {
    pub delta: f64,
    pub delta_usd: f64,
    pub gamma: f64,
    pub vega: f64,
    pub theta: f64,
}

impl Greeks {
    fn add(&mut self, o: &Greeks) {
        self.delta += o.delta;
        self.delta_usd += o.delta_usd;
        self.gamma += o.gamma;
        self.vega += o.vega;
        self.theta += o.theta;
    }

    pub fn to_value(&self) -> Value {
        json!({"delta": self.delta, "delta_usd": self.delta_usd, "gamma": self.gamma, "vega": self.vega, "theta": self.theta})
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct PositionGreeks {
    /// Index in the portfolio's positions.
    pub position: usize,
    pub symbol: String,
    pub group: String,
    pub greeks: Greeks,
}

#[derive(Debug, Clone, PartialEq)]
pub struct GreeksResult {
    pub positions: Vec<PositionGreeks>,
    /// Per listed group, in the result's group order.
    pub groups: Vec<(String, Greeks)>,
}

impl GreeksResult {
    pub fn to_value(&self) -> Value {
        let positions: Vec<Value> = self
            .positions
            .iter()
            .map(|p| {
                let mut v = p.greeks.to_value();
                v["position"] = json!(p.position);
                v["symbol"] = json!(p.symbol);
                v["group"] = json!(p.group);
                v
            })
            .collect();
        let groups: serde_json::Map<String, Value> =
            self.groups.iter().map(|(g, x)| (g.clone(), x.to_value())).collect();
        json!({"positions": positions, "groups": groups})
    }
}

/// Greeks of a portfolio's resolved book.
pub fn greeks(portfolio: &Portfolio, book: &Book) -> GreeksResult {
    let mut groups: Vec<Greeks> = vec![Greeks::default(); book.groups.len()];
    let mut positions = Vec::with_capacity(book.slots.len());
    for slot in &book.slots {
        let (g, x) = match slot {
            BookSlot::Contract { group, dollar_delta, underlying_price, .. } => (
                *group,
                Greeks { delta: dollar_delta / underlying_price, delta_usd: *dollar_delta, ..Greeks::default() },
            ),
            BookSlot::Option(o) => {
                let opt = &book.options[*o];
                let s = &opt.series;
                let q = opt.qty;
                let x = Greeks {
                    delta: q * s.delta,
                    delta_usd: q * s.delta * s.underlying_price,
                    gamma: q * s.gamma,
                    vega: q * s.vega,
                    theta: q * s.theta,
                };
                (opt.group, x)
            }
        };
        groups[g].add(&x);
        positions.push(PositionGreeks {
            position: positions.len(),
            symbol: portfolio.positions[positions.len()].symbol().to_string(),
            group: book.group_names[g].to_string(),
            greeks: x,
        });
    }
    for a in &book.assets {
        if a.wallet != 0.0 {
            groups[a.group].add(&Greeks { delta: a.wallet, delta_usd: a.wallet * a.price, ..Greeks::default() });
        }
    }
    let groups = book
        .groups
        .iter()
        .zip(groups)
        .zip(&book.group_names)
        .filter(|((g, _), _)| g.listed)
        .map(|((_, x), n)| (n.to_string(), x))
        .collect();
    GreeksResult { positions, groups }
}
