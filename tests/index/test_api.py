"""SparseIndex behaviour: named errors, padding, ties, ids, payloads, stats."""

from __future__ import annotations

import numpy as np
import pytest

from sparsearch.errors import (
    DimensionMismatchError,
    DuplicateIdError,
    InvalidInputError,
    UnknownIdError,
    VocabularyMismatchError,
)
from sparsearch.index import SparseIndex
from sparsearch.search import SearchParams
from sparsearch.sparse import SparseVectors

VOCAB = ("alpha", "beta", "gamma", "delta")


def vecs(*rows, vocab=VOCAB):
    return SparseVectors.from_dicts(rows, dim=len(vocab), vocab=vocab)


@pytest.fixture
def index():
    index = SparseIndex()
    index.add(
        ["a", "b7", "c"],
        vecs({"alpha": 1.0}, {"alpha": 1.0, "beta": 1.0}, {"beta": 3.0}),
        payloads=[{"n": 1}, None, {"n": 3}],
    )
    return index


def test_fewer_matches_than_k_are_padded_with_none_and_minus_inf(index):
    hits = index.search(vecs({"alpha": 2.0}), k=4)
    assert hits.ids.tolist() == [["a", "b7", None, None]]  # tie at 2.0: earlier insertion first
    assert hits.scores[0, :2].tolist() == [2.0, 2.0]
    assert hits.scores.dtype == np.float32 and np.isneginf(hits.scores[0, 2:]).all()
    assert hits.row(0) == [("a", 2.0), ("b7", 2.0)]


def test_ties_follow_insertion_order_even_after_upsert(index):
    index.upsert(["a"], vecs({"alpha": 1.0}))  # re-inserted: now the latest
    assert index.search(vecs({"alpha": 1.0}), k=2).ids.tolist() == [["b7", "a"]]
    assert index.search(vecs({"delta": 1.0}), k=2).ids.tolist() == [[None, None]]


def test_payloads_come_back_with_hits(index):
    hits = index.search(vecs({"beta": 1.0}), k=3, params=SearchParams(return_payloads=True))
    assert hits.ids.tolist() == [["c", "b7", None]]
    assert hits.payloads.tolist() == [[{"n": 3}, None, None]]
    assert index.search(vecs({"beta": 1.0})).payloads is None
    assert index.get_payloads(["c", "a"]) == [{"n": 3}, {"n": 1}]


def test_named_errors(index):
    with pytest.raises(DuplicateIdError, match="'a'"):
        index.add(["a"], vecs({"beta": 1.0}))
    with pytest.raises(DuplicateIdError, match="'x'"):
        index.add(["x", "x"], vecs({"beta": 1.0}, {"beta": 1.0}))
    with pytest.raises(InvalidInputError, match="2 ids for 1 vectors"):
        index.add(["x", "y"], vecs({"beta": 1.0}))
    with pytest.raises(InvalidInputError, match="payloads"):
        index.add(["x"], vecs({"beta": 1.0}), payloads=[])
    with pytest.raises(InvalidInputError, match="JSON"):
        index.add(["x"], vecs({"beta": 1.0}), payloads=[{"f": object()}])
    with pytest.raises(InvalidInputError):
        index.add([1.5], vecs({"beta": 1.0}))
    with pytest.raises(UnknownIdError, match="'nope'"):
        index.delete(["a", "nope"])
    assert "a" in index  # a failed delete deletes nothing
    with pytest.raises(UnknownIdError, match="'nope'"):
        index.get(["nope"])
    with pytest.raises(DimensionMismatchError):
        index.search(SparseVectors.from_dicts([{0: 1.0}], dim=9))
    other = ("alpha", "beta", "gamma", "epsilon")
    with pytest.raises(VocabularyMismatchError):
        index.search(vecs({"alpha": 1.0}, vocab=other))
    with pytest.raises(VocabularyMismatchError):
        index.add(["x"], vecs({"alpha": 1.0}, vocab=other))
    with pytest.raises(InvalidInputError):
        index.search(vecs({"alpha": 1.0}), k=0)
    with pytest.raises(InvalidInputError):
        index.save()  # in memory, no path


def test_vectors_without_vocab_are_accepted_by_dimension(index):
    plain = SparseVectors.from_dicts([{1: 1.0}], dim=4)
    assert index.search(plain, k=1).ids.tolist() == [["c"]]


def test_get_returns_stored_vectors_with_the_vocab(index):
    got = index.get(["c", "b7"])
    assert got.vocab == VOCAB
    assert got.to_dicts() == [{"beta": 3.0}, {"alpha": 1.0, "beta": 1.0}]


def test_len_stats_and_compact(index):
    index.delete(["b7"])
    index.add(["d"], vecs({"gamma": 1.0}))
    assert len(index) == 3
    stats = index.stats()
    assert (stats["documents"], stats["deleted"], stats["segments"]) == (3, 1, 2)
    index.compact()
    stats = index.stats()
    assert (stats["documents"], stats["deleted"], stats["segments"]) == (3, 0, 1)
    assert index.search(vecs({"alpha": 1.0, "gamma": 1.0}), k=3).ids.tolist() == [["a", "d", None]]


