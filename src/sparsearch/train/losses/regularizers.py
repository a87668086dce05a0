"""FLOPS regularisation, with the ℓ0 mask and the IDF-aware penalty."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from sparsearch.errors import ConfigError


class FlopsLoss(nn.Module):
    """FLOPS: Σ_j (mean_i w_ij)² over a batch of sparse vectors (Paria et al., 2020).

    threshold: the ℓ0 mask — rows with at most `threshold` active dims are left out (they are
        sparse enough already; Shen et al., 2025).
    idf: the IDF-aware penalty — one IDF per vocabulary dim (a sequence or tensor), or a
        {token: idf} mapping together with `vocab`. Each dim is divided by its IDF before the
        FLOPS sum, so rare, informative tokens are penalised less than common ones (Geng et al., 2024).
    """

    inverse_idf: Tensor | None  # a buffer, registered in __init__

    def __init__(
        self,
        threshold: float | None = None,
        idf: Sequence[float] | Tensor | Mapping[str, float] | None = None,
        vocab: Sequence[str] | None = None,
    ) -> None:
        super().__init__()
        self.threshold = threshold
        self.register_buffer("inverse_idf", _inverse_idf(idf, vocab), persistent=False)

    def compute_loss_from_embeddings(self, embeddings: Tensor) -> Tensor:
        if self.threshold is not None:
            keep = ((embeddings != 0).sum(dim=1) > self.threshold).to(embeddings.dtype)
            embeddings = embeddings * keep.unsqueeze(1)
        if self.inverse_idf is not None:
            if self.inverse_idf.shape[0] != embeddings.shape[1]:
                raise ConfigError(
                    f"idf has {self.inverse_idf.shape[0]} entries, the vectors {embeddings.shape[1]} dims"
                )
            embeddings = embeddings * self.inverse_idf.to(embeddings.dtype)
        return torch.sum(torch.mean(embeddings, dim=0) ** 2)

    def forward(self, embeddings: Tensor) -> Tensor:
        return self.compute_loss_from_embeddings(embeddings)

    def get_config_dict(self) -> dict[str, Any]:
        return {"threshold": self.threshold, "idf_aware": self.inverse_idf is not None}


def _inverse_idf(
    idf: Sequence[float] | Tensor | Mapping[str, float] | None, vocab: Sequence[str] | None
) -> Tensor | None:
    if idf is None:
        return None
    if isinstance(idf, Mapping):
        if vocab is None:
            raise ConfigError("an idf mapping {token: idf} needs the model vocab")
        floor = min(idf.values())
        idf = [float(idf.get(token, floor)) for token in vocab]
    values = torch.as_tensor(idf, dtype=torch.float32)
    if values.ndim != 1 or not bool(torch.all(values > 0)):
        raise ConfigError("idf must be one positive value per vocabulary dim")
    return 1.0 / values
