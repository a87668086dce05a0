"""The trainer: configuration checks before compute, training, logging, checkpoints and resume."""

from __future__ import annotations

import json

import pytest
import torch
from datasets import Dataset

from sparsearch.errors import ConfigError
from sparsearch.train import SparseEncoderTrainer, SparseMarginMSELoss
from tests.train.conftest import splade_loss, state_snapshot, training_args


def test_router_model_without_router_mapping_is_refused(tmp_path, tiny_inference_free, tiny_pairs):
    loss = splade_loss(tiny_inference_free)
    with pytest.raises(ConfigError, match="router_mapping"):
        SparseEncoderTrainer(tiny_inference_free, training_args(tmp_path), tiny_pairs, loss)


def test_router_mapping_with_unknown_column_is_refused(tmp_path, tiny_inference_free, tiny_pairs):
    args = training_args(tmp_path, router_mapping={"question": "query", "positive": "document"})
    with pytest.raises(ConfigError, match="'question'"):
        SparseEncoderTrainer(
            tiny_inference_free, args, tiny_pairs, splade_loss(tiny_inference_free)
        )


def test_loss_that_does_not_fit_the_columns_is_refused(tmp_path, tiny_splade, tiny_pairs):
    two_columns = tiny_pairs.remove_columns("negative_1")
    with pytest.raises(ConfigError, match="MarginMSE.*3\\+ text columns"):
        SparseEncoderTrainer(
            tiny_splade, training_args(tmp_path), two_columns, SparseMarginMSELoss(tiny_splade)
        )
    with pytest.raises(ConfigError, match="needs a 'label' or 'score' column"):
        SparseEncoderTrainer(
            tiny_splade, training_args(tmp_path), tiny_pairs, SparseMarginMSELoss(tiny_splade)
        )


def test_learning_rate_pattern_matching_nothing_is_refused(tmp_path, tiny_splade, tiny_pairs):
    args = training_args(tmp_path, learning_rate_mapping={r"no_such_param": 1e-3})
    with pytest.raises(ConfigError, match="matches no parameter"):
        SparseEncoderTrainer(tiny_splade, args, tiny_pairs, splade_loss(tiny_splade))


def inference_free_trainer(tmp_path, model, pairs, static_rate: float, **kwargs):
    """A trainer for the tiny inference-free model, its static query weights at `static_rate`."""
    args = training_args(
        tmp_path,
        router_mapping={"query": "query", "positive": "document", "negative_1": "document"},
        learning_rate_mapping={r"sub_modules\.query\.0\.weight": static_rate},
        **kwargs,
    )
    return SparseEncoderTrainer(model, args, pairs, splade_loss(model))


def test_frozen_parameters_pattern_matching_nothing_or_everything_is_refused(
    tmp_path, tiny_splade, tiny_pairs
):
    for patterns, message in (([r"no_such_param"], "matches no parameter"), ([r"."], "nothing")):
        args = training_args(tmp_path, frozen_parameters=patterns)
        with pytest.raises(ConfigError, match=message):
            SparseEncoderTrainer(tiny_splade, args, tiny_pairs, splade_loss(tiny_splade))
    for not_a_list in (r"sub_modules", 5, [3]):
        with pytest.raises(ConfigError, match="list of regexes"):
            training_args(tmp_path, frozen_parameters=not_a_list)


def test_frozen_document_route_trains_only_the_static_query_weights(
    tmp_path, tiny_inference_free, tiny_pairs
):
    before = state_snapshot(tiny_inference_free)
    trainer = inference_free_trainer(
        tmp_path,
        tiny_inference_free,
        tiny_pairs,
        1e-1,
        frozen_parameters=[r"sub_modules\.document\."],
    )
    trainer.train()
    after = tiny_inference_free.state_dict()
    moved = {k for k in before if not torch.equal(before[k], after[k])}
    assert moved == {"0.sub_modules.query.0.weight"}
    optimised = {id(p) for g in trainer.optimizer.param_groups for p in g["params"]}
    assert optimised == {id(tiny_inference_free[0].sub_modules["query"][0].weight)}


def test_bad_sampler_name_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="batch_sampler"):
        training_args(tmp_path, batch_sampler="sequential")


