"""`Hits`: the result of a search, as aligned numpy arrays (the faiss contract)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Hits:
    """Top-k results of ``n`` queries.

    ``ids`` is an (n, k) object array of external ids, ``scores`` an (n, k) float32 array, both
    ordered by score (descending), then insertion order. Rows with fewer than k matches are padded
    with id ``None`` and score ``-inf``. ``payloads`` is an (n, k) object array of payload dicts
    (``None`` for padding or documents without payload) when asked for, else ``None``.
    """

    ids: np.ndarray
    scores: np.ndarray
    payloads: np.ndarray | None = None

    def __len__(self) -> int:
        return self.ids.shape[0]

    def row(self, i: int) -> list[tuple[Any, float]]:
        """The real (non-padding) hits of query ``i`` as ``(id, score)`` pairs."""
        return [(doc, float(score)) for doc, score in zip(self.ids[i], self.scores[i], strict=True)
                if doc is not None]
