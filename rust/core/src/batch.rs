//! The batch (columnar) engine: margin every account of a book in one call
//! (`Engine.margin_batch` in Python; README.md "Bulk scans").
//!
//! Input is columns, one row per position and one row per balance, each row
//! tagged with its account id. Strings are dictionary-encoded: a code per row
//! (negative: null) into a small table of distinct values, so a row costs no
//! allocation. Rows need not be sorted: they are grouped by account with a
//! stable sort, so an account's positions keep their input order (already
//! sorted input is detected and not sorted again). The result has one row per
//! account, in ascending account id.
//!
//! Names are resolved once per call, not once per row: every distinct
//! instrument type, asset and symbol of the dictionaries is looked up in the
//! profile and the market up front, so building an account's book costs no
//! string comparison or hashing. Every account is then evaluated on its own
//! (its book built straight from the columns, then `Engine::evaluate_totals`,
//! `evaluate_into`'s pass without the group rows a batch does not read, with
//! a worker's reused buffers) and written to its own output row, so the
//! output is bit-identical to `Engine::margin` on the same portfolio and
//! whatever the thread count or chunk size. An account's book is assembled by
//! ids on the columnar path (`batch/columnar.rs`), option series read from the
//! market's cache (priced once per snapshot); an account with a bad row takes
//! the per-account builder, which names the row's field. Memory: the input is
//! borrowed, not copied; beside it the call holds one `u32` row index per input
//! row (only when the rows are not grouped by account) and per account 118
//! bytes (its row ranges, 40, and the output columns, 78, written in place by
//! the worker that margins it); a worker's buffers grow with the names of the
//! call, not with the book.

use crate::engine::{AssetTerms, BookBuilder, Engine, Scratch, WorstGroup};
use crate::error::{Code, CoreError, Result};
use crate::market::Market;
use crate::portfolio::{validate_ref, Loan, OptionKind, PositionRef, DEFAULT_SETTLE};
use crate::result::MarginResult;
use rayon::prelude::*;
pub use rayon::ThreadPool;
use rustc_hash::FxHashMap as HashMap;
use std::mem::MaybeUninit;
use std::ops::Range;
use std::sync::atomic::{AtomicUsize, Ordering};

mod columnar;

/// A dictionary-encoded string column: `values[codes[row]]`, a negative code is null.
#[derive(Debug, Clone, Copy)]
pub struct Strings<'a> {
    pub codes: &'a [i32],
    pub values: &'a [String],
}

impl<'a> Strings<'a> {
    fn get(&self, row: usize) -> Option<&'a str> {
        let c = self.codes[row];
        if c < 0 {
            None
        } else {
            self.values.get(c as usize).map(String::as_str)
        }
    }
}

/// A string column encoded as `Strings` wants it: a code per row (-1: null) and
/// the distinct values in order of first appearance (so the result does not
/// depend on how the rows were split between threads).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Encoded {
    pub codes: Vec<i32>,
    pub values: Vec<String>,
}

impl Encoded {
    pub fn view(&self) -> Strings<'_> {
        Strings { codes: &self.codes, values: &self.values }
    }
}

/// Rows per unit of parallel work when encoding strings.
const ENCODE_ROWS: usize = 1 << 15;

/// A short string as a key compared without touching its bytes again: its
/// length and two words that, with the length, are its bytes up to 16 bytes
/// (below 8 bytes, the bytes zero-padded and 0; else the first and the last
/// eight, overlapping below 16); a longer string is compared in full.
#[derive(Clone, Copy)]
struct ShortKey(u64, u64, usize);

/// Eight bytes as a little-endian word (a fixed-size load: no call to memcpy).
#[inline(always)]
fn word(b: &[u8]) -> u64 {
    u64::from_le_bytes(b.try_into().unwrap_or([0; 8]))
}

impl ShortKey {
    /// The key of `s`, from loads that stay within `s` (no loop over its bytes).
    #[inline(always)]
    fn of(s: &[u8]) -> Self {
        let n = s.len();
        let half = |b: &[u8]| u64::from(u32::from_le_bytes(b.try_into().unwrap_or([0; 4])));
        let byte = |i: usize| u64::from(s[i]) << (8 * i);
        if n >= 8 {
            ShortKey(word(&s[..8]), word(&s[n - 8..]), n)
        } else if n >= 4 {
            // Two overlapping halves; the overlap ORs a byte with itself.
            ShortKey(half(&s[..4]) | half(&s[n - 4..]) << (8 * (n - 4)), 0, n)
        } else if n > 0 {
            ShortKey(byte(0) | byte(n / 2) | byte(n - 1), 0, n)
        } else {
            ShortKey(0, 0, 0)
        }
    }

    /// The key of `s`, shorter than 8 bytes and a slice of `buffer` (the values
    /// buffer of an Arrow array), in one word: its bytes and its length in the
    /// top byte, read with one load and a mask when eight bytes of `buffer`
    /// start at `s` (`None` otherwise).
    #[inline(always)]
    fn small(buffer: &[u8], s: &[u8]) -> Option<u64> {
        let start = (s.as_ptr() as usize).wrapping_sub(buffer.as_ptr() as usize);
        let n = s.len();
        if n < 8 && start < buffer.len() && buffer.len() - start >= 8 {
            // `buffer[start..]` is `s` (same address), followed by other bytes, masked off.
            return Some(Self::small_at(buffer, start, n));
        }
        None
    }

    /// [`ShortKey::small`] of the `n < 8` bytes at `buffer[start..]`, eight
    /// bytes of which lie in `buffer`.
    #[inline(always)]
    fn small_at(buffer: &[u8], start: usize, n: usize) -> u64 {
        let mask = (1u64 << (8 * n)) - 1;
        word(&buffer[start..start + 8]) & mask | (n as u64) << 56
    }

    /// Whether `self` (of `s`) is the key of `entry`.
    #[inline(always)]
    fn matches(self, s: &[u8], entry: &Entry<'_>) -> bool {
        let k = entry.0;
        (self.0 ^ k.0) | (self.1 ^ k.1) | (self.2 ^ k.2) as u64 == 0 && (s.len() <= 16 || entry.2 == s)
    }

    #[inline(always)]
    fn slot(self) -> usize {
        slot(self.0 ^ self.1.rotate_left(29) ^ self.2 as u64)
    }
}

const CACHE_BITS: u32 = 9;

/// The cache slot of a one-word key: the top bits of a multiplicative hash.
#[inline(always)]
fn slot(key: u64) -> usize {
    (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - CACHE_BITS)) as usize & ((1 << CACHE_BITS) - 1)
}

/// A string's key, its code and the string.
type Entry<'s> = (ShortKey, u32, &'s [u8]);

/// An entry no string matches (no string has this length).
const NO_ENTRY: Entry<'static> = (ShortKey(0, 0, usize::MAX), 0, b"");

/// Distinct strings of one slice of rows: a direct-mapped cache of recent
/// values in front of a hash map, so a row costs a few word comparisons. (A
/// check of the previous row's value first costs more than it saves: on a
/// column of mixed values its branch is unpredictable.)
#[derive(Clone)]
struct Interner<'s> {
    /// A fixed size: a slot (`ShortKey::slot`) needs no bounds check.
    cache: Box<[Entry<'s>; 1 << CACHE_BITS]>,
    /// Strings shorter than 8 bytes read from a buffer, by their one-word key
    /// (`ShortKey::small_at`; `u64::MAX`, a length of 255: no string).
    small: Box<[(u64, u32); 1 << CACHE_BITS]>,
    map: HashMap<&'s [u8], u32>,
    values: Vec<&'s [u8]>,
}

impl<'s> Interner<'s> {
    fn new() -> Self {
        Interner {
            cache: Box::new([NO_ENTRY; 1 << CACHE_BITS]),
            small: Box::new([(u64::MAX, 0); 1 << CACHE_BITS]),
            map: HashMap::default(),
            values: Vec::new(),
        }
    }

    /// The code of `s`, a slice of `buffer` (or of no buffer: `&[]`).
    #[inline(always)]
    fn code(&mut self, buffer: &[u8], s: &'s [u8]) -> u32 {
        match ShortKey::small(buffer, s) {
            Some(key) => self.code_small(key, || s),
            None => self.code_long(s),
        }
    }

