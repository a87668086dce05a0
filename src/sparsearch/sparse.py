"""`SparseVectors`: the one data type every layer of sparsearch speaks.

A batch of sparse vectors in CSR form: ``indptr`` (int64, n + 1), ``indices`` (int32, sorted and
unique within each row, each < ``dim``), ``values`` (float32, finite) and ``dim``. Vectors that come
from a model carry its ``vocab`` (token strings), so decoding and vocabulary checks work anywhere.

>>> import numpy as np
>>> v = SparseVectors.from_dense(np.array([[0.0, 2.0, 0.0], [1.0, 0.0, 3.0]]))
>>> v.indices.tolist(), v.values.tolist()
([1, 0, 2], [2.0, 1.0, 3.0])
>>> v.top_k_per_row(1).to_dense().tolist()
[[0.0, 2.0, 0.0], [0.0, 0.0, 3.0]]
"""

from __future__ import annotations

import hashlib
import numbers
import operator
import os
import zipfile
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from sparsearch.errors import (
    DimensionMismatchError,
    InvalidInputError,
    InvalidVectorsError,
    OutOfRangeError,
    VocabularyMismatchError,
)

if TYPE_CHECKING:  # torch is optional: only the conversions need it
    import torch

__all__ = ["SparseVectors", "TermStats", "vocab_hash", "save_npz", "load_npz"]


_HASHED: dict[int, tuple[tuple[str, ...], str]] = {}
"""id -> (tuple vocabulary, its hash) of the last few hashed: a 30k-token vocabulary takes ~6 ms
to hash, and every batch and query of one model carries the same tuple object."""


def vocab_hash(vocab: Sequence[str] | None) -> str | None:
    """A stable fingerprint of a vocabulary (sha256 of its tokens in id order), or None."""
    if vocab is None:
        return None
    known = _HASHED.get(id(vocab))
    if known is not None and known[0] is vocab:
        return known[1]
    digest = hashlib.sha256()
    for token in vocab:
        if not isinstance(token, str):
            raise InvalidInputError(f"vocab tokens must be str, got {type(token).__name__}")
        digest.update(token.encode("utf-8", "surrogatepass"))  # same bytes for valid text
        digest.update(b"\x00")
    fingerprint = digest.hexdigest()
    if isinstance(vocab, tuple):  # immutable: the hash can be remembered (held, so its id stays)
        if len(_HASHED) >= 8:
            _HASHED.pop(next(iter(_HASHED)))
        _HASHED[id(vocab)] = (vocab, fingerprint)
    return fingerprint


def _check_vectors(value: Any) -> None:
    if not isinstance(value, SparseVectors):
        raise InvalidInputError(f"expected SparseVectors, got {type(value).__name__}")


def _row_of(indptr: np.ndarray, position: int) -> int:
    """The row that holds the non-zero at ``position``."""
    return int(np.searchsorted(indptr, position, side="right") - 1)


_NOT_NUMBERS = (bool, np.bool_, str, bytes)


def _show(value: Any, limit: int = 60) -> str:
    """A short repr for messages (huge ints have no repr beyond 4300 digits)."""
    try:
        text = repr(value)
    except ValueError:
        text = f"<{type(value).__name__} too large to show>"
    return text if len(text) <= limit else text[:limit] + "..."


_INT64_MAX = int(np.iinfo(np.int64).max)


def _as_count(value: Any, what: str, error: type[Exception] = InvalidInputError) -> int:
    """``value`` as a plain int: an int or numpy integer, never a bool, float or string."""
    if isinstance(value, (bool, np.bool_)):
        raise error(f"{what} must be an integer, got a bool ({value!r})")
    try:
        return int(operator.index(value))
    except TypeError:
        raise error(f"{what} must be an integer, got {type(value).__name__}") from None


def _as_dim(value: Any) -> int:
    dim = _as_count(value, "dim", InvalidVectorsError)
    if dim <= 0:
        raise InvalidVectorsError(f"dim must be positive, got {dim}")
    return dim


_CHECKED_VOCAB: list[tuple[str, ...]] = []  # the last vocab tuple checked (encoders reuse one)


