"""Numba kernels that build a segment's approximate-search structure (once per segment).

For every term, its postings are cut to the ``keep`` of largest weight (static pruning), then
grouped into blocks of documents that resemble each other (a one-pass clustering, as in Seismic):
``ceil(kept * block_fraction)`` documents spread over the weight order are the centroids, and each
kept document joins the centroid it shares most weight with on their strongest terms (other than
``t`` itself, which all of them hold). Each block
gets a summary: per term, the largest weight any of its documents gives it, pruned to the largest
entries that hold ``summary_energy`` of the summary's mass. Summaries are stored inverted per
term (summary term -> blocks), so a query scores a term's blocks by reading only the entries of
its own terms.

The output per term ``t`` (see :func:`term_blocks`): block sizes, the blocks' documents (local
ordinals, ascending within a block, blocks in order of their largest weight of ``t``), and the
inverted summaries (summary terms ascending, each with its blocks and weights).
"""

from __future__ import annotations

import math

import numpy as np

from sparsearch.index.kernel_types import F32, I32, I64, jit

BINS = 64  # summary pruning buckets an entry by value, BINS levels below the block's largest
SKETCH = 16  # a document's strongest terms, what the clustering compares


@jit
def sketches(indptr: I64, indices: I32, values: F32, m: int) -> tuple[I32, F32]:  # pragma: no cover
    """Each document's ``m`` strongest terms and weights (``-1`` / 0 past its length)."""
    n = indptr.size - 1
    terms = np.full((n, m), -1, np.int32)
    weights = np.zeros((n, m), np.float32)
    for d in range(n):
        a, b = indptr[d], indptr[d + 1]
        if b - a <= m:
            for j in range(b - a):
                terms[d, j] = indices[a + j]
                weights[d, j] = values[a + j]
        else:
            order = np.argsort(-values[a:b], kind="mergesort")
            for j in range(m):
                terms[d, j] = indices[a + order[j]]
                weights[d, j] = values[a + order[j]]
    return terms, weights


@jit
def _offsets(keys: I64 | I32, n_keys: int, start: I64, count: I64) -> int:  # pragma: no cover
    """Counting sort's middle step: each of ``keys[:n_keys]`` (in that order) gets the start of
    its run from the ``count`` of the keys before it, and its count back to 0; returns the
    total."""
    pos = 0
    for i in range(n_keys):
        key = keys[i]
        start[key] = pos
        pos += count[key]
        count[key] = 0
    return pos


