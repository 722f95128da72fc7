//! Evaluation (step 2 of the engine's module doc): a book netted into the
//! account's margin under the scenario model (METHODOLOGY.md §2–§4), and the
//! account figures both models share (dust, uniMMR, status, available).

use super::*;
use crate::offsets::Remaining;

/// Buffers `Engine::evaluate_into` reuses from call to call, so re-margining a
/// live account allocates nothing once they have grown to the book's size.
#[derive(Debug, Default)]
pub struct Scratch {
    net: Vec<Net>,
    pnl: Vec<f64>,
    legs: Vec<OffsetLeg>,
    left: Vec<Remaining>,
    /// Each group's last scan (see [`Scratch::keeping_scans`]); `None`: not kept.
    scans: Option<Vec<KeptScan>>,
    /// The groups an evaluation from a [`Kept`] one recomputed, as a list and by group.
    changed: Vec<usize>,
    changed_mask: Vec<bool>,
    /// Each asset's figures, in book order.
    assets: Vec<AssetFigures>,
    /// Which of a result's group rows a narrow pass left other than the kept evaluation's.
    rows: KeptRows,
    /// Each systemic scenario's P&L, summed group by group, and a group's
    /// returns when it has no table of its own.
    systemic: (Vec<f64>, Vec<f64>),
}

/// The result `out` (by address) whose group rows are those of the kept
/// evaluation `generation` except the rows of the groups in `stale`: what
/// lets a narrow pass rewrite only the rows that change from what-if to
/// what-if. `generation` 0: nothing is known.
#[derive(Debug, Default)]
struct KeptRows {
    generation: u64,
    out: usize,
    stale: [Option<usize>; 2],
}

impl Scratch {
    /// Buffers that also keep each group's last scan and reuse it while the
    /// scan's inputs are the same bits (the engine, the group's table, its
    /// linear delta, tolerance and option P&L vector): a live account's what-if
    /// re-scans only the groups the order changes. A kept scan is the one the
    /// same inputs give, so nothing has to invalidate it.
    pub fn keeping_scans() -> Self {
        Scratch { scans: Some(Vec::new()), ..Scratch::default() }
    }

    /// Forget what the buffers know of the result last written from a kept
    /// evaluation: for a caller that wrote or replaced that result some other
    /// way (an evaluation through these buffers forgets by itself).
    pub fn forget_rows(&mut self) {
        self.rows.generation = 0;
    }
}

/// A fresh number for each kept evaluation (0 is never one).
fn next_generation() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// A group's scan and the inputs it was computed from.
#[derive(Debug, Default)]
struct KeptScan {
    valid: bool,
    engine: u64,
    table: usize,
    has_options: bool,
    d_lin: u64,
    tol: u64,
    option_pnl: Vec<f64>,
    loss: f64,
    worst: usize,
}

/// §3 step 6 for group `group` (index `g`): the scan of `D·r` plus the group's
/// option P&L, reusing `kept[g]` when its inputs are the same bits.
#[allow(clippy::too_many_arguments)]
fn scan_group(
    engine: u64,
    kept: Option<&mut Vec<KeptScan>>,
    g: usize,
    group: &GroupSlot,
    grid: &crate::grid::Grid,
    d_lin: f64,
    tol: f64,
    pnl: &mut Vec<f64>,
) -> (f64, usize) {
    let compute = |pnl: &mut Vec<f64>| {
        if !group.has_options {
            return grid.scan_linear(d_lin, tol);
        }
        grid.scan_options(d_lin, &group.option_pnl, tol, pnl)
    };
    let Some(kept) = kept else { return compute(pnl) };
    if kept.len() <= g {
        kept.resize_with(g + 1, KeptScan::default);
    }
    let k = &mut kept[g];
    let same_options = || k.option_pnl.iter().map(|x| x.to_bits()).eq(group.option_pnl.iter().map(|x| x.to_bits()));
    if k.valid
        && (k.engine, k.table, k.has_options) == (engine, group.table, group.has_options)
        && (k.d_lin, k.tol) == (d_lin.to_bits(), tol.to_bits())
        && (!group.has_options || same_options())
    {
        return (k.loss, k.worst);
    }
    let (loss, worst) = compute(pnl);
    (k.valid, k.engine, k.table, k.has_options) = (true, engine, group.table, group.has_options);
    (k.d_lin, k.tol, k.loss, k.worst) = (d_lin.to_bits(), tol.to_bits(), loss, worst);
    if group.has_options {
        k.option_pnl.clone_from(&group.option_pnl);
    }
    (loss, worst)
}

/// What a scenario-model evaluation keeps for the next evaluation of the
/// same book with a few fields changed ([`Engine::evaluate_after`]): each
/// group's netted sums and figures, the offset credit, each systemic
/// scenario's P&L and each group's part of it. Valid for the book it was
/// kept from only: its owner evaluates again after any change of its own.
#[derive(Debug, Default)]
pub struct Kept {
    valid: bool,
    engine: u64,
    /// This evaluation's number ([`next_generation`]).
    generation: u64,
    net: Vec<Net>,
    /// Each asset's figures, and the wallet they were computed from.
    assets: Vec<AssetFigures>,
    figures: Vec<GroupFigures>,
    /// Each group's offset leg, and its row in the result (`None`: not listed).
    legs: Vec<OffsetLeg>,
    rows: Vec<Option<usize>>,
    listed: usize,
    offset: f64,
    /// Nothing borrowed unhedged in any group ([`borrowed_unhedged`]): no spot financed.
    unfinanced: bool,
    systemic: Vec<f64>,
    /// Systemic scenario `e`'s P&L in group `g`, and its return for the group, at `e · groups + g`.
    parts: Vec<f64>,
    returns: Vec<f64>,
    /// What a `binance_pm` evaluation keeps instead (`binance::evaluate_after`).
    pub(crate) binance: crate::binance::Kept,
}

