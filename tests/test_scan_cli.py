"""pmengine gen and pmengine scan: a deterministic book, results equal to the API."""

from __future__ import annotations

import json

import numpy as np
import pytest

import pmengine as pm
from pmengine.book.synthetic import generate_book, market_dict
from pmengine.cli import main
from pmengine.testing import same_table

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")


@pytest.fixture(scope="module")
def book(tmp_path_factory):
    out = tmp_path_factory.mktemp("book")
    assert main(["gen", "--accounts", "600", "--out", str(out), "--seed", "5"]) == 0
    return out


def test_gen_is_seeded_and_realistic(book):
    positions = pq.read_table(book / "positions.parquet")
    again, _ = generate_book(600, seed=5)
    assert same_table(positions, again)
    assert not same_table(generate_book(600, seed=6)[0], again)
    assert set(positions.column("type").to_pylist()) == {"linear", "inverse", "option"}
    balances = pq.read_table(book / "balances.parquet")
    assert min(balances.column("qty").to_pylist()) < 0  # leveraged spot borrows USDT
    assert json.loads((book / "market.json").read_text()) == market_dict()


def scan(book, out, *extra):
    return main(
        [
            "scan",
            "--positions",
            str(book / "positions.parquet"),
            "--balances",
            str(book / "balances.parquet"),
            "--market",
            str(book / "market.json"),
            "--out",
            str(out),
            *extra,
        ]
    )


def scan_of_p(book, tmp_path):
    """`pmengine scan` of `tmp_path/p.parquet` (no balances) on the book's market, but --out."""
    (tmp_path / "m.json").write_text((book / "market.json").read_text())
    return [
        "scan",
        "--positions",
        str(tmp_path / "p.parquet"),
        "--market",
        str(tmp_path / "m.json"),
    ]


def test_scan_writes_the_api_results_and_a_summary(book, tmp_path, capsys):
    assert scan(book, tmp_path / "r.parquet", "--part-size", "170", "--json") == 0
    summary = json.loads(capsys.readouterr().out)
    got = pq.read_table(tmp_path / "r.parquet")
    engine, market = pm.Engine(), pm.Market.from_dict(market_dict())
    want = engine.margin_batch(
        pq.read_table(book / "positions.parquet"), pq.read_table(book / "balances.parquet"), market
    )
    assert same_table(got, want)  # four parts, one call: the same table
    assert summary["accounts"] == 600 == sum(summary["by_status"].values())
    statuses = want.column("status").to_pylist()
    assert summary["by_status"] == {s: statuses.count(s) for s in set(statuses)}
    mm = sum(want.column("maintenance_margin").to_pylist())
    assert summary["total_maintenance_margin"] == pytest.approx(mm, rel=1e-12)
    ratios = sorted(
        (u, a)
        for u, a, m in zip(
            want.column("uni_mmr").to_pylist(),
            want.column("account").to_pylist(),
            want.column("maintenance_margin").to_pylist(),
            strict=True,
        )
        if m > 0
    )
    assert [r["account"] for r in summary["riskiest"]] == [a for _, a in ratios[:10]]
    assert summary["accounts_per_second"] > 0


def test_scan_table_output(book, tmp_path, capsys):
    assert scan(book, tmp_path / "r.parquet", "--no-progress", "--threads", "1") == 0
    out = capsys.readouterr().out
    assert "accounts by status" in out and "riskiest accounts" in out
    assert "600" in out and "accounts/s" in out


