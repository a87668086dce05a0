"""Prune sparse vectors: the document rules of OpenSearch's neural sparse ingest, and the split of
a query into its high- and low-weight tokens for two-phase search.

Each rule keeps part of every row and drops the rest (OpenSearch's ``prune_type`` names):

* ``top_k=k``: the ``k`` largest weights (ties at the cut keep the lower token ids);
* ``max_ratio=r``: the weights ``>= r *`` the row's largest weight, ``0 < r <= 1``;
* ``alpha_mass=a``: the largest weights, in descending order, while their running sum stays
  ``<= a *`` the row's total (ties ordered by token id), ``0 < a <= 1``. As in OpenSearch, a row
  whose largest weight alone is above that share loses every token;
* ``abs_value=t``: the weights ``>= t``, ``t > 0``.

Thresholds and sums are computed in float64 from the float32 weights. Weights must be positive
(SPLADE's are). Row order, ``dim`` and ``vocab`` are kept; rows may become empty.

Pruning documents before indexing trades a little quality for a smaller, faster index; at query
time, :class:`sparsearch.two_phase.TwoPhaseSearcher` searches with the high-weight tokens
(:func:`split_query`) and rescores the candidates with the whole query.

>>> from sparsearch.sparse import SparseVectors
>>> docs = SparseVectors.from_dicts([{0: 4.0, 1: 2.0, 2: 1.0, 3: 1.0}, {}], dim=4)
>>> prune(docs, top_k=2).to_dicts()
[{0: 4.0, 1: 2.0}, {}]
>>> prune(docs, max_ratio=0.25).to_dicts()
[{0: 4.0, 1: 2.0, 2: 1.0, 3: 1.0}, {}]
>>> prune(docs, alpha_mass=0.9).to_dicts()
[{0: 4.0, 1: 2.0, 2: 1.0}, {}]
>>> high, low = split_query(docs[:1], 0.5)
>>> high.to_dicts(), low.to_dicts()
([{0: 4.0, 1: 2.0}], [{2: 1.0, 3: 1.0}])
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
import numpy.typing as npt

from sparsearch.errors import InvalidInputError
from sparsearch.sparse import SparseVectors

__all__ = ["check_ratio", "prune", "row_running_sums", "split_query"]

Mask = npt.NDArray[np.bool_]
_CUMSUM_CELLS = 1 << 22  # cells of one block of padded rows in row_running_sums


def check_ratio(value: Any, name: str, *, allow_zero: bool = False) -> float:
    """``value`` as a float in ``(0, 1]`` (``[0, 1]`` with ``allow_zero``), or a named error.

    >>> check_ratio(0.5, "max_ratio")
    0.5
    """
    number = _real(value, name)
    if not (0.0 <= number if allow_zero else 0.0 < number) or not number <= 1.0:
        bounds = "[0, 1]" if allow_zero else "(0, 1]"
        raise InvalidInputError(f"{name} must be in {bounds}, got {value!r}")
    return number


def _real(value: Any, name: str) -> float:
    """``value`` as a finite float: a real number, never a bool or a string."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise InvalidInputError(f"{name} must be a number, got {type(value).__name__}")
    number = float(value)
    if not np.isfinite(number):
        raise InvalidInputError(f"{name} must be finite, got {value!r}")
    return number


def _check_vectors(vectors: Any) -> SparseVectors:
    """``vectors`` as SparseVectors whose stored weights are all positive."""
    if not isinstance(vectors, SparseVectors):
        raise InvalidInputError(f"expected SparseVectors, got {type(vectors).__name__}")
    bad = np.flatnonzero(~(vectors.values > 0))
    if bad.size:
        at = int(bad[0])
        row = int(np.searchsorted(vectors.indptr, at, side="right") - 1)
        raise InvalidInputError(
            f"row {row}: weight {vectors.values[at]} is not positive; "
            "pruning needs positive weights (as SPLADE's)"
        )
    return vectors


def _keep(vectors: SparseVectors, mask: Mask) -> SparseVectors:
    """The stored entries of ``vectors`` where ``mask`` is true, rows and vocab unchanged."""
    kept = np.zeros(vectors.nnz + 1, np.int64)
    np.cumsum(mask, out=kept[1:])
    return SparseVectors(
        kept[vectors.indptr],
        vectors.indices[mask],
        vectors.values[mask],
        vectors.dim,
        vectors.vocab,
        validate=False,
    )


def _row_max(vectors: SparseVectors) -> npt.NDArray[np.float64]:
    """The largest weight of each entry's row, per stored entry (float64)."""
    active = vectors.active_dims()
    filled = active > 0
    if not filled.any():
        return np.zeros(0, np.float64)
    maxima = np.maximum.reduceat(vectors.values, vectors.indptr[:-1][filled])
    return np.repeat(maxima.astype(np.float64), active[filled])


