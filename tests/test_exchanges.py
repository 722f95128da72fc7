"""Exchange imports: Binance Portfolio Margin exports and ccxt structures (docs/BINANCE.md).

The official samples of BINANCE_PM.md §3 parse, every quirk real exports carry is
read, every other malformed value is refused naming its file and field, the
bundled example and the synthetic exports round-trip through the model to the
figures they report, and the CLI writes all three files or none.
"""

from __future__ import annotations

import copy
import json
import math
import shutil
import tomllib
from decimal import Decimal
from typing import Any

import pytest

import pmengine as pm
from pmengine import reference
from pmengine.cli import main
from pmengine.errors import InputFileError, InvalidInputError
from pmengine.exchanges import binance as bx
from pmengine.exchanges import ccxt as cx
from pmengine.exchanges import toml_dumps, write_files_atomically

from .conftest import EXAMPLES

EXAMPLE = EXAMPLES / "binance_export"

# --------------------------------------------------------------------------------------
# The official documentation samples (BINANCE_PM.md §3), verbatim
# --------------------------------------------------------------------------------------

ACCOUNT_SAMPLE = {
    "uniMMR": "5167.92171923",
    "accountEquity": "122607.35137903",
    "actualEquity": "73.47428058",
    "accountInitialMargin": "23.72469206",
    "accountMaintMargin": "23.72469206",
    "accountStatus": "NORMAL",
    "virtualMaxWithdrawAmount": "1627523.32459208",
    "totalAvailableBalance": "",
    "totalMarginOpenLoss": "",
    "updateTime": 1657707212154,
}
BALANCE_SAMPLE = [
    {
        "asset": "USDT",
        "totalWalletBalance": "122607.35137903",
        "crossMarginAsset": "92.27530794",
        "crossMarginBorrowed": "10.00000000",
        "crossMarginFree": "100.00000000",
        "crossMarginInterest": "0.72469206",
        "crossMarginLocked": "3.00000000",
        "umWalletBalance": "0.00000000",
        "umUnrealizedPNL": "23.72469206",
        "cmWalletBalance": "23.72469206",
        "cmUnrealizedPNL": "",
        "updateTime": 1617939110373,
        "negativeBalance": "0",
    }
]
UM_POSITION_SAMPLE = [
    {
        "symbol": "BTCUSDT",
        "positionAmt": "0.001",
        "entryPrice": "22185.2",
        "markPrice": "21123.05052574",
        "unRealizedProfit": "-1.06214947",
        "liquidationPrice": "6170.20509059",
        "leverage": "4",
        "maxNotionalValue": "100000000",
        "positionSide": "LONG",
        "notional": "21.12305052",
        "updateTime": 1655217461579,
    }
]
CM_POSITION_SAMPLE = [
    {
        "symbol": "BTCUSD_201225",
        "positionAmt": "1",
        "entryPrice": "11707.70000003",
        "markPrice": "11788.66626667",
        "unRealizedProfit": "0.00005866",
        "liquidationPrice": "6170.20509059",
        "leverage": "125",
        "positionSide": "LONG",
        "updateTime": 1627026881327,
        "maxQty": "50",
        "notionalValue": "0.00084827",
    }
]
UM_BRACKET_SAMPLE = [
    {
        "symbol": "ETHUSDT",
        "notionalCoef": "4.0",
        "brackets": [
            {
                "bracket": 1,
                "initialLeverage": 75,
                "notionalCap": 10000,
                "notionalFloor": 0,
                "maintMarginRatio": 0.0065,
                "cum": 0,
            }
        ],
    }
]
CM_BRACKET_SAMPLE = [
    {
        "symbol": "BTCUSD_PERP",
        "brackets": [
            {
                "bracket": 1,
                "initialLeverage": 125,
                "qtyCap": 50,
                "qtyFloor": 0,
                "maintMarginRatio": 0.004,
                "cum": 0.0,
            }
        ],
    }
]
COLLATERAL_V1_SAMPLE = [{"asset": "USDC", "collateralRate": "1.0000"}]
COLLATERAL_V2_SAMPLE = [
    {
        "asset": "BNB",
        "collateralInfo": [
            {
                "tierFloor": "0.0000",
                "tierCap": "1000.0000",
                "collateralRate": "1.0000",
                "cum": "0.0000",
            }
        ],
    }
]
INDEX_SAMPLE = [{"asset": "BTC", "assetIndexPrice": "28251.9136906", "time": 1683518338121}]
LEVERAGE_SAMPLE = [{"asset": "USDC", "leverage": 10}]


def official() -> dict[str, Any]:
    return copy.deepcopy(
        {
            "balance": BALANCE_SAMPLE,
            "um_positionRisk": UM_POSITION_SAMPLE,
            "cm_positionRisk": CM_POSITION_SAMPLE,
            "um_leverageBracket": UM_BRACKET_SAMPLE,
            "cm_leverageBracket": CM_BRACKET_SAMPLE,
            "collateralRate": COLLATERAL_V1_SAMPLE,
            "assetIndexPrice": INDEX_SAMPLE,
            "marginLeverage": LEVERAGE_SAMPLE,
            "account": ACCOUNT_SAMPLE,
        }
    )


def example() -> dict[str, Any]:
    """The bundled example export as a dict of endpoint name → JSON."""
    return {p.stem: json.loads(p.read_text()) for p in sorted(EXAMPLE.glob("*.json"))}


def inputs_of(export: dict[str, Any]) -> dict[str, Any]:
    """An export without Binance's own figures (the account files)."""
    return {k: v for k, v in export.items() if k not in ("account", "um_account", "cm_account")}


def binance_pm_result(portfolio: dict, market: dict, profile: dict) -> dict:
    return reference.margin(portfolio, market, reference.load_profile(profile))


def default_binance_profile(**coinm: Any) -> dict[str, Any]:
    d = bx.default_profile_dict()
    d["model"] = "binance_pm"
    d["brackets"]["coinm"].update(coinm)
    return d


