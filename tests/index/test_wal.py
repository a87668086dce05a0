"""The write-ahead log: exact round trips, torn tails, corruption, group commit, kill -9."""

from __future__ import annotations

import errno
import os
import queue
import signal
import stat
import struct
import subprocess
import sys
import threading
import time
import warnings
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sparsearch.errors import IndexCorruptError, InvalidInputError, WalCorruptError
from sparsearch.index.wal import WalRecord, WalTailDroppedWarning, WriteAheadLog
from sparsearch.sparse import SparseVectors

DIM = 64
HEADER = struct.Struct("<4sHQQII")  # magic, version, lsn, body length, body crc, header crc
FIRST = "wal-00000000000000000001.log"


def vecs(rng: np.random.Generator, n: int, nnz: int = 5) -> SparseVectors:
    rows = [
        np.sort(rng.choice(DIM, size=int(rng.integers(0, nnz + 1)), replace=False))
        for _ in range(n)
    ]
    indptr = np.concatenate([[0], np.cumsum([r.size for r in rows])])
    indices = np.concatenate([np.zeros(0, np.int64), *rows])
    values = rng.standard_normal(indices.size).astype(np.float32)
    return SparseVectors(indptr, indices, values, DIM)


def assert_record(
    record: WalRecord,
    lsn: int,
    op: str,
    ids: Sequence[Any],
    vectors: SparseVectors | None,
    payloads: Sequence[Any] | None,
) -> None:
    assert (record.lsn, record.op, record.ids) == (lsn, op, list(ids))
    assert [type(i) for i in record.ids] == [type(i) for i in ids]
    assert record.payloads == (None if payloads is None else list(payloads))
    if vectors is None:
        assert record.vectors is None
        return
    assert record.vectors is not None and record.vectors.dim == vectors.dim
    for name in ("indptr", "indices", "values"):
        got, want = getattr(record.vectors, name), getattr(vectors, name)
        assert got.dtype == want.dtype and got.tobytes() == want.tobytes()


def record_bounds(data: bytes) -> list[tuple[int, int]]:
    """``(start, end)`` of each record in a log file, read from the documented header."""
    bounds, pos = [], 0
    while pos < len(data):
        bounds.append((pos, pos + HEADER.size + HEADER.unpack_from(data, pos)[3]))
        pos = bounds[-1][1]
    return bounds


def frame(lsn: int, body: bytes, version: int = 1, length: int | None = None) -> bytes:
    """A record with correct checksums around any body (and any claimed length)."""
    head = struct.pack(
        "<4sHQQI", b"SPWL", version, lsn, len(body) if length is None else length, zlib.crc32(body)
    )
    return head + struct.pack("<I", zlib.crc32(head)) + body


@pytest.fixture
def no_fsync(monkeypatch: pytest.MonkeyPatch) -> None:
    """The byte-by-byte tests open hundreds of logs; durability is not what they check."""
    monkeypatch.setattr(os, "fsync", lambda fd: None)


def three_records(path: Path) -> tuple[list[tuple[Any, ...]], bytes]:
    """A log of three writes (the last an add with payloads) and its file's bytes."""
    rng = np.random.default_rng(1)
    writes = [
        ("add", [1, "b"], vecs(rng, 2), [{"k": "v"}, None]),
        ("delete", ["b"], None, None),
        ("upsert", [1, "ü"], vecs(rng, 2), [None, {"n": [1, 2]}]),
    ]
    with WriteAheadLog(path) as wal:
        for write in writes:
            wal.append(*write)
    return writes, (path / FIRST).read_bytes()


def folder_with(path: Path, data: bytes) -> Path:
    path.mkdir()
    (path / FIRST).write_bytes(data)
    return path


