"""The reference of ``model = "binance_pm"`` (docs/BINANCE.md) and what it shares with
the other models: the test vectors of /work/shared/exchanges/BINANCE_PM.md §5 (TV-n),
bracket tables, loans, classic liquidation prices, the model dispatch, and the
invariants of the reference on generated accounts (tests/strategies_binance.py)."""

from __future__ import annotations

import copy
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pmengine import reference
from pmengine.errors import InvalidInputError, MissingMarketDataError, ProfileError
from pmengine.reference import binance as reference_binance
from pmengine.reference import classic as reference_classic

from .strategies import market as scenario_market
from .strategies import portfolio as scenario_portfolio
from .strategies_binance import account, base_profile
from .test_classic import _solve  # the brute-force bisection the closed forms are checked by

DEFAULT = reference.default_profile()
TIME = "2026-11-24T00:00:00Z"


def binance_profile(**changes) -> reference.Profile:
    """The default profile under binance_pm, with top-level tables replaced."""
    raw = base_profile()
    raw.update(copy.deepcopy(changes))
    return reference.load_profile(raw)


def flat_brackets(mmr: float) -> dict:
    """Every USDⓈ-M and COIN-M symbol on one bracket of rate ``mmr``, cum 0."""
    table = [{"mmr": mmr, "max_leverage": 125}]
    return {"usdm": {"default": table}, "coinm": {"default": table}}


def linear(symbol: str, qty: float, entry: float, **extra) -> dict:
    pos = {"type": "linear", "symbol": symbol, "underlying": symbol[:3], "qty": qty}
    return pos | {"entry_price": entry} | extra


def inverse(symbol: str, contracts: float, entry: float, size: float = 100, **extra) -> dict:
    return {
        "type": "inverse",
        "symbol": symbol,
        "underlying": symbol[:3],
        "contract_size": size,
        "contracts": contracts,
        "entry_price": entry,
    } | extra


# -- the profile ---------------------------------------------------------------------------


def test_profile_model_and_binance_table():
    assert DEFAULT.model == "scenario"
    p = binance_profile()
    assert p.model == "binance_pm" and p.raw["model"] == "binance_pm"
    assert p.binance.loan_leverage == 3
    assert p.binance.loan_mmr == {3.0: 0.10, 5.0: 0.08, 10.0: 0.05}
    p = binance_profile(assets={"USDC": {"group": "USD", "loan_leverage": 10}})
    assert p.loan_leverage == {"USDC": 10.0}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"model": "span"}, "model"),
        ({"binance": None}, "binance"),
        ({"binance": {"loan_leverage": 4, "loan_mmr": {"3": 0.1}}}, "binance.loan_leverage"),
        ({"binance": {"loan_leverage": 3, "loan_mmr": {"1": 0.1}}}, "binance.loan_mmr.1"),
        ({"assets": {"BTC": {"loan_leverage": 7}}}, "assets.BTC.loan_leverage"),
        ({"classic": {"brackets": {}}}, "classic.brackets"),
        ({"brackets": {"usdm": {"X": [{"mmr": 2, "max_leverage": 1}]}}}, "brackets.usdm.X[0].mmr"),
        (
            {"brackets": {"usdm": {"X": [{"mmr": 0.1, "max_leverage": 1}, {"mmr": 0.2}]}}},
            "brackets.usdm.X[0].up_to",
        ),
    ],
)
def test_bad_profile_names_the_key(change: dict, field: str):
    raw = base_profile()
    for k, v in change.items():
        if v is None:
            del raw[k]
        else:
            raw[k] = v
    with pytest.raises(ProfileError) as e:
        reference.load_profile(raw)
    assert e.value.field == field


def test_bracket_lookup_symbol_then_pair_then_default():
    usdm = DEFAULT.brackets["usdm"]
    coinm = DEFAULT.brackets["coinm"]
    assert reference_classic.brackets_for(DEFAULT, "BTCUSDT_250627") is usdm["BTCUSDT"]
    assert reference_classic.brackets_for(DEFAULT, "ETHUSDT") is usdm["ETHUSDT"]
    assert reference_classic.brackets_for(DEFAULT, "SOLUSDT") is usdm["default"]
    assert reference_classic.brackets_for(DEFAULT, "BTCUSD_PERP", "coinm") is coinm["BTCUSD"]
    assert reference_classic.brackets_for(DEFAULT, "ETHUSD_PERP", "coinm") is coinm["default"]
    p = binance_profile(brackets={"usdm": {"BTCUSDT": [{"mmr": 0.01, "max_leverage": 1}]}})
    with pytest.raises(ProfileError, match=r"^brackets\.coinm: no table for BTCUSD_PERP"):
        reference_classic.brackets_for(p, "BTCUSD_PERP", "coinm")


def test_explicit_cum_is_kept_and_drives_the_next_derivation():
    p = binance_profile(
        brackets={
            "usdm": {
                "X": [
                    {"up_to": 50_000, "mmr": 0.004, "max_leverage": 125},
                    {"up_to": 250_000, "mmr": 0.005, "max_leverage": 100, "cum": 60},
                    {"mmr": 0.01, "max_leverage": 50},
                ]
            }
        }
    )
    cums = [b[3] for b in p.brackets["usdm"]["X"]]
    assert cums == pytest.approx([0, 60, 60 + 250_000 * 0.005], rel=1e-15)


