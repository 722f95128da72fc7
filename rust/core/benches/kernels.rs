//! Core kernels, without Python: `cargo bench -p pmengine-core`.
//!
//! - margin of a 50-position linear account (book + evaluate), and evaluate alone;
//! - an option book of 20 series on 2 underlyings (63 grid scenarios), cold
//!   (series priced on every call) and warm (series from the snapshot's cache);
//! - one Black-76 valuation, and one series revalued on the default profile's
//!   BTC grid with its systemic scenarios (67 points) point by point (scalar)
//!   and in SIMD lanes (`lanes.rs`).

use criterion::{criterion_group, criterion_main, Criterion};
use pmengine_core::grid::Grid;
use pmengine_core::lanes::{revalue, SeriesPoint};
use pmengine_core::pricing::{black76, black76_at, shocked_vol, Deviation};
use pmengine_core::series::Revaluation;
use pmengine_core::{ClassicTerms, Engine, Market, OptionKind, Portfolio, Position, RiskParams};
use std::hint::black_box;

const PRICES: [(&str, f64); 4] = [("BTC", 60000.0), ("ETH", 3000.0), ("SOL", 150.0), ("USDT", 1.0)];

struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn market() -> Market {
    let mut m = Market::new(1_795_478_400.0); // 2026-11-24T00:00:00Z
    for (a, p) in PRICES {
        m.set_price(a, p).unwrap();
    }
    m.set_vol("BTC", 0.5).unwrap();
    m.set_vol("ETH", 0.6).unwrap();
    m
}

fn linear_book() -> Portfolio {
    let mut rnd = Lcg(7);
    let mut p = Portfolio::new();
    for (a, _) in &PRICES[..3] {
        p.add_balance(a, 2.0).unwrap();
    }
    p.add_balance("USDT", -50000.0).unwrap();
    for i in 0..46 {
        let (u, price) = PRICES[i % 3];
        let classic = ClassicTerms::default();
        let pos = if rnd.next() < 0.7 {
            let qty = rnd.next() * 20.0 - 10.0;
            let entry_price = price * (0.9 + 0.2 * rnd.next());
            Position::Linear {
                symbol: format!("{u}USDT{}", i % 5),
                underlying: u.into(),
                settle: "USDT".into(),
                qty,
                entry_price,
                classic,
            }
        } else {
            let contracts = rnd.next() * 1000.0 - 500.0;
            let entry_price = price * (0.9 + 0.2 * rnd.next());
            let symbol = format!("{u}USD_{}", i % 3);
            Position::Inverse { symbol, underlying: u.into(), contract_size: 100.0, contracts, entry_price, classic }
        };
        p.add_position(pos).unwrap();
    }
    p
}

fn option_book() -> Portfolio {
    let mut rnd = Lcg(11);
    let mut p = Portfolio::new();
    p.add_balance("USDT", 100_000.0).unwrap();
    for i in 0..20 {
        let (u, price) = PRICES[i % 2];
        let strike = (price * (0.8 + 0.4 * rnd.next())).round();
        let kind = if i % 4 < 2 { OptionKind::Call } else { OptionKind::Put };
        let expiry = 1_795_478_400.0 + 86400.0 * (7.0 + 30.0 * (i % 3) as f64);
        p.add_position(Position::Option {
            symbol: format!("{u}-{i}-{strike}"),
            underlying: u.into(),
            settle: "USDT".into(),
            kind,
            strike,
            expiry,
            qty: rnd.next() * 10.0 - 5.0,
        })
        .unwrap();
    }
    p
}

fn kernels(c: &mut Criterion) {
    let engine = Engine::new(RiskParams::default_profile());
    let m = market();

    let lin = linear_book();
    c.bench_function("margin/linear-50", |b| b.iter(|| engine.margin(black_box(&lin), black_box(&m)).unwrap()));
    let book = engine.book(&lin, &m).unwrap();
    c.bench_function("evaluate/linear-50", |b| b.iter(|| engine.evaluate(black_box(&book))));

    let opts = option_book();
    c.bench_function("margin/options-20/cold", |b| {
        b.iter(|| {
            m.series.clear();
            engine.margin(black_box(&opts), black_box(&m)).unwrap()
        })
    });
    engine.margin(&opts, &m).unwrap();
    c.bench_function("margin/options-20/warm", |b| b.iter(|| engine.margin(black_box(&opts), black_box(&m)).unwrap()));

    c.bench_function("black76", |b| {
        b.iter(|| black76(OptionKind::Call, black_box(60000.0), black_box(65000.0), black_box(0.5), black_box(0.1)))
    });

    // 21 price points × 3 vol shocks, the two extremes and the systemic scenarios.
    let params = RiskParams::default_profile();
    let grid = Grid::new(params.group_params("BTC"));
    let systemic: Vec<(f64, f64)> = params.systemic.iter().map(|s| (s.multiple * 0.1, s.vol_shock)).collect();
    let at = Revaluation::new(grid.scenarios(true), &systemic, params.vol_floor);
    let (k, forward, vol, tau): (f64, f64, f64, f64) = (65000.0, 60000.0, 0.5, 0.1);
    let ln_moneyness = (forward / k).ln();
    c.bench_function("black76/grid-67/scalar", |b| {
        let points: Vec<(f64, f64)> = grid.scenarios(true).iter().map(|s| (s.r, s.v)).chain(systemic.clone()).collect();
        b.iter(|| {
            let mut sum = 0.0;
            for &(r, v) in black_box(&points) {
                let dev = Deviation::new(shocked_vol(vol, v, params.vol_floor) * tau.sqrt());
                sum += black76_at(OptionKind::Put, forward * (1.0 + r), k, ln_moneyness + (1.0 + r).ln(), dev);
            }
            sum
        })
    });
    c.bench_function("black76/grid-67/lanes", |b| {
        let point =
            SeriesPoint { kind: OptionKind::Put, strike: k, forward, ln_moneyness, vol, tau, settle_price: 1.0 };
        let (mut g, mut s) = (vec![0.0; at.grid_len()], vec![0.0; at.systemic_len()]);
        b.iter(|| {
            revalue(black_box(&point), &at, &mut g, &mut s, |_| 0.0);
            g.iter().sum::<f64>() + s.iter().sum::<f64>()
        })
    });
}

criterion_group!(benches, kernels);
criterion_main!(benches);