    /// The code of a string shorter than 8 bytes whose one-word key is `key`
    /// (`ShortKey::small`): one load and one comparison. `s()`: the string,
    /// read only when it is not in the cache.
    #[inline(always)]
    fn code_small(&mut self, key: u64, s: impl FnOnce() -> &'s [u8]) -> u32 {
        let slot = slot(key);
        let (k, code) = self.small[slot];
        if k == key {
            return code;
        }
        let code = self.lookup(s());
        self.small[slot] = (key, code);
        code
    }

    /// The code of `s`, of any length, by its `ShortKey`.
    #[inline(always)]
    fn code_long(&mut self, s: &'s [u8]) -> u32 {
        let key = ShortKey::of(s);
        let slot = key.slot();
        if key.matches(s, &self.cache[slot]) {
            return self.cache[slot].1;
        }
        let code = self.lookup(s);
        self.cache[slot] = (key, code, s);
        code
    }

    /// The code of `s`, not in a cache: from the map, or a new one.
    #[cold]
    #[inline(never)]
    fn lookup(&mut self, s: &'s [u8]) -> u32 {
        let next = self.values.len() as u32;
        let code = *self.map.entry(s).or_insert(next);
        if code == next {
            self.values.push(s);
        }
        code
    }
}

/// Most distinct values the first slice of rows may hold to seed the others.
const SEED_VALUES: usize = 4096;

/// Encode a string column of `rows` rows (`get(row)`: its value's bytes,
/// UTF-8 as a `str`'s or an Arrow string array's are, `None` for null) on
/// `pool`. `buffer`: the bytes the values are slices of, when they
/// lie in one buffer (an Arrow array's values), else `&[]`; short values are
/// then read with whole-word loads. See [`encode_rows`] for how the work is split.
pub fn encode_strings<'s, F>(pool: &rayon::ThreadPool, rows: usize, buffer: &[u8], get: F) -> Encoded
where
    F: Fn(usize) -> Option<&'s [u8]> + Sync,
{
    encode_rows(pool, rows, |interner, first, out| {
        for (i, c) in out.iter_mut().enumerate() {
            c.write(get(first + i).map_or(-1, |s| interner.code(buffer, s) as i32));
        }
    })
}

/// An offsets string column (the layout of an Arrow `Utf8` or `LargeUtf8`
/// array) encoded on `pool`: row `i` is `bytes[ends[i]..ends[i + 1]]`, null
/// where `valid(i)` is false (`None`: no nulls; a null row's offsets are not
/// read). Short values are keyed straight from the offsets, without a slice
/// each. `Err(row)`: the first row whose offsets are negative or run
/// backwards or past `bytes` (the C Data Interface does not promise checked
/// offsets).
pub fn encode_offsets<'s, O, V>(
    pool: &rayon::ThreadPool,
    ends: &'s [O],
    bytes: &'s [u8],
    valid: Option<V>,
) -> std::result::Result<Encoded, usize>
where
    O: Copy + Sync + TryInto<usize>,
    V: Fn(usize) -> bool + Sync,
{
    let Some(rows) = ends.len().checked_sub(1) else { return Ok(Encoded::default()) };
    // An offset that is negative or beyond `usize` reads as past the buffer.
    let at = |o: O| o.try_into().unwrap_or(usize::MAX);
    // A value that starts at or before `last` has eight bytes of the buffer from its start.
    let (n, last) = (bytes.len(), bytes.len().checked_sub(8));
    let bad = AtomicUsize::new(usize::MAX);
    let encoded = encode_rows(pool, rows, |interner, first, out| {
        let spans = ends[first..first + out.len() + 1].windows(2);
        for (i, (c, w)) in out.iter_mut().zip(spans).enumerate() {
            let (a, b) = (at(w[0]), at(w[1]));
            // A start past the buffer fails `a <= last` below; an end before
            // the start wraps to a length above any short one.
            let len = b.wrapping_sub(a);
            c.write(if valid.as_ref().is_some_and(|v| !v(first + i)) {
                -1
            } else if len < 8 && last.is_some_and(|last| a <= last) {
                interner.code_small(ShortKey::small_at(bytes, a, len), || &bytes[a..b]) as i32
            } else if a <= b && b <= n {
                interner.code_long(&bytes[a..b]) as i32
            } else {
                bad.fetch_min(first + i, Ordering::Relaxed);
                -1
            });
        }
    });
    match bad.into_inner() {
        usize::MAX => Ok(encoded),
        row => Err(row),
    }
}

/// Encode a column of `rows` rows on `pool`, `encode(interner, first, out)`
/// writing the codes of rows `first..first + out.len()` by `interner`: it must
/// write every element of `out` (the codes are not initialised otherwise). The
/// first slice of rows is encoded first; its values, in order, seed every
/// other slice's dictionary (when they are few), and the other slices are
/// encoded in parallel, each on its own. Their new values are then merged in
/// row order, and only the codes of those values are renumbered: a column
/// whose values all occur in its first rows is read once.
fn encode_rows<'s, E>(pool: &rayon::ThreadPool, rows: usize, encode: E) -> Encoded
where
    E: Fn(&mut Interner<'s>, usize, &mut [MaybeUninit<i32>]) + Sync,
{
    // Not zeroed: every code is written once below (zeroing them took the
    // calling thread about a tenth of a column's encoding time, serially).
    let mut codes: Vec<i32> = Vec::with_capacity(rows);
    let (head, rest) = codes.spare_capacity_mut()[..rows].split_at_mut(rows.min(ENCODE_ROWS));
    let first = head.len();
    let mut seed = Interner::new();
    encode(&mut seed, 0, head);
    let base = if seed.values.len() <= SEED_VALUES { seed.values.len() } else { 0 };
    // A column of one slice is encoded here: handing nothing to the pool still costs a round trip.
    let locals: Vec<Vec<&'s [u8]>> = if rest.is_empty() {
        Vec::new()
    } else {
        pool.install(|| {
            (rest.par_chunks_mut(ENCODE_ROWS).enumerate())
                .map_init(
                    || None,
                    |kept: &mut Option<Interner<'s>>, (k, out)| {
                        // A worker's interner serves its next slice while it holds only the seed's values.
                        let interner = match kept {
                            Some(i) if base > 0 && i.values.len() == base => i,
                            _ => kept.insert(if base > 0 { seed.clone() } else { Interner::new() }),
                        };
                        encode(interner, first + k * ENCODE_ROWS, out);
                        match interner.values.len() == base && base > 0 {
                            true => Vec::new(), // no new values: the seed's codes stand
                            false => kept.take().map(|i| i.values).unwrap_or_default(),
                        }
                    },
                )
                .collect()
        })
    };
    // SAFETY: `encode` writes every code of the slice it is given (its callers'
    // loops run over the whole slice), and the slices above cover `..rows`.
    unsafe { codes.set_len(rows) };
    // The first slice's values come first, in its order; then each slice's new ones.
    let string = |s: &[u8]| String::from_utf8_lossy(s).into_owned();
    let mut values: Vec<String> = seed.values.iter().map(|s| string(s)).collect();
    let mut index: HashMap<&'s [u8], i32> = seed.values.iter().enumerate().map(|(i, &s)| (s, i as i32)).collect();
    let remaps: Vec<Option<Vec<i32>>> = (locals.iter())
        .map(|local| {
            let remap: Vec<i32> = (local.iter().enumerate())
                .map(|(i, &s)| {
                    if i < base {
                        return i as i32; // a seed value: its code stands
                    }
                    *index.entry(s).or_insert_with(|| {
                        values.push(string(s));
                        values.len() as i32 - 1
                    })
                })
                .collect();
            (!is_identity(&remap)).then_some(remap)
        })
        .collect();
    if remaps.iter().any(Option::is_some) {
        pool.install(|| {
            codes[first..].par_chunks_mut(ENCODE_ROWS).zip(remaps.par_iter()).for_each(|(out, remap)| {
                if let Some(remap) = remap {
                    for c in out.iter_mut().filter(|c| **c >= base as i32) {
                        *c = remap[*c as usize];
                    }
                }
            })
        });
    }
    Encoded { codes, values }
}

/// Whether renumbering codes by `remap` (`remap[code]`) leaves them as they are.
pub fn is_identity(remap: &[i32]) -> bool {
    remap.iter().enumerate().all(|(i, &c)| c as usize == i)
}

/// Rows a worker takes at a time when checking or renumbering dictionary keys.
const KEY_ROWS: usize = 1 << 16;