# -- the model dispatch --------------------------------------------------------------------

MKT = {
    "time": TIME,
    "prices": {"USDT": 1.0, "USDC": 1.0, "BTC": 60000.0, "ETH": 3000.0, "BNB": 600.0},
}
BOOK = {
    "balances": {"USDT": 20000, "BTC": 0.5},
    "positions": [linear("BTCUSDT", -0.5, 59000), linear("ETHUSDT", 4, 3100)],
}


def test_reference_margin_dispatches_on_the_model():
    scenario = reference.margin(BOOK, MKT, DEFAULT)
    assert "model" not in scenario and scenario["groups"]
    assert scenario == reference.scenario_margin(BOOK, MKT, DEFAULT)
    p = binance_profile()
    binance = reference.margin(BOOK, MKT, p)
    assert binance == reference_binance.margin(BOOK, MKT, p)
    assert binance["model"] == "binance_pm" and binance["groups"] == {}
    assert (binance["scan"], binance["systemic"], binance["offset_credit"]) == (0, 0, 0)
    # The same book: short perp 30,000 at 0.4 %, long ETH 12,000 at 0.4 %.
    assert binance["maintenance_margin"] == pytest.approx(120 + 48, rel=1e-12)
    # The scenario model sees the spot hedging the perp; Binance's formula does not.
    assert scenario["maintenance_margin"] != binance["maintenance_margin"]
    # Same keys as the scenario result, plus the model's own.
    assert set(binance) == set(scenario) | {"model", "positions", "assets"}


# -- TV-1: Binance's worked example -------------------------------------------------------

TV1_PORTFOLIO = {
    # 1,000 USDT margin + 5,000 UM wallet; 0.1 BTC margin + 0.1 CM wallet; 20 ETH margin.
    "balances": {"USDT": 6000, "BTC": 0.2, "ETH": 20},
    "loans": {"BTC": {"borrowed": 0.04, "interest": 0.0}, "ETH": {"borrowed": 15}},
    "positions": [
        linear("BTCUSDT", -0.05, 52000, settle="USDT", leverage=20),
        linear("BTCUSDT_20220624", 0.04, 52350),
        inverse("BTCUSD_PERP", 100, 50000),
    ],
}
TV1_MARKET = {
    "time": "2022-05-01T00:00:00Z",
    "prices": {"USDT": 1.0, "BTC": 40000.0, "ETH": 2500.0},
    "marks": {"BTCUSDT": 40000.0, "BTCUSDT_20220624": 42000.0, "BTCUSD_PERP": 40000.0},
}


def tv1() -> dict:
    # Every bracket 0.5 %, cum 0; margin loans at 3x (loan MMR 10 %).
    p = binance_profile(brackets=flat_brackets(0.005))
    return reference.margin(TV1_PORTFOLIO, TV1_MARKET, p)


def test_tv1_positions():
    r = tv1()
    um_short, um_future, cm_perp = r["positions"]
    # Published: UPnL +600 and −414 USDT. Derived: CM UPnL −0.05 BTC.
    assert um_short["upnl"] == pytest.approx(600, rel=1e-12)
    assert um_future["upnl"] == pytest.approx(-414, rel=1e-12)
    assert cm_perp["upnl"] == pytest.approx(-0.05, rel=1e-12)
    # UM MM 10 and 8.4 USDT on notionals 2,000 and 1,680; CM MM 0.00125 BTC on q = 0.25 BTC.
    assert (um_short["notional"], um_short["maintenance_margin"]) == pytest.approx((2000, 10))
    assert (um_future["notional"], um_future["maintenance_margin"]) == pytest.approx((1680, 8.4))
    assert (cm_perp["notional"], cm_perp["maintenance_margin"]) == pytest.approx((0.25, 0.00125))
    assert [x["asset"] for x in r["positions"]] == ["USDT", "USDT", "BTC"]
    assert [x["bracket"] for x in r["positions"]] == [1, 1, 1]
    assert [x["index"] for x in r["positions"]] == [0, 1, 2]
    # IM at 20x (the first sets it, the others take [classic] default_leverage).
    assert um_short["initial_margin"] == pytest.approx(100)
    assert cm_perp["initial_margin"] == pytest.approx(0.25 / 20)