# --------------------------------------------------------------------------------------
# TV-2 and the official samples
# --------------------------------------------------------------------------------------


def test_tv2_account_sample_is_self_consistent():
    acct = bx.load_export(official())
    rep = acct.reported["account"]
    assert rep["adjusted_equity"] == 122607.35137903
    assert rep["maintenance_margin"] == 23.72469206
    assert rep["uni_mmr"] == 5167.92171923
    assert rep["status"] == "NORMAL"
    assert rep["available"] is None and rep["open_loss"] is None  # "" is absent
    ratio = Decimal(ACCOUNT_SAMPLE["accountEquity"]) / Decimal(ACCOUNT_SAMPLE["accountMaintMargin"])
    assert f"{ratio:.8f}" == ACCOUNT_SAMPLE["uniMMR"] == "5167.92171923"
    assert f"{rep['adjusted_equity'] / rep['maintenance_margin']:.8f}" == "5167.92171923"


def test_official_samples_parse():
    acct = bx.load_export(official())
    p, m, prof = acct.portfolio, acct.market, acct.profile
    # Wallet = crossMarginFree + crossMarginLocked + UM + CM wallets; the loan apart.
    assert p["balances"] == {"USDT": pytest.approx(126.72469206, abs=1e-12)}
    assert p["loans"] == {"USDT": {"borrowed": 10, "interest": 0.72469206}}
    # The sample's crossMarginAsset is free + locked − borrowed − interest to the last
    # digit, so the net wallet is the same whichever way it is read:
    net = p["balances"]["USDT"] - 10 - 0.72469206
    assert net == pytest.approx(92.27530794 + 0 + 23.72469206, abs=1e-9)
    assert any("crossMarginAsset" in w for w in acct.warnings)
    assert p["positions"] == [
        {
            "type": "linear",
            "symbol": "BTCUSDT",
            "underlying": "BTC",
            "settle": "USDT",
            "qty": 0.001,
            "entry_price": 22185.2,
            "leverage": 4,
        },
        {
            "type": "inverse",
            "symbol": "BTCUSD_201225",
            "underlying": "BTC",
            "contract_size": 100,
            "contracts": 1,
            "entry_price": 11707.70000003,
            "leverage": 125,
        },
    ]
    assert [(s.market, s.symbol, s.side) for s in acct.sources] == [
        ("um", "BTCUSDT", "LONG"),
        ("cm", "BTCUSD_201225", "LONG"),
    ]
    assert m == {
        "time": "2023-05-08T03:58:58.121Z",  # the newest time of the export (asset index)
        "prices": {"BTC": 28251.9136906},
        "marks": {"BTCUSDT": 21123.05052574, "BTCUSD_201225": 11788.66626667},
    }
    assert prof["model"] == "binance_pm"
    assert prof["brackets"]["usdm"]["ETHUSDT"] == [
        {"up_to": 10000, "mmr": 0.0065, "max_leverage": 75, "cum": 0}
    ]
    assert (
        prof["brackets"]["usdm"]["BTCUSDT"]
        == bx.default_profile_dict()["brackets"]["usdm"]["BTCUSDT"]
    )
    assert prof["brackets"]["coinm"]["BTCUSD_PERP"] == [
        {"up_to": 50, "mmr": 0.004, "max_leverage": 125, "cum": 0}
    ]
    assert acct.notional_coef == {"ETHUSDT": 4.0}
    assert prof["assets"]["USDC"] == {
        "group": "USD",
        "collateral": [{"rate": 1.0}],
        "loan_leverage": 10,
    }
    assert "collateral" not in prof["assets"]["USDT"]  # only the export's rates
    assert acct.reported["assets"]["USDT"] == {
        "total_wallet_balance": 122607.35137903,
        "um_upnl": 23.72469206,
        "cm_upnl": None,
        "negative_balance": 0.0,
    }
    assert acct.reported_position(acct.sources[0])["upnl"] == -1.06214947
    text = "\n".join(acct.warnings)
    assert "no price for USDT" in text and "no collateral rate for USDT" in text
    assert "no brackets for BTCUSD_201225" in text and "no brackets for BTCUSDT" in text


def test_official_v2_collateral_and_single_balance_object():
    ex = official()
    ex["collateralRate"] = COLLATERAL_V2_SAMPLE
    one = dict(BALANCE_SAMPLE[0])
    del one["crossMarginAsset"]  # the single-object reply has no crossMarginAsset
    ex["balance"] = one
    acct = bx.load_export(ex)
    assert acct.profile["assets"]["BNB"]["collateral"] == [{"rate": 1.0, "up_to": 1000}]
    assert acct.portfolio["balances"]["USDT"] == pytest.approx(126.72469206, abs=1e-12)
    assert not any("crossMarginAsset" in w for w in acct.warnings)


def test_crossmarginasset_is_read_only_without_free_and_locked():
    ex = official()
    row = ex["balance"][0]
    row["crossMarginFree"], row["crossMarginLocked"] = "", ""
    assert bx.load_export(ex).portfolio["balances"]["USDT"] == pytest.approx(
        92.27530794 + 23.72469206, abs=1e-12
    )


# --------------------------------------------------------------------------------------
# Tolerated quirks, one test each
# --------------------------------------------------------------------------------------


def test_quirk_empty_string_is_absent():
    ex = official()
    ex["um_positionRisk"][0]["markPrice"] = ""
    ex["um_positionRisk"][0]["leverage"] = ""
    acct = bx.load_export(ex)
    assert "BTCUSDT" not in acct.market["marks"]
    assert "leverage" not in acct.portfolio["positions"][0]


def test_quirk_thousands_comma():
    ex = official()
    ex["balance"][0]["crossMarginFree"] = "122,559.90199491"
    ex["balance"][0]["crossMarginLocked"] = "1,000"
    acct = bx.load_export(ex)
    assert acct.portfolio["balances"]["USDT"] == pytest.approx(
        122559.90199491 + 1000 + 23.72469206, abs=1e-9
    )


