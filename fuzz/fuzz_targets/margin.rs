//! A portfolio and a market from the input (`portfolio JSON \0 market JSON`),
//! margined on the default profile under both models: an error, or figures
//! that keep the engine's promises (finite, MM ≥ 0, IM = factor × MM, uniMMR =
//! adjusted equity / MM, the status the ladder gives), never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pmengine_core::params::{toml_value, DEFAULT_PROFILE_TOML};
use pmengine_core::{Engine, Market, Model, Portfolio, RiskParams};
use std::sync::OnceLock;

fn engines() -> &'static [Engine; 2] {
    static E: OnceLock<[Engine; 2]> = OnceLock::new();
    E.get_or_init(|| {
        let v = toml_value(DEFAULT_PROFILE_TOML).expect("the default profile");
        let scenario = RiskParams::from_value(&v).expect("compiles");
        let mut binance = v.clone();
        binance["model"] = "binance_pm".into();
        let binance = RiskParams::from_value(&binance).expect("compiles");
        [Engine::new(scenario), Engine::new(binance)]
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (p, m) = text.split_once('\0').unwrap_or((text, r#"{"time": "2026-11-24T00:00:00Z", "prices": {"BTC": 60000, "ETH": 3000, "USDT": 1, "USDC": 1}, "vols": {"BTC": 0.5, "ETH": 0.6}}"#));
    let (Ok(portfolio), Ok(market)) = (Portfolio::from_json_str(p), Market::from_json_str(m)) else { return };
    for engine in engines() {
        let Ok(r) = engine.margin(&portfolio, &market) else { continue };
        let figures = [r.equity, r.adjusted_equity, r.maintenance_margin, r.initial_margin, r.available];
        assert!(figures.iter().all(|x| x.is_finite()), "{r:?}");
        assert!(r.maintenance_margin >= 0.0);
        assert!(!r.uni_mmr.is_nan());
        if engine.params().model == Model::Scenario {
            assert_eq!(r.initial_margin, engine.params().im_factor * r.maintenance_margin);
        }
        if r.maintenance_margin > 0.0 {
            assert_eq!(r.uni_mmr, r.adjusted_equity / r.maintenance_margin);
        }
        if !r.status.is_bankrupt() {
            assert_eq!(r.status, engine.params().status_for(r.uni_mmr));
        }
        // The same inputs, the same figures.
        let again = engine.margin(&portfolio, &market).expect("accepted once");
        assert_eq!(format!("{again:?}"), format!("{r:?}"));
        let _ = engine.classic(&portfolio, &market, pmengine_core::ClassicMode::AsGiven);
        let _ = engine.greeks(&portfolio, &market);
    }
});
