"""CSRLoss: sparse-autoencoder reconstruction + auxiliary loss + a contrastive ranking loss."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from sparsearch.errors import ConfigError
from sparsearch.train.losses.base import Features, SparseLoss
from sparsearch.train.losses.ranking import SparseMultipleNegativesRankingLoss

#: keys a CSR model's forward must return besides "sentence_embedding"
CSR_OUTPUT_KEYS = (
    "sentence_embedding_backbone",
    "decoded_embedding_k",
    "decoded_embedding_4k",
    "decoded_embedding_aux",
    "decoded_embedding_k_pre_bias",
)


def _total(values: list[Tensor]) -> Tensor:
    """The sum of one or more tensors (``sum`` without its ``0`` start)."""
    return sum(values[1:], values[0])


def normalized_mse(reconstruction: Tensor, target: Tensor) -> Tensor:
    """MSE divided by the MSE of predicting the batch mean (1 when the batch is constant)."""
    baseline = F.mse_loss(target.mean(dim=0, keepdim=True).expand_as(target), target)
    constant = (baseline == 0) | (target == target[:1]).all()
    baseline = torch.where(constant, torch.ones_like(baseline), baseline)
    return F.mse_loss(reconstruction, target) / baseline


class CSRLoss(SparseLoss):
    """Contrastive Sparse Representation loss (Wen et al., 2025) for a dense model + SAE head.

    Per text column: L(k) = MSE(x, x̂_k), L(4k) = MSE(x, x̂_4k) / 8 and the auxiliary loss
    β·NMSE(x̂_aux, x − x̂_k(pre-bias)) that revives dead latents; averaged over columns. The
    ranking `loss` (default in-batch negatives) on the sparse codes is weighted by γ.
    """

    def __init__(
        self,
        model: nn.Module,
        loss: SparseLoss | None = None,
        beta: float = 0.1,
        gamma: float = 1.0,
    ) -> None:
        super().__init__(model)
        self.loss = loss if loss is not None else SparseMultipleNegativesRankingLoss(model)
        if isinstance(self.loss, CSRLoss):
            raise ConfigError("CSRLoss cannot wrap another CSRLoss")
        self.min_columns, self.max_columns = self.loss.min_columns, self.loss.max_columns
        self.needs_labels = self.loss.needs_labels
        self.beta = beta
        self.gamma = gamma

    def forward(
        self, features_list: Iterable[Features], labels: Tensor | None = None
    ) -> dict[str, Tensor]:
        outputs = [self.model(features) for features in features_list]
        missing = [k for k in CSR_OUTPUT_KEYS if k not in outputs[0]]
        if missing:
            raise ConfigError(
                f"CSRLoss needs a model with a sparse autoencoder head; output lacks {missing}"
            )
        embeddings = [out["sentence_embedding"] for out in outputs]
        self.record_active_dims(embeddings)
        losses = self.reconstruction_losses(outputs)
        base = self.loss.compute_loss_from_embeddings(embeddings, labels)
        for key, value in base.items() if isinstance(base, dict) else [("base_loss", base)]:
            losses[key] = value * self.gamma
        return losses

    def reconstruction_losses(self, outputs: list[dict[str, Tensor]]) -> dict[str, Tensor]:
        """The three reconstruction terms, averaged over the text columns."""
        l_k, l_4k, l_aux = [], [], []
        for out in outputs:
            x = out["sentence_embedding_backbone"]
            l_k.append(F.mse_loss(x, out["decoded_embedding_k"]))
            l_4k.append(F.mse_loss(x, out["decoded_embedding_4k"]))
            aux = out["decoded_embedding_aux"]
            if aux is None:
                l_aux.append(torch.zeros_like(l_k[-1]))
            else:
                residual = x - out["decoded_embedding_k_pre_bias"].detach()
                l_aux.append(normalized_mse(aux, residual))
        n = len(outputs)
        return {
            "reconstruction_loss_k": _total(l_k) / n,
            "reconstruction_loss_4k": _total(l_4k) / n / 8.0,
            "reconstruction_loss_aux": self.beta * _total(l_aux) / n,
        }

    def get_config_dict(self) -> dict[str, Any]:
        return {"beta": self.beta, "gamma": self.gamma, "loss": type(self.loss).__name__}
