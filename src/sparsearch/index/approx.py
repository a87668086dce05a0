"""Approximate search: per segment, blocked and statically pruned postings with summaries.

``SearchParams(mode="approx", recall=0.95)`` answers each large segment from its
:class:`ApproxPart` (built on first use, or ahead by ``SparseIndex.build_approx``; saved with
the index). The design is Seismic's (clustered blocks with summary vectors, documents scored
exactly from the forward index), with the summaries stored inverted so a query reads only its
own terms' entries (:mod:`sparsearch.index.approx_build`, :mod:`sparsearch.index.approx_kernels`).

The recall knob: each part carries a calibration, the recall@10 against exact search that each
rung of :data:`LADDER` reached on sample queries (documents of the segment as queries, or the
user's own through ``SparseIndex.calibrate_approx``). A search at ``recall=r`` uses, per segment,
the cheapest rung that reached ``r``; when none did, that segment is searched exactly. Experts
set ``query_terms`` and ``heap_factor`` themselves.
"""

from __future__ import annotations

import logging
import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sparsearch.errors import InvalidInputError
from sparsearch.index import approx_build, kernels
from sparsearch.index.approx_kernels import search_approx
from sparsearch.index.kernel_types import F32, I32, I64, U8, U16, U32
from sparsearch.index.segment import Segment
from sparsearch.pruning import prune
from sparsearch.sparse import SparseVectors

log = logging.getLogger(__name__)
VERSION = 1  # of the saved part's layout; a part of another version is rebuilt on demand
ARRAYS = (
    "term_block",
    "block_indptr",
    "block_docs",
    "summary_indptr",
    "summary_terms",
    "summary_entries",
    "summary_blocks",
    "summary_weights",
    "summary_scale",
)
DTYPES: dict[str, tuple[type, ...]] = {
    "term_block": (np.int64,),
    "block_indptr": (np.int64,),
    "block_docs": (np.int32,),
    "summary_indptr": (np.int64,),
    "summary_terms": (np.uint16, np.int32),
    "summary_entries": (np.uint32, np.int64),
    "summary_blocks": (np.uint16, np.int32),
    "summary_weights": (np.uint8,),
    "summary_scale": (np.float32,),
}
MIN_DOCS = 1 << 16  # smaller segments are searched exactly: that is as fast there
MIN_ALLOWED = 0.5  # a filter or deletions leaving less of a segment: searched exactly
#: (query_terms, heap_factor), cheapest first: the rungs the recall knob chooses from
LADDER: tuple[tuple[int, float], ...] = (  # the cost/recall frontier on pkgdesc's dev queries
    (3, 1.0),
    (5, 1.0),
    (5, 0.9),
    (5, 0.8),
    (10, 0.8),
    (20, 0.8),
    (10, 0.7),
    (20, 0.7),
    (20, 0.6),
    (20, 0.5),
    (20, 0.4),
    (32, 0.3),
)
MIN_KEPT = KEPT_PER_MILLION = 3500  # static pruning by default: Seismic's 3,500, per million
CALIBRATION_QUERIES = 100  # documents used as queries when a part is built
CALIBRATION_TERMS = 20  # such a query keeps its document's strongest terms (queries are short)
CALIBRATION_K = 10


