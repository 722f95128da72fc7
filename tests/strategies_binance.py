"""hypothesis strategies: accounts for the ``binance_pm`` model (docs/BINANCE.md).

``account()`` draws ``(portfolio, market, profile)``, all plain JSON-shaped dicts:

- balances in USDT, USDC, BTC, ETH, BNB (now and then a negative one, which is a
  loan too) and margin loans (``loans``, interest now and then, an asset only in
  ``loans`` now and then);
- USDⓈ-M (``linear``, settling in USDT or USDC) and COIN-M (``inverse``)
  positions with notionals from a few dollars to about 2e9, so every bracket
  is reached, and hedge-mode LONG/SHORT rows of one symbol;
- a market with index prices and, for some symbols, a mark off the index;
- a profile derived from the default one: ``model = "binance_pm"``, each asset
  with flat or tiered collateral and a loan leverage of 3, 5 or 10 (or the
  ``[binance]`` default).

The engine and the reference must agree on every one of them
(``pm.RiskParams.from_dict(profile)``, ``reference.load_profile(profile)``).
"""

from __future__ import annotations

import copy

from hypothesis import strategies as st

from pmengine import reference

ASSETS = ("USDT", "USDC", "BTC", "ETH", "BNB")
PRICES = {"USDT": 1.0, "USDC": 0.9998, "BTC": 60000.0, "ETH": 3000.0, "BNB": 600.0}
LOAN_LEVERAGES = (3, 5, 10)
TIME = "2026-11-24T00:00:00Z"

# (symbol, underlying, settle) of USDⓈ-M contracts: own tables (BTCUSDT, ETHUSDT),
# a pair's (BTCUSDT_261225), the default (BNBUSDT, BTCUSDC, ETHUSDC).
LINEAR = (
    ("BTCUSDT", "BTC", "USDT"),
    ("BTCUSDT_261225", "BTC", "USDT"),
    ("ETHUSDT", "ETH", "USDT"),
    ("BNBUSDT", "BNB", "USDT"),
    ("BTCUSDC", "BTC", "USDC"),
    ("ETHUSDC", "ETH", "USDC"),
)
# (symbol, coin, contract size in USD) of COIN-M contracts: BTCUSD's table, the default.
INVERSE = (
    ("BTCUSD_PERP", "BTC", 100),
    ("BTCUSD_261225", "BTC", 100),
    ("ETHUSD_PERP", "ETH", 10),
    ("BNBUSD_PERP", "BNB", 10),
)
SYMBOLS = tuple(s for s, _, _ in LINEAR) + tuple(s for s, _, _ in INVERSE)

# USD notionals on a log scale: 10 to 2e9 reaches every bracket of every table.
notional = st.floats(min_value=1.0, max_value=9.3).map(lambda x: 10.0**x)
move = st.floats(min_value=0.7, max_value=1.3)
sign = st.sampled_from((1.0, -1.0))
position_leverage = st.sampled_from((None, 1, 2, 5, 10, 20, 50, 125))


def base_profile() -> dict:
    """The default profile's dict under ``model = "binance_pm"``."""
    raw = copy.deepcopy(reference.default_profile().raw)
    raw["model"] = "binance_pm"
    return raw


@st.composite
def collateral(draw) -> list[dict]:
    """Flat (``[{rate}]``) or marginal bands with falling rates."""
    if draw(st.booleans()):
        return [{"rate": draw(st.sampled_from((1.0, 0.95, 0.9, 0.8, 0.5, 0.1, 0.0)))}]
    n = draw(st.integers(min_value=2, max_value=5))
    caps = sorted(draw(st.lists(st.integers(3, 9), min_size=n - 1, max_size=n - 1, unique=True)))
    rates = sorted(draw(st.lists(st.integers(0, 100), min_size=n, max_size=n)), reverse=True)
    bands = [{"rate": r / 100, "up_to": 10.0**c} for r, c in zip(rates, caps, strict=False)]
    bands.append({"rate": rates[-1] / 100})
    return bands


@st.composite
def profile(draw) -> dict:
    raw = base_profile()
    raw["binance"]["loan_leverage"] = draw(st.sampled_from(LOAN_LEVERAGES))
    for a in ASSETS:
        t = raw["assets"].setdefault(a, {"group": a})
        t["collateral"] = draw(collateral())
        lev = draw(st.sampled_from((None, *LOAN_LEVERAGES)))
        if lev is not None:
            t["loan_leverage"] = lev
    return raw


