"""The dense first stage: SentenceTransformer embeddings and exact inner-product search.

Needs ``sparsearch[dense]`` (sentence-transformers; faiss-cpu for corpora above the threshold).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from sparsearch.errors import InvalidInputError
from sparsearch.hybrid.cache import cache_key, cached_dense, model_fingerprint
from sparsearch.hybrid.run import Run, from_arrays


def exact_top_k(
    queries: np.ndarray, docs: np.ndarray, k: int, chunk: int = 256
) -> tuple[np.ndarray, np.ndarray]:
    """Exact inner-product top ``k`` in numpy: (ordinals n × k, scores n × k), best first."""
    k = min(k, docs.shape[0])
    ordinals = np.empty((queries.shape[0], k), dtype=np.int64)
    scores = np.empty((queries.shape[0], k), dtype=np.float32)
    for start in range(0, queries.shape[0], chunk):
        block = queries[start : start + chunk] @ docs.T
        part = np.argpartition(-block, k - 1, axis=1)[:, :k]
        part_scores = np.take_along_axis(block, part, axis=1)
        order = np.argsort(-part_scores, axis=1, kind="stable")
        ordinals[start : start + chunk] = np.take_along_axis(part, order, axis=1)
        scores[start : start + chunk] = np.take_along_axis(part_scores, order, axis=1)
    return ordinals, scores


class DenseRetriever:
    """SentenceTransformer bi-encoder retrieval.

    Embeddings are L2-normalised when the model's similarity is cosine (its configured
    ``similarity_fn_name``), so inner product = cosine; ``dot`` models are searched as they are.
    Up to ``exact_max_docs`` documents are searched with a numpy matrix product, above it with a
    faiss ``IndexFlatIP`` (both exact). Document embeddings are cached by content hash.

    >>> dense = DenseRetriever("sentence-transformers/all-MiniLM-L6-v2")  # doctest: +SKIP
    >>> dense.index({"d1": "sparse retrieval", "d2": "dense vectors"})  # doctest: +SKIP
    >>> dense.retrieve({"q": "embedding search"}, k=1)  # doctest: +SKIP
    {'q': {'d2': 0.41}}
    """

    def __init__(
        self,
        model: Any,
        *,
        batch_size: int = 32,
        exact_max_docs: int = 100_000,
        cache_dir: str | Path | None = None,
        use_cache: bool = True,
        show_progress_bar: bool | None = None,
    ) -> None:
        if isinstance(model, (str, Path)):
            from sentence_transformers import SentenceTransformer

            model = SentenceTransformer(str(model), device="cpu")
        similarity = model.similarity_fn_name or "cosine"
        if similarity not in ("cosine", "dot"):
            raise InvalidInputError(
                f"dense retrieval supports cosine or dot models, not {similarity}"
            )
        self.model = model
        self.normalize = similarity == "cosine"
        self.batch_size = batch_size
        self.exact_max_docs = exact_max_docs
        self.cache_dir = cache_dir
        self.use_cache = use_cache
        self.show_progress_bar = show_progress_bar
        self._ids: np.ndarray | None = None
        self._docs: np.ndarray | None = None
        self._faiss: Any = None

    def _encode(self, texts: list[str], route: str, progress: bool | None) -> np.ndarray:
        encode = self.model.encode_document if route == "document" else self.model.encode_query
        return encode(
            texts,
            batch_size=self.batch_size,
            normalize_embeddings=self.normalize,
            convert_to_numpy=True,
            show_progress_bar=progress,
        ).astype(np.float32)

    def index(self, corpus: Mapping[str, str]) -> None:
        """Embed and index the corpus ``{docid: text}``."""
        if not corpus:
            raise InvalidInputError("cannot index an empty corpus")
        texts = list(corpus.values())

        def encode() -> np.ndarray:
            return self._encode(texts, "document", self.show_progress_bar)

        if self.use_cache:
            params = {"max_seq_length": self.model.max_seq_length, "normalize": self.normalize}
            docs = cached_dense(
                self.cache_dir, cache_key(model_fingerprint(self.model), texts, params), encode
            )
        else:
            docs = encode()
        self._ids = np.asarray(list(corpus), dtype=object)
        self._docs, self._faiss = docs, None
        if docs.shape[0] > self.exact_max_docs:
            import faiss

            self._faiss = faiss.IndexFlatIP(docs.shape[1])
            self._faiss.add(docs)

    def retrieve(self, queries: Mapping[str, str], k: int) -> Run:
        """The top ``k`` documents of each query ``{qid: text}``."""
        if self._docs is None or self._ids is None:
            raise InvalidInputError("DenseRetriever.retrieve called before index()")
        if k < 1:
            raise InvalidInputError(f"k must be >= 1, got {k}")
        embedded = self._encode(list(queries.values()), "query", False)
        if self._faiss is not None:
            scores, ordinals = self._faiss.search(embedded, min(k, self._docs.shape[0]))
        else:
            ordinals, scores = exact_top_k(embedded, self._docs, k)
        ids = np.where(ordinals >= 0, self._ids[np.maximum(ordinals, 0)], None)
        return from_arrays(list(queries), ids, scores)
