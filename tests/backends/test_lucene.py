"""What the OpenSearch and Elasticsearch backends share (sparsearch.backends.lucene).

Format-level only: no OpenSearch or Elasticsearch server runs here. Keys, weights and filters are
checked against the engines' documented rules and Lucene's FeatureField encoding; the request flow
goes through the official clients to a loopback server that records the requests and answers with
documented response shapes (it ranks nothing).
"""

from __future__ import annotations

import struct

import numpy as np
import pytest

from sparsearch import SparseVectors
from sparsearch.backends import export, key_token, open_backend
from sparsearch.backends.lucene import (
    EMPTY_LISTS_FIELD,
    INT_ID_FIELD,
    MAX_KEY_BYTES,
    FeatureSpace,
    filter_query,
    parse_hits,
    stored_weights,
)
from sparsearch.errors import (
    BackendError,
    DimensionMismatchError,
    InvalidInputError,
    InvalidVectorsError,
    UnsupportedFilterError,
    VocabularyMismatchError,
)
from sparsearch.filters import Filter, HasId, IsNull, Match, Range
from sparsearch.search import SearchParams
from tests.backends.loopback import Loopback, serve

ENGINES = ["opensearch", "elasticsearch"]
QUERY_CLAUSE = {"opensearch": "neural_sparse", "elasticsearch": "sparse_vector"}
BULK_METHOD = {"opensearch": "POST", "elasticsearch": "PUT"}
VECTOR_TYPE = {"opensearch": "rank_features", "elasticsearch": "sparse_vector"}


def _java_feature_value(value: float) -> float:
    """Lucene's FeatureField round trip, bit for bit: intBitsToFloat((floatToIntBits(v) >>> 15)
    << 15)."""
    bits = struct.unpack("<I", struct.pack("<f", value))[0]
    return struct.unpack("<f", struct.pack("<I", (bits >> 15) << 15))[0]


# ------------------------------------------------------------------------------------ keys


def test_every_token_of_the_vocab_gets_a_distinct_key_the_engines_accept(scifact_encoded):
    vocab = scifact_encoded.docs.vocab
    space = FeatureSpace.of("sparse_embedding", len(vocab), vocab)
    keys = space.keys
    assert len(set(keys)) == len(vocab) == 30522
    assert all(key and "." not in key and len(key.encode()) <= MAX_KEY_BYTES for key in keys)
    assert [key_token(key) for key in keys] == list(vocab)
    assert keys[vocab.index("##ing")] == "##ing" and keys[vocab.index("[CLS]")] == "[CLS]"
    assert keys[vocab.index(".")] == "%2E"


def test_keys_of_awkward_tokens_and_of_vectors_without_vocab():
    vocab = ["", ".", "a.b", "%", "%2E", "##ing", "ING", "ing"]
    keys = FeatureSpace.of("v", len(vocab), vocab).keys
    assert len(set(keys)) == len(vocab) and all(k and "." not in k for k in keys)
    assert [key_token(k) for k in keys] == vocab
    assert FeatureSpace.of("v", 3, None).keys == ["0", "1", "2"]
    with pytest.raises(InvalidInputError, match="32766 bytes"):
        FeatureSpace.of("v", 1, ["x" * (MAX_KEY_BYTES + 1)])
    with pytest.raises(InvalidInputError, match="vector field"):
        FeatureSpace.of("_source", 1, None)


# ------------------------------------------------------------------------------- weights


def test_stored_weights_are_lucenes_feature_field_encoding():
    rng = np.random.default_rng(0)
    values = np.concatenate([rng.uniform(1e-3, 10, 2000), rng.lognormal(0, 4, 2000)])
    values = values.astype(np.float32)
    stored = stored_weights(values)
    assert stored.tolist() == [_java_feature_value(float(v)) for v in values]
    relative = (values - stored) / values
    assert relative.min() >= 0 and relative.max() < 2**-8  # 9 significant bits: < 0.4 %
    assert (stored_weights(stored) == stored).all()
    assert (np.diff(stored_weights(np.sort(values))) >= 0).all()


