"""The Rust engine equals the pure-Python reference (relative 1e-9, absolute
1e-6 USD) on generated accounts mixing every instrument."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings

import pmengine as pm
from pmengine import reference
from pmengine.testing import assert_close

from . import strategies as gen
from .conftest import GOLDEN

ENGINE = pm.Engine()
PROFILE = reference.default_profile()


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(gen.portfolio(), gen.marks())
def test_engine_equals_reference(portfolio, marks):
    market = gen.market(marks)
    got = ENGINE.margin(pm.Portfolio.from_dict(portfolio), pm.Market.from_dict(market)).to_dict()
    assert_close(got, reference.margin(portfolio, market, PROFILE), rel=1e-9, abs_=1e-6)


def test_engine_equals_reference_on_golden_inputs():
    for case in GOLDEN:
        got = ENGINE.margin(
            pm.Portfolio.from_dict(case["portfolio"]), pm.Market.from_dict(case["market"])
        )
        assert_close(got.to_dict(), reference.margin(case["portfolio"], case["market"], PROFILE))
