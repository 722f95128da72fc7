//! The batch's columnar path: an account's book assembled straight from the
//! columns by ids, then netted by the same pass as every other path
//! (`Engine::evaluate_totals`: `evaluate_into` without group rows; one
//! model: this file holds no formula).
//!
//! The per-account builder (`BookBuilder`) finds an asset, a group or a
//! netted symbol by searching what the book holds so far. Here every name of
//! the call already has an id (the scan resolved each dictionary value once),
//! so a worker keeps one slot per id and finds it by indexing: a position
//! costs its checks, its contract terms (a linear contract's default mark
//! looked up, divided once per call) and three sums, and the book's buffers
//! (its group slots in place) are reused from one account to the next, so
//! nothing is allocated per account. Books for the scenario model
//! keep no per-position slots (it reads none). Rows are read in
//! the account's order and the book is laid out as the per-account builder
//! lays it out (assets and groups by first use, symbols netted by first use,
//! every sum in row order), so the result is the same bit for bit.
//!
//! A symbol's first row is decoded into a template (its ids, type and mark),
//! which its later rows with the same codes reuse, and its first contract row
//! in a book finds the slots its later rows add to: such a row costs its
//! numbers' checks and sums.
//!
//! A row is read by ids, not names: the rule of a name (`portfolio::is_name`)
//! is checked once per dictionary value, the rules of its numbers by
//! `portfolio::numbers_hold` (the list `validate_ref` checks, with the
//! predicates of `input`), the type, option kind, vol and an inverse
//! contract's settle by the per-code tables and rules of `Scan::position`.
//!
//! An option (scenario model) adds its series' vectors, read from the
//! market's cache (priced there once per snapshot) once per symbol id and
//! terms, as the per-account builder adds them; group slots keep their
//! option vectors' storage from one book to the next.
//!
//! A bad row, an option under `binance_pm` (which has no option formula), an
//! asset the book cannot take (no price; under `binance_pm`, no collateral
//! rate) sends the account to the per-account path instead, which names the
//! error of a bad row.

use super::{Account, Instrument, PositionColumns, Scan};
use crate::brackets::BracketKind;
use crate::engine::{AssetSlot, Book, Engine, GroupSlot};
use crate::instrument::mark_or_index;
use crate::market::Market;
use crate::offsets::OffsetPair;
use crate::params::Model;
use crate::portfolio::{is_name, numbers_hold, OptionKind, PositionRef, DEFAULT_SETTLE};
use crate::series::Series;
use rustc_hash::FxHashMap as HashMap;
use std::sync::Arc;

/// No slot (an id the book does not hold yet), or no group (an asset that cannot enter a book).
const NONE: u32 = u32::MAX;

/// The call's names as the columnar path needs them, by the scan's ids.
pub(super) struct Layout<'a> {
    /// Per asset id: its group id (an index of the call's group dictionary), or
    /// `NONE` when it cannot enter a book.
    asset_group: Vec<u32>,
    /// Per asset id: its empty slot (in group slot 0, which the book sets), or
    /// `None` when it cannot enter a book (its group is `NONE`).
    asset_slots: Vec<Option<AssetSlot>>,
    /// Per asset id: whether an option may settle in it (`Engine::settles_options`
    /// of its group's table; `false` when it cannot enter a book).
    settles_options: Vec<bool>,
    /// Per group id: its name and the engine's table of its parameters.
    groups: Vec<(&'a str, usize)>,
    /// Group ids by name, and by engine table for a group with a table of its own.
    group_ids: HashMap<&'a str, u32>,
    table_group: Vec<u32>,
    /// `mark_or_index` of a linear contract without a mark, per (underlying, settle) asset id pair
    /// (`u · assets + s`), when the call names at most [`MARK_TABLE`] assets:
    /// the division leaves the row loop.
    linear_marks: Vec<f64>,
    /// How many symbols the call names.
    symbols: usize,
    /// Per code of `pos.symbol`: whether the value keeps the name rule
    /// (`portfolio::is_name`, checked once per value, not once per row).
    symbol_named: Vec<bool>,
    /// Per code of `pos.underlying`: its asset id, or `NONE` when the value
    /// breaks the name rule.
    underlying: Vec<u32>,
    /// The profile's offsets between groups the call names, by group id, in the profile's order.
    offsets: Vec<OffsetPair>,
    binance: bool,
}

