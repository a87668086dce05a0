"""An interrupted training run resumed from a checkpoint ends where the uninterrupted one does,
for every model family: SPLADE, inference-free SPLADE (router + static query weights with their
own learning rate) and CSR (dense backbone + sparse autoencoder with dead-latent bookkeeping)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import torch
from transformers import TrainerCallback

from sparsearch.models import Pooling, SparseAutoEncoder, SparseEncoder, Transformer
from sparsearch.train import CSRLoss, SparseEncoderTrainer
from sparsearch.train.losses import SparseLoss
from sparsearch.train.trainer import TRAINING_WEIGHTS
from tests.train.conftest import splade_loss, state_snapshot, training_args

STATIC = "0.sub_modules.query.0.weight"  # the inference-free model's static query weights
BASE_RATE, STATIC_RATE = 5e-5, 1e-3
ROUTES = {"query": "query", "positive": "document", "negative_1": "document"}


@dataclass
class Family:
    """A model to train, how to build its loss, and the training arguments it needs."""

    model: SparseEncoder
    loss: Callable[[SparseEncoder], SparseLoss]
    args: dict[str, Any] = field(default_factory=dict)


def _splade_warming_up(model: SparseEncoder) -> SparseLoss:
    """SpladeLoss whose regulariser warms up over the whole run: resumed steps land mid warm-up."""
    return splade_loss(model, warmup_ratio=1.0)


def _csr(tiny_model_dir: Path) -> SparseEncoder:
    """Tiny BERT + mean pooling + a 4x autoencoder whose idle latents feed the auxiliary loss
    after one step (dead_threshold=1), so the dead-latent buffer steers these 4 steps."""
    torch.manual_seed(0)
    backbone = Transformer(tiny_model_dir)
    dim = backbone.get_embedding_dimension()
    head = SparseAutoEncoder(dim, hidden_dim=4 * dim, k=4, k_aux=16, dead_threshold=1)
    return SparseEncoder(modules=[backbone, Pooling(dim, "mean"), head])


@pytest.fixture(params=["splade", "inference_free", "csr"])
def family(request, tiny_model_dir) -> Family:
    if request.param == "splade":
        return Family(request.getfixturevalue("tiny_splade"), _splade_warming_up)
    if request.param == "inference_free":
        return Family(
            request.getfixturevalue("tiny_inference_free"),
            _splade_warming_up,
            {"router_mapping": ROUTES, "learning_rate_mapping": {STATIC: STATIC_RATE}},
        )
    return Family(_csr(tiny_model_dir), CSRLoss)


class _StepCounter(TrainerCallback):
    """Counts the optimisation steps a run actually performs."""

    def __init__(self) -> None:
        self.steps = 0

    def on_step_end(self, args, state, control, **kwargs) -> None:
        self.steps += 1


def _train(
    family: Family, model: SparseEncoder, tiny_pairs, output_dir: Path, **train_kwargs: Any
) -> tuple[SparseEncoderTrainer, int]:
    """4 steps (checkpoints at 2 and 4) into ``output_dir``; the trainer and the steps it ran."""
    args = training_args(
        output_dir, output_dir=str(output_dir), learning_rate=BASE_RATE, **family.args
    )
    counter = _StepCounter()
    loss = family.loss(model)
    trainer = SparseEncoderTrainer(model, args, tiny_pairs, loss, callbacks=[counter])
    trainer.train(**train_kwargs)
    return trainer, counter.steps


def _scramble(model: SparseEncoder) -> None:
    """Move every weight and buffer off its value, so only the checkpoint can restore it."""
    with torch.no_grad():
        for tensor in model.state_dict().values():
            tensor.add_(0.5 if tensor.is_floating_point() else 1000)


def _step_logs(trainer: SparseEncoderTrainer, steps: range) -> list[dict[str, float]]:
    """The training logs (loss parts, active dims, regulariser weights, ...) of ``steps``."""
    logs = {h["step"]: h for h in trainer.state.log_history if "loss" in h}
    return [logs[step] for step in steps]


def _base_rates(trainer: SparseEncoderTrainer) -> dict[int, float]:
    """id(parameter) -> the learning rate its optimizer group schedules from."""
    assert trainer.optimizer is not None
    return {
        id(p): group["initial_lr"]
        for group in trainer.optimizer.param_groups
        for p in group["params"]
    }


def test_training_resumed_from_a_checkpoint_ends_like_the_uninterrupted_run(
    tmp_path, family, tiny_pairs
):
    initial = state_snapshot(family.model)
    interrupted = copy.deepcopy(family.model)

    full, full_steps = _train(family, family.model, tiny_pairs, tmp_path / "full")
    final = state_snapshot(family.model)
    assert full_steps == full.state.global_step == 4
    assert any(not torch.equal(initial[k], v) for k, v in final.items() if v.is_floating_point())
    dead_latent_stats = [v for k, v in final.items() if k.endswith("stats_last_nonzero")]
    assert all(stats.any() for stats in dead_latent_stats)  # CSR's bookkeeping ran

    checkpoint = tmp_path / "full" / "checkpoint-2"
    assert (checkpoint / TRAINING_WEIGHTS).is_file()
    _scramble(interrupted)
    resumed, resumed_steps = _train(
        family,
        interrupted,
        tiny_pairs,
        tmp_path / "resumed",
        resume_from_checkpoint=str(checkpoint),
    )
    assert resumed_steps == 2 and resumed.state.global_step == 4

    after = state_snapshot(interrupted)
    assert after.keys() == final.keys()
    for key, value in after.items():
        torch.testing.assert_close(value, final[key], rtol=1e-5, atol=1e-6, msg=key)
    # the resumed steps had the same losses, active dims and regulariser warm-up weights
    assert _step_logs(resumed, range(3, 5)) == [
        pytest.approx(log, rel=1e-4) for log in _step_logs(full, range(3, 5))
    ]
    rates = _base_rates(resumed)
    static = dict(interrupted.named_parameters()).get(STATIC)
    if static is not None:  # inference-free: the static weights keep their own rate
        assert rates.pop(id(static)) == STATIC_RATE
    assert set(rates.values()) == {BASE_RATE}
