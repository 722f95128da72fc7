//! What a linear or inverse contract is on a snapshot: its mark, UPnL, dollar
//! delta, bracketed size and notional, how a mark moves with its prices, and
//! how a fill merges into a held position. The one owner of these terms: the
//! book (both margin models), classic margin, the live account, the market
//! sweep and, through `Engine::position_terms`, the Python risk tools read them
//! here (METHODOLOGY.md §1, docs/CLASSIC.md, docs/BINANCE.md).
//!
//! Units: `pb`, `ps` are the underlying's and the settle asset's index prices
//! (USD). A linear contract's mark is in settle units per underlying unit; an
//! inverse contract's in USD per coin. An inverse contract's quantity is
//! `contracts · contract_size` USD of face value, and its P&L is in coin.

use crate::engine::{Book, BookSlot};
use crate::market::Market;
use crate::portfolio::{Portfolio, PositionRef};
use serde_json::{json, Value};

/// A linear or inverse contract on a snapshot, as both models read it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ContractTerms {
    /// Dollar delta (USD).
    pub dollar_delta: f64,
    /// UPnL in the margin asset (settle units; coin for an inverse contract).
    pub upnl: f64,
    /// What its bracket is chosen on: `|qty · mark|` in the margin asset for a
    /// linear contract, `|contracts · contract_size / mark|` in coin for an
    /// inverse one (docs/BINANCE.md).
    pub size: f64,
}

/// The mark a contract is valued at: the market's, else the index ratio
/// (`pb / ps` for a linear contract, `pb` for an inverse one).
#[inline]
pub fn mark_or_index(mark: Option<f64>, inverse: bool, pb: f64, ps: f64) -> f64 {
    mark.unwrap_or(if inverse { pb } else { pb / ps })
}

/// A linear or inverse contract's terms given its mark (the market's, if any;
/// see [`mark_or_index`]). Options have no contract terms (all zero).
#[inline]
pub fn contract_terms(pos: PositionRef<'_>, mark: Option<f64>, pb: f64, ps: f64) -> ContractTerms {
    match pos {
        PositionRef::Linear { qty, entry_price, .. } => {
            let mark = mark_or_index(mark, false, pb, ps);
            ContractTerms { dollar_delta: qty * mark * ps, upnl: qty * (mark - entry_price), size: (qty * mark).abs() }
        }
        PositionRef::Inverse { contract_size, contracts, entry_price, .. } => {
            let mark = mark_or_index(mark, true, pb, ps);
            let notional = contracts * contract_size;
            ContractTerms {
                dollar_delta: notional * pb / entry_price,
                upnl: notional * (1.0 / entry_price - 1.0 / mark),
                size: (notional / mark).abs(),
            }
        }
        PositionRef::Option { .. } => ContractTerms { dollar_delta: 0.0, upnl: 0.0, size: 0.0 },
    }
}

/// A contract's notional in USD at its mark: `|qty| · mark · ps` for a linear
/// contract, `|contracts · contract_size| · pb / mark` for an inverse one (the
/// coin it is worth, at index). Classic margin's initial margin is this over
/// the leverage.
#[inline]
pub fn notional_usd(quantity: f64, inverse: bool, mark: f64, pb: f64, ps: f64) -> f64 {
    if inverse {
        quantity.abs() * pb / mark
    } else {
        quantity.abs() * mark * ps
    }
}

/// A mark moved with its prices, the factors `fb`, `fs` (`1 + r`) of the
/// underlying and the settle asset: `mark · fb / fs` for a linear contract
/// (settle units per underlying), `mark · fb` for an inverse one (USD per coin).
#[inline]
pub fn moved_mark(mark: f64, fb: f64, fs: f64, inverse: bool) -> f64 {
    if inverse {
        mark * fb
    } else {
        mark * (fb / fs)
    }
}

/// A fill of `dq` at `price` merged into a held `q` at average entry `e`:
/// `(new quantity, new entry, realised P&L in the margin asset)`.
///
/// An increase averages the entry (arithmetically for a linear contract;
/// harmonically for an inverse one, whose contracts are USD notionals); a
/// reduction realises the closed part at `price`; a flip opens the rest at
/// `price`. `contract_size` is used by an inverse contract only.
pub fn merge_fill(inverse: bool, q: f64, e: f64, dq: f64, price: f64, contract_size: f64) -> (f64, f64, f64) {
    if q == 0.0 || q.signum() == dq.signum() {
        let nq = q + dq;
        let entry = match (nq == 0.0, inverse) {
            (true, _) => price,
            (false, false) => (q * e + dq * price) / nq,
            (false, true) => nq / (q / e + dq / price),
        };
        return (nq, entry, 0.0);
    }
    let close = if dq.abs() <= q.abs() { dq } else { -q };
    let realized = if inverse { -close * contract_size * (1.0 / e - 1.0 / price) } else { -close * (price - e) };
    let rest = dq - close;
    if rest != 0.0 {
        (rest, price, realized)
    } else {
        (q + close, e, realized)
    }
}

