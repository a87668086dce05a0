"""`Snapshot`: one immutable state of an index, the thing every read runs on.

A snapshot is a tuple of immutable segments plus the index's counters. Writers never change a
snapshot; they build the next one and publish it with one assignment, so a search that captured
a snapshot sees one consistent state (segments, slot offsets, ids, payloads, tombstones) from
start to end, whatever writers do meanwhile. Views derived from it (slot offsets, search masks,
term statistics) are computed once per snapshot and cached on it.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence
from typing import Any, Literal

import numpy as np

from sparsearch.errors import InvalidInputError, UnknownIdError
from sparsearch.index import filtering
from sparsearch.index.ids import IdQuery, lookup
from sparsearch.index.segment import Segment
from sparsearch.search import DocId, Filter
from sparsearch.sparse import TermStats

IdKind = Literal["int", "str", "mixed"]
Plan = tuple[Segment, int, np.ndarray, np.ndarray | None, int]
"""(segment, its first slot, a uint8 mask of the documents the search may return, those
documents' local ordinals when a filter leaves so few that scoring them directly is cheapest,
and how many documents the mask allows)."""

# list the allowed documents when their non-zeros are at most this x the segment's documents:
# each listed document is a scattered read (~0.6 us at 1M), so listing wins only for very
# selective filters (at 1M documents of 49 non-zeros, 1 % listed took 6.1 ms, masked 3.9 ms)
LISTED_WORK = 0.1


@dataclasses.dataclass(frozen=True)
class Snapshot:
    """Segments (oldest first) and counters of one index state. ``version`` is the manifest it
    was read from or committed as (None while it has changes not yet saved); ``wal_lsn`` the last
    write-ahead-log record it holds."""

    segments: tuple[Segment, ...] = ()
    dim: int | None = None
    vocab: tuple[str, ...] | None = None
    vocab_hash: str | None = None
    next_seq: int = 0
    next_number: int = 0
    version: int | None = None
    wal_lsn: int = 0
    _cache: dict[str, Any] = dataclasses.field(default_factory=dict, compare=False, repr=False)

    def committed(self, version: int) -> Snapshot:
        """This same state, now committed as manifest ``version`` (its cached views still hold)."""
        return dataclasses.replace(self, version=version)

    def evolve(self, **changes: Any) -> Snapshot:
        """The next snapshot: these fields changed, caches fresh, not yet committed."""
        return dataclasses.replace(self, **{"version": None, **changes}, _cache={})

    # ------------------------------------------------------------------ counts
    @property
    def n_live(self) -> int:
        return sum(seg.n_live for seg in self.segments)

    @property
    def n_deleted(self) -> int:
        return sum(seg.n - seg.n_live for seg in self.segments)

    def _cached(self, key: str, make: Callable[[], Any]) -> Any:
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    def offsets(self) -> np.ndarray:
        """The first slot of each segment, then the total: slots number documents across segments."""

        def make() -> np.ndarray:
            sizes = [seg.n for seg in self.segments]
            return np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)

        offsets: np.ndarray = self._cached("offsets", make)
        return offsets

    # ------------------------------------------------------------------ ids
    def id_kind(self) -> IdKind | None:
        """ "int" or "str" when every id has that kind, "mixed" when both occur, None if empty."""

        def make() -> IdKind | None:
            kinds = {seg.ids.kind for seg in self.segments}
            if not kinds:
                return None
            return kinds.pop() if len(kinds) == 1 else "mixed"  # type: ignore[return-value]

        kind: IdKind | None = self._cached("id_kind", make)
        return kind

    def locate(self, ids: Sequence[DocId]) -> tuple[np.ndarray, np.ndarray]:
        """(segment position, local ordinal) of each id's live document; -1, -1 where absent."""
        where = np.full(len(ids), -1, np.int64)
        local = np.full(len(ids), -1, np.int64)
        if not ids or not self.segments:
            return where, local
        query = IdQuery(ids)
        for pos, seg in enumerate(self.segments):
            found = lookup(seg.ids, query)
            hit = found >= 0
            hit[hit] = ~seg.deleted[found[hit]]
            hit &= where < 0
            where[hit] = pos
            local[hit] = found[hit]
        return where, local

    def require(self, ids: Sequence[DocId]) -> tuple[np.ndarray, np.ndarray]:
        """Like :meth:`locate`, but an absent id is an :class:`UnknownIdError`."""
        where, local = self.locate(ids)
        if (where < 0).any():
            raise UnknownIdError(f"unknown id {ids[int(np.argmax(where < 0))]!r}")
        return where, local

    def decode_slots(self, slots: np.ndarray) -> np.ndarray:
        """External ids of slots (any shape; slot -1 is padding: ``-1`` for int ids, else None)."""
        as_int = self.id_kind() == "int"
        out = np.full(slots.shape, -1 if as_int else None, np.int64 if as_int else object)
        for pos, local, at in self._by_segment(slots):
            decoded = np.empty(local.size, np.int64 if as_int else object)
            decoded[:] = self.segments[pos].ids.decode(local)
            out[at] = decoded
        return out

    def payloads_of_slots(self, slots: np.ndarray) -> np.ndarray:
        """Payload dicts of slots (None for padding or documents without one)."""
        out = np.full(slots.shape, None, object)
        for pos, local, at in self._by_segment(slots):
            values = np.empty(local.size, object)
            values[:] = self.segments[pos].payloads.payloads(local)
            out[at] = values
        return out

    def _by_segment(
        self, slots: np.ndarray
    ) -> list[tuple[int, np.ndarray, tuple[np.ndarray, ...]]]:
        """(segment position, local ordinals, positions in ``slots``) per segment hit."""
        real = slots >= 0
        if len(self.segments) == 1:  # slots are the one segment's ordinals
            at = np.nonzero(real)
            return [(0, slots[at], at)] if at[0].size else []
        offsets = self.offsets()
        pos = np.searchsorted(offsets, np.where(real, slots, 0), side="right") - 1
        out = []
        for p in np.unique(pos[real]).tolist():
            at = np.nonzero(real & (pos == p))
            out.append((p, slots[at] - offsets[p], at))
        return out

    def ordered_ids(self) -> list[DocId]:
        """Every live id in insertion order."""
        where, local, _ = self.live_in_order()
        return self.gather(where, local, lambda seg, chosen: seg.ids.decode(chosen))

    def gather(
        self,
        where: np.ndarray,
        local: np.ndarray,
        take: Callable[[Segment, np.ndarray], Sequence[Any]],
    ) -> list[Any]:
        """``take(segment, local ordinals)`` for the documents at (``where``, ``local``), one
        call per segment, as one list in the order given."""
        out: list[Any] = [None] * where.size
        for pos in np.unique(where).tolist():
            at = np.flatnonzero(where == pos)
            for i, value in zip(at.tolist(), take(self.segments[pos], local[at]), strict=True):
                out[i] = value
        return out

    def live_in_order(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(segment position, local ordinal, seq) of every live document, by insertion order."""
        parts = [
            (np.full(seg.n_live, pos, np.int64), local, seg.seq[local])
            for pos, seg in enumerate(self.segments)
            for local in [np.flatnonzero(~seg.deleted)]
        ]
        if not parts:
            empty = np.zeros(0, np.int64)
            return empty, empty, empty
        where, local, seq = (np.concatenate(column) for column in zip(*parts, strict=True))
        order = np.argsort(seq, kind="stable")
        return where[order], local[order], seq[order]

    # ------------------------------------------------------------------ search views
    def schema(self) -> dict[str, set[str]]:
        """Payload field -> the column types it has across segments."""

        def make() -> dict[str, set[str]]:
            fields: dict[str, set[str]] = {}
            for seg in self.segments:
                for name, kind in seg.payloads.fields().items():
                    fields.setdefault(name, set()).add(kind)
            return fields

        schema: dict[str, set[str]] = self._cached("schema", make)
        return schema

    def plans(self, flt: Filter | None) -> list[Plan]:
        """Per segment that may return a document, largest first: (segment, first slot, mask)."""
        key = "plans" if flt is None else f"plans:{flt.key!r}"
        return self._cached(key, lambda: self._make_plans(flt))  # type: ignore[no-any-return]

    def _make_plans(self, flt: Filter | None) -> list[Plan]:
        if flt is not None and self.n_live:  # without documents, no field is known yet
            filtering.check_filter(flt, self.schema())
        plans: list[Plan] = []
        for seg, offset in zip(self.segments, self.offsets().tolist(), strict=False):
            seg.check_structure()
            mask = ~seg.deleted
            if flt is not None:
                mask &= seg.filter_mask(flt.key, functools.partial(_compile, flt, seg))
                if not mask.any():
                    continue
            allowed = int(np.count_nonzero(mask))
            plans.append((seg, offset, mask.view(np.uint8), _listed(seg, mask, allowed), allowed))
        plans.sort(key=lambda plan: -plan[0].n_live)
        return plans

    def term_stats(self) -> TermStats:
        """How many live documents hold each term."""
        if self.dim is None:
            raise InvalidInputError("the index is empty and has no dimension yet")
        dim = self.dim

        def make() -> TermStats:
            doc_freq = np.zeros(dim, np.int64)
            for seg in self.segments:
                live_entries = np.repeat(~seg.deleted, np.diff(seg.fwd_indptr))
                doc_freq += np.bincount(seg.fwd_indices[live_entries], minlength=dim)
            return TermStats(n_docs=self.n_live, doc_freq=doc_freq)

        stats: TermStats = self._cached("term_stats", make)
        return stats


def _listed(seg: Segment, mask: np.ndarray, allowed: int) -> np.ndarray | None:
    """The ``allowed`` documents' ordinals when reading just them costs less than a postings
    walk (their non-zeros at most :data:`LISTED_WORK` x the segment's documents)."""
    if allowed == seg.n_live:
        return None
    mean_nnz = seg.fwd_indices.size / max(1, seg.n)
    if allowed * mean_nnz > LISTED_WORK * seg.n:
        return None
    return np.flatnonzero(mask).astype(np.int64)


def _compile(flt: Filter, seg: Segment) -> np.ndarray:
    def has_ids(ids: frozenset[DocId]) -> np.ndarray:
        mask = np.zeros(seg.n, bool)
        if ids:
            found = lookup(seg.ids, IdQuery(list(ids)))
            mask[found[found >= 0]] = True
        return mask

    return filtering.compile_mask(flt, seg.payloads, has_ids)