def _as_vocab(vocab: Any, check_tokens: bool = True) -> tuple[str, ...] | None:
    """A vocabulary as a tuple of str (a list or tuple of tokens, not a str, set or mapping)."""
    if vocab is None:
        return None
    checked = _CHECKED_VOCAB[0] if _CHECKED_VOCAB else None
    if checked is not None and id(vocab) == id(checked):
        return checked
    if isinstance(vocab, (str, bytes, set, frozenset, Mapping)):
        raise InvalidVectorsError(f"vocab must be a sequence of str, got {type(vocab).__name__}")
    try:
        tokens: tuple[str, ...] = tuple(vocab)
    except TypeError:
        raise InvalidVectorsError(
            f"vocab must be a sequence of str, got {type(vocab).__name__}"
        ) from None
    if not check_tokens:
        return tokens
    if not set(map(type, tokens)) <= {str} and not all(isinstance(t, str) for t in tokens):
        bad = next(t for t in tokens if not isinstance(t, str))
        raise InvalidVectorsError(
            f"vocab tokens must be str, got {type(bad).__name__} {_show(bad)}"
        )
    if isinstance(vocab, tuple):
        _CHECKED_VOCAB[:] = [tokens]
    return tokens


def _to_array(value: Any, what: str) -> np.ndarray:
    """``value`` as a 1-d numpy array (no dtype forced), refusing strings and str/bool items."""
    if value is None or isinstance(value, (str, bytes)):
        raise InvalidVectorsError(f"{what} must be a 1-d array, got {type(value).__name__}")
    if isinstance(value, (list, tuple)) and any(
        issubclass(t, _NOT_NUMBERS) for t in set(map(type, value))
    ):
        raise InvalidVectorsError(f"{what} must hold numbers, not bools or strings")
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError, OverflowError) as err:
        raise InvalidVectorsError(f"{what} is not a 1-d numeric array ({err})") from None
    if arr.ndim != 1:
        raise InvalidVectorsError(f"{what} must be a 1-d array, got shape {arr.shape}")
    return arr


def _int_array(value: Any, what: str) -> npt.NDArray[np.int64] | npt.NDArray[np.int32]:
    """A 1-d integer array as int64 (int32 kept as is), exactly: floats, bools, ints beyond
    int64 and strings are refused, never rounded or wrapped."""
    arr = _to_array(value, what)
    kind = arr.dtype.kind
    if kind == "f" and arr.size == 0 and isinstance(value, (list, tuple)):
        return np.zeros(0, np.int64)  # np.asarray([]) is float64
    if kind == "O":
        items = arr.tolist()
        if not all(
            isinstance(x, (int, np.integer)) and not isinstance(x, (bool, np.bool_)) for x in items
        ):
            raise InvalidVectorsError(f"{what} must hold integers")
        if items and not -_INT64_MAX - 1 <= min(items) <= max(items) <= _INT64_MAX:
            raise InvalidVectorsError(f"{what} holds an integer beyond int64")
        return np.array(items, np.int64)
    if kind not in "iu":
        raise InvalidVectorsError(f"{what} must have an integer dtype, got {arr.dtype}")
    if arr.dtype == np.int32:
        return np.ascontiguousarray(arr)
    if kind == "u" and arr.size and int(arr.max()) > _INT64_MAX:
        raise InvalidVectorsError(f"{what} holds an integer beyond int64")
    return np.ascontiguousarray(arr, dtype=np.int64)


def _float_array(value: Any, what: str) -> npt.NDArray[np.float32]:
    """A 1-d array of real numbers as float32; values that overflow float32 become inf (and
    are refused by the finiteness check), complex numbers and strings are refused."""
    arr = _to_array(value, what)
    if arr.dtype.kind == "O":
        items = arr.tolist()
        if not all(isinstance(x, (numbers.Real, Decimal, np.bool_)) for x in items):
            raise InvalidVectorsError(f"{what} must hold real numbers")
        try:
            arr = np.array([float(x) for x in items], np.float64)
        except OverflowError:
            raise InvalidVectorsError(f"{what} holds a number beyond float32") from None
    elif arr.dtype.kind not in "iufb":
        raise InvalidVectorsError(f"{what} must hold real numbers, got dtype {arr.dtype}")
    with np.errstate(over="ignore"):
        return np.ascontiguousarray(arr, dtype=np.float32)


