"""The pruned search path (segments of at least ``PRUNE_MIN_DOCS`` documents) vs brute force.

Two corpora of 80,000 documents added in one batch (one segment, two ranges of 65,536 documents):
random sparse vectors (Zipf-like term frequencies, float weights) and topical ones (50 topics
with their own terms, weights on a grid of 0.25, exact and near duplicates, so the k-th score is
often shared by several documents). Each is searched fresh, with ~10 % tombstones (among them the
fresh top hit of every other query) and after ``compact()`` (~72,000 documents: still pruned);
without a filter, with id filters (~50 %, ~1 %), a payload filter and both; k = 1, 10, 100. Every
answer is compared with scipy's ``Q @ D.T`` and an exact top-k (score desc, then insertion order).

The kernel chooses its path per query, so the tests check that it prunes: the segment must be
prunable (``pruned_share`` mirrors the kernel's choice and the tests require most queries to
prune where the engine can), and the kernel's answers must change when its bounds lie.

The heavy tests are marked ``numba_only`` (with NUMBA_DISABLE_JIT=1 each 80,000-document build
alone takes ~20 s); ``test_pruned_search_on_short_documents_equals_brute_force`` is a small
variant (75,000 documents of 3-8 terms, 12 queries) that the numba-free leg runs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from sparsearch.index import SparseIndex, kernels
from sparsearch.search import Filter, SearchParams
from tests.index.brute import brute_force
from tests.index.pruned_corpora import (
    Corpus,
    random_corpus,
    topical_corpus,
)

KS = (1, 10, 100)
TIE = 1e-6  # scores this close tie: either order is right (exact ties: insertion order)

# filter name -> (share of ids allowed or None, payload condition or None)
FILTERS = {
    "none": (None, None),
    "ids-50%": (0.5, None),
    "ids-1%": (0.01, None),
    "payload": (None, {"group": 1}),
    "ids-50%+payload": (0.5, {"group": 2}),
}
# where the engine can prune (its seeded heap fills): (filter, k) -> least share of queries that
# must. Elsewhere the 8 x 16 seeded documents hold fewer than k allowed ones and the kernel
# falls back to its exhaustive path, which is compared all the same.
MUST_PRUNE = {
    ("none", 1): 0.9,
    ("none", 10): 0.9,
    ("none", 100): 0.9,
    ("ids-50%", 1): 0.9,
    ("ids-50%", 10): 0.9,
    ("ids-1%", 1): 0.5,
    ("payload", 1): 0.9,
    ("payload", 10): 0.9,
    ("ids-50%+payload", 1): 0.9,
    ("ids-50%+payload", 10): 0.5,
}


# ---------------------------------------------------------------------------- index states


@dataclass
class State:
    """An index over a corpus: the live corpus rows, and the corpus row of each local ordinal."""

    corpus: Corpus
    index: SparseIndex
    live: np.ndarray
    rows: np.ndarray


def build(corpus: Corpus) -> SparseIndex:
    index = SparseIndex()
    index.add(corpus.ids, corpus.docs, corpus.payloads)  # one batch: one segment
    return index


def fresh_state(corpus: Corpus) -> State:
    n = corpus.docs.n
    return State(corpus, build(corpus), np.ones(n, bool), np.arange(n))


def deleted_state(corpus: Corpus, compact: bool, seed: int = 1) -> State:
    """~10 % of the documents deleted: the fresh top hit of every other query, then random ones."""
    n = corpus.docs.n
    index = build(corpus)
    top = brute_top_k(corpus, np.ones(n, bool), 1)[0][::2, 0]
    rng = np.random.default_rng(seed)
    gone = np.union1d(top[top >= 0], rng.choice(n, n // 10, replace=False))
    index.delete([corpus.ids[r] for r in gone.tolist()])
    live = np.ones(n, bool)
    live[gone] = False
    rows = np.arange(n)
    if compact:
        index.compact()
        rows = np.flatnonzero(live)
    assert index.stats()["deleted"] == (0 if compact else gone.size)
    assert len(index) == n - gone.size
    return State(corpus, index, live, rows)


def filter_for(corpus: Corpus, name: str) -> tuple[Filter | None, np.ndarray]:
    """The search filter ``FILTERS[name]`` and the corpus rows it allows."""
    share, payload = FILTERS[name]
    allowed = np.ones(corpus.docs.n, bool)
    ids = None
    if share is not None:
        picked = np.random.default_rng(int(share * 1000)).random(corpus.docs.n) < share
        ids = [corpus.ids[r] for r in np.flatnonzero(picked).tolist()]
        ids.append("not-in-the-index")  # unknown ids are ignored
        allowed &= picked
    if payload is not None:
        allowed &= [
            p is not None and all(p.get(f) == v for f, v in payload.items())
            for p in corpus.payloads
        ]
    if ids is None and payload is None:
        return None, allowed
    return Filter(ids=ids, payload=payload), allowed


# ---------------------------------------------------------------------------- brute force


def brute_top_k(corpus: Corpus, allowed: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per query the rows (-1: padding) and scores (-inf) of the exact top-k among ``allowed``.

    ``brute.brute_force``'s rule (matching documents only; score desc, then the earlier row) on
    the corpus's score matrix, with a partition first: 200 queries x 80,000 documents stay cheap.
    """
    n_q = corpus.queries.n
    rows = np.full((n_q, k), -1, np.int64)
    scores = np.full((n_q, k), -np.inf, np.float32)
    for qi in range(n_q):
        cand = np.flatnonzero(corpus.matched[qi] & allowed)
        s = corpus.scores[qi, cand]
        if cand.size > k:
            keep = s >= np.partition(s, cand.size - k)[cand.size - k]
            cand, s = cand[keep], s[keep]
        order = np.lexsort((cand, -s.astype(np.float64)))[:k]
        rows[qi, : order.size] = cand[order]
        scores[qi, : order.size] = s[order]
    return rows, scores


