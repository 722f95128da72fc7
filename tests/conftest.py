"""Shared fixtures: the engine, the default market of the golden cases, loaders."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

import pmengine as pm

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = json.loads((ROOT / "rust" / "core" / "tests" / "golden" / "edge-cases.json").read_text())
EXAMPLES = ROOT / "python" / "pmengine" / "examples"

MARKET = {
    "time": "2026-11-24T00:00:00Z",
    "prices": {
        "BTC": 60000.0,
        "ETH": 3000.0,
        "SOL": 150.0,
        "BNB": 600.0,
        "DOGE": 0.2,
        "XRP": 2.0,
        "WBTC": 59950.0,
        "WBETH": 3150.0,
        "USDT": 1.0,
        "USDC": 1.0,
        "FDUSD": 1.0,
    },
    "marks": {},
    "vols": {"BTC": 0.5, "ETH": 0.6, "SOL": 0.8},
}


@pytest.fixture(scope="session")
def engine() -> pm.Engine:
    return pm.Engine()


@pytest.fixture
def market_dict() -> dict:
    return copy.deepcopy(MARKET)


def engine_margin(portfolio: dict, market: dict, engine: pm.Engine | None = None) -> dict:
    """The engine's result dict for JSON-shaped inputs."""
    e = engine or pm.Engine()
    return e.margin(pm.Portfolio.from_dict(portfolio), pm.Market.from_dict(market)).to_dict()