def test_tv1_assets_and_account():
    r = tv1()
    usdt, btc, eth = (r["assets"][a] for a in ("USDT", "BTC", "ETH"))
    assert list(r["assets"]) == ["USDT", "BTC", "ETH"]
    # Published: loan MM 0.004 BTC and 1.5 ETH.
    assert (btc["loan"], btc["loan_margin"]) == pytest.approx((0.04, 0.004), rel=1e-12)
    assert (eth["loan"], eth["loan_margin"]) == pytest.approx((15, 1.5), rel=1e-12)
    assert usdt["loan"] == 0 and usdt["loan_margin"] == 0
    # Derived: v = USDT 6,186, BTC 0.11, ETH 5; MM per asset USDT 18.4, BTC 0.00525, ETH 1.5.
    assert (usdt["v"], btc["v"], eth["v"]) == pytest.approx((6186, 0.11, 5), rel=1e-12)
    assert usdt["maintenance_margin"] == pytest.approx(18.4, rel=1e-12)
    assert btc["maintenance_margin"] == pytest.approx(0.00525, rel=1e-12)
    assert eth["maintenance_margin"] == pytest.approx(1.5, rel=1e-12)
    # The account at BTC 40,000 and ETH 2,500 (collateral 1, 0.95, 0.95).
    assert r["equity"] == pytest.approx(6186 + 0.11 * 40000 + 5 * 2500, rel=1e-12)
    assert r["adjusted_equity"] == pytest.approx(6186 + 0.95 * (4400 + 12500), rel=1e-12)
    mm = 18.4 + 0.00525 * 40000 + 1.5 * 2500
    assert r["maintenance_margin"] == pytest.approx(mm, rel=1e-12)
    assert r["borrow_margin"] == pytest.approx(0.004 * 40000 + 1.5 * 2500, rel=1e-12)
    assert r["uni_mmr"] == pytest.approx(r["adjusted_equity"] / mm, rel=1e-12)
    # IM: 100 + 84 USDT, 0.0125 BTC, loans 0.04 BTC and 15 ETH at 3x: borrowed / 2.
    im = 100 + 84 + 0.0125 * 40000 + 0.02 * 40000 + 7.5 * 2500
    assert r["initial_margin"] == pytest.approx(im, rel=1e-12)
    assert r["available"] == pytest.approx(r["adjusted_equity"] - im, rel=1e-12)
    assert r["status"] == "NORMAL"


# -- TV-2: uniMMR = account equity / account MM --------------------------------------------


def test_tv2_uni_mmr_of_the_account_sample():
    # accountEquity 122,607.35137903 over accountMaintMargin 23.72469206: a USDT wallet and a
    # bracket-1 (0.4 %) position whose MM is that, entered at its mark (no UPnL).
    n = 23.72469206 / 0.004
    p = {
        "balances": {"USDT": 122607.35137903},
        "positions": [linear("BTCUSDT", n / 60000, 60000)],
    }
    r = reference.margin(p, MKT, binance_profile())
    assert r["maintenance_margin"] == pytest.approx(23.72469206, rel=1e-12)
    assert f"{r['uni_mmr']:.8f}" == "5167.92171923"


# -- TV-3: brackets -----------------------------------------------------------------------

TABLE_2021 = [  # Binance's BTCUSDT table of 2021
    {"up_to": 50_000, "mmr": 0.004, "max_leverage": 125},
    {"up_to": 250_000, "mmr": 0.005, "max_leverage": 100},
    {"up_to": 1_000_000, "mmr": 0.01, "max_leverage": 50},
    {"up_to": 10_000_000, "mmr": 0.025, "max_leverage": 20},
    {"up_to": 20_000_000, "mmr": 0.05, "max_leverage": 10},
    {"up_to": 50_000_000, "mmr": 0.10, "max_leverage": 5},
    {"up_to": 100_000_000, "mmr": 0.125, "max_leverage": 4},
    {"up_to": 200_000_000, "mmr": 0.15, "max_leverage": 3},
    {"up_to": 300_000_000, "mmr": 0.25, "max_leverage": 2},
    {"mmr": 0.50, "max_leverage": 1},
]


@pytest.mark.parametrize(
    ("symbol", "n", "tier", "mm"),
    [
        ("BTCUSDT", 1_000_000, 3, 5_000),
        ("BTCUSDT", 300_000, 1, 1_200),
        ("BTCUSDT_261225", 20_000_000, 5, 268_000),
        ("ETHUSDT", 60_000_000, 6, 1_118_000),
    ],
)
def test_tv3_current_brackets(symbol: str, n: float, tier: int, mm: float):
    table = reference_classic.brackets_for(DEFAULT, symbol)
    k, got = reference_classic.maintenance(table, n)
    assert (k + 1, got) == (tier, pytest.approx(mm, rel=1e-12))
    # Through the model: one position of that notional, in USDT.
    p = {"balances": {"USDT": 1e9}, "positions": [linear(symbol, n / 2000, 2000)]}
    m = {"time": TIME, "prices": {"USDT": 1.0, "BTC": 2000.0, "ETH": 2000.0}}
    row = reference.margin(p, m, binance_profile())["positions"][0]
    assert row["bracket"] == tier
    assert row["maintenance_margin"] == pytest.approx(mm, rel=1e-12)


def test_tv3_edge_of_tier_one_and_two_alike():
    # 300,000 USDT: 0.4 % in tier 1, 0.5 % − 300 in tier 2: 1,200 either way.
    table = reference_classic.brackets_for(DEFAULT, "BTCUSDT")
    assert 300_000 * table[0][1] - table[0][3] == pytest.approx(1200, rel=1e-12)
    assert 300_000 * table[1][1] - table[1][3] == pytest.approx(1200, rel=1e-12)


def test_tv3_published_cums_derived():
    cums = [b[3] for b in DEFAULT.brackets["usdm"]["BTCUSDT"]]
    published = [0, 300, 1_500, 12_000, 132_000, 482_000, 2_982_000, 14_482_000]
    published += [26_482_000, 41_482_000, 121_482_000, 421_482_000]
    assert cums == pytest.approx(published, rel=1e-12)
    eth = [b[3] for b in DEFAULT.brackets["usdm"]["ETHUSDT"]][4:]
    assert eth == pytest.approx(
        [132_000, 382_000, 2_007_000, 9_507_000, 17_507_000, 27_507_000, 80_507_000, 280_507_000],
        rel=1e-12,
    )