def test_scan_bad_row_exit_2_or_collected(book, tmp_path, capsys):
    positions = pq.read_table(book / "positions.parquet")
    i = positions.schema.get_field_index("entry_price")
    prices = positions.column("entry_price").to_pylist()
    row = next(k for k, t in enumerate(positions.column("type").to_pylist()) if t == "linear")
    prices[row] = -1.0
    pq.write_table(positions.set_column(i, "entry_price", pa.array(prices)), tmp_path / "p.parquet")
    args = scan_of_p(book, tmp_path)
    # A scan that fails leaves an earlier results file as it was, and no partial file.
    (tmp_path / "r.parquet").write_bytes(b"earlier results")
    assert main([*args, "--out", str(tmp_path / "r.parquet")]) == 2
    assert f"positions[{row}].entry_price: must be > 0, got -1" in capsys.readouterr().err
    assert (tmp_path / "r.parquet").read_bytes() == b"earlier results"
    assert not list(tmp_path.glob(".*partial"))
    out = tmp_path / "c.parquet"
    assert main([*args, "--out", str(out), "--errors", "collect", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["errors"] == 1 and summary["by_status"]["ERROR"] == 1
    r = pq.read_table(out).to_pydict()
    k = r["status"].index("ERROR")
    assert r["account"][k] == positions.column("account")[row].as_py()
    assert r["error"][k].startswith(f"positions[{row}].entry_price")


def test_scan_missing_file_exit_2(tmp_path, capsys):
    (tmp_path / "m.json").write_text(json.dumps(market_dict()))
    code = main(
        [
            "scan",
            "--positions",
            str(tmp_path / "nope.parquet"),
            "--market",
            str(tmp_path / "m.json"),
            "--out",
            str(tmp_path / "r.parquet"),
        ]
    )
    assert code == 2
    assert "nope.parquet" in capsys.readouterr().err


def test_scan_streams_sorted_files_and_splits_unsorted_ones(book, tmp_path):
    from pmengine.book.scan import scan_files

    engine, market = pm.Engine(), pm.Market.from_dict(market_dict())
    positions = pq.read_table(book / "positions.parquet")
    balances = pq.read_table(book / "balances.parquet")
    want = engine.margin_batch(positions, balances, market)
    # Sorted (as gen writes it), in small row groups: streamed, accounts across row groups.
    pq.write_table(positions, tmp_path / "p.parquet", row_group_size=333)
    seen = []
    summary = scan_files(
        engine,
        tmp_path / "p.parquet",
        book / "balances.parquet",
        market,
        tmp_path / "r.parquet",
        part_rows=500,
        on_progress=lambda rows, total, accounts: seen.append((rows, total, accounts)),
    )
    assert same_table(pq.read_table(tmp_path / "r.parquet"), want)
    assert len(seen) > 2 and seen[-1] == (positions.num_rows, positions.num_rows, 600)
    assert summary.accounts == 600
    # Unsorted: split into parts by account id, the same table.
    ids = positions.column("account").to_numpy()
    descending = np.lexsort((np.arange(len(ids)), -ids))  # each account's rows in order
    pq.write_table(positions.take(descending), tmp_path / "u.parquet")
    scan_files(
        engine,
        tmp_path / "u.parquet",
        book / "balances.parquet",
        market,
        tmp_path / "s.parquet",
        accounts_per_part=170,
    )
    assert same_table(pq.read_table(tmp_path / "s.parquet"), want)


def test_a_failed_scan_leaves_no_results_either_way(book, tmp_path):
    """A bad row in a later part: the parts before it were written, then dropped."""
    from pmengine.book.scan import scan_files
    from pmengine.errors import InvalidInputError

    engine, market = pm.Engine(), pm.Market.from_dict(market_dict())
    positions = pq.read_table(book / "positions.parquet")
    qty = positions.column("qty").to_pylist()
    row = positions.num_rows - 3
    qty[row] = float("nan")
    bad = positions.set_column(positions.schema.get_field_index("qty"), "qty", pa.array(qty))
    ids = bad.column("account").to_numpy()
    pq.write_table(bad, tmp_path / "sorted.parquet", row_group_size=100)
    pq.write_table(bad.take(np.lexsort((np.arange(len(ids)), -ids))), tmp_path / "unsorted.parquet")
    for name, part in [("sorted", {"part_rows": 300}), ("unsorted", {"accounts_per_part": 100})]:
        out = tmp_path / f"{name}-results.parquet"
        with pytest.raises(InvalidInputError, match=r"\.qty"):
            scan_files(engine, tmp_path / f"{name}.parquet", None, market, out, **part)
        assert sorted(p.name for p in tmp_path.iterdir()) == ["sorted.parquet", "unsorted.parquet"]


def test_scan_of_an_empty_book_writes_an_empty_results_file(book, tmp_path):
    from pmengine.book.scan import scan_files

    engine, market = pm.Engine(), pm.Market.from_dict(market_dict())
    empty = pq.read_table(book / "positions.parquet").slice(0, 0)
    pq.write_table(empty, tmp_path / "p.parquet")
    summary = scan_files(engine, tmp_path / "p.parquet", None, market, tmp_path / "r.parquet")
    got = pq.read_table(tmp_path / "r.parquet")
    want = engine.margin_batch(empty, None, market)
    assert summary.accounts == 0 and got.num_rows == 0 and got.schema == want.schema


@pytest.mark.parametrize("where", ["missing/r.parquet", "."])
def test_scan_to_a_place_it_cannot_write_exit_2(book, tmp_path, capsys, where):
    out = tmp_path / where
    assert scan(book, out, "--no-progress") == 2
    assert f"{out}: cannot write: " in capsys.readouterr().err
    assert not list(tmp_path.glob("**/.*partial"))


def test_scan_writes_through_a_link_and_takes_a_long_name(book, tmp_path):
    from pmengine.book.scan import scan_files

    engine, market = pm.Engine(), pm.Market.from_dict(market_dict())
    want = engine.margin_batch(
        pq.read_table(book / "positions.parquet"), pq.read_table(book / "balances.parquet"), market
    )
    (tmp_path / "target.parquet").write_bytes(b"earlier")
    (tmp_path / "link.parquet").symlink_to(tmp_path / "target.parquet")
    long = tmp_path / ("r" * 240 + ".parquet")  # the longest name most file systems take
    for out in (tmp_path / "link.parquet", long):
        scan_files(engine, book / "positions.parquet", book / "balances.parquet", market, out)
    assert (tmp_path / "link.parquet").is_symlink()
    assert same_table(pq.read_table(tmp_path / "target.parquet"), want)
    assert same_table(pq.read_table(long), want)
    assert not list(tmp_path.glob(".*partial"))


def test_two_scans_to_one_file_at_once(book, tmp_path):
    """Each writes a partial file of its own; the last to end leaves its results."""
    from concurrent.futures import ThreadPoolExecutor

    from pmengine.book.scan import scan_files

    engine, market = pm.Engine(), pm.Market.from_dict(market_dict())
    out = tmp_path / "r.parquet"

    def run(_):
        p, b = book / "positions.parquet", book / "balances.parquet"
        return scan_files(engine, p, b, market, out, part_rows=500).accounts

    with ThreadPoolExecutor(2) as pool:
        assert list(pool.map(run, range(2))) == [600, 600]
    assert pq.read_table(out).num_rows == 600
    assert not list(tmp_path.glob(".*partial"))


def test_scan_refuses_a_uri_and_names_a_bad_input_file(book, tmp_path, capsys):
    assert scan(book, f"file://{tmp_path}/r.parquet", "--no-progress") == 2
    assert "a local path is needed, not a URI" in capsys.readouterr().err
    # An account column with a null: named by row, in the file's table.
    positions = pq.read_table(book / "positions.parquet")
    ids = positions.column("account").to_pylist()
    ids[7] = None
    bad = positions.set_column(0, "account", pa.array(ids, pa.int64()))
    pq.write_table(bad, tmp_path / "p.parquet", row_group_size=5)
    args = scan_of_p(book, tmp_path)
    assert main([*args, "--out", str(tmp_path / "r.parquet"), "--no-progress"]) == 2
    assert "positions[7].account: required" in capsys.readouterr().err
    # A file cut short after its first row groups were read: its name, not Arrow's traceback.
    pq.write_table(positions, tmp_path / "p.parquet", row_group_size=100)
    data = (tmp_path / "p.parquet").read_bytes()
    footer = pq.ParquetFile(tmp_path / "p.parquet").metadata.row_group(3).column(3)
    at = footer.data_page_offset
    (tmp_path / "p.parquet").write_bytes(data[:at] + b"\xff" * 64 + data[at + 64 :])
    assert main([*args, "--out", str(tmp_path / "r.parquet"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path / 'p.parquet'}: cannot read" in err and "Traceback" not in err
    assert not (tmp_path / "r.parquet").exists()


def test_part_size_cuts_a_streamed_book_too(book, tmp_path):
    """--part-size is in accounts whichever way the book is read: a sorted book
    is cut at that many accounts' worth of rows (600 accounts of 8 rows, 170
    accounts a part: parts of 1,360 rows, four)."""
    from pmengine.book.scan import scan_files

    engine, market = pm.Engine(), pm.Market.from_dict(market_dict())
    p, b = book / "positions.parquet", book / "balances.parquet"
    seen = []
    scan_files(
        engine,
        p,
        b,
        market,
        tmp_path / "r.parquet",
        accounts_per_part=170,
        on_progress=lambda *progress: seen.append(progress),
    )
    assert len(seen) == 4 and seen[-1][2] == 600
    want = engine.margin_batch(pq.read_table(p), pq.read_table(b), market)
    assert same_table(pq.read_table(tmp_path / "r.parquet"), want)


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ({"accounts_per_part": 0}, "accounts_per_part: must be >= 1, got 0"),
        ({"part_rows": -3}, "part_rows: must be >= 1, got -3"),
        ({"top": -1}, "top: must be >= 0, got -1"),
    ],
)
def test_scan_sizes_out_of_range_are_named(book, tmp_path, option, message):
    from pmengine.book.scan import scan_files

    engine, market = pm.Engine(), pm.Market.from_dict(market_dict())
    with pytest.raises(pm.InvalidInputError, match=message) as e:
        scan_files(
            engine, book / "positions.parquet", None, market, tmp_path / "r.parquet", **option
        )
    assert e.value.code == "out_of_range" and not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--accounts", "-5"], "accounts: must be >= 0, got -5"),
        (
            ["--accounts", "9", "--positions-per-account", "-1"],
            "positions_per_account: must be >= 0",
        ),
        (
            ["--accounts", "9", "--option-share", "1.5"],
            "option_share: must be >= 0 and <= 1, got 1.5",
        ),
        (
            ["--accounts", "9", "--option-share", "nan"],
            "option_share: must be >= 0 and <= 1, got nan",
        ),
        (["--accounts", "9", "--seed", "-1"], "seed: must be >= 0, got -1"),
    ],
)
def test_gen_refuses_sizes_out_of_range_before_writing(tmp_path, capsys, flags, message):
    assert main(["gen", *flags, "--out", str(tmp_path / "book")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "book").exists()


def test_unsorted_book_is_dealt_into_parts_and_names_file_rows(book, tmp_path):
    """Rows in no order, in many row groups: the same table as one call, and
    a bad row named by its row in the file, in either error mode (a part's
    rows were named by their place in the part)."""
    from pmengine.book.scan import scan_files

    engine, market = pm.Engine(), pm.Market.from_dict(market_dict())
    positions = pq.read_table(book / "positions.parquet")
    balances = pq.read_table(book / "balances.parquet")
    rng = np.random.default_rng(7)
    positions = positions.take(rng.permutation(positions.num_rows))
    balances = balances.take(rng.permutation(balances.num_rows))
    qty = balances.column("qty").to_pylist()
    qty[211] = float("inf")
    balances = balances.set_column(balances.schema.get_field_index("qty"), "qty", pa.array(qty))
    pq.write_table(positions, tmp_path / "p.parquet", row_group_size=700)
    pq.write_table(balances, tmp_path / "b.parquet", row_group_size=130)
    files = (tmp_path / "p.parquet", tmp_path / "b.parquet", market)
    want = engine.margin_batch(positions, balances, market, errors="collect")
    out = tmp_path / "r.parquet"
    summary = scan_files(engine, *files, out, accounts_per_part=90, errors="collect")
    assert same_table(pq.read_table(out), want) and summary.errors == 1
    assert "balances[211].qty" in "".join(
        pq.read_table(out).column("error").drop_null().to_pylist()
    )
    with pytest.raises(pm.InvalidInputError, match=r"^balances\[211\]\.qty: must be finite") as e:
        scan_files(engine, *files, tmp_path / "x.parquet", accounts_per_part=90)
    assert e.value.field == "balances[211].qty"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.parquet", "p.parquet", "r.parquet"]


def test_unsorted_scan_of_large_ids_of_two_types(book, tmp_path):
    """Ids above 2**53, uint64 positions and int64 balances, shuffled: every
    account in one part (NumPy compares the two types as floats)."""
    from pmengine.book.scan import scan_files

    engine, market = pm.Engine(), pm.Market.from_dict(market_dict())

    def shifted(t, kind, seed):
        ids = (t.column("account").to_numpy().astype(object) + 2**53).tolist()
        t = t.set_column(0, "account", pa.array(ids, kind))
        return t.take(np.random.default_rng(seed).permutation(t.num_rows))

    positions = shifted(pq.read_table(book / "positions.parquet"), pa.uint64(), 1)
    balances = shifted(pq.read_table(book / "balances.parquet"), pa.int64(), 2)
    pq.write_table(positions, tmp_path / "p.parquet", row_group_size=97)
    pq.write_table(balances, tmp_path / "b.parquet", row_group_size=97)
    want = engine.margin_batch(positions, balances, market)
    for per in (1, 7, 1000):
        out = tmp_path / f"r{per}.parquet"
        scan_files(
            engine,
            tmp_path / "p.parquet",
            tmp_path / "b.parquet",
            market,
            out,
            accounts_per_part=per,
        )
        assert same_table(pq.read_table(out), want), per


def test_a_name_that_looks_like_a_row_is_left_as_it_is(book, tmp_path):
    """Only the field a message starts with is renumbered, not a name in its words."""
    from pmengine.book.scan import scan_files

    engine, market = pm.Engine(), pm.Market.from_dict(market_dict())
    positions = pq.read_table(book / "positions.parquet")
    under = positions.column("underlying").cast(pa.string()).to_pylist()
    types = positions.column("type").to_pylist()
    under[next(k for k in range(300, len(types)) if types[k] == "linear")] = "positions[1]"
    bad = positions.set_column(
        positions.schema.get_field_index("underlying"), "underlying", pa.array(under)
    )
    bad = bad.take(np.random.default_rng(3).permutation(bad.num_rows))
    row = bad.column("underlying").to_pylist().index("positions[1]")
    pq.write_table(bad, tmp_path / "p.parquet", row_group_size=500)
    with pytest.raises(pm.PmError) as want:
        engine.margin_batch(bad, None, market)
    said = str(want.value)
    assert said.startswith(f"positions[{row}].") and "positions[1]" in said
    with pytest.raises(pm.PmError) as got:
        scan_files(
            engine,
            tmp_path / "p.parquet",
            None,
            market,
            tmp_path / "r.parquet",
            accounts_per_part=50,
        )
    assert str(got.value) == str(want.value) and got.value.field == want.value.field


def test_a_full_disk_while_dealing_names_the_output(book, tmp_path):
    """The hidden folder's files cannot be written (a file size limit): the
    scan names its output, exit 2, and leaves nothing behind."""
    import subprocess
    import sys

    positions = pq.read_table(book / "positions.parquet")
    shuffled = positions.take(np.random.default_rng(5).permutation(positions.num_rows))
    pq.write_table(shuffled, tmp_path / "p.parquet")
    (tmp_path / "m.json").write_text((book / "market.json").read_text())
    out = tmp_path / "out" / "r.parquet"
    out.parent.mkdir()
    script = (
        "import resource, signal, sys\n"
        "from pmengine.cli import main\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))\n"
        f"sys.exit(main(['scan', '--positions', {str(tmp_path / 'p.parquet')!r}, "
        f"'--market', {str(tmp_path / 'm.json')!r}, '--out', {str(out)!r}, '--no-progress']))\n"
    )
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False)
    assert r.returncode == 2, r.stderr
    assert f"{out}: cannot write: File too large" in r.stderr and "Traceback" not in r.stderr
    assert not list(out.parent.iterdir())
