//! The batch engine against `Engine::margin`, account by account; thread count
//! and chunking never change a bit; bad rows are named.

use pmengine_core::{
    BalanceColumns, BatchOptions, BatchResult, Engine, GroupResult, MarginResult, Market, Model, OnError, OptionKind,
    Portfolio, Position, PositionColumns, RiskParams, Strings,
};

struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

const PRICES: [(&str, f64); 4] = [("BTC", 60000.0), ("ETH", 3000.0), ("SOL", 150.0), ("USDT", 1.0)];
const T0: f64 = 1_795_478_400.0;

fn market() -> Market {
    let mut m = Market::new(T0);
    for (a, p) in PRICES {
        m.set_price(a, p).unwrap();
    }
    m.set_price("DOGE", 0.2).unwrap();
    m.set_vol("BTC", 0.5).unwrap();
    m.set_vol("ETH", 0.6).unwrap();
    m.set_mark("BTCUSDT", 60030.0).unwrap();
    m
}

fn portfolio(rnd: &mut Lcg) -> Portfolio {
    let mut p = Portfolio::new();
    for (a, price) in PRICES {
        if rnd.next() < 0.5 {
            p.add_balance(a, (rnd.next() * 2.0 - 0.5) * 10_000.0 / price).unwrap();
        }
    }
    if rnd.next() < 0.1 {
        p.add_balance("DOGE", 5000.0).unwrap();
    }
    let n = (rnd.next() * 8.0) as usize;
    for i in 0..n {
        let (u, price) = PRICES[(rnd.next() * 3.0) as usize];
        let x = rnd.next();
        let pos = if x < 0.5 {
            Position::Linear {
                symbol: format!("{u}USDT"),
                underlying: u.into(),
                settle: "USDT".into(),
                qty: (rnd.next() - 0.5) * 20_000.0 / price,
                entry_price: price * (0.9 + 0.2 * rnd.next()),
                classic: Default::default(),
            }
        } else if x < 0.7 {
            Position::Inverse {
                symbol: format!("{u}USD_PERP"),
                underlying: u.into(),
                contract_size: 100.0,
                contracts: ((rnd.next() - 0.5) * 200.0).round(),
                entry_price: price * (0.9 + 0.2 * rnd.next()),
                classic: Default::default(),
            }
        } else {
            let u = if i % 2 == 0 { "BTC" } else { "ETH" };
            let price = if u == "BTC" { 60000.0 } else { 3000.0 };
            let strike = (price * (0.8 + 0.1 * (rnd.next() * 4.0).floor())).round();
            let kind = if rnd.next() < 0.5 { OptionKind::Call } else { OptionKind::Put };
            Position::Option {
                symbol: format!("{u}-{strike}-{}", kind.as_str()),
                underlying: u.into(),
                settle: "USDT".into(),
                kind,
                strike,
                expiry: T0 + 86400.0 * 30.0,
                qty: (rnd.next() - 0.5) * 4.0,
            }
        };
        p.add_position(pos).unwrap();
    }
    p
}

/// A dictionary-encoded column under construction.
#[derive(Default)]
struct Dict {
    codes: Vec<i32>,
    values: Vec<String>,
}
impl Dict {
    fn push(&mut self, s: Option<&str>) {
        let code = match s {
            None => -1,
            Some(s) => match self.values.iter().position(|v| v == s) {
                Some(i) => i as i32,
                None => {
                    self.values.push(s.to_string());
                    self.values.len() as i32 - 1
                }
            },
        };
        self.codes.push(code);
    }
    fn view(&self) -> Strings<'_> {
        Strings { codes: &self.codes, values: &self.values }
    }
}

#[derive(Default)]
struct Columns {
    account: Vec<i64>,
    ty: Dict,
    symbol: Dict,
    underlying: Dict,
    settle: Dict,
    kind: Dict,
    qty: Vec<f64>,
    entry_price: Vec<f64>,
    contract_size: Vec<f64>,
    strike: Vec<f64>,
    expiry: Vec<f64>,
    bal_account: Vec<i64>,
    asset: Dict,
    bal_qty: Vec<f64>,
    /// Read only by `run_with_loans`: per balance row, per position row.
    borrowed: Vec<f64>,
    interest: Vec<f64>,
    leverage: Vec<f64>,
}

