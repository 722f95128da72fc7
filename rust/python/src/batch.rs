//! `Engine.margin_batch`: Arrow (or a dict of numpy arrays) in, Arrow or numpy out.
//!
//! Input arrives through the Arrow PyCapsule interface (`__arrow_c_stream__` /
//! `__arrow_c_array__`: pyarrow, polars, DuckDB, ...), so no row becomes a
//! Python object. Numeric columns of a single chunk without nulls are read in
//! place; strings are dictionary-encoded once (a code per row). The compute
//! runs with the GIL released.

use crate::errors::{guard, invalid};
use arrow_array::cast::AsArray;
use arrow_array::types::ArrowPrimitiveType;
use arrow_array::types::{Float64Type, Int32Type, Int64Type, UInt64Type};
use arrow_array::{
    Array, ArrayRef, DictionaryArray, Float64Array, Int64Array, PrimitiveArray, RecordBatch, StringArray,
    StringViewArray,
};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use numpy::PyArray1;
use pmengine_core::batch::{
    encode_offsets, encode_strings, first_bad_key, is_identity, remap_keys, thread_pool, BalanceColumns, BatchOptions,
    BatchResult, Encoded, OnError, PositionColumns, Strings, ThreadPool,
};
use pmengine_core::error::Code;
use pmengine_core::{Engine, Market};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyMapping};
use pyo3_arrow::input::AnyRecordBatch;
use pyo3_arrow::PyTable;
use rustc_hash::FxHashMap as HashMap;
use std::borrow::Cow;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

pub const POSITION_COLUMNS: [&str; 12] = [
    "account",
    "type",
    "symbol",
    "underlying",
    "settle",
    "qty",
    "entry_price",
    "contract_size",
    "strike",
    "expiry",
    "kind",
    "leverage",
];
/// Classic-margin terms: accepted, not read by the portfolio engine.
const IGNORED_COLUMNS: [&str; 1] = ["isolated_margin"];
/// `borrowed` and `interest` are optional: a margin loan in the row's asset.
pub const BALANCE_COLUMNS: [&str; 5] = ["account", "asset", "qty", "borrowed", "interest"];

/// A table's record batches, from an Arrow object or a mapping of columns.
struct Table {
    name: &'static str,
    schema: Arc<Schema>,
    batches: Vec<RecordBatch>,
    /// Row number of the first row, for messages (a part of a longer stream).
    first_row: usize,
}

