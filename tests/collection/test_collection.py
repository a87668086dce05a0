"""The embedded Collection: one folder holding encoders, engine and dense vectors.

Every check compares against an independent computation: the engine searched directly with the
collection's own query vectors, numpy brute force over the dense model's embeddings, the
library's fusion stages, a cross-encoder's own ``predict``. Most tests run on the tiny random
BERT (as SPLADE and, via sentence-transformers, as a mean-pooled dense model); the ones marked
``real_model`` use all-MiniLM-L6-v2 on a slice of SciFact.
"""

from __future__ import annotations

import math
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from sparsearch import Filter, HasId, IsNull, Match, Range, SparseVectors
from sparsearch.collection import Collection, Hit, Point
from sparsearch.errors import (
    CollectionExistsError,
    CollectionNotFoundError,
    DuplicateIdError,
    FilterError,
    InvalidInputError,
    ModelMismatchError,
    SparsearchError,
    UnknownIdError,
)
from sparsearch.hybrid.fusion import RRF, LinearFusion
from sparsearch.run import Run
from tests.conftest import TINY_DOCS, TINY_QUERIES, real_model

IDS = list(TINY_DOCS)
TEXTS = [f"{title}. {text}" for title, text in TINY_DOCS.values()]
#: lang alternates en / fr, year 2000 + i; every fourth document has no payload at all.
PAYLOADS = [
    None if i % 4 == 3 else {"lang": "en" if i % 2 == 0 else "fr", "year": 2000 + i}
    for i in range(len(IDS))
]
SCHEMA = {"lang": "keyword", "year": "integer"}
MINILM = "sentence-transformers/all-MiniLM-L6-v2"


def _hits(hits: list[Hit]) -> list[tuple[object, float]]:
    return [(h.id, h.score) for h in hits]


def _make(path: Path, model, **options) -> Collection:
    col = Collection.create(path, model=model, payload_schema=SCHEMA, **options)
    col.upsert_texts(IDS, TEXTS, payloads=PAYLOADS)
    return col


def _state(col: Collection) -> tuple[int, list[dict]]:
    """Everything a rejected write must leave alone: the count and every stored point."""
    ids = sorted(col.index.ids(), key=str)
    return col.count(), [p.to_dict() for p in col.get(ids)]


def _assert_top_k(hits: list[Hit], truth: dict[object, float], k: int, atol: float) -> None:
    """``hits`` is a correct top ``k`` of ``truth`` ({id: exact score}), whatever near-ties do:
    each score is the document's true score, scores never increase, and no document left out
    scores above the last one returned."""
    assert len(hits) == min(k, len(truth))
    for hit in hits:
        assert hit.score == pytest.approx(truth[hit.id], abs=atol), hit.id
    scores = [h.score for h in hits]
    assert scores == sorted(scores, reverse=True)
    returned = {h.id for h in hits}
    left_out = [score for doc_id, score in truth.items() if doc_id not in returned]
    assert max(left_out, default=-math.inf) <= scores[-1] + atol


def _brute_force(queries: np.ndarray, docs: np.ndarray, ids: list) -> list[dict[object, float]]:
    scores = queries.astype(np.float64) @ docs.astype(np.float64).T
    return [dict(zip(ids, row.tolist(), strict=True)) for row in scores]


def _run(hits: list[Hit]) -> Run:
    return Run.from_dict({0: {h.id: h.score for h in hits}})


# ---------------------------------------------------------------------------- fixtures
@pytest.fixture()
def col(tmp_path, tiny_model_dir):
    """The tiny documents in a collection of the tiny SPLADE model (by folder), with a schema."""
    collection = _make(tmp_path / "col", str(tiny_model_dir))
    yield collection
    collection.close()


@pytest.fixture(scope="module")
def ro_col(tmp_path_factory, tiny_model_dir):
    """The same collection, shared by the tests that only read it."""
    collection = _make(tmp_path_factory.mktemp("read-only") / "col", str(tiny_model_dir))
    yield collection
    collection.close()