def test_tv3_2021_table():
    p = binance_profile(brackets={"usdm": {"BTCUSDT": TABLE_2021}})
    k, cum = reference_classic.bracket(p.brackets["usdm"]["BTCUSDT"], 500_000)
    assert (k + 1, cum) == (3, pytest.approx(1_300, rel=1e-12))
    assert reference_classic.maintenance(p.brackets["usdm"]["BTCUSDT"], 500_000)[1] == (
        pytest.approx(3_700, rel=1e-12)
    )


# -- TV-6 / TV-7: tiered collateral -------------------------------------------------------

TV6 = [(1.0, 300_000), (0.7, 500_000), (0.3, 1_000_000), (0.0, math.inf)]
TV7 = [(1.0, 50_000), (0.8, 100_000), (0.5, 200_000), (0.2, 400_000), (0.1, math.inf)]


@pytest.mark.parametrize(
    ("bands", "usd", "value"),
    [(TV6, 1_200_000, 590_000), (TV7, 300_000, 160_000), (TV7, 1_000_000, 240_000)],
)
def test_tv6_tv7_tiered_collateral(bands, usd: float, value: float):
    assert reference.adjusted_value(usd, bands) == pytest.approx(value, rel=1e-12)
    # Through the model: a BNB balance worth `usd` on those bands; a deficit counts in full.
    rows = [{"rate": r} | ({"up_to": c} if math.isfinite(c) else {}) for r, c in bands]
    p = binance_profile(assets={"BNB": {"group": "BNB", "collateral": rows}})
    r = reference.margin({"balances": {"BNB": usd / 600}}, MKT, p)
    assert r["adjusted_equity"] == pytest.approx(value, rel=1e-12)
    assert r["assets"]["BNB"]["collateral_value"] == pytest.approx(value, rel=1e-12)
    r = reference.margin({"balances": {"BNB": -usd / 600}}, MKT, p)
    assert r["adjusted_equity"] == pytest.approx(-usd, rel=1e-12)


# -- TV-8: a ccxt position's figures --------------------------------------------------------


def test_tv8_position_figures():
    p = binance_profile(
        brackets={
            "usdm": DEFAULT.raw["brackets"]["usdm"],
            "coinm": {"default": [{"mmr": 0.005, "max_leverage": 125}]},
        }
    )
    book = {
        "balances": {"USDT": 1000},
        "positions": [
            linear("BTCUSDT", 0.01, 44525),
            inverse("ETHUSD_PERP", 1, 2422.400000007, size=10),
        ],
    }
    m = copy.deepcopy(MKT)
    m["marks"] = {"BTCUSDT": 46315.48567, "ETHUSD_PERP": 2424.97}
    um, cm = reference.margin(book, m, p)["positions"]
    # Binance writes these figures truncated to 8 decimals (10 for the coin MM).
    assert um["notional"] == pytest.approx(463.1548567, rel=1e-12)
    assert um["upnl"] == pytest.approx(17.9048567, rel=1e-9)
    assert 0 <= um["maintenance_margin"] - 1.85261942 < 1e-8
    assert 0 <= cm["notional"] - 0.00412376 < 1e-8
    assert 0 <= cm["maintenance_margin"] - 0.0000206188 < 1e-10
    assert (um["bracket"], um["mmr"], cm["bracket"], cm["mmr"]) == (1, 0.004, 1, 0.005)


# -- TV-4: USDⓈ-M liquidation prices (classic margin) --------------------------------------

TV4_WALLET = 1_535_443.01
TV4_MARKET = {
    "time": TIME,
    "prices": {"USDT": 1.0, "BTC": 31967.27, "ETH": 1335.18},
    "marks": {"BTCUSDT": 31967.27, "ETHUSDT": 1335.18},
}


def tv4_profile() -> reference.Profile:
    # BTCUSDT on Binance's 2021 table: 3.5M notional in 1M–10M, MMR 2.5 %, cum 16,300
    # derived. ETHUSDT: MMR 10 % with the FAQ's cum 135,365, given explicitly.
    raw = copy.deepcopy(DEFAULT.raw)
    raw["brackets"] = {
        "usdm": {
            "BTCUSDT": TABLE_2021,
            "ETHUSDT": [{"mmr": 0.10, "cum": 135_365, "max_leverage": 10}],
        }
    }
    return reference.load_profile(raw)


def tv4(mode: str, isolated: float | None = None) -> dict:
    extra = {"isolated_margin": isolated} if isolated is not None else {}
    book = {
        "balances": {"USDT": TV4_WALLET},
        "positions": [
            linear("BTCUSDT", 109.488, 32481.98, **extra),
            linear("ETHUSDT", 3683.979, 1456.84, **extra),
        ],
    }
    return reference_classic.classic(book, TV4_MARKET, tv4_profile(), mode)


def test_tv4_brackets_at_the_marks():
    btc, eth = tv4("cross")["positions"]
    assert (btc["mmr"], btc["cum"]) == (0.025, pytest.approx(16_300, rel=1e-12))
    assert (eth["mmr"], eth["cum"]) == (0.10, 135_365)


