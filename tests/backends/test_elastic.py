"""Elasticsearch specifics: the sparse_vector mapping and query, token pruning, the client's
compatibility headers. Format-level only: no Elasticsearch server runs here; requests go through
the official client to a loopback server that records them and answers documented shapes (it
ranks nothing). The shared flow (export, search, count, delete, errors) is in test_lucene.py."""

from __future__ import annotations

import pytest

from sparsearch.backends import open_backend
from sparsearch.backends.elastic import ElasticsearchBackend
from sparsearch.errors import InvalidInputError
from sparsearch.search import Match, SearchParams
from tests.backends.loopback import Loopback, serve


@pytest.fixture()
def server():
    state = Loopback()
    httpd, address = serve(state)
    yield state, address
    httpd.shutdown()
    httpd.server_close()


def _opened(address, encoded, **options):
    backend = open_backend(f"elasticsearch://{address}/sci", **options)
    docs = encoded.docs[:10]
    backend.begin(docs.dim, docs.vocab, {"initial": {"keyword"}})
    backend.upsert(encoded.doc_ids[:10], docs, encoded.payloads[:10])
    return backend


def test_sparse_vector_mapping_query_and_headers(server, scifact_encoded):
    state, address = server
    backend = _opened(address, scifact_encoded)
    create = state.requests[1]
    assert create.json()["mappings"]["properties"]["sparse_embedding"] == {"type": "sparse_vector"}
    assert "compatible-with=9" in create.headers["content-type"]
    state.canned = [(scifact_encoded.doc_ids[2], 7.5)]
    queries = scifact_encoded.queries[:1]
    hits = backend.search(queries, 2, params=SearchParams(filter=Match("initial", "a")))
    search = state.requests[-1]
    assert search.headers["content-type"].startswith("application/vnd.elasticsearch+x-ndjson")
    tokens = {k: v for k, v in queries.to_dicts()[0].items() if v > 0}
    clause = {
        "sparse_vector": {"field": "sparse_embedding", "query_vector": tokens, "prune": False}
    }
    assert search.lines()[1]["query"] == {
        "bool": {"must": [clause], "filter": [{"bool": {"filter": [{"term": {"initial": "a"}}]}}]}
    }
    assert hits.row(0) == [(scifact_encoded.doc_ids[2], 7.5)]


def test_pruning_is_a_knob(server, scifact_encoded):
    state, address = server
    config = {"tokens_freq_ratio_threshold": 5, "tokens_weight_threshold": 0.4}
    backend = _opened(address, scifact_encoded, prune=True, pruning_config=config)
    state.canned = []
    backend.search(scifact_encoded.queries[:1], 3)
    query = state.requests[-1].lines()[1]["query"]["sparse_vector"]
    assert query["prune"] is True and query["pruning_config"] == config
    with pytest.raises(InvalidInputError, match="prune=True"):
        ElasticsearchBackend(index="x", pruning_config=config)
    with pytest.raises(InvalidInputError, match="only"):
        ElasticsearchBackend(index="x", prune=True, pruning_config={"ratio": 1})
