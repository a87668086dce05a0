"""Fixtures of the backend tests: SciFact encoded with the real splade-tiny (cached on disk by
model fingerprint and texts, so only the first run of a machine encodes), payloads derived from
the documents for filter tests, and our exact engine's answers as the oracle."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from sparsearch import SearchParams, SparseVectors
from sparsearch.eval import load_beir
from tests.conftest import real_model

MODEL = "rasyosef/splade-tiny"


@dataclass
class Encoded:
    """SciFact (all 5,183 documents, the 300 test queries) as splade-tiny vectors."""

    doc_ids: list[str]
    docs: SparseVectors
    payloads: list[dict]
    query_ids: list[str]
    queries: SparseVectors


def _payload(i: int, doc_id: str, title: str) -> dict:
    """Fields for filter tests, derived from the document: a keyword, an integer, a float, a
    boolean and a list."""
    words = title.split()
    return {
        "initial": (title[:1] or "?").lower(),
        "title_words": len(words),
        "id_mod": float(int(doc_id) % 97) / 7.0,
        "even": int(doc_id) % 2 == 0,
        "tags": sorted({w.lower().strip(".,:;()") for w in words[:3]} - {""}),
    }


@pytest.fixture(scope="session")
def scifact_encoded(shared_data: Path) -> Encoded:
    from sparsearch.hybrid import encode_corpus
    from sparsearch.models import SparseEncoder

    ds = load_beir(shared_data / "scifact", "test")
    texts = ds.doc_texts()
    doc_ids = list(texts)
    query_ids = list(ds.queries)
    model = SparseEncoder(real_model(MODEL))
    docs = encode_corpus(model, [texts[d] for d in doc_ids], batch_size=32)  # cached on disk
    queries = model.encode_query([ds.queries[q] for q in query_ids], batch_size=32)
    payloads = [_payload(i, d, ds.corpus[d]["title"]) for i, d in enumerate(doc_ids)]
    return Encoded(doc_ids, docs, payloads, query_ids, queries)


@pytest.fixture(scope="session")
def scifact_index(scifact_encoded: Encoded, tmp_path_factory: pytest.TempPathFactory):
    """Our exact engine over SciFact (str ids, with payloads): the oracle of every backend."""
    from sparsearch.index import SparseIndex

    index = SparseIndex(tmp_path_factory.mktemp("scifact-index"))
    index.add(scifact_encoded.doc_ids, scifact_encoded.docs, scifact_encoded.payloads)
    index.save()
    return index


def exact_top(index, queries: SparseVectors, k: int = 10, flt=None) -> list[list[str]]:
    """The exact engine's top-``k`` ids of each query (ties in insertion order)."""
    hits = index.search(queries, k, params=SearchParams(filter=flt))
    return [[doc_id for doc_id, _ in hits.row(i)] for i in range(len(hits))]


def same_top(got: list[list], want: list[list], scores_want: np.ndarray | None = None) -> float:
    """The share of queries whose top lists are equal."""
    return float(np.mean([g == w for g, w in zip(got, want, strict=True)]))
