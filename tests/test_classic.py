"""Classic margin (METHODOLOGY.md §5): brackets, wallets, liquidation prices.

Hand cases pin the formulas, a brute-force solve checks every liquidation
price, and hypothesis checks the engine against the reference."""

from __future__ import annotations

import copy
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pmengine as pm
from pmengine import reference
from pmengine.reference import classic as reference_classic
from pmengine.testing import assert_close

from .conftest import EXAMPLES
from .strategies import market, portfolio

ENGINE = pm.Engine()
PROFILE = reference.default_profile()
BRACKETS = reference_classic.brackets_for(PROFILE, "BTCUSDT")
MKT = {
    "time": "2026-11-24T00:00:00Z",
    "prices": {"BTC": 60000.0, "ETH": 3000.0, "USDT": 1.0, "USDC": 1.0},
}


def classic(p: dict, m: dict = MKT, mode: str = "as_given") -> dict:
    return ENGINE.classic(pm.Portfolio.from_dict(p), pm.Market.from_dict(m), mode).to_dict()


def with_mark(m: dict, symbol: str, mark: float, index: tuple[str, float] | None = None) -> dict:
    m = copy.deepcopy(m)
    m.setdefault("marks", {})[symbol] = mark
    if index:
        m["prices"][index[0]] = index[1]
    return m


# -- brackets ----------------------------------------------------------------------------


@pytest.mark.parametrize("cap", [b[0] for b in BRACKETS[:-1]])
def test_mm_is_continuous_at_every_cap(cap: float) -> None:
    def mm(notional: float) -> float:
        k, cum = reference_classic.bracket(BRACKETS, notional)
        return notional * BRACKETS[k][1] - cum

    below, above = mm(cap * (1 - 1e-12)), mm(cap * (1 + 1e-12))
    assert abs(below - above) <= 1e-6 * below
    # The engine's MM on each side of the cap, through a one-position account.
    for notional in (cap * (1 - 1e-9), cap * (1 + 1e-9)):
        r = classic({"balances": {"USDT": 1e8}, "positions": [_linear(notional / 60000, 60000)]})
        assert r["positions"][0]["maintenance_margin"] == pytest.approx(mm(notional), rel=1e-9)


def test_bracket_cums_by_hand() -> None:
    # 0; 300k·(0.5 − 0.4) % = 300; + 800k·0.15 % = 1,500; + 3M·0.35 % = 12,000; ...
    cums = [reference_classic.bracket(BRACKETS, n)[1] for n in (1, 5e5, 1e6, 5e6, 2e7, 1e8)]
    assert cums == pytest.approx([0, 300, 1500, 12000, 132000, 482000], rel=1e-12)


def _linear(qty: float, entry: float, **extra: float) -> dict:
    return {
        "type": "linear",
        "symbol": "BTCUSDT",
        "underlying": "BTC",
        "qty": qty,
        "entry_price": entry,
        **extra,
    }


def _inverse(contracts: float, entry: float, **extra: float) -> dict:
    return {
        "type": "inverse",
        "symbol": "BTCUSD_PERP",
        "underlying": "BTC",
        "contract_size": 100,
        "contracts": contracts,
        "entry_price": entry,
        **extra,
    }


# -- wallets by hand ---------------------------------------------------------------------


def test_cross_wallet_by_hand() -> None:
    # Long 1 BTC at 59,000, mark 60,000: UPnL 1,000; notional 60,000; MM 240; IM at 20x 3,000.
    r = classic({"balances": {"USDT": 2000, "BTC": 0.5}, "positions": [_linear(1, 59000)]})
    w = r["usdm"]
    assert (w["balance"], w["upnl"], w["maintenance_margin"], w["initial_margin"]) == (
        2000,
        1000,
        240,
        3000,
    )
    assert w["margin_ratio"] == pytest.approx(240 / 3000)
    assert w["available"] == pytest.approx(0)
    # The BTC balance is spot: in the cross margin account, not in the futures wallet.
    assert r["cross_margin"]["assets"] == 30000 and r["cross_margin"]["margin_level"] is None
    assert r["equity"] == pytest.approx(2000 + 30000 + 1000)


