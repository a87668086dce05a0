"""Qdrant through ``qdrant-client``: a collection with one named sparse vector, searched, counted
and deleted from like the embedded index. Also what the in-process engine
(:mod:`sparsearch.backends.qdrant_edge`) shares with it: point ids, reserved payload keys, filter
translation and results.

URIs: ``qdrant://HOST:PORT/NAME`` (a server; ``qdrant+https://`` for TLS), ``qdrant:DIR/NAME``
(the client's local mode, kept in folder ``DIR``), ``qdrant::memory:/NAME`` (local, in memory).
Query parameters are options: ``?idf=true&recreate=true&vector_name=sparse&api_key=...&timeout=30``.

Ids: Qdrant takes unsigned integers or UUIDs as point ids. Int ids in ``0..2**64-1`` are point
ids as they are; str ids (and other ints) become UUIDv5s, the original id kept in the payload
under ``_sparsearch_id``. Hits give back the original ids, and returned payloads never show the
reserved keys.

What Qdrant does differently, or can't do:

- ``idf=True`` (``Modifier.IDF``): Qdrant multiplies each query weight by its dimension's IDF
  over the collection, so scores (and rankings) then differ from ours by that factor; without
  it, scores are the same dot products as ours.
- An integer :class:`~sparsearch.filters.Match` does not match a float field's integral values
  (``3`` vs ``3.0``): Qdrant compares JSON types, ours compares numbers. Range bounds are float64
  in Qdrant, so integer bounds past ``2**53`` are rounded.
- A filter can't name a field whose name holds ``"`` or ``\\`` (:class:`UnsupportedFilterError`).
- Qdrant's ``is_empty`` can't tell ``[]`` from a missing field, so :meth:`write` lists the fields
  that hold ``[]`` under ``_sparsearch_empty`` and :class:`~sparsearch.filters.IsNull` excludes
  them; collections written by other tools lack that list (there ``[]`` counts as null).
- ``SearchParams.threads`` is ignored: the engine schedules its own threads.
- Local mode is Qdrant's Python re-implementation (numpy brute force): one process at a time
  per folder, and payload indexes are recorded but have no effect there.
"""

from __future__ import annotations

import os
import re
import uuid
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

from sparsearch.backends.base import (
    Backend,
    Fields,
    Payload,
    engine_error,
    hits_from_rows,
    positive,
)
from sparsearch.backends.uri import TargetURI
from sparsearch.errors import (
    BackendError,
    DimensionMismatchError,
    InvalidInputError,
    SparsearchError,
    UnsupportedFilterError,
)
from sparsearch.filters import Condition, DocId, Filter, HasId, IsNull, Match, MatchValue, Range
from sparsearch.index.checks import check_k, normalize_ids
from sparsearch.search import Hits, SearchParams
from sparsearch.sparse import SparseVectors

if TYPE_CHECKING:
    from qdrant_client import QdrantClient

ID_KEY = "_sparsearch_id"
"""Payload key of the original id of a document whose point id is a UUID."""
EMPTY_KEY = "_sparsearch_empty"
"""Payload key listing the document's fields that hold ``[]``."""
META_KEY = "sparsearch"
"""Collection metadata key (Qdrant) or sidecar file stem (edge) holding ``{"dim": ...}``."""
PointId = int | str
_NAMESPACE = uuid.UUID("6f1f5b0e-3c1a-5d7e-9a43-2d0c4b8e7f21")
_MAX_POINT_ID = 1 << 64
_PLAIN_KEY = re.compile(r"^[A-Za-z0-9_]+$")
_INDEXED = ("keyword", "integer", "float", "boolean")
"""Field kinds that get a payload index (a field of one kind only)."""
_QUERY_BATCH = 100
T = TypeVar("T")


# ------------------------------------------------------------------------ ids and payloads


def point_id(doc_id: DocId) -> PointId:
    """The Qdrant point id of ``doc_id``: the int itself in ``0..2**64-1``, else a UUIDv5 of
    its type and value (so ``7`` and ``"7"`` stay distinct).

    >>> point_id(7), point_id("7") == point_id("7"), point_id("7") == point_id(-7)
    (7, True, False)
    """
    if isinstance(doc_id, int) and 0 <= doc_id < _MAX_POINT_ID:
        return doc_id
    kind = "int" if isinstance(doc_id, int) else "str"
    return str(uuid.uuid5(_NAMESPACE, f"{kind}:{doc_id}"))


