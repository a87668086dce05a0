"""Encoding throughput and memory: sparsearch vs sentence-transformers, side by side.

Each library runs in its own subprocess (so peak RSS is its own), on the same texts, with the same
batch size and thread count; the parent compares the two outputs (max |Δ|, same non-zero set).

    python benchmarks/encode.py                       # SciFact corpus + BERT-base-sized MLM
    python benchmarks/encode.py --docs 500 --skip-bert
    python benchmarks/encode.py --bf16 --docs 1000 --out benchmarks/results/encode_bf16
                               # also ours in bfloat16, with its nDCG@10 cost on the whole corpus
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from provenance import provenance

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
RESULTS = REPO / "benchmarks" / "results"


def scifact_texts(limit: int | None) -> list[str]:
    with open(SHARED / "data" / "scifact" / "corpus.jsonl", encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    return [(r["title"] + " " + r["text"]).strip() for r in rows[:limit]]


def worker(args: argparse.Namespace) -> None:
    """Load one library, encode, write the vectors and the measurements."""
    import torch

    torch.set_num_threads(args.threads)
    texts = scifact_texts(args.docs)
    from sparsearch.sparse import SparseVectors, save_npz

    if args.worker == "ours":
        from sparsearch.models import SparseEncoder

        model = SparseEncoder(args.model)
        start, cpu = time.perf_counter(), time.process_time()
        vectors = model.encode_document(texts, batch_size=args.batch_size, precision=args.precision)
    else:
        from sentence_transformers import SparseEncoder

        model = SparseEncoder(args.model)
        start, cpu = time.perf_counter(), time.process_time()
        out = model.encode_document(texts, batch_size=args.batch_size)
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu
    if args.worker != "ours":
        vectors = SparseVectors.from_torch(out)
    save_npz(args.vectors, vectors)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    Path(args.report).write_text(
        json.dumps(
            {
                "seconds": seconds,
                "docs_per_s": len(texts) / seconds,
                "cpu_seconds": cpu_seconds,
                "docs_per_cpu_s": len(texts) / cpu_seconds,
                "peak_rss_mb": peak_mb,
            }
        )
    )


#: report key -> (worker, precision) of each side of a comparison
SIDES = {
    "sentence-transformers": ("st", "float32"),
    "sparsearch": ("ours", "float32"),
    "sparsearch-bfloat16": ("ours", "bfloat16"),
}


def run_pair(
    model: str, docs: int | None, batch_size: int, threads: int, tmp: Path, bf16: bool = False
) -> dict:
    """ST and ours (and ours in bfloat16) on the same texts, each in its own subprocess."""
    from sparsearch.sparse import load_npz

    row: dict = {
        "model": model,
        "docs": len(scifact_texts(docs)),
        "batch_size": batch_size,
        "threads": threads,
    }
    dense = {}
    for lib in list(SIDES)[: 3 if bf16 else 2]:
        tag, precision = SIDES[lib]
        cmd = [
            sys.executable,
            __file__,
            "--worker",
            tag,
            "--model",
            model,
            "--precision",
            precision,
            "--batch-size",
            str(batch_size),
            "--threads",
            str(threads),
            "--vectors",
            str(tmp / f"{lib}.npz"),
            "--report",
            str(tmp / f"{lib}.json"),
        ]
        if docs is not None:
            cmd += ["--docs", str(docs)]
        subprocess.run(cmd, check=True, env={**os.environ, "TOKENIZERS_PARALLELISM": "false"})
        row[lib] = json.loads((tmp / f"{lib}.json").read_text())
        dense[lib] = load_npz(tmp / f"{lib}.npz")[0].to_dense()
        print(f"  {lib}: {row[lib]}", flush=True)
    st = dense.pop("sentence-transformers")
    for lib, ours in dense.items():
        suffix = "" if lib == "sparsearch" else "_bf16"
        row["max_abs_diff" + suffix] = float(np.abs(ours - st).max())
        row["same_nonzero_set" + suffix] = bool(np.array_equal(ours != 0, st != 0))
        both, either = np.sum((ours != 0) & (st != 0)), np.sum((ours != 0) | (st != 0))
        row["nonzero_jaccard" + suffix] = float(both / either)
        row["speedup" + suffix] = (
            row[lib]["docs_per_s"] / row["sentence-transformers"]["docs_per_s"]
        )
    row["memory_ratio"] = (
        row["sparsearch"]["peak_rss_mb"] / row["sentence-transformers"]["peak_rss_mb"]
    )
    return row


def scifact_ndcg(model: str, batch_size: int) -> dict[str, float]:
    """nDCG@10 on SciFact test (whole corpus, exact search) of ours in float32 and in bfloat16."""
    from sparsearch.eval import evaluate
    from sparsearch.models import SparseEncoder

    encoder = SparseEncoder(model)
    return {
        precision: evaluate(
            encoder,
            SHARED / "data" / "scifact",
            k=10,
            batch_size=batch_size,
            use_cache=False,
            show_progress_bar=False,
            precision=precision,
        )["ndcg@10"]
        for precision in ("float32", "bfloat16")
    }


def bert_base(tmp: Path) -> str:
    """A BERT-base-sized MLM (12 layers, hidden 768) with random weights, saved with the
    splade-tiny tokenizer so both libraries load the very same folder."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForMaskedLM

    torch.manual_seed(0)
    path = tmp / "bert-base-random"
    BertForMaskedLM(BertConfig()).save_pretrained(path)
    AutoTokenizer.from_pretrained("rasyosef/splade-tiny").save_pretrained(path)
    return str(path)


