"""The engines of the search benchmark (``benchmarks/search.py``): one adapter per engine.

Each adapter builds an index from the benchmark's vectors in its own folder and answers queries
with document ordinals, single query at a time or on several threads. ``ADAPTERS`` names them
as ``search.py --engines`` does.
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from sparsearch.search import SearchParams
from sparsearch.sparse import SparseVectors

K = 10
# (query_cut, heap_factor): each knob varied on its own around Seismic's README setting (query_cut
# 20, heap_factor 0.7), from its fastest to its highest-recall settings
SEISMIC_SETTINGS = tuple(
    [(c, 0.7) for c in (3, 5, 10, 20, 40)] + [(20, h) for h in (0.5, 0.9, 1.0)]
)
APPROX_RECALLS = (0.9, 0.95, 0.99)  # our recall knob
# (query_terms, heap_factor) set by hand, like Seismic's sweep: each knob on its own
APPROX_SETTINGS = ((5, 0.8), (10, 0.8), (20, 0.8), (10, 0.7), (20, 0.6), (20, 0.5))
BMP_SETTINGS = {"bmp-safe": (1.0, 1.0), "bmp-fast": (0.9, 0.8)}  # name: (alpha, beta)
SCALE = 100.0  # float -> int impact scale for PISA (pyterrier-pisa's own default)


# ----------------------------------------------------------------------------- helpers
def term_major(docs: SparseVectors) -> sp.csr_matrix:
    """The (dim x n) term-major CSR of ``docs``: row t holds the postings of term t."""
    return docs.to_scipy().T.tocsr()


def topk_rows(scores: sp.csr_matrix, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-k (ordinals, scores) of each row of a sparse score matrix; -1 / -inf padded."""
    n = scores.shape[0]
    ids = np.full((n, k), -1, np.int64)
    vals = np.full((n, k), -np.inf, np.float32)
    for r in range(n):
        a, b = scores.indptr[r], scores.indptr[r + 1]
        data, cols = scores.data[a:b], scores.indices[a:b]
        if data.size > k:
            part = np.argpartition(-data, k - 1)[:k]
            data, cols = data[part], cols[part]
        order = np.lexsort((cols, -data))
        ids[r, : order.size] = cols[order]
        vals[r, : order.size] = data[order]
    return ids, vals


# ----------------------------------------------------------------------------- engines
class Engine:
    """One engine's adapter: build an index in ``path``, then answer queries.

    ``search_one`` answers one query (indices, values) with k (default ``K``) ordinals; ``search_threads`` runs
    all queries with 2 threads through the engine's own batch/threads API when it has one, and
    ``python_threads`` through 2 Python threads calling ``search_one`` (every engine).
    """

    variants: tuple[str, ...] = ()
    calibration_queries: SparseVectors | None = (
        None  # sample queries, for engines that tune on them
    )

    def __init__(self, path: Path) -> None:
        self.path = path

    def build(self, docs: SparseVectors) -> None:
        raise NotImplementedError

    def size_paths(self) -> list[Path]:
        return [self.path]

    def search_one(self, variant: str, idx: np.ndarray, val: np.ndarray, k: int = K) -> list[int]:
        raise NotImplementedError

    def search_threads(
        self, variant: str, queries: SparseVectors, threads: int
    ) -> tuple[np.ndarray, str]:
        """The engine's own batch/threads API; default: :meth:`python_threads`."""
        return self.python_threads(variant, queries, threads)

    def python_threads(
        self, variant: str, queries: SparseVectors, threads: int
    ) -> tuple[np.ndarray, str]:
        """``threads`` Python threads each calling search_one on its share: the one mechanism
        every engine is measured with."""

        def run(rows: range) -> list[list[int]]:
            return [self.search_one(variant, *queries.row(i)) for i in rows]

        n = queries.n
        chunks = [range(i, n, threads) for i in range(threads)]
        with ThreadPoolExecutor(threads) as pool:
            parts = list(pool.map(run, chunks))
        out = np.full((n, K), -1, np.int64)
        for chunk, res in zip(chunks, parts, strict=True):
            for i, ids in zip(chunk, res, strict=True):
                out[i, : len(ids)] = ids
        return out, f"{threads} Python threads calling the single-query API"


class ScipyEngine(Engine):
    variants = ("scipy",)

    def build(self, docs: SparseVectors) -> None:
        self.docs_t = term_major(docs)
        self.path.mkdir(parents=True, exist_ok=True)
        sp.save_npz(self.path / "docs_t.npz", self.docs_t, compressed=False)

    def search_one(self, variant, idx, val, k=K):
        q = sp.csr_matrix((val, idx, [0, idx.size]), shape=(1, self.docs_t.shape[0]))
        return topk_rows((q @ self.docs_t).tocsr(), k)[0][0].tolist()


