"""Pure-numpy twins of the kernels in :mod:`sparsearch.index.kernels`: the executable specification.

Same signatures, same results (the tests compare them), written for clarity rather than speed:
whole-array operations.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def inverted_index(indptr: np.ndarray, indices: np.ndarray, values: np.ndarray,
                   dim: int) -> tuple[np.ndarray, ...]:
    """Term-major postings of a CSR matrix: ``(post_indptr, post_docs, post_vals)``."""
    rows = np.repeat(np.arange(indptr.size - 1), np.diff(indptr))
    order = np.lexsort((rows, indices))  # term-major, documents ascending
    post_indptr = np.zeros(dim + 1, np.int64)
    np.cumsum(np.bincount(indices, minlength=dim), out=post_indptr[1:])
    return post_indptr, rows[order].astype(np.int32), values[order].astype(np.float32)


def search_segment(q_indptr, q_indices, q_values, q_lo, q_hi, post_indptr, post_docs, post_vals,
                   seq, live, slot_offset, top_scores, top_seq, top_slot, top_n) -> None:
    """Exhaustive twin of the kernel: score every live document, keep the best k.

    The kept hits of a row are a set (the kernel keeps them as a heap, this twin sorted); compare
    rows after sorting them by (score desc, seq asc).
    """
    n = seq.size
    k = top_scores.shape[1]
    dim = post_indptr.size - 1
    post_terms = np.repeat(np.arange(dim), np.diff(post_indptr))
    docs = sp.csr_matrix((post_vals, (post_docs, post_terms)), shape=(n, dim))
    docs.sort_indices()  # each document's terms ascending: scores summed in scipy's order
    pattern = sp.csr_matrix((np.ones(post_vals.size, np.float32), (post_docs, post_terms)),
                            shape=(n, dim))
    alive = live != 0
    for qi in range(q_lo, q_hi):
        a, e = q_indptr[qi], q_indptr[qi + 1]
        query = np.zeros(dim, np.float32)
        query[q_indices[a:e]] = q_values[a:e]
        mark = np.zeros(dim, np.float32)
        mark[q_indices[a:e]] = 1.0
        scores = docs @ query  # float32, summed in each document's term order like the kernel
        cand = np.flatnonzero(((pattern @ mark) > 0) & alive)
        size = top_n[qi]
        all_scores = np.concatenate([top_scores[qi, :size], scores[cand]])
        all_seq = np.concatenate([top_seq[qi, :size], seq[cand]])
        all_slot = np.concatenate([top_slot[qi, :size], slot_offset + cand])
        keep = np.lexsort((all_seq, -all_scores.astype(np.float64)))[:k]
        size = keep.size
        top_scores[qi, :size] = all_scores[keep]
        top_seq[qi, :size] = all_seq[keep]
        top_slot[qi, :size] = all_slot[keep]
        top_n[qi] = size