/// What a change touched since a [`Kept`] evaluation: group `group`'s fields
/// (its contract or option sums), the netted contract `netted.0`, whose
/// delta was `netted.1`, and the asset slot `asset`'s wallet and settled
/// amounts. No other asset slot may change.
#[derive(Debug, Clone, Copy)]
pub struct Touched {
    pub group: usize,
    pub netted: Option<(usize, f64)>,
    pub asset: Option<usize>,
}

/// How `scenario_pass` runs: every group (keeping the figures when asked), or
/// from a kept evaluation of the same book.
enum Pass<'k> {
    Full(Option<&'k mut Kept>),
    After(&'k Kept, Touched),
}

/// One group's figures (USD), the inputs of the group row, the offset leg and the sums.
#[derive(Debug, Clone, Copy, Default)]
struct GroupFigures {
    /// Linear coefficient of the group's P&L: contracts, liabilities, scanned spot.
    scanned_delta: f64,
    delta: f64,
    scan_loss: f64,
    /// The worst scenario's (price move, vol shock).
    worst: (f64, f64),
    som: f64,
    requirement: f64,
    basis: f64,
    concentration: f64,
    price_range: f64,
}

impl GroupFigures {
    /// What the group brings to the offsets.
    fn leg(&self) -> OffsetLeg {
        OffsetLeg { requirement: self.requirement, delta: self.delta, price_range: self.price_range }
    }
}

/// The sums over the listed groups' figures, in book order (USD).
#[derive(Debug, Default)]
struct GroupSums {
    requirement: f64,
    som: f64,
    basis: f64,
    concentration: f64,
}

impl GroupSums {
    fn add(&mut self, f: &GroupFigures) {
        self.requirement += f.requirement;
        self.som += f.som;
        self.basis += f.basis;
        self.concentration += f.concentration;
    }
}

/// One asset's part of the account sums (USD), and the wallet (asset units)
/// it was computed from.
#[derive(Debug, Clone, Copy, Default)]
struct AssetFigures {
    wallet: f64,
    value: f64,
    adjusted: f64,
    /// The loan's margin: 0 unless the wallet is negative.
    borrow_margin: f64,
}

/// Asset `a` of value `value` (USD) into its group's netted sums `n`.
fn net_asset(n: &mut Net, a: &AssetSlot, value: f64) {
    n.borrowing += (-value).max(0.0);
    if a.wallet > 0.0 {
        n.spot_long += a.wallet * a.price;
    } else if a.wallet < 0.0 {
        n.liabilities += a.wallet * a.price;
    }
}

/// The account sums of the asset pass (USD).
#[derive(Debug, Default)]
struct AccountSums {
    equity: f64,
    adjusted_equity: f64,
    borrow_margin: f64,
    negative_wallet: bool,
}

/// The account sums over each asset's figures, in book order, with asset
/// `replaced.0`'s figures `replaced.1` instead of those in `assets`.
fn account_sums(book: &Book, assets: &[AssetFigures], replaced: Option<(usize, &AssetFigures)>) -> AccountSums {
    let mut s = AccountSums::default();
    for (i, (a, f)) in book.assets.iter().zip(assets).enumerate() {
        let f = match replaced {
            Some((c, r)) if c == i => r,
            _ => f,
        };
        s.equity += f.value;
        s.adjusted_equity += f.adjusted;
        if a.wallet < 0.0 {
            s.negative_wallet = true;
            s.borrow_margin += f.borrow_margin;
        }
    }
    s
}

/// §3 steps 1–2: spot in use.
fn spot_in_use(book: &Book, net: &mut [Net]) {
    for (n, g) in net.iter_mut().zip(&book.groups) {
        n.in_use = in_use_of(g, n);
    }
}

/// Group `g`'s spot in use from its netted wallet sums `n`.
fn in_use_of(g: &GroupSlot, n: &Net) -> f64 {
    let d_rest = g.d_contracts + g.d_options + n.liabilities;
    if d_rest < 0.0 && n.spot_long > 0.0 {
        n.spot_long.min(-d_rest)
    } else {
        0.0
    }
}

/// Per-group sums over the netted contracts, in order.
fn contract_sums(book: &Book, net: &mut [Net]) {
    for c in &book.contracts {
        let n = &mut net[c.group];
        n.contracts_abs += c.delta.abs();
        if c.delta > 0.0 {
            n.contracts_long += c.delta;
        } else {
            n.contracts_short -= c.delta;
        }
    }
}

/// [`contract_sums`] from the kept ones (already in `n`, the sums of the
/// touched netted contract's group): the group takes the difference of the
/// contract's delta (to a few ulps of the group's gross sum).
fn kept_contract_sums(book: &Book, n: &mut Net, touched: Touched) {
    let Some((c, old)) = touched.netted else { return };
    let new = book.contracts[c].delta;
    n.contracts_abs += new.abs() - old.abs();
    n.contracts_long += new.max(0.0) - old.max(0.0);
    n.contracts_short += (-new).max(0.0) - (-old).max(0.0);
}

/// The same netted sums (bit for bit) where a group's figures and row read
/// them ([`Engine::group_figures`]: not its long spot or borrowing, which only
/// feed spot in use and financing, nor `scanned_delta`, which it computes).
fn same_net(a: &Net, b: &Net) -> bool {
    let bits = |n: &Net| {
        [n.liabilities, n.in_use, n.financed, n.contracts_abs, n.contracts_long, n.contracts_short].map(f64::to_bits)
    };
    bits(a) == bits(b)
}

/// A group's borrowing that its spot in use does not hedge (USD, ≥ 0): what
/// financing finances. None in any group: every financed spot is 0.
fn borrowed_unhedged(n: &Net) -> f64 {
    (n.borrowing - n.in_use).max(0.0)
}

/// The inputs financing reads from a group's netted sums (besides the wallets).
fn same_financing_inputs(n: &Net, k: &Net) -> bool {
    (n.spot_long.to_bits(), n.in_use.to_bits(), n.borrowing.to_bits())
        == (k.spot_long.to_bits(), k.in_use.to_bits(), k.borrowing.to_bits())
}

/// Group `g`'s wallet sums in `n` re-summed over its assets in order, asset
/// `c`'s value `value` and the others' the kept ones (`assets`).
fn renet_group(book: &Book, n: &mut Net, g: usize, c: usize, value: f64, assets: &[AssetFigures]) {
    (n.spot_long, n.liabilities, n.borrowing) = (0.0, 0.0, 0.0);
    for (i, a) in book.assets.iter().enumerate().filter(|(_, a)| a.group == g) {
        net_asset(n, a, if i == c { value } else { assets[i].value });
    }
}

/// A group's result row from its figures `f` and netted sums `n`.
fn write_row(r: &mut GroupResult, f: &GroupFigures, n: &Net) {
    (r.scan_loss, r.requirement, r.delta, r.spot_in_use, r.financed_spot) =
        (f.scan_loss, f.requirement, f.delta, n.in_use, n.financed);
    (r.basis, r.concentration, r.som, r.worst_price_move, r.worst_vol_shock) =
        (f.basis, f.concentration, f.som, f.worst.0, f.worst.1);
}

/// The listed group with the largest requirement above 0 (the first in book
/// order on ties): what a caller that reads no group rows (a batch) reports
/// of an account's groups.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct WorstGroup {
    /// The group's index in the book (`Book::groups`).
    pub group: usize,
    /// Its requirement (USD).
    pub requirement: f64,
    /// Its worst scenario's price return (fraction) and relative vol shock.
    pub price_move: f64,
    pub vol_shock: f64,
}

