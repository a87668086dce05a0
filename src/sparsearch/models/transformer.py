"""Hugging Face transformer input modules: a dense encoder (token embeddings) and a masked
language model (per-token vocabulary logits), saved as sentence-transformers ``Transformer``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
from transformers import (
    AutoModel,
    AutoModelForMaskedLM,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from sparsearch.errors import ModelLoadError
from sparsearch.models._base import TokenizerInput, read_json

_TASK_OUTPUTS = {"feature-extraction": "last_hidden_state", "fill-mask": "logits"}
_LEGACY_CONFIGS = (
    "sentence_bert_config.json",
    "sentence_roberta_config.json",
    "sentence_distilbert_config.json",
)


class Transformer(TokenizerInput):
    """A Hugging Face model plus its tokenizer.

    ``transformer_task="feature-extraction"`` outputs ``token_embeddings`` (last hidden states);
    ``"fill-mask"`` (see :class:`MLMTransformer`) outputs vocabulary logits. Pass a hub id or a
    folder, or an already built ``model`` and ``tokenizer``.
    """

    config_file_name: ClassVar[str] = "sentence_bert_config.json"
    st_type: ClassVar[str] = "sentence_transformers.base.modules.transformer.Transformer"
    save_in_root: ClassVar[bool] = True
    default_task: ClassVar[str] = "feature-extraction"

    def __init__(
        self,
        model_name_or_path: str | Path | None = None,
        *,
        transformer_task: str | None = None,
        max_seq_length: int | None = None,
        model: PreTrainedModel | None = None,
        tokenizer: PreTrainedTokenizerBase | None = None,
    ) -> None:
        super().__init__()
        self.transformer_task = transformer_task or self.default_task
        if self.transformer_task not in _TASK_OUTPUTS:
            raise ModelLoadError(f"unsupported transformer_task {self.transformer_task!r}")
        if model is None or tokenizer is None:
            if model_name_or_path is None:
                raise ModelLoadError(
                    "Transformer needs model_name_or_path or a model and tokenizer"
                )
            auto = AutoModelForMaskedLM if self.transformer_task == "fill-mask" else AutoModel
            try:
                model = model or auto.from_pretrained(str(model_name_or_path))
                tokenizer = tokenizer or AutoTokenizer.from_pretrained(str(model_name_or_path))
            except (OSError, ValueError, KeyError) as err:
                raise ModelLoadError(f"cannot load {model_name_or_path}: {err}") from err
        self.auto_model = model.eval()
        self.tokenizer = tokenizer
        max_pos = getattr(model.config, "max_position_embeddings", -1)
        if max_seq_length is not None:
            tokenizer.model_max_length = int(max_seq_length)
        elif max_pos and max_pos > 0:
            tokenizer.model_max_length = min(tokenizer.model_max_length, max_pos)

    # ------------------------------------------------------------------ config
    def get_config_dict(self) -> dict[str, Any]:
        output = _TASK_OUTPUTS[self.transformer_task]
        return {
            "transformer_task": self.transformer_task,
            "modality_config": {"text": {"method": "forward", "method_output_name": output}},
            "module_output_name": "token_embeddings",
        }

    # ------------------------------------------------------------------ compute
    def preprocess(self, texts: list[str], task: str | None = None) -> dict[str, Any]:
        """Tokenize like sentence-transformers: pad to the longest, truncate to max_seq_length."""
        return dict(
            self.tokenizer(
                texts,
                padding=True,
                truncation="longest_first",
                max_length=self.max_seq_length,
                return_tensors="pt",
            )
        )

    def _model_inputs(self, features: dict[str, Any]) -> dict[str, torch.Tensor]:
        keys = ("input_ids", "attention_mask", "token_type_ids")
        return {k: features[k] for k in keys if k in features}

    def forward(self, features: dict[str, Any]) -> dict[str, Any]:
        out = self.auto_model(**self._model_inputs(features), return_dict=True)
        features["token_embeddings"] = out.last_hidden_state
        return features

    def get_embedding_dimension(self) -> int:
        return int(self.auto_model.config.hidden_size)

    # ------------------------------------------------------------------ save / load
    def save(self, path: str | Path) -> None:
        self.auto_model.save_pretrained(str(path))
        self.tokenizer.save_pretrained(str(path))
        self.save_config(path)

    @classmethod
    def load(cls, path: str | Path) -> Transformer:
        path = Path(path)
        config: dict[str, Any] = {}
        for name in _LEGACY_CONFIGS:
            if (path / name).is_file():
                config = read_json(path / name)
                break
        task = config.get("transformer_task", cls.default_task)
        target = MLMTransformer if task == "fill-mask" else Transformer
        return target(path, transformer_task=task, max_seq_length=config.get("max_seq_length"))


@dataclass
class MLMHead:
    """An MLM head as ``logits = transform(hidden) @ weight.T + bias``.

    ``weight`` is None when the head cannot be split: ``transform`` then yields the logits, bias
    included. Splitting lets max pooling add the bias once per text instead of once per token
    (exact: adding a constant commutes with max, rounding included).
    """

    transform: torch.nn.Module
    weight: torch.Tensor | None = None
    bias: torch.Tensor | None = None


def _split_head(model: PreTrainedModel) -> MLMHead | None:
    base = model.base_model
    others = [m for m in model.children() if m is not base]
    if len(others) != 1:  # the head is not a single module: use the full model
        return None
    head = others[0]
    predictions = getattr(head, "predictions", None)  # the BERT family
    decoder = getattr(predictions, "decoder", None)
    if (
        predictions is not None
        and isinstance(decoder, torch.nn.Linear)
        and hasattr(predictions, "transform")
    ):
        return MLMHead(predictions.transform, decoder.weight, decoder.bias)
    return MLMHead(head)


class MLMTransformer(Transformer):
    """A masked language model: per-token logits over the vocabulary (the SPLADE backbone).

    With gradients enabled (training) ``forward`` puts the full ``(batch, length, vocab)`` logits in
    ``token_embeddings``, as sentence-transformers does. Without gradients (inference) it puts the
    last hidden states in ``token_hidden`` and the MLM head in ``mlm_head``, so that
    :class:`~sparsearch.models.SpladePooling` can compute logits chunk by chunk on real tokens only.
    """

    default_task: ClassVar[str] = "fill-mask"

    def __init__(self, model_name_or_path: str | Path | None = None, **kwargs: Any) -> None:
        kwargs["transformer_task"] = "fill-mask"
        super().__init__(model_name_or_path, **kwargs)
        head = self.auto_model.get_output_embeddings()
        if head is None:
            raise ModelLoadError("the model has no MLM head (output embeddings)")
        self.vocab_size = int(head.weight.shape[0])
        if len(self.tokenizer) != self.vocab_size:
            raise ModelLoadError(
                f"the tokenizer has {len(self.tokenizer)} tokens but the MLM head outputs "
                f"{self.vocab_size} logits"
            )
        self._head = _split_head(self.auto_model)

    def forward(self, features: dict[str, Any]) -> dict[str, Any]:
        inputs = self._model_inputs(features)
        if torch.is_grad_enabled() or self._head is None:
            features["token_embeddings"] = self.auto_model(**inputs, return_dict=True).logits
        else:
            hidden = self.auto_model.base_model(**inputs, return_dict=True).last_hidden_state
            features["token_hidden"] = hidden
            features["mlm_head"] = self._head
        return features

    def get_embedding_dimension(self) -> int:
        return self.vocab_size


def tokenizer_vocab(tokenizer: PreTrainedTokenizerBase, size: int) -> tuple[str, ...]:
    """Token strings of ids ``0..size-1``."""
    return tuple(tokenizer.convert_ids_to_tokens(list(range(size))))


__all__ = ["Transformer", "MLMTransformer", "tokenizer_vocab"]
