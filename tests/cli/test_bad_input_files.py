"""Bad input files never show a traceback: a bad JSONL file, BEIR folder or vectors (.npz) file
is one line naming the file (and the line where there is one), exit code 2, from every command
that reads it (encode, index, search, eval). Shared helpers: ``tests/cli/helpers.py``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sparsearch.errors import DuplicateIdError, InvalidInputError
from sparsearch.eval.beir import load_beir, read_beir_jsonl, read_jsonl_texts
from sparsearch.sparse import SparseVectors, save_npz
from tests.cli.helpers import GOOD, MODEL, assert_one_line_error, beir_folder, run_cli, write

# content of a corpus.jsonl / queries.jsonl -> (line named in the message or None, words in it)
BAD_JSONL = {
    "not-json": (GOOD + "{oops\n", 2, "not JSON"),
    "not-an-object": ('["a", "b"]\n', 1, "expected a JSON object"),
    "no-id": ('{"text": "a"}\n', 1, "no '_id'"),
    "id-bool": ('{"_id": true, "text": "a"}\n', 1, "'_id' must be a string or an integer"),
    "id-float": ('{"_id": 1.5, "text": "a"}\n', 1, "'_id' must be a string or an integer"),
    "id-null": ('{"_id": null, "text": "a"}\n', 1, "'_id' must be a string or an integer"),
    "id-list": ('{"_id": ["a"], "text": "a"}\n', 1, "'_id' must be a string or an integer"),
    "id-empty": ('{"_id": "", "text": "a"}\n', 1, "empty '_id'"),
    "text-int": ('{"_id": "1", "text": 5}\n', 1, "'text' must be a string"),
    "text-object": ('{"_id": "1", "text": {"a": 1}}\n', 1, "'text' must be a string"),
    "title-list": ('{"_id": "1", "title": ["x"], "text": "a"}\n', 1, "'title' must be a string"),
    "no-text": ('{"_id": "1", "title": "x"}\n', 1, "no 'text'"),
    "not-utf8": (b'{"_id": "1", "text": "ok"}\n{"_id": "2", "text": "caf\xe9"}\n', 2, "not UTF-8"),
    "empty": ("", None, "no rows"),
    "blank-lines-only": ("\n  \n", None, "no rows"),
    "duplicate-id": (
        GOOD + '{"_id": "2", "text": "b"}\n{"_id": "1", "text": "c"}\n',
        3,
        "duplicate _id '1' (first at line 1)",
    ),
    "duplicate-int-and-str-id": (
        '{"_id": 1, "text": "a"}\n{"_id": "1", "text": "b"}\n',
        2,
        "duplicate _id '1' (first at line 1)",
    ),
}


# ------------------------------------------------------------------ BEIR JSONL through the CLI
@pytest.mark.parametrize(
    "command", ["encode", "encode --queries", "index --model", "search --queries-file"]
)
@pytest.mark.parametrize("case", sorted(BAD_JSONL))
def test_bad_jsonl_is_one_line_naming_file_and_line(tmp_path, capsys, index_dir, command, case):
    content, line, words = BAD_JSONL[case]
    bad = write(tmp_path / f"{case}.jsonl", content)
    argv = {
        "encode": ["encode", MODEL, bad, tmp_path / "o.npz"],
        "encode --queries": ["encode", MODEL, bad, tmp_path / "o.npz", "--queries"],
        "index --model": ["index", bad, tmp_path / "idx", "--model", MODEL],
        "search --queries-file": ["search", index_dir, "--queries-file", bad, "--model", MODEL],
    }[command]
    where = f"{bad}:{line}:" if line else f"{bad}:"
    words = words.replace("no rows", "queries file (no rows)") if "queries" in command else words
    assert_one_line_error(*run_cli(argv, capsys), command.split()[0], where, words)
    assert not (tmp_path / "o.npz").exists() and not (tmp_path / "idx").exists()


@pytest.mark.parametrize("command", ["encode", "index"])
def test_missing_or_folder_input_is_named(tmp_path, capsys, command):
    (tmp_path / "folder").mkdir()
    if command == "encode":
        cases = [
            (tmp_path / "missing.jsonl", tmp_path / "missing.jsonl", "no such file"),
            (tmp_path / "folder", tmp_path / "folder", "is a folder"),
        ]
    else:  # index reads a folder's corpus.jsonl
        cases = [
            (tmp_path / "missing.jsonl", tmp_path / "missing.jsonl", "no such file"),
            (tmp_path / "folder", tmp_path / "folder" / "corpus.jsonl", "no such file"),
        ]
    for path, named, words in cases:
        argv = (
            ["encode", MODEL, path, tmp_path / "o.npz"]
            if command == "encode"
            else ["index", path, tmp_path / "idx", "--model", MODEL]
        )
        assert_one_line_error(*run_cli(argv, capsys), command, f"{named}: {words}")


# ------------------------------------------------------------------ BEIR folders (load_beir)
@pytest.mark.parametrize(
    ("files", "where", "words"),
    [
        (
            {"corpus": GOOD + '{"_id": "1", "text": "again"}\n'},
            "corpus.jsonl:2:",
            "duplicate _id '1' (first at line 1)",
        ),
        (
            {"queries": '{"_id": "q1", "text": "a"}\n{"_id": "q1", "text": "b"}\n'},
            "queries.jsonl:2:",
            "duplicate _id 'q1' (first at line 1)",
        ),
        ({"corpus": ""}, "corpus.jsonl:", "empty corpus file"),
        ({"corpus": '{"_id": 2.0, "text": "a"}\n'}, "corpus.jsonl:1:", "'_id'"),
        ({"queries": '{"_id": "q1", "text": [1]}\n'}, "queries.jsonl:1:", "'text'"),
        ({"qrels": "query-id\tcorpus-id\tscore\nq1\t1\tx\n"}, "test.tsv:2:", "bad qrels row"),
        ({"qrels": b"query-id\tcorpus-id\tscore\nq1\t\xff\t1\n"}, "test.tsv:2:", "not UTF-8"),
        ({"qrels": "qid\tdocid\n"}, "test.tsv:", "header"),
    ],
    ids=[
        "dup-corpus",
        "dup-queries",
        "empty-corpus",
        "float-id",
        "list-text",
        "qrels-row",
        "qrels-utf8",
        "qrels-header",
    ],
)
def test_bad_beir_folder_is_named_by_load_beir_and_eval(tmp_path, capsys, files, where, words):
    root = beir_folder(tmp_path / "beir", **files)
    with pytest.raises(InvalidInputError) as caught:
        load_beir(root, "test")
    assert where in str(caught.value) and words in str(caught.value)
    code, err = run_cli(
        ["eval", "--model", "bm25", "--data", root, "--output", tmp_path / "e.json"], capsys
    )
    assert_one_line_error(code, err, "eval", where, words)


def test_duplicate_ids_are_a_duplicate_id_error_unless_first_is_kept(tmp_path):
    path = write(tmp_path / "corpus.jsonl", GOOD + '{"_id": "1", "text": "again"}\n')
    with pytest.raises(DuplicateIdError, match="corpus.jsonl:2: duplicate _id '1'"):
        read_beir_jsonl(path)
    assert read_beir_jsonl(path, duplicates="first") == {"1": {"title": "t", "text": "a b"}}
    root = beir_folder(tmp_path / "beir", corpus=path.read_text())
    assert list(load_beir(root, duplicates="first").corpus) == ["1"]


def test_null_title_and_text_read_as_empty_and_int_ids_as_strings(tmp_path):
    path = write(
        tmp_path / "corpus.jsonl",
        '\ufeff{"_id": 7, "title": null, "text": "x "}\n'  # a byte-order mark is fine
        '{"_id": "b", "text": null, "metadata": {"k": 1}}\n',
    )
    assert read_beir_jsonl(path) == {
        "7": {"title": "", "text": "x "},
        "b": {"title": "", "text": ""},
    }
    assert read_jsonl_texts(path) == (["7", "b"], ["x", ""])
    queries = write(tmp_path / "queries.jsonl", '{"_id": "q", "title": "ignored", "text": " t "}\n')
    assert read_jsonl_texts(queries, "queries") == (["q"], ["t"])


# ------------------------------------------------------------------ vectors (.npz) files
def damaged_npz(tmp_path: Path, case: str) -> Path:
    path = tmp_path / f"{case}.npz"
    good = tmp_path / "good.npz"
    save_npz(good, SparseVectors.from_dense(np.eye(40, 30)), [f"doc{i}" for i in range(40)])
    data = good.read_bytes()
    if case == "text":
        path.write_text("hello, not a zip\n")
    elif case == "empty":
        path.write_bytes(b"")
    elif case == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif case == "bit-flipped":
        flipped = bytearray(data)
        flipped[data.rfind(b"\x93NUMPY") + 300] ^= 0xFF  # inside the last array's data
        path.write_bytes(bytes(flipped))
    elif case == "wrong-arrays":
        np.savez(path, a=np.arange(3))
    elif case == "bad-csr":
        np.savez(
            path,
            indptr=np.array([0, 3, 1]),
            indices=np.array([0, 1, 2]),
            values=np.ones(3, np.float32),
            dim=np.array(5),
        )
    elif case == "object-array":
        np.savez(path, indptr=np.array([object()], dtype=object))
    elif case == "ids-mismatch":
        v = SparseVectors.from_dense(np.eye(2, 30))
        np.savez(
            path,
            indptr=v.indptr,
            indices=v.indices,
            values=v.values,
            dim=np.array(30),
            ids=np.array(["only-one"]),
        )
    elif case == "missing":
        pass
    return path


NPZ_CASES = [
    "text",
    "empty",
    "truncated",
    "bit-flipped",
    "wrong-arrays",
    "bad-csr",
    "object-array",
    "ids-mismatch",
    "missing",
]


@pytest.mark.parametrize("command", ["index", "search"])
@pytest.mark.parametrize("case", NPZ_CASES)
def test_damaged_npz_is_one_line_naming_the_file(tmp_path, capsys, index_dir, command, case):
    path = damaged_npz(tmp_path, case)
    argv = (
        ["index", path, tmp_path / "idx"]
        if command == "index"
        else ["search", index_dir, "--vectors", path]
    )
    words = "no such file" if case == "missing" else "not a vectors file"
    assert_one_line_error(*run_cli(argv, capsys), command, str(path), words)
    assert not (tmp_path / "idx").exists()


def test_npz_with_duplicate_ids_names_the_file(tmp_path, capsys):
    save_npz(tmp_path / "dup.npz", SparseVectors.from_dense(np.eye(2, 30)), ["x", "x"])
    code, err = run_cli(["index", tmp_path / "dup.npz", tmp_path / "idx"], capsys)
    assert_one_line_error(code, err, "index", str(tmp_path / "dup.npz"), "'x'")


# ------------------------------------------------------------------ the installed command
@pytest.mark.parametrize("case", ["not-json", "truncated-npz"])
def test_the_installed_command_prints_no_traceback(tmp_path, case):
    if case == "not-json":
        bad = write(tmp_path / "c.jsonl", BAD_JSONL["not-json"][0])
        argv = ["encode", MODEL, bad, tmp_path / "o.npz"]
    else:
        bad = damaged_npz(tmp_path, "truncated")
        argv = ["index", bad, tmp_path / "idx"]
    done = subprocess.run(
        [sys.executable, "-m", "sparsearch.cli", *map(str, argv)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.strip().splitlines() == [done.stderr.strip()]
    assert str(bad) in done.stderr
