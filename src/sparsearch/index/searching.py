"""Top-k search over one snapshot: the segments' kernels (exact, or approximate where asked and
worth it), threads, and the hits' ids."""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from sparsearch.index import approx, kernels
from sparsearch.index.approx_kernels import search_approx
from sparsearch.index.listed_kernels import search_listed
from sparsearch.index.segment import Segment
from sparsearch.index.snapshot import Snapshot
from sparsearch.search import Hits, SearchParams
from sparsearch.sparse import SparseVectors

_NO_SEQ = np.iinfo(np.int64).max
_local = threading.local()  # per thread: the search kernel's scratch arrays


def _scratch(n: int, dim: int) -> kernels.Scratch:
    """This thread's scratch arrays of the search kernel, for segments of up to ``n`` docs."""
    held = getattr(_local, "scratch", None)
    if held is None or held[0].size < n or held[-1].size < dim:
        held = _local.scratch = kernels.scratch(n, dim)
    return held


def _approx_setting(
    seg: Segment, allowed: int, params: SearchParams
) -> tuple[approx.ApproxPart, tuple[int, float]] | None:
    """The part and (query_terms, heap_factor) to search ``seg`` approximately with, or None
    when it is searched exactly: exact mode, a small segment, negative weights (summaries
    would not bound them), a filter or deletions leaving under half of its documents
    (``allowed``), or a recall no calibrated setting reached."""
    if params.mode != "approx" or not approx.eligible(seg):
        return None
    if allowed < approx.MIN_ALLOWED * seg.n:
        return None
    part = approx.part_of(seg)
    if params.query_terms is not None and params.heap_factor is not None:
        return part, (params.query_terms, params.heap_factor)
    rung = part.rung_for(params.recall)
    return None if rung is None else (part, approx.LADDER[rung])


def search_snapshot(snap: Snapshot, queries: SparseVectors, k: int, params: SearchParams) -> Hits:
    """The top ``k`` of each query over ``snap`` (arguments already checked): exact, or
    approximate on the segments where ``params`` asks for it and it pays."""
    n = queries.n
    top_scores = np.full((n, k), -np.inf, np.float32)
    top_seq = np.full((n, k), _NO_SEQ, np.int64)
    top_slot = np.full((n, k), -1, np.int64)
    top_n = np.zeros(n, np.int64)
    heaps = (top_scores, top_seq, top_slot, top_n)
    plans = snap.plans(params.filter)
    settings = [
        None if listed is not None else _approx_setting(seg, allowed, params)
        for seg, _, _, listed, allowed in plans
    ]
    largest = max((seg.n for seg, *_ in plans), default=0)
    dim = snap.dim or 0

    def work(lo: int, hi: int) -> None:
        scratch = _scratch(largest, dim)
        for (seg, offset, live, listed, _), setting in zip(plans, settings, strict=True):
            if setting is not None:
                part, (query_terms, heap_factor) = setting
                search_approx(
                    queries.indptr,
                    queries.indices,
                    queries.values,
                    lo,
                    hi,
                    query_terms,
                    heap_factor,
                    *part.kernel_arrays(),
                    seg.fwd_indptr,
                    seg.fwd_indices,
                    seg.fwd_values,
                    seg.seq,
                    live,
                    offset,
                    *heaps,
                    *approx.scratch(largest, dim, part.max_blocks),
                )
                continue
            if listed is not None:
                search_listed(
                    queries.indptr,
                    queries.indices,
                    queries.values,
                    lo,
                    hi,
                    listed,
                    seg.fwd_indptr,
                    seg.fwd_indices,
                    seg.fwd_values,
                    seg.seq,
                    offset,
                    top_scores,
                    top_seq,
                    top_slot,
                    top_n,
                    scratch[-1],
                )
                continue
            kernels.search_segment(
                queries.indptr,
                queries.indices,
                queries.values,
                lo,
                hi,
                *seg.search_arrays(),
                seg.seq,
                live,
                offset,
                *heaps,
                scratch,
            )

    threads = max(1, min(params.threads or os.cpu_count() or 1, n))
    if plans and threads == 1:
        work(0, n)
    elif plans:
        bounds = np.linspace(0, n, threads + 1).astype(int)
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(work, bounds[:-1], bounds[1:]))
    kernels.sort_heaps(top_scores, top_seq, top_slot, top_n)
    payloads = snap.payloads_of_slots(top_slot) if params.return_payloads else None
    return Hits(ids=snap.decode_slots(top_slot), scores=top_scores, payloads=payloads)
