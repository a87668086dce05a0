"""Shared plumbing of the training losses: embedding the columns of a batch, column checks."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from sparsearch.errors import ConfigError

Features = dict[str, Any]


def _merge_features(features_list: Sequence[Features]) -> Features | None:
    """One batch holding every column's rows (token tensors right-padded), or None if impossible."""
    first = features_list[0]
    if any(set(f) != set(first) for f in features_list[1:]):
        return None
    merged: Features = {}
    for key, value in first.items():
        values = [f[key] for f in features_list]
        if isinstance(value, Tensor) and value.ndim == 2 and not value.is_floating_point():
            width = max(v.shape[1] for v in values)
            merged[key] = torch.cat([F.pad(v, (0, width - v.shape[1])) for v in values])
        elif all(not isinstance(v, Tensor) and v == value for v in values):
            merged[key] = value
        else:
            return None
    return merged


def embed_columns(model: nn.Module, features_list: Iterable[Features]) -> list[Tensor]:
    """The `sentence_embedding` of every column: the first (queries) alone, the rest in one pass.

    Right-padding plus the attention mask leaves each row's embedding unchanged, so merging the
    document columns only saves forward passes.
    """
    features_list = list(features_list)
    if not features_list:
        return []
    first = model(features_list[0])["sentence_embedding"]
    rest = features_list[1:]
    if not rest:
        return [first]
    merged = _merge_features(rest) if len(rest) > 1 else None
    if merged is None:
        return [first] + [model(f)["sentence_embedding"] for f in rest]
    out = model(merged)["sentence_embedding"]
    return [first, *out.reshape(len(rest), -1, *out.shape[1:]).unbind(0)]


class SparseLoss(nn.Module):
    """Base of every loss: holds the model, embeds columns, records the batch's active dims.

    Subclasses define `compute_loss_from_embeddings(embeddings, labels)`, `min_columns`,
    `max_columns` (None = any) and `needs_labels`, which `check_columns` uses to refuse a dataset
    that cannot feed the loss before any compute starts.
    """

    min_columns: int = 1
    max_columns: int | None = None
    needs_labels: bool = False

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.last_active_dims: dict[str, float] = {}

    def embed(self, features_list: Iterable[Features]) -> list[Tensor]:
        """Embed the columns and remember their mean active dims (for logging)."""
        embeddings = embed_columns(self.model, features_list)
        self.record_active_dims(embeddings)
        return embeddings

    def record_active_dims(self, embeddings: Sequence[Tensor]) -> None:
        """Store mean non-zeros per row of the query column and of the document columns."""
        with torch.no_grad():
            stats = {"query_active_dims": float((embeddings[0] != 0).sum(1).float().mean())}
            if len(embeddings) > 1:
                docs = torch.cat(list(embeddings[1:]))
                stats["document_active_dims"] = float((docs != 0).sum(1).float().mean())
        self.last_active_dims = stats

    def forward(
        self, features_list: Iterable[Features], labels: Tensor | None = None
    ) -> Tensor | dict[str, Tensor]:
        return self.compute_loss_from_embeddings(self.embed(features_list), labels)

    def compute_loss_from_embeddings(
        self, embeddings: list[Tensor], labels: Tensor | None
    ) -> Tensor | dict[str, Tensor]:
        raise NotImplementedError

    def _require_labels(self, labels: Tensor | None) -> Tensor:
        """``labels``, or ConfigError for a loss that needs them (`needs_labels`) called without."""
        if labels is None:
            raise ConfigError(f"{type(self).__name__} needs labels (a 'label' or 'score' column)")
        return labels

    def check_columns(self, n_text_columns: int, has_labels: bool) -> None:
        """Raise ConfigError when `n_text_columns` text columns (+ labels or not) cannot feed this loss."""
        name = type(self).__name__
        high = self.max_columns
        if n_text_columns < self.min_columns or (high is not None and n_text_columns > high):
            want = f"{self.min_columns}" + (
                "+" if high is None else f"-{high}" if high != self.min_columns else ""
            )
            raise ConfigError(f"{name} takes {want} text columns, the dataset has {n_text_columns}")
        if self.needs_labels and not has_labels:
            raise ConfigError(f"{name} needs a 'label' or 'score' column, the dataset has none")

    def get_config_dict(self) -> dict[str, Any]:
        """The loss's hyper-parameters, for the model card."""
        return {}
