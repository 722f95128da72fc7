//! The live account equals a full recompute after every operation, and
//! `what_if` leaves it bit-for-bit unchanged (random sequences, fixed seeds).

use pmengine_core::{
    ClassicTerms, Engine, LiveAccount, MarginResult, Market, OptionKind, Order, Portfolio, Position, RiskParams,
};
use std::sync::Arc;

/// The market the random-sequence tests start from: BTC, ETH and two stablecoins, BTC's vol.
fn random_walk_market() -> Market {
    let mut m = Market::new(1_795_478_400.0);
    for (a, p) in [("BTC", 60000.0), ("ETH", 3000.0), ("USDT", 1.0), ("USDC", 1.0)] {
        m.set_price(a, p).unwrap();
    }
    m.set_vol("BTC", 0.5).unwrap();
    m
}

struct Lcg(u64);
impl Lcg {
    fn f(&mut self) -> f64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[(self.f() * xs.len() as f64) as usize % xs.len()]
    }
}

fn close(a: f64, b: f64) -> bool {
    (a.is_infinite() && a == b) || (a - b).abs() <= 1e-6_f64.max(1e-9 * b.abs())
}

fn assert_same(live: &mut LiveAccount, engine: &Engine, step: &str) {
    // Ticks and fills re-sum in the portfolio's order, like a rebuild: bit-identical.
    let exact = engine.margin(live.portfolio(), live.market()).unwrap();
    assert_eq!(live.margin(), exact, "{step}: not bit-identical to a rebuild");
    // So is the account's own evaluation, which reuses the scans kept from its
    // earlier evaluations and what-ifs wherever their inputs are the same bits.
    assert_eq!(*live.margin_ref(), exact, "{step}: the kept scans are not a rebuild's");
    let got = live.margin().to_value(engine.params());
    let want = engine.margin(live.portfolio(), live.market()).unwrap().to_value(engine.params());
    fn walk(g: &serde_json::Value, w: &serde_json::Value, at: &str, step: &str) {
        match (g, w) {
            (serde_json::Value::Object(a), serde_json::Value::Object(b)) => {
                assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>(), "{step} {at}");
                for (k, v) in b {
                    walk(&a[k], v, &format!("{at}.{k}"), step);
                }
            }
            (serde_json::Value::Number(a), serde_json::Value::Number(b)) => {
                assert!(close(a.as_f64().unwrap(), b.as_f64().unwrap()), "{step} {at}: {a} != {b}")
            }
            (a, b) => assert_eq!(a, b, "{step} {at}"),
        }
    }
    walk(&got, &want, "", step);
}

fn instrument(rnd: &mut Lcg, symbol: &str) -> Position {
    let classic = ClassicTerms::default();
    match symbol {
        "BTCUSDT" | "ETHUSDT" => Position::Linear {
            symbol: symbol.into(),
            underlying: symbol[..3].into(),
            settle: "USDT".into(),
            qty: 0.0,
            entry_price: 1.0,
            classic,
        },
        "BTCUSD_PERP" => Position::Inverse {
            symbol: symbol.into(),
            underlying: "BTC".into(),
            contract_size: 100.0,
            contracts: 0.0,
            entry_price: 1.0,
            classic,
        },
        _ => Position::Option {
            symbol: symbol.into(),
            underlying: "BTC".into(),
            settle: "USDT".into(),
            kind: if rnd.f() < 0.5 { OptionKind::Call } else { OptionKind::Put },
            strike: 60000.0,
            expiry: 1_795_478_400.0 + 30.0 * 86400.0,
            qty: 0.0,
        },
    }
}

