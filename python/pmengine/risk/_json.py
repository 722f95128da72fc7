"""The JSON form of the risk tools' results: no infinity or NaN (JSON has none)."""

from __future__ import annotations

import math
from typing import Any


def _json(obj: Any) -> Any:
    """``obj`` with every infinite or NaN float replaced by None (JSON has no
    infinity: an unbounded uniMMR or leverage is written ``null``, as in the
    margin result)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _json(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_json(v) for v in obj]
    return obj


def _json_dict(d: dict[str, Any]) -> dict[str, Any]:
    return {k: _json(v) for k, v in d.items()}
