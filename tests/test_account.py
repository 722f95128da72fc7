"""Account modes, eligibility and atomic switching (METHODOLOGY.md §6)."""

from __future__ import annotations

import copy
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pmengine as pm
from pmengine import account as acct
from pmengine.account import Account
from pmengine.cli import main

from .conftest import EXAMPLES

ENGINE = pm.Engine()
MARKET = pm.Market.from_json((EXAMPLES / "market.json").read_text())
NOW = 1_795_000_000.0
QUALIFIED = {
    "mode": "classic",
    "kyc_level": 2,
    "futures_enabled": True,
    "quiz_passed": True,
    "trading_days": 90,
    "jurisdiction": "SG",
}


def account(name: str = "cash_and_carry", **info: object) -> Account:
    d = json.loads((EXAMPLES / f"{name}.json").read_text())
    d["account"] = {**QUALIFIED, **info}
    return Account.from_dict(d)


def codes(result: acct.SwitchResult) -> list[str]:
    return [r.code for r in result.reasons]


def test_a_qualified_hedged_account_switches_to_portfolio() -> None:
    a = account()
    r = a.switch_mode("portfolio", ENGINE, MARKET, now=NOW)
    assert r.allowed and r.reasons == []
    assert a.mode == "portfolio" and a.last_switch == NOW
    assert r.after["uni_mmr"] >= 1.5
    assert a.audit[-1]["outcome"] == "switched"
    # And back to classic an interval later: every wallet stands on its own.
    r = a.switch_mode("classic", ENGINE, MARKET, now=NOW + 3600)
    assert r.allowed, r.reasons
    assert a.mode == "classic"


@pytest.mark.parametrize(
    ("info", "code"),
    [
        ({"kyc_level": 0}, "kyc_level"),
        ({"futures_enabled": False}, "futures_disabled"),
        ({"quiz_passed": False}, "quiz_not_passed"),
        ({"trading_days": 3}, "trading_days"),
        ({"mode": "portfolio"}, "same_mode"),
    ],
)
def test_each_refusal_reason(info: dict, code: str) -> None:
    a = account(**info)
    r = a.switch_mode("portfolio", ENGINE, MARKET, now=NOW)
    assert codes(r) == [code]
    assert not r.allowed and a.audit[-1]["outcome"] == "refused"


def test_restricted_jurisdiction() -> None:
    params = pm.RiskParams.from_toml_str(
        pm.DEFAULT_PROFILE_TOML.replace(
            "restricted_jurisdictions = []", 'restricted_jurisdictions = ["XX"]'
        )
    )
    a = account(jurisdiction="XX")
    assert codes(a.switch_mode("portfolio", pm.Engine(params), MARKET, now=NOW)) == [
        "restricted_jurisdiction"
    ]


def test_min_equity() -> None:
    d = {"balances": {"USDT": 5000, "DOGE": 1e6}, "positions": [], "account": QUALIFIED}
    m = pm.Market("2026-11-24", prices={"USDT": 1, "DOGE": 0.2})
    a = Account.from_dict(d)
    # DOGE is not collateral: 5,000 USD qualifies, below 10,000; DOGE is also unknown to the profile.
    assert codes(a.switch_mode("portfolio", ENGINE, m, now=NOW)) == ["min_equity", "unknown_asset"]


def test_isolated_positions_block_portfolio_mode() -> None:
    d = json.loads((EXAMPLES / "cash_and_carry.json").read_text())
    d["positions"][0]["isolated_margin"] = 2000
    d["account"] = QUALIFIED
    assert codes(Account.from_dict(d).switch_mode("portfolio", ENGINE, MARKET, now=NOW)) == [
        "isolated_positions"
    ]


def test_switch_min_ratio() -> None:
    # near_liquidation: uniMMR about 1.09 under portfolio margin, below 1.5.
    r = account("near_liquidation").switch_mode("portfolio", ENGINE, MARKET, now=NOW)
    assert "switch_min_ratio" in codes(r)


def test_min_switch_interval() -> None:
    a = account()
    assert a.switch_mode("portfolio", ENGINE, MARKET, now=NOW).allowed
    r = a.switch_mode("classic", ENGINE, MARKET, now=NOW + 60)
    assert codes(r) == ["min_switch_interval"] and a.mode == "portfolio"


