"""Bulk NDJSON export (``bulk:out.ndjson``): a file format, tested for format only (no
OpenSearch or Elasticsearch reads it here). The predicted-recall test computes, from the exported
file and Lucene's FeatureField quantisation, what the engines would score: a prediction, not an
engine's answer."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sparsearch import SparseVectors
from sparsearch.backends import export, key_token, open_target
from sparsearch.backends.bulk import BulkWriter
from sparsearch.backends.lucene import INT_ID_FIELD, predicted_scores
from sparsearch.errors import InvalidInputError
from tests.backends.conftest import exact_top


@pytest.fixture(scope="module")
def exported(scifact_index, tmp_path_factory):
    out = tmp_path_factory.mktemp("bulk") / "out.ndjson"
    report = export(scifact_index, f"bulk:{out}", progress=False)
    print(f"\nbulk export: {report.docs_per_second:,.0f} docs/s")
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    return report, out, lines


def _vectors(lines, field, vocab):
    """The documents' vectors parsed back from bulk lines (ids in file order)."""
    position = {token: i for i, token in enumerate(vocab)}
    ids, indptr, indices, values = [], [0], [], []
    for action, source in zip(lines[::2], lines[1::2], strict=True):
        ids.append(action["index"]["_id"])
        row = sorted((position[key_token(k)], w) for k, w in source[field].items())
        indices += [i for i, _ in row]
        values += [w for _, w in row]
        indptr.append(len(indices))
    return ids, SparseVectors(
        np.array(indptr), np.array(indices), np.array(values), len(vocab), vocab
    )


def test_ndjson_holds_every_document_as_written(exported, scifact_index, scifact_encoded):
    from opensearchpy.helpers import expand_action

    report, out, lines = exported
    assert report.documents == 5183 and len(lines) == 2 * 5183
    mapping = json.loads(out.with_name("out.mapping.json").read_text())
    props = mapping["mappings"]["properties"]
    assert props["sparse_embedding"] == {"type": "rank_features"}
    assert props["tags"] == {"type": "keyword"} and props["even"] == {"type": "boolean"}
    assert (
        mapping["mappings"]["_meta"]["sparsearch"]["vocab_hash"]
        == scifact_encoded.docs.vocab_hash()
    )
    for action, source in zip(lines[::2], lines[1::2], strict=True):  # what the client would send
        meta = action["index"]
        assert expand_action({"_index": "out", "_id": meta["_id"], "_source": source}) == (
            action,
            source,
        )
    ids, vectors = _vectors(lines, "sparse_embedding", scifact_encoded.docs.vocab)
    want = scifact_index.get(ids)
    assert (vectors.indptr == want.indptr).all() and (vectors.indices == want.indices).all()
    assert (vectors.values == want.values).all()  # float32 written exactly (engines quantise)
    payloads = {doc_id: source for doc_id, source in zip(ids, lines[1::2], strict=True)}
    first = scifact_encoded.doc_ids[0]
    assert {
        k: v for k, v in payloads[first].items() if k != "sparse_embedding"
    } == scifact_encoded.payloads[0]


def test_predicted_engine_recall_at_10(exported, scifact_index, scifact_encoded):
    _, _, lines = exported
    ids, vectors = _vectors(lines, "sparse_embedding", scifact_encoded.docs.vocab)
    queries = scifact_encoded.queries
    predicted = predicted_scores(queries, vectors)  # query weight x 9-bit stored weight
    exact = queries.dot(vectors)
    relative = np.abs(predicted - exact) / np.maximum(exact, 1e-9)
    assert relative.max() < 2**-8  # each stored weight within 0.4 %: so is every score
    order = np.argsort(-predicted, axis=1, kind="stable")[:, :10]
    top = [[ids[j] for j in row] for row in order]
    want = exact_top(scifact_index, queries, 10)
    recall = float(np.mean([len(set(t) & set(w)) / 10 for t, w in zip(top, want, strict=True)]))
    print(f"\npredicted OpenSearch/Elasticsearch recall@10 vs exact: {recall:.4f}")
    assert recall >= 0.98


def test_int_ids_flavor_and_atomic_output(tmp_path):
    vectors = SparseVectors.from_dense(
        np.array([[1.0, 0.0, 2.0], [0.0, 0.5, 0.0]]), ["a", "b.c", ""]
    )
    writer = BulkWriter(tmp_path / "es.ndjson", flavor="elasticsearch", index="docs", field="v")
    writer.begin(3, vectors.vocab, {})
    writer.write([1, 2], vectors, [None, None])
    assert not (tmp_path / "es.ndjson").exists()  # nothing visible before finish
    writer.finish()
    lines = [json.loads(line) for line in (tmp_path / "es.ndjson").read_text().splitlines()]
    assert lines == [
        {"index": {"_index": "docs", "_id": "1"}},
        {"v": {"a": 1.0, "%_": 2.0}, INT_ID_FIELD: True},
        {"index": {"_index": "docs", "_id": "2"}},
        {"v": {"b%2Ec": 0.5}, INT_ID_FIELD: True},
    ]
    mapping = json.loads((tmp_path / "es.mapping.json").read_text())
    assert mapping["mappings"]["properties"]["v"] == {"type": "sparse_vector"}

    bad = SparseVectors(
        np.array([0, 1]), np.array([0]), np.array([-1.0], np.float32), 3, vectors.vocab
    )
    failing = BulkWriter(tmp_path / "bad.ndjson")
    with pytest.raises(InvalidInputError, match="positive"):
        with failing:
            failing.begin(3, vectors.vocab, {})
            failing.write([1, 2], vectors, [None, None])
            failing.write([3], bad, [None])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["es.mapping.json", "es.ndjson"]


def test_bad_bulk_uris_and_options(tmp_path):
    with pytest.raises(InvalidInputError, match="unknown parameters"):
        open_target(f"bulk:{tmp_path}/x.ndjson?shards=2")
    with pytest.raises(InvalidInputError, match="flavor"):
        BulkWriter(tmp_path / "x.ndjson", flavor="solr")


def test_an_existing_mapping_file_is_not_overwritten_either(tmp_path):
    (tmp_path / "x.mapping.json").write_text("mine")
    with pytest.raises(InvalidInputError, match="x.mapping.json exists"):
        BulkWriter(tmp_path / "x.ndjson")
    assert (tmp_path / "x.mapping.json").read_text() == "mine"
    BulkWriter(tmp_path / "x.ndjson", overwrite=True)  # asked for: allowed
