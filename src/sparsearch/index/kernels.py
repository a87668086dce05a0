"""Numba kernels of the search: bounded heaps and the exact top-k of queries over one segment.

Every kernel has a pure-numpy twin in :mod:`sparsearch.index.reference` with the same signature and
the same results; the tests compare the two. Kernels release the GIL (``nogil``) so batch search can
spread queries over Python threads, and cache their machine code on disk (``cache``). The
kernels that build a segment's structures live in :mod:`sparsearch.index.build_kernels`.

Conventions shared by the search kernels:

* a segment's documents are numbered by local ordinal ``0..n-1``; ``seq`` gives each one its global
  insertion number (ties in score are broken by the smaller ``seq``);
* the inverted index is term-major CSR: term ``t``'s postings are ``post_indptr[t]..
  post_indptr[t + 1]`` in ``post_docs`` (local ordinals, ascending) and ``post_vals`` (weights);
  the forward index (``fwd_*``, the documents' CSR) gives exact scores for pruned candidates;
* each query keeps a bounded min-heap of its best hits in one row of ``top_scores`` / ``top_seq`` /
  ``top_slot`` (``top_n`` entries used); the root (column 0) is the worst hit kept. A document
  matches a query when they share at least one term.
"""

from __future__ import annotations

from typing import Any, TypeAlias

import numpy as np

from sparsearch.index.build_kernels import RANGE_BITS
from sparsearch.index.kernel_types import F32, I32, I64, U8, U16, Ordinals, Score, jit

#: :func:`scratch`'s working arrays: ``(acc, state, touched, racc, qdense)``
Scratch: TypeAlias = tuple[F32, U8, I32, F32, F32]

DENSE_FRACTION = 4  # a query whose postings reach n / DENSE_FRACTION scans all n documents


@jit
def _worse(
    s1: Score, q1: int | np.integer[Any], s2: Score, q2: int | np.integer[Any]
) -> bool | np.bool_:  # pragma: no cover - compiled
    """Whether hit (s1, q1) ranks below hit (s2, q2): lower score, or same score and later seq."""
    return s1 < s2 or (s1 == s2 and q1 > q2)


@jit
def heap_push(
    scores: F32,
    seqs: I64,
    slots: I64,
    size: int,
    score: Score,
    seq: int | np.integer[Any],
    slot: int | np.integer[Any],
) -> int:  # pragma: no cover - compiled
    """Offer one hit to a bounded min-heap (root = worst kept hit); returns the new size."""
    if size == scores.size:
        if _worse(scores[0], seqs[0], score, seq):
            _sift_down(scores, seqs, slots, size, score, seq, slot)
        return size
    i = size
    while i > 0:
        parent = (i - 1) // 2
        if not _worse(score, seq, scores[parent], seqs[parent]):
            break
        scores[i] = scores[parent]
        seqs[i] = seqs[parent]
        slots[i] = slots[parent]
        i = parent
    scores[i] = score
    seqs[i] = seq
    slots[i] = slot
    return size + 1


@jit
def _sift_down(
    scores: F32,
    seqs: I64,
    slots: I64,
    size: int,
    score: Score,
    seq: int | np.integer[Any],
    slot: int | np.integer[Any],
) -> None:  # pragma: no cover - compiled
    """Put hit (score, seq, slot) at the root of the heap's first ``size`` entries and restore it."""
    i = 0
    while True:
        child = 2 * i + 1
        if child >= size:
            break
        if child + 1 < size and _worse(
            scores[child + 1], seqs[child + 1], scores[child], seqs[child]
        ):
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


@jit
def sort_heaps(
    top_scores: F32, top_seq: I64, top_slot: I64, top_n: I64
) -> None:  # pragma: no cover - compiled
    """Turn each row's heap into its hits best first (score desc, seq asc), in place."""
    for qi in range(top_n.size):
        scores, seqs, slots = top_scores[qi], top_seq[qi], top_slot[qi]
        for end in range(top_n[qi] - 1, 0, -1):  # heapsort: the worst kept hit goes last
            score, seq, slot = scores[end], seqs[end], slots[end]
            scores[end], seqs[end], slots[end] = scores[0], seqs[0], slots[0]
            _sift_down(scores, seqs, slots, end, score, seq, slot)


def scratch(n: int, dim: int) -> Scratch:
    """Working arrays of :func:`search_segment` for segments of up to ``n`` documents.

    ``(acc, state, touched, racc, qdense)``, zero; the kernel leaves them zero again, so one
    thread can reuse them call after call (allocating and clearing them per call costs more than
    a small query's search).
    """
    return (
        np.zeros(n, np.float32),
        np.zeros(n, np.uint8),
        np.empty(n, np.int32),
        np.zeros(min(n, 1 << RANGE_BITS), np.float32),
        np.zeros(dim, np.float32),
    )


