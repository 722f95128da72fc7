"""Every risk tool on one account at once: what ``pmengine risk`` and
``pmengine report`` show."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pmengine._core import Engine, MarginResult, Market, Portfolio
from pmengine.errors import InvalidInputError
from pmengine.risk.buffer import deposit_needed, max_withdrawal
from pmengine.risk.exposure import Exposure, exposure_report
from pmengine.risk.ladder import _check_target
from pmengine.risk.liquidation import LiquidationPrice, liquidation_prices
from pmengine.risk.plan import LiquidationPlan, liquidation_plan
from pmengine.risk.scenarios import Scenario, builtin_scenarios
from pmengine.risk.stress import StressResult, stress_test


@dataclass(frozen=True)
class RiskReport:
    """Every risk tool on one account: what ``pmengine risk`` and ``report`` show."""

    result: MarginResult
    liquidation_prices: list[LiquidationPrice]
    stresses: list[StressResult]
    buffer_asset: str
    buffer_target: str
    buffer_scenario: str | None
    deposit: float | None
    withdrawal: float
    exposure: Exposure
    plan: LiquidationPlan
    co_move: bool = False

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types; infinite ratios are None."""
        return {
            "result": self.result.to_dict(),
            "liquidation_prices": [x.to_dict() for x in self.liquidation_prices],
            "co_move": self.co_move,
            "stresses": [s.to_dict() for s in self.stresses],
            "buffer": {
                "asset": self.buffer_asset,
                "target": self.buffer_target,
                "scenario": self.buffer_scenario,
                "deposit": self.deposit,
                "withdrawal": self.withdrawal,
            },
            "exposure": self.exposure.to_dict(),
            "liquidation_plan": self.plan.to_dict(),
        }


def risk_report(
    engine: Engine,
    portfolio: Portfolio,
    market: Market,
    *,
    scenarios: Sequence[Scenario] | None = None,
    co_move: bool = False,
    buffer_asset: str = "USDT",
    target: str = "NORMAL",
    buffer_scenario: str | None = "crash_30",
    plan_target: str = "MARGIN_CALL",
) -> RiskReport:
    """All the risk tools on one account. The deposit is the one that keeps
    ``target`` through ``buffer_scenario`` (a name among ``scenarios`` and the
    built-in ones; None: now); the withdrawal keeps ``target`` now."""
    params = engine.params
    _check_target(params, target, "target")
    _check_target(params, plan_target, "plan target")
    builtin = builtin_scenarios()
    all_scenarios = builtin if scenarios is None else list(scenarios)
    by_name = {s.name: s for s in [*builtin, *all_scenarios]}
    stress = None
    if buffer_scenario is not None:
        if buffer_scenario not in by_name:
            raise InvalidInputError.at(
                "",
                f"buffer scenario: unknown {buffer_scenario!r}, expected one of {sorted(by_name)}",
            )
        stress = by_name[buffer_scenario]
    return RiskReport(
        engine.margin(portfolio, market),
        liquidation_prices(engine, portfolio, market, co_move=co_move),
        stress_test(engine, portfolio, market, all_scenarios),
        buffer_asset,
        target,
        buffer_scenario,
        deposit_needed(
            engine, portfolio, market, asset=buffer_asset, target=target, scenario=stress
        ),
        max_withdrawal(engine, portfolio, market, asset=buffer_asset, target=target),
        exposure_report(engine, portfolio, market),
        liquidation_plan(engine, portfolio, market, target=plan_target),
        co_move,
    )
