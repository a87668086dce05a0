"""`sparsearch index` and `sparsearch search` end to end: vectors files and a (tiny) model."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sparsearch.cli import main
from sparsearch.index import SparseIndex
from sparsearch.sparse import SparseVectors, save_npz
from tests.conftest import write_tiny_beir


def random_vectors(seed: int, n: int, dim: int = 50) -> SparseVectors:
    rng = np.random.default_rng(seed)
    return SparseVectors.from_dense(rng.random((n, dim)) * (rng.random((n, dim)) < 0.2))


def test_index_and_search_vectors_files(tmp_path, capsys):
    docs, queries = random_vectors(0, 300), random_vectors(1, 4)
    save_npz(tmp_path / "docs.npz", docs, [f"doc{i}" for i in range(300)])
    save_npz(tmp_path / "queries.npz", queries, ["q1", "q2", "q3", "q4"])
    assert main(["index", str(tmp_path / "docs.npz"), str(tmp_path / "idx")]) == 0
    assert "indexed 300 documents" in capsys.readouterr().out
    want = SparseIndex.open(tmp_path / "idx").search(queries, k=5)

    assert (
        main(
            [
                "search",
                str(tmp_path / "idx"),
                "--vectors",
                str(tmp_path / "queries.npz"),
                "-k",
                "5",
                "--format",
                "json",
            ]
        )
        == 0
    )
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [row["query"] for row in lines] == ["q1", "q2", "q3", "q4"]
    assert [[hit["id"] for hit in row["hits"]] for row in lines] == want.ids.tolist()

    run = tmp_path / "run.trec"
    assert (
        main(
            [
                "search",
                str(tmp_path / "idx"),
                "--vectors",
                str(tmp_path / "queries.npz"),
                "-k",
                "5",
                "--format",
                "trec",
                "--output",
                str(run),
            ]
        )
        == 0
    )
    rows = [line.split() for line in run.read_text().splitlines()]
    assert len(rows) == 20 and rows[0][:4] == ["q1", "Q0", want.ids[0, 0], "1"]
    assert float(rows[0][4]) == pytest.approx(float(want.scores[0, 0]))

    # a second index into the same directory needs --append; named errors exit with 2
    assert main(["index", str(tmp_path / "docs.npz"), str(tmp_path / "idx")]) == 2
    assert "already holds an index" in capsys.readouterr().err
    assert main(["search", str(tmp_path / "idx"), "some text"]) == 2  # no --model


def test_index_beir_corpus_with_a_model_and_search_text(tmp_path, capsys, tiny_model_dir):
    beir = write_tiny_beir(tmp_path / "beir")
    lines = (beir / "corpus.jsonl").read_text().splitlines()
    model = str(tiny_model_dir)
    assert (
        main(
            [
                "index",
                str(beir),
                str(tmp_path / "idx"),
                "--model",
                model,
                "--chunk",
                "5",
                "--no-progress",
            ]
        )
        == 0
    )
    capsys.readouterr()
    query = "cancer cells and gene expression"
    assert (
        main(
            [
                "search",
                str(tmp_path / "idx"),
                query,
                "--model",
                model,
                "-k",
                "3",
                "--format",
                "json",
            ]
        )
        == 0
    )
    got = json.loads(capsys.readouterr().out)

    from sparsearch.models import SparseEncoder

    encoder = SparseEncoder(model)
    texts = [(row["title"] + " " + row["text"]).strip() for row in map(json.loads, lines)]
    index = SparseIndex()
    index.add([json.loads(line)["_id"] for line in lines], encoder.encode_document(texts))
    want = index.search(encoder.encode_query([query]), k=3)
    assert [hit["id"] for hit in got["hits"]] == want.ids[0].tolist()
    np.testing.assert_allclose([hit["score"] for hit in got["hits"]], want.scores[0], rtol=1e-5)
    assert SparseIndex.open(tmp_path / "idx").vocab == encoder.encode_query(["x"]).vocab