def test_quirk_qtylfloor_and_pair_key():
    ex = official()
    b = ex["cm_leverageBracket"][0]
    b["brackets"][0]["qtylFloor"] = b["brackets"][0].pop("qtyFloor")
    b["brackets"].append(
        {
            "bracket": 2,
            "initialLeverage": 50,
            "qtyCap": 100,
            "qtylFloor": 50,
            "maintMarginRatio": 0.01,
            "cum": 0.3,
        }
    )
    b["pair"] = "BTCUSD"
    del b["symbol"]
    acct = bx.load_export(ex)
    assert acct.profile["brackets"]["coinm"]["BTCUSD"] == [
        {"up_to": 50, "mmr": 0.004, "max_leverage": 125, "cum": 0},
        {"up_to": 100, "mmr": 0.01, "max_leverage": 50, "cum": 0.3},
    ]
    assert not any("no brackets for BTCUSD_201225" in w for w in acct.warnings)  # by pair


@pytest.mark.parametrize("coef", ["4.0", 4.0, 4, None])
def test_quirk_notional_coef_string_or_number_never_applied(coef):
    ex = official()
    if coef is None:
        del ex["um_leverageBracket"][0]["notionalCoef"]
    else:
        ex["um_leverageBracket"][0]["notionalCoef"] = coef
    acct = bx.load_export(ex)
    assert acct.profile["brackets"]["usdm"]["ETHUSDT"][0]["up_to"] == 10000  # as exported
    assert acct.notional_coef == ({} if coef is None else {"ETHUSDT": 4.0})


def test_quirk_hedge_mode_rows_either_sign():
    ex = official()
    long_row = dict(UM_POSITION_SAMPLE[0], positionAmt="-0.003")  # a LONG row is long
    short_pos = dict(UM_POSITION_SAMPLE[0], positionSide="SHORT", positionAmt="0.002")  # short
    short_neg = dict(
        UM_POSITION_SAMPLE[0], symbol="ETHUSDT", positionSide="SHORT", positionAmt="-5"
    )
    zero = dict(UM_POSITION_SAMPLE[0], symbol="ETHUSDT", positionSide="LONG", positionAmt="0")
    ex["um_positionRisk"] = [long_row, short_pos, zero, short_neg]
    acct = bx.load_export(ex)
    lin = [p for p in acct.portfolio["positions"] if p["type"] == "linear"]
    assert [(p["symbol"], p["qty"]) for p in lin] == [
        ("BTCUSDT", 0.003),
        ("BTCUSDT", -0.002),
        ("ETHUSDT", -5),
    ]
    assert [s.label for s in acct.sources][:3] == ["BTCUSDT LONG", "BTCUSDT SHORT", "ETHUSDT SHORT"]
    assert [s.index for s in acct.sources][:3] == [0, 1, 3]  # the zero row is skipped


def test_quirk_one_way_mode_signed_amount():
    ex = official()
    ex["um_positionRisk"][0].update(positionSide="BOTH", positionAmt="-0.5")
    ex["cm_positionRisk"][0].update(positionSide="BOTH", positionAmt="-20")
    pos = bx.load_export(ex).portfolio["positions"]
    assert pos[0]["qty"] == -0.5 and pos[1]["contracts"] == -20


def test_symbols_dated_usdc_and_coin_margined():
    assert bx.split_um_symbol("BTCUSDT_250627") == ("BTC", "USDT")
    assert bx.split_um_symbol("ETHUSDC") == ("ETH", "USDC")
    assert bx.split_um_symbol("1000PEPEUSDT") == ("1000PEPE", "USDT")
    assert bx.split_cm_symbol("BTCUSD_PERP") == "BTC"
    assert bx.split_cm_symbol("ETHUSD_250627") == "ETH"
    with pytest.raises(ValueError):
        bx.split_um_symbol("USDT")
    ex = official()
    ex["um_positionRisk"][0]["symbol"] = "ETHUSDC_250627"
    pos = bx.load_export(ex).portfolio["positions"][0]
    assert (pos["underlying"], pos["settle"]) == ("ETH", "USDC")


def test_contract_size_from_exchange_info_else_binance_default():
    ex = official()
    ex["cm_positionRisk"].append(
        dict(CM_POSITION_SAMPLE[0], symbol="ETHUSD_PERP", positionAmt="-3")
    )
    sizes = [p["contract_size"] for p in bx.load_export(ex).portfolio["positions"][1:]]
    assert sizes == [100, 10]
    ex["cm_exchangeInfo"] = {"symbols": [{"symbol": "ETHUSD_PERP", "contractSize": "25"}]}
    sizes = [p["contract_size"] for p in bx.load_export(ex).portfolio["positions"][1:]]
    assert sizes == [100, 25]


def test_loan_leverage_defaults_to_three():
    ex = official()
    del ex["marginLeverage"]
    prof = bx.load_export(ex).profile
    assert prof["binance"]["loan_leverage"] == 3
    assert not any("loan_leverage" in t for t in prof["assets"].values())


def test_flat_and_tiered_collateral_detected_per_row():
    ex = official()
    ex["collateralRate"] = [
        {"asset": "USDT", "collateralRate": "0.9999"},
        {
            "asset": "BTC",
            "collateralInfo": [
                {"tierFloor": "300000", "tierCap": "500000", "collateralRate": "0.7", "cum": "999"},
                {"tierFloor": "0", "tierCap": "300000", "collateralRate": "1", "cum": "-5"},
                {"tierFloor": "500000", "tierCap": "", "collateralRate": "0.3"},
            ],
        },
    ]
    assets = bx.load_export(ex).profile["assets"]
    assert assets["USDT"]["collateral"] == [{"rate": 0.9999}]
    assert assets["BTC"]["collateral"] == [  # sorted by floor; cum ignored; the last open
        {"rate": 1.0, "up_to": 300000},
        {"rate": 0.7, "up_to": 500000},
        {"rate": 0.3},
    ]


