"""`sparsearch upgrade`: rewrite an index saved by an older sparsearch in today's format."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``upgrade`` subcommand."""
    parser = subparsers.add_parser(
        "upgrade",
        help="rewrite an index in the current on-disk format",
        description="Open an index written in any readable on-disk format (older ones open "
        "as they are) and commit it again in the current format, crash-safely: until the "
        "commit, the old version stays the one that opens.",
    )
    parser.add_argument("index", type=Path, help="the index directory")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Open, rewrite every segment, commit."""
    from sparsearch.index import SparseIndex, storage

    before = storage.read_manifest(args.index, verify=True)["format_version"]
    index = SparseIndex.open(args.index, verify=True)
    index.upgrade()
    print(f"{args.index}: format {before} -> {storage.FORMAT_VERSION} ({len(index)} documents)")
    return 0
