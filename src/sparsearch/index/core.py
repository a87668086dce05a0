"""`SparseIndex`: an updatable, persistent, exact top-k index over sparse vectors.

Reads run on an immutable :class:`~sparsearch.index.snapshot.Snapshot` captured once per call;
writes (one at a time, under a thread lock and the folder's writer lock) build the next snapshot
and publish it with one assignment. The folder's lock is held while this handle has changes that
are not yet in a committed manifest, so any number of handles and processes can read, and a
second writer gets :class:`~sparsearch.errors.IndexLockedError` instead of losing commits.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from sparsearch.errors import (
    DimensionMismatchError,
    InvalidInputError,
    VocabularyMismatchError,
)
from sparsearch.index import approx, storage, updates
from sparsearch.index.approx import ApproxConfig
from sparsearch.index.checks import (
    check_batch,
    check_dim_and_vocab,
    check_k,
    check_max_segments,
    check_path,
    check_structure,
    normalize_ids,
)
from sparsearch.index.lock import WriterLock
from sparsearch.index.searching import search_snapshot
from sparsearch.index.snapshot import Snapshot
from sparsearch.index.wal import Op, WriteAheadLog
from sparsearch.search import DocId, Hits, SearchParams
from sparsearch.sparse import SparseVectors, TermStats, vocab_hash

WAL_FLUSH_BYTES = 64 << 20  # a durable index folds its log into segments past this size


class SparseIndex:
    """An exact top-k (dot product) index of sparse vectors with updates, filters and persistence.

    In memory when ``path`` is None; with a ``path`` that holds an index, that index is opened;
    with a new ``path``, :meth:`save` commits there. ``dim`` and ``vocab`` are fixed by the first
    :meth:`add` when not given. Ids are ``str`` or ``int`` (0..2**63-1).
    ``max_segments``: more segments than this after a write merges the smallest (16).
    ``durable``: every write is in an fsynced write-ahead log before it returns (needs a path).
    ``lock_timeout``: seconds to wait for another writer's lock before
    :class:`~sparsearch.errors.IndexLockedError`.

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
        durable: bool = False,
        lock_timeout: float = 0.0,
    ) -> None:
        self.path = check_path(path) if path is not None else None
        self._init_handle(durable, lock_timeout)
        if self.path is not None and (self.path / storage.CURRENT).exists():
            self._load(mmap=True, verify=True)
            return
        self._params = {"max_segments": check_max_segments(max_segments)}
        dim, checked_vocab = check_dim_and_vocab(dim, vocab)
        self._snap = Snapshot(dim=dim, vocab=checked_vocab, vocab_hash=vocab_hash(checked_vocab))

    def _init_handle(self, durable: bool, lock_timeout: float) -> None:
        if not isinstance(durable, bool):
            raise InvalidInputError(f"durable must be a bool, got {durable!r}")
        if durable and self.path is None:
            raise InvalidInputError(
                "a durable index needs a path (its write-ahead log lives there)"
            )
        if isinstance(lock_timeout, bool) or not isinstance(lock_timeout, (int, float)):
            raise InvalidInputError(
                f"lock_timeout must be a number of seconds, got {lock_timeout!r}"
            )
        self._durable = durable
        self._lock_timeout = float(lock_timeout)
        self._mutex = threading.RLock()
        self._lock: WriterLock | None = None
        self._wal: WriteAheadLog | None = None
        self._current = ""  # the CURRENT text this handle's snapshot was read from or committed
        self._readonly = False
        self._mmap, self._verify = True, True
        self._vocab_ok: dict[int, tuple[str, ...]] = {}  # vocabularies found equal to ours

    # ------------------------------------------------------------------ properties
    @property
    def dim(self) -> int | None:
        return self._snap.dim

    @property
    def vocab(self) -> tuple[str, ...] | None:
        return self._snap.vocab

    def snapshot(self) -> Snapshot:
        """The current state; it never changes, whatever is written afterwards."""
        return self._snap

    def pinned(self) -> SparseIndex:
        """A read-only handle on the current snapshot: reads that must agree with each other (a
        search and the ``get`` of its hits, an export) see one state, whatever is written meanwhile."""
        view = SparseIndex.__new__(SparseIndex)
        view.path = self.path
        view._init_handle(False, 0.0)
        view._readonly = True
        view._snap, view._params, view._vocab_ok = self._snap, self._params, self._vocab_ok
        return view

    def __len__(self) -> int:
        return self._snap.n_live

    def __contains__(self, doc_id: object) -> bool:
        try:
            (checked,) = normalize_ids([doc_id])
        except InvalidInputError:
            return False
        return bool(self._snap.locate([checked])[0][0] >= 0)

    def __repr__(self) -> str:
        where = f"path={str(self.path)!r}" if self.path else "in memory"
        return f"SparseIndex({len(self)} documents, {len(self._snap.segments)} segments, {where})"

    def stats(self) -> dict[str, Any]:
        """Counts, sizes and parameters."""
        snap = self._snap
        return {
            "documents": snap.n_live,
            "deleted": snap.n_deleted,
            "segments": len(snap.segments),
            "dim": snap.dim,
            "vocab_hash": snap.vocab_hash,
            "id_kind": snap.id_kind(),
            "nnz": sum(int(seg.fwd_indices.size) for seg in snap.segments),
            "bytes": sum(seg.nbytes() for seg in snap.segments),
            "approx_segments": sum(seg.approx is not None for seg in snap.segments),
            "path": str(self.path) if self.path else None,
            "durable": self._durable,
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
        checked = check_batch(ids, vectors, payloads)
        self._write("add", checked, vectors, payloads)

    def upsert(
        self,
        ids: Sequence[DocId],
        vectors: SparseVectors,
        payloads: Sequence[Mapping[str, Any] | None] | None = None,
    ) -> None:
        """Add documents, replacing those whose id is present (they count as newly inserted)."""
        checked = check_batch(ids, vectors, payloads)
        self._write("upsert", checked, vectors, payloads)

    def delete(self, ids: Iterable[DocId]) -> None:
        """Tombstone documents; an unknown id raises :class:`UnknownIdError` and deletes nothing."""
        checked = list(dict.fromkeys(normalize_ids(ids)))
        self._write("delete", checked, None, None)

    def attach(self, paths: Sequence[str | os.PathLike[str]]) -> None:
        """Add every document of the saved indexes at ``paths`` by taking over their segments
        as built (postings, bounds, ids, payloads): no re-indexing, so workers can build
        segments in parallel and this index only commits them. Their documents come after this
        index's, in the order given. An index with a folder commits at once (as :meth:`save`).

        Refused, with nothing changed: another dimension or vocabulary
        (:class:`DimensionMismatchError`, :class:`VocabularyMismatchError`), an id held twice
        (:class:`DuplicateIdError`), a damaged index (:class:`IndexCorruptError`). More than
        ``max_segments`` segments afterwards merges the smallest, as every write does.
        """
        if isinstance(paths, (str, os.PathLike)):
            raise InvalidInputError("attach takes a list of index folders, got one path")
        sources = [SparseIndex.open(path).snapshot() for path in paths]
        with self._mutex:
            was_locked = self._lock is not None
            self._acquire()
            try:
                new = updates.attach(self._snap, sources, self._params["max_segments"])
            except BaseException:
                if not was_locked:
                    self._release()
                raise
            self._publish(new)
            if self.path is not None:
                self.save()

    def compact(self) -> None:
        """Merge every segment into one, dropping deleted documents."""
        with self._mutex:
            segments = self._snap.segments
            if len(segments) > 1 or any(seg.n_live < seg.n for seg in segments):
                self._acquire()
                self._publish(updates.merge(self._snap, list(self._snap.segments)))

    def build_approx(self, config: ApproxConfig | None = None) -> None:
        """Build and calibrate the approximate-search part of every segment large enough to use
        one, ahead of the first ``SearchParams(mode="approx")`` search (which would build it);
        the next :meth:`save` writes the parts. ``config``: build settings (a different one
        rebuilds existing parts)."""
        for seg in self._snap.segments:
            if approx.eligible(seg):
                approx.part_of(seg, config)

    def calibrate_approx(self, queries: SparseVectors) -> list[dict[str, Any]]:
        """Recalibrate the recall knob on sample ``queries`` (like the ones users will send):
        per segment with a part, the recall@10 against exact search of each setting of
        :data:`~sparsearch.index.approx.LADDER`. Saved by the next :meth:`save`."""
        check_structure(queries)
        self._check_vectors(queries, self._snap)
        report = []
        for seg in self._snap.segments:
            if approx.eligible(seg):
                part = approx.part_of(seg)
                recalls = approx.calibrate(seg, part, queries)
                seg.approx = approx.ApproxPart(part.arrays, part.config, recalls)
                report.append({"segment": seg.number, "documents": seg.n, "recall": recalls})
        return report

    def _write(
        self,
        op: Op,
        ids: list[DocId],
        vectors: SparseVectors | None,
        payloads: Sequence[Mapping[str, Any] | None] | None,
    ) -> None:
        """Apply one operation: build the next snapshot, log it (durable), then publish it."""
        with self._mutex:
            if vectors is not None:
                self._check_vectors(vectors, self._snap)
            was_locked = self._lock is not None
            self._acquire()
            try:
                snap = self._snap
                if vectors is not None:
                    self._check_vectors(vectors, snap)
                new = updates.apply(snap, op, ids, vectors, payloads, self._params["max_segments"])
                if new is snap:
                    if not was_locked:
                        self._release()
                    return
                if self._wal is not None:
                    lsn = self._wal.append(op, ids, vectors, payloads)
                    new = new.evolve(wal_lsn=lsn)
            except BaseException:
                if not was_locked:  # nothing of this handle's is pending: let others write
                    self._release()
                raise
            self._publish(new)
            if self._wal is not None and self._wal.size_bytes() > WAL_FLUSH_BYTES:
                self.flush()

    def _publish(self, snap: Snapshot) -> None:
        self._snap = snap

    # ------------------------------------------------------------------ reads
    def get(self, ids: Iterable[DocId]) -> SparseVectors:
        """The stored vectors of ``ids``, in that order (one gather per segment)."""
        snap = self._snap
        checked = normalize_ids(ids)
        where, local = snap.require(checked)
        if snap.dim is None:
            raise InvalidInputError("the index is empty and has no dimension yet")
        segments = np.unique(where).tolist()
        if len(segments) == 1:  # one gather, already in the order asked
            out = snap.segments[segments[0]].vectors(local)
        else:
            parts = [SparseVectors.empty(snap.dim)]
            positions = [np.zeros(0, np.int64)]
            for pos in segments:
                chosen = np.flatnonzero(where == pos)
                parts.append(snap.segments[pos].vectors(local[chosen]))
                positions.append(chosen)
            order = np.argsort(np.concatenate(positions), kind="stable")
            out = SparseVectors.concat(parts)[order]
        return SparseVectors(
            out.indptr, out.indices, out.values, out.dim, snap.vocab, validate=False
        )

    def get_payloads(self, ids: Iterable[DocId]) -> list[dict[str, Any] | None]:
        """The payloads of ``ids``, in that order (None where a document has none)."""
        snap = self._snap
        where, local = snap.require(normalize_ids(ids))
        return snap.gather(where, local, lambda seg, chosen: seg.payloads.payloads(chosen))

    def payload_fields(self) -> dict[str, set[str]]:
        """Each payload field and its column types ("keyword", "integer", "float", "boolean",
        or "json": returned with hits but not filterable)."""
        return {name: set(kinds) for name, kinds in self._snap.schema().items()}

    def ids(self) -> list[DocId]:
        """The ids of all live documents, in insertion order."""
        return self._snap.ordered_ids()

    def iter_batches(
        self, batch_size: int = 1024
    ) -> Iterator[tuple[list[DocId], SparseVectors, list[dict[str, Any] | None]]]:
        """Every live document in insertion order, ``batch_size`` at a time (for exports):
        ``(ids, vectors, payloads)`` per batch, all from one snapshot."""
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise InvalidInputError(f"batch_size must be a positive integer, got {batch_size!r}")
        reader = self.pinned()
        ordered = reader.ids()
        for start in range(0, len(ordered), batch_size):
            chunk = ordered[start : start + batch_size]
            yield chunk, reader.get(chunk), reader.get_payloads(chunk)

    def term_stats(self) -> TermStats:
        """How many live documents hold each term (for FLOPS and active-dims statistics)."""
        return self._snap.term_stats()

    def search(
        self, queries: SparseVectors, k: int = 10, *, params: SearchParams | None = None
    ) -> Hits:
        """Exact top-``k`` documents by dot product for each query, on the current snapshot.

        ``params``: a :class:`~sparsearch.search.SearchParams` with the filter (a ``Filter``, a
        Qdrant-style mapping, or a collection of allowed ids), ``return_payloads`` and
        ``threads`` (default: all cores). Int ids come back as int64 (padding -1), str ids as
        objects (padding None).
        """
        if params is not None and not isinstance(params, SearchParams):
            raise InvalidInputError(f"params must be SearchParams, got {type(params).__name__}")
        if not isinstance(queries, SparseVectors):
            raise InvalidInputError(f"queries must be SparseVectors, got {type(queries).__name__}")
        snap = self._snap
        check_structure(queries)
        self._check_vectors(queries, snap)
        return search_snapshot(snap, queries, check_k(k), params or SearchParams())

    # ------------------------------------------------------------------ persistence
    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        mmap: bool = True,
        verify: bool = True,
        *,
        durable: bool = False,
        lock_timeout: float = 0.0,
    ) -> SparseIndex:
        """Open a saved index; a damaged one raises :class:`IndexCorruptError`.

        ``mmap``: memory-map the arrays instead of reading them. ``verify``: check every file's
        sha256 (sizes are always checked; without it, each segment's structure is checked before
        its first search). Opening takes no lock: the first write does.
        """
        index = cls.__new__(cls)
        index.path = check_path(path)
        index._init_handle(durable, lock_timeout)
        index._load(mmap=mmap, verify=verify)
        return index

    def _load(self, mmap: bool, verify: bool, attempts: int = 5) -> None:
        """Read the committed state, then the logged writes after it (read-only)."""
        assert self.path is not None
        self._mmap, self._verify = mmap, verify
        for attempt in range(attempts):
            snap, self._params, self._current = storage.load_snapshot(self.path, mmap, verify)
            try:
                self._snap = updates.replay(snap, self.path, self._params["max_segments"])
                return
            except FileNotFoundError:  # a writer folded the log into a newer commit: re-read
                if attempt == attempts - 1:
                    raise

    def refresh(self) -> bool:
        """Catch up with commits (and logged writes) made by other handles or processes since
        this one was opened; returns whether anything changed. A handle with changes of its own
        that are not saved yet is the newest state and does not refresh."""
        with self._mutex:
            if self.path is None or self._lock is not None:
                return False
            before = self._snap
            if storage.read_current(self.path) != self._current:
                self._load(self._mmap, self._verify)
            else:
                self._snap = updates.replay(self._snap, self.path, self._params["max_segments"])
            return self._snap is not before

    def save(self, path: str | os.PathLike[str] | None = None) -> None:
        """Commit the current state to ``path`` (default: the index's own path), crash-safely.

        Into a new or empty folder, or one holding an index (which it replaces); a folder of
        other files is refused. Releases this handle's writer lock.
        """
        with self._mutex:
            if path is None and self.path is None:
                raise InvalidInputError("an in-memory index needs a path to save to")
            root = check_path(path) if path is not None else self.path
            assert root is not None
            storage.check_save_target(root)
            if root != self.path:
                if self._wal is not None:  # changes logged in the old folder: fold them there
                    self.flush()
                target_lock = WriterLock(root, self._lock_timeout)
                self._release()
                self._lock, self.path = target_lock, root
            else:
                self._acquire()
            snap = self._snap
            self._current, version = storage.save_index(root, snap, self._params)
            self._snap = snap.committed(version)
            if self._wal is not None:
                self._wal.truncate_through(snap.wal_lsn)
            self._release()

    def upgrade(self) -> None:
        """Rewrite every segment in the current on-disk format and commit (an index of an older
        format opens as it is; its segments are otherwise rewritten as writes touch them)."""
        with self._mutex:
            if self.path is None:
                raise InvalidInputError("an in-memory index has no on-disk format to upgrade")
            self.save()

    def flush(self) -> None:
        """Fold the write-ahead log into segments: :meth:`save` to the index's own folder."""
        self.save()

    def close(self) -> None:
        """Release the writer lock and the log (unsaved changes of a non-durable handle are lost,
        logged ones stay in the log for the next open)."""
        with self._mutex:
            self._release()

    def __enter__(self) -> SparseIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ internals
    def _acquire(self) -> None:
        """Take the folder's writer lock before the first change; catch up with what other
        writers committed since this handle read the folder."""
        if self._readonly:
            raise InvalidInputError("a pinned view is read-only; write through the index itself")
        if self.path is None or self._lock is not None:
            return
        self._lock = WriterLock(self.path, self._lock_timeout)
        try:
            if storage.read_current(self.path) != self._current:
                self._load(self._mmap, self._verify)
            if self._durable:
                if not (self.path / storage.CURRENT).exists():  # the log needs a base to replay on
                    storage.check_save_target(self.path)
                    self._current, version = storage.save_index(self.path, self._snap, self._params)
                    self._snap = self._snap.committed(version)
                self._wal = WriteAheadLog(self.path / updates.WAL)
                self._snap = updates.replay(
                    self._snap, self.path, self._params["max_segments"], self._wal
                )
                self._wal.truncate_through(self._committed_lsn())
        except BaseException:
            self._release()
            raise

    def _committed_lsn(self) -> int:
        """The last logged write that the committed manifest holds (0 without one)."""
        assert self.path is not None
        if not (self.path / storage.CURRENT).exists():
            return 0
        return int(storage.read_manifest(self.path, verify=False).get("wal_lsn", 0))

    def _release(self) -> None:
        if self._wal is not None:
            self._wal.close()
            self._wal = None
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def _check_vectors(self, vectors: SparseVectors, snap: Snapshot) -> None:
        if snap.dim is not None and vectors.dim != snap.dim:
            raise DimensionMismatchError(f"vectors have dim {vectors.dim}, the index {snap.dim}")
        if vectors.vocab is not None and snap.vocab_hash is not None:
            # hashing a 30k-token vocabulary costs milliseconds: remember the last few that
            # matched (the index's vocabulary never changes once set; a writer and the
            # searchers usually each hold their own vocabulary object)
            if id(vectors.vocab) not in self._vocab_ok:
                if vocab_hash(vectors.vocab) != snap.vocab_hash:
                    raise VocabularyMismatchError(
                        "the vectors were made with another vocabulary than the index's"
                    )
                if len(self._vocab_ok) >= 8:
                    self._vocab_ok.clear()
                self._vocab_ok[id(vectors.vocab)] = vectors.vocab  # held: its id stays unique
