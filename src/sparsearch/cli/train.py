"""`sparsearch train CONFIG.yaml`: fine-tune a sparse encoder from a YAML config (or flags).

The config (see examples/train_scifact.yaml):

    model: rasyosef/splade-tiny      # hub id or folder
    max_seq_length: 256
    output_dir: runs/scifact
    train:                           # one dataset, or {name: dataset, ...}
      beir: ../shared/data/scifact   # (query, positive) pairs of a BEIR split ...
      split: train
      hard_negatives: {retriever: bm25, num_negatives: 1, range_min: 10, range_max: 50}
      # files: pairs.jsonl           # ... or any file `datasets` loads (json, csv, parquet)
    loss:                            # one loss, or {dataset name: loss, ...}
      name: SpladeLoss
      loss: {name: SparseMultipleNegativesRankingLoss}
      document_regularizer_weight: 0.003
      query_regularizer_weight: 0.005
    eval: {beir: ../shared/data/scifact, split: test}
    args: {num_train_epochs: 1, per_device_train_batch_size: 16, learning_rate: 5.0e-5}
    resume: false                    # true: continue from the last checkpoint in output_dir

Everything is checked (unknown keys, columns, losses, mappings) before any model compute.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from sparsearch.errors import ConfigError

TOP_KEYS = {"model", "max_seq_length", "output_dir", "train", "loss", "eval", "args", "resume"}
DATASET_KEYS = {"beir", "split", "hard_negatives", "files", "format", "columns", "limit"}


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``train`` subcommand."""
    parser = subparsers.add_parser(
        "train", help="fine-tune a sparse encoder (YAML config or flags)",
        description="Fine-tune a sparse encoder with SparseEncoderTrainer. Flags override the config.")
    parser.add_argument("config", nargs="?", type=Path, help="YAML config file")
    parser.add_argument("--model", help="hub id or folder of the model to fine-tune")
    parser.add_argument("--output-dir", help="where checkpoints and the final model go")
    parser.add_argument("--train-beir", help="BEIR folder whose (query, positive) pairs are the data")
    parser.add_argument("--epochs", type=float, help="num_train_epochs")
    parser.add_argument("--max-steps", type=int, help="stop after this many optimisation steps")
    parser.add_argument("--batch-size", type=int, help="per_device_train_batch_size")
    parser.add_argument("--learning-rate", type=float)
    parser.add_argument("--resume", action="store_true", help="resume from the last checkpoint")
    parser.add_argument("--dry-run", action="store_true",
                        help="build and check everything, then stop before training")
    parser.set_defaults(func=run)


