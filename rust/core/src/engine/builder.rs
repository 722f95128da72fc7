//! Building a book: assets, groups, contracts and options resolved one by one,
//! each found by key rather than searched, options priced once per snapshot.
//! `Engine::book` and the batch (`batch.rs`) build through it.

use super::*;

/// Up to this many entries a book finds an asset, a group or a contract symbol
/// by a linear search (faster than hashing for the few an account holds); past
/// it, by a hash map built then, so a book of 40,000 assets or a million symbols
/// costs linear time, not quadratic. 64: the 50-position benchmark account
/// (18 netted symbols) measured 25 % slower on `engine.margin` with 16, the
/// map built per book.
const LINEAR_LOOKUP: usize = 64;

/// Keys in insertion order, found by a linear search while few and by a hash
/// map once there are more than [`LINEAR_LOOKUP`].
#[derive(Debug)]
struct Lookup<K> {
    keys: Vec<K>,
    index: HashMap<K, usize>,
}

impl<K: Copy + Eq + std::hash::Hash> Lookup<K> {
    fn new() -> Self {
        Lookup { keys: Vec::new(), index: HashMap::default() }
    }

    #[inline]
    fn get(&self, key: K) -> Option<usize> {
        if self.keys.len() <= LINEAR_LOOKUP {
            self.keys.iter().position(|k| *k == key)
        } else {
            self.index.get(&key).copied()
        }
    }

    /// Add `key` (not present) as entry `keys.len()`.
    #[inline]
    fn push(&mut self, key: K) {
        self.keys.push(key);
        if self.keys.len() > LINEAR_LOOKUP {
            if self.index.is_empty() {
                self.index.extend(self.keys.iter().enumerate().map(|(i, k)| (*k, i)));
            } else {
                self.index.insert(key, self.keys.len() - 1);
            }
        }
    }

    fn clear(&mut self) {
        self.keys.clear();
        self.index.clear();
    }
}

/// An asset resolved against the profile and the market snapshot.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AssetTerms<'a> {
    pub name: &'a str,
    /// Index price, USD.
    pub price: f64,
    /// Index of its parameters in the engine (`None`: not in the profile).
    pub params: Option<u32>,
    /// First collateral tier rate > 0.
    pub collateral: bool,
    /// Its risk group, and the engine's table of that group's parameters (0: `"*"`,
    /// shared by every group the profile does not name).
    pub group: &'a str,
    pub table: usize,
}

/// Builds a book position by position. Assets are identified by a key `K`: their
/// name for one portfolio, a dictionary code for the batch engine (which resolves
/// each code once per call, not once per account). The batch engine keeps one
/// builder per worker and `clear`s it between accounts, so its buffers are reused.
pub(crate) struct BookBuilder<'e, 'm, K> {
    engine: &'e Engine,
    /// The model the book is for (the profile's, but for classic margin's option books).
    pub(super) model: Model,
    market: &'m Market,
    /// Key of each of `book.assets`, in order.
    asset_keys: Lookup<K>,
    /// Each of `book.groups` by name (a group with a table of its own has the table's name).
    group_keys: HashMap<Arc<str>, usize>,
    /// The builder's own copies of the tables' names (empty: the engine's are shared).
    table_names: Vec<Arc<str>>,
    /// Each of `book.contracts` by (group, symbol id).
    netted_keys: Lookup<(usize, u32)>,
    /// The snapshot's priced series, read-locked at the book's first option (a book
    /// without options never touches the lock, which parallel batch workers would
    /// otherwise all write to) and released by `finish`.
    cache: Option<SeriesReader<'m>>,
    /// Series priced by this book, inserted into the cache by `finish`, and
    /// (past [`LINEAR_LOOKUP`] of them) their indices by symbol.
    priced: Vec<(SeriesTerms, Arc<Series>)>,
    /// The book's names under `binance_pm` (see `Book::names`), shared by `finish`.
    names: Names,
    priced_index: HashMap<String, Vec<usize>>,
    /// The storage of the previous book's offset pairs, reused by `finish`.
    offset_buffer: Vec<OffsetPair>,
    /// `binance_pm`: each symbol id's bracket table (`2·id` USDⓈ-M, `2·id + 1`
    /// COIN-M; `u32::MAX`: not looked up yet). Kept by `clear`.
    bracket_tables: Vec<u32>,
    pub(crate) book: Book,
}

impl<'e, 'm, K: Copy + Eq + std::hash::Hash> BookBuilder<'e, 'm, K> {
    pub(crate) fn new(engine: &'e Engine, market: &'m Market) -> Self {
        BookBuilder {
            engine,
            model: engine.params.model,
            market,
            asset_keys: Lookup::new(),
            group_keys: HashMap::default(),
            table_names: Vec::new(),
            netted_keys: Lookup::new(),
            cache: None,
            priced: Vec::new(),
            names: Names::default(),
            priced_index: HashMap::default(),
            offset_buffer: Vec::new(),
            bracket_tables: Vec::new(),
            book: Book::empty(true),
        }
    }