/// Most assets a call may name for [`Layout::linear_marks`] (a table of their square).
const MARK_TABLE: usize = 64;

impl<'a> Layout<'a> {
    pub(super) fn new(engine: &Engine, scan: &Scan<'a>, groups: &'a [String]) -> Self {
        let binance = engine.params().model == Model::BinancePm;
        let group_ids: HashMap<&'a str, u32> = groups.iter().enumerate().map(|(i, g)| (g.as_str(), i as u32)).collect();
        let mut tables: Vec<(&'a str, usize)> = groups.iter().map(|g| (g.as_str(), 0)).collect();
        let mut table_group = Vec::new();
        let asset_group: Vec<u32> = (scan.assets.iter())
            .map(|(_, terms)| match terms {
                Some(t) if !binance || crate::binance::check_asset(engine, t).is_ok() => {
                    let Some(&id) = group_ids.get(t.group) else { return NONE };
                    tables[id as usize].1 = t.table;
                    if t.table > 0 {
                        if table_group.len() <= t.table {
                            table_group.resize(t.table + 1, NONE);
                        }
                        table_group[t.table] = id;
                    }
                    id
                }
                _ => NONE,
            })
            .collect();
        let asset_slots = (scan.assets.iter().zip(&asset_group))
            .map(|((_, terms), &g)| terms.filter(|_| g != NONE).map(|t| AssetSlot::new(&t, 0)))
            .collect();
        let settles_options =
            asset_group.iter().map(|&g| g != NONE && engine.settles_options(tables[g as usize].1)).collect();
        let n = scan.assets.len();
        let price = |(_, t): &(&str, Option<crate::engine::AssetTerms<'_>>)| t.map_or(f64::NAN, |t| t.price);
        let linear_marks = match n <= MARK_TABLE {
            true => (scan.assets.iter())
                .flat_map(|u| scan.assets.iter().map(move |s| mark_or_index(None, false, price(u), price(s))))
                .collect(),
            false => Vec::new(),
        };
        let symbols = scan.pos.symbol.values.len();
        let symbol_named = scan.pos.symbol.values.iter().map(|v| is_name(v)).collect();
        let underlying = (scan.pos.underlying.values.iter().zip(&scan.underlying_asset))
            .map(|(v, &id)| if is_name(v) { id } else { NONE })
            .collect();
        let mut layout = Layout {
            asset_group,
            asset_slots,
            settles_options,
            groups: tables,
            group_ids,
            table_group,
            linear_marks,
            symbols,
            symbol_named,
            underlying,
            offsets: Vec::new(),
            binance,
        };
        let offsets = engine.offsets_between(|name, table| layout.group_id(name, table).map(|id| id as usize));
        layout.offsets = offsets.collect();
        layout
    }

    /// The mark of a contract without one in the market, when the table has it.
    #[inline]
    fn default_linear_mark(&self, u: u32, s: u32) -> Option<f64> {
        self.linear_marks.get(u as usize * self.asset_group.len() + s as usize).copied()
    }

    /// The id of group `name` whose parameters are table `table`, if the call names it.
    fn group_id(&self, name: &str, table: usize) -> Option<u32> {
        match table {
            0 => self.group_ids.get(name).copied(),
            t => self.table_group.get(t).copied().filter(|&g| g != NONE),
        }
    }
}

/// The terms that, with its symbol, name an option series in the market's
/// cache (`SeriesTerms`), by the call's asset ids; prices by their bits.
#[derive(Clone, Copy, PartialEq)]
struct SeriesKey {
    underlying: u32,
    settle: u32,
    kind: OptionKind,
    strike: u64,
    expiry: u64,
}

/// What a row's codes decode to (`decode`), kept per symbol code: a row
/// carrying the same codes keeps the same rules and names the same ids, so
/// only its numbers (and an option's kind) are read and checked.
#[derive(Clone, Copy)]
struct Template {
    /// The row's codes of underlying, type and settle (`row_key`); never a row's when unset.
    key: [u64; 2],
    /// Asset ids of the underlying and of the settle asset (an inverse contract's: its underlying).
    underlying: u32,
    settle: u32,
    instrument: Instrument,
    /// A contract's mark: the market's, or a linear contract's default (`Layout::default_linear_mark`).
    mark: Option<f64>,
}

impl Template {
    /// Unset: its key has no bit of `row_key`'s mark, so no row matches it.
    const NONE: Template =
        Template { key: [0; 2], underlying: NONE, settle: NONE, instrument: Instrument::Linear, mark: None };
}

/// Row `k`'s codes of underlying, type and settle (-1: no settle column), with
/// a mark bit no unset template has.
#[inline(always)]
fn row_key(c: &PositionColumns<'_>, k: usize) -> [u64; 2] {
    let code = |x: i32| u64::from(x as u32);
    let settle = c.settle.map_or(-1, |s| s.codes[k]);
    [code(c.underlying.codes[k]) | code(c.kind_of_instrument.codes[k]) << 32, code(settle) | 1 << 32]
}

/// A worker's book and its slots by id, reused from one account to the next.
pub(super) struct Builder<'e> {
    engine: &'e Engine,
    market: &'e Market,
    /// Per group id: the name its results carry, made once per builder.
    names: Vec<Option<Arc<str>>>,
    /// Per asset id and per group id: its slot in the current book, or `NONE`.
    asset_slot: Vec<u32>,
    group_slot: Vec<u32>,
    /// Per symbol id: the book's netted entry of the symbol, or `NONE` (an
    /// entry of another group when one symbol names two underlyings).
    netted_slot: Vec<u32>,
    /// The id of each of the book's assets and groups, in order.
    asset_ids: Vec<u32>,
    group_ids: Vec<u32>,
    /// `binance_pm`: each symbol id's bracket table, as `BookBuilder::bracket_table` keeps them.
    bracket_tables: Vec<u32>,
    /// Per symbol id: the last series an option row of it named, from the
    /// market's cache (read once per id and terms, not once per row: the
    /// cache's lock is shared by every worker).
    series: Vec<Option<(SeriesKey, Arc<Series>)>>,
    /// Per symbol id: its contract's slots in the current book (asset, settle
    /// asset, netted entry; `NONE`: not yet, or not since its template changed).
    held: Vec<[u32; 3]>,
    /// Per symbol code: the template of the last row of it decoded
    /// (a symbol's rows nearly always carry the same codes: its first row is decoded, not every row).
    templates: Vec<Template>,
    /// Option vectors of earlier books' group slots, kept for their storage.
    spare_vectors: Vec<(Vec<f64>, Vec<f64>)>,
    pub(super) book: Book,
}

impl<'e> Builder<'e> {
    pub(super) fn new(engine: &'e Engine, market: &'e Market, layout: &Layout<'_>) -> Self {
        Builder {
            engine,
            market,
            names: vec![None; layout.groups.len()],
            asset_slot: vec![NONE; layout.asset_group.len()],
            group_slot: vec![NONE; layout.groups.len()],
            netted_slot: vec![NONE; layout.symbols],
            asset_ids: Vec::new(),
            group_ids: Vec::new(),
            bracket_tables: Vec::new(),
            series: vec![None; layout.symbols],
            templates: vec![Template::NONE; layout.symbols],
            held: vec![[NONE; 3]; layout.symbols],
            spare_vectors: Vec::new(),
            book: Book::empty(false),
        }
    }