def test_to_classic_refusals() -> None:
    # covered_call: in classic the short call sits in an unfunded USDⓈ-M wallet.
    a = account("covered_call", mode="portfolio")
    assert "futures_margin_ratio" in codes(a.switch_mode("classic", ENGINE, MARKET, now=NOW))
    # leveraged_spot: a 1.2 margin level is at or below the 1.3 call.
    d = {
        "balances": {"BTC": 2, "USDT": -100000},
        "positions": [],
        "account": {**QUALIFIED, "mode": "portfolio"},
    }
    r = Account.from_dict(d).switch_mode("classic", ENGINE, MARKET, now=NOW)
    assert codes(r) == ["cross_margin_level"]
    params = pm.RiskParams.from_toml_str(
        pm.DEFAULT_PROFILE_TOML.replace(
            "allow_options_in_classic = true", "allow_options_in_classic = false"
        )
    )
    r = account("short_straddle", mode="portfolio").switch_mode(
        "classic", pm.Engine(params), MARKET, now=NOW
    )
    assert "options_in_classic" in codes(r)


def test_every_reason_at_once_and_raise_for_refusal() -> None:
    a = account(kyc_level=0, quiz_passed=False, trading_days=0)
    r = a.switch_mode("portfolio", ENGINE, MARKET, now=NOW)
    assert codes(r) == ["kyc_level", "quiz_not_passed", "trading_days"]
    with pytest.raises(pm.ModeSwitchError) as e:
        r.raise_for_refusal()
    assert [x["code"] for x in e.value.reasons] == codes(r)


# -- atomicity ---------------------------------------------------------------------------


def test_refusal_changes_nothing() -> None:
    a = account(kyc_level=0)
    before = copy.deepcopy(a.snapshot())
    a.switch_mode("portfolio", ENGINE, MARKET, now=NOW)
    assert a.snapshot() == before


@pytest.mark.parametrize("where", ["figures", "reasons", "audit"])
def test_an_exception_midway_changes_nothing(
    monkeypatch: pytest.MonkeyPatch, where: str, tmp_path
) -> None:
    a = account()
    a.audit_log = tmp_path / "audit.jsonl"
    before = copy.deepcopy(a.snapshot())
    calls = {"n": 0}

    def boom(*args: object, **kw: object) -> None:
        raise RuntimeError("injected")

    if where == "figures":
        real = acct.figures

        def second_fails(*args: object, **kw: object) -> object:
            calls["n"] += 1
            if calls["n"] == 2:
                raise RuntimeError("injected")
            return real(*args, **kw)

        monkeypatch.setattr(acct, "figures", second_fails)
    elif where == "reasons":
        monkeypatch.setattr(Account, "check_eligibility", boom)
    else:
        monkeypatch.setattr(acct.json, "dumps", boom)
    with pytest.raises(RuntimeError, match="injected"):
        a.switch_mode("portfolio", ENGINE, MARKET, now=NOW)
    assert a.snapshot() == before
    assert a.audit == []
    assert not a.audit_log.exists()


def test_audit_log_is_append_only_json_lines(tmp_path) -> None:
    a = account()
    a.audit_log = tmp_path / "audit.jsonl"
    a.switch_mode("classic", ENGINE, MARKET, now=NOW)  # refused: same mode
    a.switch_mode("portfolio", ENGINE, MARKET, now=NOW + 1, dry_run=True)
    a.switch_mode("portfolio", ENGINE, MARKET, now=NOW + 2)
    lines = [json.loads(x) for x in a.audit_log.read_text().splitlines()]
    assert [x["outcome"] for x in lines] == ["refused", "dry_run", "switched"]
    assert lines == a.audit
    first = lines[0]
    assert set(first) == {"time", "from", "to", "outcome", "reasons", "before", "after"}
    assert first["reasons"] == [
        {"code": "same_mode", "message": "the account is already in classic mode"}
    ]


def test_bad_account_input() -> None:
    with pytest.raises(
        pm.InvalidInputError, match=r'account\.mode: must be "classic" or "portfolio"'
    ):
        account(mode="spot")
    with pytest.raises(pm.InvalidInputError, match=r"account\.kyc_level: must be a whole number"):
        account(kyc_level=-1)
    with pytest.raises(pm.InvalidInputError, match=r"account\.colour: unknown key"):
        account(colour="red")
    with pytest.raises(pm.InvalidInputError, match=r'target: must be "classic" or "portfolio"'):
        account().switch_mode("spot", ENGINE, MARKET, now=NOW)


