"""The Milvus backend against the real engine (Milvus Lite 2.5.1, embedded): SciFact's splade-tiny
vectors exported, then searched with and without filters, compared with our exact engine."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from pymilvus.exceptions import MilvusException

from sparsearch import SearchParams, SparseVectors
from sparsearch.backends import export, open_backend
from sparsearch.backends.milvus import MilvusBackend
from sparsearch.errors import (
    BackendError,
    DimensionMismatchError,
    InvalidInputError,
    UnsupportedFilterError,
    VocabularyMismatchError,
)
from sparsearch.filters import Filter, HasId, IsNull, Match, Range
from sparsearch.search import Hits

TOL = 1e-4


@pytest.fixture(scope="module")
def sci_db(tmp_path_factory: pytest.TempPathFactory):
    return tmp_path_factory.mktemp("milvus") / "sci.db"


@pytest.fixture(scope="module")
def sci_milvus(scifact_index, sci_db):
    """SciFact exported by URI (inverted index, exact settings), reopened for searching."""
    report = export(scifact_index, f"milvus://{sci_db}/scifact", progress=False)
    print(f"\nMilvus Lite export: {report.docs_per_second:.0f} docs/s ({report.seconds:.1f} s)")
    assert report.documents == 5183
    backend = open_backend(f"milvus://{sci_db}/scifact")
    yield backend
    backend.close()


def assert_same_top(got: Hits, want: Hits) -> None:
    """Equal top lists modulo exact ties: the same scores (within float tolerance) rank by rank,
    and the same ids above the last rank's score."""
    np.testing.assert_allclose(got.scores, want.scores, rtol=TOL, atol=TOL)
    for i in range(len(want)):
        real = want.scores[i][~np.isneginf(want.scores[i])]
        if not real.size:
            continue
        above = want.scores[i] > real[-1] + TOL
        assert set(got.ids[i][above].tolist()) == set(want.ids[i][above].tolist()), i


def test_export_gives_the_exact_top_10(sci_milvus, scifact_index, scifact_encoded):
    assert sci_milvus.count() == 5183
    queries = scifact_encoded.queries
    got = sci_milvus.search(queries, 10)
    assert got.ids.dtype == object and got.scores.dtype == np.float32
    assert_same_top(got, scifact_index.search(queries, 10))


def test_wand_index_gives_the_same_answers(scifact_index, scifact_encoded, sci_db):
    with MilvusBackend("scifact_wand", uri=str(sci_db), index="wand", recreate=True) as wand:
        export(scifact_index, wand, progress=False)
        queries = scifact_encoded.queries
        assert_same_top(wand.search(queries, 10), scifact_index.search(queries, 10))


def _common_tag(payloads: list[dict]) -> str:
    return Counter(tag for p in payloads for tag in p["tags"]).most_common(5)[-1][0]


def test_filters_equal_the_exact_engine(sci_milvus, scifact_index, scifact_encoded):
    tag = _common_tag(scifact_encoded.payloads)
    some_ids = scifact_encoded.doc_ids[::7]
    filters = [
        Match("initial", "t"),
        Match("initial", any=["a", "b", "c"]),
        Match("title_words", 8),
        Match("even", True),
        Match("tags", tag),
        Match("tags", any=[tag, "cancer", "no such tag"]),
        Range("title_words", gte=5, lt=9),
        Range("id_mod", gt=3.5),
        Range("id_mod", lte=2, gt=float("-inf")),
        HasId(some_ids),
        Filter(must_not=[Match("initial", "t")]),
        Filter(must_not=[Match("tags", tag), Range("title_words", gt=12)]),
        Filter(should=[Match("even", False), Range("title_words", lte=4)]),
        Filter(
            must=[Filter(should=[Match("initial", "a"), Match("initial", "b"), HasId(some_ids)])],
            must_not=[Filter(must=[Match("even", True), Range("id_mod", lt=5)])],
        ),
    ]
    queries = scifact_encoded.queries[:25]
    for flt in filters:
        params = SearchParams(filter=flt, return_payloads=True)
        got = sci_milvus.search(queries, 10, params=params)
        want = scifact_index.search(queries, 10, params=params)
        assert_same_top(got, want)
        assert (want.scores > -np.inf).sum() > 0, flt  # each filter leaves something to find
        for i in range(len(queries)):
            by_id = dict(zip(want.ids[i].tolist(), want.payloads[i].tolist(), strict=True))
            for doc_id, payload in zip(got.ids[i], got.payloads[i], strict=True):
                if doc_id is not None:
                    assert (
                        payload == scifact_encoded.payloads[scifact_encoded.doc_ids.index(doc_id)]
                    )
                    assert doc_id not in by_id or by_id[doc_id] == payload


