# ruff: noqa: B023 (the live target's lambdas run within the loop iteration that makes them)
"""Fuzz targets of the Python face, and the invariants a margin engine promises.

Each target takes bytes (from atheris, from hypothesis's ``binary()`` or from a
seeded random generator) and drives one surface with inputs decoded from them:
seed documents (the bundled examples) mutated towards the hostile (huge, tiny,
non-finite, empty, long, wrong type, deep, unknown key), then checked:

- only pmengine errors (``PmError``) are raised, never another exception, a
  panic or a crash;
- every figure of an accepted account is finite, MM ≥ 0, IM = im_factor × MM
  (scenario model), uniMMR = adjusted equity / MM, and the status is the one
  the ladder gives (or BANKRUPT, from equity alone);
- ``from_json`` and ``from_dict`` accept the same documents, and what they
  accept reads back from its own ``to_json``;
- a live account equals a rebuild after every operation, and a refused
  operation leaves it bit-identical;
- ``margin_batch`` equals ``margin`` account by account, bit-identical whatever
  the thread count;
- the command line answers a hostile file with exit 2 and one line on stderr.

``fuzz/python/run.py`` runs the targets for a time and counts the inputs;
``tests/test_fuzz_short.py`` runs a short pass under pytest.
"""

from __future__ import annotations

import collections
import contextlib
import copy
import io
import json
import math
import struct
import tempfile
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import pmengine as pm
from pmengine.errors import PmError
from pmengine.testing import assert_close

EXAMPLES = Path(str(resources.files("pmengine") / "examples"))
SEED_PORTFOLIOS = [
    json.loads(p.read_text()) for p in sorted(EXAMPLES.glob("*.json")) if p.name != "market.json"
]
SEED_MARKET = json.loads((EXAMPLES / "market.json").read_text())
SEED_PROFILE = pm.RiskParams.default().to_dict()
ENGINES = {
    "scenario": pm.Engine(),
    "binance_pm": pm.Engine(pm.RiskParams.default().with_model("binance_pm")),
}


class Finding(AssertionError):
    """A broken promise: the message says which."""


