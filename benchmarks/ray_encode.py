"""Corpus encoding on Ray against one process: documents/s and peak memory per worker.

Data: SciFact's corpus.jsonl (5,183 documents; ``--limit N``: the first N), model
rasyosef/splade-tiny, batch size 32, shards of 256 rows. Four runs, each in its own subprocess
(so peak RSS is its own): ``sparsearch.distributed.encode_corpus`` with

- ``process-1t`` / ``process-2t``: ``workers=0``, the plan run in that one process with 1 / 2
  torch threads;
- ``ray-1w`` / ``ray-2w``: a local Ray with 1 / 2 actor workers of 1 torch thread each.

Same texts, same batch size, same shards, so the same work. Timing boundary, the same for all:
from the start of the first shard to the end of the last (each shard: read its rows from the
JSONL, tokenize, encode, write the Parquet file), as the workers' own clocks report it. Excluded:
model load, Ray start-up, actor start-up, the driver's planning (recorded apart as the end-to-end
seconds). Peak RSS is ``getrusage(RUSAGE_SELF).ru_maxrss`` measured inside each worker process
(the one process for ``process-*``). ``encode_document`` over the whole corpus in one call, with
1 and 2 threads, is recorded too (encode only: no reading, no writing).

    .venv/bin/python benchmarks/ray_encode.py                 # the full corpus (quiet machine)
    .venv/bin/python benchmarks/ray_encode.py --limit 300     # a smoke run

Writes benchmarks/results/ray_encode.{json,md} (``--limit``: benchmarks/out/ray_encode_quick.*).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from provenance import provenance  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
MODEL = "rasyosef/splade-tiny"
RUNS = {"process-1t": (0, 1), "process-2t": (0, 2), "ray-1w": (1, 1), "ray-2w": (2, 1)}
"""name -> (workers, torch threads per worker)"""


def subset(limit: int | None, folder: Path) -> Path:
    """SciFact's corpus.jsonl, or its first ``limit`` lines, in ``folder``."""
    source = SHARED / "data" / "scifact" / "corpus.jsonl"
    with open(source, "rb") as fh:
        lines = fh.readlines()[:limit]
    path = folder / "corpus.jsonl"
    path.write_bytes(b"".join(lines))
    return path


def worker(args: argparse.Namespace) -> None:
    """One run (in its own process): print its measurements as JSON."""
    from sparsearch.distributed.ray_encode import encode_corpus

    workers, threads = RUNS[args.worker]
    started = time.perf_counter()
    shards = encode_corpus(
        MODEL, args.corpus, args.shards, workers=workers, threads_per_worker=threads,
        batch_size=args.batch_size, shard_size=args.shard_size, progress=False,
    )  # fmt: skip
    end_to_end = time.perf_counter() - started
    run = shards.manifest.runs[-1]
    processes = run["processes"]
    window = max(p["last_finished"] for p in processes) - min(p["first_started"] for p in processes)
    out: dict[str, Any] = {
        "run": args.worker,
        "workers": workers,
        "threads_per_worker": threads,
        "documents": shards.count,
        "shards": len(shards.manifest.shards),
        "encode_seconds": round(window, 3),
        "docs_per_s": round(shards.count / window, 1),
        "end_to_end_seconds": round(end_to_end, 3),
        "per_worker": [
            {"shards": p["shards"], "peak_rss_mib": round(p["peak_rss_bytes"] / 2**20, 1)}
            for p in processes
        ],
    }
    if workers == 0:  # the same texts in one encode_document call, for reference
        out["encode_document"] = plain_encode(args, threads)
    print(json.dumps(out))


def plain_encode(args: argparse.Namespace, threads: int) -> dict[str, float]:
    import torch

    from sparsearch.eval.beir import read_jsonl_texts
    from sparsearch.models import SparseEncoder

    torch.set_num_threads(threads)
    _, texts = read_jsonl_texts(args.corpus)
    model = SparseEncoder(MODEL)
    started = time.perf_counter()
    model.encode_document(texts, batch_size=args.batch_size)
    seconds = time.perf_counter() - started
    return {"seconds": round(seconds, 3), "docs_per_s": round(len(texts) / seconds, 1)}


def run_all(args: argparse.Namespace) -> dict[str, Any]:
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        corpus = subset(args.limit, Path(tmp))
        for name in RUNS:
            command = [sys.executable, __file__, "--worker", name, "--corpus", str(corpus)]
            command += ["--shards", str(Path(tmp) / name), "--batch-size", str(args.batch_size)]
            command += ["--shard-size", str(args.shard_size)]
            print(f"running {name} ...", file=sys.stderr, flush=True)
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                raise SystemExit(f"{name} failed:\n{done.stderr[-3000:]}")
            results[name] = json.loads(done.stdout.strip().splitlines()[-1])
    one, two = results["ray-1w"]["docs_per_s"], results["ray-2w"]["docs_per_s"]
    return {
        "provenance": provenance(),
        "model": MODEL,
        "dataset": "scifact corpus" + (f" (first {args.limit})" if args.limit else ""),
        "batch_size": args.batch_size,
        "shard_size": args.shard_size,
        "timing": "first shard start to last shard end (read rows, encode, write Parquet); "
        "model load and Ray/actor start-up excluded",
        "runs": results,
        "ray_2w_over_1w": round(two / one, 2),
        "ray_2w_over_process_2t": round(two / results["process-2t"]["docs_per_s"], 2),
    }


def markdown(report: dict[str, Any]) -> str:
    lines = [
        "# Corpus encoding on Ray vs one process",
        "",
        f"{report['dataset']}, {report['model']}, batch {report['batch_size']}, shards of "
        f"{report['shard_size']} rows. Timing: {report['timing']}.",
        "",
        "| run | workers × threads | docs/s | encode s | end-to-end s | peak RSS per worker (MiB) |",
        "|---|---|---|---|---|---|",
    ]
    for name, r in report["runs"].items():
        rss = ", ".join(str(w["peak_rss_mib"]) for w in r["per_worker"])
        shape = f"{max(r['workers'], 1)} × {r['threads_per_worker']}"
        lines.append(
            f"| {name} | {shape} | {r['docs_per_s']} | {r['encode_seconds']} | "
            f"{r['end_to_end_seconds']} | {rss} |"
        )
    lines += ["", "One `encode_document` call over the same texts (encode only):", ""]
    for name in ("process-1t", "process-2t"):
        plain = report["runs"][name]["encode_document"]
        lines.append(f"- {name[-2]} thread(s): {plain['docs_per_s']} docs/s")
    lines += [
        "",
        f"Ray 2 workers / 1 worker: {report['ray_2w_over_1w']}× (target ≥ 1.7); "
        f"Ray 2 workers / one process with 2 threads: {report['ray_2w_over_process_2t']}× "
        "(target ≥ 1).",
        "",
        f"Commit {report['provenance']['commit']}, {report['provenance']['cpu_model']}, "
        f"`{report['provenance']['command']}`.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=None, help="only the first N documents")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--shard-size", type=int, default=256)
    parser.add_argument("--worker", choices=sorted(RUNS), help=argparse.SUPPRESS)
    parser.add_argument("--corpus", help=argparse.SUPPRESS)
    parser.add_argument("--shards", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_CACHE", str(SHARED / "hf-cache"))
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    report = run_all(args)
    out = REPO / "benchmarks" / ("out/ray_encode_quick" if args.limit else "results/ray_encode")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(report, indent=1) + "\n")
    out.with_suffix(".md").write_text(markdown(report))
    print(markdown(report))


if __name__ == "__main__":
    main()
