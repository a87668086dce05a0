"""`sparsearch encode`: a BEIR corpus.jsonl (or queries.jsonl) in, sparse vectors (.npz) out."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from sparsearch.errors import InvalidInputError


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``encode`` subcommand."""
    parser = subparsers.add_parser(
        "encode", help="encode a BEIR corpus.jsonl or queries.jsonl into sparse vectors",
        description="Encode BEIR JSONL rows (_id, title, text) with a sparse encoder. Documents "
                    "are (title + ' ' + text).strip(); the output .npz holds the CSR arrays, "
                    "the vocabulary and the ids (read it with sparsearch.load_npz).")
    parser.add_argument("model", help="hub id or local folder of a sparse encoder")
    parser.add_argument("input", type=Path, help="corpus.jsonl or queries.jsonl")
    parser.add_argument("output", type=Path, help="the .npz file to write")
    parser.add_argument("--queries", action="store_true",
                        help="encode as queries (encode_query) instead of documents")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-active-dims", type=int, default=None,
                        help="keep only the largest weights of each vector")
    parser.add_argument("--max-seq-length", type=int, default=None)
    parser.add_argument("--precision", choices=["float32", "bfloat16"], default="float32",
                        help="bfloat16: faster matrix products on AMX/AVX512-BF16 CPUs, not exact")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.set_defaults(func=run)


def read_beir(path: Path, queries: bool) -> tuple[list[str], list[str]]:
    """(ids, texts) of a BEIR JSONL file; every row needs ``_id`` and ``text``."""
    ids, texts = [], []
    try:
        with open(path, encoding="utf-8") as f:
            for line_no, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                    doc_id, text = row["_id"], row["text"]
                except (json.JSONDecodeError, KeyError, TypeError) as err:
                    raise InvalidInputError(
                        f"{path}:{line_no}: expected a JSON object with _id and text ({err})"
                    ) from err
                title = "" if queries else (row.get("title") or "")
                ids.append(str(doc_id))
                texts.append((title + " " + text).strip() if title else str(text).strip())
    except FileNotFoundError as err:
        raise InvalidInputError(f"input file {path} does not exist") from err
    return ids, texts


def run(args: argparse.Namespace) -> int:
    import torch

    from sparsearch.models import SparseEncoder
    from sparsearch.sparse import save_npz

    if args.threads:
        torch.set_num_threads(args.threads)
    ids, texts = read_beir(args.input, args.queries)
    encoder = SparseEncoder(args.model)
    if args.max_seq_length:
        encoder.max_seq_length = args.max_seq_length
    encode = encoder.encode_query if args.queries else encoder.encode_document
    vectors = encode(texts, batch_size=args.batch_size, show_progress_bar=not args.no_progress,
                     max_active_dims=args.max_active_dims, precision=args.precision)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    save_npz(args.output, vectors, ids)
    stats = vectors.sparsity()
    print(f"encoded {vectors.n} {'queries' if args.queries else 'documents'} -> {args.output} "
          f"(mean active dims {stats['active_dims']:.1f})")
    return 0