def test_documents_drop_zeros_and_refuse_negative_or_nan_weights():
    space = FeatureSpace.of("v", 4, ["a", "b", "c", "d"])
    vectors = SparseVectors(
        np.array([0, 3]), np.array([0, 1, 3]), np.array([0.5, 0.0, 1e-40], np.float32), 4
    )
    ((doc_id, source),) = space.documents([7], vectors, [{"lang": "en", "tags": []}])
    assert doc_id == "7"
    assert source == {
        "v": {"a": 0.5},
        "lang": "en",
        "tags": [],
        INT_ID_FIELD: True,
        EMPTY_LISTS_FIELD: ["tags"],
    }
    negative = SparseVectors(np.array([0, 1]), np.array([2]), np.array([-1.0], np.float32), 4)
    with pytest.raises(InvalidInputError, match="'x'.*positive"):
        space.documents(["x"], negative, [None])
    with pytest.raises(InvalidVectorsError):
        SparseVectors(np.array([0, 1]), np.array([2]), np.array([np.nan], np.float32), 4)
    nan = SparseVectors(
        np.array([0, 1]), np.array([2]), np.array([np.nan], np.float32), 4, validate=False
    )
    with pytest.raises(InvalidInputError, match="positive finite"):
        space.documents(["x"], nan, [None])
    with pytest.raises(InvalidInputError, match="reserved"):
        space.documents(["x"], vectors, [{"v": 1}])


def test_lucenes_field_length_limit_bounds_the_features_of_a_document():
    dim = 70_000
    space = FeatureSpace.of("v", dim, None)
    ones = SparseVectors(
        np.array([0, 60_000, 60_000 + dim]),
        np.concatenate([np.arange(60_000), np.arange(dim)]),
        np.ones(60_000 + dim, np.float32),
        dim,
    )
    assert len(space.documents(["fits"], ones[0:1], [None])[0][1]["v"]) == 60_000
    with pytest.raises(InvalidInputError, match="'too-many'.*field length"):
        space.documents(["fits", "too-many"], ones, [None, None])


def test_query_tokens_respect_feature_query_bounds():
    space = FeatureSpace.of("v", 3, ["a", "b", "c"])
    ok = SparseVectors(np.array([0, 2]), np.array([0, 2]), np.array([64.0, 0.0], np.float32), 3)
    assert space.query_tokens(ok, 1024) == [{"a": 64.0}]
    over = SparseVectors(np.array([0, 1]), np.array([1]), np.array([64.5], np.float32), 3)
    with pytest.raises(InvalidInputError, match=r"outside \(0, 64\]"):
        space.query_tokens(over, 1024)
    many = SparseVectors(np.array([0, 3]), np.array([0, 1, 2]), np.ones(3, np.float32), 3)
    with pytest.raises(InvalidInputError, match="max_clauses=2"):
        space.query_tokens(many, 2)
    with pytest.raises(DimensionMismatchError):
        space.query_tokens(SparseVectors.empty(4), 10)


# ------------------------------------------------------------------------------- filters


def _holds(query: dict, doc_id: str, source: dict) -> bool:
    """The documented meaning of the DSL clauses filter_query emits, on one document: term /
    terms / range match when one element of a list does; exists is false for missing, null and
    empty lists; bool filter/should(minimum_should_match)/must_not."""
    ((kind, body),) = query.items()
    if kind == "match_all":
        return True
    if kind == "match_none":
        return False
    if kind == "ids":
        return doc_id in body["values"]
    if kind == "bool":
        ok = all(_holds(q, doc_id, source) for q in body.get("filter", []))
        should = [_holds(q, doc_id, source) for q in body.get("should", [])]
        ok &= sum(should) >= body.get("minimum_should_match", 0)
        return ok and not any(_holds(q, doc_id, source) for q in body.get("must_not", []))
    if kind == "exists":
        value = source.get(body["field"])
        return value is not None and value != []
    ((key, want),) = body.items()
    value = source.get(key)
    values = value if isinstance(value, list) else [] if value is None else [value]
    if kind == "term":
        return any(v == want and type(v) is type(want) for v in values)
    if kind == "terms":
        return any(v in want for v in values)
    if kind == "range":
        ops = {"gt": float.__gt__, "gte": float.__ge__, "lt": float.__lt__, "lte": float.__le__}
        return any(all(ops[op](float(v), float(b)) for op, b in want.items()) for v in values)
    raise AssertionError(kind)


