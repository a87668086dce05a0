"""The search kernel for a selective filter: score only the listed documents.

When a filter leaves few documents of a segment, reading them from the forward index costs less
than any walk over the query terms' postings: each listed document's dot product with the dense
query, then the same bounded heaps as :mod:`sparsearch.index.kernels`. Exact, like every path.
"""

from __future__ import annotations

import numpy as np

from sparsearch.index.kernel_types import F32, I32, I64, jit
from sparsearch.index.kernels import heap_push


@jit
def search_listed(
    q_indptr: I64,
    q_indices: I32,
    q_values: F32,
    q_lo: int,
    q_hi: int,
    docs: I64,
    fwd_indptr: I64,
    fwd_indices: I32,
    fwd_values: F32,
    seq: I64,
    slot_offset: int,
    top_scores: F32,
    top_seq: I64,
    top_slot: I64,
    top_n: I64,
    qdense: F32,
) -> None:  # pragma: no cover - compiled
    """Exact top-k of queries ``q_lo..q_hi`` over the documents ``docs`` (local ordinals) of one
    segment, merged into their heaps. A document matches when it shares a term with the query;
    its score is summed in its own term order (as the pruned path's exact scores)."""
    present = np.zeros(qdense.size, np.uint8)
    for qi in range(q_lo, q_hi):
        a, b = q_indptr[qi], q_indptr[qi + 1]
        for j in range(a, b):
            qdense[q_indices[j]] = q_values[j]
            present[q_indices[j]] = 1
        scores, seqs, slots = top_scores[qi], top_seq[qi], top_slot[qi]
        size = top_n[qi]
        k = scores.size
        for i in range(docs.size):
            d = docs[i]
            s = np.float32(0.0)
            hit = False
            for x in range(fwd_indptr[d], fwd_indptr[d + 1]):
                t = fwd_indices[x]
                if present[t]:
                    hit = True
                    s += qdense[t] * fwd_values[x]
            if hit and (size < k or s >= scores[0]):
                size = heap_push(scores, seqs, slots, size, s, seq[d], slot_offset + d)
        for j in range(a, b):
            qdense[q_indices[j]] = 0.0
            present[q_indices[j]] = 0
        top_n[qi] = size
