"""ccxt's unified positions and balances → pmengine's portfolio and market.

ccxt is not a dependency: these functions read the dicts ccxt returns
(``exchange.fetch_positions()``, ``exchange.fetch_balance()``).

- :func:`from_ccxt`: any exchange, for the scenario model (METHODOLOGY.md).
  Unified positions carry no brackets, collateral rates or loan leverages, so
  this is not enough for ``binance_pm``.
- :func:`binance_export_from_ccxt`: ccxt's Binance with
  ``{"options": {"portfolioMargin": True}}`` keeps Binance's raw rows in each
  position's and the balance's ``info``; this rebuilds the export dict that
  :func:`pmengine.exchanges.binance.load_export` reads, with the endpoints ccxt
  has no unified call for passed as they are.

ccxt's ``maintenanceMargin`` is never read: for Binance it has been computed as
notional × MMR without ``cum`` (right only in the first bracket).
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import Any

from pmengine.errors import InvalidInputError
from pmengine.exchanges.binance import ENDPOINTS, iso_from_ms

__all__ = ["binance_export_from_ccxt", "binance_symbol", "from_ccxt", "parse_symbol"]

STABLECOINS = ("USDT", "USDC", "FDUSD", "BUSD", "TUSD", "DAI", "USD")
_SYMBOL = re.compile(r"^([^/:]+)/([^/:]+):([^-]+)(?:-(\w+))?$")


def parse_symbol(symbol: Any, at: str) -> tuple[str, str, str, str | None]:
    """``(base, quote, settle, expiry)`` of a unified contract symbol.

    ``"BTC/USDT:USDT"`` → ``("BTC", "USDT", "USDT", None)``,
    ``"BTC/USD:BTC-250627"`` → ``("BTC", "USD", "BTC", "250627")``. An option
    (``BTC/USD:BTC-250627-60000-C``) or a spot symbol is an ``InvalidInputError``.
    """
    m = _SYMBOL.match(symbol) if isinstance(symbol, str) else None
    if m is None:
        raise InvalidInputError.at(
            at,
            f"must be a ccxt futures symbol such as 'BTC/USDT:USDT' or 'BTC/USD:BTC-250627', got {symbol!r}",
        )
    base, quote, settle, expiry = m.groups()
    return base, quote, settle, expiry


def binance_symbol(symbol: str, at: str = "symbol") -> str:
    """Binance's id of a unified symbol: ``BTC/USDT:USDT`` → ``BTCUSDT``,
    ``BTC/USDT:USDT-250627`` → ``BTCUSDT_250627``, ``BTC/USD:BTC`` → ``BTCUSD_PERP``."""
    base, quote, settle, expiry = parse_symbol(symbol, at)
    if settle == base:  # inverse
        return f"{base}{quote}_{expiry or 'PERP'}"
    return f"{base}{quote}" + (f"_{expiry}" if expiry else "")


def _number(v: Any, at: str, *, positive: bool = False, required: bool = True) -> float | None:
    if v is None or v == "":
        if required:
            raise InvalidInputError.at(at, f"required, got {v!r}", "missing")
        return None
    if isinstance(v, bool):
        raise InvalidInputError.at(at, f"must be a number, got {v!r}", "wrong_type")
    try:
        x = float(v.replace(",", "") if isinstance(v, str) else v)
    except (TypeError, ValueError):
        raise InvalidInputError.at(at, f"must be a number, got {v!r}", "wrong_type") from None
    if not math.isfinite(x):
        raise InvalidInputError.at(at, f"must be finite, got {v!r}", "out_of_range")
    if positive and x <= 0:
        raise InvalidInputError.at(at, f"must be > 0, got {v!r}", "out_of_range")
    return x


def _time(time: Any, positions: list[dict[str, Any]], balance: dict[str, Any]) -> str:
    """The market's time: ``time`` (ms since the epoch, as ccxt's ``timestamp``; an ISO
    string; a datetime), else the newest ``timestamp`` of the positions and the balance,
    else now."""
    if time is None:
        stamps = [p.get("timestamp") for p in positions] + [balance.get("timestamp")]
        found = [t for t in stamps if isinstance(t, int | float) and not isinstance(t, bool)]
        if not found:
            return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        time = max(found)
    if isinstance(time, datetime):
        t = time if time.tzinfo else time.replace(tzinfo=UTC)
        return t.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(time, str):
        return time
    if isinstance(time, int | float) and not isinstance(time, bool) and math.isfinite(time):
        return iso_from_ms(time)
    raise InvalidInputError.at(
        "time", f"must be milliseconds since the epoch or an ISO time, got {time!r}"
    )


def from_ccxt(
    positions: list[dict[str, Any]],
    balance: dict[str, Any],
    prices: dict[str, float] | None = None,
    *,
    marks: dict[str, float] | None = None,
    time: Any = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A portfolio dict and a market dict from ccxt's unified structures.

    - ``positions``: ``fetch_positions()`` rows. Linear (``BTC/USDT:USDT``,
      settle = quote): ``qty`` = ±``contracts`` × ``contractSize`` (1 when not
      given) in the base coin, sign from ``side``; inverse (``BTC/USD:BTC``,
      settle = base): ``contracts`` = ±``contracts``, ``contract_size`` =
      ``contractSize`` (USD, required). ``entryPrice`` → ``entry_price``,
      ``leverage`` kept; symbols become Binance's ids (``info.symbol`` when
      given, else :func:`binance_symbol`). Rows with no contracts are skipped.
    - ``balance``: ``fetch_balance()``: ``total`` per asset → ``balances``; an
      asset's ``debt`` → ``loans`` (``borrowed``; ccxt's debt includes interest).
    - ``prices``: index prices in USD. Without them: stablecoins at 1, every
      other asset from a contract's mark on it (linear: mark × the settle
      coin's price; inverse: the mark), else an ``InvalidInputError``.
    - ``marks`` (by unified or Binance symbol) override the positions'
      ``markPrice``; without either a linear mark is ``|notional| /
      (contracts × contractSize)`` (quote) and an inverse one ``contracts ×
      contractSize / |notional|`` (``notional`` in coin, reading).
    - ``time``: milliseconds since the epoch (ccxt's ``timestamp``), an ISO
      string or a datetime; default: the newest ``timestamp`` given, else now.

    ``maintenanceMargin``, ``unrealizedPnl`` and ``liquidationPrice`` are not read.
    """
    if not isinstance(positions, list):
        raise InvalidInputError.at(
            "positions",
            f"must be a list of ccxt positions, got {type(positions).__name__}",
            "wrong_type",
        )
    if not isinstance(balance, dict):
        raise InvalidInputError.at(
            "balance", f"must be a ccxt balance dict, got {type(balance).__name__}"
        )
    out_positions: list[dict[str, Any]] = []
    mark_of: dict[str, float] = {}
    unified_to_id: dict[str, str] = {}
    for i, p in enumerate(positions):
        at = f"positions[{i}]"
        if not isinstance(p, dict):
            raise InvalidInputError.at(at, f"must be a ccxt position dict, got {p!r}")
        base, quote, settle, _ = parse_symbol(p.get("symbol"), f"{at}.symbol")
        contracts = _number(p.get("contracts"), f"{at}.contracts")
        assert contracts is not None
        if contracts == 0:
            continue
        side = p.get("side")
        if side is None:
            sign = 1.0 if contracts > 0 else -1.0
        elif isinstance(side, str) and side.lower() in ("long", "short"):
            sign = 1.0 if side.lower() == "long" else -1.0
        else:
            raise InvalidInputError.at(f"{at}.side", f"must be 'long' or 'short', got {side!r}")
        n = abs(contracts) * sign
        info = p.get("info")
        raw_symbol = info.get("symbol") if isinstance(info, dict) else None
        sym = raw_symbol if isinstance(raw_symbol, str) and raw_symbol else None
        sym = sym or binance_symbol(p["symbol"], f"{at}.symbol")
        unified_to_id[p["symbol"]] = sym
        entry = _number(p.get("entryPrice"), f"{at}.entryPrice", positive=True)
        lev = _number(p.get("leverage"), f"{at}.leverage", positive=True, required=False)
        mark = _number(p.get("markPrice"), f"{at}.markPrice", positive=True, required=False)
        notional = _number(p.get("notional"), f"{at}.notional", required=False)
        if settle == quote and settle != base:  # linear
            lsize = _number(
                p.get("contractSize"), f"{at}.contractSize", positive=True, required=False
            )
            qty = n * (lsize or 1.0)
            if mark is None and notional:
                mark = abs(notional) / abs(qty)
            pos: dict[str, Any] = {
                "type": "linear",
                "symbol": sym,
                "underlying": base,
                "settle": settle,
                "qty": qty,
                "entry_price": entry,
            }
        elif settle == base:  # inverse
            size = _number(p.get("contractSize"), f"{at}.contractSize", positive=True)
            assert size is not None
            if mark is None and notional:
                mark = abs(n) * size / abs(notional)
            pos = {
                "type": "inverse",
                "symbol": sym,
                "underlying": base,
                "contract_size": size,
                "contracts": n,
                "entry_price": entry,
            }
        else:
            raise InvalidInputError.at(
                f"{at}.symbol",
                f"settles in {settle}, neither the quote {quote} (linear) nor the base {base} (inverse), got {p['symbol']!r}",
            )
        if lev is not None:
            pos["leverage"] = lev
        out_positions.append(pos)
        if mark is not None:
            mark_of[sym] = mark
    for k, v in (marks or {}).items():
        sym = unified_to_id.get(k) or (binance_symbol(k, f"marks.{k}") if "/" in k else k)
        x = _number(v, f"marks.{k}", positive=True)
        assert x is not None
        mark_of[sym] = x

    balances: dict[str, float] = {}
    loans: dict[str, dict[str, float]] = {}
    total = balance.get("total")
    if total is not None and not isinstance(total, dict):
        raise InvalidInputError.at(
            "balance.total", f"must be a dict of asset → amount, got {total!r}", "wrong_type"
        )
    for a, q in (total or {}).items():
        x = _number(q, f"balance.total.{a}", required=False)
        if x:
            balances[a] = x
    for a, entry_ in balance.items():
        if a in ("info", "free", "used", "total", "debt", "timestamp", "datetime"):
            continue
        if isinstance(entry_, dict) and entry_.get("debt") not in (None, "", 0):
            debt = _number(entry_["debt"], f"balance.{a}.debt")
            assert debt is not None
            if debt < 0:
                raise InvalidInputError.at(
                    f"balance.{a}.debt", f"must be >= 0, got {entry_['debt']!r}", "out_of_range"
                )
            if debt > 0:
                loans[a] = {"borrowed": debt}

    if prices is None:
        px: dict[str, float] = {}
        held = [*balances, *loans]
        for pos in out_positions:
            held += [pos["underlying"], pos.get("settle", pos["underlying"])]
        for a in held:
            if a in STABLECOINS:
                px[a] = 1.0
        for pos in out_positions:
            m = mark_of.get(pos["symbol"])
            if m is None or pos["underlying"] in px:
                continue
            if pos["type"] == "inverse":
                px[pos["underlying"]] = m
            elif pos["settle"] in px:
                px[pos["underlying"]] = m * px[pos["settle"]]
        for a in dict.fromkeys(held):
            if a not in px:
                raise InvalidInputError.at(
                    f"prices.{a}",
                    f"no price for {a} (no contract on it has a mark): pass prices=",
                    "missing_price",
                )
    else:
        px = {}
        for a, v in prices.items():
            x = _number(v, f"prices.{a}", positive=True)
            assert x is not None
            px[a] = x

    portfolio: dict[str, Any] = {"balances": balances, "positions": out_positions}
    if loans:
        portfolio["loans"] = loans
    market = {"time": _time(time, positions, balance), "prices": px, "marks": mark_of}
    return portfolio, market


