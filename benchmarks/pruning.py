"""Index-time pruning and two-phase search: what each costs in quality, what each saves.

Data: SciFact (5,183 documents, 300 test queries) and trec-dl19-pool (9,139 judged MS MARCO
passages, 43 queries) from ../shared/data, encoded with rasyosef/splade-tiny (float32, the vector
cache of ``backends.py``: keyed by model fingerprint and texts); with ``--pkgdesc DIR``, also the
pkgdesc vectors that ``pkgdesc_vectors.py`` wrote to DIR (926,095 package descriptions, the 500
dev queries; skipped with a note while ``corpus.npz`` is not there yet).

For every document rule of ``sparsearch.pruning.prune`` at three settings, the pruned documents
go into a fresh in-memory ``SparseIndex`` and the unpruned queries are searched (top 10):
nDCG@10 (MRR@10 on pkgdesc) with ``sparsearch.eval.evaluate_run`` and its change against no
pruning, the postings kept, mean active dimensions per document, the index's bytes, the pruning
time, and single-thread search time (``SearchParams(threads=1)``, one query per call after a
warm-up pass: the mean ms/query). Two-phase search (``sparsearch.two_phase.TwoPhaseSearcher``
over the unpruned index, ``prune_ratio`` 0.2 and 0.4, expansion 5) gets the same quality and
time columns, and the mean number of query tokens of its first phase.

Reproduce (a few minutes on 2 cores for SciFact and DL19 once their vectors are cached; pkgdesc
builds 13 indexes of 926k documents and takes much longer):

    HF_HUB_OFFLINE=1 HF_HUB_CACHE=../shared/hf-cache .venv/bin/python benchmarks/pruning.py \\
        --pkgdesc ~/.cache/sparsearch-bench/pkgdesc-splade-tiny

``--limit N`` keeps the first N documents and queries of each set (a smoke test; its numbers mean
nothing). Writes benchmarks/results/pruning.{json,md} (with ``--limit``: benchmarks/out/).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from backends import MODEL, SHARED, encoded  # noqa: E402
from provenance import provenance  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DATASETS = ("scifact", "trec-dl19-pool")
PKGDESC_QRELS = SHARED / "data" / "pkgdesc" / "qrels" / "dev.tsv"
K = 10
RULES: dict[str, tuple[float, ...]] = {
    "top_k": (32, 64, 128),
    "max_ratio": (0.05, 0.1, 0.2),
    "alpha_mass": (0.8, 0.9, 0.95),
    "abs_value": (0.1, 0.25, 0.5),
}
TWO_PHASE_RATIOS = (0.2, 0.4)
EXPANSION = 5.0


@dataclass
class Data:
    """One evaluation set: documents, queries, judgments and the measure reported on it."""

    name: str
    doc_ids: list[str]
    docs: Any
    qids: list[str]
    queries: Any
    qrels: dict[str, dict[str, int]]
    measure: str  # "ndcg" or "mrr"
    source: dict[str, Any]

    def limited(self, limit: int | None) -> Data:
        if limit is None:
            return self
        return Data(
            self.name,
            self.doc_ids[:limit],
            self.docs[:limit],
            self.qids[:limit],
            self.queries[:limit],
            self.qrels,
            self.measure,
            {**self.source, "limit": limit},
        )


def beir_data(name: str) -> Data:
    """A BEIR test split, encoded (or read from the vector cache) as backends.py does."""
    from sparsearch.eval import load_beir

    doc_ids, docs, queries = encoded(name)
    dataset = load_beir(SHARED / "data" / name, "test")
    source = {"data": f"../shared/data/{name} (test)", "model": MODEL, "precision": "float32"}
    return Data(name, doc_ids, docs, list(dataset.queries), queries, dataset.qrels, "ndcg", source)


def pkgdesc_data(folder: Path, qrels: Path) -> Data | None:
    """The cached pkgdesc vectors and dev queries, or None while the corpus is not encoded."""
    from sparsearch.eval import load_qrels
    from sparsearch.sparse import load_npz

    if not (folder / "corpus.npz").is_file():
        return None
    docs, doc_ids = load_npz(folder / "corpus.npz")
    queries, qids = load_npz(folder / "queries-dev.npz")
    meta_path = folder / "meta.json"
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    source = {
        "data": f"{folder} (dev queries), qrels {qrels}",
        **{key: meta.get(key) for key in ("model", "precision", "documents")},
        "vectors_commit": meta.get("provenance", {}).get("commit"),
    }
    assert doc_ids is not None and qids is not None, f"{folder}: vectors saved without ids"
    return Data("pkgdesc", doc_ids, docs, qids, queries, load_qrels(qrels), "mrr", source)


def quality(data: Data, hits: Any) -> float:
    from sparsearch.eval import evaluate_run
    from sparsearch.run import Run

    metrics = evaluate_run(Run.from_hits(data.qids, hits), data.qrels, k=K, measures=[data.measure])
    return metrics.mean()[f"{data.measure}@{K}"]


def searched(data: Data, searcher: Any) -> tuple[float, float]:
    """(quality, single-thread mean ms per query, one query per call after a warm-up pass)."""
    from sparsearch.search import SearchParams

    params = SearchParams(threads=1)
    hits = searcher.search(data.queries, K, params=params)  # the warm-up, and the results
    single = [data.queries[i : i + 1] for i in range(data.queries.n)]
    start = time.perf_counter()
    for query in single:
        searcher.search(query, K, params=params)
    ms = 1000 * (time.perf_counter() - start) / max(len(single), 1)
    return quality(data, hits), ms


def indexed(data: Data, docs: Any) -> Any:
    from sparsearch.index import SparseIndex

    index = SparseIndex()
    index.add(data.doc_ids, docs)
    return index


def doc_row(
    data: Data, rule: str, setting: Any, docs: Any, index: Any, prune_s: float
) -> dict[str, Any]:
    score, ms = searched(data, index)
    return {
        "rule": rule,
        "setting": setting,
        "postings": docs.nnz,
        "postings_kept": round(docs.nnz / max(data.docs.nnz, 1), 4),
        "mean_active_dims": round(docs.sparsity()["active_dims"], 1),
        "index_mb": round(index.stats()["bytes"] / 2**20, 1),
        "prune_s": round(prune_s, 3),
        "ms_per_query": round(ms, 3),
        f"{data.measure}@{K}": round(score, 4),
    }


def run_dataset(data: Data) -> dict[str, Any]:
    from sparsearch.pruning import prune, split_query
    from sparsearch.two_phase import TwoPhaseSearcher

    key = f"{data.measure}@{K}"
    index = indexed(data, data.docs)
    rows = [doc_row(data, "none", None, data.docs, index, 0.0)]
    print(data.name, rows[0], flush=True)
    for rule, settings in RULES.items():
        for setting in settings:
            start = time.perf_counter()
            pruned = prune(data.docs, **{rule: setting})
            prune_s = time.perf_counter() - start
            rows.append(doc_row(data, rule, setting, pruned, indexed(data, pruned), prune_s))
            print(data.name, rows[-1], flush=True)
    base = rows[0][key]
    for row in rows:
        row["delta"] = round(row[key] - base, 4)
    two_phase = []
    for ratio in TWO_PHASE_RATIOS:
        searcher = TwoPhaseSearcher(index, prune_ratio=ratio, expansion=EXPANSION)
        score, ms = searched(data, searcher)
        high, _ = split_query(data.queries, ratio)
        two_phase.append(
            {
                "prune_ratio": ratio,
                "expansion": EXPANSION,
                "window": searcher.window(K),
                "phase1_query_tokens": round(high.nnz / max(high.n, 1), 1),
                "query_tokens": round(data.queries.nnz / max(data.queries.n, 1), 1),
                "ms_per_query": round(ms, 3),
                key: round(score, 4),
                "delta": round(score - base, 4),
            }
        )
        print(data.name, two_phase[-1], flush=True)
    return {
        "documents": data.docs.n,
        "queries": data.queries.n,
        "measure": key,
        "source": data.source,
        "document_pruning": rows,
        "two_phase": two_phase,
    }


def markdown(results: dict[str, Any]) -> str:
    prov = results["provenance"]
    lines = [
        "# Index-time pruning and two-phase search",
        "",
        f"Commit `{prov['commit']}`{' (dirty)' if prov['dirty'] else ''}, {prov['cpu_model']}; "
        f"`{prov['command']}`. Model {results['model']}; top {results['k']}; search "
        "single-threaded, one query per call. Delta: against no pruning.",
    ]
    for name, data in results["datasets"].items():
        key = data["measure"]
        lines += [
            "",
            f"## {name} ({data['documents']:,} documents, {data['queries']} queries)",
            "",
            f"| rule | setting | postings kept | active dims | index MB | prune s | ms/query "
            f"| {key} | delta |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for row in data["document_pruning"]:
            lines.append(
                f"| {row['rule']} | {row['setting'] if row['setting'] is not None else '–'} | "
                f"{row['postings_kept']:.1%} | {row['mean_active_dims']} | {row['index_mb']} | "
                f"{row['prune_s']} | {row['ms_per_query']} | {row[key]:.4f} | "
                f"{row['delta']:+.4f} |"
            )
        lines += [
            "",
            f"| two-phase prune_ratio | window | phase-1 tokens / all | ms/query | {key} | delta |",
            "|---:|---:|---:|---:|---:|---:|",
        ]
        for row in data["two_phase"]:
            lines.append(
                f"| {row['prune_ratio']} | {row['window']} | {row['phase1_query_tokens']} / "
                f"{row['query_tokens']} | {row['ms_per_query']} | {row[key]:.4f} | "
                f"{row['delta']:+.4f} |"
            )
    for note in results["notes"]:
        lines += ["", note]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="*", default=list(DATASETS))
    parser.add_argument("--pkgdesc", type=Path, help="folder of pkgdesc_vectors.py's vectors")
    parser.add_argument("--pkgdesc-qrels", type=Path, default=PKGDESC_QRELS)
    parser.add_argument("--limit", type=int, help="first N documents and queries (smoke test)")
    parser.add_argument("--out", type=Path, help="default benchmarks/results (--limit: out/)")
    args = parser.parse_args()
    out = args.out or REPO / "benchmarks" / ("out" if args.limit else "results")
    sets = [beir_data(name) for name in args.datasets]
    notes = []
    if args.pkgdesc is not None:
        pkgdesc = pkgdesc_data(args.pkgdesc.expanduser(), args.pkgdesc_qrels)
        if pkgdesc is None:
            notes.append(f"pkgdesc skipped: no corpus.npz in {args.pkgdesc} yet.")
        else:
            sets.append(pkgdesc)
    datasets = {data.name: run_dataset(data.limited(args.limit)) for data in sets}
    results = {
        "provenance": provenance(),  # after the runs: records the threads of numba and torch
        "model": MODEL,
        "k": K,
        "datasets": datasets,
        "notes": notes,
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "pruning.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / "pruning.md").write_text(markdown(results))
    print(markdown(results))


if __name__ == "__main__":
    main()
