"""Ranking metrics in vectorised numpy, equal to trec_eval (pytrec_eval) per query.

Conventions (all those of trec_eval, checked against pytrec_eval by the tests):

- A run is ranked by score descending, ties broken by document id descending (string order,
  :func:`sparsearch.run.trec_order`); ids are compared by their text, as trec_eval reads them.
- A judged document is relevant when its grade is ``>= relevance_level`` (default 1); grades
  ``<= 0`` are non-relevant. nDCG uses the grade itself as the gain (linear, not ``2**rel - 1``)
  and ignores grades ``<= 0``; the ideal ranking comes from every judged grade of the query.
- ``recall@k`` and ``map@k`` divide by the number of relevant documents of the query (not by
  ``min(k, R)``); ``precision@k`` divides by ``k`` even when fewer were retrieved; ``mrr@k`` is
  trec_eval's ``recip_rank`` over the top ``k``. A query with no relevant document scores 0.
- Queries are those both judged (in qrels) and run (a row of the run, even with no hits): the
  per-query set pytrec_eval returns. Means are over those queries.

The run is a :class:`sparsearch.Run` (numpy arrays, consumed as they are) or, at the edges, a
``{qid: {docid: score}}`` mapping.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from sparsearch.errors import InvalidInputError
from sparsearch.run import Run, id_text

MEASURES = ("ndcg", "mrr", "recall", "map", "precision")
RunLike = Run | Mapping[str, Mapping[str, float]]
QrelsLike = Mapping[str, Mapping[str, int]]


@dataclass(frozen=True)
class QueryMetrics:
    """Per-query metric values: ``values[name][i]`` belongs to ``qids[i]``."""

    qids: list[str]
    values: dict[str, np.ndarray]

    def mean(self) -> dict[str, float]:
        """The mean of every metric over the queries (0.0 when there is none)."""
        return {m: float(v.mean()) if v.size else 0.0 for m, v in self.values.items()}

    def to_dict(self) -> dict[str, dict[str, float]]:
        """``{qid: {metric: value}}``, the shape pytrec_eval returns."""
        return {
            q: {m: float(v[i]) for m, v in self.values.items()} for i, q in enumerate(self.qids)
        }


def _flatten(
    nested: Mapping[str, Mapping[str, float]], qids: Sequence[str]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Query ordinals, document ids (text) and values of a ``{qid: {docid: value}}`` mapping."""
    counts = np.fromiter((len(nested[q]) for q in qids), dtype=np.int64, count=len(qids))
    qpos = np.repeat(np.arange(len(qids), dtype=np.int64), counts)
    docids = np.asarray([str(d) for q in qids for d in nested[q]], dtype=str)
    values = np.fromiter((v for q in qids for v in nested[q].values()), dtype=np.float64)
    return qpos, docids, values


