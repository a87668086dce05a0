"""Large SPLADE-like collections with topics, generated from a real collection's vectors.

The old scale-up (:data:`search_data.SCALED_RECIPE`) draws every term independently, so its
documents have no topics and its queries no relevant documents; it stays as a stress test. This
generator keeps what pruning and clustering engines feed on (see :data:`RECIPE`, which the
benchmarks copy into their JSON):

- **Documents** mix a few real *parent* documents that share a topic, so terms co-occur as they
  do in the real collection, and lengths and per-term weights are the real ones.
- **Queries** are written from a *target* document, with the share of in-document terms and the
  query-to-document weight ratios measured on real (query, relevant document) pairs, so every
  query has one known relevant document (``relevant``) as in a known-item task.

``benchmarks/search_calibration.py`` measures how close generated sets behave to the real ones.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sparsearch.sparse import SparseVectors

RECIPE = (
    "Fitted to a real collection (its documents' splade-tiny vectors) and to real (query, "
    "relevant document) pairs. Document: (1) a parent document p1 is drawn uniformly from the "
    "real documents; its strongest term is the topic t; (2) {parents_minus_1} more parents are "
    "drawn from the real documents containing t, with probability proportional to their weight "
    "of t to the power {focus}; (3) the length is p1's length; a Binomial(length, {background}) "
    "share of it are background terms (drawn by real document frequency, each with a real weight "
    "of that term); the rest are the first distinct terms of a random order of all the parents' "
    "postings in which a random {keep} share of p1's postings come first (so the document stays "
    "close to p1, and a term several parents share is likelier), each keeping its posting's real "
    "weight (so every term keeps its real largest weight). Query: it imitates a real pair, "
    "drawn with every real query equally likely; (1) its target is a generated document whose "
    "first parent's strongest term is the real target's (else one of the real target's length); "
    "(2) it has the real query's number of terms, of which the real pair's share are drawn "
    "without replacement from the target's terms, each as likely as the real queries take "
    "terms of that (document frequency, document weight) bin from their relevant documents (a "
    "histogram ratio fitted on the pairs); (3) the rest are drawn, a Binomial({topical}) share "
    "from the target's parents' other terms (same preference), the others from the real "
    "queries' terms that were not in their relevant document; (4) an in-target term's query "
    "weight is that of a real pair's shared term whose document weight is among the "
    "{neighbours} x 2 closest; other terms take the real query weight drawn with them (or one "
    "of the real out-of-document weights). Seeded: numpy default_rng([seed, 2]) for documents, "
    "default_rng([seed, 3]) for queries. Documents are stored in their first parent's order."
)


@dataclass(frozen=True)
class Settings:
    """The generator's knobs (see :data:`RECIPE`)."""

    parents: int = 3  # real documents mixed into each generated one
    keep: float = 0.85  # share of the first parent's postings kept ahead of the others
    focus: float = 2.0  # the other parents: drawn by (their weight of the topic term) ** focus
    background: float = 0.05  # share of each document's terms drawn by document frequency
    topical: float = 0.5  # share of a query's other terms taken from its target's parents

    def recipe(self) -> str:
        """:data:`RECIPE` with these settings filled in."""
        return RECIPE.format(
            parents_minus_1=self.parents - 1,
            keep=self.keep,
            focus=self.focus,
            background=self.background,
            topical=self.topical,
            neighbours=NEIGHBOURS,
        )


DF_BINS = 24  # QueryModel.preference bins: log2(document frequency) ...
WEIGHT_BINS = 12  # ... x document weight in steps of WEIGHT_STEP
WEIGHT_STEP = 0.25
NEIGHBOURS = 50  # a query weight is drawn among the real pairs with the closest document weights


@dataclass(frozen=True)
class QueryModel:
    """What real queries look like beside their relevant documents."""

    pair_weights: np.ndarray  # each pair's chance: every query equal, split over its pairs
    query_lengths: np.ndarray  # per pair: the query's number of terms
    in_target_share: np.ndarray  # per pair: share of the query's terms found in the document
    targets: np.ndarray  # per pair: the relevant document (a row of the fitted documents)
    shared_doc_weights: np.ndarray  # the pairs' shared terms: document weights, ascending ...
    shared_query_weights: np.ndarray  # ... and the same terms' query weights
    preference: np.ndarray  # per (df, weight) bin: how much likelier a query takes such a term
    other_terms: np.ndarray  # the real queries' terms not in their relevant document ...
    other_query_weights: np.ndarray  # ... and their query weights

    def query_weights(self, rng: np.random.Generator, doc_weights: np.ndarray) -> np.ndarray:
        """Query weights of in-document terms: drawn from real pairs of similar document weight."""
        at = np.searchsorted(self.shared_doc_weights, doc_weights)
        at += rng.integers(-NEIGHBOURS, NEIGHBOURS + 1, at.size)
        return self.shared_query_weights[np.clip(at, 0, self.shared_doc_weights.size - 1)]


