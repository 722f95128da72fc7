//! Market sweeps: one account under many market moves in one call, for
//! Monte-Carlo and historical stress, and for the risk tools (liquidation
//! prices, stress tests) that evaluate an account on moved markets.
//!
//! A scenario `k` moves each named asset's index price by a relative return,
//! `P_a·(1 + r_ka)`, and optionally every implied vol, `σ·(1 + v_k)`. Marks
//! move with their quote as `pmengine.risk.moved_market` moves them: a linear
//! contract's mark (settle units) by `(1 + r_b)/(1 + r_s)`, an inverse one's
//! (USD) by `1 + r_b`, each symbol by the factors of the first position that
//! holds it. Row `k` is then exactly `Engine::margin` on that moved market.
//!
//! The portfolio is resolved against the market once. Each scenario re-resolves
//! what a price moves (each contract's dollar delta, UPnL and bracketed size;
//! each option series, repriced at the moved forward and vol) and re-sums the
//! groups and assets in the portfolio's order, as `Engine::book` sums them, so
//! the book is bit for bit the one a rebuild gives; then the profile's model
//! evaluates it, the scenario model or `binance_pm`. Scenarios are independent
//! and each writes its own row: the result is bit-identical at any thread count.

use crate::engine::{Book, BookSlot, Engine, Scratch};
use crate::error::{CoreError, Result};
use crate::input::{fmt_num, MAX_MAGNITUDE, MAX_VOL, MIN_PRICE};
use crate::instrument::{contract_terms, moved_mark};
use crate::market::Market;
use crate::portfolio::OptionKind;
use crate::portfolio::{Portfolio, PositionRef};
use crate::pricing::YEAR_SECONDS;
use crate::result::MarginResult;
use crate::series::Quote;
use rayon::prelude::*;
use rustc_hash::FxHashMap;
use std::sync::Arc;

/// The market moves of a sweep.
#[derive(Debug, Clone, Copy)]
pub struct Moves<'a> {
    pub scenarios: usize,
    /// The assets whose index prices move: the columns of `returns`.
    pub assets: &'a [String],
    /// Relative price moves, row-major, `scenarios × assets.len()`: asset `j`
    /// of scenario `k` is priced `P·(1 + returns[k·m + j])`.
    pub returns: &'a [f64],
    /// Relative vol shifts, one per scenario (every implied vol times `1 + v`); `None`: vols stay.
    pub vol_shifts: Option<&'a [f64]>,
}

/// One row per scenario: the account's figures on the moved market (USD).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SweepResult {
    pub equity: Vec<f64>,
    pub adjusted_equity: Vec<f64>,
    pub maintenance_margin: Vec<f64>,
    pub initial_margin: Vec<f64>,
    pub available: Vec<f64>,
    pub uni_mmr: Vec<f64>,
    /// Index into `status_names` ([`crate::Status::code`]).
    pub status: Vec<u16>,
    /// The profile's status ladder, healthiest first, then `BANKRUPT`.
    pub status_names: Vec<String>,
}

/// Scenarios per unit of parallel work: large enough that a worker's set-up
/// (a copy of the book) is noise, small enough to balance two cores.
const CHUNK: usize = 256;

/// What a scenario needs to re-resolve one contract.
#[derive(Debug, Clone, Copy)]
struct ContractPlan<'a> {
    /// Position index (= book slot index), and its terms.
    slot: usize,
    position: PositionRef<'a>,
    /// Asset slots of the underlying and the settle asset.
    underlying: usize,
    settle: usize,
    /// The market's mark of the symbol, and the asset slots whose factors move it
    /// (the first position holding the symbol): `fb / fs` linear, `fb` inverse.
    mark: Option<f64>,
    mark_base: usize,
    mark_quote: usize,
    mark_inverse: bool,
}

/// What a scenario needs to reprice one option position.
#[derive(Debug, Clone, Copy)]
struct OptionPlan {
    /// Index into `Book::options`.
    option: usize,
    underlying: usize,
    settle: usize,
    /// The market's vol of the series (per symbol, else per underlying).
    vol: f64,
    tau: f64,
    /// The first option slot of the same series (itself if none before): priced once a scenario.
    same_as: usize,
}

/// The account resolved once, and how a move of its assets' prices moves it.
pub(crate) struct Plan<'a> {
    pub(crate) engine: &'a Engine,
    portfolio: &'a Portfolio,
    pub(crate) base: Book,
    /// Each book asset slot's name.
    pub(crate) names: Vec<&'a str>,
    contracts: Vec<ContractPlan<'a>>,
    options: Vec<OptionPlan>,
}

