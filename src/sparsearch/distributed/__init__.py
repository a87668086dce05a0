"""Corpus encoding on Ray, and the Parquet shard folders it writes (the ``[ray]`` extra).

- :func:`encode_corpus` (in :mod:`.ray_encode`): a BEIR corpus, JSONL or Parquet file encoded by
  Ray actor workers into a shard folder; a killed job resumes from the shards already written.
- :class:`ShardSet`, :func:`is_shard_folder`, :func:`ingest` (in :mod:`.shards`): read a shard
  folder in corpus order, or add it to a ``SparseIndex`` or a ``Collection``;
  ``sparsearch.backends.export`` reads shard folders too.

Importing this package needs neither Ray nor pyarrow; encoding needs both, reading shards pyarrow.
"""

from __future__ import annotations

from typing import Any

from sparsearch.distributed.shards import Shard, ShardSet, ingest, is_shard_folder

__all__ = ["Shard", "ShardSet", "encode_corpus", "ingest", "is_shard_folder"]


def __getattr__(name: str) -> Any:
    if name == "encode_corpus":  # imports Ray's driver-side modules only when first used
        from sparsearch.distributed.ray_encode import encode_corpus

        return encode_corpus
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
