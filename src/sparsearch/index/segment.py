"""A segment: an immutable batch of documents with its forward index and term-major postings.

``seq`` keeps each document's global insertion number for tie-breaking. Only the tombstones
(``deleted``) change after a segment is built.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from sparsearch.index import build_kernels
from sparsearch.index.kernel_types import F32, I32, I64, U8, U16, Ordinals
from sparsearch.sparse import SparseVectors

ARRAYS = (
    "fwd_indptr",
    "fwd_indices",
    "fwd_values",
    "seq",
    "post_indptr",
    "post_docs",
    "post_vals",
    "term_max",
    "top_indptr",
    "top_docs",
    "term_scale",
    "blk_indptr",
    "blk_docs",
    "blk_imps",
)
INVERTED = ARRAYS[4:7]
BOUNDS = ARRAYS[7:]  # derived from the postings: what pruning needs
TOP_DOCS = 16  # per term, the documents of largest weight kept to seed the pruning threshold
SHORT_ORDINALS = 1 << 16  # a segment of at most this many documents stores uint16 postings


class Segment:
    """Immutable documents of one batch; ``deleted`` marks tombstoned local ordinals."""

    def __init__(
        self,
        number: int,
        dim: int,
        arrays: dict[str, np.ndarray],
        ids: np.ndarray,
        payloads: list[dict[str, Any] | None] | None,
        deleted: npt.NDArray[np.bool_] | None = None,
    ) -> None:
        self.number = number
        self.dim = dim
        self.fwd_indptr: I64 = arrays["fwd_indptr"]
        self.fwd_indices: I32 = arrays["fwd_indices"]
        self.fwd_values: F32 = arrays["fwd_values"]
        self.seq: I64 = arrays["seq"]
        # in INVERTED and BOUNDS order: the search kernel's arguments
        self.inverted: tuple[I64, Ordinals, F32] = (
            arrays["post_indptr"],
            arrays["post_docs"],
            arrays["post_vals"],
        )
        self.bounds: tuple[F32, I64, I32, F32, I64, U16, U8] = (
            arrays["term_max"],
            arrays["top_indptr"],
            arrays["top_docs"],
            arrays["term_scale"],
            arrays["blk_indptr"],
            arrays["blk_docs"],
            arrays["blk_imps"],
        )
        self.ids = ids
        self.payloads = payloads
        self.deleted: npt.NDArray[np.bool_] = np.zeros(self.n, bool) if deleted is None else deleted
        self.nonneg = bool(self.fwd_values.size == 0 or self.fwd_values.min() >= 0)
        # (index root, folder name, file records) once written to disk
        self.saved: tuple[Path, str, dict[str, dict[str, Any]]] | None = None

    # ------------------------------------------------------------------ build
    @classmethod
    def build(
        cls,
        number: int,
        vectors: SparseVectors,
        seq: np.ndarray,
        ids: Sequence[Any],
        payloads: Sequence[dict[str, Any] | None] | None,
    ) -> Segment:
        """Index ``vectors`` (rows in insertion order, ``seq`` ascending) as a new segment."""
        inverted: tuple[I64, Ordinals, F32] = build_kernels.inverted_index(
            vectors.indptr, vectors.indices, vectors.values, vectors.dim
        )
        if vectors.n <= SHORT_ORDINALS:  # 2-byte ordinals: a quarter less to read per posting
            inverted = (inverted[0], inverted[1].astype(np.uint16), inverted[2])
        top = build_kernels.term_bounds(*inverted, TOP_DOCS)
        bounds = top + build_kernels.impact_blocks(*inverted, top[0], vectors.n)
        arrays: dict[str, np.ndarray] = {
            "fwd_indptr": vectors.indptr,
            "fwd_indices": vectors.indices,
            "fwd_values": vectors.values,
            "seq": np.asarray(seq, np.int64),
            **dict(zip(INVERTED, inverted, strict=True)),
            **dict(zip(BOUNDS, bounds, strict=True)),
        }
        id_array = np.empty(len(ids), object)
        id_array[:] = list(ids)
        kept = None if payloads is None else list(payloads)
        return cls(number, vectors.dim, arrays, id_array, kept)

    # ------------------------------------------------------------------ access
    @property
    def n(self) -> int:
        """Number of documents, tombstoned ones included."""
        return self.fwd_indptr.size - 1

    @property
    def n_live(self) -> int:
        return self.n - int(np.count_nonzero(self.deleted))

    def arrays(self) -> dict[str, np.ndarray]:
        """The immutable arrays by name (what goes to disk)."""
        fixed: dict[str, np.ndarray] = {
            "fwd_indptr": self.fwd_indptr,
            "fwd_indices": self.fwd_indices,
            "fwd_values": self.fwd_values,
            "seq": self.seq,
        }
        return {
            **fixed,
            **dict(zip(INVERTED, self.inverted, strict=True)),
            **dict(zip(BOUNDS, self.bounds, strict=True)),
        }

    def search_arrays(
        self,
    ) -> tuple[I64, Ordinals, F32, F32, I64, I32, F32, I64, U16, U8, I64, I32, F32, bool]:
        """The search kernel's view of the segment, in its argument order."""
        return (
            *self.inverted,
            *self.bounds,
            self.fwd_indptr,
            self.fwd_indices,
            self.fwd_values,
            self.nonneg,
        )

    def vectors(self, local: np.ndarray | None = None) -> SparseVectors:
        """Documents by local ordinal (all when ``local`` is None), in the given order."""
        whole = SparseVectors(
            self.fwd_indptr, self.fwd_indices, self.fwd_values, self.dim, validate=False
        )
        return whole if local is None else whole[np.asarray(local, np.int64)]

    def payload(self, local: int) -> dict[str, Any] | None:
        return None if self.payloads is None else self.payloads[local]

    def live_docs(self) -> np.ndarray:
        """Local ordinals of live documents, in insertion order."""
        local = np.flatnonzero(~self.deleted)
        return local[np.argsort(self.seq[local], kind="stable")]

    def nbytes(self) -> int:
        return sum(a.nbytes for a in self.arrays().values()) + self.deleted.nbytes
