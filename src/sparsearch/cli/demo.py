"""`sparsearch demo`: the real thing on SciFact with rasyosef/splade-tiny, no arguments needed.

Evaluates the model on the whole SciFact test split (vectors cached, so a second run is fast),
prints the metrics, then one query with its top hits and, per hit, the tokens that made it match.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from sparsearch.errors import InvalidInputError

DEFAULT_MODEL = "rasyosef/splade-tiny"


def _default_data() -> Path:
    """``$SPARSEARCH_DATA/scifact``, else ``../shared/data/scifact`` beside the checkout."""
    if "SPARSEARCH_DATA" in os.environ:
        return Path(os.environ["SPARSEARCH_DATA"]) / "scifact"
    return Path.cwd().parent / "shared" / "data" / "scifact"


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``demo`` subcommand."""
    parser = subparsers.add_parser(
        "demo",
        help="evaluate splade-tiny on SciFact and explain one query's hits",
        description="Encode, index and evaluate SciFact with a sparse encoder, then show one "
        "query's top hits with the tokens each hit shares with the query.",
    )
    parser.add_argument("--model", default=DEFAULT_MODEL, help=f"default {DEFAULT_MODEL}")
    parser.add_argument(
        "--data", type=Path, default=None, help="BEIR folder (default ../shared/data/scifact)"
    )
    parser.add_argument(
        "--query",
        default=None,
        help="query id to explain (default: the first whose top hit is relevant)",
    )
    parser.add_argument("--hits", type=int, default=3, help="hits to explain")
    parser.add_argument("--tokens", type=int, default=8, help="matching tokens shown per hit")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Evaluate, then explain one query."""
    from sparsearch.eval import evaluate_retriever, load_beir
    from sparsearch.eval.report import print_table
    from sparsearch.hybrid import SparseRetriever, index_corpus
    from sparsearch.models import SparseEncoder

    data = args.data or _default_data()
    if not data.is_dir():
        raise InvalidInputError(f"no dataset at {data}: pass --data or set SPARSEARCH_DATA")
    start = time.perf_counter()
    dataset = load_beir(data, "test")
    encoder = SparseEncoder(args.model)
    index = index_corpus(encoder, dataset.doc_texts(), show_progress_bar=True)
    retriever = SparseRetriever(encoder, index)
    result = evaluate_retriever(retriever, dataset, k=(10, 100))
    result["seconds"] = round(time.perf_counter() - start, 1)
    columns = [
        "dataset",
        "ndcg@10",
        "mrr@10",
        "recall@100",
        "map@100",
        "query_active_dims",
        "doc_active_dims",
        "flops",
        "seconds",
    ]
    print_table(
        [result],
        columns,
        title=f"{args.model} on {result['dataset']} "
        f"({result['n_queries']} queries, {result['n_docs']} docs)",
    )

    if args.query is not None and args.query not in dataset.queries:
        raise InvalidInputError(f"query {args.query!r} is not a judged test query")
    if args.query is None:  # the first test query whose top hit is judged relevant
        top = retriever.retrieve(dataset.queries, k=1).run
        good = [q for q, hits in top if any(dataset.qrels[q].get(d, 0) > 0 for d, _ in hits)]
        qid, why = (good or list(dataset.queries))[0], " (first query with a relevant top hit)"
    else:
        qid, why = args.query, ""
    retrieval = retriever.retrieve({qid: dataset.queries[qid]}, k=args.hits)
    hits = retrieval.run.row(0)
    query_vector = retrieval.query_vectors
    assert query_vector is not None  # a sparse retriever always returns its query vectors
    matched = encoder.intersection(query_vector, index.get([d for d, _ in hits]))
    print(f"\nquery {qid}{why}: {dataset.queries[qid]}")
    print(
        "query tokens: "
        + ", ".join(f"{t} {w:.2f}" for t, w in encoder.decode(query_vector, top_k=args.tokens)[0])
    )
    relevant = dataset.qrels[qid]
    for rank, ((docid, score), tokens) in enumerate(
        zip(hits, encoder.decode(matched, top_k=args.tokens), strict=True), 1
    ):
        mark = "relevant" if relevant.get(docid, 0) > 0 else "not judged relevant"
        title = dataset.corpus[docid]["title"] or dataset.corpus[docid]["text"][:80]
        print(f"\n{rank}. [{docid}] score {score:.2f} ({mark}) {title}")
        print("   matched on: " + ", ".join(f"{t} {w:.2f}" for t, w in tokens))
    return 0
