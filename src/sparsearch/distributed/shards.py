"""Encoded shards on disk: Parquet files of sparse vectors, one folder per corpus.

A shard folder holds ``manifest.json`` (see :mod:`.manifest`) and ``shard-NNNNN.parquet`` files,
each covering a fixed range of input rows, with the columns

- ``id``: string or int64;
- ``indices``: list<int32> and ``values``: list<float32>, one sparse vector per row (indices
  ascending);
- optionally ``text`` (string) and ``payload`` (a JSON object as text, null for none);

and the file-level metadata key ``sparsearch.shard`` (JSON: shard number, rows, model
fingerprint, dim). Each file is written to a temporary name, fsynced and renamed, so a file that
exists is whole; Parquet page checksums are written and verified on read, and any unreadable or
inconsistent file raises :class:`~sparsearch.errors.IndexCorruptError` naming it.

:class:`ShardSet` reads a complete folder in corpus order (what :mod:`sparsearch.backends` exports
from) and :func:`ingest` adds it to a ``SparseIndex`` or a ``Collection``. Vectors are stored as
given: no vocabulary per file (the manifest has it), no dense vectors.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sparsearch.distributed.manifest import Manifest, is_manifest_folder, read_manifest
from sparsearch.errors import IndexCorruptError, InvalidInputError, ModelMismatchError
from sparsearch.index.durable_files import fsync_dir
from sparsearch.sparse import SparseVectors

META_KEY = b"sparsearch.shard"
Payload = dict[str, Any] | None


@dataclass
class Shard:
    """One shard's documents, aligned by row (``payloads`` / ``texts``: None when not stored)."""

    ids: list[Any]
    vectors: SparseVectors
    payloads: list[Payload] | None = None
    texts: list[str] | None = None