impl Columns {
    fn add(&mut self, id: i64, p: &Portfolio) {
        for (a, q) in &p.balances {
            self.bal_account.push(id);
            self.asset.push(Some(a));
            self.bal_qty.push(*q);
            self.borrowed.push(0.0);
            self.interest.push(0.0);
        }
        for pos in &p.positions {
            self.account.push(id);
            self.ty.push(Some(pos.type_name()));
            self.symbol.push(Some(pos.symbol()));
            self.underlying.push(Some(pos.underlying()));
            let nan = f64::NAN;
            let (settle, kind, qty, entry, size, strike, expiry) = match pos {
                Position::Linear { settle, qty, entry_price, .. } => {
                    (Some(settle.as_str()), None, *qty, *entry_price, nan, nan, nan)
                }
                Position::Inverse { contract_size, contracts, entry_price, .. } => {
                    (None, None, *contracts, *entry_price, *contract_size, nan, nan)
                }
                Position::Option { settle, kind, strike, expiry, qty, .. } => {
                    (Some(settle.as_str()), Some(kind.as_str()), *qty, nan, nan, *strike, *expiry)
                }
            };
            self.settle.push(settle);
            self.kind.push(kind);
            self.qty.push(qty);
            self.entry_price.push(entry);
            self.contract_size.push(size);
            self.strike.push(strike);
            self.expiry.push(expiry);
            self.leverage.push(f64::NAN);
        }
    }

    /// `run` with the loan and leverage columns.
    fn run_with_loans(
        &self,
        engine: &Engine,
        market: &Market,
        options: &BatchOptions,
    ) -> pmengine_core::Result<BatchResult> {
        self.margin(engine, market, options, true)
    }

    fn run(&self, engine: &Engine, market: &Market, options: &BatchOptions) -> pmengine_core::Result<BatchResult> {
        self.margin(engine, market, options, false)
    }

    /// The batch of these columns; `loans`: with the leverage, borrowed and interest columns.
    fn margin(
        &self,
        engine: &Engine,
        market: &Market,
        options: &BatchOptions,
        loans: bool,
    ) -> pmengine_core::Result<BatchResult> {
        let positions = PositionColumns {
            account: &self.account,
            kind_of_instrument: self.ty.view(),
            symbol: self.symbol.view(),
            underlying: self.underlying.view(),
            settle: Some(self.settle.view()),
            qty: &self.qty,
            entry_price: Some(&self.entry_price),
            contract_size: Some(&self.contract_size),
            strike: Some(&self.strike),
            expiry: Some(&self.expiry),
            option_kind: Some(self.kind.view()),
            leverage: loans.then_some(&self.leverage[..]),
        };
        let balances = BalanceColumns {
            account: &self.bal_account,
            asset: self.asset.view(),
            qty: &self.bal_qty,
            borrowed: loans.then_some(&self.borrowed[..]),
            interest: loans.then_some(&self.interest[..]),
        };
        engine.margin_batch(&positions, &balances, market, options)
    }
}

fn book(n: usize, seed: u64) -> (Vec<(i64, Portfolio)>, Columns) {
    let mut rnd = Lcg(seed);
    let accounts: Vec<(i64, Portfolio)> = (0..n).map(|i| ((i as i64 * 7919) % 1000, portfolio(&mut rnd))).collect();
    let mut c = Columns::default();
    for (id, p) in &accounts {
        c.add(*id, p);
    }
    (accounts, c)
}

fn opts(threads: usize, chunk_size: usize) -> BatchOptions {
    BatchOptions { threads, chunk_size, on_error: OnError::Raise, ..Default::default() }
}

