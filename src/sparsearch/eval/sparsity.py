"""Sparsity statistics of an evaluation: active dimensions and FLOPS."""

from __future__ import annotations

from sparsearch.errors import DimensionMismatchError
from sparsearch.sparse import SparseVectors, TermStats


def sparsity_stats(queries: SparseVectors, docs: SparseVectors | TermStats) -> dict[str, float]:
    """Mean active dimensions of queries and documents, and FLOPS.

    ``docs`` are the document vectors or just their :class:`~sparsearch.TermStats` (what a
    searcher such as ``SparseIndex.term_stats()`` reports).

    FLOPS (Formal et al., SPLADE; Paria et al. 2020) is the expected number of multiply-adds of a
    query-document dot product: ``sum_j p_q(j) * p_d(j)``, where ``p_q(j)`` (``p_d(j)``) is the
    fraction of queries (documents) in which term ``j`` is active.

    >>> q = SparseVectors.from_dicts([{0: 1.0, 1: 1.0}], dim=3)
    >>> d = SparseVectors.from_dicts([{0: 2.0}, {2: 1.0}], dim=3)
    >>> sparsity_stats(q, d)["flops"]  # term 0: 1.0 * 0.5
    0.5
    """
    if isinstance(docs, SparseVectors):
        queries.check_compatible(docs)
        docs = docs.term_stats()
    if docs.doc_freq.size != queries.dim:
        raise DimensionMismatchError(
            f"queries have dim {queries.dim}, the documents' statistics {docs.doc_freq.size}"
        )
    p_q = queries.term_stats().doc_freq / max(queries.n, 1)
    p_d = docs.doc_freq / max(docs.n_docs, 1)
    return {
        "query_active_dims": float(queries.active_dims().mean()) if queries.n else 0.0,
        "doc_active_dims": docs.mean_active_dims,
        "flops": float(p_q @ p_d),
    }
