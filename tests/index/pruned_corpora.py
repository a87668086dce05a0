"""Corpora for the pruned-path tests: random (Zipf-like terms) and topical (ties on purpose)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from sparsearch.sparse import SparseVectors

N_DOCS = 80_000  # after deleting 10 % and compacting: ~72,000, still >= PRUNE_MIN_DOCS
DIM = 2_000
N_QUERIES = 200
GROUPS = 4  # payloads {"group": 0..3}; some documents have none


# ---------------------------------------------------------------------------- corpora


@dataclass
class Corpus:
    """Documents in insertion order, their ids and payloads, queries and brute-force scores."""

    name: str
    docs: SparseVectors
    ids: list
    payloads: list
    queries: SparseVectors
    scores: np.ndarray = field(init=False)  # (queries, docs) float32, as scipy sums them
    matched: np.ndarray = field(init=False)  # (queries, docs): they share at least one term
    row_of: dict = field(init=False)  # external id -> row

    def __post_init__(self) -> None:
        q, d = self.queries.to_scipy(), self.docs.to_scipy()
        self.scores = np.asarray((q @ d.T).toarray(), np.float32)  # as brute.brute_force
        q_pattern = sp.csr_matrix((np.ones(q.nnz, np.float32), q.indices, q.indptr), q.shape)
        d_pattern = sp.csr_matrix((np.ones(d.nnz, np.float32), d.indices, d.indptr), d.shape)
        self.matched = (q_pattern @ d_pattern.T).toarray() > 0
        self.row_of = {doc_id: row for row, doc_id in enumerate(self.ids)}

    def id_array(self) -> np.ndarray:
        """External ids by row, then ``None`` (what row -1, padding, picks)."""
        out = np.empty(len(self.ids) + 1, object)
        out[:-1] = self.ids
        return out


def _zipf_probs(rng: np.random.Generator, size: int, offset: float) -> np.ndarray:
    """Zipf-like probabilities over ``size`` items, in a random order."""
    p = 1.0 / (np.arange(size) + offset)
    return rng.permutation(p / p.sum())


def _rows(rng: np.random.Generator, n: int, lo: int, hi: int) -> np.ndarray:
    """The row of each entry of ``n`` rows of ``lo..hi`` entries; one row in 1,000 is empty."""
    nnz = rng.integers(lo, hi + 1, n)
    nnz[rng.choice(n, n // 1000, replace=False)] = 0
    return np.repeat(np.arange(n), nnz)


def _csr(rows: np.ndarray, cols: np.ndarray, vals: np.ndarray, n: int, dim: int) -> sp.csr_matrix:
    """CSR with repeated (row, col) entries summed and indices sorted."""
    csr = sp.csr_matrix((vals.astype(np.float32), (rows, cols)), shape=(n, dim))
    csr.sum_duplicates()
    csr.sort_indices()
    return csr


def _payloads(rng: np.random.Generator, n: int) -> list:
    groups = rng.integers(0, GROUPS + 1, n)  # GROUPS: no payload
    return [None if g == GROUPS else {"group": int(g), "n": i} for i, g in enumerate(groups)]


def random_corpus(
    seed: int,
    n: int = N_DOCS,
    dim: int = DIM,
    nnz: tuple[int, int] = (30, 60),
    q_nnz: tuple[int, int] = (10, 40),
    n_queries: int = N_QUERIES,
) -> Corpus:
    """Random sparse vectors: Zipf-like term frequencies, log-normal float weights."""
    rng = np.random.default_rng(seed)
    term_p = _zipf_probs(rng, dim, 10.0)

    def draw(count: int, lo: int, hi: int) -> SparseVectors:
        rows = _rows(rng, count, lo, hi)
        cols = rng.choice(dim, rows.size, p=term_p)
        vals = rng.lognormal(-0.5, 0.7, rows.size)
        return SparseVectors.from_scipy(_csr(rows, cols, vals, count, dim))

    docs, queries = draw(n, *nnz), draw(n_queries, *q_nnz)
    ids = (rng.permutation(n) * 7 + 3).tolist()  # ints, unrelated to the insertion order
    return Corpus("random", docs, ids, _payloads(rng, n), queries)


def topical_corpus(seed: int, n: int = N_DOCS, topics: int = 50, topic_terms: int = 60) -> Corpus:
    """Documents (20-50 terms) and queries (10-20) drawn mostly from one topic's terms.

    Weights lie on a grid of 0.25, skewed to small steps, so scores are exact float32 sums and
    documents with the same mix of terms tie exactly; 3 % of the documents copy an earlier one
    (an exact tie the earlier must win), 1 % copy one with a weight nudged by one ulp (near ties).
    """
    rng = np.random.default_rng(seed)
    background = _zipf_probs(rng, DIM, 20.0)
    topic_vocab = rng.permuted(np.tile(np.arange(DIM), (topics, 1)), axis=1)[:, :topic_terms]
    within = 1.0 / (np.arange(topic_terms) + 1.0)
    within /= within.sum()
    popularity = 1.0 / (np.arange(topics) + 2.0) ** 0.8
    popularity /= popularity.sum()

    def draw(count: int, lo: int, hi: int, on_topic: float, skew: float) -> sp.csr_matrix:
        topic = rng.choice(topics, count, p=popularity)
        rows = _rows(rng, count, lo, hi)
        topical = rng.random(rows.size) < on_topic
        cols = np.where(
            topical,
            topic_vocab[topic[rows], rng.choice(topic_terms, rows.size, p=within)],
            rng.choice(DIM, rows.size, p=background),
        )
        steps = np.where(topical, np.minimum(rng.geometric(skew, rows.size), 16), 1)
        return _csr(rows, cols, 0.25 * steps, count, DIM)

    csr = draw(n, 20, 50, 0.75, 0.35)
    copies = np.sort(rng.choice(np.arange(1000, n), n // 25, replace=False))
    originals = np.setdiff1d(np.arange(n), copies)
    source = np.arange(n)
    # each copy takes an original inserted before it
    source[copies] = originals[rng.integers(0, np.searchsorted(originals, copies))]
    csr = csr[source]
    for row in rng.permutation(copies)[: n // 100]:
        start, end = csr.indptr[row], csr.indptr[row + 1]
        if end > start:
            at = start + rng.integers(end - start)
            csr.data[at] = np.nextafter(csr.data[at], np.float32(np.inf))
    docs = SparseVectors.from_scipy(csr)
    queries = SparseVectors.from_scipy(draw(N_QUERIES, 10, 20, 0.85, 0.5))
    ids = [f"doc-{i}" for i in rng.permutation(n)]
    return Corpus("topical", docs, ids, _payloads(rng, n), queries)
