"""The server's settings: where collections live, who may call, and how much one request may ask."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from sparsearch.errors import ConfigError

API_KEY_ENV = "SPARSEARCH_API_KEY"


@dataclass(frozen=True)
class Settings:
    """``root``: the folder of collections (one sub-folder each). ``api_key``: required on every
    request except ``/healthz`` when set. Limits: ``max_body_bytes`` (413), ``max_batch`` points
    or searches per request, ``max_k``, ``max_text_chars`` (422). ``batch_window_ms``: how long
    a text query waits for others to share its forward pass; ``max_query_batch`` caps that batch."""

    root: Path
    api_key: str | None = None
    max_body_bytes: int = 32 * 1024 * 1024
    max_batch: int = 1024
    max_k: int = 1000
    max_text_chars: int = 100_000
    batch_window_ms: float = 2.0
    max_query_batch: int = 64

    def __post_init__(self) -> None:
        for name in ("max_body_bytes", "max_batch", "max_k", "max_text_chars", "max_query_batch"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")
        if not 0 <= self.batch_window_ms <= 1000:
            raise ConfigError(f"batch_window_ms must be in [0, 1000], got {self.batch_window_ms}")
        if self.api_key is not None and len(self.api_key) < 8:
            raise ConfigError("an API key must have at least 8 characters")


def read_api_key(path: str | os.PathLike[str] | None) -> str | None:
    """The API key from a file (first line, stripped), else from ``$SPARSEARCH_API_KEY``."""
    if path is not None:
        try:
            key = Path(path).read_text(encoding="utf-8").strip()
        except OSError as err:
            raise ConfigError(f"cannot read the API key file {path}: {err}") from None
        if not key:
            raise ConfigError(f"the API key file {path} is empty")
        return key
    return os.environ.get(API_KEY_ENV) or None
