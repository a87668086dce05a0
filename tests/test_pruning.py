"""Document pruning rules and two-phase search: the rules against a plain-Python reference on
random batches (ties and empty rows included), their errors, and `TwoPhaseSearcher` against exact
search and a brute-force reference of its own definition."""

from __future__ import annotations

from itertools import accumulate

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sparsearch.errors import InvalidInputError
from sparsearch.index import SparseIndex
from sparsearch.pruning import prune, split_query
from sparsearch.search import Filter, HasId, Match, Searcher, SearchParams
from sparsearch.sparse import SparseVectors
from sparsearch.two_phase import TwoPhaseSearcher
from tests.index.brute import FREE, GRID, sparse_batches

DIM = 24


def positive(batch: SparseVectors) -> SparseVectors:
    """The batch with every weight made positive (pruning is defined for SPLADE's weights)."""
    return SparseVectors(batch.indptr, batch.indices, np.abs(batch.values), batch.dim)


# the strategy's weight grid makes ties at every cut common (equal weights, ratio * max equal to
# a weight); its free floats exercise rounding
POSITIVE = sparse_batches(n_max=30, dim=DIM, nnz_max=10).map(positive)
RATIOS = st.one_of(st.sampled_from([0.25, 0.5, 0.75, 1.0]), st.floats(0.001, 1.0))


def reference(vectors: SparseVectors, rule: str, value: float) -> list[dict[int, float]]:
    """The rule applied row by row in plain Python (float64 sums and thresholds)."""
    out = []
    for row in vectors.to_dicts():
        ranked = sorted(row.items(), key=lambda item: (-item[1], item[0]))
        weights = [w for _, w in ranked]
        if rule == "top_k":
            kept = ranked[: int(value)]
        elif rule == "max_ratio":
            kept = [(t, w) for t, w in ranked if w >= value * max(weights)]
        elif rule == "alpha_mass":
            running = list(accumulate(weights))
            kept = [
                item for item, s in zip(ranked, running, strict=True) if s <= value * running[-1]
            ]
        else:
            kept = [(t, w) for t, w in ranked if w >= value]
        out.append(dict(sorted(kept)))
    return out


@settings(max_examples=150, deadline=None)
@given(
    vectors=POSITIVE,
    rule=st.sampled_from(["top_k", "max_ratio", "alpha_mass", "abs_value"]),
    ratio=RATIOS,
    k=st.integers(1, 12),
    threshold=st.one_of(GRID, FREE),
)
def test_each_rule_matches_the_reference(vectors, rule, ratio, k, threshold):
    value = {"top_k": k, "abs_value": threshold}.get(rule, ratio)
    pruned = prune(vectors, **{rule: value})
    assert pruned.to_dicts() == reference(vectors, rule, value)
    assert (pruned.n, pruned.dim, pruned.vocab) == (vectors.n, vectors.dim, vectors.vocab)
    SparseVectors(pruned.indptr, pruned.indices, pruned.values, pruned.dim)  # a valid batch


def test_ties_at_the_cut_keep_the_lower_token_ids():
    equal = SparseVectors.from_dicts([{7: 1.0, 2: 1.0, 5: 1.0, 9: 1.0}], dim=10)
    assert list(prune(equal, top_k=2).to_dicts()[0]) == [2, 5]
    assert list(prune(equal, alpha_mass=0.5).to_dicts()[0]) == [2, 5]  # 2 of 4 equal: exactly 0.5
    assert list(prune(equal, alpha_mass=0.49).to_dicts()[0]) == [2]
    assert prune(equal, max_ratio=1.0).to_dicts() == equal.to_dicts()  # all equal the maximum
    assert prune(equal, abs_value=1.0).to_dicts() == equal.to_dicts()


def test_alpha_mass_empties_a_row_whose_largest_weight_exceeds_the_share():
    vectors = SparseVectors.from_dicts([{0: 9.0, 1: 1.0}, {0: 1.0, 1: 1.0}], dim=2)
    assert prune(vectors, alpha_mass=0.8).to_dicts() == [{}, {0: 1.0}]
    assert prune(vectors, alpha_mass=1.0).to_dicts() == vectors.to_dicts()


