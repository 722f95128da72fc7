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