def _max_ratio_mask(vectors: SparseVectors, ratio: float) -> Mask:
    mask: Mask = vectors.values.astype(np.float64) >= ratio * _row_max(vectors)
    return mask


def row_running_sums(indptr: npt.NDArray[np.int64], values: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """Per CSR row, the running sums of ``values`` left to right, added one by one in their
    dtype (as a loop would; ``np.add.reduceat`` sums pairwise), in bounded blocks of rows.

    >>> row_running_sums(np.array([0, 2, 2, 5]), np.array([1.0, 2.0, 3.0, 4.0, 5.0])).tolist()
    [1.0, 3.0, 3.0, 7.0, 12.0]
    """
    active = np.diff(indptr)
    rank = np.arange(values.size) - np.repeat(indptr[:-1], active)
    sums = np.empty_like(values)
    width = max(int(active.max(initial=0)), 1)
    block = max(_CUMSUM_CELLS // width, 1)
    for first in range(0, active.size, block):  # padded rows: cumsum adds in row order exactly
        last = min(first + block, active.size)
        a, b = indptr[first], indptr[last]
        rows = np.repeat(np.arange(last - first), active[first:last])
        padded = np.zeros((last - first, width), values.dtype)
        padded[rows, rank[a:b]] = values[a:b]
        sums[a:b] = np.cumsum(padded, axis=1)[rows, rank[a:b]]
    return sums


def _alpha_mass_mask(vectors: SparseVectors, alpha: float) -> Mask:
    active = vectors.active_dims()
    rows = np.repeat(np.arange(vectors.n), active)
    order = np.lexsort((vectors.indices, -vectors.values, rows))  # per row: weight desc, id asc
    sums = row_running_sums(vectors.indptr, vectors.values[order].astype(np.float64))
    totals = np.repeat(sums[vectors.indptr[1:][active > 0] - 1], active[active > 0])
    mask = np.zeros(vectors.nnz, np.bool_)
    mask[order] = sums <= alpha * totals
    return mask


def _abs_value_mask(vectors: SparseVectors, threshold: float) -> Mask:
    mask: Mask = vectors.values.astype(np.float64) >= threshold
    return mask


def prune(
    vectors: SparseVectors,
    *,
    top_k: int | None = None,
    max_ratio: float | None = None,
    alpha_mass: float | None = None,
    abs_value: float | None = None,
) -> SparseVectors:
    """``vectors`` with each row pruned by exactly one rule (see the module docstring).

    >>> v = SparseVectors.from_dicts([{0: 3.0, 1: 1.0, 2: 0.5}], dim=3)
    >>> prune(v, abs_value=1.0).to_dicts()
    [{0: 3.0, 1: 1.0}]
    """
    given = {
        name: value
        for name, value in (
            ("top_k", top_k),
            ("max_ratio", max_ratio),
            ("alpha_mass", alpha_mass),
            ("abs_value", abs_value),
        )
        if value is not None
    }
    if len(given) != 1:
        got = " and ".join(given) or "none"
        raise InvalidInputError(
            f"prune takes exactly one of top_k, max_ratio, alpha_mass, abs_value; got {got}"
        )
    _check_vectors(vectors)
    ((rule, value),) = given.items()
    if rule == "top_k":
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
            raise InvalidInputError(f"top_k must be an integer, got {type(value).__name__}")
        if value < 1:
            raise InvalidInputError(f"top_k must be at least 1, got {value}")
        return vectors.top_k_per_row(int(value))
    if rule == "abs_value":
        threshold = _real(value, rule)
        if threshold <= 0:
            raise InvalidInputError(f"abs_value must be positive, got {value!r}")
        return _keep(vectors, _abs_value_mask(vectors, threshold))
    share = check_ratio(value, rule)
    rule_mask = _max_ratio_mask if rule == "max_ratio" else _alpha_mass_mask
    return _keep(vectors, rule_mask(vectors, share))


def split_query(vectors: SparseVectors, ratio: float) -> tuple[SparseVectors, SparseVectors]:
    """``(high, low)``: each row's tokens whose weight is ``>= ratio *`` the row's largest weight,
    and the others (``0 <= ratio <= 1``; 0 puts every token in ``high``). The two phases of
    OpenSearch's two-phase search with ``prune_type`` ``max_ratio``.

    >>> q = SparseVectors.from_dicts([{0: 2.0, 5: 0.5, 7: 1.0}], dim=8)
    >>> [part.to_dicts() for part in split_query(q, 0.4)]
    [[{0: 2.0, 7: 1.0}], [{5: 0.5}]]
    """
    _check_vectors(vectors)
    mask = _max_ratio_mask(vectors, check_ratio(ratio, "ratio", allow_zero=True))
    return _keep(vectors, mask), _keep(vectors, ~mask)
