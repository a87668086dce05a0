"""`sparsearch export`: an index folder on disk into a real engine and a file, from the CLI, with
the same answers as our engine afterwards."""

from __future__ import annotations

import json

import pytest

from sparsearch.backends import open_backend
from sparsearch.cli import main
from tests.backends.conftest import exact_top, same_top
from tests.cli.helpers import assert_one_line_error, run_cli

pytestmark = [pytest.mark.slow, pytest.mark.real_model]


def test_cli_export_to_qdrant_edge_answers_like_our_engine(scifact_index, scifact_encoded, capsys):
    uri = f"qdrant-edge:{scifact_index.path.parent / 'edge'}"
    assert main(["export", str(scifact_index.path), "--to", uri, "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert f"exported {len(scifact_encoded.doc_ids):,} documents to {uri}" in out

    backend = open_backend(uri)
    try:
        assert backend.count() == len(scifact_encoded.doc_ids)
        queries = scifact_encoded.queries[:50]
        hits = backend.search(queries, 10)
        got = [[doc_id for doc_id, _ in hits.row(i)] for i in range(len(hits))]
        assert same_top(got, exact_top(scifact_index, queries)) >= 0.98  # ties may reorder
    finally:
        backend.close()


def test_cli_export_to_a_file_refuses_to_overwrite_without_recreate(
    scifact_index, tmp_path, capsys
):
    target = tmp_path / "docs.ndjson"
    argv = ["export", scifact_index.path, "--to", f"bulk:{target}", "--no-progress"]
    assert run_cli(argv, capsys)[0] == 0
    written = target.read_bytes()
    assert written.count(b"\n") == 2 * len(scifact_index)  # action line + document line each

    code, err = run_cli(argv, capsys)
    assert_one_line_error(code, err, "export", str(target), "exists")
    assert target.read_bytes() == written  # nothing already stored is lost

    assert run_cli([*argv, "--recreate", "--batch-size", "700"], capsys)[0] == 0
    first_action = json.loads(target.read_text().splitlines()[0])
    assert first_action["index"]["_id"] == str(scifact_index.ids()[0])
