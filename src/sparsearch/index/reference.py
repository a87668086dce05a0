"""Pure-numpy twins of the numba kernels (:mod:`sparsearch.index.build_kernels`,
:mod:`sparsearch.index.kernels`): the executable specification.

Same signatures, same results (the tests compare them), written for clarity rather than speed:
whole-array operations.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from sparsearch.index.build_kernels import IMPACT_LEVELS, RANGE_BITS, SMALLEST_STEP
from sparsearch.index.kernel_types import F32, I32, I64, U8, U16, Ordinals
from sparsearch.index.kernels import Scratch


def inverted_index(indptr: I64, indices: I32, values: F32, dim: int) -> tuple[I64, I32, F32]:
    """Term-major postings of a CSR matrix: ``(post_indptr, post_docs, post_vals)``."""
    rows = np.repeat(np.arange(indptr.size - 1), np.diff(indptr))
    order = np.lexsort((rows, indices))  # term-major, documents ascending
    post_indptr = np.zeros(dim + 1, np.int64)
    np.cumsum(np.bincount(indices, minlength=dim), out=post_indptr[1:])
    return post_indptr, rows[order].astype(np.int32), values[order].astype(np.float32)


def term_bounds(
    post_indptr: I64, post_docs: Ordinals, post_vals: F32, top: int
) -> tuple[F32, I64, I32]:
    """Per term its largest weight and its ``top`` best documents (ties: smaller ordinal)."""
    dim = post_indptr.size - 1
    term_max = np.zeros(dim, np.float32)
    chosen = []
    for t in range(dim):
        docs, vals = (
            post_docs[post_indptr[t] : post_indptr[t + 1]],
            post_vals[post_indptr[t] : post_indptr[t + 1]],
        )
        if docs.size:
            term_max[t] = vals.max()
        best = np.lexsort((docs, -vals.astype(np.float64)))[:top]
        chosen.append(np.sort(docs[best]))
    top_indptr = np.zeros(dim + 1, np.int64)
    np.cumsum([c.size for c in chosen], out=top_indptr[1:])
    top_docs = np.concatenate(chosen).astype(np.int32) if chosen else np.zeros(0, np.int32)
    return term_max, top_indptr, top_docs


def impact_blocks(
    post_indptr: I64, post_docs: Ordinals, post_vals: F32, term_max: F32, n: int
) -> tuple[F32, I64, U16, U8]:
    """Upper-bound ``uint8`` postings grouped by ranges of ``2**RANGE_BITS`` documents."""
    dim = post_indptr.size - 1
    bits, levels = RANGE_BITS, IMPACT_LEVELS
    scale = np.where(term_max > 0, term_max.astype(np.float64) / levels * (1 + 1e-6), 0)
    scale = np.where(term_max > 0, np.maximum(scale.astype(np.float32), SMALLEST_STEP), 0)
    scale = scale.astype(np.float32)
    terms = np.repeat(np.arange(dim), np.diff(post_indptr))
    ranges = post_docs.astype(np.int64) >> bits
    key = ranges * dim + terms
    order = np.lexsort((post_docs, key))
    n_ranges = max(1, -(-n // (1 << bits)))
    blk_indptr = np.zeros(n_ranges * dim + 1, np.int64)
    np.cumsum(np.bincount(key, minlength=n_ranges * dim), out=blk_indptr[1:])
    vals = post_vals[order].astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        steps = np.ceil(vals / scale[terms[order]].astype(np.float64))
    imps = np.where(vals > 0, np.clip(steps, 1, levels), 0).astype(np.uint8)
    docs = (post_docs[order] & ((1 << bits) - 1)).astype(np.uint16)
    return scale, blk_indptr, docs, imps


def search_segment(
    q_indptr: I64,
    q_indices: I32,
    q_values: F32,
    q_lo: int,
    q_hi: int,
    post_indptr: I64,
    post_docs: Ordinals,
    post_vals: F32,
    term_max: F32,
    top_indptr: I64,
    top_docs: I32,
    term_scale: F32,
    blk_indptr: I64,
    blk_docs: U16,
    blk_imps: U8,
    fwd_indptr: I64,
    fwd_indices: I32,
    fwd_values: F32,
    prunable: bool,
    seq: I64,
    live: U8,
    slot_offset: int,
    top_scores: F32,
    top_seq: I64,
    top_slot: I64,
    top_n: I64,
    scratch: Scratch | None = None,
    share: float | None = None,
    min_docs: int | None = None,
) -> None:
    """Exhaustive twin of the kernel: score every live document, keep the best k.

    The pruning arrays (``term_max`` .. ``prunable``) only make the kernel faster; the twin
    ignores them (:func:`term_bounds` and :func:`impact_blocks` specify them), and the kernel's
    ``scratch`` arrays and tuning knobs ``share`` and ``min_docs`` with them.

    The kept hits of a row are a set (the kernel keeps them as a heap, this twin sorted); compare
    rows after sorting them by (score desc, seq asc).
    """
    n = seq.size
    k = top_scores.shape[1]
    dim = post_indptr.size - 1
    post_terms = np.repeat(np.arange(dim), np.diff(post_indptr))
    docs = sp.csr_matrix((post_vals, (post_docs, post_terms)), shape=(n, dim))
    docs.sort_indices()  # each document's terms ascending: scores summed in scipy's order
    pattern = sp.csr_matrix(
        (np.ones(post_vals.size, np.float32), (post_docs, post_terms)), shape=(n, dim)
    )
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


def sort_heaps(top_scores: F32, top_seq: I64, top_slot: I64, top_n: I64) -> None:
    """Twin of the kernel: each row's first ``top_n`` hits sorted by (score desc, seq asc)."""
    for qi, size in enumerate(top_n):
        order = np.lexsort((top_seq[qi, :size], -top_scores[qi, :size].astype(np.float64)))
        for row in (top_scores, top_seq, top_slot):
            row[qi, :size] = row[qi, :size][order]
