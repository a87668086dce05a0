"""SparseEncoderTrainer: Hugging Face `Trainer` for sparse encoders and their losses."""

from __future__ import annotations

import os
import re
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import torch
from safetensors.torch import load_model, save_model
from torch import nn
from torch.utils.data import DataLoader
from transformers import (
    Trainer,
    TrainerCallback,
    TrainerControl,
    TrainerState,
    TrainingArguments,
)

from sparsearch.errors import ConfigError
from sparsearch.train.args import ROUTES, SparseEncoderTrainingArguments
from sparsearch.train.data import (
    DATASET_NAME_KEY,
    NamedConcatDataset,
    SparseEncoderDataCollator,
    split_columns,
)
from sparsearch.train.losses import SparseLoss, SpladeLoss
from sparsearch.train.model_card import write_model_card
from sparsearch.train.sampling import DatasetBatchSampler, MultiDatasetBatchSampler

if TYPE_CHECKING:
    from sparsearch.models import SparseEncoder

#: the trainer's own copy of every weight in a checkpoint, used to resume
TRAINING_WEIGHTS = "training_weights.safetensors"
Evaluator = Callable[[nn.Module], Mapping[str, float]]


def _has_router(model: nn.Module) -> bool:
    return any(type(m).__name__ == "Router" for m in model.modules())


