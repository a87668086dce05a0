"""Helpers of the distributed-encoding tests: a SciFact subset and bit-exact comparisons."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sparsearch.sparse import SparseVectors

MODEL = "rasyosef/splade-tiny"
SEQ = 64  # max_seq_length: short, to keep the real model fast on 2 shared cores
DOCS = 160


def write_subset(shared_data: Path, path: Path, n: int = DOCS) -> Path:
    """The first ``n`` rows of SciFact's corpus.jsonl, byte for byte, at ``path``."""
    with open(shared_data / "scifact" / "corpus.jsonl", "rb") as fh:
        lines = [fh.readline() for _ in range(n)]
    path.write_bytes(b"".join(lines))
    return path


def gather(shards) -> tuple[list, SparseVectors, list]:
    """Every (id, vector, payload) of a ShardSet, in order, through ``iter_batches``."""
    ids, parts, payloads = [], [], []
    for batch_ids, vectors, batch_payloads in shards.iter_batches(64):
        ids += batch_ids
        parts.append(vectors)
        payloads += batch_payloads
    return ids, SparseVectors.concat(parts), payloads


def assert_same_bits(a: SparseVectors, b: SparseVectors) -> None:
    """The same CSR arrays, bit for bit (float32 weights compared as raw bits)."""
    assert (a.n, a.dim) == (b.n, b.dim)
    assert np.array_equal(a.indptr, b.indptr)
    assert np.array_equal(a.indices, b.indices)
    assert np.array_equal(a.values.view(np.uint32), b.values.view(np.uint32))
