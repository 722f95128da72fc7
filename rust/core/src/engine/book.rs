//! The book: a portfolio resolved against a market (step 1 of the engine's
//! module doc): asset, group, contract and option slots, and the sums the
//! live account and the sweep re-run after a tick or a fill.

use super::*;

/// An asset the account touches: wallet balance plus what settles in it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AssetSlot {
    /// Index of the asset's parameters in the engine (`None`: not in the profile).
    pub params: Option<u32>,
    /// Index price, USD.
    pub price: f64,
    /// Net wallet (asset units): balance less the loan; negative: a liability.
    pub wallet: f64,
    /// The margin loan (asset units), already netted in `wallet`.
    pub loan: Loan,
    /// `e_a` without the wallet: UPnL and option values settling in the asset (asset units).
    pub settled: f64,
    pub group: usize,
    /// First collateral tier rate > 0.
    pub collateral: bool,
}

impl AssetSlot {
    /// `e_a`: wallet + UPnL + option values (asset units).
    pub fn equity(&self) -> f64 {
        self.wallet + self.settled
    }
}

/// A risk group the account touches.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GroupSlot {
    /// Listed in the result: holds a balance entry or is a position's underlying.
    pub listed: bool,
    pub(crate) table: usize,
    /// Dollar delta of linear and inverse contracts (USD).
    pub d_contracts: f64,
    /// Dollar delta of options (USD).
    pub d_options: f64,
    /// Σ|q·Δ·P_b| over options (USD), for the scan tolerance.
    pub abs_options: f64,
    /// Any option position, whatever its quantity: the grid has a vol dimension.
    pub has_options: bool,
    /// Σ|q|·P_b over short options (USD).
    pub short_option_notional: f64,
    /// Σ q·(scenario P&L per unit) over options, USD, in the group grid's order
    /// (empty without options or when the group has no grid).
    pub option_pnl: Vec<f64>,
    /// Σ q·(P&L per unit) over options in each systemic scenario, USD.
    pub option_systemic: Vec<f64>,
}

/// An option position and its series priced on the snapshot.
#[derive(Debug, Clone)]
pub struct OptionSlot {
    pub group: usize,
    /// Index of the position in the portfolio.
    pub position: usize,
    /// Asset slot of the settle asset (receives `qty · value`).
    pub settle: usize,
    pub qty: f64,
    pub series: Arc<Series>,
}

/// One position of the portfolio, in order, as the book resolved it, with what
/// it adds to its group and to the asset its P&L settles in: the live account
/// re-sums a group or an asset from these after a tick or a fill.
#[derive(Debug, Clone)]
pub enum BookSlot {
    /// A linear or inverse contract: its dollar delta (USD), underlying price
    /// (USD), interned symbol, the asset slot receiving its UPnL (the margin
    /// asset: the settle asset, an inverse contract's underlying) and that UPnL
    /// (asset units); its bracketed size (`ContractTerms::size`), leverage and,
    /// under `binance_pm`, the index of its bracket table (`u32::MAX` otherwise);
    /// `netted`: its symbol's entry in `Book::contracts`.
    Contract {
        group: usize,
        dollar_delta: f64,
        underlying_price: f64,
        symbol: u32,
        netted: usize,
        receiver: usize,
        upnl: f64,
        size: f64,
        inverse: bool,
        leverage: f64,
        brackets: u32,
    },
    /// An option: index into `Book::options`.
    Option(usize),
}

/// Contract dollar deltas netted per symbol, as the basis add-on wants them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NettedContract {
    pub group: usize,
    /// Interned symbol (per book).
    pub symbol: u32,
    /// USD.
    pub delta: f64,
}