def test_empty_rows_and_batches_stay_as_they_are():
    vocab = [f"t{i}" for i in range(4)]
    vectors = SparseVectors.from_dicts([{}, {"t1": 2.0, "t3": 1.0}, {}], vocab=vocab)
    for rule in ({"top_k": 1}, {"max_ratio": 0.9}, {"alpha_mass": 0.7}, {"abs_value": 1.5}):
        pruned = prune(vectors, **rule)
        assert pruned.to_dicts() == [{}, {"t1": 2.0}, {}]
        assert pruned.vocab == tuple(vocab)
    empty = SparseVectors.empty(4)
    assert prune(empty, alpha_mass=0.5).n == 0
    assert [part.n for part in split_query(empty, 0.5)] == [0, 0]


def test_a_large_batch_matches_the_reference_across_blocks():
    rng = np.random.default_rng(7)
    n, dim = 12_000, 30_522  # one wide row: the alpha-mass sums run in several blocks of rows
    active = rng.integers(0, 12, n)
    active[17] = 600
    rows = [
        dict(
            zip(
                rng.choice(dim, a, replace=False).tolist(),
                (rng.random(a) + 0.01).tolist(),
                strict=True,
            )
        )
        for a in active
    ]
    vectors = SparseVectors.from_dicts(rows, dim)
    for rule, value in (("alpha_mass", 0.9), ("max_ratio", 0.3), ("top_k", 5)):
        assert prune(vectors, **{rule: value}).to_dicts() == reference(vectors, rule, value)


@settings(max_examples=100, deadline=None)
@given(vectors=POSITIVE, ratio=st.one_of(st.just(0.0), RATIOS))
def test_split_query_parts_are_the_max_ratio_rule_and_the_rest(vectors, ratio):
    high, low = split_query(vectors, ratio)
    assert high.to_dicts() == reference(vectors, "max_ratio", ratio)
    for whole, h, lo in zip(vectors.to_dicts(), high.to_dicts(), low.to_dicts(), strict=True):
        assert not set(h) & set(lo)
        assert {**h, **lo} == whole
        if whole:
            assert max(whole.values()) in h.values()
    if ratio == 0:
        assert low.nnz == 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "got none"),
        ({"top_k": 3, "max_ratio": 0.5}, "got top_k and max_ratio"),
        ({"top_k": 0}, "top_k must be at least 1"),
        ({"top_k": -2}, "top_k must be at least 1"),
        ({"top_k": 2.0}, "top_k must be an integer"),
        ({"top_k": True}, "top_k must be an integer"),
        ({"max_ratio": 0.0}, r"max_ratio must be in \(0, 1\]"),
        ({"max_ratio": 1.5}, r"max_ratio must be in \(0, 1\]"),
        ({"alpha_mass": -0.1}, r"alpha_mass must be in \(0, 1\]"),
        ({"alpha_mass": float("nan")}, "alpha_mass must be finite"),
        ({"alpha_mass": "0.5"}, "alpha_mass must be a number"),
        ({"abs_value": 0}, "abs_value must be positive"),
        ({"abs_value": float("inf")}, "abs_value must be finite"),
    ],
)
def test_bad_rules_are_named(kwargs, message):
    vectors = SparseVectors.from_dicts([{0: 1.0}], dim=2)
    with pytest.raises(InvalidInputError, match=message):
        prune(vectors, **kwargs)


def test_bad_vectors_and_ratios_are_named():
    with pytest.raises(InvalidInputError, match="expected SparseVectors"):
        prune({0: 1.0}, top_k=1)
    signed = SparseVectors.from_dicts([{0: 1.0}, {0: 2.0, 1: -0.5}], dim=2)
    with pytest.raises(InvalidInputError, match="row 1: weight -0.5 is not positive"):
        prune(signed, max_ratio=0.5)
    with pytest.raises(InvalidInputError, match="row 1: weight -0.5 is not positive"):
        split_query(signed, 0.5)
    for ratio in (-0.1, 1.01):
        with pytest.raises(InvalidInputError, match=r"ratio must be in \[0, 1\]"):
            split_query(signed[:1], ratio)


# ---------------------------------------------------------------------------- two-phase search


def indexed(docs: SparseVectors, ids: list, payloads: list | None = None) -> SparseIndex:
    """An index of ``docs`` added in two batches (so it has two segments)."""
    index = SparseIndex(dim=DIM)
    half = docs.n // 2
    for part in (slice(0, half), slice(half, docs.n)):
        rows = np.arange(docs.n)[part]
        if rows.size:
            index.add([ids[i] for i in rows], docs[rows], payloads and [payloads[i] for i in rows])
    return index