def _close(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    with np.errstate(invalid="ignore"):  # -inf padding on both sides
        return (a == b) | (np.abs(a - b) <= TIE * (1 + np.abs(b)))


def mismatches(
    hits, corpus: Corpus, allowed: np.ndarray, want_rows: np.ndarray, want_scores: np.ndarray
) -> list[str]:
    """Why ``hits`` is not the exact top-k, one line per query that is wrong (empty: right).

    Ids must equal the reference's, except where the two documents' scores tie within ``TIE``
    without being equal (an exact tie goes to the earlier insertion); scores must equal the
    reference's at each rank, and the returned document's own score, within ``TIE``.
    """
    want_ids = corpus.id_array()[want_rows]
    problems = []
    for qi in range(want_rows.shape[0]):
        got_ids, got_scores = hits.ids[qi].tolist(), hits.scores[qi]
        if got_ids == want_ids[qi].tolist() and _close(got_scores, want_scores[qi]).all():
            continue
        want = list(zip(want_ids[qi].tolist(), want_scores[qi].tolist(), strict=True))
        detail = (
            f"query {qi}: want {want}, got {list(zip(got_ids, got_scores.tolist(), strict=True))}"
        )
        real = [doc_id for doc_id in got_ids if doc_id is not None]
        got_rows = np.array([corpus.row_of.get(doc_id, -1) for doc_id in real], np.int64)
        m = len(real)
        if [i is None for i in got_ids] != (want_rows[qi] < 0).tolist():
            problems.append(f"padding differs; {detail}")
        elif len(set(real)) < m or (got_rows < 0).any():
            problems.append(f"unknown or repeated ids; {detail}")
        elif not (corpus.matched[qi, got_rows] & allowed[got_rows]).all():
            problems.append(f"a document that is not allowed or does not match; {detail}")
        elif not (
            _close(got_scores[:m], corpus.scores[qi, got_rows]).all()
            and _close(got_scores, want_scores[qi]).all()
        ):
            problems.append(f"scores differ; {detail}")
        else:
            swapped = np.flatnonzero(got_rows != want_rows[qi, :m])
            if (corpus.scores[qi, got_rows[swapped]] == want_scores[qi, swapped]).any():
                problems.append(f"an exact tie not broken by insertion order; {detail}")
    return problems


def check_search(state: State, flt: str, ks=KS, must_prune=MUST_PRUNE) -> None:
    """Search ``state`` with filter ``flt`` for each k: equals brute force, prunes as required."""
    corpus = state.corpus
    search_filter, allowed = filter_for(corpus, flt)
    allowed &= state.live
    want_rows, want_scores = brute_top_k(corpus, allowed, max(ks))
    problems = []
    for k in ks:
        share = pruned_share(state, allowed, k)
        assert share >= must_prune.get((flt, k), 0.0), f"{share:.0%} of the queries prune, k={k}"
        params = SearchParams(filter=search_filter) if search_filter else None
        hits = state.index.search(corpus.queries, k, params=params)
        assert hits.ids.shape == hits.scores.shape == (corpus.queries.n, k)
        found = mismatches(hits, corpus, allowed, want_rows[:, :k], want_scores[:, :k])
        problems += [f"k={k} ({share:.0%} of queries pruned) {p}" for p in found]
    assert not problems, f"{len(problems)} wrong rows; first:\n" + "\n".join(problems[:3])


# ---------------------------------------------------------------------------- the pruned path


def only_segment(state: State):
    """The index's one segment, checked to be one the kernel prunes (its ``search_segment``)."""
    assert state.index.stats()["segments"] == 1
    (seg,) = state.index.snapshot().segments
    # search_segment: prune = prunable and n >= min_docs, and every query weight >= 0
    assert seg.n > 1 << 16 and seg.n >= kernels.PRUNE_MIN_DOCS, seg.n
    assert seg.nonneg and seg.search_arrays()[-1] is True  # the kernel's `prunable`
    assert (state.corpus.queries.values >= 0).all()
    return seg


def pruned_share(state: State, allowed: np.ndarray, k: int) -> float:
    """The share of queries for which the kernel takes its pruned path.

    On a prunable segment (:func:`only_segment`) a query prunes when the exact scores of the top
    documents of its ``SEED_TERMS`` strongest terms (query weight x the term's largest weight)
    that the search may return fill its heap of k with a positive k-th score.
    """
    seg = only_segment(state)
    term_max, top_indptr, top_docs = seg.bounds[:3]
    eligible = allowed[state.rows]  # by local ordinal
    queries = state.corpus.queries
    pruned = 0
    for qi in range(queries.n):
        terms, weights = queries.row(qi)
        strongest = terms[np.argsort(-(weights * term_max[terms]))[: kernels.SEED_TERMS]]
        seeds = np.unique(
            np.concatenate([top_docs[top_indptr[t] : top_indptr[t + 1]] for t in strongest])
        )
        seeds = seeds[eligible[seeds]]
        if seeds.size >= k:
            scores = state.corpus.scores[qi, state.rows[seeds]]
            pruned += np.partition(scores, seeds.size - k)[seeds.size - k] > 0
    return pruned / queries.n


def run_kernel(state: State, k: int, arrays=None, **tuning) -> tuple[np.ndarray, ...]:
    """``kernels.search_segment`` on the one segment, one thread: (sizes, scores, seqs, slots)."""
    seg = only_segment(state)
    queries = state.corpus.queries
    n = queries.n
    top = (
        np.full((n, k), -np.inf, np.float32),
        np.full((n, k), np.iinfo(np.int64).max, np.int64),
        np.full((n, k), -1, np.int64),
        np.zeros(n, np.int64),
    )
    kernels.search_segment(
        queries.indptr,
        queries.indices,
        queries.values,
        0,
        n,
        *(arrays or seg.search_arrays()),
        seg.seq,
        (~seg.deleted).view(np.uint8),
        0,
        *top,
        kernels.scratch(seg.n, seg.dim),
        **tuning,
    )
    kernels.sort_heaps(*top[:3], top[3])
    return top[3], *top[:3]


# ---------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module", params=["random", "topical"])
def corpus(request) -> Corpus:
    return random_corpus(0) if request.param == "random" else topical_corpus(0)


@pytest.fixture(scope="module")
def fresh(corpus) -> State:
    return fresh_state(corpus)


@pytest.fixture(scope="module")
def deleted(corpus) -> State:
    return deleted_state(corpus, compact=False)


@pytest.fixture(scope="module")
def compacted(corpus) -> State:
    return deleted_state(corpus, compact=True)


# ---------------------------------------------------------------------------- tests


@pytest.mark.numba_only
@pytest.mark.parametrize("flt", list(FILTERS))
@pytest.mark.parametrize("state", ["fresh", "deleted", "compacted"])
def test_pruned_search_equals_brute_force(request, corpus, state, flt):
    check_search(request.getfixturevalue(state), flt)


@pytest.mark.numba_only
def test_pruned_kernel_equals_exhaustive_kernel_and_reads_the_bounds(deleted):
    k = 10
    exhaustive = run_kernel(deleted, k, min_docs=deleted.corpus.docs.n + 1)
    for share in (0.0, kernels.ESSENTIAL_SHARE, 0.6, 1.0):  # more or fewer non-essential terms
        for got, want in zip(run_kernel(deleted, k, share=share), exhaustive, strict=True):
            np.testing.assert_array_equal(got, want)
    # bounds that lie (impacts below the weights) change the answers: the pruned path really ran
    lying = list(only_segment(deleted).search_arrays())
    lying[6] = lying[6] * np.float32(0.5)  # term_scale
    lied = run_kernel(deleted, k, arrays=tuple(lying))
    assert not np.array_equal(lied[3], exhaustive[3])


@pytest.mark.numba_only
def test_corpora_make_pruning_work(corpus, fresh):
    rows, scores = brute_top_k(corpus, fresh.live, 100)
    real = rows >= 0
    # the answers lie in both ranges of 65,536 documents
    assert (rows[real] >= 1 << 16).mean() > 0.05 and (rows[real] < 1 << 16).mean() > 0.5
    if corpus.name == "topical":  # the k-th score is often shared: ties at the threshold
        for k, least in ((10, 0.2), (100, 0.4)):
            at_kth = scores == scores[:, k - 1 : k]
            assert (at_kth.sum(1) > 1).mean() > least


@pytest.mark.numba_only
def test_brute_top_k_equals_brute_py(corpus, deleted):
    # one score matrix masked per case gives what the shared reference gives on the live docs
    _, allowed = filter_for(corpus, "ids-50%")
    rows = np.flatnonzero(allowed & deleted.live)
    queries = corpus.queries[np.arange(20)]
    want_ids, want_scores = brute_force(
        corpus.docs[rows], [corpus.ids[r] for r in rows.tolist()], queries, 100
    )
    got_rows, got_scores = brute_top_k(corpus, allowed & deleted.live, 100)
    assert corpus.id_array()[got_rows[:20]].tolist() == want_ids.tolist()
    np.testing.assert_array_equal(got_scores[:20], want_scores)


@pytest.mark.parametrize("compact", [False, True])
def test_pruned_search_on_short_documents_equals_brute_force(compact):
    # small enough for pure-Python kernels (NUMBA_DISABLE_JIT=1, ~15 s each): 75,000 documents of
    # 3-8 terms; ~67,500 after compact(), still pruned
    corpus = random_corpus(5, n=75_000, dim=400, nnz=(3, 8), q_nnz=(4, 10), n_queries=12)
    state = deleted_state(corpus, compact=compact)
    # k = 100 prunes for half of these queries only: 8 x 16 seeded documents overlap more
    must_prune = {key: share for key, share in MUST_PRUNE.items() if key[1] <= 10}
    for flt in FILTERS:
        check_search(state, flt, must_prune=must_prune)