impl WorstGroup {
    /// `worst` of the groups before, then group `group` of figures `f` (listed).
    fn consider(worst: &mut Option<WorstGroup>, group: usize, f: &GroupFigures) {
        if f.requirement > 0.0 && worst.is_none_or(|w| f.requirement > w.requirement) {
            *worst =
                Some(WorstGroup { group, requirement: f.requirement, price_move: f.worst.0, vol_shock: f.worst.1 });
        }
    }
}

/// Per-group figures of `Engine::evaluate` before the scan.
#[derive(Debug, Clone, Copy, Default)]
struct Net {
    /// `S_g`: value of long wallet balances (USD).
    spot_long: f64,
    /// Value of negative wallet balances (USD, ≤ 0).
    liabilities: f64,
    /// `Λ_g`: Σ max(0, −e_a·P_a) over the group's assets (USD).
    borrowing: f64,
    /// `u_g`: long spot recognised as a hedge (USD).
    in_use: f64,
    /// Linear coefficient of the group's P&L: contracts, liabilities, scanned spot (USD).
    scanned_delta: f64,
    /// Σ over the group's long collateral balances of `w·P·(1 − u_g)·φ`: financed spot (USD).
    financed: f64,
    /// Over the group's netted contract deltas, in order: Σ|d|, Σ d > 0, Σ −d for d < 0 (USD).
    contracts_abs: f64,
    contracts_long: f64,
    contracts_short: f64,
}

/// Row `k` of a result's groups, named `name`: the row already there (renamed
/// when it names another group: a live account rewrites the same groups call
/// after call without touching a reference count, a batch reuses its rows from
/// account to account), else a new one; its figures are the caller's to write.
fn group_row<'o>(groups: &'o mut Vec<GroupResult>, k: usize, name: &Arc<str>) -> &'o mut GroupResult {
    if let Some(row) = groups.get_mut(k) {
        if !Arc::ptr_eq(&row.name, name) {
            row.name = Arc::clone(name);
        }
    } else {
        groups.push(GroupResult {
            name: Arc::clone(name),
            scan_loss: 0.0,
            requirement: 0.0,
            delta: 0.0,
            spot_in_use: 0.0,
            financed_spot: 0.0,
            basis: 0.0,
            concentration: 0.0,
            som: 0.0,
            worst_price_move: 0.0,
            worst_vol_shock: 0.0,
        });
    }
    &mut groups[k]
}

