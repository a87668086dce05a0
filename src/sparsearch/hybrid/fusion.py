"""Fusion stages: several runs in, one run out (reciprocal rank fusion, normalised interpolation)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from sparsearch.errors import InvalidInputError
from sparsearch.hybrid.run import Run, top_k


def _weights(weights: Sequence[float] | None, n_runs: int) -> list[float]:
    if n_runs < 1:
        raise InvalidInputError("fusion needs at least one run")
    if weights is None:
        return [1.0 / n_runs] * n_runs
    if len(weights) != n_runs or any(not np.isfinite(w) or w < 0 for w in weights):
        raise InvalidInputError(f"need {n_runs} finite non-negative weights, got {list(weights)}")
    return [float(w) for w in weights]


class RRF:
    """Reciprocal rank fusion: ``score(d) = sum_r w_r / (k + rank_r(d))``, ranks from 1.

    A run ranks its documents in trec_eval order; a document it did not return adds nothing.
    ``weights`` default to 1 for every run (plain RRF, Cormack et al. 2009).

    >>> RRF(k=60).fuse([{"q": {"a": 3.0, "b": 1.0}}, {"q": {"b": 9.0}}])["q"]["b"]  # 1/62 + 1/61
    0.03252247488101534
    """

    def __init__(self, k: int = 60, weights: Sequence[float] | None = None) -> None:
        if k < 0:
            raise InvalidInputError(f"RRF k must be >= 0, got {k}")
        self.k = k
        self.weights = weights

    def fuse(self, runs: Sequence[Run]) -> Run:
        """Fuse the runs query by query."""
        weights = _weights(self.weights, len(runs)) if self.weights else [1.0] * len(runs)
        if not runs:
            raise InvalidInputError("fusion needs at least one run")
        fused: Run = {}
        for qid in dict.fromkeys(q for run in runs for q in run):
            scores: dict[str, float] = {}
            for weight, run in zip(weights, runs, strict=True):
                docs = run.get(qid, {})
                for rank, (docid, _) in enumerate(top_k(docs, len(docs)), 1):
                    scores[docid] = scores.get(docid, 0.0) + weight / (self.k + rank)
            fused[qid] = scores
        return fused


def _normalise(values: np.ndarray, method: str) -> tuple[np.ndarray, float]:
    """Normalised scores of one query's hits and the value a missing document gets."""
    if method == "minmax":
        low, span = values.min(), values.max() - values.min()
        return ((values - low) / span if span > 0 else np.ones_like(values)), 0.0
    std = values.std()
    z = (values - values.mean()) / std if std > 0 else np.zeros_like(values)
    return z, float(z.min())


class LinearFusion:
    """Weighted sum of per-query normalised scores (``normalization``: ``minmax`` or ``zscore``).

    min-max maps a query's hits of one run to [0, 1] (all equal → 1) and a document that run did not
    return gets 0; z-score uses ``(s - mean) / std`` (population std; all equal → 0) and a missing
    document gets the lowest z-score of that run for the query. ``weights`` default to equal.
    """

    def __init__(
        self, weights: Sequence[float] | None = None, normalization: str = "minmax"
    ) -> None:
        if normalization not in ("minmax", "zscore"):
            raise InvalidInputError(
                f"normalization must be 'minmax' or 'zscore', got {normalization!r}"
            )
        self.weights = weights
        self.normalization = normalization

    def fuse(self, runs: Sequence[Run]) -> Run:
        """Fuse the runs query by query."""
        weights = _weights(self.weights, len(runs))
        fused: Run = {}
        for qid in dict.fromkeys(q for run in runs for q in run):
            union = list(dict.fromkeys(d for run in runs for d in run.get(qid, {})))
            position = {d: i for i, d in enumerate(union)}
            total = np.zeros(len(union))
            for weight, run in zip(weights, runs, strict=True):
                docs = run.get(qid, {})
                if not docs:
                    continue
                norm, missing = _normalise(
                    np.fromiter(docs.values(), float, len(docs)), self.normalization
                )
                column = np.full(len(union), missing)
                column[[position[d] for d in docs]] = norm
                total += weight * column
            fused[qid] = dict(zip(union, total.tolist(), strict=True))
        return fused