impl Table {
    fn read(obj: &Bound<'_, PyAny>, name: &'static str, known: &[&str], first_row: usize) -> PyResult<Self> {
        let py = obj.py();
        let arrow = if obj.hasattr("__arrow_c_stream__")? || obj.hasattr("__arrow_c_array__")? {
            obj.clone()
        } else if obj.cast::<PyMapping>().is_ok() || obj.cast::<PyDict>().is_ok() {
            // A dict of numpy arrays (or lists): pyarrow converts it without per-row objects
            // for numeric and fixed-width string arrays.
            py.import("pyarrow")?.call_method1("table", (obj,))?
        } else {
            let ty = obj.get_type().name()?.to_string();
            return Err(invalid(
                Code::WrongType,
                name,
                format!("must be an Arrow table or record batch, or a dict of columns, got {ty}"),
            ));
        };
        let reader = arrow.extract::<AnyRecordBatch>()?.into_reader()?;
        let schema = reader.schema();
        let batches = reader
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| invalid(Code::InvalidValue, name, format!("cannot read the Arrow data: {e}")))?;
        for f in schema.fields() {
            if !known.contains(&f.name().as_str()) && !IGNORED_COLUMNS.contains(&f.name().as_str()) {
                return Err(invalid(
                    Code::UnknownKey,
                    format!("{name}.{}", f.name()),
                    format!("unknown column (expected {})", known.join(", ")),
                ));
            }
        }
        Ok(Table { name, schema, batches, first_row })
    }

    fn chunks(&self, col: &str) -> Option<Vec<&ArrayRef>> {
        let i = self.schema.index_of(col).ok()?;
        Some(self.batches.iter().map(|b| b.column(i)).collect())
    }

    fn required(&self, col: &str) -> PyResult<Vec<&ArrayRef>> {
        self.chunks(col).ok_or_else(|| invalid(Code::Missing, format!("{}.{col}", self.name), "required column"))
    }

    /// Row offset of each chunk (for messages naming a row).
    fn offsets(&self) -> Vec<usize> {
        let mut at = self.first_row;
        self.batches
            .iter()
            .map(|b| {
                let o = at;
                at += b.num_rows();
                o
            })
            .collect()
    }

    fn ids(&self) -> PyResult<Column<Int64Type>> {
        let offsets = self.offsets();
        let mut arrays = Vec::new();
        for (k, a) in self.required("account")?.into_iter().enumerate() {
            if !a.data_type().is_integer() {
                return Err(invalid(
                    Code::WrongType,
                    format!("{}.account", self.name),
                    format!("must be integers, got Arrow type {}", a.data_type()),
                ));
            }
            // A uint64 id above the largest i64: the cast below would make it a null.
            if let Some(u) = a.as_primitive_opt::<UInt64Type>() {
                if let Some(r) = u.iter().position(|v| v.is_some_and(|v| v > i64::MAX as u64)) {
                    return Err(invalid(
                        Code::OutOfRange,
                        format!("{}[{}].account", self.name, offsets[k] + r),
                        format!("must be at most {} (a signed 64-bit integer), got {}", i64::MAX, u.value(r)),
                    ));
                }
            }
            let c = arrow_cast::cast(a, &DataType::Int64)
                .map_err(|e| invalid(Code::WrongType, format!("{}.account", self.name), e.to_string()))?;
            let c = c.as_primitive::<Int64Type>();
            // Searched row by row only when the array has a null.
            if c.null_count() > 0 {
                let r = (0..c.len()).find(|&r| c.is_null(r)).unwrap_or(0);
                return Err(invalid(Code::Missing, format!("{}[{}].account", self.name, offsets[k] + r), "required"));
            }
            arrays.push(c.clone());
        }
        Ok(Column { arrays, null: 0 })
    }

    /// A numeric column as f64, null = NaN; timestamps become seconds since the epoch.
    fn numbers(&self, col: &str) -> PyResult<Option<Column<Float64Type>>> {
        let Some(chunks) = self.chunks(col) else { return Ok(None) };
        let err = |e: String| invalid(Code::WrongType, format!("{}.{col}", self.name), e);
        let mut arrays = Vec::with_capacity(chunks.len());
        for a in chunks {
            let f = match a.data_type() {
                DataType::Timestamp(unit, _) => {
                    let scale = match unit {
                        TimeUnit::Second => 1.0,
                        TimeUnit::Millisecond => 1e-3,
                        TimeUnit::Microsecond => 1e-6,
                        TimeUnit::Nanosecond => 1e-9,
                    };
                    let i = arrow_cast::cast(a, &DataType::Int64).map_err(|e| err(e.to_string()))?;
                    let i = i.as_primitive::<Int64Type>();
                    Float64Array::from_iter(i.iter().map(|x| x.map(|x| x as f64 * scale)))
                }
                t if t.is_numeric() || *t == DataType::Null => {
                    let c = arrow_cast::cast(a, &DataType::Float64).map_err(|e| err(e.to_string()))?;
                    c.as_primitive::<Float64Type>().clone()
                }
                t => return Err(err(format!("must be numbers, got Arrow type {t}"))),
            };
            arrays.push(f);
        }
        Ok(Some(Column { arrays, null: f64::NAN }))
    }

    /// An optional string column, or `None` when it is absent or has no value
    /// in any row, which the engine reads alike (a null code and an absent
    /// column are both "not given"), so no code per row is made for it. With
    /// `values_named` the column's dictionary values are names the call lists
    /// (a settle asset's group): a dictionary column is then kept whenever it
    /// has values, so the call's list of groups stays the same.
    fn optional_strings(&self, col: &str, pool: &ThreadPool, values_named: bool) -> PyResult<Option<Dict>> {
        let Some(chunks) = self.chunks(col) else { return Ok(None) };
        // Strings (or Arrow's null type) with no dictionary value the call would list;
        // another type goes on to `strings`, which names it.
        let unnamed = |a: &ArrayRef| match a.as_any_dictionary_opt() {
            Some(d) => is_string_type(d.values().data_type()) && (!values_named || d.values().is_empty()),
            None => is_string_type(a.data_type()),
        };
        if chunks.iter().all(|a| a.null_count() == a.len() && unnamed(a)) {
            return Ok(None);
        }
        self.strings(col, pool)
    }

    /// A string column, dictionary-encoded across all chunks (null: code -1).
    /// Plain string chunks are encoded on `pool` (`pmengine_core::batch::encode_offsets`
    /// and `encode_strings`: each distinct value hashed once per slice of rows);
    /// dictionary chunks keep their keys, renumbered into one dictionary.
    fn strings(&self, col: &str, pool: &ThreadPool) -> PyResult<Option<Dict>> {
        let Some(chunks) = self.chunks(col) else { return Ok(None) };
        let err = |e: String| invalid(Code::WrongType, format!("{}.{col}", self.name), e);
        let target = DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8));
        let mut d = Dict { borrowed: None, codes: Vec::new(), values: Vec::new() };
        let mut index: HashMap<String, i32> = HashMap::default();
        let single = chunks.len() == 1;
        let mut intern = |d: &mut Dict, v: &str| -> i32 {
            *index.entry(v.to_string()).or_insert_with(|| {
                d.values.push(v.to_string());
                d.values.len() as i32 - 1
            })
        };
        for (a, offset) in chunks.into_iter().zip(self.offsets()) {
            if let Some(e) = encode_plain(a, pool) {
                let e = e.map_err(|(r, why)| {
                    invalid(Code::InvalidValue, format!("{}[{}].{col}", self.name, offset + r), why)
                })?;
                let remap: Vec<i32> = e.values.iter().map(|v| intern(&mut d, v)).collect();
                if d.codes.is_empty() && is_identity(&remap) {
                    d.codes = e.codes; // the first chunk's codes are already the dictionary's
                } else {
                    d.codes.extend(e.codes.iter().map(|&k| if k < 0 { -1 } else { remap[k as usize] }));
                }
                continue;
            }
            let value_type = match a.data_type() {
                DataType::Dictionary(_, v) => v.as_ref(),
                t => t,
            };
            if !is_string_type(value_type) {
                return Err(err(format!("must be strings, got Arrow type {}", a.data_type())));
            }
            let cast = arrow_cast::cast(a, &target).map_err(|e| err(e.to_string()))?;
            let c: &DictionaryArray<Int32Type> = cast.as_dictionary();
            let values = c.values().as_string::<i32>();
            let remap: Vec<i32> = values.iter().map(|v| intern(&mut d, v.unwrap_or(""))).collect();
            let keys = c.keys();
            // Every code must point at a value, on every path below (a damaged array may not).
            let n = remap.len();
            if let Some(r) = first_bad_key(pool, keys.values(), n, |r| keys.is_valid(r)) {
                return Err(invalid(
                    Code::OutOfRange,
                    format!("{}[{}].{col}", self.name, offset + r),
                    format!("dictionary code {} out of range ({n} values)", keys.value(r)),
                ));
            }
            let identity = is_identity(&remap);
            let nulls = keys.null_count() > 0;
            if single && identity && !nulls {
                // Distinct values and no nulls: the Arrow keys are the codes, read in place.
                d.borrowed = Some(keys.clone());
                continue;
            }
            let valid = nulls.then_some(|r| keys.is_valid(r));
            let codes = remap_keys(pool, keys.values(), &remap, valid);
            match d.codes.is_empty() {
                true => d.codes = codes,
                false => d.codes.extend(codes),
            }
        }
        Ok(Some(d))
    }
}