class Source:
    """Decisions drawn from the fuzzer's bytes (past their end: zeros)."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.at = 0

    def byte(self) -> int:
        if self.at >= len(self.data):
            return 0
        b = self.data[self.at]
        self.at += 1
        return b

    def int(self, n: int) -> int:
        """0 <= x < n."""
        if n <= 1:
            return 0
        x = self.byte() | (self.byte() << 8) if n > 256 else self.byte()
        return x % n

    def choice(self, xs: list[Any] | tuple[Any, ...]) -> Any:
        return xs[self.int(len(xs))]

    def bool(self) -> bool:
        return self.byte() & 1 == 1

    def float64(self) -> float:
        raw = bytes(self.byte() for _ in range(8))
        return struct.unpack("<d", raw)[0]

    def number(self) -> Any:
        return self.choice(NUMBERS) if self.byte() % 4 else self.float64()

    def text(self) -> str:
        return self.choice(TEXTS)


NUMBERS: list[Any] = [
    0,
    -0.0,
    1,
    -1,
    0.5,
    2,
    1e-300,
    5e-324,
    1e-15,
    1e15,
    1.0000001e15,
    1e308,
    -1e308,
    1.7976931348623157e308,
    float("nan"),
    float("inf"),
    float("-inf"),
    10**400,
    -(10**30),
    60000,
    3000,
    1795478400,
    1795478400000,
    0.9999999999999999,
    True,
    None,
    "1",
    "NaN",
    "Infinity",
    [],
    {},
]
TEXTS: list[Any] = [
    "",
    "BTC",
    "ETH",
    "USDT",
    "USDC",
    "PEPE",
    "BTCUSDT",
    "BTCUSD_PERP",
    "linear",
    "inverse",
    "option",
    "call",
    "put",
    "2026-12-25T08:00:00Z",
    "2026-11-24",
    "24/11/2026",
    "x" * 300,
    "\u00e9\u4e2d\U0001f600",
    "a\nb",
    "\ud800",
    " BTC",
    "binance_pm",
    "scenario",
    "NORMAL",
]
KEYS = [
    "balances",
    "loans",
    "positions",
    "account",
    "name",
    "description",
    "type",
    "symbol",
    "underlying",
    "settle",
    "qty",
    "contracts",
    "contract_size",
    "entry_price",
    "strike",
    "expiry",
    "kind",
    "leverage",
    "isolated_margin",
    "borrowed",
    "interest",
    "time",
    "prices",
    "marks",
    "vols",
    "unknown",
]


def _paths(doc: Any, limit: int = 400) -> list[tuple[Any, Any]]:
    """(container, key) of every value in the document, breadth first."""
    out: list[tuple[Any, Any]] = []
    queue = collections.deque([doc])
    while queue and len(out) < limit:
        x = queue.popleft()
        items = x.items() if isinstance(x, dict) else enumerate(x) if isinstance(x, list) else ()
        for k, v in items:
            out.append((x, k))
            if isinstance(v, dict | list):
                queue.append(v)
    return out


def _hostile_value(src: Source) -> Any:
    r = src.int(10)
    if r < 5:
        return src.number()
    if r < 8:
        return src.text()
    if r == 8:
        deep: Any = src.number()
        for _ in range(src.choice([1, 5, 126, 127, 128, 129, 300])):  # json.dumps recurses
            deep = [deep] if src.bool() else {"a": deep}
        return deep
    return {src.choice(KEYS): src.number()}


def mutate(doc: Any, src: Source, edits: int | None = None) -> Any:
    """A copy of ``doc`` with a few values replaced, keys removed, renamed or added."""
    doc = copy.deepcopy(doc)
    for _ in range(edits if edits is not None else 1 + src.int(4)):
        paths = _paths(doc)
        if not paths:
            return _hostile_value(src)
        container, key = src.choice(paths)
        op = src.int(8)
        if op < 4:
            container[key] = _hostile_value(src)
        elif op == 4 and isinstance(container, dict):
            del container[key]
        elif op == 5 and isinstance(container, dict):
            container[src.choice(KEYS + TEXTS)] = _hostile_value(src)
        elif op == 6 and isinstance(container, list):
            container.append(copy.deepcopy(container[key]))
        elif (
            op == 7
            and isinstance(container[key], int | float)
            and not isinstance(container[key], bool)
        ):
            with contextlib.suppress(OverflowError):  # 10**400 times a float
                container[key] = container[key] * src.choice([-1, 0, 1e3, 1e-3, 1e12, 1e-12])
    return doc


# -- invariants ---------------------------------------------------------------------


def check_result(engine: pm.Engine, r: pm.MarginResult, where: str) -> None:
    """The promises of one margin result."""
    figures = {
        "equity": r.equity,
        "adjusted_equity": r.adjusted_equity,
        "maintenance_margin": r.maintenance_margin,
        "initial_margin": r.initial_margin,
        "available": r.available,
    }
    for k, x in figures.items():
        if not math.isfinite(x):
            raise Finding(f"{where}: {k} = {x}")
    mm = r.maintenance_margin
    if mm < 0:
        raise Finding(f"{where}: MM = {mm} < 0")
    if math.isnan(r.uni_mmr):
        raise Finding(f"{where}: uniMMR is NaN")
    if engine.params.model == "scenario" and r.initial_margin != engine.params.im_factor * mm:
        raise Finding(f"{where}: IM {r.initial_margin} != factor x MM {mm}")
    if mm > 0 and r.uni_mmr != r.adjusted_equity / mm:
        raise Finding(f"{where}: uniMMR {r.uni_mmr} != E_adj/MM")
    if mm == 0 and r.uni_mmr != (math.inf if r.adjusted_equity >= 0 else -math.inf):
        raise Finding(f"{where}: uniMMR {r.uni_mmr} with MM = 0")
    if r.status == pm.BANKRUPT:
        if r.equity > 0:
            raise Finding(f"{where}: BANKRUPT with equity {r.equity}")
    elif r.status != engine.params.status_for(r.uni_mmr):
        raise Finding(f"{where}: status {r.status} for uniMMR {r.uni_mmr}")
    for name, g in r.to_dict()["groups"].items():
        if _has_non_finite(g):
            raise Finding(f"{where}: a non-finite figure in groups.{name}: {g}")


def only_pm_errors(f: Callable[[], Any], where: str) -> tuple[Any, BaseException | None]:
    """``f()``, or the pmengine error it raised; anything else is a finding."""
    try:
        return f(), None
    except PmError as e:
        if not str(e) or "internal error" in str(e):
            raise Finding(f"{where}: {type(e).__name__}: {e}") from e
        return None, e
    except Exception as e:
        raise Finding(f"{where}: {type(e).__name__} escaped: {e}") from e


def margin_everywhere(p: pm.Portfolio, m: pm.Market, where: str) -> None:
    for name, engine in ENGINES.items():
        r, _ = only_pm_errors(lambda engine=engine: engine.margin(p, m), f"{where} margin[{name}]")
        if r is not None:
            check_result(engine, r, f"{where} [{name}]")
            again = engine.margin(p, m)
            if again.to_dict() != r.to_dict() and not _has_nan(r.to_dict()):
                raise Finding(f"{where}: the same inputs gave another result")
    engine = ENGINES["scenario"]
    for mode in ("as_given", "cross", "isolated"):
        only_pm_errors(lambda mode=mode: engine.classic(p, m, mode), f"{where} classic[{mode}]")
    only_pm_errors(lambda: engine.greeks(p, m), f"{where} greeks")


def _has_non_finite(x: Any) -> bool:
    if isinstance(x, float):
        return not math.isfinite(x)
    if isinstance(x, dict):
        return any(_has_non_finite(v) for v in x.values())
    return False


def _has_nan(x: Any) -> bool:
    if isinstance(x, float):
        return math.isnan(x)
    if isinstance(x, dict):
        return any(_has_nan(v) for v in x.values())
    if isinstance(x, list):
        return any(_has_nan(v) for v in x)
    return False


# -- targets ------------------------------------------------------------------------


def _both_ways(cls: Any, doc: Any, where: str) -> Any:
    """``from_json`` of the document's JSON and ``from_dict`` of it agree."""
    text = json.dumps(doc, allow_nan=True)
    a, ea = only_pm_errors(lambda: cls.from_json(text), f"{where} from_json")
    b, eb = only_pm_errors(lambda: cls.from_dict(doc), f"{where} from_dict")
    has_nan_literal = any(t in text for t in ("NaN", "Infinity"))
    if (a is None) != (b is None) and not has_nan_literal:
        raise Finding(f"{where}: from_json {ea!r} but from_dict {eb!r} on {text[:300]}")
    x = a if a is not None else b
    if x is not None:
        back, e = only_pm_errors(lambda: cls.from_json(x.to_json()), f"{where} read back")
        if back is None:
            raise Finding(f"{where}: its own to_json does not read back: {e}")
        if back.to_dict() != x.to_dict():
            raise Finding(f"{where}: to_json does not round-trip")
    return x