#[test]
fn random_sequences_match_full_recompute() {
    let engine = Arc::new(Engine::new(RiskParams::default_profile()));
    let (mut fills, mut rebuilds) = (0, 0);
    for seed in 1..=20u64 {
        let mut rnd = Lcg(seed);
        let m = random_walk_market();
        let mut p = Portfolio::new();
        p.add_balance("USDT", 50_000.0).unwrap();
        p.add_balance("BTC", 1.0).unwrap();
        let mut live = LiveAccount::new(Arc::clone(&engine), p, m).unwrap();
        let mut calls = std::collections::HashMap::<String, bool>::new();
        for step in 0..60 {
            let op = (rnd.f() * 8.0) as u32;
            let what = match op {
                0 => {
                    let (a, base) = *rnd.pick(&[("BTC", 60000.0), ("ETH", 3000.0)]);
                    live.update_price(a, base * (0.9 + 0.2 * rnd.f())).unwrap();
                    format!("price {a}")
                }
                1 => {
                    let a = *rnd.pick(&["USDT", "BTC", "USDC"]);
                    live.deposit(a, rnd.f() * 2.0).unwrap();
                    format!("deposit {a}")
                }
                2 => {
                    let a = *rnd.pick(&["USDT", "BTC", "ETH"]);
                    live.borrow(a, rnd.f() * 3.0).unwrap();
                    format!("borrow {a}")
                }
                3 => {
                    let sym = *rnd.pick(&["BTCUSDT", "ETHUSDT", "BTCUSD_PERP", "BTC-C1", "BTC-P1"]);
                    let order = Order {
                        symbol: sym.into(),
                        qty: (rnd.f() - 0.5) * if sym == "BTCUSD_PERP" { 400.0 } else { 4.0 },
                        price: if rnd.f() < 0.5 {
                            None
                        } else {
                            Some(if sym.starts_with("ETH") { 3000.0 } else { 60000.0 } * (0.95 + 0.1 * rnd.f()))
                        },
                        instrument: Some(instrument(&mut rnd, sym)),
                    };
                    // The same option symbol keeps the terms it was first given.
                    let order = match live.portfolio().positions.iter().find(|p| p.symbol() == sym) {
                        Some(held) => Order { instrument: Some(held.clone()), ..order },
                        None => order,
                    };
                    let order = if sym.starts_with("BTC-") {
                        Order { price: order.price.map(|p| p / 20.0), ..order }
                    } else {
                        order
                    };
                    let before = live.margin().to_value(live.engine().params());
                    let wi = live.what_if(&order).unwrap().clone();
                    assert_eq!(
                        live.margin().to_value(live.engine().params()),
                        before,
                        "seed {seed} step {step}: what_if changed the state"
                    );
                    live.apply_fill(&order).unwrap();
                    let after = live.margin();
                    assert!(
                        close(wi.maintenance_margin, after.maintenance_margin),
                        "seed {seed} step {step}: what_if {} != fill {}",
                        wi.maintenance_margin,
                        after.maintenance_margin
                    );
                    calls.insert(sym.into(), true);
                    format!("fill {sym}")
                }
                4 => {
                    let loan = -live.balance("USDT");
                    if loan > 0.0 {
                        live.repay("USDT", loan * rnd.f()).unwrap();
                    }
                    "repay".into()
                }
                5 => {
                    live.update_vol("BTC", 0.3 + 0.4 * rnd.f()).unwrap();
                    "vol".into()
                }
                6 => {
                    let (s, base) = *rnd.pick(&[("BTCUSDT", 60000.0), ("ETHUSDT", 3000.0), ("BTCUSD_PERP", 60000.0)]);
                    live.update_mark(s, base * (0.95 + 0.1 * rnd.f())).unwrap();
                    format!("mark {s}")
                }
                _ => {
                    let held = live.balance("USDC");
                    if held > 0.0 {
                        live.withdraw("USDC", held * rnd.f()).unwrap();
                    }
                    "withdraw".into()
                }
            };
            assert_same(&mut live, &engine, &format!("seed {seed} step {step} ({what})"));
        }
        assert!(!calls.is_empty());
        fills += calls.len();
        rebuilds += live.rebuilds();
    }
    // Only first fills, closes and first deposits of an asset rebuild; ticks never do.
    eprintln!("{rebuilds} rebuilds in {} operations", 20 * 60);
    assert!(rebuilds < 20 * 60 / 4, "{rebuilds} rebuilds in {} operations", 20 * 60);
    assert!(fills > 0);
}

