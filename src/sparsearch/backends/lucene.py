"""What OpenSearch and Elasticsearch share: Lucene feature fields, documents, bulk lines, the
filter DSL, search responses, and the backend both engines build on.

Both engines keep a sparse vector as one Lucene ``FeatureField`` term per token (OpenSearch's
``rank_features``, Elasticsearch's ``sparse_vector``) and score a query as the sum, over shared
tokens, of ``query weight x stored weight`` (one ``FeatureField.newLinearQuery`` per token). The
limits that follow from it are enforced here, so a batch fails before it reaches the engine:

- Keys: token names escaped by :func:`~sparsearch.backends.tokens.token_key` (no ``.``, which
  the engines read as an object path; no empty key; case and WordPiece's ``##`` kept: keys are
  case-sensitive terms), dimension numbers when the vectors have no vocabulary, and at most
  :data:`MAX_KEY_BYTES` UTF-8 bytes (Lucene's longest term).
- Document weights must be positive and finite: negatives raise, zeros are dropped (a sparse
  vector has no zero entries), and so are positive weights below float32's smallest normal,
  1.18e-38, which ``FeatureField`` rejects and which add nothing to a score.
- Precision: the engines keep 9 significant bits of each weight (relative error below 0.4 %).
  :func:`stored_weights` is that exact quantisation, so scores can be predicted
  (:func:`as_stored`, then a dot product; see :func:`predicted_scores`).
- Features per document: Lucene adds up the encoded weights of a field (the float's bits
  shifted right by 15, 32,512 for a weight of 1.0) into an int, and rejects a document whose sum
  passes 2**31 - 1 ("too many tokens for field"): about 66,000 tokens of weight 1.0.
- Query weights must lie in (0, 64] (``newLinearQuery``'s bounds; OpenSearch also rejects
  weights <= 0): zeros are dropped, others outside raise. A query holds at most ``max_clauses``
  tokens (the engines' ``indices.query.bool.max_clause_count``, 1024 by default).

Ids: ``_id`` is a string in these engines, so an int id is stored as its decimal string with a
marker field (:data:`INT_ID_FIELD`) that turns it back into an int in search results; the int 1
and the string "1" are therefore the same document.

Payload fields (single values or lists) map to ``keyword``, ``long``, ``double`` (integers and
floats mixed) or ``boolean``; fields holding JSON or mixed kinds are stored unindexed (``enabled: false``):
returned with hits, refused in filters (:class:`~sparsearch.errors.UnsupportedFilterError`).
``IsNull`` keeps sparsearch's meaning (an empty list is not null) through a hidden field that
lists each document's empty-list fields (:data:`EMPTY_LISTS_FIELD`).
"""

from __future__ import annotations

import json
from abc import abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

import numpy as np

from sparsearch.backends.base import Backend, Fields, Payload, Row, engine_error, hits_from_rows
from sparsearch.backends.tokens import vocabulary_keys
from sparsearch.errors import (
    BackendError,
    DimensionMismatchError,
    InvalidInputError,
    UnsupportedFilterError,
    VocabularyMismatchError,
)
from sparsearch.filters import DocId, Filter, HasId, IsNull, Match, Range, short_repr
from sparsearch.index.checks import check_k
from sparsearch.search import Hits, SearchParams
from sparsearch.sparse import SparseVectors, vocab_hash

