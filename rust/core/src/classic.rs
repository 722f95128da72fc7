//! Classic margin (METHODOLOGY.md §5): wallets kept apart, each position on
//! its symbol's maintenance brackets.
//!
//! The account's balances are split into wallets as an exchange does when an
//! account runs in classic mode (readings of this project, docs/CLASSIC.md):
//! - **USDⓈ-M futures**: the positive balances of the assets linear contracts
//!   and options settle in, less the isolated margins posted from them; its
//!   cross positions: linear contracts and options (a short option needs what
//!   the portfolio engine asks of it alone, a long one nothing).
//! - **COIN-M futures**, one per coin: the coin's positive balance, less the
//!   isolated margins posted from it; its cross positions: inverse contracts.
//! - **Isolated positions**: their own margin (`isolated_margin`, settle units).
//! - **Cross margin** (spot and loans): every loan and every positive balance
//!   no futures wallet took. `margin_level = assets / liabilities`.
//!
//! A futures wallet is liquidated at `margin_ratio = MM / margin balance ≥ 1`,
//! an isolated position at `margin + UPnL ≤ MM`, the cross margin account at
//! `margin_level ≤ cross_margin_liquidation`.

use crate::brackets::{bracket_of, Bracket, BracketKind};
use crate::engine::Engine;
use crate::error::{CoreError, Result};
use crate::input::fmt_num;
use crate::instrument::{contract_terms, mark_or_index, notional_usd};
use crate::market::Market;
use crate::portfolio::{Portfolio, Position};
use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};
use serde_json::{json, Value};

/// Which positions are isolated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClassicMode {
    /// A position with `isolated_margin` is isolated, the rest cross.
    AsGiven,
    /// Every futures position in its cross wallet.
    Cross,
    /// Every futures position isolated, with its `isolated_margin` or else its initial margin.
    Isolated,
}

impl ClassicMode {
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "as_given" => Ok(ClassicMode::AsGiven),
            "cross" => Ok(ClassicMode::Cross),
            "isolated" => Ok(ClassicMode::Isolated),
            _ => Err(CoreError::invalid("mode", format!("must be \"as_given\", \"cross\" or \"isolated\", got {s:?}"))),
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            ClassicMode::AsGiven => "as_given",
            ClassicMode::Cross => "cross",
            ClassicMode::Isolated => "isolated",
        }
    }
}

/// Classic statuses, healthiest first.
pub const NORMAL: &str = "NORMAL";
pub const MARGIN_CALL: &str = "MARGIN_CALL";
pub const LIQUIDATION: &str = "LIQUIDATION";

fn worse(a: &'static str, b: &'static str) -> &'static str {
    let rank = |s: &str| [NORMAL, MARGIN_CALL, LIQUIDATION].iter().position(|x| *x == s).unwrap_or(2);
    if rank(b) > rank(a) {
        b
    } else {
        a
    }
}

/// A futures position under its bracket. Money in USD unless stated.
#[derive(Debug, Clone, PartialEq)]
pub struct ClassicPosition {
    /// Index in the portfolio.
    pub index: usize,
    pub symbol: String,
    /// `"usdm"`, `"coinm:<coin>"` or `"isolated"`.
    pub wallet: String,
    pub notional: f64,
    pub mmr: f64,
    /// The bracket's `cum` (USD) making MM continuous in notional.
    pub cum: f64,
    pub maintenance_margin: f64,
    pub initial_margin: f64,
    pub leverage: f64,
    pub max_leverage: f64,
    pub upnl: f64,
    /// Isolated margin posted (settle units; coin for inverse).
    pub isolated_margin: Option<f64>,
    /// Mark (quote units) at which the position or its wallet is liquidated,
    /// the others fixed; `None`: no such price.
    pub liquidation_price: Option<f64>,
    /// An isolated position's own status and `MM / (margin + UPnL)` (+inf
    /// when that is ≤ 0); `None` for a cross position.
    pub status: Option<&'static str>,
    pub margin_ratio: Option<f64>,
}

