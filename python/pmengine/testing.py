"""Helpers for testing code that uses pmengine."""

from __future__ import annotations

from typing import Any


def assert_close(
    got: Any, want: Any, path: str = "", rel: float = 1e-9, abs_: float = 1e-6
) -> None:
    """Result dicts are equal: numbers to `rel` or `abs_` (USD), everything else
    exactly, the same keys in the same order. The message names the key path."""
    if isinstance(want, dict):
        assert isinstance(got, dict), f"{path}: got {got!r}"
        assert list(got) == list(want), f"{path}: keys {list(got)} != {list(want)}"
        for k in want:
            assert_close(got[k], want[k], f"{path}.{k}", rel, abs_)
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), (
            f"{path}: got {got!r}, want {want!r}"
        )
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            assert_close(g, w, f"{path}[{i}]", rel, abs_)
    elif isinstance(want, float | int) and not isinstance(want, bool):
        assert isinstance(got, float | int), f"{path}: got {got!r}, want {want!r}"
        assert abs(got - want) <= max(abs_, rel * abs(want)), f"{path}: got {got!r}, want {want!r}"
    else:
        assert got == want, f"{path}: got {got!r}, want {want!r}"


def same_table(a: Any, b: Any) -> bool:
    """Two Arrow tables hold the same values column by column: dictionary columns
    compared decoded (Parquet may re-encode them), floats bit for bit with NaN
    equal to NaN."""
    import numpy as np

    if a.column_names != b.column_names:
        return False
    for x, y in zip(a.columns, b.columns, strict=True):
        if x.type != y.type and str(x.type).startswith("dictionary") is False:
            return False
        if str(x.type) in ("double", "float"):
            if not np.array_equal(
                x.to_numpy().view(np.uint64) if str(x.type) == "double" else x.to_numpy(),
                y.to_numpy().view(np.uint64) if str(y.type) == "double" else y.to_numpy(),
            ):
                return False
        elif x.to_pylist() != y.to_pylist():
            return False
    return True