@settings(max_examples=60, deadline=None)
@given(
    btc=st.floats(min_value=0, max_value=5),
    usdt=st.floats(min_value=-200_000, max_value=200_000),
    perp=st.floats(min_value=-6, max_value=6),
)
def test_an_accepted_switch_to_portfolio_is_above_the_floor(
    btc: float, usdt: float, perp: float
) -> None:
    d = {
        "balances": {"BTC": btc, "USDT": usdt},
        "positions": [
            {
                "type": "linear",
                "symbol": "BTCUSDT",
                "underlying": "BTC",
                "qty": perp,
                "entry_price": 60000,
            }
        ],
        "account": QUALIFIED,
    }
    a = Account.from_dict(d)
    r = a.switch_mode("portfolio", ENGINE, MARKET, now=NOW)
    if r.allowed:
        after = ENGINE.margin(a.portfolio, MARKET)
        assert after.uni_mmr >= ENGINE.params.to_dict()["switching"]["switch_min_ratio"]
        assert a.mode == "portfolio"
    else:
        assert a.mode == "classic" and r.reasons


# -- command line --------------------------------------------------------------------------


def test_cli_compare(capsys: pytest.CaptureFixture[str]) -> None:
    args = [
        "--portfolio",
        str(EXAMPLES / "cash_and_carry.json"),
        "--market",
        str(EXAMPLES / "market.json"),
    ]
    assert main(["compare", *args, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"isolated", "cross", "portfolio", "binance_pm", "recognised"}
    assert out["portfolio"]["initial_margin"] < out["cross"]["initial_margin"]
    assert main(["compare", *args]) == 0
    text = capsys.readouterr().out
    assert (
        "isolated, cross and portfolio margin" in text
        and "long spot hedges short contracts" in text
    )


def test_cli_switch(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    info = tmp_path / "account.json"
    info.write_text(json.dumps(QUALIFIED))
    base = [
        "switch",
        "--to",
        "portfolio",
        "--market",
        str(EXAMPLES / "market.json"),
        "--now",
        str(NOW),
    ]
    ok = main([*base, "--portfolio", str(EXAMPLES / "cash_and_carry.json"), "--account", str(info)])
    assert ok == 0 and "allowed" in capsys.readouterr().out
    refused = main([*base, "--portfolio", str(EXAMPLES / "cash_and_carry.json"), "--json"])
    out = json.loads(capsys.readouterr().out)
    assert refused == 3 and out["outcome"] == "refused"
    assert {r["code"] for r in out["reasons"]} >= {"kyc_level", "quiz_not_passed"}


def test_compare_portfolio_liquidation_prices() -> None:
    """The portfolio column gives, per futures symbol, the price of its group at
    which the whole account enters LIQUIDATION, moving against the position."""
    from pmengine.compare import compare
    from pmengine.risk import liquidation_prices

    engine = pm.Engine()
    portfolio = pm.Portfolio.from_json((EXAMPLES / "near_liquidation.json").read_text())
    short = portfolio.to_dict()
    for p in short["positions"]:
        p["qty"] = -p["qty"]
    for book, direction in ((portfolio, "down"), (pm.Portfolio.from_dict(short), "up")):
        got = compare(engine, book, MARKET)["portfolio"]["liquidation_prices"]
        want = {
            x.group: x.price
            for x in liquidation_prices(engine, book, MARKET)
            if x.status == "LIQUIDATION" and x.direction == direction
        }
        assert got == {"BTCUSDT": want["BTC"], "ETHUSDT": want["ETH"]}
        price = got["BTCUSDT"]
        assert price is not None
        current = MARKET.prices["BTC"]
        assert (price < current) if direction == "down" else (price > current)


def test_standalone_margin_keeps_the_wallets_loans():
    """The wallet margined alone is the balances and the margin loans: a loan's
    MM does not vanish from the standalone figure."""
    from pmengine.compare import standalone_margin

    engine = pm.Engine(pm.RiskParams.default())
    p = pm.Portfolio()
    p.add_balance("USDT", 1000.0)
    p.add_balance("BTC", 0.5)
    p.add_loan("BTC", 0.5, 0.01)
    m = pm.Market(0, prices={"BTC": 60_000.0, "USDT": 1.0})
    wallet_alone = engine.margin(p, m).maintenance_margin  # no positions: the wallet is all of it
    assert wallet_alone > 0
    assert standalone_margin(engine, p, m) == wallet_alone