/// A tick reaches each option's series at the place in the snapshot's cache it
/// kept for the option: after options are opened, closed and opened again
/// under other terms, with two symbols of the same terms (one with a vol of
/// its own, so the two series differ), and with vol updates and new times
/// (which clear the cache) between ticks, every tick equals a rebuild.
#[test]
fn option_ticks_follow_their_series_through_every_change() {
    let engine = Arc::new(Engine::new(RiskParams::default_profile()));
    let expiry = 1_795_478_400.0 + 30.0 * 86400.0;
    let option = |symbol: &str, underlying: &str, kind: OptionKind, strike: f64| Position::Option {
        symbol: symbol.into(),
        underlying: underlying.into(),
        settle: "USDT".into(),
        kind,
        strike,
        expiry,
        qty: 0.0,
    };
    // "A" and "B": the same terms; "A" gets a vol of its own below.
    let listed = [
        option("A", "BTC", OptionKind::Call, 60_000.0),
        option("B", "BTC", OptionKind::Call, 60_000.0),
        option("P", "BTC", OptionKind::Put, 55_000.0),
        option("E", "ETH", OptionKind::Call, 3_100.0),
    ];
    for seed in 1..=12u64 {
        let mut rnd = Lcg(seed);
        let mut m = random_walk_market();
        m.set_vol("ETH", 0.6).unwrap();
        m.set_vol("A", 0.7).unwrap();
        let mut p = Portfolio::new();
        p.add_balance("USDT", 200_000.0).unwrap();
        for (k, o) in listed[..2].iter().enumerate() {
            let mut o = o.clone();
            if let Position::Option { qty, .. } = &mut o {
                *qty = 1.0 + k as f64;
            }
            p.add_position(o).unwrap();
        }
        let mut live = LiveAccount::new(Arc::clone(&engine), p, m).unwrap();
        let mut time = 1_795_478_400.0;
        for step in 0..80 {
            let what = match (rnd.f() * 7.0) as u32 {
                0 | 1 => {
                    let (a, base) = *rnd.pick(&[("BTC", 60_000.0), ("ETH", 3_000.0), ("USDT", 1.0)]);
                    live.update_price(a, base * (0.97 + 0.06 * rnd.f())).unwrap();
                    format!("price {a}")
                }
                2 => {
                    // Open, add to, reduce or close an option (a close is a fill of minus the holding).
                    let o = rnd.pick(&listed).clone();
                    let held = live.portfolio().positions.iter().find(|p| p.symbol() == o.symbol()).cloned();
                    let qty = match (&held, rnd.f() < 0.4) {
                        (Some(Position::Option { qty, .. }), true) => -qty,
                        _ => (rnd.f() - 0.3) * 3.0,
                    };
                    let order = Order {
                        symbol: o.symbol().into(),
                        qty,
                        price: Some(100.0),
                        instrument: Some(held.unwrap_or(o)),
                    };
                    live.apply_fill(&order).unwrap();
                    format!("fill {} {qty}", order.symbol)
                }
                3 => {
                    // "P" closed and listed again under other terms.
                    let held = live.portfolio().positions.iter().find(|p| p.symbol() == "P").cloned();
                    if let Some(Position::Option { qty, .. }) = held {
                        let close = Order { symbol: "P".into(), qty: -qty, price: Some(50.0), instrument: None };
                        live.apply_fill(&close).unwrap();
                    }
                    let strike = 50_000.0 + 10_000.0 * rnd.f();
                    let kind = if rnd.f() < 0.5 { OptionKind::Put } else { OptionKind::Call };
                    let order = Order {
                        symbol: "P".into(),
                        qty: 1.5,
                        price: Some(80.0),
                        instrument: Some(option("P", "BTC", kind, strike)),
                    };
                    live.apply_fill(&order).unwrap();
                    format!("relist P at {strike}")
                }
                4 => {
                    let key = *rnd.pick(&["A", "B", "BTC", "ETH"]);
                    live.update_vol(key, 0.3 + 0.5 * rnd.f()).unwrap();
                    format!("vol {key}")
                }
                5 => {
                    time += 3600.0 * rnd.f();
                    live.set_time(time).unwrap();
                    "time".into()
                }
                _ => {
                    // Several ticks in a row: the hints' own path, cache entries kept.
                    for _ in 0..3 {
                        live.update_price("BTC", 60_000.0 * (0.97 + 0.06 * rnd.f())).unwrap();
                    }
                    "ticks".into()
                }
            };
            assert_same(&mut live, &engine, &format!("seed {seed} step {step} ({what})"));
        }
    }
}

#[test]
fn bad_orders_name_the_field() {
    let engine = Arc::new(Engine::new(RiskParams::default_profile()));
    let mut m = Market::new(1_795_478_400.0);
    m.set_price("BTC", 60000.0).unwrap();
    m.set_price("USDT", 1.0).unwrap();
    let mut live = LiveAccount::new(engine, Portfolio::new(), m).unwrap();
    let e = live.what_if(&Order { symbol: "X".into(), qty: 1.0, price: None, instrument: None }).unwrap_err();
    assert!(e.to_string().starts_with("order.symbol: \"X\" is not held"), "{e}");
    let e = live.withdraw("USDT", 5.0).unwrap_err();
    assert!(e.to_string().starts_with("withdraw.qty: exceeds the USDT wallet"), "{e}");
    let e = live.deposit("USDT", -5.0).unwrap_err();
    assert_eq!(e.to_string(), "deposit.qty: must be > 0, got -5");
    let e = live.update_price("BTC", f64::NAN).unwrap_err();
    assert_eq!(e.to_string(), "market.prices.BTC: must be > 0, got nan");
}

/// The book's gross USD size: what rounding in a what-if's difference-updated
/// sums is relative to.
fn gross(live: &LiveAccount) -> f64 {
    let (p, m) = (live.portfolio(), live.market());
    let price = |a: &str| m.price(a).unwrap_or(1.0);
    let mut total = 1.0;
    for a in ["USDT", "BTC", "ETH", "USDC"] {
        total += (p.balance(a).unwrap_or(0.0).abs() + p.loan(a).owed()) * price(a);
    }
    for pos in &p.positions {
        total += match pos {
            Position::Linear { qty, underlying, .. } => qty.abs() * price(underlying),
            Position::Inverse { contracts, contract_size, .. } => (contracts * contract_size).abs(),
            Position::Option { qty, underlying, strike, .. } => qty.abs() * price(underlying).max(*strike),
        };
    }
    total
}

/// Every figure of `got` within 1e-12 of `want`'s, relative to the larger of
/// the figure and `scale` (uniMMR: scaled by gross size over MM as well).
fn assert_near(got: &serde_json::Value, want: &serde_json::Value, scale: f64, mm: f64, at: &str) {
    use serde_json::Value;
    match (got, want) {
        (Value::Object(a), Value::Object(b)) => {
            assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>(), "{at}");
            for (k, v) in b {
                assert_near(&a[k], v, scale, mm, &format!("{at}.{k}"));
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            assert_eq!(a.len(), b.len(), "{at}");
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                assert_near(x, y, scale, mm, &format!("{at}[{i}]"));
            }
        }
        (Value::Number(a), Value::Number(b)) => {
            let (x, y) = (a.as_f64().unwrap(), b.as_f64().unwrap());
            let bound = if at.ends_with("uni_mmr") {
                1e-12 * x.abs().max(y.abs()) * (scale / mm.max(1e-300)).max(1.0)
            } else {
                1e-12 * x.abs().max(y.abs()).max(scale)
            };
            assert!((x - y).abs() <= bound, "{at}: got {x}, want {y}");
        }
        (a, b) => assert_eq!(a, b, "{at}"),
    }
}

