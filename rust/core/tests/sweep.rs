//! `Engine::sweep`: every row is `Engine::margin` on the moved market, bit for
//! bit, under both models, whatever the thread count; bad moves are refused.

use pmengine_core::{Engine, Market, Moves, Portfolio, RiskParams, SweepResult};

struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn market() -> Market {
    Market::from_json_str(
        r#"{"time": "2026-11-24T00:00:00Z",
            "prices": {"BTC": 60000, "ETH": 3000, "SOL": 150, "USDT": 1, "USDC": 0.9995},
            "marks": {"BTCUSDT": 60030, "ETHUSDC": 3001.5, "BTCUSD_PERP": 60025, "SOLUSDT": 149.9},
            "vols": {"BTC": 0.5, "ETH": 0.6, "BTC-C-65000": 0.55}}"#,
    )
    .unwrap()
}

/// Spot, a loan, linear contracts in two settle assets (one symbol held twice),
/// an inverse contract, one without a mark; options (one series held twice) when `options`.
fn portfolio(options: bool) -> Portfolio {
    let opts = r#",
        {"type": "option", "symbol": "BTC-C-65000", "underlying": "BTC", "kind": "call", "strike": 65000, "expiry": "2026-12-25T08:00:00Z", "qty": -2},
        {"type": "option", "symbol": "ETH-P-2800", "underlying": "ETH", "kind": "put", "strike": 2800, "expiry": "2027-03-26T08:00:00Z", "qty": 5},
        {"type": "option", "symbol": "BTC-C-65000", "underlying": "BTC", "kind": "call", "strike": 65000, "expiry": "2026-12-25T08:00:00Z", "qty": 0.5}"#;
    Portfolio::from_json_str(&format!(
        r#"{{"balances": {{"BTC": 1.5, "ETH": 10, "USDT": 20000, "USDC": 5000}},
             "loans": {{"USDT": {{"borrowed": 3000, "interest": 2}}}},
             "positions": [
        {{"type": "linear", "symbol": "BTCUSDT", "underlying": "BTC", "qty": -1.2, "entry_price": 59000}},
        {{"type": "linear", "symbol": "ETHUSDC", "underlying": "ETH", "settle": "USDC", "qty": 4, "entry_price": 3100}},
        {{"type": "inverse", "symbol": "BTCUSD_PERP", "underlying": "BTC", "contract_size": 100, "contracts": -150, "entry_price": 61000}},
        {{"type": "linear", "symbol": "SOLUSDT", "underlying": "SOL", "qty": 300, "entry_price": 140}},
        {{"type": "linear", "symbol": "SOLUSDT_Q", "underlying": "SOL", "qty": -100, "entry_price": 155}},
        {{"type": "linear", "symbol": "BTCUSDT", "underlying": "BTC", "qty": 0.3, "entry_price": 61000}}{}]}}"#,
        if options { opts } else { "" }
    ))
    .unwrap()
}

fn binance_params() -> RiskParams {
    let mut t: toml::Table = toml::from_str(pmengine_core::params::DEFAULT_PROFILE_TOML).unwrap();
    t.insert("model".into(), "binance_pm".into());
    RiskParams::from_toml_str(&toml::to_string(&t).unwrap()).unwrap()
}

/// The market `pmengine.risk.moved_market` gives: prices times `1 + r`, the
/// portfolio's marks with their quote, every vol times `1 + v`.
fn moved(market: &Market, portfolio: &Portfolio, assets: &[String], r: &[f64], v: Option<f64>) -> Market {
    let mut m = market.clone();
    let f = |a: &str| assets.iter().position(|x| x == a).map_or(1.0, |j| 1.0 + r[j]);
    for (j, a) in assets.iter().enumerate() {
        m.set_price(a, market.prices[a] * (1.0 + r[j])).unwrap();
    }
    let mut done: Vec<&str> = Vec::new();
    for p in &portfolio.positions {
        let s = p.symbol();
        let option = matches!(p, pmengine_core::Position::Option { .. });
        if option || done.contains(&s) || !market.marks.contains_key(s) {
            continue;
        }
        done.push(s);
        let inverse = matches!(p, pmengine_core::Position::Inverse { .. });
        let factor = if inverse { f(p.underlying()) } else { f(p.underlying()) / f(p.settle()) };
        m.set_mark(s, market.marks[s] * factor).unwrap();
    }
    if let Some(v) = v {
        for (k, vol) in &market.vols {
            m.set_vol(k, vol * (1.0 + v)).unwrap();
        }
    }
    m
}

fn scenarios(n: usize, m: usize, seed: u64) -> Vec<f64> {
    let mut rnd = Lcg(seed);
    (0..n * m).map(|_| 0.6 * rnd.next() - 0.3).collect()
}

fn check_rows(
    engine: &Engine,
    p: &Portfolio,
    assets: &[String],
    returns: &[f64],
    vols: Option<&[f64]>,
    out: &SweepResult,
) {
    let m = assets.len();
    let market = market();
    for k in 0..out.equity.len() {
        let mm = moved(&market, p, assets, &returns[k * m..(k + 1) * m], vols.map(|v| v[k]));
        let want = engine.margin(p, &mm).unwrap();
        let got = [
            out.equity[k],
            out.adjusted_equity[k],
            out.maintenance_margin[k],
            out.initial_margin[k],
            out.available[k],
            out.uni_mmr[k],
        ];
        let exp = [
            want.equity,
            want.adjusted_equity,
            want.maintenance_margin,
            want.initial_margin,
            want.available,
            want.uni_mmr,
        ];
        for (g, w) in got.iter().zip(exp) {
            assert_eq!(g.to_bits(), w.to_bits(), "scenario {k}: {got:?} != {exp:?}");
        }
        assert_eq!(out.status_names[out.status[k] as usize], engine.params().status_name(want.status), "scenario {k}");
    }
}