def test_folder_source_reads_the_same(tmp_path):
    for name, data in official().items():
        (tmp_path / f"{name}.json").write_text(json.dumps(data))
    (tmp_path / "notes.txt").write_text("ignored")
    a, b = bx.load_export(tmp_path), bx.load_export(official())
    assert (a.portfolio, a.market, a.profile, a.reported) == (
        b.portfolio,
        b.market,
        b.profile,
        b.reported,
    )


# --------------------------------------------------------------------------------------
# Rejected values name the file and the field
# --------------------------------------------------------------------------------------


def _set(path: str, value: Any):
    """A mutation of the official export: ``file/index/key/...`` set to ``value``."""

    def apply(ex: dict[str, Any]) -> None:
        keys: list[Any] = [int(k) if k.isdigit() else k for k in path.split("/")]
        node = ex
        for k in keys[:-1]:
            node = node[k]
        node[keys[-1]] = value

    return apply


REJECTED = [
    (
        _set("um_positionRisk/0/positionAmt", "abc"),
        'um_positionRisk.json[0].positionAmt: must be a decimal number, got "abc"',
    ),
    (
        _set("um_positionRisk/0/positionAmt", True),
        "um_positionRisk.json[0].positionAmt: must be a decimal number, got true",
    ),
    (
        _set("um_positionRisk/0/positionAmt", ""),
        'um_positionRisk.json[0].positionAmt: required, got ""',
    ),
    (_set("um_positionRisk/0/positionAmt", "1e400x"), "um_positionRisk.json[0].positionAmt"),
    (_set("um_positionRisk/0/positionSide", "BOTHX"), "um_positionRisk.json[0].positionSide"),
    (_set("um_positionRisk/0/symbol", "BTCBUSD"), "um_positionRisk.json[0].symbol"),
    (_set("um_positionRisk/0/symbol", ""), "um_positionRisk.json[0].symbol"),
    (
        _set("um_positionRisk/0/entryPrice", "0"),
        "um_positionRisk.json[0].entryPrice: must be > 0, got 0",
    ),
    (_set("um_positionRisk/0/leverage", "-2"), "um_positionRisk.json[0].leverage"),
    (_set("um_positionRisk/0/updateTime", "soon"), "um_positionRisk.json[0].updateTime"),
    (_set("um_positionRisk/0/updateTime", 10**20), "um_positionRisk.json[0].updateTime"),
    (
        _set("um_positionRisk/0/entryPrice", "1e400"),
        "um_positionRisk.json[0].entryPrice: must be a decimal number",
    ),
    (_set("um_positionRisk/0", "row"), "um_positionRisk.json[0]"),
    (_set("cm_positionRisk/0/symbol", "BTCUSDT_PERP"), "cm_positionRisk.json[0].symbol"),
    (_set("cm_positionRisk/0/markPrice", "-1"), "cm_positionRisk.json[0].markPrice"),
    (_set("balance/0/asset", None), "balance.json[0].asset"),
    (
        _set("balance/0/crossMarginBorrowed", "-1"),
        "balance.json[0].crossMarginBorrowed: must be >= 0, got -1",
    ),
    (
        _set("balance/0/crossMarginFree", "12,34"),
        'balance.json[0].crossMarginFree: must be a decimal number, got "12,34"',
    ),
    (_set("balance/0/umWalletBalance", "NaN"), "balance.json[0].umWalletBalance"),
    (
        _set("um_leverageBracket/0/brackets/0/bracket", 2),
        "um_leverageBracket.json[0].brackets[0].bracket",
    ),
    (
        _set("um_leverageBracket/0/brackets/0/maintMarginRatio", 1.5),
        "um_leverageBracket.json[0].brackets[0].maintMarginRatio",
    ),
    (
        _set("um_leverageBracket/0/brackets/0/notionalFloor", 5),
        "um_leverageBracket.json[0].brackets[0].notionalFloor",
    ),
    (
        _set("um_leverageBracket/0/brackets/0/initialLeverage", None),
        "um_leverageBracket.json[0].brackets[0].initialLeverage",
    ),
    (_set("um_leverageBracket/0/notionalCoef", "x4"), "um_leverageBracket.json[0].notionalCoef"),
    (_set("um_leverageBracket/0/brackets", []), "um_leverageBracket.json[0].brackets"),
    (
        _set("cm_leverageBracket/0/brackets/0/qtyCap", "0"),
        "cm_leverageBracket.json[0].brackets[0].qtyCap",
    ),
    (_set("collateralRate/0", {"asset": "USDC", "rate": "1"}), "collateralRate.json[0]"),
    (_set("collateralRate/0/collateralRate", "1.5"), "collateralRate.json[0].collateralRate"),
    (_set("assetIndexPrice/0/assetIndexPrice", "-5"), "assetIndexPrice.json[0].assetIndexPrice"),
    (_set("assetIndexPrice", "BTC"), "assetIndexPrice.json"),
    (
        _set("marginLeverage/0/leverage", 4),
        "marginLeverage.json[0].leverage: must be one of 3, 5, 10 (binance.loan_mmr), got 4",
    ),
    (_set("account/uniMMR", "abc"), "account.json.uniMMR"),
    (_set("account", []), "account.json"),
]


@pytest.mark.parametrize("mutate,message", REJECTED, ids=[m for _, m in REJECTED])
def test_rejected_values_name_file_and_field(mutate, message):
    ex = official()
    mutate(ex)
    with pytest.raises(InvalidInputError) as err:
        bx.load_export(ex)
    text = str(err.value)
    assert text.startswith(message), text
    assert "\n" not in text


