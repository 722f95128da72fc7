"""The Python face: builders, conversions, result objects, profiles."""

from __future__ import annotations

import datetime as dt
import json
import math
import threading
from pathlib import Path

import pytest

import pmengine as pm
from pmengine.testing import assert_close

from .conftest import EXAMPLES, MARKET


def hedge() -> pm.Portfolio:
    p = pm.Portfolio()
    p.add_balance("BTC", 1.0)
    p.add_balance("USDT", 1000.0)
    p.add_linear("BTCUSDT", "BTC", -1.0, 60000.0)
    return p


def test_builder_equals_json():
    d = {
        "balances": {"BTC": 1.0, "USDT": 1000.0},
        "positions": [
            {
                "type": "linear",
                "symbol": "BTCUSDT",
                "underlying": "BTC",
                "qty": -1.0,
                "entry_price": 60000.0,
            }
        ],
    }
    built, parsed = hedge(), pm.Portfolio.from_dict(d)
    m = pm.Market.from_dict(MARKET)
    e = pm.Engine()
    assert e.margin(built, m).to_dict() == e.margin(parsed, m).to_dict()
    assert pm.Portfolio.from_json(built.to_json()).to_dict() == built.to_dict()
    assert built.balances == [("BTC", 1.0), ("USDT", 1000.0)]
    assert built.positions[0]["settle"] == "USDT"


def test_hedge_pays_only_the_basis(engine):
    r = engine.margin(hedge(), pm.Market.from_dict(MARKET))
    # Long 60k of spot against a 60k short: spot in use 60k, D = 0, nothing on the grid;
    # basis 0.005 · min(60k, 60k) = 300; E_adj = 60k · 0.95 + 1000 = 58,000.
    assert r.maintenance_margin == 300.0
    assert r.initial_margin == 450.0
    assert r.adjusted_equity == 58000.0
    assert r.available == 58000.0 - 450.0
    assert r.uni_mmr == pytest.approx(58000.0 / 300.0, rel=1e-12)
    assert r.status == "NORMAL"
    g = r.groups["BTC"]
    assert (g.spot_in_use, g.delta, g.scan_loss, g.basis) == (60000.0, 0.0, 0.0, 300.0)
    assert g.worst_scenario == (-0.1, 0.0)
    assert list(r.groups) == ["BTC", "USD"]


def test_result_dict_and_json(engine):
    r = engine.margin(hedge(), pm.Market.from_dict(MARKET))
    d = r.to_dict()
    assert list(d) == [
        "equity",
        "adjusted_equity",
        "maintenance_margin",
        "initial_margin",
        "available",
        "uni_mmr",
        "status",
        "scan",
        "systemic",
        "offset_credit",
        "borrow_margin",
        "groups",
    ]
    assert json.loads(r.to_json()) == d
    assert json.loads(r.to_json(indent=2)) == d
    assert r.groups["BTC"].to_dict() == d["groups"]["BTC"]
    assert "MarginResult(status=" in repr(r)


def test_infinite_ratio_is_null_in_json(engine):
    p = pm.Portfolio()
    p.add_balance("USDT", 100.0)
    r = engine.margin(p, pm.Market.from_dict(MARKET))
    assert r.maintenance_margin == 0.0 and r.uni_mmr == math.inf and r.status == "NORMAL"
    assert r.to_dict()["uni_mmr"] is None


def test_market_constructor_and_setters():
    m = pm.Market(dt.datetime(2026, 11, 24, tzinfo=dt.UTC), prices={"BTC": 60000, "USDT": 1})
    assert m.time == pm.Market("2026-11-24T00:00:00Z").time == pm.Market(1795478400).time
    m.set_price("ETH", 3000.0)
    m.set_mark("BTCUSDT", 60010.0)
    m.set_vol("BTC", 0.5)
    d = m.to_dict()
    assert d["prices"] == {"BTC": 60000.0, "ETH": 3000.0, "USDT": 1.0}
    assert d["marks"] == {"BTCUSDT": 60010.0}
    assert pm.Market.from_json(m.to_json()).to_dict() == d


def test_option_builder_accepts_datetimes():
    a, b = pm.Portfolio(), pm.Portfolio()
    a.add_option("C1", "BTC", "call", 70000.0, "2026-12-25T08:00:00Z", -1.0)
    b.add_option("C1", "BTC", "call", 70000.0, dt.datetime(2026, 12, 25, 8, tzinfo=dt.UTC), -1.0)
    assert a.to_dict() == b.to_dict()
    assert a.positions[0]["expiry"] == "2026-12-25T08:00:00Z"


