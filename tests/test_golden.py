"""The golden cases reproduced by the Rust engine through the Python API
(the reference and the NumPy baseline have their own golden tests)."""

from __future__ import annotations

import pytest

from pmengine.testing import assert_close

from .conftest import GOLDEN, engine_margin


@pytest.mark.parametrize("case", GOLDEN, ids=[c["name"] for c in GOLDEN])
def test_engine_reproduces_golden_case(case, engine):
    assert_close(engine_margin(case["portfolio"], case["market"], engine), case["expected"])
