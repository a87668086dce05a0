"""`sparsearch search`: query texts (+ model) or query vectors (.npz) against an index."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TextIO

from sparsearch.errors import InvalidInputError


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``search`` subcommand."""
    parser = subparsers.add_parser(
        "search", help="top-k search of an index with query texts or query vectors",
        description="Search INDEX with query texts (encoded by --model), a BEIR queries.jsonl "
                    "(--queries-file, with --model), or query vectors (--vectors FILE.npz). "
                    "Prints a table, JSON, or a TREC run.")
    parser.add_argument("index", type=Path, help="index directory")
    parser.add_argument("queries", nargs="*", help="query texts")
    parser.add_argument("--model", help="sparse encoder (hub id or folder) for query texts")
    parser.add_argument("--queries-file", type=Path, help="BEIR queries.jsonl (with --model)")
    parser.add_argument("--vectors", type=Path, help="query vectors .npz (from save_npz)")
    parser.add_argument("-k", "--top-k", type=int, default=10)
    parser.add_argument("--format", choices=["table", "json", "trec"], default="table")
    parser.add_argument("--output", type=Path, help="write here instead of stdout")
    parser.add_argument("--payloads", action="store_true", help="include payloads (json)")
    parser.add_argument("--threads", type=int, default=None, help="search threads")
    parser.add_argument("--tag", default="sparsearch", help="run tag of the TREC format")
    parser.set_defaults(func=run)


def _queries(args: argparse.Namespace):
    """(query ids, query vectors) from whichever source the arguments name."""
    from sparsearch.sparse import load_npz

    sources = sum([bool(args.queries), args.queries_file is not None, args.vectors is not None])
    if sources != 1:
        raise InvalidInputError("give exactly one of: query texts, --queries-file, --vectors")
    if args.vectors is not None:
        if not args.vectors.is_file():
            raise InvalidInputError(f"vectors file {args.vectors} does not exist")
        vectors, ids = load_npz(args.vectors)
        return (ids if ids is not None else [str(i) for i in range(vectors.n)]), vectors
    if not args.model:
        raise InvalidInputError("query texts need --model")
    if args.queries_file is not None:
        from sparsearch.cli.encode import read_beir

        ids, texts = read_beir(args.queries_file, queries=True)
    else:
        ids, texts = [str(i + 1) for i in range(len(args.queries))], args.queries
    from sparsearch.models import SparseEncoder

    return ids, SparseEncoder(args.model).encode_query(texts, show_progress_bar=False)


def _write(out: TextIO, fmt: str, qids: list[str], texts: list[str] | None, hits, tag: str
           ) -> None:
    for qi, qid in enumerate(qids):
        rows = [(doc, float(score), None if hits.payloads is None else hits.payloads[qi, r])
                for r, (doc, score) in enumerate(zip(hits.ids[qi], hits.scores[qi], strict=True))
                if doc is not None]
        if fmt == "json":
            hit_list = [{"id": doc, "score": score, **({} if hits.payloads is None
                                                      else {"payload": payload})}
                        for doc, score, payload in rows]
            out.write(json.dumps({"query": qid, "hits": hit_list}) + "\n")
        elif fmt == "trec":
            for rank, (doc, score, _) in enumerate(rows, 1):
                out.write(f"{qid} Q0 {doc} {rank} {score!r} {tag}\n")
        else:
            out.write(f"query {qid}" + (f": {texts[qi]}" if texts else "") + "\n")
            for rank, (doc, score, payload) in enumerate(rows, 1):
                extra = f"  {json.dumps(payload)}" if payload is not None else ""
                out.write(f"  {rank:>4}  {score:>10.4f}  {doc}{extra}\n")


def run(args: argparse.Namespace) -> int:
    from sparsearch.index import SparseIndex

    if args.top_k < 1:
        raise InvalidInputError(f"-k must be positive, got {args.top_k}")
    if not args.index.is_dir():
        raise InvalidInputError(f"no index directory at {args.index}")
    index = SparseIndex.open(args.index)
    qids, vectors = _queries(args)
    hits = index.search(vectors, k=args.top_k, n_threads=args.threads,
                        return_payloads=args.payloads)
    texts = args.queries or None
    if args.output is not None:
        with open(args.output, "w", encoding="utf-8") as out:
            _write(out, args.format, qids, texts, hits, args.tag)
    else:
        _write(sys.stdout, args.format, qids, texts, hits, args.tag)
    return 0