fn names(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn rows_are_the_margin_of_the_moved_market() {
    for (params, options) in
        [(RiskParams::default_profile(), true), (RiskParams::default_profile(), false), (binance_params(), false)]
    {
        let engine = Engine::new(params);
        let p = portfolio(options);
        // Columns in any order, one the account does not hold (SOL is held, WBTC is not priced: left out).
        let assets = names(&["ETH", "USDC", "BTC", "SOL", "USDT"]);
        let n = 40;
        let returns = scenarios(n, assets.len(), 3);
        let vols: Vec<f64> = scenarios(n, 1, 5);
        for vol_shifts in [None, Some(vols.as_slice())] {
            let moves = Moves { scenarios: n, assets: &assets, returns: &returns, vol_shifts };
            let out = engine.sweep(&p, &market(), &moves, 1).unwrap();
            assert_eq!(out.equity.len(), n);
            check_rows(&engine, &p, &assets, &returns, vol_shifts, &out);
        }
    }
}

#[test]
fn any_thread_count_gives_the_same_bits() {
    for (params, options) in [(RiskParams::default_profile(), true), (binance_params(), false)] {
        let engine = Engine::new(params);
        let p = portfolio(options);
        let assets = names(&["BTC", "ETH", "SOL"]);
        let n = 3000; // several chunks
        let returns = scenarios(n, assets.len(), 9);
        let moves = Moves { scenarios: n, assets: &assets, returns: &returns, vol_shifts: None };
        let one = engine.sweep(&p, &market(), &moves, 1).unwrap();
        for threads in [2, 3, 0] {
            assert_eq!(engine.sweep(&p, &market(), &moves, threads).unwrap(), one, "threads={threads}");
        }
        let sample: Vec<usize> = (0..n).step_by(97).collect();
        for k in sample {
            let sub = Moves { scenarios: 1, assets: &assets, returns: &returns[3 * k..3 * k + 3], vol_shifts: None };
            let row = engine.sweep(&p, &market(), &sub, 1).unwrap();
            assert_eq!(row.maintenance_margin[0].to_bits(), one.maintenance_margin[k].to_bits());
        }
    }
}

#[test]
fn no_move_is_the_margin_itself_and_no_scenario_is_empty() {
    let engine = Engine::new(RiskParams::default_profile());
    let p = portfolio(true);
    let assets = names(&["BTC"]);
    let out = engine
        .sweep(&p, &market(), &Moves { scenarios: 2, assets: &assets, returns: &[0.0, 0.0], vol_shifts: None }, 0)
        .unwrap();
    let r = engine.margin(&p, &market()).unwrap();
    assert_eq!(out.maintenance_margin, vec![r.maintenance_margin; 2]);
    let none = engine
        .sweep(&p, &market(), &Moves { scenarios: 0, assets: &assets, returns: &[], vol_shifts: None }, 0)
        .unwrap();
    assert!(none.equity.is_empty());
    // Vol shifts alone, no price column.
    let out = engine
        .sweep(&p, &market(), &Moves { scenarios: 1, assets: &[], returns: &[], vol_shifts: Some(&[0.5]) }, 0)
        .unwrap();
    check_rows(&engine, &p, &[], &[], Some(&[0.5]), &out);
    assert_eq!(out.status_names.last().map(String::as_str), Some("BANKRUPT"));
}

#[test]
fn bad_moves_are_refused_naming_them() {
    let engine = Engine::new(RiskParams::default_profile());
    let p = portfolio(true);
    let err = |assets: &[&str], returns: &[f64], n: usize, vols: Option<&[f64]>| {
        let assets = names(assets);
        let moves = Moves { scenarios: n, assets: &assets, returns, vol_shifts: vols };
        engine.sweep(&p, &market(), &moves, 1).unwrap_err().to_string()
    };
    assert!(err(&["BTC"], &[0.1, -1.0], 2, None).contains("moves[1, 0]"));
    assert!(err(&["BTC"], &[f64::NAN], 1, None).contains("moves[0, 0]"));
    assert!(err(&["BTC", "ETH"], &[0.1, 0.2, 0.3], 2, None).contains("moves"));
    assert!(err(&["PEPE"], &[0.1], 1, None).contains("assets[0]"));
    assert!(err(&["BTC", "BTC"], &[0.1, 0.1], 1, None).contains("assets[1]"));
    assert!(err(&["BTC"], &[0.1], 1, Some(&[-1.0])).contains("vol_shifts[0]"));
    assert!(err(&["BTC"], &[0.1], 1, Some(&[30.0])).contains("vol_shifts[0]"));
    assert!(err(&["BTC"], &[0.1], 1, Some(&[0.1, 0.2])).contains("vol_shifts"));
    // A linear mark in USDC moves by 1/(1 + r_USDC): a tiny USDC price takes it past 1e15.
    assert!(err(&["USDC"], &[-1.0 + 1e-14], 1, None).contains("mark of ETHUSDC"));
}