def test_empty_index_and_empty_query_batch():
    for index in (SparseIndex(dim=4), SparseIndex()):  # dimension fixed, or not yet known
        hits = index.search(SparseVectors.from_dicts([{0: 1.0}], dim=4), k=2)
        assert hits.ids.tolist() == [[None, None]]
    assert SparseIndex(dim=4).search(SparseVectors.empty(4), k=3).ids.shape == (0, 3)


def test_threads_give_the_same_hits_as_one_thread():
    rng = np.random.default_rng(0)
    dense = rng.random((400, 50)).astype(np.float32) * (rng.random((400, 50)) < 0.1)
    docs = SparseVectors.from_dense(dense)
    queries = SparseVectors.from_dense(rng.random((37, 50)) * (rng.random((37, 50)) < 0.2))
    index = SparseIndex()
    index.add(list(range(400)), docs)
    one, many = (
        index.search(queries, k=10, params=SearchParams(threads=1)),
        index.search(queries, k=10, params=SearchParams(threads=4)),
    )
    assert one.ids.tolist() == many.ids.tolist()
    np.testing.assert_array_equal(one.scores, many.scores)


def test_get_gathers_across_segments_in_the_order_asked_and_refuses_a_single_string():
    index = SparseIndex()
    rng = np.random.default_rng(3)
    batches = [
        SparseVectors.from_dense(rng.random((5, 6)) * (rng.random((5, 6)) < 0.5)) for _ in range(3)
    ]
    for b, vectors in enumerate(batches):
        index.add([f"{b}-{i}" for i in range(5)], vectors)
    index.delete(["1-2"])
    wanted = ["2-4", "0-0", "1-3", "0-0", "2-1"]
    got = index.get(wanted).to_dense()
    for row, doc_id in zip(got, wanted, strict=True):
        b, i = map(int, doc_id.split("-"))
        np.testing.assert_array_equal(row, batches[b].to_dense()[i])
    assert index.get([]).n == 0
    with pytest.raises(UnknownIdError, match="'1-2'"):
        index.get(["0-1", "1-2"])
    for call in (index.get, index.delete, index.get_payloads):
        with pytest.raises(InvalidInputError, match="single str"):
            call("0-1")
    assert len(index) == 14  # nothing was deleted by the refused calls


def test_subnormal_weights_index_and_a_failed_write_changes_nothing(monkeypatch):
    from sparsearch.index import segment

    index = SparseIndex()
    index.add(["a", "b"], SparseVectors.from_dicts([{0: 1.0}, {1: 1.0}], dim=3))
    # a subnormal maximum used to round its impact step to 0 (ZeroDivisionError after the delete)
    index.upsert(["a"], SparseVectors.from_dicts([{0: 1e-45, 2: 2.0}], dim=3))
    hits = index.search(SparseVectors.from_dicts([{0: 1.0, 2: 1.0}], dim=3), k=2)
    assert hits.ids.tolist() == [["a", None]] and hits.scores[0, 0] == np.float32(2.0)

    def broken(*args, **kwargs):
        raise MemoryError("injected: the segment could not be built")

    before = (index.ids(), index.get(index.ids()).to_dense().tolist(), index.stats())
    monkeypatch.setattr(segment.Segment, "build", broken)
    with pytest.raises(MemoryError, match="injected"):
        index.upsert(["a", "c"], SparseVectors.from_dicts([{0: 5.0}, {1: 5.0}], dim=3))
    assert (index.ids(), index.get(index.ids()).to_dense().tolist(), index.stats()) == before
    empty = SparseIndex()
    with pytest.raises(MemoryError, match="injected"):
        empty.add(["x"], SparseVectors.from_dicts([{0: 1.0}], dim=7))
    assert empty.dim is None and len(empty) == 0


def test_opening_nothing_and_filtering_by_a_number_are_named_errors(tmp_path):
    from sparsearch.errors import IndexNotFoundError

    for path in (tmp_path / "missing", tmp_path):
        with pytest.raises(IndexNotFoundError, match="no index at"):
            SparseIndex.open(path)
    with pytest.raises(FileNotFoundError):  # still what callers catching the builtin expect
        SparseIndex.open(tmp_path / "missing")
    with pytest.raises(InvalidInputError, match="collection of ids"):
        SearchParams(filter=5)


def test_iter_batches_streams_every_live_document_in_insertion_order():
    index = SparseIndex()
    vectors = SparseVectors.from_dicts([{i % 4: float(i + 1)} for i in range(10)], dim=4)
    index.add(list(range(10)), vectors, payloads=[{"n": i} for i in range(10)])
    index.delete([3])
    index.upsert([0], SparseVectors.from_dicts([{1: 9.0}], dim=4), payloads=[{"n": "new"}])
    batches = list(index.iter_batches(batch_size=4))
    assert [len(ids) for ids, _, _ in batches] == [4, 4, 1]
    ids = [i for chunk, _, _ in batches for i in chunk]
    assert ids == [1, 2, 4, 5, 6, 7, 8, 9, 0] == index.ids()
    for chunk, got, payloads in batches:
        np.testing.assert_array_equal(got.to_dense(), index.get(chunk).to_dense())
        assert payloads == index.get_payloads(chunk)
    assert batches[-1][2] == [{"n": "new"}]
    with pytest.raises(InvalidInputError, match="batch_size"):
        next(index.iter_batches(batch_size=0))