SEED_TERMS = 8  # the threshold is seeded from the top documents of this many strongest terms
ESSENTIAL_SHARE = 0.15  # non-essential bounds sum below this share of the threshold
# below one range of documents the exact accumulator is cache-resident already and pruning's
# fixed costs (seeding, scanning the range) outweigh what it saves (measured on the real data)
PRUNE_MIN_DOCS = 1 << RANGE_BITS
SCAN_CHUNK = 256  # bounds are checked this many documents at a time, branch-free first
SLACK = 1e-4  # relative margin on every pruning bound: float32 rounding never prunes a winner
_TOUCHED, _DONE = np.uint8(1), np.uint8(2)  # a document's state during one query


@jit
def _exact_score(
    d: int | np.integer[Any], fwd_indptr: I64, fwd_indices: I32, fwd_values: F32, qdense: F32
) -> np.float32:  # pragma: no cover - compiled
    """Document ``d``'s dot product with the dense query, summed in its term order (as scipy)."""
    s: np.float32 = np.float32(0.0)
    for x in range(fwd_indptr[d], fwd_indptr[d + 1]):
        s += qdense[fwd_indices[x]] * fwd_values[x]
    return s


@jit
def _exhaustive(
    q_indices: I32,
    q_values: F32,
    a: int,
    m: int,
    post_indptr: I64,
    post_docs: Ordinals,
    post_vals: F32,
    acc: F32,
    state: U8,
    touched: I32,
    nt: int,
    seq: I64,
    live: U8,
    slot_offset: int,
    scores: F32,
    seqs: I64,
    slots: I64,
    size: int,
) -> tuple[int, int]:  # pragma: no cover - compiled
    """Score every matching document not yet scored (``state`` without ``_DONE``) exactly.

    Term at a time into the float32 accumulator, terms ascending (so each score is summed in the
    order scipy uses); a query whose postings reach n / DENSE_FRACTION scans all n documents
    instead of keeping a touched list. Returns ``(heap size, touched count)``; ``acc`` and
    ``state`` are left for the caller to reset (everywhere when the touched count is -1).
    """
    n = seq.size
    k = scores.size
    n_post = 0
    for j in range(m):
        n_post += post_indptr[q_indices[a + j] + 1] - post_indptr[q_indices[a + j]]
    if n_post * DENSE_FRACTION >= n:
        for j in range(m):
            t = q_indices[a + j]
            w = q_values[a + j]
            for x in range(post_indptr[t], post_indptr[t + 1]):
                d = post_docs[x]
                state[d] |= _TOUCHED
                acc[d] += w * post_vals[x]
        # the score test first: once the heap is full it fails for nearly every document, so the
        # branch predicts well (testing the scattered ``state`` first mispredicts often)
        thr = scores[0] if size == k else -np.inf
        for d in range(n):
            if acc[d] >= thr and state[d] == _TOUCHED and live[d] != 0:
                size = heap_push(scores, seqs, slots, size, acc[d], seq[d], slot_offset + d)
                if size == k:
                    thr = scores[0]
        return size, -1
    for j in range(m):
        t = q_indices[a + j]
        w = q_values[a + j]
        for x in range(post_indptr[t], post_indptr[t + 1]):
            d = post_docs[x]
            if state[d] == 0:
                state[d] = _TOUCHED
                touched[nt] = d
                nt += 1
            acc[d] += w * post_vals[x]
    thr = scores[0] if size == k else -np.inf
    for i in range(nt):
        d = touched[i]
        if acc[d] >= thr and state[d] == _TOUCHED and live[d] != 0:
            size = heap_push(scores, seqs, slots, size, acc[d], seq[d], slot_offset + d)
            if size == k:
                thr = scores[0]
    return size, nt


@jit
def _peak(x: F32, lo: int, hi: int) -> np.float32:  # pragma: no cover - compiled
    """``max(0, x[lo:hi].max())``: a tight loop without branches to mispredict."""
    peak: np.float32 = np.float32(0.0)
    for i in range(lo, hi):
        peak = max(peak, x[i])
    return peak