/// A what-if (evaluated from the current margin's kept figures) equals a full
/// evaluation of the filled account, right after any change to the account:
/// offsets (BTC against ETH), financed spot (loans), systemic scenarios,
/// options, inverse contracts, closing and flipping orders.
/// `live`'s what-if of `o`, checked against `engine.margin` of the account
/// with `o` filled (to [`assert_near`]'s tolerance) and left unchanged by it.
fn what_if_against_the_fill(engine: &Arc<Engine>, live: &mut LiveAccount, o: &Order, at: &str) -> MarginResult {
    let before = live.margin_ref().clone();
    let mut filled = LiveAccount::new(Arc::clone(engine), live.portfolio().clone(), live.market().clone()).unwrap();
    filled.apply_fill(o).unwrap();
    let want = engine.margin(filled.portfolio(), filled.market()).unwrap();
    let got = live.what_if(o).unwrap().clone();
    let mm = got.maintenance_margin.min(want.maintenance_margin);
    let params = engine.params();
    assert_near(&got.to_value(params), &want.to_value(params), gross(&filled).max(gross(live)), mm, at);
    assert_eq!(*live.margin_ref(), before, "{at}: a what-if changed the account");
    got
}

#[test]
fn what_if_equals_a_full_evaluation_after_every_change() {
    let engine = Arc::new(Engine::new(RiskParams::default_profile()));
    let symbols = ["BTCUSDT", "ETHUSDT", "BTCUSD_PERP", "BTC-C1", "BTC-P1"];
    let mut checked = 0;
    for seed in 1..=12u64 {
        let mut rnd = Lcg(seed);
        let m = random_walk_market();
        let mut p = Portfolio::new();
        p.add_balance("USDT", 50_000.0).unwrap();
        p.add_balance("BTC", 1.0).unwrap();
        p.add_balance("USDC", 1.0).unwrap();
        let mut live = LiveAccount::new(Arc::clone(&engine), p, m).unwrap();
        let order = |rnd: &mut Lcg, live: &LiveAccount| {
            let sym = *rnd.pick(&symbols);
            let held = live.portfolio().positions.iter().find(|p| p.symbol() == sym).cloned();
            let size = match &held {
                Some(Position::Linear { qty, .. }) | Some(Position::Option { qty, .. }) => *qty,
                Some(Position::Inverse { contracts, .. }) => *contracts,
                None => 0.0,
            };
            let scale = if sym == "BTCUSD_PERP" { 400.0 } else { 4.0 };
            let qty = match (rnd.f() * 4.0) as u32 {
                0 if size != 0.0 => -size,
                1 if size != 0.0 => -2.0 * size,
                _ => (rnd.f() - 0.5) * scale,
            };
            let described = rnd.f() < 0.5 || held.is_none();
            let instrument = described.then(|| held.clone().unwrap_or_else(|| instrument(rnd, sym)));
            Order { symbol: sym.into(), qty, price: None, instrument }
        };
        for step in 0..40 {
            match (rnd.f() * 7.0) as u32 {
                0 => {
                    let (a, base) = *rnd.pick(&[("BTC", 60000.0), ("ETH", 3000.0)]);
                    live.update_price(a, base * (0.9 + 0.2 * rnd.f())).unwrap();
                }
                1 => {
                    let a = *rnd.pick(&["USDT", "BTC", "USDC"]);
                    live.deposit(a, 0.1 + rnd.f() * 2e4).unwrap()
                }
                2 => {
                    let a = *rnd.pick(&["USDT", "BTC", "ETH"]);
                    live.borrow(a, 0.1 + rnd.f() * 3.0).unwrap()
                }
                3 => {
                    let loan = live.portfolio().loan("BTC").owed().min(live.balance("BTC"));
                    if loan > 0.0 {
                        live.repay("BTC", loan * rnd.f().max(0.01)).unwrap();
                    }
                }
                4 => live.update_vol("BTC", 0.3 + 0.4 * rnd.f()).unwrap(),
                _ => {
                    let o = order(&mut rnd, &live);
                    if o.qty != 0.0 {
                        live.apply_fill(&o).unwrap();
                    }
                }
            }
            for _ in 0..3 {
                let o = order(&mut rnd, &live);
                if o.qty == 0.0 {
                    continue;
                }
                let before = live.margin();
                let mut filled =
                    LiveAccount::new(Arc::clone(&engine), live.portfolio().clone(), live.market().clone()).unwrap();
                filled.apply_fill(&o).unwrap();
                let want = engine.margin(filled.portfolio(), filled.market()).unwrap();
                let got = live.what_if(&o).unwrap().clone();
                assert_eq!(live.margin(), before, "seed {seed} step {step}: a what-if changed the account");
                let mm = got.maintenance_margin.min(want.maintenance_margin);
                let at = format!("seed {seed} step {step} {} {}", o.symbol, o.qty);
                let params = engine.params();
                assert_near(&got.to_value(params), &want.to_value(params), gross(&filled).max(gross(&live)), mm, &at);
                checked += 1;
            }
        }
    }
    assert!(checked > 1000, "{checked} what-ifs checked");
}

