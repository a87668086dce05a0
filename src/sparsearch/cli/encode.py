"""`sparsearch encode`: a BEIR corpus.jsonl (or queries.jsonl) in, sparse vectors (.npz) out;
with ``--ray``, a folder of Parquet shards encoded by Ray workers (:mod:`sparsearch.distributed`)."""

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
        "as sparsearch.eval.beir.read_beir_jsonl says (duplicate ids are an error). With --ray, "
        "the input may also be a Parquet file or a BEIR folder, the output is a folder of "
        "Parquet shards (rerun the same command to resume a killed job), and --threads is per "
        "worker.",
    )
    parser.add_argument("model", help="hub id or local folder of a sparse encoder")
    parser.add_argument("input", type=Path, help="corpus.jsonl or queries.jsonl")
    parser.add_argument("output", type=Path, help="the .npz file (with --ray: folder) to write")
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
    parser.add_argument(
        "--ray",
        metavar="ADDRESS",
        default=None,
        help="encode on Ray: 'local' (start one for this run), 'auto' (the running cluster), "
        "or a cluster address (host:port, ray://...)",
    )
    parser.add_argument(
        "--workers", type=positive_int, default=None, help="Ray actor workers (default 2)"
    )
    parser.add_argument(
        "--shard-size",
        type=positive_int,
        default=None,
        help="rows per Parquet shard (default 1000); a resume skips whole shards",
    )
    parser.add_argument(
        "--build-segments",
        action="store_true",
        help="with --ray: workers also index their shards, so loading them into an index "
        "attaches the segments instead of indexing again (keep the shard count within the "
        "index's max_segments, 16 by default, or the smallest are rebuilt)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Read and check the whole input, then load the model, encode and write the .npz (or the
    shard folder, with ``--ray``)."""
    if args.ray is not None:
        return run_ray(args)
    if args.workers is not None or args.shard_size is not None or args.build_segments:
        raise InvalidInputError("--workers, --shard-size and --build-segments need --ray")
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


def run_ray(args: argparse.Namespace) -> int:
    """Encode into a folder of shards on Ray (resuming a job killed there before)."""
    from sparsearch.distributed.ray_encode import encode_corpus

    shards = encode_corpus(
        args.model,
        args.input,
        args.output,
        address=None if args.ray == "local" else args.ray,
        workers=args.workers or 2,
        threads_per_worker=args.threads or 1,
        batch_size=args.batch_size,
        shard_size=args.shard_size or 1000,
        side="query" if args.queries else "document",
        max_active_dims=args.max_active_dims,
        max_seq_length=args.max_seq_length,
        precision=args.precision,
        build_segments=args.build_segments,
        progress=not args.no_progress,
    )
    run = shards.manifest.runs[-1]
    kind = "queries" if args.queries else "documents"
    print(
        f"encoded {shards.count} {kind} -> {args.output} ({len(shards.manifest.shards)} shards: "
        f"{len(run['encoded'])} written, {run['skipped']} already there)"
    )
    return 0
