"""Write small BEIR folders for tests."""

from __future__ import annotations

import json
from pathlib import Path

from sparsearch.eval import load_beir


def write_beir(root: Path, corpus: dict, queries: dict, qrels: dict) -> Path:
    (root / "qrels").mkdir(parents=True)
    with (root / "corpus.jsonl").open("w") as fh:
        for docid, doc in corpus.items():
            fh.write(json.dumps({"_id": docid, "title": doc["title"], "text": doc["text"]}) + "\n")
    with (root / "queries.jsonl").open("w") as fh:
        for qid, text in queries.items():
            fh.write(json.dumps({"_id": qid, "text": text}) + "\n")
    lines = [f"{q}\t{d}\t{g}" for q, docs in qrels.items() for d, g in docs.items()]
    (root / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\n" + "\n".join(lines) + "\n"
    )
    return root


def mini_beir(source: Path, root: Path, n_queries: int, n_docs: int) -> Path:
    """A small copy of a real BEIR set: its first queries, their judged docs and the first docs."""
    ds = load_beir(source)
    queries = dict(list(ds.queries.items())[:n_queries])
    doc_ids = list(ds.corpus)[:n_docs] + [d for q in queries for d in ds.qrels[q]]
    return write_beir(
        root, {d: ds.corpus[d] for d in doc_ids}, queries, {q: ds.qrels[q] for q in queries}
    )
