"""Fixtures for the training tests: the real splade-tiny, small real-text datasets."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
IDF_JSON = SHARED / "models" / "opensearch-bert-uncased-idf" / "idf.json"


@pytest.fixture()
def splade_tiny():
    from sparsearch.models import SparseEncoder

    model = SparseEncoder("rasyosef/splade-tiny")
    model.max_seq_length = 24
    return model


@pytest.fixture()
def inference_free_model():
    """splade-tiny on the document route, IDF static weights on the query route."""
    from sparsearch.models import (
        MLMTransformer,
        Router,
        SparseEncoder,
        SparseStaticEmbedding,
        SpladePooling,
    )

    mlm = MLMTransformer("rasyosef/splade-tiny", max_seq_length=24)
    static = SparseStaticEmbedding.from_json(IDF_JSON, mlm.tokenizer)
    router = Router.for_query_document([static], [mlm, SpladePooling()])
    return SparseEncoder(modules=[router])


@pytest.fixture(scope="session")
def scifact_pairs(shared_data):
    """32 real (query, positive, negative_1) rows from SciFact train (BM25 negatives)."""
    from datasets import Dataset

    from sparsearch.eval.beir import load_beir
    from sparsearch.train.mining import mine_hard_negatives

    train = load_beir(shared_data / "scifact", "train")
    docs = train.doc_texts()
    rows = {"query": [], "positive": []}
    for qid, judged in list(train.qrels.items())[:32]:
        did = next(iter(judged))
        rows["query"].append(train.queries[qid])
        rows["positive"].append(docs[did][:300])
    corpus = [text[:300] for text in list(docs.values())[:1500]] + rows["positive"]
    return mine_hard_negatives(Dataset.from_dict(rows), corpus, "bm25", num_negatives=1, range_max=20)
