"""`sparsearch index`: vectors (.npz) or a BEIR corpus + model in, an index directory out."""

from __future__ import annotations

import argparse
from pathlib import Path

from sparsearch.errors import InvalidInputError


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``index`` subcommand."""
    parser = subparsers.add_parser(
        "index", help="build an index from sparse vectors (.npz) or a BEIR corpus + model",
        description="Build (or, with --append, extend) an index directory. INPUT is a .npz "
                    "written by sparsearch.save_npz / `sparsearch encode`, or a BEIR "
                    "corpus.jsonl (or its folder) encoded with --model.")
    parser.add_argument("input", type=Path, help=".npz vectors, or corpus.jsonl / BEIR folder")
    parser.add_argument("output", type=Path, help="the index directory to write")
    parser.add_argument("--model", help="sparse encoder (hub id or folder) for a BEIR corpus")
    parser.add_argument("--batch-size", type=int, default=32, help="encoding batch size")
    parser.add_argument("--chunk", type=int, default=4096,
                        help="documents encoded and added per step")
    parser.add_argument("--max-active-dims", type=int, default=None)
    parser.add_argument("--append", action="store_true",
                        help="add to the index at OUTPUT instead of requiring a new directory")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    parser.set_defaults(func=run)


def _corpus_file(path: Path) -> Path:
    return path / "corpus.jsonl" if path.is_dir() else path


def run(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from sparsearch.index import SparseIndex
    from sparsearch.sparse import load_npz

    exists = (args.output / "CURRENT").exists()
    if exists and not args.append:
        raise InvalidInputError(f"{args.output} already holds an index (use --append)")
    index = SparseIndex(args.output)
    if args.input.suffix == ".npz":
        if not args.input.is_file():
            raise InvalidInputError(f"input file {args.input} does not exist")
        vectors, ids = load_npz(args.input)
        index.add(ids if ids is not None else list(range(vectors.n)), vectors)
    else:
        if not args.model:
            raise InvalidInputError("indexing a BEIR corpus needs --model")
        from sparsearch.cli.encode import read_beir
        from sparsearch.models import SparseEncoder

        ids, texts = read_beir(_corpus_file(args.input), queries=False)
        encoder = SparseEncoder(args.model)
        with tqdm(total=len(ids), desc="indexing", unit="doc", disable=args.no_progress) as bar:
            for start in range(0, len(ids), args.chunk):
                chunk = texts[start:start + args.chunk]
                vectors = encoder.encode_document(chunk, batch_size=args.batch_size,
                                                  show_progress_bar=False,
                                                  max_active_dims=args.max_active_dims)
                index.add(ids[start:start + args.chunk], vectors)
                bar.update(len(chunk))
        index.compact()
    index.save()
    stats = index.stats()
    print(f"indexed {stats['documents']} documents ({stats['nnz']} non-zeros, "
          f"{stats['segments']} segments) -> {args.output}")
    return 0