def test_isolated_position_by_hand() -> None:
    p = {
        "balances": {"USDT": 5000},
        "positions": [_linear(-1, 60000, isolated_margin=1000, leverage=50)],
    }
    r = classic(p, with_mark(MKT, "BTCUSDT", 60500))
    pos = r["positions"][0]
    assert pos["wallet"] == "isolated" and pos["isolated_margin"] == 1000
    assert pos["upnl"] == pytest.approx(-500)
    assert pos["maintenance_margin"] == pytest.approx(60500 * 0.004)
    assert pos["initial_margin"] == pytest.approx(60500 / 50)
    assert pos["margin_ratio"] == pytest.approx(242 / 500) and pos["status"] == "NORMAL"
    # Short: 1000 − (M − 60000) = 0.004·M.
    assert pos["liquidation_price"] == pytest.approx(61000 / 1.004, rel=1e-12)
    # The isolated margin came out of the futures wallet.
    assert r["usdm"]["balance"] == 4000


def test_cross_margin_loans() -> None:
    # 2 BTC against a 100k USDT loan: level 1.2, below the 1.3 call and above 1.1.
    r = classic({"balances": {"BTC": 2, "USDT": -100000}, "positions": []})
    cm = r["cross_margin"]
    assert cm["margin_level"] == pytest.approx(1.2) and cm["status"] == "MARGIN_CALL"
    assert r["maintenance_margin"] == pytest.approx(0.1 * 100000)
    assert r["status"] == "MARGIN_CALL"


# -- liquidation prices, checked by brute force -------------------------------------------


def _solve(f, lo: float, hi: float) -> float:
    """Bisection on a sign change of f (the brute force the closed forms are checked by)."""
    flo = f(lo)
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if (f(mid) > 0) == (flo > 0):
            lo, flo = mid, f(mid)
        else:
            hi = mid
    return 0.5 * (lo + hi)


@pytest.mark.parametrize("qty", [3.0, -3.0, 40.0, -40.0])
@pytest.mark.parametrize("isolated", [True, False])
def test_linear_liquidation_prices(qty: float, isolated: bool) -> None:
    margin = 3000.0 * abs(qty)  # 5 % of the notional
    extra = {"isolated_margin": margin, "leverage": 20} if isolated else {}
    p = {
        "balances": {"USDT": 30000, "ETH": 10},
        "positions": [_linear(qty, 60000, **extra), _eth()],
    }
    liq = classic(p)["positions"][0]["liquidation_price"]
    assert liq is not None

    def cushion(mark: float) -> float:
        r = classic(p, with_mark(MKT, "BTCUSDT", mark))
        if isolated:
            pos = r["positions"][0]
            return margin + pos["upnl"] - pos["maintenance_margin"]
        return r["usdm"]["margin_balance"] - r["usdm"]["maintenance_margin"]

    assert abs(cushion(liq)) <= 1e-6 * 60000 * abs(qty)
    brute = _solve(cushion, 60000, liq + (liq - 60000))
    assert liq == pytest.approx(brute, rel=1e-9)
    # Just inside (between the mark and the liquidation price) the position survives.
    inside = 60000 + 0.999 * (liq - 60000)
    assert cushion(inside) > 0


def _eth() -> dict:
    return {
        "type": "linear",
        "symbol": "ETHUSDT",
        "underlying": "ETH",
        "qty": -5,
        "entry_price": 3100,
    }


@pytest.mark.parametrize("contracts", [600.0, -600.0, 6000.0])
@pytest.mark.parametrize("isolated", [True, False])
def test_inverse_liquidation_prices(contracts: float, isolated: bool) -> None:
    margin = 0.2 * abs(contracts) / 600  # about 20 % of the notional, in BTC
    extra = {"isolated_margin": margin} if isolated else {}
    coin = 0.3 * abs(contracts) / 600 if not isolated else 1.0
    p = {
        "balances": {"BTC": coin, "USDT": 1000},
        "positions": [_inverse(contracts, 61000, **extra)],
    }
    liq = classic(p)["positions"][0]["liquidation_price"]
    assert liq is not None

    def cushion(mark: float) -> float:
        # The coin's index moves with the mark (no basis in MKT).
        r = classic(p, with_mark(MKT, "BTCUSD_PERP", mark, ("BTC", mark)))
        if isolated:
            pos = r["positions"][0]
            return margin * mark + pos["upnl"] - pos["maintenance_margin"]
        w = r["coinm"][0]
        return w["margin_balance"] - w["maintenance_margin"]

    assert abs(cushion(liq)) <= 1e-6 * abs(contracts) * 100
    inside = 60000 + 0.999 * (liq - 60000)
    assert cushion(inside) > 0


