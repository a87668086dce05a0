"""Checks of what callers hand the index: ids, payloads, batches. Each failure is a named error."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sparsearch.errors import DimensionMismatchError, DuplicateIdError, InvalidInputError
from sparsearch.filters import DocId, short_repr
from sparsearch.index.check_kernels import PROBLEMS, csr_problem
from sparsearch.sparse import SparseVectors

MAX_INT_ID = 1 << 63  # int ids are stored as int64 (-1 pads search results)
MAX_K = 1_000_000  # results per query: (n, k) arrays beyond this are a mistake, not a search


def normalize_ids(ids: Iterable[Any]) -> list[DocId]:
    """External ids as plain ``str`` / ``int`` (numpy integers accepted, bools and others not).

    A single string or bytes value is refused rather than iterated as characters.
    """
    if isinstance(ids, (str, bytes, Mapping)) or not isinstance(ids, Iterable):
        raise InvalidInputError(
            f"ids must be a collection of ids, not a single {type(ids).__name__}"
        )
    if isinstance(ids, np.ndarray) and ids.ndim != 1:
        raise InvalidInputError(f"ids must be one-dimensional, got an array of shape {ids.shape}")
    if isinstance(ids, list):  # the common case, checked in bulk: all plain str, or all int
        kinds = set(map(type, ids))
        if kinds == {str}:
            return list(ids)
        if kinds == {int} and 0 <= min(ids) and max(ids) < MAX_INT_ID:
            return list(ids)
    out = []
    for doc_id in ids:
        if isinstance(doc_id, np.integer):
            doc_id = int(doc_id)
        elif isinstance(doc_id, str):
            doc_id = str(doc_id)  # a str subclass (or np.str_) stored as a plain str
        elif isinstance(doc_id, int) and not isinstance(doc_id, bool):
            doc_id = int(doc_id)
        if isinstance(doc_id, bool) or not isinstance(doc_id, (str, int)):
            raise InvalidInputError(f"ids must be str or int, got {short_repr(doc_id)}")
        if isinstance(doc_id, int) and not 0 <= doc_id < MAX_INT_ID:
            raise InvalidInputError(f"int ids must be in 0..2**63-1, got {short_repr(doc_id)}")
        out.append(doc_id)
    return out


def check_k(k: Any) -> int:
    """``k`` as a positive int no larger than :data:`MAX_K`."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= MAX_K:
        raise InvalidInputError(f"k must be an integer in 1..{MAX_K:,}, got {short_repr(k)}")
    return int(k)


def check_payloads(payloads: Sequence[Mapping[str, Any] | None], n: int) -> None:
    """``n`` payloads (a list or tuple), each ``None`` or a JSON object whose keys, at every
    level, are strings."""
    if not isinstance(payloads, (list, tuple)):
        raise InvalidInputError(f"payloads must be a list, got {type(payloads).__name__}")
    if len(payloads) != n:
        raise InvalidInputError(f"{len(payloads)} payloads for {n} vectors")
    for p in payloads:
        if p is not None and not isinstance(p, Mapping):
            raise InvalidInputError(f"a payload must be a JSON object, got {short_repr(p)}")
        try:
            json.dumps(p, default=_refuse)
            _string_keys(p)
        except (TypeError, ValueError, RecursionError) as err:
            message = str(err) if not isinstance(err, RecursionError) else "nested too deeply"
            raise InvalidInputError(
                f"payload {short_repr(p)} is not JSON: {message[:200]}"
            ) from None


def _refuse(value: Any) -> Any:
    raise TypeError(f"{type(value).__name__} is not JSON")


def _string_keys(value: Any) -> None:
    """Every object key at every level is a str (JSON would turn others into strings)."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"key {short_repr(key)} is not a string")
            _string_keys(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            _string_keys(item)


def check_batch(
    ids: Sequence[DocId],
    vectors: SparseVectors,
    payloads: Sequence[Mapping[str, Any] | None] | None,
) -> list[DocId]:
    """The batch's ids, normalised, after checking types, lengths, payloads and repeats."""
    if not isinstance(vectors, SparseVectors):
        raise InvalidInputError(f"vectors must be SparseVectors, got {type(vectors).__name__}")
    check_structure(vectors)
    if isinstance(ids, (str, bytes)):
        raise InvalidInputError("ids must be a sequence of ids, not a single string")
    checked = normalize_ids(ids)
    if len(checked) != vectors.n:
        raise InvalidInputError(f"{len(checked)} ids for {vectors.n} vectors")
    if payloads is not None:
        check_payloads(payloads, vectors.n)
    seen: set[DocId] = set()
    for doc_id in checked:
        if doc_id in seen:
            raise DuplicateIdError(f"id {short_repr(doc_id)} appears twice in the batch")
        seen.add(doc_id)
    return checked


