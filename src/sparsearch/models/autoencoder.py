"""CSR: a sparse autoencoder that keeps the top-k latents of a dense embedding."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from sparsearch.models._base import Module


class TiedTranspose(torch.nn.Module):
    """The decoder: the encoder's weight, transposed (tied)."""

    def __init__(self, linear: torch.nn.Linear) -> None:
        super().__init__()
        self.linear = linear

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.linear.weight.t(), None)


class SparseAutoEncoder(Module):
    """Contrastive Sparse Representation (Wen et al., 2025): top-``k`` ReLU latents of an
    overcomplete linear encoder, a tied decoder for reconstruction, and an auxiliary top-``k_aux``
    over latents dead for more than ``dead_threshold`` steps.

    At inference only the top-k latents are computed; in training the forward pass also returns
    the reconstructions and auxiliary latents the CSR loss needs (same keys as sentence-transformers).
    """

    config_keys: ClassVar[list[str]] = [
        "input_dim",
        "hidden_dim",
        "k",
        "k_aux",
        "normalize",
        "dead_threshold",
    ]
    st_type: ClassVar[str] = (
        "sentence_transformers.sparse_encoder.modules.sparse_auto_encoder.SparseAutoEncoder"
    )
    forward_kwargs: ClassVar[frozenset[str]] = frozenset({"max_active_dims"})
    stats_last_nonzero: torch.Tensor  # a buffer, registered in __init__

    def __init__(
        self,
        input_dim: int,
        hidden_dim: int = 512,
        k: int = 8,
        k_aux: int = 512,
        normalize: bool = False,
        dead_threshold: int = 30,
    ) -> None:
        super().__init__()
        self.input_dim, self.hidden_dim = input_dim, hidden_dim
        self.k, self.k_aux = k, k_aux
        self.normalize, self.dead_threshold = normalize, dead_threshold
        self.pre_bias = torch.nn.Parameter(torch.zeros(input_dim))
        self.encoder = torch.nn.Linear(input_dim, hidden_dim, bias=False)
        self.latent_bias = torch.nn.Parameter(torch.zeros(hidden_dim))
        self.decoder = TiedTranspose(self.encoder)
        self.register_buffer("stats_last_nonzero", torch.zeros(hidden_dim, dtype=torch.long))

    def _prepare(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        if not self.normalize:
            return x, {}
        mu = x.mean(dim=-1, keepdim=True)
        x = x - mu
        std = x.std(dim=-1, keepdim=True)
        return x / (std + 1e-5), {"mu": mu, "std": std}

    def _top_k(self, x: torch.Tensor, k: int) -> torch.Tensor:
        top = torch.topk(x, k=k, dim=-1)
        out = torch.zeros_like(x).scatter_(-1, top.indices, top.values)
        return F.relu(out)

    @torch.no_grad()
    def _track_firing(self, pre_act: torch.Tensor, k: int) -> None:
        """Dead-latent bookkeeping: steps since each latent was last among the top-k (> 1e-5)."""
        top = torch.topk(pre_act, k=k, dim=-1)
        fired = torch.zeros_like(self.stats_last_nonzero)
        fired.scatter_add_(
            0, top.indices.reshape(-1), (top.values > 1e-5).to(fired.dtype).reshape(-1)
        )
        self.stats_last_nonzero *= 1 - fired.clamp(max=1)
        self.stats_last_nonzero += 1

    def _decode(self, latents: torch.Tensor, info: dict[str, torch.Tensor]) -> torch.Tensor:
        out = self.decoder(latents) + self.pre_bias
        return out * info["std"] + info["mu"] if self.normalize else out

    def forward(
        self, features: dict[str, Any], max_active_dims: int | None = None
    ) -> dict[str, Any]:
        k = max_active_dims if max_active_dims is not None else self.k
        x = features["sentence_embedding"]
        prepared, info = self._prepare(x)
        pre_act = F.linear(prepared - self.pre_bias, self.encoder.weight, self.latent_bias)
        latents_k = self._top_k(pre_act, k)
        if not torch.is_grad_enabled():
            features["sentence_embedding"] = latents_k
            return features
        if self.training:
            self._track_firing(pre_act, k)
        latents_aux = None
        recons_aux = None
        if self.k_aux:
            dead = self.stats_last_nonzero > self.dead_threshold
            latents_aux = self._top_k(pre_act * dead, self.k_aux)
            recons_aux = self.decoder(latents_aux) + self.pre_bias
        if self.training:  # sentence-transformers counts the 4k selection as firing too
            self._track_firing(pre_act, 4 * k)
        latents_4k = self._top_k(pre_act, 4 * k)
        recons_k = self._decode(latents_k, info)
        decoder_bias: torch.Tensor = self.pre_bias
        if self.normalize:
            decoder_bias = decoder_bias * info["std"]
            if recons_aux is not None:
                recons_aux = recons_aux * info["std"]
        features.update(
            {
                "sentence_embedding_backbone": x,
                "sentence_embedding_encoded": pre_act,
                "sentence_embedding_encoded_4k": latents_4k,
                "auxiliary_embedding": latents_aux,
                "decoded_embedding_k": recons_k,
                "decoded_embedding_4k": self._decode(latents_4k, info),
                "decoded_embedding_aux": recons_aux,
                "decoded_embedding_k_pre_bias": recons_k - decoder_bias,
                "sentence_embedding": latents_k,
            }
        )
        return features

    def get_embedding_dimension(self) -> int:
        return self.hidden_dim

    @classmethod
    def load(cls, path: Any) -> SparseAutoEncoder:
        module = super().load(path)
        module.load_weights(path)
        return module
