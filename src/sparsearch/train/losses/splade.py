"""SpladeLoss: a ranking loss plus FLOPS regularisers on queries and documents."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor, nn

from sparsearch.errors import ConfigError
from sparsearch.train.losses.base import Features, SparseLoss
from sparsearch.train.losses.regularizers import FlopsLoss

SCHEDULES = ("linear", "quadratic")


class SpladeLoss(SparseLoss):
    """The SPLADE objective: `loss` + λ_d·FLOPS(documents) + λ_q·FLOPS(queries).

    Column 0 is the query column, the others are documents. With `query_regularizer_weight=None`
    queries are not regularised (inference-free models); with `use_document_regularizer_only`
    every column is treated as a document (symmetric data).

    The regulariser weights warm up from 0 over the first `warmup_ratio` of training (quadratic by
    default, as in SPLADE v2); the trainer drives it through `set_training_progress`. Outside a
    trainer the full weights apply.

    Example::

        loss = SpladeLoss(model, SparseMultipleNegativesRankingLoss(model),
                          document_regularizer_weight=3e-3, query_regularizer_weight=5e-3)
    """

    def __init__(
        self,
        model: nn.Module,
        loss: SparseLoss,
        document_regularizer_weight: float,
        query_regularizer_weight: float | None = None,
        document_regularizer: FlopsLoss | None = None,
        query_regularizer: FlopsLoss | None = None,
        document_regularizer_threshold: float | None = None,
        query_regularizer_threshold: float | None = None,
        use_document_regularizer_only: bool = False,
        warmup_ratio: float = 1 / 3,
        warmup_schedule: str = "quadratic",
    ) -> None:
        super().__init__(model)
        if not isinstance(loss, SparseLoss):
            raise ConfigError(
                f"SpladeLoss wraps a sparsearch ranking loss, got {type(loss).__name__}"
            )
        if isinstance(loss, SpladeLoss):
            raise ConfigError("SpladeLoss cannot wrap another SpladeLoss")
        if warmup_schedule not in SCHEDULES:
            raise ConfigError(
                f"warmup_schedule must be one of {SCHEDULES}, got {warmup_schedule!r}"
            )
        if not 0 <= warmup_ratio <= 1:
            raise ConfigError(f"warmup_ratio must be in [0, 1], got {warmup_ratio}")
        self.loss = loss
        self.min_columns, self.max_columns = loss.min_columns, loss.max_columns
        self.needs_labels = loss.needs_labels
        self.document_regularizer_weight = document_regularizer_weight
        self.query_regularizer_weight = (
            None if use_document_regularizer_only else query_regularizer_weight
        )
        self.use_document_regularizer_only = use_document_regularizer_only
        self.document_regularizer = document_regularizer or FlopsLoss(
            document_regularizer_threshold
        )
        self.query_regularizer = query_regularizer or FlopsLoss(query_regularizer_threshold)
        self.warmup_ratio = warmup_ratio
        self.warmup_schedule = warmup_schedule
        self.regularizer_scale = 1.0

    def set_training_progress(self, step: int, total_steps: int) -> None:
        """Set the warm-up factor of the regulariser weights for optimisation step `step`."""
        warmup = int(total_steps * self.warmup_ratio)
        if warmup <= 0 or step >= warmup:
            self.regularizer_scale = 1.0
            return
        ratio = step / warmup
        self.regularizer_scale = ratio**2 if self.warmup_schedule == "quadratic" else ratio

    def forward(
        self, features_list: Iterable[Features], labels: Tensor | None = None
    ) -> dict[str, Tensor]:
        embeddings = self.loss.embed(features_list)
        self.last_active_dims = self.loss.last_active_dims
        return self.compute_loss_from_embeddings(embeddings, labels)

    def compute_loss_from_embeddings(
        self, embeddings: list[Tensor], labels: Tensor | None
    ) -> dict[str, Tensor]:
        base = self.loss.compute_loss_from_embeddings(embeddings, labels)
        losses = dict(base) if isinstance(base, dict) else {"base_loss": base}
        docs = embeddings if self.use_document_regularizer_only else embeddings[1:]
        doc_reg = self.document_regularizer.compute_loss_from_embeddings(torch.cat(list(docs)))
        losses["document_regularizer_loss"] = doc_reg * self.current_document_weight
        query_weight = self.current_query_weight
        if query_weight is not None:
            query_reg = self.query_regularizer.compute_loss_from_embeddings(embeddings[0])
            losses["query_regularizer_loss"] = query_reg * query_weight
        return losses

    @property
    def current_document_weight(self) -> float:
        """The document regulariser weight at this point of the warm-up."""
        return self.document_regularizer_weight * self.regularizer_scale

    @property
    def current_query_weight(self) -> float | None:
        """The query regulariser weight at this point of the warm-up (None: not regularised)."""
        if self.query_regularizer_weight is None:
            return None
        return self.query_regularizer_weight * self.regularizer_scale

    def get_config_dict(self) -> dict[str, Any]:
        return {
            "loss": type(self.loss).__name__,
            **{f"loss.{k}": v for k, v in self.loss.get_config_dict().items()},
            "document_regularizer_weight": self.document_regularizer_weight,
            "query_regularizer_weight": self.query_regularizer_weight,
            "document_regularizer": self.document_regularizer.get_config_dict(),
            "query_regularizer": self.query_regularizer.get_config_dict(),
            "warmup_ratio": self.warmup_ratio,
            "warmup_schedule": self.warmup_schedule,
        }
