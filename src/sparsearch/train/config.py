"""Training from a config: the schema behind `sparsearch train CONFIG.yaml`, usable from Python.

The config (see examples/train_scifact.yaml):

    model: rasyosef/splade-tiny      # hub id or folder
    max_seq_length: 256
    output_dir: runs/scifact         # new, empty, or holding only this training's own outputs
    train:                           # one dataset, or {name: dataset, ...}
      beir: ../shared/data/scifact   # (query, positive) pairs of a BEIR split ...
      split: train
      hard_negatives: {retriever: bm25, num_negatives: 1, range_min: 10, range_max: 50}
      # files: pairs.jsonl           # ... or any file `datasets` loads (json, csv, parquet)
      # format: json, columns: [query, positive], limit: 1000
    loss:                            # one loss, or {dataset name: loss, ...}
      name: SpladeLoss
      loss: {name: SparseMultipleNegativesRankingLoss}
      document_regularizer_weight: 0.003
      query_regularizer_weight: 0.005
    eval: {beir: ../shared/data/scifact, split: test, k: [10, 100]}
    args: {num_train_epochs: 1, per_device_train_batch_size: 16, learning_rate: 5.0e-5}
    resume: false                    # true: continue from the last checkpoint in output_dir

``eval`` may also (or instead) list evaluators of :mod:`sparsearch.eval.evaluators`, each reading
a JSONL file; the result is a :class:`~sparsearch.eval.SequentialEvaluator` (the BEIR one first):

    eval:
      evaluators:
        - {evaluator: TripletEvaluator, data: dev-triplets.jsonl, similarity_fn_names: [dot]}
        - {evaluator: RerankingEvaluator, data: dev-rerank.jsonl, at_k: 10, name: rerank}
        - {evaluator: MSEEvaluator, data: distill.jsonl, teacher: naver/splade-v3}

``name`` is the prefix of the evaluator's metrics (default: the data file's stem; names must
differ); ``teacher`` (MSEEvaluator only) is a hub id or folder; other keys are the class's
arguments. One JSON object per line: ``{"sentence1", "sentence2", "score"}``
(EmbeddingSimilarityEvaluator), ``{"anchor", "positive", "negative"}`` (TripletEvaluator),
``{"query", "positive": [...], "negative": [...]}`` (RerankingEvaluator), ``{"source",
"target"}`` (MSEEvaluator; ``target`` defaults to ``source``).

``hard_negatives.retriever`` is ``bm25`` (the default) or a sparse encoder (hub id or folder) that
mines through the embedded engine; its other keys go to
:func:`sparsearch.train.mining.mine_hard_negatives`. ``loss`` defaults to SpladeLoss over
SparseMultipleNegativesRankingLoss (the regulariser weights above). ``args`` are
:class:`~sparsearch.train.SparseEncoderTrainingArguments`.

:func:`load_config` checks the whole shape (unknown and missing keys, value types, loss names,
dataset specs; the checks are in :mod:`sparsearch.train.config_schema`) and raises
:class:`~sparsearch.errors.ConfigError` naming the key; :func:`train_from_config` then checks
what needs the data and the model (columns, loss arguments, training arguments) before any
training step.

Example::

    config = load_config("examples/train_scifact.yaml", output_dir="runs/try",
                         args={"max_steps": 10})
    trainer = train_from_config(config, dry_run=True)  # builds and checks, trains nothing
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sparsearch.errors import ConfigError, InvalidInputError, SparsearchError
from sparsearch.train.config_schema import (
    checked_dataset,
    checked_eval,
    checked_loss,
    is_dataset_spec,
    load_config,
    loss_class,
)

__all__ = ["build_dataset", "build_evaluator", "build_loss", "load_config", "train_from_config"]

#: what a training run writes into its output_dir (anything else there is someone else's)
OWN_OUTPUTS = re.compile(r"checkpoint-\d+|final|runs")


# ---------------------------------------------------------------------------- the builders
def build_dataset(spec: Mapping[str, Any]):
    """A `datasets.Dataset` from a dataset spec (BEIR pairs, optionally with hard negatives, or files)."""
    spec = checked_dataset(spec, "dataset")
    if "files" in spec:
        from datasets import load_dataset
        from datasets.exceptions import DatasetsError

        files = spec["files"]
        first = files if isinstance(files, str) else files[0]
        fmt = spec.get("format") or Path(first).suffix.lstrip(".")
        fmt = {"jsonl": "json"}.get(fmt, fmt)
        try:
            dataset = load_dataset(fmt, data_files=files, split="train")
        except (FileNotFoundError, ValueError, DatasetsError) as err:
            reason = " ".join(str(err).split()) or type(err).__name__
            if err.__cause__ is not None:  # datasets wraps the parser's own error
                reason += f" ({' '.join(str(err.__cause__).split())})"
            raise ConfigError(f"cannot load {files}: {reason}") from err
        corpus: list[str] = []  # no corpus to mine: the checks refused hard_negatives here
    else:
        dataset, corpus = _beir_pairs(spec["beir"], spec.get("split", "train"))
    if spec.get("columns"):
        missing = [c for c in spec["columns"] if c not in dataset.column_names]
        if missing:
            raise ConfigError(f"columns {missing} not in the dataset's {dataset.column_names}")
        dataset = dataset.select_columns(spec["columns"])
    if spec.get("limit"):
        dataset = dataset.select(range(min(int(spec["limit"]), len(dataset))))
    if spec.get("hard_negatives") is not None:
        from sparsearch.train.mining import mine_hard_negatives

        options = dict(spec["hard_negatives"])
        retriever = options.pop("retriever", "bm25")
        if retriever != "bm25":
            from sparsearch.models import SparseEncoder

            retriever = SparseEncoder(retriever)
        try:
            dataset = mine_hard_negatives(dataset, corpus, retriever, **options)
        except (TypeError, ValueError) as err:
            if isinstance(err, SparsearchError):
                raise
            raise ConfigError(f"bad hard_negatives options: {err}") from err
    return dataset


def _beir_pairs(folder: str, split: str):
    from datasets import Dataset

    from sparsearch.eval.beir import load_beir

    data = load_beir(folder, split)
    docs = data.doc_texts()
    rows: dict[str, list[str]] = {"query": [], "positive": []}
    for qid, judged in data.qrels.items():
        for did, grade in judged.items():
            if grade > 0 and qid in data.queries and did in docs:
                rows["query"].append(data.queries[qid])
                rows["positive"].append(docs[did])
    return Dataset.from_dict(rows), list(docs.values())


def build_loss(model, spec: Mapping[str, Any]):
    """A loss object from {name: LossClass, ...its arguments}; `loss:` nests the inner loss."""
    spec = dict(checked_loss(spec, "loss"))
    name = spec.pop("name")
    cls = loss_class(name, "loss")
    if isinstance(spec.get("loss"), Mapping):
        spec["loss"] = build_loss(model, spec["loss"])
    try:
        return cls(model, **spec)
    except (TypeError, ValueError) as err:
        if isinstance(err, SparsearchError):
            raise
        raise ConfigError(f"bad arguments for {name}: {err}") from err


class _BeirEvaluator:
    """The IR evaluator over a BEIR split (sparsearch.eval.evaluate, exact search, no cache)."""

    def __init__(self, folder: str, split: str, k: int | list[int]) -> None:
        self.folder, self.split, self.k = folder, split, k
        self.primary_metric = f"ndcg@{min(k) if isinstance(k, list) else k}"

    def __call__(self, model) -> dict[str, float]:
        from sparsearch.eval import evaluate

        result = evaluate(
            model, self.folder, self.split, k=self.k, use_cache=False, show_progress_bar=False
        )
        return {
            k: v
            for k, v in result.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool)
        }


def _listed_evaluator(spec: Mapping[str, Any]):
    """One entry of ``eval.evaluators``: its class, reading its JSONL ``data`` file."""
    from sparsearch import eval as evaluation

    options = dict(spec)
    kind, data = options.pop("evaluator"), options.pop("data")
    if "teacher" in options:
        from sparsearch.models import SparseEncoder

        options["teacher"] = SparseEncoder(options["teacher"])
    try:
        return getattr(evaluation, kind).from_jsonl(data, **options)
    except (TypeError, InvalidInputError) as err:
        raise ConfigError(f"eval.evaluators: {kind} {spec['name']!r}: {err}") from err


def build_evaluator(spec: Mapping[str, Any] | None):
    """The evaluator of an ``eval`` section: the IR evaluator over a BEIR split, or, when the
    section lists ``evaluators``, a :class:`~sparsearch.eval.SequentialEvaluator` over (the BEIR
    one first, then) each listed one, in order."""
    if not spec:
        return None
    spec = checked_eval(spec)
    parts: list[Any] = []
    if "beir" in spec:
        parts.append(_BeirEvaluator(spec["beir"], spec["split"], spec["k"]))
    if "evaluators" not in spec:
        return parts[0]
    from sparsearch.eval import SequentialEvaluator

    return SequentialEvaluator(parts + [_listed_evaluator(entry) for entry in spec["evaluators"]])


# ---------------------------------------------------------------------------- the run
def _check_output_dir(output_dir: Path) -> None:
    """Refuse an output_dir that holds anything but this kind of run's own outputs."""
    if output_dir.exists() and not output_dir.is_dir():
        raise ConfigError(f"output_dir {output_dir} is a file, not a folder")
    if not output_dir.is_dir():
        return
    foreign = sorted(p.name for p in output_dir.iterdir() if not OWN_OUTPUTS.fullmatch(p.name))
    if foreign:
        shown = ", ".join(foreign[:5]) + (", ..." if len(foreign) > 5 else "")
        raise ConfigError(
            f"output_dir {output_dir} holds files that are not training outputs ({shown}): "
            "use a new or empty folder (or resume a run)"
        )


