"""Qdrant through qdrant-client's local mode and Qdrant Edge (the Rust engine in-process): SciFact's
splade-tiny vectors in, the same top-10 as our exact engine, the same filtered results, deletes,
ids, payloads, IDF, errors and retries. Every test runs on both engines unless it is about one."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import numpy as np
import pytest
from qdrant_client import QdrantClient, models
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

from sparsearch import SearchParams, SparseVectors
from sparsearch.backends import Backend, export, open_backend
from sparsearch.backends.qdrant import QdrantBackend
from sparsearch.backends.qdrant_edge import QdrantEdgeBackend
from sparsearch.errors import (
    BackendError,
    DimensionMismatchError,
    InvalidInputError,
    UnsupportedFilterError,
)
from sparsearch.filters import Filter, HasId, IsNull, Match, Range
from sparsearch.index import SparseIndex

pytestmark = pytest.mark.real_model
ENGINES = ["qdrant", "qdrant-edge"]
TOL = 1e-4


def engine_uri(engine: str, folder: Path) -> str:
    """The URI of a collection of ``engine`` in ``folder`` (local mode for the client)."""
    return f"qdrant:{folder}/docs" if engine == "qdrant" else f"qdrant-edge:{folder}"


def open_engine(engine: str, folder: Path, **options) -> Backend:
    """A backend of ``engine`` in ``folder``, opened by URI."""
    return open_backend(engine_uri(engine, folder), **options)


def assert_same_top(hits, index: SparseIndex, queries: SparseVectors, k: int, flt=None) -> None:
    """``hits`` are our exact top-``k`` modulo ties: the same scores (within float tolerance),
    the same ids above the last score, and ids at the last score among the exact engine's
    documents of that score."""
    want = index.search(queries, k, params=SearchParams(filter=flt))
    wide = index.search(queries, k + 50, params=SearchParams(filter=flt))
    for i in range(len(want)):
        got, exact = hits.row(i), want.row(i)
        np.testing.assert_allclose(
            [s for _, s in got], [s for _, s in exact], rtol=TOL, atol=TOL, err_msg=f"query {i}"
        )
        if not exact:
            continue
        last = exact[-1][1]
        above = {d for d, s in got if s > last + TOL}
        assert above == {d for d, s in exact if s > last + TOL}, f"query {i}"
        tied = {d for d, s in wide.row(i) if abs(s - last) <= TOL}
        assert {d for d, s in got if abs(s - last) <= TOL} <= tied, f"query {i}"


def vectors(rows: list[dict[int, float]], dim: int = 50, vocab=None) -> SparseVectors:
    """Sparse vectors from ``{dimension: weight}`` rows."""
    indptr = np.cumsum([0] + [len(r) for r in rows])
    indices = np.array([i for r in rows for i in sorted(r)], np.int32)
    values = np.array([r[i] for r in rows for i in sorted(r)], np.float32)
    return SparseVectors(indptr, indices, values, dim, vocab)


@pytest.fixture(scope="module", params=ENGINES)
def scifact_engine(request, scifact_index, tmp_path_factory):
    """All of SciFact exported into the engine: edge by URI (then reopened), the client's local
    mode in memory (writing it to a folder costs one sqlite commit per document)."""
    if request.param == "qdrant":
        backend = QdrantBackend("scifact", path=":memory:")
        report = export(scifact_index, backend, progress=False)
    else:
        uri = f"qdrant-edge:{tmp_path_factory.mktemp('edge')}"
        report = export(scifact_index, uri, progress=False)
        backend = open_backend(uri)
    assert report.documents == len(scifact_index)
    yield backend
    backend.close()


def some_queries(backend: Backend, queries: SparseVectors, edge: int, local: int) -> SparseVectors:
    """``edge`` queries for Qdrant Edge, ``local`` for local mode, which scores every document
    in Python (about a second per query on SciFact)."""
    return queries[: edge if isinstance(backend, QdrantEdgeBackend) else local]


# ---------------------------------------------------------------------- SciFact


def test_scifact_top10_equals_the_exact_engine(scifact_engine, scifact_index, scifact_encoded):
    queries = some_queries(scifact_engine, scifact_encoded.queries, 300, 8)
    hits = scifact_engine.search(queries, 10)
    assert scifact_engine.count() == len(scifact_encoded.doc_ids) == 5183
    assert hits.ids.dtype == object and isinstance(hits.ids[0, 0], str)  # SciFact ids are str
    assert hits.payloads is None
    assert_same_top(hits, scifact_index, queries, 10)


FILTERS = {
    "keyword": Match("initial", "a"),
    "keyword any": Match("initial", any=["b", "c", "d"]),
    "integer": Match("title_words", 7),
    "integer range": Range("title_words", gte=5, lt=12),
    "float range": Range("id_mod", gt=3.5),
    "float range, int bound": Range("id_mod", lte=2),
    "boolean": Match("even", True),
    "boolean any": Match("even", any=[False]),
    "list field": Match("tags", "cell"),
    "list field any": Match("tags", any=["human", "role"]),
    "has id": HasId(["21287352", "1292369", "3790895", "25186412", "13734012", "not-an-id"]),
    "must_not": Filter(must_not=[Match("initial", "t")]),
    "should": Filter(should=[Match("initial", "a"), Range("title_words", gt=15)]),
    "nested": Filter(
        must=[Filter(should=[Match("even", False), Match("tags", any=["cell", "cells"])])],
        must_not=[Range("id_mod", lt=1)],
    ),
    "is null": IsNull("title_words"),
    "not null": Filter(must=[Match("initial", "c")], must_not=[IsNull("tags")]),
    "legacy ids and payload": Filter(
        ids=["8570690", "9730755", "5649538", "2739854"], payload={"even": True}
    ),
}


@pytest.mark.parametrize("name", FILTERS)
def test_filters_give_the_exact_engines_results(
    name, scifact_engine, scifact_index, scifact_encoded
):
    queries = some_queries(scifact_engine, scifact_encoded.queries, 25, 1)
    flt = FILTERS[name]
    hits = scifact_engine.search(queries, 10, params=SearchParams(filter=flt))
    assert_same_top(hits, scifact_index, queries, 10, flt)


def test_filters_that_qdrant_cannot_express_are_refused(scifact_engine, scifact_encoded):
    for flt in (Match('say "hi"', "x"), Filter(should=[Range("back\\slash", gt=1)])):
        with pytest.raises(UnsupportedFilterError, match="can't name a field"):
            scifact_engine.search(scifact_encoded.queries[:1], params=SearchParams(filter=flt))


# ---------------------------------------------------------------------- small collections

DOCS = [{1: 1.0, 2: 0.5}, {2: 2.0}, {1: 0.25, 3: 1.0}, {4: 1.0}, {1: 3.0, 4: 0.5}]


@pytest.mark.parametrize("engine", ENGINES)
def test_deletes_never_come_back_and_upserts_replace(engine, tmp_path, scifact_encoded):
    enc = scifact_encoded
    ids, docs, payloads = enc.doc_ids[:300], enc.docs[:300], enc.payloads[:300]
    ours = SparseIndex()
    ours.add(ids, docs, payloads)
    with open_engine(engine, tmp_path) as backend:
        backend.begin(docs.dim, docs.vocab, {"even": {"boolean"}})
        assert backend.upsert(ids, docs, payloads, batch_size=128) == 300
        backend.finish()
        queries = enc.queries[:20]
        gone = sorted({d for d in backend.search(queries, 1).ids[:, 0] if d is not None})
        backend.delete([*gone, "never-stored"])
        ours.delete(gone)
        assert backend.count() == 300 - len(gone)
        hits = backend.search(queries, 10)
        assert not set(gone) & set(hits.ids.ravel().tolist())
        assert_same_top(hits, ours, queries, 10)

        # upsert replaces: a new vector and payload for a stored id, the count unchanged
        replaced = ids[0]
        backend.upsert([replaced], vectors([{7: 5.0}], docs.dim, docs.vocab), [{"v": 2}])
        assert backend.count() == 300 - len(gone)
        hits = backend.search(
            vectors([{7: 1.0}], docs.dim), 3, params=SearchParams(return_payloads=True)
        )
        assert hits.row(0)[0] == (replaced, 5.0)
        assert hits.payloads[0, 0] == {"v": 2}


@pytest.mark.parametrize("engine", ENGINES)
def test_ids_and_payloads_round_trip_with_their_types(engine, tmp_path):
    payloads = [
        {"lang": "en", "year": 2020, "score": 0.5, "ok": True, "tags": ["a", "b"]},
        {"nested": {"a": [1, 2], "b": None}, "tags": []},
        None,
        {"u.s.": "dotted", "": "empty key"},
        {"x": -7},
    ]
    ids = [3, "doc-3", 2**63 - 1, "7", 0]
    with open_engine(engine, tmp_path) as backend:
        backend.begin(50, None, {})
        backend.upsert(ids, vectors(DOCS), payloads)
        backend.finish()
        hits = backend.search(
            vectors([{1: 1.0, 2: 1.0, 3: 1.0, 4: 1.0}]),
            5,  # every document
            params=SearchParams(return_payloads=True),
        )
        got = {
            doc_id: payload for doc_id, payload in zip(hits.ids[0], hits.payloads[0], strict=True)
        }
        assert got == dict(zip(ids, payloads, strict=True))
        assert {(i, type(i)) for i in got} == {(i, type(i)) for i in ids}  # 3 int, "7" str
        int_only = backend.search(
            vectors([{1: 1.0}]), 3, params=SearchParams(filter=HasId([3, 2**63 - 1, "7"]))
        )
        assert int_only.ids.dtype == np.int64 and int_only.ids[0].tolist() == [3, 2**63 - 1, -1]
        assert int_only.scores[0, :2].tolist() == [1.0, 0.25] and np.isneginf(int_only.scores[0, 2])


@pytest.mark.parametrize("engine", ENGINES)
def test_is_null_means_missing_or_null_not_an_empty_list(engine, tmp_path):
    payloads = [{"f": None}, {}, {"f": []}, {"f": ["x"]}, {"f": "y"}]
    query = vectors([{1: 1.0, 2: 1.0, 3: 1.0, 4: 1.0}])
    ours = SparseIndex()
    ours.add(list(range(5)), vectors(DOCS), payloads)
    with open_engine(engine, tmp_path) as backend:
        backend.begin(50, None, {})
        backend.upsert(list(range(5)), vectors(DOCS), payloads)
        for flt in (IsNull("f"), Filter(must_not=[IsNull("f")]), Match("f", any=["x", "y"])):
            hits = backend.search(query, 5, params=SearchParams(filter=flt))
            assert_same_top(hits, ours, query, 5, flt)
        assert sorted(backend.search(query, 5, params=SearchParams(filter=IsNull("f"))).row(0)) == [
            (0, 1.5),
            (1, 2.0),
        ]


@pytest.mark.parametrize("engine", ENGINES)
def test_any_dimension_and_any_token_names_work(engine, tmp_path):
    dim = 1 << 24
    vocab = None
    rows = [{0: 1.0, dim - 1: 2.0}, {12345: 1.0}]
    with open_engine(engine, tmp_path) as backend:
        backend.begin(dim, vocab, {})
        backend.upsert(["a", "b"], vectors(rows, dim), None)
        assert backend.search(vectors([{dim - 1: 1.0}], dim), 2).row(0) == [("a", 2.0)]
    tokens = ["u.s.", "", "%", "##ing", "a b"]
    with open_engine(engine, tmp_path / "named", recreate=True) as backend:
        backend.begin(5, tokens, {})
        backend.upsert([1], vectors([{0: 1.0, 1: 2.0, 4: 3.0}], 5, tokens), None)
        assert backend.search(vectors([{1: 1.0, 4: 1.0}], 5, tokens), 1).row(0) == [(1, 5.0)]


@pytest.mark.parametrize("engine", ENGINES)
def test_idf_modifier_is_created_and_scales_scores(engine, tmp_path):
    docs = vectors(DOCS)
    with open_engine(engine, tmp_path, idf=True) as backend:
        backend.begin(50, None, {})
        backend.upsert(list(range(5)), docs)
        if engine == "qdrant":
            info = backend.client.get_collection("docs")
            assert info.config.params.sparse_vectors["sparse"].modifier == models.Modifier.IDF
        else:
            config = json.loads((tmp_path / "edge_config.json").read_text())
            assert config["sparse_vectors"]["sparse"]["modifier"] == "idf"
        # one query term: each score is weight * IDF(term), the same factor for every document
        hits = backend.search(vectors([{1: 1.0}]), 5)
        plain = {0: 1.0, 2: 0.25, 4: 3.0}
        ratios = {doc_id: score / plain[doc_id] for doc_id, score in hits.row(0)}
        assert set(ratios) == set(plain)
        assert np.ptp(list(ratios.values())) < 1e-5 and abs(ratios[0] - 1.0) > 0.01
    # reusing it without idf fails: our check on the client, the engine's own on the edge
    error, message = (
        (InvalidInputError, "idf=True, not idf=False")
        if engine == "qdrant"
        else (BackendError, "incompatible .* modifier None, but got Some\\(Idf\\)")
    )
    with pytest.raises(error, match=message):
        with open_engine(engine, tmp_path) as backend:
            backend.begin(50, None, {})


@pytest.mark.parametrize("engine", ENGINES)
def test_export_by_uri_then_reuse_keeps_documents_and_recreate_drops_them(engine, tmp_path):
    small = SparseIndex()
    small.add([1, 2], vectors(DOCS[:2]), [{"lang": "en"}, None])
    assert export(small, engine_uri(engine, tmp_path), progress=False).documents == 2
    with open_engine(engine, tmp_path) as backend:
        assert backend.count() == 2  # reopened without begin
        backend.begin(50, None, {"lang": {"keyword"}})  # the same dim: reused
        assert backend.count() == 2
    with open_engine(engine, tmp_path, recreate=True) as backend:
        backend.begin(50, None, {})
        assert backend.count() == 0


class RecordingClient(QdrantClient):
    """A real in-memory client that notes the payload indexes asked for (local mode keeps no
    record of them)."""

    def __init__(self) -> None:
        super().__init__(":memory:")
        self.indexes: dict[str, str] = {}

    def create_payload_index(self, collection_name, field_name, field_schema=None, **kwargs):
        self.indexes[field_name] = str(field_schema.value)
        return super().create_payload_index(collection_name, field_name, field_schema, **kwargs)


@pytest.mark.parametrize("engine", ENGINES)
def test_each_filterable_field_gets_a_payload_index(engine, tmp_path):
    fields = {
        "lang": {"keyword"},
        "n": {"integer"},
        "x": {"float"},
        "ok": {"boolean"},
        "u.s.": {"keyword"},
        "j": {"json"},  # objects: not filterable
        "mixed": {"integer", "keyword"},  # no one index type fits
        'say "hi"': {"keyword"},  # Qdrant can't name it
    }
    if engine == "qdrant":
        client = RecordingClient()
        QdrantBackend("docs", client=client).begin(50, None, fields)
        indexes = client.indexes
    else:
        with QdrantEdgeBackend(tmp_path) as edge:
            edge.begin(50, None, fields)
            schema = edge.shard.info().payload_schema
            indexes = {
                name: repr(info.data_type).rpartition(".")[2].lower()
                for name, info in schema.items()
            }
    want = {"lang": "keyword", "n": "integer", "x": "float", "ok": "bool", '"u.s."': "keyword"}
    assert indexes == want


# ---------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("qdrant:docs", "name the collection"),
        ("qdrant://localhost:6333/", "name the collection"),
        ("qdrant://localhost/docs", "give the port"),
        ("qdrant+https:runs/docs", "give the port"),
        ("qdrant:runs/docs?idf=maybe", "idf is true or false"),
        ("qdrant:runs/docs?shards=2", r"unknown parameters \['shards'\]"),
        ("qdrant-edge:runs?api_key=x", r"unknown parameters \['api_key'\]"),
        ("qdrant-edge+https:runs", "no TLS"),
    ],
)
def test_bad_uris_are_named_errors(uri, message):
    with pytest.raises(InvalidInputError, match=message):
        open_backend(uri)


def test_uri_options_reach_the_backend(tmp_path):
    backend = open_backend(f"qdrant:{tmp_path}/docs?idf=true&vector_name=v&timeout=5")
    assert (backend.name, backend.idf, backend.vector_name) == ("docs", True, "v")
    backend.close()
    edge = open_backend(f"qdrant-edge:{tmp_path}/edge?recreate=1", idf=True)
    assert (edge.path, edge.recreate, edge.idf) == (tmp_path / "edge", True, True)


@pytest.mark.parametrize("engine", ENGINES)
def test_using_a_collection_before_begin_or_with_another_dim_fails_clearly(engine, tmp_path):
    with open_engine(engine, tmp_path) as backend:
        with pytest.raises(InvalidInputError, match=r"call begin\(\)"):
            backend.search(vectors([{1: 1.0}]))
        with pytest.raises(InvalidInputError, match=r"call begin\(\)"):
            backend.count()
        backend.begin(50, None, {})
        backend.upsert([1], vectors(DOCS[:1]))
        with pytest.raises(DimensionMismatchError, match="dim 60"):
            backend.search(vectors([{1: 1.0}], 60))
        with pytest.raises(InvalidInputError, match="reserved"):
            backend.upsert([2], vectors(DOCS[:1]), [{"_sparsearch_id": "x"}])
    with pytest.raises(DimensionMismatchError, match="holds dim 50, not 60"):
        with open_engine(engine, tmp_path) as backend:
            backend.begin(60, None, {})


def test_a_client_and_a_source_given_together_are_refused():
    with pytest.raises(InvalidInputError, match="exactly one of"):
        QdrantBackend("docs", url="http://localhost:6333", path="x")


def test_engine_failures_are_backend_errors_with_the_engines_message(tmp_path):
    with QdrantBackend("docs", path=str(tmp_path)):
        with pytest.raises(BackendError, match="already accessed by another instance"):
            QdrantBackend("docs", path=str(tmp_path))


# ---------------------------------------------------------------------- retries


class FlakyClient(QdrantClient):
    """A real local-mode client whose first upserts fail the way a dropped connection does."""

    def __init__(self, failures: int, error: Exception) -> None:
        super().__init__(":memory:")
        self.failures, self.error, self.calls = failures, error, 0

    def upsert(self, *args, **kwargs):
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        return super().upsert(*args, **kwargs)


def test_transient_write_failures_are_retried_and_the_batch_lands_once():
    refused = ResponseHandlingException(httpx.ConnectError("connection refused"))
    client = FlakyClient(2, refused)
    backend = QdrantBackend("docs", client=client)
    backend.retry_delay = 0.01
    backend.begin(50, None, {})
    assert backend.upsert(["a", "b", "c"], vectors(DOCS[:3])) == 3
    assert client.calls == 3 and backend.count() == 3


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (UnexpectedResponse(503, "Service Unavailable", b"", httpx.Headers()), True),
        (UnexpectedResponse(429, "Too Many Requests", b"", httpx.Headers()), True),
        (ResponseHandlingException(httpx.ReadTimeout("timed out")), True),
        (UnexpectedResponse(400, "Bad Request", b'{"status":"bad"}', httpx.Headers()), False),
    ],
)
def test_only_transient_errors_are_retried(error, transient):
    client = FlakyClient(1, error)
    backend = QdrantBackend("docs", client=client)
    backend.retry_delay = 0.01
    backend.begin(50, None, {})
    if transient:
        backend.upsert([1], vectors(DOCS[:1]))
        assert client.calls == 2
    else:
        with pytest.raises(BackendError, match="400"):
            backend.upsert([1], vectors(DOCS[:1]))
        assert client.calls == 1