#[test]
fn batch_equals_single_account_margin() {
    let engine = Engine::new(RiskParams::default_profile());
    let market = market();
    let (accounts, cols) = book(300, 5);
    let out = cols.run(&engine, &market, &opts(2, 16)).unwrap();
    // An account exists through its rows: one without any is not in the output.
    let mut sorted: Vec<_> =
        accounts.into_iter().filter(|(_, p)| !p.balances.is_empty() || !p.positions.is_empty()).collect();
    sorted.sort_by_key(|(id, _)| *id);
    assert_eq!(out.account, sorted.iter().map(|(id, _)| *id).collect::<Vec<_>>());
    for (i, (_, p)) in sorted.iter().enumerate() {
        let r = engine.margin(p, &market).unwrap();
        let same = |a: f64, b: f64| a == b || (a.is_nan() && b.is_nan());
        assert!(same(out.equity[i], r.equity), "account {i}");
        assert!(same(out.adjusted_equity[i], r.adjusted_equity));
        assert!(
            same(out.maintenance_margin[i], r.maintenance_margin),
            "{} {}",
            out.maintenance_margin[i],
            r.maintenance_margin
        );
        assert!(same(out.initial_margin[i], r.initial_margin));
        assert!(same(out.available[i], r.available));
        assert!(same(out.uni_mmr[i], r.uni_mmr));
        assert_eq!(out.statuses[out.status[i] as usize], engine.params().status_name(r.status));
        let worst = worst_of(&r);
        let w = out.worst_group[i];
        assert_eq!((w >= 0).then(|| out.groups[w as usize].as_str()), worst.map(|g| &*g.name), "account {i}");
        let scenario = worst.map_or((f64::NAN, f64::NAN), |g| (g.worst_price_move, g.worst_vol_shock));
        assert_eq!(out.worst_price_move[i].to_bits(), scenario.0.to_bits());
        assert_eq!(out.worst_vol_shock[i].to_bits(), scenario.1.to_bits());
    }
}

#[test]
fn threads_and_chunks_change_no_bit() {
    let engine = Engine::new(RiskParams::default_profile());
    let (_, cols) = book(400, 9);
    let one = cols.run(&engine, &market(), &opts(1, 1000)).unwrap();
    for (threads, chunk) in [(2, 1), (2, 7), (3, 64)] {
        let other = cols.run(&engine, &market(), &opts(threads, chunk)).unwrap();
        let bits = |r: &BatchResult| {
            [&r.equity, &r.maintenance_margin, &r.uni_mmr, &r.worst_price_move]
                .iter()
                .flat_map(|c| c.iter().map(|x| x.to_bits()))
                .collect::<Vec<_>>()
        };
        assert_eq!(bits(&one), bits(&other));
        assert_eq!(one.status, other.status);
        assert_eq!(one.worst_group, other.worst_group);
    }
}

#[test]
fn bad_rows_are_named_or_collected() {
    let engine = Engine::new(RiskParams::default_profile());
    let (_, mut cols) = book(50, 3);
    let row = cols.ty.codes.iter().position(|&c| cols.ty.values[c as usize] == "linear").unwrap();
    cols.entry_price[row] = 0.0;
    let err = cols.run(&engine, &market(), &opts(2, 4)).unwrap_err();
    assert_eq!(err.to_string(), format!("positions[{row}].entry_price: must be > 0, got 0"));

    let collect = BatchOptions { on_error: OnError::Collect, ..opts(2, 4) };
    let out = cols.run(&engine, &market(), &collect).unwrap();
    assert_eq!(out.errors.len(), 1);
    let (i, msg) = &out.errors[0];
    assert_eq!(out.account[*i], cols.account[row]);
    assert!(msg.starts_with(&format!("positions[{row}].entry_price")));
    assert_eq!(out.statuses[out.status[*i] as usize], "ERROR");
    assert!(out.maintenance_margin[*i].is_nan());
    assert_eq!(out.maintenance_margin.iter().filter(|x| x.is_nan()).count(), 1);

    // A missing price names the balance row.
    let (_, mut cols) = book(20, 4);
    cols.bal_account.push(999_999);
    cols.asset.push(Some("XYZ"));
    cols.bal_qty.push(1.0);
    let r = cols.bal_account.len() - 1;
    let err = cols.run(&engine, &market(), &opts(1, 4)).unwrap_err();
    assert_eq!(err.to_string(), format!("balances[{r}].asset: no price for XYZ in market.prices"));
}