/// Whether a column of type `t` (a dictionary's value type) can hold the strings of a string column.
fn is_string_type(t: &DataType) -> bool {
    matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Null)
}

/// A plain (not dictionary-encoded) string chunk encoded on `pool`; `None` for
/// another type, `Some(Err((row, why)))` for the first row that points outside
/// the array's buffers. An array imported through the C Data Interface comes
/// with no promise that its offsets or views were checked, so every row's are.
fn encode_plain(a: &ArrayRef, pool: &ThreadPool) -> Option<Result<Encoded, (usize, &'static str)>> {
    let plain = matches!(a.data_type(), DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View);
    if plain && a.null_count() == a.len() {
        // All null (an options-only column of a book without options): nothing to read.
        return Some(Ok(Encoded { codes: vec![-1; a.len()], values: Vec::new() }));
    }
    let nulls = a.nulls().filter(|n| n.null_count() > 0);
    let valid = nulls.map(|n| |i| n.is_valid(i));
    const OFFSETS: &str = "offsets point outside the string array's values buffer (a malformed Arrow array)";
    match a.data_type() {
        DataType::Utf8 => {
            let a = a.as_string::<i32>();
            Some(encode_offsets(pool, a.value_offsets(), a.value_data(), valid).map_err(|r| (r, OFFSETS)))
        }
        DataType::LargeUtf8 => {
            let a = a.as_string::<i64>();
            Some(encode_offsets(pool, a.value_offsets(), a.value_data(), valid).map_err(|r| (r, OFFSETS)))
        }
        DataType::Utf8View => Some(encode_views(a.as_string_view(), valid, pool)),
        _ => None,
    }
}