def test_params_roundtrip_and_paths(tmp_path):
    d = pm.RiskParams.default().to_dict()
    assert d["margin"]["im_factor"] == 1.5
    p = pm.RiskParams.from_dict(d)
    assert p.name == "default" and p.im_factor == 1.5 and p.vol_floor == 0.05
    assert p.group_of("WBTC") == "BTC" and p.group_of("PEPE") == "PEPE"
    assert p.is_collateral("BTC") and not p.is_collateral("DOGE")
    assert [n for n, _ in p.status_levels] == [
        "NORMAL",
        "MARGIN_CALL",
        "REDUCE_ONLY",
        "LIQUIDATION",
    ]
    assert p.status_for(1.5) == "MARGIN_CALL" and p.status_for(1.51) == "NORMAL"
    f = tmp_path / "p.toml"
    f.write_text(pm.DEFAULT_PROFILE_TOML.replace("im_factor = 1.5", "im_factor = 2.0"))
    assert pm.RiskParams.from_toml(f).im_factor == 2.0
    with pytest.raises(pm.ProfileError, match="cannot read"):
        pm.RiskParams.from_toml(tmp_path / "missing.toml")


def test_params_change_the_numbers():
    d = pm.RiskParams.default().to_dict()
    d["groups"]["BTC"]["basis_rate"] = 0.01
    e = pm.Engine(pm.RiskParams.from_dict(d))
    assert e.margin(hedge(), pm.Market.from_dict(MARKET)).maintenance_margin == 600.0
    assert e.params.name == "default"


def test_bundled_profile_is_the_repository_one():
    # One file, owned by the core crate; the package reads it from the native module.
    root = Path(__file__).resolve().parents[1]
    text = (root / "rust" / "core" / "profiles" / "default.toml").read_text()
    assert text == pm.DEFAULT_PROFILE_TOML
    assert (root / "profiles" / "default.toml").read_text() == text


def test_examples_parse(engine):
    m = pm.Market.from_json((EXAMPLES / "market.json").read_text())
    for f in sorted(EXAMPLES.glob("*.json")):
        if f.name != "market.json":
            p = pm.Portfolio.from_json(f.read_text())
            assert p.description
            r = engine.margin(p, m)
            assert math.isfinite(r.maintenance_margin)


def test_threads_share_one_engine(engine):
    # The engine is immutable: concurrent calls give bit-identical results.
    m = pm.Market.from_dict(MARKET)
    want = engine.margin(hedge(), m).to_dict()
    out: list[dict] = []

    def work():
        p = hedge()
        for _ in range(200):
            out.append(engine.margin(p, m).to_dict())

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(out) == 800 and all(o == want for o in out)


def test_errors_hierarchy():
    assert issubclass(pm.InvalidInputError, ValueError)
    assert issubclass(pm.MissingMarketDataError, KeyError)
    for cls in (
        pm.InvalidInputError,
        pm.MissingMarketDataError,
        pm.IneligibleError,
        pm.ModeSwitchError,
    ):
        assert issubclass(cls, pm.PmError)
    e = pm.InvalidInputError.at("positions[3].entry_price", "must be > 0, got 0", "out_of_range")
    assert str(e) == "positions[3].entry_price: must be > 0, got 0"
    assert (e.field, e.code) == ("positions[3].entry_price", "out_of_range")


def test_golden_market_roundtrip():
    m = pm.Market.from_dict(MARKET)
    assert_close(m.to_dict()["prices"], dict(sorted(MARKET["prices"].items())))


def test_market_tables_are_read_without_to_dict():
    m = pm.Market(
        "2026-11-24T00:00:00Z",
        prices={"USDT": 1.0, "BTC": 60_000.0},
        marks={"BTCUSDT": 60_030.0, "BTCUSD_PERP": 60_010.0},
        vols={"BTC": 0.5, "BTC-261225-70000-C": 0.55},
    )
    d = m.to_dict()
    for table in ("prices", "marks", "vols"):
        got = getattr(m, table)
        assert got == d[table] and list(got) == sorted(got)  # a copy, in key order
        got.clear()
        assert getattr(m, table) == d[table]
    m.set_mark("ETHUSDT", 3_001.0)
    m.set_vol("ETH", 0.6)
    assert m.marks["ETHUSDT"] == 3_001.0 and m.vols["ETH"] == 0.6
    assert pm.Market("2026-11-24").marks == {} and pm.Market("2026-11-24").vols == {}


def test_package_reads_its_own_objects_through_getters():
    # Market.prices, .marks and .vols exist: no module of the package goes through
    # a market's to_dict() to read them.
    import re

    root = Path(pm.__file__).parent
    found = [
        f"{src.name}: {m.group(0)}"
        for src in root.rglob("*.py")
        for m in re.finditer(r"to_dict\(\)\s*\[\s*[\"'](prices|marks|vols)[\"']", src.read_text())
    ]
    assert not found, found


def test_market_reads_without_to_dict():
    m = pm.Market.from_dict(MARKET | {"marks": {"BTCUSDT": 60_010.0}})
    d = m.to_dict()
    assert (m.iso_time, m.prices, m.marks, m.vols) == (
        d["time"],
        d["prices"],
        d["marks"],
        d["vols"],
    )
    assert m.time == pm.Market(m.iso_time).time == pm._core.parse_time(m.iso_time)
