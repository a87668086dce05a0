"""The HTTP client. :class:`RemoteCollection` has the methods of the embedded ``Collection`` and
returns the same ``Hit`` / ``Point``; the server's errors come back as the same
:mod:`sparsearch.errors` classes (others as :class:`ServerError`). Moving is one line::

    col = Collection.open("notes")                               # embedded
    col = Client("http://localhost:6334").collection("notes")    # served
"""

from __future__ import annotations

import json
import socket
import time
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import httpx
import numpy as np
from tqdm.auto import tqdm

from sparsearch import errors
from sparsearch.collection.results import Hit, Point
from sparsearch.errors import DuplicateIdError, InvalidInputError, SparsearchError
from sparsearch.filters import DocId, FilterLike, as_filter
from sparsearch.index.checks import normalize_ids
from sparsearch.sparse import SparseVectors

Payloads = Sequence[Mapping[str, Any] | None] | None
RETRIES = 2  # more tries of a request whose connection failed (after 0.2 s, then 0.6 s)


class ServerError(SparsearchError):
    """An error reply with no matching sparsearch error class (``status`` None: no reply)."""

    def __init__(self, status: int | None, type: str, message: str) -> None:  # noqa: A002
        self.status, self.type, self.message = status, type, message
        super().__init__(f"HTTP {status} {type}: {message}" if status else f"{type}: {message}")


class InvalidRequestError(ServerError, InvalidInputError):
    """A request the server refused as malformed (413 / 422): also an ``InvalidInputError``, the
    class the embedded collection raises for bad arguments."""


class Client:
    """A sparsearch server at ``url`` (``api_key`` goes in the ``api-key`` header): one keep-alive
    connection pool, safe to share between threads; a context manager, or call :meth:`close`."""

    def __init__(self, url: str, api_key: str | None = None, timeout: float = 60.0) -> None:
        self.url = url.rstrip("/")
        headers = {"content-type": "application/json"} | ({"api-key": api_key} if api_key else {})
        # TCP_NODELAY: a request's headers and body go out as two writes; without it, Nagle's
        # algorithm can hold the body until the server's delayed ACK (about 40 ms)
        nodelay = httpx.HTTPTransport(socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)])
        self._http = httpx.Client(
            base_url=self.url, headers=headers, timeout=timeout, transport=nodelay
        )

    def request(self, method: str, path: str, body: Any = None, *, retry: bool = False) -> Any:
        """Send one request and return its JSON reply; an error reply raises (see module doc).
        A request that never reached the server is tried again; so is a GET or a ``retry``
        (idempotent) one whose connection broke."""
        content = None if body is None else json.dumps(body, default=_plain)
        for attempt in range(RETRIES + 1):
            try:
                reply = self._http.request(method, path, content=content)
                break
            except httpx.TransportError as err:
                safe = (retry or method == "GET") and not isinstance(err, httpx.TimeoutException)
                if attempt == RETRIES or not (safe or isinstance(err, httpx.ConnectError)):
                    message = f"{method} {self.url}{path}: {err}"
                    raise ServerError(None, type(err).__name__, message) from err
                time.sleep(0.2 * 3**attempt)
        if reply.is_success:
            return reply.json()
        raise _error(reply)

    def healthz(self) -> dict[str, Any]:
        """The server's health reply (``{"status": "ok"}``); needs no API key."""
        return self.request("GET", "/healthz")  # type: ignore[no-any-return]

    def wait(self, timeout: float = 60.0) -> Client:
        """Block until the server answers ``/healthz`` (e.g. right after starting it)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self._http.get("/healthz").raise_for_status()
                return self
            except httpx.HTTPError as err:
                if time.monotonic() > deadline:
                    raise ServerError(None, "Timeout", f"{self.url} did not answer: {err}") from err
                time.sleep(0.1)

    def list_collections(self) -> list[str]:
        """The names of the server's collections."""
        return [c["name"] for c in self.request("GET", "/collections")["collections"]]

    def create_collection(self, name: str, model: str, **options: Any) -> RemoteCollection:
        """A new collection: ``model`` is a hub id; ``options`` as ``Collection.create``
        (``dense_model``, ``dense_index``, ``fusion``, ``payload_schema``, ...)."""
        self.request("PUT", f"/collections/{name}", {"model": model, **options})
        return RemoteCollection(self, name)

    def collection(self, name: str) -> RemoteCollection:
        """The collection ``name`` (``CollectionNotFoundError`` if the server has none)."""
        self.request("GET", f"/collections/{name}")
        return RemoteCollection(self, name)

    def delete_collection(self, name: str) -> None:
        """Delete a collection and every document in it."""
        self.request("DELETE", f"/collections/{name}")

    def close(self) -> None:
        """Close the connections."""
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Client({self.url!r})"


