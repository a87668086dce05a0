"""The ``eval`` section of a training config listing evaluators (JSONL inputs): what it builds, the
metrics it returns on the tiny random model, and the named errors for bad entries."""

from __future__ import annotations

import json
import re

import pytest

from sparsearch.errors import ConfigError
from sparsearch.eval import SequentialEvaluator
from sparsearch.train.config import build_evaluator, load_config
from tests.conftest import SENTENCES, TINY_DOCS, TINY_QUERIES, write_tiny_beir

DOCS = [text for _, text in TINY_DOCS.values()]


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return str(path)


@pytest.fixture()
def files(tmp_path):
    """A triplet, a similarity and an MSE file over the tiny vocabulary."""
    n = 4
    return {
        "triplets": write_jsonl(
            tmp_path / "dev-triplets.jsonl",
            [
                {"anchor": q, "positive": DOCS[i], "negative": DOCS[i + n]}
                for i, q in enumerate(TINY_QUERIES[:n])
            ],
        ),
        "sts": write_jsonl(
            tmp_path / "sts.jsonl",
            [
                {"sentence1": a, "sentence2": b, "score": s}
                for a, b, s in zip(SENTENCES[:2], SENTENCES[2:], [0.2, 0.9], strict=True)
            ],
        ),
        "mse": write_jsonl(tmp_path / "distill.jsonl", [{"source": s} for s in SENTENCES]),
    }


def config(tmp_path, eval_section):
    base = {"model": "m", "output_dir": str(tmp_path / "out"), "train": {"files": "x.jsonl"}}
    return load_config({**base, "eval": eval_section})


def test_two_evaluators_build_a_sequential_evaluator_with_prefixed_metrics(
    tmp_path, files, tiny_splade
):
    section = {
        "evaluators": [
            {"evaluator": "TripletEvaluator", "data": files["triplets"]},
            {
                "evaluator": "EmbeddingSimilarityEvaluator",
                "data": files["sts"],
                "name": "sts",
                "similarity_fn_names": ["cosine", "dot"],
            },
        ]
    }
    evaluator = build_evaluator(config(tmp_path, section)["eval"])
    assert isinstance(evaluator, SequentialEvaluator)
    metrics = evaluator(tiny_splade)
    prefixes = {key.split("_")[0] for key in metrics}
    assert prefixes == {"dev-triplets", "sts", "sequential"}  # the name defaults to the stem
    assert "dev-triplets_dot_accuracy" in metrics and "sts_spearman_max" in metrics
    assert metrics["sequential_score"] == metrics["sts_spearman_max"]
    assert all(isinstance(value, float) for value in metrics.values())


def test_beir_comes_first_unprefixed_and_mse_loads_its_teacher(
    tmp_path, files, tiny_splade, tiny_model_dir
):
    beir = write_tiny_beir(tmp_path / "beir")
    section = {
        "beir": str(beir),
        "k": 10,
        "evaluators": [
            {"evaluator": "MSEEvaluator", "data": files["mse"], "teacher": str(tiny_model_dir)}
        ],
    }
    metrics = build_evaluator(config(tmp_path, section)["eval"])(tiny_splade)
    assert metrics["distill_negative_mse"] == 0  # the teacher is the same tiny model
    assert 0 <= metrics["ndcg@10"] <= 1 and "query_active_dims" in metrics
    assert metrics["sequential_score"] == metrics["distill_negative_mse"]


def test_the_beir_form_alone_is_unchanged(tmp_path):
    checked = config(tmp_path, {"beir": "data/scifact"})["eval"]
    assert checked == {"beir": "data/scifact", "split": "test", "k": [10, 100]}
    assert not isinstance(build_evaluator(checked), SequentialEvaluator)


@pytest.mark.parametrize(
    ("section", "words"),
    [
        ({"evaluators": []}, "'eval.evaluators' must be a non-empty list"),
        ({"evaluators": [{"evaluator": "TripletEvaluator"}]}, "with 'evaluator' and 'data'"),
        (
            {"evaluators": [{"evaluator": "NanoBEIREvaluator", "data": "x.jsonl"}]},
            "'eval.evaluators[0].evaluator': unknown evaluator 'NanoBEIREvaluator'",
        ),
        (
            {"evaluators": [{"evaluator": "MSEEvaluator", "data": "x.jsonl"}]},
            "'eval.evaluators[0].teacher': MSEEvaluator needs a teacher",
        ),
        (
            {"evaluators": [{"evaluator": "TripletEvaluator", "data": "x.jsonl", "teacher": "m"}]},
            "only MSEEvaluator takes a teacher",
        ),
        (
            {
                "evaluators": [
                    {"evaluator": "TripletEvaluator", "data": "a/dev.jsonl"},
                    {"evaluator": "RerankingEvaluator", "data": "b/dev.jsonl"},
                ]
            },
            "names ['dev'] repeat",
        ),
        (
            {"evaluators": [{"evaluator": "TripletEvaluator", "data": "x.jsonl", "name": ""}]},
            "'eval.evaluators[0].name' must be a non-empty string",
        ),
        (
            {"split": "dev", "evaluators": [{"evaluator": "TripletEvaluator", "data": "x"}]},
            "'eval.split'",
        ),
        ({"beir": "x", "evaluator": []}, "'eval' takes"),
    ],
)
def test_bad_evaluator_entries_are_named(tmp_path, section, words):
    with pytest.raises(ConfigError, match=re.escape(words)):
        config(tmp_path, section)


@pytest.mark.parametrize(
    ("entry", "words"),
    [
        (
            {"evaluator": "TripletEvaluator", "margin": "big"},
            "TripletEvaluator 'dev-triplets': margin must be a number",
        ),
        ({"evaluator": "TripletEvaluator", "at_k": 3}, "unexpected keyword argument 'at_k'"),
        ({"evaluator": "RerankingEvaluator"}, "dev-triplets.jsonl:1: no 'query'"),
    ],
)
def test_entries_that_do_not_fit_their_class_or_data_fail_when_built(tmp_path, files, entry, words):
    checked = config(tmp_path, {"evaluators": [{**entry, "data": files["triplets"]}]})["eval"]
    with pytest.raises(ConfigError, match=re.escape(words)):
        build_evaluator(checked)
