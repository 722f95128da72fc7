//! Accounts: wallet balances and positions (linear and inverse futures and
//! perpetuals, European options), and their JSON format (METHODOLOGY.md §8).

use crate::error::{Code, CoreError, Result};
use crate::input::{amount, epoch_seconds, loan_amount, number, parse_time, path, positive, price, show, table};
use crate::input::{is_amount, is_epoch_seconds, is_price, Fields, Source, MAX_MAGNITUDE};
use rustc_hash::FxHashMap;
use serde_json::{Map, Value};
use std::ops::Deref;

const I: Source = Source::Input;
pub const DEFAULT_SETTLE: &str = "USDT";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptionKind {
    Call,
    Put,
}

impl OptionKind {
    pub fn parse(s: &str, at: &str) -> Result<Self> {
        match s {
            "call" => Ok(OptionKind::Call),
            "put" => Ok(OptionKind::Put),
            _ => Err(CoreError::invalid(at, format!("must be \"call\" or \"put\", got {s:?}"))),
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            OptionKind::Call => "call",
            OptionKind::Put => "put",
        }
    }
}

/// One position. Quantities are signed: positive long, negative short.
#[derive(Debug, Clone, PartialEq)]
pub enum Position {
    /// USDⓈ-margined future or perpetual: `qty` in base units, prices in settle units.
    Linear { symbol: String, underlying: String, settle: String, qty: f64, entry_price: f64, classic: ClassicTerms },
    /// Coin-margined future or perpetual: `contracts` of `contract_size` USD, settled in the underlying.
    Inverse {
        symbol: String,
        underlying: String,
        contract_size: f64,
        contracts: f64,
        entry_price: f64,
        classic: ClassicTerms,
    },
    /// European option on `underlying`, `qty` in underlying units, premium in settle units.
    Option { symbol: String, underlying: String, settle: String, kind: OptionKind, strike: f64, expiry: f64, qty: f64 },
}

/// A position's terms borrowed from where they are stored: a [`Position`], or
/// the columns of a batch (`batch.rs`). The portfolio engine reads this.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PositionRef<'a> {
    Linear {
        symbol: &'a str,
        underlying: &'a str,
        settle: &'a str,
        qty: f64,
        entry_price: f64,
        /// The position's own leverage (`None`: the profile's default).
        leverage: Option<f64>,
    },
    Inverse {
        symbol: &'a str,
        underlying: &'a str,
        contract_size: f64,
        contracts: f64,
        entry_price: f64,
        leverage: Option<f64>,
    },
    Option {
        symbol: &'a str,
        underlying: &'a str,
        settle: &'a str,
        kind: OptionKind,
        strike: f64,
        expiry: f64,
        qty: f64,
    },
}

impl<'a> PositionRef<'a> {
    pub fn symbol(&self) -> &'a str {
        match *self {
            PositionRef::Linear { symbol, .. }
            | PositionRef::Inverse { symbol, .. }
            | PositionRef::Option { symbol, .. } => symbol,
        }
    }
    pub fn underlying(&self) -> &'a str {
        match *self {
            PositionRef::Linear { underlying, .. }
            | PositionRef::Inverse { underlying, .. }
            | PositionRef::Option { underlying, .. } => underlying,
        }
    }
    /// The asset its P&L or premium settles in.
    pub fn settle(&self) -> &'a str {
        match *self {
            PositionRef::Linear { settle, .. } | PositionRef::Option { settle, .. } => settle,
            PositionRef::Inverse { underlying, .. } => underlying,
        }
    }
}

/// Terms that only classic (isolated / cross) margin reads.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClassicTerms {
    /// Margin posted to an isolated position (settle units); `None`: cross.
    pub isolated_margin: Option<f64>,
    pub leverage: Option<f64>,
}