    /// Assemble account `a`'s book; `false`: the account takes the per-account path.
    pub(super) fn build(&mut self, scan: &Scan<'_>, layout: &Layout<'_>, a: &Account) -> bool {
        // A row loop compiled for each model: the scenario model's has no branch of `binance_pm`'s.
        match layout.binance {
            true => self.build_for::<true>(scan, layout, a),
            false => self.build_for::<false>(scan, layout, a),
        }
    }

    /// [`build`](Self::build) under `binance_pm` (`BINANCE`, which is `layout.binance`) or not.
    #[inline(always)]
    fn build_for<const BINANCE: bool>(&mut self, scan: &Scan<'_>, layout: &Layout<'_>, a: &Account) -> bool {
        self.clear();
        for k in a.balances.clone() {
            let r = scan.bal_order.map_or(k, |o| o[k] as usize);
            let Ok((id, qty)) = scan.balance(r) else { return false };
            let Some(slot) = self.asset(layout, id) else { return false };
            self.book.add_balance(slot, qty);
            let Ok(loan) = scan.loan(r) else { return false };
            if loan.owed() != 0.0 {
                self.book.add_loan(slot, loan);
            }
        }
        let built = match scan.pos_order {
            // Rows in order: the run's columns, read without bounds checks.
            None => {
                let (run, first, n) = (scan.pos.rows(a.positions.clone()), a.positions.start, a.positions.len());
                assert!(run.all_of_len(n), "a run's columns are as long as the run");
                (0..n).all(|k| self.position::<BINANCE>(scan, layout, &run, k, first + k))
            }
            Some(o) => {
                let row = |k: usize| o[k] as usize;
                a.positions.clone().all(|k| self.position::<BINANCE>(scan, layout, &scan.pos, row(k), row(k)))
            }
        };
        if !built {
            return false;
        }
        self.finish(layout);
        true
    }

