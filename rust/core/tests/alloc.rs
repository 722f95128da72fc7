//! The live account's hot paths allocate nothing once warm: on linear
//! instruments a tick, a what-if, an order check, re-margining, a deposit; on
//! options a tick (each series it touches is repriced in place). Counted with a
//! global allocator that tallies this thread's allocations.

use pmengine_core::{Engine, LiveAccount, Market, Order, Portfolio, RiskParams};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::Arc;

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations(f: impl FnOnce()) -> u64 {
    let before = ALLOCATIONS.with(Cell::get);
    f();
    ALLOCATIONS.with(Cell::get) - before
}

/// 50 linear and inverse positions on five underlyings, with a USDT loan.
fn account() -> LiveAccount {
    account_under(RiskParams::default_profile())
}

fn account_under(params: RiskParams) -> LiveAccount {
    let mut m = Market::new(1_795_478_400.0);
    let coins = [("BTC", 60_000.0), ("ETH", 3_000.0), ("SOL", 150.0), ("BNB", 600.0), ("XRP", 0.6)];
    for (a, p) in coins {
        m.set_price(a, p).unwrap();
    }
    m.set_price("USDT", 1.0).unwrap();
    m.set_mark("BTCUSDT-0", 60_030.0).unwrap();
    let mut p = Portfolio::new();
    p.add_balance("USDT", 200_000.0).unwrap();
    p.add_balance("BTC", 2.0).unwrap();
    p.add_balance("ETH", -5.0).unwrap();
    for i in 0..50 {
        let (coin, price) = coins[i % coins.len()];
        let qty = if i % 2 == 0 { 1.0 } else { -0.7 } * 10_000.0 / price;
        let v = serde_json::json!({"type": "linear", "symbol": format!("{coin}USDT-{}", i / 5), "underlying": coin,
                                   "qty": qty, "entry_price": price * 0.99});
        p.positions.push(pmengine_core::portfolio::parse_position(&v, "p").unwrap());
    }
    let v = serde_json::json!({"type": "inverse", "symbol": "BTCUSD_PERP", "underlying": "BTC",
                               "contract_size": 100, "contracts": -300, "entry_price": 61_000});
    p.positions.push(pmengine_core::portfolio::parse_position(&v, "p").unwrap());
    LiveAccount::new(Arc::new(Engine::new(params)), p, m).unwrap()
}

#[test]
fn linear_hot_paths_do_not_allocate() {
    let mut live = account();
    let order = |qty: f64| Order { symbol: "BTCUSDT-0".into(), qty, price: None, instrument: None };
    let (buy, sell) = (order(0.25), order(-0.25));
    // Warm up: buffers grow to the book's size once.
    live.update_price("BTC", 60_100.0).unwrap();
    live.margin_ref();
    live.what_if(&buy).unwrap();
    live.check_order(&sell).unwrap();
    let n = allocations(|| {
        for k in 0..200 {
            let p = 60_000.0 + k as f64;
            live.update_price("BTC", p).unwrap();
            live.update_price("USDT", 1.0 + 1e-6 * k as f64).unwrap();
            live.update_mark("BTCUSDT-0", p + 5.0).unwrap();
            std::hint::black_box(live.margin_ref().uni_mmr);
            std::hint::black_box(live.what_if(&buy).unwrap().maintenance_margin);
            std::hint::black_box(live.check_order(&sell).unwrap().0);
            live.deposit("USDT", 1.0).unwrap();
        }
    });
    assert_eq!(n, 0, "{n} allocations in 200 rounds of tick, what-if and order check");
    // And the account is still what a full recompute gives.
    let full = live.engine().margin(live.portfolio(), live.market()).unwrap();
    assert_eq!(live.margin(), full);
}

