"""`pmengine risk`: the same facts as the API, bad input exits 2 naming the field,
and the terminal output is pinned by snapshot files in tests/snapshots/
(PMENGINE_UPDATE_SNAPSHOTS=1 rewrites them after a deliberate change)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

import pmengine as pm
from pmengine import risk
from pmengine.cli import main

from .conftest import EXAMPLES

SNAPSHOTS = Path(__file__).resolve().parent / "snapshots"


def liquidation_market(path: Path) -> Path:
    p = pm.Portfolio.from_json((EXAMPLES / "near_liquidation.json").read_text())
    m = pm.Market.from_json((EXAMPLES / "market.json").read_text())
    s = risk.Scenario("down", groups={"*": -0.05})
    path.write_text(risk.apply_scenario(s, p, m, pm.Engine().params).to_json())
    return path


@pytest.fixture
def plain_terminal(monkeypatch):
    for var in ("FORCE_COLOR", "COLUMNS", "LINES", "TTY_COMPATIBLE", "TTY_INTERACTIVE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.chdir(EXAMPLES)


def check_snapshot(name: str, text: str) -> None:
    path = SNAPSHOTS / f"{name}.txt"
    if os.environ.get("PMENGINE_UPDATE_SNAPSHOTS") == "1" or not path.exists():
        if not path.exists() and os.environ.get("CI"):
            pytest.fail(f"{path} is missing: run the tests with PMENGINE_UPDATE_SNAPSHOTS=1")
        path.write_text(text)
    assert text == path.read_text(), f"{path} differs: PMENGINE_UPDATE_SNAPSHOTS=1 to update"


@pytest.mark.parametrize(
    ("name", "portfolio", "market"),
    [
        ("risk_near_liquidation", "near_liquidation.json", "market.json"),
        ("risk_in_liquidation", "near_liquidation.json", None),
        ("risk_leveraged_spot", "leveraged_spot.json", "market.json"),
        ("risk_short_straddle", "short_straddle.json", "market.json"),
    ],
)
def test_risk_terminal_snapshot(name, portfolio, market, plain_terminal, tmp_path, capsys):
    m = str(liquidation_market(tmp_path / "m.json")) if market is None else market
    assert main(["risk", "--portfolio", portfolio, "--market", m]) == 0
    check_snapshot(name, capsys.readouterr().out)


def test_risk_json_matches_the_api(capsys):
    args = ["risk", "--portfolio", str(EXAMPLES / "btc_eth_spread.json")]
    args += ["--market", str(EXAMPLES / "market.json"), "--json"]
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out)
    e = pm.Engine()
    p = pm.Portfolio.from_json((EXAMPLES / "btc_eth_spread.json").read_text())
    m = pm.Market.from_json((EXAMPLES / "market.json").read_text())
    assert out == json.loads(json.dumps(pm.risk_report(e, p, m).to_dict()))
    assert [s["name"] for s in out["stresses"]] == [s.name for s in risk.builtin_scenarios()]
    assert out["buffer"]["scenario"] == "crash_30"


def test_user_scenarios_from_toml_and_the_command_line(tmp_path, capsys):
    (tmp_path / "s.toml").write_text(
        '[[stress]]\nname = "btc_only"\ndescription = "BTC -20 %"\ngroups = { BTC = -0.2 }\n'
    )
    args = ["risk", "--portfolio", str(EXAMPLES / "leveraged_spot.json")]
    args += ["--market", str(EXAMPLES / "market.json"), "--json"]
    args += ["--stress", str(tmp_path / "s.toml"), "--move", "BTC=-0.1,vol=0.2"]
    args += ["--buffer-stress", "btc_only", "--target", "NORMAL"]
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out)
    by_name = {s["name"]: s for s in out["stresses"]}
    assert by_name["btc_only"]["pnl"] == pytest.approx(-3 * 12000)
    assert by_name["move BTC=-0.1,vol=0.2"]["pnl"] == pytest.approx(-3 * 6000)
    assert out["buffer"]["target"] == "NORMAL"
    assert out["buffer"]["deposit"] > 0


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--move", "BTC=oops"], "--move 'BTC=oops': BTC: not a number"),
        (["--target", "SAFE"], "target: unknown status 'SAFE'"),
        (["--plan-target", "SAFE"], "plan target: unknown status 'SAFE'"),
        (["--buffer-stress", "meteor"], "buffer scenario: unknown 'meteor'"),
        (["--stress", "/nonexistent/s.toml"], "/nonexistent/s.toml: cannot read"),
        (["--move", "BTX=-0.1"], "groups.BTX: no such risk group or priced asset"),
        (["--asset", "DAI"], "asset: 'DAI' has no price in the market"),
    ],
)
def test_bad_risk_arguments_exit_2(extra, message, capsys):
    args = ["risk", "--portfolio", str(EXAMPLES / "leveraged_spot.json")]
    args += ["--market", str(EXAMPLES / "market.json"), *extra]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err


def test_bad_stress_file_names_the_field(tmp_path, capsys):
    (tmp_path / "s.toml").write_text('[[stress]]\nname = "x"\ngroups = { BTC = -2 }\n')
    args = ["risk", "--portfolio", str(EXAMPLES / "leveraged_spot.json")]
    args += ["--market", str(EXAMPLES / "market.json"), "--stress", str(tmp_path / "s.toml")]
    assert main(args) == 2
    assert "stress[0].groups.BTC: must be > -1" in capsys.readouterr().err