def test_rejected_tier_gap_and_duplicates():
    ex = official()
    ex["collateralRate"] = copy.deepcopy(COLLATERAL_V2_SAMPLE)
    ex["collateralRate"][0]["collateralInfo"].append(
        {"tierFloor": "2000", "tierCap": "3000", "collateralRate": "0.5"}
    )
    with pytest.raises(
        InvalidInputError, match=r"^collateralRate\.json\[0\]\.collateralInfo\[1\]\.tierFloor: "
    ):
        bx.load_export(ex)
    ex = official()
    ex["um_positionRisk"].append(dict(UM_POSITION_SAMPLE[0]))
    with pytest.raises(
        InvalidInputError, match=r"^um_positionRisk\.json\[1\]: BTCUSDT LONG is listed twice"
    ):
        bx.load_export(ex)
    ex = official()
    ex["balance"].append(dict(BALANCE_SAMPLE[0]))
    with pytest.raises(
        InvalidInputError, match=r"^balance\.json\[1\]\.asset: USDT is listed twice"
    ):
        bx.load_export(ex)


def test_rejected_files(tmp_path):
    ex = official()
    del ex["cm_leverageBracket"]
    with pytest.raises(InvalidInputError, match=r"^cm_leverageBracket\.json: missing"):
        bx.load_export(ex)
    with pytest.raises(InvalidInputError, match=r"^export\.positions: unknown endpoint file"):
        bx.load_export({**official(), "positions": []})
    for name, data in official().items():
        (tmp_path / f"{name}.json").write_text(json.dumps(data))
    (tmp_path / "balance.json").write_text("[{")
    with pytest.raises(InvalidInputError, match=r"^balance\.json: not valid JSON"):
        bx.load_export(tmp_path)
    (tmp_path / "balance.json").unlink()
    with pytest.raises(InvalidInputError, match=r"^balance\.json: missing"):
        bx.load_export(tmp_path)
    with pytest.raises(InputFileError):
        bx.load_export(tmp_path / "nope")


# --------------------------------------------------------------------------------------
# ccxt (TV-8)
# --------------------------------------------------------------------------------------

TV8_POSITIONS = [
    {
        "symbol": "BTC/USDT:USDT",
        "contracts": 0.01,
        "contractSize": 1,
        "side": "long",
        "entryPrice": 44525,
        "notional": 463.1548567,
        "markPrice": None,
        "marginMode": "cross",
        "maintenanceMargin": 123.0,  # never read
        "info": {"symbol": "BTCUSDT"},
    },
    {
        "symbol": "ETH/USD:ETH",
        "contracts": 1,
        "contractSize": 10,
        "side": "long",
        "entryPrice": 2422.400000007,
        "markPrice": 2424.97,
        "marginMode": "cross",
        "maintenanceMargin": 123.0,
        "info": {},
    },
]


def test_tv8_ccxt_positions():
    balance = {"total": {"USDT": 1000.0, "BTC": 0.1}, "BTC": {"total": 0.1, "debt": 0.04}}
    prices = {"BTC": 46300.0, "ETH": 2424.5, "USDT": 1.0}
    p, m = cx.from_ccxt(TV8_POSITIONS, balance, prices, time=1_700_000_000_000)
    assert m["time"] == "2023-11-14T22:13:20.000Z"
    lin, inv = p["positions"]
    assert lin == {
        "type": "linear",
        "symbol": "BTCUSDT",
        "underlying": "BTC",
        "settle": "USDT",
        "qty": 0.01,
        "entry_price": 44525.0,
    }
    assert inv == {
        "type": "inverse",
        "symbol": "ETHUSD_PERP",
        "underlying": "ETH",
        "contract_size": 10.0,
        "contracts": 1.0,
        "entry_price": 2422.400000007,
    }
    assert m["marks"]["BTCUSDT"] == pytest.approx(46315.48567, rel=1e-12)
    assert m["marks"]["ETHUSD_PERP"] == 2424.97
    assert p["balances"] == {"USDT": 1000.0, "BTC": 0.1}
    assert p["loans"] == {"BTC": {"borrowed": 0.04}}
    # Through the model: UPnL 17.9048567, bracket-1 MM 0.4 % of 463.1548567; the
    # inverse at 0.5 %: coin notional 0.00412376, MM 0.0000206188.
    half = [{"up_to": 50, "mmr": 0.005, "max_leverage": 75}, {"mmr": 0.01, "max_leverage": 50}]
    prof = default_binance_profile(ETHUSD=half)
    prof["assets"]["ETH"]["collateral"] = [{"rate": 0.9}]
    r = binance_pm_result(p, m, prof)
    rl, ri = r["positions"]
    assert rl["upnl"] == pytest.approx(17.9048567, rel=1e-9)
    assert rl["notional"] == pytest.approx(463.1548567, rel=1e-12)
    assert rl["maintenance_margin"] == pytest.approx(1.85261942, abs=1e-8)  # TV-8 truncates
    assert ri["notional"] == pytest.approx(0.00412376, abs=5e-9)
    assert ri["maintenance_margin"] == pytest.approx(0.0000206188, abs=5e-11)
    assert rl["maintenance_margin"] != 123.0 and ri["maintenance_margin"] != 123.0


def test_ccxt_prices_derived_sides_and_time_defaults():
    pos = [
        dict(TV8_POSITIONS[0], side="short", markPrice=46000.0, timestamp=1_700_000_000_500),
        dict(TV8_POSITIONS[1], side="short", contracts=3),
        {
            "symbol": "SOL/USDT:USDT",
            "contracts": 0,
            "side": None,
            "entryPrice": 1,
            "contractSize": 1,
        },
    ]
    p, m = cx.from_ccxt(pos, {"total": {"USDT": 50.0, "DOGE": 0.0}})
    assert [x.get("qty", x.get("contracts")) for x in p["positions"]] == [-0.01, -3.0]
    assert m["prices"] == {"USDT": 1.0, "BTC": 46000.0, "ETH": 2424.97}
    assert m["time"] == "2023-11-14T22:13:20.500Z"
    assert "loans" not in p and p["balances"] == {"USDT": 50.0}
    _, m = cx.from_ccxt(pos, {}, marks={"BTC/USDT:USDT": 46100.0}, time="2026-01-01T00:00:00Z")
    assert m["marks"]["BTCUSDT"] == 46100.0 and m["time"] == "2026-01-01T00:00:00Z"
    assert cx.binance_symbol("BTC/USDT:USDT-250627") == "BTCUSDT_250627"
    assert cx.binance_symbol("BTC/USD:BTC-250627") == "BTCUSD_250627"


