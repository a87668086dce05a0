"""Similarity functions the losses score with, by name."""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor
from torch.nn import functional as F

from sparsearch.errors import ConfigError


def dot_matrix(a: Tensor, b: Tensor) -> Tensor:
    """All-pairs dot products: (n, d) × (m, d) → (n, m)."""
    return a @ b.T


def cos_matrix(a: Tensor, b: Tensor) -> Tensor:
    """All-pairs cosine similarities."""
    return F.normalize(a, dim=-1) @ F.normalize(b, dim=-1).T


def dot_pairwise(a: Tensor, b: Tensor) -> Tensor:
    """Row-wise dot products: (n, d) × (n, d) → (n,)."""
    return (a * b).sum(-1)


def cos_pairwise(a: Tensor, b: Tensor) -> Tensor:
    """Row-wise cosine similarities."""
    return F.cosine_similarity(a, b, dim=-1)


def angle_pairwise(a: Tensor, b: Tensor) -> Tensor:
    """Row-wise AnglE similarity |cos + sin| (dimension i paired with i + d/2), after L2 norm."""
    if a.shape[1] % 2:
        a, b = F.pad(a, (0, 1)), F.pad(b, (0, 1))
    a, b = F.normalize(a, dim=1), F.normalize(b, dim=1)
    a_re, a_im = a.chunk(2, dim=1)
    b_re, b_im = b.chunk(2, dim=1)
    return ((a * b).sum(1) + (a_im * b_re - a_re * b_im).sum(1)).abs()


_MATRIX = {"dot": dot_matrix, "cosine": cos_matrix}
_PAIRWISE = {"dot": dot_pairwise, "cosine": cos_pairwise}


def matrix_fn(name: str) -> Callable[[Tensor, Tensor], Tensor]:
    """The all-pairs similarity called `name` ('dot' or 'cosine')."""
    if name not in _MATRIX:
        raise ConfigError(f"unknown similarity {name!r}; use one of {sorted(_MATRIX)}")
    return _MATRIX[name]


def pairwise_fn(name: str) -> Callable[[Tensor, Tensor], Tensor]:
    """The row-wise similarity called `name` ('dot' or 'cosine')."""
    if name not in _PAIRWISE:
        raise ConfigError(f"unknown similarity {name!r}; use one of {sorted(_PAIRWISE)}")
    return _PAIRWISE[name]
