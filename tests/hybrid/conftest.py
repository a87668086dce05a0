"""Fixtures of the hybrid tests: a small real slice of SciFact."""

from __future__ import annotations

import pytest

from sparsearch.eval import BeirDataset, load_beir


@pytest.fixture(scope="module")
def scifact_subset(shared_data) -> tuple[BeirDataset, dict[str, str], dict[str, str]]:
    """SciFact test: (the dataset, its first 10 queries, the first 60 documents + their judged
    documents as ``{docid: text}``)."""
    ds = load_beir(shared_data / "scifact", "test")
    queries = dict(list(ds.queries.items())[:10])
    wanted = {d for q in queries for d in ds.qrels[q]}
    texts = ds.doc_texts()
    corpus = {d: t for i, (d, t) in enumerate(texts.items()) if d in wanted or i < 60}
    return ds, queries, corpus