/// A futures wallet (USDⓈ-M, or COIN-M for one coin). USD figures.
#[derive(Debug, Clone, PartialEq)]
pub struct FuturesWallet {
    /// `"usdm"` or `"coinm:<coin>"`.
    pub name: String,
    pub balance: f64,
    pub upnl: f64,
    pub margin_balance: f64,
    pub maintenance_margin: f64,
    pub initial_margin: f64,
    pub available: f64,
    /// `MM / margin balance`; 0 without MM, +inf when the balance is ≤ 0 with MM.
    pub margin_ratio: f64,
    pub status: &'static str,
}

/// The spot cross margin account (loans). USD figures.
#[derive(Debug, Clone, PartialEq)]
pub struct CrossMargin {
    pub assets: f64,
    pub liabilities: f64,
    /// `assets / liabilities`; +inf without liabilities.
    pub margin_level: f64,
    /// `(liquidation level − 1) · liabilities`: equity below it is liquidated.
    pub maintenance_margin: f64,
    /// `(call level − 1) · liabilities`.
    pub initial_margin: f64,
    pub status: &'static str,
}

/// An account's classic margin. USD figures.
#[derive(Debug, Clone, PartialEq)]
pub struct ClassicResult {
    pub mode: ClassicMode,
    pub equity: f64,
    pub maintenance_margin: f64,
    pub initial_margin: f64,
    /// Σ of the wallets' available margin (isolated positions excluded).
    pub available: f64,
    /// The worst status of any wallet or isolated position.
    pub status: &'static str,
    pub usdm: FuturesWallet,
    pub coinm: Vec<FuturesWallet>,
    pub cross_margin: CrossMargin,
    pub positions: Vec<ClassicPosition>,
}

/// The bracket a size falls in (USD notional for a linear contract, coin
/// quantity for an inverse one) and its `cum` (same units).
pub fn bracket(brackets: &[Bracket], size: f64) -> (usize, f64) {
    let i = bracket_of(brackets, size);
    (i, brackets[i].cum)
}

/// Maintenance margin of a size on its bracket table: `size · mmr − cum`.
pub fn maintenance(brackets: &[Bracket], size: f64) -> f64 {
    brackets[bracket_of(brackets, size)].maintenance(size)
}

/// What a contract brings to classic margin, before wallets are summed.
struct Leg {
    inverse: bool,
    /// Wallet asset: settle asset (linear) or the coin (inverse).
    asset: String,
    /// Signed size (qty or contracts · size) and entry.
    size: f64,
    entry: f64,
    /// USD per unit of the wallet asset.
    asset_price: f64,
    upnl_asset: f64,
    pos: ClassicPosition,
    brackets: Vec<Bracket>,
}