def target_portfolio(data: bytes) -> None:
    src = Source(data)
    doc = mutate(src.choice(SEED_PORTFOLIOS), src)
    p = _both_ways(pm.Portfolio, doc, "portfolio")
    if isinstance(p, pm.Portfolio):
        margin_everywhere(p, pm.Market.from_dict(SEED_MARKET), "portfolio")


def target_market(data: bytes) -> None:
    src = Source(data)
    doc = mutate(SEED_MARKET, src)
    m = _both_ways(pm.Market, doc, "market")
    if isinstance(m, pm.Market):
        p = pm.Portfolio.from_dict(src.choice(SEED_PORTFOLIOS))
        margin_everywhere(p, m, "market")


def target_profile(data: bytes) -> None:
    src = Source(data)
    if src.int(4) == 0:  # TOML text, damaged byte by byte
        text = bytearray(pm.DEFAULT_PROFILE_TOML.encode())
        for _ in range(1 + src.int(8)):
            text[src.int(len(text))] = src.byte()
        try:
            s = text.decode()
        except UnicodeDecodeError:
            return
        params, _ = only_pm_errors(lambda: pm.RiskParams.from_toml_str(s), "profile toml")
    else:
        doc = mutate(SEED_PROFILE, src)
        params, _ = only_pm_errors(lambda: pm.RiskParams.from_dict(doc), "profile dict")
    if params is not None:
        engine = pm.Engine(params)
        p = pm.Portfolio.from_dict(src.choice(SEED_PORTFOLIOS))
        r, _ = only_pm_errors(
            lambda: engine.margin(p, pm.Market.from_dict(SEED_MARKET)), "profile margin"
        )
        if r is not None:
            check_result(engine, r, "profile")


