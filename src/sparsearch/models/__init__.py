"""Sparse encoders (SPLADE, inference-free SPLADE, CSR) whose saved format is the
sentence-transformers one, so models move both ways."""

from __future__ import annotations

from sparsearch.models.autoencoder import SparseAutoEncoder
from sparsearch.models.encoder import SparseEncoder
from sparsearch.models.pooling import Normalize, Pooling
from sparsearch.models.router import Router
from sparsearch.models.splade_pooling import SpladePooling
from sparsearch.models.static_embedding import SparseStaticEmbedding
from sparsearch.models.transformer import MLMTransformer, Transformer

__all__ = [
    "MLMTransformer",
    "Normalize",
    "Pooling",
    "Router",
    "SparseAutoEncoder",
    "SparseEncoder",
    "SparseStaticEmbedding",
    "SpladePooling",
    "Transformer",
]
