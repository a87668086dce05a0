"""Attaching saved indexes' segments as built (what Ray workers hand the driver): the result
answers exactly as the same documents added one batch after another, and a bad attach changes
nothing."""

from __future__ import annotations

import numpy as np
import pytest

from sparsearch.errors import (
    DimensionMismatchError,
    DuplicateIdError,
    IndexCorruptError,
    InvalidInputError,
    VocabularyMismatchError,
)
from sparsearch.filters import Match
from sparsearch.index import SparseIndex, storage
from sparsearch.search import SearchParams
from sparsearch.sparse import SparseVectors
from tests.index.test_persistence import DIM, VOCAB, random_docs, same_index


@pytest.fixture
def parts(tmp_path):
    """Three saved indexes of consecutive batches (the second with a tombstone and an upserted
    copy), and the same writes made on one in-memory index: the oracle."""
    rng = np.random.default_rng(3)
    oracle = SparseIndex()
    paths = []
    for number, size in enumerate((40, 25, 30)):
        ids = [f"p{number}-{i}" for i in range(size)]
        docs = random_docs(rng, size)
        payloads = [{"part": number, "i": i} for i in range(size)]
        part = SparseIndex(tmp_path / f"part{number}")
        for index in (part, oracle):
            index.add(ids, docs, payloads)
        if number == 1:
            again = random_docs(np.random.default_rng(4), 1)
            for index in (part, oracle):
                index.delete(["p1-3"])
                index.upsert(["p1-5"], again, [{"part": 9}])
        part.save()
        paths.append(tmp_path / f"part{number}")
    return paths, oracle


def test_attached_segments_answer_as_the_same_documents_added(parts, tmp_path):
    paths, oracle = parts
    index = SparseIndex(tmp_path / "all")
    index.attach(paths)
    same_index(index, oracle)  # ids in insertion order, top-k ids, scores and payloads
    assert len(index) == len(oracle) == 94
    only = SearchParams(filter=Match("part", 9), return_payloads=True)
    queries = random_docs(np.random.default_rng(5), 4)
    assert (
        index.search(queries, 5, params=only).ids.tolist()
        == oracle.search(queries, 5, params=only).ids.tolist()
    )
    # the segments were taken over, not rebuilt: the postings are the parts' own arrays
    built = [
        seg.inverted[1] for path in paths for seg in SparseIndex.open(path).snapshot().segments
    ]
    attached = [seg.inverted[1] for seg in index.snapshot().segments]
    assert len(attached) == len(built) == 4  # the upsert made a segment of its own
    assert all(np.array_equal(a, b) for a, b in zip(attached, built, strict=True))
    # committed: a fresh handle reads the same, and the index keeps taking writes
    same_index(SparseIndex.open(tmp_path / "all"), oracle)
    index.upsert(["p0-0"], random_docs(np.random.default_rng(6), 1))
    assert index.ids()[-1] == "p0-0" and len(index) == 94


def test_attach_after_documents_of_its_own_and_into_memory(parts, tmp_path):
    paths, oracle = parts
    own = SparseVectors.from_dicts([{0: 5.0}], dim=DIM, vocab=VOCAB)
    index = SparseIndex()
    index.add(["own"], own)
    index.attach(paths[:2])
    assert index.ids()[0] == "own" and index.ids()[1:] == oracle.ids()[: len(index) - 1]
    assert index.search(own, 1).ids.tolist() == [["own"]]


def test_too_many_segments_merge_the_smallest(parts, tmp_path):
    paths, oracle = parts
    index = SparseIndex(tmp_path / "all", max_segments=2)
    index.attach(paths)
    assert len(index.snapshot().segments) == 2
    same_index(index, oracle)


def test_a_bad_attach_changes_nothing(parts, tmp_path):
    paths, _ = parts
    index = SparseIndex(tmp_path / "all")
    index.attach(paths[:1])
    before = index.ids()

    with pytest.raises(DuplicateIdError, match="'p0-0' is already in the index"):
        index.attach(paths[:2])
    with pytest.raises(DuplicateIdError, match="more than one of the indexes"):
        index.attach([paths[1], paths[1]])

    other_dim = SparseIndex(tmp_path / "dim")
    other_dim.add(["x"], SparseVectors.from_dicts([{0: 1.0}], dim=DIM + 1))
    other_dim.save()
    with pytest.raises(DimensionMismatchError, match=f"dim {DIM + 1} into one of dim {DIM}"):
        index.attach([tmp_path / "dim"])

    other_vocab = SparseIndex(tmp_path / "vocab")
    words = tuple(f"w{i}" for i in range(DIM))
    other_vocab.add(["y"], SparseVectors.from_dicts([{0: 1.0}], dim=DIM, vocab=words))
    other_vocab.save()
    with pytest.raises(VocabularyMismatchError, match="another vocabulary"):
        index.attach([tmp_path / "vocab"])

    damaged = paths[2]
    victim = next(p for p in sorted(damaged.rglob("*.npy")) if p.stat().st_size > 200)
    victim.write_bytes(victim.read_bytes()[:-50])  # truncated
    with pytest.raises(IndexCorruptError, match="truncated"):
        index.attach([damaged])
    with pytest.raises(InvalidInputError, match="a list of index folders"):
        index.attach(tmp_path / "dim")

    assert index.ids() == before
    assert SparseIndex.open(tmp_path / "all").ids() == before  # nothing committed either


def test_attach_into_a_durable_index_commits_its_logged_writes_too(parts, tmp_path):
    paths, oracle = parts
    index = SparseIndex(tmp_path / "all", durable=True)
    index.add(["logged"], SparseVectors.from_dicts([{1: 2.0}], dim=DIM, vocab=VOCAB))
    index.attach(paths[2:])
    index.close()
    reopened = SparseIndex.open(tmp_path / "all")
    assert reopened.ids() == ["logged", *[i for i in oracle.ids() if i.startswith("p2-")]]
    manifest = storage.read_manifest(tmp_path / "all")
    assert manifest["counts"]["documents"] == 31  # committed, not only in the log


def test_the_first_documents_fix_the_vocabulary_as_add_does(tmp_path):
    plain, named = SparseIndex(tmp_path / "plain"), SparseIndex(tmp_path / "named")
    plain.add(["p"], SparseVectors.from_dicts([{0: 1.0}], dim=DIM))
    named.add(["n"], SparseVectors.from_dicts([{0: 1.0}], dim=DIM, vocab=VOCAB))
    plain.save()
    named.save()
    attached, added = SparseIndex(), SparseIndex()
    attached.attach([tmp_path / "plain", tmp_path / "named"])
    added.add(["p"], SparseVectors.from_dicts([{0: 1.0}], dim=DIM))
    added.add(["n"], SparseVectors.from_dicts([{0: 1.0}], dim=DIM, vocab=VOCAB))
    assert attached.vocab is added.vocab is None
