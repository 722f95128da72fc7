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
"""

from __future__ import annotations

from pmengine._core import (
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
    MissingMarketDataError,
    ModeSwitchError,
    PmError,
    ProfileError,
)

__all__ = [
    "DEFAULT_PROFILE_TOML",
    "Account",
    "AccountProfile",
    "ClassicResult",
    "Engine",
    "GroupResult",
    "IneligibleError",
    "InvalidInputError",
    "LiveAccount",
    "MarginResult",
    "Market",
    "MissingMarketDataError",
    "ModeSwitchError",
    "OrderCheck",
    "PmError",
    "Portfolio",
    "ProfileError",
    "Reason",
    "RiskParams",
    "SwitchResult",
    "__version__",
    "compare",
]
