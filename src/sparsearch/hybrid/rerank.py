"""The rerank stage: a cross-encoder rescores each query's top candidates."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sparsearch.errors import InvalidInputError, UnknownIdError
from sparsearch.hybrid.run import Run, top_k


class CrossEncoderReranker:
    """Rescore the top ``depth`` documents of every query with a sentence-transformers CrossEncoder.

    The output run holds only those ``depth`` documents, scored by the cross-encoder.
    ``model`` is a ``CrossEncoder`` or a model id / path to load as one (``sparsearch[dense]``).

    >>> reranker = CrossEncoderReranker("path/to/cross-encoder", depth=50)  # doctest: +SKIP
    >>> reranker.rerank(run, queries, corpus)  # doctest: +SKIP
    """

    def __init__(
        self,
        model: Any,
        *,
        depth: int = 100,
        batch_size: int = 32,
        show_progress_bar: bool | None = None,
    ) -> None:
        if depth < 1:
            raise InvalidInputError(f"rerank depth must be >= 1, got {depth}")
        if isinstance(model, str):
            from sentence_transformers import CrossEncoder

            model = CrossEncoder(model, device="cpu")
        self.model = model
        self.depth = depth
        self.batch_size = batch_size
        self.show_progress_bar = show_progress_bar

    def rerank(self, run: Run, queries: Mapping[str, str], corpus: Mapping[str, str]) -> Run:
        """Cross-encoder scores for each query's top ``depth`` documents of ``run``."""
        owners: list[tuple[str, str]] = []
        pairs: list[tuple[str, str]] = []
        for qid, docs in run.items():
            if qid not in queries:
                raise UnknownIdError(f"run query {qid!r} has no text")
            for docid, _ in top_k(docs, self.depth):
                if docid not in corpus:
                    raise UnknownIdError(f"run document {docid!r} is not in the corpus")
                owners.append((qid, docid))
                pairs.append((queries[qid], corpus[docid]))
        reranked: Run = {qid: {} for qid in run}
        if not pairs:
            return reranked
        scores = self.model.predict(
            pairs,
            batch_size=self.batch_size,
            show_progress_bar=self.show_progress_bar,
            convert_to_numpy=True,
        )
        for (qid, docid), score in zip(
            owners, scores.reshape(len(pairs), -1)[:, 0].tolist(), strict=True
        ):
            reranked[qid][docid] = score
        return reranked