#[test]
fn an_option_settled_in_a_risky_asset_is_named_on_both_paths() {
    // The columnar path refuses it by the settle asset's id (`Engine::settles_options`
    // read once per asset), the per-account path names it.
    let engine = Engine::new(RiskParams::default_profile());
    let (_, mut cols) = book(200, 21);
    let btc = match cols.settle.values.iter().position(|v| v == "BTC") {
        Some(i) => i,
        None => {
            cols.settle.values.push("BTC".into());
            cols.settle.values.len() - 1
        }
    };
    let options: Vec<usize> =
        (0..cols.ty.codes.len()).filter(|&r| cols.ty.values[cols.ty.codes[r] as usize] == "option").collect();
    for &r in options.iter().step_by(5) {
        cols.settle.codes[r] = btc as i32;
    }
    for (threads, chunk) in [(1, 1000), (2, 3)] {
        let on = BatchOptions { on_error: OnError::Collect, ..opts(threads, chunk) };
        let fast = cols.run(&engine, &market(), &on).unwrap();
        let slow = cols.run(&engine, &market(), &BatchOptions { columnar: false, ..on }).unwrap();
        assert!(!fast.errors.is_empty());
        assert!(
            fast.errors.iter().all(|(_, m)| m.contains("an option must settle in a stablecoin")),
            "{:?}",
            fast.errors
        );
        assert_same_bits(&fast, &slow, &format!("{threads} {chunk}"));
    }
}

#[test]
fn a_short_leverage_column_is_named() {
    let engine = Engine::new(RiskParams::default_profile());
    let (_, mut cols) = book(20, 5);
    cols.leverage.pop();
    let err = cols.run_with_loans(&engine, &market(), &opts(1, 4)).unwrap_err();
    let rows = cols.account.len();
    assert_eq!(err.to_string(), format!("positions.leverage: has {} rows, expected {rows}", rows - 1));
}

/// Every column of two results, bit for bit (NaN included), and their errors.
fn assert_same_bits(a: &BatchResult, b: &BatchResult, what: &str) {
    let columns = |r: &BatchResult| {
        [
            &r.equity,
            &r.adjusted_equity,
            &r.maintenance_margin,
            &r.initial_margin,
            &r.available,
            &r.uni_mmr,
            &r.worst_price_move,
            &r.worst_vol_shock,
        ]
        .iter()
        .map(|c| c.iter().map(|x| x.to_bits()).collect::<Vec<_>>())
        .collect::<Vec<_>>()
    };
    assert_eq!(a.account, b.account, "{what}");
    assert_eq!(columns(a), columns(b), "{what}");
    assert_eq!(
        (&a.status, &a.worst_group, &a.statuses, &a.groups),
        (&b.status, &b.worst_group, &b.statuses, &b.groups)
    );
    assert_eq!(a.errors, b.errors, "{what}");
}

/// The default profile under the `binance_pm` model, with `default_collateral_rate`
/// for the assets without bands when given.
fn binance_profile(default_collateral_rate: Option<f64>) -> RiskParams {
    let mut binance: toml::Table = toml::from_str(pmengine_core::params::DEFAULT_PROFILE_TOML).unwrap();
    binance.insert("model".into(), "binance_pm".into());
    if let Some(rate) = default_collateral_rate {
        let table = binance["binance"].as_table_mut().unwrap();
        table.insert("default_collateral_rate".into(), rate.into());
    }
    RiskParams::from_toml_str(&toml::to_string(&binance).unwrap()).unwrap()
}

