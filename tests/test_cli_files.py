"""Hostile files on the command line (issue 16, finding 5): every input file of every
subcommand goes through one reader (``pmengine.files``), and every hostile file gets
exit 2 with exactly one line on stderr naming it: no traceback, no hang.

The table runs in-process (``cli.main``) under an alarm that turns a hang into a
failure; a sample runs as real processes under a subprocess timeout. The timeouts
detect hangs; they do not measure speed.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import pmengine as pm
from pmengine import cli, files
from pmengine.errors import InputFileError

from .conftest import EXAMPLES, MARKET

HANG_SECONDS = 60  # a hang detector, far above any run's time


# name -> bytes to write, or a function making the file at a path.
JSON_FILES: dict[str, bytes | Callable[[Path], None]] = {
    "fifo": lambda p: os.mkfifo(p),
    "folder": lambda p: p.mkdir(),
    "missing": lambda p: None,
    "too_large": lambda p: os.truncate(_touch(p), files.MAX_TEXT_BYTES + 1),  # sparse
    "not_utf8": b'{"name": "caf\xe9", "balances": {}}',
    "utf16": '{"balances": {}}'.encode("utf-16"),
    "empty": b"",
    "not_json": b'{"balances": {',
    "deep": b"[" * 100_000 + b"]" * 100_000,
    "deep_objects": b'{"a":' * 20_000 + b"1" + b"}" * 20_000,
    "infinity": b'{"balances": {"USDT": Infinity}, "time": "2026-11-24T00:00:00Z"}',
    "nan": b'{"balances": {"USDT": NaN}, "time": "2026-11-24T00:00:00Z"}',
    "minus_infinity": b'{"balances": {"USDT": -Infinity}}',
    "overflow": b'{"balances": {"USDT": 1e400}, "time": "2026-11-24T00:00:00Z"}',
    "huge_int": b'{"balances": {"USDT": 1' + b"0" * 5000 + b"}}",
    "array": b"[]",
    "string": b'"portfolio"',
    "number": b"42",
    "null": b"null",
    "long_name": b'{"name": "' + b"x" * (files.MAX_STRING_CHARS + 1) + b'", "balances": {}}',
    "long_key": b'{"balances": {"' + b"A" * (files.MAX_STRING_CHARS + 1) + b'": 1}}',
}
TOML_FILES: dict[str, bytes | Callable[[Path], None]] = {
    "fifo": JSON_FILES["fifo"],
    "folder": JSON_FILES["folder"],
    "missing": JSON_FILES["missing"],
    "too_large": JSON_FILES["too_large"],
    "not_utf8": b'name = "caf\xe9"\n',
    "not_toml": b"[groups\n",
    "deep_arrays": b"a = " + b"[" * 100_000 + b"]" * 100_000 + b"\n",
    "dotted_key": b".".join([b"a"] * 100_000) + b" = 1\n",  # tomllib: quadratic memory
    "long_string": b'name = "' + b"x" * (files.MAX_STRING_CHARS + 1) + b'"\n',
}
PARQUET_FILES: dict[str, bytes | Callable[[Path], None]] = {
    "fifo": JSON_FILES["fifo"],
    "folder": JSON_FILES["folder"],
    "missing": JSON_FILES["missing"],
    "not_parquet": b"PAR1 this is not a parquet file PAR1",
    "empty": b"",
}


def _touch(p: Path) -> Path:
    p.write_bytes(b"")
    return p


def make(tmp: Path, name: str, spec: bytes | Callable[[Path], None], suffix: str) -> str:
    path = tmp / f"{name}{suffix}"
    if isinstance(spec, bytes):
        path.write_bytes(spec)
    else:
        spec(path)
    return str(path)


def good_files(tmp: Path) -> dict[str, str]:
    """A valid input for every slot, so that the hostile one is the only bad file."""
    portfolio = str(EXAMPLES / "covered_call.json")
    market = tmp / "market.json"
    market.write_text(json.dumps(MARKET))
    params = tmp / "params.toml"
    params.write_text(pm.DEFAULT_PROFILE_TOML)
    stress = tmp / "stress.toml"
    stress.write_text('[[stress]]\nname = "dip"\ngroups = { BTC = -0.1 }\n')
    account = tmp / "account.json"
    account.write_text(json.dumps({"mode": "classic"}))
    book = tmp / "book"
    assert cli.main(["gen", "--accounts", "3", "--out", str(book)]) == 0
    return {
        "portfolio": portfolio,
        "market": str(market),
        "params": str(params),
        "stress": str(stress),
        "account": str(account),
        "positions": str(book / "positions.parquet"),
        "balances": str(book / "balances.parquet"),
        "export": str(EXAMPLES / "binance_export"),
    }


def account_args(command: str, good: dict[str, str], out: Path) -> list[str]:
    args = [command, "--portfolio", good["portfolio"], "--market", good["market"]]
    args += ["--params", good["params"]]
    if command in ("risk", "report"):
        args += ["--stress", good["stress"]]
    if command == "report":
        args += ["--out", str(out / "r.html")]
    return args


# (subcommand, slot, kind of file): every input file every subcommand reads.
SLOTS = [
    *[
        (c, s, k)
        for c in ("margin", "greeks", "compare", "risk", "report")
        for s, k in (("portfolio", "json"), ("market", "json"), ("params", "toml"))
    ],
    ("margin", "params_json", "json"),
    ("risk", "stress", "toml"),
    ("report", "stress", "toml"),
    ("switch", "portfolio", "json"),
    ("switch", "market", "json"),
    ("switch", "account", "json"),
    ("switch", "params", "toml"),
    ("demo", "market", "json"),
    ("demo", "params", "toml"),
    ("scan", "positions", "parquet"),
    ("scan", "balances", "parquet"),
    ("scan", "market", "json"),
    ("scan", "params", "toml"),
    ("import", "export", "folder"),
    ("import", "balance.json", "json"),
    ("import", "um_account.json", "json"),
    ("parity", "export", "folder"),
    ("parity", "balance.json", "json"),
]
KINDS = {"json": JSON_FILES, "toml": TOML_FILES, "parquet": PARQUET_FILES}
FOLDERS: dict[str, bytes | Callable[[Path], None]] = {
    "fifo": JSON_FILES["fifo"],
    "missing": JSON_FILES["missing"],
    "a_file": b"{}",
    "dev_zero": lambda p: os.symlink("/dev/zero", p),
}
# What an export file may validly hold: balance.json is an array, um_account.json optional.
VALID = {"balance.json": {"array"}, "um_account.json": {"missing", "null"}}
CASES = [
    (c, s, k, f)
    for c, s, k in SLOTS
    for f in (FOLDERS if k == "folder" else KINDS[k])
    if f not in VALID.get(s, ())
]


def argv_for(command: str, slot: str, hostile: str, good: dict[str, str], tmp: Path) -> list[str]:
    good = dict(good)
    if command in ("import", "parity"):
        folder = hostile
        if slot != "export":  # one file of a copied export replaced by the hostile one
            folder = str(tmp / "export")
            shutil.copytree(good["export"], folder)
            target = Path(folder) / slot
            target.unlink()
            if os.path.lexists(hostile):
                os.rename(hostile, target)
            elif slot == "balance.json":
                pass  # a required file missing: its own error
        args = [command, "binance", folder]
        return args + (["--out", str(tmp / "out")] if command == "import" else [])
    good["params_json"] = good["params"]
    good[slot] = hostile
    if command == "switch":
        args = ["switch", "--to", "portfolio", "--portfolio", good["portfolio"]]
        args += ["--market", good["market"], "--account", good["account"]]
        return [*args, "--params", good["params"], "--now", "1795478400"]
    if command == "demo":
        return ["demo", "--market", good["market"], "--params", good["params"]]
    if command == "scan":
        args = ["scan", "--positions", good["positions"], "--balances", good["balances"]]
        args += ["--market", good["market"], "--params", good["params"]]
        return [*args, "--out", str(tmp / "r.parquet"), "--no-progress"]
    if slot == "params_json":
        args = account_args(command, good, tmp)
        args[args.index("--params") + 1] = hostile
        return args
    return account_args(command, good, tmp)


@contextlib.contextmanager
def hang_detector(seconds: int) -> Iterator[None]:
    def hung(*_: object) -> None:
        raise TimeoutError(f"still running after {seconds} s: a hang")

    old = signal.signal(signal.SIGALRM, hung)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> dict[str, str]:
    return good_files(tmp_path_factory.mktemp("good"))


@pytest.mark.parametrize(("command", "slot", "kind", "hostile"), CASES)
def test_hostile_file(command, slot, kind, hostile, good, tmp_path, capsys):
    table = FOLDERS if kind == "folder" else KINDS[kind]
    suffix = {"json": ".json", "toml": ".toml", "parquet": ".parquet", "folder": ""}[kind]
    if slot == "params_json":
        suffix = ".json"
    path = make(tmp_path, f"hostile_{hostile}", table[hostile], suffix)
    argv = argv_for(command, slot, path, good, tmp_path)
    with hang_detector(HANG_SECONDS):
        code = cli.main(argv)
    err = capsys.readouterr().err
    assert code == 2, (argv, err)
    lines = err.splitlines()
    errors = [line for line in lines if line.startswith("pmengine: error: ")]
    assert len(errors) == 1 and err.endswith("\n"), err
    assert all(line.startswith("pmengine: warning: ") for line in lines if line not in errors)
    named = Path(path).name if slot not in ("balance.json", "um_account.json") else slot
    assert named in errors[0] or (hostile == "missing" and slot == "balance.json"), errors[0]


# A real process for every kind of hostile JSON and TOML file: exit 2, one line, no
# traceback, and the subprocess timeout as the hang detector.
@pytest.mark.parametrize(
    ("slot", "hostile"),
    [("portfolio", h) for h in JSON_FILES] + [("params", h) for h in TOML_FILES],
)
def test_hostile_file_process(slot, hostile, good, tmp_path):
    table = JSON_FILES if slot == "portfolio" else TOML_FILES
    path = make(tmp_path, hostile, table[hostile], ".json" if slot == "portfolio" else ".toml")
    argv = account_args("risk", {**good, slot: path}, tmp_path)
    r = subprocess.run(
        [sys.executable, "-m", "pmengine.cli", *argv],
        capture_output=True,
        text=True,
        timeout=HANG_SECONDS,
        check=False,
    )
    assert r.returncode == 2, r.stderr
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("pmengine: error: "), r.stderr
    assert Path(path).name in r.stderr
    assert r.stdout == ""


def test_a_file_name_with_a_newline_is_one_line(tmp_path, capsys):
    bad = tmp_path / "two\nlines.json"
    bad.write_text("[]")
    assert cli.main(["margin", "--portfolio", str(bad), "--market", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "two\\nlines.json" in err


def test_the_reader_refuses_before_blocking(tmp_path):
    fifo = tmp_path / "f"
    os.mkfifo(fifo)
    with hang_detector(HANG_SECONDS), pytest.raises(InputFileError, match=r"a pipe \(FIFO\)"):
        files.read_text(fifo)
    with pytest.raises(InputFileError, match=r"^/dev/zero: a character device"):
        files.read_text("/dev/zero")
    with pytest.raises(InputFileError, match=r"a folder, a regular file expected$"):
        files.read_text(tmp_path)


def test_the_limits_hold_at_their_edges(tmp_path):
    ok = tmp_path / "ok.json"
    doc = {"name": "x" * files.MAX_STRING_CHARS, "account": {}}
    inner: dict = doc["account"]
    for _ in range(files.MAX_DEPTH - 3):  # the top table, account, then these
        inner["a"] = {}
        inner = inner["a"]
    ok.write_text(json.dumps(doc))
    text = files.read_text(ok)
    files.parse_json(ok, text)
    pm.Portfolio.from_json(text)  # the core's parser takes what the reader takes
    inner["a"] = {}
    ok.write_text(json.dumps(doc))
    with pytest.raises(pm.InvalidInputError, match="nested 128 levels deep"):
        files.read_json(ok)
    with pytest.raises(pm.InvalidInputError):
        pm.Portfolio.from_json(ok.read_text())


def test_risk_params_from_toml_reads_with_the_same_limits(tmp_path):
    fifo = tmp_path / "p.toml"
    os.mkfifo(fifo)
    with hang_detector(HANG_SECONDS), pytest.raises(pm.ProfileError, match=r"p\.toml: a pipe"):
        pm.RiskParams.from_toml(fifo)
    with pytest.raises(pm.ProfileError, match=r"^/dev/zero: a character device"):
        pm.RiskParams.from_toml("/dev/zero")
    with pytest.raises(pm.ProfileError, match=r"a folder, a regular file expected$"):
        pm.RiskParams.from_toml(tmp_path)
    for name, spec in TOML_FILES.items():
        if name in ("fifo", "folder"):
            continue
        path = make(tmp_path, name, spec, ".toml")
        with pytest.raises(pm.ProfileError, match=rf"^{path}: "):
            pm.RiskParams.from_toml(path)
    bom = tmp_path / "bom.toml"
    bom.write_bytes(b"\xef\xbb\xbf" + pm.DEFAULT_PROFILE_TOML.encode())
    assert pm.RiskParams.from_toml(bom).to_dict() == pm.RiskParams.default().to_dict()
