"""The write-ahead log: each index write, fsynced before it returns, replayed on open.

A folder of log files ``wal-<first lsn, 20 digits>.log``; each holds consecutive records, the
first of which has the LSN (log sequence number) in its name. An empty last file only carries
the next LSN. Every integer is little-endian. A record is a 30-byte header and a body::

    header   0  4  magic b"SPWL"
             4  2  format version (1)
             6  8  lsn
            14  8  body length
            22  4  CRC-32 of the body
            26  4  CRC-32 of header bytes 0..26
    body     0  1  op: 1 add, 2 upsert, 3 delete
             1  8  byte length of the ids
             9     ids: a UTF-8 JSON array of str and int (no bools, no floats)
    add and upsert only, after the ids (n = number of ids):
                8  dim
                8  nnz
                8  byte length of the payloads
                   indptr  (n + 1) x int64
                   indices nnz x int32
                   values  nnz x float32
                   payloads: UTF-8 JSON, null or an array of n (object or null)

The LSN sits in the header so that a writer encodes and checksums the body before it takes the
lock; the header has its own checksum so that a damaged length is never believed. Lengths are
checked against the file and the body before anything is allocated.

A record that is damaged (short, bad magic, bad checksum) with no valid record after it in the
last file is a torn tail: opening drops it, truncates the file to the last good record and warns
with :class:`WalTailDroppedWarning`. Damage anywhere else raises :class:`WalCorruptError`.
"""

from __future__ import annotations

import json
import mmap
import os
import re
import struct
import threading
import warnings
import zlib
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import numpy as np

from sparsearch.errors import InvalidInputError, WalCorruptError
from sparsearch.index.checks import normalize_ids
from sparsearch.index.durable_files import fsync_dir
from sparsearch.search import DocId
from sparsearch.sparse import SparseVectors

__all__ = ["Op", "WalRecord", "WalTailDroppedWarning", "WriteAheadLog", "read_log"]

Op = Literal["add", "upsert", "delete"]

MAGIC = b"SPWL"
VERSION = 1
_HEAD = struct.Struct("<4sHQQI")  # magic, version, lsn, body length, body crc
_HEADER_SIZE = _HEAD.size + 4  # + header crc
_OP_HEAD = struct.Struct("<BQ")  # op, ids length
_VEC_HEAD = struct.Struct("<QQQ")  # dim, nnz, payloads length
_OP_CODES: dict[str, int] = {"add": 1, "upsert": 2, "delete": 3}
_OPS: dict[int, Op] = {1: "add", 2: "upsert", 3: "delete"}
_FILE = re.compile(r"wal-(\d{20})\.log")

_Buffer = bytes | mmap.mmap


class WalTailDroppedWarning(UserWarning):
    """Opening dropped an incomplete or damaged last record (a write cut short by a crash)."""


@dataclass(frozen=True)
class WalRecord:
    """One logged write; ``vectors`` and ``payloads`` are None for a delete."""

    lsn: int
    op: Op
    ids: list[DocId]
    vectors: SparseVectors | None
    payloads: list[dict[str, Any] | None] | None


def _file_name(first_lsn: int) -> str:
    return f"wal-{first_lsn:020d}.log"


def _encode(
    op: str,
    ids: Sequence[DocId],
    vectors: SparseVectors | None,
    payloads: Sequence[Mapping[str, Any] | None] | None,
) -> bytearray:
    """A record with a blank header: the caller fills it in once it has an LSN."""
    if op not in _OP_CODES:
        raise InvalidInputError(f"op must be one of {sorted(_OP_CODES)}, got {op!r}")
    checked = normalize_ids(ids)
    id_bytes = json.dumps(checked, separators=(",", ":")).encode()
    record = bytearray(_HEADER_SIZE)
    record += _OP_HEAD.pack(_OP_CODES[op], len(id_bytes))
    record += id_bytes
    if op == "delete":
        if vectors is not None or payloads is not None:
            raise InvalidInputError("a delete logs ids only, not vectors or payloads")
        return record
    if not isinstance(vectors, SparseVectors) or vectors.n != len(checked):
        raise InvalidInputError(f"an {op} needs SparseVectors with one row per id")
    if payloads is not None and len(payloads) != vectors.n:
        raise InvalidInputError(f"{len(payloads)} payloads for {vectors.n} vectors")
    payload_bytes = json.dumps(
        None if payloads is None else list(payloads), separators=(",", ":")
    ).encode()
    record += _VEC_HEAD.pack(vectors.dim, vectors.nnz, len(payload_bytes))
    for array, dtype in (
        (vectors.indptr, "<i8"),
        (vectors.indices, "<i4"),
        (vectors.values, "<f4"),
    ):
        record += array.astype(dtype, copy=False).tobytes()
    record += payload_bytes
    return record