@pytest.mark.parametrize(
    "change,field",
    [
        ({"side": "up"}, "positions[0].side"),
        ({"symbol": "BTC/USD:BTC-250627-60000-C"}, "positions[0].symbol"),
        ({"symbol": "BTC/USDT"}, "positions[0].symbol"),
        ({"symbol": "BTC/USDT:ETH"}, "positions[0].symbol"),
        ({"contracts": "lots"}, "positions[0].contracts"),
        ({"entryPrice": 0}, "positions[0].entryPrice"),
    ],
)
def test_ccxt_rejected(change, field):
    with pytest.raises(InvalidInputError) as err:
        cx.from_ccxt([dict(TV8_POSITIONS[0], **change)], {}, {"BTC": 1.0, "USDT": 1.0})
    assert err.value.field == field


def test_ccxt_missing_price_is_named():
    with pytest.raises(InvalidInputError, match=r"^prices\.SOL: no price for SOL"):
        cx.from_ccxt([], {"total": {"SOL": 5.0}})


def _unified(row: dict[str, Any], market: str, size: float) -> dict[str, Any]:
    """ccxt's unified position for a Binance positionRisk row (portfolioMargin=True)."""
    sym = row["symbol"]
    _, _, expiry = sym.partition("_")
    if market == "um":
        base, settle = bx.split_um_symbol(sym)
        unified = f"{base}/{settle}:{settle}" + (f"-{expiry}" if expiry else "")
    else:
        base = bx.split_cm_symbol(sym)
        unified = f"{base}/USD:{base}" + (f"-{expiry}" if expiry != "PERP" else "")
    amt = float(row["positionAmt"].replace(",", ""))
    side = row.get("positionSide", "BOTH")
    short = side == "SHORT" or (side == "BOTH" and amt < 0)
    return {
        "symbol": unified,
        "contracts": abs(amt),
        "contractSize": size,
        "side": "short" if short else "long",
        "entryPrice": float(row["entryPrice"]),
        "markPrice": float(row["markPrice"]),
        "maintenanceMargin": 0.0,
        "info": row,
    }


@pytest.mark.parametrize("seed", range(6))
def test_binance_export_from_ccxt_round_trip(seed):
    ex = bx.synthetic_export(seed, exchange_info=True)
    acct = bx.load_export(ex)
    sizes = {
        p["symbol"]: p["contract_size"]
        for p in acct.portfolio["positions"]
        if p["type"] == "inverse"
    }
    positions = [
        _unified(r, m, sizes.get(r["symbol"], 1))
        for m in ("um", "cm")
        for r in ex[f"{m}_positionRisk"]
        if float(r["positionAmt"]) != 0
    ]
    rest = {
        k: v
        for k, v in ex.items()
        if k not in ("balance", "um_positionRisk", "cm_positionRisk", "cm_exchangeInfo")
    }
    rebuilt = bx.load_export(cx.binance_export_from_ccxt(positions, {"info": ex["balance"]}, rest))
    assert rebuilt.portfolio == acct.portfolio
    assert rebuilt.profile == acct.profile
    assert rebuilt.market == acct.market
    assert rebuilt.reported["account"] == acct.reported["account"]
    with pytest.raises(InvalidInputError, match=r"^balance\.info: missing"):
        cx.binance_export_from_ccxt(positions, {"total": {}})
    with pytest.raises(InvalidInputError, match=r"^endpoints\.balance: not an endpoint"):
        cx.binance_export_from_ccxt(positions, {"info": []}, {"balance": []})


# --------------------------------------------------------------------------------------
# The bundled example and synthetic exports: import → margin gives Binance's figures
# --------------------------------------------------------------------------------------


def test_bundled_example_loads():
    acct = bx.load_export(EXAMPLE)
    p = acct.portfolio
    assert set(p["balances"]) == {"USDT", "BTC", "ETH"}
    assert p["loans"] == {"BTC": {"borrowed": 0.4, "interest": 0.00012345}}
    um = [s for s in acct.sources if s.market == "um"]
    cm = [s for s in acct.sources if s.market == "cm"]
    assert len(um) == 4 and len(cm) == 1
    assert [s.side for s in um if s.symbol == "BTCUSDT"] == ["LONG", "SHORT"]  # the hedge pair
    assets = acct.profile["assets"]
    assert len(assets["BTC"]["collateral"]) == 3 and assets["USDT"]["collateral"] == [
        {"rate": 1.0, "up_to": 9999999999}
    ]
    assert assets["BTC"]["loan_leverage"] == 5
    assert acct.warnings == []
    assert acct.reported["account"]["status"] == "NORMAL"
    assert all(acct.reported_position(s)["maintenance_margin"] for s in acct.sources)
    # Some bracket and band edges are crossed: ETHUSDT in bracket 2, BTC past its first band.
    r = binance_pm_result(p, acct.market, acct.profile)
    assert max(x["bracket"] for x in r["positions"]) >= 2
    assert r["assets"]["BTC"]["equity"] > 100_000


def test_bundled_example_figures_are_the_formula():
    """account.json, um_account.json, cm_account.json are Binance's formula (the reference)
    applied to the example's inputs, rounded to 8 decimals as Binance writes them."""
    ex = example()
    again = bx.with_reported(inputs_of(ex))
    for name in (
        "account",
        "um_account",
        "cm_account",
        "balance",
        "um_positionRisk",
        "cm_positionRisk",
    ):
        assert again[name] == ex[name], name


