"""Retrieval quality side by side: BM25 (bm25s), splade-tiny, all-MiniLM-L6-v2, RRF and linear hybrids.

Reproduce with:
    HF_HUB_OFFLINE=1 HF_HUB_CACHE=../shared/hf-cache .venv/bin/python benchmarks/eval_table.py

Every metric is computed by sparsearch.eval (equal to pytrec_eval per query; tests prove it).
Every retriever goes through the one seam: a builder indexes the corpus, `evaluate_retriever`
searches it. Single-model rows run cold: their corpus vectors go to a fresh cache directory, so
their wall time is the whole evaluation (load, encode corpus and queries, index, search, score).
Hybrid rows fuse the two retrievers built for the single-model rows: their time is query encoding
+ search + fusion + scoring.
A second table checks the reference nDCG@10 of both models on all five local sets.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

from provenance import provenance

from sparsearch.eval import BeirDataset, evaluate_retriever, load_beir
from sparsearch.eval.report import markdown_table
from sparsearch.hybrid import (
    RRF,
    BM25Retriever,
    DenseRetriever,
    LinearFusion,
    Pipeline,
    Retriever,
    SparseRetriever,
)
from sparsearch.hybrid.dense import load_dense_model
from sparsearch.models import SparseEncoder

SPLADE = "rasyosef/splade-tiny"
MINILM = "sentence-transformers/all-MiniLM-L6-v2"
# nDCG@10 measured with sentence-transformers + pytrec_eval, exact search (the numbers)
REFERENCE = {
    SPLADE: {
        "scifact": 0.6466,
        "cranfield": 0.3544,
        "cacm": 0.3818,
        "nfcorpus-partial": 0.3069,
        "trec-dl19-pool": 0.7010,
    },
    MINILM: {
        "scifact": 0.6541,
        "cranfield": 0.3764,
        "cacm": 0.4227,
        "nfcorpus-partial": 0.2992,
        "trec-dl19-pool": 0.6843,
    },
}
OUT = Path(__file__).parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data", type=Path, default=Path(__file__).resolve().parents[1].parent / "shared" / "data"
    )
    parser.add_argument("--sets", nargs="+", default=["scifact", "trec-dl19-pool"])
    parser.add_argument(
        "--no-reproduction", action="store_true", help="skip the five-set reference check"
    )
    parser.add_argument(
        "--cache-dir", type=Path, help="reuse this vectors cache (default: a fresh one: cold times)"
    )
    args = parser.parse_args()
    command = "HF_HUB_OFFLINE=1 HF_HUB_CACHE=../shared/hf-cache .venv/bin/python " + " ".join(
        ["benchmarks/eval_table.py", *sys.argv[1:]]
    )
    print(command, flush=True)

    cache = args.cache_dir or Path(tempfile.mkdtemp(prefix="sparsearch-eval-"))
    warm = "" if args.cache_dir is None else f" Corpus vectors may come from the cache {cache}."
    encoder = SparseEncoder(SPLADE)
    minilm = load_dense_model(MINILM)
    options = {"cache_dir": cache, "show_progress_bar": False}
    rows: list[dict] = []
    reproduction: list[dict] = []

    def timed(system: str, dataset: BeirDataset, build: Callable[[], Retriever]) -> Retriever:
        """Build a retriever and evaluate it; the row's seconds cover both."""
        start = time.perf_counter()
        retriever = build()
        row = evaluate_retriever(retriever, dataset, k=(10, 100))
        row.update(system=system, seconds=round(time.perf_counter() - start, 1))
        rows.append(row)
        print(json.dumps(row), flush=True)
        write(command, rows, reproduction, warm)  # partial results survive an interruption
        return retriever

    for name in args.sets:
        dataset = load_beir(args.data / name)
        corpus = dataset.doc_texts()
        timed("BM25 (bm25s)", dataset, partial(BM25Retriever, corpus))
        sparse_build = partial(SparseRetriever.from_corpus, encoder, corpus, **options)
        sparse = timed("splade-tiny", dataset, sparse_build)
        dense_build = partial(DenseRetriever.from_corpus, minilm, corpus, **options)
        dense = timed("all-MiniLM-L6-v2", dataset, dense_build)
        # the hybrids search the two retrievers built above: query encoding + search + fusion
        both = [sparse, dense]
        timed("RRF (k=60) splade + MiniLM", dataset, partial(Pipeline, both, RRF(k=60)))
        timed("linear (min-max, 0.5/0.5)", dataset, partial(Pipeline, both, LinearFusion()))

    if not args.no_reproduction:
        builders = {
            SPLADE: partial(SparseRetriever.from_corpus, encoder, **options),
            MINILM: partial(DenseRetriever.from_corpus, minilm, **options),
        }
        for model, build in builders.items():
            for name, expected in REFERENCE[model].items():
                got = evaluate_retriever(build, args.data / name, k=10)["ndcg@10"]
                diff = round(got - expected, 4)
                reproduction.append(
                    {
                        "model": model,
                        "dataset": name,
                        "reference": expected,
                        "ours": got,
                        "diff": diff,
                    }
                )
                print(json.dumps(reproduction[-1]), flush=True)
                write(command, rows, reproduction, warm)
    print((OUT / "eval.md").read_text())


def write(command: str, rows: list[dict], reproduction: list[dict], warm: str) -> None:
    """Write benchmarks/results/eval.md and eval.json."""
    columns = ["dataset", "system", "ndcg@10", "recall@100", "query_active_dims", "doc_active_dims"]
    record = provenance()
    text = [
        f"# Retrieval quality\n\n`{command}`\n",
        f"Commit {record['commit']}{' (with uncommitted changes)' if record['dirty'] else ''}; "
        f"{record['cpu_model']}, {record['usable_cpus']} CPUs, shared; seconds = wall "
        "time of the whole evaluation (single-model rows cold; hybrid rows reuse the cached "
        f"corpus vectors of the single-model rows).{warm}\n",
        markdown_table(rows, [*columns, "seconds"]),
    ]
    if reproduction:
        text += [
            "\n## Reproduction (nDCG@10 vs sentence-transformers + pytrec_eval)\n",
            markdown_table(reproduction, ["model", "dataset", "reference", "ours", "diff"]),
        ]
    OUT.mkdir(exist_ok=True)
    (OUT / "eval.md").write_text("\n".join(text) + "\n")
    payload = {
        "command": command,
        "rows": rows,
        "reproduction": reproduction,
        "provenance": record,
    }
    (OUT / "eval.json").write_text(json.dumps(payload, indent=2) + "\n")


if __name__ == "__main__":
    main()