impl Engine {
    /// Classic margin of `portfolio` on `market` (METHODOLOGY.md §5).
    pub fn classic(&self, portfolio: &Portfolio, market: &Market, mode: ClassicMode) -> Result<ClassicResult> {
        let cp = &self.params().classic;
        let price = |a: &str, at: &dyn Fn() -> String| {
            market.prices.get(a).copied().ok_or_else(|| CoreError::no_price(at(), a))
        };
        for (a, _) in &portfolio.balances {
            price(a, &|| crate::input::path("balances", a))?;
        }
        for (a, _) in &portfolio.loans {
            price(a, &|| crate::input::path("loans", a))?;
        }
        // A margin loan is netted as a negative balance: balance − borrowed − interest.
        let mut balances: Vec<(&str, f64)> = portfolio.balances.iter().map(|(a, q)| (a.as_str(), *q)).collect();
        let mut balance_index: HashMap<&str, usize> =
            (balances.iter().enumerate()).map(|(i, (a, _))| (*a, i)).collect();
        for (a, l) in &portfolio.loans {
            match balance_index.get(a.as_str()) {
                Some(&i) => balances[i].1 -= l.owed(),
                None => {
                    balance_index.insert(a, balances.len());
                    balances.push((a, -l.owed()));
                }
            }
        }

        // Contracts: notional, bracket, MM, IM, UPnL.
        let mut legs = Vec::new();
        let mut options_mm = 0.0;
        let mut options_value = Vec::new(); // (settle asset, value in settle units)
        for (i, p) in portfolio.positions.iter().enumerate() {
            let at = |k: &str| format!("positions[{i}].{k}");
            let pb = price(p.underlying(), &|| at("underlying"))?;
            let ps = price(p.settle(), &|| at("settle"))?;
            let (inverse, size, entry, classic) = match p {
                Position::Linear { qty, entry_price, classic, .. } => (false, *qty, *entry_price, classic),
                Position::Inverse { contracts, contract_size, entry_price, classic, .. } => {
                    (true, contracts * contract_size, *entry_price, classic)
                }
                Position::Option { qty, settle, .. } => {
                    // A short option needs what the scenario model asks of it alone,
                    // whichever model the profile evaluates accounts with.
                    let alone = Portfolio { positions: vec![p.clone()], ..Portfolio::default() };
                    let book = self.scenario_book(&alone, market)?;
                    let value = book.options[0].series.value * qty;
                    options_value.push((settle.clone(), value));
                    if *qty < 0.0 {
                        options_mm += self.evaluate_scenario_of(&book).maintenance_margin;
                    }
                    continue;
                }
            };
            let mark = mark_or_index(market.marks.get(p.symbol()).copied(), inverse, pb, ps);
            let terms = contract_terms(p.view(), Some(mark), pb, ps);
            let notional = notional_usd(size, inverse, mark, pb, ps);
            // The margin asset: the settle asset, an inverse contract's coin. A linear
            // contract is bracketed on its notional in it, an inverse one on its coin
            // quantity, MM and cum in those units (docs/BINANCE.md).
            let (upnl_asset, bracketed) = (terms.upnl, terms.size);
            let (asset, asset_price) = if inverse { (p.underlying(), pb) } else { (p.settle(), ps) };
            let kind = if inverse { BracketKind::Coinm } else { BracketKind::Usdm };
            let brackets = self.params().brackets.for_symbol(kind, p.symbol())?;
            let (k, cum) = bracket(brackets, bracketed);
            let cum = cum * asset_price; // reported in USD, as MM is: MM = notional · mmr − cum
            let max_leverage = brackets[k].max_leverage;
            let leverage = classic.leverage.unwrap_or(cp.default_leverage.min(max_leverage));
            if leverage > max_leverage {
                return Err(CoreError::invalid(
                    at("leverage"),
                    format!(
                        "above the bracket's maximum {}x at a notional of {} USD, got {}",
                        fmt_num(max_leverage),
                        fmt_num(notional),
                        fmt_num(leverage)
                    ),
                ));
            }
            let mm = brackets[k].maintenance(bracketed) * asset_price;
            let im = notional / leverage;
            let isolated_margin = match mode {
                ClassicMode::AsGiven => classic.isolated_margin,
                ClassicMode::Cross => None,
                ClassicMode::Isolated => Some(classic.isolated_margin.unwrap_or(im / asset_price)),
            };
            let wallet = match (isolated_margin, inverse) {
                (Some(_), _) => "isolated".to_string(),
                (None, false) => "usdm".to_string(),
                (None, true) => format!("coinm:{}", p.underlying()),
            };
            legs.push(Leg {
                inverse,
                asset: asset.to_string(),
                size,
                entry,
                asset_price,
                upnl_asset,
                brackets: brackets.to_vec(),
                pos: ClassicPosition {
                    index: i,
                    symbol: p.symbol().to_string(),
                    wallet,
                    notional,
                    mmr: brackets[k].mmr,
                    cum,
                    maintenance_margin: mm,
                    initial_margin: im,
                    leverage,
                    max_leverage,
                    upnl: upnl_asset * asset_price,
                    isolated_margin,
                    liquidation_price: None,
                    status: None,
                    margin_ratio: None,
                },
            });
        }

        // Wallet balances: which assets the futures wallets take.
        let usdm_assets: HashSet<&str> =
            portfolio.positions.iter().filter(|p| !matches!(p, Position::Inverse { .. })).map(|p| p.settle()).collect();
        // The COIN-M wallets in order of first use, and each one's cross legs.
        let mut coins: Vec<&str> = Vec::new();
        let mut coin_index: HashMap<&str, usize> = HashMap::default();
        let mut coin_members: Vec<Vec<usize>> = Vec::new();
        for (k, l) in legs.iter().enumerate().filter(|(_, l)| l.inverse) {
            let c = *coin_index.entry(&l.asset).or_insert_with(|| {
                coins.push(&l.asset);
                coin_members.push(Vec::new());
                coins.len() - 1
            });
            if l.pos.isolated_margin.is_none() {
                coin_members[c].push(k);
            }
        }
        let (mut cm_assets, mut cm_liabilities) = (0.0, 0.0);
        let mut usdm_balance = 0.0;
        let mut coin_balance = vec![0.0; coins.len()];
        let mut equity = 0.0;
        for &(a, ref q) in &balances {
            let pa = market.prices[a];
            equity += q * pa;
            if *q < 0.0 {
                cm_liabilities -= q * pa;
            } else if let Some(&c) = coin_index.get(a) {
                coin_balance[c] += q;
            } else if usdm_assets.contains(a) {
                usdm_balance += q * pa;
            } else {
                cm_assets += q * pa;
            }
        }
        for l in &legs {
            equity += l.upnl_asset * l.asset_price;
            if let Some(m) = l.pos.isolated_margin {
                match coin_index.get(l.asset.as_str()) {
                    Some(&c) if l.inverse => coin_balance[c] -= m,
                    _ => usdm_balance -= m * l.asset_price,
                }
            }
        }
        for (settle, v) in &options_value {
            equity += v * market.prices[settle.as_str()];
        }

        // USDⓈ-M cross wallet.
        let cross = |l: &&Leg| l.pos.isolated_margin.is_none();
        let usdm_legs: Vec<&Leg> = legs.iter().filter(|l| !l.inverse).filter(cross).collect();
        let usdm_upnl = usdm_legs.iter().map(|l| l.pos.upnl).sum::<f64>()
            + options_value.iter().map(|(s, v)| v * market.prices[s.as_str()]).sum::<f64>();
        let usdm_mm = usdm_legs.iter().map(|l| l.pos.maintenance_margin).sum::<f64>() + options_mm;
        let usdm_im =
            usdm_legs.iter().map(|l| l.pos.initial_margin).sum::<f64>() + self.params().im_factor * options_mm;
        let usdm = self.futures_wallet("usdm".into(), usdm_balance, usdm_upnl, usdm_mm, usdm_im);
        // Liquidation prices of the USDⓈ-M cross positions: the rest of the wallet fixed.
        let mut liq = vec![None; legs.len()];
        for (k, l) in legs.iter().enumerate() {
            if l.inverse || l.pos.isolated_margin.is_some() {
                continue;
            }
            let m = usdm.margin_balance - l.pos.upnl - (usdm.maintenance_margin - l.pos.maintenance_margin);
            liq[k] = linear_liquidation_price(&l.brackets, l.size, l.entry, l.asset_price, m);
        }

        // COIN-M cross wallets, in coin, reported in USD.
        let mut coinm = Vec::new();
        for (c, coin) in coins.iter().enumerate() {
            let members = &coin_members[c];
            let pc = market.prices[*coin];
            let upnl_coin: f64 = members.iter().map(|&k| legs[k].upnl_asset).sum();
            let mm_usd: f64 = members.iter().map(|&k| legs[k].pos.maintenance_margin).sum();
            let im_usd: f64 = members.iter().map(|&k| legs[k].pos.initial_margin).sum();
            let w = self.futures_wallet(format!("coinm:{coin}"), coin_balance[c] * pc, upnl_coin * pc, mm_usd, im_usd);
            for &k in members {
                // The rest of the wallet fixed in coin: balance, other UPnL, other MM.
                let l = &legs[k];
                let others_mm = (mm_usd - l.pos.maintenance_margin) / pc;
                let w = coin_balance[c] + upnl_coin - l.upnl_asset - others_mm;
                liq[k] = inverse_liquidation_price(&l.brackets, l.size, l.entry, w);
            }
            coinm.push(w);
        }

        // Isolated positions.
        let mut status = worse(usdm.status, NORMAL);
        for (k, l) in legs.iter_mut().enumerate() {
            let Some(m) = l.pos.isolated_margin else { continue };
            let cushion = m * l.asset_price + l.pos.upnl;
            let own = if cushion <= l.pos.maintenance_margin { LIQUIDATION } else { NORMAL };
            l.pos.status = Some(own);
            l.pos.margin_ratio = Some(if cushion > 0.0 { l.pos.maintenance_margin / cushion } else { f64::INFINITY });
            status = worse(status, own);
            liq[k] = if l.inverse {
                inverse_liquidation_price(&l.brackets, l.size, l.entry, m)
            } else {
                linear_liquidation_price(&l.brackets, l.size, l.entry, l.asset_price, m * l.asset_price)
            };
        }
        for w in &coinm {
            status = worse(status, w.status);
        }

        // Cross margin (spot and loans).
        let margin_level = if cm_liabilities > 0.0 { cm_assets / cm_liabilities } else { f64::INFINITY };
        let cm_status = if margin_level <= cp.cross_margin_liquidation {
            LIQUIDATION
        } else if margin_level <= cp.cross_margin_call {
            MARGIN_CALL
        } else {
            NORMAL
        };
        let cross_margin = CrossMargin {
            assets: cm_assets,
            liabilities: cm_liabilities,
            margin_level,
            maintenance_margin: (cp.cross_margin_liquidation - 1.0) * cm_liabilities,
            initial_margin: (cp.cross_margin_call - 1.0) * cm_liabilities,
            status: cm_status,
        };
        status = worse(status, cm_status);

        let isolated = legs.iter().filter(|l| l.pos.isolated_margin.is_some());
        let maintenance_margin = usdm.maintenance_margin
            + coinm.iter().map(|w| w.maintenance_margin).sum::<f64>()
            + isolated.clone().map(|l| l.pos.maintenance_margin).sum::<f64>()
            + cross_margin.maintenance_margin;
        let initial_margin = usdm.initial_margin
            + coinm.iter().map(|w| w.initial_margin).sum::<f64>()
            + isolated.map(|l| l.pos.initial_margin).sum::<f64>()
            + cross_margin.initial_margin;
        let available = usdm.available
            + coinm.iter().map(|w| w.available).sum::<f64>()
            + (cm_assets - cm_liabilities - cross_margin.initial_margin);
        let positions = legs
            .into_iter()
            .zip(liq)
            .map(|(l, p)| ClassicPosition { liquidation_price: p, ..l.pos })
            .collect::<Vec<_>>();
        debug_assert!(positions.windows(2).all(|w| w[0].index < w[1].index));
        Ok(ClassicResult {
            mode,
            equity,
            maintenance_margin,
            initial_margin,
            available,
            status,
            usdm,
            coinm,
            cross_margin,
            positions,
        })
    }

