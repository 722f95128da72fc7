//! Evaluation (step 2 of the engine's module doc): a book netted into the
//! account's margin under the scenario model (METHODOLOGY.md §2–§4), and the
//! account figures both models share (dust, uniMMR, status, available).

use super::*;

/// Buffers `Engine::evaluate_into` reuses from call to call, so re-margining a
/// live account allocates nothing once they have grown to the book's size.
#[derive(Debug, Default)]
pub struct Scratch {
    net: Vec<Net>,
    pnl: Vec<f64>,
    legs: Vec<OffsetLeg>,
    remainder: Vec<f64>,
    budget: Vec<f64>,
    /// Each group's last scan (see [`Scratch::keeping_scans`]); `None`: not kept.
    scans: Option<Vec<KeptScan>>,
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
    sc: &[Scenario],
    d_lin: f64,
    tol: f64,
    pnl: &mut Vec<f64>,
) -> (f64, usize) {
    let compute = |pnl: &mut Vec<f64>| {
        if !group.has_options {
            return crate::grid::scan_by(sc, tol, |_, s| d_lin * s.r);
        }
        pnl.clear();
        pnl.extend(sc.iter().map(|s| d_lin * s.r));
        for (x, o) in pnl.iter_mut().zip(&group.option_pnl) {
            *x += o;
        }
        scan(pnl, sc, tol)
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

/// Row `k` of a result's groups, named `name`: the row already there when it
/// names the same group (a live account rewrites the same groups call after
/// call without touching a reference count), else a new one; its figures are
/// the caller's to write.
fn group_row<'o>(groups: &'o mut Vec<GroupResult>, k: usize, name: &Arc<str>) -> &'o mut GroupResult {
    if groups.get(k).is_none_or(|r| !Arc::ptr_eq(&r.name, name)) {
        let row = GroupResult {
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
        };
        if k < groups.len() {
            groups[k] = row;
        } else {
            groups.push(row);
        }
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
        out.model = self.params.model;
        match self.params.model {
            Model::Scenario => self.evaluate_scenario(book, scratch, out),
            Model::BinancePm => crate::binance::evaluate(self, book, out),
        }
    }

    /// The scenario model (METHODOLOGY.md §2–§4).
    pub(super) fn evaluate_scenario(&self, book: &Book, scratch: &mut Scratch, out: &mut MarginResult) {
        let p = &self.params;
        let ng = book.groups.len();
        let stable = |g: usize| self.group_params(&book.groups[g]).price_range == 0.0;
        let Scratch { net, pnl, legs, remainder, budget, scans } = scratch;

        // §2 equity and adjusted equity; wallets by sign.
        let (mut equity, mut adjusted_equity, mut borrow_margin) = (0.0, 0.0, 0.0);
        let mut negative_wallet = false;
        net.clear();
        net.resize(ng, Net::default());
        for a in &book.assets {
            let value = a.equity() * a.price;
            let params = a.params.map(|i| &self.asset_table[i as usize]);
            equity += value;
            adjusted_equity += adjusted_value(value, params.map_or(&[], |ap| ap.collateral.as_slice()));
            let n = &mut net[a.group];
            n.borrowing += (-value).max(0.0);
            if a.wallet > 0.0 {
                n.spot_long += a.wallet * a.price;
            } else if a.wallet < 0.0 {
                negative_wallet = true;
                n.liabilities += a.wallet * a.price;
                let rate = params.and_then(|ap| ap.borrow_mmr).unwrap_or(p.borrow_mmr);
                borrow_margin += rate * (-a.wallet) * a.price;
            }
        }

        // §3 steps 1–2: spot in use.
        for (n, g) in net.iter_mut().zip(&book.groups) {
            let d_rest = g.d_contracts + g.d_options + n.liabilities;
            n.in_use = if d_rest < 0.0 && n.spot_long > 0.0 { n.spot_long.min(-d_rest) } else { 0.0 };
        }
        let in_use_fraction = |n: &Net| if n.spot_long > 0.0 { n.in_use / n.spot_long } else { 0.0 };

        // §3 step 3: financed spot, free stablecoins first, then the other free collateral.
        let borrowed: f64 = net.iter().map(|n| (n.borrowing - n.in_use).max(0.0)).sum();
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
        // Per-group sums over assets and netted contracts, one pass each (in order, so
        // each sum is the one a per-group filter gives, bit for bit).
        for a in book.assets.iter().filter(|a| a.wallet > 0.0 && a.collateral) {
            let n = &mut net[a.group];
            let phi = if stable(a.group) { phi_stable } else { phi_risky };
            n.financed += a.wallet * a.price * (1.0 - in_use_fraction(n)) * phi;
        }
        for c in &book.contracts {
            let n = &mut net[c.group];
            n.contracts_abs += c.delta.abs();
            if c.delta > 0.0 {
                n.contracts_long += c.delta;
            } else {
                n.contracts_short -= c.delta;
            }
        }

        let mut listed = 0;
        legs.clear();
        let (mut sum_req, mut sum_som, mut sum_basis, mut sum_conc) = (0.0, 0.0, 0.0, 0.0);
        for (g, group) in book.groups.iter().enumerate() {
            let gp = self.group_params(group);
            let n = net[g];
            // Long balances: the in-use fraction of each, plus the financed part of the
            // free rest of each collateral balance.
            let financed = n.financed;
            let scanned_spot = n.in_use + financed;
            let d_lin = group.d_contracts + n.liabilities + scanned_spot;
            net[g].scanned_delta = d_lin;
            let delta = d_lin + group.d_options;

            // §3 steps 5–6: the grid.
            let (scan_loss, worst) = if gp.price_range > 0.0 {
                let sc = self.scenarios(group);
                let abs_items: f64 = n.contracts_abs + group.abs_options - n.liabilities + scanned_spot;
                let tol = SCAN_TOL * (1.0 + abs_items);
                let (loss, k) = scan_group(self.id, scans.as_mut(), g, group, sc, d_lin, tol, pnl);
                (loss, (sc[k].r, sc[k].v))
            } else {
                (0.0, (0.0, 0.0))
            };
            // §3 step 7.
            let som = gp.som_rate * group.short_option_notional;
            let requirement = scan_loss.max(som);
            // §4 add-ons. Liabilities are all negative and scanned long balances all
            // positive, so each sum nets the same as its items one by one.
            let contracts = (n.contracts_long, n.contracts_short);
            let basis = addons::basis_after(gp.basis_rate, contracts, [n.liabilities, scanned_spot]);
            let concentration = addons::concentration(delta.abs(), &gp.concentration);

            // Offset legs by group index; only listed groups appear in `offset_pairs`.
            legs.push(OffsetLeg { requirement, delta, price_range: gp.price_range });
            if group.listed {
                sum_req += requirement;
                sum_som += som;
                sum_basis += basis;
                sum_conc += concentration;
                let r = group_row(&mut out.groups, listed, &book.group_names[g]);
                (r.scan_loss, r.requirement, r.delta, r.spot_in_use, r.financed_spot) =
                    (scan_loss, requirement, delta, n.in_use, financed);
                (r.basis, r.concentration, r.som, r.worst_price_move, r.worst_vol_shock) =
                    (basis, concentration, som, worst.0, worst.1);
                listed += 1;
            }
        }
        out.groups.truncate(listed);

        // Offsets, floored by the short-option minimum.
        let offset = offset_credit(&book.offset_pairs, legs, remainder, budget);
        let scan_total = (sum_req - offset).max(sum_som);
        let systemic = self.systemic_loss(book, net);
        let mm_risk = scan_total.max(systemic);

        let mm = mm_risk + sum_basis + sum_conc + borrow_margin;
        self.write_account(out, equity, adjusted_equity, negative_wallet, mm, |mm| p.im_factor * mm);
        out.scan = scan_total;
        out.systemic = systemic;
        out.offset_credit = offset;
        out.borrow_margin = borrow_margin;
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

    /// `SYS`: the worst systemic scenario's loss over the scanned exposure, ≥ 0.
    fn systemic_loss(&self, book: &Book, net: &[Net]) -> f64 {
        let mut worst = 0.0_f64;
        for (e, s) in self.params.systemic.iter().enumerate() {
            let mut pnl = 0.0;
            for (g, group) in book.groups.iter().enumerate() {
                // A named group's return is the one its table gives; others may be overridden by name.
                let r = match group.table {
                    0 => systemic_return(s, &book.group_names[g], self.group_params(group)),
                    t => self.systemic_by_table[e][t],
                };
                pnl += net[g].scanned_delta * r;
                pnl += group.option_systemic.get(e).copied().unwrap_or(0.0);
            }
            worst = worst.max(-pnl);
        }
        worst
    }
}
