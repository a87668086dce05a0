"""`Run`: ranked results of many queries as numpy arrays, and the one home of trec_eval ordering.

A run is what fusion, reranking and metrics consume: query ids, an ``(n, k)`` id array and an
``(n, k)`` score array, each row in trec_eval order (score descending, then document id
descending as text). Dicts (``{qid: {docid: score}}``, the pytrec_eval shape) and TREC files are
conversions at the edges. Ids keep their type: int ids stay ints.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from sparsearch.errors import InvalidInputError
from sparsearch.search import Hits


def id_text(ids: np.ndarray) -> np.ndarray:
    """Ids as a numpy string array: the form trec_eval compares them in."""
    return np.asarray(ids).astype(str)


def trec_order(ids: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Per row, the column order that puts ``(n, k)`` hits in trec_eval order.

    Score descending, ties by id descending as text; padding (score ``-inf``) last.

    >>> trec_order(np.array([["a", "c", "b"]], object), np.array([[1.0, 2.0, 2.0]])).tolist()
    [[1, 2, 0]]
    """
    n, k = scores.shape
    if n * k == 0:
        return np.zeros((n, k), np.int64)
    _, code = np.unique(id_text(ids.reshape(-1)), return_inverse=True)
    rows = np.repeat(np.arange(n), k)
    flat = np.lexsort((-code.reshape(-1), -scores.reshape(-1), rows))
    order: np.ndarray = (flat.reshape(n, k) - (np.arange(n) * k)[:, None]).astype(np.int64)
    return order