def write_shard(path: Path, shard: Shard, meta: dict[str, Any]) -> None:
    """Write ``shard`` to ``path`` atomically, with ``meta`` as its file-level metadata."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    vectors = shard.vectors
    offsets = pa.array(vectors.indptr.astype(np.int32))
    columns = {
        "id": pa.array(shard.ids, type=_id_type(shard.ids)),
        "indices": pa.ListArray.from_arrays(offsets, pa.array(vectors.indices, pa.int32())),
        "values": pa.ListArray.from_arrays(offsets, pa.array(vectors.values, pa.float32())),
    }
    if shard.texts is not None:
        columns["text"] = pa.array(shard.texts, pa.string())
    if shard.payloads is not None:
        encoded = [None if p is None else json.dumps(p, ensure_ascii=False) for p in shard.payloads]
        columns["payload"] = pa.array(encoded, pa.string())
    table = pa.table(columns).replace_schema_metadata({META_KEY: json.dumps(meta).encode()})
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        pq.write_table(table, fh, write_page_checksum=True)
        fh.flush()
        os.fsync(fh.fileno())
    tmp.replace(path)
    fsync_dir(path.parent)


def write_segment(path: Path, shard: Shard) -> None:
    """``shard`` indexed as a saved ``SparseIndex`` of one segment at ``path`` (a folder a
    killed worker left half-written is replaced)."""
    from sparsearch.index import SparseIndex

    if path.exists():
        shutil.rmtree(path)
    index = SparseIndex(path)
    index.add(shard.ids, shard.vectors, shard.payloads)
    index.save()


def _id_type(ids: Sequence[Any]) -> Any:
    import pyarrow as pa

    if all(isinstance(i, str) for i in ids):
        return pa.string()
    if all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
        return pa.int64()
    raise InvalidInputError("shard ids must be all strings or all integers")


def shard_meta(path: Path) -> dict[str, Any]:
    """The ``sparsearch.shard`` metadata of a shard file (its footer only)."""
    import pyarrow.parquet as pq

    with _reading(path):
        meta = pq.read_schema(path).metadata or {}
        return dict(json.loads(meta[META_KEY]))


def read_shard(path: Path, dim: int, vocab: Sequence[str] | None) -> Shard:
    """Every row of one shard file, checked (CSR contract, page checksums)."""
    import pyarrow.parquet as pq

    with _reading(path):
        table = pq.read_table(path, page_checksum_verification=True)
        names = set(table.column_names)
        indices = table.column("indices").combine_chunks()
        values = table.column("values").combine_chunks()
        if not np.array_equal(indices.offsets, values.offsets):
            raise ValueError("indices and values have different row lengths")
        vectors = SparseVectors(
            indices.offsets.to_numpy().astype(np.int64),
            indices.values.to_numpy(),
            values.values.to_numpy(),
            dim,
            vocab,
        )
        payloads = None
        if "payload" in names:
            payloads = [None if p is None else json.loads(p) for p in table["payload"].to_pylist()]
        texts = table["text"].to_pylist() if "text" in names else None
        return Shard(table["id"].to_pylist(), vectors, payloads, texts)


@contextmanager
def _reading(path: Path) -> Iterator[None]:
    """Turn any failure reading ``path`` (pyarrow's, JSON's, a bad CSR) into IndexCorruptError."""
    try:
        yield
    except IndexCorruptError:
        raise
    except FileNotFoundError as err:
        raise IndexCorruptError(f"{path}: shard file missing") from err
    except Exception as err:  # whatever a damaged file makes pyarrow, json or numpy raise
        raise IndexCorruptError(f"{path}: damaged shard ({type(err).__name__}: {err})") from err


def is_shard_folder(path: Path) -> bool:
    """Whether ``path`` is a folder of shards written by :mod:`sparsearch.distributed`."""
    return is_manifest_folder(Path(path))


class ShardSet:
    """A complete shard folder, read in corpus order.

    ``dim``, ``vocab``, ``count`` (documents) and ``fingerprint`` (the model's) come from the
    manifest; :meth:`iter_batches` streams the documents. ``with_text``: stored texts go in each
    payload as ``text`` (like a collection export's ``with_text``).
    """

    def __init__(self, path: str | os.PathLike[str], *, with_text: bool = False) -> None:
        self.path = Path(path)
        self.manifest: Manifest = read_manifest(self.path)
        if not self.manifest.complete:
            done = sum((self.path / s.file).is_file() for s in self.manifest.shards)
            raise InvalidInputError(
                f"{self.path}: incomplete shard folder ({done} of {len(self.manifest.shards)} "
                "shards written): run the same encode again to resume it"
            )
        self.dim: int = self.manifest.dim
        self.vocab: Sequence[str] | None = self.manifest.vocab
        self.count: int = self.manifest.count
        self.fingerprint: str = self.manifest.fingerprint
        self.with_text = with_text

    def __len__(self) -> int:
        return self.count

    def __repr__(self) -> str:
        return f"ShardSet({str(self.path)!r}, {self.count} documents)"

    def shards(self) -> Iterator[Shard]:
        """Each shard, in order, checked against the manifest."""
        for plan in self.manifest.shards:
            path = self.path / plan.file
            shard = read_shard(path, self.dim, self.vocab)
            meta = shard_meta(path)
            if len(shard.ids) != plan.rows or meta.get("fingerprint") != self.fingerprint:
                raise IndexCorruptError(
                    f"{path}: does not match the manifest ({len(shard.ids)} rows, expected "
                    f"{plan.rows}; or another model's fingerprint)"
                )
            yield shard

    def fields(self) -> dict[str, set[str]]:
        """Payload field -> its kinds, as :meth:`SparseIndex.payload_fields` reports them."""
        from sparsearch.index.payload_columns import PayloadColumns

        fields: dict[str, set[str]] = {}
        for shard in self.shards():
            payloads = self._payloads(shard)
            if payloads is None:
                continue
            for name, kind in PayloadColumns.build(payloads, len(payloads)).fields().items():
                fields.setdefault(name, set()).add(kind)
        return fields

    def iter_batches(
        self, batch_size: int
    ) -> Iterator[tuple[list[Any], SparseVectors, list[Payload]]]:
        """``(ids, vectors, payloads)`` of at most ``batch_size`` documents, in corpus order."""
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise InvalidInputError(f"batch_size must be a positive integer, got {batch_size!r}")
        for shard in self.shards():
            payloads = self._payloads(shard) or [None] * len(shard.ids)
            for start in range(0, len(shard.ids), batch_size):
                stop = start + batch_size
                yield shard.ids[start:stop], shard.vectors[start:stop], payloads[start:stop]

    def _payloads(self, shard: Shard) -> list[Payload] | None:
        if not (self.with_text and shard.texts is not None):
            return shard.payloads
        payloads = shard.payloads or [None] * len(shard.texts)
        return [{**(p or {}), "text": t} for p, t in zip(payloads, shard.texts, strict=True)]


def ingest(folder: str | os.PathLike[str] | ShardSet, target: Any) -> int:
    """Add every document of a complete shard folder to ``target``; returns how many.

    ``target``: a ``SparseIndex`` (the workers' segments attached when they built them, else
    one :meth:`~SparseIndex.add` per shard; an id it already holds raises
    :class:`~sparsearch.errors.DuplicateIdError`) or a ``Collection`` (one
    ``upsert_vectors`` per shard, with the stored texts when both keep them). A collection
    refuses shards of another model (:class:`~sparsearch.errors.ModelMismatchError`), of the
    query side, or encoded with other ``max_active_dims`` / ``precision`` than its own.
    """
    from sparsearch.collection import Collection
    from sparsearch.index import SparseIndex

    shards = folder if isinstance(folder, ShardSet) else ShardSet(folder)
    if isinstance(target, Collection):
        _check_collection(shards, target)
        keep_text = target.config.store_text
        for shard in shards.shards():
            texts = shard.texts if keep_text else None
            target.upsert_vectors(shard.ids, shard.vectors, shard.payloads, texts=texts)
    elif isinstance(target, SparseIndex) and shards.manifest.encoding.get("segments"):
        target.attach([shards.path / plan.segment for plan in shards.manifest.shards])
    elif isinstance(target, SparseIndex):
        for shard in shards.shards():
            target.add(shard.ids, shard.vectors, shard.payloads)
    else:
        raise InvalidInputError(
            f"ingest adds shards to a SparseIndex or a Collection, got {type(target).__name__}"
        )
    return shards.count


def _check_collection(shards: ShardSet, collection: Any) -> None:
    spec = collection.config.sparse
    if shards.fingerprint != spec.fingerprint:
        raise ModelMismatchError(
            f"{shards.path} was encoded with {shards.manifest.model!r} (fingerprint "
            f"{shards.fingerprint[:12]}), but the collection's model {spec.source!r} has "
            f"{spec.fingerprint[:12]}: its queries would not match these vectors"
        )
    encoding = shards.manifest.encoding
    wanted = {
        "side": "document",
        "max_active_dims": spec.max_active_dims,
        "precision": spec.precision,
    }
    for key, value in wanted.items():
        if encoding.get(key) != value:
            raise InvalidInputError(
                f"{shards.path} was encoded with {key}={encoding.get(key)!r}, but the "
                f"collection encodes documents with {key}={value!r}"
            )