@jit
def _cluster(
    docs: I64,
    t: int,
    c: int,
    sketch_terms: I32,
    sketch_weights: F32,
    start: I64,
    count: I64,
) -> I64:  # pragma: no cover - compiled
    """Assign each of ``docs`` (weight order) to one of ``c`` centroids spread over that order.

    Similarity: the dot product of the documents' sketches (their strongest terms) without the
    list's own term ``t``, which every one of them holds (it would make each document meet every
    centroid, a cost quadratic in the list), through a small inverted index of the centroids'
    sketches. A document that shares no other sketched term with any centroid joins the centroid
    nearest in weight rank, the order of ``t``'s weights. ``start`` and ``count`` are
    scratch over the vocabulary (all -1 and 0 on entry, and again on return).
    """
    n_docs = docs.size
    m = sketch_terms.shape[1]
    assign = np.empty(n_docs, np.int64)
    centroids = np.empty(c, np.int64)
    for j in range(c):
        centroids[j] = docs[(j * n_docs) // c]
    seen = np.empty(c * m, np.int64)
    n_seen = 0
    for j in range(c):
        for s in range(m):
            u = sketch_terms[centroids[j], s]
            if u < 0:
                break
            if u == t:
                continue
            if count[u] == 0:
                seen[n_seen] = u
                n_seen += 1
            count[u] += 1
    pos = _offsets(seen, n_seen, start, count)
    entry_centroid = np.empty(pos, np.int64)
    entry_weight = np.empty(pos, np.float32)
    for j in range(c):
        for s in range(m):
            u = sketch_terms[centroids[j], s]
            if u < 0:
                break
            if u == t:
                continue
            p = start[u] + count[u]
            entry_centroid[p] = j
            entry_weight[p] = sketch_weights[centroids[j], s]
            count[u] += 1
    acc = np.zeros(c, np.float32)
    hit = np.zeros(c, np.bool_)
    touched = np.empty(c, np.int64)
    for i in range(n_docs):
        d = docs[i]
        n_touched = 0
        for s in range(m):
            u = sketch_terms[d, s]
            if u < 0:
                break
            if start[u] < 0:  # no centroid has it
                continue
            w = sketch_weights[d, s]
            for p in range(start[u], start[u] + count[u]):
                j = entry_centroid[p]
                if not hit[j]:
                    hit[j] = True
                    touched[n_touched] = j
                    n_touched += 1
                acc[j] += w * entry_weight[p]
        best = min(c - 1, (i * c) // n_docs)
        best_dot = np.float32(0.0)
        for r in range(n_touched):
            j = touched[r]
            if acc[j] > best_dot:
                best_dot = acc[j]
                best = j
            acc[j] = 0
            hit[j] = False
        assign[i] = best
    for i in range(n_seen):
        start[seen[i]] = -1
        count[seen[i]] = 0
    return assign


@jit
def _blocks(docs: I64, assign: I64, c: int) -> tuple[I64, I32]:  # pragma: no cover - compiled
    """Group ``docs`` (weight order) by ``assign``: (block sizes, documents), blocks in order of
    their first (largest-weight) document, documents ascending within a block."""
    n_docs = docs.size
    rank = np.full(c, -1, np.int64)
    n_blocks = 0
    for i in range(n_docs):
        if rank[assign[i]] < 0:
            rank[assign[i]] = n_blocks
            n_blocks += 1
    sizes = np.zeros(n_blocks, np.int64)
    for i in range(n_docs):
        sizes[rank[assign[i]]] += 1
    fill = np.zeros(n_blocks, np.int64)
    for b in range(1, n_blocks):
        fill[b] = fill[b - 1] + sizes[b - 1]
    first = fill.copy()
    block_docs = np.empty(n_docs, np.int32)
    for i in range(n_docs):
        b = rank[assign[i]]
        block_docs[fill[b]] = docs[i]
        fill[b] += 1
    for b in range(n_blocks):
        block_docs[first[b] : first[b] + sizes[b]].sort()
    return sizes, block_docs


@jit
def _summaries(
    sizes: I64,
    block_docs: I32,
    energy: float,
    max_terms: int,
    fwd_indptr: I64,
    fwd_indices: I32,
    fwd_values: F32,
    start: I64,
    count: I64,
    smax: F32,
) -> tuple[I32, I64, I32, F32]:  # pragma: no cover - compiled
    """The blocks' pruned summaries, inverted: (terms ascending, entries per term, block of each
    entry, weight of each entry). Scratch ``start``/``count``/``smax`` are -1/0/0 on entry and
    on return."""
    cap = 0
    for x in range(block_docs.size):
        cap += fwd_indptr[block_docs[x] + 1] - fwd_indptr[block_docs[x]]
    entry_term = np.empty(cap, np.int64)
    entry_block = np.empty(cap, np.int32)
    entry_weight = np.empty(cap, np.float32)
    listed = np.empty(cap, np.int64)
    hist = np.zeros(BINS, np.float64)
    hist_n = np.zeros(BINS, np.int64)
    n_entries = 0
    first = 0
    for b in range(sizes.size):
        n_listed = 0
        for x in range(first, first + sizes[b]):
            d = block_docs[x]
            for y in range(fwd_indptr[d], fwd_indptr[d + 1]):
                u = fwd_indices[y]
                v = fwd_values[y]
                if smax[u] == 0 and v > 0:
                    listed[n_listed] = u
                    n_listed += 1
                if v > smax[u]:
                    smax[u] = v
        first += sizes[b]
        top = np.float32(0.0)
        total = 0.0
        for r in range(n_listed):
            v = smax[listed[r]]
            total += v
            top = max(top, v)
        # the largest entries holding ``energy`` of the mass (at most ``max_terms`` of them),
        # to a bucket's precision
        hist[:] = 0
        hist_n[:] = 0
        for r in range(n_listed):
            v = smax[listed[r]]
            h = min(BINS - 1, int((top - v) / top * BINS))
            hist[h] += v
            hist_n[h] += 1
        mass = 0.0
        kept = 0
        cut = BINS - 1
        for h in range(BINS):
            mass += hist[h]
            kept += hist_n[h]
            if kept > max_terms and h > 0:
                cut = h - 1
                break
            if mass >= energy * total:
                cut = h
                break
        for r in range(n_listed):
            u = listed[r]
            v = smax[u]
            smax[u] = 0
            if min(BINS - 1, int((top - v) / top * BINS)) <= cut:
                entry_term[n_entries] = u
                entry_block[n_entries] = b
                entry_weight[n_entries] = v
                n_entries += 1
    # invert by term (a counting sort: blocks stay ascending within a term)
    n_terms = 0
    for e in range(n_entries):
        u = entry_term[e]
        if count[u] == 0:
            listed[n_terms] = u
            n_terms += 1
        count[u] += 1
    terms = np.sort(listed[:n_terms]).astype(np.int32)
    per_term = np.empty(n_terms, np.int64)
    for r in range(n_terms):
        per_term[r] = count[terms[r]]
    _offsets(terms, n_terms, start, count)
    blocks = np.empty(n_entries, np.int32)
    weights = np.empty(n_entries, np.float32)
    for e in range(n_entries):
        u = entry_term[e]
        p = start[u] + count[u]
        blocks[p] = entry_block[e]
        weights[p] = entry_weight[e]
        count[u] += 1
    for r in range(n_terms):
        start[terms[r]] = -1
        count[terms[r]] = 0
    return terms, per_term, blocks, weights


@jit
def term_blocks(
    t: int,
    docs: I64,
    weights: F32,
    keep: int,
    block_fraction: float,
    energy: float,
    max_terms: int,
    sketch_terms: I32,
    sketch_weights: F32,
    fwd_indptr: I64,
    fwd_indices: I32,
    fwd_values: F32,
    start: I64,
    count: I64,
    smax: F32,
) -> tuple[I64, I32, I32, I64, I32, F32]:  # pragma: no cover - compiled
    """Term ``t``'s blocks from its postings ``docs``/``weights``: (block sizes, block
    documents, summary terms, entries per summary term, entry blocks, entry weights)."""
    order = np.argsort(-weights, kind="mergesort")[:keep]
    kept = docs[order]
    c = max(1, int(math.ceil(kept.size * block_fraction)))
    if c >= kept.size:  # a block per document
        assign = np.arange(kept.size)
    elif c > 1:
        assign = _cluster(kept, t, c, sketch_terms, sketch_weights, start, count)
    else:
        assign = np.zeros(kept.size, np.int64)
    sizes, block_docs = _blocks(kept, assign, c)
    summary = _summaries(
        sizes,
        block_docs,
        energy,
        max_terms,
        fwd_indptr,
        fwd_indices,
        fwd_values,
        start,
        count,
        smax,
    )
    return (sizes, block_docs, *summary)
