"""Type stubs of the native module ``pmengine._core`` (checked by mypy.stubtest)."""

import datetime
import os
from collections.abc import Sequence
from typing import Any, Literal, TypedDict, final

__all__ = [
    "BATCH_BALANCE_COLUMNS",
    "BATCH_POSITION_COLUMNS",
    "BATCH_RESULT_COLUMNS",
    "DEFAULT_PROFILE_TOML",
    "ClassicResult",
    "Engine",
    "GroupResult",
    "LiveAccount",
    "MarginResult",
    "Market",
    "OrderCheck",
    "Portfolio",
    "RiskParams",
    "__version__",
    "toml_loads",
]

__version__: str
DEFAULT_PROFILE_TOML: str
BATCH_POSITION_COLUMNS: tuple[str, ...]
BATCH_BALANCE_COLUMNS: tuple[str, ...]
BATCH_RESULT_COLUMNS: tuple[str, ...]

def toml_loads(text: str) -> dict[str, Any]: ...

_Time = str | float | int | datetime.datetime | datetime.date

_Model = Literal["scenario", "binance_pm"]

class _PositionMarginDict(TypedDict):
    """A contract's ``binance_pm`` figures, in its margin asset (settle units; coin
    for an inverse contract): ``notional`` is what the bracket is chosen on."""

    index: int
    symbol: str
    asset: str
    notional: float
    bracket: int
    mmr: float
    cum: float
    maintenance_margin: float
    initial_margin: float
    upnl: float
    leverage: float

class _AssetMarginDict(TypedDict):
    """An asset's ``binance_pm`` figures: ``v``, ``loan``, ``loan_margin`` and
    ``maintenance_margin`` in asset units; ``equity`` and ``collateral_value`` in USD."""

    v: float
    equity: float
    collateral_value: float
    loan: float
    loan_margin: float
    maintenance_margin: float

@final
class RiskParams:
    """A compiled risk profile (METHODOLOGY.md §7)."""

    @staticmethod
    def default() -> RiskParams: ...
    @staticmethod
    def from_toml(path: str | os.PathLike[str]) -> RiskParams: ...
    @staticmethod
    def from_toml_str(text: str) -> RiskParams: ...
    @staticmethod
    def from_dict(d: dict[str, Any]) -> RiskParams: ...
    def to_dict(self) -> dict[str, Any]: ...
    def with_model(self, model: _Model) -> RiskParams: ...
    @property
    def model(self) -> _Model: ...
    @property
    def name(self) -> str: ...
    @property
    def version(self) -> str: ...
    @property
    def im_factor(self) -> float: ...
    @property
    def vol_floor(self) -> float: ...
    @property
    def status_levels(self) -> list[tuple[str, float]]: ...
    def group_of(self, asset: str) -> str: ...
    def is_collateral(self, asset: str) -> bool: ...
    def status_for(self, uni_mmr: float) -> str: ...

@final
class Market:
    """A market snapshot: index prices (USD), marks (quote units), vols (annualised)."""

    def __new__(
        cls,
        time: _Time,
        prices: dict[str, float] | None = None,
        marks: dict[str, float] | None = None,
        vols: dict[str, float] | None = None,
    ) -> Market: ...
    @staticmethod
    def from_dict(d: dict[str, Any]) -> Market: ...
    @staticmethod
    def from_json(text: str) -> Market: ...
    def set_price(self, asset: str, price: float) -> None: ...
    def set_mark(self, symbol: str, mark: float) -> None: ...
    def set_vol(self, key: str, vol: float) -> None: ...
    @property
    def time(self) -> float:
        """Seconds since the epoch, UTC."""
    @time.setter
    def time(self, value: _Time) -> None: ...
    @property
    def prices(self) -> dict[str, float]:
        """Index prices, USD (a copy, in key order)."""
    @property
    def marks(self) -> dict[str, float]:
        """Contract marks, in each contract's quote units (a copy, in key order)."""
    @property
    def vols(self) -> dict[str, float]:
        """Implied vols, annualised, per option symbol or underlying (a copy, in key order)."""
    def to_dict(self) -> dict[str, Any]: ...
    def to_json(self) -> str: ...
    def __copy__(self) -> Market: ...
    @property
    def cached_series(self) -> int: ...
    def clear_cache(self) -> None: ...