class SparseVectors:
    """A batch of ``n`` sparse vectors of dimension ``dim``, stored as CSR arrays.

    Construction validates the arrays (``validate=False`` skips it for arrays already known to be
    good, e.g. produced by our own kernels) and raises :class:`InvalidVectorsError` naming the
    first offending row.
    """

    __slots__ = ("indptr", "indices", "values", "dim", "vocab")

    def __init__(
        self,
        indptr: np.ndarray,
        indices: np.ndarray,
        values: np.ndarray,
        dim: int,
        vocab: Sequence[str] | None = None,
        *,
        validate: bool = True,
    ) -> None:
        if not validate:  # trusted arrays: convert, but let no builtin error escape
            try:
                self.indptr = np.ascontiguousarray(indptr, dtype=np.int64)
                self.indices = np.ascontiguousarray(indices, dtype=np.int32)
                self.values = np.ascontiguousarray(values, dtype=np.float32)
                self.vocab = tuple(vocab) if vocab is not None else None
            except (TypeError, ValueError, OverflowError) as err:
                raise InvalidVectorsError(f"cannot convert the CSR arrays ({err})") from None
            self.dim = _as_count(dim, "dim", InvalidVectorsError)
            return
        self.dim = _as_dim(dim)
        self.vocab = _as_vocab(vocab)
        if self.vocab is not None and len(self.vocab) != self.dim:
            raise DimensionMismatchError(
                f"vocab has {len(self.vocab)} tokens but dim is {self.dim}"
            )
        self.indptr = np.ascontiguousarray(_int_array(indptr, "indptr"), dtype=np.int64)
        self.values = _float_array(values, "values")
        checked = _int_array(indices, "indices")
        self._validate(checked)
        self.indices = np.ascontiguousarray(checked, dtype=np.int32)  # lossless: checked range

    # ------------------------------------------------------------------ validation
    def _validate(self, indices: np.ndarray) -> None:
        """Check the CSR contract; ``indices`` is int32 or int64 (cast to int32 only after)."""
        indptr, values = self.indptr, self.values
        if indptr.size < 1:
            raise InvalidVectorsError("indptr must be a 1-d array of length n + 1")
        if indices.size != values.size:
            raise InvalidVectorsError(
                f"indices ({indices.shape}) and values ({values.shape}) must be 1-d and equally long"
            )
        if indptr[0] != 0 or indptr[-1] != indices.size:
            raise InvalidVectorsError(
                f"indptr must start at 0 and end at nnz={indices.size}, "
                f"got {indptr[0]}..{indptr[-1]}"
            )
        steps = np.diff(indptr)
        if np.any(steps < 0):
            raise InvalidVectorsError(f"indptr decreases at row {int(np.argmax(steps < 0))}")
        if indices.size == 0:
            return
        bound = min(self.dim, 2**31)  # indices are stored as int32
        if int(indices.min()) < 0 or int(indices.max()) >= bound:
            p = int(np.flatnonzero((indices < 0) | (indices >= bound))[0])
            raise InvalidVectorsError(
                f"row {_row_of(indptr, p)}: index {int(indices[p])} is outside [0, {self.dim})"
            )
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            p = int(bad[0])
            raise InvalidVectorsError(f"row {_row_of(indptr, p)}: weight {values[p]} is not finite")
        # Within a row each index must exceed the previous one; a row start resets the rule.
        rising = np.diff(indices.astype(np.int64)) > 0
        row_starts = indptr[1:-1][(indptr[1:-1] > 0) & (indptr[1:-1] < indices.size)]
        rising[row_starts - 1] = True
        bad = np.flatnonzero(~rising)
        if bad.size:
            p = int(bad[0]) + 1
            raise InvalidVectorsError(
                f"row {_row_of(indptr, p)}: indices must be sorted and unique "
                f"(index {int(indices[p])} follows {int(indices[p - 1])})"
            )

    # ------------------------------------------------------------------ basics
    @property
    def n(self) -> int:
        """Number of vectors."""
        return self.indptr.size - 1

    def __len__(self) -> int:
        return self.n

    @property
    def shape(self) -> tuple[int, int]:
        return (self.n, self.dim)

    @property
    def nnz(self) -> int:
        """Total number of stored non-zeros."""
        return int(self.indices.size)

    def __repr__(self) -> str:
        vocab = f", vocab={len(self.vocab)} tokens" if self.vocab is not None else ""
        return f"SparseVectors(n={self.n}, dim={self.dim}, nnz={self.nnz}{vocab})"

    def row(self, i: int) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.float32]]:
        """The (indices, values) of row ``i`` as views."""
        i = self._row_number(i)
        a, b = self.indptr[i], self.indptr[i + 1]
        return self.indices[a:b], self.values[a:b]

    def active_dims(self) -> npt.NDArray[np.int64]:
        """Number of non-zeros per row (int64, length n)."""
        return np.diff(self.indptr)

    def sparsity(self) -> dict[str, float]:
        """Active-dimension statistics: mean/min/max active dims and the sparsity ratio."""
        active = self.active_dims()
        if active.size == 0:
            return {
                "active_dims": 0.0,
                "min_active_dims": 0.0,
                "max_active_dims": 0.0,
                "sparsity_ratio": 1.0,
            }
        return {
            "active_dims": float(active.mean()),
            "min_active_dims": float(active.min()),
            "max_active_dims": float(active.max()),
            "sparsity_ratio": float(1.0 - active.mean() / self.dim),
        }

    def term_stats(self) -> TermStats:
        """How many rows hold each term (for FLOPS and active-dims statistics)."""
        return TermStats(self.n, np.bincount(self.indices, minlength=self.dim).astype(np.int64))

    def vocab_hash(self) -> str | None:
        """Fingerprint of the vocabulary these vectors were made with (None without a vocab)."""
        return vocab_hash(self.vocab)

    def _row_number(self, key: Any) -> int:
        """One row number (negative counts from the end) as an int in [0, n)."""
        i = _as_count(key, "a row number")
        if not -self.n <= i < self.n:
            raise OutOfRangeError(f"row {_show(i)} out of range for {self.n} vectors")
        return i % self.n

    def _row_numbers(self, key: Sequence[Any] | np.ndarray) -> npt.NDArray[np.int64]:
        """Row numbers (ints, negative from the end) or a boolean mask, as int64 in [0, n)."""
        if isinstance(key, (list, tuple)):
            kinds = set(map(type, key))
            if kinds and kinds <= {bool, np.bool_}:
                key = np.array(key, dtype=bool)
            elif any(issubclass(t, (bool, np.bool_)) for t in kinds):
                raise InvalidInputError("row numbers mix ints and bools")
        try:
            idx = np.asarray(key)
        except (TypeError, ValueError, OverflowError) as err:
            raise InvalidInputError(f"bad row selection ({err})") from None
        if idx.ndim != 1:
            raise InvalidInputError(f"row selection must be 1-d, got shape {idx.shape}")
        if idx.dtype == bool:
            if idx.size != self.n:
                raise InvalidInputError(f"boolean mask of length {idx.size} for {self.n} vectors")
            return np.flatnonzero(idx)
        if idx.size == 0:
            return np.zeros(0, np.int64)
        if idx.dtype.kind not in "iu":
            raise InvalidInputError(f"row numbers must be integers, got dtype {idx.dtype}")
        if int(idx.min()) < -self.n or int(idx.max()) >= self.n:
            raise OutOfRangeError(f"row index out of range for {self.n} vectors")
        idx = idx.astype(np.int64)
        return np.where(idx < 0, idx + self.n, idx)

    def _like(self, indptr: np.ndarray, indices: np.ndarray, values: np.ndarray) -> SparseVectors:
        return SparseVectors(indptr, indices, values, self.dim, self.vocab, validate=False)

    def __getitem__(self, key: int | slice | Sequence[int] | np.ndarray) -> SparseVectors:
        """Select rows: an int, a slice, an array of row numbers, or a boolean mask."""
        if isinstance(key, slice):
            try:
                rows = range(self.n)[key]
            except (TypeError, ValueError) as err:
                raise InvalidInputError(f"bad slice {_show(key)} ({err})") from None
            idx = np.arange(rows.start, rows.stop, rows.step, dtype=np.int64)
        elif isinstance(key, (list, tuple, range)) or (
            isinstance(key, np.ndarray) and key.ndim > 0
        ):
            idx = self._row_numbers(key)
        else:
            idx = np.array([self._row_number(key)], np.int64)
        if isinstance(key, slice) and (key.step in (None, 1)):
            start = int(idx[0]) if idx.size else 0
            stop = int(idx[-1]) + 1 if idx.size else 0
            a, b = self.indptr[start], self.indptr[stop]
            return self._like(
                self.indptr[start : stop + 1] - a, self.indices[a:b], self.values[a:b]
            )
        starts, ends = self.indptr[idx], self.indptr[idx + 1]
        lengths = ends - starts
        indptr = np.zeros(idx.size + 1, dtype=np.int64)
        np.cumsum(lengths, out=indptr[1:])
        gather = np.repeat(starts - indptr[:-1], lengths) + np.arange(indptr[-1])
        return self._like(indptr, self.indices[gather], self.values[gather])

    # ------------------------------------------------------------------ construction
    @classmethod
    def empty(cls, dim: int, vocab: Sequence[str] | None = None) -> SparseVectors:
        """Zero vectors of dimension ``dim``."""
        return cls(
            np.zeros(1, np.int64), np.zeros(0, np.int32), np.zeros(0, np.float32), dim, vocab
        )

    @classmethod
    def concat(cls, parts: Sequence[SparseVectors]) -> SparseVectors:
        """Stack batches row-wise; all parts must share ``dim`` (and ``vocab`` when both have one)."""
        if parts is None or isinstance(parts, (str, bytes, Mapping)):
            raise InvalidInputError(f"concat needs a list of SparseVectors, got {_show(parts)}")
        try:
            parts = list(parts)
        except TypeError:
            raise InvalidInputError(
                f"concat needs a list of SparseVectors, got {_show(parts)}"
            ) from None
        if not parts:
            raise InvalidVectorsError("concat needs at least one SparseVectors")
        for p in parts:
            _check_vectors(p)
        dim = parts[0].dim
        vocab = next((p.vocab for p in parts if p.vocab is not None), None)
        for p in parts:
            if p.dim != dim:
                raise DimensionMismatchError(f"cannot concat dim {p.dim} with dim {dim}")
            if p.vocab is not None and vocab is not None and p.vocab != vocab:
                raise VocabularyMismatchError("cannot concat vectors with different vocabularies")
        offsets = np.cumsum([0] + [p.nnz for p in parts[:-1]])
        indptr = np.concatenate(
            [np.zeros(1, np.int64)]
            + [p.indptr[1:] + o for p, o in zip(parts, offsets, strict=True)]
        )
        return cls(
            indptr,
            np.concatenate([p.indices for p in parts]),
            np.concatenate([p.values for p in parts]),
            dim,
            vocab,
            validate=False,
        )

    @classmethod
    def from_dense(cls, dense: np.ndarray, vocab: Sequence[str] | None = None) -> SparseVectors:
        """From a dense (n, dim) array of real numbers; exact zeros are dropped."""
        try:
            arr = np.asarray(dense)
            if arr.dtype.kind not in "iufbO":
                raise TypeError(f"dtype {arr.dtype} is not a real number type")
            with np.errstate(over="ignore"):
                arr = np.asarray(arr, dtype=np.float32)
        except (TypeError, ValueError, OverflowError) as err:
            raise InvalidVectorsError(f"expected a 2-d array of real numbers ({err})") from None
        if arr.ndim == 1:
            arr = arr[None, :]
        if arr.ndim != 2:
            raise InvalidVectorsError(f"expected a 2-d array, got shape {arr.shape}")
        return cls.from_scipy(sp.csr_matrix(arr), vocab)

    @classmethod
    def from_scipy(
        cls, matrix: sp.spmatrix | sp.sparray, vocab: Sequence[str] | None = None
    ) -> SparseVectors:
        """From any scipy sparse matrix; duplicates are summed and explicit zeros dropped."""
        try:
            if not sp.issparse(matrix):  # a dense array is fine too: 2-d and real
                matrix = np.asarray(matrix)
                if matrix.ndim != 2:
                    raise ValueError(f"got a {matrix.ndim}-d {type(matrix).__name__}")
            if matrix.dtype.kind not in "iufb":
                raise TypeError(f"dtype {matrix.dtype} is not a real number type")
            csr = sp.csr_matrix(matrix, dtype=np.float32, copy=True)
            csr.sum_duplicates()
            csr.eliminate_zeros()
            csr.sort_indices()
        except (TypeError, ValueError, OverflowError) as err:
            raise InvalidVectorsError(f"expected a 2-d scipy sparse matrix ({err})") from None
        return cls(csr.indptr, csr.indices, csr.data, csr.shape[1], vocab)

    @classmethod
    def from_torch(cls, tensor: torch.Tensor, vocab: Sequence[str] | None = None) -> SparseVectors:
        """From a dense or sparse (COO/CSR) 2-d torch tensor."""
        import torch

        t = tensor.detach().to("cpu")
        if t.dim() == 1:
            t = t.unsqueeze(0)
        if t.is_sparse or t.layout == torch.sparse_csr:
            t = t.to_sparse().coalesce()  # COO (`to_sparse_coo` is an untyped alias of it)
            rows, cols = t.indices().numpy()
            matrix = sp.coo_matrix((t.values().float().numpy(), (rows, cols)), shape=tuple(t.shape))
            return cls.from_scipy(matrix, vocab)
        return cls.from_dense(t.float().numpy(), vocab)

    @classmethod
    def from_dicts(
        cls,
        rows: Iterable[Mapping[Any, float]],
        dim: int | None = None,
        vocab: Sequence[str] | None = None,
    ) -> SparseVectors:
        """From ``{index_or_token: weight}`` dicts; tokens are looked up in ``vocab``.

        Keys are ints in ``[0, dim)`` or tokens of ``vocab``, weights real numbers; a term given
        twice in a row is summed. The vocab's tokens are only looked up here, not type-checked.
        """
        voc = _as_vocab(vocab, check_tokens=False)
        if dim is None:
            if voc is None:
                raise InvalidVectorsError("from_dicts needs dim or vocab")
            dim = len(voc)
        d = _as_dim(dim)
        if voc is not None and len(voc) != d:
            raise DimensionMismatchError(f"vocab has {len(voc)} tokens but dim is {d}")
        if rows is None or isinstance(rows, (str, bytes, Mapping)):
            raise InvalidInputError(f"rows must be an iterable of dicts, got {type(rows).__name__}")
        token_ids = {t: i for i, t in enumerate(voc)} if voc is not None else None
        bound = min(d, 2**31)
        indptr, indices, values = [0], list[int](), list[float]()
        for r, row in enumerate(rows):
            if not isinstance(row, Mapping):
                raise InvalidInputError(f"row {r}: expected a dict, got {type(row).__name__}")
            for key, weight in row.items():
                if isinstance(key, str):
                    if token_ids is None or key not in token_ids:
                        raise VocabularyMismatchError(
                            f"row {r}: token {_show(key)} is not in the vocab"
                        )
                    j = token_ids[key]
                elif isinstance(key, (int, np.integer)) and not isinstance(key, (bool, np.bool_)):
                    j = int(key)
                    if not 0 <= j < bound:
                        raise InvalidVectorsError(f"row {r}: index {_show(j)} is outside [0, {d})")
                else:
                    raise InvalidVectorsError(
                        f"row {r}: key {_show(key)} is neither an int index nor a str token"
                    )
                if not isinstance(weight, (numbers.Real, Decimal, np.bool_)):
                    raise InvalidVectorsError(
                        f"row {r}: weight {_show(weight)} is not a real number"
                    )
                try:
                    values.append(float(weight))
                except OverflowError:
                    raise InvalidVectorsError(
                        f"row {r}: weight {_show(weight)} is too large"
                    ) from None
                indices.append(j)
            indptr.append(len(indices))
        with np.errstate(over="ignore"):  # overflow to inf is refused by the constructor
            data = np.asarray(values, np.float32)
        matrix = sp.csr_matrix(
            (data, np.asarray(indices, np.int64), np.asarray(indptr, np.int64)),
            shape=(len(indptr) - 1, d),
        )
        out = cls.from_scipy(matrix)
        out.vocab = voc
        return out

    # ------------------------------------------------------------------ conversion
    def to_scipy(self) -> sp.csr_matrix:
        """A scipy CSR matrix sharing these arrays (no copy)."""
        return sp.csr_matrix((self.values, self.indices, self.indptr), shape=self.shape)

    def to_dense(self) -> npt.NDArray[np.float32]:
        """A dense (n, dim) float32 array. Mind the memory: n × dim floats."""
        return np.asarray(self.to_scipy().toarray(), dtype=np.float32)  # no copy: float32 already

    def to_torch(self) -> torch.Tensor:
        """A coalesced torch sparse COO tensor of shape (n, dim)."""
        import torch

        rows = np.repeat(np.arange(self.n, dtype=np.int64), self.active_dims())
        coords = torch.from_numpy(np.stack([rows, self.indices.astype(np.int64)]))
        return torch.sparse_coo_tensor(
            coords,
            torch.from_numpy(self.values.copy()),
            size=self.shape,
            is_coalesced=True,
            check_invariants=False,
        )

    def to_dicts(self, vocab: Sequence[str] | None = None) -> list[dict[Any, float]]:
        """One ``{token: weight}`` dict per row (``{index: weight}`` without a vocab)."""
        vocab = vocab if vocab is not None else self.vocab
        out = []
        for i in range(self.n):
            idx, val = self.row(i)
            keys = [vocab[j] for j in idx] if vocab is not None else idx.tolist()
            out.append(dict(zip(keys, val.tolist(), strict=True)))
        return out

    # ------------------------------------------------------------------ operations
    def top_k_per_row(self, k: int) -> SparseVectors:
        """Keep the ``k`` largest weights of each row (``max_active_dims``); ties keep lower ids."""
        k = _as_count(k, "k")
        if k <= 0:
            raise InvalidVectorsError(f"k must be positive, got {k}")
        active = self.active_dims()
        if active.size == 0 or active.max() <= k:
            return self
        rows = np.repeat(np.arange(self.n), active)
        # Sort by (row, -value, index): the first k of each row are the ones to keep.
        order = np.lexsort((self.indices, -self.values, rows))
        rank = np.arange(self.nnz) - np.repeat(self.indptr[:-1], active)
        keep = np.sort(order[rank < k])  # back to (row, index) order
        new_active = np.minimum(active, k)
        indptr = np.zeros(self.n + 1, np.int64)
        np.cumsum(new_active, out=indptr[1:])
        return self._like(indptr, self.indices[keep], self.values[keep])

    def dot(self, other: SparseVectors) -> npt.NDArray[np.float32]:
        """Dense (self.n, other.n) matrix of dot products."""
        self.check_compatible(other)
        return np.asarray((self.to_scipy() @ other.to_scipy().T).toarray(), dtype=np.float32)

    def check_compatible(self, other: SparseVectors) -> None:
        """Raise if ``other`` has another dimension or another vocabulary."""
        _check_vectors(other)
        if self.dim != other.dim:
            raise DimensionMismatchError(f"dim {self.dim} does not match dim {other.dim}")
        if self.vocab is not None and other.vocab is not None and self.vocab != other.vocab:
            raise VocabularyMismatchError("the two batches were made with different vocabularies")


