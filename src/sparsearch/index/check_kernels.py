"""One compiled pass over a CSR batch that finds what would break the kernels or the results."""

from __future__ import annotations

import numpy as np

from sparsearch.index.kernel_types import F32, I32, I64, jit

PROBLEMS = (
    "",
    "indptr must start at 0, never decrease and end at the number of non-zeros",
    "term indices must be in 0..dim-1",
    "each row's term indices must ascend without repeats",
    "weights must be finite (no NaN or inf)",
)


@jit
def csr_problem(indptr: I64, indices: I32, values: F32, dim: int) -> int:  # pragma: no cover
    """0 when the arrays are a valid CSR batch over ``dim`` terms, else the index of the first
    problem found in :data:`PROBLEMS`."""
    nnz = indices.size
    if indptr.size == 0 or indptr[0] != 0 or indptr[indptr.size - 1] != nnz or values.size != nnz:
        return 1
    for r in range(indptr.size - 1):
        a, b = indptr[r], indptr[r + 1]
        if a > b or b > nnz:
            return 1
        for j in range(a, b):
            t = indices[j]
            if t < 0 or t >= dim:
                return 2
            if j > a and t <= indices[j - 1]:
                return 3
            if not np.isfinite(values[j]):
                return 4
    return 0
