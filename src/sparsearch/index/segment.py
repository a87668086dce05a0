"""A segment: an immutable batch of documents with its forward index and term-major postings.

``seq`` keeps each document's global insertion number for tie-breaking; ``ids`` and
``payloads`` are columns (:mod:`~sparsearch.index.ids`,
:mod:`~sparsearch.index.payload_columns`). A segment object never changes: deleting documents
makes a new object (:meth:`Segment.with_deleted`) that shares every array but the tombstones, so
a snapshot that holds the old one keeps seeing what it saw.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from sparsearch.index import build_kernels
from sparsearch.index.ids import AnyIdColumn, column_for
from sparsearch.index.kernel_types import F32, I32, I64, U8, U16, Ordinals
from sparsearch.index.payload_columns import PayloadColumns
from sparsearch.index.validate import validate_arrays, validate_payloads
from sparsearch.sparse import SparseVectors

if TYPE_CHECKING:
    from sparsearch.index.approx import ApproxPart

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
FILTER_CACHE = 64  # compiled filter masks kept per segment (oldest dropped first)
TOP_DOCS = 16  # per term, the documents of largest weight kept to seed the pruning threshold
SHORT_ORDINALS = 1 << 16  # a segment of at most this many documents stores uint16 postings


class Segment:
    """Immutable documents of one batch; ``deleted`` marks tombstoned local ordinals."""

    def __init__(
        self,
        number: int,
        dim: int,
        arrays: dict[str, np.ndarray],
        ids: AnyIdColumn,
        payloads: PayloadColumns,
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
        self.deleted.flags.writeable = False
        self.n_live = self.n - int(np.count_nonzero(self.deleted))
        self._shared = _Shared()
        # (index root, folder name, file records) once written to disk
        self.saved: tuple[Path, str, dict[str, dict[str, Any]]] | None = None

    def with_deleted(self, local: np.ndarray) -> Segment:
        """A copy with the local ordinals ``local`` tombstoned too (arrays shared, not copied)."""
        deleted = self.deleted.copy()
        deleted[local] = True
        other = Segment.__new__(Segment)
        other.__dict__.update(self.__dict__)
        deleted.flags.writeable = False
        other.deleted = deleted
        other.n_live = other.n - int(np.count_nonzero(deleted))
        return other

    def renumbered(self, number: int, seq_offset: int) -> Segment:
        """A copy numbered ``number`` whose documents come ``seq_offset`` later in insertion
        order (arrays shared; to attach a segment built elsewhere to another index)."""
        other = Segment.__new__(Segment)
        other.__dict__.update(self.__dict__)
        other.number = number
        other.seq = self.seq + np.int64(seq_offset)
        other.saved = None
        return other

    @property
    def nonneg(self) -> bool:
        """Whether every weight is >= 0 (the pruned search needs it); computed once."""
        if self._shared.nonneg is None:
            self._shared.nonneg = bool(self.fwd_values.size == 0 or self.fwd_values.min() >= 0)
        return self._shared.nonneg

    def filter_mask(self, key: object, compile_mask: Callable[[], np.ndarray]) -> np.ndarray:
        """The (cached) mask of a filter over this segment's documents, deletions aside."""
        masks = self._shared.masks
        if key not in masks:
            if len(masks) >= FILTER_CACHE:
                masks.pop(next(iter(masks)))
            masks[key] = compile_mask()
        return masks[key]

    @property
    def approx(self) -> ApproxPart | None:
        """The approximate-search part (:mod:`sparsearch.index.approx`), once built or read."""
        return self._shared.approx

    @approx.setter
    def approx(self, part: ApproxPart | None) -> None:
        self._shared.approx = part

    def shared_lock(self) -> threading.Lock:
        """The lock of what the copies of this segment share (its approximate part's build)."""
        return self._shared.lock

    def mark_checked(self) -> None:
        """Known consistent (built here, or read from files that passed their checksums)."""
        self._shared.checked = True

    def check_structure(self) -> None:
        """Check (once) that the arrays are consistent, so the kernels can trust them: an index
        opened without checksum verification is checked here before its first use."""
        if not self._shared.checked:
            validate_arrays(self.arrays(), self.n, self.dim, self.deleted)
            self.ids.validate()
            validate_payloads(self.payloads)
            self._shared.checked = True

    # ------------------------------------------------------------------ build
    @classmethod
    def build(
        cls,
        number: int,
        vectors: SparseVectors,
        seq: np.ndarray,
        ids: Sequence[Any],
        payloads: Sequence[Mapping[str, Any] | None] | None,
    ) -> Segment:
        """Index ``vectors`` (rows in insertion order, ``seq`` ascending) as a new segment."""
        inverted: tuple[I64, Ordinals, F32] = build_kernels.inverted_index(
            vectors.indptr, vectors.indices, vectors.values, vectors.dim
        )
        if vectors.n <= SHORT_ORDINALS:  # 2-byte ordinals: a quarter less to read per posting
            inverted = (inverted[0], inverted[1].astype(np.uint16), inverted[2])
        top = build_kernels.term_bounds(*inverted, TOP_DOCS)
        bounds = top + build_kernels.impact_blocks(*inverted, top[0], vectors.n)
        arrays: dict[str, np.ndarray] = {  # copies: the caller may reuse its arrays
            "fwd_indptr": vectors.indptr.copy(),
            "fwd_indices": vectors.indices.copy(),
            "fwd_values": vectors.values.copy(),
            "seq": np.asarray(seq, np.int64),
            **dict(zip(INVERTED, inverted, strict=True)),
            **dict(zip(BOUNDS, bounds, strict=True)),
        }
        seg = cls(
            number,
            vectors.dim,
            arrays,
            column_for(list(ids)),
            PayloadColumns.build(payloads, vectors.n),
        )
        seg.mark_checked()  # built here: consistent by construction
        return seg

    # ------------------------------------------------------------------ access
    @property
    def n(self) -> int:
        """Number of documents, tombstoned ones included."""
        return self.fwd_indptr.size - 1

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

    def live_docs(self) -> np.ndarray:
        """Local ordinals of live documents, in insertion order."""
        local = np.flatnonzero(~self.deleted)
        return local[np.argsort(self.seq[local], kind="stable")]

    def nbytes(self) -> int:
        approx = self.approx.nbytes() if self.approx is not None else 0
        return sum(a.nbytes for a in self.arrays().values()) + self.deleted.nbytes + approx


class _Shared:
    """What the copies of one segment share: lazily computed facts, the filter-mask cache and
    the approximate-search part."""

    def __init__(self) -> None:
        self.nonneg: bool | None = None
        self.checked = False
        self.masks: dict[object, np.ndarray] = {}
        self.approx: ApproxPart | None = None
        self.lock = threading.Lock()
