"""Persistence: round trips, memory mapping, corruption detection, and crash safety."""

from __future__ import annotations

import json
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
    index.add([f"n{i}" for i in range(30)], random_docs(rng, 30))
    index.delete(["d3", "n4"])
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
    assert isinstance(opened.snapshot().segments[0].fwd_values, np.memmap)
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
    # a commit keeps the previous version's files for readers that just read CURRENT
    assert len(list((tmp_path / "idx" / "segments").iterdir())) == 3
    opened.save()  # one more commit: only the compacted segment is left
    assert len(list((tmp_path / "idx" / "segments").iterdir())) == 1
    assert len(list((tmp_path / "idx").glob("manifest-*.json"))) == 2
    same_index(opened, SparseIndex.open(tmp_path / "idx"))
    index.save(tmp_path / "copy")  # an index saves to another path too
    same_index(index, SparseIndex.open(tmp_path / "copy"))


def index_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and p.name != "LOCK")


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
