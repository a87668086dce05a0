"""The dense first stage: SentenceTransformer embeddings and exact inner-product search.

Needs ``sparsearch[dense]`` (sentence-transformers; faiss-cpu for corpora above the threshold).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sparsearch.errors import DimensionMismatchError, InvalidInputError
from sparsearch.hybrid.cache import cache_key, cached_dense, model_fingerprint
from sparsearch.hybrid.retrieval import Corpus, Retrieval, check_k
from sparsearch.run import Run, top_k
from sparsearch.search import Hits


class DenseIndex:
    """Exact inner-product search over dense embeddings (one row per id).

    Up to ``exact_max_docs`` documents are searched with a numpy matrix product (in blocks of
    ``chunk`` queries), above it with a faiss ``IndexFlatIP``; both are exact.

    >>> index = DenseIndex(["a", "b"], np.array([[1.0, 0.0], [0.6, 0.8]], np.float32))
    >>> index.search(np.array([[0.0, 1.0]], np.float32), k=1).ids.tolist()
    [['b']]
    """

    def __init__(
        self,
        ids: Sequence[Any],
        embeddings: np.ndarray,
        *,
        exact_max_docs: int = 100_000,
        chunk: int = 256,
    ) -> None:
        embeddings = np.ascontiguousarray(embeddings, dtype=np.float32)
        if embeddings.ndim != 2 or embeddings.shape[0] != len(ids):
            raise InvalidInputError(f"{len(ids)} ids for embeddings of shape {embeddings.shape}")
        if not np.isfinite(embeddings).all():
            raise InvalidInputError("embeddings must be finite")
        self.ids = np.empty(len(ids), object)
        self.ids[:] = list(ids)
        self.embeddings = embeddings
        self.chunk = chunk
        self._faiss: Any = None
        if embeddings.shape[0] > exact_max_docs:
            import faiss

            self._faiss = faiss.IndexFlatIP(embeddings.shape[1])
            self._faiss.add(embeddings)

    def __len__(self) -> int:
        return int(self.embeddings.shape[0])

    def search(self, queries: np.ndarray, k: int = 10) -> Hits:
        """The top ``k`` ids per query row by inner product (padded when ``k`` > documents)."""
        k = check_k(k)
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        if queries.ndim != 2 or queries.shape[1] != self.embeddings.shape[1]:
            raise DimensionMismatchError(
                f"queries of shape {queries.shape}, documents of dim {self.embeddings.shape[1]}"
            )
        width = min(k, len(self))
        if self._faiss is not None:
            scores, ordinals = self._faiss.search(queries, width)
        else:
            ordinals = np.empty((queries.shape[0], width), np.int64)
            scores = np.empty((queries.shape[0], width), np.float32)
            for start in range(0, queries.shape[0], self.chunk):
                block = queries[start : start + self.chunk] @ self.embeddings.T
                ordinals[start : start + self.chunk], scores[start : start + self.chunk] = top_k(
                    block, width
                )
        return Hits.from_ordinals(self.ids, ordinals, scores, ordinals >= 0, k)


class DenseRetriever:
    """SentenceTransformer bi-encoder retrieval over a :class:`DenseIndex`.

    Embeddings are L2-normalised when the model's similarity is cosine (its configured
    ``similarity_fn_name``), so inner product = cosine; ``dot`` models are searched as they are.
    :meth:`from_corpus` embeds a corpus (cached by content hash) and indexes it.

    Example::

        dense = DenseRetriever.from_corpus(
            "sentence-transformers/all-MiniLM-L6-v2", {"d1": "sparse retrieval", "d2": "dense"})
        dense.retrieve({"q": "embedding search"}, k=1).run.to_dict()
        # -> {'q': {'d2': 0.41}}
    """

    def __init__(self, model: Any, index: DenseIndex, *, batch_size: int = 32) -> None:
        self.model = load_dense_model(model)
        self.normalize = normalizes(self.model)
        self.index = index
        self.batch_size = batch_size

    @classmethod
    def from_corpus(
        cls,
        model: Any,
        corpus: Corpus,
        *,
        batch_size: int = 32,
        exact_max_docs: int = 100_000,
        cache_dir: str | Path | None = None,
        use_cache: bool = True,
        show_progress_bar: bool | None = None,
    ) -> DenseRetriever:
        """Embed ``{docid: text}`` (cached by content hash unless ``use_cache=False``) and index it."""
        model = load_dense_model(model)
        if not corpus:
            raise InvalidInputError("cannot index an empty corpus")
        texts = list(corpus.values())
        normalize = normalizes(model)

        def encode() -> np.ndarray:
            return embed(model, texts, "document", batch_size, normalize, show_progress_bar)

        if use_cache:
            params = {"max_seq_length": model.max_seq_length, "normalize": normalize}
            key = cache_key(model_fingerprint(model), texts, params)
            docs = cached_dense(cache_dir, key, encode)
        else:
            docs = encode()
        index = DenseIndex(list(corpus), docs, exact_max_docs=exact_max_docs)
        return cls(model, index, batch_size=batch_size)

    def retrieve(self, queries: Mapping[Any, str], k: int) -> Retrieval:
        """The top ``k`` documents of each query ``{qid: text}``."""
        k = check_k(k)
        start = time.perf_counter()
        embedded = embed(
            self.model, list(queries.values()), "query", self.batch_size, self.normalize, False
        )
        encoded = time.perf_counter()
        hits = self.index.search(embedded, k)
        searched = time.perf_counter()
        return Retrieval(
            run=Run.from_hits(list(queries), hits),
            seconds={"encode": encoded - start, "search": searched - encoded},
        )


def load_dense_model(model: Any) -> Any:
    """A SentenceTransformer (loaded on CPU when given an id or a path)."""
    if isinstance(model, (str, Path)):
        from sentence_transformers import SentenceTransformer

        return SentenceTransformer(str(model), device="cpu")
    return model


def normalizes(model: Any) -> bool:
    """Whether a model's embeddings are L2-normalised for search (cosine models; dot ones not)."""
    similarity = model.similarity_fn_name or "cosine"
    if similarity not in ("cosine", "dot"):
        raise InvalidInputError(f"dense retrieval supports cosine or dot models, not {similarity}")
    return bool(similarity == "cosine")


def embed(
    model: Any,
    texts: list[str],
    route: str,
    batch_size: int,
    normalize: bool,
    progress: bool | None,
) -> np.ndarray:
    """Embeddings (float32) of texts through the model's query or document route."""
    encode = model.encode_document if route == "document" else model.encode_query
    embedded = encode(
        texts,
        batch_size=batch_size,
        normalize_embeddings=normalize,
        convert_to_numpy=True,
        show_progress_bar=progress,
    )
    return np.asarray(embedded, dtype=np.float32)