/// One position of a portfolio on a snapshot: what the risk tools and reports
/// read of it (`Engine::position_terms`).
#[derive(Debug, Clone, PartialEq)]
pub struct PositionTerms {
    /// `"linear"`, `"inverse"` or `"option"`.
    pub kind: &'static str,
    pub symbol: String,
    pub group: String,
    /// The asset its value is paid in: the settle asset, an inverse contract's coin.
    pub margin_asset: String,
    /// Signed quantity as the position states it: `qty` (underlying units) of a
    /// linear contract or an option, `contracts` of an inverse one.
    pub quantity: f64,
    /// A contract's mark (see [`mark_or_index`]); an option's model value per
    /// unit, settle units.
    pub mark: f64,
    /// USD: a contract's [`notional_usd`], an option's `|qty| · P_b`.
    pub notional: f64,
    /// USD.
    pub dollar_delta: f64,
    /// What it adds to its margin asset's wallet, in that asset: a contract's
    /// UPnL, an option's `qty · value`.
    pub value: f64,
}

impl PositionTerms {
    pub fn to_value(&self) -> Value {
        json!({
            "type": self.kind, "symbol": self.symbol, "group": self.group,
            "margin_asset": self.margin_asset, "quantity": self.quantity, "mark": self.mark,
            "notional": self.notional, "dollar_delta": self.dollar_delta, "value": self.value,
        })
    }
}

/// The terms of every position of `portfolio`, in order, read off its resolved book.
pub fn position_terms(portfolio: &Portfolio, market: &Market, book: &Book) -> Vec<PositionTerms> {
    let terms = |i: usize, slot: &BookSlot| {
        let pos = portfolio.positions[i].view();
        let (kind, quantity, contract_size) = match pos {
            PositionRef::Linear { qty, .. } => ("linear", qty, 1.0),
            PositionRef::Inverse { contracts, contract_size, .. } => ("inverse", contracts, contract_size),
            PositionRef::Option { qty, .. } => ("option", qty, 1.0),
        };
        let (group, mark, notional, dollar_delta, value) = match *slot {
            BookSlot::Contract { group, dollar_delta, underlying_price: pb, receiver, upnl, inverse, .. } => {
                let ps = if inverse { 1.0 } else { book.assets[receiver].price };
                let mark = mark_or_index(market.marks.get(pos.symbol()).copied(), inverse, pb, ps);
                (group, mark, notional_usd(quantity * contract_size, inverse, mark, pb, ps), dollar_delta, upnl)
            }
            BookSlot::Option(o) => {
                let (opt, pb) = (&book.options[o], book.options[o].series.underlying_price);
                let s = &opt.series;
                (opt.group, s.value, quantity.abs() * pb, opt.qty * s.delta * pb, opt.qty * s.value)
            }
        };
        PositionTerms {
            kind,
            symbol: pos.symbol().to_string(),
            group: book.group_names[group].to_string(),
            margin_asset: pos.settle().to_string(),
            quantity,
            mark,
            notional,
            dollar_delta,
            value,
        }
    };
    book.slots.iter().enumerate().map(|(i, slot)| terms(i, slot)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_default_to_the_index_ratio() {
        assert_eq!(mark_or_index(None, false, 60_000.0, 0.5), 120_000.0);
        assert_eq!(mark_or_index(None, true, 60_000.0, 0.5), 60_000.0);
        assert_eq!(mark_or_index(Some(59_000.0), true, 60_000.0, 0.5), 59_000.0);
    }

    #[test]
    fn inverse_terms_are_in_coin() {
        // 10 contracts of 100 USD, entered at 50,000, marked at 40,000: short coin
        // value falls, a long loses 1,000·(1/50,000 − 1/40,000) = −0.005 BTC.
        let pos = PositionRef::Inverse {
            symbol: "BTCUSD_PERP",
            underlying: "BTC",
            contract_size: 100.0,
            contracts: 10.0,
            entry_price: 50_000.0,
            leverage: None,
        };
        let t = contract_terms(pos, Some(40_000.0), 40_000.0, 1.0);
        assert!((t.upnl + 0.005).abs() < 1e-15);
        assert_eq!(t.size, 0.025);
        assert_eq!(notional_usd(1_000.0, true, 40_000.0, 40_000.0, 1.0), 1_000.0);
    }

    #[test]
    fn fills_merge_and_realise() {
        // Linear: add, reduce (realises), flip (the rest opens at the price).
        assert_eq!(merge_fill(false, 1.0, 100.0, 1.0, 110.0, 1.0), (2.0, 105.0, 0.0));
        assert_eq!(merge_fill(false, 2.0, 105.0, -1.0, 115.0, 1.0), (1.0, 105.0, 10.0));
        assert_eq!(merge_fill(false, 1.0, 105.0, -3.0, 95.0, 1.0), (-2.0, 95.0, -10.0));
        // Inverse: the average entry of an increase is harmonic.
        let (n, e, r) = merge_fill(true, 100.0, 50_000.0, 100.0, 25_000.0, 10.0);
        assert_eq!((n, r), (200.0, 0.0));
        assert!((e - 200.0 / (100.0 / 50_000.0 + 100.0 / 25_000.0)).abs() < 1e-9);
        // Closing all of it realises coin P&L and keeps the entry.
        let (n, e, r) = merge_fill(true, 100.0, 50_000.0, -100.0, 40_000.0, 10.0);
        assert_eq!((n, e), (0.0, 50_000.0));
        assert!((r - (-(-100.0) * 10.0 * (1.0 / 50_000.0 - 1.0 / 40_000.0))).abs() < 1e-15);
    }
}
