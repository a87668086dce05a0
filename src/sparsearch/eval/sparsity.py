"""Sparsity statistics of an evaluation: active dimensions and FLOPS."""

from __future__ import annotations

import numpy as np

from sparsearch.sparse import SparseVectors


def sparsity_stats(queries: SparseVectors, docs: SparseVectors) -> dict[str, float]:
    """Mean active dimensions of queries and documents, and FLOPS.

    FLOPS (Formal et al., SPLADE; Paria et al. 2020) is the expected number of multiply-adds of a
    query-document dot product: ``sum_j p_q(j) * p_d(j)``, where ``p_q(j)`` (``p_d(j)``) is the
    fraction of queries (documents) in which term ``j`` is active.

    >>> q = SparseVectors.from_dicts([{0: 1.0, 1: 1.0}], dim=3)
    >>> d = SparseVectors.from_dicts([{0: 2.0}, {2: 1.0}], dim=3)
    >>> sparsity_stats(q, d)["flops"]  # term 0: 1.0 * 0.5
    0.5
    """
    queries.check_compatible(docs)
    p_q = np.bincount(queries.indices, minlength=queries.dim) / max(queries.n, 1)
    p_d = np.bincount(docs.indices, minlength=docs.dim) / max(docs.n, 1)
    return {
        "query_active_dims": float(queries.active_dims().mean()) if queries.n else 0.0,
        "doc_active_dims": float(docs.active_dims().mean()) if docs.n else 0.0,
        "flops": float(p_q @ p_d),
    }
