"""BEIR loading and TREC run/qrels files."""

from __future__ import annotations

import pytest

from sparsearch.errors import InvalidInputError
from sparsearch.eval import list_splits, load_beir, read_qrels, read_run, write_qrels, write_run


@pytest.mark.real_model
def test_load_beir_scifact_test_split(shared_data):
    ds = load_beir(shared_data / "scifact", "test")
    assert (len(ds.corpus), len(ds.queries)) == (5183, 300)
    assert sum(len(docs) for docs in ds.qrels.values()) == 339
    assert set(ds.queries) == set(ds.qrels)
    texts = ds.doc_texts()
    first = next(iter(ds.corpus))
    doc = ds.corpus[first]
    assert texts[first] == (doc["title"] + " " + doc["text"]).strip()
    assert list_splits(shared_data / "scifact") == ["test", "train"]


@pytest.mark.real_model
def test_graded_qrels_keep_their_grades(shared_data):
    ds = load_beir(shared_data / "trec-dl19-pool", "test")
    grades = {g for docs in ds.qrels.values() for g in docs.values()}
    assert grades == {0, 1, 2, 3}


@pytest.mark.real_model
def test_unknown_split_and_missing_folder_are_named_errors(shared_data, tmp_path):
    with pytest.raises(InvalidInputError, match="no split 'dev'"):
        load_beir(shared_data / "scifact", "dev")
    with pytest.raises(InvalidInputError, match="no BEIR dataset folder"):
        load_beir(tmp_path / "nope")
    (tmp_path / "qrels").mkdir()
    (tmp_path / "qrels" / "test.tsv").write_text("qid\tdocid\n")
    (tmp_path / "corpus.jsonl").write_text("")
    (tmp_path / "queries.jsonl").write_text("")
    with pytest.raises(InvalidInputError, match="header"):
        load_beir(tmp_path)


def test_run_round_trips_through_a_trec_file_in_trec_eval_order(tmp_path):
    run = {"q1": {"b": 1.0, "a": 1.0, "c": 3.5}, "q2": {"x": 0.1234567890123}}
    path = tmp_path / "run.trec"
    write_run(path, run, tag="splade")
    lines = path.read_text().splitlines()
    assert lines[0] == "q1 Q0 c 1 3.5 splade"
    assert [line.split()[2] for line in lines[:3]] == ["c", "b", "a"]  # ties: docid descending
    assert read_run(path).to_dict() == run


def test_qrels_round_trip_and_bad_files(tmp_path):
    qrels = {"1": {"d1": 2, "d2": 0}}
    write_qrels(tmp_path / "q.txt", qrels)
    assert read_qrels(tmp_path / "q.txt") == qrels
    (tmp_path / "bad.trec").write_text("q1 Q0 d1 1 1.0\n")
    with pytest.raises(InvalidInputError, match="expected 6 fields"):
        read_run(tmp_path / "bad.trec")
    (tmp_path / "dup.trec").write_text("q1 Q0 d1 1 1.0 t\nq1 Q0 d1 2 0.5 t\n")
    with pytest.raises(InvalidInputError, match="twice"):
        read_run(tmp_path / "dup.trec")
    with pytest.raises(InvalidInputError):
        write_run(tmp_path / "x", {}, tag="two words")


def test_search_trec_output_and_write_run_agree_on_ties(tmp_path, capsys):
    import io

    from sparsearch.cli import main
    from sparsearch.index import SparseIndex
    from sparsearch.run import Run
    from sparsearch.sparse import SparseVectors, save_npz

    docs = SparseVectors.from_dicts([{0: 1.0}, {0: 1.0}, {0: 1.0}, {0: 2.0}], dim=2)
    save_npz(tmp_path / "docs.npz", docs, ["a", "c", "b", "z"])
    queries = SparseVectors.from_dicts([{0: 1.0}], dim=2)
    save_npz(tmp_path / "q.npz", queries, ["q"])
    assert main(["index", str(tmp_path / "docs.npz"), str(tmp_path / "idx")]) == 0
    capsys.readouterr()
    args = ["search", str(tmp_path / "idx"), "--vectors", str(tmp_path / "q.npz"), "-k", "4"]
    assert main([*args, "--format", "trec"]) == 0
    printed = capsys.readouterr().out
    hits = SparseIndex.open(tmp_path / "idx").search(queries, k=4)
    assert hits.ids.tolist() == [["z", "a", "c", "b"]]  # the engine: score, then insertion order
    written = io.StringIO()
    write_run(written, Run.from_hits(["q"], hits))
    assert printed == written.getvalue()
    assert [line.split()[2] for line in printed.splitlines()] == ["z", "c", "b", "a"]  # trec_eval
