"""SPLADE parity with sentence-transformers on real SciFact text (rasyosef/splade-tiny)."""

from __future__ import annotations

import numpy as np
import pytest
from sentence_transformers.util import select_max_active_dims

from tests.models.conftest import assert_same_vectors, st_dense

pytestmark = [pytest.mark.slow, pytest.mark.real_model]


@pytest.fixture(scope="session")
def st_docs(st_splade, scifact_docs):
    return st_dense(st_splade, scifact_docs)


@pytest.fixture(scope="session")
def st_queries(st_splade, scifact_queries):
    return st_dense(st_splade, scifact_queries, task="query")


def test_documents_match_sentence_transformers(splade, scifact_docs, st_docs):
    vectors = splade.encode_document(scifact_docs)
    assert vectors.shape == (500, 30522) and vectors.vocab == splade.vocab
    assert_same_vectors(vectors, st_docs)


def test_queries_match_sentence_transformers(splade, scifact_queries, st_queries):
    assert_same_vectors(splade.encode_query(scifact_queries, batch_size=16), st_queries)


@pytest.mark.parametrize("k", [16])
def test_max_active_dims_matches_sentence_transformers(
    splade, scifact_queries, scifact_docs, st_queries, st_docs, k
):
    # For a SPLADE model, sentence-transformers applies max_active_dims with select_max_active_dims
    # on each encoded batch; applying it to the whole output is the same computation.
    queries = splade.encode_query(scifact_queries, max_active_dims=k)
    assert queries.active_dims().max() <= k
    assert_same_vectors(queries, select_max_active_dims(st_queries, k).numpy())
    docs = splade.encode_document(scifact_docs[:100], max_active_dims=k)
    assert_same_vectors(docs, select_max_active_dims(st_docs[:100], k).numpy())


def test_input_order_is_kept_whatever_the_batching(splade, scifact_docs):
    texts = scifact_docs[:40]
    whole = splade.encode(texts, batch_size=64)
    reversed_small = splade.encode(texts[::-1], batch_size=3)
    assert np.abs(whole.to_dense() - reversed_small[::-1].to_dense()).max() <= 1e-4
