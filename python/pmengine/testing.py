"""Helpers for testing code that uses pmengine."""

from __future__ import annotations

from typing import Any


def assert_close(
    got: Any, want: Any, path: str = "", rel: float = 1e-9, abs_: float = 1e-6
) -> None:
    """Result dicts are equal: numbers to `rel` or `abs_` (USD), everything else
    exactly, the same keys in the same order. The message names the key path.

    uniMMR is adjusted equity over MM, so it is only as close as they are: beside
    `rel`, it may differ by the relative tolerance its two parts are held to. That
    only widens where MM (or adjusted equity) is near `abs_` USD, a ratio of 1e8
    whose last digits are those of a few 1e-12 USD of option value."""
    if isinstance(want, dict):
        assert isinstance(got, dict), f"{path}: got {got!r}"
        assert list(got) == list(want), f"{path}: keys {list(got)} != {list(want)}"
        for k in want:
            if k == "uni_mmr" and _ratio_parts(want):
                _assert_ratio_close(got[k], want, f"{path}.{k}", rel, abs_)
            else:
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


def _ratio_parts(want: dict[str, Any]) -> bool:
    return all(
        isinstance(want.get(k), float | int) and want[k] != 0
        for k in ("uni_mmr", "adjusted_equity", "maintenance_margin")
    )


def _assert_ratio_close(got: Any, want: dict[str, Any], path: str, rel: float, abs_: float) -> None:
    uni, ae, mm = (want[k] for k in ("uni_mmr", "adjusted_equity", "maintenance_margin"))
    assert isinstance(got, float | int), f"{path}: got {got!r}, want {uni!r}"
    parts = max(abs_, rel * abs(ae)) / abs(ae) + max(abs_, rel * abs(mm)) / abs(mm)
    tol = max(abs_, rel * abs(uni), parts * abs(uni))
    assert abs(got - uni) <= tol, f"{path}: got {got!r}, want {uni!r}"


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