LIVE_OPS = (
    "update_price",
    "update_prices",
    "update_mark",
    "update_vol",
    "set_time",
    "deposit",
    "withdraw",
    "borrow",
    "repay",
    "apply_fill",
    "what_if",
    "check_order",
    "max_order_size",
)
ASSETS = ["BTC", "ETH", "USDT", "USDC", "SOL", "PEPE", ""]
SYMBOLS = ["BTCUSDT", "ETHUSDT", "BTCUSD_PERP", "NEWUSDT", "BTC-C", "DOGEUSDT"]


def _live_state(live: pm.LiveAccount) -> tuple[Any, ...]:
    return (
        live.portfolio.to_json(),
        live.market.to_json(),
        live.margin().to_json(),
        live.rebuilds,
        repr(live),
    )


def _instrument(src: Source, symbol: str) -> dict[str, Any] | None:
    kind = src.int(5)
    if kind == 0:
        return None
    if kind == 1:
        return {"type": "linear", "underlying": src.choice(ASSETS[:5])}
    if kind == 2:
        return {"type": "inverse", "underlying": "BTC", "contract_size": src.choice([100, 10, 0])}
    return {
        "type": "option",
        "underlying": src.choice(["BTC", "ETH"]),
        "kind": src.choice(["call", "put"]),
        "strike": src.choice([55000, 60000, 3000, 65000.5]),
        "expiry": src.choice(["2026-12-25T08:00:00Z", "2026-11-25T08:00:00Z"]),
    }


def target_live(data: bytes) -> None:
    src = Source(data)
    engine = ENGINES["scenario" if src.int(4) else "binance_pm"]
    doc = src.choice(SEED_PORTFOLIOS)
    live, _ = only_pm_errors(
        lambda: pm.LiveAccount(
            engine, pm.Portfolio.from_dict(doc), pm.Market.from_dict(SEED_MARKET)
        ),
        "live new",
    )
    if live is None:
        return
    for step in range(1 + src.int(12)):
        op = src.choice(LIVE_OPS)
        x = src.number()
        x = x if isinstance(x, float | int) and not isinstance(x, bool) else 1.0
        x = float(x) if abs(x) < 1e300 else x
        asset, symbol = src.choice(ASSETS), src.choice(SYMBOLS)
        calls: dict[str, Callable[[], Any]] = {
            "update_price": lambda: live.update_price(asset, abs(x) * 1000),
            "update_prices": lambda: live.update_prices({asset: abs(x) * 1000, "ETH": 3100.0}),
            "update_mark": lambda: live.update_mark(symbol, abs(x) * 1000),
            "update_vol": lambda: live.update_vol(asset, abs(x)),
            "set_time": lambda: live.set_time(1_795_478_400 + x * 86400),
            "deposit": lambda: live.deposit(asset, x),
            "withdraw": lambda: live.withdraw(asset, x),
            "borrow": lambda: live.borrow(asset, x),
            "repay": lambda: live.repay(asset, x),
            "apply_fill": lambda: live.apply_fill(symbol, x, instrument=_instrument(src, symbol)),
            "what_if": lambda: live.what_if(symbol, x, instrument=_instrument(src, symbol)),
            "check_order": lambda: live.check_order(symbol, x, instrument=_instrument(src, symbol)),
            "max_order_size": lambda: live.max_order_size(
                symbol, src.choice(["buy", "sell", "long"]), instrument=_instrument(src, symbol)
            ),
        }
        before = _live_state(live)
        out, err = only_pm_errors(calls[op], f"live {op}")
        where = f"live step {step} {op}({asset or symbol!r}, {x!r})"
        if err is not None or op in ("what_if", "check_order", "max_order_size"):
            if _live_state(live) != before:
                raise Finding(f"{where}: {'refused' if err else 'a probe'} but changed the account")
            if op == "what_if" and out is not None:
                check_result(engine, out, where)
            continue
        r = live.margin()
        check_result(engine, r, where)
        rebuilt, e = only_pm_errors(lambda: engine.margin(live.portfolio, live.market), where)
        if rebuilt is None:
            raise Finding(f"{where}: accepted, but the rebuild refuses: {e}")
        try:
            assert_close(r.to_dict(), rebuilt.to_dict())
        except AssertionError as a:
            raise Finding(f"{where}: live != rebuild: {a}") from None


