"""Search benchmark: sparsearch's engine against the peers, side by side, on real and scaled data.

Engines (each built and measured in its own subprocess, so peak RSS is its own):
  scipy (exact brute force: query x term-major CSR), qdrant-edge (Qdrant's engine in-process,
  exact sparse search), pisa (pyterrier-pisa, MaxScore and BlockMax-WAND over a quantised impact
  index), bmp (Block-Max Pruning, safe alpha=beta=1 and a fast setting), seismic (approximate,
  several query_cut/heap_factor settings), sparsearch (ours, exact) and sparsearch-approx (ours,
  approximate). Not run unless named: seismic-scaled (Seismic with n_postings scaled to the
  collection as our default is: 3,500 per million documents; the same as seismic below ~1M).

Reported per dataset and engine: build time, index size on disk, peak RSS, single-thread
latency (mean/p50/p99 over all queries of each query's fastest of --passes timed passes, after
a warm-up), QPS with 2 threads, recall@10 against
exact brute force (a hit counts when its exact score reaches the exact 10th score, so ties count).

    nice -n 5 .venv/bin/python benchmarks/search.py            # real + 1M scaled
    .venv/bin/python benchmarks/search.py --quick              # smoke test, small sizes

Writes benchmarks/results/search.{json,md,png}.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).resolve().parent))
import search_data  # noqa: E402
import topical_data  # noqa: E402
from pkgdesc_vectors import VECTORS as PKGDESC  # noqa: E402
from provenance import provenance  # noqa: E402
from search_peers import ADAPTERS, Engine, K, term_major, topk_rows  # noqa: E402

from sparsearch.sparse import SparseVectors, load_npz, save_npz  # noqa: E402

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results"
WORK = search_data.CACHE / "work"
ENGINES = ("scipy", "qdrant-edge", "pisa", "bmp", "seismic", "sparsearch", "sparsearch-approx")
EXACT = {"scipy", "qdrant-edge", "sparsearch"}
TOPICAL_DEV_QUERIES = 500  # generated queries that calibrate the recall knob (like pkgdesc's dev)
DEEP_K = 100  # Recall@DEEP_K against the judgements, where a dataset has them
# exact top-k, but of scores quantised to integers (PISA: weight x 100 truncated; BMP: 8-bit), so
# their recall against the float scores is below 1
EXACT_QUANTISED = {"pisa-maxscore", "pisa-bmw", "bmp-safe"}


def exactness(variant: str) -> str:
    """How exact an engine's top-k is: "yes", "quantised" (exact on quantised scores) or "no"."""
    return "yes" if variant in EXACT else "quantised" if variant in EXACT_QUANTISED else "no"


def _exact_label(row: dict) -> str:
    """A row's exactness (results files before the quantised label hold a bool)."""
    value = row["exact"]
    return value if isinstance(value, str) else "yes" if value else "no"


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


def exact_topk(
    docs_t: sp.csr_matrix, queries: SparseVectors, k: int = K, batch: int = 64
) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k by scipy (batched): (ordinals n x k, scores n x k)."""
    q = queries.to_scipy()
    parts = [topk_rows((q[i : i + batch] @ docs_t).tocsr(), k) for i in range(0, q.shape[0], batch)]
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
def _relevant_by_query(relevant: np.ndarray) -> dict[int, set[int]]:
    """Judgement rows ``(query, document)`` as each judged query's set of relevant documents."""
    wanted: dict[int, set[int]] = {}
    for q, d in relevant.tolist():
        wanted.setdefault(q, set()).add(d)
    return wanted


def mrr_at_k(found: np.ndarray, relevant: np.ndarray) -> float:
    """MRR@k of ``found`` (rows of ordinals) over the queries with a relevant document."""
    ranks = [
        next((1 / (r + 1) for r, d in enumerate(found[q].tolist()) if d in docs), 0.0)
        for q, docs in _relevant_by_query(relevant).items()
    ]
    return float(np.mean(ranks)) if ranks else float("nan")


def judged_recall(found: np.ndarray, relevant: np.ndarray) -> float:
    """Mean over judged queries of the share of their relevant documents in ``found``'s rows."""
    wanted = _relevant_by_query(relevant)
    return float(
        np.mean([len(docs & set(found[q].tolist())) / len(docs) for q, docs in wanted.items()])
    )