def _json(body: bytes, pos: int, length: int) -> Any:
    if length > len(body) - pos:
        raise ValueError("a JSON field runs past the end of the body")
    return json.loads(body[pos : pos + length])


def _decode(lsn: int, body: bytes) -> WalRecord:
    """The record in ``body``; ValueError (or struct.error) if it does not decode."""
    code, ids_length = _OP_HEAD.unpack_from(body, 0)
    if code not in _OPS:
        raise ValueError(f"unknown op code {code}")
    op = _OPS[code]
    pos = _OP_HEAD.size
    ids = _json(body, pos, ids_length)
    if not isinstance(ids, list):
        raise ValueError("the ids are not a JSON array")
    ids = normalize_ids(ids)  # the index's rules: str or int (InvalidInputError is a ValueError)
    pos += ids_length
    if op == "delete":
        if pos != len(body):
            raise ValueError("a delete has bytes after its ids")
        return WalRecord(lsn, op, ids, None, None)
    dim, nnz, payloads_length = _VEC_HEAD.unpack_from(body, pos)
    pos += _VEC_HEAD.size
    n = len(ids)
    if pos + (n + 1) * 8 + nnz * 8 + payloads_length != len(body):
        raise ValueError(f"{n} rows, {nnz} non-zeros and the payloads do not fill the body")
    arrays = []
    for dtype, count in (("<i8", n + 1), ("<i4", nnz), ("<f4", nnz)):
        arrays.append(np.frombuffer(body, dtype, count, pos).copy())
        pos += arrays[-1].nbytes
    payloads = _json(body, pos, payloads_length)
    if payloads is not None and not (
        isinstance(payloads, list)
        and len(payloads) == n
        and all(p is None or isinstance(p, dict) for p in payloads)
    ):
        raise ValueError(f"payloads are neither null nor a JSON array of {n} objects or nulls")
    indptr, indices, values = arrays
    return WalRecord(lsn, op, ids, SparseVectors(indptr, indices, values, dim), payloads)


def _frame(buf: _Buffer, pos: int, end: int) -> tuple[int, int, int] | str:
    """``(version, lsn, body length)`` of an intact record at ``pos``, or why there is none."""
    if end - pos < _HEADER_SIZE:
        return "an incomplete header"
    magic, version, lsn, length, body_crc = _HEAD.unpack_from(buf, pos)
    if magic != MAGIC:
        return "no record magic"
    if zlib.crc32(buf[pos : pos + _HEAD.size]) != int.from_bytes(
        buf[pos + _HEAD.size : pos + _HEADER_SIZE], "little"
    ):
        return "a header checksum mismatch"
    start = pos + _HEADER_SIZE
    if length > end - start:
        return "a record that runs past the end of the file"
    if zlib.crc32(buf[start : start + length]) != body_crc:
        return "a body checksum mismatch"
    return version, lsn, length


def _intact_record_in(buf: _Buffer, start: int, end: int) -> bool:
    """Whether an intact record starts anywhere in ``[start, end)``."""
    pos = buf.find(MAGIC, start, end)
    while pos >= 0:
        if not isinstance(_frame(buf, pos, end), str):
            return True
        pos = buf.find(MAGIC, pos + 1, end)
    return False


def _scan(
    path: Path, buf: _Buffer, end: int, first_lsn: int, torn_tail_ok: bool
) -> tuple[list[tuple[int, int, int]], int, str]:
    """The ``(lsn, body offset, body length)`` of each record in ``buf[:end]``, the offset after
    the last one, and why the bytes after it (a torn tail) are not a record."""
    spans: list[tuple[int, int, int]] = []
    pos = 0
    while pos < end:
        frame = _frame(buf, pos, end)
        if isinstance(frame, str):
            if torn_tail_ok and not _intact_record_in(buf, pos + 1, end):
                return spans, pos, frame
            raise WalCorruptError(f"{path}: {frame} at offset {pos}")
        version, lsn, length = frame
        if version != VERSION:
            raise WalCorruptError(f"{path}: format version {version} at offset {pos}")
        if lsn != first_lsn + len(spans):
            raise WalCorruptError(
                f"{path}: lsn {lsn} at offset {pos}, expected {first_lsn + len(spans)}"
            )
        spans.append((lsn, pos + _HEADER_SIZE, length))
        pos += _HEADER_SIZE + length
    return spans, pos, ""


@contextmanager
def _mapped(path: Path, size: int) -> Iterator[_Buffer]:
    """The first ``size`` bytes of a file, memory-mapped."""
    if not size:
        yield b""
        return
    with open(path, "rb") as f, mmap.mmap(f.fileno(), size, access=mmap.ACCESS_READ) as buf:
        yield buf