impl Position {
    pub fn symbol(&self) -> &str {
        match self {
            Position::Linear { symbol, .. } | Position::Inverse { symbol, .. } | Position::Option { symbol, .. } => {
                symbol
            }
        }
    }
    pub fn underlying(&self) -> &str {
        match self {
            Position::Linear { underlying, .. }
            | Position::Inverse { underlying, .. }
            | Position::Option { underlying, .. } => underlying,
        }
    }
    /// The asset its P&L or premium settles in.
    pub fn settle(&self) -> &str {
        match self {
            Position::Linear { settle, .. } | Position::Option { settle, .. } => settle,
            Position::Inverse { underlying, .. } => underlying,
        }
    }
    /// The terms the portfolio engine reads, borrowed.
    pub fn view(&self) -> PositionRef<'_> {
        match self {
            Position::Linear { symbol, underlying, settle, qty, entry_price, classic } => PositionRef::Linear {
                symbol,
                underlying,
                settle,
                qty: *qty,
                entry_price: *entry_price,
                leverage: classic.leverage,
            },
            Position::Inverse { symbol, underlying, contract_size, contracts, entry_price, classic } => {
                PositionRef::Inverse {
                    symbol,
                    underlying,
                    contract_size: *contract_size,
                    contracts: *contracts,
                    entry_price: *entry_price,
                    leverage: classic.leverage,
                }
            }
            Position::Option { symbol, underlying, settle, kind, strike, expiry, qty } => PositionRef::Option {
                symbol,
                underlying,
                settle,
                kind: *kind,
                strike: *strike,
                expiry: *expiry,
                qty: *qty,
            },
        }
    }
    pub fn type_name(&self) -> &'static str {
        match self {
            Position::Linear { .. } => "linear",
            Position::Inverse { .. } => "inverse",
            Position::Option { .. } => "option",
        }
    }
}

/// Account facts the eligibility rules read (METHODOLOGY.md §6).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AccountInfo {
    pub raw: Map<String, Value>,
}

/// A margin loan in one asset (asset units, both ≥ 0).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Loan {
    pub borrowed: f64,
    pub interest: f64,
}

impl Loan {
    /// What the account owes: principal and interest.
    pub fn owed(&self) -> f64 {
        self.borrowed + self.interest
    }
}

/// Values per asset name, in the order the names came, each found by name in
/// O(1). The order is the account's (a book creates its asset slots in it, so
/// sums run in it); the index beside it keeps building an account one
/// `add_balance` at a time linear in its size, not quadratic. Reads see a
/// slice of `(name, value)` pairs.
#[derive(Debug, Clone)]
pub struct AssetMap<T> {
    entries: Vec<(String, T)>,
    index: FxHashMap<String, usize>,
}

impl<T> Default for AssetMap<T> {
    fn default() -> Self {
        AssetMap { entries: Vec::new(), index: FxHashMap::default() }
    }
}

/// Equal when the same names hold the same values in the same order.
impl<T: PartialEq> PartialEq for AssetMap<T> {
    fn eq(&self, other: &Self) -> bool {
        self.entries == other.entries
    }
}

impl<T> Deref for AssetMap<T> {
    type Target = [(String, T)];
    fn deref(&self) -> &Self::Target {
        &self.entries
    }
}

impl<'a, T> IntoIterator for &'a AssetMap<T> {
    type Item = &'a (String, T);
    type IntoIter = std::slice::Iter<'a, (String, T)>;
    fn into_iter(self) -> Self::IntoIter {
        self.entries.iter()
    }
}

impl<T> AssetMap<T> {
    pub fn reserve(&mut self, n: usize) {
        self.entries.reserve(n);
        self.index.reserve(n);
    }

    pub fn get(&self, name: &str) -> Option<&T> {
        self.index.get(name).map(|&i| &self.entries[i].1)
    }

    pub fn get_mut(&mut self, name: &str) -> Option<&mut T> {
        self.index.get(name).map(|&i| &mut self.entries[i].1)
    }

    pub fn contains(&self, name: &str) -> bool {
        self.index.contains_key(name)
    }

    /// Set `name`'s value: in place when it is held, else appended.
    pub fn insert(&mut self, name: &str, value: T) {
        match self.get_mut(name) {
            Some(v) => *v = value,
            None => {
                self.index.insert(name.to_string(), self.entries.len());
                self.entries.push((name.to_string(), value));
            }
        }
    }

    /// Take `name` out, keeping the others' order (linear in the entries after it).
    pub fn remove(&mut self, name: &str) -> Option<T> {
        let i = self.index.remove(name)?;
        let (_, value) = self.entries.remove(i);
        for (k, (a, _)) in self.entries.iter().enumerate().skip(i) {
            *self.index.get_mut(a.as_str()).expect("every entry is indexed") = k;
        }
        Some(value)
    }
}