def test_tv4_cross_liquidation_prices():
    # Cross: the wallet less the other position's MM, plus its UPnL, backs each position.
    btc, eth = tv4("cross")["positions"]
    assert round(eth["liquidation_price"], 2) == 1153.26
    assert round(btc["liquidation_price"], 2) == 26316.89


def test_tv4_isolated_liquidation_prices():
    # Isolated: Binance's example puts the whole wallet behind each position.
    btc, eth = tv4("as_given", isolated=TV4_WALLET)["positions"]
    assert btc["wallet"] == eth["wallet"] == "isolated"
    assert round(eth["liquidation_price"], 2) == 1114.78
    assert round(btc["liquidation_price"], 2) == 18778.73


@pytest.mark.parametrize("qty", [8.0, -8.0, 300.0, -300.0])
@pytest.mark.parametrize("isolated", [True, False])
def test_linear_liquidation_prices_in_a_margin_asset_off_one_dollar(qty: float, isolated: bool):
    # A USDC-margined contract (USDC at 0.98): brackets on the notional in USDC, the
    # liquidation price where the cushion (USD) is zero, across brackets.
    margin = 0.08 * abs(qty) * 60000  # USDC
    extra = {"isolated_margin": margin} if isolated else {}
    book = {
        "balances": {"USDC": margin if not isolated else 1.0},
        "positions": [linear("BTCUSDC", qty, 60000, settle="USDC", **extra)],
    }

    def at(mark: float) -> dict:
        m = {"USDC": 0.98, "BTC": 60000 * 0.98}
        return {"time": TIME, "prices": m, "marks": {"BTCUSDC": mark}}

    liq = reference_classic.classic(book, at(60000), DEFAULT, "as_given")["positions"][0]
    liq = liq["liquidation_price"]

    def cushion(mark: float) -> float:
        r = reference_classic.classic(book, at(mark), DEFAULT, "as_given")
        if isolated:
            pos = r["positions"][0]
            return margin * 0.98 + pos["upnl"] - pos["maintenance_margin"]
        return r["usdm"]["margin_balance"] - r["usdm"]["maintenance_margin"]

    assert abs(cushion(liq)) <= 1e-7 * abs(qty) * 60000
    assert liq == pytest.approx(_solve(cushion, 60000, liq + (liq - 60000)), rel=1e-9)
    assert cushion(60000 + 0.999 * (liq - 60000)) > 0


# -- COIN-M classic: bracketed on the coin quantity ----------------------------------------


def coinm_book(contracts: float, btc: float, **extra) -> dict:
    return {
        "balances": {"BTC": btc},
        "positions": [inverse("BTCUSD_PERP", contracts, 45000, **extra)],
    }


def at_mark(mark: float) -> dict:
    # The coin's index moves with the mark.
    return {"time": TIME, "prices": {"BTC": mark}, "marks": {"BTCUSD_PERP": mark}}


def test_coinm_calculator_case():
    # Binance's calculator: a cross long of 100,000 BTCUSD contracts (100 USD) entered at
    # 45,000 on a 101 BTC wallet liquidates at 33,599.40. At the liquidation price the
    # position is 297.6 BTC: tier 7 of BTCUSD (200–400 BTC, 12.5 %, cum 11.605 BTC), and
    # 101 + 1e7/45,000 − 1e7/M = 1e7/M · 12.5 % − 11.605 gives M = 1.125e7 / 334.827…
    r = reference_classic.classic(coinm_book(100_000, 101), at_mark(45000), DEFAULT, "cross")
    pos = r["positions"][0]
    liq = pos["liquidation_price"]
    assert liq == pytest.approx(1.125e7 / (101 + 1e7 / 45000 + 11.605), rel=1e-12)
    # 33,599.4186: the calculator shows it at the contract's 0.1 USD tick.
    assert round(liq, 1) == 33599.4
    # The old reading (MM fixed in USD as the coin moves) gave 33,190.09.
    assert abs(liq - 33190.09) > 400
    # At the mark: 222.2 BTC in tier 7, MM = q·12.5 % − 11.605 BTC, in USD.
    q = 1e7 / 45000
    assert (pos["mmr"], pos["cum"]) == (0.125, pytest.approx(11.605 * 45000, rel=1e-12))
    assert pos["maintenance_margin"] == pytest.approx((q * 0.125 - 11.605) * 45000, rel=1e-12)
    assert pos["notional"] == pytest.approx(1e7, rel=1e-12)
    # At the liquidation price the wallet's margin balance meets its MM.
    w = reference_classic.classic(coinm_book(100_000, 101), at_mark(liq), DEFAULT, "cross")
    w = w["coinm"][0]
    assert w["margin_balance"] == pytest.approx(w["maintenance_margin"], rel=1e-9)