FILTERS = [
    Filter(must=[Match("initial", "a")]),
    Filter(must=[Match("tags", any=["the", "of", "a"]), Range("title_words", gte=8)]),
    Filter(should=[Range("id_mod", lt=1.5), Match("even", True)], must_not=[Match("initial", "t")]),
    Filter(must=[IsNull("tags")]),
    Filter(must_not=[IsNull("tags")], should=[Filter(must=[Range("title_words", gt=12.5)])]),
    Filter(must=[HasId(["4983", "5836", "nope"]), Match("tags", any=[])]),
    Filter(must=[HasId(["4983", "5836", "nope"])]),
]


@pytest.fixture(scope="module")
def filter_corpus(scifact_encoded):
    """400 SciFact documents (some with empty or missing tags, which IsNull tells apart) as
    engine sources, and our exact index over them."""
    from sparsearch.index import SparseIndex

    encoded = scifact_encoded
    ids, vectors = encoded.doc_ids[:400], encoded.docs[:400]
    payloads = [dict(p) for p in encoded.payloads[:400]]
    for p in payloads[::7]:
        p["tags"] = []
    for p in payloads[3::11]:
        del p["tags"]
    space = FeatureSpace.of("v", vectors.dim, vectors.vocab)
    index = SparseIndex()
    index.add(ids, vectors, payloads)
    return space.documents(ids, vectors, payloads), index


@pytest.mark.parametrize("flt", FILTERS, ids=range(len(FILTERS)))
def test_filter_dsl_means_what_sparsearch_filters_mean(filter_corpus, flt):
    docs, index = filter_corpus
    query = filter_query(flt)
    got = [doc_id for doc_id, source in docs if _holds(query, doc_id, source)]
    allowed = set(_allowed(index, flt))
    assert got == [doc_id for doc_id, _ in docs if doc_id in allowed]


def _allowed(index, flt) -> list:
    ones = SparseVectors(
        np.array([0, index.dim]), np.arange(index.dim), np.ones(index.dim), index.dim
    )
    hits = index.search(ones, len(index), params=SearchParams(filter=flt))
    return [doc_id for doc_id, _ in hits.row(0)]


def test_filter_translation_shape_and_refusals():
    flt = Filter(should=[Match("a", 1), IsNull("b")], must_not=[Range("c", gt=2.5)])
    assert filter_query(flt) == {
        "bool": {
            "should": [
                {"term": {"a": 1}},
                {
                    "bool": {
                        "must_not": [
                            {"exists": {"field": "b"}},
                            {"term": {EMPTY_LISTS_FIELD: "b"}},
                        ]
                    }
                },
            ],
            "must_not": [{"range": {"c": {"gt": 2.5}}}],
            "minimum_should_match": 1,
        }
    }
    assert filter_query(Filter()) == {"match_all": {}}
    with pytest.raises(UnsupportedFilterError, match="Match.*'meta'"):
        filter_query(Filter(must=[Filter(must=[Match("meta", "x")])]), {"meta"})


# -------------------------------------------------------------------------------- hits


def test_hits_restore_id_types_and_pad():
    def response(*hits):
        return {"hits": {"hits": [{"_id": i, "_score": s, "_source": src} for i, s, src in hits]}}

    ints = parse_hits(
        [response(("3", 2.5, {INT_ID_FIELD: True}), ("1", 1.0, {INT_ID_FIELD: True})), None],
        3,
        False,
        "x",
    )
    assert ints.ids.dtype == np.int64 and ints.ids.tolist() == [[3, 1, -1], [-1, -1, -1]]
    assert ints.scores.dtype == np.float32 and ints.scores[0, :2].tolist() == [2.5, 1.0]
    mixed = parse_hits(
        [response(("3", 2.0, {INT_ID_FIELD: True}), ("a", 1.0, {"k": 1}))], 2, True, "x"
    )
    assert mixed.ids.tolist() == [[3, "a"]] and mixed.payloads.tolist() == [[None, {"k": 1}]]
    with pytest.raises(BackendError, match="x: search failed.*too_many_clauses"):
        parse_hits([{"error": {"type": "too_many_clauses"}, "status": 400}], 2, False, "x")