MAX_KEY_BYTES = 32766
"""Lucene's longest term (``IndexWriter.MAX_TERM_LENGTH``), in UTF-8 bytes."""
MAX_QUERY_WEIGHT = 64.0
"""The largest weight ``FeatureField.newLinearQuery`` accepts."""
MAX_FIELD_LENGTH = 2**31 - 1
"""The largest sum of encoded weights Lucene takes in one document's field."""
MIN_WEIGHT = float(np.finfo(np.float32).tiny)
"""float32's smallest normal: ``FeatureField`` rejects smaller weights."""
MAX_CLAUSES = 1024
"""The engines' default ``indices.query.bool.max_clause_count``."""
DEFAULT_FIELD = "sparse_embedding"
INT_ID_FIELD = "sparsearch_int_id"
"""Boolean field set on documents whose id is an int (``_id`` holds its decimal string)."""
EMPTY_LISTS_FIELD = "sparsearch_empty_lists"
"""Keyword field naming the payload fields a document holds as empty lists (for ``IsNull``)."""
META_KEY = "sparsearch"
"""Key of the vector space's description in the mapping's ``_meta``."""
_RESERVED = {INT_ID_FIELD, EMPTY_LISTS_FIELD}
_FRACTION_BITS = 15  # FeatureField keeps a float's upper 17 bits (sign, exponent, 8 more)
_KEEP_MASK = np.uint32(0xFFFFFFFF ^ ((1 << _FRACTION_BITS) - 1))
_FIELD_TYPES = {
    frozenset({"keyword"}): "keyword",
    frozenset({"integer"}): "long",
    frozenset({"float"}): "double",
    frozenset({"integer", "float"}): "double",
    frozenset({"boolean"}): "boolean",
}
T = TypeVar("T")


def stored_weights(values: Any) -> np.ndarray:
    """The weights as the engines store them: float32 with the 15 low bits of its 23-bit
    fraction cleared (9 significant bits, truncated), as Lucene's ``FeatureField`` encodes them.

    >>> stored_weights([1.0, 0.3, 2.71828]).tolist()
    [1.0, 0.2998046875, 2.7109375]
    """
    bits = np.ascontiguousarray(values, dtype=np.float32).view(np.uint32)
    return (bits & _KEEP_MASK).view(np.float32)


def as_stored(vectors: SparseVectors) -> SparseVectors:
    """``vectors`` as the engines hold them: weights too small to store dropped, the rest
    quantised by :func:`stored_weights` (negative weights raise, as on write)."""
    keep = _kept(vectors.values, lambda i: f"row {i}", vectors)
    indptr = np.concatenate([[0], np.cumsum(keep)])[vectors.indptr]
    return SparseVectors(
        indptr,
        vectors.indices[keep],
        stored_weights(vectors.values[keep]),
        vectors.dim,
        vectors.vocab,
        validate=False,
    )


def predicted_scores(queries: SparseVectors, docs: SparseVectors) -> np.ndarray:
    """The ``(len(queries), len(docs))`` scores the engines would give (before any pruning):
    query weights times stored document weights. A prediction, not an engine's answer."""
    return queries.dot(as_stored(docs))


def _kept(values: np.ndarray, where: Callable[[int], str], vectors: SparseVectors) -> np.ndarray:
    """Which weights are stored; a negative or non-finite weight raises, naming its document."""
    bad = np.flatnonzero(~np.isfinite(values) | (values < 0))
    if bad.size:
        row = int(np.searchsorted(vectors.indptr, bad[0], side="right") - 1)
        raise InvalidInputError(
            f"{where(row)}: weight {float(values[bad[0]])} is not a positive finite number; "
            "OpenSearch and Elasticsearch store positive weights only"
        )
    return np.asarray(values >= MIN_WEIGHT)


