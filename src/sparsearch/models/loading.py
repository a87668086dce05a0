"""The saved format: ``modules.json`` + one folder per module + ``config_sentence_transformers.json``
(the sentence-transformers layout), and the fallback for plain fill-mask checkpoints."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import torch

from sparsearch.errors import ConfigError, ModelLoadError
from sparsearch.models._base import Module, read_json, write_json
from sparsearch.models.autoencoder import SparseAutoEncoder
from sparsearch.models.pooling import Normalize, Pooling
from sparsearch.models.router import Router
from sparsearch.models.splade_pooling import SpladePooling
from sparsearch.models.static_embedding import SparseStaticEmbedding
from sparsearch.models.transformer import MLMTransformer, Transformer

# Class name (last part of the sentence-transformers type path) -> our module class.
_CLASSES: dict[str, type[Module]] = {
    "Transformer": Transformer,
    "MLMTransformer": MLMTransformer,
    "SpladePooling": SpladePooling,
    "SparseStaticEmbedding": SparseStaticEmbedding,
    "IDF": SparseStaticEmbedding,
    "Router": Router,
    "Asym": Router,
    "Pooling": Pooling,
    "Normalize": Normalize,
    "SparseAutoEncoder": SparseAutoEncoder,
}


def module_class(type_path: str) -> type[Module]:
    """Our class for a sentence-transformers module type such as
    ``sentence_transformers.sparse_encoder.modules.splade_pooling.SpladePooling``."""
    name = str(type_path).rsplit(".", 1)[-1]
    if name not in _CLASSES:
        raise ModelLoadError(
            f"unsupported module type {type_path!r}; supported: {sorted(_CLASSES)}"
        )
    return _CLASSES[name]


def resolve_model_dir(name_or_path: str | Path) -> Path:
    """A local folder for a path or a Hugging Face hub id (downloaded or from the offline cache)."""
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        return path
    if path.exists() or str(name_or_path).startswith((".", "/", "~")):
        raise ModelLoadError(f"model folder {name_or_path} does not exist")
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HFValidationError

    try:
        return Path(snapshot_download(str(name_or_path)))
    except (OSError, ValueError, HFValidationError) as err:
        raise ModelLoadError(
            f"cannot find model {name_or_path!r} locally or on the hub: {err}"
        ) from err


def load_modules(path: Path) -> tuple[list[torch.nn.Module], dict[str, Any]]:
    """Modules and the model-level config (``config_sentence_transformers.json``) of a folder."""
    if (path / "modules.json").is_file():
        entries = read_json(path / "modules.json")
        if not isinstance(entries, list) or not entries:
            raise ModelLoadError(f"{path / 'modules.json'} must be a non-empty list")
        modules: list[torch.nn.Module] = []
        for entry in sorted(entries, key=lambda e: e.get("idx", 0)):
            try:
                cls, sub = module_class(entry["type"]), entry.get("path", "")
            except (KeyError, TypeError, AttributeError) as err:
                raise ModelLoadError(f"malformed entry in modules.json: {entry!r}") from err
            if ".." in Path(sub).parts or Path(sub).is_absolute():
                raise ModelLoadError(f"module path {sub!r} leaves the model folder")
            if not (path / sub).is_dir():
                raise ModelLoadError(f"module folder {path / sub} is missing")
            modules.append(cls.load(path / sub))
        config_file = path / "config_sentence_transformers.json"
        config = read_json(config_file) if config_file.is_file() else {}
        return modules, config
    if not (path / "config.json").is_file():
        raise ModelLoadError(f"{path} holds neither modules.json nor a transformers config.json")
    architectures = read_json(path / "config.json").get("architectures") or []
    if not any(str(a).endswith("ForMaskedLM") for a in architectures):
        raise ModelLoadError(
            f"{path} is not a sentence-transformers folder nor a fill-mask model "
            f"(architectures {architectures}); build a CSR model from parts instead"
        )
    return [MLMTransformer(path), SpladePooling("max", "relu")], {}


def save_modules(modules: list[torch.nn.Module], path: Path, model_config: dict[str, Any]) -> None:
    """Write ``modules`` and the model config in the sentence-transformers layout."""
    path.mkdir(parents=True, exist_ok=True)
    entries = []
    for i, module in enumerate(modules):
        if not isinstance(module, Module):
            raise ConfigError(
                f"cannot save module {i}: {type(module).__name__} is not a sparsearch module"
            )
        sub = "" if i == 0 and module.save_in_root else f"{i}_{type(module).__name__}"
        (path / sub).mkdir(parents=True, exist_ok=True)
        module.save(path / sub)
        entries.append({"idx": i, "name": str(i), "path": sub, "type": module.st_type})
    write_json(path / "modules.json", entries)
    versions = {}
    for package in ("torch", "transformers", "sparsearch"):
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            continue
    write_json(
        path / "config_sentence_transformers.json",
        {
            "__version__": versions,
            "model_type": "SparseEncoder",
            "prompts": {"query": "", "document": ""},
            "default_prompt_name": None,
            **model_config,
        },
    )