/// The first row whose key is not a code of `n` values (`0 ≤ key < n`) among
/// the rows `valid` keeps (a null's key may be any number), searched on
/// `pool`: a max per slice of rows, which vectorises, and a row-by-row search
/// only in a slice that fails it (a damaged Arrow array may hold such a key).
pub fn first_bad_key<F>(pool: &rayon::ThreadPool, keys: &[i32], n: usize, valid: F) -> Option<usize>
where
    F: Fn(usize) -> bool + Sync,
{
    // As `u32`, a negative key is above any count of values.
    let bad = |k: i32| k as u32 as usize >= n;
    let search = |(b, slice): (usize, &[i32])| {
        let top = slice.iter().fold(0u32, |m, &k| m.max(k as u32));
        if (top as usize) < n {
            return None;
        }
        let first = b * KEY_ROWS;
        (slice.iter().enumerate()).find(|&(i, &k)| bad(k) && valid(first + i)).map(|(i, _)| first + i)
    };
    // One slice is searched here: handing it to the pool costs more than the search.
    match keys.len() <= KEY_ROWS {
        true => search((0, keys)),
        false => pool.install(|| keys.par_chunks(KEY_ROWS).enumerate().find_map_first(search)),
    }
}

/// Dictionary keys renumbered on `pool`: `remap[key]` for each row `valid`
/// keeps (`None`: every row), `-1` for the others. Each kept row's key is
/// below `remap.len()` ([`first_bad_key`] checked it).
pub fn remap_keys<F>(pool: &rayon::ThreadPool, keys: &[i32], remap: &[i32], valid: Option<F>) -> Vec<i32>
where
    F: Fn(usize) -> bool + Sync,
{
    let code = |i: usize, k: i32| match &valid {
        Some(valid) if !valid(i) => -1,
        _ => remap[k as usize],
    };
    if keys.len() <= KEY_ROWS {
        return keys.iter().enumerate().map(|(i, &k)| code(i, k)).collect();
    }
    let mut codes = Vec::new();
    pool.install(|| {
        (keys.par_iter().with_min_len(KEY_ROWS).enumerate()).map(|(i, &k)| code(i, k)).collect_into_vec(&mut codes)
    });
    codes
}

/// A pool of `threads` worker threads (0: one per core).
pub fn thread_pool(threads: usize) -> Result<rayon::ThreadPool> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| CoreError::invalid("threads", format!("cannot start a thread pool: {e}")))
}

/// Position columns, one row per position. Numbers: `NaN` is null.
///
/// - `type`: `"linear"`, `"inverse"` or `"option"`;
/// - `qty`: base units (linear), contracts (inverse) or underlying units (option), signed;
/// - `entry_price`: settle units per base unit (linear), USD (inverse);
/// - `contract_size`: USD per contract (inverse only);
/// - `strike` (settle units), `expiry` (seconds since the epoch, UTC), `kind`
///   (`"call"` / `"put"`): options only;
/// - `settle`: null means USDT (linear, option) or the underlying (inverse).
#[derive(Debug, Clone, Copy)]
pub struct PositionColumns<'a> {
    pub account: &'a [i64],
    pub kind_of_instrument: Strings<'a>,
    pub symbol: Strings<'a>,
    pub underlying: Strings<'a>,
    pub settle: Option<Strings<'a>>,
    pub qty: &'a [f64],
    pub entry_price: Option<&'a [f64]>,
    pub contract_size: Option<&'a [f64]>,
    pub strike: Option<&'a [f64]>,
    pub expiry: Option<&'a [f64]>,
    pub option_kind: Option<Strings<'a>>,
    /// A contract's own leverage (NaN: the profile's default); `binance_pm`'s IM reads it.
    pub leverage: Option<&'a [f64]>,
}

impl<'a> PositionColumns<'a> {
    /// The rows `rows` of every column: a run's rows indexed from 0, so a
    /// loop over them checks no bounds (every column is as long as the run).
    #[inline(always)]
    fn rows(&self, rows: Range<usize>) -> Self {
        let strings = |s: Strings<'a>| Strings { codes: &s.codes[rows.clone()], values: s.values };
        let numbers = |x: Option<&'a [f64]>| x.map(|x| &x[rows.clone()]);
        PositionColumns {
            account: &self.account[rows.clone()],
            kind_of_instrument: strings(self.kind_of_instrument),
            symbol: strings(self.symbol),
            underlying: strings(self.underlying),
            settle: self.settle.map(strings),
            qty: &self.qty[rows.clone()],
            entry_price: numbers(self.entry_price),
            contract_size: numbers(self.contract_size),
            strike: numbers(self.strike),
            expiry: numbers(self.expiry),
            option_kind: self.option_kind.map(strings),
            leverage: numbers(self.leverage),
        }
    }

    /// Whether every column holds `n` rows (a run's columns do: said once
    /// before its rows are read, it spares the row loop its bounds checks).
    #[inline(always)]
    fn all_of_len(&self, n: usize) -> bool {
        let strings = |s: Option<Strings<'_>>| s.is_none_or(|s| s.codes.len() == n);
        let numbers = |x: Option<&[f64]>| x.is_none_or(|x| x.len() == n);
        [self.kind_of_instrument, self.symbol, self.underlying].iter().all(|s| s.codes.len() == n)
            && strings(self.settle)
            && strings(self.option_kind)
            && self.qty.len() == n
            && [self.entry_price, self.contract_size, self.strike, self.expiry, self.leverage].into_iter().all(numbers)
    }

    /// Row `r`'s terms as a position of type `instrument` named `symbol`,
    /// `underlying` and `settle` (`kind`: an option's, read by options only),
    /// not checked. Numbers: `NaN` is null; a null leverage is the profile's.
    #[inline(always)]
    fn terms<'n>(
        &self,
        r: usize,
        instrument: Instrument,
        [symbol, underlying, settle]: [&'n str; 3],
        kind: OptionKind,
    ) -> PositionRef<'n> {
        let c = self;
        let num = |col: Option<&[f64]>| col.map_or(f64::NAN, |x| x[r]);
        let leverage = c.leverage.map(|x| x[r]).filter(|x| !x.is_nan());
        let qty = c.qty[r];
        match instrument {
            Instrument::Linear => {
                PositionRef::Linear { symbol, underlying, settle, qty, entry_price: num(c.entry_price), leverage }
            }
            Instrument::Inverse => PositionRef::Inverse {
                symbol,
                underlying,
                contract_size: num(c.contract_size),
                contracts: qty,
                entry_price: num(c.entry_price),
                leverage,
            },
            Instrument::Option => PositionRef::Option {
                symbol,
                underlying,
                settle,
                kind,
                strike: num(c.strike),
                expiry: num(c.expiry),
                qty,
            },
        }
    }
}

/// Balance columns, one row per wallet balance (asset units; negative: a loan).
/// Several rows of one account and asset add up.
#[derive(Debug, Clone, Copy)]
pub struct BalanceColumns<'a> {
    pub account: &'a [i64],
    pub asset: Strings<'a>,
    pub qty: &'a [f64],
    /// Margin loans in the row's asset (asset units, ≥ 0; docs/BINANCE.md): netted
    /// from the wallet by the scenario model, charged gross by `binance_pm`.
    pub borrowed: Option<&'a [f64]>,
    pub interest: Option<&'a [f64]>,
}

/// What a bad row does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnError {
    /// The call fails with the first error, naming the row and the field.
    #[default]
    Raise,
    /// The account gets status `ERROR` (figures NaN) and the message; the others go on.
    Collect,
}

#[derive(Debug, Clone, Copy)]
pub struct BatchOptions {
    /// Worker threads; 0: one per core.
    pub threads: usize,
    /// Accounts per unit of parallel work (affects speed only, never results).
    pub chunk_size: usize,
    pub on_error: OnError,
    /// Row numbers of the first position and balance rows, for messages naming a
    /// row when these columns are one part of a longer stream (0 otherwise).
    pub first_rows: (usize, usize),
    /// Assemble the books of the accounts it can take on the columnar path
    /// (`batch/columnar.rs`); off, every account takes the per-account path.
    /// Never changes a result; off only to compare the two.
    pub columnar: bool,
}

impl Default for BatchOptions {
    fn default() -> Self {
        BatchOptions { threads: 0, chunk_size: 512, on_error: OnError::Raise, first_rows: (0, 0), columnar: true }
    }
}