impl Engine {
    /// Net a book into the account's margin (step 2 of the module doc).
    pub fn evaluate(&self, book: &Book) -> MarginResult {
        let mut out = MarginResult::default();
        self.evaluate_into(book, &mut Scratch::default(), &mut out);
        out
    }

    /// `evaluate` writing into `out` (its lists are reused) with `scratch`'s
    /// buffers: no allocation once both have grown to the book's size. The
    /// profile's model decides how the book is netted.
    pub fn evaluate_into(&self, book: &Book, scratch: &mut Scratch, out: &mut MarginResult) {
        self.evaluate_as::<true>(book, scratch, out);
    }

    /// [`evaluate_into`](Self::evaluate_into) for a caller that reads the
    /// account's figures and its worst group only (a batch): the same
    /// figures, computed the same way, but no group rows (`out.groups` is
    /// left empty); the worst listed group instead (`None`: no group carries
    /// a requirement, as under `binance_pm`, which lists none).
    pub(crate) fn evaluate_totals(
        &self,
        book: &Book,
        scratch: &mut Scratch,
        out: &mut MarginResult,
    ) -> Option<WorstGroup> {
        self.evaluate_as::<false>(book, scratch, out)
    }

    /// [`evaluate_into`](Self::evaluate_into) writing group rows (`ROWS`) or
    /// keeping the worst group instead.
    #[inline(always)]
    fn evaluate_as<const ROWS: bool>(
        &self,
        book: &Book,
        scratch: &mut Scratch,
        out: &mut MarginResult,
    ) -> Option<WorstGroup> {
        scratch.forget_rows(); // `out` is rewritten whatever the model
        out.model = self.params.model;
        match self.params.model {
            Model::Scenario => self.scenario_pass::<ROWS>(book, scratch, Pass::Full(None), out),
            Model::BinancePm => {
                crate::binance::evaluate(self, book, out);
                None
            }
        }
    }

    /// The scenario model (METHODOLOGY.md §2–§4).
    pub(super) fn evaluate_scenario(&self, book: &Book, scratch: &mut Scratch, out: &mut MarginResult) {
        self.scenario_pass::<true>(book, scratch, Pass::Full(None), out);
    }

    /// [`evaluate`](Self::evaluate_into) under the scenario model, also keeping
    /// in `kept` the per-group figures and account partial sums an
    /// [`evaluate_after`](Self::evaluate_after) of a change to this book starts from.
    pub fn evaluate_keeping(&self, book: &Book, scratch: &mut Scratch, kept: &mut Kept, out: &mut MarginResult) {
        scratch.forget_rows();
        out.model = self.params.model;
        kept.valid = false;
        if self.params.model != Model::Scenario {
            return crate::binance::evaluate_keeping(self, book, &mut kept.binance, out);
        }
        self.scenario_pass::<true>(book, scratch, Pass::Full(Some(kept)), out);
        kept.engine = self.id;
        kept.generation = next_generation();
    }

    /// The margin of `book`, which is the book `kept` was kept from
    /// ([`evaluate_keeping`](Self::evaluate_keeping)) with only `touched`
    /// changed: that group's fields, the netted contract's delta, and one
    /// asset slot's wallet and settled amounts. Only that asset's figures are
    /// recomputed (the account sums are re-summed in order from each asset's);
    /// financing is re-run only when its inputs (a group's long spot, spot in
    /// use or borrowing, the asset's wallet) are not the kept bits; a group
    /// whose netted figures are the kept ones' bits and that is not the touched
    /// group keeps its kept figures (scan, add-ons); offsets are re-run only
    /// when a recomputed group is in a pair. Bit for bit a full evaluation
    /// except two sums updated by differences (the touched group's
    /// netted-contract sums and each systemic scenario's P&L): those agree to
    /// a few ulps of the book's gross size. The common what-if (one group,
    /// one asset, financing unchanged) takes a narrow pass that touches only
    /// what it changes, rows included (`narrow_pass`).
    /// Falls back to a full evaluation when `kept` is not this engine's
    /// scenario-model evaluation of a book of this shape.
    pub fn evaluate_after(
        &self,
        book: &Book,
        scratch: &mut Scratch,
        kept: &Kept,
        touched: Touched,
        out: &mut MarginResult,
    ) {
        if !kept.valid
            || kept.engine != self.id
            || kept.net.len() != book.groups.len()
            || kept.assets.len() != book.assets.len()
        {
            return self.evaluate_into(book, scratch, out);
        }
        out.model = self.params.model;
        if let Some(c) = touched.asset {
            if self.narrow_pass(book, scratch, kept, touched, c, out) {
                return;
            }
        }
        self.scenario_pass::<true>(book, scratch, Pass::After(kept, touched), out);
    }