    fn futures_wallet(&self, name: String, balance: f64, upnl: f64, mm: f64, im: f64) -> FuturesWallet {
        let margin_balance = balance + upnl;
        let margin_ratio = if mm <= 0.0 {
            0.0
        } else if margin_balance <= 0.0 {
            f64::INFINITY
        } else {
            mm / margin_balance
        };
        let status = if margin_ratio >= 1.0 {
            LIQUIDATION
        } else if margin_ratio >= self.params().classic.futures_margin_call {
            MARGIN_CALL
        } else {
            NORMAL
        };
        FuturesWallet {
            name,
            balance,
            upnl,
            margin_balance,
            maintenance_margin: mm,
            initial_margin: im,
            available: margin_balance - im,
            margin_ratio,
            status,
        }
    }
}

/// Mark at which a linear position of signed size `q`, entry `e`, settle
/// price `ps` (USD) and margin `m` (USD: isolated margin, or the rest of its
/// cross wallet net of the other positions' MM) meets its maintenance margin,
/// in the margin asset: `m/ps + q·(M − e) = |q|·M·mmr_k − cum_k`, solved per
/// bracket and kept where the notional `|q|·M` falls in that bracket. `None`
/// when no mark > 0 liquidates it.
pub fn linear_liquidation_price(brackets: &[Bracket], q: f64, e: f64, ps: f64, m: f64) -> Option<f64> {
    if q == 0.0 {
        return None;
    }
    let mut lo = 0.0;
    for (k, b) in brackets.iter().enumerate() {
        if k > 0 {
            lo = brackets[k - 1].up_to;
        }
        let mark = (q * e - m / ps - b.cum) / (q - q.abs() * b.mmr);
        let notional = q.abs() * mark;
        // MM is continuous in the notional: a root on a cap belongs to both brackets.
        let tol = 1e-9 * notional.max(1.0);
        if mark > 0.0 && notional >= lo - tol && notional <= b.up_to + tol {
            return Some(mark);
        }
    }
    None
}

