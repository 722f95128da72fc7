"""pmengine: a portfolio-margin engine for crypto accounts.

A Rust core (``pmengine._core``) under a thin Python API. Money is in USD unless
a docstring says otherwise; quantities are signed (positive long, negative short
or borrowed); returns and vol shocks are fractions (0.10 = 10 %).

>>> import pmengine as pm
>>> engine = pm.Engine()                      # the default profile
>>> p = pm.Portfolio()
>>> p.add_balance("BTC", 1.0)
>>> p.add_linear("BTCUSDT", "BTC", qty=-1.0, entry_price=60_000)
>>> m = pm.Market("2026-11-24T00:00:00Z", prices={"BTC": 60_000, "USDT": 1})
>>> engine.margin(p, m).maintenance_margin     # the hedge pays only the basis add-on
300.0

Risk tools for traders (liquidation prices, stress tests, the stablecoin buffer,
leverage warnings, a liquidation plan) are in :mod:`pmengine.risk`, re-exported
here; the HTML report is :mod:`pmengine.present.report` (matplotlib: ``pmengine[plot]``).
"""

from __future__ import annotations

from pmengine._core import (
    BANKRUPT,
    DEFAULT_PROFILE_TOML,
    ClassicResult,
    Engine,
    GroupResult,
    LiveAccount,
    MarginResult,
    Market,
    OrderCheck,
    Portfolio,
    RiskParams,
    __version__,
)
from pmengine.account import Account, AccountProfile, Reason, SwitchResult
from pmengine.compare import compare
from pmengine.errors import (
    IneligibleError,
    InvalidInputError,
    MissingExtraError,
    MissingMarketDataError,
    ModeSwitchError,
    PmError,
    ProfileError,
)
from pmengine.risk import (
    Exposure,
    LiquidationPlan,
    LiquidationPrice,
    PlanAction,
    RiskReport,
    RiskWarning,
    Scenario,
    StressResult,
    apply_plan,
    builtin_scenarios,
    deposit_needed,
    exposure_report,
    liquidation_plan,
    liquidation_prices,
    load_scenarios,
    max_withdrawal,
    risk_report,
    stress_test,
)

__all__ = [
    "BANKRUPT",
    "DEFAULT_PROFILE_TOML",
    "Account",
    "AccountProfile",
    "ClassicResult",
    "Engine",
    "Exposure",
    "GroupResult",
    "IneligibleError",
    "InvalidInputError",
    "LiquidationPlan",
    "LiquidationPrice",
    "LiveAccount",
    "MarginResult",
    "Market",
    "MissingExtraError",
    "MissingMarketDataError",
    "ModeSwitchError",
    "OrderCheck",
    "PlanAction",
    "PmError",
    "Portfolio",
    "ProfileError",
    "Reason",
    "RiskParams",
    "RiskReport",
    "RiskWarning",
    "Scenario",
    "StressResult",
    "SwitchResult",
    "__version__",
    "apply_plan",
    "builtin_scenarios",
    "compare",
    "deposit_needed",
    "exposure_report",
    "liquidation_plan",
    "liquidation_prices",
    "load_scenarios",
    "max_withdrawal",
    "risk_report",
    "stress_test",
]