    /// The scenario model's passes, in full or from a kept evaluation (one
    /// copy of every formula; `pass` decides only what is recomputed), with
    /// the group rows written (`ROWS`), or not and the worst group returned
    /// instead (`None` when writing rows).
    fn scenario_pass<const ROWS: bool>(
        &self,
        book: &Book,
        scratch: &mut Scratch,
        mut pass: Pass<'_>,
        out: &mut MarginResult,
    ) -> Option<WorstGroup> {
        let Scratch { net, pnl, legs, left, scans, changed, changed_mask, assets, rows, systemic } = scratch;
        rows.generation = 0; // every row is rewritten

        let account = match &pass {
            Pass::Full(_) => self.asset_pass(book, net, assets),
            Pass::After(kept, touched) => self.asset_pass_after(book, net, kept, touched.asset),
        };
        spot_in_use(book, net);
        match &pass {
            Pass::Full(_) => {
                self.financing(book, net);
                contract_sums(book, net);
            }
            Pass::After(kept, touched) => {
                let wallet_kept = touched.asset.is_none_or(|a| kept.assets[a].wallet == book.assets[a].wallet);
                // Financing reads only these: when they are the kept bits, so is every group's financed spot.
                if !(wallet_kept && net.iter().zip(&kept.net).all(|(n, k)| same_financing_inputs(n, k))) {
                    net.iter_mut().for_each(|n| n.financed = 0.0);
                    self.financing(book, net);
                }
                if let Some((c, _)) = touched.netted {
                    kept_contract_sums(book, &mut net[book.contracts[c].group], *touched);
                }
            }
        }

        let mut listed = 0;
        legs.clear();
        // Which groups were recomputed: read by a pass from a kept evaluation only.
        let after = matches!(pass, Pass::After(..));
        changed.clear();
        changed_mask.clear();
        if after {
            changed_mask.resize(book.groups.len(), false);
        }
        let mut sums = GroupSums::default();
        let mut worst = None;
        for (g, group) in book.groups.iter().enumerate() {
            let f = match &pass {
                Pass::After(kept, touched) if g != touched.group && same_net(&net[g], &kept.net[g]) => kept.figures[g],
                _ => {
                    if after {
                        changed.push(g);
                        changed_mask[g] = true;
                    }
                    self.group_figures(g, group, &net[g], scans.as_mut(), pnl)
                }
            };
            net[g].scanned_delta = f.scanned_delta;
            let n = &net[g];
            // Offset legs by group index; only listed groups appear in `offset_pairs`.
            legs.push(f.leg());
            if group.listed {
                sums.add(&f);
                if ROWS {
                    write_row(group_row(&mut out.groups, listed, &book.group_names[g]), &f, n);
                } else {
                    WorstGroup::consider(&mut worst, g, &f);
                }
                listed += 1;
            }
            if let Pass::Full(Some(kept)) = &mut pass {
                if g == 0 {
                    kept.figures.clear();
                    kept.rows.clear();
                }
                kept.figures.push(f);
                kept.rows.push(group.listed.then(|| listed - 1));
            }
        }
        out.groups.truncate(if ROWS { listed } else { 0 });
        if let Pass::Full(Some(kept)) = &mut pass {
            kept.listed = listed;
        }

        // Offsets, floored by the short-option minimum; a pair of kept legs gives the kept credit.
        let offset = match &pass {
            Pass::After(kept, _) if !book.offset_pairs.iter().any(|q| changed_mask[q.a] || changed_mask[q.b]) => {
                kept.offset
            }
            _ => offset_credit(&book.offset_pairs, legs, left),
        };
        let systemic = match &mut pass {
            Pass::Full(kept) => self.systemic_loss(book, net, systemic, kept.as_deref_mut()),
            Pass::After(kept, _) => {
                Self::systemic_after(book, kept, changed.iter().map(|&g| (g, net[g].scanned_delta)))
            }
        };
        self.write_margin(out, &account, &sums, offset, systemic);
        if let Pass::Full(Some(kept)) = pass {
            kept.net.clone_from(net);
            kept.assets.clone_from(assets);
            kept.legs.clone_from(legs);
            kept.offset = offset;
            kept.unfinanced = net.iter().all(|n| borrowed_unhedged(n) == 0.0);
            kept.valid = true;
        }
        worst
    }

    /// The account's margin (§3 step 8 on): the scan total after offsets, the
    /// MM and the account figures, from the account sums, the listed groups'
    /// sums, the offset credit and the systemic loss.
    fn write_margin(
        &self,
        out: &mut MarginResult,
        account: &AccountSums,
        sums: &GroupSums,
        offset: f64,
        systemic: f64,
    ) {
        let scan_total = (sums.requirement - offset).max(sums.som);
        let mm_risk = scan_total.max(systemic);
        let mm = mm_risk + sums.basis + sums.concentration + account.borrow_margin;
        let im_factor = self.params.im_factor;
        self.write_account(out, account.equity, account.adjusted_equity, account.negative_wallet, mm, |mm| {
            im_factor * mm
        });
        out.scan = scan_total;
        out.systemic = systemic;
        out.offset_credit = offset;
        out.borrow_margin = account.borrow_margin;
    }