#[test]
fn columnar_path_equals_per_account_path() {
    // Both models; loans, leverage, unsorted rows, an untabled group (DOGE),
    // options (the columnar path under the scenario model, the per-account path
    // under binance_pm, which refuses them) and bad rows (collected) mixed in.
    for (profile, seed) in [(RiskParams::default_profile(), 11), (binance_profile(None), 12)] {
        let engine = Engine::new(profile);
        let market = market();
        let (_, mut cols) = book(600, seed);
        let mut rnd = Lcg(seed);
        for i in 0..cols.borrowed.len() {
            if rnd.next() < 0.3 {
                cols.borrowed[i] = rnd.next() * cols.bal_qty[i].abs();
                cols.interest[i] = rnd.next() * 0.01 * cols.bal_qty[i].abs();
            }
        }
        for l in cols.leverage.iter_mut() {
            if rnd.next() < 0.3 {
                *l = (1.0 + rnd.next() * 20.0).round();
            }
        }
        for q in cols.qty.iter_mut().step_by(97) {
            *q = f64::NAN; // a bad row every 97
        }
        for (threads, chunk) in [(1, 1000), (2, 3)] {
            let on = BatchOptions { on_error: OnError::Collect, ..opts(threads, chunk) };
            let off = BatchOptions { columnar: false, ..on };
            let fast = cols.run_with_loans(&engine, &market, &on).unwrap();
            let slow = cols.run_with_loans(&engine, &market, &off).unwrap();
            assert!(fast.errors.len() >= cols.qty.len() / 97, "bad rows are collected");
            assert!(fast.errors.len() < fast.account.len(), "most accounts are margined");
            assert_same_bits(&fast, &slow, &format!("{:?} {threads} {chunk}", engine.params().model));
            // In raise mode both name the same first bad row.
            let raise = |columnar| BatchOptions { on_error: OnError::Raise, columnar, ..on };
            let e1 = cols.run_with_loans(&engine, &market, &raise(true)).unwrap_err().to_string();
            let e2 = cols.run_with_loans(&engine, &market, &raise(false)).unwrap_err().to_string();
            assert_eq!(e1, e2);
        }
    }
}

/// The group an account's single margin shows as its worst: the listed group
/// with the largest requirement above 0, the first on ties.
fn worst_of(r: &MarginResult) -> Option<&GroupResult> {
    let mut worst: Option<&GroupResult> = None;
    for g in &r.groups {
        if g.requirement > 0.0 && worst.is_none_or(|w| g.requirement > w.requirement) {
            worst = Some(g);
        }
    }
    worst
}

