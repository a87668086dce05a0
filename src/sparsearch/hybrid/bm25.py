"""A BM25 first stage through ``bm25s`` (the lexical baseline; needs ``sparsearch[train]``)."""

from __future__ import annotations

from collections.abc import Mapping

from sparsearch.errors import InvalidInputError
from sparsearch.hybrid.run import Run, from_arrays


class BM25Retriever:
    """BM25 (``bm25s`` defaults: Lucene variant, k1=1.5, b=0.75) with English stop-words.

    >>> bm25 = BM25Retriever()
    >>> bm25.index({"d1": "sparse retrieval", "d2": "dense vectors"})
    >>> list(bm25.retrieve({"q": "sparse"}, k=1)["q"])
    ['d1']
    """

    def __init__(self, stopwords: str | None = "en", **bm25_options: object) -> None:
        self.stopwords = stopwords
        self.bm25_options = bm25_options
        self._ids: list[str] = []
        self._model = None

    def index(self, corpus: Mapping[str, str]) -> None:
        """Tokenise and index the corpus ``{docid: text}``."""
        import bm25s

        self._ids = list(corpus)
        tokens = bm25s.tokenize(
            list(corpus.values()), stopwords=self.stopwords, show_progress=False
        )
        self._model = bm25s.BM25(**self.bm25_options)
        self._model.index(tokens, show_progress=False)

    def retrieve(self, queries: Mapping[str, str], k: int) -> Run:
        """The top ``k`` documents of each query ``{qid: text}``."""
        import bm25s
        import numpy as np

        if self._model is None:
            raise InvalidInputError("BM25Retriever.retrieve called before index()")
        if k < 1:
            raise InvalidInputError(f"k must be >= 1, got {k}")
        k = min(k, len(self._ids))
        tokens = bm25s.tokenize(
            list(queries.values()), stopwords=self.stopwords, show_progress=False
        )
        ordinals, scores = self._model.retrieve(tokens, k=k, show_progress=False, n_threads=1)
        ids = np.asarray(self._ids, dtype=object)[ordinals]
        # bm25s returns zero-score filler when fewer than k documents share a term: drop it
        scores = np.where(scores > 0, scores, -np.inf)
        return from_arrays(list(queries), ids, scores)
