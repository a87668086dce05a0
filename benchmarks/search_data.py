"""Data for the search benchmark: real SPLADE vectors and a seeded scale-up of their statistics.

Real: every BEIR set in ``../shared/data`` (corpus: title + " " + text; queries: those of the test
split) encoded with ``rasyosef/splade-tiny`` and cached under ``benchmarks/.cache/``.

Scaled: documents and queries drawn from the real vectors' statistics (see :func:`scaled`,
whose docstring is copied into the benchmark's JSON as the exact recipe).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np
from pkgdesc_vectors import DATA as PKGDATA
from pkgdesc_vectors import VECTORS as PKGDESC

from sparsearch.eval.beir import load_qrels
from sparsearch.sparse import SparseVectors, load_npz, save_npz

ROOT = Path(__file__).resolve().parent
CACHE = ROOT / ".cache"
SHARED_DATA = ROOT.parent.parent / "shared" / "data"
SETS = ("scifact", "nfcorpus-partial", "trec-dl19-pool", "cranfield", "cacm")
MODEL = "rasyosef/splade-tiny"


def _read_jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def _test_query_ids(set_dir: Path) -> set[str]:
    with open(set_dir / "qrels" / "test.tsv", encoding="utf-8") as f:
        next(f)  # header
        return {line.split("\t")[0] for line in f if line.strip()}


def _texts(set_dir: Path) -> tuple[list[str], list[str], list[str], list[str]]:
    """(doc ids, doc texts, query ids, query texts) of one set; queries of the test split."""
    corpus = _read_jsonl(set_dir / "corpus.jsonl")
    doc_ids = [str(d["_id"]) for d in corpus]
    doc_texts = [(d.get("title", "") + " " + d.get("text", "")).strip() for d in corpus]
    wanted = _test_query_ids(set_dir)
    queries = [q for q in _read_jsonl(set_dir / "queries.jsonl") if str(q["_id"]) in wanted]
    return doc_ids, doc_texts, [str(q["_id"]) for q in queries], [q["text"] for q in queries]


def _encoder():
    """Our encoder when it loads, else the sentence-transformers reference (same vectors)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_CACHE", str(ROOT.parent.parent / "shared" / "hf-cache"))
    try:
        from sparsearch.models import SparseEncoder

        model = SparseEncoder(MODEL)
        return "sparsearch.models.SparseEncoder", model.encode_document, model.encode_query
    except Exception as exc:  # noqa: BLE001 - any failure falls back to the reference
        print(
            f"[data] sparsearch encoder unavailable ({exc!r}); using sentence-transformers",
            file=sys.stderr,
        )
    import torch
    from sentence_transformers import SparseEncoder as STEncoder

    torch.set_num_threads(2)
    model = STEncoder(MODEL, device="cpu")
    vocab = [t for t, _ in sorted(model.tokenizer.get_vocab().items(), key=lambda kv: kv[1])]

    def wrap(fn):
        def encode(texts: list[str]) -> SparseVectors:
            out = fn(
                texts,
                batch_size=32,
                convert_to_tensor=True,
                convert_to_sparse_tensor=True,
                show_progress_bar=False,
            )
            return SparseVectors.from_torch(out, vocab)

        return encode

    return (
        "sentence_transformers.SparseEncoder",
        wrap(model.encode_document),
        wrap(model.encode_query),
    )


def _as_vectors(out) -> SparseVectors:
    return out if isinstance(out, SparseVectors) else SparseVectors.from_torch(out)


