"""Every numba kernel equals its pure-numpy twin in `sparsearch.index.reference`."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from sparsearch.index import kernels, reference
from sparsearch.sparse import SparseVectors
from tests.index.brute import sparse_batches

SETTINGS = settings(max_examples=60, deadline=None)


@SETTINGS
@given(sparse_batches(n_min=0, n_max=60))
def test_inverted_index_equals_reference(docs):
    args = (docs.indptr, docs.indices, docs.values, docs.dim)
    for got, want in zip(kernels.inverted_index(*args), reference.inverted_index(*args),
                         strict=True):
        np.testing.assert_array_equal(got, want)
        assert got.dtype == want.dtype


def _run(impl, queries, docs, seq, live, k, rounds):
    """Search the docs as ``rounds`` consecutive calls over the same heaps (as segments do)."""
    inverted = kernels.inverted_index(docs.indptr, docs.indices, docs.values, docs.dim)
    n = queries.n
    top = (np.full((n, k), -np.inf, np.float32), np.full((n, k), 2**62, np.int64),
           np.full((n, k), -1, np.int64), np.zeros(n, np.int64))
    for r in range(rounds):
        impl(queries.indptr, queries.indices, queries.values, 0, n,
             *inverted, seq + r * 1000, live, r * 1000, *top)
    scores, seqs, slots, sizes = top
    order = np.lexsort((seqs, -scores.astype(np.float64)), axis=1)
    return (sizes, np.take_along_axis(scores, order, 1), np.take_along_axis(seqs, order, 1),
            np.take_along_axis(slots, order, 1))


@SETTINGS
@given(docs=sparse_batches(n_min=0, n_max=80), queries=sparse_batches(n_min=1, n_max=6),
       k=st.integers(1, 12), rounds=st.integers(1, 2), data=st.data())
def test_search_segment_equals_reference(docs, queries, k, rounds, data):
    # small and large documents sets exercise both the touched-list and the full-scan paths
    seq = np.asarray(data.draw(st.permutations(range(docs.n))), np.int64)
    live = np.asarray(data.draw(st.lists(st.booleans(), min_size=docs.n, max_size=docs.n)),
                      np.uint8) if data.draw(st.booleans()) else np.ones(docs.n, np.uint8)
    args = (queries, docs, seq, live, k, rounds)
    got, want = _run(kernels.search_segment, *args), _run(reference.search_segment, *args)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_array_equal(g, w)


def test_heap_push_keeps_best_k_with_seq_tie_break():
    rng = np.random.default_rng(1)
    score = rng.choice([1.0, 2.0, 3.0], size=200).astype(np.float32)
    seq = rng.permutation(200).astype(np.int64)
    k = 7
    heap = (np.zeros(k, np.float32), np.zeros(k, np.int64), np.zeros(k, np.int64))
    size = 0
    for i in range(200):
        size = kernels.heap_push(*heap, size, score[i], seq[i], i)
    want = np.lexsort((seq, -score.astype(np.float64)))[:k]
    got = heap[2][np.lexsort((heap[1], -heap[0].astype(np.float64)))]
    np.testing.assert_array_equal(got, want)


def test_search_segment_both_paths_keep_earliest_ties():
    # every matching document scores exactly 1.0 and insertion numbers are shuffled; a rare term
    # takes the touched-list path, a common one the full scan: both keep the earliest insertions
    rng = np.random.default_rng(3)
    n, dim = 500, 30
    rows = [{0: 1.0, int(rng.integers(2, dim)): 2.0} for _ in range(n - 20)]
    rows += [{1: 1.0, 0: 1.0}] * 20
    docs = SparseVectors.from_dicts(rows, dim=dim)
    queries = SparseVectors.from_dicts([{0: 1.0}, {1: 1.0}], dim=dim)
    seq = rng.permutation(n).astype(np.int64)
    live = np.ones(n, np.uint8)
    live[np.flatnonzero(seq == 0)] = 0
    got = _run(kernels.search_segment, queries, docs, seq, live, 5, 1)
    for g, w in zip(got, _run(reference.search_segment, queries, docs, seq, live, 5, 1),
                    strict=True):
        np.testing.assert_array_equal(g, w)
    _, scores, seqs, _ = got
    assert seqs[0].tolist() == [1, 2, 3, 4, 5] and scores[0].tolist() == [1.0] * 5
    rare = np.sort(seq[n - 20:][seq[n - 20:] != 0])[:5]
    assert seqs[1].tolist() == rare.tolist() and scores[1].tolist() == [1.0] * 5