/// A portfolio resolved against a market snapshot.
#[derive(Debug, Clone)]
pub struct Book {
    /// Shared names: a result clones them without allocating.
    pub group_names: Vec<Arc<str>>,
    pub assets: Vec<AssetSlot>,
    pub groups: Vec<GroupSlot>,
    pub options: Vec<OptionSlot>,
    /// One entry per position, in the portfolio's order (none in the batch's
    /// books for the scenario model, which reads none).
    pub slots: Vec<BookSlot>,
    pub contracts: Vec<NettedContract>,
    /// The profile's offsets between listed groups, as group indices, in the profile's order.
    pub offset_pairs: Vec<OffsetPair>,
    /// Under `binance_pm`, when `detail` (its result names assets and
    /// positions): each asset slot's name, each position's symbol in order.
    pub names: Option<Arc<Names>>,
    /// Keep names for a per-position and per-asset result (`binance_pm`); the
    /// batch engine, which returns account figures only, turns it off.
    pub detail: bool,
}

impl GroupSlot {
    /// The empty slot of a group whose parameters are the engine's table `table`.
    pub(crate) fn new(table: usize) -> Self {
        GroupSlot {
            listed: false,
            table,
            d_contracts: 0.0,
            d_options: 0.0,
            abs_options: 0.0,
            has_options: false,
            short_option_notional: 0.0,
            option_pnl: Vec::new(),
            option_systemic: Vec::new(),
        }
    }

    /// Make this the empty slot of table `table` ([`new`](Self::new)) in
    /// place, its option vectors emptied but keeping their storage (the batch
    /// reuses a book's group slots from one account to the next).
    #[inline]
    pub(crate) fn reset(&mut self, table: usize) {
        // Field by field (every field named: a new one must be reset too), from
        // `new`'s: no vector is moved or dropped.
        let empty = GroupSlot::new(table);
        let GroupSlot {
            listed,
            table: t,
            d_contracts,
            d_options,
            abs_options,
            has_options,
            short_option_notional,
            option_pnl,
            option_systemic,
        } = self;
        (*listed, *t, *has_options) = (empty.listed, empty.table, empty.has_options);
        (*d_contracts, *d_options, *abs_options, *short_option_notional) =
            (empty.d_contracts, empty.d_options, empty.abs_options, empty.short_option_notional);
        option_pnl.clear();
        option_systemic.clear();
    }

    /// Zero the sums the slots feed (contract and option deltas, option
    /// notional and P&L vectors, their lengths kept), before a re-sum.
    fn clear_sums(&mut self) {
        self.d_contracts = 0.0;
        self.d_options = 0.0;
        self.abs_options = 0.0;
        self.short_option_notional = 0.0;
        self.option_pnl.iter_mut().for_each(|x| *x = 0.0);
        self.option_systemic.iter_mut().for_each(|x| *x = 0.0);
    }

    /// Copy into `dst`, reusing its vectors' storage (a what-if saves and
    /// restores a group this way without allocating).
    pub fn save_into(&self, dst: &mut GroupSlot) {
        dst.listed = self.listed;
        dst.table = self.table;
        dst.d_contracts = self.d_contracts;
        dst.d_options = self.d_options;
        dst.abs_options = self.abs_options;
        dst.has_options = self.has_options;
        dst.short_option_notional = self.short_option_notional;
        dst.option_pnl.clone_from(&self.option_pnl);
        dst.option_systemic.clone_from(&self.option_systemic);
    }
}

impl AssetSlot {
    /// The empty slot of an asset with terms `t`, in the book's group `group`.
    pub(crate) fn new(t: &AssetTerms<'_>, group: usize) -> Self {
        AssetSlot {
            params: t.params,
            price: t.price,
            wallet: 0.0,
            loan: Loan::default(),
            settled: 0.0,
            group,
            collateral: t.collateral,
        }
    }
}

impl Book {
    /// A book with nothing in it; `detail`: keep the names of its contracts and
    /// assets for the result's rows (`binance_pm`).
    pub(crate) fn empty(detail: bool) -> Self {
        Book {
            group_names: Vec::new(),
            assets: Vec::new(),
            groups: Vec::new(),
            options: Vec::new(),
            slots: Vec::new(),
            contracts: Vec::new(),
            offset_pairs: Vec::new(),
            names: None,
            detail,
        }
    }

