"""A dev split carved from a training split, so recipes and checkpoints are chosen without
looking at the test split.

The draw is fixed by ``seed`` alone: every judged training query is ranked by the SHA-256 of
``"{seed}:{query id}"`` and the first ``n_queries`` go to dev, so the same dev set comes out on
every machine and with every library version (no random-number generator involved). Queries
whose text also occurs in the ``exclude`` split (say, SciFact's test queries: 2 of its 300 repeat
a training query) are never drawn, and are dropped from what is left for training too.

>>> corpus = {d: {"title": "", "text": d} for d in ("d1", "d2", "d3")}
>>> queries = {"q1": "a", "q2": "b", "q3": "c", "q4": "d"}
>>> qrels = {"q1": {"d1": 1}, "q2": {"d2": 1}, "q3": {"d3": 1}, "q4": {"d1": 1}}
>>> train = BeirDataset("toy", "train", corpus, queries, qrels)
>>> rest, dev = carve_dev(train, 2, seed=0)
>>> sorted(dev.queries), sorted(rest.queries), dev.split, rest.split
(['q2', 'q4'], ['q1', 'q3'], 'dev', 'train-dev')
"""

from __future__ import annotations

import hashlib

from sparsearch.errors import InvalidInputError
from sparsearch.eval.beir import BeirDataset

DEV = "dev"
REST = "train-dev"


def carve_dev(
    train: BeirDataset, n_queries: int, *, seed: int = 0, exclude: BeirDataset | None = None
) -> tuple[BeirDataset, BeirDataset]:
    """``(train without dev, dev)``: ``n_queries`` judged queries of ``train`` (with their qrels)
    drawn by ``seed`` as the module says; both keep the whole corpus."""
    if isinstance(n_queries, bool) or not isinstance(n_queries, int) or n_queries < 1:
        raise InvalidInputError(f"n_queries must be a positive integer, got {n_queries!r}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise InvalidInputError(f"seed must be an integer, got {seed!r}")
    seen = {_normal(text) for text in exclude.queries.values()} if exclude is not None else set()
    usable = [q for q, text in train.queries.items() if _normal(text) not in seen]
    if n_queries >= len(usable):
        raise InvalidInputError(
            f"{train.name}/{train.split}: {len(usable)} usable queries, cannot carve "
            f"{n_queries} for dev and keep any for training"
        )
    ranked = sorted(usable, key=lambda q: hashlib.sha256(f"{seed}:{q}".encode()).digest())
    dev = set(ranked[:n_queries])
    rest = [q for q in usable if q not in dev]
    return _subset(train, rest, REST), _subset(train, [q for q in usable if q in dev], DEV)


def _normal(text: str) -> str:
    """A query text as compared for duplicates: case and spacing ignored."""
    return " ".join(text.lower().split())


def _subset(data: BeirDataset, query_ids: list[str], split: str) -> BeirDataset:
    return BeirDataset(
        name=data.name,
        split=split,
        corpus=data.corpus,
        queries={q: data.queries[q] for q in query_ids},
        qrels={q: data.qrels[q] for q in query_ids},
    )
