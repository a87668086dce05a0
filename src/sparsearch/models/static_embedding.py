"""Inference-free query encoding: each query token gets a static weight (learned or IDF)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import torch
from transformers import AutoTokenizer, PreTrainedTokenizerBase

from sparsearch.errors import ModelLoadError
from sparsearch.models._base import TokenizerInput, read_json


class SparseStaticEmbedding(TokenizerInput):
    """A vocabulary-sized weight vector: a text's vector holds the weight of each token it contains.

    ``weight`` defaults to ones; ``frozen=True`` keeps it out of training. Build one from an
    OpenSearch-style ``idf.json`` with :meth:`from_json`.
    """

    config_keys: ClassVar[list[str]] = ["frozen"]
    st_type: ClassVar[str] = (
        "sentence_transformers.sparse_encoder.modules.sparse_static_embedding.SparseStaticEmbedding"
    )
    save_in_root: ClassVar[bool] = True

    def __init__(
        self,
        tokenizer: PreTrainedTokenizerBase,
        weight: torch.Tensor | None = None,
        frozen: bool = False,
    ) -> None:
        super().__init__()
        self.tokenizer = tokenizer
        if weight is None:
            weight = torch.ones(len(tokenizer))
        if weight.ndim != 1 or weight.shape[0] != len(tokenizer):
            raise ModelLoadError(
                f"static weights of shape {tuple(weight.shape)} do not match the tokenizer's "
                f"{len(tokenizer)} tokens"
            )
        self.weight = torch.nn.Parameter(weight.float(), requires_grad=not frozen)
        self.frozen = frozen

    def preprocess(self, texts: list[str], task: str | None = None) -> dict[str, Any]:
        """Tokenize without special tokens (only the text's own tokens carry weight)."""
        return dict(
            self.tokenizer(
                texts, padding=True, truncation=True, return_tensors="pt", add_special_tokens=False
            )
        )

    def forward(self, features: dict[str, Any]) -> dict[str, Any]:
        ids, mask = features["input_ids"], features["attention_mask"]
        presence = torch.zeros(
            ids.shape[0], self.weight.shape[0], dtype=torch.int64, device=ids.device
        )
        presence.scatter_(1, ids, mask.to(torch.int64))
        embedding = presence * self.weight
        if features.get("sentence_embedding") is not None:
            embedding = embedding * features["sentence_embedding"]
        features["sentence_embedding"] = embedding
        return features

    def get_embedding_dimension(self) -> int:
        return int(self.weight.shape[0])

    @classmethod
    def from_json(
        cls, json_path: str | Path, tokenizer: PreTrainedTokenizerBase, frozen: bool = False
    ) -> SparseStaticEmbedding:
        """From a ``{token: weight}`` JSON file (e.g. OpenSearch's ``idf.json``)."""
        table = read_json(json_path)
        if not isinstance(table, dict):
            raise ModelLoadError(f"{json_path} must map tokens to weights")
        vocab = tokenizer.get_vocab()
        unknown = [t for t in table if t not in vocab]
        if unknown:
            raise ModelLoadError(
                f"{json_path}: {len(unknown)} tokens not in the tokenizer, e.g. {unknown[:3]}"
            )
        weight = torch.zeros(len(tokenizer))
        ids = torch.tensor([vocab[t] for t in table], dtype=torch.long)
        weight[ids] = torch.tensor(list(table.values()), dtype=torch.float32)
        return cls(tokenizer, weight=weight, frozen=frozen)

    def save(self, path: str | Path) -> None:
        self.tokenizer.save_pretrained(str(path))
        self.save_weights(path)
        self.save_config(path)

    @classmethod
    def load(cls, path: str | Path) -> SparseStaticEmbedding:
        config = cls.load_config(path)
        try:
            tokenizer = AutoTokenizer.from_pretrained(str(path))
        except (OSError, ValueError) as err:
            raise ModelLoadError(f"cannot load the tokenizer in {path}: {err}") from err
        if isinstance(config.get("path"), str) and config["path"].endswith(".json"):
            return cls.from_json(
                Path(path) / config["path"], tokenizer, frozen=bool(config.get("frozen", False))
            )
        module = cls(tokenizer, frozen=bool(config.get("frozen", False)))
        module.load_weights(path)
        return module

    def __repr__(self) -> str:
        return f"SparseStaticEmbedding(frozen={self.frozen}, dim={self.weight.shape[0]})"


__all__ = ["SparseStaticEmbedding"]
