"""Dense search over an engine snapshot: faiss per segment, the engine's masks for filters.

Each segment's dense vectors (decoded once from its payloads, see :mod:`.stored`) get a faiss
index — ``IndexFlatIP`` (exact) or ``IndexHNSWFlat`` — cached for the segment's lifetime (its
copies with more tombstones share it). A search asks the snapshot for the same per-segment masks
the sparse search uses (tombstones and filter), hands them to faiss as an ``IDSelectorBitmap``,
and merges the segments' hits by score, then insertion order, like the engine does.
"""

from __future__ import annotations

import importlib
import threading
import weakref
from typing import Any

import numpy as np

from sparsearch.collection.config import DenseSpec
from sparsearch.collection.stored import dense_of
from sparsearch.errors import DimensionMismatchError
from sparsearch.index.snapshot import Snapshot
from sparsearch.search import Filter, Hits


def _faiss() -> Any:
    """faiss (``sparsearch[dense]``), untyped: its stubs lack the search parameters used here."""
    return importlib.import_module("faiss")


class _SegmentVectors:
    """One segment's dense vectors as a faiss index, and which documents have one."""

    def __init__(self, seg: Any, spec: DenseSpec) -> None:
        faiss = _faiss()
        rows = seg.payloads.payloads(np.arange(seg.n))
        matrix = np.zeros((seg.n, spec.dim), np.float32)
        self.present = np.zeros(seg.n, bool)
        self.index: Any
        for i, stored in enumerate(rows):
            vector = dense_of(stored, spec.dim)
            if vector is not None:
                matrix[i], self.present[i] = vector, True
        if spec.index == "hnsw":
            self.index = faiss.IndexHNSWFlat(spec.dim, spec.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        else:
            self.index = faiss.IndexFlatIP(spec.dim)
        self.index.add(matrix)
        self.ef_search = spec.hnsw_ef_search
        self.hnsw = spec.index == "hnsw"

    def search(
        self, queries: np.ndarray, k: int, mask: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        faiss = _faiss()
        allowed = mask & self.present
        width = min(k, int(allowed.sum()))
        if width == 0:
            empty = np.zeros((queries.shape[0], 0))
            return empty.astype(np.float32), empty.astype(np.int64)
        bits = np.packbits(allowed, bitorder="little")
        selector = faiss.IDSelectorBitmap(allowed.size, faiss.swig_ptr(bits))
        params = (
            faiss.SearchParametersHNSW(sel=selector, efSearch=max(self.ef_search, k))
            if self.hnsw
            else faiss.SearchParameters(sel=selector)
        )
        scores, local = self.index.search(queries, width, params=params)
        return scores, local


class DenseVectors:
    """Dense search over snapshots of one collection's engine."""

    def __init__(self, spec: DenseSpec) -> None:
        self.spec = spec
        self._segments: weakref.WeakKeyDictionary[Any, _SegmentVectors] = (
            weakref.WeakKeyDictionary()
        )
        self._lock = threading.Lock()

    def _vectors(self, seg: Any) -> _SegmentVectors:
        with self._lock:  # one build per segment, even when searches race for it
            held = self._segments.get(seg.payloads)
            if held is None:
                held = self._segments[seg.payloads] = _SegmentVectors(seg, self.spec)
            return held

    def search(self, snap: Snapshot, queries: np.ndarray, k: int, flt: Filter | None) -> Hits:
        """The top ``k`` documents of each query row (n × dim) by inner product on ``snap``."""
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        if queries.ndim != 2 or queries.shape[1] != self.spec.dim:
            raise DimensionMismatchError(
                f"dense queries of shape {queries.shape}; the collection's dense dim is "
                f"{self.spec.dim}"
            )
        n = queries.shape[0]
        scores, seqs, slots = [], [], []
        for seg, offset, mask, _, _ in snap.plans(flt):
            found, local = self._vectors(seg).search(queries, k, mask.view(bool))
            valid = local >= 0
            safe = np.where(valid, local, 0)
            scores.append(np.where(valid, found, -np.inf))
            seqs.append(np.where(valid, seg.seq[safe], np.iinfo(np.int64).max))
            slots.append(np.where(valid, offset + safe, -1))
        if not scores:
            top_scores = np.full((n, k), -np.inf, np.float32)
            top_slots = np.full((n, k), -1, np.int64)
        else:
            all_scores = np.concatenate(scores, axis=1)
            all_seqs = np.concatenate(seqs, axis=1)
            all_slots = np.concatenate(slots, axis=1)
            order = np.lexsort((all_seqs, -all_scores), axis=1)[:, :k]
            top_scores = np.take_along_axis(all_scores, order, 1).astype(np.float32)
            top_slots = np.take_along_axis(all_slots, order, 1)
            if top_scores.shape[1] < k:
                pad = k - top_scores.shape[1]
                top_scores = np.pad(top_scores, ((0, 0), (0, pad)), constant_values=-np.inf)
                top_slots = np.pad(top_slots, ((0, 0), (0, pad)), constant_values=-1)
        return Hits(ids=snap.decode_slots(top_slots), scores=top_scores, payloads=None)
