"""The rerank stage: a cross-encoder rescores each query's top candidates."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from sparsearch.errors import InvalidInputError, UnknownIdError
from sparsearch.run import Run


class CrossEncoderReranker:
    """Rescore the top ``depth`` documents of every query with a sentence-transformers CrossEncoder.

    ``model`` is a ``CrossEncoder`` or a model id / path to load as one (``sparsearch[dense]``);
    ``corpus`` gives the text of every document id a run may name. The output run holds only
    those ``depth`` documents, scored by the cross-encoder.

    Example::

        reranker = CrossEncoderReranker("path/to/cross-encoder", corpus, depth=50)
        reranker.rerank(run, queries)
    """

    def __init__(
        self,
        model: Any,
        corpus: Mapping[Any, str],
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
        self.corpus = corpus
        self.depth = depth
        self.batch_size = batch_size
        self.show_progress_bar = show_progress_bar

    def rerank(self, run: Run, queries: Mapping[Any, str]) -> Run:
        """Cross-encoder scores for each query's top ``depth`` documents of ``run``."""
        top = run.cut(self.depth)
        pairs: list[tuple[str, str]] = []
        for qid, hits in top:
            if qid not in queries:
                raise UnknownIdError(f"run query {qid!r} has no text")
            for docid, _ in hits:
                if docid not in self.corpus:
                    raise UnknownIdError(f"run document {docid!r} is not in the corpus")
                pairs.append((queries[qid], self.corpus[docid]))
        valid = top.valid()
        scores = np.full(valid.shape, -np.inf)
        if pairs:
            predicted = self.model.predict(
                pairs,
                batch_size=self.batch_size,
                show_progress_bar=self.show_progress_bar,
                convert_to_numpy=True,
            )
            scores[valid] = np.asarray(predicted, np.float64).reshape(len(pairs), -1)[:, 0]
        return Run.from_arrays(top.qids.tolist(), top.ids, scores, top.payloads)
