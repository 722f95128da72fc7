"""Binance Portfolio Margin exports → pmengine's portfolio, market and profile.

An export is a folder of Binance's API responses saved as JSON, one file per
endpoint (or a dict of the same names to parsed JSON):

| file | endpoint | |
| --- | --- | --- |
| ``balance.json`` | ``GET /papi/v1/balance`` | required |
| ``um_positionRisk.json`` | ``GET /papi/v1/um/positionRisk`` | required |
| ``cm_positionRisk.json`` | ``GET /papi/v1/cm/positionRisk`` | required |
| ``um_leverageBracket.json`` | ``GET /papi/v1/um/leverageBracket`` | required |
| ``cm_leverageBracket.json`` | ``GET /papi/v1/cm/leverageBracket`` | required |
| ``collateralRate.json`` | ``GET /sapi/v1/portfolio/collateralRate`` (flat) or ``/sapi/v2/...`` (tiered) | required |
| ``assetIndexPrice.json`` | ``GET /sapi/v1/portfolio/asset-index-price`` | required |
| ``marginLeverage.json`` | ``GET /sapi/v1/portfolio/margin-asset-leverage`` | optional: loans at 3× |
| ``cm_exchangeInfo.json`` | ``GET /dapi/v1/exchangeInfo`` (``symbols[].contractSize``) | optional: 100 USD BTCUSD, 10 USD others |
| ``account.json``, ``um_account.json``, ``cm_account.json`` | ``GET /papi/v1/account``, ``/papi/v1/um/account``, ``/papi/v1/cm/account`` | optional: Binance's own figures, for the parity report |

>>> from pmengine.exchanges import binance
>>> acct = binance.load_export("my_export/")       # doctest: +SKIP
>>> acct.portfolio, acct.market, acct.profile      # doctest: +SKIP
>>> acct.to_files("imported/")                     # doctest: +SKIP

What real exports contain is accepted: decimal strings, ``""`` as absent, a
thousands comma (``"122,559.90199491"``), ``qtylFloor`` for ``qtyFloor``,
``notionalCoef`` as a string or a number (informational, never applied),
``balance`` as an array or a single object, hedge-mode LONG and SHORT rows.
Anything else is an :class:`~pmengine.errors.InvalidInputError` naming the file
and the field: ``um_positionRisk.json[2].positionAmt: must be a decimal number,
got "abc"``.

The readings taken where the exports leave a choice (the wallet, hedge mode,
bands, times) are in docs/BINANCE.md §4.
"""

from __future__ import annotations

import json
import math
import os
import random
import re
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from pmengine._core import BANKRUPT, parse_time
from pmengine.errors import InputFileError, InvalidInputError, PmError
from pmengine.exchanges import toml_dumps, write_files_atomically
from pmengine.files import parse_json, read_text

REQUIRED = (
    "balance",
    "um_positionRisk",
    "cm_positionRisk",
    "um_leverageBracket",
    "cm_leverageBracket",
    "collateralRate",
    "assetIndexPrice",
)
OPTIONAL = ("marginLeverage", "cm_exchangeInfo", "account", "um_account", "cm_account")
ENDPOINTS = REQUIRED + OPTIONAL

MARGIN_ASSETS = ("USDT", "USDC")  # USDⓈ-M symbols end in one of these (before any "_")
SIDES = ("BOTH", "LONG", "SHORT")
MAX_MS = 253_402_300_800_000  # 10000-01-01T00:00:00Z: the end of ISO-8601's 4-digit years

__all__ = [
    "ENDPOINTS",
    "OPTIONAL",
    "REQUIRED",
    "BinanceAccount",
    "PositionSource",
    "binance_pm_margin",
    "cm_contract_size",
    "default_profile_dict",
    "iso_from_ms",
    "load_export",
    "model_figures",
    "parity",
    "split_cm_symbol",
    "split_um_symbol",
    "synthetic_export",
    "with_reported",
]


# --------------------------------------------------------------------------------------
# Reading values: decimal strings, "" as absent, a thousands comma
# --------------------------------------------------------------------------------------

_DECIMAL = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_GROUPED = re.compile(r"^[+-]?\d{1,3}(,\d{3})+(\.\d*)?$")


def _show(v: Any) -> str:
    try:
        return json.dumps(v, ensure_ascii=False)
    except (TypeError, ValueError):
        return repr(v)


def _at(file: str, path: str) -> str:
    return f"{file}.json{path}"


def _bad(file: str, path: str, msg: str) -> InvalidInputError:
    return InvalidInputError.at(_at(file, path), msg)


def _decimal(v: Any, file: str, path: str) -> Decimal | None:
    """A decimal from a string or a JSON number; ``None`` for absent (missing, null or "")."""
    if v is None:
        return None
    if isinstance(v, bool):
        raise _bad(file, path, f"must be a decimal number, got {_show(v)}")
    if isinstance(v, int):
        return Decimal(v)
    if isinstance(v, float):
        if not math.isfinite(v):
            raise _bad(file, path, f"must be a decimal number, got {v}")
        return Decimal(repr(v))
    if isinstance(v, str):
        s = v.strip()
        if s == "":
            return None
        if _GROUPED.match(s):
            s = s.replace(",", "")
        if _DECIMAL.match(s):
            try:
                d = Decimal(s)
            except InvalidOperation:  # pragma: no cover - the pattern admits only decimals
                pass
            else:
                if math.isfinite(float(d)):
                    return d
    raise _bad(file, path, f"must be a decimal number, got {_show(v)}")


def _field(row: dict[str, Any], key: str, file: str, path: str) -> Decimal | None:
    return _decimal(row.get(key), file, f"{path}.{key}")


def _required(row: dict[str, Any], key: str, file: str, path: str) -> Decimal:
    if key not in row:
        raise _bad(file, f"{path}.{key}", "missing")
    d = _field(row, key, file, path)
    if d is None:
        raise _bad(file, f"{path}.{key}", f"required, got {_show(row[key])}")
    return d


def _positive(d: Decimal | None, file: str, path: str) -> Decimal | None:
    if d is not None and d <= 0:
        raise _bad(file, path, f"must be > 0, got {d}")
    return d


def _non_negative(d: Decimal | None, file: str, path: str) -> Decimal | None:
    if d is not None and d < 0:
        raise _bad(file, path, f"must be >= 0, got {d}")
    return d


def _rate(d: Decimal | None, file: str, path: str) -> Decimal | None:
    if d is not None and not 0 <= d <= 1:
        raise _bad(file, path, f"must be a rate in [0, 1], got {d}")
    return d


def _string(row: dict[str, Any], key: str, file: str, path: str) -> str:
    v = row.get(key)
    if not isinstance(v, str) or not v.strip():
        raise _bad(file, f"{path}.{key}", f"must be a non-empty string, got {_show(v)}")
    return v.strip()


def _num(d: Decimal) -> int | float:
    """A JSON / TOML number: an int when the decimal is whole (and exact as a float)."""
    if d == d.to_integral_value() and abs(d) < 2**53:
        return int(d)
    return float(d)


def _rows(v: Any, file: str, *, single_ok: bool = True) -> tuple[list[Any], bool]:
    """A list endpoint's rows; a single object (Binance's reply when one item is asked for) too."""
    if isinstance(v, list):
        return v, False
    if single_ok and isinstance(v, dict):
        return [v], True
    raise _bad(file, "", f"must be a JSON array of objects, got {type(v).__name__}")


def _row_path(i: int, single: bool) -> str:
    return "" if single else f"[{i}]"


def _object(row: Any, file: str, path: str) -> dict[str, Any]:
    if not isinstance(row, dict):
        raise _bad(file, path, f"must be an object, got {_show(row)}")
    return row


def _asset_rows(data: Any, f: str) -> Iterator[tuple[str, dict[str, Any], str]]:
    """``(path, row, asset)`` of an endpoint listing one row per asset; an asset
    listed twice is an error naming the row."""
    rows, single = _rows(data, f)
    seen: set[str] = set()
    for i, row in enumerate(rows):
        p = _row_path(i, single)
        row = _object(row, f, p)
        asset = _string(row, "asset", f, p)
        if asset in seen:
            raise _bad(f, f"{p}.asset", f"{asset} is listed twice")
        seen.add(asset)
        yield p, row, asset