def real(sets: tuple[str, ...] = SETS, cache: Path = CACHE) -> dict:
    """The sets encoded and concatenated: {'docs', 'doc_ids', 'queries', 'query_ids', ...}.

    Ids are prefixed with the set name (``scifact/123``) so the concatenation stays unique.
    """
    cache.mkdir(parents=True, exist_ok=True)
    docs, doc_ids, queries, query_ids, per_set = [], [], [], [], {}
    encoder = None
    for name in sets:
        dpath, qpath = cache / f"{name}.docs.npz", cache / f"{name}.queries.npz"
        if not (dpath.exists() and qpath.exists()):
            if encoder is None:
                encoder = _encoder()
                print(f"[data] encoding with {encoder[0]}", file=sys.stderr)
            t0 = time.perf_counter()
            d_ids, d_texts, q_ids, q_texts = _texts(SHARED_DATA / name)
            parts = [
                _as_vectors(encoder[1](d_texts[i : i + 512])) for i in range(0, len(d_texts), 512)
            ]
            save_npz(qpath, _as_vectors(encoder[2](q_texts)), q_ids)
            save_npz(dpath, SparseVectors.concat(parts), d_ids)
            print(
                f"[data] {name}: {len(d_ids)} docs, {len(q_ids)} queries encoded in "
                f"{time.perf_counter() - t0:.0f}s",
                file=sys.stderr,
            )
        d, di = load_npz(dpath)
        q, qi = load_npz(qpath)
        docs.append(d)
        queries.append(q)
        doc_ids += [f"{name}/{i}" for i in di]
        query_ids += [f"{name}/{i}" for i in qi]
        per_set[name] = {"docs": d.n, "queries": q.n}
    return {
        "docs": SparseVectors.concat(docs),
        "doc_ids": doc_ids,
        "queries": SparseVectors.concat(queries),
        "query_ids": query_ids,
        "per_set": per_set,
    }


def _pairs(query_ids: list[str], doc_ids: list[str], qrels: dict) -> np.ndarray:
    """(query row, relevant doc row) for every positive judgement whose ids are present."""
    row_of = {d: i for i, d in enumerate(doc_ids)}
    return np.array(
        [
            (q, row_of[d])
            for q, qid in enumerate(query_ids)
            for d, grade in qrels.get(qid, {}).items()
            if grade > 0 and d in row_of
        ],
        np.int64,
    ).reshape(-1, 2)


def real_with_pairs() -> dict:
    """The 22k real set with its test pairs (its query model is fitted on those)."""
    r = real()
    qrels: dict = {}
    for name in SETS:
        for q, docs in load_qrels(SHARED_DATA / name / "qrels" / "test.tsv").items():
            qrels[f"{name}/{q}"] = {f"{name}/{d}": g for d, g in docs.items()}
    pairs = _pairs(r["query_ids"], r["doc_ids"], qrels)
    return {
        "name": "real 22k",
        "docs": r["docs"],
        "queries": r["queries"],
        "relevant": pairs,
        "fit": (r["queries"], pairs),
    }


def pkgdesc_with_pairs() -> dict:
    """pkgdesc's 926k documents and test queries; the query model is fitted on the dev pairs."""
    docs, doc_ids = load_npz(PKGDESC / "corpus.npz")
    out = {"name": "pkgdesc 926k", "docs": docs}
    for split in ("test", "dev"):
        queries, query_ids = load_npz(PKGDESC / f"queries-{split}.npz")
        pairs = _pairs(
            query_ids or [], doc_ids or [], load_qrels(PKGDATA / "qrels" / f"{split}.tsv")
        )
        if split == "test":
            out["queries"], out["relevant"] = queries, pairs
        else:
            out["fit"] = (queries, pairs)
    return out


def _distinct_terms(
    rng: np.random.Generator, lengths: np.ndarray, cdf: np.ndarray, factor: float = 1.25
) -> tuple[np.ndarray, np.ndarray]:
    """(rows, terms): each row's first ``length`` distinct draws of an i.i.d. stream from ``cdf``.

    The stream holds ``factor`` x length + 8 draws; rows that find too few distinct terms are
    drawn again with a longer stream (up to 16x, then they keep what they found).
    """
    n, dim = lengths.size, cdf.size
    rows = np.repeat(np.arange(n, dtype=np.int64), (factor * lengths).astype(np.int64) + 8)
    terms = np.minimum(np.searchsorted(cdf, rng.random(rows.size), side="right"), dim - 1)
    key = rows * dim + terms
    order = np.argsort(key, kind="stable")  # equal keys keep stream order: first draw first
    first = np.ones(order.size, bool)
    first[1:] = key[order[1:]] != key[order[:-1]]
    kept = np.sort(order[first])  # distinct (row, term) at their first draw, in stream order
    rows, terms = rows[kept], terms[kept]
    rank = np.arange(rows.size) - np.searchsorted(rows, np.arange(n))[rows]
    keep = rank < lengths[rows]
    rows, terms = rows[keep], terms[keep]
    short = np.flatnonzero(np.bincount(rows, minlength=n) < lengths)
    if short.size and factor < 16:
        again_rows, again_terms = _distinct_terms(rng, lengths[short], cdf, factor * 2)
        retry = np.isin(rows, short)
        rows = np.concatenate([rows[~retry], short[again_rows]])
        terms = np.concatenate([terms[~retry], again_terms])
    return rows, terms


