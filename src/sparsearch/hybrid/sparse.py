"""The learned-sparse stage: a SparseEncoder over any :class:`~sparsearch.Searcher`.

Building an index from a corpus is its own explicit step (:func:`index_corpus`, or
:meth:`SparseRetriever.from_corpus`); a retriever can equally wrap an index opened from disk or an
external engine, and filters and payloads pass through its :class:`~sparsearch.SearchParams`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sparsearch.errors import InvalidInputError
from sparsearch.hybrid.cache import cache_key, cached_sparse, model_fingerprint
from sparsearch.hybrid.retrieval import Corpus, Retrieval, check_k
from sparsearch.run import Run
from sparsearch.search import Searcher, SearchParams
from sparsearch.sparse import SparseVectors, vocab_hash


def _load(encoder: Any) -> Any:
    if isinstance(encoder, (str, Path)):
        from sparsearch.models import SparseEncoder

        return SparseEncoder(str(encoder))
    return encoder


def encode_corpus(
    encoder: Any,
    texts: Sequence[str],
    *,
    batch_size: int = 32,
    cache_dir: str | Path | None = None,
    use_cache: bool = True,
    show_progress_bar: bool | None = None,
    precision: str = "float32",
) -> SparseVectors:
    """Document vectors of ``texts``, cached by content hash (model weights, settings, texts).

    ``cache_dir=None`` uses ``~/.cache/sparsearch``; ``use_cache=False`` always re-encodes.
    """
    encoder = _load(encoder)

    def encode() -> SparseVectors:
        vectors: SparseVectors = encoder.encode_document(
            list(texts),
            batch_size=batch_size,
            show_progress_bar=show_progress_bar,
            precision=precision,
        )
        return vectors

    if not use_cache:
        return encode()
    params = {
        "route": "document",
        "max_seq_length": getattr(encoder, "max_seq_length", None),
        "max_active_dims": getattr(encoder, "max_active_dims", None),
        "vocab": vocab_hash(getattr(encoder, "vocab", None)),
        "precision": precision,
    }
    key = cache_key(model_fingerprint(encoder), list(texts), params)
    return cached_sparse(cache_dir, key, encode)


def index_corpus(
    encoder: Any,
    corpus: Corpus,
    *,
    payloads: Sequence[Mapping[str, Any] | None] | None = None,
    path: str | Path | None = None,
    index_options: Mapping[str, Any] | None = None,
    **encode_options: Any,
) -> Any:
    """Encode ``{docid: text}`` (see :func:`encode_corpus` for the options) into a new
    :class:`~sparsearch.SparseIndex`; saved at ``path`` when one is given."""
    from sparsearch.index import SparseIndex

    if not corpus:
        raise InvalidInputError("cannot index an empty corpus")
    vectors = encode_corpus(encoder, list(corpus.values()), **encode_options)
    index = SparseIndex(**dict(index_options or {}))
    index.add(list(corpus), vectors, payloads)
    if path is not None:
        index.save(path)
    return index


class SparseRetriever:
    """Encode queries with a sparse encoder and search them in ``searcher``.

    ``encoder`` is a :class:`sparsearch.SparseEncoder` or a model id / path to load as one;
    ``searcher`` anything with ``search(queries, k, *, params) -> Hits`` (a ``SparseIndex``, opened
    from disk or built by :func:`index_corpus`, or a backend). ``params`` are the default
    :class:`~sparsearch.SearchParams` of every search (filter, payloads, threads). ``precision``:
    as in :meth:`sparsearch.SparseEncoder.encode`.

    Example::

        retriever = SparseRetriever.from_corpus(
            "rasyosef/splade-tiny", {"d1": "sparse retrieval", "d2": "dense vectors"})
        retriever.retrieve({"q": "what is sparse retrieval"}, k=1).run.to_dict()
        # -> {'q': {'d1': 12.3}}
    """

    def __init__(
        self,
        encoder: Any,
        searcher: Searcher,
        *,
        params: SearchParams | None = None,
        batch_size: int = 32,
        precision: str = "float32",
    ) -> None:
        if not isinstance(searcher, Searcher):
            raise InvalidInputError(
                f"searcher must have search(queries, k, *, params), got {type(searcher).__name__}"
            )
        self.encoder = _load(encoder)
        self.searcher = searcher
        self.params = params
        self.batch_size = batch_size
        self.precision = precision

    @classmethod
    def from_corpus(
        cls,
        encoder: Any,
        corpus: Corpus,
        *,
        params: SearchParams | None = None,
        batch_size: int = 32,
        precision: str = "float32",
        **index_options: Any,
    ) -> SparseRetriever:
        """Index ``corpus`` with :func:`index_corpus` (its options: ``payloads``, ``path``,
        ``cache_dir``, ``use_cache``, ``show_progress_bar``, ``index_options``), then wrap it."""
        encoder = _load(encoder)
        index = index_corpus(
            encoder, corpus, batch_size=batch_size, precision=precision, **index_options
        )
        return cls(encoder, index, params=params, batch_size=batch_size, precision=precision)

    def encode_queries(self, texts: Sequence[str]) -> SparseVectors:
        """The query vectors of ``texts`` (no progress bar)."""
        vectors: SparseVectors = self.encoder.encode_query(
            list(texts),
            batch_size=self.batch_size,
            show_progress_bar=False,
            precision=self.precision,
        )
        return vectors

    def retrieve(
        self, queries: Mapping[Any, str], k: int, *, params: SearchParams | None = None
    ) -> Retrieval:
        """The top ``k`` documents of each query ``{qid: text}`` (``params`` override the
        retriever's defaults for this call)."""
        k = check_k(k)
        start = time.perf_counter()
        vectors = self.encode_queries(list(queries.values()))
        encoded = time.perf_counter()
        hits = self.searcher.search(vectors, k, params=params or self.params)
        searched = time.perf_counter()
        term_stats = getattr(self.searcher, "term_stats", None)
        return Retrieval(
            run=Run.from_hits(list(queries), hits),
            query_vectors=vectors,
            doc_stats=term_stats() if callable(term_stats) else None,
            seconds={"encode": encoded - start, "search": searched - encoded},
        )