# ---------------------------------------------------------------------- round trips
def test_every_op_round_trips_exactly_across_reopens(tmp_path):
    rng = np.random.default_rng(0)
    empty = SparseVectors(np.zeros(1, np.int64), np.zeros(0, np.int32), np.zeros(0, np.float32), 7)
    with_empty_row = SparseVectors(
        np.array([0, 0, 2]), np.array([0, 6]), np.array([-0.0, 1e-40]), 7
    )
    writes: list[tuple[Any, ...]] = [
        ("add", [1, 2, 3], vecs(rng, 3), [{"a": 1}, None, {}]),
        ("add", ["é", "日本語", "😀", "", "\ud800", "a\x00b"], vecs(rng, 6), None),
        (
            "upsert",
            [2**63 - 1, 0, "7"],
            vecs(rng, 3),
            [{"n": {"l": [1, 2.5, None, True]}}, {"s": "ü"}, None],
        ),
        ("delete", [1, "é", 2**63 - 1], None, None),
        ("add", [], empty, []),
        ("upsert", [], empty, None),
        ("delete", [], None, None),
        ("add", [7, 8], with_empty_row, [None, None]),
    ]
    ops = ["add", "upsert", "delete"]
    for i in range(60):
        op = ops[i % 3]
        ids = [
            int(x) if i % 2 else f"d{x}"
            for x in rng.integers(0, 1000, size=int(rng.integers(1, 9)))
        ]
        ids = list(dict.fromkeys(ids))
        vectors = None if op == "delete" else vecs(rng, len(ids), nnz=30)
        payloads = (
            None if op == "delete" or i % 4 == 0 else [{"i": i, "j": j} for j in range(len(ids))]
        )
        writes.append((op, ids, vectors, payloads))
    with WriteAheadLog(tmp_path / "wal") as wal:
        lsns = [wal.append(*w) for w in writes[:40]]
    with WriteAheadLog(tmp_path / "wal") as wal:
        assert wal.last_lsn == 40 and not wal.dropped_tail
        lsns += [wal.append(*w) for w in writes[40:]]
        assert lsns == list(range(1, len(writes) + 1))
        for lsn, record in zip(lsns, wal.replay(), strict=True):
            assert_record(record, lsn, *writes[lsn - 1])
        assert [r.lsn for r in wal.replay(after_lsn=55)] == lsns[55:]
        assert list(wal.replay(after_lsn=lsns[-1])) == []
        assert wal.size_bytes() == (tmp_path / "wal" / FIRST).stat().st_size


def test_bad_writes_are_refused_before_taking_an_lsn(tmp_path):
    rng = np.random.default_rng(0)
    with WriteAheadLog(tmp_path) as wal:
        with pytest.raises(InvalidInputError, match="op must be"):
            wal.append("insert", [1], vecs(rng, 1))  # type: ignore[arg-type]
        with pytest.raises(InvalidInputError, match="ids only"):
            wal.append("delete", [1], vecs(rng, 1))
        with pytest.raises(InvalidInputError, match="one row per id"):
            wal.append("add", [1, 2], vecs(rng, 1))
        with pytest.raises(InvalidInputError, match="payloads for"):
            wal.append("add", [1], vecs(rng, 1), [None, None])
        with pytest.raises(InvalidInputError, match="str or int"):
            wal.append("delete", [True])
        assert wal.append("delete", [np.int64(3)]) == 1
        assert [r.ids for r in wal.replay()] == [[3]]
    with pytest.raises(ValueError, match="closed"):
        wal.append("delete", [1])
    wal.close()  # a second close does nothing


# ---------------------------------------------------------------------- torn tails, corruption
@pytest.mark.usefixtures("no_fsync")
def test_a_cut_at_every_byte_of_the_last_record_drops_just_that_record(tmp_path):
    writes, data = three_records(tmp_path / "source")
    start, end = record_bounds(data)[-1]
    for cut in range(start, end):
        path = folder_with(tmp_path / f"cut{cut}", data[:cut])
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            wal = WriteAheadLog(path)
        assert wal.dropped_tail == (cut > start)
        assert [w.category for w in caught] == ([WalTailDroppedWarning] if cut > start else [])
        assert (path / FIRST).stat().st_size == start
        assert wal.append("delete", ["after"]) == 3
        wal.close()
        records = list(WriteAheadLog(path).replay())
        for record, write in zip(records[:2], writes, strict=False):
            assert_record(record, record.lsn, *write)
        assert [r.lsn for r in records] == [1, 2, 3] and records[2].ids == ["after"]