def stored_payload(doc_id: DocId, payload: Mapping[str, Any] | None) -> dict[str, Any]:
    """``payload`` as stored: plus the original id when the point id is a UUID, and the names
    of the fields that hold ``[]``.

    >>> stored_payload(3, {"tags": [], "lang": "en"})
    {'tags': [], 'lang': 'en', '_sparsearch_empty': ['tags']}
    """
    out = dict(payload or {})
    reserved = [key for key in (ID_KEY, EMPTY_KEY) if key in out]
    if reserved:
        raise InvalidInputError(f"payload key {reserved[0]!r} is reserved by the Qdrant backend")
    empty = [key for key, value in out.items() if isinstance(value, list) and not value]
    if not isinstance(point_id(doc_id), int):
        out[ID_KEY] = doc_id
    if empty:
        out[EMPTY_KEY] = empty
    return out


def point_rows(
    ids: Sequence[DocId], vectors: SparseVectors, payloads: Sequence[Payload], dim: int | None
) -> Iterator[tuple[PointId, list[int], list[float], dict[str, Any]]]:
    """Each document as ``(point id, indices, values, stored payload)``."""
    check_dim(vectors, dim, "documents")
    if not len(ids) == vectors.n == len(payloads):
        raise InvalidInputError(
            f"{len(ids)} ids, {vectors.n} vectors and {len(payloads)} payloads: they must align"
        )
    for i, doc_id in enumerate(ids):
        indices, values = vectors.row(i)
        yield (
            point_id(doc_id),
            indices.tolist(),
            values.tolist(),
            stored_payload(doc_id, payloads[i]),
        )


def check_dim(vectors: SparseVectors, dim: int | None, what: str) -> None:
    """Vectors of the collection's ``dim`` (``None``: unknown, anything goes)."""
    if not isinstance(vectors, SparseVectors):
        raise InvalidInputError(f"{what} must be SparseVectors, got {type(vectors).__name__}")
    if dim is not None and vectors.dim != dim:
        raise DimensionMismatchError(
            f"{what} have dim {vectors.dim}, the Qdrant collection holds dim {dim}"
        )


def hit(point: Any) -> tuple[DocId, float, Payload]:
    """A scored point (either client's) as ``(original id, score, user payload)``; a payload
    left empty once the reserved keys are gone is ``None``."""
    payload = point.payload or {}
    pid = point.id
    doc_id = payload[ID_KEY] if ID_KEY in payload else pid if isinstance(pid, int) else str(pid)
    user = {key: value for key, value in payload.items() if key not in (ID_KEY, EMPTY_KEY)}
    return doc_id, float(point.score), user or None


def indexed_fields(fields: Fields) -> dict[str, str]:
    """Field path -> kind, for the fields of one filterable kind (each gets a payload index)."""
    out = {}
    for name, kinds in fields.items():
        if len(kinds) == 1 and next(iter(kinds)) in _INDEXED and _nameable(name):
            out[field_path(name)] = next(iter(kinds))
    return out


# ------------------------------------------------------------------------ filters


class FilterModels(ABC):
    """Builds one client's filter objects (``qdrant_client.models`` or ``qdrant_edge``)."""

    @abstractmethod
    def filter(self, must: list[Any], should: list[Any], must_not: list[Any]) -> Any:
        """A filter of the given conditions."""

    @abstractmethod
    def match(self, key: str, value: MatchValue) -> Any:
        """Field ``key`` (a path) holds ``value``."""

    @abstractmethod
    def match_any(self, key: str, values: list[Any]) -> Any:
        """Field ``key`` holds one of ``values`` (strings or ints)."""

    @abstractmethod
    def range(self, key: str, bounds: dict[str, float]) -> Any:
        """Field ``key`` within ``bounds`` (``gt``, ``gte``, ``lt``, ``lte``)."""

    @abstractmethod
    def has_id(self, ids: list[PointId]) -> Any:
        """The point id is one of ``ids``."""

    @abstractmethod
    def is_empty(self, key: str) -> Any:
        """Field ``key`` is missing, null or ``[]``."""


