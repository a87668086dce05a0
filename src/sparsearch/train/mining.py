"""Data helpers: hard-negative mining (BM25 or a sparse model) and teacher scoring."""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Callable, Sequence

import numpy as np

from sparsearch.errors import ConfigError

#: a retriever: (queries, corpus, k) → (n_queries × k) array of corpus positions, best first
Retriever = Callable[[Sequence[str], Sequence[str], int], np.ndarray]


def bm25_retriever(queries: Sequence[str], corpus: Sequence[str], k: int) -> np.ndarray:
    """Top-k corpus positions per query with BM25 (bm25s, English stop words)."""
    import bm25s

    retriever = bm25s.BM25()
    retriever.index(bm25s.tokenize(list(corpus), stopwords="en", show_progress=False), show_progress=False)
    tokens = bm25s.tokenize(list(queries), stopwords="en", show_progress=False)
    ids, _ = retriever.retrieve(tokens, k=min(k, len(corpus)), show_progress=False)
    return np.asarray(ids)


def model_retriever(model, batch_size: int = 32) -> Retriever:
    """A retriever that encodes with a sparse `model` and ranks by exact dot product."""

    def retrieve(queries: Sequence[str], corpus: Sequence[str], k: int) -> np.ndarray:
        q = model.encode_query(list(queries), batch_size=batch_size).to_scipy()
        d = model.encode_document(list(corpus), batch_size=batch_size).to_scipy()
        scores = (q @ d.T).toarray()
        k = min(k, scores.shape[1])
        top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1, kind="stable")
        return np.take_along_axis(top, order, axis=1)

    return retrieve


def mine_hard_negatives(
    dataset,
    corpus: Sequence[str],
    retriever: Retriever | str = "bm25",
    num_negatives: int = 1,
    range_min: int = 0,
    range_max: int = 50,
    sampling: str = "top",
    seed: int = 12,
    query_column: str = "query",
    positive_column: str = "positive",
):
    """Add hard negatives to (query, positive) rows: a new dataset with `negative_1..n` columns.

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
    if retriever == "bm25":
        retriever = bm25_retriever
    elif isinstance(retriever, str):
        raise ConfigError(f"unknown retriever {retriever!r}: use 'bm25' or a callable")
    queries, positives = dataset[query_column], dataset[positive_column]
    known = defaultdict(set)
    for q, p in zip(queries, positives, strict=True):
        known[q].add(p)
    unique = list(known)
    ranked = retriever(unique, corpus, range_max)
    candidates = {
        q: [corpus[j] for j in row[range_min:range_max] if corpus[j] not in known[q]]
        for q, row in zip(unique, ranked, strict=True)
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