def top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact top ``k`` columns of each row of a dense score matrix: (positions, scores), best first.

    Ties keep the lower position first. ``k`` is capped at the number of columns.

    >>> pos, val = top_k(np.array([[0.1, 0.9, 0.5]]), 2)
    >>> pos.tolist(), val.tolist()
    ([[1, 2]], [[0.9, 0.5]])
    """
    k = min(int(k), scores.shape[1])
    if k < 1:
        empty = np.zeros((scores.shape[0], 0))
        return empty.astype(np.int64), empty.astype(scores.dtype)
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    part_scores = np.take_along_axis(scores, part, axis=1)
    order = np.lexsort((part, -part_scores), axis=1)
    return np.take_along_axis(part, order, axis=1), np.take_along_axis(part_scores, order, axis=1)


@dataclass(frozen=True)
class Run:
    """Ranked results of ``n`` queries: ``qids`` (n), ``ids`` (n × k), ``scores`` (n × k float64).

    Build one with :meth:`from_arrays`, :meth:`from_hits` or :meth:`from_dict`: they put every
    row in trec_eval order. Padding (fewer than ``k`` hits) has score ``-inf`` and id ``None``.
    ``payloads`` (n × k objects) come along when the searcher returned them.

    >>> run = Run.from_dict({"q1": {"a": 1.0, "b": 3.0}, "q2": {}})
    >>> run.ids.tolist(), run.scores.tolist()
    ([['b', 'a'], [None, None]], [[3.0, 1.0], [-inf, -inf]])
    >>> run.to_dict()
    {'q1': {'b': 3.0, 'a': 1.0}, 'q2': {}}
    """

    qids: np.ndarray
    ids: np.ndarray
    scores: np.ndarray
    payloads: np.ndarray | None = None

    @classmethod
    def from_arrays(
        cls,
        qids: Sequence[Any],
        ids: np.ndarray,
        scores: np.ndarray,
        payloads: np.ndarray | None = None,
    ) -> Run:
        """A run from aligned ``(n, k)`` id and score arrays (any order; padding: ``-inf``)."""
        qid_array = np.empty(len(qids), object)
        qid_array[:] = list(qids)
        ids = np.asarray(ids)
        scores = np.asarray(scores, dtype=np.float64)
        if ids.ndim != 2 or ids.shape != scores.shape or ids.shape[0] != qid_array.size:
            raise InvalidInputError(
                f"a run needs {qid_array.size} query ids and (n, k) ids and scores of one shape, "
                f"got {ids.shape} and {scores.shape}"
            )
        if np.isnan(scores).any() or np.isposinf(scores).any():
            raise InvalidInputError("run scores must be finite (-inf marks padding)")
        if len(set(qid_array.tolist())) != qid_array.size:
            raise InvalidInputError("a run names a query id twice")
        padding = np.isneginf(scores)
        if ids.dtype == object:
            ids = ids.copy()
            ids[padding] = None
        if payloads is not None and payloads.shape != ids.shape:
            raise InvalidInputError(f"payloads of shape {payloads.shape} for hits {ids.shape}")
        order = trec_order(ids, scores)
        return cls(
            qid_array,
            np.take_along_axis(ids, order, axis=1),
            np.take_along_axis(scores, order, axis=1),
            None if payloads is None else np.take_along_axis(payloads, order, axis=1),
        )

    @classmethod
    def from_hits(cls, qids: Sequence[Any], hits: Hits) -> Run:
        """A run from a searcher's :class:`~sparsearch.search.Hits` (one row per query id)."""
        return cls.from_arrays(qids, hits.ids, hits.scores, hits.payloads)

    @classmethod
    def from_dict(cls, run: Mapping[Any, Mapping[Any, float]]) -> Run:
        """A run from ``{qid: {docid: score}}``."""
        k = max((len(docs) for docs in run.values()), default=0)
        ids = np.full((len(run), k), None, object)
        scores = np.full((len(run), k), -np.inf)
        for row, docs in enumerate(run.values()):
            ids[row, : len(docs)] = list(docs)
            scores[row, : len(docs)] = np.fromiter(docs.values(), np.float64, len(docs))
        if np.isneginf(scores[ids != np.array(None)]).any():
            raise InvalidInputError("run scores must be finite")
        return cls.from_arrays(list(run), ids, scores)

    def __len__(self) -> int:
        return int(self.qids.size)

    @property
    def k(self) -> int:
        """Columns per row (the deepest query's number of hits, with padding)."""
        return int(self.scores.shape[1])

    def valid(self) -> np.ndarray:
        """``(n, k)`` mask of real hits (not padding)."""
        return ~np.isneginf(self.scores)

    def row(self, i: int) -> list[tuple[Any, float]]:
        """Query ``i``'s real hits as ``(id, score)`` pairs, in trec_eval order."""
        keep = self.valid()[i]
        return list(zip(self.ids[i][keep].tolist(), self.scores[i][keep].tolist(), strict=True))

    def __iter__(self) -> Iterator[tuple[Any, list[tuple[Any, float]]]]:
        """``(qid, [(id, score), ...])`` per query."""
        for i, qid in enumerate(self.qids.tolist()):
            yield qid, self.row(i)

    def to_dict(self) -> dict[Any, dict[Any, float]]:
        """``{qid: {docid: score}}`` in trec_eval order (padding left out)."""
        return {qid: dict(hits) for qid, hits in self}

    def cut(self, k: int) -> Run:
        """The top ``k`` hits of every query."""
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise InvalidInputError(f"k must be a positive integer, got {k!r}")
        width = min(int(k), self.k)
        payloads = None if self.payloads is None else self.payloads[:, :width]
        return Run(self.qids, self.ids[:, :width], self.scores[:, :width], payloads)

    def select(self, qids: Sequence[Any]) -> Run:
        """The rows of these query ids, in that order (an unknown id raises)."""
        position = {qid: i for i, qid in enumerate(self.qids.tolist())}
        missing = [qid for qid in qids if qid not in position]
        if missing:
            raise InvalidInputError(f"the run has no query {missing[0]!r}")
        rows = np.array([position[qid] for qid in qids], np.int64)
        payloads = None if self.payloads is None else self.payloads[rows]
        return Run(self.qids[rows], self.ids[rows], self.scores[rows], payloads)

    def drop_identical_ids(self) -> Run:
        """Remove every hit whose document id equals its query id (ArguAna-style sets only)."""
        same = id_text(self.ids) == id_text(self.qids)[:, None]
        if not same.any():
            return self
        scores = np.where(same, -np.inf, self.scores)
        return Run.from_arrays(self.qids.tolist(), self.ids, scores, self.payloads)