/// A string view chunk encoded on `pool`, each row's bytes read with bounds
/// checks (`StringViewArray::value` reads unchecked): a view longer than 12
/// bytes names a data buffer, an offset and a length that must lie inside it.
fn encode_views(
    v: &StringViewArray,
    valid: Option<impl Fn(usize) -> bool + Sync>,
    pool: &ThreadPool,
) -> Result<Encoded, (usize, &'static str)> {
    // Each view is 16 bytes: its length, then the bytes themselves up to 12,
    // else a 4-byte prefix, the data buffer's index and the offset in it.
    let (views, raw, buffers) = (v.views(), v.views().inner().as_slice(), v.data_buffers());
    let bad = AtomicUsize::new(usize::MAX);
    let value = |i: usize| -> &[u8] {
        let view = views[i];
        let len = view as u32 as usize;
        let bytes = match len <= 12 {
            true => raw.get(16 * i + 4..16 * i + 4 + len),
            false => {
                let (buffer, offset) = ((view >> 64) as u32 as usize, (view >> 96) as u32 as usize);
                buffers.get(buffer).and_then(|b| b.as_slice().get(offset..offset + len))
            }
        };
        bytes.unwrap_or_else(|| {
            bad.fetch_min(i, Ordering::Relaxed);
            &[]
        })
    };
    let e = encode_strings(pool, v.len(), &[], |i| valid.as_ref().is_none_or(|f| f(i)).then(|| value(i)));
    match bad.into_inner() {
        usize::MAX => Ok(e),
        row => Err((row, "a string view points outside the array's data buffers (a malformed Arrow array)")),
    }
}

/// Primitive chunks (nulls read as `null`); one chunk without nulls is read in place.
struct Column<T: ArrowPrimitiveType> {
    arrays: Vec<PrimitiveArray<T>>,
    null: T::Native,
}

impl<T: ArrowPrimitiveType> Column<T> {
    fn slice(&self) -> Cow<'_, [T::Native]> {
        match self.arrays.as_slice() {
            [a] if a.null_count() == 0 => Cow::Borrowed(a.values()),
            arrays => Cow::Owned(arrays.iter().flat_map(|a| a.iter().map(|x| x.unwrap_or(self.null))).collect()),
        }
    }
}

struct Dict {
    /// The keys of a single Arrow chunk, when they can be used as they are.
    borrowed: Option<arrow_array::Int32Array>,
    codes: Vec<i32>,
    values: Vec<String>,
}

