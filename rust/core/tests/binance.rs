//! `binance_pm` (docs/BINANCE.md): Binance's published worked example figure
//! by figure, and the live account equal to a rebuild under it.

use pmengine_core::{Engine, LiveAccount, Market, Order, Portfolio, RiskParams};
use std::sync::Arc;

/// The default profile under `binance_pm`, every bracket replaced by `brackets` (TOML).
fn profile(brackets: &str) -> RiskParams {
    let mut t: toml::Table = toml::from_str(pmengine_core::params::DEFAULT_PROFILE_TOML).unwrap();
    t.insert("model".into(), "binance_pm".into());
    t.insert("brackets".into(), toml::from_str::<toml::Table>(brackets).unwrap().into());
    RiskParams::from_toml_str(&toml::to_string(&t).unwrap()).unwrap()
}

fn flat_half_percent() -> RiskParams {
    profile(
        "usdm.default = [{ mmr = 0.005, max_leverage = 125 }]\n\
         coinm.default = [{ mmr = 0.005, max_leverage = 125 }]",
    )
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * b.abs().max(1e-6)
}

fn tv1() -> (Portfolio, Market) {
    let p = Portfolio::from_json_str(
        r#"{"balances": {"USDT": 6000, "BTC": 0.2, "ETH": 20},
            "loans": {"BTC": {"borrowed": 0.04}, "ETH": {"borrowed": 15}},
            "positions": [
              {"type": "linear", "symbol": "BTCUSDT", "underlying": "BTC", "qty": -0.05, "entry_price": 52000},
              {"type": "linear", "symbol": "BTCUSDT_20220624", "underlying": "BTC", "qty": 0.04, "entry_price": 52350},
              {"type": "inverse", "symbol": "BTCUSD_PERP", "underlying": "BTC", "contract_size": 100,
               "contracts": 100, "entry_price": 50000}]}"#,
    )
    .unwrap();
    let m = Market::from_json_str(
        r#"{"time": "2022-05-01T00:00:00Z", "prices": {"USDT": 1, "BTC": 40000, "ETH": 3000},
            "marks": {"BTCUSDT": 40000, "BTCUSDT_20220624": 42000, "BTCUSD_PERP": 40000}}"#,
    )
    .unwrap();
    (p, m)
}

#[test]
fn binance_worked_example_tv1() {
    let engine = Engine::new(flat_half_percent());
    let (p, m) = tv1();
    let r = engine.margin(&p, &m).unwrap();
    let pos: Vec<(f64, f64)> = r.positions.iter().map(|x| (x.upnl, x.maintenance_margin)).collect();
    // Published: UPnL +600 and −414 USDT; derived: CM UPnL −0.05 BTC, MM 10, 8.4 USDT and 0.00125 BTC.
    for (got, want) in pos.iter().zip([(600.0, 10.0), (-414.0, 8.4), (-0.05, 0.00125)]) {
        assert!(close(got.0, want.0) && close(got.1, want.1), "{got:?} != {want:?}");
    }
    let names = r.names.as_deref().unwrap();
    let asset = |name: &str| r.assets.iter().find(|a| names.asset(a.asset) == name).unwrap();
    // v: USDT 6,186, BTC 0.11, ETH 5; MM per asset USDT 18.4, BTC 0.00525, ETH 1.5; loan MM 0.004 BTC, 1.5 ETH.
    for (name, v, mm, loan_mm) in [("USDT", 6186.0, 18.4, 0.0), ("BTC", 0.11, 0.00525, 0.004), ("ETH", 5.0, 1.5, 1.5)] {
        let a = asset(name);
        assert!(close(a.v, v) && close(a.maintenance_margin, mm) && close(a.loan_margin, loan_mm), "{name}: {a:?}");
    }
    let mm_usd = 18.4 + 0.00525 * 40000.0 + 1.5 * 3000.0;
    assert!(close(r.maintenance_margin, mm_usd), "{}", r.maintenance_margin);
    assert!(close(r.equity, 6186.0 + 0.11 * 40000.0 + 5.0 * 3000.0));
    assert!(close(r.uni_mmr, r.adjusted_equity / r.maintenance_margin));
    assert_eq!(r.to_value(engine.params())["model"], "binance_pm");
}