@jit
def _pruned(
    q_indices: I32,
    q_values: F32,
    a: int,
    m: int,
    coef: F32,
    ub_rest: Score,
    blk_indptr: I64,
    blk_docs: U16,
    blk_imps: U8,
    fwd_indptr: I64,
    fwd_indices: I32,
    fwd_values: F32,
    qdense: F32,
    racc: F32,
    state: U8,
    seq: I64,
    live: U8,
    slot_offset: int,
    scores: F32,
    seqs: I64,
    slots: I64,
    size: int,
) -> int:  # pragma: no cover - compiled
    """Range by range, accumulate upper bounds from the impact postings; rescore those that can win.

    ``coef[j]`` is query term j's weight x its term scale (0 for a non-essential term, whose
    bounds ``ub_rest`` add up to less than the threshold). A document whose bound reaches the
    threshold (the heap is full) is scored exactly from the forward index and offered.
    """
    n = seq.size
    dim = qdense.size
    n_ranges = (blk_indptr.size - 1) // dim
    for r in range(n_ranges):
        for j in range(m):
            c = coef[j]
            if c > 0:
                o = r * dim + q_indices[a + j]
                for x in range(blk_indptr[o], blk_indptr[o + 1]):
                    racc[blk_docs[x]] += c * blk_imps[x]
        base = r << RANGE_BITS
        span = min(1 << RANGE_BITS, n - base)
        cut = scores[0] / (1 + SLACK) - ub_rest  # a bound below this cannot reach the threshold
        for d0 in range(0, span, SCAN_CHUNK):
            d1 = min(d0 + SCAN_CHUNK, span)
            peak = _peak(racc, d0, d1)  # a branch-free look first: candidates are rare
            if peak < cut or peak <= 0:
                continue
            for d in range(d0, d1):
                if racc[d] >= cut and racc[d] > 0:
                    g = base + d
                    if state[g] == 0 and live[g] != 0:
                        s = _exact_score(g, fwd_indptr, fwd_indices, fwd_values, qdense)
                        if s >= scores[0]:
                            size = heap_push(scores, seqs, slots, size, s, seq[g], slot_offset + g)
                            cut = scores[0] / (1 + SLACK) - ub_rest
        racc[:span] = 0.0
    return size


@jit
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
    scratch: Scratch,
    share: float = ESSENTIAL_SHARE,
    min_docs: int = PRUNE_MIN_DOCS,
) -> None:  # pragma: no cover - compiled
    """Exact top-k of queries ``q_lo..q_hi`` over one segment, merged into their heaps.

    The threshold (the heap's k-th best score) is first seeded by scoring exactly the top
    documents of the strongest query terms (ranked by query weight x the term's largest
    weight). With a positive threshold, MaxScore: the weakest terms whose bounds sum below
    ``share`` x the threshold are non-essential; the essential terms' impact postings give every
    document an upper bound, range by range in a cache-sized accumulator, and only documents
    whose bound (plus the non-essential bounds) reaches the threshold are scored exactly from the
    forward index. Otherwise (a segment under ``min_docs``, no threshold yet, or ``prunable``
    false because some weight is negative) every matching document is scored exactly, term at
    a time. ``scratch`` is :func:`scratch` for at least this segment's size; it is left zero.
    """
    n = seq.size
    k = top_scores.shape[1]
    acc, state, touched, racc, qdense = scratch
    for qi in range(q_lo, q_hi):
        scores = top_scores[qi]
        seqs = top_seq[qi]
        slots = top_slot[qi]
        size = top_n[qi]
        a = q_indptr[qi]
        m = q_indptr[qi + 1] - a
        prune = prunable and n >= min_docs
        ub = np.empty(m, np.float32)
        for j in range(m):
            w = q_values[a + j]
            qdense[q_indices[a + j]] = w
            ub[j] = w * term_max[q_indices[a + j]]
            prune = prune and w >= 0
        nt = 0
        rank = np.arange(m)
        if prune:
            rank = np.argsort(-ub)
            for r in range(min(m, SEED_TERMS)):
                t = q_indices[a + rank[r]]
                for x in range(top_indptr[t], top_indptr[t + 1]):
                    d = top_docs[x]
                    if state[d] == 0:
                        state[d] = _TOUCHED | _DONE
                        touched[nt] = d
                        nt += 1
                        if live[d] != 0:
                            s = _exact_score(d, fwd_indptr, fwd_indices, fwd_values, qdense)
                            if size < k or s >= scores[0]:
                                size = heap_push(
                                    scores, seqs, slots, size, s, seq[d], slot_offset + d
                                )
        if prune and size == k and scores[0] > 0:
            coef = np.zeros(m, np.float32)
            ub_rest = np.float32(0.0)
            weak = True  # walking up from the weakest term: still within the non-essential set
            for r in range(m - 1, -1, -1):
                j = rank[r]
                weak = weak and (ub_rest + ub[j]) * (1 + SLACK) < share * scores[0]
                if weak:
                    ub_rest += ub[j]
                else:
                    coef[j] = q_values[a + j] * term_scale[q_indices[a + j]]
            size = _pruned(
                q_indices,
                q_values,
                a,
                m,
                coef,
                ub_rest,
                blk_indptr,
                blk_docs,
                blk_imps,
                fwd_indptr,
                fwd_indices,
                fwd_values,
                qdense,
                racc,
                state,
                seq,
                live,
                slot_offset,
                scores,
                seqs,
                slots,
                size,
            )
        else:
            size, nt = _exhaustive(
                q_indices,
                q_values,
                a,
                m,
                post_indptr,
                post_docs,
                post_vals,
                acc,
                state,
                touched,
                nt,
                seq,
                live,
                slot_offset,
                scores,
                seqs,
                slots,
                size,
            )
        if nt < 0:
            acc[:n] = 0.0
            state[:n] = 0
        else:
            for i in range(nt):
                acc[touched[i]] = 0.0
                state[touched[i]] = 0
        for j in range(m):
            qdense[q_indices[a + j]] = 0.0
        top_n[qi] = size
