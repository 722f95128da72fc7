//! A batch scan of a linear book (like `benches/batch.py`'s 100k × 20) to time
//! and profile without Python:
//! `cargo build --profile profiling --example profile_batch`, then
//! `perf record -g target/profiling/examples/profile_batch [accounts] [repeat] [threads]`
//! (`PM_COLUMNAR=0`: without the columnar path).
use pmengine_core::batch::{BalanceColumns, BatchOptions, PositionColumns, Strings};
use pmengine_core::{Engine, Market, RiskParams};
use std::time::Instant;

/// A small deterministic generator (xorshift), so the book is the same every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn main() {
    let arg = |i: usize, d: usize| std::env::args().nth(i).and_then(|a| a.parse().ok()).unwrap_or(d);
    let (accounts, repeat, threads) = (arg(1, 100_000), arg(2, 10), arg(3, 1));
    let per = 20;
    let engine = Engine::new(std::env::var("PM_PROFILE").map_or_else(
        |_| RiskParams::default_profile(),
        |path| RiskParams::from_toml_str(&std::fs::read_to_string(path).unwrap()).unwrap(),
    ));
    let mut market = Market::new(1_795_478_400.0);
    let prices = [("BTC", 60000.0), ("ETH", 3000.0), ("SOL", 150.0), ("BNB", 600.0), ("USDT", 1.0)];
    for (a, p) in prices {
        market.set_price(a, p).unwrap();
    }
    let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<String>>();
    let types = names(&["linear"]);
    let symbols = names(&["BTCUSDT", "ETHUSDT", "SOLUSDT", "BNBUSDT", "BTCUSDT_261225"]);
    let underlyings = names(&["BTC", "ETH", "SOL", "BNB"]);
    let assets = names(&["BTC", "ETH", "SOL", "BNB", "USDT"]);
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let rows = accounts * per;
    let (mut account, mut type_code, mut symbol, mut underlying) = (vec![], vec![], vec![], vec![]);
    let (mut qty, mut entry) = (vec![], vec![]);
    for a in 0..accounts {
        for _ in 0..per {
            let x = rng.next();
            let u = if x < 0.45 {
                0
            } else if x < 0.75 {
                1
            } else if x < 0.9 {
                2
            } else {
                3
            };
            let s = if u == 0 && rng.next() < 0.2 { 4 } else { u };
            let p = prices[u as usize].1;
            let notional = 20_000.0 * (rng.next() * 2.0).exp();
            let sign = if rng.next() < 0.5 { -1.0 } else { 1.0 };
            account.push(a as i64);
            type_code.push(0);
            symbol.push(s);
            underlying.push(u);
            qty.push(sign * notional / p);
            entry.push(p * (0.9 + 0.2 * rng.next()));
        }
    }
    let (mut b_account, mut b_asset, mut b_qty) = (vec![], vec![], vec![]);
    for a in 0..accounts {
        b_account.push(a as i64);
        b_asset.push(4);
        b_qty.push(50_000.0 * rng.next());
        if rng.next() < 0.5 {
            b_account.push(a as i64);
            b_asset.push((rng.next() * 4.0) as i32);
            b_qty.push(rng.next());
        }
    }
    let positions = PositionColumns {
        account: &account,
        kind_of_instrument: Strings { codes: &type_code, values: &types },
        symbol: Strings { codes: &symbol, values: &symbols },
        underlying: Strings { codes: &underlying, values: &underlyings },
        settle: None,
        qty: &qty,
        entry_price: Some(&entry),
        contract_size: None,
        strike: None,
        expiry: None,
        option_kind: None,
        leverage: None,
    };
    let balances = BalanceColumns {
        account: &b_account,
        asset: Strings { codes: &b_asset, values: &assets },
        qty: &b_qty,
        borrowed: None,
        interest: None,
    };
    // PM_COLUMNAR=0: every account on the per-account path, to compare the two.
    let columnar = std::env::var("PM_COLUMNAR").map_or(true, |v| v != "0");
    let options = BatchOptions { threads, columnar, ..Default::default() };
    let mut best = f64::INFINITY;
    let mut sink = 0.0;
    for _ in 0..repeat {
        let t = Instant::now();
        let r = engine.margin_batch(&positions, &balances, &market, &options).unwrap();
        best = best.min(t.elapsed().as_secs_f64());
        sink += r.maintenance_margin.iter().sum::<f64>();
    }
    println!(
        "{accounts} accounts × {per} positions ({rows} rows), {threads} thread(s): best {:.1} ms, {:.2} M accounts/s ({sink:.3e})",
        best * 1e3,
        accounts as f64 / best / 1e6
    );
}