@pytest.mark.usefixtures("no_fsync")
def test_a_bit_flip_in_any_byte_of_a_middle_record_is_corruption(tmp_path):
    _, data = three_records(tmp_path / "source")
    start, end = record_bounds(data)[1]
    for offset in range(start, end):
        damaged = bytearray(data)
        damaged[offset] ^= 1 << (offset % 8)
        path = folder_with(tmp_path / f"flip{offset}", bytes(damaged))
        with pytest.raises(WalCorruptError, match=rf"{FIRST}: .* at offset {start}"):
            WriteAheadLog(path)
        assert (path / FIRST).read_bytes() == damaged  # nothing truncated


@pytest.mark.usefixtures("no_fsync")
def test_a_bit_flip_in_any_byte_of_the_last_record_drops_it_with_a_warning(tmp_path):
    writes, data = three_records(tmp_path / "source")
    start, end = record_bounds(data)[-1]
    for offset in range(start, end):
        damaged = bytearray(data)
        damaged[offset] ^= 0x80 >> (offset % 8)
        path = folder_with(tmp_path / f"flip{offset}", bytes(damaged))
        with pytest.warns(WalTailDroppedWarning, match=f"offset {start}"):
            wal = WriteAheadLog(path)
        records = list(wal.replay())
        assert [r.lsn for r in records] == [1, 2]
        for record, write in zip(records, writes, strict=False):
            assert_record(record, record.lsn, *write)


@pytest.mark.usefixtures("no_fsync")
def test_damage_at_the_end_of_an_older_file_is_corruption_not_a_tail(tmp_path):
    _, data = three_records(tmp_path / "wal")
    with WriteAheadLog(tmp_path / "wal") as wal:
        wal.truncate_through(1)  # starts wal-4, keeps wal-1 (it holds lsn 2 and 3)
        wal.append("delete", [9])
    damaged = bytearray(data)
    damaged[-1] ^= 1
    (tmp_path / "wal" / FIRST).write_bytes(damaged)
    wal = WriteAheadLog(tmp_path / "wal")
    with pytest.raises(WalCorruptError, match=FIRST):
        list(wal.replay(after_lsn=1))
    assert [r.ids for r in wal.replay(after_lsn=3)] == [[9]]  # the damaged file is not read


@pytest.mark.usefixtures("no_fsync")
def test_lengths_and_fields_are_never_trusted(tmp_path):
    good = frame(1, bytes([3]) + struct.pack("<Q", 3) + b"[1]")

    def log(*records: bytes) -> WriteAheadLog:
        path = tmp_path / f"log{len(list(tmp_path.iterdir()))}"
        return WriteAheadLog(folder_with(path, b"".join(records)))

    def add_body(ids: bytes, dim: int, nnz: int, payloads: bytes, arrays: bytes) -> bytes:
        head = (
            bytes([1])
            + struct.pack("<Q", len(ids))
            + ids
            + struct.pack("<QQQ", dim, nnz, len(payloads))
        )
        return head + arrays + payloads

    row = struct.pack("<qq", 0, 1) + struct.pack("<i", 2) + struct.pack("<f", 1.0)  # one vector
    malformed = {
        "unknown op code": bytes([9]) + struct.pack("<Q", 2) + b"[]",
        "past the end of the body": bytes([3]) + struct.pack("<Q", 2**62) + b"[]",
        "record 2 at offset 42": bytes([3]) + struct.pack("<Q", 8) + b"[1, 2.5]",
        "bytes after its ids": bytes([3]) + struct.pack("<Q", 2) + b"[]!",
        "do not fill the body": add_body(b"[1]", DIM, 2**60, b"null", row),
        "neither null nor": add_body(b"[1]", DIM, 1, b'[{"a": 1}, null]', row),
        "outside": add_body(b"[1]", 2, 1, b"null", row),  # index 2 with dim 2
        "Expecting value": add_body(b"[1]", DIM, 1, b"nul!", row),
    }
    for why, body in malformed.items():
        wal = log(good, frame(2, body), frame(3, good[HEADER.size :]))
        assert list(wal.replay(after_lsn=2))[0].lsn == 3  # skipped records are not decoded
        with pytest.raises(WalCorruptError, match=why):
            list(wal.replay())
    with pytest.raises(WalCorruptError, match="format version 2"):
        log(good, frame(2, good[HEADER.size :], version=2))
    with pytest.raises(WalCorruptError, match="lsn 5 at offset .*, expected 2"):
        log(good, frame(5, good[HEADER.size :]))
    with pytest.warns(WalTailDroppedWarning, match="runs past the end"):  # claims 2**63 bytes
        wal = log(good, frame(2, b"x", length=2**63))
    assert [r.lsn for r in wal.replay()] == [1]
    with pytest.warns(WalTailDroppedWarning, match="no record magic"):  # a zero-filled tail
        wal = log(good, bytes(4096))
    assert [r.lsn for r in wal.replay()] == [1]
    assert issubclass(WalCorruptError, IndexCorruptError)


