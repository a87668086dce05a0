"""Exports to external engines: throughput, and whether the engine answers what we answer.

Data: SciFact (5,183 documents, 300 test queries) and trec-dl19-pool (9,139 judged MS MARCO
passages, 43 queries) from ../shared/data, encoded with rasyosef/splade-tiny (float32; the
vectors are cached by model fingerprint and texts). Our exact engine (``SparseIndex``) holds them
and is the oracle.

For each engine that runs in this process — Milvus Lite 2.5.1 (the real Milvus engine, embedded;
``SPARSE_INVERTED_INDEX`` and ``SPARSE_WAND`` at exact settings), qdrant-edge (Qdrant's Rust
engine in-process) and qdrant-client's local mode (the client's own Python implementation) — the
index is exported with ``sparsearch.backends.export`` (batches of 1,000, timed from the first
read of our index to the engine's flush/refresh: ``documents / seconds``), then every query is
searched through the backend's ``search`` (top 10) and compared with our exact top 10:

* recall@10: the share of our top-10 ids the engine returned;
* recall@10 with ties: an engine id whose exact score equals our 10th score also counts (a tie at
  the boundary may be broken either way; both are correct).

OpenSearch and Elasticsearch cannot run here; for them the script reports the *predicted*
recall@10 of the bulk export: the scores the engine would compute from the exported file with
Lucene's FeatureField precision (9 significant bits), searched exactly. It is a computation, not
an engine's answer.

Reproduce (about 5 minutes on 2 cores after the first encode):

    .venv/bin/python benchmarks/backends.py

Writes benchmarks/results/backends.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from provenance import provenance  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
MODEL = "rasyosef/splade-tiny"
DATASETS = ("scifact", "trec-dl19-pool")
K = 10


def encoded(name: str) -> tuple[list[str], Any, Any]:
    """(doc ids, document vectors, query vectors) of a dataset's test split (documents cached)."""
    from sparsearch.eval import load_beir
    from sparsearch.hybrid import encode_corpus
    from sparsearch.models import SparseEncoder

    ds = load_beir(SHARED / "data" / name, "test")
    texts = ds.doc_texts()
    doc_ids = list(texts)
    model = SparseEncoder(MODEL)
    docs = encode_corpus(
        model, [texts[d] for d in doc_ids], batch_size=32, show_progress_bar=True
    )  # cached on disk by model fingerprint, settings and texts
    queries = model.encode_query(list(ds.queries.values()), batch_size=32)
    return doc_ids, docs, queries


def recalls(got: Any, want: Any, exact_scores: dict[str, float]) -> tuple[float, float]:
    """(recall@10, recall@10 crediting ids that tie with our 10th score), over queries."""
    plain, tied = [], []
    for i in range(len(want)):
        truth = [doc for doc, _ in want.row(i)]
        if not truth:
            continue
        boundary = want.row(i)[-1][1]
        returned = [doc for doc, _ in got.row(i)]
        hit = len(set(returned) & set(truth))
        credited = sum(
            doc in truth
            or abs(exact_scores[i].get(doc, -1.0) - boundary) <= 1e-5 * max(1, boundary)
            for doc in returned
        )
        plain.append(hit / len(truth))
        tied.append(min(credited, len(truth)) / len(truth))
    return float(np.mean(plain)), float(np.mean(tied))


def exact_scores_of(index: Any, queries: Any, got: Any) -> list[dict[Any, float]]:
    """Our exact score of every id an engine returned (to credit ties)."""
    out = []
    for i in range(len(got)):
        ids = [doc for doc, _ in got.row(i)]
        vectors = index.get(ids) if ids else None
        scores = vectors.dot(queries[i]).ravel() if vectors is not None else []
        out.append(dict(zip(ids, (float(s) for s in scores), strict=True)))
    return out


