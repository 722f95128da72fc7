//! A batch scan of a linear book (like `benches/batch.py`'s 100k × 20) to time
//! and profile without Python:
//! `cargo build --profile profiling --example profile_batch`, then
//! `perf record -g target/profiling/examples/profile_batch [accounts] [repeat] [threads]`
//! (`PM_COLUMNAR=0`: without the columnar path; `PM_OPTIONS=0.25`: that share
//! of the rows options on BTC and ETH, nine strikes, three expiries, calls and puts;
//! `PM_PER=20`: positions per account; `PM_PLAIN=1`: the string columns as plain
//! strings, encoded in every run as `Engine.margin_batch` encodes plain Arrow strings).
use pmengine_core::batch::{
    encode_offsets, thread_pool, BalanceColumns, BatchOptions, Encoded, PositionColumns, Strings,
};
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

/// A string column as an Arrow string array lays it out: the rows' bytes end to end.
struct Plain {
    bytes: String,
    ends: Vec<usize>,
    valid: Vec<bool>,
}

fn main() {
    let arg = |i: usize, d: usize| std::env::args().nth(i).and_then(|a| a.parse().ok()).unwrap_or(d);
    let (accounts, repeat, threads) = (arg(1, 100_000), arg(2, 10), arg(3, 1));
    let per: usize = std::env::var("PM_PER").ok().and_then(|v| v.parse().ok()).unwrap_or(20);
    let engine = Engine::new(std::env::var("PM_PROFILE").map_or_else(
        |_| RiskParams::default_profile(),
        |path| RiskParams::from_toml_str(&std::fs::read_to_string(path).unwrap()).unwrap(),
    ));
    let mut market = Market::new(1_795_478_400.0);
    let prices = [("BTC", 60000.0), ("ETH", 3000.0), ("SOL", 150.0), ("BNB", 600.0), ("USDT", 1.0)];
    for (a, p) in prices {
        market.set_price(a, p).unwrap();
    }
    market.set_vol("BTC", 0.5).unwrap();
    market.set_vol("ETH", 0.6).unwrap();
    let option_share: f64 = std::env::var("PM_OPTIONS").ok().and_then(|v| v.parse().ok()).unwrap_or(0.0);
    let expiries = [30.0, 90.0, 180.0].map(|d| 1_795_478_400.0 + d * 86_400.0);
    let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<String>>();
    let types = names(&["linear", "option"]);
    let mut symbols = names(&["BTCUSDT", "ETHUSDT", "SOLUSDT", "BNBUSDT", "BTCUSDT_261225"]);
    // Option series: underlying, strike, expiry, kind (one symbol each).
    for u in ["BTC", "ETH"] {
        for m in 0..9 {
            for e in 0..3 {
                for k in ["C", "P"] {
                    symbols.push(format!("{u}-{e}-{m}-{k}"));
                }
            }
        }
    }
    let kinds = names(&["call", "put"]);
    let underlyings = names(&["BTC", "ETH", "SOL", "BNB"]);
    let assets = names(&["BTC", "ETH", "SOL", "BNB", "USDT"]);
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let rows = accounts * per;
    let (mut account, mut type_code, mut symbol, mut underlying) = (vec![], vec![], vec![], vec![]);
    let (mut qty, mut entry) = (vec![], vec![]);
    let (mut strike, mut expiry, mut kind) = (vec![], vec![], vec![]);
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
            if rng.next() < option_share {
                let (u, m, e, k) =
                    (u % 2, (rng.next() * 9.0) as i32, (rng.next() * 3.0) as i32, (rng.next() * 2.0) as i32);
                let p = prices[u as usize].1;
                type_code.push(1);
                symbol.push(5 + ((u * 9 + m) * 3 + e) * 2 + k);
                underlying.push(u);
                qty.push((sign * notional / p * 100.0).round() / 100.0);
                entry.push(f64::NAN);
                strike.push((p * (0.8 + 0.05 * f64::from(m)) / 100.0).round() * 100.0);
                expiry.push(expiries[e as usize]);
                kind.push(k);
                continue;
            }
            type_code.push(0);
            symbol.push(s);
            underlying.push(u);
            qty.push(sign * notional / p);
            entry.push(p * (0.9 + 0.2 * rng.next()));
            strike.push(f64::NAN);
            expiry.push(f64::NAN);
            kind.push(-1);
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
        strike: Some(&strike),
        expiry: Some(&expiry),
        option_kind: Some(Strings { codes: &kind, values: &kinds }),
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
    // PM_PLAIN=1: each string column decoded to its rows' bytes end to end (as an
    // Arrow string array lays them out), encoded again in every run.
    let plain = std::env::var("PM_PLAIN").is_ok_and(|v| v != "0");
    let decode = |s: Strings<'_>| -> Plain {
        let mut p = Plain { bytes: String::new(), ends: vec![0], valid: Vec::new() };
        for &c in s.codes {
            p.bytes.push_str(usize::try_from(c).map_or("", |c| &s.values[c]));
            p.ends.push(p.bytes.len());
            p.valid.push(c >= 0);
        }
        p
    };
    let plain_columns = [
        positions.kind_of_instrument,
        positions.symbol,
        positions.underlying,
        positions.option_kind.unwrap(),
        balances.asset,
    ]
    .map(|s| if plain { decode(s) } else { decode(Strings { codes: &[], values: &[] }) });
    let pool = thread_pool(threads).unwrap();
    let (mut best, mut best_encode) = (f64::INFINITY, f64::INFINITY);
    let mut sink = 0.0;
    for _ in 0..repeat {
        let t = Instant::now();
        let encoded: Vec<Encoded> = (plain_columns.iter())
            .map(|c| match c.valid.iter().any(|&v| v) {
                // As the binding reads an all-null Arrow column: nothing to encode.
                false => Encoded { codes: vec![-1; c.valid.len()], values: Vec::new() },
                true => {
                    let valid = c.valid.contains(&false).then_some(|i: usize| c.valid[i]);
                    encode_offsets(&pool, &c.ends, c.bytes.as_bytes(), valid).unwrap()
                }
            })
            .collect();
        best_encode = best_encode.min(t.elapsed().as_secs_f64());
        let (mut positions, mut balances) = (positions, balances);
        if plain {
            positions.kind_of_instrument = encoded[0].view();
            positions.symbol = encoded[1].view();
            positions.underlying = encoded[2].view();
            positions.option_kind = Some(encoded[3].view());
            balances.asset = encoded[4].view();
        }
        let r = engine.margin_batch_in(&pool, &positions, &balances, &market, &options).unwrap();
        best = best.min(t.elapsed().as_secs_f64());
        sink += r.maintenance_margin.iter().sum::<f64>();
    }
    println!(
        "{accounts} accounts × {per} positions ({rows} rows), {threads} thread(s): best {:.1} ms, {:.2} M accounts/s ({sink:.3e})",
        best * 1e3,
        accounts as f64 / best / 1e6
    );
    if plain {
        println!("encoding the plain strings: best {:.1} ms", best_encode * 1e3);
    }
}
