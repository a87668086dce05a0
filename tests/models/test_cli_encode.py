"""`sparsearch encode`: BEIR JSONL in, .npz of CSR arrays + ids out."""

from __future__ import annotations

import json

import numpy as np

from sparsearch.cli import main
from sparsearch.sparse import load_npz
from tests.conftest import TINY_DOCS


def test_encode_corpus_and_queries(tmp_path, tiny_model_dir, tiny_splade, capsys):
    model = str(tiny_model_dir)
    rows = [{"_id": d, "title": title, "text": text} for d, (title, text) in TINY_DOCS.items()][:12]
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "docs.npz"
    assert main(["encode", model, str(corpus), str(out), "--batch-size", "5"]) == 0
    vectors, ids = load_npz(out)
    assert ids == [r["_id"] for r in rows] and vectors.vocab == tiny_splade.vocab
    texts = [(r["title"] + " " + r["text"]).strip() for r in rows]
    expected = tiny_splade.encode_document(texts)
    assert np.abs(vectors.to_dense() - expected.to_dense()).max() <= 1e-5
    assert "encoded 12 documents" in capsys.readouterr().out

    out_bf16 = tmp_path / "docs-bf16.npz"
    assert (
        main(
            [
                "encode",
                model,
                str(corpus),
                str(out_bf16),
                "--precision",
                "bfloat16",
                "--no-progress",
            ]
        )
        == 0
    )
    fast = load_npz(out_bf16)[0].to_dense()
    expected_fast = tiny_splade.encode_document(texts, precision="bfloat16").to_dense()
    assert np.abs(fast - expected_fast).max() <= 1e-5 and not np.array_equal(
        fast, expected.to_dense()
    )

    queries = tmp_path / "queries.jsonl"
    queries.write_text('{"_id": "q1", "text": "protein folding"}\n')
    out_q = tmp_path / "q.npz"
    assert (
        main(
            [
                "encode",
                model,
                str(queries),
                str(out_q),
                "--queries",
                "--max-active-dims",
                "3",
                "--no-progress",
            ]
        )
        == 0
    )
    q, q_ids = load_npz(out_q)
    assert q_ids == ["q1"] and q.nnz == 3


def test_bad_input_file_is_a_named_error(tmp_path, tiny_model_dir, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"_id": "1", "title": "x"}\n')
    model = str(tiny_model_dir)
    assert main(["encode", model, str(bad), str(tmp_path / "o.npz")]) == 2
    assert "bad.jsonl:1" in capsys.readouterr().err
    assert main(["encode", model, str(tmp_path / "missing.jsonl"), str(tmp_path / "o.npz")]) == 2