@pytest.mark.parametrize("contracts", [600.0, -600.0, 60_000.0, -60_000.0, 200_000.0])
@pytest.mark.parametrize("isolated", [True, False])
def test_coinm_liquidation_prices_by_brute_force(contracts: float, isolated: bool):
    # Positions across COIN-M brackets (1.3 BTC to 4,400 BTC); the cushion in coin is zero
    # at the liquidation price and the liquidation price is its only root.
    coin = 0.4 * abs(contracts) * 100 / 45000  # 40 % of the position, in BTC
    extra = {"isolated_margin": coin} if isolated else {}
    book = coinm_book(contracts, coin if not isolated else 1.0, **extra)
    liq = reference_classic.classic(book, at_mark(45000), DEFAULT, "as_given")["positions"][0]
    liq = liq["liquidation_price"]
    assert liq is not None

    def cushion(mark: float) -> float:
        r = reference_classic.classic(book, at_mark(mark), DEFAULT, "as_given")
        if isolated:
            pos = r["positions"][0]
            return coin * mark + pos["upnl"] - pos["maintenance_margin"]
        return r["coinm"][0]["margin_balance"] - r["coinm"][0]["maintenance_margin"]

    assert abs(cushion(liq)) <= 1e-7 * abs(contracts) * 100
    assert liq == pytest.approx(_solve(cushion, 45000, liq + (liq - 45000)), rel=1e-9)
    assert cushion(45000 + 0.999 * (liq - 45000)) > 0


def test_coinm_cross_wallet_counts_the_other_positions_mm_in_coin():
    # Two BTC inverse contracts in one wallet: the moving one's liquidation price nets the
    # other's MM (coin, fixed: its mark does not move) from the cushion.
    book = {
        "balances": {"BTC": 30.0},
        "positions": [
            inverse("BTCUSD_PERP", 40_000, 45000),
            inverse("BTCUSD_261225", 20_000, 46000),
        ],
    }
    m = {"time": TIME, "prices": {"BTC": 45000}, "marks": {"BTCUSD_261225": 46000}}
    r = reference_classic.classic(book, m, DEFAULT, "cross")
    perp, future = r["positions"]
    other_mm = future["maintenance_margin"] / 45000
    _, mmr, _, cum = reference_classic.brackets_for(DEFAULT, "BTCUSD_PERP", "coinm")[5]
    w = 30.0 - other_mm  # the future is at its entry: no UPnL
    assert perp["liquidation_price"] == pytest.approx(
        4e6 * (1 + mmr) / (w + 4e6 / 45000 + cum), rel=1e-12
    )


# -- loans --------------------------------------------------------------------------------


@st.composite
def with_loans(draw):
    """A scenario portfolio with margin loans, and the same account written with negative
    balances instead."""
    p = draw(scenario_portfolio(max_positions=4))
    loans = {}
    for a in draw(st.lists(st.sampled_from(["BTC", "ETH", "USDT", "USDC", "SOL"]), unique=True)):
        loan = {"borrowed": draw(st.floats(0, 50)) * 1000 / scenario_market()["prices"][a]}
        if draw(st.booleans()):
            loan["interest"] = loan["borrowed"] * draw(st.floats(0, 0.01))
        loans[a] = loan
    p["loans"] = loans
    balances = dict(p["balances"])
    for a, loan in loans.items():
        balances[a] = balances.get(a, 0.0) - (loan["borrowed"] + loan.get("interest", 0.0))
    return p, {"balances": balances, "positions": p["positions"]}


@settings(max_examples=150, deadline=None)
@given(pair=with_loans())
def test_a_loan_table_is_a_negative_balance(pair):
    with_table, with_negative = pair
    m = scenario_market()
    assert reference.margin(with_table, m, DEFAULT) == reference.margin(with_negative, m, DEFAULT)
    got = reference_classic.classic(with_table, m, DEFAULT, "cross")
    assert got == reference_classic.classic(with_negative, m, DEFAULT, "cross")


def test_existing_portfolios_do_not_change():
    # No loans table, an empty one: the same figures.
    p = {"balances": {"BTC": 1, "USDT": -48000}}
    m = scenario_market()
    assert reference.margin(p, m, DEFAULT) == reference.margin({**p, "loans": {}}, m, DEFAULT)


@pytest.mark.parametrize(
    ("loans", "field"),
    [
        ({"BTC": {"borrowed": -1}}, "loans.BTC.borrowed"),
        ({"BTC": {"borrowed": math.nan}}, "loans.BTC.borrowed"),
        ({"BTC": {"borrowed": math.inf}}, "loans.BTC.borrowed"),
        ({"BTC": {"borrowed": 1, "interest": -0.1}}, "loans.BTC.interest"),
        ({"BTC": {"interest": 0.1}}, "loans.BTC.borrowed"),
        ({"BTC": {"borrowed": 1, "rate": 0.1}}, "loans.BTC.rate"),
        ({"BTC": 1}, "loans.BTC"),
    ],
)
@pytest.mark.parametrize("model", ["scenario", "binance_pm"])
def test_bad_loans_name_the_field(loans: dict, field: str, model: str):
    p = DEFAULT if model == "scenario" else binance_profile()
    with pytest.raises(InvalidInputError) as e:
        reference.margin({"balances": {"USDT": 1000}, "loans": loans}, MKT, p)
    assert e.value.field == field


def test_loan_without_price():
    for p in (DEFAULT, binance_profile()):
        with pytest.raises(MissingMarketDataError, match=r"^loans\.PEPE: no price for PEPE"):
            reference.margin({"loans": {"PEPE": {"borrowed": 1}}}, MKT, p)


