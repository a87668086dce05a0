"""STS-style losses on (text 1, text 2, score) rows: CoSENT, AnglE, cosine similarity."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from sparsearch.errors import ConfigError
from sparsearch.train.losses.base import SparseLoss
from sparsearch.train.losses.similarity import angle_pairwise, cos_pairwise


def _flat_labels(labels: Tensor, batch: int, name: str) -> Tensor:
    if labels.numel() != batch:
        raise ConfigError(
            f"{name} expects one score per row ({batch}), got shape {tuple(labels.shape)}"
        )
    return labels.reshape(-1).float()


class SparseCoSENTLoss(SparseLoss):
    """CoSENT: log(1 + Σ exp(s(i) − s(j))) over pairs where label(i) < label(j), s scaled cosine."""

    min_columns = 2
    max_columns = 2
    needs_labels = True
    pair_similarity: Callable[[Tensor, Tensor], Tensor] = staticmethod(cos_pairwise)

    def __init__(self, model: nn.Module, scale: float = 20.0) -> None:
        super().__init__(model)
        self.scale = scale

    def compute_loss_from_embeddings(
        self, embeddings: list[Tensor], labels: Tensor | None
    ) -> Tensor:
        labels = _flat_labels(
            self._require_labels(labels), embeddings[0].shape[0], type(self).__name__
        )
        scores = self.pair_similarity(embeddings[0], embeddings[1]).float() * self.scale
        diff = scores[:, None] - scores[None, :]
        lower = labels[:, None] < labels[None, :]
        diff = diff.masked_fill(~lower, float("-inf")).reshape(-1)
        return torch.logsumexp(torch.cat([diff.new_zeros(1), diff]), dim=0)

    def get_config_dict(self) -> dict[str, Any]:
        return {"scale": self.scale}


class SparseAnglELoss(SparseCoSENTLoss):
    """AnglE: CoSENT with the angle similarity |cos + sin| in place of the cosine."""

    pair_similarity = staticmethod(angle_pairwise)


class SparseCosineSimilarityLoss(SparseLoss):
    """MSE between the cosine similarity of the two texts and the gold score."""

    min_columns = 2
    max_columns = 2
    needs_labels = True

    def compute_loss_from_embeddings(
        self, embeddings: list[Tensor], labels: Tensor | None
    ) -> Tensor:
        labels = _flat_labels(
            self._require_labels(labels), embeddings[0].shape[0], type(self).__name__
        )
        return F.mse_loss(cos_pairwise(embeddings[0], embeddings[1]), labels)