class WriteAheadLog:
    """The log in folder ``path`` (created if missing), opened for appending.

    Opening drops a torn tail (setting :attr:`dropped_tail`). LSNs start at 1 and increase by one
    per record; :meth:`truncate_through` may skip ahead. One writer per folder (the index's writer
    lock); :meth:`append` may be called from many threads.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.fsync_count = 0  #: fsyncs of log files (appends, rotations, close)
        self.dropped_tail = False  #: whether opening dropped a torn last record
        self._cond = threading.Condition(threading.Lock())
        self._syncing = False
        self._failed: OSError | None = None
        if not self.path.is_dir():
            self.path.mkdir(parents=True)
            fsync_dir(self.path.parent)
        firsts = sorted(int(m[1]) for f in os.listdir(self.path) if (m := _FILE.fullmatch(f)))
        self._files = {first: (self.path / _file_name(first)).stat().st_size for first in firsts}
        if not firsts:
            self._active, self._next_lsn = 1, 1
            self._fd = self._create(1)
            return
        self._active = firsts[-1]
        active_path = self.path / _file_name(self._active)
        size = self._files[self._active]
        with _mapped(active_path, size) as buf:
            spans, end, damage = _scan(active_path, buf, size, self._active, torn_tail_ok=True)
        self._next_lsn = self._active + len(spans)
        self._fd = os.open(active_path, os.O_WRONLY | os.O_APPEND)
        if end < size:
            os.ftruncate(self._fd, end)
            os.fsync(self._fd)
            self._files[self._active] = end
            self.dropped_tail = True
            warnings.warn(
                f"{active_path}: dropped {size - end} bytes after the last intact record "
                f"(lsn {self._next_lsn - 1}, offset {end}): {damage}",
                WalTailDroppedWarning,
                stacklevel=2,
            )
        self._written = self._synced = self._next_lsn - 1

    # ------------------------------------------------------------------ writing
    def append(
        self,
        op: Op,
        ids: Sequence[DocId],
        vectors: SparseVectors | None = None,
        payloads: Sequence[Mapping[str, Any] | None] | None = None,
    ) -> int:
        """Log one write and return its LSN once the record is on disk (fsynced).

        ``add`` / ``upsert`` take one vector (and payload, if any) per id; ``delete`` takes ids
        only. Concurrent appends share fsyncs: the first waiter syncs for all (group commit).
        """
        record = _encode(op, ids, vectors, payloads)
        body = memoryview(record)[_HEADER_SIZE:]
        body_crc = zlib.crc32(body)
        with self._cond:
            self._check_usable()
            lsn = self._next_lsn
            _HEAD.pack_into(record, 0, MAGIC, VERSION, lsn, len(body), body_crc)
            struct.pack_into("<I", record, _HEAD.size, zlib.crc32(record[: _HEAD.size]))
            try:
                view = memoryview(record)
                while view:
                    view = view[os.write(self._fd, view) :]
            except OSError as err:
                self._failed = err
                raise
            self._written, self._next_lsn = lsn, lsn + 1
            self._files[self._active] += len(record)
            self._wait_durable(lsn)
        return lsn

    def _wait_durable(self, lsn: int) -> None:
        """Return once record ``lsn`` is fsynced: the first waiter syncs everything written so far
        while the others wait on the condition. Called holding the lock."""
        while self._synced < lsn:
            self._check_usable()
            if self._syncing:
                self._cond.wait()
                continue
            self._syncing = True
            target, fd = self._written, self._fd
            failure: OSError | None = None
            self._cond.release()
            try:
                os.fsync(fd)
            except OSError as err:
                failure = err
            finally:
                self._cond.acquire()
                self._syncing = False
                self._cond.notify_all()
            if failure is not None:
                self._failed = failure
                raise failure
            self.fsync_count += 1
            self._synced = target

    def _sync_locked(self) -> None:
        """Fsync the active file (holding the lock, no leader syncing) if it has new records."""
        while self._syncing:
            self._cond.wait()
        if self._synced < self._written:
            try:
                os.fsync(self._fd)
            except OSError as err:
                self._failed = err
                raise
            self.fsync_count += 1
            self._synced = self._written
            self._cond.notify_all()

    def _create(self, first_lsn: int) -> int:
        """Create (and fsync the folder for) the file whose first record will be ``first_lsn``."""
        fd = os.open(self.path / _file_name(first_lsn), os.O_WRONLY | os.O_CREAT | os.O_EXCL)
        fsync_dir(self.path)
        self._files[first_lsn] = 0
        self._written = self._synced = first_lsn - 1
        return fd

    def _check_usable(self) -> None:
        if self._failed is not None:
            raise OSError(f"write-ahead log {self.path} failed ({self._failed}); reopen it")
        if self._fd < 0:
            raise ValueError(f"write-ahead log {self.path} is closed")

    # ------------------------------------------------------------------ reading
    def replay(self, after_lsn: int = 0) -> Iterator[WalRecord]:
        """The records with LSN > ``after_lsn``, in LSN order.

        Every record to be yielded is checked (framing, checksums, LSN order) before the first
        is yielded, so damage raises :class:`WalCorruptError` before anything is applied. Reads
        what was written when it starts; do not run it alongside :meth:`truncate_through`.
        """
        with self._cond:
            self._check_usable()
            files = list(self._files.items())
        wanted: list[tuple[Path, int, list[tuple[int, int, int]]]] = []
        prev_next = 0
        for i, (first, size) in enumerate(files):
            path = self.path / _file_name(first)
            if first < prev_next:
                raise WalCorruptError(f"{path}: starts at lsn {first}, below {prev_next}")
            if i + 1 < len(files) and files[i + 1][0] - 1 <= after_lsn:
                continue  # every record in this file is at or below after_lsn
            with _mapped(path, size) as buf:
                spans, _, _ = _scan(path, buf, size, first, torn_tail_ok=False)
            prev_next = first + len(spans)
            wanted.append((path, size, [s for s in spans if s[0] > after_lsn]))
        for path, size, spans in wanted:
            with _mapped(path, size) as buf:
                for lsn, start, length in spans:
                    try:
                        record = _decode(lsn, buf[start : start + length])
                    except (ValueError, RecursionError, struct.error) as err:
                        raise WalCorruptError(
                            f"{path}: record {lsn} at offset {start - _HEADER_SIZE}: {err}"
                        ) from err
                    yield record

    # ------------------------------------------------------------------ housekeeping
    def truncate_through(self, lsn: int) -> None:
        """Forget the records with LSN <= ``lsn`` (folded into a committed manifest).

        Starts a new file if the active one holds such records, deletes the files that hold only
        such records, and makes every later append get an LSN > ``lsn``.
        """
        with self._cond:
            self._check_usable()
            if self._active <= lsn:
                self._sync_locked()
                first = max(self._next_lsn, lsn + 1)
                try:
                    fd = self._create(first)
                except OSError as err:
                    self._failed = err
                    raise
                os.close(self._fd)
                self._fd, self._active, self._next_lsn = fd, first, first
            doomed = [a for a, b in pairwise(self._files) if b - 1 <= lsn]
            for first in doomed:
                os.unlink(self.path / _file_name(first))
                del self._files[first]
            if doomed:
                fsync_dir(self.path)

    @property
    def last_lsn(self) -> int:
        """The highest LSN handed out (or skipped by :meth:`truncate_through`); 0 if none."""
        with self._cond:
            return self._next_lsn - 1

    def size_bytes(self) -> int:
        """Bytes in all log files (what a flush would let :meth:`truncate_through` delete)."""
        with self._cond:
            return sum(self._files.values())

    def close(self) -> None:
        """Fsync what was written and close; a second close does nothing."""
        with self._cond:
            if self._fd < 0:
                return
            try:
                if self._failed is None:
                    self._sync_locked()
            finally:
                os.close(self._fd)
                self._fd = -1

    def __enter__(self) -> WriteAheadLog:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def read_log(path: str | os.PathLike[str], after_lsn: int = 0) -> list[WalRecord]:
    """The records with LSN > ``after_lsn`` of the log in folder ``path``, read without changing
    anything (for readers, while a writer may be appending): bytes after the last intact record
    of the last file are a write in progress or a torn tail, and are left out. No folder: none.

    A file that disappears meanwhile (a writer folded it into a commit) raises
    :class:`FileNotFoundError`: the caller re-reads the index.
    """
    folder = Path(path)
    if not folder.is_dir():
        return []
    firsts = sorted(int(m[1]) for f in os.listdir(folder) if (m := _FILE.fullmatch(f)))
    records: list[WalRecord] = []
    for i, first in enumerate(firsts):
        if i + 1 < len(firsts) and firsts[i + 1] - 1 <= after_lsn:
            continue  # every record in this file is at or below after_lsn
        file = folder / _file_name(first)
        size = file.stat().st_size
        with _mapped(file, size) as buf:
            spans, _, _ = _scan(file, buf, size, first, torn_tail_ok=i == len(firsts) - 1)
            for lsn, start, length in spans:
                if lsn <= after_lsn:
                    continue
                try:
                    records.append(_decode(lsn, buf[start : start + length]))
                except (ValueError, RecursionError, struct.error) as err:
                    raise WalCorruptError(
                        f"{file}: record {lsn} at offset {start - _HEADER_SIZE}: {err}"
                    ) from err
    return records
