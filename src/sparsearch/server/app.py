"""The HTTP API: a thin shell over :class:`~sparsearch.collection.Collection`.

Routes follow Qdrant's names (``/collections/{name}/points``, ``.../points/search``); OpenAPI is
served at ``/docs``. Collection calls run in worker threads (the engine releases the GIL, so
searches run in parallel); text queries are micro-batched (:mod:`.batching`); every write goes
through the collection's single writer and is in its write-ahead log before the reply.
"""

from __future__ import annotations

import asyncio
import hmac
import time
from collections.abc import Awaitable, Callable, Coroutine, MutableMapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool

from sparsearch.collection import Collection
from sparsearch.collection.queries import Encoded
from sparsearch.server import errors
from sparsearch.server.batching import QueryBatcher
from sparsearch.server.errors import RequestError, error_body
from sparsearch.server.metrics import Metrics
from sparsearch.server.registry import Registry
from sparsearch.server.schemas import (
    CreateCollection,
    PointIds,
    SearchBatch,
    SearchBody,
    SparseVectorBody,
    UpsertPoints,
    strict_json,
)
from sparsearch.server.settings import Settings

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
OPEN_PATHS = ("/healthz",)


def create_app(settings: Settings) -> FastAPI:
    """The ASGI application serving the collections under ``settings.root``."""
    registry = Registry(settings.root)
    metrics = Metrics()
    batchers: dict[str, _Batcher] = {}
    searching = [0]  # search requests in flight: a text query waits for others only if any

    def others_searching() -> bool:
        return searching[0] > 1

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> Any:
        yield
        await run_in_threadpool(registry.close)

    app = FastAPI(
        title="sparsearch",
        summary="Learned sparse retrieval: collections of text, searched by SPLADE-family vectors.",
        lifespan=lifespan,
    )
    app.router.route_class = _StrictRoute
    errors.install(app)
    app.add_middleware(_Guard, settings=settings, metrics=metrics)

    async def collection(name: str) -> Collection:
        held = registry.held(name)  # open already: no thread hop
        return held if held is not None else await run_in_threadpool(registry.get, name)

    def batcher(name: str, col: Collection) -> _Batcher:
        held = batchers.get(name)
        if held is None or held.collection is not col:
            held = batchers[name] = _Batcher(col, settings, metrics, others_searching)
        return held

    # ------------------------------------------------------------------ service
    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/metrics", response_class=PlainTextResponse)
    async def prometheus() -> str:
        sizes = [
            (name, col.count(), int(col.index.stats()["bytes"])) for name, col in registry.opened()
        ]
        return metrics.render(sizes)

    # ------------------------------------------------------------------ collections
    @app.get("/collections")
    async def list_collections() -> dict[str, Any]:
        return {"collections": [{"name": name} for name in registry.names()]}

    @app.put("/collections/{name}", status_code=201)
    async def create_collection(name: str, body: CreateCollection) -> dict[str, Any]:
        for field in ("model", "dense_model"):
            value = getattr(body, field)
            if value is not None and value.startswith(("/", ".", "~")):
                raise RequestError(422, f"{field} must be a hub id, not a path", f"body.{field}")
        options = body.model_dump()
        col = await run_in_threadpool(lambda: registry.create(name, **options))
        info = col.info()
        info.pop("path", None)  # the server's folders are not the client's business
        return {"name": name, "info": info}

    @app.get("/collections/{name}")
    async def collection_info(name: str) -> dict[str, Any]:
        col = await collection(name)
        info = col.info()
        info.pop("path", None)
        return info

    @app.delete("/collections/{name}")
    async def delete_collection(name: str) -> dict[str, Any]:
        await run_in_threadpool(registry.delete, name)
        batchers.pop(name, None)
        return {"deleted": name}

    # ------------------------------------------------------------------ points
    @app.put("/collections/{name}/points")
    async def upsert_points(name: str, body: UpsertPoints, add: bool = False) -> dict[str, Any]:
        """Store points, replacing stored ids; ``?add=true``: text points that must be new (a
        stored id is a 409 ``DuplicateIdError`` and nothing is written)."""
        _check_batch(len(body.points), settings, "body.points")
        col = await collection(name)
        points = body.points
        for i, point in enumerate(points):
            if point.text is not None:
                _check_text(point.text, settings, f"body.points.{i}.text")
        ids = [point.id for point in points]
        payloads = [point.payload for point in points]
        with_vectors = [point.vector is not None for point in points]
        if add and any(with_vectors):
            raise RequestError(422, "add=true takes texts, not vectors", "body.points")
        if all(with_vectors):
            texts = [p.text for p in points if p.text is not None]
            dense = [p.dense for p in points if p.dense is not None]
            if 0 < len(dense) < len(points):
                raise RequestError(422, "give dense rows for every point or none", "body.points")
            if 0 < len(texts) < len(points):  # else the texts given would be dropped silently
                raise RequestError(422, "give texts for every point or none", "body.points")
            await run_in_threadpool(
                lambda: col.upsert_vectors(
                    ids,
                    [_vector_dict(p.vector) for p in points],
                    payloads,
                    dense=dense or None,
                    texts=texts or None,
                )
            )
        elif not any(with_vectors):
            for i, point in enumerate(points):
                if point.text is None:
                    raise RequestError(422, "a point needs a text or a vector", f"body.points.{i}")
                if point.dense is not None:
                    raise RequestError(
                        422,
                        "dense rows come with pre-encoded vectors only",
                        f"body.points.{i}.dense",
                    )
            all_texts = [p.text or "" for p in points]
            if add:
                await run_in_threadpool(
                    lambda: col.add_texts(all_texts, ids, payloads, write_batch=len(ids))
                )
            else:
                await run_in_threadpool(
                    lambda: col.upsert_texts(ids, all_texts, payloads, write_batch=len(ids))
                )
        else:
            raise RequestError(422, "a batch is all texts or all vectors, not both", "body.points")
        return {"status": "acknowledged", "count": len(ids)}

    @app.post("/collections/{name}/points/delete")
    async def delete_points(name: str, body: PointIds) -> dict[str, Any]:
        _check_batch(len(body.ids), settings, "body.ids")
        col = await collection(name)
        await run_in_threadpool(col.delete, body.ids)
        return {"status": "acknowledged", "count": len(body.ids)}

    @app.post("/collections/{name}/points")
    async def retrieve_points(name: str, body: PointIds) -> dict[str, Any]:
        _check_batch(len(body.ids), settings, "body.ids")
        col = await collection(name)
        points = await run_in_threadpool(col.get, body.ids)
        return {"points": [point.to_dict() for point in points]}

    @app.get("/collections/{name}/points/count")
    async def count_points(name: str) -> dict[str, int]:
        col = await collection(name)
        return {"count": col.count()}

    @app.get("/collections/{name}/points/{point_id}")
    async def get_point(name: str, point_id: str) -> dict[str, Any]:
        col = await collection(name)
        candidates: list[Any] = [point_id]
        if point_id.isdigit() and len(point_id) < 19:
            candidates.insert(0, int(point_id))
        for doc_id in candidates:
            if doc_id in col.index:
                (point,) = await run_in_threadpool(col.get, [doc_id])
                return point.to_dict()
        raise RequestError(404, f"unknown id {point_id[:80]!r}", "point_id")

    # ------------------------------------------------------------------ search
    async def run_one(name: str, body: SearchBody) -> list[dict[str, Any]]:
        searching[0] += 1
        try:
            return await search_one(name, body)
        finally:
            searching[0] -= 1

    async def search_one(name: str, body: SearchBody) -> list[dict[str, Any]]:
        col = await collection(name)
        query = _query(body, settings)
        if isinstance(query, str):
            encoded = await batcher(name, col).encode(query)
        else:  # a vector: only checked and converted, cheap enough for the event loop
            encoded = col.encode([query])
        hits = await run_in_threadpool(
            lambda: col.search_batch(
                [query],
                body.k,
                filter=body.filter,
                mode=body.mode,
                fusion=body.fusion,
                explain=body.explain,
                with_payload=body.with_payload,
                candidates=body.candidates,
                threads=1,
                recall=body.recall,
                encoded=encoded,
            )
        )
        return [hit.to_dict() for hit in hits[0]]

    # the search routes answer JSONResponse directly: plain JSON types, no jsonable_encoder pass
    @app.post("/collections/{name}/points/search")
    async def search(name: str, body: SearchBody) -> JSONResponse:
        start = time.perf_counter()
        hits = await run_one(name, body)
        return JSONResponse({"hits": hits, "time_ms": (time.perf_counter() - start) * 1000})

    @app.post("/collections/{name}/points/search/batch")
    async def search_batch(name: str, body: SearchBatch) -> JSONResponse:
        _check_batch(len(body.searches), settings, "body.searches")
        start = time.perf_counter()
        results = await asyncio.gather(*(run_one(name, search) for search in body.searches))
        elapsed = (time.perf_counter() - start) * 1000
        return JSONResponse({"results": list(results), "time_ms": elapsed})

    return app


