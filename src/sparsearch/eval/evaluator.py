"""IR evaluators: a retriever (or a sparse encoder) over local BEIR folders → metrics as JSON."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from sparsearch.errors import InvalidInputError
from sparsearch.eval.beir import BeirDataset, load_beir
from sparsearch.eval.metrics import MEASURES, evaluate_run
from sparsearch.eval.sparsity import sparsity_stats
from sparsearch.hybrid import Retriever, RetrieverBuilder, SparseRetriever

DEFAULT_K = (10, 100)


def _dataset(data: BeirDataset | str | Path, split: str) -> BeirDataset:
    return data if isinstance(data, BeirDataset) else load_beir(data, split)


def evaluate_retriever(
    retriever: Retriever | RetrieverBuilder,
    data: BeirDataset | str | Path,
    split: str = "test",
    k: int | Iterable[int] = DEFAULT_K,
    ignore_identical_ids: bool = False,
    measures: Sequence[str] = MEASURES,
) -> dict[str, Any]:
    """Search a BEIR split's judged queries and score the run.

    ``retriever`` is either a :class:`~sparsearch.hybrid.Retriever` already built over the
    dataset's corpus (say, over an index opened from disk), or a builder called with the corpus
    ``{docid: text}`` (``BM25Retriever``, ``functools.partial(SparseRetriever.from_corpus,
    encoder)``, a function returning a ``Pipeline``). ``data`` is a BEIR folder or a loaded
    :class:`BeirDataset`.

    Returns ``{"dataset", "split", "n_docs", "n_queries", "ndcg@10", ..., "recall@100", ...}``
    plus ``query_active_dims``, ``doc_active_dims`` and ``flops`` when a learned-sparse stage is
    involved. ``ignore_identical_ids`` drops hits whose
    id equals the query id (ArguAna-style sets only: on cranfield, say, numeric query ids equal
    unrelated doc ids).
    """
    cuts = [k] if isinstance(k, int) else sorted(set(k))
    dataset = _dataset(data, split)
    if isinstance(retriever, type) or not isinstance(retriever, Retriever):
        retriever = retriever(dataset.doc_texts())
    depth = max(cuts)
    retrieval = retriever.retrieve(dataset.queries, depth + int(ignore_identical_ids))
    run = retrieval.run
    if ignore_identical_ids:
        run = run.drop_identical_ids()
    metrics = evaluate_run(run.cut(depth), dataset.qrels, k=cuts, measures=measures).mean()
    result: dict[str, Any] = {
        "dataset": dataset.name,
        "split": dataset.split,
        "n_docs": len(dataset.corpus),
        "n_queries": len(dataset.queries),
        **metrics,
    }
    if retrieval.query_vectors is not None and retrieval.doc_stats is not None:
        result.update(sparsity_stats(retrieval.query_vectors, retrieval.doc_stats))
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

    Example::

        result = evaluate("rasyosef/splade-tiny", "../shared/data/scifact")
        round(result["ndcg@10"], 4)
        # -> 0.6466
    """
    build = partial(
        SparseRetriever.from_corpus,
        encoder,
        batch_size=batch_size,
        precision=precision,
        cache_dir=cache_dir,
        use_cache=use_cache,
        show_progress_bar=show_progress_bar,
        index_options=index_options,
    )
    name = str(encoder) if isinstance(encoder, (str, Path)) else type(encoder).__name__
    result = {"model": name, **evaluate_retriever(build, data_dir, split, k, ignore_identical_ids)}
    if output_path is not None:
        write_json(output_path, result)
    return result


def evaluate_many(
    build: RetrieverBuilder,
    data_dirs: Sequence[str | Path],
    split: str = "test",
    k: int | Iterable[int] = DEFAULT_K,
    ignore_identical_ids: bool = False,
    output_path: str | Path | None = None,
) -> dict[str, Any]:
    """The NanoBEIR idea over local folders: one row per dataset and their unweighted ``mean``.

    ``build`` makes a retriever from each dataset's corpus (see :func:`evaluate_retriever`).
    Returns ``{"datasets": [row, ...], "mean": {metric: mean over datasets}}``; the mean covers
    every numeric field that all rows share (metrics, active dims, FLOPS).
    """
    if isinstance(build, Retriever) and not isinstance(build, type):
        raise InvalidInputError(
            "evaluate_many needs a builder (corpus -> retriever), not a retriever built over one "
            "corpus: pass e.g. BM25Retriever or functools.partial(SparseRetriever.from_corpus, enc)"
        )
    rows = [evaluate_retriever(build, d, split, k, ignore_identical_ids) for d in data_dirs]
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
