"""The approximate search kernel: blocks of statically pruned postings, skipped by their summaries.

Per query, its ``query_terms`` strongest terms are visited strongest first. For each, every block
of the term's kept postings is scored by its summary (:mod:`sparsearch.index.approx_build`):
reading, for each query term, that term's summary entries. A block whose summary score is below
``heap_factor`` times the current k-th best score is skipped; the documents of the others are
scored exactly from the forward index (each document once per query) and offered to the same
bounded heaps as the exact kernels, so every returned score is the exact one.
"""

from __future__ import annotations

from typing import Any

import numba as nb
import numpy as np
from llvmlite import ir  # type: ignore[import-untyped]
from numba.core import cgutils
from numba.extending import intrinsic

from sparsearch.index.kernel_types import F32, I32, I64, U8, U16, U32, jit
from sparsearch.index.kernels import _exact_score, heap_push

if nb.config.DISABLE_JIT:  # type: ignore[attr-defined]

    def prefetch(array: np.ndarray, index: int | np.integer[Any]) -> None:
        """Without the JIT there is nothing to prefetch."""

else:

    @intrinsic
    def prefetch(typingctx: Any, array: Any, index: Any) -> Any:  # pragma: no cover - compiled
        """Ask the CPU to bring ``array[index]`` into cache (LLVM's prefetch: read, keep)."""
        signature = nb.types.void(array, index)

        def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
            view = context.make_array(sig.args[0])(context, builder, args[0])
            pointer = cgutils.get_item_pointer(  # type: ignore[no-untyped-call]
                context, builder, sig.args[0], view, [args[1]], wraparound=False
            )
            byte_pointer = ir.IntType(8).as_pointer()
            i32 = ir.IntType(32)
            kind = ir.FunctionType(ir.VoidType(), [byte_pointer, i32, i32, i32])
            function = cgutils.get_or_insert_function(  # type: ignore[no-untyped-call]
                builder.module, kind, "llvm.prefetch.p0i8"
            )
            flags = [ir.Constant(i32, 0), ir.Constant(i32, 3), ir.Constant(i32, 1)]
            builder.call(function, [builder.bitcast(pointer, byte_pointer), *flags])
            return context.get_dummy_value()

        return signature, codegen


@jit
def search_approx(
    q_indptr: I64,
    q_indices: I32,
    q_values: F32,
    q_lo: int,
    q_hi: int,
    query_terms: int,
    heap_factor: float,
    term_block: I64,
    block_indptr: I64,
    block_docs: I32,
    summary_indptr: I64,
    summary_terms: U16 | I32,
    summary_entries: U32 | I64,
    summary_blocks: U16 | I32,
    summary_weights: U8,
    summary_scale: float,
    fwd_indptr: I64,
    fwd_indices: I32,
    fwd_values: F32,
    seq: I64,
    live: U8,
    slot_offset: int,
    top_scores: F32,
    top_seq: I64,
    top_slot: I64,
    top_n: I64,
    qdense: F32,
    visited: U8,
    visit_list: I32,
    block_scores: F32,
) -> int:  # pragma: no cover - compiled
    """Approximate top-k of queries ``q_lo..q_hi`` over one segment into their heaps.

    ``live[d]`` is 0 for a document that may not be returned (deleted or filtered out). The
    scratch arrays (``qdense``: dim, ``visited``/``visit_list``: n, ``block_scores``: the most
    blocks of any term) are zero on entry and left zero. Returns the documents scored.
    """
    k = top_scores.shape[1]
    scored = 0
    for qi in range(q_lo, q_hi):
        qa, qb = q_indptr[qi], q_indptr[qi + 1]
        scores, seqs, slots = top_scores[qi], top_seq[qi], top_slot[qi]
        size = top_n[qi]
        for j in range(qa, qb):
            qdense[q_indices[j]] = q_values[j]
        strongest = np.argsort(-q_values[qa:qb], kind="mergesort")
        n_visited = 0
        for r in range(min(query_terms, qb - qa)):
            t = q_indices[qa + strongest[r]]
            b0, b1 = term_block[t], term_block[t + 1]
            if b0 == b1:
                continue
            # summary scores of t's blocks: query terms and t's summary terms both ascend
            s1 = summary_indptr[t + 1]
            lo = summary_indptr[t]
            for j in range(qa, qb):
                u = q_indices[j]
                hi = s1
                while lo < hi:
                    mid = (lo + hi) >> 1
                    if summary_terms[mid] < u:
                        lo = mid + 1
                    else:
                        hi = mid
                if lo < s1 and summary_terms[lo] == u:
                    w = q_values[j] * summary_scale
                    for e in range(summary_entries[lo], summary_entries[lo + 1]):
                        block_scores[summary_blocks[e]] += w * summary_weights[e]
            for b in range(b1 - b0):
                estimate = block_scores[b]
                block_scores[b] = 0
                if size == k and estimate < heap_factor * scores[0]:
                    continue
                x0, x1 = block_indptr[b0 + b], block_indptr[b0 + b + 1]
                # the block's documents lie anywhere in the forward index: ask for all of their
                # rows at once, so the cache misses overlap instead of queueing
                for x in range(x0, x1):
                    prefetch(fwd_indptr, block_docs[x])
                for x in range(x0, x1):
                    a = fwd_indptr[block_docs[x]]
                    prefetch(fwd_indices, a)
                    prefetch(fwd_values, a)
                for x in range(x0, x1):
                    d = block_docs[x]
                    if visited[d] != 0:
                        continue
                    visited[d] = 1
                    visit_list[n_visited] = d
                    n_visited += 1
                    if live[d] != 0:
                        score = _exact_score(d, fwd_indptr, fwd_indices, fwd_values, qdense)
                        size = heap_push(scores, seqs, slots, size, score, seq[d], slot_offset + d)
        for i in range(n_visited):
            visited[visit_list[i]] = 0
        for j in range(qa, qb):
            qdense[q_indices[j]] = 0
        top_n[qi] = size
        scored += n_visited
    return scored
