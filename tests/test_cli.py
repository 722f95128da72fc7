"""The command line: the same numbers as the API, exit codes that mean something."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import pmengine as pm
from pmengine.cli import main
from pmengine.testing import assert_close

from .conftest import EXAMPLES, GOLDEN


def test_margin_json_matches_the_api(capsys):
    code = main(
        [
            "margin",
            "--portfolio",
            str(EXAMPLES / "btc_eth_spread.json"),
            "--market",
            str(EXAMPLES / "market.json"),
            "--json",
        ]
    )
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    p = pm.Portfolio.from_json((EXAMPLES / "btc_eth_spread.json").read_text())
    m = pm.Market.from_json((EXAMPLES / "market.json").read_text())
    assert out == pm.Engine().margin(p, m).to_dict()
    assert out["offset_credit"] > 0


@pytest.mark.parametrize("case", GOLDEN[:8], ids=[c["name"] for c in GOLDEN[:8]])
def test_margin_json_on_golden_cases(case, tmp_path, capsys):
    (tmp_path / "p.json").write_text(json.dumps(case["portfolio"]))
    (tmp_path / "m.json").write_text(json.dumps(case["market"]))
    assert (
        main(
            [
                "margin",
                "--portfolio",
                str(tmp_path / "p.json"),
                "--market",
                str(tmp_path / "m.json"),
                "--json",
            ]
        )
        == 0
    )
    assert_close(json.loads(capsys.readouterr().out), case["expected"])


def test_margin_table(capsys):
    assert (
        main(
            [
                "margin",
                "--portfolio",
                str(EXAMPLES / "cash_and_carry.json"),
                "--market",
                str(EXAMPLES / "market.json"),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "NORMAL" in out and "maintenance margin" in out and "hedges short contracts" in out


def test_bad_input_exit_code_and_one_line(tmp_path, capsys):
    (tmp_path / "p.json").write_text(
        json.dumps(
            {
                "positions": [
                    {
                        "type": "linear",
                        "symbol": "X",
                        "underlying": "BTC",
                        "qty": 1,
                        "entry_price": 0,
                    }
                ]
            }
        )
    )
    code = main(
        [
            "margin",
            "--portfolio",
            str(tmp_path / "p.json"),
            "--market",
            str(EXAMPLES / "market.json"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert err == "pmengine: error: positions[0].entry_price: must be > 0, got 0\n"


def test_missing_file_and_missing_price(tmp_path, capsys):
    assert (
        main(
            [
                "margin",
                "--portfolio",
                str(tmp_path / "nope.json"),
                "--market",
                str(EXAMPLES / "market.json"),
            ]
        )
        == 2
    )
    assert "cannot read" in capsys.readouterr().err
    (tmp_path / "p.json").write_text(json.dumps({"balances": {"PEPE": 5}}))
    assert (
        main(
            [
                "margin",
                "--portfolio",
                str(tmp_path / "p.json"),
                "--market",
                str(EXAMPLES / "market.json"),
            ]
        )
        == 2
    )
    assert (
        capsys.readouterr().err
        == "pmengine: error: balances.PEPE: no price for PEPE in market.prices\n"
    )


def test_bad_profile(tmp_path, capsys):
    (tmp_path / "bad.toml").write_text(
        pm.DEFAULT_PROFILE_TOML.replace("price_points = 21", "price_points = 20", 1)
    )
    code = main(
        [
            "margin",
            "--portfolio",
            str(EXAMPLES / "cash_and_carry.json"),
            "--market",
            str(EXAMPLES / "market.json"),
            "--params",
            str(tmp_path / "bad.toml"),
        ]
    )
    assert code == 2
    assert "price_points: must be odd and >= 3, got 20" in capsys.readouterr().err


def test_demo(capsys):
    assert main(["demo", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) >= {
        "cash_and_carry",
        "leveraged_spot",
        "btc_eth_spread",
        "coin_margined_hedge",
        "near_liquidation",
    }
    # Hedges cost far less under portfolio margin than position by position.
    for name in ("cash_and_carry", "coin_margined_hedge"):
        assert (
            out[name]["result"]["maintenance_margin"]
            < 0.1 * out[name]["standalone_maintenance_margin"]
        )
    assert out["near_liquidation"]["result"]["status"] in ("REDUCE_ONLY", "LIQUIDATION")
    assert main(["demo"]) == 0
    assert "position by position" in capsys.readouterr().out


def test_console_script_runs():
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "pmengine.cli",
            "margin",
            "--portfolio",
            str(EXAMPLES / "cash_and_carry.json"),
            "--market",
            str(EXAMPLES / "market.json"),
            "--json",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["status"] == "NORMAL"


def test_greeks_command(capsys):
    args = [
        "greeks",
        "--portfolio",
        str(EXAMPLES / "covered_call.json"),
        "--market",
        str(EXAMPLES / "market.json"),
    ]
    assert main([*args, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["positions"][0]["symbol"] == "BTC-261225-70000-C"
    assert 0 < out["groups"]["BTC"]["delta"] < 1  # 1 BTC held against a short call
    assert main(args) == 0
    assert "vega (USD/vol pt)" in capsys.readouterr().out