class RemoteCollection:
    """A collection on a server, with the methods (and arguments) of ``Collection``; not over
    HTTP: ``rerank``, ``threads``, ``encode`` and ``flush`` (the server manages segments)."""

    def __init__(self, client: Client, name: str) -> None:
        self.client, self.name = client, name

    def _call(self, method: str, path: str, body: Any = None, retry: bool = False) -> Any:
        return self.client.request(method, f"/collections/{self.name}{path}", body, retry=retry)

    def add_texts(
        self,
        texts: Sequence[str],
        ids: Sequence[DocId] | None = None,
        payloads: Payloads = None,
        *,
        write_batch: int = 256,
        show_progress_bar: bool | None = None,
    ) -> list[DocId]:
        """Add new documents (a stored id raises ``DuplicateIdError``); returns the ids (random
        UUIDs when not given). Each request is checked and written atomically: a duplicate in a
        later batch leaves the earlier ones written."""
        checked = _ids(ids if ids is not None else [uuid.uuid4().hex for _ in texts], texts)
        self._send(_points(checked, "text", texts, payloads), write_batch, show_progress_bar, True)
        return checked

    def upsert_texts(
        self,
        ids: Sequence[DocId],
        texts: Sequence[str],
        payloads: Payloads = None,
        *,
        write_batch: int = 256,
        show_progress_bar: bool | None = None,
    ) -> None:
        """Store documents (the server encodes them), replacing those whose id is stored;
        ``write_batch`` documents per request, each one atomic, durable write."""
        points = _points(_ids(ids, texts), "text", texts, payloads)
        self._send(points, write_batch, show_progress_bar, False)

    def _send(self, points: list[Any], write_batch: int, bar: bool | None, add: bool) -> None:
        if isinstance(write_batch, bool) or not isinstance(write_batch, int) or write_batch < 1:
            raise InvalidInputError(f"write_batch must be a positive integer, got {write_batch!r}")
        shown = len(points) > write_batch if bar is None else bar
        with tqdm(total=len(points), desc="Ingesting", unit="doc", disable=not shown) as progress:
            for start in range(0, len(points), write_batch):
                part = points[start : start + write_batch]
                path = "/points?add=true" if add else "/points"
                self._call("PUT", path, {"points": part}, retry=not add)
                progress.update(len(part))

    def upsert_vectors(
        self,
        ids: Sequence[DocId],
        vectors: SparseVectors | Sequence[Mapping[str, float]],
        payloads: Payloads = None,
        *,
        dense: np.ndarray | Sequence[Sequence[float]] | None = None,
        texts: Sequence[str] | None = None,
    ) -> None:
        """Store pre-encoded documents in one atomic write (see ``Collection.upsert_vectors``)."""
        checked = _ids(ids, texts)
        if isinstance(vectors, SparseVectors):
            rows: list[Any] = [_sparse(vectors[np.array([i])]) for i in range(vectors.n)]
        elif isinstance(vectors, (str, bytes, Mapping)) or not isinstance(vectors, Sequence):
            raise InvalidInputError("vectors must be SparseVectors or a list of dicts")
        else:
            rows = [_sparse(row) for row in vectors]
        points = _points(checked, "vector", rows, payloads)
        for name, column in (("text", texts), ("dense", dense)):
            if column is not None:
                if len(column) != len(points):
                    raise InvalidInputError(f"{len(points)} ids for {len(column)} {name} rows")
                for point, value in zip(points, column, strict=True):
                    point[name] = value
        self._call("PUT", "/points", {"points": points}, retry=True)

    def delete(self, ids: Sequence[DocId]) -> None:
        """Delete documents; an unknown id raises ``UnknownIdError`` and deletes nothing."""
        self._call("POST", "/points/delete", {"ids": normalize_ids(ids)})

    def count(self) -> int:
        """How many documents are stored."""
        return int(self._call("GET", "/points/count")["count"])

    def get(self, ids: Sequence[DocId]) -> list[Point]:
        """The stored documents; an unknown id raises ``UnknownIdError``."""
        reply = self._call("POST", "/points", {"ids": normalize_ids(ids)}, retry=True)
        return [Point.from_dict(point) for point in reply["points"]]

    def info(self) -> dict[str, Any]:
        """Counts, sizes, the encoders and the payload fields (no server path)."""
        return dict(self._call("GET", ""))

    def search(
        self,
        query: Any,
        k: int = 10,
        *,
        filter: FilterLike | None = None,  # noqa: A002 - the name users know from Qdrant
        mode: str | None = None,
        fusion: str | None = None,
        explain: bool = False,
        with_payload: bool = True,
        candidates: int = 100,
        recall: float | None = None,
    ) -> list[Hit]:
        """The top ``k`` documents for one query (see ``Collection.search_batch``)."""
        body = _search(
            query, k, _filter(filter), mode, fusion, explain, with_payload, candidates, recall
        )
        return [Hit.from_dict(h) for h in self._call("POST", "/points/search", body, True)["hits"]]

    def search_batch(
        self,
        queries: Sequence[Any],
        k: int = 10,
        *,
        filter: FilterLike | None = None,  # noqa: A002
        mode: str | None = None,
        fusion: str | None = None,
        explain: bool = False,
        with_payload: bool = True,
        candidates: int = 100,
        recall: float | None = None,
    ) -> list[list[Hit]]:
        """The top ``k`` documents of each query, in one request."""
        if isinstance(queries, (str, bytes, Mapping)) or not isinstance(queries, Sequence):
            raise InvalidInputError("queries must be a list")
        flt = _filter(filter)
        searches = [
            _search(q, k, flt, mode, fusion, explain, with_payload, candidates, recall)
            for q in queries
        ]
        if not searches:
            return []
        reply = self._call("POST", "/points/search/batch", {"searches": searches}, True)
        return [[Hit.from_dict(hit) for hit in hits] for hits in reply["results"]]

    def close(self) -> None:
        """Nothing to release (the :class:`Client` owns the connections)."""

    def __enter__(self) -> RemoteCollection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"RemoteCollection({self.client.url!r}, {self.name!r})"