    /// A margin loan of asset slot `a`: netted in its wallet, kept gross for
    /// `binance_pm`; its group is listed, as a negative balance's is.
    pub(crate) fn add_loan(&mut self, a: usize, loan: Loan) {
        self.groups[self.assets[a].group].listed = true;
        let slot = &mut self.assets[a];
        slot.wallet -= loan.owed();
        slot.loan.borrowed += loan.borrowed;
        slot.loan.interest += loan.interest;
    }

    /// A wallet balance of asset slot `a` (asset units): its group is listed.
    pub(crate) fn add_balance(&mut self, a: usize, qty: f64) {
        self.groups[self.assets[a].group].listed = true;
        self.assets[a].wallet += qty;
    }

    /// Add linear or inverse contract `pos` (marked at `mark`, the market's if
    /// any) on underlying slot `b`, settling in slot `s`: its UPnL to its margin
    /// asset, its dollar delta to its group and to netted entry `netted`. Returns
    /// its slot (`symbol`: its interned symbol; `brackets`: see
    /// `BookSlot::Contract`) for the caller to push to `slots`.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    pub(crate) fn add_contract(
        &mut self,
        engine: &Engine,
        pos: PositionRef<'_>,
        mark: Option<f64>,
        b: usize,
        s: usize,
        netted: usize,
        symbol: u32,
        brackets: u32,
    ) -> BookSlot {
        let (t, receiver) = self.add_contract_sums(pos, mark, b, s, netted);
        let (inverse, leverage) = match pos {
            PositionRef::Inverse { leverage, .. } => (true, leverage),
            PositionRef::Linear { leverage, .. } => (false, leverage),
            PositionRef::Option { .. } => unreachable!("contracts only"),
        };
        BookSlot::Contract {
            group: self.assets[b].group,
            dollar_delta: t.dollar_delta,
            underlying_price: self.assets[b].price,
            symbol,
            netted,
            receiver,
            upnl: t.upnl,
            size: t.size,
            inverse,
            leverage: leverage.unwrap_or(engine.params.classic.default_leverage),
            brackets,
        }
    }

    /// [`add_contract`](Self::add_contract)'s sums alone (a book that keeps no
    /// slots, as the batch's books for the scenario model): the contract's
    /// terms and the asset slot receiving its UPnL.
    #[inline(always)]
    pub(crate) fn add_contract_sums(
        &mut self,
        pos: PositionRef<'_>,
        mark: Option<f64>,
        b: usize,
        s: usize,
        netted: usize,
    ) -> (crate::instrument::ContractTerms, usize) {
        // The three tables as slices: their lengths stay in registers across the stores.
        let Book { assets, groups, contracts, .. } = self;
        let (assets, groups, contracts) = (&mut assets[..], &mut groups[..], &mut contracts[..]);
        let (pb, ps, g) = (assets[b].price, assets[s].price, assets[b].group);
        let t = contract_terms(pos, mark, pb, ps);
        // The receiver by a branch on the type, not an index picked then checked again.
        let receiver = match pos {
            PositionRef::Inverse { .. } => {
                assets[b].settled += t.upnl;
                b
            }
            _ => {
                assets[s].settled += t.upnl;
                s
            }
        };
        add_delta(groups, contracts, g, netted, t.dollar_delta);
        (t, receiver)
    }

    /// Recompute group `g`'s contract and option aggregates from its slots, in
    /// the portfolio's order, exactly as `Engine::book` sums them (so a live
    /// account re-summed after a tick is bit-identical to a rebuild).
    pub fn resum_group(&mut self, g: usize) {
        self.groups[g].clear_sums();
        // 0 + d is d exactly, so restarting the netted entries at 0 sums as the book did.
        self.contracts.iter_mut().filter(|c| c.group == g).for_each(|c| c.delta = 0.0);
        for i in 0..self.slots.len() {
            match self.slots[i] {
                BookSlot::Contract { group, dollar_delta, netted, .. } if group == g => {
                    self.groups[g].d_contracts += dollar_delta;
                    self.contracts[netted].delta += dollar_delta;
                }
                BookSlot::Option(o) if self.options[o].group == g => {
                    let (qty, series) = (self.options[o].qty, Arc::clone(&self.options[o].series));
                    self.add_option_terms(g, qty, &series);
                }
                _ => {}
            }
        }
    }

    /// Recompute every group's and asset's aggregates from the slots, in the
    /// portfolio's order, with the additions `Engine::book` makes (each
    /// accumulator receives the same terms in the same order: the same bits).
    /// A book whose prices were re-read (a sweep's scenario, a refreshed
    /// resolution) is summed again this way.
    pub fn resum_all(&mut self) {
        self.groups.iter_mut().for_each(GroupSlot::clear_sums);
        self.contracts.iter_mut().for_each(|c| c.delta = 0.0);
        self.assets.iter_mut().for_each(|a| a.settled = 0.0);
        for i in 0..self.slots.len() {
            match self.slots[i] {
                BookSlot::Contract { group, dollar_delta, netted, receiver, upnl, .. } => {
                    self.assets[receiver].settled += upnl;
                    self.add_contract_delta(group, netted, dollar_delta);
                }
                BookSlot::Option(o) => {
                    let (g, settle, qty) = (self.options[o].group, self.options[o].settle, self.options[o].qty);
                    let series = Arc::clone(&self.options[o].series);
                    self.assets[settle].settled += qty * series.value;
                    self.add_option_terms(g, qty, &series);
                }
            }
        }
    }

    /// Recompute asset slot `a`'s settled amount (UPnL and option values) from
    /// the slots settling in it, in the portfolio's order.
    pub fn resum_settled(&mut self, a: usize) {
        let mut settled = 0.0;
        for slot in &self.slots {
            match *slot {
                BookSlot::Contract { receiver, upnl, .. } if receiver == a => settled += upnl,
                BookSlot::Option(o) if self.options[o].settle == a => {
                    settled += self.options[o].qty * self.options[o].series.value
                }
                _ => {}
            }
        }
        self.assets[a].settled = settled;
    }

    /// An option position's whole contribution to its group: exposure vectors,
    /// the scan tolerance's |delta| and the short-option notional.
    #[inline]
    pub fn add_option_terms(&mut self, g: usize, qty: f64, series: &Series) {
        self.add_option_exposure(g, qty, series);
        let pb = series.underlying_price;
        let group = &mut self.groups[g];
        group.abs_options += (qty * series.delta * pb).abs();
        // A long option adds +0, which leaves the sum's bits as they are (a sum
        // of terms from +0 is never −0): no branch on the quantity's sign, a
        // coin toss in a book of longs and shorts.
        group.short_option_notional += if qty < 0.0 { qty.abs() * pb } else { 0.0 };
    }

    /// Add `qty` units of an option series to group `g`'s aggregates (negative
    /// removes them). Used when building the book and by the live account.
    #[inline(always)] // in the batch's option rows too: a call fewer an option
    pub fn add_option_exposure(&mut self, g: usize, qty: f64, series: &Series) {
        let group = &mut self.groups[g];
        let d = qty * series.delta * series.underlying_price;
        group.d_options += d;
        group.has_options = true;
        add_scaled(&mut group.option_pnl, qty, &series.grid_pnl);
        add_scaled(&mut group.option_systemic, qty, &series.systemic_pnl);
    }

    /// Add a contract's dollar delta to its group `g` and its symbol's netted entry `netted`.
    pub fn add_contract_delta(&mut self, g: usize, netted: usize, d: f64) {
        add_delta(&mut self.groups, &mut self.contracts, g, netted, d);
    }
}

