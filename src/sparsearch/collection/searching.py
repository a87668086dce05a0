"""A collection's search: sparse, dense or both fused, an optional rerank, payloads and the
token-level explanation of each hit — all read from one snapshot."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from sparsearch.collection import stored
from sparsearch.collection.queries import Encoded
from sparsearch.collection.results import Hit
from sparsearch.errors import FilterError, InvalidInputError
from sparsearch.filters import FilterLike
from sparsearch.index import SparseIndex
from sparsearch.index.checks import check_k
from sparsearch.run import Run
from sparsearch.search import Hits, SearchParams
from sparsearch.sparse import SparseVectors

if TYPE_CHECKING:
    from sparsearch.collection.core import Collection


def run_search(
    col: Collection,
    encoded: Encoded,
    k: int,
    *,
    mode: str,
    fusion: str,
    flt: FilterLike | None,
    rerank: Any,
    explain: bool,
    with_payload: bool,
    candidates: int,
    threads: int | None,
    recall: float | None = None,
) -> list[list[Hit]]:
    """The hits of every encoded query (arguments checked by ``Collection.search_batch``)."""
    k = check_k(k)
    if isinstance(candidates, bool) or not isinstance(candidates, int) or candidates < 1:
        raise InvalidInputError(f"candidates must be a positive integer, got {candidates!r}")
    if recall is None:
        params = SearchParams(filter=flt, threads=threads)
    else:
        params = SearchParams(filter=flt, threads=threads, mode="approx", recall=recall)
    if params.filter is not None and stored.names_reserved(params.filter.to_dict()):
        raise FilterError(f"{stored.RESERVED!r} is the collection's own field: it cannot filter")
    view = col.index.pinned()
    n = len(encoded.texts)
    if n == 0:
        return []
    depth = max(k, candidates) if mode == "hybrid" or rerank is not None else k
    runs = []
    if mode in ("sparse", "hybrid"):
        runs.append(Run.from_hits(range(n), view.search(_sparse(encoded), depth, params=params)))
    if mode in ("dense", "hybrid"):
        assert col.dense is not None
        hits: Hits = col.dense.search(view.snapshot(), _dense(encoded), depth, params.filter)
        runs.append(Run.from_hits(range(n), hits))
    run = runs[0] if len(runs) == 1 else _fuse(col, fusion, runs)
    if rerank is not None:
        run = _rerank(rerank, run, encoded, view)
    run = run.cut(k)
    return _hits(col, view, run, encoded, explain=explain, with_payload=with_payload)


def _sparse(encoded: Encoded) -> SparseVectors:
    rows = []
    for i, row in enumerate(encoded.sparse):
        if row is None:
            raise InvalidInputError(f"query {i} is a dense vector: search it with mode='dense'")
        rows.append(row)
    return SparseVectors.concat(rows) if len(rows) > 1 else rows[0]


def _dense(encoded: Encoded) -> np.ndarray:
    rows = []
    for i, row in enumerate(encoded.dense):
        if row is None:
            raise InvalidInputError(
                f"query {i} is a sparse vector: it has no dense side (use mode='sparse')"
            )
        rows.append(row)
    return np.stack(rows)


def _fuse(col: Collection, fusion: str, runs: list[Run]) -> Run:
    from sparsearch.hybrid.fusion import RRF, LinearFusion

    fuser = RRF(k=col.config.rrf_k) if fusion == "rrf" else LinearFusion()
    return fuser.fuse(runs)


def _rerank(model: Any, run: Run, encoded: Encoded, view: SparseIndex) -> Run:
    """Rescore every query's candidates with a cross-encoder on the stored texts."""
    from sparsearch.hybrid.rerank import CrossEncoderReranker

    if any(text is None for text in encoded.texts):
        raise InvalidInputError("rerank needs text queries (a cross-encoder reads the query)")
    ids = list(dict.fromkeys(run.ids[run.valid()].tolist()))
    texts = [stored.text_of(row) for row in view.get_payloads(ids)]
    if any(text is None for text in texts):
        raise InvalidInputError("rerank needs the documents' texts: create with store_text=True")
    corpus = dict(zip(ids, texts, strict=True))
    queries = {i: text for i, text in enumerate(encoded.texts) if text is not None}
    reranker = CrossEncoderReranker(model, corpus, depth=run.k)
    return reranker.rerank(run, queries)


def _hits(
    col: Collection,
    view: SparseIndex,
    run: Run,
    encoded: Encoded,
    *,
    explain: bool,
    with_payload: bool,
) -> list[list[Hit]]:
    valid = run.valid()
    ids = list(dict.fromkeys(run.ids[valid].tolist()))
    rows: dict[Any, Any] = {}
    if (with_payload or explain) and ids:
        rows = dict(zip(ids, view.get_payloads(ids), strict=True))
    vectors: dict[Any, int] = {}
    docs = None
    if explain and ids:
        docs = view.get(ids)
        vectors = {doc_id: i for i, doc_id in enumerate(ids)}
    out = []
    for q in range(len(run)):
        found = []
        for doc_id, score in zip(run.ids[q][valid[q]], run.scores[q][valid[q]], strict=True):
            doc_id = doc_id.item() if isinstance(doc_id, np.generic) else doc_id
            explanation = None
            if explain:
                assert docs is not None
                explanation = _explain(col, encoded, q, docs, vectors[doc_id], rows[doc_id])
            found.append(
                Hit(
                    id=doc_id,
                    score=float(score),
                    payload=stored.user_payload(rows[doc_id]) if with_payload else None,
                    explanation=explanation,
                )
            )
        out.append(found)
    return out


def _explain(
    col: Collection, encoded: Encoded, q: int, docs: SparseVectors, row: int, payload: Any
) -> dict[str, Any]:
    """The matching tokens of query ``q`` and a document, with their contributions (summing to
    the sparse score), and the dense inner product when both have a dense vector."""
    out: dict[str, Any] = {}
    query = encoded.sparse[q]
    if query is not None:
        q_idx, q_val = query.row(0)
        d_idx, d_val = docs.row(row)
        common, at_q, at_d = np.intersect1d(q_idx, d_idx, assume_unique=True, return_indices=True)
        contributions = q_val[at_q].astype(np.float64) * d_val[at_d]
        order = np.argsort(-contributions, kind="stable")
        vocab = col.sparse_model.vocab
        out["sparse"] = {
            "score": float(contributions.sum()),
            "tokens": [
                {
                    "token": vocab[j] if vocab is not None else str(j),
                    "query_weight": float(q_val[at_q][i]),
                    "document_weight": float(d_val[at_d][i]),
                    "contribution": float(contributions[i]),
                }
                for i, j in zip(order.tolist(), common[order].tolist(), strict=True)
            ],
        }
    dense_query = encoded.dense[q]
    if dense_query is not None and col.config.dense is not None:
        vector = stored.dense_of(payload, col.config.dense.dim)
        if vector is not None:
            out["dense"] = {"score": float(np.dot(dense_query, vector))}
    return out