class QdrantEngine(Engine):
    variants = ("qdrant-edge",)

    def build(self, docs):
        import qdrant_edge as q

        config = q.EdgeConfig(
            sparse_vectors={"s": q.EdgeSparseVectorParams()},
            optimizers=q.EdgeOptimizersConfig(default_segment_number=1, max_segment_size=2**31 - 1),
            max_search_threads=2,  # its search threads set to the threaded runs' 2, not left at 1
            wal_enabled=False,
        )
        shard = q.EdgeShard.create(str(self.path), config)
        for start in range(0, docs.n, 5000):
            pts = []
            for i in range(start, min(start + 5000, docs.n)):
                idx, val = docs.row(i)
                pts.append(q.Point(i, {"s": q.SparseVector(idx.tolist(), val.tolist())}, None))
            shard.update(q.UpdateOperation.upsert_points(pts))
        shard.optimize()
        shard.flush()
        self.shard, self.q = shard, q

    def search_one(self, variant, idx, val, k=K):
        q = self.q
        req = q.QueryRequest(
            limit=k,
            query=q.Query.Nearest(q.SparseVector(idx.tolist(), val.tolist()), using="s"),
            with_payload=False,
            with_vector=False,
        )
        return [int(p.id) for p in self.shard.query(req)]


class PisaEngine(Engine):
    """PISA through pyterrier-pisa's own files and bindings (no JVM is started).

    The uncompressed collection is written with numpy in exactly the layout pyterrier-pisa's
    ``toks_indexer`` writes (weights scaled by 100 and truncated to ints), then PISA compresses
    it and builds its block-max (wand) data in ``prepare_index``.
    """

    variants = ("pisa-maxscore", "pisa-bmw")
    algorithms = {"pisa-maxscore": "maxscore", "pisa-bmw": "block_max_wand"}

    def build(self, docs):
        from pyterrier_pisa import _pisathon

        p = self.path
        p.mkdir(parents=True, exist_ok=True)
        impacts = SparseVectors(
            docs.indptr, docs.indices, np.trunc(docs.values * SCALE), docs.dim, validate=False
        )
        t = impacts.to_scipy().copy()  # a copy: eliminate_zeros works in place
        t.eliminate_zeros()
        t = t.T.tocsr()  # term-major, doc ordinals sorted within each term
        df = np.diff(t.indptr)
        terms = np.flatnonzero(df)  # PISA's lexicon: the terms that occur, sorted as strings
        names = np.array([str(x) for x in terms])
        order = terms[np.argsort(names, kind="stable")]
        names = np.sort(names)
        with open(p / "inv.docs", "wb") as fd, open(p / "inv.freqs", "wb") as ff:
            fd.write(np.array([1, docs.n], np.uint32).tobytes())
            for term in order:
                a, b = t.indptr[term], t.indptr[term + 1]
                head = np.array([b - a], np.uint32)
                fd.write(head.tobytes() + t.indices[a:b].astype(np.uint32).tobytes())
                ff.write(head.tobytes() + t.data[a:b].astype(np.uint32).tobytes())
        lens = np.asarray(impacts.to_scipy().sum(axis=1)).ravel().astype(np.uint32)
        (p / "inv.sizes").write_bytes(np.concatenate([[docs.n], lens]).astype(np.uint32).tobytes())
        (p / "fwd.documents").write_text("".join(f"{i}\n" for i in range(docs.n)))
        (p / "fwd.terms").write_text("".join(f"{s}\n" for s in names))
        _pisathon.build_binlex(str(p / "fwd.documents"), str(p / "fwd.doclex"))
        _pisathon.build_binlex(str(p / "fwd.terms"), str(p / "fwd.termlex"))
        (p / "pt_meta.json").write_text(
            json.dumps(
                {
                    "type": "sparse_index",
                    "format": "pisa",
                    "package_hint": "pyterrier-pisa",
                    "stemmer": "none",
                }
            )
        )
        self.ctxt = _pisathon.RetrievalContext()
        _pisathon.prepare_index(
            self.ctxt, str(p), "block_simdbp", "quantized", "", quantize=0, stop_fname=""
        )
        self._pisathon = _pisathon

    def size_paths(self):
        # what search needs: the compressed index, its block-max data and the lexicons
        return [f for f in self.path.iterdir() if ".bmw." in f.name or f.name.endswith("lex")]

    def _retrieve(self, variant, queries, threads, k=K):
        n = len(queries)
        shape = (n * k,)
        qidx = np.empty(shape, np.int32)
        docnos = np.empty(shape, object)
        ranks = np.empty(shape, np.int32)
        scores = np.empty(shape, np.float32)
        size = self._pisathon.retrieve(
            self.ctxt,
            self.algorithms[variant],
            queries,
            k=k,
            threads=threads,
            query_weighted=1,
            pretokenised=True,
            result_qidxs=qidx,
            result_docnos=docnos,
            result_ranks=ranks,
            result_scores=scores,
        )
        return qidx[:size], docnos[:size], ranks[:size]

    @staticmethod
    def _toks(idx, val):
        return {str(t): float(w * SCALE) for t, w in zip(idx.tolist(), val.tolist(), strict=True)}

    def search_one(self, variant, idx, val, k=K):
        _, docnos, _ = self._retrieve(variant, [(0, self._toks(idx, val))], 1, k)
        return [int(d) for d in docnos]

    def search_threads(self, variant, queries, threads):
        inp = [(i, self._toks(*queries.row(i))) for i in range(queries.n)]
        qidx, docnos, ranks = self._retrieve(variant, inp, threads)
        out = np.full((queries.n, K), -1, np.int64)
        out[qidx, ranks] = docnos.astype(np.int64)
        return out, f"PISA's batch retrieve(threads={threads})"


