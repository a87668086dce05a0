"""Crash safety: kill -9 of a writer (write-ahead log on and off), and a damaged log."""

from __future__ import annotations

import functools
import os
import signal
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

from sparsearch.errors import IndexCorruptError
from sparsearch.index import SparseIndex
from sparsearch.index.wal import WalTailDroppedWarning
from sparsearch.sparse import SparseVectors

DIM = 40


def op(step: int) -> tuple[str, list[str], SparseVectors | None]:
    """Writer step ``step``: every fifth deletes two documents of the step before; steps 12, 27,
    42, ... upsert three of the step before's; the others add twelve new documents (so the step
    before a delete or an upsert always added)."""
    rng = np.random.default_rng(step)
    if step % 5 == 0:
        return "delete", [f"{step - 1}-0", f"{step - 1}-5"], None
    upsert = step % 5 == 2 and step % 3 == 0
    if upsert:
        ids = [f"{step - 1}-{j}" for j in range(1, 4)]
    else:
        ids = [f"{step}-{j}" for j in range(12)]
    dense = rng.random((len(ids), DIM)).astype(np.float32) * (rng.random((len(ids), DIM)) < 0.2)
    return ("upsert" if upsert else "add"), ids, SparseVectors.from_dense(dense)


def apply(index: SparseIndex, step: int) -> None:
    kind, ids, vectors = op(step)
    if kind == "delete":
        index.delete(ids)
    else:
        getattr(index, kind)(ids, vectors)


@functools.cache
def expected(step: int) -> tuple[list[str], np.ndarray]:
    """(ids, dense vectors) of the index after steps 1..step, from an in-memory index."""
    index = SparseIndex(dim=DIM)
    for s in range(1, step + 1):
        apply(index, s)
    ids = index.ids()
    return ids, index.get(ids).to_dense() if ids else np.zeros((0, DIM), np.float32)


def state(index: SparseIndex) -> tuple[list[str], np.ndarray]:
    ids = index.ids()
    return ids, index.get(ids).to_dense() if ids else np.zeros((0, DIM), np.float32)


def same(a: tuple[list[str], np.ndarray], b: tuple[list[str], np.ndarray]) -> bool:
    return a[0] == b[0] and np.array_equal(a[1], b[1])


def writer(path: Path, log: Path, durable: bool) -> None:
    """Child process: apply steps; log each once acknowledged (durable: when the call returns;
    otherwise once saved). A durable writer also folds its log into segments every 10 steps."""
    index = SparseIndex.open(path, durable=durable)
    fd = os.open(log, os.O_WRONLY | os.O_APPEND)
    for step in range(1, 100_000):
        apply(index, step)
        if not durable or step % 10 == 0:
            index.save()
        os.write(fd, f"{step}\n".encode())


def warm_up() -> None:
    """Compile the kernels in this process, so forked writers start writing at once."""
    index = SparseIndex(dim=DIM)
    for step in range(1, 8):
        apply(index, step)
    index.compact()
    index.search(op(1)[2], k=3)


def run_trials(tmp_path: Path, durable: bool, trials: int, delay: tuple[float, float]) -> list[int]:
    warm_up()
    rng = np.random.default_rng(int(durable))
    acknowledged = []
    for trial in range(trials):
        path, log = tmp_path / f"idx{trial}", tmp_path / f"log{trial}"
        SparseIndex(path, dim=DIM).save()
        log.write_text("")
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child is killed
            try:
                writer(path, log, durable)
            finally:
                os._exit(0)
        time.sleep(float(rng.uniform(*delay)))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        steps = log.read_text().split()
        acked = int(steps[-1]) if steps else 0
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", WalTailDroppedWarning)
            got = state(SparseIndex.open(path))
        # the last acknowledged state, or the step after it (done, killed before its ack line)
        assert same(got, expected(acked)) or same(got, expected(acked + 1)), (trial, acked)
        acknowledged.append(acked)
    return acknowledged


@pytest.mark.numba_only
def test_kill_9_of_a_durable_writer_keeps_every_acknowledged_write(tmp_path):
    acked = run_trials(tmp_path, durable=True, trials=100, delay=(0.05, 0.3))
    # the trials tested something: most writers had acknowledged writes when killed
    assert sum(a >= 1 for a in acked) >= 70, acked
    assert max(acked) >= 10, acked  # some were killed after folding the log into segments


@pytest.mark.numba_only
def test_kill_9_of_a_writer_without_the_log_keeps_the_last_saved_state(tmp_path):
    # every step saves (fsyncs), so a step takes longer than a logged write: wait longer
    acked = run_trials(tmp_path, durable=False, trials=40, delay=(0.1, 0.8))
    assert sum(a >= 1 for a in acked) >= 24, acked


def durable_index(path: Path) -> SparseIndex:
    index = SparseIndex(path, dim=DIM, durable=True)
    for step in range(1, 7):
        apply(index, step)
    index.close()  # no save: everything is in the log only
    return index


def test_logged_writes_reopen_and_a_torn_last_record_is_dropped(tmp_path):
    durable_index(tmp_path / "idx")
    assert same(state(SparseIndex.open(tmp_path / "idx")), expected(6))
    (log,) = sorted((tmp_path / "idx" / "wal").glob("wal-*.log"))
    log.write_bytes(log.read_bytes()[:-7])  # the last write was torn by a crash
    assert same(state(SparseIndex.open(tmp_path / "idx")), expected(5))  # a reader ignores it
    with pytest.warns(WalTailDroppedWarning):
        writer_handle = SparseIndex.open(tmp_path / "idx", durable=True)
        apply(writer_handle, 6)  # the first write opens the log and drops the torn record
    writer_handle.flush()
    assert same(state(SparseIndex.open(tmp_path / "idx")), expected(6))
    assert not any(
        record.stat().st_size for record in (tmp_path / "idx" / "wal").glob("wal-*.log")
    )  # folded into segments: the log is empty


def test_a_bit_flip_inside_the_log_is_a_named_error(tmp_path):
    durable_index(tmp_path / "idx")
    (log,) = sorted((tmp_path / "idx" / "wal").glob("wal-*.log"))
    data = bytearray(log.read_bytes())
    data[len(data) // 3] ^= 0x04  # inside an early record, intact records follow
    log.write_bytes(bytes(data))
    with pytest.raises(IndexCorruptError, match="wal-"):
        SparseIndex.open(tmp_path / "idx")
