"""Structural checks of a segment's arrays: what the compiled kernels assume and never re-check.

Checksums prove a file is the one that was written; these checks prove the arrays fit together
(pointers ascend and end where their arrays end, ordinals and terms are in range), so a file
damaged while checksums were off gives a named error instead of a crash. Vectorised numpy, O(size).
"""

from __future__ import annotations

import numpy as np

from sparsearch.errors import IndexCorruptError
from sparsearch.index.build_kernels import RANGE_BITS
from sparsearch.index.payload_columns import PayloadColumns


def _pointers(name: str, ptr: np.ndarray, size: int, *targets: np.ndarray) -> None:
    """``ptr`` has ``size`` entries, starts at 0, never descends and ends at each target's length."""
    if ptr.ndim != 1 or ptr.size != size:
        raise IndexCorruptError(f"{name}: {ptr.size} entries, expected {size}")
    if ptr[0] != 0 or (ptr.size > 1 and bool((np.diff(ptr) < 0).any())):
        raise IndexCorruptError(f"{name}: pointers do not ascend from 0")
    for target in targets:
        if target.ndim != 1 or int(ptr[-1]) != target.size:
            raise IndexCorruptError(
                f"{name}: ends at {int(ptr[-1])}, its array holds {target.size}"
            )


def _within(name: str, values: np.ndarray, stop: int) -> None:
    if values.size and (int(values.min()) < 0 or int(values.max()) >= stop):
        raise IndexCorruptError(f"{name}: values outside 0..{stop - 1}")


def validate_arrays(arrays: dict[str, np.ndarray], n: int, dim: int, deleted: np.ndarray) -> None:
    """Raise :class:`IndexCorruptError` naming the first array that breaks the segment layout."""
    _pointers(
        "fwd_indptr", arrays["fwd_indptr"], n + 1, arrays["fwd_indices"], arrays["fwd_values"]
    )
    _within("fwd_indices", arrays["fwd_indices"], dim)
    for name in ("seq",):
        if arrays[name].shape != (n,):
            raise IndexCorruptError(f"{name}: shape {arrays[name].shape}, expected ({n},)")
    if deleted.shape != (n,):
        raise IndexCorruptError(f"tombstones: shape {deleted.shape}, expected ({n},)")
    _pointers(
        "post_indptr", arrays["post_indptr"], dim + 1, arrays["post_docs"], arrays["post_vals"]
    )
    _within("post_docs", arrays["post_docs"], n)
    for name in ("term_max", "term_scale"):
        if arrays[name].shape != (dim,):
            raise IndexCorruptError(f"{name}: shape {arrays[name].shape}, expected ({dim},)")
    _pointers("top_indptr", arrays["top_indptr"], dim + 1, arrays["top_docs"])
    _within("top_docs", arrays["top_docs"], n)
    n_ranges = max(1, (n + (1 << RANGE_BITS) - 1) >> RANGE_BITS)
    blk_indptr = arrays["blk_indptr"]
    _pointers("blk_indptr", blk_indptr, n_ranges * dim + 1, arrays["blk_docs"], arrays["blk_imps"])
    last = int(blk_indptr[(n_ranges - 1) * dim])  # the last range may be shorter than 2**16
    _within(
        "blk_docs",
        np.asarray(arrays["blk_docs"][last:]),
        max(1, n - ((n_ranges - 1) << RANGE_BITS)),
    )


def validate_payloads(columns: PayloadColumns) -> None:
    """The payload text and typed columns fit together (offsets ascend and end at their data,
    keyword codes name a word, list offsets end at their elements)."""
    n = columns.n
    _pointers("payload_offsets", columns.text.offsets, n + 1, columns.text.data)
    for name, column in columns.columns.items():
        arrays = column.arrays
        if "words_offsets" in arrays:
            words = arrays["words_offsets"]
            _pointers(f"payload field {name!r} words", words, words.size, arrays["words_data"])
            if arrays["codes"].size and (
                int(arrays["codes"].min()) < -1 or int(arrays["codes"].max()) >= words.size - 1
            ):
                raise IndexCorruptError(f"payload field {name!r}: codes outside its words")
        if "offsets" in arrays:
            _pointers(f"payload field {name!r}", arrays["offsets"], n + 1, column.elements)
