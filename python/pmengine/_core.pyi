"""Type stubs of the native module ``pmengine._core`` (checked by mypy.stubtest)."""

import datetime
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal, TypedDict, final, overload

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "BANKRUPT",
    "BATCH_BALANCE_COLUMNS",
    "BATCH_POSITION_COLUMNS",
    "BATCH_RESULT_COLUMNS",
    "DEFAULT_PROFILE_TOML",
    "ERROR_CODES",
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
    "parse_time",
    "toml_loads",
]

__version__: str
DEFAULT_PROFILE_TOML: str
BATCH_POSITION_COLUMNS: tuple[str, ...]
BATCH_BALANCE_COLUMNS: tuple[str, ...]
BATCH_RESULT_COLUMNS: tuple[str, ...]
#: The status of an account whose equity is below 0: past every level of the ladder.
BANKRUPT: Literal["BANKRUPT"]
#: The codes the core sets on the errors it raises (``err.code``; ``pmengine.errors``).
ERROR_CODES: tuple[str, ...]

def toml_loads(text: str) -> dict[str, Any]: ...

_Time = str | float | int | datetime.datetime | datetime.date

def parse_time(t: _Time, field: str = "time") -> float:
    """Seconds since the epoch (UTC) of ISO-8601 text or a ``datetime`` (no zone:
    UTC; a bare date: midnight UTC), or a number as it is; the core's one reader
    of times. ``InvalidInputError`` naming ``field``."""

_Model = Literal["scenario", "binance_pm"]
_ClassicMode = Literal["as_given", "cross", "isolated"]
_ClassicStatus = Literal["NORMAL", "MARGIN_CALL", "LIQUIDATION"]
_OptionKind = Literal["call", "put"]
_Side = Literal["buy", "sell"]
_OnError = Literal["raise", "collect"]
_Refusal = Literal["liquidation", "reduce_only", "insufficient_available_margin"]

class _GreeksDict(TypedDict):
    """``delta`` coin, ``delta_usd`` USD, ``gamma`` coin per USD of underlying price,
    ``vega`` USD per vol point, ``theta`` USD per day."""

    delta: float
    delta_usd: float
    gamma: float
    vega: float
    theta: float

class _PositionGreeksDict(_GreeksDict):
    position: int
    symbol: str
    group: str

class _GreeksResultDict(TypedDict):
    positions: list[_PositionGreeksDict]
    groups: dict[str, _GreeksDict]

class _WalletDict(TypedDict):
    """A futures wallet, USD: ``name`` is ``"usdm"`` or ``"coinm:<coin>"``;
    ``margin_ratio`` MM / margin balance (None when infinite)."""

    name: str
    balance: float
    upnl: float
    margin_balance: float
    maintenance_margin: float
    initial_margin: float
    available: float
    margin_ratio: float | None
    status: _ClassicStatus

class _CrossMarginDict(TypedDict):
    """The spot cross margin account (loans), USD; ``margin_level`` None when infinite."""

    assets: float
    liabilities: float
    margin_level: float | None
    maintenance_margin: float
    initial_margin: float
    status: _ClassicStatus

class _ClassicPositionDict(TypedDict):
    """A futures position under classic margin: figures in its margin asset (settle
    units; coin for an inverse contract); ``status`` and ``margin_ratio`` for an
    isolated position only."""

    index: int
    symbol: str
    wallet: str
    notional: float
    mmr: float
    cum: float
    maintenance_margin: float
    initial_margin: float
    leverage: float
    max_leverage: float
    upnl: float
    isolated_margin: float | None
    liquidation_price: float | None
    status: _ClassicStatus | None
    margin_ratio: float | None

class _PlanStepDict(TypedDict):
    """A liquidation plan's step: ``position`` indexes the original portfolio (a
    close), ``asset`` is the collateral sold and ``loan_asset`` the loan repaid (a
    repayment); ``qty`` the signed quantity closed (contracts of an inverse
    contract) or minus the units sold; ``usd`` and MM in USD."""

    kind: Literal["cancel_orders", "close_position", "repay_loan"]
    position: int | None
    asset: str | None
    loan_asset: str | None
    fraction: float
    qty: float
    usd: float
    repaid: float
    uni_mmr_before: float
    uni_mmr_after: float
    mm_before: float
    mm_after: float