    /// Add row `k` of `c` (the call's position row `r`: `c` is the call's
    /// columns or a run of their rows); `false`: the account takes the
    /// per-account path.
    #[inline(always)]
    fn position<const BINANCE: bool>(
        &mut self,
        scan: &Scan<'_>,
        layout: &Layout<'_>,
        c: &PositionColumns<'_>,
        k: usize,
        r: usize,
    ) -> bool {
        let symbol = c.symbol.codes[k];
        let key = row_key(c, k);
        // A row with its symbol's codes: its ids and mark from the symbol's template, not decoded again.
        let t = match symbol >= 0 && at_ref(&self.templates, symbol as usize).key == key {
            true => *at_ref(&self.templates, symbol as usize),
            false => match self.learn(scan, layout, c, k, key) {
                Some(t) => t,
                None => return false,
            },
        };
        let (symbol, u, s_id) = (symbol as u32, t.underlying, t.settle);
        let kind = match t.instrument {
            // binance_pm has no option formula: the per-account path names the row.
            Instrument::Option if BINANCE => return false,
            Instrument::Option => match option_kind(scan, c, k) {
                Some(kind) => kind,
                None => return false,
            },
            _ => OptionKind::Call,
        };
        let pos = c.terms(k, t.instrument, [""; 3], kind);
        if !numbers_hold(&pos) {
            return false;
        }
        let inverse = match pos {
            PositionRef::Linear { .. } => false,
            PositionRef::Inverse { .. } => true,
            // Its terms alone, not the position: the contract rows' loop keeps it in registers.
            PositionRef::Option { kind, strike, expiry, qty, .. } => {
                return self.option(scan, layout, r, (kind, strike, expiry, qty), u, s_id)
            }
        };
        // The symbol's slots in this book, found by its first row of this template.
        let held = at(&self.held, symbol as usize);
        let Some([b, s, netted]) = (match held[2] {
            NONE => self.hold(layout, symbol, u, s_id),
            _ => Some(held.map(|i| i as usize)),
        }) else {
            return false;
        };
        let brackets = match BINANCE {
            true => match self.bracket_table(inverse, symbol, &scan.pos.symbol.values[symbol as usize]) {
                Some(t) => t,
                None => return false,
            },
            false => u32::MAX,
        };
        let mark = t.mark;
        if BINANCE {
            let slot = self.book.add_contract(self.engine, pos, mark, b, s, netted, symbol, brackets);
            self.book.slots.push(slot);
        } else {
            self.book.add_contract_sums(pos, mark, b, s, netted); // the scenario model reads no slots
        }
        true
    }

    /// The slots in the book of a contract of symbol id `symbol` on asset id
    /// `u` settling in id `s` (the underlying's, the settle asset's, the
    /// symbol's netted entry in the underlying's group, which is listed),
    /// created on first use and kept as the symbol's until its template
    /// changes or the book is cleared; `None`: an asset that cannot enter a book.
    #[inline(never)] // out of the contract rows' loop: a symbol's first row in a book
    fn hold(&mut self, layout: &Layout<'_>, symbol: u32, u: u32, s: u32) -> Option<[usize; 3]> {
        let (b, s, g) = self.listed(layout, u, s)?;
        let netted = self.netted(g, symbol);
        *at_mut(&mut self.held, symbol as usize) = [b, s, netted].map(|i| i as u32);
        Some([b, s, netted])
    }

    /// The book's slots of a position on asset id `u` settling in id `s`, and
    /// the underlying's group, which the position lists (as
    /// `BookBuilder::position` does); `None`: an asset that cannot enter a book.
    #[inline(always)]
    fn listed(&mut self, layout: &Layout<'_>, u: u32, s: u32) -> Option<(usize, usize, usize)> {
        let b = self.asset(layout, u)?;
        let s = self.asset(layout, s)?;
        let g = self.book.assets[b].group;
        self.book.groups[g].listed = true;
        Some((b, s, g))
    }

