"""decode, intersection, similarity and sparsity agree with sentence-transformers."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import SENTENCES

pytestmark = pytest.mark.real_model  # parity with sentence-transformers on the real splade-tiny


@pytest.fixture(scope="module")
def pair(splade, st_splade):
    return splade.encode(SENTENCES), st_splade.encode(SENTENCES)


def test_decode_matches(splade, st_splade, pair):
    ours, theirs = pair
    for top_k in (5, None):
        expected = st_splade.decode(theirs, top_k=top_k)
        got = splade.decode(ours, top_k=top_k)
        for row_got, row_expected in zip(got, expected, strict=True):
            assert [t for t, _ in row_got] == [t for t, _ in row_expected]
            assert np.allclose([w for _, w in row_got], [w for _, w in row_expected], atol=1e-4)


def test_intersection_matches(splade, st_splade, pair):
    ours, theirs = pair
    expected = st_splade.intersection(theirs[0], theirs).to_dense().numpy()
    got = splade.intersection(ours[0], ours)
    assert got.shape == (4, splade.dim) and got.vocab == splade.vocab
    assert np.array_equal(got.to_dense() != 0, expected != 0)
    assert np.abs(got.to_dense() - expected).max() <= 1e-3
    rowwise = splade.intersection(ours[:2], ours[2:])
    assert np.allclose(rowwise.to_dense(), ours[:2].to_dense() * ours[2:].to_dense())


def test_similarity_matches(splade, st_splade, pair):
    ours, theirs = pair
    assert np.allclose(
        splade.similarity(ours, ours),
        st_splade.similarity(theirs, theirs).numpy(),
        rtol=1e-5,
        atol=1e-4,
    )
    try:
        st_splade.similarity_fn_name = "cosine"
        expected = st_splade.similarity(theirs, theirs).numpy()
    finally:
        st_splade.similarity_fn_name = "dot"
    assert np.allclose(splade.similarity(ours, ours, fn="cosine"), expected, atol=1e-5)


def test_sparsity_matches(splade, st_splade, pair):
    ours, theirs = pair
    got, expected = splade.sparsity(ours), st_splade.sparsity(theirs)
    assert got["active_dims"] == pytest.approx(expected["active_dims"])
    assert got["sparsity_ratio"] == pytest.approx(expected["sparsity_ratio"])
