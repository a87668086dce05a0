"""A BM25 first stage through ``bm25s`` (the lexical baseline; needs ``sparsearch[train]``)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from sparsearch.errors import InvalidInputError
from sparsearch.hybrid.retrieval import Corpus, Retrieval, check_k
from sparsearch.run import Run
from sparsearch.search import Hits


class BM25Retriever:
    """BM25 (``bm25s`` defaults: Lucene variant, k1=1.5, b=0.75) with English stop-words.

    The corpus ``{docid: text}`` is tokenised and indexed when the retriever is made, so the class
    itself builds a retriever from a corpus (what multi-dataset evaluation takes).

    >>> bm25 = BM25Retriever({"d1": "sparse retrieval", "d2": "dense vectors"})
    >>> bm25.retrieve({"q": "sparse"}, k=1).run.row(0)[0][0]
    'd1'
    """

    def __init__(self, corpus: Corpus, stopwords: str | None = "en", **bm25_options: Any) -> None:
        import bm25s

        if not corpus:
            raise InvalidInputError("cannot index an empty corpus")
        self.stopwords = stopwords
        self.ids = np.empty(len(corpus), object)
        self.ids[:] = list(corpus)
        tokens = bm25s.tokenize(list(corpus.values()), stopwords=stopwords, show_progress=False)
        if not tokens.vocab:
            raise InvalidInputError(
                "BM25 has nothing to index: every word of the corpus is a stop word or too short"
            )
        self.model = bm25s.BM25(**bm25_options)
        self.model.index(tokens, show_progress=False)

    def search_texts(self, texts: list[str], k: int) -> Hits:
        """The top ``k`` documents of each query text (padded, never zero-score filler)."""
        import bm25s

        k = check_k(k)
        width = min(k, self.ids.size)
        tokens = bm25s.tokenize(texts, stopwords=self.stopwords, show_progress=False)
        ordinals, scores = self.model.retrieve(tokens, k=width, show_progress=False, n_threads=1)
        # bm25s returns zero-score filler when fewer than k documents share a term: drop it
        return Hits.from_ordinals(self.ids, ordinals, scores, scores > 0, k)

    def retrieve(self, queries: Mapping[Any, str], k: int) -> Retrieval:
        """The top ``k`` documents of each query ``{qid: text}``."""
        start = time.perf_counter()
        hits = self.search_texts(list(queries.values()), k)
        return Retrieval(
            run=Run.from_hits(list(queries), hits),
            seconds={"search": time.perf_counter() - start},
        )