/// [`Book::add_contract_delta`] on the book's group and netted-contract tables.
#[inline(always)]
fn add_delta(groups: &mut [GroupSlot], contracts: &mut [NettedContract], g: usize, netted: usize, d: f64) {
    groups[g].d_contracts += d;
    contracts[netted].delta += d;
}

/// `acc[k] += qty · v[k]` for every `k` of `v`, `acc` first lengthened with
/// zeros to `v`'s length when shorter (a new point is `0 + qty · v[k]`,
/// written in one pass): a product and a sum a point, rounded each (Rust
/// never fuses them), so the bits are the same on any lanes; the widest this
/// CPU has (AVX2 on x86-64) is picked at run time.
#[inline]
fn add_scaled(acc: &mut Vec<f64>, qty: f64, v: &[f64]) {
    #[cfg(target_arch = "x86_64")]
    // Shorter than a step of AVX2's lanes (a profile's few systemic scenarios): in line.
    if v.len() >= 4 && std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2, checked just above.
        return unsafe { add_scaled_avx2(acc, qty, v) };
    }
    add_scaled_lanes(acc, qty, v)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn add_scaled_avx2(acc: &mut Vec<f64>, qty: f64, v: &[f64]) {
    add_scaled_lanes(acc, qty, v)
}

#[inline(always)]
fn add_scaled_lanes(acc: &mut Vec<f64>, qty: f64, v: &[f64]) {
    let n = acc.len().min(v.len());
    for (x, u) in acc[..n].iter_mut().zip(&v[..n]) {
        *x += qty * u;
    }
    // `0 + p`, not `p`: a product −0 sums to +0, as on a zeroed point.
    acc.extend(v[n..].iter().map(|u| 0.0 + qty * u));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scaled_adds_are_the_same_bits_on_any_lanes() {
        let mut x = 0x2545_f491_4f6c_dd1d_u64;
        let mut f = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            ((x >> 11) as f64 / (1u64 << 53) as f64 - 0.5) * 10f64.powi((x % 13) as i32 - 6)
        };
        // Lengths around the lanes' widths, vectors longer or shorter than the sums.
        // Empty sums lengthened (a group's first option), and zeros in the
        // vector under a negative quantity (a product −0 on a new point).
        let cases = [(0, 0), (1, 1), (3, 3), (4, 4), (5, 5), (63, 63), (65, 65), (65, 60), (60, 65), (66, 66)];
        for (i, (n, m)) in cases.into_iter().chain([(0, 63), (2, 63), (0, 2)]).enumerate() {
            let (mut v, start): (Vec<f64>, Vec<f64>) = (0..n.max(m)).map(|_| (f(), f())).unzip();
            v.iter_mut().step_by(3).for_each(|u| *u = if i % 2 == 0 { 0.0 } else { *u });
            let (v, qty) = (&v[..m], if i % 2 == 0 { -f().abs() } else { f() });
            let (mut widest, mut scalar) = (start[..n].to_vec(), start[..n].to_vec());
            add_scaled(&mut widest, qty, v);
            // As the book summed before: lengthened with zeros, then a sum a point.
            if scalar.len() < v.len() {
                scalar.resize(v.len(), 0.0);
            }
            for (x, u) in scalar.iter_mut().zip(v) {
                *x += qty * u;
            }
            assert!(widest.iter().zip(&scalar).all(|(a, b)| a.to_bits() == b.to_bits()), "n={n} m={m}");
        }
    }

    #[test]
    fn short_option_notional_sums_the_shorts_alone() {
        let series = |pb: f64| Series {
            kind: crate::portfolio::OptionKind::Call,
            forward: 1.0,
            strike: 1.0,
            vol: 0.5,
            tau: 0.1,
            underlying_price: pb,
            settle_price: 1.0,
            value: 0.1,
            delta: 0.5,
            gamma: 0.0,
            vega: 0.0,
            theta: 0.0,
            grid_pnl: vec![1.0; 3],
            systemic_pnl: vec![2.0],
        };
        let mut book = Book::empty(false);
        book.groups.push(GroupSlot::new(0));
        // Longs, shorts and zeros of either sign: the sum a short at a time, each
        // step's bits (a long adds +0).
        let mut want = 0.0;
        for (i, qty) in [0.0, -0.0, 3.0, -2.5, 1e-300, -1e300, 0.5, -0.0, -0.25].into_iter().enumerate() {
            let s = series(100.0 + i as f64);
            book.add_option_terms(0, qty, &s);
            if qty < 0.0 {
                want += qty.abs() * s.underlying_price;
            }
            assert_eq!(book.groups[0].short_option_notional.to_bits(), want.to_bits(), "qty {qty}");
        }
    }
}