def _ms(v: Any, file: str, path: str) -> int | None:
    d = _decimal(v, file, path)
    if d is None:
        return None
    if d < 0 or d != d.to_integral_value() or d >= MAX_MS:
        raise _bad(file, path, f"must be a time in milliseconds, got {_show(v)}")
    return int(d)


def iso_from_ms(ms: int | float) -> str:
    """Milliseconds since the epoch as an ISO-8601 UTC time (``2022-07-13T10:13:32.154Z``)."""
    t = datetime.fromtimestamp(ms / 1000.0, UTC)
    return t.isoformat(timespec="milliseconds").replace("+00:00", "Z")


# --------------------------------------------------------------------------------------
# Symbols
# --------------------------------------------------------------------------------------


def split_um_symbol(symbol: str) -> tuple[str, str]:
    """``(underlying, margin asset)`` of a USDⓈ-M symbol: ``BTCUSDT_250627`` → ``("BTC", "USDT")``.

    Raises ``ValueError`` for a symbol that does not end in USDT or USDC.
    """
    pair = symbol.split("_", 1)[0]
    for settle in MARGIN_ASSETS:
        if pair.endswith(settle) and len(pair) > len(settle):
            return pair[: -len(settle)], settle
    raise ValueError(f"must end in {' or '.join(MARGIN_ASSETS)} (the margin asset), got {symbol!r}")


def split_cm_symbol(symbol: str) -> str:
    """The coin of a COIN-M symbol: ``BTCUSD_PERP`` → ``BTC`` (``ValueError`` otherwise)."""
    pair = symbol.split("_", 1)[0]
    if pair.endswith("USD") and len(pair) > 3:
        return pair[:-3]
    raise ValueError(f"must be a COIN-M symbol such as BTCUSD_PERP, got {symbol!r}")


def cm_contract_size(symbol: str) -> int:
    """Binance's COIN-M contract size without ``exchangeInfo``: 100 USD for BTCUSD, else 10 USD."""
    return 100 if symbol.split("_", 1)[0] == "BTCUSD" else 10


# --------------------------------------------------------------------------------------
# The account
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PositionSource:
    """Where a portfolio position came from: ``market`` is ``"um"`` or ``"cm"``."""

    market: str
    symbol: str
    side: str  # BOTH (one-way mode), LONG or SHORT (hedge mode)
    file: str  # "um_positionRisk.json"
    index: int  # the row in that file

    @property
    def label(self) -> str:
        return self.symbol if self.side == "BOTH" else f"{self.symbol} {self.side}"


@dataclass
class BinanceAccount:
    """A Binance Portfolio Margin account as pmengine reads it.

    - ``portfolio``: the portfolio JSON format (``balances``, ``loans``,
      ``positions``; docs/BINANCE.md §3), one position per non-zero row of the
      position files (``sources[i]`` says which row ``positions[i]`` came from).
    - ``market``: ``time`` (the newest ``updateTime``), ``prices`` (index prices,
      USD), ``marks`` (``markPrice`` per symbol).
    - ``profile``: the default profile with ``model = "binance_pm"``, the
      account's brackets (``brackets.usdm`` / ``brackets.coinm`` by symbol), its
      collateral bands and its loan leverages.
    - ``reported``: Binance's own figures (``account`` from account.json in
      pmengine's names; ``positions`` from the position and account files;
      ``assets`` from balance.json), in Binance's units, ``None`` where absent.
    - ``notional_coef``: ``notionalCoef`` of each bracket table (informational).
    - ``warnings``: what the export lacks for margining (a price, a collateral
      rate, a bracket table), one sentence each.
    """

    portfolio: dict[str, Any]
    market: dict[str, Any]
    profile: dict[str, Any]
    reported: dict[str, Any]
    sources: list[PositionSource] = field(default_factory=list)
    notional_coef: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def profile_toml(self) -> str:
        """The profile as TOML text (``tomllib`` reads back ``self.profile``)."""
        header = (
            "pmengine profile imported from a Binance Portfolio Margin export\n"
            '(pmengine import binance). model = "binance_pm": docs/BINANCE.md.\n'
            "Brackets, collateral rates and loan leverages are the account's own;\n"
            "the rest is the default profile."
        )
        return toml_dumps(self.profile, header=header)

    def to_files(self, out_dir: str | Path) -> Path:
        """Write ``portfolio.json``, ``market.json`` and ``profile.toml`` into ``out_dir``.

        Atomic: every file is written into a temporary folder beside ``out_dir``
        first, then moved in; on an error nothing in ``out_dir`` changes.
        """
        files = {
            "portfolio.json": json.dumps(self.portfolio, indent=2) + "\n",
            "market.json": json.dumps(self.market, indent=2) + "\n",
            "profile.toml": self.profile_toml(),
        }
        return write_files_atomically(out_dir, files)

    def reported_position(self, source: PositionSource) -> dict[str, Any] | None:
        """Binance's figures for the position that came from ``source``, if exported."""
        for r in self.reported.get("positions", []):
            if (r["market"], r["symbol"], r["side"]) == (source.market, source.symbol, source.side):
                return dict(r)
        return None


def default_profile_dict() -> dict[str, Any]:
    """The bundled default profile (``pmengine.DEFAULT_PROFILE_TOML``) as a dict."""
    from pmengine._core import DEFAULT_PROFILE_TOML

    return tomllib.loads(DEFAULT_PROFILE_TOML)


def _read_source(source: str | Path | dict[str, Any]) -> dict[str, Any]:
    if isinstance(source, dict):
        files: dict[str, Any] = {}
        for k, v in source.items():
            name = str(k).removesuffix(".json")
            if name not in ENDPOINTS:
                raise InvalidInputError.at(
                    f"export.{k}",
                    f"unknown endpoint file (expected one of {', '.join(ENDPOINTS)})",
                    "unknown_key",
                )
            files[name] = v
        for name in REQUIRED:
            if name not in files:
                raise InvalidInputError.at(f"{name}.json", "missing from the export", "missing")
        return files
    folder = Path(source)
    if not folder.is_dir():
        raise InputFileError.at(folder, "not a folder of Binance export files")
    files = {}
    for name in ENDPOINTS:
        path = folder / f"{name}.json"
        if not os.path.lexists(path):
            if name in REQUIRED:
                raise InvalidInputError.at(f"{name}.json", f"missing from {folder}", "missing")
            continue
        # Content errors name the endpoint file, as every error of its fields does;
        # each endpoint's parser checks the top level's shape.
        files[name] = parse_json(f"{name}.json", read_text(path), expect=None)
    return files


def load_export(source: str | Path | dict[str, Any]) -> BinanceAccount:
    """Read a Binance Portfolio Margin export (a folder, or a dict of endpoint name → JSON).

    Returns the account as pmengine's portfolio, market and ``binance_pm``
    profile, with Binance's own figures in ``reported``. Raises
    :class:`~pmengine.errors.InvalidInputError` naming the file and the field of
    the first value it cannot read; :class:`~pmengine.errors.InputFileError`
    when the folder or a file cannot be read.
    """
    files = _read_source(source)
    times: list[int] = []
    warnings: list[str] = []

    balances, loans, reported_assets = _balances(files["balance"], times, warnings)
    sizes = _contract_sizes(files.get("cm_exchangeInfo"))
    marks: dict[str, tuple[int, float]] = {}
    positions: list[dict[str, Any]] = []
    sources: list[PositionSource] = []
    reported_positions: list[dict[str, Any]] = []
    for market in ("um", "cm"):
        _positions(
            files[f"{market}_positionRisk"],
            market,
            sizes,
            positions,
            sources,
            marks,
            reported_positions,
            times,
        )
    usdm, usdm_coef = _brackets(files["um_leverageBracket"], "um")
    coinm, coinm_coef = _brackets(files["cm_leverageBracket"], "cm")
    collateral = _collateral(files["collateralRate"])
    prices = _prices(files["assetIndexPrice"], times)
    profile = default_profile_dict()
    loan_mmr = profile.get("binance", {}).get("loan_mmr", {})
    leverages = _leverages(files.get("marginLeverage"), loan_mmr)
    account = _account(files.get("account"), times)
    for market in ("um", "cm"):
        _account_positions(files.get(f"{market}_account"), market, reported_positions, times)

    if not times:
        raise InvalidInputError.at(
            "balance.json", "no updateTime in the export (the market's time is the newest one)"
        )
    time = iso_from_ms(max(times))

    profile["name"] = "binance-export"
    profile["model"] = "binance_pm"
    brackets = profile.setdefault("brackets", {})
    brackets.setdefault("usdm", {}).update(usdm)
    brackets.setdefault("coinm", {}).update(coinm)
    assets = profile.setdefault("assets", {})
    for t in assets.values():
        t.pop("collateral", None)  # Binance's rates only (a reading, docs/BINANCE.md)
    for a, bands in collateral.items():
        assets.setdefault(a, {})["collateral"] = bands
    for a, lev in leverages.items():
        assets.setdefault(a, {})["loan_leverage"] = lev

    portfolio: dict[str, Any] = {
        "description": f"Binance portfolio margin export of {time}",
        "balances": balances,
        "loans": loans,
        "positions": positions,
    }
    market_d = {
        "time": time,
        "prices": prices,
        "marks": {s: m for s, (_, m) in marks.items()},
    }
    _warn_missing(portfolio, prices, collateral, usdm, coinm, warnings)
    return BinanceAccount(
        portfolio=portfolio,
        market=market_d,
        profile=profile,
        reported={"account": account, "positions": reported_positions, "assets": reported_assets},
        sources=sources,
        notional_coef={**usdm_coef, **coinm_coef},
        warnings=warnings,
    )


