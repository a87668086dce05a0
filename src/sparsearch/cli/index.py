"""`sparsearch index`: vectors (.npz) or a BEIR corpus + model in, an index directory out."""

from __future__ import annotations

import argparse
from pathlib import Path

from sparsearch.cli._checks import index_output_dir, naming, positive_int
from sparsearch.errors import InvalidInputError, SparsearchError


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``index`` subcommand."""
    parser = subparsers.add_parser(
        "index",
        help="build an index from sparse vectors (.npz) or a BEIR corpus + model",
        description="Build (or, with --append, extend) an index directory. INPUT is a .npz "
        "written by sparsearch.save_npz / `sparsearch encode`, or a BEIR "
        "corpus.jsonl (or its folder) encoded with --model. OUTPUT must be a new or "
        "empty folder (or, with --append, an index).",
    )
    parser.add_argument("input", type=Path, help=".npz vectors, or corpus.jsonl / BEIR folder")
    parser.add_argument("output", type=Path, help="the index directory to write")
    parser.add_argument("--model", help="sparse encoder (hub id or folder) for a BEIR corpus")
    parser.add_argument("--batch-size", type=positive_int, default=32, help="encoding batch size")
    parser.add_argument(
        "--chunk", type=positive_int, default=4096, help="documents encoded and added per step"
    )
    parser.add_argument("--max-active-dims", type=positive_int, default=None)
    parser.add_argument(
        "--append",
        action="store_true",
        help="add to the index at OUTPUT instead of requiring a new directory",
    )
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    parser.set_defaults(func=run)


def _corpus_file(path: Path) -> Path:
    return path / "corpus.jsonl" if path.is_dir() else path


def run(args: argparse.Namespace) -> int:
    """Check the output folder and the input, then add everything and save once."""
    from tqdm.auto import tqdm

    from sparsearch.index import SparseIndex
    from sparsearch.sparse import load_npz

    index_output_dir(args.output, args.append)
    if args.input.suffix == ".npz":
        vectors, ids = load_npz(args.input)
        index = SparseIndex(args.output)
        with naming(args.input):
            index.add(ids if ids is not None else list(range(vectors.n)), vectors)
    else:
        if not args.model:
            raise InvalidInputError(
                f"{args.input}: not a .npz file; indexing a BEIR corpus needs --model"
            )
        from sparsearch.eval.beir import read_jsonl_texts
        from sparsearch.models import SparseEncoder

        corpus = _corpus_file(args.input)
        ids, texts = read_jsonl_texts(corpus, "corpus")
        encoder = SparseEncoder(args.model)
        index = SparseIndex(args.output)
        with (
            tqdm(total=len(ids), desc="indexing", unit="doc", disable=args.no_progress) as bar,
            naming(corpus),
        ):
            for start in range(0, len(ids), args.chunk):
                chunk = texts[start : start + args.chunk]
                vectors = encoder.encode_document(
                    chunk,
                    batch_size=args.batch_size,
                    show_progress_bar=False,
                    max_active_dims=args.max_active_dims,
                )
                index.add(ids[start : start + args.chunk], vectors)
                bar.update(len(chunk))
        index.compact()
    try:
        index.save()
    except OSError as err:  # no permission, disk full, ...
        if isinstance(err, SparsearchError):
            raise
        raise InvalidInputError(f"{args.output}: cannot write the index ({err.strerror})") from err
    stats = index.stats()
    print(
        f"indexed {stats['documents']} documents ({stats['nnz']} non-zeros, "
        f"{stats['segments']} segments) -> {args.output}"
    )
    return 0
