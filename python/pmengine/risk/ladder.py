"""The status ladder of a profile (NORMAL ... LIQUIDATION, healthiest first;
BANKRUPT below it): ranks and target statuses."""

from __future__ import annotations

from pmengine._core import RiskParams
from pmengine.errors import InvalidInputError


def _ladder(params: RiskParams) -> list[tuple[str, float]]:
    return list(params.status_levels)


def status_rank(params: RiskParams, status: str) -> int:
    """0 for the healthiest status; BANKRUPT (not on the ladder) is below the last."""
    return params.status_rank(status)


def _check_target(params: RiskParams, target: str, at: str = "target") -> None:
    names = [n for n, _ in _ladder(params)]
    if target not in names:
        raise InvalidInputError.at(at, f"unknown status {target!r}, expected one of {names}")
