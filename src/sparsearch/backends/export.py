"""``export``: stream an index, a collection or encoded shards into an engine or a file format."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from tqdm.auto import tqdm

from sparsearch.backends.base import Backend, Payload, Target, positive
from sparsearch.backends.sources import as_source
from sparsearch.backends.uri import TargetURI, open_target
from sparsearch.filters import DocId
from sparsearch.sparse import SparseVectors


@dataclass(frozen=True)
class ExportReport:
    """What an export wrote, where, and how fast."""

    target: str
    documents: int
    seconds: float

    @property
    def docs_per_second(self) -> float:
        """Documents written per second of the whole export (reading included)."""
        return self.documents / self.seconds if self.seconds > 0 else float("inf")


def export(
    source: Any,
    target: str | TargetURI | Target,
    *,
    batch_size: int = 1000,
    progress: bool = True,
    with_text: bool = False,
    **options: Any,
) -> ExportReport:
    """Write every document of ``source`` to ``target``, ``batch_size`` at a time.

    ``source``: a ``SparseIndex``, a ``Collection``, a shard folder from
    :mod:`sparsearch.distributed`, or a path to one. ``target``: a URI (see
    :mod:`sparsearch.backends.uri`; ``options`` go to its constructor, e.g. ``recreate=True``)
    or a :class:`Target`. Engines get each batch with retries on transient errors; documents
    already there are replaced. ``with_text``: a collection's texts go in the payloads as ``text``.

    Example::

        report = export("scifact-index/", "milvus://out/scifact.db/scifact")
        print(report.documents, f"{report.docs_per_second:.0f} docs/s")
    """
    batch_size = positive(batch_size, "batch_size")
    src = as_source(source, with_text=with_text)
    opened = not isinstance(target, Target)
    try:
        tgt = target if isinstance(target, Target) else open_target(target, **options)
    except BaseException:
        src.close()
        raise
    start = time.perf_counter()
    written = 0
    try:
        tgt.begin(src.dim, src.vocab, src.fields)
        with tqdm(total=src.count, unit="doc", desc="export", disable=not progress) as bar:
            for ids, vectors, payloads in src.batches(batch_size):
                write_batch(tgt, ids, vectors, payloads)
                written += len(ids)
                bar.update(len(ids))
        tgt.finish()
    finally:
        src.close()
        if opened:
            tgt.close()
    name = target if isinstance(target, str) else getattr(target, "raw", type(target).__name__)
    return ExportReport(name, written, time.perf_counter() - start)


def write_batch(
    target: Target, ids: list[DocId], vectors: SparseVectors, payloads: list[Payload]
) -> None:
    """One batch to ``target``: retried on transient errors when it is an engine."""
    if isinstance(target, Backend):
        target.with_retries(lambda: target.write(ids, vectors, payloads))
    else:
        target.write(ids, vectors, payloads)
