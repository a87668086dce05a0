"""Dense pooling of token embeddings (mean / cls / max) and L2 normalisation."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import torch

from sparsearch.errors import ConfigError
from sparsearch.models._base import Module

_LEGACY_MODES = {
    "pooling_mode_cls_token": "cls",
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_max_tokens": "max",
}


class Pooling(Module):
    """One vector per text from token embeddings: ``"mean"`` (masked), ``"cls"`` or ``"max"``."""

    config_keys: ClassVar[list[str]] = ["embedding_dimension", "pooling_mode", "include_prompt"]
    st_type: ClassVar[str] = "sentence_transformers.sentence_transformer.modules.pooling.Pooling"

    def __init__(
        self, embedding_dimension: int, pooling_mode: str = "mean", include_prompt: bool = True
    ) -> None:
        super().__init__()
        if pooling_mode not in ("mean", "cls", "max"):
            raise ConfigError(f"pooling_mode must be 'mean', 'cls' or 'max', got {pooling_mode!r}")
        self.embedding_dimension = int(embedding_dimension)
        self.pooling_mode = pooling_mode
        self.include_prompt = include_prompt

    @classmethod
    def load_config(cls, path: str | Path) -> dict[str, Any]:
        config = super().load_config(path)
        if "word_embedding_dimension" in config:  # the sentence-transformers v2-v4 layout
            config["embedding_dimension"] = config.pop("word_embedding_dimension")
            modes = [mode for key, mode in _LEGACY_MODES.items() if config.pop(key, False)]
            if len(modes) != 1:
                raise ConfigError(f"unsupported legacy pooling config in {path}")
            config["pooling_mode"] = modes[0]
        return config

    def forward(self, features: dict[str, Any]) -> dict[str, Any]:
        tokens = features["token_embeddings"]
        mask = features["attention_mask"].unsqueeze(-1).to(tokens.dtype)
        if self.pooling_mode == "cls":
            pooled = tokens[:, 0]
        elif self.pooling_mode == "max":
            pooled = tokens.masked_fill(mask == 0, -torch.inf).max(dim=1).values
        else:
            pooled = (tokens * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
        features["sentence_embedding"] = pooled
        return features

    def get_embedding_dimension(self) -> int:
        return self.embedding_dimension


class Normalize(Module):
    """Scale each sentence embedding to unit L2 norm."""

    st_type: ClassVar[str] = "sentence_transformers.base.modules.normalize.Normalize"

    def forward(self, features: dict[str, Any]) -> dict[str, Any]:
        features["sentence_embedding"] = torch.nn.functional.normalize(
            features["sentence_embedding"], p=2, dim=1
        )
        return features
