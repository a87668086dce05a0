"""Triplet accuracy: how often an anchor is closer to its positive than to its negative."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sparsearch.eval.evaluators.base import (
    SIMILARITIES,
    SparseEvaluator,
    TextEncoder,
    check_number,
    check_same_length,
    check_similarity,
    check_texts,
    model_similarity,
    pairwise_similarity,
    primary_key,
    similarity_names,
    sparsity,
)
from sparsearch.eval.evaluators.files import read_rows


def _margins(margin: float | Mapping[str, float]) -> dict[str, float]:
    """One margin per similarity function (a mapping may name some; the others get 0)."""
    if isinstance(margin, Mapping):
        for fn in margin:
            check_similarity(fn, "each key of margin")
        return {fn: check_number(margin.get(fn, 0.0), f"margin[{fn!r}]") for fn in SIMILARITIES}
    return dict.fromkeys(SIMILARITIES, check_number(margin, "margin"))


class TripletEvaluator(SparseEvaluator):
    """Accuracy on (anchor, positive, negative) triplets, as sentence-transformers'
    ``SparseTripletEvaluator``: the share of triplets with
    ``sim(anchor, positive) > sim(anchor, negative) + margin``.

    Anchors are encoded as queries, positives and negatives as documents. ``similarity_fn_names``:
    ``"cosine"`` and/or ``"dot"`` (default: ``[main_similarity]``, else the model's own);
    ``margin``: one number, or ``{fn: margin}``. Keys: ``{fn}_accuracy``, ``max_accuracy`` with
    several functions, and ``{anchor,positive,negative}_active_dims`` / ``..._sparsity_ratio``.
    The primary metric is ``{main_similarity}_accuracy``, else ``max_accuracy`` with several
    functions, else ``{fn}_accuracy``.

    Example::

        evaluator = TripletEvaluator(["fever"], ["aspirin lowers a fever"], ["paris"], name="dev")
        evaluator(model)["dev_dot_accuracy"]
    """

    def __init__(
        self,
        anchors: Sequence[str],
        positives: Sequence[str],
        negatives: Sequence[str],
        main_similarity: str | None = None,
        margin: float | Mapping[str, float] = 0.0,
        name: str = "",
        batch_size: int = 16,
        show_progress_bar: bool = False,
        max_active_dims: int | None = None,
        similarity_fn_names: Sequence[str] | None = None,
    ) -> None:
        super().__init__(name, batch_size, show_progress_bar, max_active_dims)
        self.anchors = check_texts(anchors, "anchors")
        self.positives = check_texts(positives, "positives")
        self.negatives = check_texts(negatives, "negatives")
        check_same_length(anchors=self.anchors, positives=self.positives, negatives=self.negatives)
        self.main_similarity = main_similarity
        self.similarity_fn_names = similarity_names(similarity_fn_names, main_similarity)
        self.margin = _margins(margin)

    @classmethod
    def from_jsonl(cls, path: str | Path, **kwargs: Any) -> TripletEvaluator:
        """From a JSONL file of ``{"anchor": str, "positive": str, "negative": str}`` rows;
        ``kwargs`` go to the constructor."""
        rows = read_rows(path, {"anchor": "text", "positive": "text", "negative": "text"})
        return cls(
            [r["anchor"] for r in rows],
            [r["positive"] for r in rows],
            [r["negative"] for r in rows],
            **kwargs,
        )

    def _evaluate(self, model: TextEncoder) -> tuple[dict[str, float], str]:
        anchors = self._encode(model, self.anchors, "query")
        positives = self._encode(model, self.positives, "document")
        negatives = self._encode(model, self.negatives, "document")
        names = self.similarity_fn_names or [model_similarity(model)]
        metrics: dict[str, float] = {}
        for fn in names:
            closer = pairwise_similarity(anchors, positives, fn) > (
                pairwise_similarity(anchors, negatives, fn) + self.margin[fn]
            )
            metrics[f"{fn}_accuracy"] = float(closer.mean())
        if len(names) > 1:
            metrics["max_accuracy"] = max(metrics.values())
        for side, vectors in (
            ("anchor", anchors),
            ("positive", positives),
            ("negative", negatives),
        ):
            metrics.update({f"{side}_{k}": v for k, v in sparsity(vectors).items()})
        return metrics, primary_key("{}_accuracy", "max_accuracy", self.main_similarity, names)
