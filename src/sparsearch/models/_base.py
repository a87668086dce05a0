"""The module base class: a ``torch.nn.Module`` with a JSON config, saved in the
sentence-transformers layout (one folder per module, ``config.json`` + ``model.safetensors``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import torch
from safetensors.torch import load_model, save_model

from sparsearch.errors import ModelLoadError

_M = TypeVar("_M", bound="Module")


def read_json(path: str | Path) -> Any:
    """Parse a JSON file, turning a missing or malformed file into :class:`ModelLoadError`."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError as err:
        raise ModelLoadError(f"missing file {path}") from err
    except json.JSONDecodeError as err:
        raise ModelLoadError(f"malformed JSON in {path}: {err}") from err


def write_json(path: str | Path, data: Any) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=4)


class Module(torch.nn.Module):
    """Base of every encoder module.

    ``config_keys`` name the constructor arguments saved to ``config_file_name``; ``st_type`` is the
    sentence-transformers class path written to ``modules.json`` so that sentence-transformers can
    load our folders (and we theirs); ``forward_kwargs`` are the encode-time keyword arguments the
    module accepts (e.g. ``max_active_dims``, ``task``).
    """

    config_keys: ClassVar[list[str]] = []
    config_file_name: ClassVar[str] = "config.json"
    st_type: ClassVar[str] = ""
    forward_kwargs: ClassVar[frozenset[str]] = frozenset()
    save_in_root: ClassVar[bool] = False

    def get_config_dict(self) -> dict[str, Any]:
        """The constructor arguments that recreate this module."""
        return {key: getattr(self, key) for key in self.config_keys}

    def save_config(self, path: str | Path) -> None:
        write_json(Path(path) / self.config_file_name, self.get_config_dict())

    def save_weights(self, path: str | Path) -> None:
        save_model(self, str(Path(path) / "model.safetensors"))

    def load_weights(self, path: str | Path) -> None:
        """Load ``model.safetensors`` strictly: a missing or extra tensor is a load error."""
        file = Path(path) / "model.safetensors"
        if not file.is_file():
            raise ModelLoadError(f"missing weights file {file}")
        try:
            missing, unexpected = load_model(self, str(file), strict=False)
        except (RuntimeError, OSError, ValueError) as err:
            raise ModelLoadError(f"cannot load {file}: {err}") from err
        if missing or unexpected:
            raise ModelLoadError(
                f"{file}: missing tensors {sorted(missing)}, unexpected tensors {sorted(unexpected)}"
            )

    @classmethod
    def load_config(cls, path: str | Path) -> dict[str, Any]:
        file = Path(path) / cls.config_file_name
        config = read_json(file) if file.is_file() else {}
        if not isinstance(config, dict):
            raise ModelLoadError(f"{file} must hold a JSON object")
        return config

    @classmethod
    def load(cls: type[_M], path: str | Path) -> _M:
        """Recreate the module saved in ``path``."""
        config = cls.load_config(path)
        try:
            return cls(**{k: v for k, v in config.items() if k in cls.config_keys})
        except (TypeError, ValueError) as err:
            raise ModelLoadError(f"bad config for {cls.__name__} in {path}: {err}") from err

    def save(self, path: str | Path) -> None:
        """Write config (and weights, if any) into the folder ``path``."""
        self.save_config(path)
        if any(True for _ in self.state_dict()):
            self.save_weights(path)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.get_config_dict()})"


class TokenizerInput(Module):
    """A module that tokenizes the texts itself (it owns ``self.tokenizer``)."""

    tokenizer: Any

    def preprocess(self, texts: list[str], task: str | None = None) -> dict[str, Any]:
        """Tokenize ``texts`` into the features ``forward`` takes."""
        raise NotImplementedError

    @property
    def max_seq_length(self) -> int:
        """Inputs are truncated to this many tokens."""
        return int(self.tokenizer.model_max_length)

    @max_seq_length.setter
    def max_seq_length(self, value: int) -> None:
        self.tokenizer.model_max_length = int(value)
