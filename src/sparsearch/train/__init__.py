"""Training sparse encoders: losses, the trainer and its arguments, data helpers."""

from __future__ import annotations

from sparsearch.train.args import SparseEncoderTrainingArguments
from sparsearch.train.config import load_config, train_from_config
from sparsearch.train.losses import (
    CSRLoss,
    FlopsLoss,
    SparseAnglELoss,
    SparseCoSENTLoss,
    SparseCosineSimilarityLoss,
    SparseDistillKLDivLoss,
    SparseMarginMSELoss,
    SparseMSELoss,
    SparseMultipleNegativesRankingLoss,
    SpladeLoss,
)
from sparsearch.train.trainer import SparseEncoderTrainer

__all__ = [
    "CSRLoss",
    "FlopsLoss",
    "SparseAnglELoss",
    "SparseCoSENTLoss",
    "SparseCosineSimilarityLoss",
    "SparseDistillKLDivLoss",
    "SparseEncoderTrainer",
    "SparseEncoderTrainingArguments",
    "SparseMSELoss",
    "SparseMarginMSELoss",
    "SparseMultipleNegativesRankingLoss",
    "SpladeLoss",
    "load_config",
    "train_from_config",
]