class _RegularizerWarmup(TrainerCallback):
    """Drives every SpladeLoss's regulariser warm-up from the optimisation step."""

    def __init__(self, losses: list[SpladeLoss]) -> None:
        self.losses = losses

    def on_step_begin(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        for loss in self.losses:
            loss.set_training_progress(state.global_step, max(state.max_steps, 1))


class SparseEncoderTrainer(Trainer):
    """Train a sparse encoder with one loss per dataset.

    Dataset columns, in order, are the loss's inputs; a `label` or `score` column holds the labels.
    Every configuration problem (unknown column, a router model without `router_mapping`, a loss
    that does not fit the columns, a `learning_rate_mapping` or `frozen_parameters` pattern that
    matches nothing) raises `ConfigError` here, before any compute starts. Parameters matching
    `frozen_parameters` get ``requires_grad = False`` on the model, and stay so after training.

    Example::

        trainer = SparseEncoderTrainer(model, args, train_dataset=ds, loss=loss, evaluator=ev)
        trainer.train()
    """

    model: SparseEncoder
    args: SparseEncoderTrainingArguments

    def __init__(
        self,
        model: SparseEncoder,
        args: SparseEncoderTrainingArguments,
        train_dataset: Any,
        loss: SparseLoss | Mapping[str, SparseLoss],
        evaluator: Evaluator | None = None,
        callbacks: list[TrainerCallback] | None = None,
        model_card_data: Mapping[str, Any] | None = None,
    ) -> None:
        if not isinstance(args, SparseEncoderTrainingArguments):
            raise ConfigError("args must be SparseEncoderTrainingArguments")
        datasets = (
            dict(train_dataset) if isinstance(train_dataset, Mapping) else {"train": train_dataset}
        )
        if isinstance(loss, Mapping):
            losses = dict(loss)
            if set(losses) != set(datasets):
                raise ConfigError(
                    f"losses are given for {sorted(losses)}, datasets are {sorted(datasets)}"
                )
        else:
            losses = dict.fromkeys(datasets, loss)
        self.datasets = datasets
        self.losses = losses
        self.router_mapping = _per_dataset(args.router_mapping, datasets)
        self.evaluator = evaluator
        self.model_card_data = dict(model_card_data or {})
        _validate(model, args, datasets, losses, self.router_mapping, evaluator)
        for name, param in model.named_parameters():
            if _matches_any(args.frozen_parameters, name):
                param.requires_grad_(False)
        self.loss_modules = nn.ModuleList(list({id(v): v for v in losses.values()}.values()))
        splade = [m for m in self.loss_modules if isinstance(m, SpladeLoss)]
        callbacks = list(callbacks or []) + ([_RegularizerWarmup(splade)] if splade else [])
        super().__init__(
            model=model,
            args=args,
            train_dataset=NamedConcatDataset(datasets),
            # Trainer insists on an eval dataset when evaluation is scheduled; ours is the evaluator.
            eval_dataset=[] if evaluator is not None else None,
            data_collator=SparseEncoderDataCollator(model.tokenize, self.router_mapping),
            callbacks=callbacks,
        )
        self._running: dict[str, list[float]] = defaultdict(list)
        self.last_metrics: dict[str, float] = {}

    # ------------------------------------------------------------------ data
    def get_train_dataloader(self) -> DataLoader:
        concat = self.train_dataset
        if not isinstance(concat, NamedConcatDataset):
            raise ConfigError("train_dataset must stay the NamedConcatDataset that __init__ built")
        samplers = [
            DatasetBatchSampler(
                ds,
                batch_size=self.args.per_device_train_batch_size,
                text_columns=split_columns(ds.column_names)[0],
                no_duplicates=self.args.batch_sampler == "no_duplicates",
                seed=self.args.seed,
                offset=offset,
            )
            for ds, offset in zip(concat.datasets, concat.offsets, strict=True)
        ]
        batch_sampler = MultiDatasetBatchSampler(
            samplers, mode=self.args.multi_dataset_batch_sampler, seed=self.args.seed
        )
        loader = DataLoader(
            concat,
            batch_sampler=batch_sampler,
            collate_fn=self.data_collator,
            num_workers=self.args.dataloader_num_workers,
        )
        return self.accelerator.prepare(loader)

    # ------------------------------------------------------------------ loss
    def compute_loss(
        self,
        model: nn.Module,
        inputs: dict[str, Any],
        return_outputs: bool = False,
        num_items_in_batch: torch.Tensor | int | None = None,
    ) -> torch.Tensor | tuple[torch.Tensor, Any]:
        loss_fn = self.losses[inputs[DATASET_NAME_KEY]]
        value = loss_fn(inputs["columns"], inputs["labels"])
        if isinstance(value, dict):
            for key, part in value.items():
                self._running[key].append(float(part.detach()))
            value = torch.stack(list(value.values())).sum()
        for key, dims in loss_fn.last_active_dims.items():
            self._running[key].append(dims)
        if isinstance(loss_fn, SpladeLoss):
            self._running["document_regularizer_weight"].append(loss_fn.current_document_weight)
            if loss_fn.current_query_weight is not None:
                self._running["query_regularizer_weight"].append(loss_fn.current_query_weight)
        return (value, {}) if return_outputs else value

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if "loss" in logs:  # a training log: add the loss parts and active dims since the last one
            for key, values in self._running.items():
                logs[key] = round(sum(values) / len(values), 6)
            self._running.clear()
        super().log(logs, start_time)

    # ------------------------------------------------------------------ optimiser
    def create_optimizer(self, model: nn.Module | None = None) -> torch.optim.Optimizer:
        """AdamW (or `args.optim`) with one parameter group per learning rate and decay setting."""
        model = self.model if model is None else model
        if self.optimizer is None:
            decay = set(self.get_decay_parameter_names(model))
            groups: dict[tuple[float, bool], list[nn.Parameter]] = defaultdict(list)
            for name, param in model.named_parameters():
                if not param.requires_grad:
                    continue
                rate = next(
                    (
                        lr
                        for pattern, lr in self.args.learning_rate_mapping.items()
                        if re.search(pattern, name)
                    ),
                    self.args.learning_rate,
                )
                groups[(float(rate), name in decay)].append(param)
            param_groups = [
                {
                    "params": params,
                    "lr": rate,
                    "weight_decay": self.args.weight_decay if decays else 0.0,
                }
                for (rate, decays), params in groups.items()
            ]
            # typed PreTrainedModel, but only its named modules / parameters are used (GaLore, LOMO)
            optimizer_cls, kwargs = self.get_optimizer_cls_and_kwargs(self.args, model)  # type: ignore[arg-type]
            self.optimizer = optimizer_cls(param_groups, **kwargs)
        return self.optimizer

    # ------------------------------------------------------------------ evaluation
    def evaluate(
        self,
        eval_dataset: Any = None,
        ignore_keys: list[str] | None = None,
        metric_key_prefix: str = "eval",
    ) -> dict[str, float]:
        """Run the evaluator on the model; metrics are logged as `eval_<name>`."""
        if self.evaluator is None:
            return {}
        start = time.perf_counter()
        was_training = self.model.training
        self.model.eval()
        with torch.no_grad():
            raw = self.evaluator(self.model)
        self.model.train(was_training)
        metrics = {f"{metric_key_prefix}_{k}": float(v) for k, v in raw.items()}
        metrics[f"{metric_key_prefix}_runtime"] = round(time.perf_counter() - start, 3)
        self.last_metrics = metrics
        self.log(dict(metrics))
        self.control = self.callback_handler.on_evaluate(
            self.args, self.state, self.control, metrics
        )
        return metrics

    # ------------------------------------------------------------------ save / resume
    def _save(
        self, output_dir: str | None = None, state_dict: dict[str, Any] | None = None
    ) -> None:
        output_dir = output_dir or self.args.output_dir
        if not output_dir:
            raise ConfigError("no output_dir to save the model to")
        os.makedirs(output_dir, exist_ok=True)
        self.model.save(output_dir)
        save_model(self.model, os.path.join(output_dir, TRAINING_WEIGHTS))
        torch.save(self.args, os.path.join(output_dir, "training_args.bin"))
        write_model_card(self, output_dir)

    def _load_from_checkpoint(
        self, resume_from_checkpoint: str, model: nn.Module | None = None
    ) -> None:
        path = os.path.join(resume_from_checkpoint, TRAINING_WEIGHTS)
        if not os.path.isfile(path):
            raise ConfigError(f"{resume_from_checkpoint} is not a sparsearch training checkpoint")
        load_model(model if model is not None else self.model, path)

    def _load_best_model(self) -> None:
        if self.state.best_model_checkpoint is None:  # no best model recorded: keep these weights
            return
        self._load_from_checkpoint(self.state.best_model_checkpoint)


def _per_dataset(
    mapping: Mapping[str, Any], datasets: Mapping[str, Any]
) -> dict[str, dict[str, str]]:
    """{dataset: {column: route}} from either that or a flat {column: route}."""
    if not mapping:
        return {}
    if all(isinstance(v, Mapping) for v in mapping.values()):
        unknown = set(mapping) - set(datasets)
        if unknown:
            raise ConfigError(f"router_mapping names unknown datasets {sorted(unknown)}")
        return {name: dict(routes) for name, routes in mapping.items()}
    return {name: dict(mapping) for name in datasets}


def _matches_any(patterns: list[str], name: str) -> bool:
    """Whether parameter `name` matches one of the regexes `patterns`."""
    return any(re.search(pattern, name) for pattern in patterns)


def _validate(
    model: nn.Module,
    args: SparseEncoderTrainingArguments,
    datasets: Mapping[str, Any],
    losses: Mapping[str, SparseLoss],
    router_mapping: Mapping[str, Mapping[str, str]],
    evaluator: Evaluator | None,
) -> None:
    """Refuse a configuration that cannot train, before any compute starts."""
    if _has_router(model) and not router_mapping:
        raise ConfigError(
            "the model has a Router (query / document routes) but args.router_mapping is empty: "
            "map each text column to 'query' or 'document', e.g. {'query': 'query', 'positive': 'document'}"
        )
    if router_mapping and not _has_router(model):
        raise ConfigError("router_mapping is set but the model has no Router module")
    for name, ds in datasets.items():
        columns = getattr(ds, "column_names", None)
        if columns is None:
            raise ConfigError(f"dataset {name!r} must be a datasets.Dataset (with column_names)")
        if len(ds) < args.per_device_train_batch_size:
            raise ConfigError(
                f"dataset {name!r} has {len(ds)} rows, fewer than one batch ({args.per_device_train_batch_size})"
            )
        text_columns, label_column = split_columns(columns)
        for column, route in router_mapping.get(name, {}).items():
            if column not in text_columns:
                raise ConfigError(
                    f"router_mapping names column {column!r}, dataset {name!r} has {text_columns}"
                )
            if route not in ROUTES:
                raise ConfigError(f"router_mapping[{column!r}] = {route!r}; routes are {ROUTES}")
        loss = losses[name]
        if not isinstance(loss, SparseLoss):
            raise ConfigError(
                f"the loss for {name!r} is not a sparsearch loss: {type(loss).__name__}"
            )
        if loss.model is not model:
            raise ConfigError(
                f"the loss for {name!r} was built on another model than the one being trained"
            )
        try:
            loss.check_columns(len(text_columns), label_column is not None)
        except ConfigError as err:
            raise ConfigError(f"dataset {name!r} (columns {columns}): {err}") from None
    names = [n for n, _ in model.named_parameters()]
    for key, patterns in (
        ("learning_rate_mapping", list(args.learning_rate_mapping)),
        ("frozen_parameters", args.frozen_parameters),
    ):
        for pattern in patterns:
            if not any(re.search(pattern, n) for n in names):
                raise ConfigError(f"{key} pattern {pattern!r} matches no parameter of the model")
    if names and all(_matches_any(args.frozen_parameters, n) for n in names):
        raise ConfigError("frozen_parameters freezes every parameter of the model: nothing trains")
    if args.eval_strategy != "no" and evaluator is None:
        raise ConfigError(f"eval_strategy is {args.eval_strategy!r} but no evaluator was given")
