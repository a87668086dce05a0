"""The embedded engine: an exact, updatable, persistent top-k index over sparse vectors.

Needs only numpy, scipy and numba (never torch). See ``docs/engine.md``.
"""

from __future__ import annotations

from sparsearch.index.core import DuplicateIdError, SparseIndex
from sparsearch.index.filters import Filter
from sparsearch.index.hits import Hits

__all__ = ["DuplicateIdError", "Filter", "Hits", "SparseIndex"]
