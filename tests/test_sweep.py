"""Engine.sweep: row k is engine.margin on the market pmengine.risk.moved_market
gives, bit for bit, under both margin models and at any thread count."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pmengine as pm
from pmengine import risk
from pmengine.errors import InvalidInputError, MissingMarketDataError

from . import strategies, strategies_binance

ENGINE = pm.Engine()
FIELDS = (
    "equity",
    "adjusted_equity",
    "maintenance_margin",
    "initial_margin",
    "available",
    "uni_mmr",
)


def check_rows(engine, portfolio, market, assets, moves, vol_shifts, out) -> None:
    names = out["status_names"]
    for k in range(moves.shape[0]):
        factors = {a: 1.0 + moves[k, j] for j, a in enumerate(assets)}
        vf = 1.0 if vol_shifts is None else 1.0 + vol_shifts[k]
        want = engine.margin(portfolio, risk.moved_market(market, portfolio, factors, vf))
        for f in FIELDS:
            got = float(out[f][k])
            # Bit for bit (an infinite uniMMR included).
            assert got == getattr(want, f) or (np.isnan(got) and np.isnan(getattr(want, f))), (
                k,
                f,
                got,
                getattr(want, f),
            )
        assert names[out["status"][k]] == want.status


returns = st.floats(min_value=-0.6, max_value=0.6, allow_nan=False)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    p=strategies.portfolio(max_positions=6),
    marks=strategies.marks(),
    data=st.data(),
)
def test_rows_are_margin_on_the_moved_market(p, marks, data):
    portfolio = pm.Portfolio.from_dict(p)
    market = pm.Market.from_dict(strategies.market(marks))
    assets = data.draw(
        st.lists(st.sampled_from(sorted(strategies.PRICES)), min_size=1, unique=True)
    )
    n = data.draw(st.integers(1, 6))
    moves = np.array(
        data.draw(
            st.lists(
                st.lists(returns, min_size=len(assets), max_size=len(assets)),
                min_size=n,
                max_size=n,
            )
        )
    )
    vols = data.draw(st.none() | st.lists(st.floats(-0.5, 1.0), min_size=n, max_size=n))
    vol_shifts = None if vols is None else np.array(vols)
    out = ENGINE.sweep(portfolio, market, moves, assets, vol_shifts=vol_shifts, threads=1)
    check_rows(ENGINE, portfolio, market, assets, moves, vol_shifts, out)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(acct=strategies_binance.account(), data=st.data())
def test_rows_are_margin_on_the_moved_market_binance_pm(acct, data):
    p, m, profile = acct
    engine = pm.Engine(pm.RiskParams.from_dict(profile))
    portfolio, market = pm.Portfolio.from_dict(p), pm.Market.from_dict(m)
    assets = data.draw(st.lists(st.sampled_from(sorted(m["prices"])), min_size=1, unique=True))
    n = data.draw(st.integers(1, 6))
    moves = np.array(
        data.draw(
            st.lists(
                st.lists(returns, min_size=len(assets), max_size=len(assets)),
                min_size=n,
                max_size=n,
            )
        )
    )
    out = engine.sweep(portfolio, market, moves, assets)
    check_rows(engine, portfolio, market, assets, moves, None, out)


def example(name: str) -> pm.Portfolio:
    from .conftest import EXAMPLES

    return pm.Portfolio.from_json((EXAMPLES / f"{name}.json").read_text())


def market() -> pm.Market:
    from .conftest import EXAMPLES

    return pm.Market.from_json((EXAMPLES / "market.json").read_text())


def test_threads_do_not_change_a_bit_and_the_forms_agree():
    p, m = example("near_liquidation"), market()
    rng = np.random.default_rng(5)
    moves = rng.uniform(-0.3, 0.3, size=(5000, 2))
    one = ENGINE.sweep(p, m, moves, ["BTC", "ETH"], threads=1)
    two = ENGINE.sweep(p, m, moves, ["BTC", "ETH"], threads=2)
    for f in (*FIELDS, "status"):
        assert one[f].tobytes() == two[f].tobytes(), f
    cols = ENGINE.sweep(p, m, {"BTC": moves[:, 0], "ETH": moves[:, 1]}, threads=3)
    assert cols["maintenance_margin"].tobytes() == one["maintenance_margin"].tobytes()
    assert one["status"].dtype == np.uint16 and one["equity"].dtype == np.float64
    # A list of lists and a single column as a 1-D array work as numpy users expect.
    few = ENGINE.sweep(p, m, moves[:3].tolist(), ("BTC", "ETH"))
    assert few["equity"].tolist() == one["equity"][:3].tolist()
    col = ENGINE.sweep(p, m, moves[:, 0], ["BTC"])
    assert len(col["equity"]) == 5000
    assert one["status_names"][-1] == "BANKRUPT"


def test_bad_moves_raise_naming_them():
    p, m = example("near_liquidation"), market()
    with pytest.raises(InvalidInputError, match=r"moves\[1, 0\]"):
        ENGINE.sweep(p, m, np.array([[0.1], [-1.0]]), ["BTC"])
    with pytest.raises(InvalidInputError, match="shape"):
        ENGINE.sweep(p, m, np.zeros((3, 2)), ["BTC"])
    with pytest.raises(InvalidInputError, match="assets"):
        ENGINE.sweep(p, m, np.zeros((3, 1)))
    with pytest.raises(MissingMarketDataError, match=r"assets\[0\]"):
        ENGINE.sweep(p, m, np.zeros((3, 1)), ["PEPE"])
    with pytest.raises(InvalidInputError, match="vol_shifts"):
        ENGINE.sweep(p, m, np.zeros((3, 1)), ["BTC"], vol_shifts=np.zeros(2))
    with pytest.raises(InvalidInputError, match="threads"):
        ENGINE.sweep(p, m, np.zeros((3, 1)), ["BTC"], threads=0)
