"""Fixtures for the training tests: hand-written (query, positive, negative) rows for the tiny
random model, and the real splade-tiny (loaded once per session, copied per test); helpers that
build short training runs."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from tests.conftest import TINY_DOCS, TINY_QUERIES, real_model

SPLADE = "rasyosef/splade-tiny"


def training_args(tmp_path: Path, **kwargs: Any):
    """4 CPU steps of batch 4, logged every step, checkpointed every 2, into tmp_path/out."""
    from sparsearch.train import SparseEncoderTrainingArguments

    base: dict[str, Any] = dict(
        output_dir=str(tmp_path / "out"),
        per_device_train_batch_size=4,
        max_steps=4,
        logging_steps=1,
        learning_rate=5e-5,
        use_cpu=True,
        seed=3,
        save_steps=2,
    )
    base.update(kwargs)
    return SparseEncoderTrainingArguments(**base)


def splade_loss(model: nn.Module, **kwargs: Any):
    """SpladeLoss over in-batch negatives, with both regularisers on; kwargs go to SpladeLoss."""
    from sparsearch.train import SparseMultipleNegativesRankingLoss, SpladeLoss

    return SpladeLoss(
        model,
        SparseMultipleNegativesRankingLoss(model),
        document_regularizer_weight=3e-3,
        query_regularizer_weight=5e-3,
        **kwargs,
    )


def state_snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    """A detached copy of every weight and buffer of ``model``."""
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


@pytest.fixture(scope="session")
def tiny_pairs():
    """32 distinct (query, positive, negative_1) rows over the tiny vocabulary."""
    from datasets import Dataset

    docs = list(TINY_DOCS.values())
    rows = {"query": [], "positive": [], "negative_1": []}
    for i, query in enumerate(TINY_QUERIES):
        (title, text), (_, negative) = docs[i], docs[(i + 5) % len(docs)]
        for q, positive in ((query, text), (f"{query} please", f"{title}: {text}")):
            rows["query"].append(q)
            rows["positive"].append(positive)
            rows["negative_1"].append(negative if q == query else f"{negative} {title}")
    return Dataset.from_dict(rows)


@pytest.fixture(scope="session")
def _splade_tiny():
    from sparsearch.models import SparseEncoder

    model = SparseEncoder(real_model(SPLADE))
    model.max_seq_length = 24
    return model


@pytest.fixture()
def splade_tiny(_splade_tiny):
    """The real rasyosef/splade-tiny (max_seq_length 24); a fresh copy per test."""
    return copy.deepcopy(_splade_tiny)


@pytest.fixture(scope="session")
def _inference_free_model(idf_json):
    from sparsearch.models import (
        MLMTransformer,
        Router,
        SparseEncoder,
        SparseStaticEmbedding,
        SpladePooling,
    )

    mlm = MLMTransformer(real_model(SPLADE), max_seq_length=24)
    static = SparseStaticEmbedding.from_json(idf_json, mlm.tokenizer)
    router = Router.for_query_document([static], [mlm, SpladePooling()])
    return SparseEncoder(modules=[router])


@pytest.fixture()
def inference_free_model(_inference_free_model):
    """Real splade-tiny on the document route, real IDF weights on the query route; a copy."""
    return copy.deepcopy(_inference_free_model)
