"""Risk tools for traders, built on :meth:`Engine.margin`.

- :func:`liquidation_prices`: the price of one risk group at which uniMMR
  reaches each status threshold, going down and going up.
- :func:`stress_test`: equity, MM, uniMMR and status after named moves
  (built-in ones in ``risk.toml``, or the user's, from TOML or ``--move``).
- :func:`deposit_needed` / :func:`max_withdrawal`: the stablecoin buffer.
- :func:`exposure_report`: leverage, net exposure per group, BTC-correlated
  share, margin usage and plain-language warnings.
- :func:`liquidation_plan`: the ordered actions a liquidation engine would take.

One module a concern: :mod:`.scenarios` (and ``risk.toml``, the built-in
scenarios and warning thresholds), :mod:`.moves` (moving the market),
:mod:`.ladder` (statuses), :mod:`.liquidation`, :mod:`.stress`, :mod:`.buffer`,
:mod:`.exposure`, :mod:`.plan` and :mod:`.report` (all of them on one account).
This module re-exports their public names: ``from pmengine.risk import ...``.

Units: money in USD, balances in coin units, moves and vol shocks as fractions
(0.10 = 10 %), uniMMR as a ratio (1.5 = 150 %).

How a move moves prices, marks and vols: :mod:`.moves`.
"""

from __future__ import annotations

from pmengine.risk.buffer import AMOUNT_TOL, deposit_needed, max_withdrawal
from pmengine.risk.exposure import Exposure, RiskWarning, exposure_report, warning_thresholds
from pmengine.risk.ladder import status_rank
from pmengine.risk.liquidation import (
    MAX_FACTOR,
    MIN_FACTOR,
    PRICE_TOL,
    LiquidationPrice,
    co_movement,
    liquidation_prices,
    reference_asset,
)
from pmengine.risk.moves import (
    MovedMargin,
    apply_scenario,
    margins_on_moved_markets,
    moved_market,
    price_groups,
    price_range,
    scenario_factors,
)
from pmengine.risk.plan import LiquidationPlan, PlanAction, apply_plan, liquidation_plan
from pmengine.risk.report import RiskReport, risk_report
from pmengine.risk.scenarios import (
    Scenario,
    builtin_scenarios,
    check_scenario,
    load_scenarios,
    parse_move,
)
from pmengine.risk.stress import StressResult, stress_test

__all__ = [
    "AMOUNT_TOL",
    "MAX_FACTOR",
    "MIN_FACTOR",
    "PRICE_TOL",
    "Exposure",
    "LiquidationPlan",
    "LiquidationPrice",
    "MovedMargin",
    "PlanAction",
    "RiskReport",
    "RiskWarning",
    "Scenario",
    "StressResult",
    "apply_plan",
    "apply_scenario",
    "builtin_scenarios",
    "check_scenario",
    "co_movement",
    "deposit_needed",
    "exposure_report",
    "liquidation_plan",
    "liquidation_prices",
    "load_scenarios",
    "margins_on_moved_markets",
    "max_withdrawal",
    "moved_market",
    "parse_move",
    "price_groups",
    "price_range",
    "reference_asset",
    "risk_report",
    "scenario_factors",
    "status_rank",
    "stress_test",
    "warning_thresholds",
]