impl Engine {
    /// Evaluate `portfolio` on `market` moved by each scenario of `moves`, on
    /// `threads` threads (0: one per core). Row `k` equals `margin` on the moved
    /// market (see the module doc). Errors: a column asset without a price
    /// (`MissingMarketDataError` naming `assets[j]`), a repeated column, a move
    /// that is not finite or takes a price, a mark or a vol the account uses out
    /// of the input bounds (naming `moves[k, j]` or `vol_shifts[k]`).
    pub fn sweep(
        &self,
        portfolio: &Portfolio,
        market: &Market,
        moves: &Moves<'_>,
        threads: usize,
    ) -> Result<SweepResult> {
        let plan = Plan::new(self, portfolio, market)?;
        let column = plan.check(market, moves)?;
        let n = moves.scenarios;
        let mut rows = vec![Row::default(); n];
        let workers = threads_for(threads, n);
        let m = moves.assets.len();
        let scenario = |w: &mut Worker, k: usize| {
            for (f, c) in w.factors.iter_mut().zip(&column) {
                *f = c.map_or(1.0, |j| 1.0 + moves.returns[k * m + j]);
            }
            w.run(&plan, moves.vol_shifts.map(|v| 1.0 + v[k]))
        };
        if workers <= 1 {
            let mut w = Worker::new(&plan, false);
            for (k, row) in rows.iter_mut().enumerate() {
                *row = scenario(&mut w, k);
            }
        } else {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(workers)
                .build()
                .map_err(|e| CoreError::invalid("threads", format!("cannot start a thread pool: {e}")))?;
            pool.install(|| {
                rows.par_chunks_mut(CHUNK).enumerate().for_each_init(
                    || Worker::new(&plan, true),
                    |w, (c, chunk)| {
                        for (i, row) in chunk.iter_mut().enumerate() {
                            *row = scenario(w, c * CHUNK + i);
                        }
                    },
                )
            });
        }
        let status_names = self.params().status_names();
        let column = |f: fn(&Row) -> f64| rows.iter().map(f).collect();
        Ok(SweepResult {
            equity: column(|r| r.equity),
            adjusted_equity: column(|r| r.adjusted_equity),
            maintenance_margin: column(|r| r.maintenance_margin),
            initial_margin: column(|r| r.initial_margin),
            available: column(|r| r.available),
            uni_mmr: column(|r| r.uni_mmr),
            status: rows.iter().map(|r| r.status).collect(),
            status_names,
        })
    }
}

/// Threads worth starting for `n` scenarios (a pool costs more than a few chunks).
fn threads_for(threads: usize, n: usize) -> usize {
    let threads = if threads == 0 { rayon::current_num_threads().max(1) } else { threads };
    threads.min(n.div_ceil(4 * CHUNK))
}

/// The account's figures in one scenario.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Row {
    equity: f64,
    adjusted_equity: f64,
    maintenance_margin: f64,
    initial_margin: f64,
    available: f64,
    pub(crate) uni_mmr: f64,
    /// Index into the profile's ladder; its length: `BANKRUPT`.
    pub(crate) status: u16,
}