# ---------------------------------------------------------------------- durability
def test_concurrent_appends_share_fsyncs_and_return_only_once_durable(tmp_path, monkeypatch):
    real_fsync, lock = os.fsync, threading.Lock()
    durable_sizes = [0]  # the log file's size at the start of each finished file fsync

    def fsync(fd: int) -> None:
        info = os.fstat(fd)
        time.sleep(0.001)  # a device no faster than 1 ms a flush, even on tmpfs
        real_fsync(fd)
        if stat.S_ISREG(info.st_mode):
            with lock:
                durable_sizes.append(info.st_size)

    monkeypatch.setattr(os, "fsync", fsync)
    threads, per_thread = 8, 25
    wal = WriteAheadLog(tmp_path)
    barrier = threading.Barrier(threads)
    acks: dict[int, tuple[str, int]] = {}  # lsn -> (id, durable size when append returned)
    failures: list[BaseException] = []
    one = vecs(np.random.default_rng(0), 1, nnz=30)

    def work(t: int) -> None:
        try:
            barrier.wait()
            for i in range(per_thread):
                lsn = wal.append("upsert", [f"{t}-{i}"], one, [{"t": t}])
                with lock:
                    acks[lsn] = (f"{t}-{i}", max(durable_sizes))
        except BaseException as err:  # reported by the main thread
            failures.append(err)

    workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert failures == []
    appends = threads * per_thread
    assert sorted(acks) == list(range(1, appends + 1))
    ends = [end for _, end in record_bounds((tmp_path / FIRST).read_bytes())]
    for lsn, (_, durable) in acks.items():
        assert ends[lsn - 1] <= durable, f"lsn {lsn} was acknowledged before it was fsynced"
    assert {r.lsn: r.ids[0] for r in wal.replay()} == {lsn: a[0] for lsn, a in acks.items()}
    assert wal.fsync_count == len(durable_sizes) - 1
    assert wal.fsync_count <= appends // 2, f"{wal.fsync_count} fsyncs for {appends} appends"
    wal.close()


def test_a_failed_fsync_makes_the_log_refuse_further_writes(tmp_path, monkeypatch):
    wal = WriteAheadLog(tmp_path)

    def broken(fd: int) -> None:
        raise OSError(errno.EIO, "injected")

    monkeypatch.setattr(os, "fsync", broken)
    with pytest.raises(OSError, match="injected"):
        wal.append("delete", [1])
    monkeypatch.undo()
    with pytest.raises(OSError, match="failed"):
        wal.append("delete", [2])
    wal.close()
    assert [r.ids for r in WriteAheadLog(tmp_path).replay()] == [[1]]  # written, never acked