@pytest.mark.parametrize(("leverage", "rate"), [(3, 0.10), (5, 0.08), (10, 0.05)])
def test_loan_mmr_and_im_by_leverage(leverage: int, rate: float):
    # 2 BTC held, 1 borrowed with 0.01 interest; 500 USDT owed as a negative balance.
    p = binance_profile(
        assets={
            "BTC": DEFAULT.raw["assets"]["BTC"] | {"loan_leverage": leverage},
            "USDT": DEFAULT.raw["assets"]["USDT"],
        }
    )
    book = {
        "balances": {"BTC": 2, "USDT": -500},
        "loans": {"BTC": {"borrowed": 1, "interest": 0.01}},
    }
    r = reference.margin(book, MKT, p)
    btc, usdt = r["assets"]["BTC"], r["assets"]["USDT"]
    # L = borrowed + interest; its MM at the asset's leverage; USDT at [binance]'s 3x.
    assert (btc["loan"], btc["loan_margin"]) == pytest.approx((1.01, 1.01 * rate), rel=1e-12)
    assert (usdt["loan"], usdt["loan_margin"]) == pytest.approx((500, 50), rel=1e-12)
    assert r["borrow_margin"] == pytest.approx(1.01 * rate * 60000 + 50, rel=1e-12)
    assert r["maintenance_margin"] == pytest.approx(r["borrow_margin"], rel=1e-12)
    # IM: borrowed (not the interest) / (λ − 1), and the negative balance at 3x.
    im = 1 / (leverage - 1) * 60000 + 500 / 2
    assert r["initial_margin"] == pytest.approx(im, rel=1e-12)
    # Equity nets the loan: 0.99 BTC and −500 USDT.
    assert r["equity"] == pytest.approx(0.99 * 60000 - 500, rel=1e-12)


def test_a_loan_larger_than_the_wallet_counts_once():
    # Borrowed 1 BTC, but the wallet holds −0.5 BTC besides: L = max(1, 1.5) = 1.5.
    r = reference.margin(
        {"balances": {"BTC": -0.5}, "loans": {"BTC": {"borrowed": 1}}}, MKT, binance_profile()
    )
    assert r["assets"]["BTC"]["loan"] == pytest.approx(1.5)
    assert r["assets"]["BTC"]["v"] == pytest.approx(-1.5)


# -- the model's other rules -------------------------------------------------------------


def test_hedge_mode_rows_are_not_netted():
    # LONG 10 and SHORT 10 BTCUSDT: each pays its own bracket MM on 600,000 USDT (tier 2).
    rows = [linear("BTCUSDT", 10, 60000), linear("BTCUSDT", -10, 60000)]
    r = reference.margin({"balances": {"USDT": 1e6}, "positions": rows}, MKT, binance_profile())
    assert [x["bracket"] for x in r["positions"]] == [2, 2]
    assert r["maintenance_margin"] == pytest.approx(2 * (600_000 * 0.005 - 300), rel=1e-12)


def test_spot_hedge_helps_only_through_equity():
    # Long 1 BTC spot, short 1 BTC perp: the perp still pays its bracket MM.
    book = {"balances": {"BTC": 1}, "positions": [linear("BTCUSDT", -1, 60000)]}
    r = reference.margin(book, MKT, binance_profile())
    assert r["maintenance_margin"] == pytest.approx(240, rel=1e-12)
    assert r["adjusted_equity"] == pytest.approx(0.95 * 60000, rel=1e-12)


def test_an_exported_cum_that_overshoots_floors_mm_at_zero():
    # A table whose given cum exceeds N·mmr at small notionals: MM is max(0, N·mmr − cum).
    table = [{"mmr": 0.025, "cum": 16_300, "max_leverage": 20}]
    p = binance_profile(brackets={"usdm": {"default": table}, "coinm": {"default": table}})
    book = {"balances": {"USDT": 1e6}, "positions": [linear("BTCUSDT", 1, 60000)]}
    r = reference.margin(book, MKT, p)
    assert r["positions"][0]["maintenance_margin"] == 0 and r["maintenance_margin"] == 0
    pos = reference_classic.classic(book, MKT, p, "cross")["positions"][0]
    assert pos["maintenance_margin"] == 0


def test_option_is_refused():
    opt = {
        "type": "option",
        "symbol": "BTC-261225-70000-C",
        "underlying": "BTC",
        "kind": "call",
        "strike": 70000,
        "expiry": "2026-12-25T08:00:00Z",
        "qty": -1,
    }
    book = {"balances": {"USDT": 1000}, "positions": [linear("BTCUSDT", 1, 60000), opt]}
    with pytest.raises(InvalidInputError) as e:
        reference.margin(book, MKT, binance_profile())
    assert e.value.field == "positions[1].type"


def test_missing_prices():
    p = binance_profile()
    with pytest.raises(MissingMarketDataError, match=r"^balances\.PEPE: no price"):
        reference.margin({"balances": {"PEPE": 1}}, MKT, p)
    with pytest.raises(MissingMarketDataError, match=r"^positions\[0\]\.underlying: no price"):
        reference.margin({"positions": [linear("SOLUSDT", 1, 150)]}, MKT, p)
    with pytest.raises(MissingMarketDataError, match=r"^positions\[0\]\.settle: no price"):
        reference.margin({"positions": [linear("BTCUSDT", 1, 6e4, settle="DAI")]}, MKT, p)