def _sample_rows(
    rng: np.random.Generator, lengths: np.ndarray, src: SparseVectors
) -> SparseVectors:
    """Rows of the given lengths whose terms and weights follow ``src``'s postings.

    Terms: sequential sampling without replacement, with probability proportional to the term's
    frequency in ``src`` (:func:`_distinct_terms`). Weights: a uniformly chosen real weight of
    the same term in ``src``, so each term keeps its own weight distribution (and maximum).
    """
    dim, n = src.dim, lengths.size
    term_weights = src.values[np.argsort(src.indices, kind="stable")]
    df = np.bincount(src.indices, minlength=dim)
    term_start = np.concatenate([[0], np.cumsum(df)[:-1]])
    rows, terms = _distinct_terms(rng, lengths, np.cumsum(df / df.sum()))
    order = np.lexsort((terms, rows))
    rows, terms = rows[order], terms[order]
    pick = term_start[terms] + (rng.random(terms.size) * df[terms]).astype(np.int64)
    indptr = np.zeros(n + 1, np.int64)
    np.cumsum(np.bincount(rows, minlength=n), out=indptr[1:])
    return SparseVectors(
        indptr, terms.astype(np.int32), term_weights[pick], dim, src.vocab, validate=False
    )


SCALED_RECIPE = (
    "Seeded (numpy default_rng([seed, 0]) for documents, default_rng([seed, 1]) for queries), "
    "from the real splade-tiny vectors of all five sets. Documents: (1) each synthetic "
    "document's length (nnz) is drawn uniformly from the real documents' nnz values; (2) its "
    "terms are the first distinct draws of an i.i.d. stream with probability proportional to "
    "each term's real document frequency (sequential sampling without replacement); (3) each weight is a uniformly "
    "chosen real weight of the same term (from that term's real postings), so every term keeps "
    "its own weight distribution and maximum. Queries: the same from the real query vectors "
    "(query nnz, query-term frequencies, per-term query weights). Terms are drawn independently, "
    "so synthetic documents have no topical co-occurrence: top-10 scores are less peaked than on "
    "real data, which makes dynamic pruning harder than on real collections."
)


def scaled(
    real_docs: SparseVectors,
    real_queries: SparseVectors,
    n_docs: int,
    n_queries: int,
    seed: int = 0,
) -> tuple[SparseVectors, SparseVectors]:
    """Synthetic (docs, queries) with the real vectors' statistics; see ``SCALED_RECIPE``."""

    def make(src: SparseVectors, n: int, stream: int) -> SparseVectors:
        rng = np.random.default_rng([seed, stream])
        lengths = rng.choice(src.active_dims(), size=n, replace=True)
        step = 50_000
        return SparseVectors.concat(
            [_sample_rows(rng, lengths[i : i + step], src) for i in range(0, n, step)]
        )

    return make(real_docs, n_docs, 0), make(real_queries, n_queries, 1)


def scaled_cached(
    real_set: dict, n_docs: int, n_queries: int, seed: int = 0, cache: Path = CACHE
) -> tuple[SparseVectors, SparseVectors]:
    """:func:`scaled`, cached under ``cache`` by (n_docs, n_queries, seed)."""
    dpath = cache / f"scaled-{n_docs}-{seed}.docs.npz"
    qpath = cache / f"scaled-{n_queries}-{seed}.queries.npz"
    if dpath.exists() and qpath.exists():
        return load_npz(dpath)[0], load_npz(qpath)[0]
    t0 = time.perf_counter()
    docs, queries = scaled(real_set["docs"], real_set["queries"], n_docs, n_queries, seed)
    save_npz(dpath, docs)
    save_npz(qpath, queries)
    print(
        f"[data] scaled {n_docs} docs / {n_queries} queries in {time.perf_counter() - t0:.0f}s",
        file=sys.stderr,
    )
    return docs, queries


if __name__ == "__main__":
    r = real(tuple(sys.argv[1:]) or SETS)
    print(r["docs"], r["queries"], r["per_set"])