def test_synthetic_export_is_seeded_and_honours_flags():
    assert bx.synthetic_export(7) == bx.synthetic_export(7)
    assert bx.synthetic_export(7) != bx.synthetic_export(8)
    h = bx.synthetic_export(3, hedge_mode=True, tiered=True, margin_leverage=True, reported=False)
    assert {r["positionSide"] for r in h["um_positionRisk"]} <= {"LONG", "SHORT"}
    assert all("collateralInfo" in r for r in h["collateralRate"])
    assert "marginLeverage" in h and "account" not in h
    o = bx.synthetic_export(3, hedge_mode=False, tiered=False, margin_leverage=False)
    assert {r["positionSide"] for r in o["um_positionRisk"]} == {"BOTH"}
    assert all("collateralRate" in r for r in o["collateralRate"])
    assert "marginLeverage" not in o and "account" in o


@pytest.mark.parametrize("seed", range(40))
def test_synthetic_round_trip(seed):
    ex = bx.synthetic_export(seed)
    acct = bx.load_export(ex)
    assert acct.warnings == []
    report = bx.parity(acct)
    assert report["summary"]["differ"] == 0, report["summary"]["text"]
    assert report["summary"]["compared"] >= 7
    # Binance's figures were made by the reference; the report's come from the engine.
    rep, r = (
        acct.reported["account"],
        bx.binance_pm_margin(acct.portfolio, acct.market, acct.profile),
    )
    for key in ("equity", "adjusted_equity", "maintenance_margin", "initial_margin"):
        assert rep[key] == pytest.approx(r[key], rel=1e-9, abs=5e-9)


def test_synthetic_exports_cover_the_cases():
    seen = {
        "hedge": 0,
        "tiered": 0,
        "flat": 0,
        "loans": 0,
        "levs": set(),
        "brackets": set(),
        "cm": 0,
    }
    for seed in range(40):
        ex = bx.synthetic_export(seed, reported=False)
        acct = bx.load_export(ex)
        seen["hedge"] += any(s.side != "BOTH" for s in acct.sources)
        seen["tiered"] += "collateralInfo" in ex["collateralRate"][0]
        seen["flat"] += "collateralRate" in ex["collateralRate"][0]
        seen["loans"] += bool(acct.portfolio["loans"])
        seen["levs"] |= {r["leverage"] for r in ex.get("marginLeverage", [])}
        seen["cm"] += any(s.market == "cm" for s in acct.sources)
        r = binance_pm_result(acct.portfolio, acct.market, acct.profile)
        seen["brackets"] |= {x["bracket"] for x in r["positions"]}
    assert seen["hedge"] and seen["tiered"] and seen["flat"] and seen["loans"] and seen["cm"]
    assert {3, 5, 10} <= {int(x) for x in seen["levs"]}
    assert {1, 2, 3} <= seen["brackets"]


# --------------------------------------------------------------------------------------
# The TOML writer and atomic writes
# --------------------------------------------------------------------------------------


def test_toml_writer_round_trips_the_default_profile():
    d = bx.default_profile_dict()
    assert tomllib.loads(toml_dumps(d)) == d


def test_toml_writer_round_trips_awkward_values():
    d = {
        "name": 'quote " backslash \\ tab \t newline \n bell \x07 del \x7f ünï €',
        "*": {"a b": 1, "": "empty key", "3": 0.1, "x.y": True},
        "floats": [1e-05, 1e300, -0.0, 0.1 + 0.2, 5e-324, math.inf, -math.inf, 2.0, 1234567.0],
        "ints": [0, -7, 2**62],
        "bools": [True, False],
        "mixed": [1, "a", [2, [3]], {"k": {"deep": []}}],
        "rows": [{"up_to": 5, "mmr": 0.004}, {"mmr": 0.5, "extra": {}}],
        "one": [{"only": 1}],
        "empty": {},
        "nested": {"t": {"u": {"v": 1}, "w": [{"x": "y"}, {"x": "z"}]}, "after": 2},
    }
    text = toml_dumps(d, header="a header\nsecond line")
    assert text.startswith("# a header\n# second line\n")
    assert tomllib.loads(text) == d
    assert math.isnan(tomllib.loads(toml_dumps({"x": math.nan}))["x"])
    with pytest.raises(TypeError, match=r"a\.b\[1\]"):
        toml_dumps({"a": {"b": [1, None]}})


def test_imported_profile_toml_round_trips_and_compiles():
    acct = bx.load_export(EXAMPLE)
    text = acct.profile_toml()
    assert tomllib.loads(text) == acct.profile
    assert reference.load_profile(tomllib.loads(text)).model == "binance_pm"


def test_imported_files_margin_natively(tmp_path):
    acct = bx.load_export(EXAMPLE)
    out = acct.to_files(tmp_path / "out")
    params = pm.RiskParams.from_toml(out / "profile.toml")
    r = pm.Engine(params).margin(
        pm.Portfolio.from_json((out / "portfolio.json").read_text()),
        pm.Market.from_json((out / "market.json").read_text()),
    )
    assert r.maintenance_margin == pytest.approx(
        acct.reported["account"]["maintenance_margin"], rel=1e-9
    )


def test_write_files_atomically(tmp_path):
    out = tmp_path / "out"
    write_files_atomically(out, {"a.txt": "1", "b.txt": "2"})
    assert sorted(x.name for x in out.iterdir()) == ["a.txt", "b.txt"]
    (out / "keep.txt").write_text("mine")
    with pytest.raises(TypeError):
        write_files_atomically(out, {"a.txt": "new", "b.txt": None})  # type: ignore[dict-item]
    assert (out / "a.txt").read_text() == "1"  # nothing replaced
    assert sorted(x.name for x in tmp_path.iterdir()) == ["out"]  # no temporary folder left
    write_files_atomically(out, {"a.txt": "new", "b.txt": "new"})
    assert [(out / n).read_text() for n in ("a.txt", "b.txt", "keep.txt")] == ["new", "new", "mine"]
    with pytest.raises(TypeError):
        write_files_atomically(tmp_path / "fresh", {"a.txt": 3})  # type: ignore[dict-item]
    assert sorted(x.name for x in tmp_path.iterdir()) == ["out"]