#[test]
fn worst_group_is_the_first_of_the_largest_requirement() {
    // DOGE and PEPE have no group table: the same "*" parameters, so the same
    // exposure at the same price ties them (in either order of first use).
    // The other accounts' groups all have a requirement of 0: stablecoins,
    // unhedged long spot, contracts netted to nothing. Both models (binance_pm
    // lists no groups: no worst group), both paths, several chunkings.
    let linear = |u: &str, qty: f64| Position::Linear {
        symbol: format!("{u}USDT"),
        underlying: u.into(),
        settle: "USDT".into(),
        qty,
        entry_price: 0.2,
        classic: Default::default(),
    };
    let account = |balances: &[(&str, f64)], positions: Vec<Position>| {
        let mut p = Portfolio::new();
        for &(a, q) in balances {
            p.add_balance(a, q).unwrap();
        }
        for pos in positions {
            p.add_position(pos).unwrap();
        }
        p
    };
    let usdt = [("USDT", 10_000.0)];
    let accounts = [
        account(&usdt, vec![linear("DOGE", 5000.0), linear("PEPE", 5000.0)]),
        account(&usdt, vec![linear("PEPE", -5000.0), linear("DOGE", -5000.0)]),
        account(&usdt, vec![linear("DOGE", 5000.0), linear("PEPE", 5000.0), linear("BTC", 0.1)]),
        account(&usdt, vec![linear("PEPE", 5000.0), linear("DOGE", 2000.0), linear("PEPE", 1.0)]),
        account(&usdt, vec![]),
        account(&[("BTC", 1.0), ("USDT", 100.0)], vec![]),
        account(&usdt, vec![linear("DOGE", 5000.0), linear("DOGE", -5000.0)]),
    ];
    let mut market = market();
    market.set_price("PEPE", 0.2).unwrap();
    let mut cols = Columns::default();
    for (id, p) in accounts.iter().enumerate() {
        cols.add(id as i64, p);
    }
    for profile in [RiskParams::default_profile(), binance_profile(Some(0.5))] {
        let engine = Engine::new(profile);
        let singles: Vec<MarginResult> = accounts.iter().map(|p| engine.margin(p, &market).unwrap()).collect();
        let scenario = engine.params().model == Model::Scenario;
        if scenario {
            let groups = |i: usize| singles[i].groups.iter().map(|g| (&*g.name, g.requirement)).collect::<Vec<_>>();
            let requirement = |i: usize, name: &str| groups(i).iter().find(|g| g.0 == name).map(|g| g.1);
            for i in [0, 1] {
                assert_eq!(requirement(i, "DOGE"), requirement(i, "PEPE"), "a tie: {:?}", groups(i));
            }
            for i in 4..7 {
                assert!(!groups(i).is_empty() && groups(i).iter().all(|g| g.1 == 0.0), "{:?}", groups(i));
            }
        }
        let expected: Vec<Option<&str>> = singles.iter().map(|r| worst_of(r).map(|g| &*g.name)).collect();
        let expected_scenario = [Some("DOGE"), Some("PEPE"), Some("BTC"), Some("PEPE"), None, None, None];
        assert_eq!(expected, if scenario { expected_scenario.to_vec() } else { vec![None; 7] });
        for (threads, chunk) in [(1, 1000), (2, 1), (2, 3)] {
            for columnar in [true, false] {
                let out = cols.run(&engine, &market, &BatchOptions { columnar, ..opts(threads, chunk) }).unwrap();
                let what = format!("{:?} {threads} {chunk} {columnar}", engine.params().model);
                for (i, r) in singles.iter().enumerate() {
                    let w = out.worst_group[i];
                    assert_eq!((w >= 0).then(|| out.groups[w as usize].as_str()), expected[i], "{what} {i}");
                    let (price_move, vol_shock) =
                        worst_of(r).map_or((f64::NAN, f64::NAN), |g| (g.worst_price_move, g.worst_vol_shock));
                    assert_eq!(out.worst_price_move[i].to_bits(), price_move.to_bits(), "{what} {i}");
                    assert_eq!(out.worst_vol_shock[i].to_bits(), vol_shock.to_bits(), "{what} {i}");
                    assert_eq!(out.maintenance_margin[i].to_bits(), r.maintenance_margin.to_bits(), "{what} {i}");
                    assert_eq!(out.uni_mmr[i].to_bits(), r.uni_mmr.to_bits(), "{what} {i}");
                }
            }
        }
    }
}

