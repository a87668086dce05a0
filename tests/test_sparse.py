from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from sparsearch import (
    DimensionMismatchError,
    InvalidVectorsError,
    SparseVectors,
    VocabularyMismatchError,
    load_npz,
    save_npz,
)


def random_vectors(rng: np.random.Generator, n: int = 7, dim: int = 50) -> SparseVectors:
    dense = rng.random((n, dim)).astype(np.float32)
    dense[dense < 0.8] = 0
    return SparseVectors.from_dense(dense)


def test_construction_rejects_unsorted_indices_naming_the_row():
    with pytest.raises(InvalidVectorsError, match="row 1"):
        SparseVectors(np.array([0, 2, 4]), np.array([1, 3, 5, 2]), np.ones(4), dim=10)


def test_construction_rejects_duplicate_index():
    with pytest.raises(InvalidVectorsError, match="row 0.*sorted and unique"):
        SparseVectors(np.array([0, 2]), np.array([3, 3]), np.ones(2), dim=10)


def test_index_may_restart_at_row_boundary():
    v = SparseVectors(np.array([0, 2, 4]), np.array([1, 5, 0, 9]), np.ones(4), dim=10)
    assert v.active_dims().tolist() == [2, 2]


def test_construction_rejects_out_of_range_and_nan():
    with pytest.raises(InvalidVectorsError, match="row 0: index 10"):
        SparseVectors(np.array([0, 1]), np.array([10]), np.ones(1), dim=10)
    with pytest.raises(InvalidVectorsError, match="row 1: weight nan"):
        SparseVectors(np.array([0, 1, 2]), np.array([0, 1]), np.array([1.0, np.nan]), dim=10)


def test_bad_indptr_and_vocab_size():
    with pytest.raises(InvalidVectorsError, match="indptr"):
        SparseVectors(np.array([0, 3]), np.array([1]), np.ones(1), dim=10)
    with pytest.raises(DimensionMismatchError, match="vocab has 2 tokens"):
        SparseVectors(np.array([0]), np.array([]), np.array([]), dim=3, vocab=["a", "b"])


def test_empty_batch():
    v = SparseVectors.empty(30522)
    assert len(v) == 0 and v.shape == (0, 30522) and v.nnz == 0
    assert v.sparsity()["active_dims"] == 0.0


def test_scipy_and_dense_round_trip():
    v = random_vectors(np.random.default_rng(0))
    back = SparseVectors.from_scipy(v.to_scipy())
    np.testing.assert_array_equal(back.to_dense(), v.to_dense())
    np.testing.assert_array_equal(back.indptr, v.indptr)


def test_torch_round_trip():
    torch = pytest.importorskip("torch")
    v = random_vectors(np.random.default_rng(1))
    t = v.to_torch()
    assert t.is_sparse and tuple(t.shape) == v.shape
    np.testing.assert_array_equal(t.to_dense().numpy(), v.to_dense())
    np.testing.assert_array_equal(SparseVectors.from_torch(t).to_dense(), v.to_dense())
    np.testing.assert_array_equal(SparseVectors.from_torch(t.to_dense()).indices, v.indices)
    assert isinstance(t, torch.Tensor)


def test_dicts_round_trip_with_vocab():
    vocab = ["a", "b", "c", "d"]
    v = SparseVectors.from_dicts([{"b": 1.5, "a": 0.5}, {}, {"d": 2.0}], vocab=vocab)
    assert v.to_dicts() == [{"a": 0.5, "b": 1.5}, {}, {"d": 2.0}]
    with pytest.raises(VocabularyMismatchError, match="'z'"):
        SparseVectors.from_dicts([{"z": 1.0}], vocab=vocab)


