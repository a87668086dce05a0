"""A content-addressed cache of encoded corpora, so that re-running an evaluation is instant.

The key hashes the model's identity (class, name and every weight tensor), the encoding
parameters and the texts themselves: change any of them and the cache misses.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sparsearch.sparse import SparseVectors, load_npz, save_npz


def default_cache_dir() -> Path:
    """``$SPARSEARCH_CACHE`` or ``~/.cache/sparsearch``."""
    return Path(os.environ.get("SPARSEARCH_CACHE", Path.home() / ".cache" / "sparsearch"))


def model_fingerprint(model: Any) -> str:
    """A hash of a model's class, name and weights (every tensor of its ``state_dict``)."""
    import torch

    digest = hashlib.sha256(type(model).__qualname__.encode())
    name = getattr(model, "name_or_path", None) or getattr(model, "model_name_or_path", None)
    digest.update(repr(name).encode())
    for key, tensor in model.state_dict().items():
        digest.update(key.encode())
        digest.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy())
    return digest.hexdigest()


def cache_key(fingerprint: str, texts: Sequence[str], params: Mapping[str, Any]) -> str:
    """The cache key of encoding ``texts`` with a model and parameters."""
    digest = hashlib.sha256(fingerprint.encode())
    digest.update(repr(sorted(params.items())).encode())
    for text in texts:
        digest.update(len(text).to_bytes(8, "little"))
        digest.update(text.encode("utf-8", "surrogatepass"))
    return digest.hexdigest()[:32]


def cached_sparse(
    cache_dir: str | Path | None, key: str, encode: Callable[[], SparseVectors]
) -> SparseVectors:
    """Load ``<cache_dir>/<key>.npz`` or compute it with ``encode()`` and store it (atomically)."""
    path = Path(cache_dir or default_cache_dir()) / f"{key}.sparse.npz"
    if path.is_file():
        return load_npz(path)[0]
    vectors = encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npz")
    save_npz(tmp, vectors)
    tmp.replace(path)
    return vectors


def cached_dense(
    cache_dir: str | Path | None, key: str, encode: Callable[[], np.ndarray]
) -> np.ndarray:
    """Load ``<cache_dir>/<key>.dense.npy`` or compute it with ``encode()`` and store it."""
    path = Path(cache_dir or default_cache_dir()) / f"{key}.dense.npy"
    if path.is_file():
        return np.load(path)
    embeddings = np.ascontiguousarray(encode(), dtype=np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npy")
    np.save(tmp, embeddings)
    tmp.replace(path)
    return embeddings