/// Status given to an account whose rows are bad, in `OnError::Collect` mode.
pub const ERROR_STATUS: &str = "ERROR";

/// One row per account, ascending account id. Money in USD; `uni_mmr` a ratio.
/// `status` and `worst_group` are codes into `statuses` and `groups`
/// (`worst_group` < 0: no group carries a requirement).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BatchResult {
    pub account: Vec<i64>,
    pub equity: Vec<f64>,
    pub adjusted_equity: Vec<f64>,
    pub maintenance_margin: Vec<f64>,
    pub initial_margin: Vec<f64>,
    pub available: Vec<f64>,
    pub uni_mmr: Vec<f64>,
    /// Codes into `statuses` (a ladder of any allowed length fits).
    pub status: Vec<u16>,
    /// The group with the largest requirement (first on ties).
    pub worst_group: Vec<i32>,
    /// That group's worst scenario: price return and relative vol shock (NaN without one).
    pub worst_price_move: Vec<f64>,
    pub worst_vol_shock: Vec<f64>,
    /// The profile's status ladder, then `BANKRUPT`, then `ERROR`.
    pub statuses: Vec<String>,
    pub groups: Vec<String>,
    /// `(output row, message)` of every account in error (collect mode), in row order.
    pub errors: Vec<(usize, String)>,
}

/// One account's output row.
#[derive(Debug, Clone, Copy)]
struct Row {
    equity: f64,
    adjusted_equity: f64,
    mm: f64,
    im: f64,
    available: f64,
    uni_mmr: f64,
    status: u16,
    worst_group: i32,
    worst_price_move: f64,
    worst_vol_shock: f64,
}

impl Row {
    /// The row's figures, in the order of [`OutputPart::figures`].
    fn figures(&self) -> [f64; FIGURES] {
        [
            self.equity,
            self.adjusted_equity,
            self.mm,
            self.im,
            self.available,
            self.uni_mmr,
            self.worst_price_move,
            self.worst_vol_shock,
        ]
    }
}

/// How many figures an output row has (the `f64` columns of a [`BatchResult`]).
const FIGURES: usize = 8;

/// A run of accounts' places in the output columns: the figures (equity,
/// adjusted equity, maintenance and initial margin, available, uniMMR,
/// worst price move, worst vol shock), the status and the worst group.
struct OutputPart<'a> {
    figures: [&'a mut [f64]; FIGURES],
    status: &'a mut [u16],
    worst_group: &'a mut [i32],
}

impl<'a> OutputPart<'a> {
    /// Row `i` of the part.
    #[inline]
    fn set(&mut self, i: usize, r: &Row) {
        for (column, x) in self.figures.iter_mut().zip(r.figures()) {
            column[i] = x;
        }
        self.status[i] = r.status;
        self.worst_group[i] = r.worst_group;
    }

    /// The part cut into parts of `rows` rows (the last one shorter).
    fn chunks(self, rows: usize) -> Vec<OutputPart<'a>> {
        let mut parts = Vec::with_capacity(self.status.len().div_ceil(rows));
        let mut rest = self;
        while rest.status.len() > rows {
            let OutputPart { figures, status, worst_group } = rest;
            let mut halves = figures.map(|c| c.split_at_mut(rows));
            let figures = halves.each_mut().map(|(head, _)| std::mem::take(head));
            let tails = halves.map(|(_, tail)| tail);
            let ((s, status), (w, worst_group)) = (status.split_at_mut(rows), worst_group.split_at_mut(rows));
            parts.push(OutputPart { figures, status: s, worst_group: w });
            rest = OutputPart { figures: tails, status, worst_group };
        }
        parts.push(rest);
        parts
    }
}

/// A worker's buffers, reused from one account to the next of its chunk.
struct Worker<'e, 'm> {
    engine: &'e Engine,
    builder: BookBuilder<'e, 'm, u32>,
    scratch: Scratch,
    result: MarginResult,
}

/// An instrument type, resolved once per dictionary value.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Instrument {
    Linear,
    Inverse,
    Option,
}

/// An account: its id and its rows in each table (ranges into the grouped row orders).
struct Account {
    id: i64,
    positions: Range<usize>,
    balances: Range<usize>,
}

/// Shared, read-only state of one call, with every dictionary value resolved.
struct Scan<'a> {
    pos: PositionColumns<'a>,
    bal: BalanceColumns<'a>,
    pos_order: Option<&'a [u32]>,
    bal_order: Option<&'a [u32]>,
    /// `BatchOptions::first_rows`: added to a row's index where a message names it.
    first_rows: (usize, usize),
    group_codes: HashMap<&'a str, i32>,
    /// Per code of `pos.type` / `pos.kind`: what it names (`None`: not a valid value).
    instrument: Vec<Option<Instrument>>,
    option_kind: Vec<Option<OptionKind>>,
    /// Per code of `pos.symbol`: the market's mark, and whether the market has a vol for it.
    symbol_mark: Vec<Option<f64>>,
    symbol_vol: Vec<bool>,
    underlying_vol: Vec<bool>,
    /// Every asset the columns name, with its terms (`None`: no price); the rest
    /// refer to it by index: per code of `pos.underlying`, `pos.settle` and
    /// `bal.asset`, and `usdt` for the default settle asset.
    assets: Vec<(&'a str, Option<AssetTerms<'a>>)>,
    underlying_asset: Vec<u32>,
    settle_asset: Vec<u32>,
    balance_asset: Vec<u32>,
    usdt: u32,
}

fn check_len(name: &str, len: usize, expected: usize) -> Result<()> {
    if len == expected {
        Ok(())
    } else {
        Err(CoreError::invalid(name, format!("has {len} rows, expected {expected}")))
    }
}

/// Every code of `table.column` names one of its values (or is negative: null);
/// a bad row is named as row `first + r` (`BatchOptions::first_rows`).
fn check_codes(
    pool: &rayon::ThreadPool,
    (table, first): (&str, usize),
    column: &str,
    s: &Strings<'_>,
    rows: usize,
) -> Result<()> {
    check_len(&format!("{table}.{column}"), s.codes.len(), rows)?;
    // A max over the column vectorises; the offending row is searched for only on error.
    let n = s.values.len() as i64;
    let max = |c: &[i32]| c.iter().copied().max().unwrap_or(-1);
    let top = match s.codes.len() <= KEY_ROWS {
        true => max(s.codes),
        false => pool.install(|| s.codes.par_chunks(KEY_ROWS).map(max).max().unwrap_or(-1)),
    };
    if top as i64 >= n {
        let r = s.codes.iter().position(|&c| i64::from(c) >= n).unwrap_or(0);
        return Err(CoreError::invalid(
            format!("{table}[{}].{column}", first + r),
            format!("dictionary code {} out of range ({} values)", s.codes[r], s.values.len()),
        ));
    }
    Ok(())
}

impl PositionColumns<'_> {
    /// Its codes and columns' lengths; a bad row named as row `first + r`.
    fn check(&self, pool: &rayon::ThreadPool, first: usize) -> Result<()> {
        let n = self.account.len();
        let table = ("positions", first);
        check_codes(pool, table, "type", &self.kind_of_instrument, n)?;
        check_codes(pool, table, "symbol", &self.symbol, n)?;
        check_codes(pool, table, "underlying", &self.underlying, n)?;
        for (column, s) in [("settle", self.settle), ("kind", self.option_kind)] {
            if let Some(s) = s {
                check_codes(pool, table, column, &s, n)?;
            }
        }
        check_len("positions.qty", self.qty.len(), n)?;
        for (name, c) in [
            ("positions.entry_price", self.entry_price),
            ("positions.contract_size", self.contract_size),
            ("positions.strike", self.strike),
            ("positions.expiry", self.expiry),
            ("positions.leverage", self.leverage),
        ] {
            if let Some(c) = c {
                check_len(name, c.len(), n)?;
            }
        }
        Ok(())
    }
}

/// Row indices grouped by account id, stable; `None` when already grouped in ascending order.
fn group_rows(pool: &rayon::ThreadPool, account: &[i64]) -> Option<Vec<u32>> {
    if account.is_sorted() {
        return None;
    }
    let mut order: Vec<u32> = (0..account.len() as u32).collect();
    pool.install(|| order.par_sort_by_key(|&r| account[r as usize]));
    Some(order)
}

