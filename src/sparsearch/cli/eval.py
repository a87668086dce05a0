"""`sparsearch eval`: a sparse, dense or hybrid retriever over local BEIR folders → table + JSON."""

from __future__ import annotations

import argparse
import time
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from sparsearch.errors import InvalidInputError

if TYPE_CHECKING:
    from sparsearch.hybrid import Corpus, Retriever, RetrieverBuilder

METRIC_COLUMNS = ("ndcg@10", "mrr@10", "recall@100", "map@100")
SPARSITY_COLUMNS = ("query_active_dims", "doc_active_dims", "flops")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``eval`` subcommand."""
    parser = subparsers.add_parser(
        "eval",
        help="evaluate retrieval on local BEIR folders",
        description="Encode, index and search each BEIR folder, then print nDCG/MRR/Recall/MAP/P "
        "(equal to trec_eval), active dims and FLOPS, and write JSON. --model is a "
        "sparse encoder (or 'bm25' for the bm25s baseline); --dense adds a "
        "SentenceTransformer; both together are fused (--fusion).",
    )
    parser.add_argument("--model", help="sparse encoder (hub id or folder), or 'bm25'")
    parser.add_argument("--dense", help="SentenceTransformer model (needs sparsearch[dense])")
    parser.add_argument(
        "--data",
        type=Path,
        action="append",
        required=True,
        help="BEIR folder (repeat for several: a mean row is added)",
    )
    parser.add_argument("--split", default="test")
    parser.add_argument("--fusion", choices=["rrf", "linear"], default="rrf")
    parser.add_argument("--rrf-k", type=int, default=60, help="RRF constant")
    parser.add_argument(
        "--normalization",
        choices=["minmax", "zscore"],
        default="minmax",
        help="score normalisation of linear fusion",
    )
    parser.add_argument(
        "--weights",
        type=float,
        nargs=2,
        metavar=("SPARSE", "DENSE"),
        help="fusion weights (default: equal)",
    )
    parser.add_argument("--depth", type=int, default=100, help="candidates per retriever")
    parser.add_argument("-k", "--cutoffs", type=int, nargs="+", default=[10, 100])
    parser.add_argument(
        "--ignore-identical-ids",
        action="store_true",
        help="drop hits whose id equals the query id (ArguAna-style sets only)",
    )
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument(
        "--cache-dir", type=Path, help="vectors cache (default ~/.cache/sparsearch)"
    )
    parser.add_argument("--no-cache", action="store_true", help="always re-encode the corpus")
    parser.add_argument(
        "--output",
        type=Path,
        default=Path("eval_results.json"),
        help="JSON results (default eval_results.json)",
    )
    parser.set_defaults(func=run)


def build_retriever(args: argparse.Namespace) -> RetrieverBuilder:
    """What the arguments describe, as a builder: corpus ``{docid: text}`` → retriever."""
    from sparsearch.hybrid import (
        RRF,
        BM25Retriever,
        DenseRetriever,
        LinearFusion,
        Pipeline,
        SparseRetriever,
    )
    from sparsearch.hybrid.dense import load_dense_model
    from sparsearch.models import SparseEncoder

    if not args.model and not args.dense:
        raise InvalidInputError("give --model, --dense, or both")
    options = {
        "batch_size": args.batch_size,
        "cache_dir": args.cache_dir,
        "use_cache": not args.no_cache,
        "show_progress_bar": True,
    }
    builders: list[RetrieverBuilder] = []
    if args.model == "bm25":
        builders.append(BM25Retriever)
    elif args.model:
        builders.append(partial(SparseRetriever.from_corpus, SparseEncoder(args.model), **options))
    if args.dense:
        builders.append(
            partial(DenseRetriever.from_corpus, load_dense_model(args.dense), **options)
        )
    if len(builders) == 1:
        return builders[0]
    fusion = (
        RRF(k=args.rrf_k, weights=args.weights)
        if args.fusion == "rrf"
        else LinearFusion(weights=args.weights, normalization=args.normalization)
    )

    def hybrid(corpus: Corpus) -> Retriever:
        return Pipeline([build(corpus) for build in builders], fusion=fusion, depth=args.depth)

    return hybrid


def run(args: argparse.Namespace) -> int:
    """Evaluate, print the table, write the JSON."""
    from sparsearch.eval.evaluator import evaluate_retriever, write_json
    from sparsearch.eval.report import print_table

    retriever = build_retriever(args)
    rows = []
    for data_dir in args.data:
        start = time.perf_counter()
        row = evaluate_retriever(
            retriever, data_dir, args.split, args.cutoffs, args.ignore_identical_ids
        )
        row["seconds"] = round(time.perf_counter() - start, 1)
        rows.append(row)
    columns = ["dataset", *[c for c in (*METRIC_COLUMNS, *SPARSITY_COLUMNS) if c in rows[0]]]
    if "ndcg@10" not in rows[0]:  # other cutoffs: show every metric computed
        columns = ["dataset", *[c for c in rows[0] if "@" in c]]
    shown = list(rows)
    if len(rows) > 1:
        numeric = [c for c in columns[1:] if all(c in r for r in rows)]
        shown.append(
            {"dataset": "mean", **{c: sum(r[c] for r in rows) / len(rows) for c in numeric}}
        )
    name = " + ".join(filter(None, [args.model, args.dense]))
    fused = f" ({args.fusion})" if args.model and args.dense else ""
    print_table(shown, [*columns, "seconds"], title=f"{name}{fused}, split {args.split}")
    write_json(
        args.output,
        {
            "model": args.model,
            "dense": args.dense,
            "fusion": args.fusion if fused else None,
            "datasets": rows,
            "mean": shown[-1] if len(rows) > 1 else None,
        },
    )
    print(f"results written to {args.output}")
    return 0