impl Dict {
    fn view(&self) -> Strings<'_> {
        let codes = self.borrowed.as_ref().map_or(&self.codes[..], |k| k.values());
        Strings { codes, values: &self.values }
    }
}

/// Whether `obj` is a `pyarrow.RecordBatchReader` (margined as a stream, part by part).
pub fn is_reader(obj: &Bound<'_, PyAny>) -> PyResult<bool> {
    let ty = obj.get_type();
    Ok(ty.name()? == "RecordBatchReader" && ty.module()?.to_string().starts_with("pyarrow"))
}

/// Most worker threads a batch may ask for (far more than any machine's cores).
const MAX_THREADS: usize = 1024;

/// The `threads` argument: an integer (anything with `__index__`; another type
/// is a `TypeError`) from 1 to [`MAX_THREADS`]; another value is an `InvalidInputError`.
pub(crate) fn threads_arg(arg: &Bound<'_, PyAny>) -> PyResult<usize> {
    Ok(crate::convert::int_arg(arg, "threads", 1, Some(MAX_THREADS as i64))? as usize)
}

fn parse_errors(errors: &str) -> PyResult<OnError> {
    match errors {
        "raise" => Ok(OnError::Raise),
        "collect" => Ok(OnError::Collect),
        other => Err(invalid(Code::InvalidValue, "errors", format!("must be \"raise\" or \"collect\", got {other:?}"))),
    }
}

/// The `output` argument: what the result is made of.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Output {
    Arrow,
    Numpy,
}

fn parse_output(output: &str) -> PyResult<Output> {
    match output {
        "arrow" => Ok(Output::Arrow),
        "numpy" => Ok(Output::Numpy),
        other => Err(invalid(Code::InvalidValue, "output", format!("must be \"arrow\" or \"numpy\", got {other:?}"))),
    }
}

#[allow(clippy::too_many_arguments)]
pub fn margin_batch<'py>(
    py: Python<'py>,
    engine: &Engine,
    positions: &Bound<'py, PyAny>,
    balances: Option<&Bound<'py, PyAny>>,
    market: &Market,
    threads: Option<&Bound<'py, PyAny>>,
    errors: &str,
    output: &str,
    chunk_size: i128,
    first_rows: (i128, i128),
) -> PyResult<Bound<'py, PyAny>> {
    let on_error = parse_errors(errors)?;
    let output = parse_output(output)?;
    let threads = threads.filter(|t| !t.is_none()).map(threads_arg).transpose()?;
    if chunk_size < 1 {
        return Err(invalid(Code::OutOfRange, "chunk_size", format!("must be >= 1, got {chunk_size}")));
    }
    let chunk_size = usize::try_from(chunk_size).unwrap_or(usize::MAX);
    let row = |x: i128| {
        usize::try_from(x).map_err(|_| invalid(Code::OutOfRange, "first_rows", format!("must be >= 0, got {x}")))
    };
    let first_rows = (row(first_rows.0)?, row(first_rows.1)?);
    let pos = Table::read(positions, "positions", &POSITION_COLUMNS, first_rows.0)?;
    let bal = match balances {
        Some(b) if !b.is_none() => Some(Table::read(b, "balances", &BALANCE_COLUMNS, first_rows.1)?),
        _ => None,
    };
    let options =
        BatchOptions { threads: threads.unwrap_or(0), chunk_size, on_error, first_rows, ..Default::default() };
    // Columns are converted (strings encoded on the pool) and margined with the GIL released.
    let result = py.detach(|| compute(engine, &pos, bal.as_ref(), market, &options))?;
    match output {
        Output::Numpy => to_numpy(py, result),
        Output::Arrow => to_arrow(py, result),
    }
}