def _with_leverage(draw, pos: dict) -> dict:
    lev = draw(position_leverage)
    if lev is not None:
        pos["leverage"] = lev
    return pos


@st.composite
def linear(draw, symbol: str | None = None, side: float | None = None) -> dict:
    sym, b, s = (
        next(x for x in LINEAR if x[0] == symbol) if symbol else draw(st.sampled_from(LINEAR))
    )
    qty = draw(notional) / PRICES[b] * (side if side is not None else draw(sign))
    pos = {
        "type": "linear",
        "symbol": sym,
        "underlying": b,
        "settle": s,
        "qty": float(f"{qty:.6g}"),
        "entry_price": round(PRICES[b] * draw(move), 2),
    }
    return _with_leverage(draw, pos)


@st.composite
def inverse(draw, symbol: str | None = None, side: float | None = None) -> dict:
    sym, coin, size = (
        next(x for x in INVERSE if x[0] == symbol) if symbol else draw(st.sampled_from(INVERSE))
    )
    contracts = max(1, round(draw(notional) / size)) * (side if side is not None else draw(sign))
    pos = {
        "type": "inverse",
        "symbol": sym,
        "underlying": coin,
        "contract_size": size,
        "contracts": contracts,
        "entry_price": round(PRICES[coin] * draw(move), 2),
    }
    return _with_leverage(draw, pos)


@st.composite
def hedge_pair(draw) -> list[dict]:
    """The LONG and the SHORT row of one symbol (hedge mode): two positions."""
    sym = draw(st.sampled_from(SYMBOLS))
    make = linear if any(sym == s for s, _, _ in LINEAR) else inverse
    return [draw(make(sym, 1.0)), draw(make(sym, -1.0))]


@st.composite
def portfolio(draw, max_positions: int = 6) -> dict:
    balances = {}
    for a in draw(st.lists(st.sampled_from(ASSETS), max_size=5, unique=True)):
        usd = draw(st.floats(min_value=0.0, max_value=8.0).map(lambda x: 10.0**x))
        if draw(st.integers(0, 9)) == 0:
            usd = -usd / 10  # a negative balance is a loan too
        balances[a] = float(f"{usd / PRICES[a]:.8g}")
    loans = {}
    for a in draw(st.lists(st.sampled_from(ASSETS), max_size=3, unique=True)):
        held = max(balances.get(a, 0.0), 0.0)
        # Mostly a part of what the wallet holds (the borrowed coins are in it), sometimes more.
        borrowed = held * draw(st.floats(min_value=0.0, max_value=1.2))
        if borrowed == 0:
            borrowed = (
                draw(st.floats(min_value=0.0, max_value=6.0).map(lambda x: 10.0**x)) / PRICES[a]
            )
        loan = {"borrowed": float(f"{borrowed:.8g}")}
        if draw(st.booleans()):
            loan["interest"] = float(f"{borrowed * draw(st.floats(0.0, 0.01)):.6g}")
        loans[a] = loan
    rows = draw(
        st.lists(
            st.one_of(linear().map(lambda p: [p]), inverse().map(lambda p: [p]), hedge_pair()),
            max_size=max_positions,
        )
    )
    out = {"balances": balances, "positions": [p for r in rows for p in r]}
    if loans:
        out["loans"] = loans
    return out


@st.composite
def market(draw) -> dict:
    prices = {a: float(f"{x * draw(st.floats(0.9, 1.1)):.8g}") for a, x in PRICES.items()}
    prices["USDT"] = 1.0
    marks = {}
    for sym in draw(st.lists(st.sampled_from(SYMBOLS), unique=True)):
        coin = next(b for s, b, *_ in (*LINEAR, *INVERSE) if s == sym)
        settle = next((s for x, _, s in LINEAR if x == sym), "USD")
        quote = prices[settle] if settle != "USD" else 1.0
        marks[sym] = round(prices[coin] / quote * draw(st.floats(0.97, 1.03)), 2)
    return {"time": TIME, "prices": prices, "marks": marks}


@st.composite
def account(draw, max_positions: int = 6) -> tuple[dict, dict, dict]:
    """``(portfolio, market, profile)`` of one binance_pm account."""
    return draw(portfolio(max_positions)), draw(market()), draw(profile())
