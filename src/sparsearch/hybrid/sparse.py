"""The learned-sparse first stage: a SparseEncoder + the embedded SparseIndex."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sparsearch.errors import InvalidInputError
from sparsearch.hybrid.cache import cache_key, cached_sparse, model_fingerprint
from sparsearch.hybrid.run import Run, from_arrays
from sparsearch.sparse import SparseVectors, vocab_hash


class SparseRetriever:
    """Encode a corpus (cached by content hash), index it, and search it with encoded queries.

    ``encoder`` is a :class:`sparsearch.SparseEncoder` or a model id / path to load as one.
    ``cache_dir=None`` uses ``~/.cache/sparsearch``; ``use_cache=False`` always re-encodes.
    After :meth:`index` and :meth:`retrieve`, ``doc_vectors`` and ``query_vectors`` hold the
    vectors used (for sparsity statistics). ``precision`` is passed to the encoder (see
    :meth:`sparsearch.SparseEncoder.encode`) and is part of the cache key.

    >>> retriever = SparseRetriever("rasyosef/splade-tiny")  # doctest: +SKIP
    >>> retriever.index({"d1": "sparse retrieval", "d2": "dense vectors"})  # doctest: +SKIP
    >>> retriever.retrieve({"q": "what is sparse retrieval"}, k=1)  # doctest: +SKIP
    {'q': {'d1': 12.3}}
    """

    def __init__(
        self,
        encoder: Any,
        *,
        batch_size: int = 32,
        cache_dir: str | Path | None = None,
        use_cache: bool = True,
        show_progress_bar: bool | None = None,
        n_threads: int | None = None,
        index_options: Mapping[str, Any] | None = None,
        precision: str = "float32",
    ) -> None:
        if isinstance(encoder, (str, Path)):
            from sparsearch.models import SparseEncoder

            encoder = SparseEncoder(str(encoder))
        self.encoder = encoder
        self.batch_size = batch_size
        self.cache_dir = cache_dir
        self.use_cache = use_cache
        self.show_progress_bar = show_progress_bar
        self.n_threads = n_threads
        self.index_options = dict(index_options or {})
        self.precision = precision
        self.doc_vectors: SparseVectors | None = None
        self.query_vectors: SparseVectors | None = None
        self._index: Any = None

    def _encode_documents(self, texts: list[str]) -> SparseVectors:
        def encode() -> SparseVectors:
            return self.encoder.encode_document(
                texts, batch_size=self.batch_size, show_progress_bar=self.show_progress_bar,
                precision=self.precision,
            )

        if not self.use_cache:
            return encode()
        params = {
            "route": "document",
            "max_seq_length": getattr(self.encoder, "max_seq_length", None),
            "max_active_dims": getattr(self.encoder, "max_active_dims", None),
            "vocab": vocab_hash(getattr(self.encoder, "vocab", None)),
            "precision": self.precision,
        }
        key = cache_key(model_fingerprint(self.encoder), texts, params)
        return cached_sparse(self.cache_dir, key, encode)

    def index(self, corpus: Mapping[str, str]) -> None:
        """Encode and index the corpus ``{docid: text}``."""
        from sparsearch.index import SparseIndex

        if not corpus:
            raise InvalidInputError("cannot index an empty corpus")
        self.doc_vectors = self._encode_documents(list(corpus.values()))
        self._index = SparseIndex(**self.index_options)
        self._index.add(list(corpus), self.doc_vectors)

    def retrieve(self, queries: Mapping[str, str], k: int) -> Run:
        """The top ``k`` documents of each query ``{qid: text}``."""
        if self._index is None:
            raise InvalidInputError("SparseRetriever.retrieve called before index()")
        self.query_vectors = self.encoder.encode_query(
            list(queries.values()), batch_size=self.batch_size, show_progress_bar=False,
            precision=self.precision,
        )
        hits = self._index.search(self.query_vectors, k=k, n_threads=self.n_threads)
        return from_arrays(list(queries), hits.ids, hits.scores)
