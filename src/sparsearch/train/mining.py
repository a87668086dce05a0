"""Data helpers: hard-negative mining (BM25 or a sparse model, through the engine) and teacher
scoring."""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np

from sparsearch.errors import ConfigError
from sparsearch.hybrid import BM25Retriever, Retriever, RetrieverBuilder, SparseRetriever


def _retriever(spec: str | Any, corpus: dict[int, str]) -> Retriever:
    """A retriever over ``corpus`` (ids = corpus positions) from a mining ``retriever`` spec."""
    if isinstance(spec, str):
        if spec != "bm25":
            raise ConfigError(
                f"unknown retriever {spec!r}: use 'bm25', a sparse encoder or a builder"
            )
        return BM25Retriever(corpus)
    if hasattr(spec, "encode_query") and hasattr(spec, "encode_document"):
        return SparseRetriever.from_corpus(spec, corpus, use_cache=False, show_progress_bar=False)
    if callable(spec):
        built: Retriever = spec(corpus)
        return built
    raise ConfigError(f"unknown retriever {spec!r}: use 'bm25', a sparse encoder or a builder")


def mine_hard_negatives(
    dataset: Any,
    corpus: Sequence[str],
    retriever: str | Any | RetrieverBuilder = "bm25",
    num_negatives: int = 1,
    range_min: int = 0,
    range_max: int = 50,
    sampling: str = "top",
    seed: int = 12,
    query_column: str = "query",
    positive_column: str = "positive",
):
    """Add hard negatives to (query, positive) rows: a new dataset with `negative_1..n` columns.

    `retriever`: "bm25", a sparse encoder (its vectors are searched exactly in a `SparseIndex`),
    or a builder called with ``{position: text}`` that returns a `sparsearch.hybrid.Retriever`.
    For each query, candidates are the retriever's ranks `range_min`..`range_max` (0-based) with
    every known positive of that query removed; `sampling="top"` keeps the best `num_negatives`,
    `"random"` draws them at random. Rows whose query lacks enough candidates are dropped.
    """
    from datasets import Dataset

    if sampling not in ("top", "random"):
        raise ConfigError(f"sampling must be 'top' or 'random', got {sampling!r}")
    if not 0 <= range_min < range_max or num_negatives < 1:
        raise ConfigError("need 0 <= range_min < range_max and num_negatives >= 1")
    for column in (query_column, positive_column):
        if column not in dataset.column_names:
            raise ConfigError(f"column {column!r} not in dataset columns {dataset.column_names}")
    search = _retriever(retriever, dict(enumerate(corpus)))
    queries, positives = dataset[query_column], dataset[positive_column]
    known = defaultdict(set)
    for q, p in zip(queries, positives, strict=True):
        known[q].add(p)
    unique = list(known)
    run = search.retrieve(dict(enumerate(unique)), range_max).run
    candidates = {
        q: [corpus[j] for j, _ in run.row(i)[range_min:range_max] if corpus[j] not in known[q]]
        for i, q in enumerate(unique)
    }
    rng = random.Random(seed)
    rows: dict[str, list[str]] = {query_column: [], positive_column: []}
    names = [f"negative_{i + 1}" for i in range(num_negatives)]
    rows.update({n: [] for n in names})
    for q, p in zip(queries, positives, strict=True):
        pool = candidates[q]
        if len(pool) < num_negatives:
            continue
        picked = pool[:num_negatives] if sampling == "top" else rng.sample(pool, num_negatives)
        rows[query_column].append(q)
        rows[positive_column].append(p)
        for name, text in zip(names, picked, strict=True):
            rows[name].append(text)
    return Dataset.from_dict(rows)


def score_with_teacher(dataset, teacher, batch_size: int = 32, label_column: str = "label"):
    """Add teacher scores for distillation: `label` = [s(q, c1), ..., s(q, cn)] per row.

    The first column is the query, the others its candidates. `teacher` is a sparse encoder
    (has `encode_query` / `encode_document`; scores are dot products) or a callable taking
    (queries, documents) lists and returning one score per pair (e.g. a cross-encoder).
    """
    columns = [c for c in dataset.column_names if c != label_column]
    if len(columns) < 2:
        raise ConfigError("teacher scoring needs a query column and at least one candidate column")
    queries = dataset[columns[0]]
    per_column = []
    for column in columns[1:]:
        docs = dataset[column]
        if hasattr(teacher, "encode_query"):
            q = teacher.encode_query(queries, batch_size=batch_size).to_scipy()
            d = teacher.encode_document(docs, batch_size=batch_size).to_scipy()
            scores = np.asarray(q.multiply(d).sum(axis=1)).ravel()
        else:
            scores = np.asarray(teacher(list(queries), list(docs)), dtype=np.float32)
        per_column.append(scores)
    labels = np.stack(per_column, axis=1).astype(np.float32)
    if label_column in dataset.column_names:
        dataset = dataset.remove_columns(label_column)
    return dataset.add_column(label_column, labels.tolist())