impl<T> FromIterator<(String, T)> for AssetMap<T> {
    /// A later value of a repeated name replaces the earlier one, in the earlier one's place.
    fn from_iter<I: IntoIterator<Item = (String, T)>>(iter: I) -> Self {
        let mut m = AssetMap::default();
        for (name, value) in iter {
            m.insert(&name, value);
        }
        m
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Portfolio {
    /// What the wallets hold per asset (borrowed coins included), in order; a
    /// negative quantity is a loan too (the scenario model's original form).
    pub balances: AssetMap<f64>,
    /// Margin loans per asset, in order: the net wallet is `balance − borrowed − interest`.
    pub loans: AssetMap<Loan>,
    pub positions: Vec<Position>,
    pub account: AccountInfo,
    /// Informational `name` and `description` of the format; the model ignores them.
    pub name: Option<String>,
    pub description: Option<String>,
}

impl Portfolio {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn from_json_str(text: &str) -> Result<Self> {
        let v: Value = serde_json::from_str(text)
            .map_err(|e| CoreError::invalid("portfolio", format!("not valid JSON: {e}")).with_code(Code::Syntax))?;
        Self::from_value(&v)
    }

    pub fn from_value(v: &Value) -> Result<Self> {
        let mut f = Fields::new(v, "", I)?;
        let mut p = Portfolio::new();
        if let Some(b) = f.get("balances") {
            let t = table(b, "balances", I)?;
            p.balances.reserve(t.len());
            for (asset, q) in t {
                let at = path("balances", asset);
                let qty = number(q, &at, I)?;
                check_balance(asset, qty)?;
                p.balances.insert(asset, qty);
            }
        }
        if let Some(l) = f.get("loans") {
            let t = table(l, "loans", I)?;
            p.loans.reserve(t.len());
            for (asset, lv) in t {
                let at = path("loans", asset);
                let mut lf = Fields::new(lv, &at, I)?;
                let borrowed = lf.f64("borrowed")?;
                let interest = lf.f64_or("interest", 0.0)?;
                lf.finish()?;
                check_loan(asset, borrowed, interest)?;
                p.loans.insert(asset, Loan { borrowed, interest });
            }
        }
        if let Some(ps) = f.get("positions") {
            let arr = match ps {
                Value::Array(a) => a,
                other => {
                    return Err(CoreError::invalid("positions", format!("must be an array, got {}", show(other)))
                        .with_code(Code::WrongType))
                }
            };
            for (i, pv) in arr.iter().enumerate() {
                let pos = parse_position(pv, &format!("positions[{i}]"))?;
                p.positions.push(pos);
            }
        }
        if let Some(a) = f.get("account") {
            p.account.raw = table(a, "account", I)?.clone();
        }
        p.name = f.opt_str("name")?.map(str::to_string);
        p.description = f.opt_str("description")?.map(str::to_string);
        f.finish()?;
        Ok(p)
    }

    /// Add to the wallet balance of `asset` (a negative quantity is a loan).
    pub fn add_balance(&mut self, asset: &str, qty: f64) -> Result<()> {
        check_balance(asset, qty)?;
        match self.balances.get_mut(asset) {
            Some(q) if (*q + qty).abs() <= MAX_MAGNITUDE => *q += qty,
            Some(q) => return amount(*q + qty, &path("balances", asset)).map(drop),
            None => self.balances.insert(asset, qty),
        }
        Ok(())
    }

    /// Add to the margin loan of `asset` (asset units, each ≥ 0); errors name `loans.<asset>`.
    pub fn add_loan(&mut self, asset: &str, borrowed: f64, interest: f64) -> Result<()> {
        check_loan(asset, borrowed, interest)?;
        match self.loans.get_mut(asset) {
            Some(l) => {
                l.borrowed += borrowed;
                l.interest += interest;
            }
            None => self.loans.insert(asset, Loan { borrowed, interest }),
        }
        Ok(())
    }

    /// Change the loan of `asset` by `delta` (each part may be negative, as a
    /// repayment is; the caller keeps each part ≥ 0). A loan repaid in full is removed.
    pub fn change_loan(&mut self, asset: &str, delta: Loan) {
        match self.loans.get_mut(asset) {
            Some(l) => {
                l.borrowed = (l.borrowed + delta.borrowed).max(0.0);
                l.interest = (l.interest + delta.interest).max(0.0);
                if l.owed() == 0.0 {
                    self.loans.remove(asset);
                }
            }
            None => {
                self.loans.insert(asset, Loan { borrowed: delta.borrowed.max(0.0), interest: delta.interest.max(0.0) })
            }
        }
    }

    /// The loan of `asset` (zero when there is none).
    pub fn loan(&self, asset: &str) -> Loan {
        self.loans.get(asset).copied().unwrap_or_default()
    }

    /// The wallet balance of `asset`, if the account lists one.
    pub fn balance(&self, asset: &str) -> Option<f64> {
        self.balances.get(asset).copied()
    }

    /// Every asset the account touches, in the order a book creates its slots:
    /// balances, loans, then each position's underlying and settle asset.
    pub fn assets(&self) -> impl Iterator<Item = &str> {
        let balances = self.balances.iter().map(|(a, _)| a.as_str());
        let loans = self.loans.iter().map(|(a, _)| a.as_str());
        let positions = self.positions.iter().flat_map(|p| [p.underlying(), p.settle()]);
        balances.chain(loans).chain(positions)
    }

    /// Add a position after checking it; errors name `positions[i]`.
    pub fn add_position(&mut self, pos: Position) -> Result<()> {
        validate(&pos, &format!("positions[{}]", self.positions.len()))?;
        self.positions.push(pos);
        Ok(())
    }

    pub fn to_value(&self) -> Value {
        let balances: Map<String, Value> = self.balances.iter().map(|(a, q)| (a.clone(), Value::from(*q))).collect();
        let positions: Vec<Value> = self.positions.iter().map(position_value).collect();
        let mut out = serde_json::json!({"balances": balances, "positions": positions});
        if !self.loans.is_empty() {
            let loans: Map<String, Value> = (self.loans.iter())
                .map(|(a, l)| (a.clone(), serde_json::json!({"borrowed": l.borrowed, "interest": l.interest})))
                .collect();
            out["loans"] = Value::Object(loans);
        }
        if !self.account.raw.is_empty() {
            out["account"] = Value::Object(self.account.raw.clone());
        }
        if let Some(n) = &self.name {
            out["name"] = n.as_str().into();
        }
        if let Some(d) = &self.description {
            out["description"] = d.as_str().into();
        }
        out
    }
}

/// The checks of a balance entry (the sum with a held balance is checked by `add_balance`).
fn check_balance(asset: &str, qty: f64) -> Result<()> {
    if !is_amount(qty) {
        amount(qty, &path("balances", asset))?; // the path is built for the error only
    }
    if asset.is_empty() {
        return Err(CoreError::invalid("balances", "an asset name must not be empty"));
    }
    Ok(())
}

/// The checks of a loan entry; errors name `loans.<asset>`.
fn check_loan(asset: &str, borrowed: f64, interest: f64) -> Result<()> {
    let at = path("loans", asset);
    if asset.is_empty() {
        return Err(CoreError::invalid("loans", "an asset name must not be empty"));
    }
    loan_amount(borrowed, &path(&at, "borrowed"))?;
    loan_amount(interest, &path(&at, "interest"))?;
    Ok(())
}

fn position_value(p: &Position) -> Value {
    let mut v = match p {
        Position::Linear { symbol, underlying, settle, qty, entry_price, .. } => serde_json::json!({
            "type": "linear", "symbol": symbol, "underlying": underlying, "settle": settle,
            "qty": qty, "entry_price": entry_price}),
        Position::Inverse { symbol, underlying, contract_size, contracts, entry_price, .. } => serde_json::json!({
            "type": "inverse", "symbol": symbol, "underlying": underlying, "contract_size": contract_size,
            "contracts": contracts, "entry_price": entry_price}),
        Position::Option { symbol, underlying, settle, kind, strike, expiry, qty } => {
            let t = chrono::DateTime::from_timestamp(expiry.floor() as i64, ((expiry - expiry.floor()) * 1e9) as u32)
                .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
                .unwrap_or_default();
            serde_json::json!({
                "type": "option", "symbol": symbol, "underlying": underlying, "settle": settle,
                "kind": kind.as_str(), "strike": strike, "expiry": t, "qty": qty})
        }
    };
    if let Position::Linear { classic, .. } | Position::Inverse { classic, .. } = p {
        if let Some(m) = classic.isolated_margin {
            v["isolated_margin"] = m.into();
        }
        if let Some(l) = classic.leverage {
            v["leverage"] = l.into();
        }
    }
    v
}

pub fn parse_position(v: &Value, at: &str) -> Result<Position> {
    let mut f = Fields::new(v, at, I)?;
    let ty = f.str("type")?;
    let symbol = f.str("symbol")?.to_string();
    let underlying = f.str("underlying")?.to_string();
    let settle = f.opt_str("settle")?;
    let pos = match ty {
        "linear" => Position::Linear {
            symbol,
            underlying,
            settle: settle.unwrap_or(DEFAULT_SETTLE).to_string(),
            qty: f.f64("qty")?,
            entry_price: f.f64("entry_price")?,
            classic: classic_terms(&mut f)?,
        },
        "inverse" => {
            if let Some(s) = settle {
                if s != underlying {
                    return Err(CoreError::invalid(
                        format!("{at}.settle"),
                        format!("an inverse contract settles in its underlying {underlying}, got {s:?}"),
                    ));
                }
            }
            Position::Inverse {
                symbol,
                underlying,
                contract_size: f.f64("contract_size")?,
                contracts: f.f64("contracts")?,
                entry_price: f.f64("entry_price")?,
                classic: classic_terms(&mut f)?,
            }
        }
        "option" => {
            let kind = OptionKind::parse(f.str("kind")?, &f.path("kind"))?;
            let expiry = match f.req("expiry")? {
                Value::String(s) => parse_time(s, &f.path("expiry"))?,
                o => {
                    return Err(CoreError::invalid(
                        f.path("expiry"),
                        format!("must be an ISO-8601 time, got {}", show(o)),
                    ))
                }
            };
            Position::Option {
                symbol,
                underlying,
                settle: settle.unwrap_or(DEFAULT_SETTLE).to_string(),
                kind,
                strike: f.f64("strike")?,
                expiry,
                qty: f.f64("qty")?,
            }
        }
        other => {
            return Err(CoreError::invalid(
                format!("{at}.type"),
                format!("must be \"linear\", \"inverse\" or \"option\", got {other:?}"),
            ))
        }
    };
    f.finish()?;
    validate(&pos, at)?;
    Ok(pos)
}

/// Read, not checked: [`validate`] checks them, for the builders too.
fn classic_terms(f: &mut Fields) -> Result<ClassicTerms> {
    Ok(ClassicTerms { isolated_margin: f.opt_f64("isolated_margin")?, leverage: f.opt_f64("leverage")? })
}

/// The checks every position passes, whichever way it was built (the JSON
/// format, the `add_*` builders, an order's instrument).
pub fn validate(p: &Position, at: &str) -> Result<()> {
    validate_ref(&p.view(), at)?;
    if let Position::Linear { classic, .. } | Position::Inverse { classic, .. } = p {
        for (key, x) in [("isolated_margin", classic.isolated_margin), ("leverage", classic.leverage)] {
            if let Some(x) = x {
                positive(x, &format!("{at}.{key}"), I)?;
            }
        }
    }
    Ok(())
}

/// The rule a position's number keeps (`input`'s predicates; the error of a
/// failed one is `input`'s check of the same name).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumberRule {
    Amount,
    Price,
    EpochSeconds,
}

impl NumberRule {
    #[inline(always)]
    pub fn holds(self, x: f64) -> bool {
        match self {
            NumberRule::Amount => is_amount(x),
            NumberRule::Price => is_price(x),
            NumberRule::EpochSeconds => is_epoch_seconds(x),
        }
    }