impl<'a> Plan<'a> {
    /// Each book asset slot's column in `moves` (`None`: the price stays), once
    /// the moves are checked: every moved price, mark and vol the account uses
    /// within the input bounds.
    fn check(&self, market: &Market, moves: &Moves<'_>) -> Result<Vec<Option<usize>>> {
        let m = moves.assets.len();
        let n = moves.scenarios;
        if moves.returns.len() != n * m {
            return Err(CoreError::invalid(
                "moves",
                format!("expected {n} scenarios × {m} assets = {} values, got {}", n * m, moves.returns.len()),
            ));
        }
        if let Some(v) = moves.vol_shifts {
            if v.len() != n {
                return Err(CoreError::invalid(
                    "vol_shifts",
                    format!("one per scenario: expected {n}, got {}", v.len()),
                ));
            }
        }
        let mut prices = Vec::with_capacity(m);
        for (j, a) in moves.assets.iter().enumerate() {
            if moves.assets[..j].contains(a) {
                return Err(CoreError::invalid(format!("assets[{j}]"), format!("{a} is already column {}", j - 1)));
            }
            let p = market.prices.get(a).copied().ok_or_else(|| CoreError::no_price(format!("assets[{j}]"), a))?;
            prices.push(p);
        }
        // Every moved price within the input bounds (as `Market.set_price` checks it).
        for k in 0..n {
            for (j, price) in prices.iter().enumerate() {
                let r = moves.returns[k * m + j];
                let moved = price * (1.0 + r);
                if !(r.is_finite() && (MIN_PRICE..=MAX_MAGNITUDE).contains(&moved)) {
                    return Err(CoreError::invalid(
                        format!("moves[{k}, {j}]"),
                        format!(
                            "moves {} to {} (must be finite, > -1 and keep the price within [{}, {}]), got {}",
                            moves.assets[j],
                            fmt_num(moved),
                            fmt_num(MIN_PRICE),
                            fmt_num(MAX_MAGNITUDE),
                            fmt_num(r)
                        ),
                    ));
                }
            }
        }

        let column: Vec<Option<usize>> = self.names.iter().map(|a| moves.assets.iter().position(|c| c == a)).collect();
        let (portfolio, base, contracts, options) = (self.portfolio, &self.base, &self.contracts, &self.options);
        // Every moved mark and vol the account uses within the input bounds.
        let factor = |k: usize, a: usize| column[a].map_or(1.0, |j| 1.0 + moves.returns[k * m + j]);
        for k in 0..n {
            for c in contracts {
                if let Some(mark) = c.mark {
                    let moved = moved_mark(mark, factor(k, c.mark_base), factor(k, c.mark_quote), c.mark_inverse);
                    if !(MIN_PRICE..=MAX_MAGNITUDE).contains(&moved) {
                        return Err(CoreError::invalid(
                            format!("moves[{k}]"),
                            format!(
                                "moves the mark of {} to {} (must stay within [{}, {}])",
                                portfolio.positions[c.slot].symbol(),
                                fmt_num(moved),
                                fmt_num(MIN_PRICE),
                                fmt_num(MAX_MAGNITUDE)
                            ),
                        ));
                    }
                }
            }
            if let Some(v) = moves.vol_shifts {
                for o in options {
                    let moved = o.vol * (1.0 + v[k]);
                    if !(v[k].is_finite() && moved > 0.0 && moved <= MAX_VOL) {
                        return Err(CoreError::invalid(
                            format!("vol_shifts[{k}]"),
                            format!(
                                "moves the vol of {} to {} (must be finite, > -1 and keep a vol within (0, {}]), got {}",
                                portfolio.positions[base.options[o.option].position].symbol(),
                                fmt_num(moved),
                                fmt_num(MAX_VOL),
                                fmt_num(v[k])
                            ),
                        ));
                    }
                }
            }
        }
        Ok(column)
    }

    /// The account resolved on `market`, and how each position follows its assets' prices.
    pub(crate) fn new(engine: &'a Engine, portfolio: &'a Portfolio, market: &Market) -> Result<Self> {
        let mut base = engine.book(portfolio, market)?;
        base.detail = false;
        // Names to slots by a hash map keeping each name's first place (a search
        // per position made a 20,000-symbol account's plan take seconds).
        let mut names: Vec<&str> = Vec::new();
        let mut slots: FxHashMap<&str, usize> = FxHashMap::default();
        for a in portfolio.assets() {
            slots.entry(a).or_insert_with(|| {
                names.push(a);
                names.len() - 1
            });
        }
        debug_assert_eq!(names.len(), base.assets.len());
        let slot_of = |a: &str| *slots.get(a).expect("every position's asset has a slot");

        let mut contracts = Vec::new();
        let mut options: Vec<OptionPlan> = Vec::new();
        let mut first_of_symbol: FxHashMap<&str, (usize, usize, bool)> = FxHashMap::default();
        // An option's terms (bits of strike and expiry) -> the first option slot with them.
        let mut first_of_series: FxHashMap<(&str, &str, &str, bool, u64, u64), usize> = FxHashMap::default();
        for (i, pos) in portfolio.positions.iter().enumerate() {
            let (u, s) = (slot_of(pos.underlying()), slot_of(pos.settle()));
            match base.slots[i] {
                BookSlot::Contract { inverse, .. } => {
                    let sym = pos.symbol();
                    let (mark_base, mark_quote, mark_inverse) = *first_of_symbol.entry(sym).or_insert((u, s, inverse));
                    contracts.push(ContractPlan {
                        slot: i,
                        position: pos.view(),
                        underlying: u,
                        settle: s,
                        mark: market.marks.get(sym).copied(),
                        mark_base,
                        mark_quote,
                        mark_inverse,
                    });
                }
                BookSlot::Option(o) => {
                    let PositionRef::Option { symbol, underlying, kind, strike, expiry, settle, .. } = pos.view()
                    else {
                        unreachable!("an option slot holds an option")
                    };
                    let vol =
                        *market.vols.get(symbol).or_else(|| market.vols.get(underlying)).expect("the book priced it");
                    // `+ 0.0`: -0.0 and 0.0 are the same term, as `==` has them.
                    let call = kind == OptionKind::Call;
                    let terms = (symbol, underlying, settle, call, (strike + 0.0).to_bits(), (expiry + 0.0).to_bits());
                    let same_as = *first_of_series.entry(terms).or_insert(o);
                    options.push(OptionPlan {
                        option: o,
                        underlying: u,
                        settle: s,
                        vol,
                        tau: (expiry - market.time) / YEAR_SECONDS,
                        same_as,
                    });
                }
            }
        }
        Ok(Plan { engine, portfolio, base, names, contracts, options })
    }
}

