"""hypothesis strategies: accounts mixing balances, loans, linear and inverse
futures and options over BTC, ETH, SOL, stablecoins and unlisted assets."""

from __future__ import annotations

from hypothesis import strategies as st

PRICES = {
    "BTC": 60000.0,
    "WBTC": 59950.0,
    "ETH": 3000.0,
    "SOL": 150.0,
    "DOGE": 0.2,
    "USDT": 1.0,
    "USDC": 1.0001,
}
UNDERLYINGS = ("BTC", "ETH", "SOL")
EXPIRIES = (
    "2026-11-20T08:00:00Z",  # expired
    "2026-11-24T00:00:00Z",  # expiring now
    "2026-11-27T08:00:00Z",
    "2026-12-25T08:00:00Z",
    "2027-03-26T08:00:00Z",
)


def market(marks: dict | None = None) -> dict:
    return {
        "time": "2026-11-24T00:00:00Z",
        "prices": dict(PRICES),
        "marks": dict(marks or {}),
        "vols": {"BTC": 0.5, "ETH": 0.6, "SOL": 0.8, "ETH-261225-3000-C": 0.04},
    }


qty = st.floats(min_value=-20, max_value=20, allow_nan=False).map(lambda x: round(x, 6))
move = st.floats(min_value=0.8, max_value=1.2)


@st.composite
def linear(draw):
    u = draw(st.sampled_from(UNDERLYINGS))
    sym = draw(st.sampled_from([f"{u}USDT", f"{u}USDT_261225", f"{u}USDC"]))
    pos = {
        "type": "linear",
        "symbol": sym,
        "underlying": u,
        "qty": draw(qty) * (1 if u == "BTC" else 20 if u == "ETH" else 400),
        "entry_price": round(PRICES[u] * draw(move), 2),
    }
    if sym.endswith("USDC"):
        pos["settle"] = "USDC"
    return pos


@st.composite
def inverse(draw):
    u = draw(st.sampled_from(("BTC", "ETH")))
    return {
        "type": "inverse",
        "symbol": f"{u}USD_PERP",
        "underlying": u,
        "contract_size": 100 if u == "BTC" else 10,
        "contracts": round(draw(qty) * 50),
        "entry_price": round(PRICES[u] * draw(move), 2),
    }


@st.composite
def option(draw):
    u = draw(st.sampled_from(("BTC", "ETH")))
    kind = draw(st.sampled_from(("call", "put")))
    strike = round(PRICES[u] * draw(st.floats(min_value=0.5, max_value=1.5)) / 100) * 100 or 100
    expiry = draw(st.sampled_from(EXPIRIES))
    sym = f"{u}-{expiry[2:10].replace('-', '')}-{strike}-{kind[0].upper()}"
    return {
        "type": "option",
        "symbol": sym,
        "underlying": u,
        "kind": kind,
        "strike": strike,
        "expiry": expiry,
        "qty": draw(qty) * (1 if u == "BTC" else 10),
    }


@st.composite
def portfolio(draw, max_positions: int = 8, options: bool = True):
    assets = draw(st.lists(st.sampled_from(sorted(PRICES)), max_size=5, unique=True))
    balances = {}
    for a in assets:
        scale = 1e5 / PRICES[a]
        balances[a] = round(draw(st.floats(min_value=-1, max_value=2)) * scale, 6)
    kinds = [linear(), inverse(), option()] if options else [linear(), inverse()]
    positions = draw(st.lists(st.one_of(*kinds), max_size=max_positions))
    return {"balances": balances, "positions": positions}


@st.composite
def marks(draw):
    out = {}
    for sym in draw(
        st.lists(st.sampled_from(["BTCUSDT", "ETHUSDT_261225", "BTCUSD_PERP"]), unique=True)
    ):
        u = "BTC" if sym.startswith("BTC") else "ETH"
        out[sym] = round(PRICES[u] * draw(st.floats(min_value=0.97, max_value=1.03)), 2)
    return out