/// Accounts in ascending id, with their rows in each grouped order: `pos` and
/// `bal` are the two tables' account columns, `pos_order` and `bal_order`
/// their grouped orders (`None`: in place). An account's rows are found by
/// a run of equal ids, read straight from the column. `None` when a table's
/// rows are not in ascending order (a run's id not above the one before it),
/// which only a table read in place can be: the check costs a comparison per
/// account, not a pass over the rows.
///
/// The rows are cut into pieces at accounts' first position rows (the
/// balances at the first row of an id not below the piece's first), found on
/// `pool` piece by piece, and joined; a cut that splits an account (tables
/// not in order) gives its id twice, which the join refuses as out of order.
/// A piece has at least `piece_rows` position rows ([`ACCOUNT_ROWS`]).
fn accounts(
    pool: &rayon::ThreadPool,
    piece_rows: usize,
    pos: &[i64],
    pos_order: Option<&[u32]>,
    bal: &[i64],
    bal_order: Option<&[u32]>,
) -> Option<Vec<Account>> {
    let id = |ids: &[i64], order: Option<&[u32]>, i: usize| ids[order.map_or(i, |o| o[i] as usize)];
    let (np, nb) = (pos.len(), bal.len());
    let pieces = match np / piece_rows.max(1) {
        0 | 1 => 1,
        n => n.min(4 * pool.current_num_threads()),
    };
    let mut cuts = vec![(0, 0)];
    for k in 1..pieces {
        let (mut pi, last_bi) = (k * np / pieces, cuts[cuts.len() - 1].1);
        while pi < np && id(pos, pos_order, pi) == id(pos, pos_order, pi - 1) {
            pi += 1;
        }
        let bi = match pi < np {
            true => {
                // The first balance row at or after the last cut whose id is not below the piece's first.
                let (first, mut lo, mut hi) = (id(pos, pos_order, pi), last_bi, nb);
                while lo < hi {
                    let mid = lo + (hi - lo) / 2;
                    match id(bal, bal_order, mid) < first {
                        true => lo = mid + 1,
                        false => hi = mid,
                    }
                }
                lo
            }
            false => nb,
        };
        cuts.push((pi, bi));
    }
    cuts.push((np, nb));
    let find = |w: &[(usize, usize)]| match (pos_order, bal_order) {
        // Rows in place (the usual book): runs read straight from the columns.
        (None, None) => piece(|i| pos[i], |i| bal[i], w[0], w[1]),
        _ => piece(|i| id(pos, pos_order, i), |i| id(bal, bal_order, i), w[0], w[1]),
    };
    if pieces == 1 {
        return find(&cuts);
    }
    let parts: Vec<Option<Vec<Account>>> = pool.install(|| cuts.par_windows(2).map(find).collect());
    let mut out: Vec<Account> = Vec::with_capacity(parts.iter().flatten().map(Vec::len).sum());
    for part in parts {
        let part = part?;
        if let (Some(a), Some(b)) = (out.last(), part.first()) {
            if a.id >= b.id {
                return None;
            }
        }
        out.extend(part);
    }
    Some(out)
}

/// The accounts of position rows `p0..p1` and balance rows `b0..b1` (ids
/// `pos_id(row)` and `bal_id(row)`, in grouped order), or `None` when an id
/// is not above the one before it.
#[inline(always)]
fn piece(
    pos_id: impl Fn(usize) -> i64,
    bal_id: impl Fn(usize) -> i64,
    (p0, b0): (usize, usize),
    (p1, b1): (usize, usize),
) -> Option<Vec<Account>> {
    let (mut pi, mut bi) = (p0, b0);
    let mut out: Vec<Account> = Vec::with_capacity((p1 - p0) / 8 + 1);
    while pi < p1 || bi < b1 {
        let account = match (pi < p1, bi < b1) {
            (true, true) => pos_id(pi).min(bal_id(bi)),
            (true, false) => pos_id(pi),
            _ => bal_id(bi),
        };
        if out.last().is_some_and(|a| a.id >= account) {
            return None;
        }
        let (p, b) = (pi, bi);
        while pi < p1 && pos_id(pi) == account {
            pi += 1;
        }
        while bi < b1 && bal_id(bi) == account {
            bi += 1;
        }
        out.push(Account { id: account, positions: p..pi, balances: b..bi });
    }
    Some(out)
}

/// Output rows a job fills at least.
const OUTPUT_ROWS: usize = 1 << 14;

/// Position rows a piece of [`accounts`] takes at least.
const ACCOUNT_ROWS: usize = 1 << 16;

impl Engine {
    /// Margin of every account in the columns on one market snapshot, on a pool
    /// of `options.threads` threads (see the module doc for the contract).
    pub fn margin_batch(
        &self,
        positions: &PositionColumns<'_>,
        balances: &BalanceColumns<'_>,
        market: &Market,
        options: &BatchOptions,
    ) -> Result<BatchResult> {
        self.margin_batch_in(&thread_pool(options.threads)?, positions, balances, market, options)
    }

    /// `margin_batch` on a pool of the caller's (`options.threads` is not read).
    pub fn margin_batch_in(
        &self,
        pool: &rayon::ThreadPool,
        positions: &PositionColumns<'_>,
        balances: &BalanceColumns<'_>,
        market: &Market,
        options: &BatchOptions,
    ) -> Result<BatchResult> {
        let (first_position, first_balance) = options.first_rows;
        positions.check(pool, first_position)?;
        check_codes(pool, ("balances", first_balance), "asset", &balances.asset, balances.account.len())?;
        check_len("balances.qty", balances.qty.len(), balances.account.len())?;

        // Rows already grouped in ascending order (as `pmengine gen` writes them) are
        // read in place; otherwise the tables that are not are grouped first.
        let (pos_acc, bal_acc) = (positions.account, balances.account);
        let (accounts, pos_sorted, bal_sorted) = match accounts(pool, ACCOUNT_ROWS, pos_acc, None, bal_acc, None) {
            Some(accounts) => (accounts, None, None),
            None => {
                let (p, b) = (group_rows(pool, pos_acc), group_rows(pool, bal_acc));
                let accounts = accounts(pool, ACCOUNT_ROWS, pos_acc, p.as_deref(), bal_acc, b.as_deref());
                (accounts.unwrap_or_else(|| unreachable!("grouped rows are in ascending order")), p, b)
            }
        };
        let (pos_order, bal_order) = (pos_sorted.as_deref(), bal_sorted.as_deref());

        let mut statuses = self.params().status_names();
        statuses.push(ERROR_STATUS.into());
        let groups = self.group_dictionary(positions, balances);
        let mut scan = Scan::new(self, market, positions, balances, pos_order, bal_order, &groups);
        scan.first_rows = options.first_rows;
        let layout = columnar::Layout::new(self, &scan, &groups);

        let chunk = options.chunk_size.max(1);
        // The output columns, made as an account in error has them (NaN, `ERROR`, no
        // group), then written in place: each chunk of accounts its own part of each.
        let n = accounts.len();
        let rows_a_job = n.div_ceil(4 * pool.current_num_threads()).max(OUTPUT_ROWS);
        let filled = |value| {
            if n <= rows_a_job {
                return vec![value; n]; // one job: filled here
            }
            let mut column = Vec::new();
            pool.install(|| {
                (0..n).into_par_iter().with_min_len(rows_a_job).map(|_| value).collect_into_vec(&mut column)
            });
            column
        };
        let mut figures: [Vec<f64>; FIGURES] = std::array::from_fn(|_| filled(f64::NAN));
        let mut status = vec![(statuses.len() - 1) as u16; n];
        let mut worst_group = vec![-1; n];
        let output = OutputPart {
            figures: figures.each_mut().map(|c| &mut c[..]),
            status: &mut status,
            worst_group: &mut worst_group,
        };
        let errors: Vec<Vec<(usize, CoreError)>> = pool.install(|| {
            (output.chunks(chunk).into_par_iter().zip(accounts.par_chunks(chunk)).enumerate())
                // A worker's buffers and the series it has read from the market's cache are
                // made once per run of chunks it takes, not once per chunk.
                .map_init(
                    || {
                        let worker = Worker {
                            engine: self,
                            builder: BookBuilder::without_detail(self, market),
                            scratch: Scratch::default(),
                            result: MarginResult::default(),
                        };
                        (worker, columnar::Builder::new(self, market, &layout))
                    },
                    |(worker, fast), (k, (mut out, part))| {
                        let mut errors = Vec::new();
                        for (i, a) in part.iter().enumerate() {
                            let r = if options.columnar && fast.build(&scan, &layout, a) {
                                let worst = self.evaluate_totals(&fast.book, &mut worker.scratch, &mut worker.result);
                                Ok(scan.row(self, &worker.result, worst, |g| fast.group_id(g)))
                            } else {
                                scan.account(a, worker)
                            };
                            match r {
                                Ok(r) => out.set(i, &r),
                                Err(e) => {
                                    // A book left unfinished by a bad row still holds the series
                                    // cache's read lock; the columnar path may write to the cache.
                                    worker.builder.clear();
                                    errors.push((k * chunk + i, e))
                                }
                            }
                        }
                        errors
                    },
                )
                .collect()
        });
        let mut errors = errors.into_iter().flatten();
        if options.on_error == OnError::Raise {
            if let Some((_, e)) = errors.next() {
                return Err(e);
            }
        }

        let [equity, adjusted_equity, maintenance_margin, initial_margin, available, uni_mmr, worst_price_move, worst_vol_shock] =
            figures;
        let out = BatchResult {
            account: accounts.iter().map(|a| a.id).collect(),
            equity,
            adjusted_equity,
            maintenance_margin,
            initial_margin,
            available,
            uni_mmr,
            status,
            worst_group,
            worst_price_move,
            worst_vol_shock,
            statuses,
            groups,
            errors: errors.map(|(i, e)| (i, e.to_string())).collect(),
        };
        Ok(out)
    }

