"""Hybrid retrieval in small composable stages: retrievers → fuse → rerank → cut.

Every stage speaks one run type, ``{qid: {docid: score}}``. Heavy dependencies (torch,
sentence-transformers, faiss, bm25s) are imported only when a stage that needs them is built.
"""

from __future__ import annotations

from sparsearch.hybrid.bm25 import BM25Retriever
from sparsearch.hybrid.dense import DenseRetriever, exact_top_k
from sparsearch.hybrid.fusion import RRF, LinearFusion
from sparsearch.hybrid.pipeline import Pipeline
from sparsearch.hybrid.rerank import CrossEncoderReranker
from sparsearch.hybrid.run import Retriever, Run, cut, drop_identical_ids, from_arrays, top_k
from sparsearch.hybrid.sparse import SparseRetriever

__all__ = [
    "BM25Retriever",
    "CrossEncoderReranker",
    "DenseRetriever",
    "LinearFusion",
    "Pipeline",
    "RRF",
    "Retriever",
    "Run",
    "SparseRetriever",
    "cut",
    "drop_identical_ids",
    "exact_top_k",
    "from_arrays",
    "top_k",
]
