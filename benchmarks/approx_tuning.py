"""Build settings of the approximate part, chosen on pkgdesc's dev queries: memory against speed.

For each (block_fraction, summary_energy) of a small grid, the part of pkgdesc's 926k documents
is built (one segment) and every rung of ``approx.LADDER`` is searched with the 500 dev queries
(never the test queries the search benchmark measures), single thread. Reported per build: its
time, the part's size in memory, and per rung recall@10 against our exact search and mean latency
(each query's fastest of ``--passes`` passes); then the fastest rung at recall >= 0.95 and 0.99.

    nice -n 5 .venv/bin/python benchmarks/approx_tuning.py

Writes benchmarks/results/approx_tuning.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pkgdesc_vectors import VECTORS as PKGDESC  # noqa: E402
from provenance import provenance  # noqa: E402

from sparsearch.index import SparseIndex, approx  # noqa: E402
from sparsearch.index.approx import LADDER, ApproxConfig  # noqa: E402
from sparsearch.search import SearchParams  # noqa: E402
from sparsearch.sparse import SparseVectors, load_npz  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
K = 10
GRID = ((0.5, 0.5), (0.25, 0.5), (0.1, 0.5), (0.25, 0.4), (0.1, 0.4))
TARGETS = (0.95, 0.99)


def _top(index: SparseIndex, queries: SparseVectors, params: SearchParams, passes: int):
    """(ids, mean ms): each query alone, its fastest of ``passes`` passes."""
    ids = np.full((queries.n, K), -1, np.int64)
    best = np.full(queries.n, np.inf)
    rows = [queries[i : i + 1] for i in range(queries.n)]
    for _ in range(passes):
        for i, row in enumerate(rows):
            t = time.perf_counter()
            hits = index.search(row, K, params=params)
            best[i] = min(best[i], time.perf_counter() - t)
            row = [-1 if x is None else int(x) for x in hits.ids[0]]
            ids[i, : len(row)] = row
    return ids, 1e3 * float(best.mean())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--passes", type=int, default=2)
    ap.add_argument(
        "--grid",
        default=",".join(f"{f}:{e}" for f, e in GRID),
        help="block_fraction:summary_energy pairs, comma-separated",
    )
    ap.add_argument("--out", type=Path, default=RESULTS / "approx_tuning")
    args = ap.parse_args(argv)
    docs, _ = load_npz(PKGDESC / "corpus.npz")
    queries, _ = load_npz(PKGDESC / "queries-dev.npz")
    index = SparseIndex(dim=docs.dim)
    index.add(np.arange(docs.n), docs)
    del docs
    exact, exact_ms = _top(index, queries, SearchParams(threads=1), args.passes)
    print(f"exact: {exact_ms:.3f} ms", file=sys.stderr, flush=True)
    builds = []
    grid = [tuple(float(x) for x in pair.split(":")) for pair in args.grid.split(",")]
    for fraction, energy in grid:
        config = ApproxConfig(block_fraction=fraction, summary_energy=energy)
        t0 = time.perf_counter()
        index.build_approx(config)
        build_s = time.perf_counter() - t0
        (seg,) = index.snapshot().segments
        rungs = []
        for terms, heap in LADDER:
            params = SearchParams(threads=1, mode="approx", query_terms=terms, heap_factor=heap)
            found, ms = _top(index, queries, params, args.passes)
            rungs.append(
                {
                    "query_terms": terms,
                    "heap_factor": heap,
                    "recall@10": approx._recall(found, exact, (exact >= 0).sum(axis=1)),
                    "mean_ms": ms,
                }
            )
        build = {
            "block_fraction": fraction,
            "summary_energy": energy,
            "build_s": build_s,
            "part_mb": seg.approx.nbytes() / 2**20,
            "summary_entries": int(seg.approx.arrays["summary_blocks"].size),
            "rungs": rungs,
        }
        for target in TARGETS:
            met = [r["mean_ms"] for r in rungs if r["recall@10"] >= target]
            build[f"best_ms@{target}"] = min(met) if met else None
        builds.append(build)
        print(json.dumps({k: v for k, v in build.items() if k != "rungs"}), file=sys.stderr)
    report = {
        "dataset": f"pkgdesc: {seg.n:,} documents, {queries.n} dev queries",
        "exact_mean_ms": exact_ms,
        "passes": args.passes,
        "builds": builds,
        "provenance": provenance(sys.argv[1:] if argv is None else argv),
    }
    args.out.with_suffix(".json").write_text(json.dumps(report, indent=1))
    args.out.with_suffix(".md").write_text(markdown(report))
    print(markdown(report))
    return 0


def markdown(report: dict) -> str:
    lines = [
        "# Approximate part: build settings on pkgdesc's dev queries\n",
        f"Reproduce: `{report['provenance']['command']}` (commit "
        f"{report['provenance']['commit'][:7]}). {report['dataset']}; exact search "
        f"{report['exact_mean_ms']:.3f} ms. Latency: each query's fastest of {report['passes']} "
        "passes, single thread. Recall@10 against our exact search.\n",
        "| block_fraction | summary_energy | build s | part MB | summary entries | "
        "best ms @ recall 0.95 | best ms @ 0.99 |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for b in report["builds"]:
        best = [f"{b[f'best_ms@{t}']:.3f}" if b[f"best_ms@{t}"] else "-" for t in TARGETS]
        lines.append(
            f"| {b['block_fraction']} | {b['summary_energy']} | {b['build_s']:.1f} | "
            f"{b['part_mb']:,.0f} | {b['summary_entries']:,} | {best[0]} | {best[1]} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
