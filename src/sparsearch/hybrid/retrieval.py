"""What every retrieval stage returns, and the protocol stages implement.

A :class:`Retriever` maps ``{qid: text}`` to a :class:`Retrieval`: the ranked :class:`~sparsearch.Run`
plus what evaluation needs from the stage (the query vectors and the corpus' term statistics of a
learned-sparse stage) and where the time went. Nothing is left behind on the retriever.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from sparsearch.errors import InvalidInputError
from sparsearch.run import Run
from sparsearch.sparse import SparseVectors, TermStats

Corpus = Mapping[Any, str]
"""Documents as ``{docid: text}``."""


@dataclass(frozen=True)
class Retrieval:
    """The result of :meth:`Retriever.retrieve`.

    ``run``: the ranked hits. ``query_vectors`` / ``doc_stats``: the sparse query vectors and the
    searched collection's :class:`~sparsearch.TermStats`, when a learned-sparse stage took part
    (for active-dims and FLOPS statistics). ``seconds``: wall time per step (``encode``,
    ``search``, ``fuse``, ``rerank``, ...).
    """

    run: Run
    query_vectors: SparseVectors | None = None
    doc_stats: TermStats | None = None
    seconds: Mapping[str, float] = field(default_factory=dict)


@runtime_checkable
class Retriever(Protocol):
    """A stage that ranks documents for text queries (already built over its collection)."""

    def retrieve(self, queries: Mapping[Any, str], k: int) -> Retrieval:
        """The top ``k`` documents of each query ``{qid: text}``."""
        ...


RetrieverBuilder = Callable[[Corpus], Retriever]
"""Something that builds a retriever over a corpus, e.g. ``BM25Retriever`` or
``functools.partial(SparseRetriever.from_corpus, encoder)``: what multi-dataset evaluation takes."""


def check_k(k: object) -> int:
    """``k`` as a positive int, or a named error."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise InvalidInputError(f"k must be a positive integer, got {k!r}")
    return int(k)
