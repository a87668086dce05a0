"""Query conversion: the direct one-row CSR equals ``from_dicts``; the batcher's window rules."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from sparsearch.collection.queries import Encoded, one_row
from sparsearch.errors import InvalidInputError, InvalidVectorsError
from sparsearch.server.batching import QueryBatcher
from sparsearch.sparse import SparseVectors


@pytest.mark.parametrize("seed", range(20))
def test_one_row_equals_from_dicts(seed):
    rng = np.random.default_rng(seed)
    dim = int(rng.integers(1, 500))
    keys = rng.choice(dim, size=int(rng.integers(0, min(dim, 40) + 1)), replace=False)
    weights = rng.normal(size=keys.size) * rng.integers(0, 2, size=keys.size)  # some zeros
    row = {int(k): float(w) for k, w in zip(keys, weights, strict=True)}
    fast, slow = one_row(row, dim), SparseVectors.from_dicts([row], dim=dim)
    assert fast.indptr.tolist() == slow.indptr.tolist()
    assert fast.indices.tolist() == slow.indices.tolist()
    assert fast.values.tolist() == slow.values.tolist()


@pytest.mark.parametrize(
    ("row", "error"),
    [
        ({1: "2"}, InvalidInputError),
        ({1: True}, InvalidInputError),
        ({1.5: 1.0}, InvalidInputError),
        ({-1: 1.0}, InvalidInputError),
        ({10: 1.0}, InvalidInputError),
        ({1: 10**400}, InvalidInputError),
        ({1: float("nan")}, InvalidVectorsError),
        ({1: 1e39}, InvalidVectorsError),  # finite in float64, infinite in float32
    ],
)
def test_one_row_refuses_what_from_dicts_refuses(row, error):
    with pytest.raises(error):
        one_row(row, 10)


def _encoder(calls):
    def encode(queries):
        calls.append(list(queries))
        return Encoded(
            texts=list(queries), sparse=[None] * len(queries), dense=[None] * len(queries)
        )

    return encode


def test_a_lone_query_does_not_wait_out_the_window():
    calls: list = []

    async def main():
        batcher = QueryBatcher(_encoder(calls), window_ms=1000, others_waiting=lambda: False)
        return await asyncio.wait_for(batcher.encode("q"), timeout=0.9)

    assert asyncio.run(main()).texts == ["q"] and calls == [["q"]]


def test_queries_that_arrive_together_share_one_batch():
    calls: list = []

    async def main():
        batcher = QueryBatcher(_encoder(calls), window_ms=50, others_waiting=lambda: True)
        return await asyncio.gather(*(batcher.encode(f"q{i}") for i in range(5)))

    results = asyncio.run(main())
    assert [r.texts for r in results] == [[f"q{i}"] for i in range(5)]
    assert calls == [[f"q{i}" for i in range(5)]]