    /// Decode row `k` of `c` (the call's position row `r`, whose codes make
    /// `key`) to its template, kept as its symbol's for the rows after it;
    /// `None`: the row breaks a rule (the per-account path names it).
    #[inline(never)] // out of the rows' loop: a symbol's first row
    fn learn(
        &mut self,
        scan: &Scan<'_>,
        layout: &Layout<'_>,
        c: &PositionColumns<'_>,
        k: usize,
        key: [u64; 2],
    ) -> Option<Template> {
        let (pos, u, s, symbol) = decode(scan, layout, c, k)?;
        let instrument = match pos {
            PositionRef::Linear { .. } => Instrument::Linear,
            PositionRef::Inverse { .. } => Instrument::Inverse,
            PositionRef::Option { .. } => Instrument::Option,
        };
        let mark = match at(&scan.symbol_mark, symbol as usize) {
            None if instrument == Instrument::Linear => layout.default_linear_mark(u, s),
            mark => mark,
        };
        let t = Template { key, underlying: u, settle: s, instrument, mark };
        *at_mut(&mut self.templates, symbol as usize) = t;
        // Slots held for the symbol's previous template may be another asset's.
        *at_mut(&mut self.held, symbol as usize) = [NONE; 3];
        Some(t)
    }

    /// The call's group id of the book's group `g`.
    pub(super) fn group_id(&self, g: usize) -> i32 {
        self.group_ids[g] as i32
    }

    fn clear(&mut self) {
        // Ids the previous book took from the per-id tables: below their lengths (`at`).
        for &id in &self.asset_ids {
            *at_mut(&mut self.asset_slot, id as usize) = NONE;
        }
        for &id in &self.group_ids {
            *at_mut(&mut self.group_slot, id as usize) = NONE;
        }
        self.asset_ids.clear();
        self.group_ids.clear();
        for c in &self.book.contracts {
            *at_mut(&mut self.netted_slot, c.symbol as usize) = NONE;
            *at_mut(&mut self.held, c.symbol as usize) = [NONE; 3];
        }
        // The group slots and names stay, to be reused in place (`group`); `finish` cuts what is left.
        let b = &mut self.book;
        b.assets.clear();
        b.slots.clear();
        b.contracts.clear();
        b.offset_pairs.clear();
    }

    /// The slot of asset id `id`, created (with its group) on first use;
    /// `None` when the asset cannot enter a book.
    #[inline(always)]
    fn asset(&mut self, layout: &Layout<'_>, id: u32) -> Option<usize> {
        let slot = at(&self.asset_slot, id as usize);
        if slot != NONE {
            return Some(slot as usize);
        }
        let empty = at(&layout.asset_slots, id as usize)?;
        let g = self.group(layout, at(&layout.asset_group, id as usize));
        *at_mut(&mut self.asset_slot, id as usize) = self.book.assets.len() as u32;
        self.asset_ids.push(id);
        self.book.assets.push(AssetSlot { group: g, ..empty });
        Some(self.book.assets.len() - 1)
    }

    /// The slot of group id `id`, created on first use.
    #[cold]
    fn group(&mut self, layout: &Layout<'_>, id: u32) -> usize {
        let slot = at(&self.group_slot, id as usize);
        if slot != NONE {
            return slot as usize;
        }
        let (name, table) = at(&layout.groups, id as usize);
        // SAFETY: `names` has a slot per group id, as `layout.groups` (`Builder::new`).
        debug_assert!((id as usize) < self.names.len());
        let name = unsafe { self.names.get_unchecked_mut(id as usize) }.get_or_insert_with(|| Arc::from(name));
        // The slot of the same place in the previous book is reused in place, with
        // its option vectors' storage: an option book allocates nothing per account.
        let g = self.group_ids.len();
        let b = &mut self.book;
        if g < b.groups.len() {
            b.groups[g].reset(table);
            if !Arc::ptr_eq(&b.group_names[g], name) {
                b.group_names[g] = Arc::clone(name);
            }
        } else {
            let (mut option_pnl, mut option_systemic) = self.spare_vectors.pop().unwrap_or_default();
            option_pnl.clear();
            option_systemic.clear();
            b.groups.push(GroupSlot { option_pnl, option_systemic, ..GroupSlot::new(table) });
            b.group_names.push(Arc::clone(name));
        }
        *at_mut(&mut self.group_slot, id as usize) = g as u32;
        self.group_ids.push(id);
        g
    }