@final
class Portfolio:
    """An account: wallet balances (negative = a loan) and positions."""

    def __new__(cls) -> Portfolio: ...
    @staticmethod
    def from_dict(d: dict[str, Any]) -> Portfolio: ...
    @staticmethod
    def from_json(text: str) -> Portfolio: ...
    def add_balance(self, asset: str, qty: float) -> None: ...
    def add_loan(self, asset: str, borrowed: float, interest: float = 0.0) -> None: ...
    def add_linear(
        self,
        symbol: str,
        underlying: str,
        qty: float,
        entry_price: float,
        *,
        settle: str = "USDT",
        isolated_margin: float | None = None,
        leverage: float | None = None,
    ) -> None: ...
    def add_inverse(
        self,
        symbol: str,
        underlying: str,
        contract_size: float,
        contracts: float,
        entry_price: float,
        *,
        isolated_margin: float | None = None,
        leverage: float | None = None,
    ) -> None: ...
    def add_option(
        self,
        symbol: str,
        underlying: str,
        kind: str,
        strike: float,
        expiry: _Time,
        qty: float,
        *,
        settle: str = "USDT",
    ) -> None: ...
    @property
    def name(self) -> str | None: ...
    @property
    def description(self) -> str | None: ...
    @property
    def balances(self) -> list[tuple[str, float]]: ...
    @property
    def loans(self) -> list[tuple[str, tuple[float, float]]]: ...
    @property
    def positions(self) -> list[dict[str, Any]]: ...
    def to_dict(self) -> dict[str, Any]: ...
    def to_json(self) -> str: ...
    def __len__(self) -> int: ...
    def __copy__(self) -> Portfolio: ...

@final
class GroupResult:
    """Per risk group figures, USD."""

    @property
    def name(self) -> str: ...
    @property
    def scan_loss(self) -> float: ...
    @property
    def requirement(self) -> float: ...
    @property
    def delta(self) -> float: ...
    @property
    def spot_in_use(self) -> float: ...
    @property
    def financed_spot(self) -> float: ...
    @property
    def basis(self) -> float: ...
    @property
    def concentration(self) -> float: ...
    @property
    def som(self) -> float: ...
    @property
    def worst_scenario(self) -> tuple[float, float]: ...
    def to_dict(self) -> dict[str, Any]: ...

@final
class MarginResult:
    """An account's margin, USD; ``uni_mmr`` = adjusted equity / MM (±inf when MM = 0)."""

    @property
    def equity(self) -> float: ...
    @property
    def adjusted_equity(self) -> float: ...
    @property
    def maintenance_margin(self) -> float: ...
    @property
    def initial_margin(self) -> float: ...
    @property
    def available(self) -> float: ...
    @property
    def uni_mmr(self) -> float: ...
    @property
    def status(self) -> str: ...
    @property
    def scan(self) -> float: ...
    @property
    def systemic(self) -> float: ...
    @property
    def offset_credit(self) -> float: ...
    @property
    def borrow_margin(self) -> float: ...
    @property
    def model(self) -> _Model: ...
    @property
    def positions(self) -> list[_PositionMarginDict]: ...
    @property
    def assets(self) -> dict[str, _AssetMarginDict]: ...
    @property
    def groups(self) -> dict[str, GroupResult]: ...
    def to_dict(self) -> dict[str, Any]: ...
    def to_json(self, indent: int | None = None) -> str: ...

