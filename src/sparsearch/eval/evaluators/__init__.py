"""Evaluators in the manner of sentence-transformers' sparse ones: ``evaluator(model) -> {metric:
value}``, each metric beside the sparsity of the vectors it came from, usable on their own or as
a training evaluator.

Each evaluator prefixes its keys with its ``name``; :class:`SequentialEvaluator` runs several.
Their inputs can also come from JSONL files (``from_jsonl``; formats in each class).
"""

from __future__ import annotations

from sparsearch.eval.evaluators.base import SparseEvaluator
from sparsearch.eval.evaluators.mse import MSEEvaluator
from sparsearch.eval.evaluators.reranking import RerankingEvaluator
from sparsearch.eval.evaluators.sequential import SequentialEvaluator
from sparsearch.eval.evaluators.similarity import EmbeddingSimilarityEvaluator
from sparsearch.eval.evaluators.triplet import TripletEvaluator

__all__ = [
    "EmbeddingSimilarityEvaluator",
    "MSEEvaluator",
    "RerankingEvaluator",
    "SequentialEvaluator",
    "SparseEvaluator",
    "TripletEvaluator",
]