@dataclass(frozen=True)
class FeatureSpace:
    """The vector space of an index: the vector field, ``dim``, the vocabulary's hash and each
    dimension's key. Builds documents and query tokens, and checks vectors against the index."""

    field: str
    dim: int
    vocab_hash: str | None
    keys: list[str]

    @classmethod
    def of(cls, field: str, dim: int, vocab: Sequence[str] | None) -> FeatureSpace:
        """The space of ``dim``-dimensional vectors over ``vocab`` in vector field ``field``."""
        keys = vocabulary_keys(vocab, dim)
        too_long = next((k for k in keys if len(k.encode("utf-8")) > MAX_KEY_BYTES), None)
        if too_long is not None:
            raise InvalidInputError(
                f"token {short_repr(too_long)} is longer than Lucene's {MAX_KEY_BYTES} bytes"
            )
        return cls(check_field_name(field), dim, vocab_hash(vocab), keys)

    def meta(self) -> dict[str, Any]:
        """What the mapping's ``_meta`` records of this space."""
        return {"dim": self.dim, "vocab_hash": self.vocab_hash, "field": self.field}

    def check_meta(self, meta: Mapping[str, Any] | None, index: str) -> None:
        """Raise when an existing index (its ``_meta``) holds another vector space."""
        if not isinstance(meta, Mapping):
            raise InvalidInputError(
                f"index {index!r} exists but was not written by sparsearch (no _meta.{META_KEY}); "
                "pass recreate=True to replace it"
            )
        if meta.get("dim") != self.dim:
            raise DimensionMismatchError(
                f"index {index!r} holds vectors of dim {meta.get('dim')}, not {self.dim}"
            )
        if meta.get("vocab_hash") != self.vocab_hash:
            raise VocabularyMismatchError(f"index {index!r} was written with another vocabulary")
        if meta.get("field") != self.field:
            raise InvalidInputError(
                f"index {index!r} keeps its vectors in field {meta.get('field')!r}, "
                f"not {self.field!r}"
            )

    def check(self, vectors: SparseVectors) -> None:
        """Raise when ``vectors`` do not belong to this space."""
        if vectors.dim != self.dim:
            raise DimensionMismatchError(f"vectors of dim {vectors.dim} for an index of {self.dim}")
        if vectors.vocab is not None and vectors.vocab_hash() != self.vocab_hash:
            raise VocabularyMismatchError("the vectors' vocabulary is not the index's")

    def documents(
        self, ids: Sequence[DocId], vectors: SparseVectors, payloads: Sequence[Payload]
    ) -> list[tuple[str, dict[str, Any]]]:
        """``(_id, source)`` of each document: ``{field: {key: weight}}``, the payload fields,
        the int-id marker and the empty-list fields."""
        self.check(vectors)
        keep = _kept(vectors.values, lambda i: f"document {ids[i]!r}", vectors)
        encoded = (vectors.values.view(np.uint32) >> _FRACTION_BITS).astype(np.int64) * keep
        lengths = np.diff(np.concatenate([[0], np.cumsum(encoded)])[vectors.indptr])
        if lengths.size and lengths.max() > MAX_FIELD_LENGTH:
            row = int(np.argmax(lengths))
            raise InvalidInputError(
                f"document {ids[row]!r}: its weights add up past Lucene's field length limit "
                f"({int(lengths[row]):,} > {MAX_FIELD_LENGTH:,} in FeatureField units); "
                "keep fewer or smaller weights"
            )
        docs = []
        for row, doc_id in enumerate(ids):
            start, stop = vectors.indptr[row], vectors.indptr[row + 1]
            mask = keep[start:stop]
            weights = vectors.values[start:stop][mask].astype(np.float64).tolist()
            keys = [self.keys[j] for j in vectors.indices[start:stop][mask].tolist()]
            source: dict[str, Any] = {self.field: dict(zip(keys, weights, strict=True))}
            source.update(_payload_fields(payloads[row], self.field))
            if isinstance(doc_id, int):
                source[INT_ID_FIELD] = True
            docs.append((str(doc_id), source))
        return docs

    def query_tokens(self, vectors: SparseVectors, max_clauses: int) -> list[dict[str, float]]:
        """``{key: weight}`` of each query row (zero weights dropped), checked against the
        engines' query limits."""
        self.check(vectors)
        out = []
        for row in range(vectors.n):
            indices, values = vectors.row(row)
            bad = np.flatnonzero(~np.isfinite(values) | (values < 0) | (values > MAX_QUERY_WEIGHT))
            if bad.size:
                raise InvalidInputError(
                    f"query {row}: weight {float(values[bad[0]])} is outside (0, "
                    f"{MAX_QUERY_WEIGHT:g}], the range Lucene's FeatureField queries accept"
                )
            nonzero = values > 0
            if int(nonzero.sum()) > max_clauses:
                raise InvalidInputError(
                    f"query {row} has {int(nonzero.sum())} tokens, more than max_clauses="
                    f"{max_clauses} (the engine's indices.query.bool.max_clause_count); raise "
                    "both, or keep fewer tokens (SparseVectors.top_k_per_row)"
                )
            keys = [self.keys[j] for j in indices[nonzero].tolist()]
            out.append(dict(zip(keys, values[nonzero].astype(np.float64).tolist(), strict=True)))
        return out


