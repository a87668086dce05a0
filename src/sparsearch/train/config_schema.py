"""The checks behind :func:`load_config`: what a training config may say, key by key.

The format is described in :mod:`sparsearch.train.config`, which builds and runs what a checked
config describes. Every check raises :class:`~sparsearch.errors.ConfigError` naming the key.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sparsearch.errors import ConfigError

TOP_KEYS = {"model", "max_seq_length", "output_dir", "train", "loss", "eval", "args", "resume"}
REQUIRED_KEYS = ("model", "output_dir", "train")
DATASET_KEYS = {"beir", "split", "hard_negatives", "files", "format", "columns", "limit"}
EVAL_KEYS = {"beir", "split", "k", "evaluators"}
#: what ``eval.evaluators`` may list (classes of :mod:`sparsearch.eval.evaluators`)
EVALUATORS = (
    "EmbeddingSimilarityEvaluator",
    "MSEEvaluator",
    "RerankingEvaluator",
    "TripletEvaluator",
)
DEFAULT_LOSS = {
    "name": "SpladeLoss",
    "loss": {"name": "SparseMultipleNegativesRankingLoss"},
    "document_regularizer_weight": 3e-3,
    "query_regularizer_weight": 5e-3,
}


def load_config(
    source: str | os.PathLike | Mapping[str, Any] | None = None, /, **overrides: Any
) -> dict[str, Any]:
    """A checked training config from a YAML file or a mapping, with ``overrides`` on top.

    Each override replaces its top-level key, except ``args``, whose keys are merged into the
    config's ``args``; ``None`` overrides are ignored (so unset command-line flags pass through).
    The result has every top-level key (defaults filled in) and can be given to
    :func:`~sparsearch.train.config.train_from_config`. Raises :class:`ConfigError` naming the
    offending key.

    >>> load_config({"model": "m", "output_dir": "out", "train": {"files": "pairs.jsonl"}},
    ...             args={"max_steps": 5})["args"]
    {'max_steps': 5}
    """
    if source is None:
        config: dict[str, Any] = {}
    elif isinstance(source, Mapping):
        config = copy.deepcopy(dict(source))
    elif isinstance(source, (str, os.PathLike)):
        config = _read_yaml(Path(source))
    else:
        raise ConfigError(f"a config is a YAML file or a mapping, got {type(source).__name__}")
    unknown = sorted(str(k) for k in config if k not in TOP_KEYS)
    if unknown:
        raise ConfigError(f"unknown config keys {unknown}; known: {sorted(TOP_KEYS)}")
    for key, value in overrides.items():
        if key not in TOP_KEYS:
            raise ConfigError(f"unknown override {key!r}; known: {sorted(TOP_KEYS)}")
        if value is None:
            continue
        if key == "args":
            config["args"] = {**_mapping(config.get("args"), "args"), **_mapping(value, "args")}
        else:
            config[key] = value
    return _checked(config)


def _read_yaml(path: Path) -> dict[str, Any]:
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"cannot read config {path}: no such file") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"cannot read config {path}: {err}") from err
    try:
        config = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        problem = getattr(err, "problem", None) or " ".join(str(err).split())
        raise ConfigError(f"{path}: not valid YAML: {problem}{where}") from err
    if config is None:
        return {}
    if not isinstance(config, dict):
        raise ConfigError(f"{path}: the config must be a mapping, got {type(config).__name__}")
    return config


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise ConfigError(f"{where!r} must be a mapping of names to values, got {value!r}")
    return dict(value)


def _path(value: Any, where: str) -> str:
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{where!r} must be a path or hub id (a string), got {value!r}")
    return value


def _positive_int(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{where!r} must be a positive integer, got {value!r}")
    return value


def _checked(config: dict[str, Any]) -> dict[str, Any]:
    for key in REQUIRED_KEYS:
        if config.get(key) in (None, "", {}, []):
            raise ConfigError(f"missing {key!r} (in the config or as a flag)")
    out: dict[str, Any] = {
        "model": _path(config["model"], "model"),
        "output_dir": _path(config["output_dir"], "output_dir"),
        "max_seq_length": None,
        "train": None,
        "loss": None,
        "eval": None,
        "args": _mapping(config.get("args"), "args"),
        "resume": config.get("resume") or False,
    }
    if config.get("max_seq_length") is not None:
        out["max_seq_length"] = _positive_int(config["max_seq_length"], "max_seq_length")
    if not isinstance(out["resume"], bool):
        raise ConfigError(f"'resume' must be true or false, got {out['resume']!r}")
    if "output_dir" in out["args"]:
        raise ConfigError("'args.output_dir': give output_dir at the top level of the config")

    train = config["train"]
    if not isinstance(train, Mapping):
        raise ConfigError(
            f"'train' must be a dataset or a mapping of name to dataset, got {train!r}"
        )
    if is_dataset_spec(train):
        out["train"] = checked_dataset(train, "train")
        names = None
    else:
        out["train"] = {str(n): checked_dataset(spec, f"train.{n}") for n, spec in train.items()}
        names = set(out["train"])

    loss = DEFAULT_LOSS if config.get("loss") is None else config["loss"]
    if not isinstance(loss, Mapping):
        raise ConfigError(
            f"'loss' must be a mapping with a 'name' (or one per dataset), got {loss!r}"
        )
    if "name" in loss:
        out["loss"] = checked_loss(loss, "loss")
    else:
        out["loss"] = {str(n): checked_loss(spec, f"loss.{n}") for n, spec in loss.items()}
        if names is None or set(out["loss"]) != names:
            raise ConfigError(
                f"'loss' names datasets {sorted(out['loss'])} but 'train' has "
                f"{sorted(names) if names is not None else 'one unnamed dataset'}"
            )
    if config.get("eval") is not None:
        out["eval"] = checked_eval(config["eval"])
    return out


def is_dataset_spec(spec: Any) -> bool:
    return isinstance(spec, Mapping) and bool(DATASET_KEYS & set(spec))


def checked_dataset(spec: Any, where: str) -> dict[str, Any]:
    if not isinstance(spec, Mapping):
        raise ConfigError(f"{where!r}: a dataset is a mapping with 'beir' or 'files', got {spec!r}")
    unknown = sorted(str(k) for k in spec if k not in DATASET_KEYS)
    if unknown:
        raise ConfigError(
            f"{where!r}: unknown dataset keys {unknown}; known: {sorted(DATASET_KEYS)}"
        )
    if ("beir" in spec) == ("files" in spec):
        raise ConfigError(f"{where!r}: a dataset needs exactly one of 'beir' or 'files'")
    out = dict(spec)
    if "beir" in spec:
        out["beir"] = _path(spec["beir"], f"{where}.beir")
    else:
        files = spec["files"]
        if isinstance(files, (list, tuple)) and files:
            out["files"] = [_path(f, f"{where}.files") for f in files]
        else:
            out["files"] = _path(files, f"{where}.files")
    for key in ("split", "format"):
        if key in spec and not isinstance(spec[key], str):
            raise ConfigError(f"'{where}.{key}' must be a string, got {spec[key]!r}")
    if spec.get("columns") is not None:
        columns = spec["columns"]
        if (
            not isinstance(columns, list)
            or not columns
            or not all(isinstance(c, str) for c in columns)
        ):
            raise ConfigError(f"'{where}.columns' must be a list of column names, got {columns!r}")
    if spec.get("limit") is not None:
        _positive_int(spec["limit"], f"{where}.limit")
    if spec.get("hard_negatives") is not None:
        options = _mapping(spec["hard_negatives"], f"{where}.hard_negatives")
        if "beir" not in spec:
            raise ConfigError(
                f"'{where}.hard_negatives' needs a 'beir' dataset (its corpus is mined)"
            )
        if "retriever" in options:
            _path(options["retriever"], f"{where}.hard_negatives.retriever")
        out["hard_negatives"] = options
    return out


def loss_class(name: Any, where: str):
    from sparsearch.train import losses

    cls = getattr(losses, name, None) if isinstance(name, str) else None
    if cls is None or not isinstance(cls, type) or not issubclass(cls, losses.SparseLoss):
        known = sorted(
            n for n in losses.__all__ if n not in ("SparseLoss", "FlopsLoss", "embed_columns")
        )
        raise ConfigError(f"'{where}.name': unknown loss {name!r}; known: {known}")
    return cls


def checked_loss(spec: Any, where: str) -> dict[str, Any]:
    if not isinstance(spec, Mapping) or "name" not in spec:
        raise ConfigError(
            f"{where!r}: a loss is a mapping with a 'name' and its arguments, got {spec!r}"
        )
    loss_class(spec["name"], where)
    out = dict(spec)
    if isinstance(spec.get("loss"), Mapping):
        out["loss"] = checked_loss(spec["loss"], f"{where}.loss")
    return out


def checked_eval(spec: Any) -> dict[str, Any]:
    if (
        not isinstance(spec, Mapping)
        or not {"beir", "evaluators"} & set(spec)
        or set(spec) - EVAL_KEYS
    ):
        raise ConfigError(
            "'eval' takes {beir: FOLDER, split: test, k: [10, 100]} and/or "
            f"{{evaluators: [{{evaluator: NAME, data: FILE, ...}}, ...]}}, got {spec!r}"
        )
    out: dict[str, Any] = {}
    if "beir" in spec:
        out.update(_checked_beir_eval(spec))
    elif {"split", "k"} & set(spec):
        raise ConfigError("'eval.split' and 'eval.k' belong to 'eval.beir', which is missing")
    if "evaluators" in spec:
        out["evaluators"] = _checked_evaluators(spec["evaluators"])
    return out


def _checked_beir_eval(spec: Mapping[str, Any]) -> dict[str, Any]:
    out = {
        "beir": _path(spec["beir"], "eval.beir"),
        "split": spec.get("split", "test"),
        "k": spec.get("k", [10, 100]),
    }
    if not isinstance(out["split"], str):
        raise ConfigError(f"'eval.split' must be a string, got {out['split']!r}")
    cutoffs = out["k"] if isinstance(out["k"], list) else [out["k"]]
    if not cutoffs:
        raise ConfigError("'eval.k' must be a positive integer or a list of them, got []")
    for k in cutoffs:
        _positive_int(k, "eval.k")
    return out


def _checked_evaluators(entries: Any) -> list[dict[str, Any]]:
    """Each entry: ``evaluator`` (a class name), ``data`` (its JSONL file), ``name`` (the metric
    prefix; default the file's stem, unique), ``teacher`` (MSEEvaluator only) and the class's
    other arguments."""
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"'eval.evaluators' must be a non-empty list, got {entries!r}")
    out = []
    for i, entry in enumerate(entries):
        where = f"eval.evaluators[{i}]"
        if not isinstance(entry, Mapping) or not {"evaluator", "data"} <= set(entry):
            raise ConfigError(
                f"{where!r}: an evaluator is a mapping with 'evaluator' and 'data', got {entry!r}"
            )
        kind = entry["evaluator"]
        if kind not in EVALUATORS:
            raise ConfigError(
                f"'{where}.evaluator': unknown evaluator {kind!r}; known: {list(EVALUATORS)}"
            )
        checked = {**entry, "data": _path(entry["data"], f"{where}.data")}
        name = entry.get("name", Path(checked["data"]).stem)
        if not isinstance(name, str) or not name:
            raise ConfigError(f"'{where}.name' must be a non-empty string, got {name!r}")
        checked["name"] = name
        if kind == "MSEEvaluator" and "teacher" not in entry:
            raise ConfigError(f"'{where}.teacher': MSEEvaluator needs a teacher (hub id or folder)")
        if "teacher" in entry:
            if kind != "MSEEvaluator":
                raise ConfigError(f"'{where}.teacher': only MSEEvaluator takes a teacher")
            checked["teacher"] = _path(entry["teacher"], f"{where}.teacher")
        out.append(checked)
    names = [entry["name"] for entry in out]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ConfigError(
            f"'eval.evaluators': names {repeated} repeat (a name defaults to the data file's "
            "stem): give each evaluator its own 'name', the prefix of its metrics"
        )
    return out