/// Mark at which inverse contracts of signed USD size `n` (contracts ·
/// contract size), entry `e`, meet their maintenance margin, with `w` coin of
/// margin besides their own UPnL (isolated margin, or the rest of the coin
/// wallet net of the other positions' MM). In coin, with `q = |n| / M` on the
/// coin brackets: `w + n/e − n/M = |n|·mmr_k/M − cum_k`, so
/// `M = (n + |n|·mmr_k) / (w + cum_k + n/e)`, kept where `q` falls in bracket
/// `k` (Binance's COIN-M formula). `None` when no mark > 0 liquidates them.
pub fn inverse_liquidation_price(brackets: &[Bracket], n: f64, e: f64, w: f64) -> Option<f64> {
    if n == 0.0 {
        return None;
    }
    let mut lo = 0.0;
    for (k, b) in brackets.iter().enumerate() {
        if k > 0 {
            lo = brackets[k - 1].up_to;
        }
        let mark = (n + n.abs() * b.mmr) / (w + b.cum + n / e);
        let q = n.abs() / mark;
        // MM is continuous in q: a root on a cap belongs to both brackets.
        let tol = 1e-9 * q.max(1.0);
        if mark > 0.0 && mark.is_finite() && q >= lo - tol && q <= b.up_to + tol {
            return Some(mark);
        }
    }
    None
}

