//! A warm option-book margin loop to profile (callgrind, perf):
//! `cargo build --profile profiling --example profile_margin`.
use pmengine_core::{Engine, Market, OptionKind, Portfolio, Position, RiskParams};

fn main() {
    let engine = Engine::new(RiskParams::default_profile());
    let mut m = Market::new(1_795_478_400.0);
    for (a, p) in [("BTC", 60000.0), ("ETH", 3000.0), ("USDT", 1.0)] {
        m.set_price(a, p).unwrap();
    }
    m.set_vol("BTC", 0.5).unwrap();
    m.set_vol("ETH", 0.6).unwrap();
    let mut p = Portfolio::new();
    p.add_balance("USDT", 100_000.0).unwrap();
    for i in 0..20 {
        let (u, price) = if i % 2 == 0 { ("BTC", 60000.0) } else { ("ETH", 3000.0) };
        p.add_position(Position::Option {
            symbol: format!("{u}-261225-{i}"),
            underlying: u.into(),
            settle: "USDT".into(),
            kind: if i % 4 < 2 { OptionKind::Call } else { OptionKind::Put },
            strike: price * (0.8 + 0.02 * i as f64),
            expiry: 1_795_478_400.0 + 86400.0 * 30.0,
            qty: (i as f64) - 9.5,
        })
        .unwrap();
    }
    let n: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let mut sink = 0.0;
    for _ in 0..n {
        sink += engine.margin(&p, &m).unwrap().maintenance_margin;
    }
    println!("{sink}");
}
