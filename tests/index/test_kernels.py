"""Every numba kernel equals its pure-numpy twin in `sparsearch.index.reference`."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from sparsearch.index import build_kernels, kernels, reference
from sparsearch.sparse import SparseVectors
from tests.index.brute import sparse_batches

SETTINGS = settings(max_examples=60, deadline=None)
PRUNE_SMALL = {"min_docs": 0}  # let the kernel prune however few documents a segment holds


@SETTINGS
@given(sparse_batches(n_min=0, n_max=60))
def test_inverted_index_equals_reference(docs):
    args = (docs.indptr, docs.indices, docs.values, docs.dim)
    for got, want in zip(
        build_kernels.inverted_index(*args), reference.inverted_index(*args), strict=True
    ):
        np.testing.assert_array_equal(got, want)
        assert got.dtype == want.dtype


@SETTINGS
@given(sparse_batches(n_min=0, n_max=60), st.integers(1, 5))
def test_term_bounds_equal_reference(docs, top):
    inverted = build_kernels.inverted_index(docs.indptr, docs.indices, docs.values, docs.dim)
    for got, want in zip(
        build_kernels.term_bounds(*inverted, top),
        reference.term_bounds(*inverted, top),
        strict=True,
    ):
        np.testing.assert_array_equal(got, want)
        assert got.dtype == want.dtype


@SETTINGS
@given(sparse_batches(n_min=0, n_max=60))
def test_impact_blocks_equal_reference(docs):
    inverted = build_kernels.inverted_index(docs.indptr, docs.indices, docs.values, docs.dim)
    term_max = build_kernels.term_bounds(*inverted, 1)[0]
    got = build_kernels.impact_blocks(*inverted, term_max, docs.n)
    for g, w in zip(got, reference.impact_blocks(*inverted, term_max, docs.n), strict=True):
        np.testing.assert_array_equal(g, w)
        assert g.dtype == w.dtype
    scale, _, _, imps = got
    terms = np.repeat(np.arange(docs.dim), np.diff(inverted[0]))
    bound = imps.astype(np.float64) * scale[np.sort(terms)]  # one range: same term order
    if docs.n <= 1 << build_kernels.RANGE_BITS:
        vals = inverted[2]
        assert np.all(bound >= np.maximum(vals, 0))  # every weight rounds up


def _segment_arrays(docs, top=2, short=False):
    """The search kernel's segment arguments (few seed documents per term: more pruning work).

    ``short``: uint16 posting ordinals, as segments of at most 2**16 documents store them.
    """
    inverted = build_kernels.inverted_index(docs.indptr, docs.indices, docs.values, docs.dim)
    if short:
        inverted = (inverted[0], inverted[1].astype(np.uint16), inverted[2])
    bounds = build_kernels.term_bounds(*inverted, top)
    bounds += build_kernels.impact_blocks(*inverted, bounds[0], docs.n)
    nonneg = bool(docs.values.size == 0 or docs.values.min() >= 0)
    return (*inverted, *bounds, docs.indptr, docs.indices, docs.values, nonneg)


def _run(impl, queries, docs, seq, live, k, rounds, short=False, **tuning):
    """Search the docs as ``rounds`` consecutive calls over the same heaps (as segments do).

    The calls share one scratch, as a thread's searches do: the kernel must leave it clean.
    """
    arrays = _segment_arrays(docs, short=short)
    n = queries.n
    top = (
        np.full((n, k), -np.inf, np.float32),
        np.full((n, k), 2**62, np.int64),
        np.full((n, k), -1, np.int64),
        np.zeros(n, np.int64),
    )
    scratch = kernels.scratch(docs.n + 3, docs.dim)  # larger than the segment, as it may be
    for r in range(rounds):
        impl(
            queries.indptr,
            queries.indices,
            queries.values,
            0,
            n,
            *arrays,
            seq + r * 1000,
            live,
            r * 1000,
            *top,
            scratch,
            **tuning,
        )
    for a in scratch[:2] + scratch[3:]:  # touched is a list whose stale entries are never read
        assert not a.any()
    scores, seqs, slots, sizes = top
    order = np.lexsort((seqs, -scores.astype(np.float64)), axis=1)
    return (
        sizes,
        np.take_along_axis(scores, order, 1),
        np.take_along_axis(seqs, order, 1),
        np.take_along_axis(slots, order, 1),
    )


@SETTINGS
@given(
    docs=sparse_batches(n_min=0, n_max=80),
    queries=sparse_batches(n_min=1, n_max=6),
    k=st.integers(1, 12),
    rounds=st.integers(1, 2),
    data=st.data(),
)
def test_search_segment_equals_reference(docs, queries, k, rounds, data):
    # small and large documents sets exercise both the touched-list and the full-scan paths
    seq = np.asarray(data.draw(st.permutations(range(docs.n))), np.int64)
    live = (
        np.asarray(data.draw(st.lists(st.booleans(), min_size=docs.n, max_size=docs.n)), np.uint8)
        if data.draw(st.booleans())
        else np.ones(docs.n, np.uint8)
    )
    args = (queries, docs, seq, live, k, rounds)
    tuning = PRUNE_SMALL if data.draw(st.booleans()) else {}  # small segments: both paths
    short = data.draw(st.booleans())  # both posting ordinal types
    got = _run(kernels.search_segment, *args, short=short, **tuning)
    want = _run(reference.search_segment, *args, **tuning)
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


def test_sort_heaps_equals_reference():
    rng = np.random.default_rng(2)
    k, rows = 9, 40
    heaps = [
        np.zeros((rows, k), np.float32),
        np.full((rows, k), 99, np.int64),
        np.full((rows, k), -1, np.int64),
    ]
    top_n = np.zeros(rows, np.int64)
    for qi in range(rows):  # rows from empty to overfull, with tied scores (seqs are unique)
        for seq in rng.permutation(50)[: rng.integers(0, 3 * k)]:
            top_n[qi] = kernels.heap_push(
                heaps[0][qi],
                heaps[1][qi],
                heaps[2][qi],
                top_n[qi],
                np.float32(rng.integers(0, 5)),
                seq,
                rng.integers(0, 1000),
            )
    want = [h.copy() for h in heaps]
    reference.sort_heaps(*want, top_n)
    kernels.sort_heaps(*heaps, top_n)
    for got, exp in zip(heaps, want, strict=True):
        np.testing.assert_array_equal(got, exp)


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
    for g, w in zip(
        got, _run(reference.search_segment, queries, docs, seq, live, 5, 1), strict=True
    ):
        np.testing.assert_array_equal(g, w)
    _, scores, seqs, _ = got
    assert seqs[0].tolist() == [1, 2, 3, 4, 5] and scores[0].tolist() == [1.0] * 5
    rare = np.sort(seq[n - 20 :][seq[n - 20 :] != 0])[:5]
    assert seqs[1].tolist() == rare.tolist() and scores[1].tolist() == [1.0] * 5


def _skewed_case(seed: int, n: int = 3000, dim: int = 400):
    """Zipf-like term frequencies and long-tailed weights, as learned sparse vectors have."""
    rng = np.random.default_rng(seed)

    def batch(rows, nnz):
        out = []
        for _ in range(rows):
            terms = np.unique(np.minimum(rng.zipf(1.3, nnz) - 1, dim - 1))
            out.append(
                dict(zip(terms.tolist(), rng.lognormal(0, 1, terms.size).tolist(), strict=True))
            )
        return SparseVectors.from_dicts(out, dim=dim)

    docs, queries = batch(n, 40), batch(20, 25)
    return (
        docs,
        queries,
        rng.permutation(n).astype(np.int64),
        (rng.random(n) > 0.1).astype(np.uint8),
    )


def _search_sorted(impl, queries, arrays, seq, live, k):
    """One call of a search kernel on fresh heaps: (sizes, scores, seqs, slots), rows sorted."""
    top = (
        np.full((queries.n, k), -np.inf, np.float32),
        np.full((queries.n, k), 2**62, np.int64),
        np.full((queries.n, k), -1, np.int64),
        np.zeros(queries.n, np.int64),
    )
    impl(
        queries.indptr,
        queries.indices,
        queries.values,
        0,
        queries.n,
        *arrays,
        seq,
        live,
        0,
        *top,
        kernels.scratch(seq.size, queries.dim),
        **PRUNE_SMALL,
    )
    order = np.lexsort((top[1], -top[0].astype(np.float64)), axis=1)
    return [top[3]] + [np.take_along_axis(a, order, 1) for a in top[:3]]


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), k=st.sampled_from([1, 3, 10, 40]), top=st.integers(1, 16))
def test_pruned_search_equals_reference_on_skewed_corpora(seed, k, top):
    # the threshold is seeded early and most query terms turn non-essential: the pruned path
    docs, queries, seq, live = _skewed_case(seed)
    arrays = _segment_arrays(docs, top)
    got = _search_sorted(kernels.search_segment, queries, arrays, seq, live, k)
    want = _search_sorted(reference.search_segment, queries, arrays, seq, live, k)
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_allclose(got[1], want[1], rtol=1e-6)
    for g, w in zip(got[2:], want[2:], strict=True):
        np.testing.assert_array_equal(g, w)


def test_pruning_uses_the_term_bounds():
    # the pruned path really runs: with bounds that lie (each term's maximum understated) the
    # kernel skips documents it must not, so its answers change
    docs, queries, seq, live = _skewed_case(7)
    arrays = _segment_arrays(docs, 4)
    honest = _search_sorted(kernels.search_segment, queries, arrays, seq, live, 10)
    lying = list(arrays)
    lying[3] = arrays[3] * np.float32(0.1)  # term_max: more terms look non-essential
    lying[6] = arrays[6] * np.float32(0.5)  # term_scale: impact bounds below the weights
    lied = _search_sorted(kernels.search_segment, queries, lying, seq, live, 10)
    assert not np.array_equal(lied[3], honest[3])