class _PlanDict(TypedDict):
    """``Engine.liquidation_plan``: the account before (``status``, ``uni_mmr``), the
    target, the steps and the portfolio after them."""

    status: str
    uni_mmr: float
    target_ratio: float
    needed: bool
    reached: bool
    steps: list[_PlanStepDict]
    portfolio: Portfolio

class _SweepDict(TypedDict):
    """One row per scenario: money in USD, ``uni_mmr`` a ratio, ``status`` an index
    into ``status_names`` (the profile's ladder, then BANKRUPT)."""

    equity: NDArray[np.float64]
    adjusted_equity: NDArray[np.float64]
    maintenance_margin: NDArray[np.float64]
    initial_margin: NDArray[np.float64]
    available: NDArray[np.float64]
    uni_mmr: NDArray[np.float64]
    status: NDArray[np.uint16]
    status_names: tuple[str, ...]

class _BatchArrays(TypedDict):
    """``margin_batch(output="numpy")``: one row per account, ascending id; money in
    USD; ``status``, ``worst_group`` and ``error`` as unicode arrays (``""``: none)."""

    account: NDArray[np.int64]
    equity: NDArray[np.float64]
    adjusted_equity: NDArray[np.float64]
    maintenance_margin: NDArray[np.float64]
    initial_margin: NDArray[np.float64]
    available: NDArray[np.float64]
    uni_mmr: NDArray[np.float64]
    status: NDArray[np.str_]
    worst_group: NDArray[np.str_]
    worst_price_move: NDArray[np.float64]
    worst_vol_shock: NDArray[np.float64]
    error: NDArray[np.str_]

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

class _PositionTermsDict(TypedDict):
    """A position on a snapshot (``Engine.position_terms``). ``quantity``: signed,
    as the position states it (``qty``; ``contracts`` of an inverse contract);
    ``mark``: a contract's mark, an option's model value per unit (settle units);
    ``notional`` and ``dollar_delta``: USD; ``value``: a contract's UPnL or an
    option's ``qty · value``, in ``margin_asset`` units."""

    type: Literal["linear", "inverse", "option"]
    symbol: str
    group: str
    margin_asset: str
    quantity: float
    mark: float
    notional: float
    dollar_delta: float
    value: float

class _EligibilityDict(TypedDict):
    """``[eligibility]`` as compiled; ``min_equity`` in USD."""

    min_equity: float
    min_kyc_level: int
    require_futures_enabled: bool
    require_quiz: bool
    min_trading_days: int
    restricted_jurisdictions: list[str]

class _SwitchingDict(TypedDict):
    """``[switching]`` as compiled; ``min_switch_interval`` in seconds."""

    switch_min_ratio: float
    switch_max_margin_ratio: float
    min_switch_interval: float
    allow_options_in_classic: bool

class _ClassicParamsDict(TypedDict):
    """``[classic]`` as compiled: margin levels, a margin ratio and a leverage."""

    cross_margin_call: float
    cross_margin_liquidation: float
    futures_margin_call: float
    default_leverage: float

class _GroupParamsDict(TypedDict):
    """A group's grid and add-ons as compiled; rates and ranges are fractions."""

    price_range: float
    price_points: int
    vol_shocks: list[float]
    extreme_multiple: float
    extreme_cover: float
    basis_rate: float
    som_rate: float