#[test]
fn options_are_refused_under_binance_pm() {
    let engine = Engine::new(flat_half_percent());
    let p = Portfolio::from_json_str(
        r#"{"balances": {"USDT": 1000}, "positions": [{"type": "option", "symbol": "BTC-C", "underlying": "BTC",
            "kind": "call", "strike": 60000, "expiry": "2030-01-01T00:00:00Z", "qty": 1}]}"#,
    )
    .unwrap();
    let m = Market::from_json_str(
        r#"{"time": "2026-01-01T00:00:00Z", "prices": {"USDT": 1, "BTC": 60000},
        "vols": {"BTC": 0.5}}"#,
    )
    .unwrap();
    let e = engine.margin(&p, &m).unwrap_err();
    assert_eq!(e.field(), "positions[0].type");
}

#[test]
fn an_asset_without_a_collateral_rate_is_named() {
    let engine = Engine::new(flat_half_percent());
    let p = Portfolio::from_json_str(r#"{"balances": {"DOGE": 1000}}"#).unwrap();
    let m = Market::from_json_str(r#"{"time": "2026-01-01T00:00:00Z", "prices": {"DOGE": 0.1}}"#).unwrap();
    assert_eq!(engine.margin(&p, &m).unwrap_err().field(), "assets.DOGE.collateral");
}

struct Lcg(u64);
impl Lcg {
    fn f(&mut self) -> f64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Ticks, fills, loans and what-ifs on a `binance_pm` live account: after every
/// operation its margin is bit-for-bit a rebuild's, and a what-if changes nothing.
#[test]
fn live_account_equals_a_rebuild_under_binance_pm() {
    let engine = Arc::new(Engine::new(
        RiskParams::from_toml_str(&{
            let mut t: toml::Table = toml::from_str(pmengine_core::params::DEFAULT_PROFILE_TOML).unwrap();
            t.insert("model".into(), "binance_pm".into());
            toml::to_string(&t).unwrap()
        })
        .unwrap(),
    ));
    for seed in 1..=10u64 {
        let mut rnd = Lcg(seed);
        let (p, m) = tv1();
        let mut live = LiveAccount::new(Arc::clone(&engine), p, m).unwrap();
        for step in 0..80 {
            let op = (rnd.f() * 6.0) as u32;
            let sym = ["BTCUSDT", "BTCUSDT_20220624", "BTCUSD_PERP"][(rnd.f() * 3.0) as usize];
            let size = if sym == "BTCUSD_PERP" { 2000.0 } else { 40.0 };
            let order = Order { symbol: sym.into(), qty: (rnd.f() - 0.5) * size, price: None, instrument: None };
            match op {
                0 => live.update_price("BTC", 40000.0 * (0.8 + 0.4 * rnd.f())).unwrap(),
                1 => live.update_mark(sym, 40000.0 * (0.8 + 0.4 * rnd.f())).unwrap(),
                2 => live.borrow(["USDT", "BTC", "ETH"][(rnd.f() * 3.0) as usize], rnd.f() * 2.0).unwrap(),
                3 => {
                    let loan = live.portfolio().loan("ETH").owed();
                    let _ = live.repay("ETH", loan * rnd.f());
                }
                4 => live.apply_fill(&order).unwrap(),
                _ => {
                    let before = live.margin();
                    let probe = live.what_if(&order).unwrap().clone();
                    assert_eq!(live.margin(), before, "seed {seed} step {step}: what_if changed the account");
                    let mut copy = live.portfolio().clone();
                    let mut applied =
                        LiveAccount::new(Arc::clone(&engine), copy.clone(), live.market().clone()).unwrap();
                    applied.apply_fill(&order).unwrap();
                    copy = applied.portfolio().clone();
                    let want = engine.margin(&copy, live.market()).unwrap();
                    assert!(close(probe.maintenance_margin, want.maintenance_margin), "seed {seed} step {step}");
                    assert!(close(probe.adjusted_equity, want.adjusted_equity), "seed {seed} step {step}");
                }
            }
            let rebuilt = engine.margin(live.portfolio(), live.market()).unwrap();
            assert_eq!(live.margin(), rebuilt, "seed {seed} step {step} (op {op}): not bit-identical to a rebuild");
        }
    }
}