    /// Add an option (its kind, strike, expiry and quantity; position row
    /// `row`, on underlying id `u`, settling in id `s`)
    /// as `BookBuilder::position` adds it, its series from the market's cache
    /// (priced there once per snapshot when not yet); `false` when the
    /// per-account path must name an error (a settle asset with a price range,
    /// a series that cannot be priced).
    #[inline(never)] // out of the contract rows' loop: linear books pay nothing for it
    fn option(
        &mut self,
        scan: &Scan<'_>,
        layout: &Layout<'_>,
        row: usize,
        (kind, strike, expiry, qty): (OptionKind, f64, f64, f64),
        u: u32,
        s: u32,
    ) -> bool {
        // Read again here, not passed: passing it cost the contract rows' loop 4 instructions a row.
        let symbol = scan.pos.symbol.codes[row] as u32;
        let Some((_, s_slot, g)) = self.listed(layout, u, s) else { return false };
        // By the settle asset's id: not a chain of loads through its slot, group and table.
        if !at(&layout.settles_options, s as usize) {
            return false;
        }
        let key = SeriesKey { underlying: u, settle: s, kind, strike: strike.to_bits(), expiry: expiry.to_bits() };
        // `series` has a slot per symbol id (`Builder::new`).
        if !matches!(at_ref(&self.series, symbol as usize), Some((k, _)) if *k == key) {
            // The market's cache is keyed by names: read once per symbol id and terms.
            let c = &scan.pos;
            let settle = match scan.settle(row).0 {
                k if k < 0 => DEFAULT_SETTLE,
                k => c.settle.map_or(DEFAULT_SETTLE, |s| &s.values[k as usize]),
            };
            let names =
                [&*c.symbol.values[symbol as usize], &*c.underlying.values[c.underlying.codes[row] as usize], settle];
            let pos = scan.pos.terms(row, Instrument::Option, names, kind);
            let Ok(series) = self.engine.cached_series(&self.book, g, pos, self.market) else { return false };
            *at_mut(&mut self.series, symbol as usize) = Some((key, series));
        }
        let Builder { series, book, .. } = self;
        let Some((_, series)) = at_ref(series, symbol as usize) else { unreachable!("set above") };
        book.assets[s_slot].settled += qty * series.value;
        book.add_option_terms(g, qty, series);
        true
    }

    /// The netted entry of `symbol` in group slot `g`, created on first use
    /// (found by the symbol's id; searched for only when the symbol's slot
    /// holds another group's entry).
    #[inline(always)]
    fn netted(&mut self, g: usize, symbol: u32) -> usize {
        let contracts = &mut self.book.contracts;
        let slot = at_mut(&mut self.netted_slot, symbol as usize);
        // One comparison for "set" and "in bounds": `NONE` is past any book's contracts.
        if contracts.get(*slot as usize).is_some_and(|c| c.group == g) {
            return *slot as usize;
        }
        if *slot != NONE {
            if let Some(i) = contracts.iter().position(|c| c.symbol == symbol && c.group == g) {
                return i;
            }
        }
        *slot = contracts.len() as u32;
        contracts.push(crate::engine::NettedContract { group: g, symbol, delta: 0.0 });
        contracts.len() - 1
    }

    /// `binance_pm`: the bracket table of contract symbol id `symbol` (named
    /// `name`), looked up once per id and kind; `None` when it has none.
    fn bracket_table(&mut self, inverse: bool, symbol: u32, name: &str) -> Option<u32> {
        let slot = 2 * symbol as usize + usize::from(inverse);
        if let Some(&t) = self.bracket_tables.get(slot).filter(|&&t| t != NONE) {
            return Some(t);
        }
        let kind = if inverse { BracketKind::Coinm } else { BracketKind::Usdm };
        let t = crate::binance::bracket_table(self.engine, kind, name).ok()?;
        if self.bracket_tables.len() <= slot {
            self.bracket_tables.resize(slot + 1, NONE);
        }
        self.bracket_tables[slot] = t;
        Some(t)
    }

