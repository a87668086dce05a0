"""Milvus backend: a collection with a ``SPARSE_FLOAT_VECTOR`` field searched by inner product,
through ``pymilvus.MilvusClient``, on a Milvus server or a Milvus Lite file (the real engine,
embedded: ``milvus-lite==2.5.1``).

``milvus://out/scifact.db/docs`` opens collection ``docs`` of the Milvus Lite file
``out/scifact.db``; ``milvus://host:19530/docs`` (``milvus+https://`` for TLS) a server. Query
parameters are constructor options (``?index=wand&token=...``).

Layout: primary key ``pk`` (``INT64`` for int ids, ``VARCHAR`` for str ids: the collection is made
at the first :meth:`~MilvusBackend.write`, once the ids' kind is known), the vectors in ``vector``
(index ``SPARSE_INVERTED_INDEX`` or ``SPARSE_WAND``, metric ``IP``), the payload in one JSON field
``payload``. One JSON field rather than dynamic fields: any payload key can be addressed in a
filter (``payload["a key"]``), none collides with ``pk`` or ``vector``. The dimension and
vocabulary fingerprint are kept in the collection's description, so a reopened collection still
refuses queries of another space.

Exact by default: ``drop_ratio_build=0`` and ``drop_ratio_search=0`` keep every weight (a ratio
``r`` drops the smallest ``r`` share of each document's, or query's, weights: faster, approximate).

What Milvus can't do, and what happens instead:

- Weights must be non-negative (Milvus refuses negative query weights and drops negative-score
  documents from the inverted index): negative weights raise :class:`InvalidInputError`; so do
  dimensions of ``2**32 - 1`` and more, ``k`` above 16,384 and str ids over 65,535 bytes.
- Empty vectors are stored (and counted) but never found; empty query rows get no hits.
- Milvus Lite has no nullable fields: a ``None`` payload is stored as ``{}``, and an empty payload
  reads back as ``None``.
- Filters become Milvus boolean expressions. Milvus Lite 2.5 has no ``not``: ``must_not`` first
  queries the ids its conditions match, then excludes them (``pk not in [...]``), so the two steps
  do not see one snapshot. ``IsNull`` raises :class:`UnsupportedFilterError` (no ``exists`` or
  nullable JSON keys), as do a ``Range`` on a field known to hold lists (Milvus compares a JSON
  list as a whole), string values with line breaks (the expression lexer refuses them) and keys
  with ``/`` (JSON pointers split them).
"""

from __future__ import annotations

import json
import math
import re
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from sparsearch.backends.base import Backend, Fields, Payload, Row, engine_error, hits_from_rows
from sparsearch.backends.uri import TargetURI
from sparsearch.errors import (
    BackendError,
    DimensionMismatchError,
    InvalidInputError,
    UnsupportedFilterError,
    VocabularyMismatchError,
)
from sparsearch.filters import DocId, Filter, HasId, Match, Range
from sparsearch.index.checks import check_k
from sparsearch.search import Hits, SearchParams
from sparsearch.sparse import SparseVectors, vocab_hash

ENGINE = "Milvus"
PK, VECTOR, PAYLOAD = "pk", "vector", "payload"
INDEX_TYPES = {"inverted": "SPARSE_INVERTED_INDEX", "wand": "SPARSE_WAND"}
MAX_K = 16_384
"""Milvus's largest ``limit`` (top-k) of a search."""
MAX_DIM = 2**32 - 1
"""Sparse dimensions are uint32 below this."""
MAX_STR_ID = 65_535
"""The longest ``VARCHAR`` primary key, in UTF-8 bytes."""
RESULTS_PER_REQUEST = 65_536
"""Queries per search request: as many as keep ``queries * k`` under this (and 16,384 at most)."""
TRANSIENT_CODES = frozenset({1, 2, 4, 8, 12, 103, 106, 202, 1002, 1807})
"""Milvus's retriable errors (``merr``): not ready, unavailable, request/rate limits, resources,
collection or partition still loading or recovering, unexpected EOF, HTTP rate limit. Code 1 is
also pymilvus's generic error, so it counts only with the ``NotReadyServe`` status."""

