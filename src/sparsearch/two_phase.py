"""Two-phase search: find candidates with a query's high-weight tokens, rank them with all of them.

OpenSearch's ``neural_sparse_two_phase_processor`` idea over any index that can ``search`` and
``get``: phase 1 searches with the tokens whose weight is at least ``prune_ratio`` times the
query's largest (:func:`sparsearch.pruning.split_query`) for ``max(int(k * expansion),
min_window)`` candidates, phase 2 scores those candidates exactly with the whole query (dot
product with their stored vectors) and keeps the best ``k``. A document that shares only
low-weight tokens with the query is never a candidate: that is the price of the speed.

>>> from sparsearch.index import SparseIndex
>>> from sparsearch.sparse import SparseVectors
>>> index = SparseIndex()
>>> docs = SparseVectors.from_dicts([{0: 1.0}, {0: 0.5, 1: 2.0}, {1: 3.0}], dim=2)
>>> index.add(["a", "b", "c"], docs)
>>> query = SparseVectors.from_dicts([{0: 2.0, 1: 0.5}], dim=2)
>>> TwoPhaseSearcher(index, prune_ratio=0.5).search(query, k=3).row(0)
[('a', 2.0), ('b', 2.0)]
>>> index.search(query, k=3).row(0)
[('a', 2.0), ('b', 2.0), ('c', 1.5)]
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from sparsearch.errors import InvalidInputError
from sparsearch.hybrid.retrieval import check_k
from sparsearch.pruning import check_ratio, row_running_sums, split_query
from sparsearch.search import Hits, Searcher, SearchParams
from sparsearch.sparse import SparseVectors

__all__ = ["TwoPhaseSearcher"]


class StoredVectors(Searcher, Protocol):
    """A searcher that also returns the stored vectors of ids (as ``SparseIndex.get``)."""

    def get(self, ids: Any) -> SparseVectors:
        """The stored vectors of ``ids``, in that order."""
        ...


def _rescore(
    queries: SparseVectors, rows: npt.NDArray[np.int64], docs: SparseVectors
) -> npt.NDArray[np.float32]:
    """Dot product of ``docs[i]`` with ``queries[rows[i]]`` for each ``i``: float32 products
    added one by one in the document's term order, as the index sums its exact scores.

    >>> q = SparseVectors.from_dicts([{0: 1.0}, {1: 2.0}], dim=2)
    >>> d = SparseVectors.from_dicts([{0: 3.0, 1: 1.0}, {0: 3.0, 1: 1.0}], dim=2)
    >>> _rescore(q, np.array([0, 1]), d).tolist()
    [3.0, 2.0]
    """
    scores = np.zeros(docs.n, np.float32)
    if queries.nnz == 0 or docs.nnz == 0:
        return scores
    # each entry as one (query row, term) key: the queries' keys ascend (CSR order)
    q_keys = np.repeat(np.arange(queries.n, dtype=np.int64), queries.active_dims())
    q_keys = q_keys * docs.dim + queries.indices
    in_any = np.zeros(docs.dim, np.bool_)
    in_any[queries.indices] = True
    maybe = np.flatnonzero(in_any[docs.indices])  # entries whose term some query holds
    owner = np.repeat(np.arange(docs.n), docs.active_dims())[maybe]
    d_keys = rows[owner] * docs.dim + docs.indices[maybe]
    at = np.minimum(np.searchsorted(q_keys, d_keys), q_keys.size - 1)
    shared = q_keys[at] == d_keys
    products = queries.values[at[shared]] * docs.values[maybe[shared]]
    indptr = np.zeros(docs.n + 1, np.int64)
    np.cumsum(np.bincount(owner[shared], minlength=docs.n), out=indptr[1:])
    filled = indptr[1:] > indptr[:-1]
    scores[filled] = row_running_sums(indptr, products)[indptr[1:][filled] - 1]
    return scores


class TwoPhaseSearcher:
    """A :class:`~sparsearch.search.Searcher` that runs two-phase search over ``index``.

    ``index``: anything with ``search(queries, k, *, params)`` and ``get(ids)`` (a
    :class:`~sparsearch.SparseIndex`; one is read through a single pinned snapshot per call).
    ``prune_ratio`` in ``[0, 1]`` (OpenSearch's default 0.4; 0 puts every token in phase 1),
    ``expansion >= 1`` (candidates per result, OpenSearch's ``expansion_rate``, default 5) and
    ``min_window`` (at least this many candidates). ``params`` (filter, payloads, threads) apply
    to phase 1, so filtered-out documents are never candidates.

    Hits follow the index's conventions (padding, id types). Scores are the exact full-query
    scores; ties in them keep phase 1's order (higher high-token score first, then the index's
    insertion order), so exactly tied documents whose high-token scores differ may come back in
    another order than the exact search's.
    """

    def __init__(
        self,
        index: StoredVectors,
        *,
        prune_ratio: float = 0.4,
        expansion: float = 5.0,
        min_window: int = 0,
    ) -> None:
        if not isinstance(index, Searcher) or not callable(getattr(index, "get", None)):
            raise InvalidInputError(
                f"index must have search(queries, k, *, params) and get(ids), "
                f"got {type(index).__name__}"
            )
        if isinstance(expansion, (bool, np.bool_)) or not isinstance(
            expansion, (int, float, np.integer, np.floating)
        ):
            raise InvalidInputError(f"expansion must be a number, got {type(expansion).__name__}")
        if not 1.0 <= float(expansion) < np.inf:
            raise InvalidInputError(f"expansion must be a finite number >= 1, got {expansion!r}")
        if (
            isinstance(min_window, (bool, np.bool_))
            or not isinstance(min_window, (int, np.integer))
            or min_window < 0
        ):
            raise InvalidInputError(f"min_window must be an integer >= 0, got {min_window!r}")
        self.index = index
        self.prune_ratio = check_ratio(prune_ratio, "prune_ratio", allow_zero=True)
        self.expansion = float(expansion)
        self.min_window = int(min_window)

    def __repr__(self) -> str:
        return (
            f"TwoPhaseSearcher({type(self.index).__name__}, prune_ratio={self.prune_ratio}, "
            f"expansion={self.expansion}, min_window={self.min_window})"
        )

    def window(self, k: int) -> int:
        """How many candidates phase 1 finds for ``k`` results."""
        return max(int(check_k(k) * self.expansion), self.min_window)

    def search(
        self, queries: SparseVectors, k: int = 10, *, params: SearchParams | None = None
    ) -> Hits:
        """The top ``k`` documents of each query row, found in two phases (see the class)."""
        if not isinstance(queries, SparseVectors):
            raise InvalidInputError(f"queries must be SparseVectors, got {type(queries).__name__}")
        width = self.window(k)
        pinned = getattr(self.index, "pinned", None)
        reader = pinned() if callable(pinned) else self.index
        high, _ = split_query(queries, self.prune_ratio)
        first = reader.search(high, width, params=params)
        real = ~np.isneginf(first.scores)
        scores = np.full(first.scores.shape, -np.inf, np.float32)
        if real.any():
            rows = np.nonzero(real)[0].astype(np.int64)
            scores[real] = _rescore(queries, rows, reader.get(first.ids[real].tolist()))
        order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        payloads = first.payloads
        return Hits(
            ids=np.take_along_axis(first.ids, order, axis=1),
            scores=np.take_along_axis(scores, order, axis=1),
            payloads=None if payloads is None else np.take_along_axis(payloads, order, axis=1),
        )
