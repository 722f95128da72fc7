//! Time `Engine::book` and `Engine::evaluate` on a 50-position account:
//! `cargo run --release --example profile_margin`.
use pmengine_core::{ClassicTerms, Engine, Market, Portfolio, Position, RiskParams};
use std::time::Instant;

fn main() {
    let engine = Engine::new(RiskParams::default_profile());
    let mut m = Market::new(1_795_478_400.0);
    let px = [("BTC", 60000.0), ("ETH", 3000.0), ("SOL", 150.0), ("USDT", 1.0)];
    for (a, p) in px {
        m.set_price(a, p).unwrap();
    }
    let mut p = Portfolio::new();
    for (a, _) in &px[..3] {
        p.add_balance(a, 2.0).unwrap();
    }
    p.add_balance("USDT", -50000.0).unwrap();
    let mut seed = 12345u64;
    let mut rnd = || {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (seed >> 11) as f64 / (1u64 << 53) as f64
    };
    for i in 0..47 {
        let (u, price) = px[i % 3];
        let pos = if rnd() < 0.7 {
            Position::Linear {
                symbol: format!("{u}USDT{}", i % 5),
                underlying: u.into(),
                settle: "USDT".into(),
                qty: rnd() * 20.0 - 10.0,
                entry_price: price * (0.9 + 0.2 * rnd()),
                classic: ClassicTerms::default(),
            }
        } else {
            Position::Inverse {
                symbol: format!("{u}USD_{}", i % 3),
                underlying: u.into(),
                contract_size: 100.0,
                contracts: rnd() * 1000.0 - 500.0,
                entry_price: price * (0.9 + 0.2 * rnd()),
                classic: ClassicTerms::default(),
            }
        };
        p.add_position(pos).unwrap();
    }
    let n = 200_000;
    let t = Instant::now();
    let mut sink = 0.0;
    for _ in 0..n {
        sink += engine.book(&p, &m).unwrap().groups.len() as f64;
    }
    let book_ns = t.elapsed().as_nanos() as f64 / n as f64;
    let book = engine.book(&p, &m).unwrap();
    let t = Instant::now();
    for _ in 0..n {
        sink += engine.evaluate(&book).maintenance_margin;
    }
    let eval_ns = t.elapsed().as_nanos() as f64 / n as f64;
    println!("book {book_ns:.0} ns, evaluate {eval_ns:.0} ns ({sink:.0})");
}