@dataclass(frozen=True)
class TermStats:
    """Document frequencies of a collection: ``doc_freq[j]`` of its ``n_docs`` rows hold term ``j``.

    What corpus-side sparsity statistics need (mean active dims, FLOPS) without the vectors.
    """

    n_docs: int
    doc_freq: np.ndarray

    @property
    def mean_active_dims(self) -> float:
        """Mean non-zeros per document (0.0 for an empty collection)."""
        return float(self.doc_freq.sum() / self.n_docs) if self.n_docs else 0.0


def _path(path: Any) -> Path:
    """A file path (str or path-like); an int would be taken for an open file descriptor."""
    if isinstance(path, (str, os.PathLike)):
        try:
            return Path(path)
        except TypeError:  # a PathLike whose __fspath__ returns no str
            pass
    raise InvalidInputError(f"expected a file path, got {type(path).__name__}")


def _pack_strings(strings: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Strings as (UTF-8 bytes, int64 offsets): exact, NULs and lone surrogates included."""
    encoded = [s.encode("utf-8", "surrogatepass") for s in strings]
    offsets = np.zeros(len(encoded) + 1, np.int64)
    np.cumsum([len(b) for b in encoded], out=offsets[1:])
    return np.frombuffer(b"".join(encoded), np.uint8), offsets


def _unpack_strings(data: np.ndarray, offsets: np.ndarray) -> list[str]:
    if data.ndim != 1 or data.dtype != np.uint8 or offsets.ndim != 1:
        raise ValueError("ids arrays have the wrong type or shape")
    if offsets.dtype.kind not in "iu" or offsets.size < 1:
        raise ValueError("ids offsets are not integers")
    bounds = offsets.tolist()
    if bounds[0] != 0 or bounds[-1] != data.size or np.any(np.diff(offsets) < 0):
        raise ValueError("ids offsets are inconsistent")
    raw = data.tobytes()
    return [
        raw[a:b].decode("utf-8", "surrogatepass") for a, b in zip(bounds, bounds[1:], strict=False)
    ]


def save_npz(path: str | Path, vectors: SparseVectors, ids: Sequence[Any] | None = None) -> None:
    """Write vectors (and optional ids, vocab) to one ``.npz`` file, without pickle.

    Ids are stored as their ``str``, exactly (as UTF-8 bytes and offsets).
    """
    target = _path(path)
    _check_vectors(vectors)
    arrays: dict[str, np.ndarray] = {
        "indptr": vectors.indptr,
        "indices": vectors.indices,
        "values": vectors.values,
        "dim": np.array(vectors.dim, dtype=np.int64),
    }
    if vectors.vocab is not None:
        arrays["vocab"] = np.array(vectors.vocab, dtype=str)
    if ids is not None:
        if isinstance(ids, (str, bytes, Mapping)):
            raise InvalidInputError(f"ids must be a sequence of ids, got {type(ids).__name__}")
        try:
            texts = [str(i) for i in ids]
        except TypeError:
            raise InvalidInputError(f"ids must be a sequence, got {type(ids).__name__}") from None
        except ValueError as err:  # an int beyond Python's int -> str limit
            raise InvalidInputError(f"an id cannot be written as text ({err})") from None
        if len(texts) != vectors.n:
            raise InvalidVectorsError(f"{len(texts)} ids for {vectors.n} vectors")
        arrays["ids_utf8"], arrays["ids_offsets"] = _pack_strings(texts)
    try:
        with open(target, "wb") as f:
            # numpy's stub types savez's ``allow_pickle: bool`` keyword (numpy >= 2.1) beside
            # ``**kwds``, so mypy checks the unpacked dict against both; every value is an array.
            np.savez(f, **arrays)  # type: ignore[arg-type]
    except (OSError, ValueError) as err:  # a folder, a NUL in the name, a name too long, ...
        raise InvalidInputError(f"{_show(str(target))}: cannot write ({err})") from None


def load_npz(path: str | Path) -> tuple[SparseVectors, list[str] | None]:
    """Read a file written by :func:`save_npz`: (vectors, ids or None).

    A missing, truncated or foreign file raises :class:`InvalidInputError` naming it; arrays that
    break the CSR contract raise it too (the message says which check failed).
    """
    path = _path(path)
    if not path.is_file():
        raise InvalidInputError(
            f"{path}: no such file" if not path.exists() else f"{path}: is not a file"
        )
    not_ours = f"{path}: not a vectors file written by save_npz / `sparsearch encode`"
    try:
        with open(path, "rb") as fh:
            magic = fh.read(4)
    except OSError as err:
        raise InvalidInputError(f"{path}: cannot read ({err.strerror})") from err
    if magic != b"PK\x03\x04":  # every .npz is a zip archive
        raise InvalidInputError(f"{not_ours} (not a .npz archive)")
    try:
        with np.load(path, allow_pickle=False) as data:
            vocab = data["vocab"].tolist() if "vocab" in data else None
            dim = data["dim"]
            if dim.ndim != 0 or dim.dtype.kind not in "iu":
                raise ValueError(f"dim must be one integer, got {dim.dtype} of shape {dim.shape}")
            vectors = SparseVectors(data["indptr"], data["indices"], data["values"], dim[()], vocab)
            if "ids_utf8" in data:
                ids = _unpack_strings(data["ids_utf8"], data["ids_offsets"])
            elif "ids" in data:  # files written before ids were stored as UTF-8 bytes
                if data["ids"].ndim != 1 or data["ids"].dtype.kind != "U":
                    raise ValueError("ids must be a 1-d array of str")
                ids = data["ids"].tolist()
            else:
                ids = None
    # what numpy and zipfile raise for a zip that is not an intact save_npz archive: truncated or
    # bit-flipped (BadZipFile, zlib.error, OSError, EOFError), an array missing (KeyError),
    # object arrays (ValueError), bad CSR arrays (InvalidVectorsError, a ValueError)
    except (OSError, EOFError, ValueError, KeyError, zipfile.BadZipFile, zlib.error) as err:
        reason = str(err.args[0]) if isinstance(err, KeyError) and err.args else str(err)
        raise InvalidInputError(f"{not_ours} ({reason})") from err
    if ids is not None and len(ids) != vectors.n:
        raise InvalidInputError(f"{not_ours} ({len(ids)} ids for {vectors.n} vectors)")
    return vectors, ids
