"""Bad flags and folders never show a traceback: absurd numbers are refused by argparse, and
index / search refuse folders and outputs they must not touch, in one line with exit code 2.
Shared helpers: ``tests/cli/helpers.py``.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from sparsearch.cli import main
from sparsearch.index import SparseIndex
from sparsearch.sparse import SparseVectors, save_npz
from tests.cli.helpers import GOOD, MODEL, assert_one_line_error, run_cli, write


# ------------------------------------------------------------------ flags
@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        (["search", "{idx}", "--vectors", "{npz}", "-k", "0"], "-k/--top-k"),
        (["search", "{idx}", "--vectors", "{npz}", "-k", "-3"], "-k/--top-k"),
        (["search", "{idx}", "--vectors", "{npz}", "-k", "1000001"], "-k/--top-k"),
        (["search", "{idx}", "--vectors", "{npz}", "-k", "ten"], "-k/--top-k"),
        (["search", "{idx}", "--vectors", "{npz}", "--threads", "0"], "--threads"),
        (["encode", MODEL, "{jsonl}", "{tmp}/o.npz", "--batch-size", "0"], "--batch-size"),
        (["encode", MODEL, "{jsonl}", "{tmp}/o.npz", "--threads", "0"], "--threads"),
        (
            ["encode", MODEL, "{jsonl}", "{tmp}/o.npz", "--max-active-dims", "-1"],
            "--max-active-dims",
        ),
        (["index", "{jsonl}", "{tmp}/idx", "--model", MODEL, "--chunk", "0"], "--chunk"),
        (["index", "{jsonl}", "{tmp}/idx", "--model", MODEL, "--batch-size", "0"], "--batch-size"),
        (["train", "{tmp}/c.yaml", "--batch-size", "0"], "--batch-size"),
        (["train", "{tmp}/c.yaml", "--epochs", "0"], "--epochs"),
        (["train", "{tmp}/c.yaml", "--learning-rate", "nan"], "--learning-rate"),
    ],
    ids=lambda v: " ".join(v[-2:]) if isinstance(v, list) else None,
)
def test_absurd_numbers_are_refused_by_argparse(tmp_path, capsys, index_dir, argv, flag):
    names = {
        "idx": index_dir,
        "npz": index_dir.parent / "docs.npz",
        "tmp": tmp_path,
        "jsonl": write(tmp_path / "c.jsonl", GOOD),
    }
    code, err = run_cli([a.format(**names) for a in argv], capsys)
    assert code == 2 and not any("Traceback" in line for line in err), err
    assert err[-1].startswith(f"sparsearch {argv[0]}: error: argument {flag}: "), err


def test_k_beyond_the_index_is_capped_at_its_size(capsys, index_dir):
    npz = index_dir.parent / "docs.npz"
    assert (
        main(["search", str(index_dir), "--vectors", str(npz), "-k", "1000000", "--format", "json"])
        == 0
    )
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(rows) == 20 and all(len(row["hits"]) <= 20 for row in rows)


def test_recall_searches_approximately_with_exact_scores(capsys, index_dir, monkeypatch):
    from sparsearch.index import approx
    from sparsearch.sparse import load_npz

    monkeypatch.setattr(approx, "MIN_DOCS", 1)  # the 20-document segment gets a part
    npz = index_dir.parent / "docs.npz"
    argv = ["search", str(index_dir), "--vectors", str(npz), "-k", "3", "--format", "json"]
    assert main([*argv, "--recall", "0.9"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    docs, ids = load_npz(npz)
    exact = (docs.to_scipy() @ docs.to_scipy().T).toarray()
    assert len(rows) == 20 and all(row["hits"] for row in rows)
    for q, row in enumerate(rows):
        for hit in row["hits"]:
            assert hit["score"] == pytest.approx(exact[q, ids.index(hit["id"])], rel=1e-5)
    code, err = run_cli([*argv, "--recall", "1.5"], capsys)
    assert_one_line_error(code, err, "search", "recall must be a number in (0, 1]")


# ------------------------------------------------------------------ index folders and outputs
def test_search_needs_an_index_folder(tmp_path, capsys, index_dir):
    npz = index_dir.parent / "docs.npz"
    (tmp_path / "empty").mkdir()
    (tmp_path / "file").write_text("x")
    for path, words in (
        (tmp_path / "nope", "no index directory"),
        (tmp_path / "empty", "is not an index"),
        (tmp_path / "file", "no index directory"),
    ):
        code, err = run_cli(["search", path, "--vectors", npz], capsys)
        assert_one_line_error(code, err, "search", str(path), words)


def test_search_output_that_cannot_be_written_is_named(tmp_path, capsys, index_dir):
    npz = index_dir.parent / "docs.npz"
    (tmp_path / "file").write_text("x")
    for out, words in (
        (tmp_path / "file" / "run.txt", "cannot create its folder"),
        (tmp_path, "is a folder"),
    ):
        code, err = run_cli(["search", index_dir, "--vectors", npz, "--output", out], capsys)
        assert_one_line_error(code, err, "search", str(out), words)


def test_index_refuses_a_folder_holding_other_files(tmp_path, capsys, monkeypatch):
    save_npz(tmp_path / "v.npz", SparseVectors.from_dense(np.eye(3, 30)), ["a", "b", "c"])
    work = tmp_path / "work"
    write(work / "notes.txt", "precious")
    monkeypatch.chdir(work)
    code, err = run_cli(["index", tmp_path / "v.npz", "."], capsys)
    assert_one_line_error(code, err, "index", "not empty and holds no index")
    code, err = run_cli(["index", tmp_path / "v.npz", ".", "--append"], capsys)
    assert_one_line_error(code, err, "index", "not empty and holds no index")
    assert sorted(p.name for p in work.iterdir()) == ["notes.txt"]
    assert (work / "notes.txt").read_text() == "precious"

    code, err = run_cli(["index", tmp_path / "v.npz", tmp_path / "v.npz"], capsys)
    assert_one_line_error(code, err, "index", str(tmp_path / "v.npz"), "not a folder")


def test_index_takes_a_new_or_empty_folder_or_appends_to_an_index(tmp_path, capsys):
    save_npz(tmp_path / "v.npz", SparseVectors.from_dense(np.eye(3, 30)), ["a", "b", "c"])
    save_npz(tmp_path / "w.npz", SparseVectors.from_dense(np.eye(3, 30)), ["x", "y", "z"])
    (tmp_path / "empty").mkdir()
    assert main(["index", str(tmp_path / "v.npz"), str(tmp_path / "empty")]) == 0
    assert main(["index", str(tmp_path / "v.npz"), str(tmp_path / "new" / "idx")]) == 0
    code, err = run_cli(["index", tmp_path / "w.npz", tmp_path / "new" / "idx"], capsys)
    assert_one_line_error(code, err, "index", "already holds an index (use --append)")
    assert main(["index", str(tmp_path / "w.npz"), str(tmp_path / "new" / "idx"), "--append"]) == 0
    assert len(SparseIndex.open(tmp_path / "new" / "idx")) == 6


# ------------------------------------------------------------------ a missing model (the real thing)
@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["index", "{tmp}/corpus.jsonl", "{tmp}/idx", "--model", "{tmp}/no-model"], "no-model"),
        (["search", "{tmp}/idx", "some text", "--model", "{tmp}/no-model"], "no-model"),
    ],
    ids=["index", "search"],
)
@pytest.mark.real_model
def test_a_missing_model_is_one_line(tmp_path, capsys, argv, words):
    write(tmp_path / "corpus.jsonl", GOOD)
    save_npz(tmp_path / "v.npz", SparseVectors.from_dense(np.eye(1, 30)), ["a"])
    assert main(["index", str(tmp_path / "v.npz"), str(tmp_path / "idx")]) == 0
    capsys.readouterr()
    if argv[0] == "index":
        argv = [*argv[:2], "{tmp}/idx2", *argv[3:]]
    code, err = run_cli([a.format(tmp=tmp_path) for a in argv], capsys)
    assert_one_line_error(code, err, argv[0], words)