/// Convert the tables' columns and margin them (no Python object is touched),
/// each parallel step on a pool of `options.threads` threads. (Run from this
/// thread, not as one job on the pool: from inside a worker, the encoding of
/// plain strings measured slower on two threads, 78 against 61 ms.)
fn compute(
    engine: &Engine,
    pos: &Table,
    bal: Option<&Table>,
    market: &Market,
    options: &BatchOptions,
) -> PyResult<BatchResult> {
    let pool = guard(|| thread_pool(options.threads))?;
    let pool = &pool;
    let required = |t: &Table, c: &str, x: Option<Dict>| {
        x.ok_or_else(|| invalid(Code::Missing, format!("{}.{c}", t.name), "required column"))
    };
    let p_account = pos.ids()?;
    let p_account = p_account.slice();
    let p_type = required(pos, "type", pos.strings("type", pool)?)?;
    let p_symbol = required(pos, "symbol", pos.strings("symbol", pool)?)?;
    let p_underlying = required(pos, "underlying", pos.strings("underlying", pool)?)?;
    let p_settle = pos.optional_strings("settle", pool, true)?;
    let p_kind = pos.optional_strings("kind", pool, false)?;
    let p_qty = pos.numbers("qty")?.ok_or_else(|| invalid(Code::Missing, "positions.qty", "required column"))?;
    let p_entry = pos.numbers("entry_price")?;
    let p_size = pos.numbers("contract_size")?;
    let p_strike = pos.numbers("strike")?;
    let p_expiry = pos.numbers("expiry")?;
    let p_leverage = pos.numbers("leverage")?;
    let (b_account, b_asset, b_qty, b_borrowed, b_interest) = match bal {
        Some(b) => (
            b.ids()?,
            required(b, "asset", b.strings("asset", pool)?)?,
            Some(b.numbers("qty")?.ok_or_else(|| invalid(Code::Missing, "balances.qty", "required column"))?),
            b.numbers("borrowed")?,
            b.numbers("interest")?,
        ),
        None => (
            Column { arrays: Vec::new(), null: 0 },
            Dict { borrowed: None, codes: Vec::new(), values: Vec::new() },
            None,
            None,
            None,
        ),
    };
    let b_account = b_account.slice();

    let leverage = p_leverage.as_ref().map(Column::slice);
    let (qty, entry, size, strike, expiry) = (
        p_qty.slice(),
        p_entry.as_ref().map(Column::slice),
        p_size.as_ref().map(Column::slice),
        p_strike.as_ref().map(Column::slice),
        p_expiry.as_ref().map(Column::slice),
    );
    let b_qty = b_qty.as_ref().map_or(Cow::Borrowed(&[][..]), Column::slice);
    let columns = PositionColumns {
        account: &p_account,
        kind_of_instrument: p_type.view(),
        symbol: p_symbol.view(),
        underlying: p_underlying.view(),
        settle: p_settle.as_ref().map(Dict::view),
        qty: &qty,
        entry_price: entry.as_deref(),
        contract_size: size.as_deref(),
        strike: strike.as_deref(),
        expiry: expiry.as_deref(),
        option_kind: p_kind.as_ref().map(Dict::view),
        leverage: leverage.as_deref(),
    };
    let (borrowed, interest) = (b_borrowed.as_ref().map(Column::slice), b_interest.as_ref().map(Column::slice));
    let balance_columns = BalanceColumns {
        account: &b_account,
        asset: b_asset.view(),
        qty: &b_qty,
        borrowed: borrowed.as_deref(),
        interest: interest.as_deref(),
    };
    guard(|| engine.margin_batch_in(pool, &columns, &balance_columns, market, options))
}

/// Output column names, in order.
pub const OUTPUT_COLUMNS: [&str; 12] = [
    "account",
    "equity",
    "adjusted_equity",
    "maintenance_margin",
    "initial_margin",
    "available",
    "uni_mmr",
    "status",
    "worst_group",
    "worst_price_move",
    "worst_vol_shock",
    "error",
];

fn error_column(r: &BatchResult) -> Vec<Option<String>> {
    let mut out = vec![None; r.account.len()];
    for (i, m) in &r.errors {
        out[*i] = Some(m.clone());
    }
    out
}