Expr = str | bool
"""A Milvus boolean expression, or a constant (``True``: every document, ``False``: none)."""
T = TypeVar("T")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,254}$")
_OPS = (("gt", ">"), ("gte", ">="), ("lt", "<"), ("lte", "<="))
_INT64 = 1 << 63
_MAX_FLOAT = float(np.finfo(np.float64).max)
_LITE_CLIENTS: Counter[str] = Counter()
"""Open backends per Milvus Lite file: its server process stops when the last one closes."""


class MilvusBackend(Backend):
    """Collection ``name`` of a Milvus server or Milvus Lite file (see the module docstring).

    ``uri``: a ``.db`` file path (Milvus Lite) or ``http(s)://host:port``; ``token``: the
    server's ``user:password`` or API key. ``index``: ``"inverted"`` or ``"wand"``.
    ``recreate``: drop the collection at :meth:`begin`. ``drop_ratio_build`` /
    ``drop_ratio_search``: see the module docstring (``0``: exact).
    """

    def __init__(
        self,
        name: str,
        *,
        uri: str,
        token: str | None = None,
        index: str = "inverted",
        recreate: bool = False,
        drop_ratio_build: float = 0.0,
        drop_ratio_search: float = 0.0,
    ) -> None:
        if not isinstance(name, str) or not _NAME.match(name):
            raise InvalidInputError(
                f"{name!r} is not a Milvus collection name (letters, digits and underscores, "
                "not starting with a digit, at most 255)"
            )
        if index not in INDEX_TYPES:
            raise InvalidInputError(f"index must be one of {sorted(INDEX_TYPES)}, got {index!r}")
        self.name = name
        self.index = index
        self.recreate = recreate
        self.drop_ratio_build = _ratio(drop_ratio_build, "drop_ratio_build")
        self.drop_ratio_search = _ratio(drop_ratio_search, "drop_ratio_search")
        self._lite = None if uri.startswith(("http://", "https://")) else str(Path(uri).resolve())
        self._client = self._connect(uri, token)
        self._dim: int | None = None
        self._vocab: str | None = None
        self._list_fields: set[str] = set()
        self._pk_int: bool | None = None

    def _connect(self, uri: str, token: str | None) -> Any:
        from pymilvus import MilvusClient

        if self._lite is not None:
            Path(self._lite).parent.mkdir(parents=True, exist_ok=True)
        try:
            # an alias of its own: closing a client drops its alias's connection
            alias = f"sparsearch-{uuid.uuid4().hex}"
            client = MilvusClient(uri=self._lite or uri, token=token or "", alias=alias)
        except Exception as err:
            raise engine_error(ENGINE, f"connecting to {uri}", err) from err
        if self._lite is not None:
            _LITE_CLIENTS[self._lite] += 1
        return client

    # -- writing --------------------------------------------------------------------------

    def begin(self, dim: int, vocab: Sequence[str] | None, fields: Fields) -> None:
        if isinstance(dim, bool) or not isinstance(dim, int) or not 0 < dim < MAX_DIM:
            raise InvalidInputError(
                f"Milvus sparse vectors have 1..{MAX_DIM - 1} dims, got {dim!r}"
            )
        if self.recreate:
            self._engine("dropping the collection", lambda: self._client.drop_collection(self.name))
            self._pk_int = None
            self.recreate = False
        self._list_fields |= {name for name, kinds in fields.items() if _holds_lists(kinds)}
        space = vocab_hash(vocab)
        if self._exists():
            self._check_space(dim, space)
        self._dim, self._vocab = dim, space

    def write(self, ids: list[DocId], vectors: SparseVectors, payloads: list[Payload]) -> None:
        if self._dim is None and not self._exists():
            raise InvalidInputError("call begin(dim, vocab, fields) before the first write")
        self._check_space(vectors.dim, vectors.vocab_hash())
        _check_weights(vectors, "document")
        if not ids:  # no id to tell the key kind by, nothing to write
            return
        pk_int = _id_kind(ids)
        if self._pk_int is None and not self._exists():
            self._create(pk_int)
        if pk_int != self._pk_int:
            stored, given = ("int", "str") if self._pk_int else ("str", "int")
            raise InvalidInputError(
                f"Milvus collection {self.name!r} is keyed by {stored} ids; got {given} ids"
            )
        self._list_fields |= {k for p in payloads if p for k, v in p.items() if isinstance(v, list)}
        rows = [
            {PK: doc_id, VECTOR: _sparse_dict(vectors, i), PAYLOAD: payloads[i] or {}}
            for i, doc_id in enumerate(ids)
        ]
        if rows:
            self._engine("upsert", lambda: self._upsert(rows))

    def _upsert(self, rows: list[dict[str, Any]]) -> None:
        self._client.upsert(self.name, rows)

    def finish(self) -> None:
        if self._exists():
            self._engine("flush", lambda: self._client.flush(self.name))

    def delete(self, ids: Sequence[DocId]) -> None:
        if not self._exists():
            return
        wanted = _ids_of_kind(ids, int if self._pk_int else str)
        if wanted:
            self._retried("delete", lambda: self._client.delete(self.name, ids=wanted))

    def count(self) -> int:
        if not self._exists():
            return 0
        rows = self._retried(
            "count",
            lambda: self._client.query(
                self.name, filter="", output_fields=["count(*)"], consistency_level="Strong"
            ),
        )
        return int(rows[0]["count(*)"])

    def close(self) -> None:
        if self._client is None:
            return
        self._client.close()
        self._client = None
        if self._lite is not None:
            _LITE_CLIENTS[self._lite] -= 1
            if _LITE_CLIENTS[self._lite] == 0:
                from milvus_lite.server_manager import (
                    server_manager_instance,
                )

                del _LITE_CLIENTS[self._lite]
                server_manager_instance.release_server(self._lite)

    # -- searching ------------------------------------------------------------------------

    def search(
        self, queries: SparseVectors, k: int = 10, *, params: SearchParams | None = None
    ) -> Hits:
        k = check_k(k)
        if k > MAX_K:
            raise InvalidInputError(f"Milvus returns at most {MAX_K:,} hits per query, got k={k}")
        if not isinstance(queries, SparseVectors):
            raise InvalidInputError(f"queries must be SparseVectors, got {type(queries).__name__}")
        params = params or SearchParams()
        if not self._exists():
            raise BackendError(
                f"Milvus collection {self.name!r} does not exist (write to it first)"
            )
        self._check_space(queries.dim, queries.vocab_hash())
        _check_weights(queries, "query")
        expr = True if params.filter is None else self._filter(params.filter)
        rows = [i for i in range(queries.n) if queries.indptr[i + 1] > queries.indptr[i]]
        if expr is False:
            rows = []
        results: list[Row] = [[] for _ in range(queries.n)]
        step = max(1, min(MAX_K, RESULTS_PER_REQUEST // k))
        for start in range(0, len(rows), step):
            batch = rows[start : start + step]
            found = self._search_batch([_sparse_dict(queries, i) for i in batch], k, expr, params)
            for i, hits in zip(batch, found, strict=True):
                results[i] = [
                    (hit["id"], hit["distance"], hit["entity"].get(PAYLOAD) or None) for hit in hits
                ]
        return hits_from_rows(results, k, params.return_payloads, int_ids=bool(self._pk_int))

    def _search_batch(
        self, data: list[dict[int, float]], k: int, expr: Expr, params: SearchParams
    ) -> Any:
        search_params = {
            "metric_type": "IP",
            "params": {"drop_ratio_search": self.drop_ratio_search},
        }
        return self._retried(
            "search",
            lambda: self._client.search(
                self.name,
                data,
                anns_field=VECTOR,
                limit=k,
                filter="" if expr is True else expr,
                output_fields=[PAYLOAD] if params.return_payloads else [],
                search_params=search_params,
                consistency_level="Strong",
            ),
        )

    # -- filters --------------------------------------------------------------------------

    def _filter(self, flt: Filter) -> Expr:
        """``flt`` as a Milvus expression (``must`` and, ``should`` or, ``must_not`` excluded)."""
        must = [self._condition(cond) for cond in flt.must]
        should = _any([self._condition(cond) for cond in flt.should]) if flt.should else True
        must_not = self._exclude(flt.must_not) if flt.must_not else True
        return _all([*must, should, must_not])

    def _condition(self, cond: Any) -> Expr:
        if isinstance(cond, Filter):
            return self._filter(cond)
        if isinstance(cond, HasId):
            wanted = _ids_of_kind(cond.ids, int if self._pk_int else str)
            return f"{PK} in {_list(sorted(wanted))}" if wanted else False
        if isinstance(cond, Match):
            return _match(cond)
        if isinstance(cond, Range):
            if cond.key in self._list_fields:
                raise UnsupportedFilterError(
                    f"Milvus can't apply a range to list-valued payload field {cond.key!r} "
                    f"({cond!r}): it compares a JSON list as a whole"
                )
            return _range(cond)
        raise UnsupportedFilterError(
            f"Milvus can't test whether a JSON payload key is missing or null ({cond!r})"
        )

    def _exclude(self, conds: Sequence[Any]) -> Expr:
        """No condition of ``conds`` holds: Milvus Lite has no ``not``, so the ids they match
        are queried first, then excluded."""
        matching = _any([self._condition(cond) for cond in conds])
        if isinstance(matching, bool):
            return not matching
        ids = self._retried("query", lambda: self._matching_ids(matching))
        return f"{PK} not in {_list(ids)}" if ids else True

    def _matching_ids(self, expr: str) -> list[DocId]:
        iterator = self._client.query_iterator(
            self.name, batch_size=MAX_K, filter=expr, output_fields=[PK]
        )
        ids: list[DocId] = []
        try:
            while batch := iterator.next():
                ids.extend(row[PK] for row in batch)
        finally:
            iterator.close()
        return ids

    # -- the collection -------------------------------------------------------------------

    def _exists(self) -> bool:
        if self._pk_int is not None:
            return True
        if not self._engine("has_collection", lambda: self._client.has_collection(self.name)):
            return False
        info = self._engine("describe", lambda: self._client.describe_collection(self.name))
        fields = {field["name"]: field["type"] for field in info["fields"]}
        if set(fields) != {PK, VECTOR, PAYLOAD}:
            raise BackendError(
                f"Milvus collection {self.name!r} has fields {sorted(fields)}, not the "
                f"{PK}/{VECTOR}/{PAYLOAD} layout of sparsearch"
            )
        from pymilvus import DataType

        self._pk_int = fields[PK] == DataType.INT64
        meta = _meta(info.get("description", ""))
        self._dim = self._dim or meta.get("dim")
        self._vocab = self._vocab or meta.get("vocab")
        self._list_fields |= set(meta.get("list_fields", []))
        return True

    def _create(self, pk_int: bool) -> None:
        from pymilvus import DataType

        assert self._dim is not None  # begin() was called: write() checks it
        meta = {"dim": self._dim, "vocab": self._vocab, "list_fields": sorted(self._list_fields)}
        client = self._client
        schema = client.create_schema(auto_id=False, description=json.dumps(meta))
        if pk_int:
            schema.add_field(PK, DataType.INT64, is_primary=True)
        else:
            schema.add_field(PK, DataType.VARCHAR, is_primary=True, max_length=MAX_STR_ID)
        schema.add_field(VECTOR, DataType.SPARSE_FLOAT_VECTOR)
        schema.add_field(PAYLOAD, DataType.JSON)
        index = client.prepare_index_params()
        index.add_index(
            field_name=VECTOR,
            index_type=INDEX_TYPES[self.index],
            metric_type="IP",
            params={"drop_ratio_build": self.drop_ratio_build},
        )
        self._engine(
            "creating the collection",
            lambda: client.create_collection(
                self.name, schema=schema, index_params=index, consistency_level="Strong"
            ),
        )
        self._pk_int = pk_int

    def _check_space(self, dim: int, vocab: str | None) -> None:
        if self._dim is not None and dim != self._dim:
            raise DimensionMismatchError(
                f"Milvus collection {self.name!r} holds {self._dim}-dim vectors, got dim {dim}"
            )
        if self._vocab is not None and vocab is not None and vocab != self._vocab:
            raise VocabularyMismatchError(
                f"Milvus collection {self.name!r} was written with another vocabulary"
            )

    # -- errors ---------------------------------------------------------------------------

    def is_transient(self, err: BaseException) -> bool:
        """Milvus's retriable codes (see :data:`TRANSIENT_CODES`), an unavailable server, and
        gRPC ``UNAVAILABLE`` / ``DEADLINE_EXCEEDED``; looks through :class:`BackendError`."""
        import grpc
        from pymilvus.exceptions import MilvusException, MilvusUnavailableException
        from pymilvus.grpc_gen import common_pb2

        if isinstance(err, BackendError) and err.__cause__ is not None:
            err = err.__cause__
        if isinstance(err, grpc.RpcError):
            return err.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
        if isinstance(err, MilvusUnavailableException):
            return True
        if not isinstance(err, MilvusException):
            return False
        if err.code == 1:
            return err.compatible_code == common_pb2.NotReadyServe
        return err.code in TRANSIENT_CODES or err.compatible_code == common_pb2.RateLimit

    def _engine(self, action: str, call: Callable[[], T]) -> T:
        """``call()``, with Milvus's and gRPC's errors raised as :class:`BackendError`."""
        import grpc
        from pymilvus.exceptions import MilvusException

        if self._client is None:
            raise BackendError(f"Milvus collection {self.name!r}: the backend is closed")
        try:
            return call()
        except (MilvusException, grpc.RpcError) as err:
            raise engine_error(ENGINE, action, err) from err

    def _retried(self, action: str, call: Callable[[], T]) -> T:
        return self.with_retries(lambda: self._engine(action, call))


URI_OPTIONS = {
    "index": str,
    "token": str,
    "recreate": bool,
    "drop_ratio_build": float,
    "drop_ratio_search": float,
}
"""The query parameters of a ``milvus:`` URI and their types."""


def from_uri(uri: TargetURI, **options: Any) -> MilvusBackend:
    """``milvus://path/file.db/name`` (Milvus Lite) or ``milvus://host:port/name`` (a server;
    ``milvus+https://`` for TLS); query parameters and ``options`` go to :class:`MilvusBackend`."""
    name = uri.require_name()
    if name.endswith(".db"):
        raise InvalidInputError(f"{uri.raw!r}: name the collection after the .db file, /NAME")
    settings = uri.options(options, URI_OPTIONS)
    if uri.location.endswith(".db"):
        if uri.tls:
            raise InvalidInputError(f"{uri.raw!r}: a Milvus Lite file takes no +https")
        return MilvusBackend(name, uri=uri.location, **settings)
    if uri.is_server:
        scheme = "https" if uri.tls else "http"
        return MilvusBackend(name, uri=f"{scheme}://{uri.location}", **settings)
    raise InvalidInputError(
        f"{uri.raw!r}: name a Milvus Lite file (milvus://path/file.db/NAME) or a server "
        "(milvus://host:19530/NAME)"
    )


# -- expressions ----------------------------------------------------------------------------


def _all(parts: list[Expr]) -> Expr:
    if any(part is False for part in parts):
        return False
    exprs = [part for part in parts if isinstance(part, str)]
    return _join(exprs, " and ") if exprs else True


def _any(parts: list[Expr]) -> Expr:
    if any(part is True for part in parts):
        return True
    exprs = [part for part in parts if isinstance(part, str)]
    return _join(exprs, " or ") if exprs else False


def _join(exprs: list[str], op: str) -> str:
    return exprs[0] if len(exprs) == 1 else op.join(f"({expr})" for expr in exprs)


def _match(cond: Match) -> Expr:
    r"""Equal to a value, or (not for booleans: Milvus can't look for them in JSON lists) a list
    holding one.

    >>> print(_match(Match("tags", any=["a", '"b"'])))
    payload["tags"] in ["\"b\"", "a"] or json_contains_any(payload["tags"], ["\"b\"", "a"])
    """
    key = _key(cond.key)
    values = [v for v in cond.values if not isinstance(v, int) or -_INT64 <= v < _INT64]
    if not values:
        return False
    scalar = f"{key} in {_list(values)}"
    if cond.kind == "boolean":
        return scalar
    return f"{scalar} or json_contains_any({key}, {_list(values)})"


def _range(cond: Range) -> Expr:
    """Each bound as a comparison; infinite bounds hold for every number, or for none."""
    key = _key(cond.key)
    parts: list[Expr] = []
    for name, op in _OPS:
        bound = getattr(cond, name)
        if bound is None:
            continue
        number = _number(bound)
        if math.isinf(number):
            if (name in ("gt", "gte")) == (number > 0):  # above +inf, or below -inf
                parts.append(False)
                continue
            op, bound = ("<=", _MAX_FLOAT) if number > 0 else (">=", -_MAX_FLOAT)
        elif not (isinstance(bound, int) and -_INT64 <= bound < _INT64):
            bound = number
        parts.append(f"{key} {op} {_literal(bound)}")
    return _all(parts)


def _number(bound: float) -> float:
    try:
        return float(bound)
    except OverflowError:
        return math.copysign(math.inf, bound)


def _key(key: str) -> str:
    if "/" in key:
        raise UnsupportedFilterError(
            f"Milvus can't address payload key {key!r}: JSON pointers split keys at '/'"
        )
    return f"{PAYLOAD}[{json.dumps(key, ensure_ascii=False)}]"


def _literal(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if "\n" in value or "\r" in value:
        raise UnsupportedFilterError(
            f"Milvus can't match string {value!r}: its expressions take no line breaks"
        )
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _list(values: Sequence[Any]) -> str:
    return "[" + ", ".join(_literal(value) for value in values) + "]"


# -- rows -----------------------------------------------------------------------------------


def _sparse_dict(vectors: SparseVectors, i: int) -> dict[int, float]:
    start, stop = vectors.indptr[i], vectors.indptr[i + 1]
    return dict(
        zip(vectors.indices[start:stop].tolist(), vectors.values[start:stop].tolist(), strict=True)
    )


def _check_weights(vectors: SparseVectors, what: str) -> None:
    if vectors.nnz and float(vectors.values.min()) < 0:
        raise InvalidInputError(
            f"Milvus sparse vectors take non-negative weights; a {what} has one"
        )


def _id_kind(ids: Sequence[DocId]) -> bool:
    """Whether ``ids`` are ints (else strs); mixed kinds, or too long strs, raise."""
    kinds = {type(doc_id) for doc_id in ids}
    if len(kinds) > 1:
        raise InvalidInputError("Milvus keys a collection by int or by str ids, not both")
    for doc_id in ids:
        if isinstance(doc_id, str) and len(doc_id.encode()) > MAX_STR_ID:
            raise InvalidInputError(f"Milvus str ids have at most {MAX_STR_ID} bytes")
    return kinds == {int}


def _ids_of_kind(ids: Iterable[DocId], kind: type) -> list[DocId]:
    """The ids the collection can hold (others are ignored, as unknown ids are)."""
    return [i for i in ids if type(i) is kind and (isinstance(i, str) or 0 <= i < _INT64)]


def _holds_lists(kinds: set[str]) -> bool:
    return any(kind.endswith("[]") for kind in kinds)


def _meta(description: str) -> dict[str, Any]:
    try:
        meta = json.loads(description)
    except ValueError:
        return {}
    return meta if isinstance(meta, dict) else {}


def _ratio(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise InvalidInputError(f"{name} is a share of weights in [0, 1), got {value!r}")
    return float(value)