def test_coin_margined_short_hedged_by_its_coin_has_no_liquidation_price() -> None:
    # 1 BTC against −600 contracts of 100 USD at 60,000: a 1x short, flat in USD.
    p = {"balances": {"BTC": 1.0}, "positions": [_inverse(-600, 60000)]}
    assert classic(p)["positions"][0]["liquidation_price"] is None


# -- errors ------------------------------------------------------------------------------


def test_bad_input_names_the_field() -> None:
    p = {"balances": {"USDT": 1000}, "positions": [_linear(1, 60000, leverage=151)]}
    with pytest.raises(
        pm.InvalidInputError, match=r"positions\[0\]\.leverage: above the bracket's maximum 150x"
    ):
        classic(p)
    with pytest.raises(
        pm.InvalidInputError, match=r"positions\[0\]\.isolated_margin: must be > 0, got 0"
    ):
        classic({"balances": {}, "positions": [_linear(1, 60000, isolated_margin=0)]})
    with pytest.raises(
        pm.InvalidInputError, match=r'^mode: must be "as_given", "cross" or "isolated"'
    ):
        classic({"balances": {}, "positions": []}, mode="spot")
    with pytest.raises(pm.MissingMarketDataError, match=r"positions\[0\]\.underlying"):
        classic({"balances": {}, "positions": [{**_linear(1, 60000), "underlying": "PEPE"}]})
    # The reference raises the same.
    with pytest.raises(pm.InvalidInputError, match=r"positions\[0\]\.leverage"):
        reference_classic.classic(p, MKT, PROFILE)


# -- engine == reference -----------------------------------------------------------------


def _normalise(d):
    """The reference writes infinite ratios as inf, the engine's dict as None."""
    if isinstance(d, dict):
        return {k: _normalise(v) for k, v in d.items()}
    if isinstance(d, list):
        return [_normalise(v) for v in d]
    if isinstance(d, float) and math.isinf(d):
        return None
    return d


@st.composite
def classic_portfolio(draw):
    p = draw(portfolio(max_positions=6))
    for pos in p["positions"]:
        if pos["type"] != "option" and draw(st.booleans()):
            unit = 1.0 if pos["type"] == "linear" else 1e-3
            pos["isolated_margin"] = draw(st.floats(min_value=1, max_value=5000)) * unit
    return p


@settings(max_examples=300, deadline=None)
@given(p=classic_portfolio(), mode=st.sampled_from(["as_given", "cross", "isolated"]))
def test_engine_equals_reference(p: dict, mode: str) -> None:
    m = market()
    try:
        want = reference_classic.classic(p, m, PROFILE, mode)
    except pm.PmError as e:
        with pytest.raises(type(e)):
            classic(p, m, mode)
        return
    got = classic(p, m, mode)
    assert_close(_normalise(got), _normalise(want), rel=1e-9)


# -- portfolio margin against classic ------------------------------------------------------

HEDGED = ("cash_and_carry", "coin_margined_hedge", "covered_call", "short_straddle")


@pytest.mark.parametrize("name", HEDGED)
def test_hedged_books_need_less_margin_under_portfolio_margin(name: str, capsys) -> None:
    m = pm.Market.from_json((EXAMPLES / "market.json").read_text())
    p = pm.Portfolio.from_json((EXAMPLES / f"{name}.json").read_text())
    pm_im = ENGINE.margin(p, m).initial_margin
    classic_im = ENGINE.classic(p, m, "cross").initial_margin
    with capsys.disabled():
        print(
            f"\n  {name}: initial margin classic {classic_im:,.0f} USD, portfolio {pm_im:,.0f} USD"
            f" ({classic_im / pm_im:.1f}x)"
        )
    assert pm_im < classic_im
    if name in ("cash_and_carry", "coin_margined_hedge"):
        assert pm_im < 0.5 * classic_im  # markedly: the hedge is recognised