class BmpEngine(Engine):
    """Block-Max Pruning through its documented ``Indexer.add_document``.

    BMP stores 8-bit impacts (larger ones wrap and wreck its results), so document weights are
    quantised linearly to 1..255 by the collection's largest weight; queries stay float.
    """

    variants = tuple(BMP_SETTINGS)

    def build(self, docs):
        import bmp

        self.path.mkdir(parents=True, exist_ok=True)
        names = np.array([str(t) for t in range(docs.dim)], dtype=object)
        ix = bmp.Indexer(str(self.path / "index.bmp"), bsize=32, compress_range=False)
        impacts = np.round(docs.values * (255.0 / float(docs.values.max()))).astype(np.int64)
        for i in range(docs.n):
            a, b = docs.indptr[i], docs.indptr[i + 1]
            keep = impacts[a:b] > 0
            ix.add_document(
                str(i),
                dict(
                    zip(
                        names[docs.indices[a:b][keep]].tolist(),
                        impacts[a:b][keep].tolist(),
                        strict=True,
                    )
                ),
            )
        ix.finish()
        self.searcher = bmp.Searcher(str(self.path / "index.bmp"))

    def search_one(self, variant, idx, val, k=K):
        alpha, beta = BMP_SETTINGS[variant]
        query = {str(t): float(w) for t, w in zip(idx.tolist(), val.tolist(), strict=True)}
        docnos, _ = self.searcher.search(query, k=k, alpha=alpha, beta=beta)
        return [int(d) for d in docnos]


class SeismicEngine(Engine):
    """Seismic (approximate): built from an in-memory dataset with its default parameters."""

    variants = tuple(f"seismic-qc{c}-hf{h}" for c, h in SEISMIC_SETTINGS)
    scaled = False  # n_postings as our default static pruning: 3,500 per million documents

    def build(self, docs):
        import seismic

        ds = seismic.SeismicDataset(dim=docs.dim)
        ds.add_documents_by_id(
            [str(i) for i in range(docs.n)], docs.indices.astype(np.int64), docs.values, docs.indptr
        )
        build = {"num_threads": os.cpu_count() or 1}  # as ours builds its approximate part
        if self.scaled:
            from sparsearch.index.approx import ApproxConfig

            build["n_postings"] = ApproxConfig().kept(docs.n)
        self.index = seismic.SeismicIndex.build_from_dataset(ds, **build)
        self.path.mkdir(parents=True, exist_ok=True)
        self.index.save(str(self.path / "index"))
        self.str_dtype = seismic.get_seismic_string()

    def _params(self, variant, k=K):
        c, h = SEISMIC_SETTINGS[self.variants.index(variant)]
        return {"k": k, "query_cut": c, "heap_factor": h}

    def _comp(self, idx):
        return np.array([str(t) for t in idx.tolist()], dtype=self.str_dtype)

    def search_one(self, variant, idx, val, k=K):
        res = self.index.search("q", self._comp(idx), val, **self._params(variant, k))
        return [int(r[2]) for r in res]

    def search_threads(self, variant, queries, threads):
        comps = [self._comp(queries.row(i)[0]) for i in range(queries.n)]
        vals = [queries.row(i)[1] for i in range(queries.n)]
        qids = np.array([str(i) for i in range(queries.n)], dtype=self.str_dtype)
        res = self.index.batch_search(
            qids, comps, vals, num_threads=threads, **self._params(variant)
        )
        out = np.full((queries.n, K), -1, np.int64)
        for rows in res:  # each hit is (query id, score, doc id); map by the query id
            for rank, (qid, _, doc) in enumerate(rows):
                out[int(qid), rank] = int(doc)
        return out, f"Seismic's batch_search(num_threads={threads})"


