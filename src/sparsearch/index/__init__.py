"""The embedded engine: an exact, updatable, persistent top-k index over sparse vectors.

Needs only numpy, scipy and numba (never torch). See ``docs/engine.md``. Its result and parameter
types (`Hits`, `SearchParams`, `Filter`) live in the engine-neutral :mod:`sparsearch.search`.
"""

from __future__ import annotations

from sparsearch.index.core import SparseIndex

__all__ = ["SparseIndex"]
