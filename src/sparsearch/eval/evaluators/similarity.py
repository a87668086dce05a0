"""Semantic similarity: how well the similarities of text pairs correlate with gold scores."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from sparsearch.errors import InvalidInputError
from sparsearch.eval.evaluators.base import (
    SparseEvaluator,
    TextEncoder,
    check_number,
    check_same_length,
    check_texts,
    model_similarity,
    pairwise_similarity,
    primary_key,
    similarity_names,
    sparsity,
)
from sparsearch.eval.evaluators.files import read_rows


def _correlation(kind: str, gold: np.ndarray, predicted: np.ndarray) -> float:
    """Pearson or Spearman correlation; NaN when the predictions are all equal (undefined)."""
    if np.ptp(predicted) == 0:
        return float("nan")
    with warnings.catch_warnings():  # scipy warns on near-constant input; NaN/values say enough
        warnings.simplefilter("ignore")
        result = (
            stats.pearsonr(gold, predicted)
            if kind == "pearson"
            else stats.spearmanr(gold, predicted)
        )
    return float(result[0])


class EmbeddingSimilarityEvaluator(SparseEvaluator):
    """Pearson and Spearman correlations between gold ``scores`` and the similarity of
    ``sentences1[i]`` and ``sentences2[i]``, as sentence-transformers'
    ``SparseEmbeddingSimilarityEvaluator``.

    Both lists go through the model's plain ``encode`` (its default route, as sentence-transformers
    does). ``similarity_fn_names``: ``"cosine"`` and/or ``"dot"`` (default: ``[main_similarity]``,
    else the model's own similarity). Keys: ``pearson_{fn}``, ``spearman_{fn}``, with several
    functions ``pearson_max`` and ``spearman_max``, and ``active_dims`` / ``sparsity_ratio`` (the
    mean over both lists). The primary metric is ``spearman_{main_similarity}``, else
    ``spearman_max`` with several functions, else ``spearman_{fn}``. A correlation is NaN when the
    model gives every pair the same similarity.

    Example::

        evaluator = EmbeddingSimilarityEvaluator(
            ["A man is eating.", "A plane is taking off."],
            ["A man eats food.", "A dog runs."],
            [1.0, 0.0],
            similarity_fn_names=["cosine", "dot"],
            name="sts-dev",
        )
        evaluator(model)["sts-dev_spearman_cosine"]
    """

    def __init__(
        self,
        sentences1: Sequence[str],
        sentences2: Sequence[str],
        scores: Sequence[float],
        batch_size: int = 16,
        main_similarity: str | None = None,
        similarity_fn_names: Sequence[str] | None = None,
        name: str = "",
        show_progress_bar: bool = False,
        max_active_dims: int | None = None,
    ) -> None:
        super().__init__(name, batch_size, show_progress_bar, max_active_dims)
        self.sentences1 = check_texts(sentences1, "sentences1")
        self.sentences2 = check_texts(sentences2, "sentences2")
        if isinstance(scores, str) or not isinstance(scores, (Sequence, np.ndarray)):
            raise InvalidInputError(f"scores must be a list of numbers, got {scores!r}")
        check_same_length(sentences1=self.sentences1, sentences2=self.sentences2, scores=scores)
        self.scores = np.array([check_number(s, f"scores[{i}]") for i, s in enumerate(scores)])
        if len(self.scores) < 2 or np.ptp(self.scores) == 0:
            raise InvalidInputError(
                "scores must hold at least two different values (a correlation needs them)"
            )
        self.main_similarity = main_similarity
        self.similarity_fn_names = similarity_names(similarity_fn_names, main_similarity)

    @classmethod
    def from_jsonl(cls, path: str | Path, **kwargs: Any) -> EmbeddingSimilarityEvaluator:
        """From a JSONL file of ``{"sentence1": str, "sentence2": str, "score": number}`` rows;
        ``kwargs`` go to the constructor."""
        rows = read_rows(path, {"sentence1": "text", "sentence2": "text", "score": "number"})
        return cls(
            [r["sentence1"] for r in rows],
            [r["sentence2"] for r in rows],
            [r["score"] for r in rows],
            **kwargs,
        )

    def _evaluate(self, model: TextEncoder) -> tuple[dict[str, float], str]:
        first = self._encode(model, self.sentences1, None)
        second = self._encode(model, self.sentences2, None)
        names = self.similarity_fn_names or [model_similarity(model)]
        metrics: dict[str, float] = {}
        for fn in names:
            predicted = pairwise_similarity(first, second, fn)
            metrics[f"pearson_{fn}"] = _correlation("pearson", self.scores, predicted)
            metrics[f"spearman_{fn}"] = _correlation("spearman", self.scores, predicted)
        if len(names) > 1:
            metrics["pearson_max"] = max(metrics[f"pearson_{fn}"] for fn in names)
            metrics["spearman_max"] = max(metrics[f"spearman_{fn}"] for fn in names)
        one, two = sparsity(first), sparsity(second)
        metrics.update({key: (one[key] + two[key]) / 2 for key in one})
        return metrics, primary_key("spearman_{}", "spearman_max", self.main_similarity, names)
