"""What an export reads: an index, a collection, or encoded shards, as one stream of batches."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sparsearch.backends.base import Batch, Fields
from sparsearch.errors import InvalidInputError
from sparsearch.sparse import SparseVectors


@dataclass
class Source:
    """Documents to export: their vector space, payload fields, count, and a way to stream them.

    ``batches(batch_size)`` yields :data:`~sparsearch.backends.base.Batch` tuples, every live
    document once, from one consistent state."""

    dim: int
    vocab: Sequence[str] | None
    fields: Fields
    count: int
    batches: Callable[[int], Iterator[Batch]]
    close: Callable[[], None] = field(default=lambda: None)


def as_source(obj: Any, *, with_text: bool = False) -> Source:
    """A :class:`Source` over a ``SparseIndex``, a ``Collection``, a shard folder written by
    :mod:`sparsearch.distributed`, or the path of any of them (opened read-only, closed by
    ``Source.close``). ``with_text``: a collection's stored texts go in each payload as ``text``."""
    from sparsearch.collection import Collection
    from sparsearch.distributed import ShardSet
    from sparsearch.index import SparseIndex

    if isinstance(obj, Source):
        return obj
    if isinstance(obj, Collection):
        return _collection_source(obj, with_text)
    if isinstance(obj, SparseIndex):
        return _index_source(obj)
    if isinstance(obj, ShardSet):
        return _shard_source(obj)
    if isinstance(obj, (str, os.PathLike)):
        return _path_source(Path(obj), with_text)
    raise InvalidInputError(
        "export reads a SparseIndex, a Collection, a shard folder or the path of one, "
        f"got {type(obj).__name__}"
    )


def _path_source(path: Path, with_text: bool) -> Source:
    from sparsearch.collection import Collection
    from sparsearch.collection.config import CONFIG_FILE
    from sparsearch.distributed.shards import ShardSet, is_shard_folder
    from sparsearch.index import SparseIndex

    if (path / CONFIG_FILE).is_file():
        collection = Collection.open(path)
        source = _collection_source(collection, with_text)
        source.close = collection.close
        return source
    if is_shard_folder(path):
        return _shard_source(ShardSet(path, with_text=with_text))
    index = SparseIndex.open(path)
    source = _index_source(index)
    source.close = index.close
    return source


def _shard_source(shards: Any) -> Source:
    return Source(shards.dim, shards.vocab, shards.fields(), shards.count, shards.iter_batches)


def _index_source(index: Any) -> Source:
    reader = index.pinned()
    if reader.dim is None:
        raise InvalidInputError(f"{index.path or 'the index'} is empty: nothing to export")
    return Source(
        reader.dim, reader.vocab, reader.payload_fields(), len(reader), reader.iter_batches
    )


def _collection_source(collection: Any, with_text: bool) -> Source:
    from sparsearch.collection import stored

    reader = collection.index.pinned()
    vocab = collection.sparse_model.vocab
    dim = reader.dim if reader.dim is not None else len(vocab)
    fields = {
        name: kinds for name, kinds in reader.payload_fields().items() if name != stored.RESERVED
    }
    if with_text:
        fields["text"] = {"keyword"}

    def batches(batch_size: int) -> Iterator[Batch]:
        for ids, vectors, rows in reader.iter_batches(batch_size):
            payloads = []
            for row in rows:
                payload = stored.user_payload(row)
                text = stored.text_of(row) if with_text else None
                if text is not None:
                    payload = {**(payload or {}), "text": text}
                payloads.append(payload)
            named = SparseVectors(
                vectors.indptr, vectors.indices, vectors.values, dim, vocab, validate=False
            )
            yield ids, named, payloads

    return Source(dim, vocab, fields, len(reader), batches)
