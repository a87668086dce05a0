"""A bad training config never shows a traceback: `sparsearch train` answers it with one line
naming the key (or the file), exit code 2, and never writes into a folder holding other files.
Shared helpers: ``tests/cli/helpers.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.cli.helpers import GOOD, MODEL, assert_one_line_error, beir_folder, run_cli, write


# ------------------------------------------------------------------ train configs
def config(tmp_path: Path, **overrides) -> dict:
    """A config that passes load_config; its BEIR corpus repeats an id, so a run stops there."""
    beir = beir_folder(tmp_path / "beir", corpus=GOOD + GOOD)
    return {
        "model": MODEL,
        "output_dir": str(tmp_path / "run"),
        "train": {"beir": str(beir), "split": "test"},
        **overrides,
    }


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("model: [unclosed\n", "not valid YAML"),
        ("- a\n- b\n", "the config must be a mapping"),
        (b"model: caf\xe9\n", "cannot read config"),
        ({"args": [1, 2]}, "'args' must be a mapping"),
        ({"train": ["a", "b"]}, "'train' must be a dataset"),
        ({"train": {"files": "x.jsonl", "limit": "abc"}}, "'train.limit' must be a positive"),
        ({"train": {"bier": "x"}}, "'train.bier'"),
        (
            {"train": {"files": "x.jsonl", "hard_negatives": {"retriever": "bm25"}}},
            "'train.hard_negatives' needs a 'beir' dataset",
        ),
        (
            {"train": {"beir": "x", "hard_negatives": True}},
            "'train.hard_negatives' must be a mapping",
        ),
        ({"eval": [1]}, "'eval' takes"),
        ({"eval": {"beir": "x", "k": 0}}, "'eval.k' must be a positive integer"),
        ({"loss": "SpladeLoss"}, "'loss' must be a mapping"),
        (
            {"loss": {"name": "SpladeLoss", "loss": {"name": "Nope"}}},
            "'loss.loss.name': unknown loss 'Nope'",
        ),
        ({"loss": {"a": {"name": "SpladeLoss"}}}, "'loss' names datasets ['a']"),
        ({"max_seq_length": -1}, "'max_seq_length' must be a positive integer"),
        ({"resume": "yes"}, "'resume' must be true or false"),
        ({"model": None}, "missing 'model'"),
        ({}, "corpus.jsonl:2: duplicate _id '1'"),  # passes the checks, stops at the data
    ],
    ids=[
        "yaml-syntax",
        "yaml-list",
        "yaml-not-utf8",
        "args-list",
        "train-list",
        "limit-str",
        "dataset-typo",
        "negatives-need-beir",
        "negatives-bool",
        "eval-list",
        "eval-k",
        "loss-str",
        "nested-loss-name",
        "loss-per-unknown-dataset",
        "seq-length",
        "resume-str",
        "no-model",
        "bad-beir-data",
    ],
)
def test_bad_train_config_is_one_line(tmp_path, capsys, text, words):
    path = tmp_path / "c.yaml"
    if isinstance(text, dict):
        path.write_text(yaml.safe_dump(config(tmp_path, **text)))
    else:
        write(path, text)
    code, err = run_cli(["train", path, "--dry-run"], capsys)
    line = assert_one_line_error(code, err, "train", words)
    if isinstance(text, (str, bytes)):
        assert str(path) in line


def test_train_refuses_an_output_dir_holding_other_files_unless_resuming(tmp_path, capsys):
    run = tmp_path / "run"
    write(run / "notes.txt", "precious")
    path = write(tmp_path / "c.yaml", yaml.safe_dump(config(tmp_path)))
    code, err = run_cli(["train", path, "--dry-run"], capsys)
    assert_one_line_error(code, err, "train", f"output_dir {run}", "notes.txt")
    code, err = run_cli(["train", path, "--dry-run", "--output-dir", tmp_path], capsys)
    assert_one_line_error(code, err, "train", "not training outputs", "beir, c.yaml")

    # its own outputs are fine; resuming skips the check; both then stop at the bad dataset
    (run / "notes.txt").unlink()
    (run / "checkpoint-2").mkdir()
    (run / "final").mkdir()
    code, err = run_cli(["train", path, "--dry-run"], capsys)
    assert_one_line_error(code, err, "train", "duplicate _id")
    write(run / "notes.txt", "precious")
    code, err = run_cli(["train", path, "--dry-run", "--resume"], capsys)
    assert_one_line_error(code, err, "train", "duplicate _id")
    assert (run / "notes.txt").read_text() == "precious"


def test_a_dataset_file_datasets_cannot_parse_is_a_config_error(tmp_path):
    from sparsearch.errors import ConfigError
    from sparsearch.train.config import build_dataset

    bad = write(tmp_path / "pairs.jsonl", '{"query": "a", "positive": "b"}\n{oops\n')
    with pytest.raises(ConfigError, match=f"cannot load {bad}"):
        build_dataset({"files": str(bad)})
    with pytest.raises(ConfigError, match="cannot load"):
        build_dataset({"files": str(tmp_path / "missing.jsonl")})
