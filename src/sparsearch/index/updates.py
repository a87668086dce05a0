"""How writes make the next snapshot: add, upsert, delete, merges, and replaying the log.

Each function takes a snapshot and returns a new one (or the same one when nothing changes); it
builds everything new before anything is published, so a failed write leaves the index as it was.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sparsearch.errors import (
    DimensionMismatchError,
    DuplicateIdError,
    InvalidInputError,
    UnknownIdError,
    VocabularyMismatchError,
)
from sparsearch.index.segment import Segment
from sparsearch.index.snapshot import Snapshot
from sparsearch.index.wal import Op, WriteAheadLog, read_log
from sparsearch.search import DocId
from sparsearch.sparse import SparseVectors

WAL = "wal"  # the log's folder inside the index folder


def apply(
    snap: Snapshot,
    op: Op,
    ids: list[DocId],
    vectors: SparseVectors | None,
    payloads: Sequence[Mapping[str, Any] | None] | None,
    max_segments: int,
) -> Snapshot:
    """The snapshot after one ``add``, ``upsert`` or ``delete`` (ids already normalised)."""
    if op == "delete":
        return delete(snap, ids)
    assert vectors is not None
    where, _ = snap.locate(ids)
    present = where >= 0
    if op == "add" and present.any():
        raise DuplicateIdError(
            f"id {ids[int(np.argmax(present))]!r} is already in the index (use upsert)"
        )
    new = _append(snap, ids, vectors, payloads)
    if present.any():
        new = _tombstone(
            new, *snap.locate([d for d, p in zip(ids, present.tolist(), strict=True) if p])
        )
    if len(new.segments) > max_segments:
        new = merge(new, _smallest(new.segments, len(new.segments) - max_segments + 1))
    return new


def delete(snap: Snapshot, ids: list[DocId]) -> Snapshot:
    """Tombstone ``ids``; an unknown one is an :class:`UnknownIdError` and nothing changes."""
    if not ids:
        return snap
    where, local = snap.locate(ids)
    if (where < 0).any():
        raise UnknownIdError(f"unknown id {ids[int(np.argmax(where < 0))]!r}")
    return _tombstone(snap, where, local)


def _tombstone(snap: Snapshot, where: np.ndarray, local: np.ndarray) -> Snapshot:
    """Segments with these (segment position, local ordinal) documents deleted; emptied
    segments dropped."""
    segments = list(snap.segments)
    for pos in np.unique(where).tolist():
        segments[pos] = segments[pos].with_deleted(local[where == pos])
    return snap.evolve(segments=tuple(seg for seg in segments if seg.n_live > 0))


def _append(
    snap: Snapshot,
    ids: list[DocId],
    vectors: SparseVectors,
    payloads: Sequence[Mapping[str, Any] | None] | None,
) -> Snapshot:
    """A new segment of the batch at the end (an empty batch still fixes dim and vocab)."""
    changes: dict[str, Any] = {}
    if snap.dim is None:
        changes["dim"] = vectors.dim
    if snap.vocab is None and vectors.vocab is not None and snap.next_seq == 0:
        changes["vocab"], changes["vocab_hash"] = vectors.vocab, vectors.vocab_hash()
    if not ids:
        return snap.evolve(**changes) if changes else snap
    seq = np.arange(snap.next_seq, snap.next_seq + len(ids), dtype=np.int64)
    seg = Segment.build(snap.next_number, vectors, seq, ids, payloads)
    return snap.evolve(
        **changes,
        segments=(*snap.segments, seg),
        next_seq=snap.next_seq + len(ids),
        next_number=snap.next_number + 1,
    )


def attach(snap: Snapshot, sources: Sequence[Snapshot], max_segments: int) -> Snapshot:
    """``snap`` with the segments of ``sources`` (other indexes' states) appended as they are,
    without rebuilding them: their documents come after ``snap``'s in insertion order, source by
    source. Refused, with nothing changed, when a source's dimension or vocabulary differs or an
    id would be held twice. More than ``max_segments`` segments afterwards merges the smallest,
    which rebuilds them: attach at most that many segments to keep them as built."""
    dim, vocab, vocab_hash = snap.dim, snap.vocab, snap.vocab_hash
    segments = list(snap.segments)
    next_seq, number = snap.next_seq, snap.next_number
    ids: list[DocId] = []
    for source in sources:
        if source.dim is None or not source.n_live:
            continue
        if dim is not None and source.dim != dim:
            raise DimensionMismatchError(f"an index of dim {source.dim} into one of dim {dim}")
        if vocab_hash is not None and source.vocab_hash not in (None, vocab_hash):
            raise VocabularyMismatchError("an index made with another vocabulary than this one's")
        if dim is None:
            dim = source.dim
        if vocab is None and next_seq == 0 and source.vocab is not None:
            vocab, vocab_hash = source.vocab, source.vocab_hash
        ids.extend(source.ordered_ids())
        for seg in source.segments:
            if seg.n_live:
                segments.append(seg.renumbered(number, next_seq))
                number += 1
        next_seq += source.next_seq
    if len(set(ids)) < len(ids):
        twice = next(doc_id for doc_id, n in Counter(ids).items() if n > 1)
        raise DuplicateIdError(f"id {twice!r} is in more than one of the indexes attached")
    where, _ = snap.locate(ids)
    if (where >= 0).any():
        raise DuplicateIdError(f"id {ids[int(np.argmax(where >= 0))]!r} is already in the index")
    new = snap.evolve(
        dim=dim,
        vocab=vocab,
        vocab_hash=vocab_hash,
        segments=tuple(segments),
        next_seq=next_seq,
        next_number=number,
    )
    if len(new.segments) > max_segments:
        new = merge(new, _smallest(new.segments, len(new.segments) - max_segments + 1))
    return new


def _smallest(segments: Sequence[Segment], count: int) -> list[Segment]:
    """The ``count`` segments with the fewest live documents (a tiered merge: small batches
    merge with each other long before they touch the big segments)."""
    return sorted(segments, key=lambda seg: seg.n_live)[: max(2, count)]


def merge(snap: Snapshot, group: list[Segment]) -> Snapshot:
    """Replace the segments of ``group`` by one holding their live documents, in seq order."""
    parts: list[SparseVectors] = []
    seqs: list[np.ndarray] = []
    ids: list[DocId] = []
    payloads: list[dict[str, Any] | None] = []
    for seg in group:
        local = seg.live_docs()
        parts.append(seg.vectors(local))
        seqs.append(seg.seq[local])
        ids.extend(seg.ids.decode(local))
        payloads.extend(seg.payloads.payloads(local))
    keep = {id(seg) for seg in group}
    segments = [seg for seg in snap.segments if id(seg) not in keep]
    number = snap.next_number
    if ids:
        order = np.argsort(np.concatenate(seqs), kind="stable")
        vectors = SparseVectors.concat(parts)[order]
        with_payloads = any(p is not None for p in payloads)
        segments.append(
            Segment.build(
                number,
                vectors,
                np.concatenate(seqs)[order],
                [ids[i] for i in order.tolist()],
                [payloads[i] for i in order.tolist()] if with_payloads else None,
            )
        )
        number += 1
    segments.sort(key=lambda seg: int(seg.seq[0]) if seg.n else 0)
    return snap.evolve(segments=tuple(segments), next_number=number)


def replay(
    snap: Snapshot, root: Path, max_segments: int, wal: WriteAheadLog | None = None
) -> Snapshot:
    """``snap`` with the logged writes it does not hold yet (lsn > ``snap.wal_lsn``) applied.

    A writer passes its open log; a reader reads the folder's log without changing it.
    """
    records = wal.replay(snap.wal_lsn) if wal is not None else read_log(root / WAL, snap.wal_lsn)
    for record in records:
        try:
            snap = apply(
                snap, record.op, list(record.ids), record.vectors, record.payloads, max_segments
            )
        except (InvalidInputError, UnknownIdError) as err:  # logged only after it succeeded once
            raise InvalidInputError(
                f"write-ahead log record {record.lsn} no longer applies: {err}"
            ) from err
        snap = snap.evolve(wal_lsn=record.lsn)
    return snap
