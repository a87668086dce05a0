"""Engine-neutral search types: the `Searcher` protocol, `SearchParams`, `Filter` and `Hits`.

Every searcher (the embedded `SparseIndex`, a backend, the HTTP client) speaks these types, and
every layer above (retrievers, fusion, evaluation) consumes them. Only numpy here: no numba, no
torch.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from sparsearch.errors import InvalidInputError
from sparsearch.sparse import SparseVectors

DocId = str | int


@dataclass(frozen=True)
class Hits:
    """Top-k results of ``n`` queries, as aligned ``(n, k)`` arrays (the faiss contract).

    ``ids`` holds external ids and ``scores`` float32 scores, ordered by score (descending), then
    insertion order. Rows with fewer than ``k`` matches are padded with id ``None`` and score
    ``-inf``, never with fake documents. ``payloads`` is an ``(n, k)`` object array of payload
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
        return [
            (doc, float(score))
            for doc, score in zip(self.ids[i], self.scores[i], strict=True)
            if doc is not None
        ]


@dataclass(frozen=True, init=False)
class Filter:
    """Which documents a search may return.

    ``ids``: only these external ids (unknown ones are ignored). ``payload``: only documents whose
    payload has every given field equal to the given value. Both given: both must hold.

    >>> Filter(ids=["a", "b"], payload={"lang": "en"})  # doctest: +ELLIPSIS
    Filter(ids=frozenset({...}), payload={'lang': 'en'})
    """

    ids: frozenset[DocId] | None = None
    payload: Mapping[str, Any] = field(default_factory=dict)

    def __init__(
        self, ids: Iterable[DocId] | None = None, payload: Mapping[str, Any] | None = None
    ) -> None:
        if isinstance(ids, (str, bytes)):
            raise InvalidInputError("a filter of ids must be a collection, not a single string")
        object.__setattr__(self, "ids", None if ids is None else frozenset(_plain(i) for i in ids))
        if payload is not None and not isinstance(payload, Mapping):
            raise InvalidInputError(
                f"payload filter must be a mapping, got {type(payload).__name__}"
            )
        object.__setattr__(self, "payload", dict(payload or {}))

    def matches_payload(self, payload: Mapping[str, Any] | None) -> bool:
        """Whether a document's payload satisfies the payload conditions."""
        if not self.payload:
            return True
        if payload is None:
            return False
        return all(key in payload and payload[key] == value for key, value in self.payload.items())


FilterLike = Filter | Mapping[str, Any] | Iterable[DocId]


def as_filter(spec: FilterLike | None) -> Filter | None:
    """Accept a :class:`Filter`, a ``{"ids": ..., "payload": {...}}`` mapping, or a set of ids."""
    if spec is None or isinstance(spec, Filter):
        return spec
    if isinstance(spec, Mapping):
        unknown = set(spec) - {"ids", "payload"}
        if unknown:
            raise InvalidInputError(f"unknown filter keys {sorted(unknown)}; use 'ids', 'payload'")
        return Filter(ids=spec.get("ids"), payload=spec.get("payload"))
    if isinstance(spec, (str, bytes)):
        raise InvalidInputError("a filter of ids must be a collection, not a single string")
    if not isinstance(spec, Iterable):
        raise InvalidInputError(
            f"a filter is a Filter, a mapping or a collection of ids, got {type(spec).__name__}"
        )
    return Filter(ids=spec)


def _plain(doc_id: Any) -> Any:
    """numpy scalars to plain Python, so set membership matches stored ids."""
    return doc_id.item() if isinstance(doc_id, np.generic) else doc_id


@dataclass(frozen=True)
class SearchParams:
    """Per-call search settings (the faiss ``SearchParameters`` idea).

    ``filter``: which documents may be returned (a :class:`Filter`, a mapping, or ids).
    ``return_payloads``: fill :attr:`Hits.payloads`. ``threads``: threads for the batch
    (``None``: every core).

    >>> SearchParams(filter={"payload": {"lang": "en"}}, threads=1).filter
    Filter(ids=None, payload={'lang': 'en'})
    """

    filter: Filter | None = None
    return_payloads: bool = False
    threads: int | None = None

    def __init__(
        self,
        filter: FilterLike | None = None,  # noqa: A002 - the name users know from faiss/Qdrant
        return_payloads: bool = False,
        threads: int | None = None,
    ) -> None:
        if not isinstance(return_payloads, bool):
            raise InvalidInputError(f"return_payloads must be a bool, got {return_payloads!r}")
        if threads is not None and (
            isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) or threads < 1
        ):
            raise InvalidInputError(f"threads must be a positive integer or None, got {threads!r}")
        object.__setattr__(self, "filter", as_filter(filter))
        object.__setattr__(self, "return_payloads", return_payloads)
        object.__setattr__(self, "threads", None if threads is None else int(threads))


@runtime_checkable
class Searcher(Protocol):
    """Anything that answers top-``k`` sparse queries: the embedded index, a backend, a client."""

    def search(
        self, queries: SparseVectors, k: int = 10, *, params: SearchParams | None = None
    ) -> Hits:
        """The top ``k`` documents of each query row, as :class:`Hits`."""
        ...