def test_filters_that_match_nothing_give_padding(sci_milvus, scifact_encoded):
    queries = scifact_encoded.queries[:3]
    for flt in (Match("initial", any=[]), HasId([1, 2]), Range("id_mod", gt=float("inf"))):
        hits = sci_milvus.search(queries, 5, params=SearchParams(filter=flt))
        assert (hits.ids == None).all() and np.isneginf(hits.scores).all()  # noqa: E711


def test_what_milvus_cannot_filter_is_named(sci_milvus, scifact_encoded):
    queries = scifact_encoded.queries[:2]
    for flt, named in [
        (IsNull("initial"), "missing or null"),
        (Range("tags", gte=1), "list-valued payload field 'tags'"),
        (Match("initial", "a\nb"), "line breaks"),
        (Filter(must_not=[Match("a/b", "x")]), "'a/b'"),
    ]:
        with pytest.raises(UnsupportedFilterError, match=named):
            sci_milvus.search(queries, 5, params=SearchParams(filter=flt))


def _vectors(rows: list[dict[int, float]], dim: int = 8) -> SparseVectors:
    return SparseVectors.from_dicts(rows, dim=dim)


def test_ids_payloads_upserts_deletes_and_reopening(tmp_path):
    uri = f"milvus://{tmp_path}/small.db/docs"
    docs = _vectors([{0: 1.0, 3: 0.5}, {1: 2.0}, {0: 0.25, 1: 1.0}, {}])
    payloads = [
        {"say": 'quote " and \\ back', "n": 1, "tags": ["x y", "é😀"]},
        None,
        {'key with "quote"': "v", "n": 2.5},
        {"n": 3},
    ]
    backend = open_backend(uri)
    backend.begin(8, None, {})
    backend.upsert([10, 11, 12, 13], docs, payloads)
    backend.finish()
    assert backend.count() == 4  # the empty vector is stored, never found
    query = _vectors([{0: 1.0, 1: 1.0}, {}])
    hits = backend.search(query, 5, params=SearchParams(return_payloads=True))
    assert hits.ids.dtype == np.int64
    assert hits.ids.tolist() == [[11, 12, 10, -1, -1], [-1] * 5]
    np.testing.assert_allclose(hits.scores[0, :3], [2.0, 1.25, 1.0])
    assert hits.payloads[0, :3].tolist() == [None, payloads[2], payloads[0]]
    for flt, want in [
        (Match("say", 'quote " and \\ back'), [10]),
        (Match("tags", "é😀"), [10]),
        (Match('key with "quote"', "v"), [12]),
        (Range("n", gt=2), [12]),
        (Filter(must_not=[Range("n", lt=2)]), [11, 12]),  # a missing field is not in range
    ]:
        found = backend.search(query[:1], 5, params=SearchParams(filter=flt)).row(0)
        assert sorted(doc_id for doc_id, _ in found) == want, flt

    backend.upsert([11], _vectors([{2: 1.0}]), [{"n": 9}])  # replaces id 11
    backend.delete([10, 99, "not an int id"])
    backend.finish()
    assert backend.count() == 3
    assert [d for d, _ in backend.search(query[:1], 5).row(0)] == [12]
    with pytest.raises(InvalidInputError, match="keyed by int ids; got str ids"):
        backend.upsert(["a"], _vectors([{0: 1.0}]))
    backend.close()

    with open_backend(uri) as reopened:  # a new client on the file, its server restarted
        assert reopened.count() == 3
        hits = reopened.search(_vectors([{2: 1.0}]), 2, params=SearchParams(return_payloads=True))
        assert hits.row(0) == [(11, 1.0)] and hits.payloads[0, 0] == {"n": 9}
        with pytest.raises(DimensionMismatchError, match="8-dim"):
            reopened.search(_vectors([{0: 1.0}], dim=9), 2)


