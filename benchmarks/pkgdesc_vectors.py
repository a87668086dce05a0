"""Encode ../shared/data/pkgdesc (926k real package descriptions) once, resumably, outside the repo.

The million-scale search benchmarks read these vectors instead of encoding again. The corpus is
encoded in chunks of ``--chunk`` documents; each finished chunk is a file, so a killed run
resumes where it stopped. When every chunk is there they are joined into ``corpus.npz`` (vectors
+ ids) beside ``queries-<split>.npz``, and ``meta.json`` records the model, settings, counts and
provenance.

pkgdesc's corpus.jsonl repeats 12 ids (e.g. ``deb:default-jdk`` 9 times); the first row of each
is kept, as ``load_beir(..., duplicates="first")`` does.

Reproduce with:
    HF_HUB_OFFLINE=1 HF_HUB_CACHE=../shared/hf-cache .venv/bin/python benchmarks/pkgdesc_vectors.py
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from provenance import provenance
from tqdm.auto import tqdm

from sparsearch.eval.beir import load_beir
from sparsearch.sparse import SparseVectors, load_npz, save_npz

MODEL = "rasyosef/splade-tiny"
DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "pkgdesc"
CACHE = Path(os.environ.get("SPARSEARCH_BENCH_CACHE", Path.home() / ".cache" / "sparsearch-bench"))
VECTORS = CACHE / "pkgdesc-splade-tiny"  # where the benchmarks read the vectors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--out", type=Path, default=VECTORS)
    parser.add_argument("--chunk", type=int, default=20_000, help="documents per resumable chunk")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--precision", choices=["float32", "bfloat16"], default="float32")
    args = parser.parse_args()

    from sparsearch.models import SparseEncoder

    encoder = SparseEncoder(MODEL)
    args.out.mkdir(parents=True, exist_ok=True)
    options = {"batch_size": args.batch_size, "precision": args.precision}
    for split in ("dev", "test"):
        target = args.out / f"queries-{split}.npz"
        if not target.is_file():
            queries = load_beir(args.data, split, duplicates="first").queries
            vectors = encoder.encode_query(list(queries.values()), **options)
            save_npz(target, vectors, list(queries))

    dataset = load_beir(args.data, "test", duplicates="first")
    ids = list(dataset.corpus)
    texts = list(dataset.doc_texts().values())
    chunks = args.out / "chunks"
    chunks.mkdir(exist_ok=True)
    start = time.perf_counter()
    starts = range(0, len(texts), args.chunk)
    for first in tqdm(starts, desc="pkgdesc chunks", unit="chunk"):
        path = chunks / f"{first:08d}.npz"
        if path.is_file():
            continue
        part = encoder.encode_document(texts[first : first + args.chunk], **options)
        tmp = path.with_suffix(".tmp.npz")
        save_npz(tmp, part, ids[first : first + args.chunk])
        tmp.replace(path)
    parts = [load_npz(chunks / f"{first:08d}.npz")[0] for first in starts]
    corpus = SparseVectors.concat(parts)
    save_npz(args.out / "corpus.npz", corpus, ids)
    meta = {
        "model": MODEL,
        "precision": args.precision,
        "batch_size": args.batch_size,
        "documents": corpus.n,
        "mean_active_dims": corpus.sparsity()["active_dims"],
        "seconds_this_run": round(time.perf_counter() - start, 1),
        "provenance": provenance(),
    }
    (args.out / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    print(json.dumps(meta, indent=2))


if __name__ == "__main__":
    main()
