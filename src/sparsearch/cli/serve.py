"""`sparsearch serve ROOT`: the HTTP API over the collections in a folder."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``serve`` subcommand."""
    parser = subparsers.add_parser(
        "serve",
        help="serve the collections of a folder over HTTP",
        description="Serve every collection under ROOT (one sub-folder each) with FastAPI + "
        "uvicorn; OpenAPI at /docs. Binds to 127.0.0.1 unless --host says otherwise. With an "
        "API key (--api-key-file, or $SPARSEARCH_API_KEY) every request but /healthz must "
        "send it in the 'api-key' header.",
    )
    parser.add_argument("root", type=Path, help="folder of collections (created if missing)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    parser.add_argument("--port", type=int, default=6334, help="port (6334; 0 picks a free one)")
    parser.add_argument("--api-key-file", type=Path, help="file whose first line is the API key")
    parser.add_argument("--max-body-mb", type=float, default=32, help="request body limit (32)")
    parser.add_argument("--max-batch", type=int, default=1024, help="points per request (1024)")
    parser.add_argument("--max-k", type=int, default=1000, help="largest k of a search (1000)")
    parser.add_argument("--max-text-chars", type=int, default=100_000, help="(100000)")
    parser.add_argument(
        "--batch-window-ms",
        type=float,
        default=2.0,
        help="how long a text query waits to share a forward pass with others (2 ms; 0: no wait)",
    )
    parser.add_argument(
        "--max-query-batch",
        type=int,
        default=64,
        help="most text queries encoded in one forward pass (64; 1 encodes one at a time)",
    )
    parser.add_argument("--port-file", type=Path, help="write the bound port here once listening")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Start uvicorn; returns when it stops (Ctrl-C or SIGTERM)."""
    from sparsearch.server import serve
    from sparsearch.server.settings import Settings, read_api_key

    settings = Settings(
        root=args.root,
        api_key=read_api_key(args.api_key_file),
        max_body_bytes=int(args.max_body_mb * 1024 * 1024),
        max_batch=args.max_batch,
        max_k=args.max_k,
        max_text_chars=args.max_text_chars,
        batch_window_ms=args.batch_window_ms,
        max_query_batch=args.max_query_batch,
    )
    serve(settings, host=args.host, port=args.port, port_file=args.port_file)
    return 0