# --------------------------------------------------------------------------------------
# The command line
# --------------------------------------------------------------------------------------


def test_cli_import_writes_three_files(tmp_path, capsys):
    out = tmp_path / "imported"
    assert main(["import", "binance", str(EXAMPLE), "--out", str(out)]) == 0
    assert "wrote" in capsys.readouterr().out
    assert sorted(x.name for x in out.iterdir()) == [
        "market.json",
        "portfolio.json",
        "profile.toml",
    ]
    acct = bx.load_export(EXAMPLE)
    assert json.loads((out / "portfolio.json").read_text()) == acct.portfolio
    assert json.loads((out / "market.json").read_text()) == acct.market
    assert tomllib.loads((out / "profile.toml").read_text()) == acct.profile
    assert main(["import", "binance", str(EXAMPLE), "--out", str(out), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["positions"] == 5 and shown["loans"] == ["BTC"] and shown["warnings"] == []


def test_cli_import_bad_input_writes_nothing(tmp_path, capsys):
    src = tmp_path / "export"
    shutil.copytree(EXAMPLE, src)
    rows = json.loads((src / "um_positionRisk.json").read_text())
    rows[2]["positionAmt"] = "abc"
    (src / "um_positionRisk.json").write_text(json.dumps(rows))
    out = tmp_path / "out"
    assert main(["import", "binance", str(src), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert (
        err
        == 'pmengine: error: um_positionRisk.json[2].positionAmt: must be a decimal number, got "abc"\n'
    )
    assert not out.exists()
    assert sorted(x.name for x in tmp_path.iterdir()) == ["export"]
    # An existing folder is left as it was.
    out.mkdir()
    (out / "portfolio.json").write_text("old")
    assert main(["import", "binance", str(src), "--out", str(out)]) == 2
    assert [x.name for x in out.iterdir()] == ["portfolio.json"]
    assert (out / "portfolio.json").read_text() == "old"
    assert main(["import", "binance", str(tmp_path / "missing"), "--out", str(out)]) == 2
    assert capsys.readouterr().err.count("\n") == 2


def test_cli_import_warns_on_stderr(tmp_path, capsys):
    src = tmp_path / "export"
    for name, data in official().items():
        src.mkdir(exist_ok=True)
        (src / f"{name}.json").write_text(json.dumps(data))
    assert main(["import", "binance", str(src), "--out", str(tmp_path / "out")]) == 0
    err = capsys.readouterr().err
    assert "pmengine: warning: assetIndexPrice.json: no price for USDT" in err


def test_cli_parity_json_on_the_bundled_example(capsys):
    assert main(["parity", "binance", str(EXAMPLE), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report) == {"model", "time", "tolerance", "account", "positions", "summary"}
    assert report["model"] == "binance_pm" and report["tolerance"] == 1e-6
    figures = [r["figure"] for r in report["account"]]
    assert figures == [
        "equity",
        "adjusted_equity",
        "maintenance_margin",
        "initial_margin",
        "available",
        "uni_mmr",
        "status",
    ]
    for row in report["account"]:
        assert set(row) == {
            "figure",
            "unit",
            "binance",
            "pmengine",
            "scenario",
            "rel_diff",
            "differs",
        }
        assert row["binance"] is not None and row["pmengine"] is not None
        assert row["scenario"] is not None  # the scenario model beside both
        assert row["differs"] is False
    assert len(report["positions"]) == 5
    for pos in report["positions"]:
        assert {"market", "symbol", "side", "label", "unit", "figures"} <= set(pos)
        assert [f["figure"] for f in pos["figures"]] == [
            "maintenance_margin",
            "initial_margin",
            "upnl",
        ]
        assert all(f["binance"] is not None and not f["differs"] for f in pos["figures"])
        assert pos["figures"][0]["scenario"] is not None
    s = report["summary"]
    assert s["differ"] == 0 and s["compared"] == 7 + 15 and s["scenario_error"] is None
    assert s["text"].startswith("all 22 figures")


def test_cli_parity_flags_a_difference_in_words(tmp_path, capsys):
    src = tmp_path / "export"
    shutil.copytree(EXAMPLE, src)
    acct = json.loads((src / "account.json").read_text())
    acct["accountMaintMargin"] = f"{float(acct['accountMaintMargin']) * 1.01:.8f}"
    (src / "account.json").write_text(json.dumps(acct))
    um = json.loads((src / "um_account.json").read_text())
    um["positions"][0]["maintMargin"] = "1.00000000"
    (src / "um_account.json").write_text(json.dumps(um))
    assert main(["parity", "binance", str(src), "--json"]) == 0
    s = json.loads(capsys.readouterr().out)["summary"]
    assert s["differ"] == 2
    assert s["differing"] == ["maintenance_margin (account)", "maintenance_margin of BTCUSDT LONG"]
    assert "differ from Binance's by more than 1e-06 relative" in s["text"]
    assert main(["parity", "binance", str(src)]) == 0
    out = capsys.readouterr().out
    assert "differs by 9.90e-03 relative" in out and "2 of 22 figures differ" in out


def test_cli_parity_table_on_the_bundled_example(capsys):
    assert main(["parity", "binance", str(EXAMPLE)]) == 0
    out = capsys.readouterr().out
    assert "matches" in out and "pmengine scenario" in out and "BTCUSDT SHORT" in out
    assert "all 22 figures Binance reports match" in out


def test_cli_parity_without_reported_figures(tmp_path, capsys):
    src = tmp_path / "export"
    shutil.copytree(EXAMPLE, src)
    for name in ("account", "um_account", "cm_account"):
        (src / f"{name}.json").unlink()
    assert main(["parity", "binance", str(src), "--json"]) == 0
    s = json.loads(capsys.readouterr().out)["summary"]
    assert s["compared"] == 5  # only the position files' UPnLs are Binance's figures left
    assert s["differ"] == 0
