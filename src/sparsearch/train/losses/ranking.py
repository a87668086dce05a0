"""Ranking losses: in-batch negatives, and distillation from teacher scores or vectors."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from sparsearch.errors import ConfigError
from sparsearch.train.losses.base import SparseLoss
from sparsearch.train.losses.similarity import matrix_fn, pairwise_fn


class SparseMultipleNegativesRankingLoss(SparseLoss):
    """In-batch negatives: columns (query, positive, hard negative 1, ..., hard negative n).

    Every query is scored against every positive and hard negative of the batch; the loss is the
    cross-entropy of picking its own positive. Use a no-duplicates batch sampler so that a
    query's positive never reappears as another row's "negative".
    """

    min_columns = 2

    def __init__(self, model: nn.Module, scale: float = 1.0, similarity: str = "dot") -> None:
        super().__init__(model)
        if not scale > 0:
            raise ConfigError(f"scale must be positive, got {scale}")
        self.scale = scale
        self.similarity = similarity
        self._sim = matrix_fn(similarity)

    def compute_loss_from_embeddings(
        self, embeddings: list[Tensor], labels: Tensor | None = None
    ) -> Tensor:
        queries, docs = embeddings[0], torch.cat(embeddings[1:])
        scores = self._sim(queries, docs) * self.scale
        rows = torch.arange(queries.shape[0], device=queries.device)
        return (torch.logsumexp(scores, dim=1) - scores[rows, rows]).mean()

    def get_config_dict(self) -> dict[str, Any]:
        return {"scale": self.scale, "similarity": self.similarity}


def _pair_scores(sim: Callable[[Tensor, Tensor], Tensor], embeddings: list[Tensor]) -> Tensor:
    """(batch, n_candidates) similarities of the query column to every other column."""
    query = embeddings[0]
    return torch.stack([sim(query, other) for other in embeddings[1:]], dim=1)


class SparseMarginMSELoss(SparseLoss):
    """MarginMSE distillation: columns (query, positive, negative 1..n) + teacher margins.

    Labels are either the teacher's margins pos − neg_i (shape (batch,) or (batch, n)) or the
    teacher's raw scores (batch, n + 1), from which the margins are taken.
    """

    min_columns = 3
    needs_labels = True

    def __init__(self, model: nn.Module, similarity: str = "dot") -> None:
        super().__init__(model)
        self.similarity = similarity
        self._sim = pairwise_fn(similarity)

    def compute_loss_from_embeddings(
        self, embeddings: list[Tensor], labels: Tensor | None
    ) -> Tensor:
        scores = _pair_scores(self._sim, embeddings)
        batch, n_neg = scores.shape[0], scores.shape[1] - 1
        labels = self._require_labels(labels).detach().float()
        if labels.shape == (batch, n_neg + 1):
            labels = labels[:, :1] - labels[:, 1:]
        labels = labels.reshape(batch, -1)
        if labels.shape != (batch, n_neg):
            raise ConfigError(
                f"MarginMSE labels must be margins (batch, {n_neg}) or scores (batch, {n_neg + 1}), "
                f"got {tuple(labels.shape)}"
            )
        return F.mse_loss(scores[:, :1] - scores[:, 1:], labels)

    def get_config_dict(self) -> dict[str, Any]:
        return {"similarity": self.similarity}


class SparseDistillKLDivLoss(SparseLoss):
    """KL divergence between the teacher's and the student's softmax over the candidates.

    Columns (query, candidate 1, ..., candidate n), n ≥ 2; labels = teacher scores (batch, n).
    The loss is scaled by the student temperature squared, as in Hinton et al.
    """

    min_columns = 3
    needs_labels = True

    def __init__(
        self,
        model: nn.Module,
        similarity: str = "dot",
        temperature: float = 2.0,
        student_temperature: float | None = None,
        teacher_temperature: float | None = None,
    ) -> None:
        super().__init__(model)
        self.similarity = similarity
        self._sim = pairwise_fn(similarity)
        self.temperature = temperature
        self.student_temperature = student_temperature or temperature
        self.teacher_temperature = teacher_temperature or temperature
        for value in (self.temperature, self.student_temperature, self.teacher_temperature):
            if not 0 < value < float("inf"):
                raise ConfigError(f"temperatures must be positive and finite, got {value}")

    def compute_loss_from_embeddings(
        self, embeddings: list[Tensor], labels: Tensor | None
    ) -> Tensor:
        scores = _pair_scores(self._sim, embeddings)
        labels = self._require_labels(labels)
        if labels.shape != scores.shape:
            raise ConfigError(
                f"KL-div labels must be teacher scores of shape {tuple(scores.shape)}, "
                f"got {tuple(labels.shape)}"
            )
        student = torch.log_softmax(scores / self.student_temperature, dim=1)
        teacher = torch.softmax(labels.detach().float() / self.teacher_temperature, dim=1)
        loss = F.kl_div(student, teacher, reduction="batchmean")
        return loss * self.student_temperature**2

    def get_config_dict(self) -> dict[str, Any]:
        return {
            "similarity": self.similarity,
            "student_temperature": self.student_temperature,
            "teacher_temperature": self.teacher_temperature,
        }


class SparseMSELoss(SparseLoss):
    """MSE between the student's vectors and a teacher's vectors (the label column).

    Labels are (batch, dim) — the same target for every text column — or (batch, columns, dim).
    """

    needs_labels = True

    def compute_loss_from_embeddings(
        self, embeddings: list[Tensor], labels: Tensor | None
    ) -> Tensor:
        labels = self._require_labels(labels).detach()
        if labels.dim() == 2:
            targets = [labels] * len(embeddings)
        elif labels.dim() == 3 and labels.shape[1] == len(embeddings):
            targets = list(labels.unbind(1))
        else:
            raise ConfigError(
                f"MSE labels must be (batch, dim) or (batch, {len(embeddings)}, dim), "
                f"got {tuple(labels.shape)}"
            )
        losses = [F.mse_loss(e, t.to(e.dtype)) for e, t in zip(embeddings, targets, strict=True)]
        return torch.stack(losses).mean()