def _balances(
    data: Any, times: list[int], warnings: list[str]
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    f = "balance"
    balances: dict[str, Any] = {}
    loans: dict[str, Any] = {}
    reported: dict[str, Any] = {}
    for p, row, asset in _asset_rows(data, f):
        free = _field(row, "crossMarginFree", f, p)
        locked = _field(row, "crossMarginLocked", f, p)
        cross_asset = _field(row, "crossMarginAsset", f, p)
        borrowed = _non_negative(
            _field(row, "crossMarginBorrowed", f, p), f, f"{p}.crossMarginBorrowed"
        )
        interest = _non_negative(
            _field(row, "crossMarginInterest", f, p), f, f"{p}.crossMarginInterest"
        )
        um = _field(row, "umWalletBalance", f, p) or Decimal(0)
        cm = _field(row, "cmWalletBalance", f, p) or Decimal(0)
        if free is not None or locked is not None:
            cross = (free or Decimal(0)) + (locked or Decimal(0))
            if cross_asset is not None and cross_asset != cross:
                warnings.append(
                    f"{_at(f, p)}.crossMarginAsset: {cross_asset} is not crossMarginFree + "
                    f"crossMarginLocked = {cross}: the free and locked amounts are used"
                )
        else:
            cross = cross_asset or Decimal(0)
        total = cross + um + cm
        if total != 0:
            balances[asset] = _num(total)
        b, it = borrowed or Decimal(0), interest or Decimal(0)
        if b > 0 or it > 0:
            loans[asset] = {"borrowed": _num(b), "interest": _num(it)}
        t = _ms(row.get("updateTime"), f, f"{p}.updateTime")
        if t:
            times.append(t)
        fig = {
            "total_wallet_balance": _field(row, "totalWalletBalance", f, p),
            "um_upnl": _field(row, "umUnrealizedPNL", f, p),
            "cm_upnl": _field(row, "cmUnrealizedPNL", f, p),
            "negative_balance": _field(row, "negativeBalance", f, p),
        }
        reported[asset] = {k: None if v is None else float(v) for k, v in fig.items()}
    return balances, loans, reported


def _contract_sizes(data: Any) -> dict[str, Decimal]:
    if data is None:
        return {}
    f = "cm_exchangeInfo"
    info = _object(data, f, "")
    symbols = info.get("symbols")
    if not isinstance(symbols, list):
        raise _bad(f, ".symbols", f"must be a JSON array, got {_show(symbols)}")
    out: dict[str, Decimal] = {}
    for i, s in enumerate(symbols):
        p = f".symbols[{i}]"
        s = _object(s, f, p)
        sym = _string(s, "symbol", f, p)
        size = _positive(_field(s, "contractSize", f, p), f, f"{p}.contractSize")
        if size is not None:
            out[sym] = size
    return out


def _positions(
    data: Any,
    market: str,
    sizes: dict[str, Decimal],
    positions: list[dict[str, Any]],
    sources: list[PositionSource],
    marks: dict[str, tuple[int, float]],
    reported: list[dict[str, Any]],
    times: list[int],
) -> None:
    f = f"{market}_positionRisk"
    rows, single = _rows(data, f)
    seen: set[tuple[str, str]] = set()
    for i, row in enumerate(rows):
        p = _row_path(i, single)
        row = _object(row, f, p)
        symbol = _string(row, "symbol", f, p)
        amt = _required(row, "positionAmt", f, p)
        side_v = row.get("positionSide")
        side = "BOTH" if side_v in (None, "") else str(side_v).strip().upper()
        if side not in SIDES:
            raise _bad(f, f"{p}.positionSide", f"must be BOTH, LONG or SHORT, got {_show(side_v)}")
        if amt == 0:
            continue
        if (symbol, side) in seen:
            raise _bad(f, p, f"{symbol} {side} is listed twice")
        seen.add((symbol, side))
        qty = abs(amt) if side == "LONG" else -abs(amt) if side == "SHORT" else amt
        entry = _positive(_required(row, "entryPrice", f, p), f, f"{p}.entryPrice")
        mark = _positive(_field(row, "markPrice", f, p), f, f"{p}.markPrice")
        lev = _positive(_field(row, "leverage", f, p), f, f"{p}.leverage")
        t = _ms(row.get("updateTime"), f, f"{p}.updateTime") or 0
        if t:
            times.append(t)
        assert entry is not None
        if market == "um":
            try:
                underlying, settle = split_um_symbol(symbol)
            except ValueError as e:
                raise _bad(f, f"{p}.symbol", str(e)) from None
            pos: dict[str, Any] = {
                "type": "linear",
                "symbol": symbol,
                "underlying": underlying,
                "settle": settle,
                "qty": _num(qty),
                "entry_price": _num(entry),
            }
            unit = settle
        else:
            try:
                underlying = split_cm_symbol(symbol)
            except ValueError as e:
                raise _bad(f, f"{p}.symbol", str(e)) from None
            size = sizes.get(symbol) or sizes.get(symbol.split("_", 1)[0])
            pos = {
                "type": "inverse",
                "symbol": symbol,
                "underlying": underlying,
                "contract_size": _num(size) if size is not None else cm_contract_size(symbol),
                "contracts": _num(qty),
                "entry_price": _num(entry),
            }
            unit = underlying
        if lev is not None:
            pos["leverage"] = _num(lev)
        positions.append(pos)
        sources.append(PositionSource(market, symbol, side, f"{f}.json", i))
        if mark is not None and (symbol not in marks or t >= marks[symbol][0]):
            marks[symbol] = (t, float(mark))
        upnl = _field(row, "unRealizedProfit", f, p)
        notional = _field(row, "notional" if market == "um" else "notionalValue", f, p)
        reported.append(
            {
                "market": market,
                "symbol": symbol,
                "side": side,
                "unit": unit,
                "upnl": None if upnl is None else float(upnl),
                "notional": None if notional is None else float(notional),
                "maintenance_margin": None,
                "initial_margin": None,
            }
        )


def _brackets(data: Any, market: str) -> tuple[dict[str, list[dict[str, Any]]], dict[str, float]]:
    f = f"{market}_leverageBracket"
    rows, single = _rows(data, f)
    cap_key, floor_keys = (
        ("notionalCap", ("notionalFloor",))
        if market == "um"
        else ("qtyCap", ("qtyFloor", "qtylFloor"))
    )
    tables: dict[str, list[dict[str, Any]]] = {}
    coefs: dict[str, float] = {}
    for i, row in enumerate(rows):
        p = _row_path(i, single)
        row = _object(row, f, p)
        key = "symbol" if "symbol" in row or "pair" not in row else "pair"
        symbol = _string(row, key, f, p)
        if symbol in tables:
            raise _bad(f, f"{p}.{key}", f"{symbol} is listed twice")
        coef = _positive(_field(row, "notionalCoef", f, p), f, f"{p}.notionalCoef")
        if coef is not None:
            coefs[symbol] = float(coef)
        brackets = row.get("brackets")
        if not isinstance(brackets, list) or not brackets:
            raise _bad(f, f"{p}.brackets", f"must be a non-empty JSON array, got {_show(brackets)}")
        parsed: list[
            tuple[int, Decimal | None, Decimal, Decimal, Decimal, Decimal | None, str, str]
        ] = []
        for j, b in enumerate(brackets):
            bp = f"{p}.brackets[{j}]"
            b = _object(b, f, bp)
            number = _required(b, "bracket", f, bp)
            if number != number.to_integral_value() or number < 1:
                raise _bad(
                    f, f"{bp}.bracket", f"must be a bracket number >= 1, got {_show(b['bracket'])}"
                )
            floor_key = next((k for k in floor_keys if k in b), floor_keys[0])
            floor = _non_negative(_field(b, floor_key, f, bp), f, f"{bp}.{floor_key}")
            cap = _positive(_required(b, cap_key, f, bp), f, f"{bp}.{cap_key}")
            mmr = _rate(_required(b, "maintMarginRatio", f, bp), f, f"{bp}.maintMarginRatio")
            lev = _positive(_required(b, "initialLeverage", f, bp), f, f"{bp}.initialLeverage")
            cum = _field(b, "cum", f, bp)
            assert cap is not None and mmr is not None and lev is not None
            parsed.append((int(number), floor, cap, mmr, lev, cum, bp, floor_key))
        parsed.sort(key=lambda x: x[0])
        table: list[dict[str, Any]] = []
        prev_cap = Decimal(0)
        for k, (n, floor, cap, mmr, lev, cum, bp, floor_key) in enumerate(parsed):
            if n != k + 1:
                raise _bad(
                    f, f"{bp}.bracket", f"brackets must be numbered 1..{len(parsed)}, got {n}"
                )
            if floor is not None and floor != prev_cap:
                raise _bad(
                    f,
                    f"{bp}.{floor_key}",
                    f"must equal the cap of the bracket below ({prev_cap}), got {floor}",
                )
            if cap <= prev_cap:
                raise _bad(f, f"{bp}.{cap_key}", f"must be above the floor {prev_cap}, got {cap}")
            entry: dict[str, Any] = {
                "up_to": _num(cap),
                "mmr": float(mmr),
                "max_leverage": _num(lev),
            }
            if cum is not None:
                entry["cum"] = _num(cum)
            table.append(entry)
            prev_cap = cap
        tables[symbol] = table
    return tables, coefs


def _collateral(data: Any) -> dict[str, list[dict[str, Any]]]:
    f = "collateralRate"
    out: dict[str, list[dict[str, Any]]] = {}
    for p, row, asset in _asset_rows(data, f):
        if "collateralInfo" in row:  # v2, tiered: marginal bands (tierFloor, tierCap]
            tiers = row["collateralInfo"]
            if not isinstance(tiers, list) or not tiers:
                raise _bad(
                    f, f"{p}.collateralInfo", f"must be a non-empty JSON array, got {_show(tiers)}"
                )
            bands: list[tuple[Decimal, Decimal | None, Decimal, str]] = []
            for j, t in enumerate(tiers):
                tp = f"{p}.collateralInfo[{j}]"
                t = _object(t, f, tp)
                lo = _non_negative(_field(t, "tierFloor", f, tp), f, f"{tp}.tierFloor")
                hi = _positive(_field(t, "tierCap", f, tp), f, f"{tp}.tierCap")
                rate = _rate(_required(t, "collateralRate", f, tp), f, f"{tp}.collateralRate")
                assert rate is not None
                bands.append((lo if lo is not None else Decimal(0), hi, rate, tp))
            bands.sort(key=lambda b: b[0])
            out[asset] = []
            prev: Decimal = Decimal(0)
            for k, (lo, hi, rate, tp) in enumerate(bands):
                last = k + 1 == len(bands)
                if lo != prev:
                    raise _bad(
                        f,
                        f"{tp}.tierFloor",
                        f"must equal the cap of the tier below ({prev}), got {lo}",
                    )
                if hi is None and not last:
                    raise _bad(f, f"{tp}.tierCap", "required on every tier but the last")
                if hi is not None and hi <= lo:
                    raise _bad(f, f"{tp}.tierCap", f"must be above tierFloor {lo}, got {hi}")
                band: dict[str, Any] = {"rate": float(rate)}
                if hi is not None:
                    band["up_to"] = _num(hi)
                    prev = hi
                out[asset].append(band)
        elif "collateralRate" in row:  # v1, flat
            rate = _rate(_required(row, "collateralRate", f, p), f, f"{p}.collateralRate")
            assert rate is not None
            out[asset] = [{"rate": float(rate)}]
        else:
            raise _bad(
                f, p, "has neither collateralRate (v1, flat) nor collateralInfo (v2, tiered)"
            )
    return out


def _prices(data: Any, times: list[int]) -> dict[str, float]:
    f = "assetIndexPrice"
    out: dict[str, float] = {}
    for p, row, asset in _asset_rows(data, f):
        price = _positive(_required(row, "assetIndexPrice", f, p), f, f"{p}.assetIndexPrice")
        assert price is not None
        out[asset] = float(price)
        t = _ms(row.get("time"), f, f"{p}.time")
        if t:
            times.append(t)
    return out


def _leverages(data: Any, loan_mmr: dict[str, Any]) -> dict[str, int | float]:
    if data is None:
        return {}
    f = "marginLeverage"
    rows, single = _rows(data, f)
    known = {}
    for k in loan_mmr:
        try:
            known[Decimal(str(k).strip())] = k
        except InvalidOperation:
            continue
    out: dict[str, int | float] = {}
    for i, row in enumerate(rows):
        p = _row_path(i, single)
        row = _object(row, f, p)
        asset = _string(row, "asset", f, p)
        lev = _positive(_required(row, "leverage", f, p), f, f"{p}.leverage")
        assert lev is not None
        if known and lev not in known:
            listed = ", ".join(str(_num(k)) for k in sorted(known))
            raise _bad(
                f,
                f"{p}.leverage",
                f"must be one of {listed} (binance.loan_mmr), got {_show(row['leverage'])}",
            )
        out[asset] = _num(lev)
    return out


ACCOUNT_FIELDS = (  # account.json field → pmengine's name
    ("actualEquity", "equity"),
    ("accountEquity", "adjusted_equity"),
    ("accountMaintMargin", "maintenance_margin"),
    ("accountInitialMargin", "initial_margin"),
    ("uniMMR", "uni_mmr"),
    ("totalAvailableBalance", "available"),
    ("virtualMaxWithdrawAmount", "virtual_max_withdraw"),
    ("totalMarginOpenLoss", "open_loss"),
)


def _account(data: Any, times: list[int]) -> dict[str, Any] | None:
    if data is None:
        return None
    f = "account"
    row = _object(data, f, "")
    out: dict[str, Any] = {}
    for key, name in ACCOUNT_FIELDS:
        d = _field(row, key, f, "")
        out[name] = None if d is None else float(d)
    status = row.get("accountStatus")
    if status not in (None, "") and not isinstance(status, str):
        raise _bad(f, ".accountStatus", f"must be a string, got {_show(status)}")
    out["status"] = status or None
    t = _ms(row.get("updateTime"), f, ".updateTime")
    if t:
        times.append(t)
    return out


def _account_positions(
    data: Any, market: str, reported: list[dict[str, Any]], times: list[int]
) -> None:
    if data is None:
        return
    f = f"{market}_account"
    acct = _object(data, f, "")
    rows = acct.get("positions", [])
    if not isinstance(rows, list):
        raise _bad(f, ".positions", f"must be a JSON array, got {_show(rows)}")
    for i, row in enumerate(rows):
        p = f".positions[{i}]"
        row = _object(row, f, p)
        symbol = _string(row, "symbol", f, p)
        side_v = row.get("positionSide")
        side = "BOTH" if side_v in (None, "") else str(side_v).strip().upper()
        if side not in SIDES:
            raise _bad(f, f"{p}.positionSide", f"must be BOTH, LONG or SHORT, got {_show(side_v)}")
        amt = _field(row, "positionAmt", f, p)
        mm = _field(row, "maintMargin", f, p)
        im = _field(row, "initialMargin", f, p)
        upnl = _field(row, "unrealizedProfit", f, p)
        if amt == 0 or (amt is None and not mm and not im):
            continue
        t = _ms(row.get("updateTime"), f, f"{p}.updateTime")
        if t:
            times.append(t)
        match = next(
            (
                r
                for r in reported
                if (r["market"], r["symbol"], r["side"]) == (market, symbol, side)
            ),
            None,
        )
        if match is None:  # Binance reports a position the position file does not list
            match = {
                "market": market,
                "symbol": symbol,
                "side": side,
                "unit": None,
                "upnl": None,
                "notional": None,
                "maintenance_margin": None,
                "initial_margin": None,
                "unmatched": True,
            }
            reported.append(match)
        match["maintenance_margin"] = None if mm is None else float(mm)
        match["initial_margin"] = None if im is None else float(im)
        if upnl is not None:
            match["upnl"] = float(upnl)


def _warn_missing(
    portfolio: dict[str, Any],
    prices: dict[str, float],
    collateral: dict[str, Any],
    usdm: dict[str, Any],
    coinm: dict[str, Any],
    warnings: list[str],
) -> None:
    held: list[str] = [*portfolio["balances"], *portfolio["loans"]]
    for pos in portfolio["positions"]:
        held += [pos["underlying"], pos.get("settle", pos["underlying"])]
    for a in dict.fromkeys(held):
        if a not in prices:
            warnings.append(f"assetIndexPrice.json: no price for {a}, which the account holds")
        if a not in collateral and (a in portfolio["balances"] or a in portfolio["loans"]):
            warnings.append(
                f"collateralRate.json: no collateral rate for {a}, which the account holds"
            )
    for pos in portfolio["positions"]:
        table, file = (usdm, "um") if pos["type"] == "linear" else (coinm, "cm")
        sym = pos["symbol"]
        if sym not in table and sym.split("_", 1)[0] not in table:
            warnings.append(
                f"{file}_leverageBracket.json: no brackets for {sym}: the default profile's table is used"
            )
    warnings[:] = list(dict.fromkeys(warnings))


# --------------------------------------------------------------------------------------
# pmengine's binance_pm figures, and the parity report
# --------------------------------------------------------------------------------------


def binance_pm_margin(
    portfolio: dict[str, Any], market: dict[str, Any], profile: dict[str, Any]
) -> dict[str, Any]:
    """pmengine's ``binance_pm`` result dict for JSON-shaped inputs and a profile dict.

    The one place the parity report gets the model's figures from: the native
    engine (the pure-Python reference gives the same figures:
    ``reference.margin(portfolio, market, reference.load_profile(profile))``).
    """
    import pmengine as pm

    engine = pm.Engine(pm.RiskParams.from_dict(profile))
    result: dict[str, Any] = engine.margin(
        pm.Portfolio.from_dict(portfolio), pm.Market.from_dict(market)
    ).to_dict()
    return result


def model_figures(
    result: dict[str, Any], portfolio: dict[str, Any], market: dict[str, Any]
) -> dict[str, Any]:
    """A ``binance_pm`` result dict in the shape the parity report reads.

    ``account``: equity, adjusted equity, MM, IM, available (USD), uniMMR
    (``None`` when infinite) and status; ``positions[i]`` (for
    ``portfolio["positions"][i]``): MM, IM, UPnL and notional in the position's
    margin asset (``unit``: USDT or USDC, the coin for COIN-M: the units of the
    result's ``positions`` rows and of Binance's figures) and its bracket.
    """
    uni = result.get("uni_mmr")
    account = {
        "equity": result.get("equity"),
        "adjusted_equity": result.get("adjusted_equity"),
        "maintenance_margin": result.get("maintenance_margin"),
        "initial_margin": result.get("initial_margin"),
        "available": result.get("available"),
        "uni_mmr": None if uni is None or (isinstance(uni, float) and math.isinf(uni)) else uni,
        "status": result.get("status"),
    }
    rows = {r.get("index", i): r for i, r in enumerate(result.get("positions", []))}
    positions = []
    for i, pos in enumerate(portfolio["positions"]):
        r = rows.get(i, {})
        unit = pos.get("settle", "USDT") if pos["type"] == "linear" else pos["underlying"]
        positions.append(
            {
                "unit": r.get("asset", unit),
                "maintenance_margin": r.get("maintenance_margin"),
                "initial_margin": r.get("initial_margin"),
                "upnl": r.get("upnl"),
                "notional": r.get("notional"),
                "bracket": r.get("bracket"),
            }
        )
    return {"account": account, "positions": positions}


def _scenario_figures(
    portfolio: dict[str, Any], market: dict[str, Any], profile: dict[str, Any]
) -> tuple[dict[str, Any], list[float | None]]:
    """The scenario model on the account, and each position margined alone (USD),
    with the account's own profile (its collateral rates), so the difference from
    ``binance_pm`` is the margin model's alone."""
    import pmengine as pm

    engine = pm.Engine(pm.RiskParams.from_dict(profile).with_model("scenario"))
    m = pm.Market.from_dict(market)
    r: dict[str, Any] = engine.margin(pm.Portfolio.from_dict(portfolio), m).to_dict()
    alone: list[float | None] = []
    for pos in portfolio["positions"]:
        try:
            one = pm.Portfolio.from_dict({"balances": {}, "positions": [pos]})
            alone.append(engine.margin(one, m).maintenance_margin)
        except PmError:  # a figure the scenario model cannot give is shown as absent
            alone.append(None)
    return r, alone


TOLERANCE = 1e-6  # relative
ABS_FLOOR = 5e-9  # half a unit in the 8th decimal of Binance's strings


def _compare(
    figure: str, unit: str, binance: Any, ours: Any, scenario: Any = None
) -> dict[str, Any]:
    row: dict[str, Any] = {
        "figure": figure,
        "unit": unit,
        "binance": binance,
        "pmengine": ours,
        "scenario": scenario,
        "rel_diff": None,
        "differs": False,
    }
    if isinstance(binance, str) or isinstance(ours, str):  # the status, in pmengine's names
        theirs = STATUS_FROM_BINANCE.get(binance, binance) if isinstance(binance, str) else binance
        row["differs"] = binance is not None and ours is not None and theirs != ours
        return row
    if binance is None or ours is None:
        return row
    diff = abs(ours - binance)
    rel = diff / abs(binance) if binance != 0 else (0.0 if diff == 0 else math.inf)
    row["rel_diff"] = rel if math.isfinite(rel) else None
    row["differs"] = rel > TOLERANCE and diff > ABS_FLOOR
    return row


def parity(account: BinanceAccount) -> dict[str, Any]:
    """Binance's reported figures beside pmengine's ``binance_pm`` and scenario figures.

    ``account``: rows of ``figure``, ``unit``, ``binance``, ``pmengine``,
    ``scenario`` (the account's profile under the scenario model), ``rel_diff``
    (``|pmengine − binance| / |binance|``) and ``differs`` (above ``1e-6``
    relative and half a unit of Binance's 8th decimal); ``positions``: the same
    per position (MM, IM, UPnL in the position's margin asset; ``scenario``: the
    position margined alone); ``summary``: how many figures were compared and
    which differ, in words.
    """
    p, m = account.portfolio, account.market
    result = binance_pm_margin(p, m, account.profile)
    ours = model_figures(result, p, m)
    try:
        scen, alone = _scenario_figures(p, m, account.profile)
        scen_error = None
    except PmError as e:  # the scenario model is shown beside, not checked
        scen, alone, scen_error = {}, [None] * len(p["positions"]), str(e)
    rep = account.reported.get("account") or {}
    uni = scen.get("uni_mmr")
    scen_acct = {
        "equity": scen.get("equity"),
        "adjusted_equity": scen.get("adjusted_equity"),
        "maintenance_margin": scen.get("maintenance_margin"),
        "initial_margin": scen.get("initial_margin"),
        "available": scen.get("available"),
        "uni_mmr": uni,
        "status": scen.get("status"),
    }
    rows = [
        _compare(name, unit, rep.get(name), ours["account"].get(name), scen_acct.get(name))
        for name, unit in (
            ("equity", "USD"),
            ("adjusted_equity", "USD"),
            ("maintenance_margin", "USD"),
            ("initial_margin", "USD"),
            ("available", "USD"),
            ("uni_mmr", "ratio"),
            ("status", ""),
        )
    ]
    positions: list[dict[str, Any]] = []
    prices = m.get("prices", {})
    for i, src in enumerate(account.sources):
        mine = ours["positions"][i] if i < len(ours["positions"]) else {}
        theirs = account.reported_position(src) or {}
        unit = mine.get("unit") or theirs.get("unit") or ""
        px = prices.get(unit)
        scen_mm = alone[i] / px if alone[i] is not None and px else None
        positions.append(
            {
                "market": src.market,
                "symbol": src.symbol,
                "side": src.side,
                "label": src.label,
                "unit": unit,
                "figures": [
                    _compare(
                        "maintenance_margin",
                        unit,
                        theirs.get("maintenance_margin"),
                        mine.get("maintenance_margin"),
                        scen_mm,
                    ),
                    _compare(
                        "initial_margin",
                        unit,
                        theirs.get("initial_margin"),
                        mine.get("initial_margin"),
                    ),
                    _compare("upnl", unit, theirs.get("upnl"), mine.get("upnl")),
                ],
            }
        )
    unmatched = [
        f"{r['market']} {r['symbol']} {r['side']}"
        for r in account.reported.get("positions", [])
        if r.get("unmatched")
    ]
    checked = [r for r in rows if r["rel_diff"] is not None or isinstance(r["binance"], str)]
    checked += [
        f
        for pos in positions
        for f in pos["figures"]
        if f["binance"] is not None and f["pmengine"] is not None
    ]
    differ = [r for r in rows if r["differs"]]
    differ_pos = [(pos["label"], f) for pos in positions for f in pos["figures"] if f["differs"]]
    words = [f"{r['figure']} (account)" for r in differ] + [
        f"{f['figure']} of {lbl}" for lbl, f in differ_pos
    ]
    if not checked:
        text = "Binance's own figures are not in the export (account.json, um_account.json, cm_account.json): nothing to compare"
    elif words:
        text = (
            f"{len(words)} of {len(checked)} figures differ from Binance's by more than "
            f"{TOLERANCE:g} relative: " + ", ".join(words)
        )
    else:
        text = f"all {len(checked)} figures Binance reports match pmengine's binance_pm within {TOLERANCE:g} relative"
    if unmatched:
        text += "; Binance reports positions the position files do not list: " + ", ".join(
            unmatched
        )
    return {
        "model": "binance_pm",
        "time": m.get("time"),
        "tolerance": TOLERANCE,
        "account": rows,
        "positions": positions,
        "summary": {
            "compared": len(checked),
            "differ": len(words),
            "differing": words,
            "unmatched_reported_positions": unmatched,
            "scenario_error": scen_error,
            "warnings": list(account.warnings),
            "text": text,
        },
    }


# --------------------------------------------------------------------------------------
# Binance's figures for an export, and synthetic exports
# --------------------------------------------------------------------------------------

# pmengine's status → Binance's accountStatus, and back (SUPPLY_MARGIN is a reminder: reading).
STATUS_TO_BINANCE = {"LIQUIDATION": "ACTIVE_LIQUIDATION", BANKRUPT: "BANKRUPTED"}
STATUS_FROM_BINANCE = {
    "ACTIVE_LIQUIDATION": "LIQUIDATION",
    "FORCE_LIQUIDATION": "LIQUIDATION",
    "BANKRUPTED": BANKRUPT,
    "SUPPLY_MARGIN": "MARGIN_CALL",
}


def _f8(x: float) -> str:
    """A figure as Binance writes it: a decimal string with 8 decimals."""
    s = f"{x:.8f}"
    return "0.00000000" if s == "-0.00000000" else s


def _upnl(pos: dict[str, Any], market: dict[str, Any]) -> tuple[float, float]:
    """(UPnL, signed notional) of a position at its mark, in Binance's units.

    USDⓈ-M: ``qty · (mark − entry)`` and ``qty · mark`` in the margin asset;
    COIN-M: ``contracts · size · (1/entry − 1/mark)`` and ``contracts · size / mark`` in coin.
    """
    prices, marks = market["prices"], market.get("marks", {})
    if pos["type"] == "linear":
        m = (
            marks.get(pos["symbol"])
            or prices[pos["underlying"]] / prices[pos.get("settle", "USDT")]
        )
        return pos["qty"] * (m - pos["entry_price"]), pos["qty"] * m
    m = marks.get(pos["symbol"]) or prices[pos["underlying"]]
    usd = pos["contracts"] * pos["contract_size"]
    return usd * (1 / pos["entry_price"] - 1 / m), usd / m


def with_reported(export: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``export`` (dict form) with Binance's figures filled in by pmengine's formula.

    ``account.json``, ``um_account.json`` and ``cm_account.json``, each
    position row's ``unRealizedProfit`` and notional, and each balance row's
    ``umUnrealizedPNL``, ``cmUnrealizedPNL`` and ``totalWalletBalance`` are
    computed with :func:`pmengine.reference.margin` under ``binance_pm`` on the
    imported account, and written as Binance writes them (8-decimal strings).
    So an import of the result, margined, gives the figures back (to 8 decimals).
    """
    import copy

    from pmengine import reference

    out = copy.deepcopy({k.removesuffix(".json"): v for k, v in export.items()})
    for k in ("account", "um_account", "cm_account"):
        out.pop(k, None)
    acct = load_export(out)
    p, m = acct.portfolio, acct.market
    result = reference.margin(p, m, reference.load_profile(acct.profile))
    figs = model_figures(result, p, m)
    stamp = max(int(parse_time(m["time"], "market.time") * 1000), 0)

    upnl_by_asset: dict[tuple[str, str], float] = {}
    account_rows: dict[str, list[dict[str, Any]]] = {"um": [], "cm": []}
    account_assets: dict[str, dict[str, dict[str, float]]] = {"um": {}, "cm": {}}
    for i, (src, pos) in enumerate(zip(acct.sources, p["positions"], strict=True)):
        upnl, notional = _upnl(pos, m)
        rows, _ = _rows(out[f"{src.market}_positionRisk"], src.market)
        row = rows[src.index]
        row["unRealizedProfit"] = _f8(upnl)
        row["notional" if src.market == "um" else "notionalValue"] = _f8(notional)
        unit = pos.get("settle", "USDT") if pos["type"] == "linear" else pos["underlying"]
        key = (src.market, unit)
        upnl_by_asset[key] = upnl_by_asset.get(key, 0.0) + upnl
        f = figs["positions"][i]
        mm, im = f["maintenance_margin"] or 0.0, f["initial_margin"] or 0.0
        a = account_assets[src.market].setdefault(unit, {"upnl": 0.0, "mm": 0.0, "im": 0.0})
        a["upnl"] += upnl
        a["mm"] += mm
        a["im"] += im
        r = {
            "symbol": src.symbol,
            "initialMargin": _f8(im),
            "maintMargin": _f8(mm),
            "unrealizedProfit": _f8(upnl),
            "positionInitialMargin": _f8(im),
            "openOrderInitialMargin": "0",
            "leverage": str(pos.get("leverage", 20)),
            "entryPrice": str(pos["entry_price"]),
            "positionSide": src.side,
            "positionAmt": row["positionAmt"],
            "updateTime": row.get("updateTime", stamp),
        }
        if src.market == "um":
            r["bidNotional"], r["askNotional"] = "0", "0"
        account_rows[src.market].append(r)

    brows, _ = _rows(out["balance"], "balance")
    wallets: dict[tuple[str, str], str] = {}
    for row in brows:
        a = row["asset"]
        d = {
            k: _decimal(row.get(k), "balance", "") or Decimal(0)
            for k in ("crossMarginFree", "crossMarginLocked", "umWalletBalance", "cmWalletBalance")
        }
        row["totalWalletBalance"] = _f8(float(sum(d.values(), Decimal(0))))
        row["umUnrealizedPNL"] = _f8(upnl_by_asset.get(("um", a), 0.0))
        row["cmUnrealizedPNL"] = _f8(upnl_by_asset.get(("cm", a), 0.0))
        wallets[("um", a)] = _f8(float(d["umWalletBalance"]))
        wallets[("cm", a)] = _f8(float(d["cmWalletBalance"]))

    for market in ("um", "cm"):
        out[f"{market}_account"] = {
            "assets": [
                {
                    "asset": a,
                    "crossWalletBalance": wallets.get((market, a), "0.00000000"),
                    "crossUnPnl": _f8(v["upnl"]),
                    "maintMargin": _f8(v["mm"]),
                    "initialMargin": _f8(v["im"]),
                    "positionInitialMargin": _f8(v["im"]),
                    "openOrderInitialMargin": "0.00000000",
                    "updateTime": stamp,
                }
                for a, v in account_assets[market].items()
            ],
            "positions": account_rows[market],
        }
    acc = figs["account"]
    uni = acc["uni_mmr"]
    out["account"] = {
        "uniMMR": "" if uni is None else _f8(uni),
        "accountEquity": _f8(acc["adjusted_equity"]),
        "actualEquity": _f8(acc["equity"]),
        "accountInitialMargin": _f8(acc["initial_margin"]),
        "accountMaintMargin": _f8(acc["maintenance_margin"]),
        "accountStatus": STATUS_TO_BINANCE.get(acc["status"], acc["status"]),
        "virtualMaxWithdrawAmount": _f8(max(0.0, acc["available"])),
        "totalAvailableBalance": _f8(acc["available"]),
        "totalMarginOpenLoss": "",
        "updateTime": stamp,
    }
    return out


SYNTHETIC_TIME_MS = 1_795_478_400_000  # 2026-11-24T00:00:00Z
_INDEX = {"BTC": 60_000.0, "ETH": 3_000.0, "BNB": 600.0, "SOL": 150.0, "USDT": 1.0, "USDC": 1.0}
_UM_POOL = ("BTCUSDT", "ETHUSDT", "BTCUSDT_261225", "SOLUSDT", "BNBUSDT", "BTCUSDC", "ETHUSDC")
_CM_POOL = ("BTCUSD_PERP", "ETHUSD_PERP", "BTCUSD_261225", "BNBUSD_PERP")


def _with_cum(table: list[dict[str, Any]], coef: float) -> list[dict[str, Any]]:
    """Binance's export of a profile bracket table, caps × ``coef``, ``cum`` by the recursion."""
    rows = []
    cum, prev_cap, prev_mmr = 0.0, 0.0, None
    for n, b in enumerate(table, start=1):
        cap = b.get("up_to", prev_cap * 10) * coef
        if prev_mmr is not None:
            cum += prev_cap * (b["mmr"] - prev_mmr)
        rows.append((n, prev_cap, cap, b["mmr"], b["max_leverage"], cum))
        prev_cap, prev_mmr = cap, b["mmr"]
    return [
        {
            "bracket": n,
            "initialLeverage": lev,
            "floor": lo,
            "cap": hi,
            "maintMarginRatio": mmr,
            "cum": round(c, 8),
        }
        for n, lo, hi, mmr, lev, c in rows
    ]


def synthetic_export(
    seed: int,
    *,
    hedge_mode: bool | None = None,
    tiered: bool | None = None,
    margin_leverage: bool | None = None,
    exchange_info: bool | None = None,
    quirks: bool = True,
    reported: bool = True,
) -> dict[str, Any]:
    """A realistic Binance Portfolio Margin export (dict form), drawn from ``seed``.

    Balances in the margin, USDⓈ-M and COIN-M wallets with margin loans and
    interest; flat (v1) or tiered (v2) collateral rates; loan leverages 3, 5 and
    10 (``marginLeverage.json``, sometimes absent: 3×); one to four USDⓈ-M
    symbols (USDT and USDC, a dated future) and up to two COIN-M ones, sized
    across brackets (the user's brackets are the default tables, some × a
    ``notionalCoef``); hedge mode (LONG and SHORT rows of one symbol) sometimes;
    rows of closed positions; ``cm_exchangeInfo.json`` sometimes. A flag left
    ``None`` is drawn from the seed. With ``quirks`` the values carry what real
    exports do (thousands commas, ``""``, ``qtylFloor``, ``pair`` keys, a SHORT
    row with a positive amount, ``notionalCoef`` as a number or a string).
    With ``reported`` Binance's figures (``account.json``, ``um_account.json``,
    ``cm_account.json``, UPnLs) come from :func:`with_reported`.
    Same seed, same export.
    """
    rng = random.Random(seed)

    def flag(v: bool | None, p: float) -> bool:
        return rng.random() < p if v is None else v

    hedge = flag(hedge_mode, 0.35)
    v2 = flag(tiered, 0.5)
    lev_file = flag(margin_leverage, 0.7)
    info = flag(exchange_info, 0.5)
    now = SYNTHETIC_TIME_MS + rng.randrange(0, 86_400_000)

    def dec(x: float, places: int = 8, *, comma: bool = False) -> str:
        if comma and quirks and abs(x) >= 1000 and rng.random() < 0.15:
            return f"{x:,.{places}f}"
        return f"{x:.{places}f}"

    def ago() -> int:
        return now - rng.randrange(0, 3_600_000)

    index = {}
    for a, px in _INDEX.items():
        move = rng.uniform(-5e-4, 5e-4) if a in MARGIN_ASSETS else rng.uniform(-0.15, 0.15)
        index[a] = float(dec(px * (1 + move)))
    profile = default_profile_dict()

    # --- positions ---------------------------------------------------------------------
    um_symbols = rng.sample(_UM_POOL, rng.randint(1, 4))
    cm_symbols = rng.sample(_CM_POOL, rng.randint(0, 2))
    um_rows: list[dict[str, Any]] = []
    cm_rows: list[dict[str, Any]] = []
    settle_notional: dict[str, float] = {}
    cm_coins: set[str] = set()

    def sides() -> list[tuple[str, int]]:
        if not hedge:
            return [("BOTH", rng.choice((-1, 1)))]
        if rng.random() < 0.6:
            return [("LONG", 1), ("SHORT", -1)]
        side = rng.choice(("LONG", "SHORT"))
        return [(side, 1 if side == "LONG" else -1), ("SHORT" if side == "LONG" else "LONG", 0)]

    for sym in um_symbols:
        u, s = split_um_symbol(sym)
        basis = rng.uniform(0.002, 0.01) if "_" in sym else rng.uniform(-1e-3, 1e-3)
        mark = float(dec(index[u] / index[s] * (1 + basis)))
        for side, sign in sides():
            notional = math.exp(rng.uniform(math.log(500), math.log(2e7)))
            qty = max(round(notional / mark, 3), 0.001) * sign
            entry = round(mark * (1 + rng.gauss(0, 0.03)), 2)
            amt = qty
            if side == "SHORT" and quirks and rng.random() < 0.25:
                amt = abs(qty)  # the "other" sign convention of a SHORT row
            um_rows.append(
                {
                    "symbol": sym,
                    "positionAmt": f"{amt:.3f}" if qty else "0.000",
                    "entryPrice": f"{entry:.2f}" if qty else "0.0",
                    "markPrice": dec(mark),
                    "unRealizedProfit": "0.00000000",
                    "liquidationPrice": "0",
                    "leverage": str(rng.choice((2, 3, 5, 10, 20, 25, 50))),
                    "maxNotionalValue": "100000000",
                    "positionSide": side,
                    "notional": "0",
                    "updateTime": ago() if qty else 0,
                }
            )
            settle_notional[s] = settle_notional.get(s, 0.0) + abs(qty) * mark
    um_rows.append(  # a closed position: Binance lists it with a zero amount
        {
            "symbol": "XRPUSDT",
            "positionAmt": "0.0",
            "entryPrice": "0.0",
            "markPrice": "2.00000000",
            "unRealizedProfit": "0.00000000",
            "liquidationPrice": "0",
            "leverage": "20",
            "maxNotionalValue": "50000000",
            "positionSide": "SHORT" if hedge else "BOTH",
            "notional": "0",
            "updateTime": 0,
        }
    )
    sizes = {sym: cm_contract_size(sym) for sym in cm_symbols}
    for sym in cm_symbols:
        u = split_cm_symbol(sym)
        cm_coins.add(u)
        basis = rng.uniform(0.002, 0.01) if not sym.endswith("_PERP") else rng.uniform(-1e-3, 1e-3)
        mark = float(dec(index[u] * (1 + basis)))
        for side, sign in sides():
            coin = math.exp(rng.uniform(math.log(0.05), math.log(150.0 if u == "BTC" else 3000.0)))
            contracts = max(round(coin * mark / sizes[sym]), 1) * sign
            entry = round(mark * (1 + rng.gauss(0, 0.03)), 2)
            amt = (
                abs(contracts) if side == "SHORT" and quirks and rng.random() < 0.25 else contracts
            )
            cm_rows.append(
                {
                    "symbol": sym,
                    "positionAmt": str(amt),
                    "entryPrice": f"{entry:.8f}" if contracts else "0.0",
                    "markPrice": dec(mark),
                    "unRealizedProfit": "0.00000000",
                    "liquidationPrice": "0",
                    "leverage": str(rng.choice((2, 5, 10, 20, 50, 125))),
                    "positionSide": side,
                    "updateTime": ago() if contracts else 0,
                    "maxQty": "50",
                    "notionalValue": "0",
                }
            )

    # --- wallets and loans ---------------------------------------------------------------
    balance: list[dict[str, Any]] = []
    loan_assets: list[str] = []
    for a in ("USDT", "USDC", "BTC", "ETH", "BNB", "SOL"):
        um_w = 0.0
        if a in settle_notional:
            um_w = settle_notional[a] * rng.uniform(0.01, 0.3)
        cm_w = rng.uniform(0.05, 3.0) * (1.0 if a == "BTC" else 15.0) if a in cm_coins else 0.0
        held = rng.random() < (0.9 if a in ("USDT", "BTC", "ETH") else 0.3)
        scale = {
            "USDT": 50_000.0,
            "USDC": 20_000.0,
            "BTC": 2.0,
            "ETH": 30.0,
            "BNB": 50.0,
            "SOL": 300.0,
        }[a]
        free = rng.uniform(0, scale) if held else 0.0
        locked = rng.uniform(0, scale * 0.05) if held and rng.random() < 0.3 else 0.0
        borrowed = interest = 0.0
        if rng.random() < 0.35:
            borrowed = round(rng.uniform(0.05, 0.6) * scale, 8)
            interest = round(borrowed * rng.uniform(0, 0.002), 8)
            free += borrowed * rng.uniform(0, 1)  # borrowed coins held, or some spent
            loan_assets.append(a)
        if not (um_w or cm_w or free or locked or borrowed):
            continue
        free, locked, um_w, cm_w = (float(dec(x)) for x in (free, locked, um_w, cm_w))
        balance.append(
            {
                "asset": a,
                "totalWalletBalance": "0",
                "crossMarginAsset": dec(free + locked, comma=True),
                "crossMarginBorrowed": dec(borrowed),
                "crossMarginFree": dec(free, comma=True),
                "crossMarginInterest": dec(interest),
                "crossMarginLocked": dec(locked),
                "umWalletBalance": dec(um_w, comma=True),
                "umUnrealizedPNL": "",
                "cmWalletBalance": dec(cm_w),
                "cmUnrealizedPNL": "",
                "updateTime": ago(),
                "negativeBalance": "0",
            }
        )

    # --- brackets ------------------------------------------------------------------------
    def table_for(kind: str, sym: str) -> list[dict[str, Any]]:
        tables: dict[str, list[dict[str, Any]]] = profile["brackets"][kind]
        return tables.get(sym) or tables.get(sym.split("_", 1)[0]) or tables["default"]

    um_brackets = []
    for sym in sorted({*um_symbols, "XRPUSDT"}):
        coef = rng.choice((1.5, 2.0, 4.0)) if rng.random() < 0.3 else None
        rows = _with_cum(table_for("usdm", sym), coef or 1.0)
        table: dict[str, Any] = {"symbol": sym}
        if coef is not None or quirks:
            c = coef or 1.0
            table["notionalCoef"] = str(c) if quirks and rng.random() < 0.5 else c
        table["brackets"] = [
            {
                "bracket": r["bracket"],
                "initialLeverage": r["initialLeverage"],
                "notionalCap": r["cap"],
                "notionalFloor": r["floor"],
                "maintMarginRatio": r["maintMarginRatio"],
                "cum": r["cum"],
            }
            for r in rows
        ]
        um_brackets.append(table)
    cm_brackets = []
    by_pair = quirks and rng.random() < 0.3
    for key in sorted({s.split("_", 1)[0] for s in cm_symbols} if by_pair else set(cm_symbols)):
        floor_key = "qtylFloor" if quirks and rng.random() < 0.3 else "qtyFloor"
        rows = _with_cum(table_for("coinm", key), 1.0)
        cm_brackets.append(
            {
                ("pair" if by_pair else "symbol"): key,
                "brackets": [
                    {
                        "bracket": r["bracket"],
                        "initialLeverage": r["initialLeverage"],
                        "qtyCap": r["cap"],
                        floor_key: r["floor"],
                        "maintMarginRatio": r["maintMarginRatio"],
                        "cum": r["cum"],
                    }
                    for r in rows
                ],
            }
        )

    # --- collateral, leverage, prices ------------------------------------------------------
    collateral: list[dict[str, Any]] = []
    for a in ("USDT", "USDC", "BTC", "ETH", "BNB", "SOL"):
        top = (
            1.0
            if a in MARGIN_ASSETS
            else rng.choice((0.95, 0.9, 0.85) if a in ("BTC", "ETH") else (0.9, 0.8, 0.7))
        )
        if not v2:
            collateral.append({"asset": a, "collateralRate": f"{top:.4f}"})
            continue
        if a in MARGIN_ASSETS:
            bands: list[tuple[float, float, float]] = [(0.0, 1e10, 1.0)]
        else:
            k_ = rng.choice((0.1, 1.0, 10.0))
            caps = [0.0, 50_000 * k_, 200_000 * k_, 1_000_000 * k_, 1e10]
            rates = [top, top - 0.05, top - 0.25, 0.1]
            bands = [(caps[k], caps[k + 1], rates[k]) for k in range(4)]
        cum = 0.0
        info_rows = []
        for k, (lo, hi, r) in enumerate(bands):
            if k:
                cum += lo * (bands[k - 1][2] - r)  # Binance's "quick addition number": ignored
            info_rows.append(
                {
                    "tierFloor": f"{lo:.4f}",
                    "tierCap": f"{hi:.4f}",
                    "collateralRate": f"{r:.4f}",
                    "cum": f"{cum:.4f}",
                }
            )
        collateral.append({"asset": a, "collateralInfo": info_rows})

    export: dict[str, Any] = {
        "balance": balance,
        "um_positionRisk": um_rows,
        "cm_positionRisk": cm_rows,
        "um_leverageBracket": um_brackets,
        "cm_leverageBracket": cm_brackets,
        "collateralRate": collateral,
        "assetIndexPrice": [
            {"asset": a, "assetIndexPrice": dec(px), "time": now} for a, px in index.items()
        ],
    }
    if lev_file:
        levs = []
        for a in ("USDT", "USDC", "BTC", "ETH", "BNB", "SOL"):
            if a in loan_assets or rng.random() < 0.3:
                lev = rng.choice((3, 5, 10))
                levs.append(
                    {"asset": a, "leverage": str(lev) if quirks and rng.random() < 0.3 else lev}
                )
        export["marginLeverage"] = levs
    if info and cm_symbols:
        export["cm_exchangeInfo"] = {
            "symbols": [
                {
                    "symbol": s,
                    "pair": s.split("_", 1)[0],
                    "contractType": "PERPETUAL" if s.endswith("_PERP") else "CURRENT_QUARTER",
                    "contractSize": sizes[s],
                }
                for s in cm_symbols
            ]
        }
    return with_reported(export) if reported else export