/// A worker's copy of the book and its buffers, reused from scenario to scenario.
pub(crate) struct Worker {
    book: Book,
    /// Each book asset slot's price factor in the scenario `run` evaluates.
    pub(crate) factors: Vec<f64>,
    /// The underlying price, settle price and vol each option slot's `series`
    /// was priced at: a scenario that leaves them (an option on an asset it
    /// does not move) keeps the series, the one pricing them again would give.
    priced_at: Vec<(f64, f64, f64)>,
    scratch: Scratch,
    out: MarginResult,
}

impl Worker {
    pub(crate) fn new(plan: &Plan<'_>, own_names: bool) -> Self {
        let mut book = plan.base.clone();
        if own_names {
            // Fresh names: workers on other cores do not share one reference count.
            book.group_names = book.group_names.iter().map(|n| Arc::from(&**n)).collect();
        }
        Worker {
            factors: vec![1.0; book.assets.len()],
            priced_at: vec![(f64::NAN, f64::NAN, f64::NAN); book.options.len()],
            book,
            scratch: Scratch::default(),
            out: MarginResult::default(),
        }
    }

    /// The scenario `factors` holds (each asset's price times its factor), with
    /// every vol times `vol_factor` (`None`: vols stay): move the book, evaluate it.
    pub(crate) fn run(&mut self, plan: &Plan<'_>, vol_factor: Option<f64>) -> Row {
        let (base, book) = (&plan.base, &mut self.book);
        for (a, slot) in book.assets.iter_mut().enumerate() {
            slot.price = base.assets[a].price * self.factors[a];
        }
        for c in &plan.contracts {
            let mark = c
                .mark
                .map(|mark| moved_mark(mark, self.factors[c.mark_base], self.factors[c.mark_quote], c.mark_inverse));
            let (pb, ps) = (book.assets[c.underlying].price, book.assets[c.settle].price);
            let t = contract_terms(c.position, mark, pb, ps);
            if let BookSlot::Contract { dollar_delta, underlying_price, upnl, size, .. } = &mut book.slots[c.slot] {
                (*dollar_delta, *underlying_price, *upnl, *size) = (t.dollar_delta, pb, t.upnl, t.size);
            }
        }
        if !plan.options.is_empty() {
            for o in &plan.options {
                let (pb, ps) = (book.assets[o.underlying].price, book.assets[o.settle].price);
                let vol = vol_factor.map_or(o.vol, |f| o.vol * f);
                if o.same_as != o.option {
                    book.options[o.option].series = Arc::clone(&book.options[o.same_as].series);
                } else if self.priced_at[o.option] != (pb, ps, vol) {
                    let PositionRef::Option { kind, strike, .. } =
                        plan.portfolio.positions[book.options[o.option].position].view()
                    else {
                        unreachable!("an option slot holds an option")
                    };
                    let g = book.options[o.option].group;
                    self.priced_at[o.option] = (pb, ps, vol);
                    let Book { groups, group_names, options, .. } = book;
                    let quote = Quote { kind, underlying_price: pb, settle_price: ps, strike, vol, tau: o.tau };
                    plan.engine.reprice_series(&mut options[o.option].series, &groups[g], &group_names[g], quote);
                }
            }
        }
        book.resum_all();
        plan.engine.evaluate_into(book, &mut self.scratch, &mut self.out);
        let r = &self.out;
        Row {
            equity: r.equity,
            adjusted_equity: r.adjusted_equity,
            maintenance_margin: r.maintenance_margin,
            initial_margin: r.initial_margin,
            available: r.available,
            uni_mmr: r.uni_mmr,
            status: r.status.code(plan.engine.params().status.len()),
        }
    }
}
