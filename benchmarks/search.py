"""Search benchmark: sparsearch's engine against the peers, side by side, on real and scaled data.

Engines (each built and measured in its own subprocess, so peak RSS is its own):
  scipy (exact brute force: query x term-major CSR), qdrant-edge (Qdrant's engine in-process,
  exact sparse search), pisa (pyterrier-pisa, MaxScore and BlockMax-WAND over a quantised impact
  index), bmp (Block-Max Pruning, safe alpha=beta=1 and a fast setting), seismic (approximate,
  several query_cut/heap_factor settings) and sparsearch (ours, exact).

Reported per dataset and engine: build time, index size on disk, peak RSS, single-thread
latency (mean/p50/p99 over all queries, after a warm-up), QPS with 2 threads, recall@10 against
exact brute force (a hit counts when its exact score reaches the exact 10th score, so ties count).

    nice -n 5 .venv/bin/python benchmarks/search.py            # real + 1M scaled
    .venv/bin/python benchmarks/search.py --quick              # smoke test, small sizes

Writes benchmarks/results/search.{json,md,png}.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).resolve().parent))
import search_data  # noqa: E402

from sparsearch.sparse import SparseVectors, load_npz, save_npz  # noqa: E402

K = 10
ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results"
WORK = search_data.CACHE / "work"
ENGINES = ("scipy", "qdrant-edge", "pisa", "bmp", "seismic", "sparsearch")
EXACT = {"scipy", "qdrant-edge", "pisa-maxscore", "pisa-bmw", "bmp-safe", "sparsearch"}
SEISMIC_SETTINGS = ((5, 0.7), (10, 0.8), (20, 0.9), (40, 1.0))  # (query_cut, heap_factor)
BMP_SETTINGS = {"bmp-safe": (1.0, 1.0), "bmp-fast": (0.9, 0.8)}  # name: (alpha, beta)
SCALE = 100.0  # float -> int impact scale for PISA (pyterrier-pisa's own default)


# ----------------------------------------------------------------------------- helpers
def _rss_mb() -> float:
    """Peak resident set size of this process so far, in MiB.

    Linux's VmHWM, which starts afresh at exec; ``ru_maxrss`` would carry the parent's peak
    into the child across fork + exec. Falls back to ``ru_maxrss`` where /proc is missing.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _du_mb(paths: list[Path]) -> float:
    total = 0
    for p in paths:
        files = [p] if p.is_file() else [f for f in p.rglob("*") if f.is_file()]
        total += sum(f.stat().st_size for f in files)
    return total / 2**20


def _term_major(docs: SparseVectors) -> sp.csr_matrix:
    """The (dim x n) term-major CSR of ``docs``: row t holds the postings of term t."""
    return docs.to_scipy().T.tocsr()


def _topk_rows(scores: sp.csr_matrix, k: int) -> tuple[np.ndarray, np.ndarray]:
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