    /// A builder of books that keep no names: account figures only (the batch).
    /// Its books name their groups with the builder's own copies of the tables'
    /// names, so parallel workers do not share one reference count.
    pub(crate) fn without_detail(engine: &'e Engine, market: &'m Market) -> Self {
        let mut b = Self::new(engine, market);
        b.book.detail = false;
        b.table_names = engine.tables.iter().map(|t| Arc::from(&*t.name)).collect();
        b
    }

    /// Start a new book, keeping the buffers (and dropping what a book that failed
    /// half-way left: its read lock on the series cache, its unpublished series).
    pub(crate) fn clear(&mut self) {
        self.cache = None;
        self.priced.clear();
        self.priced_index.clear();
        self.group_keys.clear();
        self.netted_keys.clear();
        let b = &mut self.book;
        b.group_names.clear();
        b.assets.clear();
        b.groups.clear();
        b.options.clear();
        b.slots.clear();
        b.contracts.clear();
        b.offset_pairs.clear();
        b.names = None;
        self.names.clear();
        self.asset_keys.clear();
    }

    /// The slot of group `name` (whose parameters are table `table`), if the book
    /// has one. A group with a table of its own is the only one using it, so a few
    /// groups are told apart by table without comparing names; many, by a hash map.
    fn find_group(&self, name: &str, table: usize) -> Option<usize> {
        if self.book.group_names.len() > LINEAR_LOOKUP {
            return self.group_keys.get(name).copied();
        }
        match table {
            0 => self.book.group_names.iter().position(|n| &**n == name),
            t => self.book.groups.iter().position(|g| g.table == t),
        }
    }

    /// The slot of group `name` (whose parameters are table `table`), created on first use.
    fn group(&mut self, name: &str, table: usize) -> usize {
        if let Some(i) = self.find_group(name, table) {
            return i;
        }
        let shared = self.table_names.get(table).unwrap_or(&self.engine.tables[table].name);
        self.book.group_names.push(if &**shared == name { Arc::clone(shared) } else { Arc::from(name) });
        let names = &self.book.group_names;
        if names.len() > LINEAR_LOOKUP {
            if self.group_keys.is_empty() {
                self.group_keys.extend(names.iter().enumerate().map(|(i, n)| (Arc::clone(n), i)));
            } else {
                self.group_keys.insert(Arc::clone(&names[names.len() - 1]), names.len() - 1);
            }
        }
        self.book.groups.push(GroupSlot::new(table));
        self.book.groups.len() - 1
    }

