"""How fast can exact SPLADE encoding of a BERT-base-sized MLM get? The transformer body's share.

At exact parity both libraries run the same transformer body (same torch code, same float32
arithmetic); only the MLM head and the pooling differ. So sentence-transformers' time divided by
the body's time alone bounds any exact implementation's speed-up. This script measures, in one
process, on the same SciFact documents (sorted by length, batch 32, 2 threads; each run warmed
up on one batch first): sentence-transformers' ``encode_document``, ours, and the body alone, and
writes JSON + markdown.

    python benchmarks/encode_ceiling.py --docs 256
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from encode import RESULTS, bert_base, scifact_texts
from provenance import provenance


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=RESULTS / "encode_ceiling")
    args = parser.parse_args(argv)
    command = "python benchmarks/encode_ceiling.py " + " ".join(
        sys.argv[1:] if argv is None else argv
    )
    print(f"# reproduce: {command.strip()}", flush=True)

    import torch
    from sentence_transformers import SparseEncoder as STEncoder
    from transformers import AutoTokenizer, BertForMaskedLM

    from sparsearch.models import SparseEncoder

    torch.set_num_threads(args.threads)
    texts = sorted(scifact_texts(args.docs), key=len)
    with tempfile.TemporaryDirectory() as tmp:
        path = bert_base(Path(tmp))
        tokenizer = AutoTokenizer.from_pretrained(path)
        body = BertForMaskedLM.from_pretrained(path).bert.eval()
        reference, ours = STEncoder(path, device="cpu"), SparseEncoder(path)

        def run_body(texts: list[str]) -> None:
            with torch.inference_mode():
                for i in range(0, len(texts), args.batch_size):
                    body(
                        **tokenizer(
                            texts[i : i + args.batch_size],
                            padding=True,
                            truncation=True,
                            max_length=ours.max_seq_length,
                            return_tensors="pt",
                        )
                    )

        runs = {
            "sentence-transformers": lambda texts: reference.encode_document(
                texts, batch_size=args.batch_size
            ),
            "sparsearch float32": lambda texts: ours.encode_document(
                texts, batch_size=args.batch_size
            ),
            "transformer body alone": run_body,
        }
        seconds = {}
        for name, run in runs.items():
            run(texts[-args.batch_size :])  # warm-up on the longest batch: one-time costs
            start = time.perf_counter()
            run(texts)
            seconds[name] = time.perf_counter() - start
            print(f"{name}: {seconds[name]:.1f} s", flush=True)
    st, body_s = seconds["sentence-transformers"], seconds["transformer body alone"]
    report = {
        "command": command.strip(),
        "docs": len(texts),
        "batch_size": args.batch_size,
        "threads": args.threads,
        "max_seq_length": ours.max_seq_length,
        "seconds": seconds,
        "body_share_of_sentence_transformers": body_s / st,
        "exact_speedup_ceiling": st / body_s,
        "sparsearch_speedup": st / seconds["sparsearch float32"],
        "provenance": provenance(argv),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(report, indent=1))
    table = "\n".join(
        [
            f"Command: `{command.strip()}`",
            "",
            f"BERT-base-sized MLM (random weights), {len(texts)} SciFact documents, batch "
            f"{args.batch_size}, {args.threads} threads, one process.",
            "",
            "| run | seconds | docs/s |",
            "|---|---:|---:|",
            *(f"| {name} | {s:.1f} | {len(texts) / s:.2f} |" for name, s in seconds.items()),
            "",
            f"The body is {100 * body_s / st:.0f}% of sentence-transformers' time: an exact encoder "
            f"that spent nothing on the head and pooling would be {st / body_s:.2f}× faster. "
            f"Ours: {st / seconds['sparsearch float32']:.2f}×.",
            "",
        ]
    )
    args.out.with_suffix(".md").write_text(table)
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
