"""IR evaluators: a retriever (or a sparse encoder) over local BEIR folders → metrics as JSON."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from sparsearch.eval.beir import load_beir
from sparsearch.eval.metrics import MEASURES, evaluate_run
from sparsearch.eval.sparsity import sparsity_stats
from sparsearch.hybrid import Pipeline, Retriever, SparseRetriever, cut, drop_identical_ids

DEFAULT_K = (10, 100)


def _sparse_stage(retriever: Retriever) -> SparseRetriever | None:
    """The (first) learned-sparse stage of a retriever or pipeline, for sparsity statistics."""
    if isinstance(retriever, SparseRetriever):
        return retriever
    if isinstance(retriever, Pipeline):
        return next((r for r in map(_sparse_stage, retriever.retrievers) if r is not None), None)
    return None


def evaluate_retriever(
    retriever: Retriever,
    data_dir: str | Path,
    split: str = "test",
    k: int | Iterable[int] = DEFAULT_K,
    ignore_identical_ids: bool = False,
    measures: Sequence[str] = MEASURES,
) -> dict[str, Any]:
    """Index a BEIR folder's corpus with any retriever, search its judged queries, score the run.

    Returns ``{"dataset", "split", "n_docs", "n_queries", "ndcg@10", ..., "recall@100", ...}``
    plus ``query_active_dims``, ``doc_active_dims`` and ``flops`` when a learned-sparse stage is
    involved. ``ignore_identical_ids`` drops hits whose id equals the query id (ArguAna-style
    sets only: on cranfield, say, numeric query ids equal unrelated doc ids).
    """
    cuts = [k] if isinstance(k, int) else sorted(set(k))
    dataset = load_beir(data_dir, split)
    retriever.index(dataset.doc_texts())
    depth = max(cuts)
    run = retriever.retrieve(dataset.queries, depth + int(ignore_identical_ids))
    if ignore_identical_ids:
        run = drop_identical_ids(run)
    run = cut(run, depth)
    result: dict[str, Any] = {
        "dataset": dataset.name,
        "split": split,
        "n_docs": len(dataset.corpus),
        "n_queries": len(dataset.queries),
        **evaluate_run(run, dataset.qrels, k=cuts, measures=measures).mean(),
    }
    sparse = _sparse_stage(retriever)
    if sparse is not None and sparse.doc_vectors is not None and sparse.query_vectors is not None:
        result.update(sparsity_stats(sparse.query_vectors, sparse.doc_vectors))
    return result


def evaluate(
    encoder: Any,
    data_dir: str | Path,
    split: str = "test",
    k: int | Iterable[int] = DEFAULT_K,
    ignore_identical_ids: bool = False,
    *,
    batch_size: int = 32,
    cache_dir: str | Path | None = None,
    use_cache: bool = True,
    show_progress_bar: bool | None = True,
    index_options: Mapping[str, Any] | None = None,
    output_path: str | Path | None = None,
    precision: str = "float32",
) -> dict[str, Any]:
    """Evaluate a sparse encoder (object, hub id or path) on one local BEIR folder.

    The corpus is encoded with a progress bar and cached by content hash under ``cache_dir``
    (default ``~/.cache/sparsearch``), so a re-run is instant; it is indexed in a
    :class:`sparsearch.SparseIndex` (``index_options``) and searched exactly. ``precision``:
    as in :meth:`sparsearch.SparseEncoder.encode`.

    >>> result = evaluate("rasyosef/splade-tiny", "../shared/data/scifact")  # doctest: +SKIP
    >>> round(result["ndcg@10"], 4)  # doctest: +SKIP
    0.6466
    """
    retriever = SparseRetriever(
        encoder,
        batch_size=batch_size,
        cache_dir=cache_dir,
        use_cache=use_cache,
        show_progress_bar=show_progress_bar,
        index_options=index_options,
        precision=precision,
    )
    name = str(encoder) if isinstance(encoder, (str, Path)) else type(encoder).__name__
    result = {
        "model": name,
        **evaluate_retriever(retriever, data_dir, split, k, ignore_identical_ids),
    }
    if output_path is not None:
        write_json(output_path, result)
    return result


def evaluate_many(
    retriever: Retriever,
    data_dirs: Sequence[str | Path],
    split: str = "test",
    k: int | Iterable[int] = DEFAULT_K,
    ignore_identical_ids: bool = False,
    output_path: str | Path | None = None,
) -> dict[str, Any]:
    """The NanoBEIR idea over local folders: one row per dataset and their unweighted ``mean``.

    Returns ``{"datasets": [row, ...], "mean": {metric: mean over datasets}}``; the mean covers
    every numeric field that all rows share (metrics, active dims, FLOPS).
    """
    rows = [evaluate_retriever(retriever, d, split, k, ignore_identical_ids) for d in data_dirs]
    shared = [key for key, value in rows[0].items() if isinstance(value, float)] if rows else []
    shared = [key for key in shared if all(key in row for row in rows)]
    mean = {key: sum(row[key] for row in rows) / len(rows) for key in shared}
    result = {"datasets": rows, "mean": mean}
    if output_path is not None:
        write_json(output_path, result)
    return result


def write_json(path: str | Path, data: Any) -> None:
    """Write results as indented JSON (creating the parent folder)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