/// A what-if recomputes only its settle asset's figures and re-runs financing
/// only when its inputs move: on accounts with and without borrowed coins
/// (loans financed by free collateral), several assets in one group (USDT and
/// USDC), and orders that add to, reduce, close and flip a position (realised
/// P&L into the settle wallet), it still equals a full evaluation of the filled
/// account; the financed spot it reports moves when a loan is financed, and the
/// spot in use of a group it does not trade in moves with that group's wallets
/// (a group is kept only while what its figures read is the kept bits).
#[test]
fn what_if_recomputes_the_settle_asset_and_financing_when_they_move() {
    let engine = Arc::new(Engine::new(RiskParams::default_profile()));
    let (mut financed_moved, mut in_use_moved) = (0, 0);
    // A USDT loan spent: a liability in the stablecoin group larger than its USDC, all in use as
    // a hedge, so P&L into USDT moves the liability and P&L into USDC the spot in use.
    let loans =
        [("ETH", 0.0, 0.5), ("ETH", 0.5, 0.5), ("ETH", 2.0, 0.5), ("ETH", 6.0, 0.5), ("USDT", 5_000.0, 2_500.0)];
    for (k, (coin, loan, spent)) in loans.into_iter().enumerate() {
        let mut p = Portfolio::new();
        // Few stablecoins: a large loan is financed by the free BTC as well.
        p.add_balance("USDT", 3_000.0).unwrap();
        p.add_balance("USDC", 1_000.0).unwrap();
        p.add_balance("BTC", 0.5).unwrap();
        p.add_balance("ETH", 1.0).unwrap();
        for (symbol, underlying, qty, entry) in
            [("BTCUSDT", "BTC", 0.8, 58_000.0), ("ETHUSDT", "ETH", -6.0, 3_100.0), ("ETHUSDC", "ETH", 2.0, 2_900.0)]
        {
            let v = serde_json::json!({"type": "linear", "symbol": symbol, "underlying": underlying,
                                       "settle": &symbol[3..], "qty": qty, "entry_price": entry});
            p.positions.push(pmengine_core::portfolio::parse_position(&v, "p").unwrap());
        }
        let mut live = LiveAccount::new(Arc::clone(&engine), p, random_walk_market()).unwrap();
        if loan > 0.0 {
            live.borrow(coin, loan).unwrap();
            live.withdraw(coin, loan + spent).unwrap(); // the borrowed coins leave: a liability
        }
        for (symbol, qty) in [
            ("BTCUSDT", 0.3),
            ("BTCUSDT", -0.5),
            ("BTCUSDT", -0.8),
            ("BTCUSDT", -2.0),
            ("ETHUSDT", 2.5),
            ("ETHUSDT", 6.0),
            ("ETHUSDT", 9.0),
            ("ETHUSDC", -1.0),
            ("ETHUSDC", -4.0),
        ] {
            let price = if symbol == "BTCUSDT" { 61_000.0 } else { 3_050.0 };
            let o = Order { symbol: symbol.into(), qty, price: Some(price), instrument: None };
            let before = live.margin_ref().clone();
            let at = format!("{coin} loan {loan} {symbol} {qty}");
            let got = what_if_against_the_fill(&engine, &mut live, &o, &at);
            let financed =
                |r: &pmengine_core::MarginResult| r.groups.iter().map(|g| g.financed_spot).collect::<Vec<_>>();
            if financed(&got) != financed(&before) {
                financed_moved += 1;
            }
            // The stablecoin group's spot in use, moved by the P&L into its USDC.
            if coin == "USDT" && got.groups[0].spot_in_use != before.groups[0].spot_in_use {
                in_use_moved += 1;
            }
            if k == 0 {
                assert!(got.groups.iter().all(|g| g.financed_spot == 0.0), "{at}: nothing borrowed, nothing financed");
            }
        }
    }
    assert!(financed_moved > 0, "no what-if moved the financed spot: financing was not exercised");
    assert!(in_use_moved > 0, "no what-if moved the stablecoins' spot in use");
}

