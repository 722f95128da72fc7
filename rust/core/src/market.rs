//! A market snapshot: index prices, contract marks and implied vols at a time.

use crate::error::{Code, CoreError, Result};
use crate::input::{epoch_seconds, number, parse_time, path, price, table, vol, Fields, Source};
use crate::input::{MAX_MAGNITUDE, MAX_VOL, MIN_PRICE};
use crate::instrument::moved_mark;
use crate::portfolio::{Portfolio, PositionRef};
use crate::series::SeriesCache;
use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};
use serde_json::Value;

const I: Source = Source::Input;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Market {
    /// Seconds since the epoch, UTC.
    pub time: f64,
    /// Index price per asset, USD.
    pub prices: HashMap<String, f64>,
    /// Mark per contract symbol, in the contract's quote units (options ignore marks,
    /// so setting one keeps the priced series).
    pub marks: HashMap<String, f64>,
    /// Implied vol per option symbol, or per underlying as a fallback.
    pub vols: HashMap<String, f64>,
    /// Option series priced on this snapshot: a price or vol change drops the series it
    /// touches, a time change drops them all.
    pub series: SeriesCache,
}

impl Market {
    pub fn new(time: f64) -> Self {
        Market { time, ..Default::default() }
    }

    pub fn from_json_str(text: &str) -> Result<Self> {
        let v: Value = serde_json::from_str(text)
            .map_err(|e| CoreError::invalid("market", format!("not valid JSON: {e}")).with_code(Code::Syntax))?;
        Self::from_value(&v)
    }

    /// Parse the market JSON of METHODOLOGY.md §8; every number is checked
    /// (finite and > 0) whether or not an account uses it.
    pub fn from_value(v: &Value) -> Result<Self> {
        let mut f = Fields::new(v, "market", I)?;
        let time = match f.req("time")? {
            Value::String(s) => parse_time(s, "market.time")?,
            other => {
                return Err(CoreError::invalid(
                    "market.time",
                    format!("must be an ISO-8601 time, got {}", crate::input::show(other)),
                ))
            }
        };
        let mut m = Market::new(epoch_seconds(time, "market.time")?);
        for (key, dest) in [("prices", &mut m.prices), ("marks", &mut m.marks), ("vols", &mut m.vols)] {
            if let Some(t) = f.get(key) {
                let at = path("market", key);
                for (k, x) in table(t, &at, I)? {
                    let kat = path(&at, k);
                    dest.insert(k.clone(), check(key, number(x, &kat, I)?, &kat)?);
                }
            }
        }
        f.finish()?;
        Ok(m)
    }

    /// The index price of `asset` (USD), or the error naming `market.prices.{asset}`.
    pub fn price(&self, asset: &str) -> Result<f64> {
        self.prices.get(asset).copied().ok_or_else(|| CoreError::no_price(path("market.prices", asset), asset))
    }

    /// The implied vol of option `symbol`, else of its `underlying`, or the error
    /// naming `market.vols.{symbol}`.
    pub fn vol(&self, symbol: &str, underlying: &str) -> Result<f64> {
        match self.vols.get(symbol).or_else(|| self.vols.get(underlying)) {
            Some(&v) => Ok(v),
            None => Err(CoreError::no_vol(path("market.vols", symbol), symbol, underlying)),
        }
    }

    pub fn set_price(&mut self, asset: &str, price: f64) -> Result<()> {
        set_checked(&mut self.prices, "prices", asset, price)?;
        self.series.invalidate(asset);
        Ok(())
    }

    /// Move the snapshot in time (seconds since the epoch, UTC).
    pub fn set_time(&mut self, time: f64) -> Result<()> {
        self.time = epoch_seconds(time, "market.time")?;
        self.series.clear();
        Ok(())
    }

    pub fn set_mark(&mut self, symbol: &str, mark: f64) -> Result<()> {
        set_checked(&mut self.marks, "marks", symbol, mark)?;
        Ok(())
    }