def check_field_name(field: object) -> str:
    """A usable vector field name: a non-empty string, not starting with ``_`` (the engines'
    metadata fields), not one of sparsearch's own fields."""
    if not isinstance(field, str) or not field or field.startswith("_") or field in _RESERVED:
        raise InvalidInputError(
            f"the vector field must be a non-empty name not starting with '_' and not "
            f"{sorted(_RESERVED)}, got {short_repr(field)}"
        )
    return field


def _payload_fields(payload: Payload, field: str) -> dict[str, Any]:
    if not payload:
        return {}
    clash = (_RESERVED | {field}) & payload.keys()
    if clash:
        raise InvalidInputError(
            f"payload field {sorted(clash)[0]!r} is reserved (the vector field or sparsearch's own)"
        )
    empty = [name for name, value in payload.items() if isinstance(value, list) and not value]
    return {**payload, EMPTY_LISTS_FIELD: empty} if empty else dict(payload)


def index_body(
    space: FeatureSpace,
    vector_type: str,
    fields: Fields,
    settings: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The create-index body: ``vector_type`` (``rank_features`` or ``sparse_vector``) for the
    vectors, a type per payload field, and the space in ``_meta``."""
    properties: dict[str, Any] = {
        space.field: {"type": vector_type},
        INT_ID_FIELD: {"type": "boolean"},
        EMPTY_LISTS_FIELD: {"type": "keyword"},
    }
    for name, kinds in fields.items():
        if name in _RESERVED or name == space.field:
            raise InvalidInputError(f"payload field {name!r} is reserved")
        kind = _FIELD_TYPES.get(frozenset(k.removesuffix("[]") for k in kinds))  # lists too
        properties[name] = {"type": kind} if kind else {"type": "object", "enabled": False}
    body: dict[str, Any] = {
        "mappings": {"_meta": {META_KEY: space.meta()}, "properties": properties}
    }
    if settings:
        body["settings"] = dict(settings)
    return body


def unindexed_fields(mapping: Mapping[str, Any]) -> set[str]:
    """The payload fields a mapping stores without indexing (not filterable)."""
    properties = mapping.get("properties", {})
    return {name for name, spec in properties.items() if spec.get("enabled") is False}


def bulk_lines(index: str, docs: Iterable[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    """The ``_bulk`` body: an ``index`` action line, then the source, per document."""
    lines: list[dict[str, Any]] = []
    for doc_id, source in docs:
        lines.append({"index": {"_index": index, "_id": doc_id}})
        lines.append(source)
    return lines


def delete_lines(index: str, ids: Iterable[DocId]) -> list[dict[str, Any]]:
    """The ``_bulk`` body deleting ``ids``."""
    return [{"delete": {"_index": index, "_id": str(doc_id)}} for doc_id in ids]


def ndjson(lines: Iterable[Mapping[str, Any]]) -> str:
    """Lines as newline-delimited JSON (compact, UTF-8 text, a newline after each)."""
    return "".join(
        json.dumps(line, ensure_ascii=False, separators=(",", ":")) + "\n" for line in lines
    )


def filter_query(flt: Filter, unindexed: AbstractSet[str] = frozenset()) -> dict[str, Any]:
    """A filter as the query DSL both engines share (``bool``, ``term(s)``, ``range``, ``ids``,
    ``exists``). Conditions on ``unindexed`` fields raise :class:`UnsupportedFilterError`.

    >>> filter_query(Filter(must=[Match("lang", "en")], must_not=[HasId([7])]))
    {'bool': {'filter': [{'term': {'lang': 'en'}}], 'must_not': [{'ids': {'values': ['7']}}]}}
    """
    clauses: dict[str, Any] = {}
    for group, name in ((flt.must, "filter"), (flt.should, "should"), (flt.must_not, "must_not")):
        if group:
            clauses[name] = [_condition(cond, unindexed) for cond in group]
    if "should" in clauses:
        clauses["minimum_should_match"] = 1
    return {"bool": clauses} if clauses else {"match_all": {}}


def _condition(cond: Any, unindexed: AbstractSet[str]) -> dict[str, Any]:
    if isinstance(cond, Filter):
        return filter_query(cond, unindexed)
    if isinstance(cond, HasId):
        return {"ids": {"values": sorted(str(i) for i in cond.ids)}}
    if cond.key in unindexed:
        raise UnsupportedFilterError(
            f"{cond!r}: field {cond.key!r} holds JSON or mixed values, stored but not indexed"
        )
    if isinstance(cond, Match):
        if cond.any is None:
            return {"term": {cond.key: cond.value}}
        return {"terms": {cond.key: list(cond.any)}} if cond.any else {"match_none": {}}
    if isinstance(cond, Range):
        return {"range": {cond.key: cond.to_dict()["range"]}}
    if isinstance(cond, IsNull):
        return {
            "bool": {
                "must_not": [
                    {"exists": {"field": cond.key}},
                    {"term": {EMPTY_LISTS_FIELD: cond.key}},
                ]
            }
        }
    raise UnsupportedFilterError(f"{cond!r} has no OpenSearch/Elasticsearch equivalent")


def search_body(
    clause: Mapping[str, Any],
    k: int,
    flt: Mapping[str, Any] | None,
    field: str,
    payloads: bool,
) -> dict[str, Any]:
    """One search: the scoring ``clause`` (in a ``bool`` whose ``filter`` holds ``flt``, which
    leaves scores unchanged), ``k`` hits, and only the ``_source`` fields needed."""
    query = dict(clause) if flt is None else {"bool": {"must": [clause], "filter": [flt]}}
    source: Any = {"excludes": [field]} if payloads else [INT_ID_FIELD]
    return {"size": k, "query": query, "_source": source, "track_total_hits": False}


def parse_hits(
    responses: Sequence[Mapping[str, Any] | None], k: int, payloads: bool, engine: str
) -> Hits:
    """:class:`Hits` from search responses (``None``: a query with no tokens, no hits); int ids
    come back as ints, scores as float32."""
    rows: list[Row] = []
    for response in responses:
        if response is None:
            rows.append([])
            continue
        if "error" in response:
            raise BackendError(f"{engine}: search failed: {json.dumps(response['error'])[:500]}")
        rows.append([_hit(hit) for hit in response["hits"]["hits"][:k]])
    return hits_from_rows(rows, k, payloads)


def _hit(hit: Mapping[str, Any]) -> tuple[DocId, float, Payload]:
    source = dict(hit.get("_source") or {})
    doc_id: DocId = int(hit["_id"]) if source.pop(INT_ID_FIELD, False) else str(hit["_id"])
    source.pop(EMPTY_LISTS_FIELD, None)
    return doc_id, float(hit["_score"]), source or None


class BulkRejectedError(BackendError):
    """Every failed item of a bulk request was rejected with 429 (the engine is busy): worth a
    retry."""


def check_bulk(response: Mapping[str, Any], engine: str) -> None:
    """Raise when a ``_bulk`` response reports failed items (the first one's reason)."""
    if not response.get("errors"):
        return
    failed = [
        result
        for item in response.get("items", [])
        for result in item.values()
        if result.get("status", 200) >= 300 and result.get("status") != 404
    ]
    if not failed:
        return
    first = failed[0]
    message = (
        f"{engine}: bulk failed for {len(failed)} documents; first, id {first.get('_id')!r}: "
        f"{json.dumps(first.get('error'))[:500]}"
    )
    if all(result.get("status") == 429 for result in failed):
        raise BulkRejectedError(message)
    raise BackendError(message)


class LuceneBackend(Backend):
    """An OpenSearch or Elasticsearch index of sparse vectors, through the engine's client.

    ``begin`` creates the index (``recreate=True`` replaces one that exists; an existing index
    must hold the same vector space), ``write`` bulk-indexes, ``finish`` refreshes, ``search``
    sends one ``_msearch`` per call (queries without tokens are answered locally, empty).
    Subclasses give the client calls whose signatures differ and the scoring clause.
    """

    engine: ClassVar[str]
    vector_type: ClassVar[str]

    def __init__(
        self,
        client: Any,
        index: str,
        *,
        field: str = DEFAULT_FIELD,
        recreate: bool = False,
        settings: Mapping[str, Any] | None = None,
        max_clauses: int = MAX_CLAUSES,
    ) -> None:
        if not isinstance(index, str) or not index:
            raise InvalidInputError(f"an index name is a non-empty string, got {index!r}")
        self.client = client
        self.index = index
        self.field = check_field_name(field)
        self.recreate = recreate
        self.settings = dict(settings or {})
        self.max_clauses = max_clauses
        self._space: FeatureSpace | None = None
        self._unindexed: set[str] | None = None

    # -- what differs between the two clients --------------------------------------------------

    @abstractmethod
    def _create_index(self, body: dict[str, Any]) -> Any:
        """Create :attr:`index` with ``body`` (mappings and settings)."""

    @abstractmethod
    def _bulk(self, lines: list[dict[str, Any]]) -> Any:
        """Send a ``_bulk`` body."""

    @abstractmethod
    def _msearch(self, lines: list[dict[str, Any]]) -> Any:
        """Send an ``_msearch`` body against :attr:`index`."""

    @abstractmethod
    def _clause(self, tokens: dict[str, float]) -> dict[str, Any]:
        """The engine's scoring clause for one query's ``{key: weight}``."""

    @abstractmethod
    def _is_transient(self, err: BaseException) -> bool:
        """Whether a client error is a timeout, a refused connection, or a 429/502/503/504."""

    # -- the Backend protocol -------------------------------------------------------------------

    def begin(self, dim: int, vocab: Sequence[str] | None, fields: Fields) -> None:
        space = FeatureSpace.of(self.field, dim, vocab)
        indices = self.client.indices
        exists = bool(self._call("check the index", lambda: indices.exists(index=self.index)))
        if exists and self.recreate:
            self._call("delete the index", lambda: indices.delete(index=self.index))
            exists = False
        if exists:
            space.check_meta(self._mapping().get("_meta", {}).get(META_KEY), self.index)
        else:
            body = index_body(space, self.vector_type, fields, self.settings)
            self._call("create the index", lambda: self._create_index(body))
            self._unindexed = unindexed_fields(body["mappings"])
        self._space = space

    def write(self, ids: list[DocId], vectors: SparseVectors, payloads: list[Payload]) -> None:
        docs = self._known_space(vectors).documents(ids, vectors, payloads)
        if docs:
            lines = bulk_lines(self.index, docs)
            check_bulk(self._call("bulk indexing", lambda: self._bulk(lines)), self.engine)

    def finish(self) -> None:
        self._call("refresh", lambda: self.client.indices.refresh(index=self.index))

    def delete(self, ids: Sequence[DocId]) -> None:
        if ids:
            lines = delete_lines(self.index, ids)
            check_bulk(self._call("delete", lambda: self._bulk(lines)), self.engine)

    def count(self) -> int:
        return int(self._call("count", lambda: self.client.count(index=self.index))["count"])

    def search(
        self, queries: SparseVectors, k: int = 10, *, params: SearchParams | None = None
    ) -> Hits:
        if not isinstance(queries, SparseVectors):
            raise InvalidInputError(f"queries must be SparseVectors, got {type(queries).__name__}")
        tokens = self._known_space(queries).query_tokens(queries, self.max_clauses)
        clauses = [self._clause(row) if row else None for row in tokens]
        return self.run_searches(clauses, k, params)

    def run_searches(
        self, clauses: Sequence[Mapping[str, Any] | None], k: int, params: SearchParams | None
    ) -> Hits:
        """Top ``k`` hits of each scoring clause (``None``: no hits) in one ``_msearch``."""
        k = check_k(k)
        params = params or SearchParams()
        flt = None
        if params.filter is not None:
            flt = filter_query(params.filter, self._unindexed_fields())
        field = self._space.field if self._space else self.field
        lines: list[dict[str, Any]] = []
        for clause in clauses:
            if clause is not None:
                lines += [{}, search_body(clause, k, flt, field, params.return_payloads)]
        answered: Iterator[Mapping[str, Any]] = iter([])
        if lines:
            answered = iter(self._call("search", lambda: self._msearch(lines))["responses"])
        responses = [None if clause is None else next(answered) for clause in clauses]
        return parse_hits(responses, k, params.return_payloads, self.engine)

    def is_transient(self, err: BaseException) -> bool:
        if isinstance(err, BulkRejectedError):
            return True
        cause = err.__cause__ if isinstance(err, BackendError) else err
        return cause is not None and self._is_transient(cause)

    def close(self) -> None:
        self.client.close()

    # -- helpers --------------------------------------------------------------------------------

    def _call(self, action: str, call: Callable[[], T]) -> T:
        """``call()`` with the client's errors raised as :class:`BackendError` (the client's
        error as its cause) and its response as a plain mapping."""
        try:
            response = call()
        except (BackendError, InvalidInputError):
            raise
        except Exception as err:
            error = engine_error(self.engine, action, err)
            info = getattr(err, "info", None) or getattr(err, "body", None)
            if isinstance(info, Mapping) and "error" in info:  # the engine's own explanation
                error = BackendError(f"{error}: {json.dumps(info['error'])[:500]}")
            raise error from err
        return getattr(response, "body", response)  # type: ignore[no-any-return]

    def _mapping(self) -> dict[str, Any]:
        """The index's mapping (remembering which fields are not indexed)."""
        response = self._call(
            "read the mapping", lambda: self.client.indices.get_mapping(index=self.index)
        )
        indexes: dict[str, Any] = dict(response)
        first: dict[str, Any] = next(iter(indexes.values()), {})
        mapping = dict(first.get("mappings", {}))
        self._unindexed = unindexed_fields(mapping)
        return mapping

    def _known_space(self, vectors: SparseVectors) -> FeatureSpace:
        """The index's space: from :meth:`begin`, or read once from the index's ``_meta``."""
        if self._space is None:
            space = FeatureSpace.of(self.field, vectors.dim, vectors.vocab)
            space.check_meta(self._mapping().get("_meta", {}).get(META_KEY), self.index)
            self._space = space
        return self._space

    def _unindexed_fields(self) -> set[str]:
        if self._unindexed is None:
            self._mapping()
        return self._unindexed or set()


def server_url(uri: Any) -> str:
    """``http(s)://host:port`` of an engine URI (``opensearch://host:9200/name``), or an error
    when the URI names no server."""
    uri.require_name()
    if not uri.is_server:
        raise InvalidInputError(
            f"{uri.raw!r}: {uri.scheme} needs a host:port, e.g. {uri.scheme}://localhost:9200/NAME"
        )
    return f"{'https' if uri.tls else 'http'}://{uri.location}"