def _flatten_run(run: Run, qids: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Query ordinals, document ids (text) and scores of the run's real hits for ``qids``."""
    run = run.select(qids)
    valid = run.valid()
    qpos = np.broadcast_to(np.arange(len(qids), dtype=np.int64)[:, None], valid.shape)[valid]
    return qpos, id_text(run.ids[valid]), run.scores[valid]


def _ranks(qpos: np.ndarray, n_queries: int) -> np.ndarray:
    """0-based rank of each entry within its query, for entries grouped by query in order."""
    counts = np.bincount(qpos, minlength=n_queries)
    starts = np.cumsum(counts) - counts
    return np.arange(qpos.size) - starts[qpos]


def _check_ks(k: int | Iterable[int]) -> list[int]:
    ks = [k] if isinstance(k, (int, np.integer)) else list(k)
    if not ks or any(int(c) < 1 for c in ks):
        raise InvalidInputError(f"cutoffs must be positive integers, got {k!r}")
    return sorted({int(c) for c in ks})


def evaluate_run(
    run: RunLike,
    qrels: QrelsLike,
    k: int | Iterable[int] = 10,
    measures: Sequence[str] = MEASURES,
    relevance_level: int = 1,
) -> QueryMetrics:
    """Score a run ``{qid: {docid: score}}`` against graded ``qrels`` ``{qid: {docid: grade}}``.

    Returns per-query values named ``"<measure>@<k>"`` (``ndcg@10``, ``recall@100`` ...).

    >>> m = evaluate_run({"q": {"a": 2.0, "b": 1.0}}, {"q": {"b": 1}}, k=10)
    >>> m.mean()["mrr@10"]
    0.5
    """
    if not isinstance(run, Run):
        run = Run.from_dict(run)
    unknown = [m for m in measures if m not in MEASURES]
    if unknown:
        raise InvalidInputError(f"unknown measures {unknown}; known: {', '.join(MEASURES)}")
    ks = _check_ks(k)
    run_qids = {str(q): q for q in run.qids.tolist()}
    qids = [q for q in qrels if str(q) in run_qids]
    nq = len(qids)

    q_run, d_run, _ = _flatten_run(run, [run_qids[str(q)] for q in qids])
    q_rel, d_rel, g_rel = _flatten(qrels, qids)
    all_ids = np.concatenate([d_run, d_rel])
    uniq, codes = np.unique(all_ids, return_inverse=True)
    codes = codes.astype(np.int64).reshape(-1)
    c_run, c_rel = codes[: len(d_run)], codes[len(d_run) :]

    # a Run's rows are in trec_eval order already (sparsearch.run.trec_order): rank = position
    rank = _ranks(q_run, nq)

    # grade of every retrieved document (0 when unjudged), by a sorted-key lookup
    key_rel = q_rel * max(uniq.size, 1) + c_rel
    by_key = np.argsort(key_rel, kind="stable")
    key_sorted = np.append(key_rel[by_key], -1)  # the sentinel never matches a real key
    grade_sorted = np.append(g_rel[by_key], 0.0)
    key_run = q_run * max(uniq.size, 1) + c_run
    pos = np.searchsorted(key_sorted[:-1], key_run)
    grade = np.where(key_sorted[pos] == key_run, grade_sorted[pos], 0.0)
    relevant = grade >= relevance_level
    gain = np.maximum(grade, 0.0)
    discount = 1.0 / np.log2(rank + 2.0)

    n_rel = np.bincount(q_rel, weights=(g_rel >= relevance_level), minlength=nq)
    has_rel = n_rel > 0
    safe_n_rel = np.where(has_rel, n_rel, 1.0)
    # ideal ranking: judged grades of each query, descending
    ideal_order = np.lexsort((-g_rel, q_rel))
    q_ideal = q_rel[ideal_order]
    ideal_gain = np.maximum(g_rel[ideal_order], 0.0)
    ideal_rank = _ranks(q_ideal, nq)
    ideal_discount = 1.0 / np.log2(ideal_rank + 2.0)
    # precision at each retrieved rank, for average precision
    cum_rel = np.cumsum(relevant)
    counts = np.bincount(q_run, minlength=nq)
    before = np.concatenate(([0], cum_rel))[np.cumsum(counts) - counts]
    prec_at = (cum_rel - before[q_run]) / (rank + 1.0)

    values: dict[str, np.ndarray] = {}
    for cut in ks:
        top = rank < cut
        rel_top = relevant & top
        n_rel_ret = np.bincount(q_run, weights=rel_top, minlength=nq)
        for measure in measures:
            if measure == "ndcg":
                dcg = np.bincount(q_run, weights=gain * discount * top, minlength=nq)
                idcg = np.bincount(
                    q_ideal, weights=ideal_gain * ideal_discount * (ideal_rank < cut), minlength=nq
                )
                val = np.where(idcg > 0, dcg / np.where(idcg > 0, idcg, 1.0), 0.0)
            elif measure == "mrr":
                val = np.zeros(nq)
                first_q, first_at = np.unique(q_run[rel_top], return_index=True)
                val[first_q] = 1.0 / (rank[rel_top][first_at] + 1.0)
            elif measure == "recall":
                val = np.where(has_rel, n_rel_ret / safe_n_rel, 0.0)
            elif measure == "map":
                ap = np.bincount(q_run, weights=prec_at * rel_top, minlength=nq)
                val = np.where(has_rel, ap / safe_n_rel, 0.0)
            else:  # precision
                val = n_rel_ret / cut
            values[f"{measure}@{cut}"] = val
    return QueryMetrics(qids=qids, values=values)
