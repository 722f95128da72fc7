//! A warm what-if loop on a 48-contract linear account (the latency
//! benchmark's) to profile: `cargo build --profile profiling --example profile_whatif`,
//! then `valgrind --tool=callgrind target/profiling/examples/profile_whatif [n] [binance|vary]`
//! (`vary`: each order a different size, so the order's group is re-scanned every time).
use pmengine_core::portfolio::parse_position;
use pmengine_core::{Engine, LiveAccount, Market, Order, Portfolio, RiskParams};
use std::sync::Arc;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let mut params = RiskParams::default_profile();
    if args.get(2).is_some_and(|a| a == "binance") {
        params.model = pmengine_core::params::Model::BinancePm;
    }
    let mut m = Market::new(1_795_478_400.0);
    let prices = [("BTC", 60_000.0), ("ETH", 3_000.0), ("SOL", 150.0)];
    for (a, p) in prices.iter().chain(&[("USDT", 1.0)]) {
        m.set_price(a, *p).unwrap();
    }
    let mut p = Portfolio::new();
    p.add_balance("USDT", 2e5).unwrap();
    p.add_balance("BTC", 1.0).unwrap();
    // A fixed mix like the latency benchmark's: 48 contracts on three coins, six symbols each.
    for i in 0..48 {
        let (coin, price) = prices[(i * 7 + i / 5) % 3];
        let qty = ((i * 37 % 61) as f64 / 10.0) - 3.0;
        let v = serde_json::json!({"type": "linear", "symbol": format!("{coin}USDT{}", i % 6), "underlying": coin,
                                   "qty": qty, "entry_price": price * (0.95 + 0.1 * ((i * 13 % 17) as f64 / 17.0))});
        p.positions.push(parse_position(&v, "p").unwrap());
    }
    let symbol = p.positions[0].symbol().to_string();
    let mut live = LiveAccount::new(Arc::new(Engine::new(params)), p, m).unwrap();
    let vary = args.get(2).is_some_and(|a| a == "vary");
    let mut order = Order { symbol, qty: 0.1, price: None, instrument: None };
    live.margin_ref();
    let mut sink = 0.0;
    for i in 0..n {
        if vary {
            order.qty = 0.1 + (i % 7) as f64 * 0.01;
        }
        sink += live.what_if(&order).unwrap().maintenance_margin;
    }
    println!("{sink}");
}
