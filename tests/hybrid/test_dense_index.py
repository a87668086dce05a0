"""The exact dense index behind DenseRetriever (numpy products; faiss above a threshold)."""

from __future__ import annotations

import numpy as np
import pytest

from sparsearch.errors import DimensionMismatchError, InvalidInputError
from sparsearch.hybrid import DenseIndex


def test_dense_index_pads_and_checks_dimensions():
    index = DenseIndex(["a", "b"], np.array([[1.0, 0.0], [0.0, 1.0]], np.float32))
    hits = index.search(np.array([[0.2, 0.1]], np.float32), k=3)
    assert hits.ids.tolist() == [["a", "b", None]]
    assert hits.scores[0, 2] == -np.inf
    with pytest.raises(DimensionMismatchError):
        index.search(np.ones((1, 3), np.float32), k=1)


def test_dense_index_faiss_path_equals_the_numpy_path():
    rng = np.random.default_rng(0)
    docs = rng.standard_normal((50, 8)).astype(np.float32)
    queries = rng.standard_normal((4, 8)).astype(np.float32)
    exact = DenseIndex(list(range(50)), docs).search(queries, k=5)
    faiss = DenseIndex(list(range(50)), docs, exact_max_docs=10).search(queries, k=5)
    assert exact.ids.tolist() == faiss.ids.tolist()
    np.testing.assert_allclose(exact.scores, faiss.scores, rtol=1e-5)
    with pytest.raises(InvalidInputError):
        DenseIndex(["a"], np.full((1, 2), np.nan, np.float32))