@pytest.fixture(scope="module")
def tiny_dense(tiny_model_dir):
    """A real sentence-transformers model (mean pooling, cosine) over the tiny random BERT."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer

    word = Transformer(str(tiny_model_dir))
    pooling = Pooling(word.get_embedding_dimension(), "mean")
    return SentenceTransformer(modules=[word, pooling], device="cpu")


@pytest.fixture(scope="module")
def tiny_cross_encoder(tiny_model_dir):
    """A real CrossEncoder on the tiny random BERT (its one-logit head randomly initialised)."""
    from sentence_transformers import CrossEncoder

    torch.manual_seed(0)
    return CrossEncoder(str(tiny_model_dir), num_labels=1, device="cpu")


@pytest.fixture()
def hybrid_col(tmp_path, tiny_model_dir, tiny_dense):
    collection = _make(tmp_path / "hybrid", str(tiny_model_dir), dense_model=tiny_dense)
    yield collection
    collection.close()


# ---------------------------------------------------------------------------- 1. lifecycle
def test_create_get_info_and_reopen_without_flush(tmp_path, tiny_model_dir, tiny_splade):
    path = tmp_path / "col"
    col = _make(path, str(tiny_model_dir))
    assert col.count() == len(IDS)
    assert repr(col) == f"Collection({str(path)!r}, {len(IDS)} documents)"

    points = col.get(IDS)
    assert [p.id for p in points] == IDS
    expected_vectors = tiny_splade.encode_document(TEXTS).to_dicts(tiny_splade.vocab)
    for point, text, payload, vector in zip(points, TEXTS, PAYLOADS, expected_vectors, strict=True):
        assert isinstance(point, Point)
        assert point.text == text
        assert point.payload == payload  # the reserved "_sparsearch" entry never shows
        assert point.vector == pytest.approx(vector, rel=1e-6)
        assert Point.from_dict(point.to_dict()) == point

    info = col.info()
    assert info["documents"] == len(IDS)
    assert info["dim"] == tiny_splade.dim == len(tiny_splade.vocab)
    assert info["payload_fields"] == {"lang": ["keyword"], "year": ["integer"]}
    assert info["config"]["sparse"]["source"] == str(tiny_model_dir)
    assert info["config"]["payload_schema"] == SCHEMA
    assert info["config"]["dense"] is None
    before = {q: _hits(col.search(q, k=5)) for q in TINY_QUERIES[:4]}
    col.close()  # no flush: the writes are only in the write-ahead log

    col = Collection.open(path)
    assert col.count() == len(IDS)
    assert [p.to_dict() for p in col.get(IDS)] == [p.to_dict() for p in points]
    assert {q: _hits(col.search(q, k=5)) for q in TINY_QUERIES[:4]} == before
    col.delete(["d0", "d1"])
    col.upsert_texts(
        ["d2", "new"], ["Fresh text about rain.", "Snow and ice."], [{"lang": "de"}, None]
    )
    col.close()  # again no flush

    with Collection.open(path) as col:  # the second open replays both sessions' log records
        assert col.count() == len(IDS) - 2 + 1
        assert "d0" not in col.index and "d1" not in col.index
        d2, new = col.get(["d2", "new"])
        assert (d2.text, d2.payload) == ("Fresh text about rain.", {"lang": "de"})
        assert (new.text, new.payload) == ("Snow and ice.", None)
        assert all(h.id not in ("d0", "d1") for h in col.search("what lowers a fever", k=20))
        with pytest.raises(UnknownIdError):
            col.get(["d0"])


def test_writes_survive_a_process_that_dies_without_close(tmp_path, tiny_model_dir):
    path = tmp_path / "crash"
    script = textwrap.dedent(
        """
        import os, sys
        from sparsearch.collection import Collection
        col = Collection.create(sys.argv[1], model=sys.argv[2])
        col.upsert_texts(["a", "b"], ["The heart pumps blood.", "Snow is frozen water."],
                         payloads=[{"n": 1}, None])
        col.delete(["b"])
        col.add_texts(["Coffee keeps people awake."], ids=["c"])
        os._exit(0)  # no flush, no close: only the write-ahead log holds the writes
        """
    )
    subprocess.run(
        [sys.executable, "-c", script, str(path), str(tiny_model_dir)], check=True, timeout=120
    )
    with Collection.open(path) as col:
        assert col.count() == 2
        a, c = col.get(["a", "c"])
        assert (a.text, a.payload, c.text) == (
            "The heart pumps blood.",
            {"n": 1},
            "Coffee keeps people awake.",
        )
        assert "b" not in col.index
        col.upsert_texts(["d"], ["The weather is sunny."])  # the dead writer's lock is gone
        assert col.count() == 3


def test_an_encoder_object_is_saved_inside_and_the_folder_can_move(tmp_path, tiny_inference_free):
    reference = tiny_inference_free
    path = tmp_path / "col"
    col = _make(path, reference)
    assert (path / "models" / "sparse").is_dir()
    assert col.config.sparse.source == "models/sparse"
    queries = TINY_QUERIES[:6]
    # inference-free: queries go through the static route, documents through the MLM
    query_vectors = col.encode_queries(queries)[0]
    assert query_vectors.to_dicts() == reference.encode_query(queries).to_dicts()
    assert col.get(["d3"])[0].vector == pytest.approx(
        reference.encode_document([TEXTS[3]]).to_dicts(reference.vocab)[0], abs=1e-6
    )
    before = [_hits(col.search(q, k=6)) for q in queries]
    assert all(len(b) == 6 for b in before)
    col.close()

    moved = shutil.move(path, tmp_path / "elsewhere")  # the model is named relative to the folder
    with Collection.open(moved) as reopened:
        assert reopened.sparse_model is not reference
        assert [_hits(reopened.search(q, k=6)) for q in queries] == before
        assert reopened.count() == len(IDS)


def test_changed_model_weights_refuse_to_open_unless_forced(tmp_path, tiny_model_dir):
    from sparsearch.models import SparseEncoder

    model_dir = shutil.copytree(tiny_model_dir, tmp_path / "model")
    path = tmp_path / "col"
    _make(path, str(model_dir)).close()
    Collection.open(path).close()  # the same weights: no complaint

    changed = SparseEncoder(model_dir)
    with torch.no_grad():
        next(changed.parameters()).add_(0.01)  # the word embeddings
    changed.save(model_dir)

    with pytest.raises(ModelMismatchError) as err:
        Collection.open(path)
    message = str(err.value)
    assert "sparse model" in message and str(model_dir) in message
    assert "fingerprint" in message and "force=True" in message

    with Collection.open(path, force=True) as col:
        assert col.count() == len(IDS)
        query = col.encode_queries(["capital of france"])[0]
        assert query.to_dicts() == changed.encode_query(["capital of france"]).to_dicts()
        assert len(col.search("capital of france", k=3)) == 3


# ---------------------------------------------------------------------------- 4-5. search
def test_sparse_search_equals_the_engine(ro_col):
    col = ro_col
    for query in TINY_QUERIES[::2]:
        vector = col.encode_queries([query])[0]
        engine = col.index.search(vector, 5)
        hits = col.search(query, k=5, mode="sparse")
        assert [h.id for h in hits] == engine.ids[0].tolist()
        assert [h.score for h in hits] == engine.scores[0].tolist()
        by_id = dict(zip(IDS, PAYLOADS, strict=True))
        assert all(h.payload == by_id[h.id] and h.explanation is None for h in hits)
    bare = col.search(TINY_QUERIES[0], k=5, with_payload=False)
    assert all(h.payload is None for h in bare)
    assert len(col.search(TINY_QUERIES[0], k=1000)) == len(IDS)  # k above the count: all of them


def test_every_query_spelling_gives_the_same_hits(ro_col):
    col = ro_col
    query = "what lowers a fever"
    vector = col.encode_queries([query])[0]
    idx, val = vector.row(0)
    vocab = col.sparse_model.vocab
    expected = _hits(col.search(query, k=8))
    spellings = {
        "tokens": {vocab[i]: float(v) for i, v in zip(idx.tolist(), val.tolist(), strict=True)},
        "indices": {"indices": idx.tolist(), "values": val.tolist()},
        "vectors": vector,
        "built": SparseVectors.from_dicts(
            [dict(zip(idx.tolist(), val.tolist(), strict=True))], dim=col.sparse_model.dim
        ),
    }
    for name, spelling in spellings.items():
        assert _hits(col.search(spelling, k=8)) == expected, name
    # a hand-written query: its scores are the dot products with the stored document vectors
    hand = {"fever": 2.0, "aspirin": 0.5}
    points = {p.id: p.vector for p in col.get(IDS)}
    truth = {d: sum(w * v.get(t, 0.0) for t, w in hand.items()) for d, v in points.items()}
    _assert_top_k(col.search(hand, k=5), truth, 5, atol=1e-5)
    # repeated indices add up, like a dict with the summed weight
    split = {"indices": [idx[0].item(), idx[0].item()], "values": [1.0, 2.0]}
    merged = {"indices": [idx[0].item()], "values": [3.0]}
    assert _hits(col.search(split, k=4)) == _hits(col.search(merged, k=4))


def test_search_batch_equals_one_search_per_query(ro_col):
    col = ro_col
    queries = [TINY_QUERIES[0], {"paris": 1.0}, TINY_QUERIES[5], TINY_QUERIES[11]]
    batch = col.search_batch(
        queries, k=4, filter={"must": [{"key": "lang", "match": {"value": "en"}}]}
    )
    assert len(batch) == len(queries)
    for query, hits in zip(queries, batch, strict=True):
        alone = col.search(query, k=4, filter=Filter(must=[Match("lang", "en")]))
        assert [(h.id, h.payload) for h in hits] == [(h.id, h.payload) for h in alone]
        # texts encoded in one padded batch differ from one-by-one encoding in the last bits
        assert [h.score for h in hits] == pytest.approx([h.score for h in alone], rel=1e-6)
        assert all(h.payload["lang"] == "en" for h in hits)
    assert col.search_batch([], k=3) == []


def test_explain_contributions_sum_to_each_score(ro_col):
    col = ro_col
    for query in [TINY_QUERIES[0], TINY_QUERIES[7], {"fever": 1.0, "snow": 0.5, "paris": 2.0}]:
        vector = col.encode_queries([query])[0] if isinstance(query, str) else None
        query_dict = vector.to_dicts(col.sparse_model.vocab)[0] if vector is not None else query
        hits = col.search(query, k=6, explain=True)
        docs = {p.id: p.vector for p in col.get([h.id for h in hits])}
        assert hits
        for hit in hits:
            sparse = hit.explanation["sparse"]
            total = math.fsum(t["contribution"] for t in sparse["tokens"])
            assert total == pytest.approx(hit.score, rel=1e-5)
            assert sparse["score"] == pytest.approx(total, rel=1e-12)
            contributions = [t["contribution"] for t in sparse["tokens"]]
            assert contributions == sorted(contributions, reverse=True)
            doc = docs[hit.id]
            # every common token is listed, each once, with both weights
            assert {t["token"] for t in sparse["tokens"]} == set(query_dict) & {
                t for t, w in doc.items() if w != 0
            }
            for token in sparse["tokens"]:
                assert token["query_weight"] == pytest.approx(query_dict[token["token"]], rel=1e-6)
                assert token["document_weight"] == pytest.approx(doc[token["token"]], rel=1e-6)
                assert token["contribution"] == pytest.approx(
                    token["query_weight"] * token["document_weight"], rel=1e-6
                )
            assert "dense" not in hit.explanation
            assert Hit.from_dict(hit.to_dict()) == hit


# ---------------------------------------------------------------------------- 6. filters
def test_filters_restrict_sparse_results(ro_col):
    col = ro_col
    query = "what lowers a fever"
    everything = col.search(query, k=len(IDS))
    payload = dict(zip(IDS, PAYLOADS, strict=True))

    def lang(doc_id):
        return (payload[doc_id] or {}).get("lang")

    cases = [  # (filter, which documents it allows)
        ({"must": [{"key": "lang", "match": {"value": "en"}}]}, lambda d: lang(d) == "en"),
        (Filter(must=[Match("lang", "fr")]), lambda d: lang(d) == "fr"),
        (
            Filter(must=[Range("year", gte=2004, lt=2010)]),
            lambda d: payload[d] is not None and 2004 <= payload[d]["year"] < 2010,
        ),
        (
            {"must_not": [{"key": "lang", "match": {"any": ["en", "fr"]}}]},
            lambda d: payload[d] is None,
        ),
        (
            Filter(should=[Match("lang", "en"), HasId(["d1", "d3"])]),
            lambda d: lang(d) == "en" or d in ("d1", "d3"),
        ),
    ]
    for flt, allowed in cases:
        expected = [(h.id, h.score) for h in everything if allowed(h.id)]
        assert expected, flt
        got = col.search(query, k=len(IDS), filter=flt)
        assert _hits(got) == expected, flt
        assert _hits(col.search(query, k=3, filter=flt)) == expected[:3]
    assert col.search(query, k=5, filter=Filter(must=[Match("lang", "xx")])) == []


def test_a_filter_on_an_unknown_field_is_refused(ro_col):
    col = ro_col
    for mode_filter in (
        {"must": [{"key": "colour", "match": {"value": "red"}}]},
        Filter(must=[Match("colour", "red")]),
    ):
        with pytest.raises(FilterError, match="colour"):
            col.search("snow", k=3, filter=mode_filter)


# ---------------------------------------------------------------------------- dense (tiny model)
def test_dense_and_hybrid_search_on_the_tiny_dense_model(hybrid_col, tiny_dense):
    col = hybrid_col
    dense_spec = col.config.dense
    assert dense_spec is not None and dense_spec.normalize and dense_spec.index == "flat"
    assert dense_spec.dim == 32
    docs = tiny_dense.encode_document(TEXTS, normalize_embeddings=True, convert_to_numpy=True)
    queries = TINY_QUERIES[:3]
    query_emb = tiny_dense.encode_query(queries, normalize_embeddings=True, convert_to_numpy=True)
    truths = _brute_force(query_emb, docs, IDS)
    payload = dict(zip(IDS, PAYLOADS, strict=True))
    en = Filter(must=[Match("lang", "en")])

    for query, q_emb, truth in zip(queries, query_emb, truths, strict=True):
        dense = col.search(query, k=5, mode="dense")
        _assert_top_k(dense, truth, 5, atol=1e-5)
        # the query as a dense vector (list or array) searches the same
        assert [h.id for h in col.search(q_emb.tolist(), k=5, mode="dense")] == [
            h.id for h in dense
        ]
        # ...but hybrid (the default here) needs a sparse side, which a dense vector lacks
        for mode in (None, "hybrid", "sparse"):
            with pytest.raises(InvalidInputError, match="mode='dense'"):
                col.search(q_emb, k=5, mode=mode)

        # filters hold in dense mode, and the result is the brute force over the allowed docs
        allowed = {d: s for d, s in truth.items() if (payload[d] or {}).get("lang") == "en"}
        filtered = col.search(query, k=4, mode="dense", filter=en)
        _assert_top_k(filtered, allowed, 4, atol=1e-5)
        qdrant = col.search(
            query, k=4, mode="dense", filter={"must": [{"key": "lang", "match": {"value": "en"}}]}
        )
        assert _hits(qdrant) == _hits(filtered)

        # hybrid (the default) = RRF(60) of the sparse and dense runs at candidates depth
        sparse_vec = col.encode_queries([query])[0]
        depth = 6
        sparse_run = Run.from_hits([0], col.index.search(sparse_vec, depth))
        top = sorted(truth.items(), key=lambda kv: -kv[1])[:depth]
        dense_run = Run.from_dict({0: dict(top)})
        fused = RRF(k=60).fuse([sparse_run, dense_run]).cut(4).row(0)
        hybrid = col.search(query, k=4, candidates=depth)
        assert [h.id for h in hybrid] == [d for d, _ in fused]
        assert [h.score for h in hybrid] == pytest.approx([s for _, s in fused], rel=1e-9)
        linear = LinearFusion().fuse([sparse_run, _run(col.search(query, k=depth, mode="dense"))])
        got = col.search(query, k=4, candidates=depth, fusion="linear")
        expected = linear.cut(4).row(0)
        assert [h.id for h in got] == [d for d, _ in expected]
        assert [h.score for h in got] == pytest.approx([s for _, s in expected], rel=1e-9)

        # hybrid with a filter only returns allowed documents, from both sides
        hybrid_en = col.search(query, k=len(IDS), mode="hybrid", filter=en)
        assert {h.id for h in hybrid_en} == set(allowed)

        # explain in hybrid mode: the sparse part sums to the sparse score, the dense part is
        # the inner product with the document's stored (normalised) embedding
        every = col.index.search(sparse_vec, len(IDS))
        sparse_scores = dict(zip(every.ids[0].tolist(), every.scores[0].tolist(), strict=True))
        for hit in col.search(query, k=3, explain=True):
            assert hit.explanation["sparse"]["score"] == pytest.approx(
                sparse_scores[hit.id], rel=1e-5
            )
            assert hit.explanation["dense"]["score"] == pytest.approx(truth[hit.id], abs=1e-5)

    # deletes are respected by dense search
    top_ids = [col.search(q, k=1, mode="dense")[0].id for q in queries]
    col.delete(sorted(set(top_ids)))
    for query, truth in zip(queries, truths, strict=True):
        remaining = {d: s for d, s in truth.items() if d not in top_ids}
        hits = col.search(query, k=len(IDS), mode="dense")
        assert not {h.id for h in hits} & set(top_ids)
        _assert_top_k(hits, remaining, len(IDS), atol=1e-5)
        assert not {h.id for h in col.search(query, k=len(IDS))} & set(top_ids)


def test_dense_vectors_from_upsert_vectors_and_a_reopened_dense_collection(
    tmp_path, tiny_model_dir, tiny_dense
):
    path = tmp_path / "dense"
    col = Collection.create(path, model=str(tiny_model_dir), dense_model=tiny_dense)
    assert (path / "models" / "dense").is_dir()  # a model object is saved inside
    col.upsert_texts(IDS[:6], TEXTS[:6])
    spike = np.zeros(32, np.float32)
    spike[3] = 5.0
    col.upsert_vectors(
        ["v1", "v2"], [{"fever": 1.0}, {"snow": 1.0}], dense=[spike, -spike], texts=["x y", "y z"]
    )
    col.upsert_vectors(["no-dense"], [{"fever": 9.0}])  # no dense row: never a dense hit
    axis = np.zeros(32, np.float32)
    axis[3] = 1.0
    hits = col.search(axis, k=20, mode="dense")
    assert (hits[0].id, hits[0].score) == ("v1", pytest.approx(5.0))
    assert (hits[-1].id, hits[-1].score) == ("v2", pytest.approx(-5.0))
    assert "no-dense" not in {h.id for h in hits} and len(hits) == 8
    assert col.search({"fever": 1.0}, k=1, mode="sparse")[0].id == "no-dense"
    explained = col.search("what lowers a fever", k=9, explain=True, mode="hybrid")
    by_id = {h.id: h.explanation for h in explained}
    assert "dense" not in by_id.get("no-dense", {})
    before = [_hits(col.search(q, k=5)) for q in TINY_QUERIES[:3]]
    col.close()

    with Collection.open(path) as reopened:
        assert reopened.count() == 9
        assert [_hits(reopened.search(q, k=5)) for q in TINY_QUERIES[:3]] == before
        assert reopened.search(axis, k=1, mode="dense")[0].id == "v1"
        # dense-side input errors
        with pytest.raises(InvalidInputError, match="32"):
            reopened.search(np.ones(7, np.float32), k=3, mode="dense")
        with pytest.raises(InvalidInputError, match=r"\(1, 32\)"):
            reopened.upsert_vectors(["w"], [{"fever": 1.0}], dense=[np.ones(7)])
        with pytest.raises(InvalidInputError, match="finite"):
            reopened.upsert_vectors(["w"], [{"fever": 1.0}], dense=[np.full(32, np.nan)])
        with pytest.raises(InvalidInputError, match="finite"):
            reopened.search(np.full(32, np.inf), k=3, mode="dense")
        assert reopened.count() == 9 and "w" not in reopened.index


def test_int_ids_and_generated_ids(tmp_path, tiny_model_dir, tiny_dense):
    with Collection.create(
        tmp_path / "ints", model=str(tiny_model_dir), dense_model=tiny_dense
    ) as col:
        col.upsert_texts([10, 11, 12], TEXTS[:3], payloads=[{"n": 1}, {"n": 2}, None])
        generated = col.add_texts(TEXTS[3:5])
        assert len(generated) == 2 and len(set(generated)) == 2
        assert all(isinstance(g, str) and g for g in generated)
        assert [p.text for p in col.get(generated)] == TEXTS[3:5]
        assert col.count() == 5
        for mode in ("sparse", "dense", "hybrid"):
            hits = col.search(TINY_QUERIES[0], k=5, mode=mode, explain=True)
            assert {h.id for h in hits} == {10, 11, 12, *generated}, mode
            assert all(type(h.id) in (int, str) for h in hits)  # python ids, never numpy scalars
            filtered = col.search(
                TINY_QUERIES[0], k=5, mode=mode, filter=Filter(must=[Match("n", 2)])
            )
            assert [(h.id, h.payload) for h in filtered] == [(11, {"n": 2})], mode
        col.delete([11])
        assert 11 not in {h.id for h in col.search(TINY_QUERIES[0], k=5, mode="dense")}


# ---------------------------------------------------------------------------- 8. bad input
BAD_WRITES = {
    "empty text": (lambda c: c.upsert_texts(["n"], ["  "]), InvalidInputError, "text 0 is empty"),
    "non-string text": (
        lambda c: c.upsert_texts(["n1", "n2"], ["ok", 5]),
        InvalidInputError,
        "text 1 must be a string",
    ),
    "texts as one string": (
        lambda c: c.upsert_texts(["n"], "abc"),
        InvalidInputError,
        "list of strings",
    ),
    "length mismatch": (
        lambda c: c.upsert_texts(["n1", "n2"], ["one"]),
        InvalidInputError,
        "2 ids for 1 texts",
    ),
    "duplicate ids": (
        lambda c: c.upsert_texts(["n", "m", "n"], ["a", "b", "c"]),
        DuplicateIdError,
        "'n'",
    ),
    "add existing id": (
        lambda c: c.add_texts(["fresh", "again"], ids=["n", "d5"]),
        DuplicateIdError,
        "d5",
    ),
    "schema type": (
        lambda c: c.upsert_texts(
            ["n1", "n2"], ["a", "b"], [{"year": 1}, {"year": "1999"}], write_batch=1
        ),
        InvalidInputError,
        "'year'",
    ),
    "schema array": (
        lambda c: c.add_texts(["a"], ids=["n"], payloads=[{"lang": ["en"]}]),
        InvalidInputError,
        "'lang'",
    ),
    "reserved key": (
        lambda c: c.upsert_texts(
            ["n1", "n2"],
            ["a", "b"],
            [{"lang": "en"}, {"_sparsearch": {"text": "x"}}],
            write_batch=1,
        ),
        InvalidInputError,
        "_sparsearch",
    ),
    "payload not JSON": (
        lambda c: c.upsert_texts(
            ["n1", "n2"], ["a", "b"], [{"x": 1}, {"x": object()}], write_batch=1
        ),
        InvalidInputError,
        "JSON",
    ),
    "payload not an object": (
        lambda c: c.upsert_texts(["n"], ["a"], ["en"]),
        InvalidInputError,
        "payload 0",
    ),
    "payload count": (
        lambda c: c.upsert_texts(["n1", "n2"], ["a", "b"], [None]),
        InvalidInputError,
        "payloads",
    ),
    "bad id": (lambda c: c.upsert_texts([1.5], ["a"]), InvalidInputError, "1.5"),
    "write_batch": (
        lambda c: c.upsert_texts(["n"], ["a"], write_batch=0),
        InvalidInputError,
        "write_batch",
    ),
    "vector token": (
        lambda c: c.upsert_vectors(["n"], [{"zzqqxx": 1.0}]),
        InvalidInputError,
        "zzqqxx",
    ),
    "vector count": (
        lambda c: c.upsert_vectors(["n1", "n2"], [{"fever": 1.0}]),
        InvalidInputError,
        "2 ids for 1",
    ),
    "vectors as one dict": (
        lambda c: c.upsert_vectors(["n"], {"fever": 1.0}),
        InvalidInputError,
        "list of dicts",
    ),
    "vector texts": (
        lambda c: c.upsert_vectors(["n"], [{"fever": 1.0}], texts=["a", "b"]),
        InvalidInputError,
        "1 ids for 2 texts",
    ),
    "dense without model": (
        lambda c: c.upsert_vectors(["n"], [{"fever": 1.0}], dense=[[0.5] * 32]),
        InvalidInputError,
        "no dense model",
    ),
    "delete unknown": (lambda c: c.delete(["d0", "nope"]), UnknownIdError, "nope"),
}


@pytest.mark.parametrize("case", list(BAD_WRITES))
def test_a_rejected_write_names_the_problem_and_changes_nothing(col, case):
    write, error, words = BAD_WRITES[case]
    before = _state(col)
    with pytest.raises(error) as err:
        write(col)
    assert words in str(err.value)
    assert _state(col) == before
    assert "n" not in col.index and "n1" not in col.index
    col.close()
    with Collection.open(col.path) as reopened:  # nothing reached the log either
        assert _state(reopened) == before


BAD_QUERIES = {
    "empty text": (dict(query=""), InvalidInputError, "query 0 is empty"),
    "non-query type": (dict(query=3), InvalidInputError, "query 0 must be"),
    "unknown token": (dict(query={"fever": 1.0, "zzqqxx": 2.0}), InvalidInputError, "zzqqxx"),
    "no tokens": (dict(query={}), InvalidInputError, "at least one token"),
    "indices/values": (
        dict(query={"indices": [1, 2], "values": [1.0]}),
        InvalidInputError,
        "2 indices but 1 values",
    ),
    "index type": (dict(query={"indices": ["a"], "values": [1.0]}), InvalidInputError, "integers"),
    "dense vector": (dict(query=[0.1] * 32), InvalidInputError, "no dense model"),
    "mode dense": (dict(query="fever", mode="dense"), InvalidInputError, "needs a dense model"),
    "mode hybrid": (dict(query="fever", mode="hybrid"), InvalidInputError, "needs a dense model"),
    "mode unknown": (dict(query="fever", mode="lexical"), SparsearchError, "mode"),
    "fusion unknown": (dict(query="fever", fusion="max"), SparsearchError, "fusion"),
    "k zero": (dict(query="fever", k=0), InvalidInputError, "k must be"),
    "k negative": (dict(query="fever", k=-2), InvalidInputError, "k must be"),
    "k text": (dict(query="fever", k="3"), InvalidInputError, "k must be"),
    "candidates": (dict(query="fever", candidates=0), InvalidInputError, "candidates"),
    "explain type": (dict(query="fever", explain="yes"), InvalidInputError, "explain"),
    "rerank vector": (
        dict(query={"fever": 1.0}, rerank="unused"),
        InvalidInputError,
        "rerank needs text",
    ),
    "unknown field": (
        dict(query="fever", filter={"must": [{"key": "nope", "match": {"value": 1}}]}),
        FilterError,
        "nope",
    ),
}


@pytest.mark.parametrize("case", list(BAD_QUERIES))
def test_a_bad_query_names_the_problem(ro_col, case):
    col = ro_col
    arguments, error, words = BAD_QUERIES[case]
    arguments = {"k": 3, **arguments}
    with pytest.raises(error) as err:
        col.search(arguments.pop("query"), **arguments)
    assert words in str(err.value)


def test_a_two_row_query_vector_and_a_string_batch_are_refused(ro_col):
    col = ro_col
    two = col.encode_queries(["fever", "snow"])[0]
    with pytest.raises(InvalidInputError, match="one row"):
        col.search(two, k=3)
    with pytest.raises(InvalidInputError, match="list"):
        col.search_batch("fever", k=3)


def test_create_and_open_refuse_the_wrong_folders(tmp_path, tiny_model_dir, tiny_splade):
    from sparsearch.errors import ConfigError

    path = tmp_path / "col"
    Collection.create(path, model=str(tiny_model_dir)).close()
    with pytest.raises(CollectionExistsError, match="already holds a collection"):
        Collection.create(path, model=str(tiny_model_dir))
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    with pytest.raises(CollectionExistsError, match="not empty"):
        Collection.create(busy, model=str(tiny_model_dir))
    assert sorted(p.name for p in busy.iterdir()) == ["notes.txt"]
    with pytest.raises(CollectionNotFoundError, match="not a collection"):
        Collection.open(tiny_model_dir)  # a model folder is no collection
    with pytest.raises(CollectionNotFoundError):
        Collection.open(tmp_path / "missing")
    # a rejected create leaves the folder usable for the next try
    for options in (
        {"payload_schema": {"year": "date"}},
        {"max_active_dims": 0},
        {"fusion": "max"},
        {"dense_index": "ivf"},
        {"precision": "int4"},
    ):
        fresh = tmp_path / "fresh"
        with pytest.raises(ConfigError):
            Collection.create(fresh, model=tiny_splade, **options)
        with Collection.create(fresh, model=tiny_splade) as created:
            assert created.count() == 0
        shutil.rmtree(fresh)
    # an empty existing folder is fine
    empty = tmp_path / "empty"
    empty.mkdir()
    Collection.create(empty, model=str(tiny_model_dir)).close()


def test_max_active_dims_and_store_text_are_kept(tmp_path, tiny_model_dir):
    path = tmp_path / "col"
    col = _make(path, str(tiny_model_dir), max_active_dims=7, store_text=False)
    assert all(len(p.vector) == 7 and p.text is None for p in col.get(IDS))
    col.close()
    with Collection.open(path) as col:
        assert col.sparse_model.max_active_dims == 7
        col.upsert_texts(["new"], ["Paris is the capital of France."])
        assert len(col.get(["new"])[0].vector) == 7
        assert col.count() == len(IDS) + 1


# ---------------------------------------------------------------------------- 9. rerank
def test_rerank_orders_the_candidates_by_the_cross_encoder(ro_col, tiny_cross_encoder):
    col = ro_col
    ce = tiny_cross_encoder
    for query in TINY_QUERIES[:3]:
        candidates = col.search(query, k=8)
        texts = [p.text for p in col.get([h.id for h in candidates])]
        predicted = np.asarray(ce.predict([(query, t) for t in texts]), np.float64).reshape(-1)
        order = np.argsort(-predicted, kind="stable")
        expected_ids = [candidates[i].id for i in order]
        reranked = col.search(query, k=8, rerank=ce, candidates=8)
        assert [h.id for h in reranked] == expected_ids
        assert [h.score for h in reranked] == pytest.approx(predicted[order].tolist(), rel=1e-5)
        # only the top `candidates` of the first stage are reranked; k cuts the reranked list
        top3 = col.search(query, k=3, rerank=ce, candidates=8)
        assert [h.id for h in top3] == expected_ids[:3]
        few = col.search(query, k=3, rerank=ce, candidates=4)
        first4 = [i for i in order if i < 4]
        assert [h.id for h in few] == [candidates[i].id for i in first4][:3]
        # payloads come along
        assert all(h.payload == dict(zip(IDS, PAYLOADS, strict=True))[h.id] for h in reranked)


def test_rerank_needs_stored_texts(tmp_path, tiny_model_dir, tiny_cross_encoder):
    with _make(tmp_path / "col", str(tiny_model_dir), store_text=False) as col:
        with pytest.raises(InvalidInputError, match="store_text"):
            col.search("fever", k=3, rerank=tiny_cross_encoder)


# ---------------------------------------------------------------------------- 10. upsert_vectors
def test_upsert_vectors_from_token_dicts_and_sparse_vectors(col):
    vocab = col.sparse_model.vocab
    tokens = {t: i for i, t in enumerate(vocab)}
    col.upsert_vectors(
        ["v1", "v2"],
        [{"fever": 1.5, "aspirin": 0.25}, {"paris": 2.0, "france": 0.5}],
        payloads=[{"lang": "en"}, None],
        texts=["hand made one", "hand made two"],
    )
    vectors = SparseVectors.from_dicts(
        [{tokens["snow"]: 4.0}, {tokens["ice"]: 0.75, tokens["snow"]: 0.5}], dim=len(vocab)
    )
    col.upsert_vectors(["v3", "d0"], vectors)  # d0 exists: replaced, text and payload gone
    assert col.count() == len(IDS) + 3
    v1, v2, v3, d0 = col.get(["v1", "v2", "v3", "d0"])
    assert (v1.vector, v1.payload, v1.text) == (
        {"fever": 1.5, "aspirin": 0.25},
        {"lang": "en"},
        "hand made one",
    )
    assert (v2.vector, v2.payload, v2.text) == (
        {"paris": 2.0, "france": 0.5},
        None,
        "hand made two",
    )
    assert (v3.vector, v3.text) == ({"snow": 4.0}, None)
    assert (d0.vector, d0.payload, d0.text) == ({"snow": 0.5, "ice": 0.75}, None, None)

    top = col.search({"fever": 2.0}, k=1)[0]
    assert (top.id, top.score) == ("v1", 3.0)
    snow = col.search({"snow": 1.0}, k=len(IDS) + 3)
    assert (snow[0].id, snow[0].score) == ("v3", 4.0)
    assert dict(_hits(snow))["d0"] == 0.5
    # the stored vectors are searched exactly like encoded ones (the engine agrees)
    vector = col.encode_queries(["what is snow made of"])[0]
    engine = col.index.search(vector, 6)
    assert [h.id for h in col.search("what is snow made of", k=6)] == engine.ids[0].tolist()
    assert col.search({"paris": 1.0}, k=1, filter=Filter(must=[IsNull("lang")]))[0].id == "v2"


# ---------------------------------------------------------------------------- 7. real models
@pytest.fixture(scope="module")
def scifact(shared_data, tmp_path_factory, tiny_model_dir):
    """A SciFact slice in a collection (tiny SPLADE + real all-MiniLM-L6-v2, flat dense index),
    with independent MiniLM embeddings of its documents and queries."""
    from sentence_transformers import SentenceTransformer

    from sparsearch.eval import load_beir
    from sparsearch.models.loading import resolve_model_dir

    ds = load_beir(shared_data / "scifact", "test")
    queries = dict(list(ds.queries.items())[:12])
    judged = {d for q in queries for d in ds.qrels[q]}
    corpus = {d: t for i, (d, t) in enumerate(ds.doc_texts().items()) if i < 200 or d in judged}
    corpus = {d: t[:600] for d, t in corpus.items()}  # abstracts cut short: encoding stays quick
    ids, texts = list(corpus), list(corpus.values())
    # the reference loads the cached snapshot folder: in this offline cache (a snapshot named
    # "local"), SentenceTransformer(hub id) misses modules.json and builds a different model
    # (no Normalize, max_seq_length 512 instead of 256)
    folder = resolve_model_dir(real_model(MINILM))
    minilm = SentenceTransformer(str(folder), device="cpu")
    assert minilm.max_seq_length == 256
    doc_emb = minilm.encode_document(texts, normalize_embeddings=True, convert_to_numpy=True)
    query_emb = minilm.encode_query(
        list(queries.values()), normalize_embeddings=True, convert_to_numpy=True
    )
    payloads = [{"half": "a" if i % 2 == 0 else "b"} for i in range(len(ids))]
    path = tmp_path_factory.mktemp("scifact") / "col"
    col = Collection.create(path, model=str(tiny_model_dir), dense_model=MINILM)
    col.upsert_texts(ids, texts, payloads=payloads, batch_size=64)
    yield {
        "col": col,
        "ids": ids,
        "texts": texts,
        "payloads": payloads,
        "queries": list(queries.values()),
        "doc_emb": doc_emb,
        "query_emb": query_emb,
        "truths": _brute_force(query_emb, doc_emb, ids),
        "folder": folder,
    }
    col.close()


@pytest.mark.real_model
def test_real_dense_search_equals_brute_force(scifact):
    col = scifact["col"]
    spec = col.config.dense
    assert spec.model.source == MINILM and spec.dim == 384 and spec.normalize
    assert spec.model.revision == scifact["folder"].name  # the snapshot (commit) it resolved to
    assert col.dense_model.max_seq_length == 256
    assert col.count() == len(scifact["ids"])
    queries, truths = scifact["queries"], scifact["truths"]
    for hits, truth in zip(col.search_batch(queries, k=10, mode="dense"), truths, strict=True):
        _assert_top_k(hits, truth, 10, atol=1e-5)
        assert [h.id for h in hits] == sorted(truth, key=lambda d: -truth[d])[:10]
    # the same with the queries as vectors, and with a filter on the payload
    half_a = set(scifact["ids"][::2])
    flt = Filter(must=[Match("half", "a")])
    for q_emb, truth in zip(scifact["query_emb"], truths, strict=True):
        _assert_top_k(col.search(q_emb, k=10, mode="dense"), truth, 10, atol=1e-5)
        allowed = {d: s for d, s in truth.items() if d in half_a}
        _assert_top_k(col.search(q_emb, k=10, mode="dense", filter=flt), allowed, 10, atol=1e-5)


@pytest.mark.real_model
def test_real_hybrid_rrf_equals_fusing_the_two_runs(scifact):
    col = scifact["col"]
    queries, truths = scifact["queries"], scifact["truths"]
    depth = 50
    sparse = col.index.search(col.encode_queries(queries)[0], depth)
    dense = col.search_batch(queries, k=depth, mode="dense")
    hybrid = col.search_batch(queries, k=10, candidates=depth)
    assert col.config.fusion == "rrf"
    for i, truth in enumerate(truths):
        _assert_top_k(dense[i], truth, depth, atol=1e-5)
        sparse_run = Run.from_arrays([0], sparse.ids[i : i + 1], sparse.scores[i : i + 1])
        fused = RRF(k=60).fuse([sparse_run, _run(dense[i])]).cut(10).row(0)
        assert [h.id for h in hybrid[i]] == [d for d, _ in fused]
        assert [h.score for h in hybrid[i]] == pytest.approx([s for _, s in fused], rel=1e-9)
    half_b = set(scifact["ids"][1::2])
    for hits in col.search_batch(queries, k=10, filter=Filter(must=[Match("half", "b")])):
        assert len(hits) == 10 and {h.id for h in hits} <= half_b


@pytest.mark.real_model
def test_real_hnsw_recall_against_flat_and_dense_deletes(scifact, tmp_path, tiny_model_dir):
    col = scifact["col"]
    ids, texts, truths = scifact["ids"], scifact["texts"], scifact["truths"]
    sparse = col.get(ids)
    path = tmp_path / "hnsw"
    hnsw = Collection.create(
        path, model=str(tiny_model_dir), dense_model=MINILM, dense_index="hnsw"
    )
    hnsw.upsert_vectors(
        ids,
        [p.vector for p in sparse],
        payloads=scifact["payloads"],
        dense=scifact["doc_emb"],
        texts=texts,
    )
    assert hnsw.config.dense.index == "hnsw"

    def exact(truth: dict, k: int = 10) -> list:
        return sorted(truth, key=lambda d: -truth[d])[:k]

    recall = []
    for q_emb, truth in zip(scifact["query_emb"], truths, strict=True):
        approx = hnsw.search(q_emb, k=10, mode="dense")
        assert len(approx) == 10
        for hit in approx:  # approximate in which documents, exact in their scores
            assert hit.score == pytest.approx(truth[hit.id], abs=1e-5)
        recall.append(len(set(exact(truth)) & {h.id for h in approx}) / 10)
    assert np.mean(recall) >= 0.9, recall

    # deletes: the two best documents of every query vanish from dense and hybrid search
    gone = sorted({d for truth in truths for d in exact(truth, 2)})
    hnsw.delete(gone)
    for q_emb in scifact["query_emb"]:
        hits = hnsw.search(q_emb, k=10, mode="dense")
        assert len(hits) == 10 and not {h.id for h in hits} & set(gone)
    for query in scifact["queries"][:3]:
        assert not {h.id for h in hnsw.search(query, k=20)} & set(gone)
    hnsw.close()
    with Collection.open(path) as reopened:
        assert reopened.count() == len(ids) - len(gone)
        recall = []
        for q_emb, truth in zip(scifact["query_emb"], truths, strict=True):
            remaining = {d: s for d, s in truth.items() if d not in gone}
            got = {h.id for h in reopened.search(q_emb, k=10, mode="dense")}
            assert len(got) == 10 and not got & set(gone)
            recall.append(len(got & set(exact(remaining))) / 10)
        assert np.mean(recall) >= 0.9, recall


def test_recall_searches_the_sparse_side_approximately(col, monkeypatch) -> None:
    from sparsearch.index import approx

    monkeypatch.setattr(approx, "MIN_DOCS", 1)  # the tiny segment gets an approximate part
    assert col.index.stats()["approx_segments"] == 0
    every = dict(_hits(col.search("aspirin and fever", k=len(IDS))))
    hits = col.search("aspirin and fever", k=5, recall=0.9)
    assert col.index.stats()["approx_segments"] == 1  # built on first use: the knob reached it
    assert hits
    for hit in hits:  # the approximate mode returns exact scores
        assert hit.score == pytest.approx(every[hit.id], rel=1e-6)
    with pytest.raises(InvalidInputError, match="recall"):
        col.search("fever", recall=1.5)