def two_phase_reference(docs, ids, queries, ratio, k, allowed=None):
    """The definition: among the documents sharing a high-weight token with the query, the top k
    by full score, ties by high-token score, then insertion order (brute force)."""
    high, _ = split_query(queries, ratio)
    full_scores = queries.dot(docs)
    high_scores = high.dot(docs)
    shares = (high.to_scipy() @ (docs.to_scipy() > 0).T.astype(np.float32)).toarray() > 0
    out_ids = np.full((queries.n, k), None, object)
    out_scores = np.full((queries.n, k), -np.inf, np.float32)
    for q in range(queries.n):
        cand = np.flatnonzero(shares[q] & (allowed if allowed is not None else True))
        best = cand[np.lexsort((cand, -high_scores[q, cand], -full_scores[q, cand]))][:k]
        out_ids[q, : best.size] = [ids[i] for i in best]
        out_scores[q, : best.size] = full_scores[q, best]
    return out_ids, out_scores


def same(hits, ids: np.ndarray, scores: np.ndarray) -> None:
    got = hits.ids.astype(object)
    got[np.isneginf(hits.scores)] = None
    assert got.tolist() == ids.tolist()
    np.testing.assert_allclose(hits.scores, scores, rtol=0, atol=1e-6)


CORPORA = st.tuples(
    sparse_batches(n_min=1, n_max=40, dim=DIM).map(positive),
    sparse_batches(n_min=1, n_max=6, dim=DIM).map(positive),
)


@settings(max_examples=60, deadline=None)
@given(corpus=CORPORA, k=st.integers(1, 8), int_ids=st.booleans(), min_window=st.integers(0, 5))
def test_ratio_zero_is_exact_search(corpus, k, int_ids, min_window):
    docs, queries = corpus
    ids = list(range(0, 3 * docs.n, 3)) if int_ids else [f"d{i}" for i in range(docs.n)]
    index = indexed(docs, ids)
    exact = index.search(queries, k)
    hits = TwoPhaseSearcher(index, prune_ratio=0.0, expansion=1.0, min_window=min_window).search(
        queries, k
    )
    assert hits.ids.dtype == exact.ids.dtype
    assert hits.ids.tolist() == exact.ids.tolist()
    assert hits.scores.tolist() == exact.scores.tolist()  # bit for bit: same sums, same order


@settings(max_examples=60, deadline=None)
@given(corpus=CORPORA, k=st.integers(1, 8), ratio=RATIOS)
def test_a_window_covering_every_match_is_the_reference(corpus, k, ratio):
    docs, queries = corpus
    ids = [f"d{i}" for i in range(docs.n)]
    searcher = TwoPhaseSearcher(indexed(docs, ids), prune_ratio=ratio, min_window=docs.n)
    same(searcher.search(queries, k), *two_phase_reference(docs, ids, queries, ratio, k))


@settings(max_examples=40, deadline=None)
@given(corpus=CORPORA, k=st.integers(1, 8), ratio=RATIOS, data=st.data())
def test_filters_apply_to_the_candidates(corpus, k, ratio, data):
    docs, queries = corpus
    ids = [f"d{i}" for i in range(docs.n)]
    langs = data.draw(st.lists(st.sampled_from(["en", "fr"]), min_size=docs.n, max_size=docs.n))
    index = indexed(docs, ids, [{"lang": lang} for lang in langs])
    searcher = TwoPhaseSearcher(index, prune_ratio=ratio, expansion=1.0, min_window=docs.n)
    allowed = np.array([lang == "en" for lang in langs])
    params = SearchParams(filter=Filter(must=(Match("lang", "en"),)), return_payloads=True)
    hits = searcher.search(queries, k, params=params)
    same(hits, *two_phase_reference(docs, ids, queries, ratio, k, allowed))
    real = ~np.isneginf(hits.scores)
    assert all(p == {"lang": "en"} for p in hits.payloads[real])
    assert all(p is None for p in hits.payloads[~real])