    /// The error of `x`, which breaks this rule, naming `{at}.{key}`.
    #[cold]
    #[inline(never)]
    fn error(self, x: f64, at: &str, key: &str) -> Result<()> {
        let at = format!("{at}.{key}");
        match self {
            NumberRule::Amount => amount(x, &at).map(drop),
            NumberRule::Price => price(x, &at).map(drop),
            NumberRule::EpochSeconds => epoch_seconds(x, &at).map(drop),
        }
    }
}

/// The rule of a position's symbol and underlying: not empty. The batch checks
/// it once per distinct value of a column.
#[inline(always)]
pub fn is_name(s: &str) -> bool {
    !s.is_empty()
}

/// Each number of `p` with the rule it keeps and its field, in the order
/// [`validate_ref`] checks them: `check(x, rule, field)` on each until one
/// fails. The one list of which number keeps which rule.
#[inline(always)]
pub fn check_numbers<E>(
    p: &PositionRef<'_>,
    mut check: impl FnMut(f64, NumberRule, &'static str) -> std::result::Result<(), E>,
) -> std::result::Result<(), E> {
    use NumberRule::{Amount, EpochSeconds, Price};
    match *p {
        PositionRef::Linear { qty, entry_price, leverage, .. } => {
            check(qty, Amount, "qty")?;
            check(entry_price, Price, "entry_price")?;
            leverage.map_or(Ok(()), |l| check(l, Price, "leverage"))
        }
        PositionRef::Inverse { contract_size, contracts, entry_price, leverage, .. } => {
            check(contract_size, Price, "contract_size")?;
            check(contracts, Amount, "contracts")?;
            check(entry_price, Price, "entry_price")?;
            leverage.map_or(Ok(()), |l| check(l, Price, "leverage"))
        }
        PositionRef::Option { strike, expiry, qty, .. } => {
            check(strike, Price, "strike")?;
            check(expiry, EpochSeconds, "expiry")?;
            check(qty, Amount, "qty")
        }
    }
}

/// Whether `p`'s numbers keep [`validate_ref`]'s rules: its checks without a
/// field to name (the batch's columnar path, which reads names by id; a row
/// that fails is validated again, and named, by the per-account path).
#[inline(always)]
pub fn numbers_hold(p: &PositionRef<'_>) -> bool {
    check_numbers(p, |x, rule, _| if rule.holds(x) { Ok(()) } else { Err(()) }).is_ok()
}

/// [`validate`] on borrowed terms (batch rows are checked without building a `Position`).
#[inline(always)]
pub fn validate_ref(p: &PositionRef<'_>, at: &str) -> Result<()> {
    // Checked first, the field's path built only for an error: batches validate every row.
    // The errors are built out of line, so the checks inline into a batch's row loop.
    #[cold]
    #[inline(never)]
    fn empty(at: &str, k: &str) -> Result<()> {
        Err(CoreError::invalid(format!("{at}.{k}"), "must not be empty"))
    }
    if !is_name(p.symbol()) {
        return empty(at, "symbol");
    }
    if !is_name(p.underlying()) {
        return empty(at, "underlying");
    }
    check_numbers(p, |x, rule, key| if rule.holds(x) { Ok(()) } else { rule.error(x, at, key) })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names<T>(m: &AssetMap<T>) -> Vec<&str> {
        m.iter().map(|(a, _)| a.as_str()).collect()
    }

    #[test]
    fn asset_map_keeps_order_and_finds_by_name() {
        let mut m: AssetMap<f64> = ["C", "A", "B", "D"].iter().map(|a| (a.to_string(), 1.0)).collect();
        m.insert("A", 2.0);
        m.insert("E", 3.0);
        assert_eq!(names(&m), ["C", "A", "B", "D", "E"]);
        assert_eq!(m.get("A"), Some(&2.0));
        assert_eq!(m.remove("A"), Some(2.0));
        assert_eq!(m.remove("A"), None);
        assert_eq!(names(&m), ["C", "B", "D", "E"]);
        // The index follows the shifted entries.
        for (i, (a, _)) in m.iter().enumerate() {
            assert_eq!(m.index[a.as_str()], i);
        }
        *m.get_mut("E").unwrap() += 1.0;
        assert_eq!(m.get("E"), Some(&4.0));
        assert!(m.contains("D") && !m.contains("A"));
    }

    #[test]
    fn loans_repaid_in_full_leave_the_rest_in_order() {
        let mut p = Portfolio::new();
        for a in ["BTC", "ETH", "USDT"] {
            p.add_loan(a, 1.0, 0.0).unwrap();
            p.add_balance(a, 1.0).unwrap();
        }
        p.change_loan("ETH", Loan { borrowed: -1.0, interest: 0.0 });
        assert_eq!(names(&p.loans), ["BTC", "USDT"]);
        p.add_loan("USDT", 0.5, 0.1).unwrap();
        assert_eq!(p.loan("USDT"), Loan { borrowed: 1.5, interest: 0.1 });
        assert_eq!(p.balance("ETH"), Some(1.0));
        assert_eq!(p.balance("SOL"), None);
    }

    #[test]
    fn equality_is_order_sensitive_as_a_list() {
        let a: AssetMap<f64> = [("X".to_string(), 1.0), ("Y".to_string(), 2.0)].into_iter().collect();
        let b: AssetMap<f64> = [("Y".to_string(), 2.0), ("X".to_string(), 1.0)].into_iter().collect();
        assert_ne!(a, b);
        assert_eq!(a, a.clone());
    }
}