@final
class Engine:
    """A portfolio-margin engine compiled from a profile; immutable and thread-safe."""

    def __new__(cls, params: RiskParams | None = None) -> Engine: ...
    @property
    def params(self) -> RiskParams: ...
    def margin(self, portfolio: Portfolio, market: Market) -> MarginResult: ...
    def risk_groups(self, portfolio: Portfolio, market: Market) -> list[str]: ...
    def greeks(self, portfolio: Portfolio, market: Market) -> dict[str, Any]: ...
    def classic(
        self, portfolio: Portfolio, market: Market, mode: str = "as_given"
    ) -> ClassicResult: ...
    def margin_batch(
        self,
        positions: Any,
        balances: Any,
        market: Market,
        *,
        threads: int | None = None,
        errors: str = "raise",
        output: str = "arrow",
        chunk_size: int = 512,
        first_rows: tuple[int, int] = ...,
    ) -> Any:
        """Margin of every account of a columnar book (``pmengine.batch`` documents the
        columns): a ``pyarrow.Table``, or a dict of numpy arrays with ``output="numpy"``.
        A ``pyarrow.RecordBatchReader`` of positions is margined as a stream (rows
        sorted by account, ``pmengine.batch.margin_stream``) into a reader of results.
        ``first_rows``: row numbers of the first position and balance rows, for
        messages naming rows of a longer stream."""
    def sweep(
        self,
        portfolio: Portfolio,
        market: Market,
        moves: Any,
        assets: Sequence[str] | None = None,
        *,
        vol_shifts: Any = None,
        threads: int | None = None,
    ) -> dict[str, Any]:
        """The account under many market moves: ``moves`` a scenarios x assets array of
        relative price moves (``P * (1 + r)``) whose columns ``assets`` names, or
        ``{asset: 1-D array}``; ``vol_shifts`` one relative vol shift or one per
        scenario. A dict of numpy arrays, one row per scenario: ``equity``,
        ``adjusted_equity``, ``maintenance_margin``, ``initial_margin``, ``available``
        (USD), ``uni_mmr``, ``status`` (uint8 index into the ``status_names`` tuple);
        row ``k`` equals ``margin`` on the moved market."""
    def crossings(
        self,
        portfolio: Portfolio,
        market: Market,
        paths: Sequence[tuple[Sequence[tuple[str, float]], Sequence[float]]],
        thresholds: Sequence[float],
        *,
        tol: float,
    ) -> list[list[tuple[float, float] | None]]:
        """Where uniMMR first crosses each threshold along each price path
        ``(exponents, grid)``: on factor ``f`` each ``(asset, e)`` of ``exponents`` is
        priced ``P * f ** e``; the grid's factors are scanned in order and the first
        crossing bisected to ``tol`` relative. Per path, per threshold: None, or
        ``(factor, uni_mmr)`` on the far side of the crossing (bankrupt: ``-inf``)."""
    def deposit_needed(
        self,
        portfolio: Portfolio,
        market: Market,
        asset: str,
        target: int,
        *,
        stressed: Market | None = None,
        rel_tol: float,
    ) -> float | None:
        """The smallest deposit of ``asset`` (asset units) keeping the status at rank
        ``target`` or healthier on ``stressed`` (default ``market``); None past 1e15 USD."""
    def max_withdrawal(
        self, portfolio: Portfolio, market: Market, asset: str, target: int, *, rel_tol: float
    ) -> float:
        """The largest withdrawal of ``asset`` (asset units, at most its positive balance)
        keeping the status at rank ``target`` or healthier on ``market``."""

@final
class ClassicResult:
    """Classic (isolated / cross) margin of an account, USD (METHODOLOGY.md §5)."""

    @property
    def mode(self) -> str: ...
    @property
    def equity(self) -> float: ...
    @property
    def maintenance_margin(self) -> float: ...
    @property
    def initial_margin(self) -> float: ...
    @property
    def available(self) -> float: ...
    @property
    def status(self) -> str: ...
    @property
    def usdm(self) -> dict[str, Any]: ...
    @property
    def coinm(self) -> list[dict[str, Any]]: ...
    @property
    def cross_margin(self) -> dict[str, Any]: ...
    @property
    def positions(self) -> list[dict[str, Any]]: ...
    def to_dict(self) -> dict[str, Any]: ...
    def to_json(self, indent: int | None = None) -> str: ...

@final
class OrderCheck:
    """The outcome of ``LiveAccount.check_order``."""

    @property
    def allowed(self) -> bool: ...
    @property
    def reason(self) -> str | None:
        """None, "liquidation", "reduce_only" or "insufficient_available_margin"."""
    @property
    def result(self) -> MarginResult: ...

@final
class LiveAccount:
    """An account kept live in Rust: ticks, fills, deposits and loans update it in place."""

    def __new__(cls, engine: Engine, portfolio: Portfolio, market: Market) -> LiveAccount: ...
    def margin(self) -> MarginResult: ...
    def update_price(self, asset: str, price: float) -> None: ...
    def update_prices(self, prices: dict[str, float]) -> None: ...
    def update_mark(self, symbol: str, mark: float) -> None: ...
    def update_vol(self, key: str, vol: float) -> None: ...
    def set_time(self, time: float) -> None: ...
    def deposit(self, asset: str, qty: float) -> None: ...
    def withdraw(self, asset: str, qty: float) -> None: ...
    def borrow(self, asset: str, qty: float) -> None: ...
    def repay(self, asset: str, qty: float) -> None: ...
    def apply_fill(
        self,
        symbol: str,
        qty: float,
        price: float | None = None,
        *,
        instrument: dict[str, Any] | None = None,
    ) -> None: ...
    def what_if(
        self,
        symbol: str,
        qty: float,
        price: float | None = None,
        *,
        instrument: dict[str, Any] | None = None,
    ) -> MarginResult: ...
    def check_order(
        self,
        symbol: str,
        qty: float,
        price: float | None = None,
        *,
        instrument: dict[str, Any] | None = None,
    ) -> OrderCheck: ...
    def max_order_size(
        self,
        symbol: str,
        side: str,
        *,
        target_ratio: float | None = None,
        price: float | None = None,
        instrument: dict[str, Any] | None = None,
    ) -> float: ...
    @property
    def rebuilds(self) -> int: ...
    @property
    def portfolio(self) -> Portfolio: ...
    @property
    def market(self) -> Market: ...
