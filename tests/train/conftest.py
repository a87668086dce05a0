"""Fixtures for the training tests: hand-written (query, positive, negative) rows for the tiny
random model, and the real splade-tiny (loaded once per session, copied per test)."""

from __future__ import annotations

import copy

import pytest

from tests.conftest import TINY_DOCS, TINY_QUERIES, real_model

SPLADE = "rasyosef/splade-tiny"


@pytest.fixture(scope="session")
def tiny_pairs():
    """32 distinct (query, positive, negative_1) rows over the tiny vocabulary."""
    from datasets import Dataset

    docs = list(TINY_DOCS.values())
    rows = {"query": [], "positive": [], "negative_1": []}
    for i, query in enumerate(TINY_QUERIES):
        (title, text), (_, negative) = docs[i], docs[(i + 5) % len(docs)]
        for q, positive in ((query, text), (f"{query} please", f"{title}: {text}")):
            rows["query"].append(q)
            rows["positive"].append(positive)
            rows["negative_1"].append(negative if q == query else f"{negative} {title}")
    return Dataset.from_dict(rows)


@pytest.fixture(scope="session")
def _splade_tiny():
    from sparsearch.models import SparseEncoder

    model = SparseEncoder(real_model(SPLADE))
    model.max_seq_length = 24
    return model


@pytest.fixture()
def splade_tiny(_splade_tiny):
    """The real rasyosef/splade-tiny (max_seq_length 24); a fresh copy per test."""
    return copy.deepcopy(_splade_tiny)


@pytest.fixture(scope="session")
def _inference_free_model(idf_json):
    from sparsearch.models import (
        MLMTransformer,
        Router,
        SparseEncoder,
        SparseStaticEmbedding,
        SpladePooling,
    )

    mlm = MLMTransformer(real_model(SPLADE), max_seq_length=24)
    static = SparseStaticEmbedding.from_json(idf_json, mlm.tokenizer)
    router = Router.for_query_document([static], [mlm, SpladePooling()])
    return SparseEncoder(modules=[router])


@pytest.fixture()
def inference_free_model(_inference_free_model):
    """Real splade-tiny on the document route, real IDF weights on the query route; a copy."""
    return copy.deepcopy(_inference_free_model)