    /// [`scenario_pass`](Self::scenario_pass) from a kept evaluation for the
    /// common what-if: a change to group `touched.group` and to asset `c`
    /// (which may be in another group) that leaves financing's inputs the
    /// kept bits. It recomputes what the general pass would and skips what it
    /// would find unchanged without looking: the asset `c`'s figures, its
    /// group's wallet sums, the two groups' spot in use, the touched group's
    /// figures (and the asset's group's when its netted sums move), the
    /// offsets when either is in a pair, and only their result rows (the
    /// others are the kept evaluation's, see [`KeptRows`]). Every sum is
    /// taken in the general pass's order, so the result is its bits. Returns
    /// false, having written nothing, when financing must re-run: its inputs
    /// move and something was or is borrowed unhedged (or the netted contract
    /// is not in the touched group).
    fn narrow_pass(
        &self,
        book: &Book,
        scratch: &mut Scratch,
        kept: &Kept,
        touched: Touched,
        c: usize,
        out: &mut MarginResult,
    ) -> bool {
        let (tg, ag, groups) = (touched.group, book.assets[c].group, &book.groups);
        if touched.netted.is_some_and(|(k, _)| book.contracts[k].group != tg) {
            return false;
        }
        let asset = self.asset_figures(&book.assets[c]);
        let mut an = kept.net[ag];
        renet_group(book, &mut an, ag, c, asset.value, &kept.assets);
        an.in_use = in_use_of(&groups[ag], &an);
        let mut tn = if tg == ag { an } else { kept.net[tg] };
        tn.in_use = in_use_of(&groups[tg], &tn);
        // Financing is the kept one when its inputs are the kept bits, or when nothing
        // was nor is borrowed unhedged (every financed spot 0, whatever the wallets).
        let wallet_kept = kept.assets[c].wallet == book.assets[c].wallet;
        let same_inputs =
            wallet_kept && same_financing_inputs(&tn, &kept.net[tg]) && same_financing_inputs(&an, &kept.net[ag]);
        let unfinanced = || kept.unfinanced && borrowed_unhedged(&tn) == 0.0 && borrowed_unhedged(&an) == 0.0;
        if !(same_inputs || unfinanced()) {
            return false;
        }
        kept_contract_sums(book, &mut tn, touched);
        let Scratch { pnl, legs, left, scans, rows, .. } = scratch;
        let ft = self.group_figures(tg, &groups[tg], &tn, scans.as_mut(), pnl);
        tn.scanned_delta = ft.scanned_delta;
        let fa = if ag != tg && !same_net(&an, &kept.net[ag]) {
            let f = self.group_figures(ag, &groups[ag], &an, scans.as_mut(), pnl);
            an.scanned_delta = f.scanned_delta;
            Some(f)
        } else {
            None
        };
        // The recomputed groups, their figures and netted sums: `tg`, and `other`
        // (the asset's group when recomputed, else no group).
        let other = if fa.is_some() { ag } else { usize::MAX };
        let fa = fa.unwrap_or_default();
        let changed = [(tg, &ft, &tn), (other, &fa, &an)];
        let changed = &changed[..if other == usize::MAX { 1 } else { 2 }];
        let figures = |g: usize| match g {
            _ if g == tg => &ft,
            _ if g == other => &fa,
            _ => &kept.figures[g],
        };

        let mut sums = GroupSums::default();
        for (g, group) in groups.iter().enumerate() {
            if group.listed {
                sums.add(figures(g));
            }
        }

        // Rows: the kept evaluation's but for the recomputed groups (restore
        // the rows the last narrow pass changed), or every row when that is
        // not known of `out`.
        let at = out as *const MarginResult as usize;
        if rows.generation == kept.generation && rows.out == at && out.groups.len() == kept.listed {
            for g in rows.stale.into_iter().flatten().filter(|&g| g != tg && g != other) {
                if let Some(r) = kept.rows[g] {
                    write_row(&mut out.groups[r], &kept.figures[g], &kept.net[g]);
                }
            }
            for &(g, f, n) in changed {
                if let Some(r) = kept.rows[g] {
                    write_row(&mut out.groups[r], f, n);
                }
            }
        } else {
            for (g, row) in kept.rows.iter().enumerate() {
                if let Some(r) = *row {
                    let n = changed.iter().find(|c| c.0 == g).map_or(&kept.net[g], |c| c.2);
                    write_row(group_row(&mut out.groups, r, &book.group_names[g]), figures(g), n);
                }
            }
            out.groups.truncate(kept.listed);
        }
        let stale = [Some(tg), (other != usize::MAX).then_some(other)];
        *rows = KeptRows { generation: kept.generation, out: at, stale };

        let offset = if book.offset_pairs.iter().any(|q| changed.iter().any(|c| c.0 == q.a || c.0 == q.b)) {
            legs.clone_from(&kept.legs);
            for &(g, f, _) in changed {
                legs[g] = f.leg();
            }
            offset_credit(&book.offset_pairs, legs, left)
        } else {
            kept.offset
        };
        let systemic = Self::systemic_after(book, kept, changed.iter().map(|c| (c.0, c.2.scanned_delta)));
        let account = account_sums(book, &kept.assets, Some((c, &asset)));
        self.write_margin(out, &account, &sums, offset, systemic);
        true
    }

