"""The hand-written stubs match the native module (mypy.stubtest), and the
package type-checks against them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_stubtest_native_module():
    pytest.importorskip("mypy")
    r = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", "pmengine._core", "--ignore-missing-stub"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert r.returncode == 0, r.stdout + r.stderr


def test_package_typechecks():
    pytest.importorskip("mypy")
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-incremental",
            "python/pmengine/cli.py",
            "python/pmengine/present/render.py",
            "python/pmengine/errors.py",
            "python/pmengine/account.py",
            "python/pmengine/compare.py",
            "python/pmengine/risk",
            "python/pmengine/present/report.py",
            "python/pmengine/present/commands.py",
            "python/pmengine/__init__.py",
            "python/pmengine/book/batch.py",
            "python/pmengine/book/scan.py",
            "python/pmengine/book/synthetic.py",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert r.returncode == 0, r.stdout + r.stderr