def test_asset_without_bands():
    m = copy.deepcopy(MKT)
    m["prices"]["DOGE"] = 0.2
    p = binance_profile()
    with pytest.raises(ProfileError) as e:
        reference.margin({"balances": {"USDT": 100, "DOGE": 1000}}, m, p)
    assert e.value.field == "assets.DOGE.collateral"
    raw = base_profile()
    raw["binance"]["default_collateral_rate"] = 0.1
    r = reference.margin({"balances": {"USDT": 100, "DOGE": 1000}}, m, reference.load_profile(raw))
    assert r["adjusted_equity"] == pytest.approx(100 + 0.1 * 200, rel=1e-12)


def test_empty_account_and_dust():
    p = binance_profile()
    r = reference.margin({"balances": {"USDT": 5}}, MKT, p)
    assert r["maintenance_margin"] == 0 and r["uni_mmr"] is None and r["status"] == "NORMAL"
    # A position whose MM is below 1e-9 USD is dust.
    tiny = {"balances": {"USDT": 5}, "positions": [linear("BTCUSDT", 1e-14, 60000)]}
    r = reference.margin(tiny, MKT, p)
    assert r["positions"][0]["maintenance_margin"] > 0 and r["maintenance_margin"] == 0


def test_bankrupt_and_ladder():
    p = binance_profile()
    # Equity < 0: BANKRUPT, uniMMR negative.
    book = {"balances": {"USDT": 1000}, "positions": [linear("BTCUSDT", 1, 62000)]}
    r = reference.margin(book, MKT, p)
    assert r["equity"] == pytest.approx(-1000) and r["status"] == "BANKRUPT"
    # Equity exactly 0 on a negative wallet: BANKRUPT too; with no MM uniMMR is −inf (null).
    r = reference.margin({"balances": {"BTC": 0.5, "USDT": -30000}}, MKT, p)
    assert r["equity"] == 0 and r["status"] == "BANKRUPT"
    # Binance's ladder on uniMMR: 240 MM on 1.3 × 240 of equity is MARGIN_CALL.
    book = {"balances": {"USDT": 1.3 * 240}, "positions": [linear("BTCUSDT", 1, 60000)]}
    r = reference.margin(book, MKT, p)
    assert r["uni_mmr"] == pytest.approx(1.3) and r["status"] == "MARGIN_CALL"


def test_assets_in_first_touch_order():
    book = {
        "balances": {"ETH": 1},
        "loans": {"USDC": {"borrowed": 10}},
        "positions": [linear("BNBUSDT", 1, 600), inverse("BTCUSD_PERP", 1, 60000)],
    }
    r = reference.margin(book, MKT, binance_profile())
    assert list(r["assets"]) == ["ETH", "USDC", "BNB", "USDT", "BTC"]


# -- invariants on generated accounts ------------------------------------------------------


@settings(max_examples=400, deadline=None)
@given(acc=account())
def test_reference_invariants(acc):
    portfolio, market, raw = acc
    p = reference.load_profile(raw)
    r = reference.margin(portfolio, market, p)
    assert r == reference_binance.margin(portfolio, market, p)
    prices = market["prices"]
    mm = r["maintenance_margin"]
    for k in ("equity", "adjusted_equity", "maintenance_margin", "initial_margin", "available"):
        assert math.isfinite(r[k]), k
    assert mm >= 0 and r["initial_margin"] >= 0 and r["borrow_margin"] >= 0
    if mm > 0:
        assert r["uni_mmr"] == r["adjusted_equity"] / mm
    else:
        assert r["uni_mmr"] is None
    # Positions: one row each, MM = max(0, size·mmr − cum).
    assert [x["index"] for x in r["positions"]] == list(range(len(portfolio["positions"])))
    for row in r["positions"]:
        assert all(math.isfinite(row[k]) for k in row if k not in ("symbol", "asset"))
        assert row["notional"] >= 0 and row["maintenance_margin"] >= 0
        assert row["maintenance_margin"] == max(0.0, row["notional"] * row["mmr"] - row["cum"])
    # Assets: they add up to the account.
    assets = r["assets"]
    usd = lambda key: sum(x[key] * prices[a] for a, x in assets.items())  # noqa: E731
    scale = 1 + sum(abs(x["maintenance_margin"]) * prices[a] for a, x in assets.items())
    assert abs(usd("maintenance_margin") - mm) <= max(1e-9 * scale, reference.MM_DUST)
    assert usd("loan_margin") == pytest.approx(r["borrow_margin"], rel=1e-12, abs=1e-12)
    assert sum(x["equity"] for x in assets.values()) == pytest.approx(
        r["equity"], rel=1e-9, abs=1e-6
    )
    assert sum(x["collateral_value"] for x in assets.values()) == r["adjusted_equity"]
    for x in assets.values():
        assert all(math.isfinite(v) for v in x.values())
        assert x["maintenance_margin"] >= 0 and x["loan"] >= 0 and x["loan_margin"] >= 0
        assert x["collateral_value"] <= x["equity"] + 1e-9 * abs(x["equity"])
    # Status: BANKRUPT exactly when the actual equity is negative (or zero on a debt).
    if r["equity"] < 0:
        assert r["status"] == "BANKRUPT"
    elif r["equity"] > 0:
        assert r["status"] in [name for name, _ in p.status]