def worker(
    engine: str,
    docs_path: Path,
    queries_path: Path,
    truth_path: Path,
    out_path: Path,
    warmup: int,
    passes: int,
    qrels_path: Path | None,
    calibration_path: Path | None,
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
    if calibration_path is not None:
        adapter.calibration_queries = load_npz(calibration_path)[0]
    t0 = time.perf_counter()
    adapter.build(docs)
    build_s = time.perf_counter() - t0
    size_mb = _du_mb(adapter.size_paths())
    rows = []
    for variant in adapter.variants:
        rows_q = [queries.row(i) for i in range(queries.n)]
        for i in range(min(warmup, queries.n)):
            adapter.search_one(variant, *rows_q[i])
        # each query's fastest of ``passes`` passes: a burst from the shared machine in one
        # pass does not count against whichever engine happened to be timed then
        pass_lat = np.empty((passes, queries.n))
        found = np.full((queries.n, K), -1, np.int64)
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_majflt
        for p in range(passes):
            for i, (idx, val) in enumerate(rows_q):
                t = time.perf_counter()
                ids = adapter.search_one(variant, idx, val)
                pass_lat[p, i] = time.perf_counter() - t
                found[i, : len(ids)] = ids[:K]
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_majflt - faults
        lat = pass_lat.min(axis=0)
        t = time.perf_counter()
        found2, how = adapter.search_threads(variant, queries, 2)
        qps2 = queries.n / (time.perf_counter() - t)
        qps2_same = qps2  # engines without a batch API: the same measurement
        if type(adapter).search_threads is not Engine.search_threads:
            t = time.perf_counter()
            adapter.python_threads(variant, queries, 2)
            qps2_same = queries.n / (time.perf_counter() - t)
        rows.append(
            {
                "engine": variant,
                "exact": exactness(variant),
                "build_s": build_s,
                "index_mb": size_mb,
                "peak_rss_mb": _rss_mb(),
                "data_rss_mb": data_rss,
                "mean_ms": 1e3 * float(lat.mean()),
                "pass_mean_ms": (1e3 * pass_lat.mean(axis=1)).tolist(),
                "p50_ms": 1e3 * float(np.percentile(lat, 50)),
                "p99_ms": 1e3 * float(np.percentile(lat, 99)),
                "qps_1thread": queries.n / lat.sum(),
                "qps_2threads": qps2,
                "qps_2threads_how": how,
                "qps_2python_threads": qps2_same,
                "recall@10": recall_at_k(found, docs, queries, exact_scores),
                "recall@10_2threads": recall_at_k(found2, docs, queries, exact_scores),
                # pages read back from disk while timing (a memory-mapped index evicted by the
                # machine shows up here)
                "major_faults_timed": faults,
            }
        )
        if qrels_path is not None:
            relevant = np.load(qrels_path)
            rows[-1]["mrr@10"] = mrr_at_k(found, relevant)
            deep = np.full((queries.n, DEEP_K), -1, np.int64)
            for i, (idx, val) in enumerate(rows_q):  # untimed: the same setting at k = DEEP_K
                ids = adapter.search_one(variant, idx, val, DEEP_K)
                deep[i, : len(ids)] = ids[:DEEP_K]
            rows[-1][f"recall@{DEEP_K}_judged"] = judged_recall(deep, relevant)
        if getattr(adapter, "calibration", None) is not None:
            rows[-1]["calibration"] = adapter.calibration
        print(
            f"[{variant}] build {build_s:.1f}s  mean {rows[-1]['mean_ms']:.3f} ms  "
            f"recall {rows[-1]['recall@10']:.4f}",
            file=sys.stderr,
            flush=True,
        )
    out_path.write_text(json.dumps(rows))
    shutil.rmtree(path, ignore_errors=True)


# ----------------------------------------------------------------------------- driver
def _prepare(
    name: str, docs: SparseVectors, queries: SparseVectors, relevant: np.ndarray | None
) -> dict:
    """Cache the vectors and the exact top-k (scipy) for one dataset, and its judgements
    ((query, document) rows) when it has them; return their paths. Keyed by the vectors'
    content, so changed data never meets a stale exact top-k."""
    content = hashlib.sha256()
    for v in (docs, queries):
        for array in (v.indptr, v.indices, v.values):
            content.update(np.ascontiguousarray(array).data)
    tag = f"{name}-{docs.n}-{queries.n}-{content.hexdigest()[:8]}"
    paths = {k: search_data.CACHE / f"bench-{tag}.{k}.npz" for k in ("docs", "queries", "truth")}
    if relevant is not None:
        paths["qrels"] = search_data.CACHE / f"bench-{tag}.qrels.npy"
        np.save(paths["qrels"], relevant)
    if not all(p.exists() for p in paths.values()):
        save_npz(paths["docs"], docs)
        save_npz(paths["queries"], queries)
        t0 = time.perf_counter()
        ids, scores = exact_topk(term_major(docs), queries)
        np.savez(paths["truth"], ids=ids, scores=scores)
        print(
            f"[{name}] exact top-{K} by scipy in {time.perf_counter() - t0:.1f}s", file=sys.stderr
        )
    return paths


def pkgdesc_dataset(limit: int | None) -> tuple[str, SparseVectors, SparseVectors, dict]:
    """pkgdesc's 926k documents and 1,000 test queries, as ``pkgdesc_vectors.py`` encoded them,
    with the relevant document of each query (for MRR@10)."""
    if not (PKGDESC / "corpus.npz").is_file():
        raise SystemExit(f"{PKGDESC / 'corpus.npz'} is missing: run benchmarks/pkgdesc_vectors.py")
    data = search_data.pkgdesc_with_pairs()
    docs, queries, pairs = data["docs"], data["queries"], data["relevant"]
    if limit is not None:
        docs, queries = docs[: limit * 10], queries[:limit]
        pairs = pairs[(pairs[:, 0] < queries.n) & (pairs[:, 1] < docs.n)]
    meta = json.loads((PKGDESC / "meta.json").read_text())
    how = (
        "../shared/data/pkgdesc (PyPI, npm and Debian package descriptions; queries: Debian "
        f"one-line descriptions, test split) encoded with {meta['model']} in {meta['precision']} "
        "by benchmarks/pkgdesc_vectors.py"
    )
    info = {
        "how": how,
        "relevant": pairs,
        # the approximate engine's recall knob is calibrated on the dev queries (never the test
        # queries it is measured on)
        "calibration_queries": str(PKGDESC / "queries-dev.npz"),
    }
    return "pkgdesc", docs, queries, info


def topical_dataset(
    n_docs: int, n_queries: int, seed: int
) -> tuple[str, SparseVectors, SparseVectors, dict]:
    """``n_docs`` documents generated by :mod:`topical_data` from pkgdesc's vectors (its query
    model fitted on pkgdesc's dev pairs), with ``n_queries`` queries and their relevant document,
    and :data:`TOPICAL_DEV_QUERIES` more (another seed) that calibrate the approximate engine's
    recall knob, as pkgdesc's dev queries do there; cached by size, seed and recipe."""
    settings = topical_data.Settings()
    digest = hashlib.sha256(settings.recipe().encode()).hexdigest()[:8]
    tag = f"topical-pkgdesc-{n_docs}-{n_queries}-{seed}-{digest}"
    paths = {k: search_data.CACHE / f"{tag}.{k}.npz" for k in ("docs", "queries", "dev")}
    relevant_path = search_data.CACHE / f"{tag}.relevant.npy"
    if not (all(p.exists() for p in paths.values()) and relevant_path.exists()):
        source = search_data.pkgdesc_with_pairs()
        fit_queries, fit_pairs = source["fit"]
        model = topical_data.fit_queries(fit_queries, source["docs"], fit_pairs)
        gen = topical_data.TopicalGenerator(source["docs"], model, settings)
        t0 = time.perf_counter()
        docs, parents = gen.documents(n_docs, seed)
        queries, relevant = gen.queries(docs, parents, n_queries, seed)
        save_npz(paths["dev"], gen.queries(docs, parents, TOPICAL_DEV_QUERIES, seed + 1)[0])
        save_npz(paths["docs"], docs)
        save_npz(paths["queries"], queries)
        np.save(relevant_path, relevant)
        print(f"[data] {tag} generated in {time.perf_counter() - t0:.0f}s", file=sys.stderr)
    info = {
        "how": "generated from pkgdesc by benchmarks/topical_data.py: " + settings.recipe(),
        "seed": seed,
        "relevant": np.load(relevant_path),
        "calibration_queries": str(paths["dev"]),
    }
    return f"topical-{n_docs}", load_npz(paths["docs"])[0], load_npz(paths["queries"])[0], info


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


def run_engine(
    engine: str,
    paths: dict,
    timeout_s: int,
    warmup: int,
    passes: int,
    calibration: str | None,
) -> list[dict]:
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
        "--passes",
        str(passes),
    ]
    if "qrels" in paths:
        cmd += ["--qrels", str(paths["qrels"])]
    if calibration is not None:
        cmd += ["--calibration-queries", calibration]
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
        f"Machine: {report['machine']}. Single thread unless stated. QPS (2 thr): 2 threads "
        "through the engine's own batch API where it has one; QPS (2 Py thr): the same "
        "mechanism for every engine, 2 Python threads calling its single-query API. "
        "Recall@10 is against exact scipy brute force (ties at the 10th score count). exact: "
        "yes, no, or quantised (the exact top-k of integer-quantised scores). Peak RSS: the "
        "engine's own fresh process, which also holds the vectors it is built from. MRR@10 and "
        f"R@{DEEP_K} (the share of each query's relevant documents in its top {DEEP_K}, the same "
        "setting asked for k = 100) are against the dataset's judgements, where it has them. "
        f"Latency: each query's fastest of {report.get('passes', 1)} timed passes (the JSON "
        "keeps each pass's mean).\n",
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
            f"p99 ms | QPS (2 thr) | QPS (2 Py thr) | recall@10 | MRR@10 | R@{DEEP_K} |"
        )
        lines.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for r in ds["results"]:
            if "skipped" in r:
                lines.append(f"| {r['engine']} | | skipped: {r['skipped']} | | | | | | | | | | |")
                continue
            lines.append(
                f"| {r['engine']} | {_exact_label(r)} | {_fmt(r['build_s'], 1)} | "
                f"{_fmt(r['index_mb'], 0)} | {_fmt(r['peak_rss_mb'], 0)} | "
                f"{_fmt(r['mean_ms'], 3)} | {_fmt(r['p50_ms'], 3)} | {_fmt(r['p99_ms'], 3)} | "
                f"{_fmt(r['qps_2threads'], 0)} | {_fmt(r.get('qps_2python_threads'), 0)} | "
                f"{_fmt(r['recall@10'], 4)} | {_fmt(r.get('mrr@10'), 4)} | "
                f"{_fmt(r.get(f'recall@{DEEP_K}_judged'), 4)} |"
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
                marker="^" if _exact_label(r) == "no" else "o",
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
    ap.add_argument(
        "--datasets",
        default="real,scaled",
        help="real, pkgdesc, topical (generated from pkgdesc), scaled (the independent-terms "
        "stress test)",
    )
    ap.add_argument("--topical-docs", type=int, default=4_000_000)
    ap.add_argument(
        "--real-sets",
        default=",".join(search_data.SETS),
        help="which sets of ../shared/data make the real collection",
    )
    ap.add_argument("--quick", action="store_true", help="small sizes, a smoke test")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--timeout", type=int, default=3600, help="per engine and dataset, seconds")
    ap.add_argument("--warmup", type=int, default=50)
    ap.add_argument(
        "--passes", type=int, default=3, help="timed passes; a query counts its fastest"
    )
    ap.add_argument("--out", type=Path, default=RESULTS / "search")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--docs", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--queries-file", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--truth", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--qrels", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--calibration-queries", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        worker(
            args.worker,
            args.docs,
            args.queries_file,
            args.truth,
            args.out,
            args.warmup,
            args.passes,
            args.qrels,
            args.calibration_queries,
        )
        return 0
    if args.quick:
        args.scale_docs, args.queries, args.warmup = 20_000, 100, 10
    command = "nice -n 5 .venv/bin/python benchmarks/search.py " + " ".join(
        sys.argv[1:] if argv is None else argv
    )
    print(f"# reproduce: {command.strip()}", flush=True)
    engines = [e for e in args.engines.split(",") if e]
    unknown = set(engines) - set(ADAPTERS)
    if unknown:
        ap.error(f"unknown engines {sorted(unknown)}; choose from {tuple(ADAPTERS)}")

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
    if "pkgdesc" in args.datasets:
        datasets.append(pkgdesc_dataset(args.queries if args.quick else None))
    if "topical" in args.datasets:
        datasets.append(topical_dataset(args.topical_docs, args.queries, args.seed))
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
        "passes": args.passes,
        "versions": _versions(),
        "provenance": provenance(argv),
        "datasets": [],
    }
    for name, docs, queries, info in datasets:
        paths = _prepare(name, docs, queries, info.pop("relevant", None))
        calibration = info.pop("calibration_queries", None)
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
            entry["results"] += run_engine(
                engine, paths, args.timeout, args.warmup, args.passes, calibration
            )
        report["datasets"].append(entry)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.with_suffix(".json").write_text(json.dumps(report, indent=1))
        args.out.with_suffix(".md").write_text(markdown(report))
    plot(report, args.out.with_suffix(".png"))
    print(markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
