"""Numba kernels that build a segment's search structures from its documents (once per segment).

The inverted index is term-major CSR: term ``t``'s postings are ``post_indptr[t]..
post_indptr[t + 1]`` in ``post_docs`` (local ordinals ``0..n-1``, ascending) and ``post_vals``
(weights). From it come each term's bounds (largest weight, top documents) and the impact
blocks the pruned search reads (:mod:`sparsearch.index.kernels`). Every kernel has a pure-numpy
twin in :mod:`sparsearch.index.reference`; their types and compile options
are in :mod:`sparsearch.index.kernel_types`.
"""

from __future__ import annotations

import numpy as np

from sparsearch.index.kernel_types import F32, I32, I64, U8, U16, Ordinals, jit


@jit
def inverted_index(
    indptr: I64, indices: I32, values: F32, dim: int
) -> tuple[I64, I32, F32]:  # pragma: no cover - compiled
    """Term-major postings of a CSR matrix: ``(post_indptr, post_docs, post_vals)``."""
    post_indptr = np.zeros(dim + 1, np.int64)
    for j in range(indices.size):
        post_indptr[indices[j] + 1] += 1
    post_indptr = np.cumsum(post_indptr)
    fill = post_indptr[:-1].copy()
    post_docs = np.empty(indices.size, np.int32)
    post_vals = np.empty(indices.size, np.float32)
    for r in range(indptr.size - 1):  # rows ascend, so each term's postings do too
        for j in range(indptr[r], indptr[r + 1]):
            t = indices[j]
            post_docs[fill[t]] = r
            post_vals[fill[t]] = values[j]
            fill[t] += 1
    return post_indptr, post_docs, post_vals


@jit
def term_bounds(
    post_indptr: I64, post_docs: Ordinals, post_vals: F32, top: int
) -> tuple[F32, I64, I32]:  # pragma: no cover - compiled
    """Per term, its largest weight and its ``top`` highest-weight documents.

    Returns ``(term_max, top_indptr, top_docs)``: ``term_max[t]`` bounds every weight of term
    ``t``; ``top_docs[top_indptr[t]:top_indptr[t + 1]]`` are its (at most ``top``) documents of
    largest weight, ties to the smaller ordinal, in ascending ordinal order.
    """
    dim = post_indptr.size - 1
    term_max = np.zeros(dim, np.float32)
    top_indptr = np.zeros(dim + 1, np.int64)
    for t in range(dim):
        top_indptr[t + 1] = top_indptr[t] + min(post_indptr[t + 1] - post_indptr[t], top)
    top_docs = np.empty(top_indptr[dim], np.int32)
    for t in range(dim):
        a, b = post_indptr[t], post_indptr[t + 1]
        if a == b:
            continue
        vals = post_vals[a:b]
        term_max[t] = vals.max()
        out = top_indptr[t]
        want = top_indptr[t + 1] - out
        if b - a == want:
            top_docs[out : out + want] = post_docs[a:b]
            continue
        cut = np.partition(vals, vals.size - want)[vals.size - want]  # the want-th largest
        above = 0
        for x in range(vals.size):
            above += vals[x] > cut
        ties = want - above
        for x in range(vals.size):
            if vals[x] > cut or (vals[x] == cut and ties > 0):
                if vals[x] == cut:
                    ties -= 1
                top_docs[out] = post_docs[a + x]
                out += 1
    return term_max, top_indptr, top_docs


# also read by the search kernels: after changing it, clear their cache (see ``kernel_types.jit``)
RANGE_BITS = 16  # impact postings are grouped by ranges of 2**16 documents (uint16 ordinals)
SMALLEST_STEP = np.float32(np.nextafter(np.float32(0), np.float32(1)))
IMPACT_LEVELS = 255  # each weight is rounded up to one of this many steps of its term's maximum


@jit
def impact_blocks(
    post_indptr: I64, post_docs: Ordinals, post_vals: F32, term_max: F32, n: int
) -> tuple[F32, I64, U16, U8]:  # pragma: no cover - compiled
    """Compact upper-bound postings, grouped by document range: the pruned search's input.

    Returns ``(term_scale, blk_indptr, blk_docs, blk_imps)``. Range ``r`` holds documents
    ``r * 2**RANGE_BITS ..``; its postings of term ``t`` are ``blk_indptr[r * dim + t] ..
    blk_indptr[r * dim + t + 1]``, with ordinals relative to the range (``uint16``) and weights
    rounded *up* to ``uint8`` steps of ``term_scale[t]`` (so ``imp x scale >= weight``, and
    every positive weight has ``imp >= 1``). Non-positive weights get 0.
    """
    dim = post_indptr.size - 1
    n_ranges = max(1, (n + (1 << RANGE_BITS) - 1) >> RANGE_BITS)
    term_scale = np.zeros(dim, np.float32)
    for t in range(dim):
        if term_max[t] > 0:
            # in float64, as numba computes float32 / int (numpy >= 2 would stay in float32)
            scale = np.float32(np.float64(term_max[t]) / IMPACT_LEVELS * (1 + 1e-6))
            # a subnormal maximum would round the step to 0: the smallest float32 step still
            # bounds it (impacts are capped at IMPACT_LEVELS)
            term_scale[t] = max(scale, SMALLEST_STEP)
    blk_indptr = np.zeros(n_ranges * dim + 1, np.int64)
    for t in range(dim):
        for x in range(post_indptr[t], post_indptr[t + 1]):
            blk_indptr[(post_docs[x] >> RANGE_BITS) * dim + t + 1] += 1
    blk_indptr = np.cumsum(blk_indptr)
    fill = blk_indptr[:-1].copy()
    blk_docs = np.empty(post_docs.size, np.uint16)
    blk_imps = np.zeros(post_docs.size, np.uint8)
    mask = (1 << RANGE_BITS) - 1
    for t in range(dim):
        scale = np.float64(term_scale[t])
        for x in range(post_indptr[t], post_indptr[t + 1]):
            d = post_docs[x]
            o = fill[(d >> RANGE_BITS) * dim + t]
            fill[(d >> RANGE_BITS) * dim + t] += 1
            blk_docs[o] = d & mask
            v = np.float64(post_vals[x])
            if v > 0:
                imp = min(np.ceil(v / scale), IMPACT_LEVELS)
                blk_imps[o] = max(imp, 1)
    return term_scale, blk_indptr, blk_docs, blk_imps