    /// Asset `a`'s figures (§2): its value, haircut value and loan margin.
    fn asset_figures(&self, a: &AssetSlot) -> AssetFigures {
        let value = a.equity() * a.price;
        let params = a.params.map(|i| &self.asset_table[i as usize]);
        let adjusted = adjusted_value(value, params.map_or(&[], |ap| ap.collateral.as_slice()));
        let borrow_margin = if a.wallet < 0.0 {
            let rate = params.and_then(|ap| ap.borrow_mmr).unwrap_or(self.params.borrow_mmr);
            rate * (-a.wallet) * a.price
        } else {
            0.0
        };
        AssetFigures { wallet: a.wallet, value, adjusted, borrow_margin }
    }

    /// §2 equity and adjusted equity; wallets by sign into each group's `net`
    /// (reset first); each asset's figures into `assets`.
    fn asset_pass(&self, book: &Book, net: &mut Vec<Net>, assets: &mut Vec<AssetFigures>) -> AccountSums {
        net.clear();
        net.resize(book.groups.len(), Net::default());
        assets.clear();
        for a in &book.assets {
            let f = self.asset_figures(a);
            net_asset(&mut net[a.group], a, f.value);
            assets.push(f);
        }
        account_sums(book, assets, None)
    }

    /// [`asset_pass`](Self::asset_pass) from the kept one with asset `changed`
    /// recomputed: the other assets' figures and groups' sums are the kept
    /// ones, the changed asset's group is re-summed over its assets in order.
    fn asset_pass_after(&self, book: &Book, net: &mut Vec<Net>, kept: &Kept, changed: Option<usize>) -> AccountSums {
        net.clone_from(&kept.net);
        let Some(c) = changed else { return account_sums(book, &kept.assets, None) };
        let figures = self.asset_figures(&book.assets[c]);
        let g = book.assets[c].group;
        renet_group(book, &mut net[g], g, c, figures.value, &kept.assets);
        account_sums(book, &kept.assets, Some((c, &figures)))
    }

    /// §3 step 3: financed spot, free stablecoins first, then the other free
    /// collateral (per-group sums over assets in order, so each is the one a
    /// per-group filter gives, bit for bit). Adds to each group's `financed`.
    fn financing(&self, book: &Book, net: &mut [Net]) {
        let stable = |g: usize| self.group_params(&book.groups[g]).price_range == 0.0;
        let in_use_fraction = |n: &Net| if n.spot_long > 0.0 { n.in_use / n.spot_long } else { 0.0 };
        let borrowed: f64 = net.iter().map(borrowed_unhedged).sum();
        if borrowed == 0.0 {
            return; // nothing to finance: every φ is 0, so is every financed spot (already 0)
        }
        let (mut free_stable, mut free_risky) = (0.0, 0.0);
        for a in book.assets.iter().filter(|a| a.wallet > 0.0 && a.collateral) {
            let free = a.wallet * a.price * (1.0 - in_use_fraction(&net[a.group]));
            if stable(a.group) {
                free_stable += free
            } else {
                free_risky += free
            }
        }
        let fraction = |num: f64, den: f64| if den > 0.0 { (num / den).min(1.0) } else { 0.0 };
        let phi_stable = fraction(borrowed, free_stable);
        let phi_risky = fraction((borrowed - free_stable).max(0.0), free_risky);
        for a in book.assets.iter().filter(|a| a.wallet > 0.0 && a.collateral) {
            let n = &mut net[a.group];
            let phi = if stable(a.group) { phi_stable } else { phi_risky };
            n.financed += a.wallet * a.price * (1.0 - in_use_fraction(n)) * phi;
        }
    }

    /// One group's figures from its netted sums `n`: the scan (§3 steps 5–6),
    /// the short-option minimum and requirement (step 7) and the §4 add-ons.
    fn group_figures(
        &self,
        g: usize,
        group: &GroupSlot,
        n: &Net,
        scans: Option<&mut Vec<KeptScan>>,
        pnl: &mut Vec<f64>,
    ) -> GroupFigures {
        let gp = self.group_params(group);
        // Long balances: the in-use fraction of each, plus the financed part of the
        // free rest of each collateral balance.
        let scanned_spot = n.in_use + n.financed;
        let d_lin = group.d_contracts + n.liabilities + scanned_spot;
        let delta = d_lin + group.d_options;
        let (scan_loss, worst) = if gp.price_range > 0.0 {
            let grid = &self.tables[group.table].grid;
            let sc = grid.scenarios(group.has_options);
            let abs_items: f64 = n.contracts_abs + group.abs_options - n.liabilities + scanned_spot;
            let tol = SCAN_TOL * (1.0 + abs_items);
            let (loss, k) = scan_group(self.id, scans, g, group, grid, d_lin, tol, pnl);
            (loss, (sc[k].r, sc[k].v))
        } else {
            (0.0, (0.0, 0.0))
        };
        let som = gp.som_rate * group.short_option_notional;
        let requirement = scan_loss.max(som);
        // §4 add-ons. Liabilities are all negative and scanned long balances all
        // positive, so each sum nets the same as its items one by one.
        let contracts = (n.contracts_long, n.contracts_short);
        let basis = addons::basis_after(gp.basis_rate, contracts, [n.liabilities, scanned_spot]);
        let concentration = addons::concentration(delta.abs(), &gp.concentration);
        GroupFigures {
            scanned_delta: d_lin,
            delta,
            scan_loss,
            worst,
            som,
            requirement,
            basis,
            concentration,
            price_range: gp.price_range,
        }
    }

