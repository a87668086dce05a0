"""Several evaluators run in order, their metrics merged into one dict."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from sparsearch.errors import InvalidInputError

Evaluator = Callable[[Any], Mapping[str, float]]
"""Anything called with a model that returns ``{metric: value}`` (every evaluator here, or the
BEIR evaluator a training config builds)."""


def _last(scores: list[float]) -> float:
    return scores[-1]


class SequentialEvaluator:
    """Run ``evaluators`` in order and merge their metrics, as sentence-transformers'
    ``SequentialEvaluator``.

    Each evaluator prefixes its keys with its own ``name``; two evaluators reporting the same key
    is an error (give them different names) rather than one silently overwriting the other. The
    main score of each is its ``primary_metric`` (its first key when it has none);
    ``main_score_function`` turns the list of them into ``sequential_score`` (default: the last
    one), the primary metric of this evaluator.

    Example::

        evaluator = SequentialEvaluator([TripletEvaluator(..., name="triplets"),
                                         RerankingEvaluator(..., name="rerank")])
        evaluator(model)
        # {"triplets_dot_accuracy": ..., "rerank_ndcg@10": ..., "sequential_score": ...}
    """

    primary_metric = "sequential_score"

    def __init__(
        self,
        evaluators: Iterable[Evaluator],
        main_score_function: Callable[[list[float]], float] = _last,
    ) -> None:
        self.evaluators = list(evaluators)
        if not self.evaluators:
            raise InvalidInputError("SequentialEvaluator needs at least one evaluator")
        for i, evaluator in enumerate(self.evaluators):
            if not callable(evaluator):
                raise InvalidInputError(
                    f"evaluators[{i}] is a {type(evaluator).__name__}, not an evaluator"
                )
        self.main_score_function = main_score_function

    def __call__(self, model: Any) -> dict[str, float]:
        """Every evaluator's metrics, then ``sequential_score``."""
        results: dict[str, float] = {}
        scores = []
        for i, evaluator in enumerate(self.evaluators):
            metrics = {key: float(value) for key, value in evaluator(model).items()}
            if not metrics:
                raise InvalidInputError(f"evaluators[{i}] returned no metrics")
            clash = sorted(results.keys() & metrics.keys())
            if clash:
                raise InvalidInputError(
                    f"evaluators[{i}] reports {clash} like an earlier evaluator: give the "
                    "evaluators different names"
                )
            primary = getattr(evaluator, "primary_metric", None) or next(iter(metrics))
            results.update(metrics)
            scores.append(metrics[primary])
        if self.primary_metric in results:
            raise InvalidInputError(f"an evaluator reports {self.primary_metric!r} itself")
        results[self.primary_metric] = float(self.main_score_function(scores))
        return results
