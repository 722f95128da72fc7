//! Futures maintenance brackets, shared by classic margin (`classic.rs`) and
//! Binance's portfolio margin (`binance.rs`): the profile's `[brackets.usdm]`
//! (caps on notional in the margin asset) and `[brackets.coinm]` (caps on the
//! quantity in the base coin, `cum` in coin). docs/BINANCE.md "Brackets".

use crate::error::{Code, CoreError, Result};
use crate::input::{array, fmt_num, positive, table, tier_table, up_to, Fields, Source};
use serde_json::Value;

const P: Source = Source::Profile;

/// One bracket: its cap, maintenance rate, maximum leverage and `cum`, the
/// amount that makes MM continuous at its floor (units of the table: margin
/// asset for USDⓈ-M, coin for COIN-M).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bracket {
    /// Upper end of the bracket (`f64::INFINITY` for an open last bracket).
    pub up_to: f64,
    pub mmr: f64,
    pub max_leverage: f64,
    pub cum: f64,
}

impl Bracket {
    /// `max(0, size · mmr − cum)`: the floor matters only for an exported
    /// table whose `cum` overshoots; a derived `cum` never does.
    pub fn maintenance(&self, size: f64) -> f64 {
        (size * self.mmr - self.cum).max(0.0)
    }
}

/// Which table a contract is bracketed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BracketKind {
    /// USDⓈ-margined (`linear`): notional in the margin asset.
    Usdm,
    /// Coin-margined (`inverse`): quantity in the coin.
    Coinm,
}

/// The profile's bracket tables, by symbol (`default` included), in file order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BracketTables {
    pub usdm: Vec<(String, Vec<Bracket>)>,
    pub coinm: Vec<(String, Vec<Bracket>)>,
    /// Each kind's tables by name (an exchange's profile lists hundreds of symbols).
    by_name: [rustc_hash::FxHashMap<String, usize>; 2],
}

impl BracketTables {
    pub fn tables(&self, kind: BracketKind) -> &[(String, Vec<Bracket>)] {
        match kind {
            BracketKind::Usdm => &self.usdm,
            BracketKind::Coinm => &self.coinm,
        }
    }

    /// The index of `symbol`'s table: its own, else its pair's (the symbol
    /// before `_`: `BTCUSDT_250627` → `BTCUSDT`), else `default`.
    pub fn index(&self, kind: BracketKind, symbol: &str) -> Option<usize> {
        let by_name = &self.by_name[kind as usize];
        let find = |name: &str| by_name.get(name).copied();
        let pair = symbol.split('_').next().unwrap_or(symbol);
        find(symbol).or_else(|| find(pair)).or_else(|| find("default"))
    }

    /// `symbol`'s table, or a `ProfileError` naming the missing table.
    pub fn for_symbol(&self, kind: BracketKind, symbol: &str) -> Result<&[Bracket]> {
        match self.index(kind, symbol) {
            Some(i) => Ok(&self.tables(kind)[i].1),
            None => Err(CoreError::profile(
                format!("brackets.{}", kind.key()),
                format!("no table for {symbol} and no default"),
            )),
        }
    }

    pub fn parse(v: Option<&Value>) -> Result<Self> {
        let mut out = BracketTables::default();
        let Some(v) = v else { return Ok(out) };
        let mut f = Fields::new(v, "brackets", P)?;
        for kind in [BracketKind::Usdm, BracketKind::Coinm] {
            if let Some(t) = f.get(kind.key()) {
                let at = format!("brackets.{}", kind.key());
                let tables = match kind {
                    BracketKind::Usdm => &mut out.usdm,
                    BracketKind::Coinm => &mut out.coinm,
                };
                for (sym, tab) in table(t, &at, P)? {
                    out.by_name[kind as usize].insert(sym.clone(), tables.len());
                    tables.push((sym.clone(), parse_table(tab, &crate::input::path(&at, sym))?));
                }
            }
        }
        f.finish()?;
        Ok(out)
    }
}

impl BracketKind {
    pub fn key(self) -> &'static str {
        match self {
            BracketKind::Usdm => "usdm",
            BracketKind::Coinm => "coinm",
        }
    }
}

/// The bracket `size` falls in: the first with `size ≤ up_to` (Binance's
/// `floor < size ≤ cap`), the last when the size is above every cap.
pub fn bracket_of(table: &[Bracket], size: f64) -> usize {
    table.iter().position(|b| size <= b.up_to).unwrap_or(table.len() - 1)
}