def test_every_body_passes_the_official_clients_serializers(scifact_encoded):
    from elasticsearch.serializer import JSONSerializer as ESJSON
    from opensearchpy.serializer import JSONSerializer as OSJSON

    from sparsearch.backends.lucene import index_body, search_body

    space = FeatureSpace.of("v", scifact_encoded.docs.dim, scifact_encoded.docs.vocab)
    fields = {"initial": {"keyword"}, "n": {"integer", "float"}, "j": {"json"}}
    bodies = [index_body(space, "rank_features", fields)]
    bodies += [s for _, s in space.documents([1, "b"], scifact_encoded.docs[:2], [None, None])]
    tokens = space.query_tokens(scifact_encoded.queries[:2], 1024)
    bodies += [search_body({"q": t}, 10, filter_query(FILTERS[2]), "v", True) for t in tokens]
    for serializer in (OSJSON(), ESJSON()):
        for body in bodies:
            assert serializer.loads(serializer.dumps(body)) == body
    assert bodies[0]["mappings"]["properties"]["j"] == {"type": "object", "enabled": False}
    assert bodies[0]["mappings"]["properties"]["n"] == {"type": "double"}


# ------------------------------------------------------------- the flow through each client


@pytest.fixture()
def loopback():
    state = Loopback()
    server, address = serve(state)
    yield state, address
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def small_index(scifact_encoded):
    """Our index over the first 300 SciFact documents (str ids, payloads)."""
    from sparsearch.index import SparseIndex

    index = SparseIndex()
    index.add(*_small(scifact_encoded, 300))
    return index


def _small(encoded, n=50):
    return encoded.doc_ids[:n], encoded.docs[:n], encoded.payloads[:n]


@pytest.mark.parametrize("engine", ENGINES)
def test_export_search_count_delete_through_the_official_client(
    engine, loopback, small_index, scifact_encoded
):
    state, address = loopback
    backend = open_backend(f"{engine}://{address}/scifact", field="emb")
    report = export(small_index, backend, batch_size=120, progress=False)
    assert report.documents == 300
    assert [(r.method, r.path) for r in state.requests] == [
        ("HEAD", "/scifact"),
        ("PUT", "/scifact"),
        *[(BULK_METHOD[engine], "/_bulk")] * 3,  # the _bulk API takes POST or PUT
        ("POST", "/scifact/_refresh"),
    ]
    assert "ndjson" in state.requests[2].headers["content-type"] or engine == "opensearch"
    mapping = state.requests[1].json()["mappings"]
    assert mapping["properties"]["emb"] == {"type": VECTOR_TYPE[engine]}
    assert mapping["properties"]["title_words"] == {"type": "long"}
    assert mapping["_meta"]["sparsearch"]["dim"] == 30522
    bulk = state.requests[2].lines()
    assert bulk[0] == {"index": {"_index": "scifact", "_id": scifact_encoded.doc_ids[0]}}
    assert len(state.docs["scifact"]) == 300

    state.canned = [(scifact_encoded.doc_ids[4], 12.5), (scifact_encoded.doc_ids[9], 3.25)]
    flt = Filter(must=[Match("even", True)])
    hits = backend.search(scifact_encoded.queries[:3], 5, params=SearchParams(filter=flt))
    search = state.requests[-1]
    assert (search.method, search.path) in {
        ("POST", "/scifact/_msearch"),
        ("GET", "/scifact/_msearch"),
    }
    lines = search.lines()
    assert len(lines) == 6 and lines[0] == {}
    body = lines[1]
    assert body["size"] == 5 and body["_source"] == [INT_ID_FIELD]
    assert body["query"]["bool"]["filter"] == [{"bool": {"filter": [{"term": {"even": True}}]}}]
    (clause,) = body["query"]["bool"]["must"]
    assert QUERY_CLAUSE[engine] in clause
    assert hits.ids.dtype == object and hits.row(0) == [
        (scifact_encoded.doc_ids[4], 12.5),
        (scifact_encoded.doc_ids[9], 3.25),
    ]
    assert backend.count() == 300
    backend.delete([scifact_encoded.doc_ids[0], "never-stored"])
    assert state.requests[-1].lines() == [
        {"delete": {"_index": "scifact", "_id": scifact_encoded.doc_ids[0]}},
        {"delete": {"_index": "scifact", "_id": "never-stored"}},
    ]
    assert backend.count() == 299
    backend.close()