    /// The account figures every model ends with, given equity, adjusted equity,
    /// whether a wallet is negative, the MM (USD) and the IM as a function of the
    /// final MM: an MM below [`MM_DUST`] is 0; `uniMMR = adjusted equity / MM`
    /// (±inf when MM is 0); `BANKRUPT` when equity is below 0 (or 0 with a
    /// liability), else the profile's ladder on uniMMR; available = adjusted
    /// equity − IM.
    pub(crate) fn write_account(
        &self,
        out: &mut MarginResult,
        equity: f64,
        adjusted_equity: f64,
        negative_wallet: bool,
        mm: f64,
        im: impl FnOnce(f64) -> f64,
    ) {
        let mm = if mm < MM_DUST { 0.0 } else { mm };
        let im = im(mm);
        let uni_mmr = if mm > 0.0 {
            adjusted_equity / mm
        } else if adjusted_equity >= 0.0 {
            f64::INFINITY
        } else {
            f64::NEG_INFINITY
        };
        out.status = if equity < 0.0 || (equity == 0.0 && negative_wallet) {
            Status::BANKRUPT
        } else {
            self.params.status_for(uni_mmr)
        };
        out.equity = equity;
        out.adjusted_equity = adjusted_equity;
        out.maintenance_margin = mm;
        out.initial_margin = im;
        out.available = adjusted_equity - im;
        out.uni_mmr = uni_mmr;
    }

    /// A status's rank on the profile's ladder: 0 the healthiest, the ladder's
    /// length for `BANKRUPT`.
    pub fn status_rank(&self, status: Status) -> usize {
        usize::from(status.code(self.params.status.len()))
    }

    /// Each systemic scenario's return for group `g`, in scenario order, into
    /// `buf` when the group has no table of its own (it may be overridden by
    /// name), else its table's row.
    fn systemic_returns<'a>(&'a self, book: &Book, g: usize, buf: &'a mut Vec<f64>) -> &'a [f64] {
        let (group, ne) = (&book.groups[g], self.params.systemic.len());
        match group.table {
            0 => {
                let (name, gp) = (&book.group_names[g], self.group_params(group));
                buf.clear();
                buf.extend(self.params.systemic.iter().map(|s| systemic_return(s, name, gp)));
                buf
            }
            t => &self.systemic_by_table[t * ne..(t + 1) * ne],
        }
    }

    /// Group `g`'s P&L under systemic scenario `e` of return `r` for the
    /// group: its scanned exposure times `r`, plus its options' repriced P&L.
    fn systemic_pnl(book: &Book, scanned_delta: f64, e: usize, g: usize, r: f64) -> (f64, f64) {
        (scanned_delta * r, book.groups[g].option_systemic.get(e).copied().unwrap_or(0.0))
    }

    /// `SYS`: the worst systemic scenario's loss over the scanned exposure, ≥ 0;
    /// into `kept`, each scenario's P&L and each group's part of it. Group by
    /// group, each scenario's P&L in `buf.0` (each still sums its groups in
    /// book order): a group's returns and option P&L are read once.
    fn systemic_loss(
        &self,
        book: &Book,
        net: &[Net],
        buf: &mut (Vec<f64>, Vec<f64>),
        mut kept: Option<&mut Kept>,
    ) -> f64 {
        let (pnl, own) = buf;
        let (ne, ng) = (self.params.systemic.len(), book.groups.len());
        if let Some(k) = kept.as_deref_mut() {
            k.parts.clear();
            k.parts.resize(ne * ng, 0.0);
            k.returns.clear();
            k.returns.resize(ne * ng, 0.0);
        }
        pnl.clear();
        pnl.resize(ne, 0.0);
        for (g, n) in net.iter().enumerate().take(ng) {
            let returns = self.systemic_returns(book, g, own);
            for (e, (p, &r)) in pnl.iter_mut().zip(returns).enumerate() {
                let (linear, options) = Self::systemic_pnl(book, n.scanned_delta, e, g, r);
                *p += linear;
                *p += options;
                if let Some(k) = kept.as_deref_mut() {
                    (k.parts[e * ng + g], k.returns[e * ng + g]) = (linear + options, r);
                }
            }
        }
        if let Some(k) = kept {
            k.systemic.clone_from(pnl);
        }
        pnl.iter().fold(0.0_f64, |worst, &p| worst.max(-p))
    }

    /// [`systemic_loss`](Self::systemic_loss) from the kept P&L of each
    /// scenario, with the `changed` groups' parts (group, scanned delta)
    /// replaced (a difference: to a few ulps of the scenario's gross P&L) at
    /// the kept returns.
    fn systemic_after(book: &Book, kept: &Kept, changed: impl Iterator<Item = (usize, f64)> + Clone) -> f64 {
        let ng = book.groups.len();
        let mut worst = 0.0_f64;
        for (e, &kept_pnl) in kept.systemic.iter().enumerate() {
            let mut pnl = kept_pnl;
            for (g, scanned_delta) in changed.clone() {
                let (linear, options) = Self::systemic_pnl(book, scanned_delta, e, g, kept.returns[e * ng + g]);
                pnl += (linear + options) - kept.parts[e * ng + g];
            }
            worst = worst.max(-pnl);
        }
        worst
    }
}
