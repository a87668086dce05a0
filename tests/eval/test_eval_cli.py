"""`sparsearch eval` and `sparsearch demo` through the real command-line entry point."""

from __future__ import annotations

import json

import pytest

from sparsearch.cli import main
from sparsearch.eval import load_beir

from .beir_files import mini_beir


@pytest.mark.real_model
def test_eval_command_prints_a_table_and_writes_json(shared_data, tmp_path, capsys):
    out = tmp_path / "r.json"
    data = [str(shared_data / "cranfield"), str(shared_data / "cacm")]
    code = main(
        ["eval", "--model", "bm25", "--data", data[0], "--data", data[1], "--output", str(out)]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "cranfield" in printed and "mean" in printed and "ndcg@10" in printed
    result = json.loads(out.read_text())
    assert [row["dataset"] for row in result["datasets"]] == ["cranfield", "cacm"]
    assert result["mean"]["ndcg@10"] > 0


@pytest.mark.real_model
def test_eval_command_needs_a_model(shared_data, capsys):
    assert main(["eval", "--data", str(shared_data / "cacm")]) == 2
    assert "--model, --dense" in capsys.readouterr().err


@pytest.mark.real_model
def test_demo_explains_hits_with_matching_tokens(shared_data, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SPARSEARCH_CACHE", str(tmp_path / "cache"))
    data = mini_beir(shared_data / "scifact", tmp_path / "mini", n_queries=3, n_docs=30)
    queries = load_beir(data).queries
    assert main(["demo", "--data", str(data), "--hits", "2", "--tokens", "3"]) == 0
    printed = capsys.readouterr().out
    assert any(f"query {q}" in printed and queries[q] in printed for q in queries)
    assert printed.count("matched on: ") == 2
    assert "ndcg@10" in printed


@pytest.mark.real_model
def test_eval_command_builds_the_fused_pipeline_it_is_asked_for():
    from sparsearch.cli import build_parser
    from sparsearch.cli.eval import build_retriever
    from sparsearch.hybrid import BM25Retriever, DenseRetriever, LinearFusion, Pipeline

    args = build_parser().parse_args(
        [
            "eval",
            "--model",
            "bm25",
            "--dense",
            "sentence-transformers/all-MiniLM-L6-v2",
            "--fusion",
            "linear",
            "--normalization",
            "zscore",
            "--weights",
            "0.7",
            "0.3",
            "--data",
            "unused",
            "--no-cache",
        ]
    )
    pipeline = build_retriever(args)({"d1": "sparse retrieval", "d2": "dense vectors"})
    assert isinstance(pipeline, Pipeline)
    assert [type(r) for r in pipeline.retrievers] == [BM25Retriever, DenseRetriever]
    assert isinstance(pipeline.fusion, LinearFusion)
    assert pipeline.fusion.normalization == "zscore" and pipeline.fusion.weights == [0.7, 0.3]