def translate(flt: Filter, models: FilterModels) -> Any:
    """``flt`` as the engine's filter (see the module docstring for what differs)."""
    groups = (flt.must, flt.should, flt.must_not)
    return models.filter(*([_condition(cond, models) for cond in group] for group in groups))


def _condition(cond: Condition, models: FilterModels) -> Any:
    if isinstance(cond, Filter):
        return translate(cond, models)
    if isinstance(cond, HasId):
        return models.has_id([point_id(doc_id) for doc_id in cond.ids])
    key = field_path(cond.key)
    if isinstance(cond, IsNull):
        return models.filter([models.is_empty(key)], [], [models.match(EMPTY_KEY, cond.key)])
    if isinstance(cond, Range):
        return models.range(key, _bounds(cond))
    return _match(cond, key, models)


def _match(cond: Match, key: str, models: FilterModels) -> Any:
    if cond.any is None:
        return models.match(key, cond.values[0])
    if cond.kind == "boolean":  # Qdrant's match-any takes strings or ints only
        return models.filter([], [models.match(key, value) for value in cond.any], [])
    return models.match_any(key, list(cond.any))


def _bounds(cond: Range) -> dict[str, float]:
    bounds = {name: getattr(cond, name) for name in ("gt", "gte", "lt", "lte")}
    try:
        return {name: float(bound) for name, bound in bounds.items() if bound is not None}
    except OverflowError:
        raise UnsupportedFilterError(
            f"{cond!r}: Qdrant's range bounds are float64, and this bound is beyond them"
        ) from None


def field_path(name: str) -> str:
    """Payload field ``name`` as a Qdrant JSON path naming that top-level key (quoted unless
    plain, so a ``.`` is not read as nesting).

    >>> field_path("lang"), field_path("a.b")
    ('lang', '"a.b"')
    """
    if not _nameable(name):
        raise UnsupportedFilterError(
            f"payload field {name!r}: Qdrant filters can't name a field with '\"' or '\\\\'"
        )
    return name if _PLAIN_KEY.match(name) else f'"{name}"'


def _nameable(name: str) -> bool:
    return '"' not in name and "\\" not in name


class _ClientModels(FilterModels):
    def __init__(self) -> None:
        from qdrant_client import models

        self.m = models

    def filter(self, must: list[Any], should: list[Any], must_not: list[Any]) -> Any:
        return self.m.Filter(must=must or None, should=should or None, must_not=must_not or None)

    def match(self, key: str, value: MatchValue) -> Any:
        return self.m.FieldCondition(key=key, match=self.m.MatchValue(value=value))

    def match_any(self, key: str, values: list[Any]) -> Any:
        return self.m.FieldCondition(key=key, match=self.m.MatchAny(any=values))

    def range(self, key: str, bounds: dict[str, float]) -> Any:
        return self.m.FieldCondition(key=key, range=self.m.Range(**bounds))

    def has_id(self, ids: list[PointId]) -> Any:
        return self.m.HasIdCondition(has_id=list(ids))

    def is_empty(self, key: str) -> Any:
        return self.m.IsEmptyCondition(is_empty=self.m.PayloadField(key=key))


# ------------------------------------------------------------------------ the backend


