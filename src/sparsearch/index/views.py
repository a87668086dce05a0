"""Views derived from the segments: search plans (the kernel's live masks), slot tables, term
statistics."""

from __future__ import annotations

import numpy as np

from sparsearch.index.segment import Segment
from sparsearch.search import DocId, Filter
from sparsearch.sparse import TermStats

Plan = tuple[Segment, int, np.ndarray]
"""(segment, its first slot, a uint8 mask of the documents the search may return)."""


def search_plans(
    segments: list[Segment], offsets: np.ndarray, where: dict[DocId, int], flt: Filter | None
) -> list[Plan]:
    """One plan per segment that holds an allowed document, largest segment first.

    ``where`` maps each live id to its packed (segment number, local ordinal).
    """
    allowed: dict[int, list[int]] | None = None
    if flt is not None and flt.ids is not None:
        allowed = {}
        for doc_id in flt.ids:
            packed = where.get(doc_id)
            if packed is not None:
                allowed.setdefault(packed >> 32, []).append(packed & 0xFFFFFFFF)
    plans: list[Plan] = []
    for seg, offset in zip(segments, offsets.tolist(), strict=False):
        if flt is None:
            live = (~seg.deleted).view(np.uint8)
        else:
            mask = ~seg.deleted
            if allowed is not None:
                chosen = np.zeros(seg.n, bool)
                chosen[allowed.get(seg.number, [])] = True
                mask &= chosen
            if flt.payload:
                mask &= np.fromiter(
                    (flt.matches_payload(seg.payload(i)) for i in range(seg.n)), bool, seg.n
                )
            if not mask.any():
                continue
            live = mask.view(np.uint8)
        plans.append((seg, offset, live))
    plans.sort(key=lambda plan: -plan[0].n_live)
    return plans


def slot_offsets(segments: list[Segment]) -> np.ndarray:
    """The first slot of each segment, then the total: slots number documents across segments."""
    sizes = [seg.n for seg in segments]
    offsets: np.ndarray = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    return offsets


def slot_table(parts: list[np.ndarray]) -> np.ndarray:
    """Per-segment object columns end to end, then one ``None`` (what padding's slot -1 picks)."""
    return np.concatenate([*parts, np.full(1, None, object)])


def slot_payloads(segments: list[Segment]) -> np.ndarray:
    """Each slot's payload (``None`` where a segment keeps none), then the padding ``None``."""
    parts = []
    for seg in segments:
        column = np.full(seg.n, None, object)
        if seg.payloads is not None:
            column[:] = seg.payloads
        parts.append(column)
    return slot_table(parts)


def live_term_stats(segments: list[Segment], dim: int) -> TermStats:
    """How many live documents hold each term."""
    doc_freq = np.zeros(dim, np.int64)
    for seg in segments:
        live_entries = np.repeat(~seg.deleted, np.diff(seg.fwd_indptr))
        doc_freq += np.bincount(seg.fwd_indices[live_entries], minlength=dim)
    return TermStats(n_docs=sum(seg.n_live for seg in segments), doc_freq=doc_freq)
