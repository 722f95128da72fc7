"""Hostile input (issue 16): each finding's minimal repro, and the class it stands for.

Nothing crashes the interpreter, no panic reaches Python as anything but a
pmengine error, a refused operation changes nothing, and every error names the
field (or the limit) it is about.
"""

from __future__ import annotations

import json
import tomllib

import pyarrow as pa
import pytest

import pmengine as pm
from pmengine import InvalidInputError, ProfileError

from .conftest import MARKET

DEFAULT = pm.RiskParams.default().to_dict()


def nested(depth: int, leaf: object = 1) -> object:
    """`depth` nested one-key dicts around `leaf` (built without recursion)."""
    out = leaf
    for _ in range(depth):
        out = {"a": out}
    return out


def nested_lists(depth: int) -> object:
    out: object = []
    for _ in range(depth - 1):
        out = [out]
    return out


# -- finding 3: no panic reaches Python; batch dictionary codes on every path ------------


def batch_with_type(column) -> pa.Table:
    n = len(column)
    return pa.table(
        {
            "account": pa.array(range(n), pa.int64()),
            "type": column,
            "symbol": pa.array(["BTCUSDT"] * n),
            "underlying": pa.array(["BTC"] * n),
            "qty": pa.array([1.0] * n),
            "entry_price": pa.array([60000.0] * n),
        }
    )


def damaged(codes: list[int], values: list[str]) -> pa.DictionaryArray:
    return pa.DictionaryArray.from_arrays(pa.array(codes, pa.int32()), pa.array(values), safe=False)


@pytest.mark.parametrize(
    "column",
    [
        damaged([0, 7], ["linear"]),  # one chunk, distinct values: read in place
        damaged([0, 7], ["linear", "linear"]),  # repeated values: remapped
        damaged([0, -3], ["linear"]),  # a negative code that is not null
        pa.chunked_array([damaged([0], ["linear"]), damaged([7], ["linear"])]),  # chunked
    ],
    ids=["single", "repeated", "negative", "chunked"],
)
def test_batch_dictionary_codes_out_of_range(engine, column):
    market = pm.Market.from_dict(MARKET)
    with pytest.raises(InvalidInputError, match=r"^positions\.type\[1\]: dictionary code -?\d+ out of range"):
        engine.margin_batch(batch_with_type(column), None, market)
    with pytest.raises(InvalidInputError, match=r"out of range"):
        engine.margin_batch(batch_with_type(column), None, market, errors="collect")


@pytest.mark.parametrize("threads", [-1, 0, 2**64, 5000])
def test_batch_threads_value(engine, threads):
    book = batch_with_type(pa.array(["linear"]))
    with pytest.raises(InvalidInputError, match=r"^threads: must be >= 1 and <= 1024, got -?\d+$"):
        engine.margin_batch(book, None, pm.Market.from_dict(MARKET), threads=threads)


def test_batch_threads_and_chunk_size_types(engine):
    book = batch_with_type(pa.array(["linear"]))
    market = pm.Market.from_dict(MARKET)
    with pytest.raises(TypeError):
        engine.margin_batch(book, None, market, threads=1.5)
    with pytest.raises(InvalidInputError, match=r"^chunk_size: must be >= 1, got -1$"):
        engine.margin_batch(book, None, market, chunk_size=-1)
    out = engine.margin_batch(book, None, market, threads=1, chunk_size=2**62)
    assert out.num_rows == 1
