"""`sparsearch collection`: create, fill, search and describe a collection, in a folder or on a
server (PATH given as ``http://HOST:PORT/collections/NAME``, through :class:`~sparsearch.Client`).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sparsearch.cli._checks import positive_int, top_k
from sparsearch.errors import InvalidInputError

PATH_HELP = "collection folder, or a URL http://HOST:PORT/collections/NAME"


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``collection`` subcommand and its actions."""
    parser = subparsers.add_parser(
        "collection",
        help="create, ingest into, search and describe collections (local or served)",
        description="A collection binds a sparse encoder (and optionally a dense model) to an "
        "index in one folder. PATH is that folder, or the URL of a collection on a "
        "`sparsearch serve` server (http://HOST:PORT/collections/NAME); the server's API key "
        "comes from --api-key-file or $SPARSEARCH_API_KEY.",
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    create = _action(actions, "create", "create a new collection", _create)
    create.add_argument("--model", required=True, help="sparse encoder: hub id (or local folder)")
    create.add_argument("--dense-model", help="sentence-transformers model for dense / hybrid")
    create.add_argument("--dense-index", choices=["flat", "hnsw"], default="flat")
    create.add_argument("--fusion", choices=["rrf", "linear"], default="rrf")
    create.add_argument(
        "--schema",
        nargs="+",
        default=[],
        metavar="FIELD=TYPE",
        help="payload fields checked on every write; TYPE: keyword, integer, float, boolean, "
        "keyword[] or integer[]",
    )

    ingest = _action(actions, "ingest", "encode and store documents (upsert by id)", _ingest)
    source = ingest.add_mutually_exclusive_group(required=True)
    source.add_argument("--beir", type=Path, metavar="DIR", help="a BEIR folder (corpus.jsonl)")
    source.add_argument("--jsonl", type=Path, metavar="FILE", help="one JSON object per line")
    ingest.add_argument(
        "--split", help="BEIR: only the documents judged in qrels/SPLIT.tsv (default: all)"
    )
    ingest.add_argument("--id-field", default="id", help="JSONL: the id field (id)")
    ingest.add_argument("--text-field", default="text", help="JSONL: the text field (text)")
    ingest.add_argument("--limit", type=positive_int, help="only the first N documents")
    ingest.add_argument(
        "--batch", type=positive_int, default=256, help="documents per atomic write (256)"
    )
    ingest.add_argument("--no-progress", action="store_true", help="hide the progress bar")

    search = _action(actions, "search", "search a collection", _search)
    search.add_argument("query", help="the query text")
    search.add_argument("-k", "--top-k", type=top_k, default=10, help="hits (10)")
    search.add_argument("--filter", help='a Qdrant-style filter as JSON: {"must": [...]}')
    search.add_argument("--mode", choices=["sparse", "dense", "hybrid"])
    search.add_argument(
        "--recall",
        type=float,
        help="approximate sparse search aiming at this recall@10 (e.g. 0.95); default: exact",
    )
    search.add_argument("--explain", action="store_true", help="show each hit's matching tokens")
    search.add_argument("--json", action="store_true", help="print the hits as one JSON object")

    _action(actions, "info", "print a collection's counts, encoders and fields (JSON)", _info)


def _action(actions: Any, name: str, text: str, func: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = actions.add_parser(name, help=text, description=text)
    parser.add_argument("path", metavar="PATH", help=PATH_HELP)
    parser.add_argument("--api-key-file", type=Path, help="a server's API key (first line)")
    parser.set_defaults(func=func)
    return parser


def _remote(path: str) -> tuple[str, str] | None:
    """(server URL, collection name) of a collection URL; None for a folder."""
    if not path.startswith(("http://", "https://")):
        return None
    url = urlsplit(path)
    prefix, sep, name = url.path.rstrip("/").rpartition("/collections/")
    if not sep or not name or "/" in name or not url.netloc:
        raise InvalidInputError(f"{path}: a collection URL is http://HOST:PORT/collections/NAME")
    return f"{url.scheme}://{url.netloc}{prefix}", name


def _client(server: str, args: argparse.Namespace) -> Any:
    from sparsearch.server.client import Client
    from sparsearch.server.settings import read_api_key

    return Client(server, api_key=read_api_key(args.api_key_file))


@contextmanager
def _open(args: argparse.Namespace) -> Iterator[Any]:
    """The collection PATH names: a ``Collection``, or a ``RemoteCollection`` for a URL."""
    remote = _remote(args.path)
    if remote is None:
        from sparsearch.collection import Collection

        with Collection.open(args.path) as col:
            yield col
    else:
        with _client(remote[0], args) as client:
            yield client.collection(remote[1])


def _create(args: argparse.Namespace) -> int:
    schema = {}
    for item in args.schema:
        field, sep, kind = item.partition("=")
        if not sep or not field or not kind:
            raise InvalidInputError(f"--schema {item!r}: expected FIELD=TYPE")
        schema[field] = kind
    options = {"dense_index": args.dense_index, "fusion": args.fusion, "payload_schema": schema}
    remote = _remote(args.path)
    if remote is None:
        from sparsearch.collection import Collection

        dense = _model(args.dense_model)
        Collection.create(args.path, _model(args.model), dense_model=dense, **options).close()
    else:  # the server takes hub ids only
        with _client(remote[0], args) as client:
            client.create_collection(remote[1], args.model, dense_model=args.dense_model, **options)
    print(f"created collection {args.path} (model {args.model})")
    return 0


def _model(model: str | None) -> str | None:
    """A local model folder as an absolute path (the collection reopens from anywhere)."""
    return str(Path(model).resolve()) if model and Path(model).is_dir() else model


def _ingest(args: argparse.Namespace) -> int:
    if args.beir is not None:
        ids, texts, payloads = _read_jsonl(args.beir / "corpus.jsonl", "_id", "text", "title")
        if args.split is not None:
            judged = _judged(args.beir, args.split)
            keep = [i for i, doc_id in enumerate(ids) if str(doc_id) in judged]
            ids, texts = [ids[i] for i in keep], [texts[i] for i in keep]
            payloads = [payloads[i] for i in keep]
    else:
        if args.split is not None:
            raise InvalidInputError("--split goes with --beir")
        ids, texts, payloads = _read_jsonl(args.jsonl, args.id_field, args.text_field)
    if args.limit is not None:
        ids, texts, payloads = ids[: args.limit], texts[: args.limit], payloads[: args.limit]
    with _open(args) as col:
        col.upsert_texts(
            ids, texts, payloads, write_batch=args.batch, show_progress_bar=not args.no_progress
        )
        total = col.count()
    print(f"ingested {len(ids)} documents into {args.path} ({total} in the collection)")
    return 0


def _read_jsonl(
    path: Path, id_field: str, text_field: str, title_field: str | None = None
) -> tuple[list[Any], list[str], list[dict[str, Any] | None]]:
    """(ids, texts, payloads) of a JSONL file: the payload is every other field (a BEIR
    document's text is its title and text, as BEIR reads it)."""
    from sparsearch.eval.beir import doc_text

    ids: list[Any] = []
    texts: list[str] = []
    payloads: list[dict[str, Any] | None] = []
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise InvalidInputError(f"{path}: cannot read ({err})") from None
    for line_no, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{path}:{line_no}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise InvalidInputError(f"{where}: not JSON ({err})") from None
        if not isinstance(row, dict):
            raise InvalidInputError(f"{where}: expected a JSON object")
        doc_id, text = row.pop(id_field, None), row.pop(text_field, None)
        if isinstance(doc_id, bool) or not isinstance(doc_id, (str, int)):
            raise InvalidInputError(f"{where}: {id_field!r} must be a string or an integer")
        if title_field is not None and isinstance(text, str):
            title = row.get(title_field)
            text = doc_text(title if isinstance(title, str) else "", text)
        if not isinstance(text, str) or not text.strip():
            raise InvalidInputError(f"{where}: {text_field!r} must be a non-empty string")
        ids.append(doc_id)
        texts.append(text)
        payloads.append({k: v for k, v in row.items() if v is not None} or None)
    if not ids:
        raise InvalidInputError(f"{path}: no documents")
    return ids, texts, payloads


def _judged(folder: Path, split: str) -> set[str]:
    from sparsearch.eval.beir import list_splits, load_qrels

    qrels = folder / "qrels" / f"{split}.tsv"
    if not qrels.is_file():
        found = ", ".join(list_splits(folder)) or "none"
        raise InvalidInputError(f"{folder} has no split {split!r} (splits: {found})")
    return {doc for judged in load_qrels(qrels).values() for doc in judged}


def _search(args: argparse.Namespace) -> int:
    flt = None
    if args.filter is not None:
        try:
            flt = json.loads(args.filter)
        except json.JSONDecodeError as err:
            raise InvalidInputError(f"--filter is not JSON: {err}") from None
    with _open(args) as col:
        hits = col.search(
            args.query,
            args.top_k,
            filter=flt,
            mode=args.mode,
            explain=args.explain,
            recall=args.recall,
        )
    if args.json:
        print(json.dumps({"query": args.query, "hits": [hit.to_dict() for hit in hits]}))
        return 0
    for rank, hit in enumerate(hits, 1):
        payload = f"  {json.dumps(hit.payload)}" if hit.payload else ""
        print(f"{rank:>4}  {hit.score:>10.4f}  {hit.id}{payload}")
        for token in (hit.explanation or {}).get("sparse", {}).get("tokens", []):
            print(
                f"{'':>16}  {token['token']:<20} {token['query_weight']:.3f} x "
                f"{token['document_weight']:.3f} = {token['contribution']:.3f}"
            )
    if not hits:
        print("no hits")
    return 0


def _info(args: argparse.Namespace) -> int:
    with _open(args) as col:
        print(json.dumps(col.info(), indent=2))
    return 0
