"""`sparsearch search`: query texts (+ model) or query vectors (.npz) against an index."""

from __future__ import annotations

import argparse
import json
import sys
from contextlib import nullcontext
from pathlib import Path
from typing import TextIO

from sparsearch.cli._checks import (
    MAX_TOP_K,
    naming,
    open_output,
    output_file,
    positive_int,
    top_k,
)
from sparsearch.errors import InvalidInputError
from sparsearch.search import Hits, SearchParams


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``search`` subcommand."""
    parser = subparsers.add_parser(
        "search",
        help="top-k search of an index with query texts or query vectors",
        description="Search INDEX with query texts (encoded by --model), a BEIR queries.jsonl "
        "(--queries-file, with --model), or query vectors (--vectors FILE.npz). "
        "Prints a table, JSON, or a TREC run.",
    )
    parser.add_argument("index", type=Path, help="index directory")
    parser.add_argument("queries", nargs="*", help="query texts")
    parser.add_argument("--model", help="sparse encoder (hub id or folder) for query texts")
    parser.add_argument("--queries-file", type=Path, help="BEIR queries.jsonl (with --model)")
    parser.add_argument("--vectors", type=Path, help="query vectors .npz (from save_npz)")
    parser.add_argument(
        "-k",
        "--top-k",
        type=top_k,
        default=10,
        help=f"hits per query, 1..{MAX_TOP_K:,} (capped at the index's document count)",
    )
    parser.add_argument("--format", choices=["table", "json", "trec"], default="table")
    parser.add_argument("--output", type=Path, help="write here instead of stdout")
    parser.add_argument("--payloads", action="store_true", help="include payloads (json)")
    parser.add_argument("--threads", type=positive_int, default=None, help="search threads")
    parser.add_argument(
        "--recall",
        type=float,
        default=None,
        help="search approximately, at the cheapest setting whose calibrated recall@10 against "
        "exact search reaches this (e.g. 0.95); default: exact",
    )
    parser.add_argument("--tag", default="sparsearch", help="run tag of the TREC format")
    parser.set_defaults(func=run)


def _queries(args: argparse.Namespace):
    """(query ids, query vectors) from whichever source the arguments name."""
    from sparsearch.sparse import load_npz

    sources = sum([bool(args.queries), args.queries_file is not None, args.vectors is not None])
    if sources != 1:
        raise InvalidInputError("give exactly one of: query texts, --queries-file, --vectors")
    if args.vectors is not None:
        vectors, ids = load_npz(args.vectors)
        return (ids if ids is not None else [str(i) for i in range(vectors.n)]), vectors
    if not args.model:
        raise InvalidInputError("query texts need --model")
    if args.queries_file is not None:
        from sparsearch.eval.beir import read_jsonl_texts

        ids, texts = read_jsonl_texts(args.queries_file, "queries")
    else:
        ids, texts = [str(i + 1) for i in range(len(args.queries))], args.queries
    from sparsearch.models import SparseEncoder

    return ids, SparseEncoder(args.model).encode_query(texts, show_progress_bar=False)


def _write(
    out: TextIO, fmt: str, qids: list[str], texts: list[str] | None, hits: Hits, tag: str
) -> None:
    """Print the hits as a table, JSON lines, or a TREC run (the same lines as ``write_run``)."""
    from sparsearch.eval.trec import write_run
    from sparsearch.run import Run

    run = Run.from_hits(qids, hits)
    if fmt == "trec":
        write_run(out, run, tag)
        return
    for qi, (qid, rows) in enumerate(run):
        payloads = [None] * len(rows) if run.payloads is None else run.payloads[qi, : len(rows)]
        if fmt == "json":
            hit_list = [
                {
                    "id": doc,
                    "score": score,
                    **({} if run.payloads is None else {"payload": payload}),
                }
                for (doc, score), payload in zip(rows, payloads, strict=True)
            ]
            out.write(json.dumps({"query": qid, "hits": hit_list}) + "\n")
        else:
            out.write(f"query {qid}" + (f": {texts[qi]}" if texts else "") + "\n")
            for rank, ((doc, score), payload) in enumerate(zip(rows, payloads, strict=True), 1):
                extra = f"  {json.dumps(payload)}" if payload is not None else ""
                out.write(f"  {rank:>4}  {score:>10.4f}  {doc}{extra}\n")


def run(args: argparse.Namespace) -> int:
    """Open the index, read or encode the queries, search, write the hits."""
    from sparsearch.index import SparseIndex

    if not args.index.is_dir():
        raise InvalidInputError(f"no index directory at {args.index}")
    if not (args.index / "CURRENT").is_file():
        raise InvalidInputError(f"{args.index} is not an index (it has no CURRENT file)")
    if args.output is not None:
        output_file(args.output)
    index = SparseIndex.open(args.index)
    qids, vectors = _queries(args)
    source = args.vectors or args.queries_file
    k = min(args.top_k, max(1, index.stats()["documents"]))
    with naming(source) if source is not None else nullcontext():
        params = SearchParams(return_payloads=args.payloads, threads=args.threads)
        if args.recall is not None:
            params = SearchParams(
                return_payloads=args.payloads,
                threads=args.threads,
                mode="approx",
                recall=args.recall,
            )
        hits = index.search(vectors, k=k, params=params)
    texts = args.queries or None
    if args.output is not None:
        with open_output(args.output) as out:
            _write(out, args.format, qids, texts, hits, args.tag)
    else:
        _write(sys.stdout, args.format, qids, texts, hits, args.tag)
    return 0
