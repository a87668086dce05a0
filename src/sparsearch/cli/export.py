"""`sparsearch export SOURCE --to URI`: an index, collection or shard folder into an engine or file."""

from __future__ import annotations

import argparse
from pathlib import Path

from sparsearch.cli._checks import positive_int
from sparsearch.errors import IndexNotFoundError

FILE_SCHEMES = ("ciff", "anserini", "bulk")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``export`` subcommand."""
    parser = subparsers.add_parser(
        "export",
        help="send an index, a collection or encoded shards to an engine or a file format",
        description="Stream every document (id, sparse vector, payload) of SOURCE to the "
        "target URI: qdrant://HOST:PORT/NAME, qdrant:DIR/NAME (local mode), qdrant-edge:DIR, "
        "milvus://FILE.db/NAME (Milvus Lite) or milvus://HOST:PORT/NAME, "
        "opensearch://HOST:PORT/NAME, elasticsearch://HOST:PORT/NAME (+https for TLS, e.g. "
        "opensearch+https://...), ciff:FILE.ciff, anserini:DIR, bulk:FILE.ndjson. Engine "
        "options go in the URI's query string (qdrant://h:6333/docs?idf=true). Documents "
        "already in the target are replaced.",
    )
    parser.add_argument("source", type=Path, help="index folder, collection folder or shards")
    parser.add_argument("--to", required=True, dest="target", metavar="URI", help="target URI")
    parser.add_argument("--batch-size", type=positive_int, default=1000, help="(1000)")
    parser.add_argument(
        "--with-text", action="store_true", help="a collection's texts go in the payloads as text"
    )
    parser.add_argument(
        "--recreate",
        action="store_true",
        help="drop the target collection/index (or overwrite the file) first",
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Export and print what was written, where, and how fast."""
    from sparsearch.backends import export, parse_uri

    target = parse_uri(args.target)  # a bad URI fails before the source is opened
    if not args.source.exists():
        raise IndexNotFoundError(f"{args.source}: no such index, collection or shard folder")
    options = {}
    if args.recreate:  # file formats call it overwriting
        options["overwrite" if target.scheme in FILE_SCHEMES else "recreate"] = True
    report = export(
        args.source,
        target,
        batch_size=args.batch_size,
        progress=not args.no_progress,
        with_text=args.with_text,
        **options,
    )
    print(
        f"exported {report.documents:,} documents to {args.target} in {report.seconds:.1f} s "
        f"({report.docs_per_second:,.0f} docs/s)"
    )
    return 0
