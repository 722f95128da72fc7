//! A portfolio resolved against a market, kept between calls.
//!
//! Resolving (`Engine::book`) is most of a margin call's cost: every asset and
//! symbol looked up by name, the groups, netted symbols and offsets laid out.
//! None of that layout depends on the market's numbers, only on the portfolio
//! (and on the market having a price for each asset it holds). So a portfolio
//! margined again keeps its layout and, when the market moved, re-reads only
//! the numbers: each asset's price, each contract's mark, each option's series
//! (from the snapshot's cache, or priced now), then re-sums its groups and
//! assets in the portfolio's order, as `Engine::book` sums them. The book is
//! bit for bit a rebuild's.
//!
//! The caller owns the question of *when* the portfolio or the market changed
//! (the Python objects count their mutations); this type only holds the layout
//! and refreshes it.

use crate::engine::{Book, BookSlot, Engine, Scratch};
use crate::error::Result;
use crate::instrument::contract_terms;
use crate::market::Market;
use crate::portfolio::Portfolio;
use crate::result::MarginResult;
use crate::series::SeriesHint;
use rustc_hash::FxHashMap;

/// A portfolio's book on one engine, with what a refresh needs.
#[derive(Debug)]
pub struct Resolved {
    /// The engine the book was resolved for (`Engine::id`).
    engine: u64,
    book: Book,
    /// Each asset slot's name, in the book's order.
    assets: Vec<String>,
    /// Each position's underlying and settle asset slots.
    ends: Vec<(u32, u32)>,
    /// Where each option slot's series was last found in a snapshot's cache
    /// (a hint is not taken by another snapshot's cache).
    series_hints: Vec<SeriesHint>,
    scratch: Scratch,
}

impl Resolved {
    /// Resolve `portfolio` on `market` (errors as `Engine::book`'s).
    pub fn new(engine: &Engine, portfolio: &Portfolio, market: &Market) -> Result<Self> {
        let book = engine.book(portfolio, market)?;
        let mut index: FxHashMap<&str, u32> = FxHashMap::default();
        let mut assets = Vec::with_capacity(book.assets.len());
        for a in portfolio.assets() {
            if !index.contains_key(a) {
                index.insert(a, assets.len() as u32);
                assets.push(a.to_string());
            }
        }
        debug_assert_eq!(assets.len(), book.assets.len());
        let ends = portfolio.positions.iter().map(|p| (index[p.underlying()], index[p.settle()])).collect();
        let series_hints = vec![SeriesHint::default(); book.options.len()];
        Ok(Resolved { engine: engine.id(), book, assets, ends, series_hints, scratch: Scratch::default() })
    }

    /// Whether the book was resolved for `engine`.
    pub fn is_for(&self, engine: &Engine) -> bool {
        self.engine == engine.id()
    }

    pub fn book(&self) -> &Book {
        &self.book
    }

    /// Re-read `market`'s numbers into the book of `portfolio`, the portfolio it
    /// was resolved from, unchanged since. An asset without a price, or an option
    /// without a vol, is an error; the book is then stale (call `new`, whose
    /// error names the input field).
    pub fn refresh(&mut self, engine: &Engine, portfolio: &Portfolio, market: &Market) -> Result<()> {
        let book = &mut self.book;
        for (slot, name) in book.assets.iter_mut().zip(&self.assets) {
            slot.price = *market
                .prices
                .get(name.as_str())
                .ok_or_else(|| crate::error::CoreError::no_price(crate::input::path("market.prices", name), name))?;
        }
        let no_marks = market.marks.is_empty();
        for (i, pos) in portfolio.positions.iter().enumerate() {
            let (u, s) = self.ends[i];
            let (pb, ps) = (book.assets[u as usize].price, book.assets[s as usize].price);
            match book.slots[i] {
                BookSlot::Contract { .. } => {
                    let mark = if no_marks { None } else { market.marks.get(pos.symbol()).copied() };
                    let t = contract_terms(pos.view(), mark, pb, ps);
                    if let BookSlot::Contract { dollar_delta, underlying_price, upnl, size, .. } = &mut book.slots[i] {
                        (*dollar_delta, *underlying_price, *upnl, *size) = (t.dollar_delta, pb, t.upnl, t.size);
                    }
                }
                BookSlot::Option(o) => {
                    engine.option_series(book, o, pos.view(), market, &mut self.series_hints[o])?;
                }
            }
        }
        book.resum_all();
        Ok(())
    }

    /// The account's margin on the book as it stands (its buffers reused).
    pub fn evaluate(&mut self, engine: &Engine) -> MarginResult {
        let mut out = MarginResult::default();
        engine.evaluate_into(&self.book, &mut self.scratch, &mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RiskParams;

    const PORTFOLIO: &str = r#"{"balances": {"USDT": 20000, "BTC": 0.5},
        "positions": [
          {"type": "linear", "symbol": "BTCUSDT", "underlying": "BTC", "qty": -0.7, "entry_price": 59000},
          {"type": "inverse", "symbol": "BTCUSD_PERP", "underlying": "BTC", "contract_size": 100,
           "contracts": 30, "entry_price": 61000},
          {"type": "option", "symbol": "BTC-C", "underlying": "BTC", "kind": "call", "strike": 65000,
           "expiry": "2026-12-25T08:00:00Z", "qty": -1.5}]}"#;

    fn market() -> Market {
        Market::from_json_str(
            r#"{"time": "2026-11-24T00:00:00Z", "prices": {"BTC": 60000, "USDT": 1},
                "marks": {"BTCUSDT": 60030}, "vols": {"BTC": 0.5}}"#,
        )
        .unwrap()
    }

    #[test]
    fn a_refreshed_book_is_a_rebuilt_one() {
        let engine = Engine::new(RiskParams::default_profile());
        let portfolio = Portfolio::from_json_str(PORTFOLIO).unwrap();
        let mut m = market();
        let mut resolved = Resolved::new(&engine, &portfolio, &m).unwrap();
        assert_eq!(resolved.evaluate(&engine), engine.margin(&portfolio, &m).unwrap());
        for (btc, mark, vol) in [(57_000.0, 57_100.0, 0.6), (63_000.0, 62_900.0, 0.45)] {
            m.set_price("BTC", btc).unwrap();
            m.set_mark("BTCUSDT", mark).unwrap();
            m.set_vol("BTC", vol).unwrap();
            resolved.refresh(&engine, &portfolio, &m).unwrap();
            assert_eq!(resolved.evaluate(&engine), engine.margin(&portfolio, &m).unwrap());
        }
        // Another market lacking a price: an error, not a stale answer.
        let bare = Market::from_json_str(r#"{"time": "2026-11-24T00:00:00Z", "prices": {"BTC": 1}}"#).unwrap();
        assert!(resolved.refresh(&engine, &portfolio, &bare).is_err());
    }
}
