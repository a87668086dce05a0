"""SciFact for the training benchmarks: the splits (train minus dev, dev, test) and exact metrics.

The dev split is `carve_dev(train, DEV_QUERIES, seed=DEV_SEED, exclude=test)`: 150 judged
training queries, none repeating a test query. Runs train on ``rest``, choose every setting and
epoch on ``dev`` and read ``test`` once, after training.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "scifact"
DEV_QUERIES, DEV_SEED = 150, 0


@dataclass(frozen=True)
class Splits:
    """``rest`` (train without dev) to train on, ``dev`` to choose on, ``test`` read once."""

    rest: Any
    dev: Any
    test: Any

    @classmethod
    def load(cls, data: Path = DATA) -> Splits:
        from sparsearch.eval.beir import load_beir
        from sparsearch.eval.splits import carve_dev

        train, test = load_beir(data, "train"), load_beir(data, "test")
        rest, dev = carve_dev(train, DEV_QUERIES, seed=DEV_SEED, exclude=test)
        return cls(rest, dev, test)

    @property
    def corpus(self) -> list[str]:
        """Every document text (the three splits share the corpus)."""
        return list(self.test.doc_texts().values())


def judged_pairs(split) -> list[tuple[str, str]]:
    """(query id, document id) of every judged pair with grade > 0 whose document exists."""
    return [
        (qid, did)
        for qid, judged in split.qrels.items()
        for did, grade in judged.items()
        if grade > 0 and qid in split.queries and did in split.corpus
    ]


def exact_metrics(split, qids: list[str], doc_ids: list[str], scores) -> dict[str, float]:
    """nDCG@10 and Recall@100 of the exact top 100 of a (queries × corpus) score matrix (dense
    or scipy sparse)."""
    from sparsearch.eval.metrics import evaluate_run

    scores = scores.toarray() if hasattr(scores, "toarray") else np.asarray(scores)
    top = np.argsort(-scores, axis=1, kind="stable")[:, :100]
    run = {q: {doc_ids[j]: float(scores[i, j]) for j in top[i]} for i, q in enumerate(qids)}
    means = evaluate_run(run, split.qrels, k=[10, 100]).mean()
    return {"ndcg@10": float(means["ndcg@10"]), "recall@100": float(means["recall@100"])}
