"""Hybrid retrieval in small composable stages: retrievers → fuse → rerank → cut.

Every stage returns a :class:`Retrieval` whose ``run`` is a :class:`sparsearch.Run` (numpy arrays).
The sparse stage wraps any :class:`sparsearch.Searcher`. Heavy dependencies (torch,
sentence-transformers, faiss, bm25s) are imported only when a stage that needs them is built.
"""

from __future__ import annotations

from sparsearch.hybrid.bm25 import BM25Retriever
from sparsearch.hybrid.dense import DenseIndex, DenseRetriever
from sparsearch.hybrid.fusion import RRF, LinearFusion
from sparsearch.hybrid.pipeline import Pipeline
from sparsearch.hybrid.rerank import CrossEncoderReranker
from sparsearch.hybrid.retrieval import Corpus, Retrieval, Retriever, RetrieverBuilder
from sparsearch.hybrid.sparse import SparseRetriever, encode_corpus, index_corpus

__all__ = [
    "BM25Retriever",
    "Corpus",
    "CrossEncoderReranker",
    "DenseIndex",
    "DenseRetriever",
    "LinearFusion",
    "Pipeline",
    "RRF",
    "Retrieval",
    "Retriever",
    "RetrieverBuilder",
    "SparseRetriever",
    "encode_corpus",
    "index_corpus",
]
