"""Persistence: round trips, memory mapping, corruption detection, and crash safety."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest

from sparsearch.errors import IndexCorruptError, VocabularyMismatchError
from sparsearch.index import SparseIndex, storage
from sparsearch.search import SearchParams
from sparsearch.sparse import SparseVectors

DIM = 40
VOCAB = tuple(f"tok{i}" for i in range(DIM))


def random_docs(rng: np.random.Generator, n: int) -> SparseVectors:
    dense = rng.random((n, DIM)).astype(np.float32) * (rng.random((n, DIM)) < 0.15)
    return SparseVectors.from_dense(dense, VOCAB)


def build(path: Path) -> SparseIndex:
    rng = np.random.default_rng(0)
    index = SparseIndex(path)
    index.add(
        [f"d{i}" for i in range(60)], random_docs(rng, 60), payloads=[{"i": i} for i in range(60)]
    )
    index.add(list(range(30)), random_docs(rng, 30))
    index.delete(["d3", 4])
    index.save()
    return index


def same_index(a: SparseIndex, b: SparseIndex) -> None:
    assert a.ids() == b.ids()
    queries = random_docs(np.random.default_rng(9), 8)
    with_payloads = SearchParams(return_payloads=True)
    ha, hb = (
        a.search(queries, k=7, params=with_payloads),
        b.search(queries, k=7, params=with_payloads),
    )
    assert ha.ids.tolist() == hb.ids.tolist()
    assert ha.payloads.tolist() == hb.payloads.tolist()
    np.testing.assert_array_equal(ha.scores, hb.scores)


def test_save_and_open_round_trip_memory_mapped(tmp_path):
    index = build(tmp_path / "idx")
    opened = SparseIndex.open(tmp_path / "idx")
    same_index(index, opened)
    assert isinstance(opened._segments[0].fwd_values, np.memmap)
    assert opened.vocab == VOCAB and opened.stats()["deleted"] == 2
    same_index(index, SparseIndex.open(tmp_path / "idx", mmap=False))
    same_index(index, SparseIndex(tmp_path / "idx"))  # a path holding an index opens it
    manifest = json.loads(
        (
            tmp_path
            / "idx"
            / json.loads((tmp_path / "idx" / "CURRENT").read_text().splitlines()[0])["manifest"]
        ).read_text()
    )
    assert manifest["format_version"] == storage.FORMAT_VERSION and manifest["dim"] == DIM
    assert manifest["counts"]["documents"] == len(index)
    with pytest.raises(VocabularyMismatchError):
        opened.search(
            SparseVectors.from_dicts([{0: 1.0}], dim=DIM, vocab=tuple(f"x{i}" for i in range(DIM)))
        )


def test_updates_after_open_commit_and_old_files_are_collected(tmp_path):
    index = build(tmp_path / "idx")
    opened = SparseIndex.open(tmp_path / "idx")
    opened.upsert(["d5", "new"], random_docs(np.random.default_rng(3), 2))
    opened.delete(["d7"])
    opened.compact()
    opened.save()
    again = SparseIndex.open(tmp_path / "idx")
    same_index(opened, again)
    assert len(list((tmp_path / "idx" / "segments").iterdir())) == 1
    assert len(list((tmp_path / "idx").glob("manifest-*.json"))) == 1
    index.save(tmp_path / "copy")  # an index saves to another path too
    same_index(index, SparseIndex.open(tmp_path / "copy"))


def index_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def test_flipping_or_truncating_any_file_is_detected(tmp_path):
    build(tmp_path / "idx")
    files = index_files(tmp_path / "idx")
    assert len(files) >= 15
    rng = np.random.default_rng(0)
    for path in files:
        original = path.read_bytes()
        flipped = bytearray(original)
        flipped[int(rng.integers(len(original)))] ^= 0x10
        for damaged in (bytes(flipped), original[:-1], original[: len(original) // 2]):
            path.write_bytes(damaged)
            with pytest.raises(IndexCorruptError):
                SparseIndex.open(tmp_path / "idx")
        path.unlink()
        with pytest.raises(IndexCorruptError):
            SparseIndex.open(tmp_path / "idx")
        path.write_bytes(original)
    SparseIndex.open(tmp_path / "idx")


# ---------------------------------------------------------------------- crash safety
def step_ops(step: int) -> tuple[list[str], SparseVectors, list[str], bool]:
    """What writer step ``step`` does: (ids to add, their vectors, ids to delete, compact?)."""
    rng = np.random.default_rng(step)
    ids = [f"{step}-{j}" for j in range(12)]
    deleted = [f"{step - 1}-{j}" for j in (0, 5)] if step > 1 else []
    return ids, random_docs(rng, len(ids)), deleted, step % 4 == 0


def expected_ids(step: int) -> list[str]:
    live: dict[str, None] = {}
    for s in range(1, step + 1):
        ids, _, deleted, _ = step_ops(s)
        live.update(dict.fromkeys(ids))
        for doc_id in deleted:
            del live[doc_id]
    return list(live)


def writer(path: Path, log: Path) -> None:
    """Child process: apply steps and commit each, logging the step after its commit."""
    index = SparseIndex.open(path)
    fd = os.open(log, os.O_WRONLY | os.O_APPEND)
    for step in range(1, 10_000):
        ids, vectors, deleted, compact = step_ops(step)
        index.add(ids, vectors)
        if deleted:
            index.delete(deleted)
        if compact:
            index.compact()
        index.save()
        os.write(fd, f"{step}\n".encode())


def test_killed_writer_always_leaves_the_last_committed_state(tmp_path):
    rng = np.random.default_rng(1)
    trials, t0 = 0, time.monotonic()
    while trials < 50 or time.monotonic() - t0 < 5:
        path, log = tmp_path / f"idx{trials}", tmp_path / f"log{trials}"
        SparseIndex(path, dim=DIM, vocab=VOCAB).save()
        log.write_text("")
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child is killed
            try:
                writer(path, log)
            finally:
                os._exit(0)
        time.sleep(float(rng.uniform(0.0, 0.4)))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        steps = log.read_text().split()
        committed = int(steps[-1]) if steps else 0
        opened = SparseIndex.open(path)
        got = opened.ids()
        assert got in (expected_ids(committed), expected_ids(committed + 1)), (trials, committed)
        step = committed if got == expected_ids(committed) else committed + 1
        for s in range(max(1, step - 1), step + 1):  # the vectors are the committed ones too
            ids, vectors, deleted, _ = step_ops(s)
            kept = [i for i, doc_id in enumerate(ids) if doc_id in set(got)]
            np.testing.assert_array_equal(
                opened.get([ids[i] for i in kept]).to_dense(), vectors[np.array(kept)].to_dense()
            )
        trials += 1
    assert trials >= 50
