"""The IR evaluators: metrics on real data, identical-id dropping, the vectors cache, FLOPS,
and the SciFact reproduction with the real rasyosef/splade-tiny."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sparsearch.eval import evaluate, evaluate_many, evaluate_retriever, sparsity_stats
from sparsearch.hybrid import BM25Retriever
from sparsearch.sparse import SparseVectors

from .beir_files import mini_beir, write_beir


def test_identical_ids_are_kept_by_default_and_dropped_on_request(tmp_path):
    corpus = {
        "1": {"title": "", "text": "argument about nuclear power plants"},
        "2": {"title": "", "text": "counter argument: nuclear power is safe"},
        "3": {"title": "", "text": "cooking pasta"},
    }
    data = write_beir(
        tmp_path / "args", corpus, {"1": "argument about nuclear power plants"}, {"1": {"2": 1}}
    )
    kept = evaluate_retriever(BM25Retriever, data, k=10)
    dropped = evaluate_retriever(BM25Retriever, data, k=10, ignore_identical_ids=True)
    assert kept["mrr@10"] == 0.5  # the query's own document ranks first
    assert dropped["mrr@10"] == 1.0


@pytest.mark.real_model
def test_multi_dataset_evaluator_reports_each_set_and_the_mean(shared_data, tmp_path):
    out = tmp_path / "many.json"
    result = evaluate_many(
        BM25Retriever, [shared_data / "cranfield", shared_data / "cacm"], k=10, output_path=out
    )
    rows = result["datasets"]
    assert [r["dataset"] for r in rows] == ["cranfield", "cacm"]
    assert rows[0]["n_queries"] == 225 and rows[0]["n_docs"] == 1400
    assert result["mean"]["ndcg@10"] == pytest.approx((rows[0]["ndcg@10"] + rows[1]["ndcg@10"]) / 2)
    assert json.loads(out.read_text()) == result
    assert 0.2 < rows[0]["ndcg@10"] < 0.6  # BM25 on cranfield is far from both 0 and 1


def test_flops_and_active_dims_follow_the_splade_definition():
    rng = np.random.default_rng(0)
    q = SparseVectors.from_dense((rng.random((7, 50)) > 0.8) * rng.random((7, 50)))
    d = SparseVectors.from_dense((rng.random((11, 50)) > 0.6) * rng.random((11, 50)))
    stats = sparsity_stats(q, d)
    q_active, d_active = q.to_dense() > 0, d.to_dense() > 0
    # expected multiply-adds averaged over every query-document pair
    pairs = q_active.astype(float) @ d_active.T.astype(float)
    assert stats["flops"] == pytest.approx(pairs.mean())
    assert stats["query_active_dims"] == pytest.approx(q_active.sum(1).mean())
    assert stats["doc_active_dims"] == pytest.approx(d_active.sum(1).mean())


@pytest.mark.real_model
def test_encoded_corpus_is_cached_by_content_hash(shared_data, tmp_path):
    data = mini_beir(shared_data / "scifact", tmp_path / "mini", n_queries=5, n_docs=40)
    cache = tmp_path / "cache"
    first = evaluate("rasyosef/splade-tiny", data, k=10, cache_dir=cache, show_progress_bar=False)
    files = list(cache.glob("*.npz"))
    assert len(files) == 1
    stamp = files[0].stat().st_mtime_ns
    second = evaluate("rasyosef/splade-tiny", data, k=10, cache_dir=cache, show_progress_bar=False)
    assert second == first and files[0].stat().st_mtime_ns == stamp
    assert first["doc_active_dims"] > first["query_active_dims"] > 0
    assert first["flops"] > 0

    fast = evaluate(
        "rasyosef/splade-tiny",
        data,
        k=10,
        cache_dir=cache,
        show_progress_bar=False,
        precision="bfloat16",
    )
    assert len(list(cache.glob("*.npz"))) == 2  # its own cache entry, never the float32 vectors
    assert fast["flops"] != first["flops"]


@pytest.mark.real_model
@pytest.mark.slow
def test_splade_tiny_reproduces_scifact_ndcg_at_10(shared_data, tmp_path):
    """Reference: sentence-transformers + pytrec_eval, exact search, whole SciFact test: 0.6466.

    The one heavy test: it encodes all 5,183 documents (cold cache)."""
    result = evaluate(
        "rasyosef/splade-tiny",
        shared_data / "scifact",
        k=(10, 100),
        cache_dir=tmp_path,
        show_progress_bar=False,
    )
    assert result["n_queries"] == 300 and result["n_docs"] == 5183
    assert result["ndcg@10"] == pytest.approx(0.6466, abs=5e-4)