def test_learning_rate_mapping_gives_static_weights_their_own_rate(
    tmp_path, tiny_inference_free, tiny_pairs
):
    trainer = inference_free_trainer(tmp_path, tiny_inference_free, tiny_pairs, 1e-3)
    optimizer = trainer.create_optimizer()
    static = dict(tiny_inference_free.named_parameters())["0.sub_modules.query.0.weight"]
    rates = {id(p): g["lr"] for g in optimizer.param_groups for p in g["params"]}
    assert rates[id(static)] == 1e-3
    assert {r for pid, r in rates.items() if pid != id(static)} == {5e-5}


def test_training_logs_active_dims_saves_a_card_and_resumes_identically(
    tmp_path, tiny_pairs, tiny_model_dir
):
    from sparsearch.models import SparseEncoder

    def fresh():
        return SparseEncoder(tiny_model_dir)

    calls = []

    def evaluator(model):
        calls.append(1)
        return {"ndcg@10": 0.5 + len(calls) / 100}

    model = fresh()
    before = state_snapshot(model)
    args = training_args(tmp_path, eval_strategy="steps", eval_steps=4)
    trainer = SparseEncoderTrainer(
        model,
        args,
        tiny_pairs,
        splade_loss(model),
        evaluator=evaluator,
        model_card_data={"base_model": "tiny-random-bert"},
    )
    trainer.train()
    trainer.save_model(str(tmp_path / "final"))
    full = state_snapshot(model)
    assert any(not torch.equal(before[k], full[k]) for k in full)
    logs = [h for h in trainer.state.log_history if "loss" in h]
    assert len(logs) == 4
    assert all(h["document_active_dims"] > 0 and h["query_active_dims"] > 0 for h in logs)
    assert logs[0]["document_regularizer_weight"] == 0.0  # quadratic warm-up starts at zero
    assert logs[-1]["document_regularizer_weight"] == pytest.approx(3e-3)
    card = (tmp_path / "final" / "README.md").read_text()
    assert "tiny-random-bert" in card and "SpladeLoss" in card and "eval_ndcg@10" in card
    assert "| 32 | query, positive, negative_1 |" in card
    reloaded = SparseEncoder(str(tmp_path / "final"))
    assert torch.equal(
        reloaded.state_dict()["0.auto_model.bert.embeddings.word_embeddings.weight"],
        full["0.auto_model.bert.embeddings.word_embeddings.weight"],
    )

    # An interrupted run resumed from its step-2 checkpoint ends with the same weights.
    model2 = fresh()
    args2 = training_args(tmp_path, output_dir=str(tmp_path / "resumed"))
    resumed = SparseEncoderTrainer(model2, args2, tiny_pairs, splade_loss(model2))
    resumed.train(resume_from_checkpoint=str(tmp_path / "out" / "checkpoint-2"))
    assert resumed.state.global_step == 4
    for key, value in state_snapshot(model2).items():
        torch.testing.assert_close(value, full[key], rtol=1e-5, atol=1e-6)


def test_two_datasets_with_their_own_losses_round_robin(tmp_path, tiny_splade, tiny_pairs):
    margins = tiny_pairs.add_column("label", [1.0] * len(tiny_pairs))
    datasets = {"pairs": tiny_pairs, "distill": margins}
    losses = {"pairs": splade_loss(tiny_splade), "distill": SparseMarginMSELoss(tiny_splade)}
    args = training_args(
        tmp_path, max_steps=2, multi_dataset_batch_sampler="round_robin", save_strategy="no"
    )
    trainer = SparseEncoderTrainer(tiny_splade, args, datasets, losses)
    names = [
        batch["dataset_name"]
        for batch, _ in zip(trainer.get_train_dataloader(), range(4), strict=False)
    ]
    assert names == ["pairs", "distill", "pairs", "distill"]
    trainer.train()
    logs = [h for h in trainer.state.log_history if "loss" in h]
    assert "base_loss" in logs[0] and "base_loss" not in logs[1]  # MarginMSE returns a plain tensor


def test_no_duplicates_batches_never_repeat_a_text():
    from sparsearch.train.sampling import DatasetBatchSampler

    ds = Dataset.from_dict(
        {"query": [f"q{i % 5}" for i in range(40)], "positive": [f"d{i}" for i in range(40)]}
    )
    sampler = DatasetBatchSampler(ds, batch_size=5, text_columns=["query", "positive"])
    batches = list(sampler)
    assert len(batches) >= 6
    for batch in batches:
        assert len({ds[i]["query"] for i in batch}) == 5
    assert json.dumps(batches) != json.dumps(
        list(DatasetBatchSampler(ds, 5, ["query", "positive"], seed=1))
    )