class ScaledSeismicEngine(SeismicEngine):
    """Seismic built with ``n_postings`` scaled to the collection as our default is (3,500 per
    million documents, at least 3,500; its other build parameters at their defaults)."""

    variants = tuple(f"seismic-scaled-qc{c}-hf{h}" for c, h in SEISMIC_SETTINGS)
    scaled = True


class OursEngine(Engine):
    """sparsearch.index.SparseIndex (exact top-k)."""

    variants = ("sparsearch",)

    def build(self, docs):
        from sparsearch.index import SparseIndex

        idx = SparseIndex(dim=docs.dim)
        idx.add(np.arange(docs.n), docs)
        idx.save(self.path)
        self.index = SparseIndex.open(self.path, mmap=True)
        self.dim = docs.dim

    @staticmethod
    def _ids(hits) -> np.ndarray:
        ids = np.asarray(hits.ids, dtype=object)
        return np.array([[-1 if x is None else int(x) for x in row] for row in ids], np.int64)

    def search_one(self, variant, idx, val, k=K):
        q = SparseVectors(np.array([0, idx.size]), idx, val, self.dim, validate=False)
        return [
            x
            for x in self._ids(self.index.search(q, k=k, params=SearchParams(threads=1)))[0]
            if x >= 0
        ]

    def search_threads(self, variant, queries, threads):
        return self._ids(
            self.index.search(queries, k=K, params=SearchParams(threads=threads))
        ), f"SparseIndex.search(batch, params=SearchParams(threads={threads}))"


class OursApproxEngine(OursEngine):
    """sparsearch.index.SparseIndex in approximate mode: the recall knob, then expert settings.

    Built as the exact engine plus ``build_approx()`` (its build time counts both; the knob is
    then recalibrated on ``calibration_queries`` when the dataset has some), saved and reopened,
    so the parts are read back from disk as a user's would be.
    """

    variants = tuple(f"sparsearch-approx-r{r}" for r in APPROX_RECALLS) + tuple(
        f"sparsearch-approx-qt{t}-hf{h}" for t, h in APPROX_SETTINGS
    )

    def build(self, docs):
        from sparsearch.index import SparseIndex

        idx = SparseIndex(dim=docs.dim)
        idx.add(np.arange(docs.n), docs)
        idx.build_approx()
        self.calibration = {"documents": self._calibration(idx)}
        if self.calibration_queries is not None:
            idx.calibrate_approx(self.calibration_queries)
            self.calibration["calibration_queries"] = self._calibration(idx)
        idx.save(self.path)
        self.index = SparseIndex.open(self.path, mmap=True)
        self.dim = docs.dim

    @staticmethod
    def _calibration(idx) -> list:
        """Each segment's calibrated recall per rung of approx.LADDER."""
        return [seg.approx.calibration for seg in idx.snapshot().segments if seg.approx]

    def _params(self, variant: str, threads: int) -> SearchParams:
        if "-r" in variant:
            recall = float(variant.rsplit("-r", 1)[1])
            return SearchParams(threads=threads, mode="approx", recall=recall)
        t, h = APPROX_SETTINGS[self.variants.index(variant) - len(APPROX_RECALLS)]
        return SearchParams(threads=threads, mode="approx", query_terms=t, heap_factor=h)

    def search_one(self, variant, idx, val, k=K):
        q = SparseVectors(np.array([0, idx.size]), idx, val, self.dim, validate=False)
        hits = self.index.search(q, k=k, params=self._params(variant, 1))
        return [x for x in self._ids(hits)[0] if x >= 0]

    def search_threads(self, variant, queries, threads):
        params = self._params(variant, threads)
        return self._ids(self.index.search(queries, k=K, params=params)), (
            f"SparseIndex.search(batch, params=SearchParams(threads={threads}, mode='approx'))"
        )


ADAPTERS = {
    "scipy": ScipyEngine,
    "qdrant-edge": QdrantEngine,
    "pisa": PisaEngine,
    "bmp": BmpEngine,
    "seismic": SeismicEngine,
    "seismic-scaled": ScaledSeismicEngine,
    "sparsearch": OursEngine,
    "sparsearch-approx": OursApproxEngine,
}
