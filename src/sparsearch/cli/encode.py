"""`sparsearch encode`: a BEIR corpus.jsonl (or queries.jsonl) in, sparse vectors (.npz) out."""

from __future__ import annotations

import argparse
from pathlib import Path

from sparsearch.cli._checks import output_file, positive_int
from sparsearch.errors import InvalidInputError


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``encode`` subcommand."""
    parser = subparsers.add_parser(
        "encode",
        help="encode a BEIR corpus.jsonl or queries.jsonl into sparse vectors",
        description="Encode BEIR JSONL rows (_id, title, text) with a sparse encoder. Documents "
        "are (title + ' ' + text).strip(); the output .npz holds the CSR arrays, "
        "the vocabulary and the ids (read it with sparsearch.load_npz). Rows are checked "
        "as sparsearch.eval.beir.read_beir_jsonl says (duplicate ids are an error).",
    )
    parser.add_argument("model", help="hub id or local folder of a sparse encoder")
    parser.add_argument("input", type=Path, help="corpus.jsonl or queries.jsonl")
    parser.add_argument("output", type=Path, help="the .npz file to write")
    parser.add_argument(
        "--queries",
        action="store_true",
        help="encode as queries (encode_query) instead of documents",
    )
    parser.add_argument("--batch-size", type=positive_int, default=32)
    parser.add_argument(
        "--max-active-dims",
        type=positive_int,
        default=None,
        help="keep only the largest weights of each vector",
    )
    parser.add_argument("--max-seq-length", type=positive_int, default=None)
    parser.add_argument(
        "--precision",
        choices=["float32", "bfloat16"],
        default="float32",
        help="bfloat16: faster matrix products on AMX/AVX512-BF16 CPUs, not exact",
    )
    parser.add_argument("--threads", type=positive_int, default=None, help="torch CPU threads")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Read and check the whole input, then load the model, encode and write the .npz."""
    from sparsearch.eval.beir import read_jsonl_texts

    ids, texts = read_jsonl_texts(args.input, "queries" if args.queries else "corpus")
    output_file(args.output)

    import torch

    from sparsearch.models import SparseEncoder
    from sparsearch.sparse import save_npz

    if args.threads:
        torch.set_num_threads(args.threads)
    encoder = SparseEncoder(args.model)
    if args.max_seq_length:
        encoder.max_seq_length = args.max_seq_length
    encode = encoder.encode_query if args.queries else encoder.encode_document
    vectors = encode(
        texts,
        batch_size=args.batch_size,
        show_progress_bar=not args.no_progress,
        max_active_dims=args.max_active_dims,
        precision=args.precision,
    )
    try:
        save_npz(args.output, vectors, ids)
    except OSError as err:  # no permission, disk full, ...
        raise InvalidInputError(f"{args.output}: cannot write ({err.strerror})") from err
    stats = vectors.sparsity()
    kind = "queries" if args.queries else "documents"
    print(
        f"encoded {vectors.n} {kind} -> {args.output} (mean active dims {stats['active_dims']:.1f})"
    )
    return 0