class QdrantBackend(Backend):
    """A Qdrant collection with one named sparse vector, through ``qdrant_client``.

    Give exactly one of ``url`` (a server, e.g. ``http://localhost:6333``), ``path`` (a folder
    for local mode, or ``":memory:"``) and ``client`` (a ``QdrantClient``, which :meth:`close`
    leaves open). ``idf``: the sparse vector gets Qdrant's IDF modifier (scores then differ
    from ours by the IDF factor). ``recreate``: :meth:`begin` drops an existing collection.

    Example::

        with QdrantBackend("scifact", path="qdrant-data") as qdrant:
            export(index, qdrant)
            hits = qdrant.search(queries, 10, params=SearchParams(filter=Match("lang", "en")))
    """

    def __init__(
        self,
        name: str,
        *,
        url: str | None = None,
        path: str | os.PathLike[str] | None = None,
        client: QdrantClient | None = None,
        vector_name: str = "sparse",
        idf: bool = False,
        recreate: bool = False,
        api_key: str | None = None,
        timeout: int | None = None,
    ) -> None:
        if not isinstance(name, str) or not name:
            raise InvalidInputError(f"a Qdrant collection name is a non-empty string, got {name!r}")
        if sum(x is not None for x in (url, path, client)) != 1:
            raise InvalidInputError(
                "give exactly one of url, path (a folder or ':memory:'), client"
            )
        self.name, self.vector_name, self.idf, self.recreate = name, vector_name, idf, recreate
        self._owned = client is None
        self._dim: int | None = None
        self._opened = False
        if client is None:
            client = call(
                "Qdrant", f"open {url or path}", partial(_client, url, path, api_key, timeout)
            )
        self.client: QdrantClient = client

    def begin(self, dim: int, vocab: Sequence[str] | None, fields: Fields) -> None:
        """Create the collection (or check the existing one: same vector, modifier and dim) and a
        payload index per filterable field."""
        from qdrant_client import models

        dim = positive(dim, "dim")
        exists = self._call(
            "check the collection", lambda: self.client.collection_exists(self.name)
        )
        if exists and self.recreate:
            self._call("drop the collection", lambda: self.client.delete_collection(self.name))
            exists = False
        if exists:
            self._check_existing(dim)
        else:
            modifier = models.Modifier.IDF if self.idf else None
            self._call(
                "create the collection",
                lambda: self.client.create_collection(
                    self.name,
                    sparse_vectors_config={
                        self.vector_name: models.SparseVectorParams(modifier=modifier)
                    },
                    metadata={META_KEY: {"dim": dim}},
                ),
            )
        schemas = {
            "keyword": models.PayloadSchemaType.KEYWORD,
            "integer": models.PayloadSchemaType.INTEGER,
            "float": models.PayloadSchemaType.FLOAT,
            "boolean": models.PayloadSchemaType.BOOL,
        }
        with warnings.catch_warnings():  # local mode warns that it ignores payload indexes
            warnings.filterwarnings("ignore", "Payload indexes have no effect", UserWarning)
            for path, kind in indexed_fields(fields).items():
                index = partial(self.client.create_payload_index, self.name, path, schemas[kind])
                self._call(f"index payload field {path}", index)
        self._dim, self._opened = dim, True

    def _check_existing(self, dim: int) -> None:
        from qdrant_client import models

        info = self._call("read the collection", lambda: self.client.get_collection(self.name))
        sparse = info.config.params.sparse_vectors or {}
        if self.vector_name not in sparse:
            raise InvalidInputError(
                f"Qdrant collection {self.name!r} has no sparse vector {self.vector_name!r} "
                f"(it has {sorted(sparse)}); pass recreate=True to replace it"
            )
        has_idf = sparse[self.vector_name].modifier == models.Modifier.IDF
        if has_idf != self.idf:
            raise InvalidInputError(
                f"Qdrant collection {self.name!r} was made with idf={has_idf}, not idf={self.idf};"
                " pass recreate=True to replace it"
            )
        stored = _stored_dim(info.config.metadata)
        if stored is not None and stored != dim:
            raise DimensionMismatchError(
                f"Qdrant collection {self.name!r} holds dim {stored}, not {dim}; "
                "pass recreate=True to replace it"
            )

    def _open(self) -> int | None:
        """The collection's dim (``None``: not recorded); an error if there is no collection."""
        if not self._opened:
            if not self._call(
                "check the collection", lambda: self.client.collection_exists(self.name)
            ):
                raise InvalidInputError(
                    f"Qdrant collection {self.name!r} does not exist: call begin() "
                    "(or export to it) first"
                )
            info = self._call("read the collection", lambda: self.client.get_collection(self.name))
            self._dim, self._opened = _stored_dim(info.config.metadata), True
        return self._dim

    def write(self, ids: list[DocId], vectors: SparseVectors, payloads: list[Payload]) -> None:
        """Upsert one batch and wait until it is applied."""
        from qdrant_client import models

        points = [
            models.PointStruct(
                id=pid,
                vector={self.vector_name: models.SparseVector(indices=indices, values=values)},
                payload=payload,
            )
            for pid, indices, values, payload in point_rows(ids, vectors, payloads, self._open())
        ]
        self._call("upsert", lambda: self.client.upsert(self.name, points, wait=True))

    def delete(self, ids: Sequence[DocId]) -> None:
        from qdrant_client import models

        self._open()
        selector = models.PointIdsList(points=[point_id(i) for i in normalize_ids(ids)])
        self._call("delete", lambda: self.client.delete(self.name, selector, wait=True))

    def count(self) -> int:
        self._open()
        return self._call("count", lambda: self.client.count(self.name, exact=True).count)

    def search(
        self, queries: SparseVectors, k: int = 10, *, params: SearchParams | None = None
    ) -> Hits:
        """Top ``k`` of each query row by dot product (times IDF with ``idf=True``)."""
        from qdrant_client import models

        k = check_k(k)
        params = params or SearchParams()
        check_dim(queries, self._open(), "queries")
        flt = None if params.filter is None else translate(params.filter, _ClientModels())
        with_payload: bool | list[str] = True if params.return_payloads else [ID_KEY]
        requests = []
        for i in range(queries.n):
            indices, values = queries.row(i)
            vector = models.SparseVector(indices=indices.tolist(), values=values.tolist())
            requests.append(
                models.QueryRequest(
                    query=vector,
                    using=self.vector_name,
                    limit=k,
                    filter=flt,
                    with_payload=with_payload,
                )
            )
        rows: list[list[tuple[DocId, float, Payload]]] = []
        for start in range(0, len(requests), _QUERY_BATCH):
            batch = requests[start : start + _QUERY_BATCH]
            answers = self._call(
                "search", partial(self.client.query_batch_points, self.name, batch)
            )
            rows.extend([hit(point) for point in answer.points] for answer in answers)
        return hits_from_rows(rows, k, params.return_payloads)

    def is_transient(self, err: BaseException) -> bool:
        """Connection errors, timeouts, and 429/502/503/504 answers."""
        import httpx
        from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

        cause = err.__cause__ if isinstance(err, BackendError) and err.__cause__ else err
        if isinstance(cause, ResponseHandlingException):
            cause = cause.source
        if isinstance(cause, UnexpectedResponse):
            return cause.status_code in (429, 502, 503, 504)
        return isinstance(cause, (httpx.TransportError, ConnectionError, TimeoutError))

    def close(self) -> None:
        if self._owned:
            self.client.close()

    def _call(self, action: str, fn: Callable[[], T]) -> T:
        return call("Qdrant", f"{action} ({self.name})", fn)