def fit_queries(queries: SparseVectors, docs: SparseVectors, pairs: np.ndarray) -> QueryModel:
    """Measure a :class:`QueryModel` on ``pairs``: rows ``(query row, relevant doc row)``."""
    if pairs.size == 0:
        raise ValueError("fit_queries needs at least one (query, relevant document) pair")
    pairs = pairs[(queries.active_dims()[pairs[:, 0]] > 0) & (docs.active_dims()[pairs[:, 1]] > 0)]
    if pairs.size == 0:
        raise ValueError("fit_queries: every pair has an empty query or document")
    share, shared_t, doc_t, doc_all_w, doc_w, query_w, other_t, other_w = ([] for _ in range(8))
    for q, d in pairs.tolist():
        qi, qv = queries.row(q)
        di, dv = docs.row(d)
        shared, q_at, d_at = np.intersect1d(qi, di, assume_unique=True, return_indices=True)
        share.append(shared.size / qi.size)
        shared_t.append(shared)
        doc_t.append(di)
        doc_all_w.append(dv)
        doc_w.append(dv[d_at])
        query_w.append(qv[q_at])
        other_t.append(np.delete(qi, q_at).astype(np.int64))
        other_w.append(np.delete(qv, q_at))
    df = np.bincount(docs.indices, minlength=docs.dim)
    shared_bins = np.bincount(
        _bin(df[np.concatenate(shared_t)], np.concatenate(doc_w)), minlength=DF_BINS * WEIGHT_BINS
    )
    doc_bins = np.bincount(
        _bin(df[np.concatenate(doc_t)], np.concatenate(doc_all_w)),
        minlength=DF_BINS * WEIGHT_BINS,
    )
    preference = (shared_bins / shared_bins.sum()) / np.maximum(doc_bins / doc_bins.sum(), 1e-12)
    doc_weights, query_weights = np.concatenate(doc_w), np.concatenate(query_w)
    order = np.argsort(doc_weights, kind="stable")
    per_query = np.bincount(pairs[:, 0])[pairs[:, 0]]
    return QueryModel(
        pair_weights=(1 / per_query) / (1 / per_query).sum(),
        query_lengths=queries.active_dims()[pairs[:, 0]],
        in_target_share=np.array(share),
        targets=pairs[:, 1],
        shared_doc_weights=doc_weights[order],
        shared_query_weights=query_weights[order],
        preference=preference,
        other_terms=np.concatenate(other_t),
        other_query_weights=np.concatenate(other_w),
    )