def target_batch(data: bytes) -> None:
    import pyarrow as pa

    from pmengine.book.batch import to_columns

    src = Source(data)
    accounts = []
    for i in range(1 + src.int(5)):
        doc = src.choice(SEED_PORTFOLIOS)
        accounts.append((i * 7 + src.int(3), mutate(doc, src, src.int(3))))
    try:
        pos, bal = to_columns(accounts)
        positions, balances = pa.table(pos), pa.table(bal)
    except (KeyError, TypeError, ValueError, OverflowError, AttributeError, pa.ArrowException):
        return  # not a book Arrow can hold
    market = pm.Market.from_dict(SEED_MARKET)
    engine = ENGINES["scenario" if src.int(3) else "binance_pm"]
    one, _ = only_pm_errors(
        lambda: engine.margin_batch(positions, balances, market, threads=1, errors="collect"),
        "batch",
    )
    two, _ = only_pm_errors(
        lambda: engine.margin_batch(
            positions, balances, market, threads=2, errors="collect", chunk_size=1
        ),
        "batch threads=2",
    )
    if one is None or two is None:
        if (one is None) != (two is None):
            raise Finding("batch: threads=1 and threads=2 disagree on refusing")
        return
    a, b = one.to_pylist(), two.to_pylist()
    if json.dumps(a, sort_keys=True) != json.dumps(b, sort_keys=True):
        raise Finding("batch: results depend on the thread count")
    only_pm_errors(lambda: engine.margin_batch(positions, balances, market), "batch raise")


def _cli_file(src: Source, kind: str) -> bytes:
    if kind == "portfolio":
        doc = mutate(src.choice(SEED_PORTFOLIOS), src)
    elif kind == "market":
        doc = mutate(SEED_MARKET, src)
    else:
        doc = None
    text = (
        json.dumps(doc, allow_nan=True).encode()
        if doc is not None
        else pm.DEFAULT_PROFILE_TOML.encode()
    )
    data = bytearray(text)
    for _ in range(src.int(4)):  # a few damaged bytes
        if data:
            data[src.int(len(data))] = src.byte()
    return bytes(data)


def target_cli(data: bytes) -> None:
    from pmengine import cli

    src = Source(data)
    command = src.choice(["margin", "greeks", "compare", "switch", "risk"])
    with tempfile.TemporaryDirectory() as tmp:
        paths = {}
        for kind in ("portfolio", "market", "params"):
            path = Path(tmp) / f"{kind}.{'toml' if kind == 'params' else 'json'}"
            path.write_bytes(_cli_file(src, kind))
            paths[kind] = str(path)
        argv = [command, "--portfolio", paths["portfolio"], "--market", paths["market"]]
        argv += ["--params", paths["params"], "--json"]
        if command == "switch":
            argv += ["--to", src.choice(["portfolio", "classic"]), "--now", "1795478400"]
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = cli.main(argv)
            except SystemExit as e:  # argparse
                code = e.code if isinstance(e.code, int) else 2
            except Exception as e:
                raise Finding(f"cli {command}: {type(e).__name__} escaped: {e}") from e
        lines = err.getvalue().splitlines()
        if code not in (0, 2, 3):
            raise Finding(f"cli {command}: exit {code}: {err.getvalue()[:300]}")
        if code == 2 and (len(lines) != 1 or not lines[0].startswith("pmengine: error: ")):
            raise Finding(f"cli {command}: exit 2 with {len(lines)} lines: {lines[:3]}")
        if code == 3 and command != "switch":
            raise Finding(f"cli {command}: exit 3 outside switch")


TARGETS: dict[str, Callable[[bytes], None]] = {
    "portfolio": target_portfolio,
    "market": target_market,
    "profile": target_profile,
    "live": target_live,
    "batch": target_batch,
    "cli": target_cli,
}


def random_input(rnd: Any, size: int = 64) -> bytes:
    return bytes(rnd.getrandbits(8) for _ in range(size))


def save(artifacts: Path, surface: str, data: bytes, finding: BaseException) -> Path:
    artifacts.mkdir(parents=True, exist_ok=True)
    name = f"{surface}-{abs(hash(data)) % 10**12:012d}"
    (artifacts / f"{name}.bin").write_bytes(data)
    (artifacts / f"{name}.txt").write_text(f"{type(finding).__name__}: {finding}\n")
    return artifacts / f"{name}.bin"


__all__ = ["TARGETS", "Finding", "Source", "check_result", "mutate", "random_input", "save"]