def _error(reply: httpx.Response) -> SparsearchError:
    """The exception of an error reply: the sparsearch class it names, else ``ServerError``."""
    try:
        error = reply.json()["error"]
        kind, message = str(error["type"]), str(error["message"])
    except (ValueError, KeyError, TypeError):
        kind, message = "HTTPError", reply.text[:500] or reply.reason_phrase
    cls = getattr(errors, kind, None)
    if isinstance(cls, type) and issubclass(cls, SparsearchError):
        return cls(message)
    if reply.status_code in (413, 422):
        return InvalidRequestError(reply.status_code, kind, message)
    return ServerError(reply.status_code, kind, message)


def _ids(ids: Any, texts: Any) -> list[DocId]:
    """Checked ids (as ``Collection`` checks them), as many as ``texts`` when given."""
    checked = normalize_ids(ids)
    if texts is not None:
        if isinstance(texts, str) or not isinstance(texts, Sequence):
            raise InvalidInputError("texts must be a list of strings")
        if len(texts) != len(checked):
            raise InvalidInputError(f"{len(checked)} ids for {len(texts)} texts")
    twice = [doc_id for doc_id, n in Counter(checked).items() if n > 1]
    if twice:
        raise DuplicateIdError(f"ids given twice in one batch: {twice[:5]}")
    return checked


def _points(ids: list[DocId], key: str, column: Sequence[Any], payloads: Any) -> list[Any]:
    """``[{"id", key: value, "payload"?}]``, with the checks ``Collection`` makes of payloads."""
    if len(column) != len(ids):
        raise InvalidInputError(f"{len(ids)} ids for {len(column)} {key}s")
    if payloads is not None:
        if isinstance(payloads, (str, bytes, Mapping)) or not isinstance(payloads, Sequence):
            raise InvalidInputError("payloads must be a list of objects (or null)")
        if len(payloads) != len(ids):
            raise InvalidInputError(f"{len(ids)} documents but {len(payloads)} payloads")
    points = [{"id": doc_id, key: value} for doc_id, value in zip(ids, column, strict=True)]
    for point, payload in zip(points, payloads or [], strict=False):
        if payload is not None:
            point["payload"] = payload
    return points


def _search(query: Any, k: int, flt: Any, *options: Any) -> dict[str, Any]:
    """One search's JSON body (``options``: mode, fusion, explain, with_payload, candidates,
    recall)."""
    names = ("mode", "fusion", "explain", "with_payload", "candidates", "recall")
    return {
        "query": _sparse(query),
        "k": k,
        "filter": flt,
        **dict(zip(names, options, strict=True)),
    }


def _sparse(vector: Any) -> Any:
    """A query (or sparse vector) as JSON: a ``SparseVectors`` row or ``{dimension: weight}`` as
    ``{"indices", "values"}``; anything else as it is."""
    if isinstance(vector, SparseVectors):
        if vector.n != 1:
            raise InvalidInputError(f"a sparse query vector must have one row, got {vector.n}")
        indices, values = vector.row(0)
        return {"indices": indices, "values": values}
    if not isinstance(vector, Mapping):
        return vector
    if vector and all(isinstance(t, (int, np.integer)) and not isinstance(t, bool) for t in vector):
        return {"indices": list(vector), "values": list(vector.values())}
    return dict(vector)


def _filter(flt: FilterLike | None) -> Any:
    """A filter as JSON: a mapping as it is, a ``Filter`` (or collection of ids) as its mapping."""
    if flt is None or isinstance(flt, Mapping):
        return flt
    return as_filter(flt).to_dict()  # type: ignore[union-attr]


def _plain(value: Any) -> Any:
    """``json.dumps``'s fallback: numpy values as numbers and lists, mappings as dicts."""
    if isinstance(value, (np.generic, np.ndarray)):
        return value.tolist()
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
