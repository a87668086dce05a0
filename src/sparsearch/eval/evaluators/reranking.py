"""Reranking: each query ranks its own candidates (positives and negatives) by similarity.

The ranking metrics of one candidate list, with ties handled explicitly (sentence-transformers
computes AP and nDCG with scikit-learn, whose definitions these are; its MRR takes the order of an
unstable ``torch.argsort``, which leaves tied candidates in an arbitrary order):

- AP: scikit-learn's ``average_precision_score``: tied candidates form one threshold, so a tied
  group counts as retrieved at once.
- nDCG@k: scikit-learn's ``ndcg_score`` (``ignore_ties=False``): each candidate of a tied group
  gets the group's mean gain, which is the expected DCG when ties come in random order.
- MRR@k: the expected reciprocal rank of the first positive when ties come in random order (so a
  model that scores everything alike is not credited with a perfect MRR).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from math import comb
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from sparsearch.errors import InvalidInputError
from sparsearch.eval.evaluators.base import (
    SparseEvaluator,
    TextEncoder,
    check_positive_int,
    check_similarity,
    check_texts,
    model_similarity,
    pairwise_similarity,
    sparsity,
)
from sparsearch.eval.evaluators.files import read_rows

Scores = npt.NDArray[np.floating[Any]]
Relevant = npt.NDArray[np.bool_]


def _tie_groups(scores: Scores, relevant: Relevant) -> tuple[Relevant, npt.NDArray[np.int64]]:
    """Relevance in score order (descending) and the exclusive end of each group of tied scores."""
    order = np.argsort(-scores, kind="stable")
    ranked = scores[order]
    ends = np.flatnonzero(np.r_[ranked[1:] != ranked[:-1], True]) + 1
    return relevant[order], ends


def average_precision(scores: Scores, relevant: Relevant) -> float:
    """AP with tied scores as one threshold (scikit-learn's ``average_precision_score``).

    >>> average_precision(np.array([0.9, 0.5, 0.5]), np.array([False, True, False]))
    0.3333333333333333
    """
    ranked, ends = _tie_groups(scores, relevant)
    hits = np.cumsum(ranked)[ends - 1]
    recall_steps = np.diff(hits, prepend=0) / hits[-1]
    return float((recall_steps * hits / ends).sum())


def ndcg_at_k(scores: Scores, relevant: Relevant, k: int) -> float:
    """nDCG@k of binary relevance, ties averaged (scikit-learn's ``ndcg_score``).

    >>> round(ndcg_at_k(np.array([0.5, 0.5]), np.array([True, False]), 10), 6)  # (1 + 1/log2 3)/2
    0.815465
    """
    ranked, ends = _tie_groups(scores, relevant)
    discount = 1.0 / np.log2(np.arange(len(ranked)) + 2.0)
    discount[k:] = 0.0
    total_discount = np.cumsum(discount)
    group_gain = np.add.reduceat(ranked.astype(np.float64), np.r_[0, ends[:-1]])
    group_size = np.diff(ends, prepend=0)
    dcg = (group_gain / group_size * np.diff(total_discount[ends - 1], prepend=0.0)).sum()
    return float(dcg / total_discount[int(relevant.sum()) - 1])


def reciprocal_rank_at_k(scores: Scores, relevant: Relevant, k: int) -> float:
    """1 / rank of the first positive (0 beyond ``k``), in expectation over the order of ties.

    >>> reciprocal_rank_at_k(np.array([0.5, 0.5]), np.array([True, False]), 10)  # (1 + 1/2) / 2
    0.75
    """
    best = scores[relevant].max()
    above = int((scores > best).sum())
    tied = int((scores == best).sum())
    tied_positives = int((scores[relevant] == best).sum())
    # the first positive is the (j+1)-th of the tied group with probability
    # C(tied - 1 - j, tied_positives - 1) / C(tied, tied_positives)
    expected = sum(
        comb(tied - 1 - j, tied_positives - 1) / (above + j + 1)
        for j in range(tied - tied_positives + 1)
        if above + j + 1 <= k
    )
    return expected / comb(tied, tied_positives)


def _sample(sample: Any, i: int) -> dict[str, Any]:
    """One checked sample: ``query`` a str, ``positive`` / ``negative`` str or lists of str."""
    where = f"samples[{i}]"
    if not isinstance(sample, Mapping) or not {"query", "positive", "negative"} <= set(sample):
        raise InvalidInputError(
            f"{where} must be a mapping with 'query', 'positive' and 'negative', "
            f"got {repr(sample)[:80]}"
        )
    if not isinstance(sample["query"], str):
        raise InvalidInputError(f"{where}['query'] must be a str, got {repr(sample['query'])[:80]}")
    out: dict[str, Any] = {"query": sample["query"]}
    for key in ("positive", "negative"):
        texts = [sample[key]] if isinstance(sample[key], str) else sample[key]
        empty = isinstance(texts, (list, tuple)) and not texts  # the sample is left out
        out[key] = [] if empty else check_texts(texts, f"{where}[{key!r}]")
    return out


class RerankingEvaluator(SparseEvaluator):
    """MAP, MRR@k and nDCG@k of each query's own candidates ranked by similarity, as
    sentence-transformers' ``SparseRerankingEvaluator``.

    ``samples``: ``[{"query": str, "positive": [str, ...], "negative": [str, ...]}, ...]`` (a
    single string counts as a one-item list). Queries are encoded as queries, candidates as
    documents; a sample without positives or without negatives is left out, as
    sentence-transformers does (``samples`` keeps the ones used; none left is an error). Scores
    use ``similarity_fn_name`` (``"dot"`` or ``"cosine"``; default the model's own). Ties: see
    the module docstring. Keys: ``map``, ``mrr@{at_k}``, ``ndcg@{at_k}`` (primary) and
    ``query_`` / ``corpus_`` ``active_dims`` and ``sparsity_ratio``.

    Example::

        samples = [{"query": "fever", "positive": ["aspirin lowers fever"], "negative": ["paris"]}]
        RerankingEvaluator(samples, at_k=10, name="dev")(model)["dev_ndcg@10"]
    """

    def __init__(
        self,
        samples: Sequence[Mapping[str, Any]],
        at_k: int = 10,
        name: str = "",
        similarity_fn_name: str | None = None,
        batch_size: int = 64,
        show_progress_bar: bool = False,
        max_active_dims: int | None = None,
    ) -> None:
        super().__init__(name, batch_size, show_progress_bar, max_active_dims)
        if isinstance(samples, (str, Mapping)) or not isinstance(samples, Sequence):
            raise InvalidInputError(f"samples must be a list of mappings, got {samples!r}")
        checked = [_sample(sample, i) for i, sample in enumerate(samples)]
        self.samples = [s for s in checked if s["positive"] and s["negative"]]
        if not self.samples:
            raise InvalidInputError(
                f"none of the {len(checked)} samples has both a positive and a negative"
            )
        self.at_k = check_positive_int(at_k, "at_k")
        self.similarity_fn_name = (
            None
            if similarity_fn_name is None
            else check_similarity(similarity_fn_name, "similarity_fn_name")
        )

    @classmethod
    def from_jsonl(cls, path: str | Path, **kwargs: Any) -> RerankingEvaluator:
        """From a JSONL file of ``{"query": str, "positive": [str], "negative": [str]}`` rows
        (each list may also be one string); ``kwargs`` go to the constructor."""
        return cls(
            read_rows(path, {"query": "text", "positive": "texts", "negative": "texts"}), **kwargs
        )

    def _evaluate(self, model: TextEncoder) -> tuple[dict[str, float], str]:
        queries = self._encode(model, [s["query"] for s in self.samples], "query")
        candidates = [s["positive"] + s["negative"] for s in self.samples]
        docs = self._encode(model, [text for texts in candidates for text in texts], "document")
        sizes = np.array([len(texts) for texts in candidates])
        scores = pairwise_similarity(
            queries[np.repeat(np.arange(len(sizes)), sizes)],
            docs,
            self.similarity_fn_name or model_similarity(model),
        )
        ap, rr, ndcg = [], [], []
        for sample, start, size in zip(self.samples, np.cumsum(sizes) - sizes, sizes, strict=True):
            own = scores[start : start + size]
            relevant = np.arange(size) < len(sample["positive"])
            ap.append(average_precision(own, relevant))
            rr.append(reciprocal_rank_at_k(own, relevant, self.at_k))
            ndcg.append(ndcg_at_k(own, relevant, self.at_k))
        metrics = {
            "map": float(np.mean(ap)),
            f"mrr@{self.at_k}": float(np.mean(rr)),
            f"ndcg@{self.at_k}": float(np.mean(ndcg)),
        }
        for side, vectors in (("query", queries), ("corpus", docs)):
            metrics.update({f"{side}_{k}": v for k, v in sparsity(vectors).items()})
        return metrics, f"ndcg@{self.at_k}"
