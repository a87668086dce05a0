"""``precision="bfloat16"``: the optional fast path is approximate but stays close to float32."""

from __future__ import annotations

import numpy as np
import pytest

from sparsearch.errors import InvalidInputError
from tests.conftest import TINY_QUERIES


def _top(row: np.ndarray, k: int) -> set[int]:
    return set(np.argsort(-row, kind="stable")[:k].tolist())


@pytest.mark.real_model  # the tolerances are claims about the real splade-tiny on real text
def test_bfloat16_stays_close_to_the_exact_vectors(splade, scifact_docs):
    docs = scifact_docs[:64]
    exact = splade.encode_document(docs).to_dense()
    fast_vectors = splade.encode_document(docs, precision="bfloat16")
    fast = fast_vectors.to_dense()
    assert fast_vectors.values.dtype == np.float32 and fast.shape == exact.shape
    assert not np.array_equal(exact, fast)  # the products really ran in bfloat16
    assert np.abs(exact - fast).max() <= 0.06 * exact.max()
    both, either = np.sum((exact != 0) & (fast != 0)), np.sum((exact != 0) | (fast != 0))
    assert both / either >= 0.95
    overlap = [len(_top(e, 10) & _top(f, 10)) / 10 for e, f in zip(exact, fast, strict=True)]
    assert np.mean(overlap) >= 0.95
    scores_exact, scores_fast = exact @ exact.T, fast @ fast.T
    assert np.abs(scores_exact - scores_fast).max() <= 0.01 * scores_exact.max()


def test_bfloat16_leaves_static_query_weights_exact(tiny_inference_free):
    """An inference-free model's query route has no matrix product: its vectors stay exact."""
    exact = tiny_inference_free.encode_query(TINY_QUERIES)
    fast = tiny_inference_free.encode_query(TINY_QUERIES, precision="bfloat16")
    np.testing.assert_array_equal(exact.indices, fast.indices)
    np.testing.assert_array_equal(exact.values, fast.values)


def test_unknown_precision_is_rejected(tiny_splade):
    with pytest.raises(InvalidInputError, match="precision must be one of"):
        tiny_splade.encode(["x"], precision="float16")
    with pytest.raises(InvalidInputError, match="precision must be one of"):
        tiny_splade.encode([], precision="int4")