fn to_arrow(py: Python<'_>, r: BatchResult) -> PyResult<Bound<'_, PyAny>> {
    let dict = |codes: &[i32], names: &[String]| -> PyResult<ArrayRef> {
        let keys = arrow_array::Int32Array::from_iter(codes.iter().map(|&c| (c >= 0).then_some(c)));
        let values: ArrayRef = Arc::new(StringArray::from_iter_values(names));
        Ok(Arc::new(
            DictionaryArray::<Int32Type>::try_new(keys, values)
                .map_err(|e| invalid(Code::InvalidValue, "output", e.to_string()))?,
        ))
    };
    let status: Vec<i32> = r.status.iter().map(|&s| i32::from(s)).collect();
    let errors: ArrayRef = Arc::new(StringArray::from(error_column(&r)));
    let f = |v: Vec<f64>| -> ArrayRef { Arc::new(Float64Array::from(v)) };
    let dict_type = DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from(r.account)),
        f(r.equity),
        f(r.adjusted_equity),
        f(r.maintenance_margin),
        f(r.initial_margin),
        f(r.available),
        f(r.uni_mmr),
        dict(&status, &r.statuses)?,
        dict(&r.worst_group, &r.groups)?,
        f(r.worst_price_move),
        f(r.worst_vol_shock),
        errors,
    ];
    let fields: Vec<Field> = OUTPUT_COLUMNS
        .iter()
        .zip(&columns)
        .map(|(name, c)| {
            let ty = if matches!(*name, "status" | "worst_group") { dict_type.clone() } else { c.data_type().clone() };
            Field::new(*name, ty, matches!(*name, "worst_group" | "error"))
        })
        .collect();
    let schema = Arc::new(Schema::new(fields));
    let batch = RecordBatch::try_new(Arc::clone(&schema), columns)
        .map_err(|e| invalid(Code::InvalidValue, "output", e.to_string()))?;
    PyTable::try_new(vec![batch], schema)?.into_pyarrow(py)
}

fn to_numpy(py: Python<'_>, r: BatchResult) -> PyResult<Bound<'_, PyAny>> {
    let np = py.import("numpy")?;
    let d = PyDict::new(py);
    let n = r.account.len();
    // Strings as numpy unicode arrays: the names, taken by code (no per-row objects).
    let take = |names: Vec<String>, codes: Vec<i64>| -> PyResult<Bound<'_, PyAny>> {
        let names = np.call_method1("asarray", (names,))?;
        names.call_method1("take", (PyArray1::from_vec(py, codes),))
    };
    d.set_item("account", PyArray1::from_vec(py, r.account))?;
    let status = r.status.iter().map(|&s| i64::from(s)).collect();
    let mut groups = r.groups.clone();
    groups.push(String::new());
    let missing = (groups.len() - 1) as i64;
    let worst = r.worst_group.iter().map(|&g| if g < 0 { missing } else { i64::from(g) }).collect();
    let mut messages = vec![String::new()];
    let mut error_codes = vec![0i64; n];
    for (k, (i, m)) in r.errors.iter().enumerate() {
        messages.push(m.clone());
        error_codes[*i] = k as i64 + 1;
    }
    let floats = [
        ("equity", r.equity),
        ("adjusted_equity", r.adjusted_equity),
        ("maintenance_margin", r.maintenance_margin),
        ("initial_margin", r.initial_margin),
        ("available", r.available),
        ("uni_mmr", r.uni_mmr),
    ];
    for (name, v) in floats {
        d.set_item(name, PyArray1::from_vec(py, v))?;
    }
    d.set_item("status", take(r.statuses, status)?)?;
    d.set_item("worst_group", take(groups, worst)?)?;
    d.set_item("worst_price_move", PyArray1::from_vec(py, r.worst_price_move))?;
    d.set_item("worst_vol_shock", PyArray1::from_vec(py, r.worst_vol_shock))?;
    d.set_item("error", take(messages, error_codes)?)?;
    // Keep the documented column order.
    let ordered = PyDict::new(py);
    for name in OUTPUT_COLUMNS {
        ordered.set_item(name, d.get_item(name)?)?;
    }
    Ok(ordered.into_any())
}