def test_truncate_through_deletes_only_folded_files_and_keeps_lsns_rising(tmp_path):
    path = tmp_path / "wal"

    def files() -> list[str]:
        return sorted(p.name for p in path.iterdir())

    def lsns(wal: WriteAheadLog, after: int = 0) -> list[int]:
        return [r.lsn for r in wal.replay(after)]

    with WriteAheadLog(path) as wal:
        for i in range(5):
            wal.append("delete", [i])
        wal.truncate_through(3)
        assert files() == [FIRST, "wal-00000000000000000006.log"]
        assert lsns(wal, 3) == [4, 5]
        assert [wal.append("delete", [i]) for i in range(3)] == [6, 7, 8]
        wal.truncate_through(5)
        assert files() == ["wal-00000000000000000006.log"] and lsns(wal) == [6, 7, 8]
        wal.truncate_through(8)
        assert files() == ["wal-00000000000000000009.log"] and lsns(wal) == []
        assert wal.size_bytes() == 0
    with WriteAheadLog(path) as wal:
        assert wal.last_lsn == 8 and wal.append("delete", [9]) == 9
        wal.truncate_through(100)  # e.g. a manifest ahead of a lost log: never reuse its lsns
        assert files() == ["wal-00000000000000000101.log"]
        assert wal.last_lsn == 100 and wal.append("delete", [10]) == 101
        assert wal.size_bytes() == sum(p.stat().st_size for p in path.iterdir()) > 0
    with WriteAheadLog(path) as wal:
        assert [(r.lsn, r.ids) for r in wal.replay()] == [(101, [10])]


# A child that imports once, then per trial forks a writer: the writer opens the log and appends
# from three threads, writing each acknowledged lsn (and id) to stdout, until it is SIGKILLed.
CHILD = r"""
import itertools, os, sys, threading
import numpy as np
from sparsearch.index.wal import WriteAheadLog
from sparsearch.sparse import SparseVectors

def writer(path, trial):
    wal = WriteAheadLog(path)
    def work(t):
        for i in itertools.count():
            v = SparseVectors(np.array([0, 2]), np.array([t, 7 + i % 50]), np.array([1.0, i]), 64)
            lsn = wal.append("upsert", [f"{trial}-{t}-{i}"], v, [{"i": i}])
            os.write(1, f"{lsn} {trial}-{t}-{i}\n".encode())  # one atomic pipe write
    for t in range(3):
        threading.Thread(target=work, args=(t,), daemon=True).start()
    os.write(1, b"ready\n")
    threading.Event().wait()

while trial := sys.stdin.readline().strip():
    pid = os.fork()
    if pid == 0:
        try:
            writer(sys.argv[1], trial)
        finally:
            os._exit(1)
    os.write(1, f"pid {pid}\n".encode())
    sys.stdin.readline()
    os.write(1, f"reaped {os.waitpid(pid, 0)[1]}\n".encode())
"""


def test_every_acknowledged_append_survives_kill_9(tmp_path):
    rng = np.random.default_rng()
    trials, acked, trials_with_acks = 30, dict[int, str](), 0
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(tmp_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdin is not None and child.stdout is not None
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in child.stdout], daemon=True).start()

    def read_until(word: str) -> list[str]:
        got = [lines.get(timeout=60)]
        while not got[-1].startswith(word):
            got.append(lines.get(timeout=60))
        return got

    try:
        for trial in range(trials):
            child.stdin.write(f"{trial}\n")
            child.stdin.flush()
            out = read_until("pid")
            if "ready\n" not in out:
                out += read_until("ready")
            time.sleep(rng.uniform(0.0, 0.1))
            os.kill(int(next(x for x in out if x.startswith("pid")).split()[1]), signal.SIGKILL)
            child.stdin.write("reap\n")
            child.stdin.flush()
            out += read_until("reaped")
            status = int(out[-1].split()[1])
            assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
            new = {int(x.split()[0]): x.split()[1] for x in out if x[0].isdigit()}
            assert not set(new) & set(acked), "an acknowledged lsn was handed out twice"
            acked |= new
            trials_with_acks += bool(new)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                wal = WriteAheadLog(tmp_path)
            assert [w.category for w in caught] == [WalTailDroppedWarning] * wal.dropped_tail
            replayed = {r.lsn: r.ids[0] for r in wal.replay()}
            wal.close()
            assert {lsn: replayed.get(lsn) for lsn in acked} == acked
    finally:
        child.kill()
        child.wait()
    assert trials_with_acks >= trials // 2, f"{trials_with_acks} of {trials} trials acked"