class _Batcher(QueryBatcher):
    """A collection's query batcher (remembers which collection object it encodes for)."""

    def __init__(
        self,
        col: Collection,
        settings: Settings,
        metrics: Metrics,
        others_waiting: Callable[[], bool],
    ) -> None:
        self.collection = col

        def encode(queries: Sequence[Any]) -> Encoded:
            return col.encode(queries, batch_size=max(1, len(queries)))

        super().__init__(
            encode,
            window_ms=settings.batch_window_ms,
            max_batch=settings.max_query_batch,
            on_batch=metrics.observe_query_batch,
            others_waiting=others_waiting,
        )


def _check_batch(n: int, settings: Settings, field: str) -> None:
    if n > settings.max_batch:
        raise RequestError(
            413, f"{n} items in one request; the limit is {settings.max_batch}", field
        )


def _check_text(text: str, settings: Settings, field: str) -> None:
    if not text.strip():  # refused here: in a micro-batch it would fail the others' queries
        raise RequestError(422, "a text must not be empty", field)
    if len(text) > settings.max_text_chars:
        raise RequestError(
            422, f"a text of {len(text)} characters; the limit is {settings.max_text_chars}", field
        )


def _vector_dict(vector: Any) -> dict[Any, float]:
    if isinstance(vector, SparseVectorBody):
        return {"indices": vector.indices, "values": vector.values}  # type: ignore[dict-item]
    return dict(vector)


