"""sparsearch: learned sparse retrieval end to end.

The engine (`SparseIndex`) and the data type (`SparseVectors`) need only numpy, scipy and numba;
the encoders, training and hybrid layers import torch lazily, when first used.
"""

from __future__ import annotations

import importlib
from typing import Any

from sparsearch.errors import (
    CollectionExistsError,
    CollectionNotFoundError,
    ConfigError,
    DimensionMismatchError,
    DuplicateIdError,
    FilterError,
    IndexCorruptError,
    IndexLockedError,
    IndexNotFoundError,
    InvalidInputError,
    InvalidVectorsError,
    ModelLoadError,
    ModelMismatchError,
    SparsearchError,
    UnknownIdError,
    VocabularyMismatchError,
)
from sparsearch.run import Run
from sparsearch.search import Filter, HasId, Hits, IsNull, Match, Range, Searcher, SearchParams
from sparsearch.sparse import SparseVectors, TermStats, load_npz, save_npz

__version__ = "0.1.0"

# Public names that live in heavier modules, imported on first access.
_LAZY = {
    "Client": "sparsearch.server.client",
    "Collection": "sparsearch.collection",
    "SparseEncoder": "sparsearch.models",
    "SparseIndex": "sparsearch.index",
}

__all__ = [
    "CollectionExistsError",
    "CollectionNotFoundError",
    "ConfigError",
    "DimensionMismatchError",
    "DuplicateIdError",
    "FilterError",
    "IndexCorruptError",
    "IndexLockedError",
    "IndexNotFoundError",
    "InvalidInputError",
    "InvalidVectorsError",
    "ModelLoadError",
    "ModelMismatchError",
    "Filter",
    "HasId",
    "Hits",
    "IsNull",
    "Match",
    "Range",
    "Run",
    "SearchParams",
    "Searcher",
    "SparsearchError",
    "SparseVectors",
    "TermStats",
    "UnknownIdError",
    "VocabularyMismatchError",
    "load_npz",
    "save_npz",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'sparsearch' has no attribute {name!r}")