/// A table of brackets, sorted by cap; `cum` as given, else derived from the
/// previous bracket: `cum_1 = 0`, `cum_k = cum_{k−1} + up_to_{k−1}·(mmr_k − mmr_{k−1})`.
fn parse_table(v: &Value, at: &str) -> Result<Vec<Bracket>> {
    if array(v, at, P)?.is_empty() {
        return Err(P.err(at, "must list at least one bracket".into()).with_code(Code::OutOfRange));
    }
    // `cum` as exported, else derived from the bracket below (once all are read).
    let rows = tier_table(v, at, P, ("brackets", "up_to"), |f, bat, last| {
        let mmr = f.f64("mmr")?;
        if !(mmr.is_finite() && (0.0..=1.0).contains(&mmr)) {
            return Err(P
                .err(&format!("{bat}.mmr"), format!("must be a rate in [0, 1], got {}", fmt_num(mmr)))
                .with_code(Code::OutOfRange));
        }
        let max_leverage = positive(f.f64("max_leverage")?, &format!("{bat}.max_leverage"), P)?;
        let cum = f.opt_f64("cum")?.map(|c| crate::input::finite(c, &format!("{bat}.cum"), P)).transpose()?;
        let up_to = up_to(f, bat, last, "bracket", P)?;
        Ok((up_to, (Bracket { up_to, mmr, max_leverage, cum: 0.0 }, cum)))
    })?;
    let mut out: Vec<Bracket> = Vec::with_capacity(rows.len());
    for (mut b, cum) in rows {
        let derived = out.last().map_or(0.0, |prev| prev.cum + prev.up_to * (b.mmr - prev.mmr));
        b.cum = cum.unwrap_or(derived);
        out.push(b);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::RiskParams;

    fn mm(kind: BracketKind, symbol: &str, size: f64) -> f64 {
        let p = RiskParams::default_profile();
        let t = p.brackets.for_symbol(kind, symbol).unwrap();
        t[bracket_of(t, size)].maintenance(size)
    }

    /// Binance's published bracket examples on the default profile's tables.
    #[test]
    fn published_usdm_brackets() {
        let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * b.abs().max(1.0);
        assert!(close(mm(BracketKind::Usdm, "BTCUSDT", 1_000_000.0), 5_000.0));
        assert!(close(mm(BracketKind::Usdm, "BTCUSDT", 300_000.0), 1_200.0));
        assert!(close(mm(BracketKind::Usdm, "BTCUSDT_250627", 20_000_000.0), 268_000.0));
        assert!(close(mm(BracketKind::Usdm, "ETHUSDT", 60_000_000.0), 1_118_000.0));
        let p = RiskParams::default_profile();
        let t = p.brackets.for_symbol(BracketKind::Usdm, "BTCUSDT").unwrap();
        let cums: Vec<f64> = t.iter().map(|b| b.cum).collect();
        let published = [
            0.0,
            300.0,
            1_500.0,
            12_000.0,
            132_000.0,
            482_000.0,
            2_982_000.0,
            14_482_000.0,
            26_482_000.0,
            41_482_000.0,
            121_482_000.0,
            421_482_000.0,
        ];
        for (c, p) in cums.iter().zip(published) {
            assert!(close(*c, p), "{cums:?}");
        }
    }

    #[test]
    fn lookup_symbol_then_pair_then_default() {
        let p = RiskParams::default_profile();
        let b = &p.brackets;
        let name = |k, s| b.tables(k)[b.index(k, s).unwrap()].0.as_str();
        assert_eq!(name(BracketKind::Usdm, "BTCUSDT"), "BTCUSDT");
        assert_eq!(name(BracketKind::Usdm, "ETHUSDT_261225"), "ETHUSDT");
        assert_eq!(name(BracketKind::Usdm, "SOLUSDT"), "default");
        assert_eq!(name(BracketKind::Coinm, "BTCUSD_PERP"), "BTCUSD");
        assert_eq!(name(BracketKind::Coinm, "ETHUSD_PERP"), "default");
    }

    #[test]
    fn explicit_cum_is_kept_and_drives_the_next_derivation() {
        let v: Value = serde_json::json!({"usdm": {"X": [
            {"up_to": 50_000, "mmr": 0.004, "max_leverage": 125},
            {"up_to": 250_000, "mmr": 0.005, "max_leverage": 100, "cum": 60},
            {"mmr": 0.01, "max_leverage": 50}]}});
        let t = BracketTables::parse(Some(&v)).unwrap();
        let x = &t.usdm[0].1;
        assert_eq!(x[1].cum, 60.0);
        assert!((x[2].cum - (60.0 + 250_000.0 * 0.005)).abs() < 1e-9);
        let e = BracketTables::parse(Some(&serde_json::json!({"usdm": {"X": [{"mmr": 2, "max_leverage": 1}]}})));
        assert_eq!(e.unwrap_err().to_string(), "brackets.usdm.X[0].mmr: must be a rate in [0, 1], got 2");
    }
}
