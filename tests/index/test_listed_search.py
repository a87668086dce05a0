"""A very selective filter is answered by scoring only the allowed documents (the listed path):
the same hits as brute force, ties and padding included."""

from __future__ import annotations

import numpy as np

from sparsearch.index import SparseIndex
from sparsearch.index.snapshot import LISTED_WORK
from sparsearch.search import SearchParams
from sparsearch.sparse import SparseVectors
from tests.index.brute import assert_same_hits, brute_force


def test_a_selective_filter_scores_only_the_allowed_documents_and_equals_brute_force():
    rng = np.random.default_rng(11)
    n, dim = 4_000, 200
    dense = (rng.integers(1, 5, (n, dim)) / 4 * (rng.random((n, dim)) < 0.03)).astype(np.float32)
    docs = SparseVectors.from_dense(dense)
    ids = [f"d{i}" for i in range(n)]
    index = SparseIndex()
    index.add(ids, docs, [{"group": i % 500} for i in range(n)])
    index.delete(ids[::97])
    live = index.ids()
    queries = SparseVectors.from_dense(
        (rng.random((6, dim)) * (rng.random((6, dim)) < 0.2)).astype(np.float32)
    )
    flt = {"must": [{"key": "group", "match": {"any": [3, 250]}}]}
    (seg,) = index.snapshot().segments
    (plan,) = index.snapshot().plans(SearchParams(filter=flt).filter)
    assert plan[3] is not None and plan[3].size * seg.fwd_indices.size / seg.n <= LISTED_WORK * n
    allowed = np.array([int(doc[1:]) % 500 in (3, 250) for doc in live])
    for k in (1, 5, 40):  # 40: more than the allowed documents that match: padding
        hits = index.search(queries, k=k, params=SearchParams(filter=flt))
        assert_same_hits(hits, *brute_force(index.get(live), live, queries, k, allowed))
