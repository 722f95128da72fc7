//! A warm option tick loop on a 20-option live account (the latency
//! benchmark's shape: ten series on BTC, ten on ETH, calls and puts, strikes
//! 0.8–1.2 of the index) to profile: `cargo build --profile profiling --example profile_tick`,
//! then `valgrind --tool=callgrind target/profiling/examples/profile_tick [n]`
//! (each call one `update_price` of BTC: ten series repriced on the group's grid).
//! `profile_tick [n] time` times each tick instead and prints the 10th, 50th and
//! 90th percentiles in ns (a low percentile of single ticks is the figure that
//! a shared machine's load disturbs least).
use pmengine_core::{Engine, LiveAccount, Market, OptionKind, Portfolio, Position, RiskParams};
use std::sync::Arc;
use std::time::Instant;

fn main() {
    let n: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let mut m = Market::new(1_795_478_400.0); // 2026-11-24T00:00:00Z
    for (a, p) in [("BTC", 60_000.0), ("ETH", 3_000.0), ("USDT", 1.0)] {
        m.set_price(a, p).unwrap();
    }
    m.set_vol("BTC", 0.5).unwrap();
    m.set_vol("ETH", 0.6).unwrap();
    let mut p = Portfolio::new();
    p.add_balance("USDT", 2e5).unwrap();
    for i in 0..20 {
        let (u, price) = if i % 2 == 0 { ("BTC", 60_000.0) } else { ("ETH", 3_000.0) };
        let strike = (price * (0.8 + 0.4 * ((i * 7 % 20) as f64 / 19.0))).round();
        p.add_position(Position::Option {
            symbol: format!("{u}-{i}-{strike}"),
            underlying: u.into(),
            settle: "USDT".into(),
            kind: if i % 4 < 2 { OptionKind::Call } else { OptionKind::Put },
            strike,
            expiry: 1_798_185_600.0, // 2026-12-25T08:00:00Z
            qty: ((i * 37 % 101) as f64 / 10.0) - 5.0,
        })
        .unwrap();
    }
    let mut live = LiveAccount::new(Arc::new(Engine::new(RiskParams::default_profile())), p, m).unwrap();
    live.margin_ref();
    if std::env::args().nth(2).as_deref() == Some("time") {
        let mut ns: Vec<u128> = (0..n)
            .map(|i| {
                let t = Instant::now();
                live.update_price("BTC", 60_000.0 + (i % 97) as f64).unwrap();
                t.elapsed().as_nanos()
            })
            .collect();
        ns.sort_unstable();
        let at = |q: usize| ns[(n * q / 100).min(n - 1)];
        eprintln!("p10 {} p50 {} p90 {} ns", at(10), at(50), at(90));
    } else {
        for i in 0..n {
            live.update_price("BTC", 60_000.0 + (i % 97) as f64).unwrap();
        }
    }
    println!("{}", live.margin_ref().maintenance_margin);
}