def markdown(rows: list[dict], command: str, load: list[float]) -> str:
    lines = [
        f"Command: `{command}`",
        "",
        f"Machine load average (1 min) before / after: {load[0]:.1f} / {load[1]:.1f}. "
        "Wall-clock docs/s suffers from other processes; docs per CPU-second less so.",
        "",
        "| model | docs | batch | threads | ST docs/s | ours docs/s | speed-up | "
        "CPU-time speed-up | ST peak RSS MB | ours peak RSS MB | memory ratio | "
        "max abs Δ | same non-zeros |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        st, us = r["sentence-transformers"], r["sparsearch"]
        lines.append(
            f"| {r['label']} | {r['docs']} | {r['batch_size']} | {r['threads']} | "
            f"{st['docs_per_s']:.2f} | {us['docs_per_s']:.2f} | {r['speedup']:.2f}× | "
            f"{us['docs_per_cpu_s'] / st['docs_per_cpu_s']:.2f}× | "
            f"{st['peak_rss_mb']:.0f} | {us['peak_rss_mb']:.0f} | {r['memory_ratio']:.2f} | "
            f"{r['max_abs_diff']:.2e} | {r['same_nonzero_set']} |"
        )
    fast = [r for r in rows if "sparsearch-bfloat16" in r]
    if fast:
        lines += [
            "",
            'Optional `precision="bfloat16"` (not exact; the default stays float32):',
            "",
            "| model | docs | ours bf16 docs/s | vs ST | vs ours float32 | max abs Δ vs ST | "
            "non-zero Jaccard vs ST | nDCG@10 float32 | nDCG@10 bf16 |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for r in fast:
            ndcg = {k: f"{v:.4f}" for k, v in r.get("ndcg@10", {}).items()}  # splade-tiny only
            lines.append(
                f"| {r['label']} | {r['docs']} | {r['sparsearch-bfloat16']['docs_per_s']:.2f} | "
                f"{r['speedup_bf16']:.2f}× | {r['speedup_bf16'] / r['speedup']:.2f}× | "
                f"{r['max_abs_diff_bf16']:.2e} | {r['nonzero_jaccard_bf16']:.4f} | "
                f"{ndcg.get('float32', '–')} | {ndcg.get('bfloat16', '–')} |"
            )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=None, help="SciFact docs (default: all)")
    parser.add_argument("--bert-docs", type=int, default=500)
    parser.add_argument("--skip-bert", action="store_true")
    parser.add_argument(
        "--bf16",
        action="store_true",
        help="also ours with precision='bfloat16' (and its SciFact nDCG@10 cost)",
    )
    parser.add_argument("--precision", default="float32", help=argparse.SUPPRESS)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=RESULTS / "encode")
    parser.add_argument("--worker", choices=["ours", "st"], help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    parser.add_argument("--vectors", help=argparse.SUPPRESS)
    parser.add_argument("--report", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_CACHE", str(SHARED / "hf-cache"))
    command = "python " + " ".join(shlex.quote(a) for a in sys.argv)
    print(command, flush=True)
    rows = []
    load = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        print("rasyosef/splade-tiny on SciFact", flush=True)
        row = run_pair(
            "rasyosef/splade-tiny", args.docs, args.batch_size, args.threads, tmp, args.bf16
        )
        if args.bf16:  # always on the whole corpus (also with --docs): its quality cost
            row["ndcg@10"] = scifact_ndcg("rasyosef/splade-tiny", args.batch_size)
            print(f"  nDCG@10: {row['ndcg@10']}", flush=True)
        rows.append({"label": "rasyosef/splade-tiny", **row})
        if not args.skip_bert:
            print("BERT-base-sized MLM (random weights)", flush=True)
            row = run_pair(
                bert_base(tmp), args.bert_docs, args.batch_size, args.threads, tmp, args.bf16
            )
            rows.append({**row, "label": "BERT-base MLM (random)", "model": "bert-base-random"})
    load.append(os.getloadavg()[0])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(
        json.dumps(
            {"command": command, "load_average": load, "rows": rows, "provenance": provenance()},
            indent=2,
        )
    )
    table = markdown(rows, command, load)
    args.out.with_suffix(".md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
