"""`SparseIndex`: an updatable, persistent, exact top-k index over sparse vectors."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, cast

import numpy as np

from sparsearch.errors import (
    DimensionMismatchError,
    DuplicateIdError,
    InvalidInputError,
    UnknownIdError,
    VocabularyMismatchError,
)
from sparsearch.index import kernels, storage
from sparsearch.index.checks import check_batch, normalize_ids
from sparsearch.index.segment import Segment
from sparsearch.index.views import (
    Plan,
    live_term_stats,
    search_plans,
    slot_offsets,
    slot_payloads,
    slot_table,
)
from sparsearch.search import DocId, Filter, Hits, SearchParams
from sparsearch.sparse import SparseVectors, TermStats, vocab_hash

_NO_SEQ = np.iinfo(np.int64).max


def _pack(number: int, local: int) -> int:
    return (number << 32) | local


class SparseIndex:
    """An exact top-k (dot product) index of sparse vectors with updates, filters and persistence.

    In memory when ``path`` is None; with a ``path`` that holds an index, that index is opened;
    with a new ``path``, :meth:`save` commits there. ``dim`` and ``vocab`` are fixed by the first
    :meth:`add` when not given. Parameter: ``max_segments`` (more segments than this after an add merges the small ones, 16).

    >>> from sparsearch.sparse import SparseVectors
    >>> docs = SparseVectors.from_dicts([{0: 1.0, 2: 0.5}, {1: 2.0}, {0: 0.2, 1: 0.1}], dim=3)
    >>> index = SparseIndex()
    >>> index.add(["a", "b", "c"], docs, payloads=[{"lang": "en"}, None, {"lang": "fr"}])
    >>> hits = index.search(SparseVectors.from_dicts([{0: 1.0, 1: 1.0}], dim=3), k=2)
    >>> hits.ids.tolist(), hits.scores.tolist()
    ([['b', 'a']], [[2.0, 1.0]])
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        dim: int | None = None,
        vocab: Sequence[str] | None = None,
        max_segments: int = 16,
    ) -> None:
        if path is not None and (Path(path) / storage.CURRENT).exists():
            self._load(Path(path), mmap=True, verify=True)
            return
        if max_segments < 1:
            raise InvalidInputError(f"max_segments must be positive, got {max_segments}")
        if vocab is not None:
            vocab = tuple(vocab)
            if dim is not None and dim != len(vocab):
                raise DimensionMismatchError(f"dim {dim} but a vocab of {len(vocab)} tokens")
            dim = len(vocab)
        self.path = Path(path) if path is not None else None
        self._dim = dim
        self._vocab = vocab
        self._vocab_hash = vocab_hash(vocab)
        self._params = {"max_segments": int(max_segments)}
        self._segments: list[Segment] = []
        self._next_seq = 0
        self._next_number = 0
        self._reset_maps()

    # ------------------------------------------------------------------ properties
    @property
    def dim(self) -> int | None:
        return self._dim

    @property
    def vocab(self) -> tuple[str, ...] | None:
        return self._vocab

    def __len__(self) -> int:
        return len(self._where)

    def __contains__(self, doc_id: object) -> bool:
        return doc_id in self._where

    def __repr__(self) -> str:
        where = f"path={str(self.path)!r}" if self.path else "in memory"
        return f"SparseIndex({len(self)} documents, {len(self._segments)} segments, {where})"

    def stats(self) -> dict[str, Any]:
        """Counts, sizes and parameters."""
        return {
            "documents": len(self),
            "deleted": sum(seg.n - seg.n_live for seg in self._segments),
            "segments": len(self._segments),
            "dim": self._dim,
            "vocab_hash": self._vocab_hash,
            "nnz": sum(int(seg.fwd_indices.size) for seg in self._segments),
            "bytes": sum(seg.nbytes() for seg in self._segments),
            "path": str(self.path) if self.path else None,
            **self._params,
        }

    # ------------------------------------------------------------------ updates
    def add(
        self,
        ids: Sequence[DocId],
        vectors: SparseVectors,
        payloads: Sequence[Mapping[str, Any] | None] | None = None,
    ) -> None:
        """Add documents; an id already present (or repeated) raises :class:`DuplicateIdError`."""
        ids = self._check_batch(ids, vectors, payloads)
        taken = [doc_id for doc_id in ids if doc_id in self._where]
        if taken:
            raise DuplicateIdError(f"id {taken[0]!r} is already in the index (use upsert)")
        self._append(ids, vectors, payloads)

    def upsert(
        self,
        ids: Sequence[DocId],
        vectors: SparseVectors,
        payloads: Sequence[Mapping[str, Any] | None] | None = None,
    ) -> None:
        """Add documents, replacing those whose id is present (they count as newly inserted)."""
        ids = self._check_batch(ids, vectors, payloads)
        self._append(ids, vectors, payloads, replacing=[d for d in ids if d in self._where])

    def delete(self, ids: Iterable[DocId]) -> None:
        """Tombstone documents; an unknown id raises :class:`UnknownIdError` and deletes nothing."""
        ids = list(dict.fromkeys(normalize_ids(ids)))
        for doc_id in ids:
            if doc_id not in self._where:
                raise UnknownIdError(f"unknown id {doc_id!r}")
        for doc_id in ids:
            packed = self._where.pop(doc_id)
            self._by_number[packed >> 32].deleted[packed & 0xFFFFFFFF] = True
        emptied = [seg for seg in self._segments if seg.n_live == 0]
        for seg in emptied:
            self._segments.remove(seg)
            del self._by_number[seg.number]
        self._invalidate()

    def compact(self) -> None:
        """Merge every segment into one, dropping deleted documents."""
        if len(self._segments) > 1 or any(seg.n_live < seg.n for seg in self._segments):
            self._merge(list(self._segments))

    def get(self, ids: Iterable[DocId]) -> SparseVectors:
        """The stored vectors of ``ids``, in that order (one gather per segment)."""
        packed = self._packed(ids)
        if self._dim is None:
            raise InvalidInputError("the index is empty and has no dimension yet")
        numbers, local = packed >> 32, packed & 0xFFFFFFFF
        parts = [SparseVectors.empty(self._dim)]
        positions = [np.zeros(0, np.int64)]
        for number in np.unique(numbers).tolist():
            chosen = np.flatnonzero(numbers == number)
            parts.append(self._by_number[number].vectors(local[chosen]))
            positions.append(chosen)
        out = SparseVectors.concat(parts)[np.argsort(np.concatenate(positions), kind="stable")]
        return SparseVectors(
            out.indptr, out.indices, out.values, out.dim, self._vocab, validate=False
        )

    def iter_batches(
        self, batch_size: int = 1024
    ) -> Iterator[tuple[list[DocId], SparseVectors, list[dict[str, Any] | None]]]:
        """Every live document in insertion order, ``batch_size`` at a time (for exports):
        ``(ids, vectors, payloads)`` per batch."""
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise InvalidInputError(f"batch_size must be a positive integer, got {batch_size!r}")
        ordered = self.ids()
        for start in range(0, len(ordered), batch_size):
            chunk = ordered[start : start + batch_size]
            yield chunk, self.get(chunk), self.get_payloads(chunk)

    def _packed(self, ids: Iterable[DocId]) -> np.ndarray:
        """(segment number << 32 | local ordinal) of each id; an unknown id is a named error."""
        checked = normalize_ids(ids)
        try:
            return np.fromiter((self._where[d] for d in checked), np.int64, len(checked))
        except KeyError as err:
            raise UnknownIdError(f"unknown id {err.args[0]!r}") from None

    def ids(self) -> list[DocId]:
        """The ids of all live documents, in insertion order."""
        return sorted(self._where, key=lambda doc_id: self._seq_of(self._where[doc_id]))

    def term_stats(self) -> TermStats:
        """How many live documents hold each term (for FLOPS and active-dims statistics)."""
        if self._dim is None:
            raise InvalidInputError("the index is empty and has no dimension yet")
        if "term_stats" not in self._cache:
            self._cache["term_stats"] = live_term_stats(self._segments, self._dim)
        stats: TermStats = self._cache["term_stats"]
        return stats

    def _seq_of(self, packed: int) -> int:
        return int(self._by_number[packed >> 32].seq[packed & 0xFFFFFFFF])

    def get_payloads(self, ids: Iterable[DocId]) -> list[dict[str, Any] | None]:
        """The payloads of ``ids``, in that order (None where a document has none)."""
        out = []
        for doc_id in normalize_ids(ids):
            if doc_id not in self._where:
                raise UnknownIdError(f"unknown id {doc_id!r}")
            packed = self._where[doc_id]
            out.append(self._by_number[packed >> 32].payload(packed & 0xFFFFFFFF))
        return out

    # ------------------------------------------------------------------ search
    def search(
        self, queries: SparseVectors, k: int = 10, *, params: SearchParams | None = None
    ) -> Hits:
        """Exact top-``k`` documents by dot product for each query.

        ``params``: a :class:`~sparsearch.search.SearchParams` with the filter (``Filter``,
        ``{"ids": [...], "payload": {field: value}}`` or a collection of allowed ids),
        ``return_payloads`` and ``threads`` (default: all cores).
        """
        if params is not None and not isinstance(params, SearchParams):
            raise InvalidInputError(f"params must be SearchParams, got {type(params).__name__}")
        params = params or SearchParams()
        if not isinstance(queries, SparseVectors):
            raise InvalidInputError(f"queries must be SparseVectors, got {type(queries).__name__}")
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise InvalidInputError(f"k must be a positive integer, got {k!r}")
        k = int(k)
        self._check_vectors(queries)
        n = queries.n
        top_scores = np.empty((n, k), np.float32)
        top_scores.fill(-np.inf)
        top_seq = np.empty((n, k), np.int64)
        top_seq.fill(_NO_SEQ)
        top_slot = np.empty((n, k), np.int64)
        top_slot.fill(-1)  # slot -1 picks the padding entry at the end of the slot tables
        top_n = np.zeros(n, np.int64)
        plans = self._plans(params.filter)

        largest = max((seg.n for seg, _, _ in plans), default=0)

        def work(lo: int, hi: int) -> None:
            scratch = self._scratch(largest)
            for seg, offset, live in plans:
                kernels.search_segment(
                    queries.indptr,
                    queries.indices,
                    queries.values,
                    lo,
                    hi,
                    *seg.search_arrays(),
                    seg.seq,
                    live,
                    offset,
                    top_scores,
                    top_seq,
                    top_slot,
                    top_n,
                    scratch,
                )

        threads = max(1, min(params.threads or os.cpu_count() or 1, n))
        if plans and threads == 1:
            work(0, n)
        elif plans:
            bounds = np.linspace(0, n, threads + 1).astype(int)
            with ThreadPoolExecutor(threads) as pool:
                list(pool.map(work, bounds[:-1], bounds[1:]))
        kernels.sort_heaps(top_scores, top_seq, top_slot, top_n)
        payloads = self._slot_payloads()[top_slot] if params.return_payloads else None
        return Hits(ids=self._slot_ids()[top_slot], scores=top_scores, payloads=payloads)

    # ------------------------------------------------------------------ persistence
    @classmethod
    def open(
        cls, path: str | os.PathLike[str], mmap: bool = True, verify: bool = True
    ) -> SparseIndex:
        """Open a saved index; a damaged one raises :class:`IndexCorruptError`.

        ``mmap``: memory-map the arrays instead of reading them. ``verify``: check every file's
        sha256 (sizes are always checked).
        """
        index = cls.__new__(cls)
        index._load(Path(path), mmap=mmap, verify=verify)
        return index

    def save(self, path: str | os.PathLike[str] | None = None) -> None:
        """Commit the current state to ``path`` (default: the index's own path), crash-safely."""
        if path is None and self.path is None:
            raise InvalidInputError("an in-memory index needs a path to save to")
        root = Path(path) if path is not None else cast(Path, self.path)
        root.mkdir(parents=True, exist_ok=True)
        state = {
            "dim": self._dim,
            "vocab_hash": self._vocab_hash,
            "counts": {
                "documents": len(self),
                "segments": len(self._segments),
                "deleted": self.stats()["deleted"],
            },
            "params": self._params,
            "next_seq": self._next_seq,
            "next_number": self._next_number,
        }
        storage.save_index(root, self._segments, self._vocab, state)
        self.path = root

    def _load(self, root: Path, mmap: bool, verify: bool) -> None:
        manifest = storage.read_manifest(root, verify=verify)
        self.path = root
        self._dim = manifest["dim"]
        self._vocab_hash = manifest["vocab_hash"]
        self._vocab = None
        if manifest["vocab_file"]:
            self._vocab = tuple(json.loads((root / manifest["vocab_file"]).read_text()))
        self._params = manifest["params"]
        self._next_seq = manifest["next_seq"]
        self._next_number = manifest["next_number"]
        self._segments = [
            storage.read_segment(root, meta, self._dim, mmap) for meta in manifest["segments"]
        ]
        self._reset_maps()

    # ------------------------------------------------------------------ internals
    def _reset_maps(self) -> None:
        self._local = threading.local()  # per thread: the search kernel's scratch arrays
        self._by_number = {seg.number: seg for seg in self._segments}
        self._where: dict[DocId, int] = {}
        for seg in self._segments:
            self._register(seg)
        self._invalidate()

    def _register(self, seg: Segment) -> None:
        for local in np.flatnonzero(~seg.deleted).tolist():
            self._where[seg.ids[local]] = _pack(seg.number, local)

    def _scratch(self, n: int) -> kernels.Scratch:
        """This thread's scratch arrays of the search kernel, for segments of up to ``n`` docs."""
        held = getattr(self._local, "scratch", None)
        if held is None or held[0].size < n:
            held = self._local.scratch = kernels.scratch(n, self._dim or 0)
        return held

    def _invalidate(self) -> None:
        self._cache: dict[str, Any] = {}

    def _check_vectors(self, vectors: SparseVectors) -> None:
        if self._dim is not None and vectors.dim != self._dim:
            raise DimensionMismatchError(f"vectors have dim {vectors.dim}, the index {self._dim}")
        if vectors.vocab is not None and self._vocab_hash is not None:
            if self._cache.get("vocab_ok") is not vectors.vocab:
                if vocab_hash(vectors.vocab) != self._vocab_hash:
                    raise VocabularyMismatchError(
                        "the vectors were made with another vocabulary than the index's"
                    )
                self._cache["vocab_ok"] = vectors.vocab

    def _check_batch(
        self,
        ids: Sequence[DocId],
        vectors: SparseVectors,
        payloads: Sequence[Mapping[str, Any] | None] | None,
    ) -> list[DocId]:
        checked = check_batch(ids, vectors, payloads)
        self._check_vectors(vectors)
        return checked

    def _append(
        self,
        ids: list[DocId],
        vectors: SparseVectors,
        payloads: Sequence[Mapping[str, Any] | None] | None,
        replacing: Sequence[DocId] = (),
    ) -> None:
        """Build the batch's segment, then (only if that worked) replace ``replacing`` and add it."""
        seg = None
        if ids:
            seq = np.arange(self._next_seq, self._next_seq + len(ids), dtype=np.int64)
            plain = None if payloads is None else [None if p is None else dict(p) for p in payloads]
            seg = Segment.build(self._next_number, vectors, seq, ids, plain)
        if self._dim is None:
            self._dim = vectors.dim
        if self._vocab is None and vectors.vocab is not None and self._next_seq == 0:
            self._vocab, self._vocab_hash = vectors.vocab, vectors.vocab_hash()
        if seg is None:
            return
        if replacing:
            self.delete(replacing)
        self._next_seq += len(ids)
        self._next_number += 1
        self._segments.append(seg)
        self._by_number[seg.number] = seg
        self._register(seg)
        self._invalidate()
        if len(self._segments) > self._params["max_segments"]:
            largest = max(self._segments, key=lambda s: s.n_live)
            self._merge([s for s in self._segments if s is not largest])

    def _merge(self, group: list[Segment]) -> None:
        """Replace the segments of ``group`` by one holding their live documents, in seq order."""
        parts: list[SparseVectors] = []
        seqs: list[np.ndarray] = []
        ids: list[DocId] = []
        payloads: list[dict[str, Any] | None] = []
        for seg in group:
            local = seg.live_docs()
            parts.append(seg.vectors(local))
            seqs.append(seg.seq[local])
            ids.extend(seg.ids[local].tolist())
            payloads.extend(seg.payload(i) for i in local.tolist())
        order = np.argsort(np.concatenate(seqs), kind="stable")
        vectors = SparseVectors.concat(parts)[order]
        keep = set(id(seg) for seg in group)
        self._segments = [seg for seg in self._segments if id(seg) not in keep]
        for seg in group:
            del self._by_number[seg.number]
        if order.size:
            with_payloads = any(p is not None for p in payloads)
            seg = Segment.build(
                self._next_number,
                vectors,
                np.concatenate(seqs)[order],
                [ids[i] for i in order.tolist()],
                [payloads[i] for i in order.tolist()] if with_payloads else None,
            )
            self._next_number += 1
            self._segments.append(seg)
            self._by_number[seg.number] = seg
            self._register(seg)
        self._invalidate()

    def _offsets(self) -> np.ndarray:
        return self._cached("offsets", lambda: slot_offsets(self._segments))

    def _slot_ids(self) -> np.ndarray:
        """External id by slot, then one ``None`` (what padding's slot -1 picks)."""
        return self._cached("ids", lambda: slot_table([seg.ids for seg in self._segments]))

    def _slot_payloads(self) -> np.ndarray:
        """Payload by slot, then one ``None`` (what padding's slot -1 picks)."""
        return self._cached("payloads", lambda: slot_payloads(self._segments))

    def _cached(self, key: str, make: Callable[[], np.ndarray]) -> np.ndarray:
        if key not in self._cache:
            self._cache[key] = make()
        value: np.ndarray = self._cache[key]
        return value

    def _plans(self, flt: Filter | None) -> list[Plan]:
        """Per segment, largest first: (segment, slot offset, live mask)."""
        if flt is None and "plans" in self._cache:
            cached: list[Plan] = self._cache["plans"]
            return cached
        plans = search_plans(self._segments, self._offsets(), self._where, flt)
        if flt is None:
            self._cache["plans"] = plans
        return plans