/// The what-ifs a narrow pass evaluates (one group, one settle asset) equal a
/// full evaluation of the filled account, their group rows included, however
/// they follow each other: orders in one group then another (the rows the
/// last one changed are restored), orders on a symbol not held in between
/// (the what-if buffer replaced twice, so it may come back at the same
/// address), orders whose spot in use crosses a spent loan in the same group
/// (financing re-runs) and orders whose realised P&L moves a wallet in
/// another group (that group's spot in use moves).
#[test]
fn narrow_what_ifs_equal_a_full_evaluation() {
    let engine = Arc::new(Engine::new(RiskParams::default_profile()));
    let (mut checked, mut other_group_moved, mut financed_moved) = (0, 0, 0);
    for wbtc_spent in [0.0, 0.05, 0.3, 0.8] {
        let mut m = random_walk_market();
        m.set_price("WBTC", 59_950.0).unwrap();
        let mut p = Portfolio::new();
        p.add_balance("USDT", 50_000.0).unwrap();
        p.add_balance("BTC", 0.5).unwrap();
        for (symbol, underlying, settle, qty, entry) in [
            ("BTCUSDT", "BTC", "USDT", -2.0, 58_000.0),
            ("ETHUSDT", "ETH", "USDT", 5.0, 3_100.0),
            ("ETHBTC", "ETH", "BTC", 30.0, 0.045),
        ] {
            let v = serde_json::json!({"type": "linear", "symbol": symbol, "underlying": underlying,
                                       "settle": settle, "qty": qty, "entry_price": entry});
            p.positions.push(pmengine_core::portfolio::parse_position(&v, "p").unwrap());
        }
        let mut live = LiveAccount::new(Arc::clone(&engine), p, m).unwrap();
        if wbtc_spent > 0.0 {
            // A WBTC loan spent: a liability in the BTC group beside its long BTC.
            live.borrow("WBTC", wbtc_spent).unwrap();
            live.withdraw("WBTC", wbtc_spent).unwrap();
        }
        let new_symbol = serde_json::json!({"type": "linear", "symbol": "BTCUSDC", "underlying": "BTC",
                                            "settle": "USDC", "qty": 0.0, "entry_price": 1.0});
        let new_symbol = pmengine_core::portfolio::parse_position(&new_symbol, "p").unwrap();
        let orders: [(&str, f64, Option<f64>); 12] = [
            ("BTCUSDT", 0.3, None),
            ("ETHUSDT", -1.0, Some(3_050.0)),
            ("BTCUSDC", 0.5, None),
            ("BTCUSDC", -0.7, None),
            ("ETHUSDT", 2.0, None),
            ("BTCUSDT", 1.9, Some(61_000.0)),
            ("ETHBTC", -10.0, Some(0.052)),
            ("BTCUSDT", 2.5, None),
            ("ETHBTC", -29.0, Some(0.04)),
            ("BTCUSDT", -1.0, None),
            ("ETHBTC", 5.0, None),
            ("ETHUSDT", -6.0, Some(2_900.0)),
        ];
        for (round, &(symbol, qty, price)) in orders.iter().cycle().take(36).enumerate() {
            let instrument = (symbol == "BTCUSDC").then(|| new_symbol.clone());
            let o = Order { symbol: symbol.into(), qty: qty * (1.0 + round as f64 / 40.0), price, instrument };
            let before = live.margin_ref().clone();
            let at = format!("WBTC spent {wbtc_spent} round {round} {symbol} {}", o.qty);
            let got = what_if_against_the_fill(&engine, &mut live, &o, &at);
            let btc = |r: &pmengine_core::MarginResult| r.groups.iter().find(|g| &*g.name == "BTC").cloned().unwrap();
            if symbol == "ETHBTC" && btc(&got).spot_in_use != btc(&before).spot_in_use {
                other_group_moved += 1;
            }
            if btc(&got).financed_spot != btc(&before).financed_spot {
                financed_moved += 1;
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 144);
    assert!(other_group_moved > 0, "no realised P&L moved another group's spot in use");
    assert!(financed_moved > 0, "no what-if moved the financed spot");
}

/// The default profile under `binance_pm`, an asset without bands at a 90 % collateral rate.
fn binance_params() -> RiskParams {
    let mut params = RiskParams::default_profile();
    params.model = pmengine_core::params::Model::BinancePm;
    params.binance.as_mut().expect("the default profile has a [binance] table").default_collateral_rate = Some(0.9);
    params
}

/// A contract on `symbol`: linear on USDT or USDC, or inverse on its coin (`…USD_PERP`).
fn binance_contract(symbol: &str, size: f64, entry: f64) -> Position {
    let (underlying, settle) = (&symbol[..3], &symbol[3..]);
    let v = if settle == "USD_PERP" {
        let contract_size = if underlying == "BTC" { 100 } else { 10 };
        serde_json::json!({"type": "inverse", "symbol": symbol, "underlying": underlying,
                           "contract_size": contract_size, "contracts": size, "entry_price": entry})
    } else {
        serde_json::json!({"type": "linear", "symbol": symbol, "underlying": underlying, "settle": settle,
                           "qty": size, "entry_price": entry})
    };
    pmengine_core::portfolio::parse_position(&v, "p").unwrap()
}

/// The size of `symbol`'s contract, when the account holds one.
fn held_size(live: &LiveAccount, symbol: &str) -> Option<f64> {
    live.portfolio().positions.iter().find(|p| p.symbol() == symbol).and_then(|p| match p {
        Position::Linear { qty, .. } => Some(*qty),
        Position::Inverse { contracts, .. } => Some(*contracts),
        Position::Option { .. } => None,
    })
}

/// Bit for bit: every figure and row of `got` is `want`'s (`-0.0` told from `0.0`).
fn assert_bits(got: &MarginResult, want: &MarginResult, at: &str) {
    assert_eq!(got, want, "{at}: not a full evaluation's figures");
    assert_eq!(format!("{got:?}"), format!("{want:?}"), "{at}: not a full evaluation's bits");
}

/// Under `binance_pm` a what-if brackets only the changed contract and
/// recomputes only its margin asset, the rest kept from the current margin:
/// bit for bit the full evaluation of the same changed book (an account
/// evaluating its what-ifs in full, `full_what_ifs`), rows included, however
/// what-ifs follow each other: on other symbols and margin assets (the rows
/// the last one changed restored in the what-if buffer), on symbols not held
/// and closing ones (the buffer replaced), while a caller holds the last
/// result (the rows copied); on USDT-, USDC- and coin-margined contracts,
/// across brackets, with loans and negative wallets, orders that add, reduce
/// and flip (realised P&L into the wallet), between ticks, marks, wallet
/// changes, fills and rebuilds. Each also agrees with the filled account.
#[test]
fn binance_pm_narrow_what_ifs_equal_a_full_evaluation() {
    let engine = Arc::new(Engine::new(binance_params()));
    let symbols = ["BTCUSDT", "ETHUSDT", "BTCUSDC", "ETHUSDC", "BTCUSD_PERP", "ETHUSD_PERP"];
    let base = |symbol: &str| if symbol.starts_with("BTC") { 60_000.0 } else { 3_000.0 };
    let (mut checked, mut in_a_row, mut flips, mut across_brackets) = (0, 0, 0, 0);
    for seed in 1..=12u64 {
        let mut rnd = Lcg(seed);
        let mut p = Portfolio::new();
        p.add_balance("USDT", 40_000.0).unwrap();
        p.add_balance("USDC", 5_000.0).unwrap();
        p.add_balance("BTC", 0.5).unwrap();
        p.add_balance("ETH", if seed.is_multiple_of(3) { -2.0 } else { 2.0 }).unwrap();
        if seed % 2 == 0 {
            p.add_loan("BTC", 0.3, 0.001).unwrap();
        }
        for (k, symbol) in symbols.iter().enumerate().filter(|(k, _)| !(seed as usize + k).is_multiple_of(3)) {
            let scale = if symbol.ends_with("_PERP") { 600.0 } else { 6.0 };
            let size = (rnd.f() - 0.5) * scale + if k % 2 == 0 { 0.5 } else { -0.5 };
            p.positions.push(binance_contract(symbol, size, base(symbol) * (0.95 + 0.1 * rnd.f())));
        }
        let m = random_walk_market();
        let mut live = LiveAccount::new(Arc::clone(&engine), p.clone(), m.clone()).unwrap();
        let mut full = LiveAccount::new(Arc::clone(&engine), p, m).unwrap();
        full.full_what_ifs(true);
        let order = |rnd: &mut Lcg, live: &LiveAccount| {
            let symbol = *rnd.pick(&symbols);
            let held = live.portfolio().positions.iter().find(|p| p.symbol() == symbol).cloned();
            let size = match &held {
                Some(Position::Linear { qty, .. }) => *qty,
                Some(Position::Inverse { contracts, .. }) => *contracts,
                _ => 0.0,
            };
            let scale = if symbol.ends_with("_PERP") { 2_000.0 } else { 16.0 };
            let qty = match (rnd.f() * 6.0) as u32 {
                0 if size != 0.0 => -size,
                1 if size != 0.0 => -2.0 * size,
                2 => (rnd.f() - 0.5) * scale * 4.0,
                _ => (rnd.f() - 0.5) * scale / 8.0,
            };
            let price = (rnd.f() < 0.5).then(|| base(symbol) * (0.95 + 0.1 * rnd.f()));
            let instrument = held.is_none().then(|| binance_contract(symbol, 0.0, 1.0));
            Order { symbol: symbol.into(), qty, price, instrument }
        };
        let mut holding = None;
        for step in 0..40 {
            let op = (rnd.f() * 8.0) as u32;
            let o = order(&mut rnd, &live);
            let (coin, coin_base) = *rnd.pick(&[("BTC", 60_000.0), ("ETH", 3_000.0)]);
            let asset = *rnd.pick(&["USDT", "USDC", "BTC", "ETH"]);
            let (x, mark) = (rnd.f(), *rnd.pick(&symbols));
            for account in [&mut live, &mut full] {
                match op {
                    0 => account.update_price(coin, coin_base * (0.9 + 0.2 * x)).unwrap(),
                    1 => account.update_mark(mark, base(mark) * (0.97 + 0.06 * x)).unwrap(),
                    2 => account.deposit(asset, 0.1 + x * 3.0).unwrap(),
                    3 => account.borrow(coin, 0.1 + x).unwrap(),
                    4 if account.balance(coin) > 0.0 => {
                        let spent = account.balance(coin).min(0.2 + x); // a borrowed coin spent
                        account.withdraw(coin, spent).unwrap()
                    }
                    5 if o.qty != 0.0 => account.apply_fill(&o).unwrap(),
                    _ => {}
                }
            }
            assert_bits(live.margin_ref(), full.margin_ref(), &format!("seed {seed} step {step}"));
            for k in 0..6 {
                let o = order(&mut rnd, &live);
                if o.qty == 0.0 {
                    continue;
                }
                let at = format!("seed {seed} step {step} what-if {k}: {} {} at {:?}", o.symbol, o.qty, o.price);
                let before = live.margin_ref().clone();
                let want = full.what_if(&o).unwrap().clone();
                if k == 5 {
                    let got = what_if_against_the_fill(&engine, &mut live, &o, &at);
                    assert_bits(&got, &want, &at);
                } else {
                    assert_bits(live.what_if(&o).unwrap(), &want, &at);
                    assert_eq!(*live.margin_ref(), before, "{at}: a what-if changed the account");
                }
                // Now and then a caller keeps the what-if's result through the next ones.
                match (rnd.f() * 8.0) as u32 {
                    0 => holding = Some((live.what_if_result(), want.clone())),
                    1 => holding = None,
                    _ => {}
                }
                if let Some((held, want)) = &holding {
                    assert_bits(held, want, &format!("{at}: a kept result"));
                }
                // The order's row before and after, on a contract held and kept open.
                let row = |r: &MarginResult| {
                    let i = live.portfolio().positions.iter().position(|p| p.symbol() == o.symbol)?;
                    r.positions.get(i).filter(|row| row.index == i).copied()
                };
                if let (Some(b), Some(a), Some(size)) = (row(&before), row(&want), held_size(&live, &o.symbol)) {
                    in_a_row += usize::from(k > 0);
                    flips += usize::from(size * (size + o.qty) < 0.0);
                    across_brackets += usize::from(a.bracket != b.bracket);
                }
                checked += 1;
            }
        }
    }
    eprintln!("{checked} what-ifs, {in_a_row} on held contracts after another, {flips} flips, {across_brackets} across brackets");
    assert!(checked > 2_000, "{checked} what-ifs checked");
    assert!(in_a_row > 1_000 && across_brackets > 50 && flips > 50, "{in_a_row} {across_brackets} {flips}");
}

/// A symbol key skips the name lookup while the account's layout is the one
/// it describes; a key of an older layout or of another account is ignored
/// (the symbol looked up), so every answer is the keyless one, bit for bit.
#[test]
fn symbol_keys_of_other_layouts_and_accounts_are_ignored() {
    use pmengine_core::OrderRef;
    let engine = Arc::new(Engine::new(RiskParams::default_profile()));
    let mut m = Market::new(1_795_478_400.0);
    for (a, p) in [("BTC", 60000.0), ("ETH", 3000.0), ("USDT", 1.0)] {
        m.set_price(a, p).unwrap();
    }
    let linear = |symbol: &str, underlying: &str, qty: f64, entry: f64| Position::Linear {
        symbol: symbol.into(),
        underlying: underlying.into(),
        settle: "USDT".into(),
        qty,
        entry_price: entry,
        classic: ClassicTerms::default(),
    };
    let mut p = Portfolio::new();
    p.balances.insert("USDT", 1e5);
    p.positions.push(linear("BTCUSDT", "BTC", 1.0, 6e4));
    p.positions.push(linear("ETHUSDT", "ETH", -5.0, 3e3));
    let mut live = LiveAccount::new(Arc::clone(&engine), p.clone(), m.clone()).unwrap();
    // Another account, with its positions in the other order.
    p.positions.reverse();
    let other = LiveAccount::new(engine, p, m).unwrap();
    let order = |symbol, qty, key| OrderRef { symbol, qty, price: None, instrument: None, key };
    let eth_key = live.symbol_key("ETHUSDT");
    let foreign = other.symbol_key("BTCUSDT");
    assert!(live.is_current(eth_key) && !live.is_current(foreign));
    let plain = live.what_if(order("BTCUSDT", 0.5, None)).unwrap().clone();
    assert_eq!(*live.what_if(order("BTCUSDT", 0.5, Some(foreign))).unwrap(), plain);
    let keyed = live.what_if(order("ETHUSDT", 2.0, Some(eth_key))).unwrap().clone();
    assert_eq!(keyed, live.what_if(order("ETHUSDT", 2.0, None)).unwrap().clone());
    // Closing BTC moves ETH to position 0: the old key is stale and ignored.
    live.apply_fill(order("BTCUSDT", -1.0, None)).unwrap();
    assert!(!live.is_current(eth_key));
    let after = live.what_if(order("ETHUSDT", 2.0, None)).unwrap().clone();
    assert_eq!(*live.what_if(order("ETHUSDT", 2.0, Some(eth_key))).unwrap(), after);
    let e = live.what_if(order("BTCUSDT", 1.0, Some(live.symbol_key("BTCUSDT")))).unwrap_err();
    assert!(e.to_string().starts_with("order.symbol: \"BTCUSDT\" is not held"), "{e}");
}