def test_str_ids_round_trip(tmp_path):
    with MilvusBackend("docs", uri=str(tmp_path / "s.db")) as backend:
        backend.begin(4, ["a", "b", "c", "d"], {})
        backend.upsert(["x", "7"], SparseVectors.from_dicts([{0: 1.0}, {0: 2.0}], dim=4))
        hits = backend.search(SparseVectors.from_dicts([{0: 1.0}], dim=4, vocab=list("abcd")), 3)
        assert hits.ids.dtype == object and hits.row(0) == [("7", 2.0), ("x", 1.0)]
        with pytest.raises(VocabularyMismatchError):
            backend.search(SparseVectors.from_dicts([{0: 1.0}], dim=4, vocab=list("wxyz")), 3)


def test_clear_errors(tmp_path):
    for uri, message in [
        ("milvus://nohost/docs", "Milvus Lite file"),
        (f"milvus://{tmp_path}/x.db", "name the collection after the .db file"),
        (f"milvus://{tmp_path}/x.db/docs?shards=2", "unknown parameters \\['shards'\\]"),
        (f"milvus+https://{tmp_path}/x.db/docs", "no \\+https"),
        (f"milvus://{tmp_path}/x.db/bad-name", "not a Milvus collection name"),
        (f"milvus://{tmp_path}/x.db/docs?index=hnsw", "index must be one of"),
    ]:
        with pytest.raises(InvalidInputError, match=message):
            open_backend(uri)
    with MilvusBackend("docs", uri=str(tmp_path / "e.db")) as backend:
        with pytest.raises(InvalidInputError, match="call begin"):
            backend.upsert([1], _vectors([{0: 1.0}]))
        with pytest.raises(InvalidInputError, match="1..4294967294 dims"):
            backend.begin(2**32, None, {})
        backend.begin(8, None, {})
        with pytest.raises(DimensionMismatchError):
            backend.upsert([1], _vectors([{0: 1.0}], dim=9))
        with pytest.raises(InvalidInputError, match="non-negative"):
            backend.upsert([1], _vectors([{0: -1.0}]))
        with pytest.raises(BackendError, match="does not exist"):
            backend.search(_vectors([{0: 1.0}]), 3)
        backend.upsert([1], _vectors([{0: 1.0}]))
        with pytest.raises(InvalidInputError, match="at most 16,384 hits"):
            backend.search(_vectors([{0: 1.0}]), 16_385)
    with MilvusBackend("docs", uri=str(tmp_path / "e.db")) as reopened:
        with pytest.raises(DimensionMismatchError, match="8-dim"):
            reopened.begin(9, None, {})
    with MilvusBackend("docs", uri=str(tmp_path / "e.db"), recreate=True) as again:
        again.begin(9, None, {})  # recreate drops the 8-dim collection
        assert again.count() == 0


class FlakyMilvus(MilvusBackend):
    """Fails its first engine writes with Milvus's rate-limit error, as a busy server does."""

    failures = 2
    retry_delay = 0.0

    def _upsert(self, rows):
        if self.failures:
            self.failures -= 1
            raise MilvusException(code=8, message="rate limit exceeded[rate=0.1]")
        super()._upsert(rows)


def test_transient_errors_are_retried_and_the_batch_lands_once(tmp_path):
    with FlakyMilvus("docs", uri=str(tmp_path / "r.db")) as backend:
        backend.begin(8, None, {})
        backend.upsert([1, 2, 3], _vectors([{0: 1.0}, {1: 1.0}, {2: 1.0}]))
        backend.finish()
        assert backend.failures == 0 and backend.count() == 3
        assert not backend.is_transient(MilvusException(code=1100, message="invalid parameter"))
        backend.failures = 9
        with pytest.raises(BackendError, match="rate limit exceeded"):
            backend.upsert([4], _vectors([{3: 1.0}]))
        assert backend.failures == 9 - 1 - backend.retries
