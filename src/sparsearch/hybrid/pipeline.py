"""Compose stages: retrievers → fuse → rerank → cut."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sparsearch.errors import InvalidInputError
from sparsearch.hybrid.fusion import RRF, LinearFusion
from sparsearch.hybrid.rerank import CrossEncoderReranker
from sparsearch.hybrid.run import Retriever, Run, cut


class Pipeline:
    """Several first stages fused into one run, optionally reranked, cut to ``k``.

    Each retriever returns ``depth`` candidates per query (at least ``k``); with more than one
    retriever a ``fusion`` (``RRF`` or ``LinearFusion``) is required. A pipeline is itself a
    retriever (``index`` + ``retrieve``), so pipelines nest.

    >>> hybrid = Pipeline([SparseRetriever(enc), DenseRetriever(st)], fusion=RRF(k=60))  # doctest: +SKIP
    >>> hybrid.index(corpus); run = hybrid.retrieve(queries, k=10)  # doctest: +SKIP
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
        self.depth = depth
        self._corpus: Mapping[str, str] = {}

    def index(self, corpus: Mapping[str, str]) -> None:
        """Index the corpus ``{docid: text}`` in every retriever."""
        for retriever in self.retrievers:
            retriever.index(corpus)
        self._corpus = corpus

    def retrieve(self, queries: Mapping[str, str], k: int) -> Run:
        """The top ``k`` documents of each query after fusion and reranking."""
        depth = max(self.depth, k)
        runs = [retriever.retrieve(queries, depth) for retriever in self.retrievers]
        run = self.fusion.fuse(runs) if self.fusion is not None else runs[0]
        if self.reranker is not None:
            run = self.reranker.rerank(cut(run, depth), queries, self._corpus)
        return cut(run, k)
