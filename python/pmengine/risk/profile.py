"""The profile's compiled tables as the risk tools read them: converted from the
core once per profile (a ``RiskParams`` is immutable), read only."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from pmengine._core import RiskParams

if TYPE_CHECKING:
    from pmengine._core import _GroupParamsDict, _SystemicDict


@functools.lru_cache(maxsize=8)
def group_table(params: RiskParams) -> dict[str, _GroupParamsDict]:
    """``params.groups`` once per profile (a RiskParams is immutable; read only)."""
    return params.groups


@functools.lru_cache(maxsize=8)
def systemic_table(params: RiskParams) -> list[_SystemicDict]:
    """``params.systemic`` once per profile (read only)."""
    return params.systemic