def exact_topk(
    docs_t: sp.csr_matrix, queries: SparseVectors, k: int = K, batch: int = 64
) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k by scipy (batched): (ordinals n x k, scores n x k)."""
    q = queries.to_scipy()
    parts = [
        _topk_rows((q[i : i + batch] @ docs_t).tocsr(), k) for i in range(0, q.shape[0], batch)
    ]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def recall_at_k(
    found: np.ndarray, docs: SparseVectors, queries: SparseVectors, exact_scores: np.ndarray
) -> float:
    """Mean recall@k: a returned doc counts when its exact score reaches the exact k-th score.

    Queries with fewer than k positive-scoring documents are judged against those they have.
    """
    dq = docs.to_scipy()
    qs = queries.to_scipy()
    per_query = []
    for r in range(found.shape[0]):
        wanted = np.isfinite(exact_scores[r]) & (exact_scores[r] > 0)
        need = int(wanted.sum())
        if need == 0:
            continue
        kth = float(exact_scores[r][wanted].min())
        ids = np.unique(found[r][found[r] >= 0])
        if ids.size == 0:
            per_query.append(0.0)
            continue
        got = np.asarray((dq[ids] @ qs[r].T).todense(), dtype=np.float64).ravel()
        tol = 1e-5 * max(1.0, abs(kth))
        per_query.append(min(int(np.sum((got >= kth - tol) & (got > 0))), need) / need)
    return float(np.mean(per_query)) if per_query else float("nan")


# ----------------------------------------------------------------------------- engines
class Engine:
    """One engine's adapter: build an index in ``path``, then answer queries.

    ``search_one`` answers one query (indices, values) with k ordinals; ``search_threads`` runs
    all queries with 2 threads (the engine's own batch/threads API when it has one).
    """

    variants: tuple[str, ...] = ()

    def __init__(self, path: Path) -> None:
        self.path = path

    def build(self, docs: SparseVectors) -> None:
        raise NotImplementedError

    def size_paths(self) -> list[Path]:
        return [self.path]

    def search_one(self, variant: str, idx: np.ndarray, val: np.ndarray) -> list[int]:
        raise NotImplementedError

    def search_threads(
        self, variant: str, queries: SparseVectors, threads: int
    ) -> tuple[np.ndarray, str]:
        """Default: ``threads`` Python threads each calling search_one on its share."""

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
        self.docs_t = _term_major(docs)
        self.path.mkdir(parents=True, exist_ok=True)
        sp.save_npz(self.path / "docs_t.npz", self.docs_t, compressed=False)

    def search_one(self, variant, idx, val):
        q = sp.csr_matrix((val, idx, [0, idx.size]), shape=(1, self.docs_t.shape[0]))
        return _topk_rows((q @ self.docs_t).tocsr(), K)[0][0].tolist()


class QdrantEngine(Engine):
    variants = ("qdrant-edge",)

    def build(self, docs):
        import qdrant_edge as q

        config = q.EdgeConfig(
            sparse_vectors={"s": q.EdgeSparseVectorParams()},
            optimizers=q.EdgeOptimizersConfig(default_segment_number=1, max_segment_size=2**31 - 1),
            max_search_threads=1,
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

    def search_one(self, variant, idx, val):
        q = self.q
        req = q.QueryRequest(
            limit=K,
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

    def _retrieve(self, variant, queries, threads):
        n = len(queries)
        shape = (n * K,)
        qidx = np.empty(shape, np.int32)
        docnos = np.empty(shape, object)
        ranks = np.empty(shape, np.int32)
        scores = np.empty(shape, np.float32)
        size = self._pisathon.retrieve(
            self.ctxt,
            self.algorithms[variant],
            queries,
            k=K,
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

    def search_one(self, variant, idx, val):
        _, docnos, _ = self._retrieve(variant, [(0, self._toks(idx, val))], 1)
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

    def search_one(self, variant, idx, val):
        alpha, beta = BMP_SETTINGS[variant]
        query = {str(t): float(w) for t, w in zip(idx.tolist(), val.tolist(), strict=True)}
        docnos, _ = self.searcher.search(query, k=K, alpha=alpha, beta=beta)
        return [int(d) for d in docnos]


class SeismicEngine(Engine):
    """Seismic (approximate): built from an in-memory dataset with its default parameters."""

    variants = tuple(f"seismic-qc{c}-hf{h}" for c, h in SEISMIC_SETTINGS)

    def build(self, docs):
        import seismic

        ds = seismic.SeismicDataset(dim=docs.dim)
        ds.add_documents_by_id(
            [str(i) for i in range(docs.n)], docs.indices.astype(np.int64), docs.values, docs.indptr
        )
        self.index = seismic.SeismicIndex.build_from_dataset(ds, num_threads=1)
        self.path.mkdir(parents=True, exist_ok=True)
        self.index.save(str(self.path / "index"))
        self.str_dtype = seismic.get_seismic_string()

    def _params(self, variant):
        c, h = SEISMIC_SETTINGS[self.variants.index(variant)]
        return {"k": K, "query_cut": c, "heap_factor": h}

    def _comp(self, idx):
        return np.array([str(t) for t in idx.tolist()], dtype=self.str_dtype)

    def search_one(self, variant, idx, val):
        res = self.index.search("q", self._comp(idx), val, **self._params(variant))
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

    def search_one(self, variant, idx, val):
        q = SparseVectors(np.array([0, idx.size]), idx, val, self.dim, validate=False)
        return [x for x in self._ids(self.index.search(q, k=K, n_threads=1))[0] if x >= 0]

    def search_threads(self, variant, queries, threads):
        return self._ids(
            self.index.search(queries, k=K, n_threads=threads)
        ), f"SparseIndex.search(batch, n_threads={threads})"


ADAPTERS = {
    "scipy": ScipyEngine,
    "qdrant-edge": QdrantEngine,
    "pisa": PisaEngine,
    "bmp": BmpEngine,
    "seismic": SeismicEngine,
    "sparsearch": OursEngine,
}


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in (
        "numpy",
        "scipy",
        "numba",
        "qdrant-edge-py",
        "pyterrier-pisa",
        "bmp",
        "pyseismic-lsr",
        "sparsearch",
    ):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "not installed"
    return out


# ----------------------------------------------------------------------------- worker
def worker(
    engine: str, docs_path: Path, queries_path: Path, truth_path: Path, out_path: Path, warmup: int
) -> None:
    """Build one engine and measure it; writes a JSON list of rows (one per variant)."""
    docs, _ = load_npz(docs_path)
    queries, _ = load_npz(queries_path)
    exact_scores = np.load(truth_path)["scores"]
    data_rss = _rss_mb()
    path = WORK / engine
    shutil.rmtree(path, ignore_errors=True)
    WORK.mkdir(parents=True, exist_ok=True)
    adapter = ADAPTERS[engine](path)
    t0 = time.perf_counter()
    adapter.build(docs)
    build_s = time.perf_counter() - t0
    size_mb = _du_mb(adapter.size_paths())
    rows = []
    for variant in adapter.variants:
        rows_q = [queries.row(i) for i in range(queries.n)]
        for i in range(min(warmup, queries.n)):
            adapter.search_one(variant, *rows_q[i])
        lat = np.empty(queries.n)
        found = np.full((queries.n, K), -1, np.int64)
        for i, (idx, val) in enumerate(rows_q):
            t = time.perf_counter()
            ids = adapter.search_one(variant, idx, val)
            lat[i] = time.perf_counter() - t
            found[i, : len(ids)] = ids[:K]
        t = time.perf_counter()
        found2, how = adapter.search_threads(variant, queries, 2)
        qps2 = queries.n / (time.perf_counter() - t)
        rows.append(
            {
                "engine": variant,
                "exact": variant in EXACT,
                "build_s": build_s,
                "index_mb": size_mb,
                "peak_rss_mb": _rss_mb(),
                "data_rss_mb": data_rss,
                "mean_ms": 1e3 * float(lat.mean()),
                "p50_ms": 1e3 * float(np.percentile(lat, 50)),
                "p99_ms": 1e3 * float(np.percentile(lat, 99)),
                "qps_1thread": queries.n / lat.sum(),
                "qps_2threads": qps2,
                "qps_2threads_how": how,
                "recall@10": recall_at_k(found, docs, queries, exact_scores),
                "recall@10_2threads": recall_at_k(found2, docs, queries, exact_scores),
            }
        )
        print(
            f"[{variant}] build {build_s:.1f}s  mean {rows[-1]['mean_ms']:.3f} ms  "
            f"recall {rows[-1]['recall@10']:.4f}",
            file=sys.stderr,
            flush=True,
        )
    out_path.write_text(json.dumps(rows))
    shutil.rmtree(path, ignore_errors=True)


# ----------------------------------------------------------------------------- driver
def _prepare(name: str, docs: SparseVectors, queries: SparseVectors) -> dict:
    """Cache the vectors and the exact top-k (scipy) for one dataset; return their paths."""
    tag = f"{name}-{docs.n}-{queries.n}"
    paths = {k: search_data.CACHE / f"bench-{tag}.{k}.npz" for k in ("docs", "queries", "truth")}
    if not all(p.exists() for p in paths.values()):
        save_npz(paths["docs"], docs)
        save_npz(paths["queries"], queries)
        t0 = time.perf_counter()
        ids, scores = exact_topk(_term_major(docs), queries)
        np.savez(paths["truth"], ids=ids, scores=scores)
        print(
            f"[{name}] exact top-{K} by scipy in {time.perf_counter() - t0:.1f}s", file=sys.stderr
        )
    return paths


def _stats(v: SparseVectors) -> dict:
    active = v.active_dims()
    return {
        "n": v.n,
        "nnz": v.nnz,
        "mean_nnz": float(active.mean()),
        "p50_nnz": float(np.median(active)),
        "max_nnz": int(active.max()),
        "distinct_terms": int(np.unique(v.indices).size),
    }


def run_engine(engine: str, paths: dict, timeout_s: int, warmup: int) -> list[dict]:
    out = search_data.CACHE / f"result-{engine}.json"
    out.unlink(missing_ok=True)
    cmd = [
        sys.executable,
        __file__,
        "--worker",
        engine,
        "--docs",
        str(paths["docs"]),
        "--queries-file",
        str(paths["queries"]),
        "--truth",
        str(paths["truth"]),
        "--out",
        str(out),
        "--warmup",
        str(warmup),
    ]
    env = dict(os.environ, RAYON_NUM_THREADS="2", OMP_NUM_THREADS="1")
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, env=env, timeout=timeout_s, capture_output=True, text=True)
    except subprocess.TimeoutExpired:
        return [
            {"engine": engine, "skipped": f"exceeded the {timeout_s}s budget (build + measurement)"}
        ]
    sys.stderr.write(proc.stderr[-3000:])
    if proc.returncode != 0 or not out.exists():
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return [{"engine": engine, "skipped": f"failed (exit {proc.returncode}): {last}"}]
    rows = json.loads(out.read_text())
    for r in rows:
        r["wall_s"] = time.perf_counter() - t0
    return rows


def _fmt(x, digits=2):
    return "-" if x is None else f"{x:,.{digits}f}"


def markdown(report: dict) -> str:
    lines = [
        f"# Search benchmark\n\nReproduce: `{report['command']}`\n",
        f"Machine: {report['machine']}. Single thread unless stated; QPS(2) uses 2 threads. "
        "Recall@10 is against exact scipy brute force (ties at the 10th score count).\n",
    ]
    for ds in report["datasets"]:
        s = ds["docs_stats"]
        lines.append(
            f"## {ds['name']}: {s['n']:,} documents (mean nnz {s['mean_nnz']:.0f}), "
            f"{ds['queries_stats']['n']:,} queries (mean nnz "
            f"{ds['queries_stats']['mean_nnz']:.0f})\n"
        )
        lines.append(
            "| engine | exact | build s | index MB | peak RSS MB | mean ms | p50 ms | "
            "p99 ms | QPS (2 thr) | recall@10 |"
        )
        lines.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        for r in ds["results"]:
            if "skipped" in r:
                lines.append(f"| {r['engine']} | | skipped: {r['skipped']} | | | | | | | |")
                continue
            lines.append(
                f"| {r['engine']} | {'yes' if r['exact'] else 'no'} | {_fmt(r['build_s'], 1)} | "
                f"{_fmt(r['index_mb'], 0)} | {_fmt(r['peak_rss_mb'], 0)} | "
                f"{_fmt(r['mean_ms'], 3)} | {_fmt(r['p50_ms'], 3)} | {_fmt(r['p99_ms'], 3)} | "
                f"{_fmt(r['qps_2threads'], 0)} | {_fmt(r['recall@10'], 4)} |"
            )
        lines.append("")
    return "\n".join(lines)


def plot(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sets = report["datasets"]
    fig, axes = plt.subplots(1, len(sets), figsize=(8.5 * len(sets), 5.5), squeeze=False)
    for ax, ds in zip(axes[0], sets, strict=True):
        shown = [r for r in ds["results"] if "skipped" not in r]
        for i, r in enumerate(shown):
            ax.scatter(
                r["mean_ms"],
                r["recall@10"],
                marker="o" if r["exact"] else "^",
                s=60,
                color=plt.cm.tab20(i % 20),
                label=r["engine"],
            )
        ax.set_xscale("log")
        low = min((r["recall@10"] for r in shown), default=0.9)
        ax.set_ylim(max(0.0, low - 0.02), 1.005)
        ax.set_xlabel("mean latency per query, ms (single thread, log)")
        ax.set_ylabel("recall@10 vs exact")
        ax.set_title(f"{ds['name']} ({ds['docs_stats']['n']:,} docs)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.suptitle("Sparse search: recall@10 vs latency (o exact, ^ approximate)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale-docs", type=int, default=1_000_000)
    ap.add_argument("--queries", type=int, default=1000, help="scaled-data queries")
    ap.add_argument("--engines", default=",".join(ENGINES))
    ap.add_argument("--datasets", default="real,scaled")
    ap.add_argument(
        "--real-sets",
        default=",".join(search_data.SETS),
        help="which sets of ../shared/data make the real collection",
    )
    ap.add_argument("--quick", action="store_true", help="small sizes, a smoke test")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--timeout", type=int, default=3600, help="per engine and dataset, seconds")
    ap.add_argument("--warmup", type=int, default=50)
    ap.add_argument("--out", type=Path, default=RESULTS / "search")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--docs", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--queries-file", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--truth", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        worker(args.worker, args.docs, args.queries_file, args.truth, args.out, args.warmup)
        return 0
    if args.quick:
        args.scale_docs, args.queries, args.warmup = 20_000, 100, 10
    command = "nice -n 5 .venv/bin/python benchmarks/search.py " + " ".join(
        sys.argv[1:] if argv is None else argv
    )
    print(f"# reproduce: {command.strip()}", flush=True)
    engines = [e for e in args.engines.split(",") if e]
    unknown = set(engines) - set(ENGINES)
    if unknown:
        ap.error(f"unknown engines {sorted(unknown)}; choose from {ENGINES}")

    real_sets = tuple(s for s in args.real_sets.split(",") if s)
    unknown = set(real_sets) - set(search_data.SETS)
    if unknown:
        ap.error(f"unknown sets {sorted(unknown)}; choose from {search_data.SETS}")
    real = search_data.real(real_sets)
    datasets = []
    if "real" in args.datasets:
        q = real["queries"] if not args.quick else real["queries"][: args.queries]
        name = "real" if real_sets == search_data.SETS else "real-" + "+".join(real_sets)
        datasets.append(
            (
                name,
                real["docs"],
                q,
                {
                    "how": f"sets {', '.join(real_sets)} of ../shared/data concatenated (corpus: "
                    "title + ' ' + text; queries: the test split), encoded with "
                    "rasyosef/splade-tiny",
                    "per_set": real["per_set"],
                },
            )
        )
    if "scaled" in args.datasets:
        d, q = search_data.scaled_cached(real, args.scale_docs, args.queries, args.seed)
        datasets.append(
            (
                f"scaled-{args.scale_docs}",
                d,
                q,
                {"how": search_data.SCALED_RECIPE, "seed": args.seed},
            )
        )

    cpu = platform.processor() or platform.machine()
    report = {
        "command": command.strip(),
        "machine": f"{cpu}, {os.cpu_count()} CPUs, Linux; shared with other jobs",
        "k": K,
        "versions": _versions(),
        "datasets": [],
    }
    for name, docs, queries, info in datasets:
        paths = _prepare(name, docs, queries)
        entry = {
            "name": name,
            "docs_stats": _stats(docs),
            "queries_stats": _stats(queries),
            **info,
            "results": [],
        }
        del docs, queries
        for engine in engines:
            print(f"[{name}] {engine} ...", file=sys.stderr, flush=True)
            entry["results"] += run_engine(engine, paths, args.timeout, args.warmup)
        report["datasets"].append(entry)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.with_suffix(".json").write_text(json.dumps(report, indent=1))
        args.out.with_suffix(".md").write_text(markdown(report))
    plot(report, args.out.with_suffix(".png"))
    print(markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
