"""Brute-force scipy reference for the engine tests, and hypothesis strategies for corpora."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from hypothesis import strategies as st

from sparsearch.sparse import SparseVectors

# Weights from a small grid make exact ties common (tie-breaking is exercised); free floats test
# rounding; negative weights exercise the unpruned path.
GRID = st.sampled_from([0.25, 0.5, 1.0, 1.5, 2.0])
FREE = st.floats(0.0625, 4.0, width=32)
SIGNED = st.one_of(FREE, st.floats(-2.0, -0.0625, width=32))


@st.composite
def sparse_batches(draw, n_min=0, n_max=40, dim=24, nnz_max=8, weights=None):
    """A SparseVectors batch over ``dim`` terms."""
    weights = weights or draw(st.sampled_from([GRID, FREE, SIGNED]))
    n = draw(st.integers(n_min, n_max))
    rows = []
    for _ in range(n):
        terms = draw(st.lists(st.integers(0, dim - 1), max_size=nnz_max, unique=True))
        rows.append({t: draw(weights) for t in terms})
    return SparseVectors.from_dicts(rows, dim=dim) if rows else SparseVectors.empty(dim)


def brute_force(
    docs: SparseVectors,
    ids: list,
    queries: SparseVectors,
    k: int,
    allowed: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Top-k by dot product over ``docs`` (rows in insertion order): (ids n×k, scores n×k).

    A document matches a query when they share a term; ties go to the earlier row; rows with
    fewer than k matches are padded with None / -inf.
    """
    n = queries.n
    out_ids = np.full((n, k), None, object)
    out_scores = np.full((n, k), -np.inf, np.float32)
    if docs.n == 0:
        return out_ids, out_scores
    scores = np.asarray((queries.to_scipy() @ docs.to_scipy().T).toarray(), np.float32)
    q_pattern = sp.csr_matrix(
        (np.ones(queries.nnz), queries.indices, queries.indptr), shape=queries.shape
    )
    d_pattern = sp.csr_matrix((np.ones(docs.nnz), docs.indices, docs.indptr), shape=docs.shape)
    matched = (q_pattern @ d_pattern.T).toarray() > 0
    if allowed is not None:
        matched &= allowed[None, :]
    id_array = np.empty(len(ids), object)
    id_array[:] = ids
    for qi in range(n):
        cand = np.flatnonzero(matched[qi])
        order = cand[np.lexsort((cand, -scores[qi, cand].astype(np.float64)))][:k]
        out_ids[qi, : order.size] = id_array[order]
        out_scores[qi, : order.size] = scores[qi, order]
    return out_ids, out_scores


def assert_same_hits(hits, ref_ids: np.ndarray, ref_scores: np.ndarray) -> None:
    """Identical ids (padding included) and scores within 1e-6; int ids come back as int64."""
    padding = np.isneginf(hits.scores)
    if hits.ids.dtype == np.int64:
        assert (hits.ids[padding] == -1).all()
        assert all(isinstance(i, int) for i in ref_ids[~padding].tolist())
    ids = hits.ids.astype(object)
    ids[padding] = None
    assert ids.tolist() == ref_ids.tolist()
    np.testing.assert_allclose(hits.scores, ref_scores, rtol=0, atol=1e-6)
