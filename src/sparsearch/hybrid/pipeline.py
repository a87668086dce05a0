"""Compose stages: retrievers → fuse → rerank → cut."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from sparsearch.errors import InvalidInputError
from sparsearch.hybrid.fusion import RRF, LinearFusion
from sparsearch.hybrid.rerank import CrossEncoderReranker
from sparsearch.hybrid.retrieval import Retrieval, Retriever, check_k


class Pipeline:
    """Several first stages fused into one run, optionally reranked, cut to ``k``.

    Each retriever returns ``depth`` candidates per query (at least ``k``); with more than one
    retriever a ``fusion`` (``RRF`` or ``LinearFusion``) is required. A pipeline is itself a
    :class:`Retriever`, so pipelines nest. The result carries the query vectors and corpus
    statistics of the first learned-sparse stage, and each stage's time.

    Example::

        hybrid = Pipeline([sparse, dense], fusion=RRF(k=60))
        hybrid.retrieve(queries, k=10).run
    """

    def __init__(
        self,
        retrievers: Sequence[Retriever],
        fusion: RRF | LinearFusion | None = None,
        reranker: CrossEncoderReranker | None = None,
        depth: int = 100,
    ) -> None:
        if not retrievers:
            raise InvalidInputError("a pipeline needs at least one retriever")
        if len(retrievers) > 1 and fusion is None:
            raise InvalidInputError("several retrievers need a fusion stage (RRF or LinearFusion)")
        self.retrievers = list(retrievers)
        self.fusion = fusion
        self.reranker = reranker
        self.depth = check_k(depth)

    def retrieve(self, queries: Mapping[Any, str], k: int) -> Retrieval:
        """The top ``k`` documents of each query after fusion and reranking."""
        k = check_k(k)
        depth = max(self.depth, k)
        stages = [retriever.retrieve(queries, depth) for retriever in self.retrievers]
        seconds = {
            f"{i}.{step}": value
            for i, stage in enumerate(stages)
            for step, value in stage.seconds.items()
        }
        start = time.perf_counter()
        run = self.fusion.fuse([s.run for s in stages]) if self.fusion else stages[0].run
        seconds["fuse"] = time.perf_counter() - start
        if self.reranker is not None:
            start = time.perf_counter()
            run = self.reranker.rerank(run.cut(depth), queries)
            seconds["rerank"] = time.perf_counter() - start
        sparse = next((s for s in stages if s.query_vectors is not None), None)
        return Retrieval(
            run=run.cut(k),
            query_vectors=None if sparse is None else sparse.query_vectors,
            doc_stats=None if sparse is None else sparse.doc_stats,
            seconds=seconds,
        )