    /// Every group an account of these columns can touch, sorted.
    fn group_dictionary(&self, positions: &PositionColumns<'_>, balances: &BalanceColumns<'_>) -> Vec<String> {
        let p = self.params();
        let mut names: Vec<String> = positions
            .underlying
            .values
            .iter()
            .chain(balances.asset.values)
            .chain(positions.settle.map_or(&[][..], |s| s.values))
            .chain(std::iter::once(&DEFAULT_SETTLE.to_string()))
            .map(|a| p.group_of(a).to_string())
            .collect();
        names.sort();
        names.dedup();
        names
    }
}

impl<'a> Scan<'a> {
    #[allow(clippy::too_many_arguments)]
    fn new(
        engine: &'a Engine,
        market: &'a Market,
        pos: &PositionColumns<'a>,
        bal: &BalanceColumns<'a>,
        pos_order: Option<&'a [u32]>,
        bal_order: Option<&'a [u32]>,
        groups: &'a [String],
    ) -> Self {
        let mut asset_ids: HashMap<&'a str, u32> = HashMap::default();
        let mut assets = Vec::new();
        let mut intern = |name: &'a str| -> u32 {
            *asset_ids.entry(name).or_insert_with(|| {
                assets.push((name, engine.asset_terms(name, market)));
                assets.len() as u32 - 1
            })
        };
        let mut ids = |values: &'a [String]| values.iter().map(|v| intern(v)).collect::<Vec<u32>>();
        let underlying_asset = ids(pos.underlying.values);
        let settle_asset = pos.settle.map_or_else(Vec::new, |s| ids(s.values));
        let balance_asset = ids(bal.asset.values);
        let usdt = intern(DEFAULT_SETTLE);
        let has_vol = |s: &Strings<'_>| s.values.iter().map(|v| market.vols.contains_key(v)).collect::<Vec<_>>();
        Scan {
            pos: *pos,
            bal: *bal,
            pos_order,
            bal_order,
            first_rows: (0, 0),
            group_codes: groups.iter().enumerate().map(|(i, g)| (g.as_str(), i as i32)).collect(),
            instrument: (pos.kind_of_instrument.values.iter())
                .map(|t| match t.as_str() {
                    "linear" => Some(Instrument::Linear),
                    "inverse" => Some(Instrument::Inverse),
                    "option" => Some(Instrument::Option),
                    _ => None,
                })
                .collect(),
            option_kind: pos
                .option_kind
                .map_or_else(Vec::new, |k| k.values.iter().map(|v| OptionKind::parse(v, "").ok()).collect()),
            symbol_mark: pos.symbol.values.iter().map(|v| market.marks.get(v).copied()).collect(),
            symbol_vol: has_vol(&pos.symbol),
            underlying_vol: has_vol(&pos.underlying),
            assets,
            underlying_asset,
            settle_asset,
            balance_asset,
            usdt,
        }
    }

    /// The terms of asset id `id`, or an error naming `field` when the market has no price.
    fn asset(&self, id: u32, field: impl FnOnce() -> String) -> Result<AssetTerms<'a>> {
        let (name, terms) = self.assets[id as usize];
        terms.ok_or_else(|| CoreError::no_price(field(), name))
    }

    /// Validate balance row `row`: its asset id and quantity (asset units).
    #[inline(always)]
    fn balance(&self, row: usize) -> Result<(u32, f64)> {
        let (code, qty) = (self.bal.asset.codes[row], self.bal.qty[row]);
        if code < 0 || !crate::input::is_amount(qty) {
            return Err(self.bad_balance(row));
        }
        Ok((self.balance_asset[code as usize], qty))
    }

    /// The error of balance row `row`, which [`balance`](Self::balance) refused.
    #[cold]
    #[inline(never)]
    fn bad_balance(&self, row: usize) -> CoreError {
        let n = row + self.first_rows.1;
        if self.bal.asset.codes[row] < 0 {
            return CoreError::invalid(format!("balances[{n}].asset"), "required").with_code(Code::Missing);
        }
        let e = crate::input::amount(self.bal.qty[row], &format!("balances[{n}].qty"));
        e.err().unwrap_or_else(|| unreachable!("refused: not an amount"))
    }

    /// Validate balance row `row`'s margin loan (none without the columns).
    #[inline(always)]
    fn loan(&self, row: usize) -> Result<Loan> {
        let owed = |col: Option<&[f64]>| col.map_or(0.0, |c| c[row]);
        let loan = Loan { borrowed: owed(self.bal.borrowed), interest: owed(self.bal.interest) };
        if crate::input::is_loan_amount(loan.borrowed) && crate::input::is_loan_amount(loan.interest) {
            return Ok(loan);
        }
        Err(self.bad_loan(row, loan))
    }

    /// The error of balance row `row`'s margin loan `loan`, which [`loan`](Self::loan) refused.
    #[cold]
    #[inline(never)]
    fn bad_loan(&self, row: usize, loan: Loan) -> CoreError {
        let at = |key: &str| format!("balances[{}].{key}", row + self.first_rows.1);
        let e = crate::input::loan_amount(loan.borrowed, &at("borrowed"))
            .and_then(|_| crate::input::loan_amount(loan.interest, &at("interest")));
        e.err().unwrap_or_else(|| unreachable!("refused: not a loan amount"))
    }

    /// Row `r`'s settle column: its code (< 0: null, or no column) and asset id
    /// (the default settle asset when null).
    #[inline(always)]
    fn settle(&self, r: usize) -> (i32, u32) {
        self.settle_in(&self.pos, r)
    }

    /// [`settle`](Self::settle) of row `r` of `c`, the call's position columns or a run of their rows.
    #[inline(always)]
    fn settle_in(&self, c: &PositionColumns<'_>, r: usize) -> (i32, u32) {
        match c.settle.map_or(-1, |s| s.codes[r]) {
            k if k < 0 => (k, self.usdt),
            k => (k, columnar::at(&self.settle_asset, k as usize)), // a checked code: one id per settle value
        }
    }

    /// An inverse contract settles in its underlying: a settle value, when
    /// given, names the underlying's asset (ids are per name).
    #[inline(always)]
    fn inverse_settle_holds(settle_code: i32, settle: u32, underlying: u32) -> bool {
        settle_code < 0 || settle == underlying
    }

    /// Whether the market has a vol for an option of symbol code `symbol` on
    /// underlying code `underlying` (its own, or its underlying's).
    #[inline(always)]
    fn has_vol(&self, symbol: usize, underlying: usize) -> bool {
        self.symbol_vol[symbol] || self.underlying_vol[underlying]
    }

    /// Validate one position row and borrow its terms, with the ids of its underlying
    /// and settle assets; errors name `positions[row].field`.
    #[inline(always)]
    fn position(&self, row: usize) -> Result<(PositionRef<'a>, u32, u32)> {
        let c = &self.pos;
        let at = |k: &str| format!("positions[{}].{k}", row + self.first_rows.0);
        let symbol =
            c.symbol.get(row).ok_or_else(|| CoreError::invalid(at("symbol"), "required").with_code(Code::Missing))?;
        let underlying = c
            .underlying
            .get(row)
            .ok_or_else(|| CoreError::invalid(at("underlying"), "required").with_code(Code::Missing))?;
        let u = self.underlying_asset[c.underlying.codes[row] as usize];
        let (settle_code, s) = self.settle(row);
        let settle = match settle_code {
            k if k < 0 => DEFAULT_SETTLE,
            k => c.settle.map_or(DEFAULT_SETTLE, |s| &s.values[k as usize]),
        };
        let type_code = c.kind_of_instrument.codes[row];
        let instrument = if type_code < 0 { None } else { self.instrument[type_code as usize] };
        let names = [symbol, underlying, settle];
        let (pos, s) = match instrument {
            Some(Instrument::Linear) => (self.pos.terms(row, Instrument::Linear, names, OptionKind::Call), s),
            Some(Instrument::Inverse) => {
                if !Self::inverse_settle_holds(settle_code, s, u) {
                    return Err(CoreError::invalid(
                        at("settle"),
                        format!("an inverse contract settles in its underlying {underlying}, got {settle:?}"),
                    ));
                }
                (self.pos.terms(row, Instrument::Inverse, names, OptionKind::Call), u)
            }
            Some(Instrument::Option) => {
                let kind = match c.option_kind.map_or(-1, |k| k.codes[row]) {
                    k if k < 0 => {
                        return Err(CoreError::invalid(at("kind"), "required for an option").with_code(Code::Missing))
                    }
                    k => match self.option_kind[k as usize] {
                        Some(kind) => kind,
                        // Not a valid kind: parsing it again gives the error.
                        None => OptionKind::parse(c.option_kind.map_or("", |o| &o.values[k as usize]), &at("kind"))?,
                    },
                };
                if !self.has_vol(c.symbol.codes[row] as usize, c.underlying.codes[row] as usize) {
                    return Err(CoreError::no_vol(at("symbol"), symbol, underlying));
                }
                (self.pos.terms(row, Instrument::Option, names, kind), s)
            }
            None => {
                return Err(match c.kind_of_instrument.get(row) {
                    Some(other) => CoreError::invalid(
                        at("type"),
                        format!("must be \"linear\", \"inverse\" or \"option\", got {other:?}"),
                    ),
                    None => CoreError::invalid(at("type"), "required").with_code(Code::Missing),
                })
            }
        };
        // Checked with an empty prefix, so nothing is formatted unless a check fails;
        // the inverse check names `contracts`, in a batch that column is `qty`.
        validate_ref(&pos, "").map_err(|e| {
            let key = match (e.field(), pos) {
                (".contracts", PositionRef::Inverse { .. }) => "qty",
                (f, _) => f.trim_start_matches('.'),
            };
            let message = match &e {
                CoreError::InvalidInput { message, .. }
                | CoreError::MissingMarketData { message, .. }
                | CoreError::Profile { message, .. } => message.clone(),
            };
            CoreError::invalid(at(key), message)
        })?;
        Ok((pos, u, s))
    }

    /// Margin one account into its output row, with a worker's reusable buffers.
    fn account(&self, a: &Account, w: &mut Worker<'_, '_>) -> Result<Row> {
        let b = &mut w.builder;
        b.clear();
        for k in a.balances.clone() {
            let r = self.bal_order.map_or(k, |o| o[k] as usize);
            let (id, qty) = self.balance(r)?;
            let slot = b.asset(id, || self.asset(id, || format!("balances[{}].asset", r + self.first_rows.1)))?;
            b.balance(slot, qty);
            let loan = self.loan(r)?;
            if loan.owed() != 0.0 {
                b.loan(slot, loan);
            }
        }
        for k in a.positions.clone() {
            let r = self.pos_order.map_or(k, |o| o[k] as usize);
            let (pos, u, s) = self.position(r)?;
            let n = r + self.first_rows.0;
            let at = |f: &str| format!("positions[{n}].{f}");
            let u = b.asset(u, || self.asset(u, || at("underlying")))?;
            let s = b.asset(s, || self.asset(s, || at("settle")))?;
            let code = self.pos.symbol.codes[r] as usize;
            b.position(n, pos, u, s, code as u32, self.symbol_mark[code])?;
        }
        b.finish();
        let worst = w.engine.evaluate_totals(&b.book, &mut w.scratch, &mut w.result);
        let names = &b.book.group_names;
        Ok(self.row(w.engine, &w.result, worst, |g| self.group_codes.get(&*names[g]).copied().unwrap_or(-1)))
    }

    /// An account's output row from its result (figures only, no group rows)
    /// and its worst group; `group_code(g)`: the code in the call's group
    /// dictionary of the book's group `g`.
    fn row(
        &self,
        engine: &Engine,
        r: &MarginResult,
        worst: Option<WorstGroup>,
        group_code: impl FnOnce(usize) -> i32,
    ) -> Row {
        let status = r.status.code(engine.params().status.len());
        Row {
            equity: r.equity,
            adjusted_equity: r.adjusted_equity,
            mm: r.maintenance_margin,
            im: r.initial_margin,
            available: r.available,
            uni_mmr: r.uni_mmr,
            status,
            worst_group: worst.map_or(-1, |w| group_code(w.group)),
            worst_price_move: worst.map_or(f64::NAN, |w| w.price_move),
            worst_vol_shock: worst.map_or(f64::NAN, |w| w.vol_shock),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An account as `(id, position rows, balance rows)`, to compare.
    type Run = (i64, Range<usize>, Range<usize>);

    fn runs(a: Option<Vec<Account>>) -> Option<Vec<Run>> {
        a.map(|a| a.into_iter().map(|a| (a.id, a.positions, a.balances)).collect())
    }

    #[test]
    fn accounts_found_in_pieces_are_those_found_in_one() {
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut next = |n: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % n
        };
        let pools = [1, 2, 3].map(|t| thread_pool(t).unwrap());
        let mut out_of_order = 0;
        for case in 0..300 {
            // Ids with runs (an account's rows), gaps, and accounts in one table only.
            let column = |next: &mut dyn FnMut(u64) -> u64, rows: usize| {
                let mut ids = Vec::new();
                let mut id = next(3) as i64;
                while ids.len() < rows {
                    ids.extend(std::iter::repeat_n(id, 1 + next(6) as usize));
                    id += 1 + next(3) as i64;
                }
                ids.truncate(rows);
                ids
            };
            let (np, nb) = (next(200) as usize, next(80) as usize);
            let (mut pos, mut bal) = (column(&mut next, np), column(&mut next, nb));
            // Some tables out of order: a row moved, or two swapped.
            if case % 3 == 1 && np > 2 {
                let (i, j) = (next(np as u64) as usize, next(np as u64) as usize);
                pos.swap(i, j);
            }
            if case % 5 == 2 && nb > 2 {
                let i = next(nb as u64) as usize;
                bal[i] = next(50) as i64;
            }
            let one = runs(accounts(&pools[0], usize::MAX, &pos, None, &bal, None));
            out_of_order += usize::from(one.is_none());
            let (po, bo) = (group_rows(&pools[0], &pos), group_rows(&pools[0], &bal));
            let grouped = runs(accounts(&pools[0], usize::MAX, &pos, po.as_deref(), &bal, bo.as_deref()));
            assert!(grouped.is_some(), "grouped rows are in ascending order");
            for pool in &pools {
                for piece_rows in [1, 2, 3, 5, 8, 13, 64] {
                    let pieces = runs(accounts(pool, piece_rows, &pos, None, &bal, None));
                    assert_eq!(pieces, one, "case {case}, {piece_rows} rows a piece");
                    let g = runs(accounts(pool, piece_rows, &pos, po.as_deref(), &bal, bo.as_deref()));
                    assert_eq!(g, grouped, "case {case} grouped, {piece_rows} rows a piece");
                }
            }
        }
        assert!((50..250).contains(&out_of_order), "both kinds of tables tried: {out_of_order} out of order");
    }

    #[test]
    fn dictionary_keys_checked_and_renumbered_across_slices() {
        let pools = [1, 2].map(|t| thread_pool(t).unwrap());
        let rows = 3 * KEY_ROWS + 17;
        let remap: Vec<i32> = (0..7).map(|k| (k * 5 + 3) % 7).collect();
        let keys: Vec<i32> = (0..rows).map(|r| ((r * 31) % 7) as i32).collect();
        // Nulls every 5th row, their keys garbage (any number).
        let valid = |r: usize| !r.is_multiple_of(5);
        let mut garbage = keys.clone();
        for r in (0..rows).step_by(5) {
            garbage[r] = if r % 2 == 0 { -9 } else { 1 << 30 };
        }
        for pool in &pools {
            assert_eq!(first_bad_key(pool, &keys, 7, |_| true), None);
            assert_eq!(first_bad_key(pool, &garbage, 7, valid), None);
            assert_eq!(first_bad_key(pool, &garbage, 7, |_| true), Some(0));
            // The first bad valid row in row order, whichever slice is searched first.
            let mut bad = garbage.clone();
            for (r, k) in [(2 * KEY_ROWS + 3, 7), (KEY_ROWS + 1, -1), (3 * KEY_ROWS + 2, 99)] {
                bad[r] = k;
            }
            assert_eq!(first_bad_key(pool, &bad, 7, valid), Some(KEY_ROWS + 1));
            assert_eq!(first_bad_key(pool, &keys, 6, |_| true), Some(keys.iter().position(|&k| k == 6).unwrap()));

            let all = remap_keys(pool, &keys, &remap, None::<fn(usize) -> bool>);
            assert_eq!(all, keys.iter().map(|&k| remap[k as usize]).collect::<Vec<_>>());
            let some = remap_keys(pool, &garbage, &remap, Some(valid));
            let expected: Vec<i32> = (0..rows).map(|r| if valid(r) { remap[keys[r] as usize] } else { -1 }).collect();
            assert_eq!(some, expected);
        }
    }

    #[test]
    fn encoded_strings_are_the_first_appearance_dictionary_at_any_thread_count() {
        // Short (1..3 bytes: three bytes; 4..7: two overlapping halves), 8-byte,
        // 9..16-byte (overlapping words) and long values, with look-alikes that
        // differ only in a middle byte.
        let words = [
            "a",
            "ab",
            "abc",
            "axc",
            "abcde",
            "abxde",
            "BTC",
            "linear",
            "BTCUSDT",
            "BTCUSDT_",
            "BTCUSDT_261225",
            "BTCUSDT_261226",
            "ETH-261225-3000-C",
            "ETH-261225-3100-C",
            "",
            "BTCUSDT_261225X",
        ];
        let few: Vec<Option<String>> = (0..100_000)
            .map(
                |i: usize| {
                    if i.is_multiple_of(13) {
                        None
                    } else {
                        Some(words[(i * 7 + i / 5) % words.len()].to_string())
                    }
                },
            )
            .collect();
        // Values first met in later slices (renumbered), and more distinct values
        // in the first slice than seed the others.
        let late: Vec<Option<String>> =
            (0..200_000).map(|i: usize| Some(format!("S{}", (i / 40_000) * 3 + i % 3))).collect();
        let many: Vec<Option<String>> = (0..100_000).map(|i: usize| Some(format!("{}", (i * 31) % 9_000))).collect();
        // Slices that hold only the first slice's values, then one new value
        // late: a worker's dictionary serves several slices, then grows.
        let once: Vec<Option<String>> = (0..300_000)
            .map(|i: usize| Some(if i == 250_001 { "new".into() } else { format!("S{}", i % 3) }))
            .collect();
        for rows in [few, late, many, once] {
            let mut seen: Vec<&str> = Vec::new();
            let mut index = std::collections::HashSet::new();
            for s in rows.iter().flatten() {
                if index.insert(s.as_str()) {
                    seen.push(s);
                }
            }
            // The same rows as slices of one buffer (as an Arrow array holds them): short
            // values then read with a masked whole-word load, up to the buffer's last bytes.
            let buffer: String = rows.iter().flatten().map(String::as_str).collect();
            let mut at = 0;
            let spans: Vec<Option<&str>> = (rows.iter())
                .map(|r| {
                    r.as_ref().map(|r| {
                        at += r.len();
                        &buffer[at - r.len()..at]
                    })
                })
                .collect();
            // And as offsets into the buffer (a null: an empty span), as an Arrow string array's.
            let mut ends = vec![0i64];
            ends.extend(rows.iter().scan(0i64, |at, r| {
                *at += r.as_ref().map_or(0, |r| r.len() as i64);
                Some(*at)
            }));
            let valid = |i: usize| rows[i].is_some();
            for threads in [1, 2, 3] {
                let pool = thread_pool(threads).unwrap();
                for e in [
                    encode_strings(&pool, rows.len(), &[], |i| rows[i].as_deref().map(str::as_bytes)),
                    encode_strings(&pool, rows.len(), buffer.as_bytes(), |i| spans[i].map(str::as_bytes)),
                    encode_offsets(&pool, &ends, buffer.as_bytes(), Some(valid)).unwrap(),
                ] {
                    assert_eq!(e.values, seen);
                    for (i, r) in rows.iter().enumerate() {
                        assert_eq!(e.view().get(i), r.as_deref(), "row {i}");
                    }
                }
            }
        }
    }

    #[test]
    fn offsets_are_keyed_like_slices_and_malformed_ones_are_named_by_their_first_row() {
        // Every length from 0 to 20 at every position in a buffer, up to its
        // last byte (where eight bytes no longer follow a short value).
        let words: Vec<String> =
            (0..=20).map(|n| (0..n).map(|i| (b'a' + (i * 7 % 26) as u8) as char).collect()).collect();
        let rows: Vec<&str> = (0..80_000).map(|i: usize| words[(i * 13 + i / 7) % words.len()].as_str()).collect();
        let buffer: String = rows.concat();
        let mut ends = vec![0i32];
        ends.extend(rows.iter().scan(0i32, |at, r| {
            *at += r.len() as i32;
            Some(*at)
        }));
        let no_nulls = None::<fn(usize) -> bool>;
        for threads in [1, 2] {
            let pool = thread_pool(threads).unwrap();
            let e = encode_offsets(&pool, &ends, buffer.as_bytes(), no_nulls).unwrap();
            let expected = encode_strings(&pool, rows.len(), &[], |i| Some(rows[i].as_bytes()));
            assert_eq!(e, expected);
            // A buffer shorter than a word, and a last row one byte past it.
            let e = encode_offsets(&pool, &[0u64, 3, 5, 5, 7], b"BTCUSDT", no_nulls).unwrap();
            assert_eq!(
                (e.codes, e.values),
                (vec![0, 1, 2, 3], vec!["BTC".into(), "US".into(), "".into(), "DT".into()])
            );
            assert_eq!(encode_offsets(&pool, &[0u64, 3, 5, 5, 8], b"BTCUSDT", no_nulls), Err(3));
        }
        // Offsets past the buffer, backwards or negative: the first such row, in
        // whichever slice of rows it falls; a null row's offsets are not read.
        let n: i32 = 100_000;
        let ends: Vec<i32> = (0..=n).map(|i| i % 7).collect(); // backwards every seventh row
        let bytes = b"BTCUSDT";
        for threads in [1, 3] {
            let pool = thread_pool(threads).unwrap();
            let all = None::<fn(usize) -> bool>;
            assert_eq!(encode_offsets(&pool, &ends, bytes, all), Err(6));
            let late = |i: usize| i >= 70_000 || i % 7 != 6;
            assert_eq!(encode_offsets(&pool, &ends, bytes, Some(late)), Err(70_006));
            let past = [0i32, 3, 9];
            assert_eq!(encode_offsets(&pool, &past, bytes, all), Err(1));
            let negative = [0i32, -2, 3];
            assert_eq!(encode_offsets(&pool, &negative, bytes, all), Err(0));
            // A negative start before a short end, where eight bytes would follow it.
            assert_eq!(encode_offsets(&pool, &[-1i32, 2], b"BTCUSDT_261225XX", all), Err(0));
            assert_eq!(encode_offsets(&pool, &[] as &[i32], bytes, all), Ok(Encoded::default()));
            assert_eq!(encode_offsets(&pool, &[0i32], bytes, all), Ok(Encoded::default()));
        }
    }
}
