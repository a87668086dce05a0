"""Training losses for sparse encoders, mirroring sentence-transformers' sparse losses."""

from __future__ import annotations

from sparsearch.train.losses.base import SparseLoss, embed_columns
from sparsearch.train.losses.csr import CSRLoss
from sparsearch.train.losses.ranking import (
    SparseDistillKLDivLoss,
    SparseMarginMSELoss,
    SparseMSELoss,
    SparseMultipleNegativesRankingLoss,
)
from sparsearch.train.losses.regularizers import FlopsLoss
from sparsearch.train.losses.splade import SpladeLoss
from sparsearch.train.losses.sts import (
    SparseAnglELoss,
    SparseCoSENTLoss,
    SparseCosineSimilarityLoss,
)

__all__ = [
    "CSRLoss",
    "FlopsLoss",
    "SparseAnglELoss",
    "SparseCoSENTLoss",
    "SparseCosineSimilarityLoss",
    "SparseDistillKLDivLoss",
    "SparseLoss",
    "SparseMSELoss",
    "SparseMarginMSELoss",
    "SparseMultipleNegativesRankingLoss",
    "SpladeLoss",
    "embed_columns",
]