def test_a_small_window_reranks_only_the_first_phase_candidates():
    # query: token 0 is high (3.0), token 1 low (1.0); b has the best high score, c the best
    # full score but shares only the low token; a window of 2 finds b and a, ranked by full score
    docs = SparseVectors.from_dicts([{0: 1.0, 1: 4.0}, {0: 1.5}, {1: 9.0}, {0: 0.5}], dim=DIM)
    index = indexed(docs, ["a", "b", "c", "e"])
    query = SparseVectors.from_dicts([{0: 3.0, 1: 1.0}], dim=DIM)
    hits = TwoPhaseSearcher(index, prune_ratio=0.5, expansion=2.0).search(query, k=1)
    assert hits.row(0) == [("a", 7.0)]
    assert TwoPhaseSearcher(index, prune_ratio=0.5, expansion=1.0).search(query, k=1).row(0) == [
        ("b", 4.5)
    ]
    assert index.search(query, k=1).row(0) == [("c", 9.0)]


def test_ties_in_the_full_score_keep_the_first_phase_order():
    # 64 documents with the same full score (2a + b = 40) and high-token scores 2a rising with
    # insertion: phase 1 ranks the last inserted first, and the tie keeps that order
    docs = SparseVectors.from_dicts([{0: 0.25 * i, 1: 40 - 0.5 * i} for i in range(1, 65)], dim=DIM)
    ids = [f"d{i}" for i in range(1, 65)]
    query = SparseVectors.from_dicts([{0: 2.0, 1: 1.0}], dim=DIM)
    hits = TwoPhaseSearcher(indexed(docs, ids), prune_ratio=0.6).search(query, k=64)
    assert hits.ids[0].tolist() == ids[::-1]
    assert set(hits.scores[0].tolist()) == {40.0}


def test_fewer_matches_than_k_are_padded_like_the_index():
    docs = SparseVectors.from_dicts([{0: 1.0}, {1: 2.0}, {2: 1.0}], dim=DIM)
    for ids, pad in (([10, 11, 12], -1), (["a", "b", "c"], None)):
        index = indexed(docs, ids)
        queries = SparseVectors.from_dicts([{0: 1.0, 1: 1.0}, {}, {5: 1.0}], dim=DIM)
        hits = TwoPhaseSearcher(index, prune_ratio=0.4).search(queries, k=4)
        exact = index.search(queries, k=4)
        assert hits.ids.shape == hits.scores.shape == (3, 4)
        assert hits.ids.dtype == exact.ids.dtype
        assert hits.ids.tolist() == exact.ids.tolist()
        assert hits.ids[1].tolist() == [pad] * 4 and np.isneginf(hits.scores[1:]).all()
        assert hits.payloads is None


def test_an_id_filter_and_an_empty_index():
    docs = SparseVectors.from_dicts([{0: 1.0}, {0: 2.0}, {0: 3.0}], dim=DIM)
    index = indexed(docs, ["a", "b", "c"])
    query = SparseVectors.from_dicts([{0: 1.0}], dim=DIM)
    searcher = TwoPhaseSearcher(index)
    assert searcher.search(query, 5, params=SearchParams(filter=HasId(["a", "c"]))).row(0) == [
        ("c", 3.0),
        ("a", 1.0),
    ]
    assert TwoPhaseSearcher(SparseIndex(dim=DIM)).search(query, 2).row(0) == []


def test_it_is_a_searcher_and_names_bad_settings():
    index = SparseIndex(dim=DIM)
    searcher = TwoPhaseSearcher(index, min_window=50)
    assert isinstance(searcher, Searcher)
    assert searcher.window(3) == 50 and searcher.window(20) == 100
    for kwargs, message in (
        ({"prune_ratio": 1.5}, r"prune_ratio must be in \[0, 1\]"),
        ({"expansion": 0.5}, "expansion must be a finite number >= 1"),
        ({"expansion": float("inf")}, "expansion must be a finite number >= 1"),
        ({"expansion": "5"}, "expansion must be a number"),
        ({"min_window": -1}, "min_window must be an integer >= 0"),
        ({"min_window": 2.5}, "min_window must be an integer >= 0"),
    ):
        with pytest.raises(InvalidInputError, match=message):
            TwoPhaseSearcher(index, **kwargs)
    with pytest.raises(InvalidInputError, match="must have search"):
        TwoPhaseSearcher(object())
    with pytest.raises(InvalidInputError, match="k must be a positive integer"):
        searcher.search(SparseVectors.empty(DIM), 0)
    with pytest.raises(InvalidInputError, match="queries must be SparseVectors"):
        searcher.search([{0: 1.0}], 1)