MAX_DIM = 1 << 26  # terms: far above any vocabulary; larger dims are a mistake, not a model


def check_structure(vectors: SparseVectors) -> None:
    """The CSR arrays are what the compiled kernels assume (they never re-check): the right
    dtypes, pointers that ascend from 0 to nnz, terms in 0..dim-1, finite weights. Vectors made
    with ``validate=False``, or whose arrays were edited after validation, are checked here."""
    indptr, indices, values = vectors.indptr, vectors.indices, vectors.values
    if not all(isinstance(a, np.ndarray) for a in (indptr, indices, values)):
        raise InvalidInputError("vectors: indptr, indices and values must be numpy arrays")
    vocab = vectors.vocab
    if vocab is not None and (not isinstance(vocab, tuple) or len(vocab) != vectors.dim):
        raise InvalidInputError("vectors: the vocab must be a tuple of dim tokens")
    if not isinstance(vectors.dim, int) or not 1 <= vectors.dim <= MAX_DIM:
        raise InvalidInputError(
            f"dim must be an integer in 1..{MAX_DIM:,}, got {short_repr(vectors.dim)}"
        )
    dtypes = (indptr.dtype, indices.dtype, values.dtype)
    if dtypes != (np.dtype(np.int64), np.dtype(np.int32), np.dtype(np.float32)) or not (
        indptr.ndim == indices.ndim == values.ndim == 1
    ):
        raise InvalidInputError("vectors must hold int64 indptr, int32 indices, float32 values")
    problem = csr_problem(indptr, indices, values, vectors.dim)
    if problem:
        raise InvalidInputError(f"vectors: {PROBLEMS[problem]}")


def check_dim_and_vocab(dim: Any, vocab: Any) -> tuple[int | None, tuple[str, ...] | None]:
    """An index's ``dim`` (a positive int up to :data:`MAX_DIM`) and ``vocab`` (a list or tuple
    of str, as long as ``dim``), as plain Python values."""
    if dim is not None and (
        isinstance(dim, (bool, np.bool_)) or not isinstance(dim, (int, np.integer))
    ):
        raise InvalidInputError(f"dim must be a positive integer, got {short_repr(dim)}")
    if vocab is not None:
        if not isinstance(vocab, (list, tuple)) or not all(isinstance(t, str) for t in vocab):
            raise InvalidInputError("vocab must be a list or tuple of str tokens")
        vocab = tuple(str(token) for token in vocab)
        if dim is not None and dim != len(vocab):
            raise DimensionMismatchError(
                f"dim {short_repr(dim)} but a vocab of {len(vocab)} tokens"
            )
        dim = len(vocab)
    if dim is not None:
        if isinstance(dim, (bool, np.bool_)) or not isinstance(dim, (int, np.integer)):
            raise InvalidInputError(f"dim must be a positive integer, got {short_repr(dim)}")
        if not 1 <= dim <= MAX_DIM:
            raise InvalidInputError(f"dim must be in 1..{MAX_DIM:,}, got {short_repr(dim)}")
        dim = int(dim)
    return dim, vocab


def check_max_segments(value: Any) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < 1:
        raise InvalidInputError(f"max_segments must be a positive integer, got {short_repr(value)}")
    return int(value)


def check_path(path: Any) -> Path:
    """A folder path given as ``str`` or ``os.PathLike`` (no NUL, not empty)."""
    if not isinstance(path, (str, os.PathLike)) or isinstance(path, bytes):
        raise InvalidInputError(f"an index path is a str or Path, got {type(path).__name__}")
    text = os.fspath(path)
    if not isinstance(text, str) or not text or "\x00" in text:
        raise InvalidInputError(f"not a usable index path: {short_repr(text)}")
    try:
        too_long = any(len(part.encode()) > 255 for part in Path(text).parts)
    except UnicodeEncodeError:
        raise InvalidInputError(f"not a usable index path: {short_repr(text)}") from None
    if too_long or len(text.encode()) > 4000:
        raise InvalidInputError(f"index path too long: {short_repr(text)}")
    return Path(text)