def test_slicing_and_fancy_indexing_match_scipy():
    v = random_vectors(np.random.default_rng(2), n=9)
    dense = v.to_dense()
    np.testing.assert_array_equal(v[2:7].to_dense(), dense[2:7])
    np.testing.assert_array_equal(v[::2].to_dense(), dense[::2])
    np.testing.assert_array_equal(v[[5, 0, 5]].to_dense(), dense[[5, 0, 5]])
    np.testing.assert_array_equal(v[-1].to_dense(), dense[-1:])
    mask = np.arange(9) % 3 == 0
    np.testing.assert_array_equal(v[mask].to_dense(), dense[mask])


def test_concat_checks_dim_and_vocab():
    rng = np.random.default_rng(3)
    a, b = random_vectors(rng), random_vectors(rng)
    np.testing.assert_array_equal(
        SparseVectors.concat([a, b]).to_dense(), np.vstack([a.to_dense(), b.to_dense()])
    )
    with pytest.raises(DimensionMismatchError):
        SparseVectors.concat([a, random_vectors(rng, dim=51)])
    va = SparseVectors.from_dense(np.eye(2), vocab=["x", "y"])
    vb = SparseVectors.from_dense(np.eye(2), vocab=["x", "z"])
    with pytest.raises(VocabularyMismatchError):
        SparseVectors.concat([va, vb])


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 6),
    st.integers(1, 40),
    st.integers(1, 12),
    st.integers(0, 2**32 - 1),
)
def test_top_k_per_row_keeps_the_largest(n, dim, k, seed):
    rng = np.random.default_rng(seed)
    dense = np.round(rng.random((n, dim)), 1).astype(np.float32)  # rounding makes ties
    dense[rng.random((n, dim)) < 0.5] = 0
    got = SparseVectors.from_dense(dense).top_k_per_row(k).to_dense()
    for r in range(n):
        nz = np.flatnonzero(dense[r])
        order = sorted(nz, key=lambda j: (-dense[r, j], j))[:k]
        expected = np.zeros(dim, np.float32)
        expected[order] = dense[r, order]
        np.testing.assert_array_equal(got[r], expected)


def test_dot_matches_scipy():
    rng = np.random.default_rng(4)
    a, b = random_vectors(rng), random_vectors(rng, n=3)
    expected = (sp.csr_matrix(a.to_dense()) @ sp.csr_matrix(b.to_dense()).T).toarray()
    np.testing.assert_allclose(a.dot(b), expected, rtol=1e-6)


def test_npz_round_trip_keeps_ids_and_vocab(tmp_path):
    v = SparseVectors.from_dense(np.array([[0, 1.0], [2.0, 0]]), vocab=["p", "q"])
    save_npz(tmp_path / "v.npz", v, ids=["d1", "d2"])
    back, ids = load_npz(tmp_path / "v.npz")
    assert ids == ["d1", "d2"] and back.vocab == ("p", "q")
    np.testing.assert_array_equal(back.to_dense(), v.to_dense())


def test_load_npz_names_a_missing_truncated_or_foreign_file(tmp_path):
    from sparsearch.errors import InvalidInputError

    path = tmp_path / "v.npz"
    save_npz(path, SparseVectors.from_dicts([{0: 1.0}, {2: 0.5}], dim=3), ["a", "b"])
    vectors, ids = load_npz(path)
    assert ids == ["a", "b"] and vectors.nnz == 2
    (tmp_path / "cut.npz").write_bytes(path.read_bytes()[:-40])
    (tmp_path / "text.npz").write_text("hello")
    for name, reason in [
        ("missing.npz", "no such file"),
        ("cut.npz", "not a vectors file"),
        ("text.npz", "not a .npz archive"),
    ]:
        with pytest.raises(InvalidInputError, match=reason) as caught:
            load_npz(tmp_path / name)
        assert name in str(caught.value)


def test_vocab_hash_remembers_tuples_only():
    from sparsearch.sparse import vocab_hash

    tokens = ["a", "b"]
    before = vocab_hash(tokens)
    tokens[1] = "c"  # a list can change after it was hashed: never remembered
    assert vocab_hash(tokens) == vocab_hash(("a", "c")) != before
    frozen = ("a", "b")
    assert vocab_hash(frozen) == vocab_hash(frozen) == before
