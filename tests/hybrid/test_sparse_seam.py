"""The seam every searcher plugs into: a SparseRetriever over an index opened from disk, with a
payload filter, inside a fused pipeline and an evaluation."""

from __future__ import annotations

import numpy as np
import pytest

from sparsearch.errors import InvalidInputError
from sparsearch.eval import evaluate_retriever, sparsity_stats
from sparsearch.hybrid import RRF, BM25Retriever, Pipeline, SparseRetriever, index_corpus
from sparsearch.index import SparseIndex
from sparsearch.search import Hits, Searcher, SearchParams

pytestmark = pytest.mark.real_model


@pytest.fixture(scope="module")
def encoder():
    from sparsearch.models import SparseEncoder

    model = SparseEncoder("rasyosef/splade-tiny")
    model.max_seq_length = 128
    return model


def test_pipeline_searches_an_index_opened_from_disk_with_a_payload_filter(
    scifact_subset, encoder, tmp_path
):
    _, queries, corpus = scifact_subset
    halves = [{"half": "a" if i % 2 else "b", "n": i} for i in range(len(corpus))]
    index_corpus(encoder, corpus, payloads=halves, path=tmp_path / "idx", use_cache=False)
    opened = SparseIndex.open(tmp_path / "idx")
    assert isinstance(opened, Searcher)
    only_a = SearchParams(filter={"payload": {"half": "a"}}, return_payloads=True)
    sparse = SparseRetriever(encoder, opened, params=only_a)

    retrieval = sparse.retrieve(queries, k=5)
    # exactly the brute-force top 5 among the allowed documents, with their payloads
    doc_ids = list(corpus)
    allowed = np.array([p["half"] == "a" for p in halves])
    scores = retrieval.query_vectors.dot(encoder.encode_document(list(corpus.values())))
    for row, (_, hits) in enumerate(retrieval.run):
        masked = np.where(allowed, scores[row], -np.inf)
        best = np.argsort(-masked, kind="stable")[:5]
        assert [d for d, _ in hits] == [doc_ids[j] for j in best]
        np.testing.assert_allclose([s for _, s in hits], masked[best], rtol=1e-5)
        assert all(p["half"] == "a" for p in retrieval.run.payloads[row])
    assert set(retrieval.seconds) == {"encode", "search"}
    # the corpus statistics come from the searcher, not from vectors left on the retriever
    full = sparsity_stats(retrieval.query_vectors, encoder.encode_document(list(corpus.values())))
    assert sparsity_stats(retrieval.query_vectors, retrieval.doc_stats) == pytest.approx(full)

    hybrid = Pipeline([sparse, BM25Retriever(corpus)], fusion=RRF(k=60), depth=10)
    fused = hybrid.retrieve(queries, k=10)
    assert fused.query_vectors.n == len(queries) and fused.doc_stats == retrieval.doc_stats
    sparse_hits = {qid: {d for d, _ in hits} for qid, hits in retrieval.run}
    for qid, hits in fused.run:
        # every sparse hit is a filtered one; BM25 may add documents of either half
        assert sparse_hits[qid] <= {d for d, _ in hits}
    # a call can override the retriever's default parameters
    unfiltered = sparse.retrieve(queries, k=5, params=SearchParams()).run
    assert unfiltered.payloads is None
    assert any(not allowed[doc_ids.index(d)] for _, hits in unfiltered for d, _ in hits)


def test_evaluation_over_a_built_retriever_equals_evaluation_through_a_builder(
    scifact_subset, encoder, tmp_path
):
    ds, queries, corpus = scifact_subset
    dataset = type(ds)(
        ds.name,
        ds.split,
        {d: ds.corpus[d] for d in corpus},
        queries,
        {q: ds.qrels[q] for q in queries},
    )
    texts = dataset.doc_texts()
    index_corpus(encoder, texts, path=tmp_path / "idx", use_cache=False)
    built = SparseRetriever(encoder, SparseIndex.open(tmp_path / "idx"))
    from functools import partial

    via_builder = evaluate_retriever(
        partial(SparseRetriever.from_corpus, encoder, use_cache=False), dataset, k=10
    )
    assert evaluate_retriever(built, dataset, k=10) == via_builder
    assert via_builder["doc_active_dims"] > via_builder["query_active_dims"] > 0


def test_a_retriever_needs_a_searcher(encoder):
    with pytest.raises(InvalidInputError, match="searcher"):
        SparseRetriever(encoder, object())

    class Fixed:
        """Any object with the Searcher method plugs in (a backend, a client)."""

        def search(self, queries, k=10, *, params=None):
            ids = np.full((queries.n, k), None, object)
            ids[:, 0] = "only"
            scores = np.full((queries.n, k), -np.inf, np.float32)
            scores[:, 0] = 1.0
            return Hits(ids, scores)

    run = SparseRetriever(encoder, Fixed()).retrieve({"q": "anything"}, k=3).run
    assert run.to_dict() == {"q": {"only": 1.0}}
    assert SparseRetriever(encoder, Fixed()).retrieve({"q": "x"}, k=3).doc_stats is None