def engines(tmp: Path, name: str) -> dict[str, str]:
    """Engine label -> target URI (a fresh location per dataset)."""
    return {
        "milvus-lite (inverted)": f"milvus://{tmp}/{name}-inv.db/{name.replace('-', '_')}",
        "milvus-lite (wand)": f"milvus://{tmp}/{name}-wand.db/{name.replace('-', '_')}?index=wand",
        "qdrant-edge": f"qdrant-edge:{tmp}/{name}-edge",
        "qdrant-client local": f"qdrant:{tmp}/{name}-qlocal/{name}",
    }


def predicted_index(index: Any, doc_ids: list[str], docs: Any, tmp: Path, name: str) -> Any:
    """Our exact engine over the weights an OpenSearch/Elasticsearch export stores (Lucene
    FeatureField precision: 9 significant bits; tests/backends/test_bulk.py shows the bulk file
    holds exactly these), timed like the other exports through the ``bulk:`` file target."""
    from sparsearch.backends import export
    from sparsearch.backends.lucene import as_stored
    from sparsearch.index import SparseIndex

    report = export(index, f"bulk:{tmp}/{name}.ndjson", progress=False)
    predicted = SparseIndex()
    predicted.add(doc_ids, as_stored(docs))
    return report, predicted


def run_dataset(name: str, tmp: Path) -> dict[str, Any]:
    from sparsearch.backends import export, open_backend
    from sparsearch.index import SparseIndex

    doc_ids, docs, queries = encoded(name)
    index = SparseIndex(tmp / f"{name}-ours")
    index.add(doc_ids, docs)
    index.save()
    want = index.search(queries, K)
    rows: dict[str, Any] = {}
    for label, uri in engines(tmp, name).items():
        report = export(index, uri, progress=False, recreate=True)
        backend = open_backend(uri)
        start = time.perf_counter()
        got = backend.search(queries, K)
        search_s = time.perf_counter() - start
        count = backend.count()
        backend.close()
        plain, tied = recalls(got, want, exact_scores_of(index, queries, got))
        rows[label] = {
            "documents": report.documents,
            "count_after": count,
            "export_s": round(report.seconds, 2),
            "export_docs_per_s": round(report.docs_per_second),
            "search_ms_per_query": round(1000 * search_s / len(queries), 2),
            "recall_at_10": round(plain, 4),
            "recall_at_10_ties": round(tied, 4),
        }
        print(name, label, rows[label], flush=True)
    report, predicted = predicted_index(index, doc_ids, docs, tmp, name)
    got = predicted.search(queries, K)
    plain, tied = recalls(got, want, exact_scores_of(index, queries, got))
    rows["opensearch/elasticsearch (predicted, bulk file)"] = {
        "documents": report.documents,
        "export_docs_per_s": round(report.docs_per_second),
        "recall_at_10": round(plain, 4),
        "recall_at_10_ties": round(tied, 4),
    }
    return {"documents": len(doc_ids), "queries": queries.n, "engines": rows}


def markdown(results: dict[str, Any]) -> str:
    lines = [
        "# Exports to external engines",
        "",
        f"Commit `{results['provenance']['commit']}`, {results['provenance']['cpu_model']}; "
        f"`{results['provenance']['command']}`. Recall is against our exact engine's top 10.",
        "",
        "| data | engine | docs | export docs/s | search ms/query | recall@10 | recall@10 (ties) |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for name, data in results["datasets"].items():
        for label, row in data["engines"].items():
            lines.append(
                f"| {name} | {label} | {row['documents']:,} | {row['export_docs_per_s']:,} | "
                f"{row.get('search_ms_per_query', '–')} | {row['recall_at_10']:.4f} | "
                f"{row['recall_at_10_ties']:.4f} |"
            )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS))
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="sparsearch-backends-"))
    try:
        results: dict[str, Any] = {"provenance": provenance(), "k": K, "model": MODEL}
        results["datasets"] = {name: run_dataset(name, tmp) for name in args.datasets}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "backends.json").write_text(json.dumps(results, indent=2) + "\n")
    (args.out / "backends.md").write_text(markdown(results))
    print(markdown(results))


if __name__ == "__main__":
    main()
