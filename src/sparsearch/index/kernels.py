"""Numba kernels of the engine: the hot loops, over plain arrays.

Every kernel has a pure-numpy twin in :mod:`sparsearch.index.reference` with the same signature and
the same results; the tests compare the two. Kernels release the GIL (``nogil``) so batch search can
spread queries over Python threads, and cache their machine code on disk (``cache``).

Conventions shared by the search kernels:

* a segment's documents are numbered by local ordinal ``0..n-1``; ``seq`` gives each one its global
  insertion number (ties in score are broken by the smaller ``seq``);
* the inverted index is term-major CSR: term ``t``'s postings are ``post_indptr[t]..
  post_indptr[t + 1]`` in ``post_docs`` (local ordinals, ascending) and ``post_vals`` (weights);
* each query keeps a bounded min-heap of its best hits in one row of ``top_scores`` / ``top_seq`` /
  ``top_slot`` (``top_n`` entries used); the root (column 0) is the worst hit kept. A document
  matches a query when they share at least one term.
"""

from __future__ import annotations

import numba as nb
import numpy as np

_JIT = {"nogil": True, "cache": True}

DENSE_FRACTION = 4  # a query whose postings reach n / DENSE_FRACTION scans all n documents


@nb.njit(**_JIT)
def inverted_index(indptr, indices, values, dim):  # pragma: no cover - compiled
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


@nb.njit(**_JIT)
def _worse(s1, q1, s2, q2):  # pragma: no cover - compiled
    """Whether hit (s1, q1) ranks below hit (s2, q2): lower score, or same score and later seq."""
    return s1 < s2 or (s1 == s2 and q1 > q2)


@nb.njit(**_JIT)
def heap_push(scores, seqs, slots, size, score, seq, slot):  # pragma: no cover - compiled
    """Offer one hit to a bounded min-heap (root = worst kept hit); returns the new size."""
    k = scores.size
    if size < k:
        i = size
        size += 1
        while i > 0:
            parent = (i - 1) // 2
            if not _worse(score, seq, scores[parent], seqs[parent]):
                break
            scores[i] = scores[parent]
            seqs[i] = seqs[parent]
            slots[i] = slots[parent]
            i = parent
    else:
        if not _worse(scores[0], seqs[0], score, seq):
            return size
        i = 0
        while True:
            child = 2 * i + 1
            if child >= k:
                break
            if child + 1 < k and _worse(scores[child + 1], seqs[child + 1], scores[child],
                                        seqs[child]):
                child += 1
            if not _worse(scores[child], seqs[child], score, seq):
                break
            scores[i] = scores[child]
            seqs[i] = seqs[child]
            slots[i] = slots[child]
            i = child
    scores[i] = score
    seqs[i] = seq
    slots[i] = slot
    return size


@nb.njit(**_JIT)
def search_segment(q_indptr, q_indices, q_values, q_lo, q_hi, post_indptr, post_docs, post_vals,
                   seq, live, slot_offset, top_scores, top_seq, top_slot,
                   top_n):  # pragma: no cover - compiled
    """Exact top-k of queries ``q_lo..q_hi`` over one segment, merged into their heaps.

    Term at a time: each query term's postings add ``query weight x weight`` into a float32
    accumulator over the segment's documents (terms ascending, so each score is summed in the
    order scipy uses), then the matched live documents are offered to the heap. The accumulator is
    allocated once per call and reset only where touched; a query whose postings cover a large
    share of the segment skips the touched list and scans every document instead.
    """
    n = seq.size
    k = top_scores.shape[1]
    acc = np.zeros(n, np.float32)
    mark = np.zeros(n, np.uint8)
    touched = np.empty(n, np.int32)
    for qi in range(q_lo, q_hi):
        scores = top_scores[qi]
        seqs = top_seq[qi]
        slots = top_slot[qi]
        size = top_n[qi]
        a = q_indptr[qi]
        e = q_indptr[qi + 1]
        n_post = 0
        for j in range(a, e):
            n_post += post_indptr[q_indices[j] + 1] - post_indptr[q_indices[j]]
        if n_post * DENSE_FRACTION >= n:
            for j in range(a, e):
                t = q_indices[j]
                w = q_values[j]
                for x in range(post_indptr[t], post_indptr[t + 1]):
                    d = post_docs[x]
                    mark[d] = 1
                    acc[d] += w * post_vals[x]
            for d in range(n):
                if mark[d] != 0:
                    # test before calling: a call costs more than the test, and most lose
                    if live[d] != 0 and (size < k or acc[d] >= scores[0]):
                        size = heap_push(scores, seqs, slots, size, acc[d], seq[d],
                                         slot_offset + d)
                    acc[d] = 0.0
                    mark[d] = 0
        else:
            nt = 0
            for j in range(a, e):
                t = q_indices[j]
                w = q_values[j]
                for x in range(post_indptr[t], post_indptr[t + 1]):
                    d = post_docs[x]
                    if mark[d] == 0:
                        mark[d] = 1
                        touched[nt] = d
                        nt += 1
                    acc[d] += w * post_vals[x]
            for i in range(nt):
                d = touched[i]
                if live[d] != 0 and (size < k or acc[d] >= scores[0]):
                    size = heap_push(scores, seqs, slots, size, acc[d], seq[d], slot_offset + d)
                acc[d] = 0.0
                mark[d] = 0
        top_n[qi] = size