@dataclass(frozen=True)
class ApproxConfig:
    """How a part is built: Seismic's knobs, with defaults chosen on pkgdesc's dev queries
    (smaller blocks than Seismic's 10 % and more summary mass than its 40 % read fewer
    documents for the same recall).

    ``postings_per_term``: each term keeps its postings of largest weight, at most this many;
    by default (None) :data:`KEPT_PER_MILLION` per million documents of the segment and at least
    :data:`MIN_KEPT`, so a term keeps the same share of a long list as of a short one (a fixed
    number caps the recall a large segment can reach).
    ``block_fraction``: a term's kept postings form ``ceil(kept * block_fraction)`` blocks.
    ``summary_energy``: a block's summary keeps its largest weights up to this share of its mass,
    and at most ``summary_max_terms`` of them.
    """

    postings_per_term: int | None = None
    block_fraction: float = 0.5
    summary_energy: float = 0.5
    summary_max_terms: int = 1 << 16

    def __post_init__(self) -> None:
        for name in ("postings_per_term", "summary_max_terms"):
            value = getattr(self, name)
            if name == "postings_per_term" and value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidInputError(f"{name} must be an integer >= 1, got {value!r}")
        for name in ("block_fraction", "summary_energy"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise InvalidInputError(f"{name} must be a number in (0, 1], got {value!r}")
            if not 0 < value <= 1:
                raise InvalidInputError(f"{name} must be in (0, 1], got {value!r}")

    def kept(self, n: int) -> int:
        """How many postings each term keeps in a segment of ``n`` documents."""
        if self.postings_per_term is not None:
            return self.postings_per_term
        return max(MIN_KEPT, math.ceil(n * KEPT_PER_MILLION / 1_000_000))


class ApproxPart:
    """One segment's approximate-search arrays, build settings and calibration."""

    def __init__(
        self, arrays: dict[str, np.ndarray], config: ApproxConfig, calibration: tuple[float, ...]
    ) -> None:
        self.arrays = arrays
        self.config = config
        self.calibration = calibration
        # (index root, segment folder, part folder, file records) once written to disk
        self.saved: tuple[Path, str, str, dict[str, dict[str, Any]]] | None = None
        sizes = np.diff(arrays["term_block"])
        self.max_blocks = int(sizes.max()) if sizes.size else 0

    def kernel_arrays(
        self,
    ) -> tuple[I64, I64, I32, I64, U16 | I32, U32 | I64, U16 | I32, U8, float]:
        """The arrays in the search kernel's argument order."""
        a = self.arrays
        return (
            a["term_block"],
            a["block_indptr"],
            a["block_docs"],
            a["summary_indptr"],
            a["summary_terms"],
            a["summary_entries"],
            a["summary_blocks"],
            a["summary_weights"],
            float(a["summary_scale"][0]),
        )

    def rung_for(self, recall: float) -> int | None:
        """The cheapest rung of :data:`LADDER` calibrated at ``recall`` or more (None: none)."""
        for rung, reached in enumerate(self.calibration):
            if reached >= recall:
                return rung
        return None

    def nbytes(self) -> int:
        return sum(a.nbytes for a in self.arrays.values())

    def meta(self) -> dict[str, Any]:
        """What is saved beside the arrays."""
        return {
            "version": VERSION,
            "config": asdict(self.config),
            "ladder": [list(rung) for rung in LADDER],
            "calibration": list(self.calibration),
        }

    @classmethod
    def from_saved(cls, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> ApproxPart | None:
        """A part read back (None when written by another version, so it is rebuilt)."""
        if meta.get("version") != VERSION or meta.get("ladder") != [list(r) for r in LADDER]:
            return None
        return cls(arrays, ApproxConfig(**meta["config"]), tuple(meta["calibration"]))


def build_part(
    fwd: tuple[I64, I32, F32],
    inverted: tuple[I64, np.ndarray, F32],
    config: ApproxConfig,
    threads: int | None = None,
) -> dict[str, np.ndarray]:
    """The arrays of a part for a segment's forward index and postings (``threads`` workers).

    Each term's output is narrowed as soon as it is built (summary weights to one byte of the
    segment's largest weight, rounded up so a summary never falls below its documents), and
    copied into the joined arrays term by term, so the build holds little more than the part.
    """
    fwd_indptr, fwd_indices, fwd_values = fwd
    post_indptr, post_docs, post_vals = inverted
    dim = post_indptr.size - 1
    top = float(fwd_values.max()) if fwd_values.size else 0.0
    scale = np.float32(top / 255 if top > 0 else 1.0)
    term_type = np.uint16 if dim <= 1 << 16 else np.int32
    kept = config.kept(fwd_indptr.size - 1)
    most_blocks = math.ceil(kept * config.block_fraction)
    block_type = np.uint16 if most_blocks <= 1 << 16 else np.int32
    sketch_terms, sketch_weights = approx_build.sketches(
        fwd_indptr, fwd_indices, fwd_values, approx_build.SKETCH
    )
    built: list[tuple[np.ndarray, ...] | None] = [None] * dim

    def work(first: int) -> None:
        start = np.full(dim, -1, np.int64)
        count = np.zeros(dim, np.int64)
        smax = np.zeros(dim, np.float32)
        for t in range(first, dim, workers):  # interleaved: both get long and short lists
            a, b = post_indptr[t], post_indptr[t + 1]
            if a == b:
                continue
            sizes, docs, terms, per_term, blocks, weights = approx_build.term_blocks(
                t,
                post_docs[a:b].astype(np.int64),
                post_vals[a:b],
                kept,
                config.block_fraction,
                config.summary_energy,
                config.summary_max_terms,
                sketch_terms,
                sketch_weights,
                fwd_indptr,
                fwd_indices,
                fwd_values,
                start,
                count,
                smax,
            )
            built[t] = (
                sizes,
                docs,
                terms.astype(term_type),
                per_term,
                blocks.astype(block_type),
                np.minimum(np.ceil(weights / scale), 255).astype(np.uint8),
            )

    workers = max(1, threads or os.cpu_count() or 1)
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(work, range(workers)))
    arrays = _join(built, dim)
    arrays["summary_scale"] = np.array([scale], np.float32)
    return arrays


def _join(built: list[tuple[np.ndarray, ...] | None], dim: int) -> dict[str, np.ndarray]:
    """Per-term outputs (see :func:`build_part`) as one part's CSR arrays; each term's output
    is dropped from ``built`` once copied."""
    n_blocks = np.zeros(dim + 1, np.int64)
    n_pairs = np.zeros(dim + 1, np.int64)
    n_docs = n_entries = 0
    first = next(out for out in built if out is not None) if any(built) else None
    for t, out in enumerate(built):
        if out is not None:
            n_blocks[t + 1] = out[0].size
            n_pairs[t + 1] = out[2].size
            n_docs += out[1].size
            n_entries += out[4].size
    term_block, summary_indptr = np.cumsum(n_blocks), np.cumsum(n_pairs)
    entry_type = np.uint32 if n_entries <= np.iinfo(np.uint32).max else np.int64
    arrays = {
        "term_block": term_block,
        "block_indptr": np.zeros(term_block[-1] + 1, np.int64),
        "block_docs": np.empty(n_docs, np.int32),
        "summary_indptr": summary_indptr,
        # the narrowest types that hold them: a (term, summary term) pair costs 6 bytes, not 12
        "summary_terms": np.empty(summary_indptr[-1], first[2].dtype if first else np.uint16),
        "summary_entries": np.zeros(summary_indptr[-1] + 1, entry_type),
        "summary_blocks": np.empty(n_entries, first[4].dtype if first else np.uint16),
        "summary_weights": np.empty(n_entries, np.uint8),
    }
    doc_at = entry_at = 0
    for t, out in enumerate(built):
        if out is None:
            continue
        sizes, docs, terms, per_term, blocks, weights = out
        built[t] = None
        b0, p0 = term_block[t], summary_indptr[t]
        arrays["block_indptr"][b0 + 1 : b0 + 1 + sizes.size] = doc_at + np.cumsum(sizes)
        arrays["block_docs"][doc_at : doc_at + docs.size] = docs
        arrays["summary_terms"][p0 : p0 + terms.size] = terms
        arrays["summary_entries"][p0 + 1 : p0 + 1 + per_term.size] = entry_at + np.cumsum(per_term)
        arrays["summary_blocks"][entry_at : entry_at + blocks.size] = blocks
        arrays["summary_weights"][entry_at : entry_at + weights.size] = weights
        doc_at += docs.size
        entry_at += blocks.size
    return arrays


def calibration_queries(seg: Segment) -> tuple[SparseVectors, np.ndarray]:
    """Live documents of ``seg`` as queries (their strongest terms), and their ordinals."""
    rng = np.random.default_rng(0)
    lengths = np.diff(seg.fwd_indptr)
    candidates = np.flatnonzero((lengths > 0) & ~seg.deleted)
    picked = np.sort(rng.choice(candidates, min(CALIBRATION_QUERIES, candidates.size), False))
    return prune(seg.vectors(picked), top_k=CALIBRATION_TERMS), picked


def calibrate(
    seg: Segment, part: ApproxPart, queries: SparseVectors | None = None
) -> tuple[float, ...]:
    """Recall@10 against exact search of each rung of :data:`LADDER` on ``seg`` alone.

    ``queries``: the user's sample queries; by default, documents of the segment, each with
    itself left out of both searches (it would be found trivially).
    """
    sources: np.ndarray | None = None
    if queries is None:
        queries, sources = calibration_queries(seg)
    exact, exact_n = _segment_top(seg, queries, sources, None)
    return tuple(
        _recall(_segment_top(seg, queries, sources, (part, rung))[0], exact, exact_n)
        for rung in LADDER
    )


def _segment_top(
    seg: Segment,
    queries: SparseVectors,
    sources: np.ndarray | None,
    approx: tuple[ApproxPart, tuple[int, float]] | None,
) -> tuple[np.ndarray, np.ndarray]:
    """Top-:data:`CALIBRATION_K` slots of each query over ``seg`` alone (exact, or the
    approximate kernel at one rung); query ``i`` may not return ``sources[i]``."""
    k = CALIBRATION_K
    top_scores = np.full((queries.n, k), -np.inf, np.float32)
    top_seq = np.full((queries.n, k), np.iinfo(np.int64).max, np.int64)
    top_slot = np.full((queries.n, k), -1, np.int64)
    top_n = np.zeros(queries.n, np.int64)
    live = (~seg.deleted).view(np.uint8).copy()
    exact_scratch = kernels.scratch(seg.n, seg.dim)
    qi, qv, qp = queries.indices, queries.values, queries.indptr
    for i in range(queries.n):
        if sources is not None:
            live[sources[i]] = 0
        if approx is None:
            kernels.search_segment(
                qp, qi, qv, i, i + 1, *seg.search_arrays(), seg.seq, live, 0,
                top_scores, top_seq, top_slot, top_n, exact_scratch,
            )  # fmt: skip
        else:
            part, (query_terms, heap_factor) = approx
            search_approx(
                qp, qi, qv, i, i + 1, query_terms, heap_factor, *part.kernel_arrays(),
                seg.fwd_indptr, seg.fwd_indices, seg.fwd_values, seg.seq, live, 0,
                top_scores, top_seq, top_slot, top_n, *scratch(seg.n, seg.dim, part.max_blocks),
            )  # fmt: skip
        if sources is not None:
            live[sources[i]] = 1
    return top_slot, top_n


def _recall(found: np.ndarray, exact: np.ndarray, exact_n: np.ndarray) -> float:
    """Mean share of each query's exact top hits that ``found`` holds too."""
    shares = [
        len(set(row.tolist()) & set(want[:n].tolist())) / n
        for row, want, n in zip(found, exact, exact_n.tolist(), strict=True)
        if n
    ]
    return float(np.mean(shares)) if shares else 1.0


_local = threading.local()  # per thread: the approximate kernel's scratch arrays


def scratch(n: int, dim: int, blocks: int) -> tuple[F32, U8, I32, F32]:
    """This thread's scratch of :func:`search_approx` for up to ``n`` documents, ``dim`` terms
    and ``blocks`` blocks per term (zero; the kernel leaves them zero)."""
    held = getattr(_local, "scratch", None)
    if held is None or held[1].size < n or held[0].size < dim or held[3].size < blocks:
        held = _local.scratch = (
            np.zeros(dim, np.float32),
            np.zeros(n, np.uint8),
            np.zeros(n, np.int32),
            np.zeros(blocks, np.float32),
        )
    return held


def eligible(seg: Segment) -> bool:
    """Whether ``seg`` is searched approximately when asked: large enough, and no negative
    weights (summaries would not bound them)."""
    return seg.n >= MIN_DOCS and seg.nonneg


def part_of(seg: Segment, config: ApproxConfig | None = None) -> ApproxPart:
    """``seg``'s part, built (and calibrated) now when it has none or ``config`` differs."""
    with seg.shared_lock():
        part = seg.approx
        if part is None or (config is not None and part.config != config):
            config = config or ApproxConfig()
            log.info("building the approximate part of a segment of %d documents", seg.n)
            arrays = build_part(
                (seg.fwd_indptr, seg.fwd_indices, seg.fwd_values), seg.inverted, config
            )
            part = ApproxPart(arrays, config, ())
            part = ApproxPart(arrays, config, calibrate(seg, part))
            seg.approx = part
        return part


def check_arrays(arrays: dict[str, np.ndarray], n: int, dim: int) -> None:
    """Raise ValueError unless a part read from disk is consistent with its segment (``n``
    documents, ``dim`` terms): the kernel trusts every offset and ordinal in it."""
    for name in ARRAYS:
        array = arrays[name]
        if array.ndim != 1 or array.dtype not in DTYPES[name]:
            raise ValueError(f"approx array {name} has shape {array.shape} and {array.dtype}")

    def offsets(name: str, size: int, total: int) -> np.ndarray:
        ptr = arrays[name].astype(np.int64)
        if ptr.size != size or ptr[0] != 0 or ptr[-1] != total or np.any(np.diff(ptr) < 0):
            raise ValueError(f"approx offsets {name} are inconsistent")
        return ptr

    term_block = offsets("term_block", dim + 1, arrays["block_indptr"].size - 1)
    offsets("block_indptr", term_block[-1] + 1, arrays["block_docs"].size)
    docs = arrays["block_docs"]
    if docs.size and (docs.min() < 0 or docs.max() >= n):
        raise ValueError("approx block documents outside the segment")
    summary_indptr = offsets("summary_indptr", dim + 1, arrays["summary_terms"].size)
    terms = arrays["summary_terms"]
    if terms.size and (terms.min() < 0 or terms.max() >= dim):
        raise ValueError("approx summary terms outside the vocabulary")
    entries = offsets("summary_entries", terms.size + 1, arrays["summary_blocks"].size)
    if arrays["summary_weights"].size != arrays["summary_blocks"].size:
        raise ValueError("approx summary weights and blocks differ in length")
    owner_of_term = np.repeat(np.arange(dim), np.diff(summary_indptr))
    owner = np.repeat(owner_of_term, np.diff(entries))
    if np.any(arrays["summary_blocks"] >= np.diff(term_block)[owner]):
        raise ValueError("approx summary blocks outside their term's blocks")
    if arrays["summary_scale"].size != 1 or not np.isfinite(arrays["summary_scale"][0]):
        raise ValueError("approx summary scale is not one finite number")