@pytest.mark.parametrize("engine", ENGINES)
def test_int_ids_payloads_and_empty_queries(engine, loopback, scifact_encoded):
    state, address = loopback
    ids, docs, payloads = _small(scifact_encoded)
    backend = open_backend(f"{engine}://{address}/ints")
    backend.begin(docs.dim, docs.vocab, {"initial": {"keyword"}, "tags": {"keyword"}})
    backend.upsert(list(range(100, 150)), docs, payloads)
    assert state.docs["ints"]["100"][INT_ID_FIELD] is True
    state.canned = [("107", 4.0), ("100", 2.0)]
    no_tokens = SparseVectors(
        np.array([0, 0]), np.array([], np.int32), np.array([]), docs.dim, docs.vocab
    )
    queries = SparseVectors.concat([scifact_encoded.queries[:1], no_tokens])
    hits = backend.search(queries, 3, params=SearchParams(return_payloads=True))
    assert hits.ids.dtype == np.int64 and hits.ids.tolist() == [[107, 100, -1], [-1, -1, -1]]
    assert hits.payloads[0, 0] == payloads[7]
    assert len(state.requests[-1].lines()) == 2  # the empty query never left
    assert state.requests[-1].lines()[1]["_source"] == {"excludes": ["sparse_embedding"]}


@pytest.mark.parametrize("engine", ENGINES)
def test_an_existing_index_must_hold_the_same_space(engine, loopback, scifact_encoded):
    state, address = loopback
    ids, docs, payloads = _small(scifact_encoded)
    first = open_backend(f"{engine}://{address}/kept")
    first.begin(docs.dim, docs.vocab, {})
    again = open_backend(f"{engine}://{address}/kept")
    again.begin(docs.dim, docs.vocab, {})  # same space: reused
    assert [r.method for r in state.requests[-2:]] == ["HEAD", "GET"]
    with pytest.raises(DimensionMismatchError, match="dim 30522"):
        open_backend(f"{engine}://{address}/kept").begin(8, None, {})
    with pytest.raises(VocabularyMismatchError):
        open_backend(f"{engine}://{address}/kept").begin(docs.dim, ["x"] * docs.dim, {})
    searcher = open_backend(f"{engine}://{address}/kept")  # no begin: the space comes from _meta
    with pytest.raises(DimensionMismatchError):
        searcher.search(SparseVectors.empty(8), 1)
    open_backend(f"{engine}://{address}/kept", recreate=True).begin(8, None, {})
    assert [r.method for r in state.requests[-3:]] == ["HEAD", "DELETE", "PUT"]
    state.mappings["foreign"] = {"properties": {}}
    with pytest.raises(InvalidInputError, match="not written by sparsearch"):
        open_backend(f"{engine}://{address}/foreign").begin(8, None, {})


@pytest.mark.parametrize("engine", ENGINES)
def test_engine_errors_are_named_and_429_is_retried(engine, loopback, scifact_encoded):
    state, address = loopback
    ids, docs, payloads = _small(scifact_encoded, 4)
    backend = open_backend(f"{engine}://{address}/errs")
    backend.retry_delay = 0.0
    state.status_failures = [
        ("PUT", 400, {"error": {"type": "mapper_parsing_exception", "reason": "bad mapping"}})
    ]
    with pytest.raises(BackendError, match="create the index failed.*bad mapping"):
        backend.begin(docs.dim, docs.vocab, {})
    backend.begin(docs.dim, docs.vocab, {})
    state.bulk_failures = [(429, "es_rejected_execution_exception")]
    assert backend.upsert(ids, docs, payloads) == 4  # retried once, then stored
    assert len(state.docs["errs"]) == 4
    state.bulk_failures = [(400, "document_parsing_exception")]
    with pytest.raises(BackendError, match="bulk failed for 4 documents.*document_parsing"):
        backend.upsert(ids, docs, payloads)
    closed = open_backend(f"{engine}://127.0.0.1:9/none")  # nothing listens on port 9
    with pytest.raises(BackendError, match="count failed") as err:
        closed.count()
    assert closed.is_transient(err.value)


@pytest.mark.parametrize("engine", ENGINES)
def test_bad_uris(engine):
    with pytest.raises(InvalidInputError, match="host:port"):
        open_backend(f"{engine}:relative/dir/name")
    with pytest.raises(InvalidInputError, match="name the collection"):
        open_backend(f"{engine}://localhost:9200")
    with pytest.raises(InvalidInputError, match="unknown parameters"):
        open_backend(f"{engine}://localhost:9200/x?shards=2")