#[test]
fn fills_on_held_contracts_stay_exact() {
    let mut live = account();
    for k in 0..20 {
        let q = if k % 3 == 0 { -0.1 } else { 0.15 };
        live.apply_fill(&Order {
            symbol: "ETHUSDT-1".into(),
            qty: q,
            price: Some(3_000.0 + k as f64),
            instrument: None,
        })
        .unwrap();
        live.update_price("ETH", 2_990.0 + 2.0 * k as f64).unwrap();
    }
    let full = live.engine().margin(live.portfolio(), live.market()).unwrap();
    assert_eq!(live.margin(), full);
    assert_eq!(live.rebuilds(), 0);
}

#[test]
fn binance_pm_what_ifs_do_not_allocate() {
    // The kept rows of the current margin are copied into the what-if buffer in place.
    let mut params = RiskParams::default_profile();
    params.model = pmengine_core::params::Model::BinancePm;
    params.binance.as_mut().expect("the default profile has a [binance] table").default_collateral_rate = Some(0.9);
    let mut live = account_under(params);
    let order = |qty: f64| Order { symbol: "BTCUSDT-0".into(), qty, price: None, instrument: None };
    let (buy, sell) = (order(0.25), order(-0.25));
    live.update_price("BTC", 60_100.0).unwrap();
    live.what_if(&buy).unwrap();
    live.check_order(&sell).unwrap();
    let n = allocations(|| {
        for k in 0..200 {
            live.update_price("BTC", 60_000.0 + k as f64).unwrap();
            std::hint::black_box(live.what_if(&buy).unwrap().maintenance_margin);
            std::hint::black_box(live.check_order(&sell).unwrap().0);
        }
    });
    assert_eq!(n, 0, "{n} allocations in 200 rounds of tick, what-if and order check under binance_pm");
}

/// Option ticks reprice the series they touch in place: calls and puts on two
/// underlyings, price and vol ticks. (A series two positions hold is shared,
/// so a tick prices it anew.)
#[test]
fn option_ticks_do_not_allocate() {
    let mut m = Market::new(1_795_478_400.0);
    for (a, p) in [("BTC", 60_000.0), ("ETH", 3_000.0), ("USDT", 1.0)] {
        m.set_price(a, p).unwrap();
    }
    m.set_vol("BTC", 0.5).unwrap();
    m.set_vol("ETH", 0.6).unwrap();
    let mut p = Portfolio::new();
    p.add_balance("USDT", 200_000.0).unwrap();
    for i in 0..12 {
        let (coin, price) = if i % 2 == 0 { ("BTC", 60_000.0) } else { ("ETH", 3_000.0) };
        let strike = (price * (0.8 + 0.04 * (i / 2) as f64)).round();
        let kind = if i % 4 < 2 { "call" } else { "put" };
        let v = serde_json::json!({"type": "option", "symbol": format!("{coin}-{i}"), "underlying": coin,
                                   "kind": kind, "strike": strike, "expiry": "2026-12-25T08:00:00Z",
                                   "qty": 1.5 - 0.3 * i as f64});
        p.positions.push(pmengine_core::portfolio::parse_position(&v, "p").unwrap());
    }
    let mut live = LiveAccount::new(Arc::new(Engine::new(RiskParams::default_profile())), p, m).unwrap();
    // Warm up: the cache's entries and the series' buffers exist once.
    live.update_price("BTC", 60_100.0).unwrap();
    live.update_vol("BTC-4", 0.55).unwrap();
    live.margin_ref();
    let n = allocations(|| {
        for k in 0..100 {
            live.update_price("BTC", 60_000.0 + k as f64).unwrap();
            live.update_price("ETH", 3_000.0 - k as f64 * 0.1).unwrap();
            live.update_vol("BTC-4", 0.55 + 1e-4 * k as f64).unwrap();
            std::hint::black_box(live.margin_ref().uni_mmr);
        }
    });
    assert_eq!(n, 0, "{n} allocations in 100 rounds of option ticks");
    let full = live.engine().margin(live.portfolio(), live.market()).unwrap();
    assert_eq!(live.margin(), full);
}
