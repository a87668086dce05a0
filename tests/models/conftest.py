"""Session fixtures for the encoder tests: the real models from the offline cache and real SciFact
text (for the parity tests, marked ``real_model``); the tiny random model lives in tests/conftest.py."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.conftest import real_model

SPLADE = "rasyosef/splade-tiny"
MINILM = "sentence-transformers/all-MiniLM-L6-v2"

torch.set_num_threads(2)


def read_jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


@pytest.fixture(scope="session")
def scifact_docs(shared_data) -> list[str]:
    """The first 500 SciFact documents, as (title + " " + text).strip()."""
    rows = read_jsonl(shared_data / "scifact" / "corpus.jsonl")[:500]
    return [(r["title"] + " " + r["text"]).strip() for r in rows]


@pytest.fixture(scope="session")
def scifact_queries(shared_data) -> list[str]:
    """The 300 SciFact test queries."""
    scifact = shared_data / "scifact"
    with open(scifact / "qrels" / "test.tsv", encoding="utf-8") as f:
        ids = {line.split("\t")[0] for line in list(f)[1:]}
    queries = [q["text"] for q in read_jsonl(scifact / "queries.jsonl") if q["_id"] in ids]
    assert len(queries) == 300
    return queries


@pytest.fixture(scope="session")
def splade():
    """The real rasyosef/splade-tiny (parity tests only; shared by the session: do not mutate)."""
    from sparsearch.models import SparseEncoder

    return SparseEncoder(real_model(SPLADE))


@pytest.fixture(scope="session")
def st_splade():
    from sentence_transformers import SparseEncoder

    return SparseEncoder(real_model(SPLADE)).eval()


def st_dense(model, texts: list[str], task: str = "document", **kwargs) -> np.ndarray:
    """sentence-transformers output as a dense numpy array."""
    encode = model.encode_query if task == "query" else model.encode_document
    return encode(texts, convert_to_sparse_tensor=False, batch_size=32, **kwargs).cpu().numpy()


def assert_same_vectors(ours, theirs: np.ndarray, atol: float = 1e-4) -> None:
    """Same non-zero set and every value within ``atol``."""
    dense = ours.to_dense()
    assert dense.shape == theirs.shape
    ours_nz, theirs_nz = dense != 0, theirs != 0
    assert np.array_equal(ours_nz, theirs_nz), f"{(ours_nz != theirs_nz).sum()} non-zeros differ"
    assert np.abs(dense - theirs).max() <= atol
