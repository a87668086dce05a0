"""The run type every hybrid stage speaks: ``{qid: {docid: score}}`` (the pytrec_eval shape)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

import numpy as np

Run = dict[str, dict[str, float]]


class Retriever(Protocol):
    """A first-stage retriever: index a corpus once, then retrieve the top ``k`` per query."""

    def index(self, corpus: Mapping[str, str]) -> None: ...

    def retrieve(self, queries: Mapping[str, str], k: int) -> Run: ...


def top_k(docs: Mapping[str, float], k: int) -> list[tuple[str, float]]:
    """The ``k`` best (docid, score) in trec_eval order: score descending, then docid descending."""
    return sorted(docs.items(), key=lambda item: (item[1], item[0]), reverse=True)[:k]


def cut(run: Mapping[str, Mapping[str, float]], k: int) -> Run:
    """Keep the top ``k`` documents of every query."""
    return {q: dict(top_k(docs, k)) for q, docs in run.items()}


def drop_identical_ids(run: Mapping[str, Mapping[str, float]]) -> Run:
    """Remove every hit whose document id equals its query id (ArguAna-style sets only)."""
    return {q: {d: s for d, s in docs.items() if d != q} for q, docs in run.items()}


def from_arrays(qids: Sequence[str], ids: np.ndarray, scores: np.ndarray) -> Run:
    """A run from ``n × k`` id and score arrays, skipping padding (id ``None`` or score ``-inf``)."""
    run: Run = {}
    for qid, row_ids, row_scores in zip(qids, ids, scores, strict=True):
        run[qid] = {
            str(d): float(s)
            for d, s in zip(row_ids, row_scores, strict=True)
            if d is not None and np.isfinite(s)
        }
    return run