def _bin(df: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """The (document frequency, document weight) bin of each posting."""
    df_bin = np.minimum(np.log2(np.maximum(df, 1)).astype(np.int64), DF_BINS - 1)
    weight_bin = np.clip((weight / WEIGHT_STEP).astype(np.int64), 0, WEIGHT_BINS - 1)
    return df_bin * WEIGHT_BINS + weight_bin


def _top_terms(docs: SparseVectors) -> np.ndarray:
    """Each document's strongest term (-1 for an empty document)."""
    rows = np.repeat(np.arange(docs.n), docs.active_dims())
    order = np.lexsort((-docs.values, rows))  # by row, strongest first
    first = docs.indptr[:-1][docs.active_dims() > 0]
    top = np.full(docs.n, -1, np.int64)
    top[docs.active_dims() > 0] = docs.indices[order[first]]
    return top


def _take_rows(src: SparseVectors, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(owner, position): every posting of ``src``'s ``rows``, owner = index into ``rows``."""
    lens = src.indptr[rows + 1] - src.indptr[rows]
    owner = np.repeat(np.arange(rows.size), lens)
    starts = np.repeat(src.indptr[rows] - np.concatenate([[0], np.cumsum(lens)[:-1]]), lens)
    return owner, starts + np.arange(owner.size)


RANK_BITS = 20  # ranks given to _first_per_key are integers below 2**RANK_BITS


def _first_per_key(owner: np.ndarray, terms: np.ndarray, rank: np.ndarray, dim: int) -> np.ndarray:
    """Positions keeping, for each (owner, term), the entry of lowest ``rank``; by owner, term."""
    key = ((owner * dim + terms) << RANK_BITS) | rank
    order = np.argsort(key)
    group = key[order] >> RANK_BITS
    keep = np.ones(order.size, bool)
    keep[1:] = group[1:] != group[:-1]
    return order[keep]


def _csr(
    owner: np.ndarray, terms: np.ndarray, values: np.ndarray, n: int, src: SparseVectors
) -> SparseVectors:
    """CSR rows ``0..n-1`` from (owner row, term, value) triples; ``src``'s dim and vocab."""
    order = np.lexsort((terms, owner))
    indptr = np.zeros(n + 1, np.int64)
    np.cumsum(np.bincount(owner, minlength=n), out=indptr[1:])
    return SparseVectors(
        indptr,
        terms[order].astype(np.int32),
        values[order].astype(np.float32),
        src.dim,
        src.vocab,
        validate=False,
    )


@dataclass
class TopicalGenerator:
    """Documents and queries like ``docs`` and ``model``'s queries, at any size; see RECIPE."""

    docs: SparseVectors
    model: QueryModel
    settings: Settings = Settings()
    chunk: int = 50_000

    def __post_init__(self) -> None:
        src = self.docs
        if self.model.targets.max() >= src.n:
            raise ValueError("the query model was fitted on other documents than these")
        self.top = _top_terms(src)
        self.eligible = np.flatnonzero(self.top >= 0)
        t = src.to_scipy().T.tocsr()  # term-major: the documents holding each term
        self.term_docs = t.indices
        self.term_indptr = t.indptr
        self.term_cum = np.cumsum(t.data.astype(np.float64) ** self.settings.focus)
        self.term_weights = t.data  # each term's real weights, term by term
        self.df = np.diff(t.indptr)
        self.df_cdf = np.cumsum(self.df / src.nnz)

    # ------------------------------------------------------------------ documents
    def _by_df(self, rng: np.random.Generator, count: int) -> tuple[np.ndarray, np.ndarray]:
        """``count`` terms drawn by document frequency, each with one of its real weights."""
        terms = np.minimum(np.searchsorted(self.df_cdf, rng.random(count)), self.docs.dim - 1)
        lo, hi = self.term_indptr[terms], self.term_indptr[terms + 1]
        return terms, self.term_weights[lo + (rng.random(count) * (hi - lo)).astype(np.int64)]

    def _parents(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """(n, parents): a uniform first parent, then documents holding its strongest term."""
        first = rng.choice(self.eligible, n)
        topic = self.top[first]
        lo, hi = self.term_indptr[topic], self.term_indptr[topic + 1]
        cum_lo = np.where(lo > 0, self.term_cum[np.maximum(lo - 1, 0)], 0.0)
        span = self.term_cum[hi - 1] - cum_lo
        u = rng.random((n, self.settings.parents - 1))
        pos = np.searchsorted(self.term_cum, cum_lo[:, None] + u * span[:, None], side="right")
        pos = np.clip(pos, lo[:, None], hi[:, None] - 1)
        return np.column_stack([first, self.term_docs[pos]])

    def _doc_chunk(self, rng: np.random.Generator, n: int) -> tuple[SparseVectors, np.ndarray]:
        src = self.docs
        parents = self._parents(rng, n)
        length = src.active_dims()[parents[:, 0]]
        n_bg = rng.binomial(length, self.settings.background)
        owner, pos = _take_rows(src, parents.ravel())
        from_first = owner % self.settings.parents == 0
        owner //= self.settings.parents
        terms, values = src.indices[pos].astype(np.int64), src.values[pos]
        # a random order of the postings, with the first parent's kept share in front
        half = 1 << (RANK_BITS - 1)
        draw = rng.integers(0, half, owner.size)
        draw[~(from_first & (rng.random(owner.size) < self.settings.keep))] += half
        pick = _first_per_key(owner, terms, draw, src.dim)  # a shared term: its first posting
        owner, terms, values, draw = owner[pick], terms[pick], values[pick], draw[pick]
        order = np.argsort((owner << RANK_BITS) | draw)  # each document's terms, drawn order
        owner, terms, values = owner[order], terms[order], values[order]
        starts = np.searchsorted(owner, np.arange(n))
        keep = np.arange(owner.size) - starts[owner] < (length - n_bg)[owner]
        bg_owner = np.repeat(np.arange(n), n_bg)
        bg_terms, bg_values = self._by_df(rng, bg_owner.size)
        owner = np.concatenate([owner[keep], bg_owner])
        terms = np.concatenate([terms[keep], bg_terms])
        values = np.concatenate([values[keep], bg_values])
        rank = np.concatenate(
            [np.zeros(keep.sum(), np.int64), np.ones(bg_owner.size, np.int64)]
        )  # parents first
        pick = _first_per_key(owner, terms, rank, src.dim)
        owner, terms, values = owner[pick], terms[pick], values[pick]
        return _csr(owner, terms, values, n, src), parents

    def documents(self, n: int, seed: int = 0) -> tuple[SparseVectors, np.ndarray]:
        """``n`` documents and their parents (rows of ``docs``), seeded; in their first parents'
        order, so the real collection's order (similar documents stored near each other, which
        compressed postings and caches feel) carries over."""
        rng = np.random.default_rng([seed, 2])
        parts = [self._doc_chunk(rng, min(self.chunk, n - i)) for i in range(0, n, self.chunk)]
        parents = np.concatenate([p[1] for p in parts])
        order = np.argsort(parents[:, 0], kind="stable")
        return SparseVectors.concat([p[0] for p in parts])[order], parents[order]

    # ------------------------------------------------------------------ queries
    def _targets(
        self, rng: np.random.Generator, docs: SparseVectors, parents: np.ndarray, real: np.ndarray
    ) -> np.ndarray:
        """A generated document on each real target's topic (its first parent's strongest term
        is the target's), else one of the target's length."""
        topic = self.top[parents[:, 0]]
        by_topic = np.argsort(topic, kind="stable")
        wanted = self.top[real]
        lo = np.searchsorted(topic[by_topic], wanted, "left")
        hi = np.searchsorted(topic[by_topic], wanted, "right")
        out = by_topic[
            np.minimum(lo + (rng.random(real.size) * (hi - lo)).astype(np.int64), topic.size - 1)
        ]
        lengths = docs.active_dims()
        by_length = np.argsort(lengths, kind="stable")
        ranked = lengths[by_length]
        miss = np.flatnonzero(hi == lo)
        at = np.minimum(
            np.searchsorted(ranked, self.docs.active_dims()[real[miss]]), ranked.size - 1
        )
        lo = np.searchsorted(ranked, ranked[at], "left")
        hi = np.searchsorted(ranked, ranked[at], "right")
        out[miss] = by_length[lo + (rng.random(miss.size) * (hi - lo)).astype(np.int64)]
        return out

    def _preference(self, terms: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """How likely a query takes each of these postings (by df and weight, as real ones do)."""
        return np.maximum(self.model.preference[_bin(self.df[terms], weights)], 1e-6)

    def queries(
        self, docs: SparseVectors, parents: np.ndarray, n: int, seed: int = 0
    ) -> tuple[SparseVectors, np.ndarray]:
        """``n`` queries over the generated ``docs`` and their relevant pairs ``(query, doc)``."""
        rng = np.random.default_rng([seed, 3])
        m = self.model
        pair = rng.choice(m.pair_weights.size, n, p=m.pair_weights)  # the real pair imitated
        targets = self._targets(rng, docs, parents, m.targets[pair])
        owners, all_terms, all_values = [], [], []
        for q, d in enumerate(targets.tolist()):
            di, dv = docs.row(d)
            size = int(m.query_lengths[pair[q]])
            inside = min(int(round(size * m.in_target_share[pair[q]])), di.size)
            key = rng.exponential(size=di.size) / self._preference(di, dv)
            chosen = np.argsort(key)[:inside]
            terms, weights = [di[chosen].astype(np.int64)], [m.query_weights(rng, dv[chosen])]
            pool_owner, pool_pos = _take_rows(self.docs, parents[d])
            pi, pv = self.docs.indices[pool_pos].astype(np.int64), self.docs.values[pool_pos]
            pick = _first_per_key(np.zeros(pi.size, np.int64), pi, pool_owner, self.docs.dim)
            pi, pv = pi[pick], pv[pick]
            outside = ~np.isin(pi, di)
            pi, pv = pi[outside], pv[outside]
            key = rng.exponential(size=pi.size) / self._preference(pi, pv)
            chosen = np.argsort(key)[: rng.binomial(size - inside, self.settings.topical)]
            terms.append(pi[chosen])
            weights.append(rng.choice(m.other_query_weights, chosen.size))
            real = rng.integers(0, m.other_terms.size, size - inside - chosen.size)
            terms.append(m.other_terms[real])
            weights.append(m.other_query_weights[real])
            t, first = np.unique(np.concatenate(terms), return_index=True)
            owners.append(np.full(t.size, q))
            all_terms.append(t)
            all_values.append(np.concatenate(weights)[first])
        queries = _csr(
            np.concatenate(owners),
            np.concatenate(all_terms),
            np.concatenate(all_values),
            n,
            self.docs,
        )
        return queries, np.column_stack([np.arange(n), targets]).astype(np.int64)
