"""One account per group, every implementation side by side (pytest-benchmark groups).

- rust: `engine.margin(portfolio, market)`, the Portfolio and Market converted once, outside
  the timed call. A Market keeps the option series it has priced (a snapshot's series never
  change), so on the option book `rust` times the warm path: no Black-76 at all after the
  first call. `rust-cold` clears that cache before each round (outside the timing) and so
  times the option pricing too, which NumPy and the reference do on every call.
- numpy: `numpy_impl.margin(portfolio_dict, market_dict, profile)`, the profile compiled once.
- reference: `pmengine.reference.margin(portfolio_dict, market_dict, profile)`; skipped while
  reference.py does not exist.

The account fixtures (conftest.py) assert that the implementations agree before any timing.
"""

from __future__ import annotations

import pytest

from conftest import Case, numpy_impl

COLD_ROUNDS = 2000
# Rounds of at least 100 us: a 2 us call is averaged over ~40 iterations per round, so the
# timer's own overhead (~0.1 us per round) does not inflate the fast medians.
MIN_TIME = 1e-4


def _bench(benchmark, case: Case, impl: str) -> dict:
    benchmark.extra_info["implementation"] = impl
    benchmark.extra_info["positions"] = len(case.portfolio["positions"])
    benchmark.extra_info["balances"] = len(case.portfolio["balances"])
    if impl == "rust":
        return benchmark(case.engine.margin, case.rust_portfolio, case.rust_market).to_dict()
    if impl == "rust-cold":
        result = benchmark.pedantic(
            case.engine.margin,
            args=(case.rust_portfolio, case.rust_market),
            setup=case.rust_market.clear_cache,
            rounds=COLD_ROUNDS,
            warmup_rounds=20,
        )
        assert case.rust_market.cached_series > 0  # the timed call priced the series itself
        return result.to_dict()
    if impl == "numpy":
        return benchmark(numpy_impl.margin, case.portfolio, case.market, case.numpy_profile)
    if case.reference is None:
        pytest.skip("pmengine.reference does not exist yet")
    return benchmark(case.reference.margin, case.portfolio, case.market, case.reference_profile)


@pytest.mark.benchmark(group="margin-50-linear", min_time=MIN_TIME)
@pytest.mark.parametrize("impl", ["rust", "numpy", "reference"])
def test_margin_50_linear(benchmark, linear_case: Case, impl: str) -> None:
    result = _bench(benchmark, linear_case, impl)
    assert result["maintenance_margin"] > 0.0


@pytest.mark.benchmark(group="margin-20-options", min_time=MIN_TIME)
@pytest.mark.parametrize("impl", ["rust", "rust-cold", "numpy", "reference"])
def test_margin_20_options(benchmark, options_case: Case, impl: str) -> None:
    result = _bench(benchmark, options_case, impl)
    assert result["maintenance_margin"] > 0.0
