"""The model card (README.md) written beside a trained model."""

from __future__ import annotations

import dataclasses
import json
import os
from typing import TYPE_CHECKING, Any

from transformers import TrainingArguments

if TYPE_CHECKING:
    from sparsearch.train.trainer import SparseEncoderTrainer

#: hyper-parameters worth a line in the card when they differ from the defaults
_CARD_ARGS = (
    "learning_rate",
    "num_train_epochs",
    "max_steps",
    "per_device_train_batch_size",
    "gradient_accumulation_steps",
    "warmup_steps",
    "lr_scheduler_type",
    "weight_decay",
    "seed",
    "batch_sampler",
    "multi_dataset_batch_sampler",
    "router_mapping",
    "learning_rate_mapping",
)


def _default(f: dataclasses.Field[Any]) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else None


def _changed_args(args: TrainingArguments) -> dict[str, Any]:
    # Compare with the field defaults: building a default TrainingArguments would reset accelerate.
    defaults = {f.name: _default(f) for f in dataclasses.fields(args)}
    always = ("learning_rate", "num_train_epochs", "per_device_train_batch_size", "seed")
    return {
        name: getattr(args, name)
        for name in _CARD_ARGS
        if name in always or getattr(args, name) != defaults.get(name)
    }


def card_text(trainer: SparseEncoderTrainer) -> str:
    """Markdown: base model, data, losses, hyper-parameters, final metrics, training log."""
    info = trainer.model_card_data
    lines = ["---", "library_name: sparsearch", "tags: [sparse-encoder, sparse, splade]"]
    if info.get("base_model"):
        lines.append(f"base_model: {info['base_model']}")
    lines += ["---", "", f"# {info.get('model_name', 'Sparse encoder')}", ""]
    lines += [
        f"Fine-tuned with sparsearch from `{info.get('base_model', 'a model built in code')}`.",
        f"Output dimensionality: {getattr(trainer.model, 'dim', 'unknown')}.",
        "",
        "## Training data",
        "",
        "| dataset | rows | columns | loss |",
        "|---|---|---|---|",
    ]
    for name, ds in trainer.datasets.items():
        lines.append(
            f"| {name} | {len(ds)} | {', '.join(ds.column_names)} | {type(trainer.losses[name]).__name__} |"
        )
    if info.get("data_description"):
        lines += ["", str(info["data_description"])]
    lines += ["", "## Losses", ""]
    for name, loss in trainer.losses.items():
        config = json.dumps(loss.get_config_dict(), default=str)
        lines.append(f"- `{name}`: `{type(loss).__name__}` {config}")
    lines += ["", "## Hyper-parameters", ""]
    lines += [f"- {k}: `{v}`" for k, v in _changed_args(trainer.args).items()]
    lines += [f"- trained steps: {trainer.state.global_step}"]
    metrics = trainer.last_metrics
    if metrics:
        lines += ["", "## Final evaluation", "", "| metric | value |", "|---|---|"]
        lines += [f"| {k} | {v:.4f} |" for k, v in metrics.items()]
    history = [h for h in trainer.state.log_history if "loss" in h]
    if history:
        lines += [
            "",
            "## Training log",
            "",
            "| step | epoch | loss | query dims | document dims |",
            "|---|---|---|---|---|",
        ]
        for h in history:
            lines.append(
                f"| {h.get('step')} | {h.get('epoch', 0):.2f} | {h['loss']:.4f} "
                f"| {h.get('query_active_dims', float('nan')):.1f} | {h.get('document_active_dims', float('nan')):.1f} |"
            )
    return "\n".join(lines) + "\n"


def write_model_card(trainer: SparseEncoderTrainer, output_dir: str) -> None:
    """Write README.md into `output_dir`."""
    with open(os.path.join(output_dir, "README.md"), "w", encoding="utf-8") as fh:
        fh.write(card_text(trainer))