def _query(body: SearchBody, settings: Settings) -> Any:
    if body.k > settings.max_k:
        raise RequestError(422, f"k = {body.k}; the limit is {settings.max_k}", "body.k")
    query = body.query
    if isinstance(query, str):
        _check_text(query, settings, "body.query")
        return query
    if isinstance(query, SparseVectorBody):
        return {"indices": query.indices, "values": query.values}
    return query


class _StrictJSONRequest(Request):
    """A request whose JSON body is parsed by :func:`~.schemas.strict_json`."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = strict_json(await self.body())
        return self._json


class _StrictRoute(APIRoute):
    """Routes that read their bodies as strict JSON (no NaN, no lone surrogates, bounded depth)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict(request: Request) -> Response:
            return await handler(_StrictJSONRequest(request.scope, request.receive))

        return strict


class _Guard:
    """ASGI middleware: the API key, the body size limit, and request metrics."""

    def __init__(self, app: Any, settings: Settings, metrics: Metrics) -> None:
        self.app, self.settings, self.metrics = app, settings, metrics
        self.key = settings.api_key.encode() if settings.api_key else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = [500]

        async def send_status(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            refusal = self._refusal(scope)
            if refusal is not None:
                await _reply(send_status, *refusal)
                return
            body = await _read_body(receive, self.settings.max_body_bytes)
            if body is None:
                limit = self.settings.max_body_bytes
                await _reply(send_status, 413, f"the request body is over {limit} bytes")
                return
            await self.app(scope, _replay(body), send_status)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", "unmatched")
            self.metrics.observe(scope["method"], path, status[0], time.perf_counter() - start)

    def _refusal(self, scope: Scope) -> tuple[int, str] | None:
        headers = dict(scope["headers"])
        if self.key is not None and scope["path"] not in OPEN_PATHS:
            given = headers.get(b"api-key")
            auth = headers.get(b"authorization", b"")
            if given is None and auth.lower().startswith(b"bearer "):
                given = auth[7:].strip()
            if given is None or not hmac.compare_digest(given, self.key):
                return 401, "missing or wrong API key (send it in the 'api-key' header)"
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.settings.max_body_bytes:
            return 413, f"the request body is over {self.settings.max_body_bytes} bytes"
        return None


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    """The whole request body, or None past ``limit`` bytes."""
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes) -> Receive:
    sent = False

    async def receive() -> MutableMapping[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # nothing more: wait like a client that keeps the line open
        return {"type": "http.disconnect"}

    return receive


async def _reply(send: Send, status: int, message: str) -> None:
    import json

    payload = json.dumps(error_body("RequestError", message)).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode()),
    ]
    if status == 401:
        headers.append((b"www-authenticate", b"ApiKey"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
