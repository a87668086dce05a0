"""Numba kernels of the engine: the hot loops, over plain arrays.

Every kernel has a pure-numpy twin in :mod:`sparsearch.index.reference` with the same signature and
the same results; the tests compare the two. Kernels release the GIL (``nogil``) so batch search can
spread queries over Python threads, and cache their machine code on disk (``cache``).

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


@nb.njit(**_JIT)
def _sift_down(scores, seqs, slots, size, score, seq, slot):  # pragma: no cover - compiled
    """Put hit (score, seq, slot) at the root of the heap's first ``size`` entries and restore it."""
    i = 0
    while True:
        child = 2 * i + 1
        if child >= size:
            break
        if child + 1 < size and _worse(scores[child + 1], seqs[child + 1], scores[child],
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


@nb.njit(**_JIT)
def sort_heaps(top_scores, top_seq, top_slot, top_n):  # pragma: no cover - compiled
    """Turn each row's heap into its hits best first (score desc, seq asc), in place."""
    for qi in range(top_n.size):
        scores, seqs, slots = top_scores[qi], top_seq[qi], top_slot[qi]
        for end in range(top_n[qi] - 1, 0, -1):  # heapsort: the worst kept hit goes last
            score, seq, slot = scores[end], seqs[end], slots[end]
            scores[end], seqs[end], slots[end] = scores[0], seqs[0], slots[0]
            _sift_down(scores, seqs, slots, end, score, seq, slot)


@nb.njit(**_JIT)
def term_bounds(post_indptr, post_docs, post_vals, top):  # pragma: no cover - compiled
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
            top_docs[out:out + want] = post_docs[a:b]
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


RANGE_BITS = 16  # impact postings are grouped by ranges of 2**16 documents (uint16 ordinals)
IMPACT_LEVELS = 255  # each weight is rounded up to one of this many steps of its term's maximum


@nb.njit(**_JIT)
def impact_blocks(post_indptr, post_docs, post_vals, term_max, n):  # pragma: no cover - compiled
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
            term_scale[t] = np.float32(term_max[t] / IMPACT_LEVELS * (1 + 1e-6))
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


def scratch(n: int, dim: int) -> tuple[np.ndarray, ...]:
    """Working arrays of :func:`search_segment` for segments of up to ``n`` documents.

    ``(acc, state, touched, racc, qdense)``, zero; the kernel leaves them zero again, so one
    thread can reuse them call after call (allocating and clearing them per call costs more than
    a small query's search).
    """
    return (np.zeros(n, np.float32), np.zeros(n, np.uint8), np.empty(n, np.int32),
            np.zeros(min(n, 1 << RANGE_BITS), np.float32), np.zeros(dim, np.float32))


SEED_TERMS = 8  # the threshold is seeded from the top documents of this many strongest terms
ESSENTIAL_SHARE = 0.15  # non-essential bounds sum below this share of the threshold
# below one range of documents the exact accumulator is cache-resident already and pruning's
# fixed costs (seeding, scanning the range) outweigh what it saves (measured on the real data)
PRUNE_MIN_DOCS = 1 << RANGE_BITS
SCAN_CHUNK = 256  # bounds are checked this many documents at a time, branch-free first
SLACK = 1e-4  # relative margin on every pruning bound: float32 rounding never prunes a winner
_TOUCHED, _DONE = np.uint8(1), np.uint8(2)  # a document's state during one query


@nb.njit(**_JIT)
def _exact_score(d, fwd_indptr, fwd_indices, fwd_values, qdense):  # pragma: no cover - compiled
    """Document ``d``'s dot product with the dense query, summed in its term order (as scipy)."""
    s = np.float32(0.0)
    for x in range(fwd_indptr[d], fwd_indptr[d + 1]):
        s += qdense[fwd_indices[x]] * fwd_values[x]
    return s


@nb.njit(**_JIT)
def _exhaustive(q_indices, q_values, a, m, post_indptr, post_docs, post_vals, acc, state,
                touched, nt, seq, live, slot_offset, scores, seqs, slots,
                size):  # pragma: no cover - compiled
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


@nb.njit(**_JIT)
def _peak(x, lo, hi):  # pragma: no cover - compiled
    """``max(0, x[lo:hi].max())``: a tight loop without branches to mispredict."""
    peak = np.float32(0.0)
    for i in range(lo, hi):
        peak = max(peak, x[i])
    return peak


@nb.njit(**_JIT)
def _pruned(q_indices, q_values, a, m, coef, ub_rest, blk_indptr, blk_docs, blk_imps, fwd_indptr,
            fwd_indices, fwd_values, qdense, racc, state, seq, live, slot_offset, scores, seqs,
            slots, size):  # pragma: no cover - compiled
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
                            size = heap_push(scores, seqs, slots, size, s, seq[g],
                                             slot_offset + g)
                            cut = scores[0] / (1 + SLACK) - ub_rest
        racc[:span] = 0.0
    return size


@nb.njit(**_JIT)
def search_segment(q_indptr, q_indices, q_values, q_lo, q_hi, post_indptr, post_docs, post_vals,
                   term_max, top_indptr, top_docs, term_scale, blk_indptr, blk_docs, blk_imps,
                   fwd_indptr, fwd_indices, fwd_values, prunable, seq, live, slot_offset,
                   top_scores, top_seq, top_slot, top_n, scratch, share=ESSENTIAL_SHARE,
                   min_docs=PRUNE_MIN_DOCS):  # pragma: no cover - compiled
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
                                size = heap_push(scores, seqs, slots, size, s, seq[d],
                                                 slot_offset + d)
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
            size = _pruned(q_indices, q_values, a, m, coef, ub_rest, blk_indptr, blk_docs,
                           blk_imps, fwd_indptr, fwd_indices, fwd_values, qdense, racc, state,
                           seq, live, slot_offset, scores, seqs, slots, size)
        else:
            size, nt = _exhaustive(q_indices, q_values, a, m, post_indptr, post_docs, post_vals,
                                   acc, state, touched, nt, seq, live, slot_offset, scores,
                                   seqs, slots, size)
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