def binance_export_from_ccxt(
    positions: list[dict[str, Any]],
    balance: dict[str, Any],
    endpoints: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The export dict :func:`~pmengine.exchanges.binance.load_export` reads, rebuilt
    from ccxt's Binance structures fetched with ``portfolioMargin=True``.

    - ``balance["info"]``: the raw ``GET /papi/v1/balance`` reply → ``balance``.
    - each position's ``info``: its raw positionRisk row → ``um_positionRisk``
      (linear symbols) or ``cm_positionRisk`` (inverse); a field the row lacks
      (``symbol``, ``positionAmt``, ``entryPrice``, ``markPrice``,
      ``leverage``) is filled from the unified position. COIN-M contract sizes
      become ``cm_exchangeInfo`` (``contractSize`` of the unified positions).
    - ``endpoints``: the responses ccxt has no unified call for, by file name
      (``um_leverageBracket``, ``cm_leverageBracket``, ``collateralRate``,
      ``assetIndexPrice``, and optionally ``marginLeverage``, ``account``,
      ``um_account``, ``cm_account``): e.g. ccxt's implicit methods
      ``papiGetUmLeverageBracket()``, ``papiGetCmLeverageBracket()``,
      ``sapiGetPortfolioCollateralRate()``, ``sapiGetPortfolioAssetIndexPrice()``,
      ``sapiGetPortfolioMarginAssetLeverage()``, ``papiGetAccount()``,
      ``papiGetUmAccount()``, ``papiGetCmAccount()``. They are passed as they are.
    """
    if not isinstance(balance, dict) or "info" not in balance:
        raise InvalidInputError.at(
            "balance.info",
            "missing (fetch the balance with portfolioMargin=True; info holds Binance's GET /papi/v1/balance reply)",
        )
    export: dict[str, Any] = {
        "balance": balance["info"],
        "um_positionRisk": [],
        "cm_positionRisk": [],
    }
    sizes: dict[str, float] = {}
    for i, p in enumerate(positions):
        at = f"positions[{i}]"
        if not isinstance(p, dict):
            raise InvalidInputError.at(at, f"must be a ccxt position dict, got {p!r}")
        base, quote, settle, _ = parse_symbol(p.get("symbol"), f"{at}.symbol")
        info = p.get("info")
        if info is not None and not isinstance(info, dict):
            raise InvalidInputError.at(
                f"{at}.info", f"must be Binance's raw positionRisk row, got {info!r}"
            )
        row = dict(info or {})
        if not row.get("symbol"):
            row["symbol"] = binance_symbol(p["symbol"], f"{at}.symbol")
        if row.get("positionAmt") in (None, ""):
            contracts = _number(p.get("contracts"), f"{at}.contracts")
            assert contracts is not None
            short = str(p.get("side", "")).lower() == "short"
            row["positionAmt"] = str(-abs(contracts) if short else abs(contracts))
        for key, unified in (
            ("entryPrice", "entryPrice"),
            ("markPrice", "markPrice"),
            ("leverage", "leverage"),
        ):
            if row.get(key) in (None, "") and p.get(unified) is not None:
                row[key] = str(p[unified])
        if settle == base:
            export["cm_positionRisk"].append(row)
            cs = _number(p.get("contractSize"), f"{at}.contractSize", positive=True, required=False)
            if cs is not None:
                sizes[row["symbol"]] = cs
        elif settle == quote:
            export["um_positionRisk"].append(row)
        else:
            raise InvalidInputError.at(
                f"{at}.symbol", f"neither linear nor inverse, got {p['symbol']!r}"
            )
    if sizes:
        export["cm_exchangeInfo"] = {
            "symbols": [{"symbol": s, "contractSize": c} for s, c in sizes.items()]
        }
    for name, reply in (endpoints or {}).items():
        key = name.removesuffix(".json")
        if key not in ENDPOINTS or key in ("balance", "um_positionRisk", "cm_positionRisk"):
            raise InvalidInputError.at(
                f"endpoints.{name}",
                "not an endpoint file to pass through (expected one of "
                + ", ".join(
                    e
                    for e in ENDPOINTS
                    if e not in ("balance", "um_positionRisk", "cm_positionRisk")
                )
                + ")",
                "unknown_key",
            )
        export[key] = reply
    return export
