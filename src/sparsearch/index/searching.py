"""Exact top-k search over one snapshot: the segments' kernels, threads, and the hits' ids."""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from sparsearch.index import kernels
from sparsearch.index.listed_kernels import search_listed
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


def search_snapshot(snap: Snapshot, queries: SparseVectors, k: int, params: SearchParams) -> Hits:
    """The exact top ``k`` of each query over ``snap`` (arguments already checked)."""
    n = queries.n
    top_scores = np.full((n, k), -np.inf, np.float32)
    top_seq = np.full((n, k), _NO_SEQ, np.int64)
    top_slot = np.full((n, k), -1, np.int64)
    top_n = np.zeros(n, np.int64)
    plans = snap.plans(params.filter)
    largest = max((seg.n for seg, _, _, _ in plans), default=0)
    dim = snap.dim or 0

    def work(lo: int, hi: int) -> None:
        scratch = _scratch(largest, dim)
        for seg, offset, live, listed in plans:
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
                top_scores,
                top_seq,
                top_slot,
                top_n,
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
