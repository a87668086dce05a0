"""Dense retrieval (real all-MiniLM-L6-v2) and the cross-encoder rerank stage.

No cross-encoder weights exist offline: the rerank tests build a tiny, randomly initialised
cross-encoder from a BertConfig. They check the stage's mechanics (which pairs are scored, how the
scores become the run), not ranking quality.
"""

from __future__ import annotations

import numpy as np
import pytest

from sparsearch.errors import InvalidInputError, UnknownIdError
from sparsearch.hybrid import (
    RRF,
    BM25Retriever,
    CrossEncoderReranker,
    DenseRetriever,
    Pipeline,
)
from sparsearch.run import Run

MINILM = "sentence-transformers/all-MiniLM-L6-v2"


pytestmark = pytest.mark.real_model  # real SciFact text and real models


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("vectors")


@pytest.fixture(scope="module")
def minilm():
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(MINILM, device="cpu")


@pytest.fixture(scope="module")
def tiny_cross_encoder(tmp_path_factory):
    from sentence_transformers import CrossEncoder
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    path = tmp_path_factory.mktemp("tiny-cross-encoder")
    tokenizer = AutoTokenizer.from_pretrained("rasyosef/splade-tiny")
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        num_labels=1,
    )
    BertForSequenceClassification(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return CrossEncoder(str(path), device="cpu")


def test_dense_search_equals_sentence_transformers_semantic_search(
    scifact_subset, minilm, cache_dir
):
    from sentence_transformers.util import semantic_search

    _, queries, corpus = scifact_subset
    dense = DenseRetriever.from_corpus(minilm, corpus, cache_dir=cache_dir)
    run = dense.retrieve(queries, k=10).run.to_dict()
    q_emb = minilm.encode(list(queries.values()), convert_to_tensor=True)
    d_emb = minilm.encode(list(corpus.values()), convert_to_tensor=True)
    reference = semantic_search(q_emb, d_emb, top_k=10)
    doc_ids = list(corpus)
    for qid, hits in zip(queries, reference, strict=True):
        expected = {doc_ids[h["corpus_id"]]: h["score"] for h in hits}
        assert run[qid].keys() == expected.keys()
        assert sorted(run[qid].values()) == pytest.approx(sorted(expected.values()), abs=1e-5)
    # the faiss path (above the exact threshold) and the cached embeddings give the same run
    big = DenseRetriever.from_corpus(minilm, corpus, cache_dir=cache_dir, exact_max_docs=10)
    faiss_run = big.retrieve(queries, k=10).run.to_dict()
    for qid in queries:
        assert faiss_run[qid].keys() == run[qid].keys()
        assert list(faiss_run[qid].values()) == pytest.approx(list(run[qid].values()), abs=1e-5)
    assert len(list(cache_dir.glob("*.dense.npy"))) == 1
    with pytest.raises(InvalidInputError):
        DenseRetriever.from_corpus(minilm, {})


def test_reranker_scores_each_candidate_with_the_cross_encoder(tiny_cross_encoder, scifact_subset):
    _, queries, corpus = scifact_subset
    run = BM25Retriever(corpus).retrieve(queries, k=20).run
    reranker = CrossEncoderReranker(tiny_cross_encoder, corpus, depth=5, batch_size=16)
    reranked = reranker.rerank(run, queries).to_dict()
    for qid, docs in reranked.items():
        best5 = {d for d, _ in run.select([qid]).row(0)[:5]}
        assert set(docs) == best5
        expected = tiny_cross_encoder.predict([(queries[qid], corpus[d]) for d in docs])
        assert np.allclose(list(docs.values()), expected, atol=1e-5)
    with pytest.raises(UnknownIdError):
        reranker.rerank(Run.from_dict({"q": {"nope": 1.0}}), {"q": "x"})


def test_pipeline_retrieves_fuses_reranks_and_cuts(
    tiny_cross_encoder, minilm, scifact_subset, cache_dir
):
    _, queries, corpus = scifact_subset
    pipeline = Pipeline(
        [BM25Retriever(corpus), DenseRetriever.from_corpus(minilm, corpus, cache_dir=cache_dir)],
        fusion=RRF(k=60),
        reranker=CrossEncoderReranker(tiny_cross_encoder, corpus, depth=8),
        depth=8,
    )
    retrieval = pipeline.retrieve(queries, k=3)
    run = retrieval.run.to_dict()
    assert set(run) == set(queries)
    assert all(len(docs) == 3 for docs in run.values())
    assert {"0.search", "1.encode", "fuse", "rerank"} <= set(retrieval.seconds)
    assert retrieval.query_vectors is None  # no learned-sparse stage
    with pytest.raises(InvalidInputError, match="fusion"):
        Pipeline([BM25Retriever(corpus), BM25Retriever(corpus)])
