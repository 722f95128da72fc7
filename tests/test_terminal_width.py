"""At a narrow terminal the tables are laid out for its width: no cell is cut
with "…" (rich's mark of a shortened cell) and no line is wider than the terminal."""

from __future__ import annotations

import re

import pytest

from pmengine.cli import main

from .conftest import EXAMPLES

MARKET = ["--market", "market.json"]
COMMANDS = {
    "demo": ["demo"],
    "risk": ["risk", "--portfolio", "near_liquidation.json", *MARKET],
    "margin": ["margin", "--portfolio", "btc_eth_spread.json", *MARKET],
    "compare": ["compare", "--portfolio", "cash_and_carry.json", *MARKET],
    "greeks": ["greeks", "--portfolio", "covered_call.json", *MARKET],
    "parity": ["parity", "binance", "binance_export"],
    # Binance's formula: the contracts and assets tables (files from `pmengine import`)
    "margin-binance": [
        "margin",
        "--portfolio",
        "{tmp}/portfolio.json",
        "--market",
        "{tmp}/market.json",
        "--params",
        "{tmp}/profile.toml",
    ],
}


@pytest.mark.parametrize("width", [80, 60])
@pytest.mark.parametrize("command", list(COMMANDS))
def test_no_number_is_cut(command, width, monkeypatch, capsys, tmp_path):
    for var in ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", str(width))
    monkeypatch.chdir(EXAMPLES)
    if command == "margin-binance":
        assert main(["import", "binance", "binance_export", "--out", str(tmp_path)]) == 0
        capsys.readouterr()
    assert main([a.format(tmp=tmp_path) for a in COMMANDS[command]]) == 0
    out = capsys.readouterr().out
    assert re.search(r"\d[\d,.]*\s*[%×]?", out)  # the tables were printed
    assert "…" not in out, "\n".join(line for line in out.splitlines() if "…" in line)
    assert max(len(line) for line in out.splitlines()) <= width