    pub fn set_vol(&mut self, key: &str, vol: f64) -> Result<()> {
        set_checked(&mut self.vols, "vols", key, vol)?;
        self.series.invalidate(key);
        Ok(())
    }

    /// The snapshot after a move: each `(asset, factor)` multiplies the asset's
    /// index price (an asset named twice: its last factor), the marks of
    /// `portfolio`'s contracts move with their prices
    /// ([`moved_mark`](crate::instrument::moved_mark)), and every vol is
    /// multiplied by `vol_factor`. The new snapshot starts with an empty series
    /// cache (a clone's).
    pub fn moved(&self, portfolio: &Portfolio, factors: &[(String, f64)], vol_factor: f64) -> Result<Market> {
        let mut m = self.clone();
        let mut by_asset: HashMap<&str, f64> = HashMap::default();
        let mut order: Vec<&str> = Vec::with_capacity(factors.len());
        for (asset, f) in factors {
            if by_asset.insert(asset, *f).is_none() {
                order.push(asset);
            }
        }
        for asset in order {
            let f = by_asset[asset];
            if f != 1.0 {
                m.set_price(asset, self.price(asset)? * f)?;
            }
        }
        let factor = |a: &str| by_asset.get(a).copied().unwrap_or(1.0);
        let mut done: HashSet<&str> = HashSet::default();
        for pos in &portfolio.positions {
            let (sym, inverse) = match pos.view() {
                PositionRef::Linear { symbol, .. } => (symbol, false),
                PositionRef::Inverse { symbol, .. } => (symbol, true),
                PositionRef::Option { .. } => continue,
            };
            let Some(&mark) = self.marks.get(sym) else { continue };
            if !done.insert(sym) {
                continue;
            }
            let moved = moved_mark(mark, factor(pos.underlying()), factor(pos.settle()), inverse);
            if moved != mark {
                m.set_mark(sym, moved)?;
            }
        }
        if vol_factor != 1.0 {
            for (key, vol) in &self.vols {
                m.set_vol(key, vol * vol_factor)?;
            }
        }
        Ok(m)
    }

    /// The time as RFC 3339 text, UTC (`2026-11-24T00:00:00Z`), as the market JSON writes it.
    pub fn iso_time(&self) -> String {
        chrono::DateTime::from_timestamp(self.time.floor() as i64, ((self.time - self.time.floor()) * 1e9) as u32)
            .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
            .unwrap_or_default()
    }

    pub fn to_value(&self) -> Value {
        let t = self.iso_time();
        let obj = |m: &HashMap<String, f64>| {
            let mut keys: Vec<_> = m.keys().collect();
            keys.sort();
            Value::Object(keys.into_iter().map(|k| (k.clone(), Value::from(m[k]))).collect())
        };
        serde_json::json!({"time": t, "prices": obj(&self.prices), "marks": obj(&self.marks), "vols": obj(&self.vols)})
    }
}

/// The check of a number of table `table` (prices and marks: a price's bounds;
/// vols: a vol's), whichever way it comes in.
pub fn check(table: &str, x: f64, at: &str) -> Result<f64> {
    if table == "vols" {
        vol(x, at)
    } else {
        price(x, at)
    }
}

/// Set `table[key]` to `x` once checked. The field's path is built only for an
/// error and a known key is updated in place, so a tick allocates nothing.
fn set_checked(table: &mut HashMap<String, f64>, name: &str, key: &str, x: f64) -> Result<()> {
    let plausible = if name == "vols" { x > 0.0 && x <= MAX_VOL } else { (MIN_PRICE..=MAX_MAGNITUDE).contains(&x) };
    if !plausible {
        check(name, x, &path(&format!("market.{name}"), key))?;
    }
    match table.get_mut(key) {
        Some(v) => *v = x,
        None => drop(table.insert(key.to_string(), x)),
    }
    Ok(())
}
