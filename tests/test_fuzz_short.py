"""The fuzz targets' short pass (``make test``); ``make fuzz`` runs the long one.

Each surface of ``fuzz/python/harness.py`` (from_json / from_dict of portfolios
and markets, profiles as dicts and TOML, live-account sequences, margin_batch,
the command line) runs on inputs hypothesis draws, checked against every
invariant the harness asserts. A failure names the broken promise.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fuzz" / "python"))

import harness

EXAMPLES = {"cli": 120, "batch": 150, "live": 200}


@pytest.mark.parametrize("surface", list(harness.TARGETS))
def test_fuzz_short_pass(surface):
    @settings(
        max_examples=EXAMPLES.get(surface, 300),
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(st.binary(min_size=8, max_size=128))
    def run(data: bytes) -> None:
        harness.TARGETS[surface](data)

    run()


def test_the_source_is_deterministic():
    a, b = harness.Source(b"\x01\x02\x03"), harness.Source(b"\x01\x02\x03")
    assert [a.int(10) for _ in range(5)] == [b.int(10) for _ in range(5)]
    doc = {"balances": {"USDT": 1.0}}
    assert harness.mutate(doc, harness.Source(b"xyz")) == harness.mutate(
        doc, harness.Source(b"xyz")
    )
