"""Turning what a user searches with into vectors: text, a sparse vector in any of its spellings,
or a dense vector; and the checks that name what is wrong with a query."""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from sparsearch.errors import InvalidInputError
from sparsearch.sparse import SparseVectors

MODES = ("sparse", "dense", "hybrid")
QueryLike = Any
"""A query: text (``str``); ``{token: weight}``; ``{"indices": [...], "values": [...]}``; a
one-row :class:`SparseVectors`; or a dense vector (1-d numpy array or list of floats)."""


def check_text(text: Any, where: str) -> str:
    """A non-empty string (what every encoder accepts)."""
    if not isinstance(text, str):
        raise InvalidInputError(f"{where} must be a string, got {type(text).__name__}")
    if not text.strip():
        raise InvalidInputError(f"{where} is empty")
    return text


@dataclass
class Encoded:
    """A batch of queries as vectors: ``sparse`` rows and ``dense`` rows (None where a query
    has no such vector), plus the texts (None for vector queries)."""

    texts: list[str | None]
    sparse: list[SparseVectors | None]
    dense: list[np.ndarray | None]


def sparse_query(query: Any, dim: int, tokens: Mapping[str, int] | None) -> SparseVectors | None:
    """A one-row sparse vector from a vector-like query, or None when it is not one.

    ``tokens`` maps the model's tokens to dimensions (None for a model without a vocabulary)."""
    if isinstance(query, SparseVectors):
        if query.n != 1:
            raise InvalidInputError(f"a sparse query vector must have one row, got {query.n}")
        return query
    row = row_dict(query, tokens)
    return None if row is None else one_row(row, dim)


def one_row(row: Mapping[int, Any], dim: int) -> SparseVectors:
    """``{dimension: weight}`` as a one-row vector, the CSR arrays built directly (what
    ``from_dicts`` gives, zeros dropped, without its scipy round trip: a query's hot path)."""
    for key, weight in row.items():
        if isinstance(key, bool) or not isinstance(key, int):
            raise InvalidInputError(f"vector dimensions must be integers, got {key!r:.40}")
        if isinstance(weight, bool) or not isinstance(weight, numbers.Real):
            raise InvalidInputError(f"vector weights must be numbers, got {weight!r:.40}")
    keys = sorted(key for key, weight in row.items() if weight != 0)
    try:
        with np.errstate(over="ignore"):  # overflow to inf is refused by the constructor
            values = np.array([float(row[key]) for key in keys], np.float32)
    except OverflowError:
        raise InvalidInputError("a vector weight is too large") from None
    if keys and not 0 <= keys[0] <= keys[-1] < dim:
        raise InvalidInputError(
            f"vector dimensions must be in [0, {dim}), got {keys[0]}..{keys[-1]}"
        )
    indptr = np.array([0, len(keys)], np.int64)
    return SparseVectors(indptr, np.array(keys, np.int64), values, dim)


def row_dict(vector: Any, tokens: Mapping[str, int] | None) -> dict[int, Any] | None:
    """``{dimension: weight}`` of a vector given as ``{"indices", "values"}`` or ``{token:
    weight}`` (None when ``vector`` is neither); weights are checked by ``from_dicts``."""
    if isinstance(vector, Mapping) and set(vector) == {"indices", "values"}:
        indices, values = vector["indices"], vector["values"]
        if not isinstance(indices, Sequence) or not isinstance(values, Sequence):
            raise InvalidInputError("vector indices and values must be lists")
        if len(indices) != len(values):
            raise InvalidInputError(f"a vector has {len(indices)} indices but {len(values)} values")
        return _summed(indices, values)
    if isinstance(vector, Mapping):
        if not vector:
            raise InvalidInputError("a {token: weight} vector needs at least one token")
        return _by_dimension(vector, tokens)
    return None


def dense_query(query: Any, dim: int | None) -> np.ndarray | None:
    """A dense query vector (1-d floats), or None when ``query`` is not one."""
    if isinstance(query, np.ndarray) or (
        isinstance(query, list) and query and all(isinstance(v, (int, float)) for v in query)
    ):
        vector = np.asarray(query, dtype=np.float32)
        if vector.ndim != 1:
            raise InvalidInputError(f"a dense query must be 1-d, got shape {vector.shape}")
        if dim is None:
            raise InvalidInputError("this collection has no dense model to search dense vectors")
        if vector.size != dim:
            raise InvalidInputError(f"a dense query must have {dim} values, got {vector.size}")
        if not np.isfinite(vector).all():
            raise InvalidInputError("a dense query must be finite (no NaN or infinity)")
        return vector
    return None


def _by_dimension(query: Mapping[Any, Any], tokens: Mapping[str, int] | None) -> dict[int, Any]:
    """``{token: weight}`` as ``{dimension: weight}`` (ints pass through)."""
    if tokens is None and not all(isinstance(t, int) for t in query):
        raise InvalidInputError("this model has no vocabulary: give dimensions, not tokens")
    unknown = [t for t in query if isinstance(t, str) and t not in (tokens or {})]
    if unknown:
        raise InvalidInputError(f"tokens not in the model's vocabulary: {unknown[:5]}")
    return {tokens[t] if isinstance(t, str) and tokens else t: w for t, w in query.items()}


def _summed(indices: Sequence[Any], values: Sequence[Any]) -> dict[Any, float]:
    row: dict[Any, float] = {}
    for index, value in zip(indices, values, strict=True):
        if isinstance(index, bool) or not isinstance(index, int):
            raise InvalidInputError(f"query indices must be integers, got {index!r}")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InvalidInputError(f"query values must be numbers, got {value!r}")
        row[index] = row.get(index, 0.0) + float(value)
    return row