fn num(x: f64) -> Value {
    crate::result::finite_or_null(x)
}

impl FuturesWallet {
    pub fn to_value(&self) -> Value {
        json!({"name": self.name, "balance": self.balance, "upnl": self.upnl, "margin_balance": self.margin_balance,
               "maintenance_margin": self.maintenance_margin, "initial_margin": self.initial_margin,
               "available": self.available, "margin_ratio": num(self.margin_ratio), "status": self.status})
    }
}

impl ClassicResult {
    /// The result as JSON (non-finite ratios as `null`).
    pub fn to_value(&self) -> Value {
        let cm = &self.cross_margin;
        let positions: Vec<Value> = self
            .positions
            .iter()
            .map(|p| {
                json!({"index": p.index, "symbol": p.symbol, "wallet": p.wallet, "notional": p.notional,
                       "mmr": p.mmr, "cum": p.cum, "maintenance_margin": p.maintenance_margin,
                       "initial_margin": p.initial_margin, "leverage": p.leverage, "max_leverage": p.max_leverage,
                       "upnl": p.upnl, "isolated_margin": p.isolated_margin,
                       "liquidation_price": p.liquidation_price, "status": p.status,
                       "margin_ratio": p.margin_ratio.map(num)})
            })
            .collect();
        json!({
            "mode": self.mode.name(),
            "equity": self.equity,
            "maintenance_margin": self.maintenance_margin,
            "initial_margin": self.initial_margin,
            "available": self.available,
            "status": self.status,
            "usdm": self.usdm.to_value(),
            "coinm": self.coinm.iter().map(FuturesWallet::to_value).collect::<Vec<_>>(),
            "cross_margin": {"assets": cm.assets, "liabilities": cm.liabilities,
                             "margin_level": num(cm.margin_level), "maintenance_margin": cm.maintenance_margin,
                             "initial_margin": cm.initial_margin, "status": cm.status},
            "positions": positions,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> Vec<Bracket> {
        let p = crate::params::RiskParams::default_profile();
        p.brackets.for_symbol(BracketKind::Usdm, "default").unwrap().to_vec()
    }

    #[test]
    fn cum_makes_mm_continuous_at_every_cap() {
        let t = table();
        // cum by hand: 0; 300k·0.001 = 300; +800k·0.0015 = 1,500; +3M·0.0035 = 12,000;
        // +12M·0.01 = 132,000; +70M·0.005 = 482,000.
        let cums: Vec<f64> = [1.0, 500e3, 1e6, 5e6, 20e6, 100e6].iter().map(|&n| bracket(&t, n).1).collect();
        for (got, want) in cums.iter().zip([0.0, 300.0, 1_500.0, 12_000.0, 132_000.0, 482_000.0]) {
            assert!((got - want).abs() <= 1e-9 * want, "{got} != {want}");
        }
        for b in &t[..t.len() - 1] {
            let (below, above) = (maintenance(&t, b.up_to), maintenance(&t, b.up_to * (1.0 + 1e-12)));
            assert!((below - above).abs() <= 1e-6 * below, "cap {}: {below} vs {above}", b.up_to);
        }
        assert_eq!(maintenance(&t, 100_000.0), 400.0);
        assert!((maintenance(&t, 1_000_000.0) - (6_500.0 - 1_500.0)).abs() < 1e-9);
    }

    #[test]
    fn linear_liquidation_long_and_short() {
        let t = table();
        // Long 1 BTC at 60,000, 3,000 USD of margin: 3000 + (M − 60000) = 0.004·M → M = 57000 / 0.996.
        let long = linear_liquidation_price(&t, 1.0, 60_000.0, 1.0, 3_000.0).unwrap();
        assert!((long - 57_000.0 / 0.996).abs() < 1e-9);
        // Short: 3000 − (M − 60000) = 0.004·M → M = 63000 / 1.004.
        let short = linear_liquidation_price(&t, -1.0, 60_000.0, 1.0, 3_000.0).unwrap();
        assert!((short - 63_000.0 / 1.004).abs() < 1e-9);
        // A fully funded long is never liquidated.
        assert_eq!(linear_liquidation_price(&t, 1.0, 60_000.0, 1.0, 60_000.0), None);
        // A large short crosses a cap: the root lies in the bracket its notional lands in.
        let big = linear_liquidation_price(&t, -10.0, 60_000.0, 1.0, 50_000.0).unwrap();
        let n = 10.0 * big;
        assert!((50_000.0 - 10.0 * (big - 60_000.0) - maintenance(&t, n)).abs() < 1e-6);
    }

    #[test]
    fn inverse_liquidation() {
        let p = crate::params::RiskParams::default_profile();
        let t = p.brackets.for_symbol(BracketKind::Coinm, "BTCUSD_PERP").unwrap();
        // Binance's calculator: a cross long of 100,000 BTCUSD contracts (100 USD)
        // at 45,000 with a 101 BTC wallet liquidates at 33,599.40, the price on
        // BTCUSD's 0.1 tick: 1.125e7 / (101 + 11.605 + 1e7/45,000) = 33,599.4186 (bracket 7).
        let m = inverse_liquidation_price(t, 10_000_000.0, 45_000.0, 101.0).unwrap();
        assert_eq!((m * 10.0).floor() / 10.0, 33_599.4, "{m}");
        // At that mark the coin cushion equals the coin MM.
        let q = 10_000_000.0 / m;
        assert!((101.0 + 10_000_000.0 * (1.0 / 45_000.0 - 1.0 / m) - maintenance(t, q)).abs() < 1e-9);
        // A 1x short hedged by its coin (w = n/e) is never liquidated.
        assert_eq!(inverse_liquidation_price(t, -60_000.0, 60_000.0, 1.0), None);
    }
}
