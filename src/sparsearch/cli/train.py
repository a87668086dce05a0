"""`sparsearch train CONFIG.yaml`: fine-tune a sparse encoder from a YAML config (or flags).

The config format and its checks live in :mod:`sparsearch.train.config` (``load_config``,
``train_from_config``); this command only turns flags into overrides of the file.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from sparsearch.cli._checks import positive_float, positive_int


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``train`` subcommand."""
    parser = subparsers.add_parser(
        "train",
        help="fine-tune a sparse encoder (YAML config or flags)",
        description="Fine-tune a sparse encoder with SparseEncoderTrainer. Flags override the "
        "config (format: sparsearch.train.config). OUTPUT_DIR must be new, empty, or hold only "
        "this training's checkpoints and final model (or --resume).",
    )
    parser.add_argument("config", nargs="?", type=Path, help="YAML config file")
    parser.add_argument("--model", help="hub id or folder of the model to fine-tune")
    parser.add_argument("--output-dir", help="where checkpoints and the final model go")
    parser.add_argument(
        "--train-beir", help="BEIR folder whose (query, positive) pairs are the data"
    )
    parser.add_argument("--epochs", type=positive_float, help="num_train_epochs")
    parser.add_argument(
        "--max-steps", type=positive_int, help="stop after this many optimisation steps"
    )
    parser.add_argument("--batch-size", type=positive_int, help="per_device_train_batch_size")
    parser.add_argument("--learning-rate", type=positive_float)
    parser.add_argument("--resume", action="store_true", help="resume from the last checkpoint")
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="build and check everything, then stop before training",
    )
    parser.set_defaults(func=run)


def overrides(args: argparse.Namespace) -> dict:
    """The config overrides the flags name (unset flags are None, which load_config ignores)."""
    train_args = {
        key: value
        for key, value in (
            ("num_train_epochs", args.epochs),
            ("max_steps", args.max_steps),
            ("per_device_train_batch_size", args.batch_size),
            ("learning_rate", args.learning_rate),
        )
        if value is not None
    }
    return {
        "model": args.model,
        "output_dir": args.output_dir,
        "train": {"beir": args.train_beir, "split": "train"} if args.train_beir else None,
        "args": train_args or None,
        "resume": True if args.resume else None,
    }


def run(args: argparse.Namespace) -> int:
    """Load and check the config, then train (or, with --dry-run, stop after the checks)."""
    from sparsearch.train.config import load_config, train_from_config

    config = load_config(args.config, **overrides(args))
    trainer = train_from_config(config, dry_run=args.dry_run)
    if args.dry_run:
        print("config OK:", {n: len(d) for n, d in trainer.datasets.items()}, "rows")
    return 0
