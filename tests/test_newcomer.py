"""A newcomer's first hour: --version, python -m, --help with an example, pipes,
and optional dependencies that are missing named by their extra."""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import textwrap
from typing import Any

import pytest

import pmengine as pm
from pmengine.cli import EXAMPLES, main, parser

from .conftest import EXAMPLES as EXAMPLE_DIR


def run(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``python -c code args`` in a fresh interpreter, in the examples folder."""
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=EXAMPLE_DIR,
    )


def without(*modules: str) -> str:
    """Code that makes the named packages unimportable in a fresh interpreter, as
    if their extra were not installed: the import fails as a missing package does."""
    return textwrap.dedent(
        f"""
        import sys

        class NotInstalled:
            def find_spec(self, name, path=None, target=None):
                if name.partition(".")[0] in {set(modules)!r}:
                    raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)

        sys.meta_path.insert(0, NotInstalled())
        """
    )


def test_version(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0
    assert capsys.readouterr().out.strip() == f"pmengine {pm.__version__}"


def test_python_dash_m():
    r = subprocess.run(
        [sys.executable, "-m", "pmengine", "--version"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert r.returncode == 0 and r.stdout.strip() == f"pmengine {pm.__version__}", r.stderr
    r = subprocess.run(
        [sys.executable, "-m", "pmengine", "demo", "--json"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert r.returncode == 0 and "near_liquidation" in json.loads(r.stdout)


def subcommands(p: argparse.ArgumentParser, path: str = "") -> list[tuple[str, Any]]:
    out = []
    for action in p._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                out.append((f"{path} {name}".strip(), sub))
                out += subcommands(sub, f"{path} {name}")
    return out


def test_every_subcommand_has_a_description_and_an_example_that_parses():
    found = subcommands(parser())
    assert {name for name, _ in found} == set(EXAMPLES)
    for name, sub in found:
        text = sub.format_help()
        assert sub.description and sub.description in text, name
        assert "example:" in text, name
        lines = [ln for ln in EXAMPLES[name] if ln.split()[:2] == ["pmengine", name.split()[0]]]
        assert lines, f"{name}: no example of the command itself"
        # Continued lines joined, the last command of the example is a valid command line.
        shell = " ".join(EXAMPLES[name]).replace("\\ ", " ")
        argv = shlex.split(shell.split("pmengine ")[-1])
        args = parser().parse_args(argv)
        assert args.command == name.split()[0]


def test_switch_now_takes_iso_time_like_the_api(capsys):
    files = [
        "--portfolio",
        str(EXAMPLE_DIR / "cash_and_carry.json"),
        "--market",
        str(EXAMPLE_DIR / "market.json"),
    ]
    records = []
    for now in ("2026-11-24T12:00:00Z", "2026-11-24T12:00:00", "1795521600", "1795521600.0"):
        main(["switch", "--to", "portfolio", *files, "--now", now, "--json"])
        records.append(json.loads(capsys.readouterr().out))
    assert all(r == records[0] for r in records)
    assert records[0]["time"] == "2026-11-24T12:00:00Z"
    with pytest.raises(SystemExit) as e:
        main(["switch", "--to", "portfolio", *files, "--now", "tomorrow"])
    assert e.value.code == 2
    assert "--now: must be an ISO-8601 time" in capsys.readouterr().err


@pytest.mark.parametrize("args", [["demo", "--json"], ["demo"], ["--help"]])
def test_a_closed_pipe_ends_quietly(args):
    # `pmengine demo | head -1`: the reader leaves after one line.
    p = subprocess.Popen(
        [sys.executable, "-m", "pmengine", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert p.stdout is not None and p.stderr is not None
    p.stdout.readline()
    p.stdout.close()
    err = p.stderr.read().decode()
    p.wait(timeout=60)
    assert "Traceback" not in err and "BrokenPipe" not in err, err
    assert err == ""


def test_import_pmengine_needs_neither_rich_nor_matplotlib():
    r = run(
        without("rich", "matplotlib")
        + textwrap.dedent(
            """
        import pmengine as pm
        from pmengine.present import report  # the HTML report's module imports; drawing needs the extra
        e = pm.Engine()
        m = pm.Market.from_json(open("market.json").read())
        p = pm.Portfolio.from_json(open("cash_and_carry.json").read())
        table = pm.compare(e, p, m)
        assert table["recognised"], table
        print(sorted(k for k in sys.modules if k.split(".")[0] in ("rich", "matplotlib")))
        """
        )
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"


def test_import_pmengine_does_not_load_numpy():
    # numpy is an extra; the risk tools import it on first use (a bot's start-up and
    # its other core stay free of it and its thread pool).
    r = run("import sys, pmengine\nprint('numpy' in sys.modules)\n")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "False"


def test_cli_without_rich_names_the_extra():
    r = run(
        without("rich") + "from pmengine.cli import main\nsys.exit(main(sys.argv[1:]))",
        "demo",
    )
    assert r.returncode == 1
    assert r.stderr.count("\n") == 1 and "pip install 'pmengine[cli]'" in r.stderr, r.stderr
    r = run(
        without("rich") + "from pmengine.cli import main\nsys.exit(main(sys.argv[1:]))",
        "--version",
    )
    assert r.returncode == 0 and r.stdout.strip() == f"pmengine {pm.__version__}"


@pytest.mark.parametrize("missing", ["pyarrow", "numpy"])
@pytest.mark.parametrize(
    "args",
    [
        ["gen", "--accounts", "10", "--out", "book"],
        [
            "scan",
            "--positions",
            "p.parquet",
            "--market",
            "market.json",
            "--out",
            "r.parquet",
        ],
    ],
    ids=["gen", "scan"],
)
def test_gen_and_scan_without_arrow_name_the_extra(missing, args, tmp_path):
    r = run(
        without(missing) + "from pmengine.cli import main\nsys.exit(main(sys.argv[1:]))",
        *args,
    )
    assert r.returncode == 1, r.stderr
    assert r.stderr.count("\n") == 1, r.stderr
    assert "pip install 'pmengine[arrow]'" in r.stderr and missing in r.stderr
    assert not (EXAMPLE_DIR / "book").exists()


def test_switch_mode_takes_iso_time():
    d = json.loads((EXAMPLE_DIR / "cash_and_carry.json").read_text())
    market = pm.Market.from_json((EXAMPLE_DIR / "market.json").read_text())
    results = [
        pm.Account.from_dict(d).switch_mode("portfolio", pm.Engine(), market, now=now, dry_run=True)
        for now in ("2026-11-24T12:00:00Z", 1_795_521_600.0)
    ]
    assert results[0].to_dict() == results[1].to_dict()
    with pytest.raises(pm.InvalidInputError, match=r"^now: must be an ISO-8601 time"):
        pm.Account.from_dict(d).switch_mode("portfolio", pm.Engine(), market, now="soon")