def _last_checkpoint(output_dir: Path) -> str:
    from transformers.trainer_utils import get_last_checkpoint

    resume = get_last_checkpoint(str(output_dir)) if output_dir.is_dir() else None
    if resume is None:
        raise ConfigError(f"resume requested but {output_dir} holds no checkpoint")
    return resume


def train_from_config(config: str | os.PathLike | Mapping[str, Any], dry_run: bool = False):
    """Build the datasets, model, loss, evaluator and trainer a config describes, then train.

    ``config`` is what :func:`load_config` returns (a path or a raw mapping is loaded first).
    Everything is checked before any training step; ``dry_run`` stops there. Otherwise trains
    (from the last checkpoint when ``resume``), evaluates if the config has ``eval``, and saves
    the final model to ``output_dir/final``. Returns the trainer (``trainer.model`` is the model).
    """
    config = load_config(config)
    from sparsearch.models import SparseEncoder
    from sparsearch.train import SparseEncoderTrainer, SparseEncoderTrainingArguments

    output_dir = Path(config["output_dir"])
    resume = _last_checkpoint(output_dir) if config["resume"] else None
    if resume is None:
        _check_output_dir(output_dir)
    train_spec = config["train"]
    if is_dataset_spec(train_spec):
        datasets: Any = build_dataset(train_spec)
    else:
        datasets = {name: build_dataset(spec) for name, spec in train_spec.items()}
    model = SparseEncoder(config["model"])
    if config["max_seq_length"]:
        model.max_seq_length = config["max_seq_length"]
    loss_spec = config["loss"]
    if "name" in loss_spec:
        loss: Any = build_loss(model, loss_spec)
    else:
        loss = {name: build_loss(model, spec) for name, spec in loss_spec.items()}
    try:
        training_args = SparseEncoderTrainingArguments(output_dir=str(output_dir), **config["args"])
    except (TypeError, ValueError) as err:
        if isinstance(err, SparsearchError):
            raise
        raise ConfigError(f"bad training args: {' '.join(str(err).split())}") from err
    trainer = SparseEncoderTrainer(
        model,
        training_args,
        datasets,
        loss,
        evaluator=build_evaluator(config["eval"]),
        model_card_data={"base_model": config["model"]},
    )
    if resume is not None:
        print(f"resuming from {resume}")
    if dry_run:
        return trainer
    trainer.train(resume_from_checkpoint=resume)
    final = output_dir / "final"
    if trainer.evaluator is not None:
        trainer.evaluate()
    trainer.save_model(str(final))
    print(f"saved {final}")
    return trainer
