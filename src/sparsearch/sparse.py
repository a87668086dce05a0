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
import zipfile
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from sparsearch.errors import (
    DimensionMismatchError,
    InvalidInputError,
    InvalidVectorsError,
    VocabularyMismatchError,
)

if TYPE_CHECKING:  # torch is optional: only the conversions need it
    import torch

__all__ = ["SparseVectors", "TermStats", "vocab_hash", "save_npz", "load_npz"]


def vocab_hash(vocab: Sequence[str] | None) -> str | None:
    """A stable fingerprint of a vocabulary (sha256 of its tokens in id order), or None."""
    if vocab is None:
        return None
    digest = hashlib.sha256()
    for token in vocab:
        digest.update(token.encode("utf-8"))
        digest.update(b"\x00")
    return digest.hexdigest()


def _row_of(indptr: np.ndarray, position: int) -> int:
    """The row that holds the non-zero at ``position``."""
    return int(np.searchsorted(indptr, position, side="right") - 1)


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
        self.indptr = np.ascontiguousarray(indptr, dtype=np.int64)
        self.indices = np.ascontiguousarray(indices, dtype=np.int32)
        self.values = np.ascontiguousarray(values, dtype=np.float32)
        self.dim = int(dim)
        self.vocab = tuple(vocab) if vocab is not None else None
        if validate:
            self._validate()

    # ------------------------------------------------------------------ validation
    def _validate(self) -> None:
        indptr, indices, values = self.indptr, self.indices, self.values
        if self.dim <= 0:
            raise InvalidVectorsError(f"dim must be positive, got {self.dim}")
        if indptr.ndim != 1 or indptr.size < 1:
            raise InvalidVectorsError("indptr must be a 1-d array of length n + 1")
        if indices.ndim != 1 or values.ndim != 1 or indices.size != values.size:
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
        if self.vocab is not None and len(self.vocab) != self.dim:
            raise DimensionMismatchError(
                f"vocab has {len(self.vocab)} tokens but dim is {self.dim}"
            )
        if indices.size == 0:
            return
        bad = np.flatnonzero((indices < 0) | (indices >= self.dim))
        if bad.size:
            p = int(bad[0])
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
        if not -self.n <= i < self.n:
            raise IndexError(f"row {i} out of range for {self.n} vectors")
        i %= max(self.n, 1)
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

    def _like(self, indptr: np.ndarray, indices: np.ndarray, values: np.ndarray) -> SparseVectors:
        return SparseVectors(indptr, indices, values, self.dim, self.vocab, validate=False)

    def __getitem__(self, key: int | slice | Sequence[int] | np.ndarray) -> SparseVectors:
        """Select rows: an int, a slice, an array of row numbers, or a boolean mask."""
        if isinstance(key, (int, np.integer)):
            idx = np.array([key])
        elif isinstance(key, slice):
            idx = np.arange(self.n)[key]
        else:
            idx = np.asarray(key)
            if idx.dtype == bool:
                if idx.size != self.n:
                    raise IndexError(f"boolean mask of length {idx.size} for {self.n} vectors")
                idx = np.flatnonzero(idx)
        idx = idx.astype(np.int64, copy=False)
        if idx.size and (idx.min() < -self.n or idx.max() >= self.n):
            raise IndexError(f"row index out of range for {self.n} vectors")
        idx = np.where(idx < 0, idx + self.n, idx)
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
        if not parts:
            raise InvalidVectorsError("concat needs at least one SparseVectors")
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
        """From a dense (n, dim) array; exact zeros are dropped."""
        dense = np.asarray(dense, dtype=np.float32)
        if dense.ndim == 1:
            dense = dense[None, :]
        if dense.ndim != 2:
            raise InvalidVectorsError(f"expected a 2-d array, got shape {dense.shape}")
        return cls.from_scipy(sp.csr_matrix(dense), vocab)

    @classmethod
    def from_scipy(
        cls, matrix: sp.spmatrix | sp.sparray, vocab: Sequence[str] | None = None
    ) -> SparseVectors:
        """From any scipy sparse matrix; duplicates are summed and explicit zeros dropped."""
        csr = sp.csr_matrix(matrix, dtype=np.float32, copy=True)
        csr.sum_duplicates()
        csr.eliminate_zeros()
        csr.sort_indices()
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
        """From ``{index_or_token: weight}`` dicts; tokens are looked up in ``vocab``."""
        token_ids = {t: i for i, t in enumerate(vocab)} if vocab is not None else None
        if dim is None:
            if vocab is None:
                raise InvalidVectorsError("from_dicts needs dim or vocab")
            dim = len(vocab)
        indptr, indices, values = [0], [], []
        for r, row in enumerate(rows):
            for key, weight in row.items():
                if isinstance(key, str):
                    if token_ids is None or key not in token_ids:
                        raise VocabularyMismatchError(f"row {r}: token {key!r} is not in the vocab")
                    key = token_ids[key]
                indices.append(int(key))
                values.append(float(weight))
            indptr.append(len(indices))
        matrix = sp.csr_matrix(
            (
                np.asarray(values, np.float32),
                np.asarray(indices, np.int64),
                np.asarray(indptr, np.int64),
            ),
            shape=(len(indptr) - 1, dim),
        )
        return cls.from_scipy(matrix, vocab)

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


def save_npz(path: str | Path, vectors: SparseVectors, ids: Sequence[Any] | None = None) -> None:
    """Write vectors (and optional ids, vocab) to one ``.npz`` file, without pickle."""
    arrays: dict[str, np.ndarray] = {
        "indptr": vectors.indptr,
        "indices": vectors.indices,
        "values": vectors.values,
        "dim": np.array(vectors.dim, dtype=np.int64),
    }
    if vectors.vocab is not None:
        arrays["vocab"] = np.array(vectors.vocab, dtype=str)
    if ids is not None:
        if len(ids) != vectors.n:
            raise InvalidVectorsError(f"{len(ids)} ids for {vectors.n} vectors")
        arrays["ids"] = np.array([str(i) for i in ids], dtype=str)
    with open(path, "wb") as f:
        # numpy's stub types savez's ``allow_pickle: bool`` keyword (numpy >= 2.1) beside
        # ``**kwds``, so mypy checks the unpacked dict against both; every value is an array.
        np.savez(f, **arrays)  # type: ignore[arg-type]


def load_npz(path: str | Path) -> tuple[SparseVectors, list[str] | None]:
    """Read a file written by :func:`save_npz`: (vectors, ids or None).

    A missing, truncated or foreign file raises :class:`InvalidInputError` naming it; arrays that
    break the CSR contract raise it too (the message says which check failed).
    """
    path = Path(path)
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
            vectors = SparseVectors(
                data["indptr"], data["indices"], data["values"], int(data["dim"]), vocab
            )
            ids = data["ids"].tolist() if "ids" in data else None
    # what numpy and zipfile raise for a zip that is not an intact save_npz archive: truncated or
    # bit-flipped (BadZipFile, zlib.error, OSError, EOFError), an array missing (KeyError),
    # object arrays (ValueError), bad CSR arrays (InvalidVectorsError, a ValueError)
    except (OSError, EOFError, ValueError, KeyError, zipfile.BadZipFile, zlib.error) as err:
        reason = str(err.args[0]) if isinstance(err, KeyError) and err.args else str(err)
        raise InvalidInputError(f"{not_ours} ({reason})") from err
    if ids is not None and len(ids) != vectors.n:
        raise InvalidInputError(f"{not_ours} ({len(ids)} ids for {vectors.n} vectors)")
    return vectors, ids