#[test]
fn rows_of_one_symbol_with_other_codes_equal_the_per_account_path() {
    // The columnar path decodes a symbol's first row and reuses what its codes
    // name for the symbol's later rows with the same codes: rows of a symbol
    // with another underlying, type, settle or option kind (good or bad), in
    // one account or across accounts, must give the per-account path's bits
    // and errors, under both models.
    let mut binance: toml::Table = toml::from_str(pmengine_core::params::DEFAULT_PROFILE_TOML).unwrap();
    binance.insert("model".into(), "binance_pm".into());
    let binance = RiskParams::from_toml_str(&toml::to_string(&binance).unwrap()).unwrap();
    for (profile, seed) in [(RiskParams::default_profile(), 31), (binance, 32)] {
        let engine = Engine::new(profile);
        let (_, mut cols) = book(400, seed);
        let mut rnd = Lcg(seed);
        let code = |d: &mut Dict, v: &str| match d.values.iter().position(|x| x == v) {
            Some(i) => i as i32,
            None => {
                d.values.push(v.to_string());
                d.values.len() as i32 - 1
            }
        };
        let (eth, sol) = (code(&mut cols.underlying, "ETH"), code(&mut cols.underlying, "SOL"));
        let (usdt, btc) = (code(&mut cols.settle, "USDT"), code(&mut cols.settle, "BTC"));
        let (linear, inverse, option) =
            (code(&mut cols.ty, "linear"), code(&mut cols.ty, "inverse"), code(&mut cols.ty, "option"));
        let bad_type = code(&mut cols.ty, "swap");
        let put = code(&mut cols.kind, "put");
        for r in 0..cols.account.len() {
            let x = rnd.next();
            let ty = cols.ty.codes[r];
            match x {
                // Another underlying for the same symbol (a netted entry in another group).
                _ if x < 0.04 => cols.underlying.codes[r] = if rnd.next() < 0.5 { eth } else { sol },
                // Another type: a linear symbol's row read as inverse, or the reverse.
                _ if x < 0.06 && ty == linear => {
                    cols.ty.codes[r] = inverse;
                    cols.contract_size[r] = 10.0;
                    cols.settle.codes[r] = -1;
                }
                _ if x < 0.08 && ty == inverse => {
                    cols.ty.codes[r] = linear;
                    cols.settle.codes[r] = usdt;
                }
                // A settle given where it was null, or another settle (an inverse one must be its underlying).
                _ if x < 0.10 => cols.settle.codes[r] = if rnd.next() < 0.5 { btc } else { usdt },
                _ if x < 0.11 && ty == linear => cols.settle.codes[r] = -1,
                // Bad codes: no type, a type that is not one, no underlying.
                _ if x < 0.115 => cols.ty.codes[r] = -1,
                _ if x < 0.12 => cols.ty.codes[r] = bad_type,
                _ if x < 0.125 => cols.underlying.codes[r] = -1,
                // An option's kind flipped or null; an option row of a contract symbol.
                _ if x < 0.14 && ty == option => cols.kind.codes[r] = if rnd.next() < 0.5 { put } else { -1 },
                _ if x < 0.15 && ty == linear => {
                    cols.ty.codes[r] = option;
                    cols.kind.codes[r] = put;
                    cols.strike[r] = 3000.0;
                    cols.expiry[r] = T0 + 86400.0 * 7.0;
                }
                _ => {}
            }
        }
        for (threads, chunk) in [(1, 1000), (2, 3)] {
            let on = BatchOptions { on_error: OnError::Collect, ..opts(threads, chunk) };
            let fast = cols.run_with_loans(&engine, &market(), &on).unwrap();
            let slow = cols.run_with_loans(&engine, &market(), &BatchOptions { columnar: false, ..on }).unwrap();
            // binance_pm refuses every account with an option.
            assert!(!fast.errors.is_empty() && fast.errors.len() < fast.account.len(), "{}", fast.errors.len());
            assert_same_bits(&fast, &slow, &format!("{:?} {threads} {chunk}", engine.params().model));
        }
    }
}

#[test]
fn a_dictionary_code_out_of_range_is_named_by_its_row_in_the_stream() {
    // A part of a stream (`first_rows`): the bad row is named by its number in the whole table.
    let engine = Engine::new(RiskParams::default_profile());
    let (_, mut cols) = book(20, 3);
    cols.symbol.codes[3] = 999;
    let options = BatchOptions { first_rows: (100, 50), ..opts(1, 8) };
    let err = cols.run(&engine, &market(), &options).unwrap_err().to_string();
    assert!(err.starts_with("positions[103].symbol: dictionary code 999 out of range"), "{err}");
    cols.symbol.codes[3] = 0;
    let a = cols.asset.codes.len() - 1;
    cols.asset.codes[a] = cols.asset.values.len() as i32 + 5;
    let err = cols.run(&engine, &market(), &options).unwrap_err().to_string();
    assert!(err.starts_with(&format!("balances[{}].asset: dictionary code", 50 + a)), "{err}");
}
