"""Evaluation: BEIR datasets, TREC files, trec_eval-exact metrics, IR evaluators, and the
sentence-transformers-style evaluators (similarity, triplet, reranking, MSE, sequential)."""

from __future__ import annotations

from sparsearch.eval.beir import BeirDataset, list_splits, load_beir, load_qrels
from sparsearch.eval.evaluator import evaluate, evaluate_many, evaluate_retriever
from sparsearch.eval.evaluators import (
    EmbeddingSimilarityEvaluator,
    MSEEvaluator,
    RerankingEvaluator,
    SequentialEvaluator,
    TripletEvaluator,
)
from sparsearch.eval.metrics import MEASURES, QueryMetrics, evaluate_run
from sparsearch.eval.sparsity import sparsity_stats
from sparsearch.eval.trec import read_qrels, read_run, write_qrels, write_run

__all__ = [
    "MEASURES",
    "BeirDataset",
    "EmbeddingSimilarityEvaluator",
    "MSEEvaluator",
    "QueryMetrics",
    "RerankingEvaluator",
    "SequentialEvaluator",
    "TripletEvaluator",
    "evaluate",
    "evaluate_many",
    "evaluate_retriever",
    "evaluate_run",
    "list_splits",
    "load_beir",
    "load_qrels",
    "read_qrels",
    "read_run",
    "sparsity_stats",
    "write_qrels",
    "write_run",
]
