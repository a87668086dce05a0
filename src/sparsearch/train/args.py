"""Training arguments: Hugging Face `TrainingArguments` plus the sparse-encoder settings."""

from __future__ import annotations

from dataclasses import dataclass, field

from transformers import TrainingArguments

from sparsearch.errors import ConfigError

BATCH_SAMPLERS = ("no_duplicates", "random")
MULTI_DATASET_SAMPLERS = ("round_robin", "proportional")
ROUTES = ("query", "document")


@dataclass
class SparseEncoderTrainingArguments(TrainingArguments):
    """`transformers.TrainingArguments` with:

    router_mapping: dataset column → route ("query" / "document"), for router (inference-free)
        models; {dataset name: {column: route}} when training on several datasets.
    learning_rate_mapping: parameter-name regex → learning rate, e.g. {r"SparseStaticEmbedding": 1e-3}.
    frozen_parameters: parameter-name regexes whose parameters do not train (``requires_grad`` is
        turned off on the model), e.g. ["sub_modules.document."] to train only the static
        query weights of an inference-free model.
    batch_sampler: "no_duplicates" (no text twice in a batch: safe in-batch negatives) or "random".
    multi_dataset_batch_sampler: "round_robin" (one batch per dataset in turn, until the smallest
        is exhausted) or "proportional" (every batch of every dataset, in random order).
    """

    router_mapping: dict = field(default_factory=dict)
    learning_rate_mapping: dict = field(default_factory=dict)
    frozen_parameters: list = field(default_factory=list)
    batch_sampler: str = "no_duplicates"
    multi_dataset_batch_sampler: str = "proportional"
    remove_unused_columns: bool = False
    report_to: str | list[str] = "none"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.batch_sampler not in BATCH_SAMPLERS:
            raise ConfigError(
                f"batch_sampler must be one of {BATCH_SAMPLERS}, got {self.batch_sampler!r}"
            )
        if self.multi_dataset_batch_sampler not in MULTI_DATASET_SAMPLERS:
            raise ConfigError(
                f"multi_dataset_batch_sampler must be one of {MULTI_DATASET_SAMPLERS}, "
                f"got {self.multi_dataset_batch_sampler!r}"
            )
        for pattern, rate in self.learning_rate_mapping.items():
            if not isinstance(rate, (int, float)) or rate <= 0:
                raise ConfigError(
                    f"learning_rate_mapping[{pattern!r}] must be a positive number, got {rate!r}"
                )
        if not isinstance(self.frozen_parameters, (list, tuple)) or not all(
            isinstance(p, str) for p in self.frozen_parameters
        ):
            raise ConfigError(
                f"frozen_parameters must be a list of regexes, got {self.frozen_parameters!r}"
            )