class _SystemicDict(TypedDict):
    """A systemic scenario: ``multiple`` of each group's price range, a vol shock
    (fraction) and absolute returns for named groups."""

    name: str
    multiple: float
    vol_shock: float
    overrides: dict[str, float]

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
    @property
    def eligibility(self) -> _EligibilityDict: ...
    @property
    def switching(self) -> _SwitchingDict: ...
    @property
    def classic(self) -> _ClassicParamsDict: ...
    @property
    def assets(self) -> list[str]: ...
    @property
    def groups(self) -> dict[str, _GroupParamsDict]: ...
    @property
    def offsets(self) -> list[tuple[str, str, float]]: ...
    @property
    def systemic(self) -> list[_SystemicDict]: ...
    def group_of(self, asset: str) -> str: ...
    def is_collateral(self, asset: str) -> bool: ...
    def status_for(self, uni_mmr: float) -> str: ...
    def status_rank(self, status: str) -> int:
        """The ladder index of ``status`` (0 the healthiest), ``BANKRUPT`` one past the last."""

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
    def moved(
        self, portfolio: Portfolio, factors: Mapping[str, float], vol_factor: float | None = None
    ) -> Market:
        """The market after a move: index prices times ``factors`` (asset -> ``1 + r``),
        the marks of ``portfolio``'s contracts moved with their prices, every vol times
        ``vol_factor``. A new snapshot; this one is unchanged."""
    @property
    def time(self) -> float:
        """Seconds since the epoch, UTC."""
    @time.setter
    def time(self, value: _Time) -> None: ...
    @property
    def iso_time(self) -> str:
        """The time as ISO-8601 text, UTC (``2026-11-24T00:00:00Z``)."""
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
    def __deepcopy__(self, memo: Any) -> Market: ...
    def __reduce__(self) -> tuple[Any, tuple[str]]: ...
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
        kind: _OptionKind,
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
    def __deepcopy__(self, memo: Any) -> Portfolio: ...
    def __reduce__(self) -> tuple[Any, tuple[str]]: ...

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
    def greeks(self, portfolio: Portfolio, market: Market) -> _GreeksResultDict: ...
    def position_terms(self, portfolio: Portfolio, market: Market) -> list[_PositionTermsDict]: ...
    def classic(
        self, portfolio: Portfolio, market: Market, mode: _ClassicMode = "as_given"
    ) -> ClassicResult: ...
    @overload
    def margin_batch(
        self,
        positions: Any,
        balances: Any,
        market: Market,
        *,
        threads: int | None = None,
        errors: _OnError = "raise",
        output: Literal["numpy"],
        chunk_size: int = 512,
        first_rows: tuple[int, int] = ...,
    ) -> _BatchArrays: ...
    @overload
    def margin_batch(
        self,
        positions: Any,
        balances: Any,
        market: Market,
        *,
        threads: int | None = None,
        errors: _OnError = "raise",
        output: Literal["arrow"] = "arrow",
        chunk_size: int = 512,
        first_rows: tuple[int, int] = ...,
    ) -> Any:
        """Margin of every account of a columnar book (``pmengine.book.batch`` documents the
        columns): a ``pyarrow.Table``, or a dict of numpy arrays with ``output="numpy"``.
        A ``pyarrow.RecordBatchReader`` of positions is margined as a stream (rows
        sorted by account, ``pmengine.book.batch.margin_stream``) into a reader of results.
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
    ) -> _SweepDict:
        """The account under many market moves: ``moves`` a scenarios x assets array of
        relative price moves (``P * (1 + r)``) whose columns ``assets`` names, or
        ``{asset: 1-D array}``; ``vol_shifts`` one relative vol shift or one per
        scenario. A dict of numpy arrays, one row per scenario: ``equity``,
        ``adjusted_equity``, ``maintenance_margin``, ``initial_margin``, ``available``
        (USD), ``uni_mmr``, ``status`` (uint16 index into the ``status_names`` tuple);
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
        crossing bisected to ``tol`` relative (in (0, 1)). Per path, per threshold: None, or
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
    def liquidation_plan(
        self,
        portfolio: Portfolio,
        market: Market,
        target: int,
        *,
        force: bool = False,
        rel_tol: float,
    ) -> _PlanDict:
        """The greedy liquidation plan until uniMMR reaches the threshold of status
        rank ``target``; no steps above the liquidation level unless ``force``."""
    def apply_plan(
        self,
        portfolio: Portfolio,
        market: Market,
        actions: Iterable[Mapping[str, Any]],
    ) -> Portfolio:
        """``portfolio`` after the plan steps ``actions`` (``_PlanStepDict``s, or any
        mappings with the keys a replay reads); errors name ``actions[i]``."""

@final
class ClassicResult:
    """Classic (isolated / cross) margin of an account, USD (METHODOLOGY.md §5)."""

    @property
    def mode(self) -> _ClassicMode: ...
    @property
    def equity(self) -> float: ...
    @property
    def maintenance_margin(self) -> float: ...
    @property
    def initial_margin(self) -> float: ...
    @property
    def available(self) -> float: ...
    @property
    def status(self) -> _ClassicStatus: ...
    @property
    def usdm(self) -> _WalletDict: ...
    @property
    def coinm(self) -> list[_WalletDict]: ...
    @property
    def cross_margin(self) -> _CrossMarginDict: ...
    @property
    def positions(self) -> list[_ClassicPositionDict]: ...
    def to_dict(self) -> dict[str, Any]: ...
    def to_json(self, indent: int | None = None) -> str: ...

@final
class OrderCheck:
    """The outcome of ``LiveAccount.check_order``."""

    @property
    def allowed(self) -> bool: ...
    @property
    def reason(self) -> _Refusal | None:
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
        side: _Side,
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
