"""What every export target shares, and the protocol of searchable external engines.

A :class:`Target` receives a stream of document batches: :meth:`Target.begin` once (the vector
space and the payload fields), :meth:`Target.write` per batch, :meth:`Target.finish` at the end.
File formats (CIFF, Anserini, bulk NDJSON) are targets; engines are :class:`Backend` targets that
can also be searched, counted and deleted from, so one :class:`~sparsearch.search.Searcher` answers
the same queries the embedded index does.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import numpy as np
from tqdm.auto import tqdm

from sparsearch.errors import BackendError, InvalidInputError
from sparsearch.filters import DocId
from sparsearch.index.checks import check_batch
from sparsearch.search import Hits, SearchParams
from sparsearch.sparse import SparseVectors

Payload = dict[str, Any] | None
Batch = tuple[list[DocId], SparseVectors, list[Payload]]
"""``(ids, vectors, payloads)``: one batch of documents, aligned by row."""

Fields = Mapping[str, set[str]]
"""Payload field -> its kinds ("keyword", "integer", "float", "boolean", "json"), as
:meth:`SparseIndex.payload_fields` reports them."""

T = TypeVar("T")


class Target(ABC):
    """Where an export writes: call :meth:`begin`, then :meth:`write` per batch, then
    :meth:`finish` (file targets publish their output atomically there)."""

    @abstractmethod
    def begin(self, dim: int, vocab: Sequence[str] | None, fields: Fields) -> None:
        """Prepare for vectors of ``dim`` dimensions (token names ``vocab``, if known) and the
        payload ``fields`` (create the collection, the mapping, open the files)."""

    @abstractmethod
    def write(self, ids: list[DocId], vectors: SparseVectors, payloads: list[Payload]) -> None:
        """Store one batch (documents already stored are replaced)."""

    def finish(self) -> None:  # noqa: B027 - optional hook: most engines need nothing
        """Make everything written visible and durable (refresh, flush, rename files)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections and files."""

    def __enter__(self: T) -> T:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Backend(Target):
    """A collection (or index) in an external engine, searchable like the embedded index.

    Subclasses implement :meth:`begin`, :meth:`write`, :meth:`delete`, :meth:`count`,
    :meth:`search` and, where the engine has them, :meth:`is_transient` (errors worth a retry).
    :meth:`upsert` adds batching, a progress bar and retries on top of :meth:`write`.

    Ids come back as given: int ids as int64, str ids as objects (the :class:`Hits` contract).
    Filters are translated from :class:`~sparsearch.filters.Filter`; a condition the engine can't
    express raises :class:`~sparsearch.errors.UnsupportedFilterError` naming it.
    """

    retries: int = 3
    """Attempts after the first for a batch that failed with a transient error."""
    retry_delay: float = 0.5
    """Seconds before the first retry; doubled for each next one."""

    @abstractmethod
    def delete(self, ids: Sequence[DocId]) -> None:
        """Delete documents by id (ids not stored are ignored)."""

    @abstractmethod
    def count(self) -> int:
        """How many documents the engine holds (after :meth:`finish`)."""

    @abstractmethod
    def search(
        self, queries: SparseVectors, k: int = 10, *, params: SearchParams | None = None
    ) -> Hits:
        """Top ``k`` documents of each query row by dot product, as :class:`Hits`."""

    def is_transient(self, err: BaseException) -> bool:
        """Whether ``err`` is worth retrying (timeouts, refused connections, 429/503)."""
        return False

    def upsert(
        self,
        ids: Sequence[DocId],
        vectors: SparseVectors,
        payloads: Sequence[Mapping[str, Any] | None] | None = None,
        *,
        batch_size: int = 1000,
        progress: bool = False,
    ) -> int:
        """Store documents in batches of ``batch_size`` (each retried on transient errors);
        returns how many were written. Call :meth:`begin` first (or use
        :func:`sparsearch.backends.export`)."""
        checked = check_batch(ids, vectors, payloads)
        rows: list[Payload] = (
            [None if p is None else dict(p) for p in payloads]
            if payloads is not None
            else [None] * len(checked)
        )
        batch_size = positive(batch_size, "batch_size")
        bar = tqdm(total=len(checked), unit="doc", desc="upsert", disable=not progress)
        with bar:
            for start in range(0, len(checked), batch_size):
                stop = min(start + batch_size, len(checked))
                self._write_retried(checked[start:stop], vectors[start:stop], rows[start:stop])
                bar.update(stop - start)
        return len(checked)

    def _write_retried(
        self, ids: list[DocId], vectors: SparseVectors, payloads: list[Payload]
    ) -> None:
        self.with_retries(lambda: self.write(ids, vectors, payloads))

    def with_retries(self, call: Callable[[], T]) -> T:
        """``call()``, retried up to :attr:`retries` times with doubling delays while it fails
        with a transient error; other errors, and the last transient one, propagate."""
        delay = self.retry_delay
        for attempt in range(self.retries + 1):
            try:
                return call()
            except Exception as err:
                if attempt == self.retries or not self.is_transient(err):
                    raise
                time.sleep(delay)
                delay *= 2
        raise AssertionError("unreachable")  # pragma: no cover


Row = list[tuple[DocId, float, Payload]]
"""One query's hits from an engine: ``(id, score, payload)``, best first."""

_INT64_END = 1 << 63


def hits_from_rows(
    rows: Sequence[Row], k: int, with_payloads: bool, *, int_ids: bool | None = None
) -> Hits:
    """:class:`Hits` from each query's ``(id, score, payload)`` list, padded to ``k``. Ids are
    int64 (padding -1) when ``int_ids``, or, when it is ``None``, when every id returned is an int
    within int64; else objects (padding ``None``)."""
    if int_ids is None:
        int_ids = all(
            isinstance(d, int) and -_INT64_END <= d < _INT64_END for row in rows for d, _, _ in row
        )
    ids = np.full((len(rows), k), -1 if int_ids else None, np.int64 if int_ids else object)
    scores = np.full((len(rows), k), -np.inf, np.float32)
    payloads = np.full((len(rows), k), None, object) if with_payloads else None
    for i, row in enumerate(rows):
        for j, (doc_id, score, payload) in enumerate(row[:k]):
            ids[i, j], scores[i, j] = doc_id, score
            if payloads is not None:
                payloads[i, j] = payload
    return Hits(ids, scores, payloads)


def positive(value: Any, name: str) -> int:
    """``value`` as a positive int, or an :class:`InvalidInputError` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidInputError(f"{name} must be a positive integer, got {value!r}")
    return value


def engine_error(engine: str, action: str, err: BaseException) -> BackendError:
    """A :class:`BackendError` saying which engine failed at what, with its own message."""
    return BackendError(f"{engine}: {action} failed: {type(err).__name__}: {err}")
