"""Training sparse encoders: losses, the trainer and its arguments, data helpers."""

from __future__ import annotations

from sparsearch.train.args import SparseEncoderTrainingArguments
from sparsearch.train.autoencoder_fit import (
    AutoencoderFitSettings,
    backbone_embeddings,
    fit_autoencoder,
    fit_autoencoder_embeddings,
)
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
    "AutoencoderFitSettings",
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
    "backbone_embeddings",
    "fit_autoencoder",
    "fit_autoencoder_embeddings",
    "load_config",
    "train_from_config",
]
