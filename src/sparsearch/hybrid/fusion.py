"""Fusion stages: several runs in, one run out (reciprocal rank fusion, normalised interpolation).

Both work on the runs' numpy arrays: every hit of every run is keyed by (query, document id as
text), the keys are grouped once, and each run adds its contribution to its keys' totals.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from sparsearch.errors import InvalidInputError
from sparsearch.run import Run, id_text


def _weights(weights: Sequence[float] | None, n_runs: int) -> list[float]:
    if n_runs < 1:
        raise InvalidInputError("fusion needs at least one run")
    if weights is None:
        return [1.0 / n_runs] * n_runs
    if len(weights) != n_runs or any(not np.isfinite(w) or w < 0 for w in weights):
        raise InvalidInputError(f"need {n_runs} finite non-negative weights, got {list(weights)}")
    return [float(w) for w in weights]


@dataclass(frozen=True)
class _Union:
    """The (query, document) keys that any run returned, and where each run's hits fall."""

    qids: list[object]
    key_query: np.ndarray  # query row of each key
    key_ids: np.ndarray  # document id of each key (its first occurrence)
    key_payloads: np.ndarray | None
    hit_keys: list[np.ndarray]  # per run: the key of each real hit, in the run's row-major order
    hit_rows: list[np.ndarray]  # per run: the union query row of each real hit
    hit_ranks: list[np.ndarray]  # per run: the 1-based rank of each real hit

    @classmethod
    def of(cls, runs: Sequence[Run]) -> _Union:
        qids = list(dict.fromkeys(q for run in runs for q in run.qids.tolist()))
        row_of = {q: i for i, q in enumerate(qids)}
        rows, ids, ranks, payloads = [], [], [], []
        for run in runs:
            valid = run.valid()
            run_rows = np.array([row_of[q] for q in run.qids.tolist()], np.int64)
            rows.append(np.broadcast_to(run_rows[:, None], valid.shape)[valid])
            ids.append(run.ids[valid].astype(object))
            ranks.append(np.broadcast_to(np.arange(1, run.k + 1), valid.shape)[valid])
            payloads.append(None if run.payloads is None else run.payloads[valid])
        all_ids = np.concatenate(ids) if ids else np.empty(0, object)
        _, code = np.unique(id_text(all_ids), return_inverse=True)
        all_rows = np.concatenate(rows)
        keys, first, key_of_hit = np.unique(
            all_rows * (int(code.max(initial=0)) + 1) + code.reshape(-1),
            return_index=True,
            return_inverse=True,
        )
        bounds = np.cumsum([0, *(r.size for r in rows)])
        key_payloads = None
        if any(p is not None for p in payloads):
            filled = [
                np.full(r.size, None, object) if p is None else p
                for r, p in zip(rows, payloads, strict=True)
            ]
            key_payloads = np.concatenate(filled)[first]
        return cls(
            qids=qids,
            key_query=all_rows[first],
            key_ids=all_ids[first],
            key_payloads=key_payloads,
            hit_keys=[
                key_of_hit.reshape(-1)[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)
            ],
            hit_rows=rows,
            hit_ranks=ranks,
        )

    def to_run(self, totals: np.ndarray) -> Run:
        """A run of every key with its fused total, in trec_eval order."""
        n = len(self.qids)
        counts = np.bincount(self.key_query, minlength=n)
        width = int(counts.max(initial=0))
        column = np.arange(self.key_query.size) - (np.cumsum(counts) - counts)[self.key_query]
        ids = np.full((n, width), None, object)
        scores = np.full((n, width), -np.inf)
        ids[self.key_query, column] = self.key_ids
        scores[self.key_query, column] = totals
        payloads = None
        if self.key_payloads is not None:
            payloads = np.full((n, width), None, object)
            payloads[self.key_query, column] = self.key_payloads
        return Run.from_arrays(self.qids, ids, scores, payloads)


class RRF:
    """Reciprocal rank fusion: ``score(d) = sum_r w_r / (k + rank_r(d))``, ranks from 1.

    A run ranks its documents in trec_eval order; a document it did not return adds nothing.
    ``weights`` default to 1 for every run (plain RRF, Cormack et al. 2009).

    >>> a = Run.from_dict({"q": {"a": 3.0, "b": 1.0}})
    >>> b = Run.from_dict({"q": {"b": 9.0}})
    >>> RRF(k=60).fuse([a, b]).to_dict()["q"]["b"]  # 1/62 + 1/61
    0.03252247488101534
    """

    def __init__(self, k: int = 60, weights: Sequence[float] | None = None) -> None:
        if k < 0:
            raise InvalidInputError(f"RRF k must be >= 0, got {k}")
        self.k = k
        self.weights = weights

    def fuse(self, runs: Sequence[Run]) -> Run:
        """Fuse the runs query by query."""
        if not runs:
            raise InvalidInputError("fusion needs at least one run")
        weights = _weights(self.weights, len(runs)) if self.weights else [1.0] * len(runs)
        union = _Union.of(runs)
        totals = np.zeros(union.key_ids.size)
        for weight, keys, ranks in zip(weights, union.hit_keys, union.hit_ranks, strict=True):
            totals[keys] += weight / (self.k + ranks)
        return union.to_run(totals)


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
    document gets the lowest z-score of that run for the query. A run with no hit for a query adds
    nothing to it. ``weights`` default to equal.
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
        union = _Union.of(runs)
        totals = np.zeros(union.key_ids.size)
        for weight, run, keys, rows in zip(
            weights, runs, union.hit_keys, union.hit_rows, strict=True
        ):
            normalised = np.empty(keys.size)
            missing = np.zeros(len(union.qids))
            answered = np.zeros(len(union.qids), bool)
            valid = run.valid()
            start = 0
            for row in range(len(run)):  # one short vector per query: its hits, best first
                count = int(valid[row].sum())
                if count:
                    part, missing[rows[start]] = _normalise(
                        run.scores[row, :count], self.normalization
                    )
                    normalised[start : start + count] = part
                    answered[rows[start]] = True
                start += count
            column = missing[union.key_query]
            column[keys] = normalised
            np.add(totals, weight * column, out=totals, where=answered[union.key_query])
        return union.to_run(totals)
