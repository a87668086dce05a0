"""Fixtures of the CLI tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sparsearch.index import SparseIndex
from sparsearch.sparse import SparseVectors, save_npz


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory) -> Path:
    """A saved index of 20 random documents (dim 30, ids d0..d19)."""
    root = tmp_path_factory.mktemp("cli-bad-input")
    rng = np.random.default_rng(0)
    vectors = SparseVectors.from_dense(rng.random((20, 30)) * (rng.random((20, 30)) < 0.3))
    save_npz(root / "docs.npz", vectors, [f"d{i}" for i in range(20)])
    index = SparseIndex(root / "idx")
    index.add([f"d{i}" for i in range(20)], vectors)
    index.save()
    return root / "idx"
