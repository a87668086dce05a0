"""Qdrant Edge (``qdrant-edge-py``): Qdrant's own Rust engine in-process, one shard in a folder,
searched, counted and deleted from like the embedded index. URI: ``qdrant-edge:DIR`` (options as
query parameters: ``?idf=true&recreate=true&vector_name=sparse``).

Ids, payloads and filters follow :mod:`sparsearch.backends.qdrant` (the same code), with the same
differences from ours: IDF scores, integer matches on float fields, unnameable field names, and
``SearchParams.threads`` ignored. The shard's dim is kept next to it in ``DIR/sparsearch.json``
(Qdrant's shard config has no place for it). One process at a time may open a shard (its write-
ahead log is locked). :meth:`QdrantEdgeBackend.finish` optimizes (builds the sparse index) and
flushes.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from uuid import UUID

import numpy as np

from sparsearch.backends.base import Backend, Fields, Payload, hits_from_rows, positive
from sparsearch.backends.qdrant import (
    ID_KEY,
    META_KEY,
    FilterModels,
    PointId,
    call,
    check_dim,
    hit,
    indexed_fields,
    point_id,
    point_rows,
    translate,
)
from sparsearch.backends.uri import TargetURI
from sparsearch.errors import DimensionMismatchError, InvalidInputError
from sparsearch.filters import DocId, MatchValue
from sparsearch.index.checks import check_k, normalize_ids
from sparsearch.search import Hits, SearchParams
from sparsearch.sparse import SparseVectors

if TYPE_CHECKING:
    import qdrant_edge

_SHARD_ENTRIES = ("segments", "wal", "edge_config.json", f"{META_KEY}.json")
"""What a shard folder holds (``recreate`` removes these, and nothing else)."""
T = TypeVar("T")


class _EdgeModels(FilterModels):
    def __init__(self) -> None:
        import qdrant_edge

        self.q = qdrant_edge

    def filter(self, must: list[Any], should: list[Any], must_not: list[Any]) -> Any:
        return self.q.Filter(must=must or None, should=should or None, must_not=must_not or None)

    def match(self, key: str, value: MatchValue) -> Any:
        # the binding reads a Python bool as the integer 1 or 0; numpy's bool stays a bool
        engine_value: Any = np.bool_(value) if isinstance(value, bool) else value
        return self.q.FieldCondition(key, match=self.q.MatchValue(engine_value))

    def match_any(self, key: str, values: list[Any]) -> Any:
        return self.q.FieldCondition(key, match=self.q.MatchAny(values))

    def range(self, key: str, bounds: dict[str, float]) -> Any:
        return self.q.FieldCondition(key, range=self.q.RangeFloat(**bounds))

    def has_id(self, ids: list[PointId]) -> Any:
        return self.q.HasIdCondition(set(ids))

    def is_empty(self, key: str) -> Any:
        return self.q.IsEmptyCondition(key)


class QdrantEdgeBackend(Backend):
    """A Qdrant Edge shard in folder ``path`` with one named sparse vector.

    ``idf``: the sparse vector gets Qdrant's IDF modifier (scores then differ from ours by the
    IDF factor). ``recreate``: :meth:`begin` removes an existing shard's files first.

    Example::

        with QdrantEdgeBackend("scifact-edge") as edge:
            export(index, edge)
            hits = edge.search(queries, 10)
    """

    def __init__(
        self,
        path: str | Path,
        *,
        vector_name: str = "sparse",
        idf: bool = False,
        recreate: bool = False,
    ) -> None:
        if not isinstance(path, (str, Path)) or not str(path):
            raise InvalidInputError(f"a Qdrant Edge shard is a folder path, got {path!r}")
        self.path = Path(path)
        self.vector_name, self.idf, self.recreate = vector_name, idf, recreate
        self._shard: qdrant_edge.EdgeShard | None = None
        self._dim: int | None = None

    @property
    def shard(self) -> qdrant_edge.EdgeShard:
        """The open shard (loaded from :attr:`path` on first use)."""
        if self._shard is None:
            if not (self.path / "edge_config.json").is_file():
                raise InvalidInputError(
                    f"{self.path} holds no Qdrant Edge shard: call begin() (or export to it) first"
                )
            import qdrant_edge

            self._shard = self._call(
                "load the shard", lambda: qdrant_edge.EdgeShard.load(str(self.path))
            )
            self._dim = self._stored_dim()
        return self._shard

    def begin(self, dim: int, vocab: Sequence[str] | None, fields: Fields) -> None:
        """Create the shard (or load the existing one, checking its vector, modifier and dim)
        and a payload index per filterable field."""
        import qdrant_edge as q

        dim = positive(dim, "dim")
        self.close()
        exists = (self.path / "edge_config.json").is_file()
        if exists and self.recreate:
            self._remove_shard()
            exists = False
        stored = self._stored_dim() if exists else None
        if stored is not None and stored != dim:
            raise DimensionMismatchError(
                f"Qdrant Edge shard {self.path} holds dim {stored}, not {dim}; "
                "pass recreate=True to replace it"
            )
        modifier = q.Modifier.Idf if self.idf else None
        config = q.EdgeConfig(
            sparse_vectors={self.vector_name: q.EdgeSparseVectorParams(modifier=modifier)}
        )
        if exists:  # the engine checks that the config matches the shard's segments
            self._shard = self._call(
                "load the shard", lambda: q.EdgeShard.load(str(self.path), config)
            )
        else:
            self._shard = self._call(
                "create the shard", lambda: q.EdgeShard.create(str(self.path), config)
            )
        (self.path / f"{META_KEY}.json").write_text(json.dumps({"dim": dim}))
        self._dim = dim
        schemas = {
            "keyword": q.PayloadSchemaType.Keyword,
            "integer": q.PayloadSchemaType.Integer,
            "float": q.PayloadSchemaType.Float,
            "boolean": q.PayloadSchemaType.Bool,
        }
        for path, kind in indexed_fields(fields).items():
            self._update(
                f"index payload field {path}",
                q.UpdateOperation.create_field_index(path, schemas[kind]),
            )

    def write(self, ids: list[DocId], vectors: SparseVectors, payloads: list[Payload]) -> None:
        """Upsert one batch (applied when this returns)."""
        import qdrant_edge as q

        shard = self.shard
        points = [
            q.Point(pid, {self.vector_name: q.SparseVector(indices, values)}, payload)
            for pid, indices, values, payload in point_rows(ids, vectors, payloads, self._dim)
        ]
        self._update("upsert", q.UpdateOperation.upsert_points(points), shard)

    def finish(self) -> None:
        """Build the shard's indexes and flush it to disk."""
        shard = self.shard
        self._call("optimize", shard.optimize)
        self._call("flush", shard.flush)

    def delete(self, ids: Sequence[DocId]) -> None:
        import qdrant_edge as q

        pids: list[int | str | UUID] = [point_id(i) for i in normalize_ids(ids)]
        self._update("delete", q.UpdateOperation.delete_points(pids))

    def count(self) -> int:
        import qdrant_edge as q

        shard = self.shard
        return self._call("count", lambda: shard.count(q.CountRequest(exact=True)))

    def search(
        self, queries: SparseVectors, k: int = 10, *, params: SearchParams | None = None
    ) -> Hits:
        """Top ``k`` of each query row by dot product (times IDF with ``idf=True``)."""
        import qdrant_edge as q

        k = check_k(k)
        params = params or SearchParams()
        shard = self.shard
        check_dim(queries, self._dim, "queries")
        flt = None if params.filter is None else translate(params.filter, _EdgeModels())
        with_payload: bool | list[str] = True if params.return_payloads else [ID_KEY]
        requests = []
        for i in range(queries.n):
            indices, values = queries.row(i)
            vector = q.SparseVector(indices.tolist(), values.tolist())
            query = q.Query.Nearest(vector, using=self.vector_name)
            requests.append(
                q.QueryRequest(limit=k, query=query, filter=flt, with_payload=with_payload)
            )
        answers = (
            self._call("search", lambda: shard.query_batch(q.QueryBatchRequest(requests)))
            if requests
            else []
        )
        rows = [[hit(point) for point in answer] for answer in answers]
        return hits_from_rows(rows, k, params.return_payloads)

    def close(self) -> None:
        if self._shard is not None:
            shard, self._shard = self._shard, None
            self._call("close the shard", shard.close)

    def _update(
        self, action: str, operation: Any, shard: qdrant_edge.EdgeShard | None = None
    ) -> None:
        target = shard or self.shard
        self._call(action, lambda: target.update(operation))

    def _remove_shard(self) -> None:
        for entry in _SHARD_ENTRIES:
            target = self.path / entry
            if target.is_dir():
                shutil.rmtree(target)
            else:
                target.unlink(missing_ok=True)

    def _stored_dim(self) -> int | None:
        meta = self.path / f"{META_KEY}.json"
        dim = json.loads(meta.read_text()).get("dim") if meta.is_file() else None
        return dim if isinstance(dim, int) else None

    def _call(self, action: str, fn: Callable[[], T]) -> T:
        return call("Qdrant Edge", f"{action} ({self.path})", fn)


def from_uri(uri: TargetURI, **options: Any) -> QdrantEdgeBackend:
    """``qdrant-edge:DIR``; ``options`` override the URI's parameters."""
    if uri.tls:
        raise InvalidInputError(f"{uri.raw!r}: Qdrant Edge is a local folder, it has no TLS")
    return QdrantEdgeBackend(
        uri.path, **uri.options(options, {"idf": bool, "recreate": bool, "vector_name": str})
    )