    /// The slot of asset `key`, creating it (and its group) on first use with the
    /// terms `resolve` gives (called only then: its error names the input).
    pub(crate) fn asset<'t>(&mut self, key: K, resolve: impl FnOnce() -> Result<AssetTerms<'t>>) -> Result<usize> {
        if let Some(i) = self.asset_keys.get(key) {
            return Ok(i);
        }
        let t = resolve()?;
        if self.model == Model::BinancePm {
            crate::binance::check_asset(self.engine, &t)?;
            if self.book.detail {
                self.names.push_asset(t.name);
            }
        }
        let group = self.group(t.group, t.table);
        self.asset_keys.push(key);
        self.book.assets.push(AssetSlot::new(&t, group));
        Ok(self.book.assets.len() - 1)
    }

    /// See [`Book::add_loan`].
    pub(crate) fn loan(&mut self, a: usize, loan: Loan) {
        self.book.add_loan(a, loan);
    }

    /// See [`Book::add_balance`].
    pub(crate) fn balance(&mut self, a: usize, qty: f64) {
        self.book.add_balance(a, qty);
    }

    /// Position `i` of the input, its underlying and settle asset slots `b`, `s`;
    /// for a contract its symbol's id (equal ids net in the basis add-on) and mark.
    pub(crate) fn position(
        &mut self,
        i: usize,
        pos: PositionRef<'_>,
        b: usize,
        s: usize,
        symbol: u32,
        mark: Option<f64>,
    ) -> Result<()> {
        let g = self.book.assets[b].group;
        self.book.groups[g].listed = true;
        let (pb, ps) = (self.book.assets[b].price, self.book.assets[s].price);
        let binance = self.model == Model::BinancePm;
        if binance && self.book.detail {
            self.names.push_symbol(pos.symbol());
        }
        match pos {
            PositionRef::Linear { .. } | PositionRef::Inverse { .. } => {
                let brackets = if binance {
                    let kind =
                        if matches!(pos, PositionRef::Inverse { .. }) { BracketKind::Coinm } else { BracketKind::Usdm };
                    self.bracket_table(kind, symbol, pos.symbol())?
                } else {
                    u32::MAX
                };
                let netted = match self.netted_keys.get((g, symbol)) {
                    Some(n) => n,
                    None => {
                        self.netted_keys.push((g, symbol));
                        self.book.contracts.push(NettedContract { group: g, symbol, delta: 0.0 });
                        self.book.contracts.len() - 1
                    }
                };
                let slot = self.book.add_contract(self.engine, pos, mark, b, s, netted, symbol, brackets);
                self.book.slots.push(slot);
            }
            PositionRef::Option { .. } if binance => {
                return Err(CoreError::invalid(
                    format!("positions[{i}].type"),
                    format!("binance_pm has no option formula (Binance publishes none), got option {}", pos.symbol()),
                ));
            }
            PositionRef::Option { settle, qty, .. } => {
                let settle_group = self.book.assets[s].group;
                if !self.engine.settles_options(self.book.groups[settle_group].table) {
                    return Err(CoreError::invalid(
                        format!("positions[{i}].settle"),
                        format!("an option must settle in a stablecoin (a group with price_range = 0), got {settle:?}"),
                    ));
                }
                let series = self.series(g, pos, pb, ps)?;
                self.book.assets[s].settled += qty * series.value;
                self.book.add_option_terms(g, qty, &series);
                self.book.slots.push(BookSlot::Option(self.book.options.len()));
                self.book.options.push(OptionSlot { group: g, position: i, settle: s, qty, series });
            }
        }
        Ok(())
    }

    /// The bracket table of contract symbol id `symbol` (named `name`), looked up
    /// once per id and kind while this builder lives: a batch's ids are its
    /// dictionary codes, the same in every account a worker builds.
    fn bracket_table(&mut self, kind: BracketKind, symbol: u32, name: &str) -> Result<u32> {
        let slot = 2 * symbol as usize + usize::from(kind == BracketKind::Coinm);
        match self.bracket_tables.get(slot) {
            Some(&t) if t != u32::MAX => Ok(t),
            _ => {
                let t = crate::binance::bracket_table(self.engine, kind, name)?;
                if self.bracket_tables.len() <= slot {
                    self.bracket_tables.resize(slot + 1, u32::MAX);
                }
                self.bracket_tables[slot] = t;
                Ok(t)
            }
        }
    }

    /// Close the book: resolve the offsets between its listed groups, release the
    /// series cache and publish the series this book priced.
    pub(crate) fn finish(&mut self) {
        self.cache = None;
        if !self.names.is_empty() {
            self.book.names = Some(Arc::new(std::mem::take(&mut self.names)));
        }
        if !self.priced.is_empty() {
            self.market.series.insert_all(self.priced.iter().map(|(t, x)| (t.clone(), Arc::clone(x))));
            self.priced.clear();
        }
        // Into the buffer the last book left (the batch reuses one builder per worker).
        let mut buffer = std::mem::take(&mut self.offset_buffer);
        buffer.clear();
        buffer.extend(self.engine.offset_pairs(|name, t| self.find_group(name, t), &self.book.groups));
        self.offset_buffer = std::mem::replace(&mut self.book.offset_pairs, buffer);
    }

    /// The option's series on this snapshot: from the market's cache, from this
    /// book's own new series, or priced now.
    fn series(&mut self, g: usize, pos: PositionRef<'_>, pb: f64, ps: f64) -> Result<Arc<Series>> {
        let key = self.engine.series_key(pos)?;
        let symbol = key.symbol;
        let market = self.market;
        let cache = self.cache.get_or_insert_with(|| market.series.read());
        let priced = &self.priced;
        let matches = |i: &usize| priced[*i].0.key() == key;
        let found = cache.get(&key).or_else(|| {
            let mine = if priced.len() <= LINEAR_LOOKUP {
                (0..priced.len()).find(matches)
            } else {
                self.priced_index.get(symbol).and_then(|ix| ix.iter().copied().find(matches))
            };
            mine.map(|i| Arc::clone(&priced[i].1))
        });
        if let Some(series) = found {
            return Ok(series);
        }
        let (terms, series) = self.engine.price_option(&self.book, g, pos, market, pb, ps)?;
        let series = Arc::new(series);
        self.priced.push((terms, Arc::clone(&series)));
        if self.priced.len() > LINEAR_LOOKUP {
            if self.priced_index.is_empty() {
                for (i, (t, _)) in self.priced.iter().enumerate() {
                    self.priced_index.entry(t.key().symbol.to_string()).or_default().push(i);
                }
            } else {
                self.priced_index.entry(symbol.to_string()).or_default().push(self.priced.len() - 1);
            }
        }
        Ok(series)
    }
}
