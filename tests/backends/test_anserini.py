"""Anserini JsonVectorCollection export: SciFact's files parse and hold our quantised vectors
under reversible whitespace-free keys; the folder appears atomically; bad input is refused."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from sparsearch import SparseVectors
from sparsearch.backends import export
from sparsearch.backends.anserini import (
    AnseriniWriter,
    anserini_key,
    anserini_token,
    write_topics,
)
from sparsearch.backends.sources import Source
from sparsearch.errors import DuplicateIdError, InvalidInputError
from tests.backends.test_ciff import expected_impacts

VOCAB = ["new york", "u.s.", "", "100%", "tab\there", "\u3000"]
DENSE = np.array([[0.5, 1.234, 0.0, 0.004, 2.0, 0.3], [0.0, 0.0, 0.7, 0.0, 0.0, 0.0]], np.float32)


def _lines(folder: Path) -> list[dict]:
    return [
        json.loads(line)
        for part in sorted(folder.iterdir())
        for line in part.read_text(encoding="utf-8").splitlines()
    ]


def _source(vectors: SparseVectors, ids: list, fail: bool = False) -> Source:
    def batches(size: int):
        yield ids, vectors, [None] * len(ids)
        if fail:
            raise RuntimeError("source failed mid-export")

    return Source(vectors.dim, vectors.vocab, {}, len(ids), batches)


def test_keys_are_whitespace_free_and_reversible() -> None:
    tokens = [*VOCAB, "%20", "a%2Eb", "x y.z", "\n", "##ing"]
    keys = [anserini_key(token) for token in tokens]
    assert len(set(keys)) == len(keys)
    assert not any(char.isspace() for key in keys for char in key) and all(keys)
    assert [anserini_token(key) for key in keys] == tokens
    assert keys[:6] == ["new%20york", "u%2Es%2E", "%_", "100%25", "tab%09here", "%u3000"]
    with pytest.raises(InvalidInputError, match="not a key made by anserini_key"):
        anserini_token("%41")  # "A" is no whitespace: no key escapes it


@pytest.fixture(scope="module")
def scifact_folder(scifact_index, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("anserini") / "scifact"
    report = export(scifact_index, f"anserini:{folder}/?docs_per_file=2000", progress=False)
    assert report.documents == 5183
    return folder


def test_scifact_files_hold_our_quantised_vectors(scifact_folder: Path, scifact_encoded) -> None:
    assert sorted(p.name for p in scifact_folder.iterdir()) == [
        "part-00000.jsonl",
        "part-00001.jsonl",
        "part-00002.jsonl",
    ]
    lines = _lines(scifact_folder)
    assert [line["id"] for line in lines] == scifact_encoded.doc_ids  # each once, in order
    assert all(
        set(line) == {"id", "contents", "vector"} and line["contents"] == "" for line in lines
    )
    rows, keys, impacts = [], [], []
    for i, line in enumerate(lines):
        rows += [i] * len(line["vector"])
        keys += line["vector"].keys()
        impacts += line["vector"].values()
    assert {type(impact) for impact in impacts} == {int} and min(impacts) > 0
    column = {token: i for i, token in enumerate(scifact_encoded.docs.vocab)}
    key_column = {key: column[anserini_token(key)] for key in set(keys)}  # keys reverse to tokens
    assert not any(char.isspace() for key in key_column for char in key)
    assert all(0 < len(key) <= 255 for key in key_column)
    got = sp.csr_matrix(
        (impacts, (rows, [key_column[key] for key in keys])), shape=scifact_encoded.docs.shape
    )
    assert (got != expected_impacts(scifact_encoded.docs)).nnz == 0  # round(w * 100), 0s dropped


def test_failed_export_publishes_nothing(tmp_path: Path) -> None:
    vectors = SparseVectors.from_dense(DENSE, vocab=VOCAB)
    folder = tmp_path / "out"
    export(_source(vectors, ["a", "b"]), f"anserini:{folder}", progress=False)
    before = _lines(folder)
    with pytest.raises(RuntimeError, match="mid-export"):
        export(_source(vectors, ["c", "d"], fail=True), f"anserini:{folder}", overwrite=True)
    assert _lines(folder) == before  # the previous export is intact
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no temporary folder is left
    with pytest.raises(RuntimeError, match="mid-export"):
        export(_source(vectors, ["c", "d"], fail=True), f"anserini:{tmp_path}/new")
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_overwrite_replaces_the_folder_whole(tmp_path: Path) -> None:
    vectors = SparseVectors.from_dense(DENSE, vocab=VOCAB)
    folder = tmp_path / "out"
    export(_source(vectors, ["a", "b"]), f"anserini:{folder}?docs_per_file=1", progress=False)
    assert len(list(folder.iterdir())) == 2
    with pytest.raises(InvalidInputError, match="exists; pass overwrite=True"):
        export(_source(vectors, ["c", "d"]), f"anserini:{folder}", progress=False)
    export(_source(vectors[:1], ["c"]), f"anserini:{folder}?overwrite=true", progress=False)
    assert [line["id"] for line in _lines(folder)] == ["c"]
    assert _lines(folder)[0]["vector"] == {
        "new%20york": 50,
        "u%2Es%2E": 123,
        "tab%09here": 200,
        "%u3000": 30,
    }  # 0.004 rounds to 0 and is dropped
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_vectors_without_vocab_use_dimension_numbers(tmp_path: Path) -> None:
    vectors = SparseVectors.from_dense(DENSE)
    export(_source(vectors, [1, 2]), f"anserini:{tmp_path}/n", scale=10, progress=False)
    lines = _lines(tmp_path / "n")
    assert lines == [
        {"id": "1", "contents": "", "vector": {"0": 5, "1": 12, "4": 20, "5": 3}},
        {"id": "2", "contents": "", "vector": {"2": 7}},
    ]


def test_topics_for_impact_search(tmp_path: Path) -> None:
    queries = SparseVectors.from_dense(DENSE, vocab=VOCAB)
    write_topics(tmp_path / "topics.jsonl", ["q1", "q2"], queries, scale=10)
    lines = [json.loads(line) for line in (tmp_path / "topics.jsonl").read_text().splitlines()]
    assert lines == [
        {"qid": "q1", "vector": {"new%20york": 5, "u%2Es%2E": 12, "tab%09here": 20, "%u3000": 3}},
        {"qid": "q2", "vector": {"%_": 7}},
    ]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"scale": 0}, "scale must be a positive"),
        ({"scale": "x"}, "scale must be a positive"),
        ({"docs_per_file": 0}, "docs_per_file must be a positive integer"),
        ({"docs_per_file": "many"}, "docs_per_file must be a positive integer"),
    ],
)
def test_bad_options_are_refused(tmp_path: Path, options: dict, message: str) -> None:
    vectors = SparseVectors.from_dense(DENSE, vocab=VOCAB)
    with pytest.raises(InvalidInputError, match=message):
        export(_source(vectors, ["a", "b"]), f"anserini:{tmp_path}/o", **options)


def test_bad_targets_and_documents_are_refused(tmp_path: Path) -> None:
    writer = AnseriniWriter("/proc/sparsearch-test")  # /proc takes no new folders, even root's
    with pytest.raises(InvalidInputError, match="cannot write /proc/sparsearch-test"):
        writer.begin(6, VOCAB, {})
    (tmp_path / "file").write_text("x")
    with pytest.raises(InvalidInputError, match="is not a folder"):
        AnseriniWriter(tmp_path / "file" / "out")
    writer = AnseriniWriter(tmp_path / "out")
    with pytest.raises(InvalidInputError, match="longer than 255"):
        writer.begin(2, ["a", "b" * 256], {})
    writer.begin(6, VOCAB, {})
    vectors = SparseVectors.from_dense(DENSE, vocab=VOCAB)
    writer.write(["a", "b"], vectors, [None, None])
    with pytest.raises(DuplicateIdError, match="'b' written twice"):
        writer.write(["c", "b"], vectors, [None, None])
    with pytest.raises(InvalidInputError, match="negative weight"):
        writer.write(["n"], SparseVectors.from_dense(-DENSE[:1], vocab=VOCAB), [None])
    writer.close()
    assert [p.name for p in tmp_path.iterdir()] == ["file"]


def test_uri_parameters_are_typed_and_checked(tmp_path: Path) -> None:
    vectors = SparseVectors.from_dense(DENSE, vocab=VOCAB)
    with pytest.raises(InvalidInputError, match=r"unknown parameters \['shards'\]"):
        export(_source(vectors, ["a", "b"]), f"anserini:{tmp_path}/o?shards=2")
    with pytest.raises(InvalidInputError, match="docs_per_file is a whole number, got 'many'"):
        export(_source(vectors, ["a", "b"]), f"anserini:{tmp_path}/o?docs_per_file=many")
    export(_source(vectors, ["a", "b"]), f"anserini:{tmp_path}/o?docs_per_file=1", progress=False)
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == [
        "part-00000.jsonl",
        "part-00001.jsonl",
    ]