    /// Cut the group slots the previous book left beyond this one's (their
    /// option vectors kept for their storage); the profile's offsets between
    /// the book's listed groups.
    fn finish(&mut self, layout: &Layout<'_>) {
        let n = self.group_ids.len();
        let b = &mut self.book;
        for g in b.groups.iter_mut().skip(n).filter(|g| g.option_pnl.capacity() + g.option_systemic.capacity() > 0) {
            self.spare_vectors.push((std::mem::take(&mut g.option_pnl), std::mem::take(&mut g.option_systemic)));
        }
        b.groups.truncate(n);
        b.group_names.truncate(n);
        let slots = &self.group_slot;
        let slot = |id: usize| Some(slots[id] as usize).filter(|&s| s != NONE as usize);
        let Book { groups, offset_pairs, .. } = &mut self.book;
        offset_pairs.extend(layout.offsets.iter().filter_map(|&p| crate::engine::listed_pair(p, slot, groups)));
    }
}

/// Position row `r` read by ids, when it keeps every rule the per-account path
/// checks (`Scan::position`), with the ids of its underlying and settle assets
/// and of its symbol; `None`: the per-account path names what it breaks. The
/// position carries no names (this path reads them by id): its names' rule
/// was checked once per value, its numbers' rules by `numbers_hold`.
#[inline(always)]
fn decode(
    scan: &Scan<'_>,
    layout: &Layout<'_>,
    c: &PositionColumns<'_>,
    r: usize,
) -> Option<(PositionRef<'static>, u32, u32, u32)> {
    let (sc, uc, tc) = (c.symbol.codes[r], c.underlying.codes[r], c.kind_of_instrument.codes[r]);
    if sc < 0 || uc < 0 || tc < 0 || !at(&layout.symbol_named, sc as usize) {
        return None;
    }
    let u = at(&layout.underlying, uc as usize);
    if u == NONE {
        return None;
    }
    let (settle_code, s) = scan.settle_in(c, r);
    let instrument = at(&scan.instrument, tc as usize)?;
    let (pos, s) = match instrument {
        Instrument::Linear => (c.terms(r, instrument, [""; 3], OptionKind::Call), s),
        Instrument::Inverse if Scan::inverse_settle_holds(settle_code, s, u) => {
            (c.terms(r, instrument, [""; 3], OptionKind::Call), u)
        }
        Instrument::Inverse => return None,
        Instrument::Option if scan.has_vol(sc as usize, uc as usize) => {
            (c.terms(r, instrument, [""; 3], option_kind(scan, c, r)?), s)
        }
        Instrument::Option => return None,
    };
    numbers_hold(&pos).then_some((pos, u, s, sc as u32))
}

/// Row `r`'s option kind, `None` when null or not a kind.
#[inline(always)]
fn option_kind(scan: &Scan<'_>, c: &PositionColumns<'_>, r: usize) -> Option<OptionKind> {
    match c.option_kind.map_or(-1, |k| k.codes[r]) {
        k if k < 0 => None,
        k => at(&scan.option_kind, k as usize),
    }
}

/// `table[i]` for an `i` below `table.len()` by the call's checks, read
/// without a bounds check in the row loop: a code `≥ 0` of a column is below
/// its dictionary's length (`check_codes`, before any row is read) and every
/// per-code table has one entry per dictionary value; an asset, group or
/// symbol id is below the number of the call's assets, groups or symbols, the
/// length of every per-id table. Checked in debug builds.
#[inline(always)]
pub(super) fn at<T: Copy>(table: &[T], i: usize) -> T {
    *at_ref(table, i)
}

/// [`at`]'s entry by reference (the same invariant).
#[inline(always)]
fn at_ref<T>(table: &[T], i: usize) -> &T {
    debug_assert!(i < table.len(), "index {i} of a table of {}", table.len());
    // SAFETY: `i < table.len()`, the invariant of `at`.
    unsafe { table.get_unchecked(i) }
}

/// [`at`]'s entry, to write (the same invariant).
#[inline(always)]
fn at_mut<T>(table: &mut [T], i: usize) -> &mut T {
    debug_assert!(i < table.len(), "index {i} of a table of {}", table.len());
    // SAFETY: `i < table.len()`, the invariant of `at`.
    unsafe { table.get_unchecked_mut(i) }
}
