"""`sparsearch train`: config checks before compute, and a short run from YAML (tiny random model,
tiny BEIR folder); the example config is checked against the real data."""

from __future__ import annotations

import re

import pytest
import yaml

from sparsearch.cli import main
from tests.conftest import REPO, write_tiny_beir


@pytest.fixture(scope="module")
def tiny_beir(tmp_path_factory) -> str:
    return str(write_tiny_beir(tmp_path_factory.mktemp("beir"), split="train"))


def _write(tmp_path, config) -> str:
    path = tmp_path / "train.yaml"
    path.write_text(yaml.safe_dump(config))
    return str(path)


def _config(tmp_path, model, beir: str, **overrides):
    """A short training config; ``train`` overrides are merged into the dataset spec."""
    config = {
        "model": str(model),
        "max_seq_length": 24,
        "output_dir": str(tmp_path / "run"),
        "train": {"beir": beir, "split": "train", "limit": 8},
        "loss": {
            "name": "SpladeLoss",
            "loss": {"name": "SparseMultipleNegativesRankingLoss"},
            "document_regularizer_weight": 3e-3,
            "query_regularizer_weight": 5e-3,
        },
        "args": {
            "per_device_train_batch_size": 4,
            "max_steps": 2,
            "logging_steps": 1,
            "save_steps": 1,
            "use_cpu": True,
        },
    }
    config["train"].update(overrides.pop("train", {}))
    config.update(overrides)
    return config


@pytest.mark.real_model
def test_example_config_builds_and_passes_the_checks(tmp_path, capsys, monkeypatch):
    scifact = REPO.parent / "shared" / "data" / "scifact"
    if not scifact.is_dir():  # the example names ../shared itself, whatever SPARSEARCH_SHARED says
        pytest.fail(f"examples/train_scifact.yaml reads {scifact}, which is missing", pytrace=False)
    monkeypatch.chdir(REPO)  # the example's paths are relative to the repository root
    out = str(tmp_path / "example")
    assert main(["train", "examples/train_scifact.yaml", "--dry-run", "--output-dir", out]) == 0
    # 918 of the 919 pairs: one query shares terms with too few documents to give a BM25 negative
    # from ranks 10-50 (bm25s' zero-score filler is no negative)
    assert "config OK: {'train': 918}" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"epochs_typo": 3}, "unknown config keys"),
        ({"loss": {"name": "NoSuchLoss"}}, "unknown loss 'NoSuchLoss'"),
        ({"loss": {"name": "SparseMarginMSELoss"}}, "SparseMarginMSELoss takes 3\\+ text columns"),
        ({"train": {"columns": ["question"]}}, "columns \\['question'\\] not in"),
        (
            {"args": {"max_steps": 2, "use_cpu": True, "learning_rate_mapping": {"nope": 1e-3}}},
            "matches no parameter",
        ),
        (
            {"args": {"max_steps": 2, "use_cpu": True, "frozen_parameters": ["nope"]}},
            "frozen_parameters pattern 'nope' matches no parameter",
        ),
        ({"resume": True}, "holds no checkpoint"),
    ],
)
def test_bad_configs_fail_with_a_clear_message(
    tmp_path, capsys, tiny_model_dir, tiny_beir, overrides, message
):
    code = main(
        ["train", _write(tmp_path, _config(tmp_path, tiny_model_dir, tiny_beir, **overrides))]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert "sparsearch train: error:" in err
    assert re.search(message, err), err


def test_train_from_yaml_then_resume(tmp_path, capsys, tiny_model_dir, tiny_beir):
    config = _config(tmp_path, tiny_model_dir, tiny_beir)
    assert main(["train", _write(tmp_path, config)]) == 0
    run = tmp_path / "run"
    assert (run / "final" / "modules.json").is_file() and (run / "final" / "README.md").is_file()
    assert (run / "checkpoint-2").is_dir()
    config["args"]["max_steps"] = 3
    config["resume"] = True
    assert main(["train", _write(tmp_path, config)]) == 0
    assert "resuming from" in capsys.readouterr().out
    assert (run / "checkpoint-3").is_dir()
