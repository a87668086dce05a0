"""benchmarks/topical_data.py: generated collections keep their source's topics and give every
query a relevant document; the old independent-terms recipe is the contrast."""

from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pytest

from sparsearch.sparse import SparseVectors
from tests.conftest import REPO

TOPICS, TOPIC_TERMS, COMMON, DIM = 20, 25, 100, 600


@pytest.fixture(scope="module")
def topical():
    spec = importlib.util.spec_from_file_location(
        "benchmarks_topical_data", REPO / "benchmarks" / "topical_data.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def _topic_of_term(term: np.ndarray) -> np.ndarray:
    """Terms 0..TOPICS*TOPIC_TERMS-1 belong to a topic; the rest are common (-1)."""
    return np.where(term < TOPICS * TOPIC_TERMS, term // TOPIC_TERMS, -1)


@pytest.fixture(scope="module")
def source() -> dict:
    """2,000 documents of 20 planted topics (10 topic terms + 5 common ones each) and 300
    queries, each written from one document (5 of its terms, 2 common ones)."""
    rng = np.random.default_rng(0)
    rows = []
    topic = rng.integers(0, TOPICS, 2000)
    for t in topic:
        own = t * TOPIC_TERMS + rng.choice(TOPIC_TERMS, 10, replace=False)
        common = TOPICS * TOPIC_TERMS + rng.choice(COMMON, 5, replace=False)
        terms = np.concatenate([own, common])
        weights = np.concatenate([rng.uniform(1.0, 3.0, 10), rng.uniform(0.05, 0.6, 5)])
        rows.append(dict(zip(terms.tolist(), weights.tolist(), strict=True)))
    docs = SparseVectors.from_dicts(rows, dim=DIM)
    targets = rng.choice(2000, 300, replace=False)
    queries = []
    for d in targets:
        di, dv = docs.row(d)
        pick = rng.choice(di.size, 5, replace=False)
        extra = TOPICS * TOPIC_TERMS + rng.choice(COMMON, 2, replace=False)
        q = dict(zip(di[pick].tolist(), (dv[pick] * 0.8).tolist(), strict=True))
        q.update({int(e): 0.3 for e in extra if int(e) not in q})
        queries.append(q)
    pairs = np.column_stack([np.arange(300), targets])
    return {"docs": docs, "queries": SparseVectors.from_dicts(queries, dim=DIM), "pairs": pairs}


@pytest.fixture(scope="module")
def generator(topical, source):
    model = topical.fit_queries(source["queries"], source["docs"], source["pairs"])
    return topical.TopicalGenerator(source["docs"], model, chunk=1000)


def _topic_purity(docs: SparseVectors) -> float:
    """Mean share of a document's topic terms that belong to its most frequent topic."""
    shares = []
    for i in range(docs.n):
        topics = _topic_of_term(docs.row(i)[0])
        topics = topics[topics >= 0]
        if topics.size:
            shares.append(np.bincount(topics).max() / topics.size)
    return float(np.mean(shares))


def test_documents_keep_the_source_topics_and_lengths(generator, source):
    docs, parents = generator.documents(3000, seed=1)
    assert docs.n == 3000 and parents.shape == (3000, 3)
    assert np.all(np.diff(parents[:, 0]) >= 0)  # stored in the source's order
    # lengths are the first parent's (background draws that repeat a term make a few shorter)
    first_parent_len = source["docs"].active_dims()[parents[:, 0]]
    assert np.all(docs.active_dims() <= first_parent_len)
    assert docs.active_dims().mean() >= 0.95 * first_parent_len.mean()
    # the other parents hold the first parent's strongest term: the same topic
    top_topic = _topic_of_term(generator.top[parents])
    assert np.mean(top_topic[:, 1:] == top_topic[:, :1]) > 0.95
    # co-occurrence survives: documents stay within one topic as the source's do, unlike the
    # independent-terms recipe, which mixes topics at random
    assert _topic_purity(source["docs"]) == 1.0
    assert _topic_purity(docs) > 0.9
    independent = SparseVectors.from_dicts(
        [
            dict.fromkeys(np.random.default_rng(i).choice(DIM, 15, replace=False).tolist(), 1.0)
            for i in range(500)
        ],
        dim=DIM,
    )
    assert _topic_purity(independent) < 0.6


def test_generation_is_seeded(generator):
    a, pa = generator.documents(500, seed=3)
    b, pb = generator.documents(500, seed=3)
    c, _ = generator.documents(500, seed=4)
    assert np.array_equal(pa, pb)
    assert np.array_equal(a.indptr, b.indptr) and np.array_equal(a.indices, b.indices)
    assert np.array_equal(a.values, b.values)
    assert not (a.indices.size == c.indices.size and np.array_equal(a.indices, c.indices))
    qa, ra = generator.queries(a, pa, 50, seed=3)
    qb, rb = generator.queries(b, pb, 50, seed=3)
    assert np.array_equal(ra, rb) and np.array_equal(qa.values, qb.values)


def test_queries_find_their_relevant_document(generator, source):
    docs, parents = generator.documents(3000, seed=2)
    queries, relevant = generator.queries(docs, parents, 200, seed=2)
    assert queries.n == 200 and relevant.shape == (200, 2)
    assert np.array_equal(relevant[:, 0], np.arange(200))
    # each query takes its length and its in-target share from a real pair: 5 of 7 terms
    shares = [np.isin(queries.row(q)[0], docs.row(d)[0]).mean() for q, d in relevant.tolist()]
    assert abs(np.mean(shares) - 5 / 7) < 0.1
    assert np.all(queries.active_dims() <= 7)
    # the target's topic is the real target's: exact search ranks it high (a known-item task)
    scores = (queries.to_scipy() @ docs.to_scipy().T).toarray()
    rank = (scores > scores[relevant[:, 0], relevant[:, 1]][:, None]).sum(axis=1)
    assert np.mean(1 / (rank + 1)) > 0.3
    target_topic = _topic_of_term(generator.top[parents[relevant[:, 1], 0]])
    real_topic = _topic_of_term(generator.top[source["pairs"][:, 1]])
    assert set(target_topic.tolist()) <= set(real_topic.tolist())


def test_query_model_rejects_missing_pairs(topical, source):
    with pytest.raises(ValueError, match="at least one"):
        topical.fit_queries(source["queries"], source["docs"], np.empty((0, 2), np.int64))


def test_a_query_model_of_other_documents_is_refused(topical, source):
    model = topical.fit_queries(source["queries"], source["docs"], source["pairs"])
    with pytest.raises(ValueError, match="other documents"):
        topical.TopicalGenerator(source["docs"][:100], model)
