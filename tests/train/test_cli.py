"""`sparsearch train`: config checks before compute, and a short real run from YAML."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from sparsearch.cli import main

SCIFACT = str(Path(__file__).resolve().parents[2].parent / "shared" / "data" / "scifact")


def _write(tmp_path, config) -> str:
    path = tmp_path / "train.yaml"
    path.write_text(yaml.safe_dump(config))
    return str(path)


def _config(tmp_path, **overrides):
    config = {
        "model": "rasyosef/splade-tiny",
        "max_seq_length": 24,
        "output_dir": str(tmp_path / "run"),
        "train": {"beir": SCIFACT, "split": "train", "limit": 8},
        "loss": {"name": "SpladeLoss", "loss": {"name": "SparseMultipleNegativesRankingLoss"},
                 "document_regularizer_weight": 3e-3, "query_regularizer_weight": 5e-3},
        "args": {"per_device_train_batch_size": 4, "max_steps": 2, "logging_steps": 1,
                 "save_steps": 1, "use_cpu": True},
    }
    config.update(overrides)
    return config


def test_example_config_builds_and_passes_the_checks(tmp_path, capsys, monkeypatch):
    root = Path(__file__).resolve().parents[2]
    monkeypatch.chdir(root)  # the example's paths are relative to the repository root
    out = str(tmp_path / "example")
    assert main(["train", "examples/train_scifact.yaml", "--dry-run", "--output-dir", out]) == 0
    assert "config OK: {'train': 919}" in capsys.readouterr().out  # every pair got a BM25 negative


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"epochs_typo": 3}, "unknown config keys"),
        ({"loss": {"name": "NoSuchLoss"}}, "unknown loss 'NoSuchLoss'"),
        ({"loss": {"name": "SparseMarginMSELoss"}}, "SparseMarginMSELoss takes 3\\+ text columns"),
        ({"train": {"beir": SCIFACT, "split": "train", "limit": 8, "columns": ["question"]}},
         "columns \\['question'\\] not in"),
        ({"args": {"max_steps": 2, "use_cpu": True, "learning_rate_mapping": {"nope": 1e-3}}},
         "matches no parameter"),
        ({"resume": True}, "holds no checkpoint"),
    ],
)
def test_bad_configs_fail_with_a_clear_message(tmp_path, capsys, overrides, message):
    code = main(["train", _write(tmp_path, _config(tmp_path, **overrides))])
    assert code == 2
    err = capsys.readouterr().err
    assert "sparsearch train: error:" in err
    assert re.search(message, err), err


def test_train_from_yaml_then_resume(tmp_path, capsys):
    config = _config(tmp_path)
    assert main(["train", _write(tmp_path, config)]) == 0
    run = tmp_path / "run"
    assert (run / "final" / "modules.json").is_file() and (run / "final" / "README.md").is_file()
    assert (run / "checkpoint-2").is_dir()
    config["args"]["max_steps"] = 3
    config["resume"] = True
    assert main(["train", _write(tmp_path, config)]) == 0
    assert "resuming from" in capsys.readouterr().out
    assert (run / "checkpoint-3").is_dir()
