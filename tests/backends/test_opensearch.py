"""OpenSearch specifics: the neural_sparse query, the two-phase pipeline, inference-free
tokenizer models. Format-level only: no OpenSearch server runs here; requests go through
opensearch-py to a loopback server that records them and answers documented shapes (it ranks
nothing). The shared flow (export, search, count, delete, errors) is in test_lucene.py."""

from __future__ import annotations

import json
import zipfile

import pytest

from sparsearch.backends import open_backend
from sparsearch.backends.opensearch import (
    OpenSearchBackend,
    register_tokenizer_body,
    two_phase_pipeline,
    write_tokenizer_model,
)
from sparsearch.errors import InvalidInputError
from tests.backends.loopback import Loopback, serve
from tests.conftest import SHARED


@pytest.fixture()
def backend(scifact_encoded):
    state = Loopback()
    server, address = serve(state)
    docs = scifact_encoded.docs[:20]
    opened = open_backend(f"opensearch://{address}/sci?field=passage_embedding")
    opened.begin(docs.dim, docs.vocab, {})
    opened.upsert(scifact_encoded.doc_ids[:20], docs)
    yield opened, state
    server.shutdown()
    server.server_close()


def test_neural_sparse_query_tokens(backend, scifact_encoded):
    opened, state = backend
    queries = scifact_encoded.queries[:2]
    state.canned = [(scifact_encoded.doc_ids[3], 9.0)]
    hits = opened.search(queries, 4)
    body = state.requests[-1].lines()[1]
    tokens = {k: v for k, v in queries.to_dicts()[0].items() if v > 0}
    assert body["query"] == {"neural_sparse": {"passage_embedding": {"query_tokens": tokens}}}
    assert hits.row(0) == [(scifact_encoded.doc_ids[3], 9.0)]


def test_two_phase_pipeline_becomes_the_index_default(backend):
    opened, state = backend
    body = opened.use_two_phase(prune_ratio=0.3, expansion_rate=8.0)
    put_pipeline, put_settings = state.requests[-2:]
    assert (put_pipeline.method, put_pipeline.path) == (
        "PUT",
        "/_search/pipeline/sparsearch-two-phase",
    )
    assert put_pipeline.json() == body
    processor = body["request_processors"][0]["neural_sparse_two_phase_processor"]
    assert processor["two_phase_parameter"] == {
        "prune_ratio": 0.3,
        "expansion_rate": 8.0,
        "max_window_size": 10000,
    }
    assert (put_settings.method, put_settings.path) == ("PUT", "/sci/_settings")
    assert put_settings.json() == {"index.search.default_pipeline": "sparsearch-two-phase"}
    for bad in ({"prune_ratio": 1.5}, {"expansion_rate": 1.0}, {"max_window_size": 50}):
        with pytest.raises(InvalidInputError):
            two_phase_pipeline(**bad)


def test_texts_weighted_by_opensearch(backend, scifact_encoded):
    opened, state = backend
    state.canned = [(scifact_encoded.doc_ids[0], 1.5)]
    opened.search_texts(["fever and aspirin"], 3, model_id="tok-1")
    assert state.requests[-1].lines()[1]["query"] == {
        "neural_sparse": {
            "passage_embedding": {"query_text": "fever and aspirin", "model_id": "tok-1"}
        }
    }
    opened.search_texts(["fever"], 3, analyzer="bert-uncased")
    assert (
        state.requests[-1].lines()[1]["query"]["neural_sparse"]["passage_embedding"]["analyzer"]
        == "bert-uncased"
    )
    with pytest.raises(InvalidInputError, match="exactly one"):
        opened.search_texts(["x"], model_id="a", analyzer="bert-uncased")


def test_tokenizer_model_weights_queries_like_our_inference_free_encoder(idf_json, tmp_path):
    """OpenSearch's SPARSE_TOKENIZE model: tokenize, decode each distinct id, weight it from
    idf.json (1.0 when missing). Replayed here on the zip we write, it gives our static query
    encoder's weights for the real IDF table."""
    import torch
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    from sparsearch.models import SparseStaticEmbedding

    tokenizer = PreTrainedTokenizerFast(
        tokenizer_file=str(SHARED / "models/opensearch-bert-uncased-idf/tokenizer.json"),
        pad_token="[PAD]",
    )
    static = SparseStaticEmbedding.from_json(idf_json, tokenizer)
    zipped = write_tokenizer_model(static, tmp_path / "tokenizer.zip")
    with zipfile.ZipFile(zipped) as files:
        idf = json.loads(files.read("idf.json"))
        engine_tokenizer = Tokenizer.from_str(files.read("tokenizer.json").decode())
    assert idf == pytest.approx(json.loads(idf_json.read_text()), rel=1e-7)

    texts = ["Aspirin lowers a FEVER.", "microRNA-155 regulates T-cell responses", "naïve café"]
    with torch.no_grad():
        ours = static(static.preprocess(texts))["sentence_embedding"]
    for text, row in zip(texts, ours, strict=True):
        ids = dict.fromkeys(engine_tokenizer.encode(text, add_special_tokens=False).ids)
        tokens = [engine_tokenizer.decode([i], skip_special_tokens=True) for i in ids]
        engine = {t: idf.get(t, 1.0) for t in tokens if t}
        mine = {tokenizer.convert_ids_to_tokens(int(i)): float(row[i]) for i in row.nonzero()}
        assert engine == pytest.approx(mine, rel=1e-6)

    body = register_tokenizer_body(zipped, "scifact-idf", "https://example.org/tokenizer.zip")
    assert body["function_name"] == "SPARSE_TOKENIZE" and body["model_format"] == "TORCH_SCRIPT"
    assert body["model_content_size_in_bytes"] == zipped.stat().st_size
    with pytest.raises(InvalidInputError, match="SparseStaticEmbedding"):
        write_tokenizer_model(torch.nn.Linear(2, 2), tmp_path / "x.zip")


def test_the_client_is_built_from_the_uri():
    backend = open_backend("opensearch+https://search.example:9243/docs", timeout=5)
    assert isinstance(backend, OpenSearchBackend) and backend.index == "docs"
    (host,) = backend.client.transport.hosts
    assert (host["host"], host["port"], host.get("use_ssl") or host.get("scheme")) in {
        ("search.example", 9243, True),
        ("search.example", 9243, "https"),
    }