def _client(
    url: str | None, path: str | os.PathLike[str] | None, api_key: str | None, timeout: int | None
) -> QdrantClient:
    from qdrant_client import QdrantClient

    if url is not None:
        return QdrantClient(url=url, api_key=api_key, timeout=timeout)
    if str(path) == ":memory:":
        return QdrantClient(location=":memory:")
    return QdrantClient(path=str(path))


def call(engine: str, action: str, fn: Callable[[], T]) -> T:
    """``fn()``, with engine failures raised as :class:`BackendError` (the cause kept)."""
    try:
        return fn()
    except SparsearchError:
        raise
    except Exception as err:
        raise engine_error(engine, action, err) from err


def _stored_dim(metadata: Mapping[str, Any] | None) -> int | None:
    dim = (metadata or {}).get(META_KEY, {}).get("dim")
    return dim if isinstance(dim, int) else None


# ------------------------------------------------------------------------ URIs


URI_OPTIONS = {
    "idf": bool,
    "recreate": bool,
    "vector_name": str,
    "api_key": str,
    "timeout": int,
}
"""The query parameters of a ``qdrant:`` URI and their types."""


def from_uri(uri: TargetURI, **options: Any) -> QdrantBackend:
    """``qdrant://HOST:PORT/NAME`` (``qdrant+https://`` for TLS), ``qdrant:DIR/NAME`` (local
    mode in ``DIR``) or ``qdrant::memory:/NAME``; ``options`` override the URI's parameters."""
    name = uri.require_name()
    given = uri.options(options, URI_OPTIONS)
    if uri.is_server:
        return QdrantBackend(
            name, url=f"{'https' if uri.tls else 'http'}://{uri.location}", **given
        )
    if uri.tls or (uri.raw.partition(":")[2].startswith("//") and not uri.location.startswith("/")):
        raise InvalidInputError(
            f"{uri.raw!r}: a Qdrant server is qdrant://HOST:PORT/NAME (give the port, e.g. 6333); "
            "local mode is qdrant:DIR/NAME"
        )
    return QdrantBackend(name, path=uri.location, **given)