def load_config(args: argparse.Namespace) -> dict[str, Any]:
    """The YAML config (if any) with the command-line flags applied on top."""
    import yaml

    config: dict[str, Any] = {}
    if args.config is not None:
        try:
            config = yaml.safe_load(args.config.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as err:
            raise ConfigError(f"cannot read config {args.config}: {err}") from err
        if not isinstance(config, dict):
            raise ConfigError(f"{args.config}: the config must be a mapping")
    unknown = set(config) - TOP_KEYS
    if unknown:
        raise ConfigError(f"unknown config keys {sorted(unknown)}; known: {sorted(TOP_KEYS)}")
    train_args = dict(config.get("args") or {})
    for flag, key in (("epochs", "num_train_epochs"), ("max_steps", "max_steps"),
                      ("batch_size", "per_device_train_batch_size"), ("learning_rate", "learning_rate")):
        if getattr(args, flag) is not None:
            train_args[key] = getattr(args, flag)
    config["args"] = train_args
    if args.model:
        config["model"] = args.model
    if args.output_dir:
        config["output_dir"] = args.output_dir
    if args.train_beir:
        config["train"] = {"beir": args.train_beir, "split": "train"}
    if args.resume:
        config["resume"] = True
    for key in ("model", "output_dir", "train"):
        if not config.get(key):
            raise ConfigError(f"missing {key!r} (in the config or as a flag)")
    config.setdefault("loss", {"name": "SpladeLoss", "loss": {"name": "SparseMultipleNegativesRankingLoss"},
                               "document_regularizer_weight": 3e-3, "query_regularizer_weight": 5e-3})
    return config


def _is_dataset_spec(spec: Any) -> bool:
    return isinstance(spec, dict) and bool(DATASET_KEYS & set(spec))


def build_dataset(spec: dict[str, Any]):
    """A `datasets.Dataset` from a dataset spec (BEIR pairs, optionally with hard negatives, or files)."""
    unknown = set(spec) - DATASET_KEYS
    if unknown:
        raise ConfigError(f"unknown dataset keys {sorted(unknown)}; known: {sorted(DATASET_KEYS)}")
    if ("beir" in spec) == ("files" in spec):
        raise ConfigError("a dataset needs exactly one of 'beir' or 'files'")
    if "files" in spec:
        from datasets import load_dataset

        files = spec["files"]
        fmt = spec.get("format") or Path(files if isinstance(files, str) else files[0]).suffix.lstrip(".")
        fmt = {"jsonl": "json"}.get(fmt, fmt)
        try:
            dataset = load_dataset(fmt, data_files=files, split="train")
        except (FileNotFoundError, ValueError) as err:
            raise ConfigError(f"cannot load {files}: {err}") from err
        corpus = None
    else:
        dataset, corpus = _beir_pairs(spec["beir"], spec.get("split", "train"))
    if spec.get("columns"):
        missing = [c for c in spec["columns"] if c not in dataset.column_names]
        if missing:
            raise ConfigError(f"columns {missing} not in the dataset's {dataset.column_names}")
        dataset = dataset.select_columns(spec["columns"])
    if spec.get("limit"):
        dataset = dataset.select(range(min(int(spec["limit"]), len(dataset))))
    if spec.get("hard_negatives"):
        if corpus is None:
            raise ConfigError("hard_negatives needs a 'beir' dataset (its corpus is mined)")
        from sparsearch.train.mining import mine_hard_negatives

        options = dict(spec["hard_negatives"])
        retriever = options.pop("retriever", "bm25")
        if retriever != "bm25":
            from sparsearch.models import SparseEncoder
            from sparsearch.train.mining import model_retriever

            retriever = model_retriever(SparseEncoder(retriever))
        try:
            dataset = mine_hard_negatives(dataset, corpus, retriever, **options)
        except TypeError as err:
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


def build_loss(model, spec: dict[str, Any]):
    """A loss object from {name: LossClass, ...its arguments}; `loss:` nests the inner loss."""
    from sparsearch.train import losses

    spec = dict(spec)
    name = spec.pop("name", None)
    cls = getattr(losses, str(name), None)
    if cls is None or not isinstance(cls, type) or not issubclass(cls, losses.SparseLoss):
        known = sorted(n for n in losses.__all__ if n not in ("SparseLoss", "FlopsLoss", "embed_columns"))
        raise ConfigError(f"unknown loss {name!r}; known: {known}")
    if isinstance(spec.get("loss"), dict):
        spec["loss"] = build_loss(model, spec["loss"])
    try:
        return cls(model, **spec)
    except TypeError as err:
        raise ConfigError(f"bad arguments for {name}: {err}") from err


def build_evaluator(spec: dict[str, Any] | None):
    """An IR evaluator over a BEIR split (sparsearch.eval.evaluate, exact search, no cache)."""
    if not spec:
        return None
    unknown = set(spec) - {"beir", "split", "k"}
    if unknown or "beir" not in spec:
        raise ConfigError("eval takes {beir: FOLDER, split: test, k: [10, 100]}")
    from sparsearch.eval import evaluate

    def evaluator(model) -> dict[str, float]:
        result = evaluate(model, spec["beir"], spec.get("split", "test"), k=spec.get("k", [10, 100]),
                          use_cache=False, show_progress_bar=False)
        return {k: v for k, v in result.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}

    return evaluator


def run(args: argparse.Namespace) -> int:
    """Build everything from the config, check it, then train and save the final model."""
    config = load_config(args)
    from transformers.trainer_utils import get_last_checkpoint

    from sparsearch.models import SparseEncoder
    from sparsearch.train import SparseEncoderTrainer, SparseEncoderTrainingArguments

    train_spec = config["train"]
    datasets = build_dataset(train_spec) if _is_dataset_spec(train_spec) else {
        name: build_dataset(spec) for name, spec in train_spec.items()}
    model = SparseEncoder(config["model"])
    if config.get("max_seq_length"):
        model.max_seq_length = int(config["max_seq_length"])
    loss_spec = config["loss"]
    if isinstance(datasets, dict) and "name" not in loss_spec:
        loss = {name: build_loss(model, spec) for name, spec in loss_spec.items()}
    else:
        loss = build_loss(model, loss_spec)
    try:
        training_args = SparseEncoderTrainingArguments(output_dir=str(config["output_dir"]), **config["args"])
    except TypeError as err:
        raise ConfigError(f"bad training args: {err}") from err
    trainer = SparseEncoderTrainer(
        model, training_args, datasets, loss, evaluator=build_evaluator(config.get("eval")),
        model_card_data={"base_model": str(config["model"])},
    )
    resume = None
    if config.get("resume"):
        resume = get_last_checkpoint(str(config["output_dir"])) if Path(config["output_dir"]).is_dir() else None
        if resume is None:
            raise ConfigError(f"resume requested but {config['output_dir']} holds no checkpoint")
        print(f"resuming from {resume}")
    if args.dry_run:
        print("config OK:", {n: len(d) for n, d in trainer.datasets.items()}, "rows")
        return 0
    trainer.train(resume_from_checkpoint=resume)
    final = Path(config["output_dir"]) / "final"
    if trainer.evaluator is not None:
        trainer.evaluate()
    trainer.save_model(str(final))
    print(f"saved {final}")
    return 0
