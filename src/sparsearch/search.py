"""Engine-neutral search types: the `Searcher` protocol, `SearchParams`, `Hits`, and the filter
language (`Filter`, `Match`, `Range`, `HasId`, `IsNull`: defined in :mod:`sparsearch.filters`).

Every searcher (the embedded `SparseIndex`, a backend, the HTTP client) speaks these types, and
every layer above (retrievers, fusion, evaluation) consumes them. Only numpy here: no numba, no
torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from sparsearch.errors import InvalidInputError
from sparsearch.filters import (
    Condition,
    ConditionLike,
    Conditions,
    DocId,
    Filter,
    FilterLike,
    HasId,
    IsNull,
    Match,
    MatchValue,
    Range,
    as_filter,
    short_repr,
)
from sparsearch.sparse import SparseVectors

__all__ = [
    "Condition",
    "ConditionLike",
    "Conditions",
    "DocId",
    "Filter",
    "FilterLike",
    "HasId",
    "Hits",
    "IsNull",
    "Match",
    "MatchValue",
    "Range",
    "SearchParams",
    "Searcher",
    "as_filter",
]


@dataclass(frozen=True)
class Hits:
    """Top-k results of ``n`` queries, as aligned ``(n, k)`` arrays (the faiss contract).

    ``ids`` holds external ids and ``scores`` float32 scores, ordered by score (descending), then
    insertion order. ``ids`` is int64 when every id is an int (padding: ``-1``), else objects
    (padding: ``None``). Rows with fewer than ``k`` matches are padded with score ``-inf``, never
    with fake documents. ``payloads`` is an ``(n, k)`` object array of payload
    dicts (``None`` for padding or documents without one) when asked for, else ``None``.

    >>> hits = Hits(np.array([["a", None]], object), np.array([[2.0, -np.inf]], np.float32))
    >>> hits.row(0)
    [('a', 2.0)]
    """

    ids: np.ndarray
    scores: np.ndarray
    payloads: np.ndarray | None = None

    @classmethod
    def from_ordinals(
        cls, doc_ids: np.ndarray, ordinals: np.ndarray, scores: np.ndarray, real: np.ndarray, k: int
    ) -> Hits:
        """Hits padded to ``k`` columns from an ``(n, width <= k)`` top-k over positions of
        ``doc_ids`` (an object array); entries where ``real`` is false become padding.

        >>> Hits.from_ordinals(np.array(["a", "b"], object), np.array([[1, 0]]),
        ...                    np.array([[2.0, 0.0]]), np.array([[True, False]]), 3).ids.tolist()
        [['b', None, None]]
        """
        n, width = ordinals.shape
        ids = np.full((n, k), None, object)
        padded = np.full((n, k), -np.inf, np.float32)
        ids[:, :width] = np.where(real, doc_ids[np.maximum(ordinals, 0)], None)
        padded[:, :width] = np.where(real, scores, -np.inf)
        return cls(ids=ids, scores=padded)

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    def row(self, i: int) -> list[tuple[Any, float]]:
        """The real (non-padding) hits of query ``i`` as ``(id, score)`` pairs."""
        real = ~np.isneginf(self.scores[i])
        return list(zip(self.ids[i][real].tolist(), self.scores[i][real].tolist(), strict=True))


@dataclass(frozen=True)
class SearchParams:
    """Per-call search settings (the faiss ``SearchParameters`` idea).

    ``filter``: which documents may be returned (a :class:`Filter`, a mapping, or ids).
    ``return_payloads``: fill :attr:`Hits.payloads`. ``threads``: threads for the batch
    (``None``: every core).

    ``mode="approx"`` (the embedded engine; other searchers answer exactly): each large segment
    is searched approximately at the cheapest setting whose calibrated recall@10 against exact
    search reached ``recall`` (see ``docs/engine.md``). Experts set the algorithm's knobs
    instead: ``query_terms`` (the query's strongest terms whose blocks are read) and
    ``heap_factor`` (a block is read when its summary score reaches this share of the current
    k-th best score; lower reads more).

    >>> SearchParams(filter={"payload": {"lang": "en"}}, threads=1).filter
    Filter(must=(Match(key='lang', value='en'),))
    >>> SearchParams(mode="approx", recall=0.99).recall
    0.99
    """

    filter: Filter | None = None
    return_payloads: bool = False
    threads: int | None = None
    mode: str = "exact"
    recall: float = 0.95
    query_terms: int | None = None
    heap_factor: float | None = None

    def __init__(
        self,
        filter: FilterLike | None = None,  # noqa: A002 - the name users know from faiss/Qdrant
        return_payloads: bool = False,
        threads: int | None = None,
        mode: str = "exact",
        recall: float = 0.95,
        query_terms: int | None = None,
        heap_factor: float | None = None,
    ) -> None:
        if not isinstance(return_payloads, bool):
            raise InvalidInputError(
                f"return_payloads must be a bool, got {short_repr(return_payloads)}"
            )
        if threads is not None and not _positive_int(threads):
            raise InvalidInputError(
                f"threads must be a positive integer or None, got {short_repr(threads)}"
            )
        if mode not in ("exact", "approx"):
            raise InvalidInputError(f"mode must be 'exact' or 'approx', got {short_repr(mode)}")
        if not _number(recall) or not 0 < recall <= 1:
            raise InvalidInputError(f"recall must be a number in (0, 1], got {short_repr(recall)}")
        if (query_terms is None) != (heap_factor is None):
            raise InvalidInputError("query_terms and heap_factor are set together, or neither")
        if query_terms is not None and not _positive_int(query_terms):
            raise InvalidInputError(
                f"query_terms must be a positive integer, got {short_repr(query_terms)}"
            )
        if heap_factor is not None and (not _number(heap_factor) or not 0 < heap_factor <= 1):
            raise InvalidInputError(
                f"heap_factor must be a number in (0, 1], got {short_repr(heap_factor)}"
            )
        if query_terms is not None and mode != "approx":
            raise InvalidInputError("query_terms and heap_factor apply to mode='approx' only")
        object.__setattr__(self, "filter", as_filter(filter))
        object.__setattr__(self, "return_payloads", return_payloads)
        object.__setattr__(self, "threads", None if threads is None else int(threads))
        object.__setattr__(self, "mode", mode)
        object.__setattr__(self, "recall", float(recall))
        object.__setattr__(self, "query_terms", None if query_terms is None else int(query_terms))
        object.__setattr__(self, "heap_factor", None if heap_factor is None else float(heap_factor))


def _positive_int(value: object) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, np.integer)) and bool(value >= 1)


def _number(value: object) -> bool:
    return (
        not isinstance(value, bool)
        and isinstance(value, (int, float, np.integer, np.floating))
        and bool(np.isfinite(value))
    )


@runtime_checkable
class Searcher(Protocol):
    """Anything that answers top-``k`` sparse queries: the embedded index, a backend, a client."""

    def search(
        self, queries: SparseVectors, k: int = 10, *, params: SearchParams | None = None
    ) -> Hits:
        """The top ``k`` documents of each query row, as :class:`Hits`."""
        ...
