"""A loopback HTTP server for format-level tests of the OpenSearch and Elasticsearch backends.

It records every request an official client sends (method, path, query, headers, body) and answers
with the response shapes the engines document (create index, ``_mapping``, ``_bulk``,
``_refresh``, ``_count``, ``_msearch``, search pipelines, settings). It ranks nothing: every
search answers the ``canned`` hits a test sets, in that order. No engine is involved.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

SHARDS = {"total": 1, "successful": 1, "skipped": 0, "failed": 0}


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def lines(self) -> list[Any]:
        assert self.body.endswith(b"\n"), "NDJSON bodies end with a newline"
        return [json.loads(line) for line in self.body.decode().splitlines()]


@dataclass
class Loopback:
    """Server state: indexes (their mappings and stored sources) and what to answer."""

    requests: list[Request] = field(default_factory=list)
    mappings: dict[str, dict] = field(default_factory=dict)
    docs: dict[str, dict[str, dict]] = field(default_factory=dict)
    canned: list[tuple[str, float]] = field(default_factory=list)
    bulk_failures: list[tuple[int, str]] = field(default_factory=list)
    """(status, error type) answered to the next bulk requests' items, one entry per request."""
    status_failures: list[tuple[str, int, dict]] = field(default_factory=list)
    """(method, status, error body): the answer to the next request of that method."""

    def answer(self, req: Request) -> tuple[int, Any]:
        if self.status_failures and self.status_failures[0][0] == req.method:
            return self.status_failures.pop(0)[1:]
        parts = [p for p in req.path.split("/") if p]
        index = parts[0] if parts and not parts[0].startswith("_") else None
        action = parts[-1] if parts and parts[-1].startswith("_") else None
        if parts[:2] == ["_search", "pipeline"] and req.method == "PUT":
            return 200, {"acknowledged": True}
        if action == "_bulk":
            return self._bulk(req.lines())
        if action == "_msearch":
            return self._msearch(index, req.lines())
        if action == "_refresh":
            return 200, {"_shards": SHARDS}
        if action == "_count":
            return 200, {"count": len(self.docs.get(index, {})), "_shards": SHARDS}
        if action == "_mapping":
            return 200, {index: {"mappings": self.mappings[index]}}
        if action == "_settings" and req.method == "PUT":
            return 200, {"acknowledged": True}
        if req.method == "HEAD":
            return (200 if index in self.mappings else 404), None
        if req.method == "PUT":
            self.mappings[index] = req.json().get("mappings", {})
            self.docs[index] = {}
            return 200, {"acknowledged": True, "shards_acknowledged": True, "index": index}
        if req.method == "DELETE":
            self.mappings.pop(index, None)
            self.docs.pop(index, None)
            return 200, {"acknowledged": True}
        return 400, {"error": {"type": "unknown_request", "reason": req.path}, "status": 400}

    def _bulk(self, lines: list[dict]) -> tuple[int, Any]:
        failure = self.bulk_failures.pop(0) if self.bulk_failures else None
        items = []
        i = 0
        while i < len(lines):
            ((op, meta),) = lines[i].items()
            index, doc_id = meta["_index"], meta["_id"]
            result: dict[str, Any] = {"_index": index, "_id": doc_id}
            if failure is not None:
                status, kind = failure
                result |= {"status": status, "error": {"type": kind, "reason": f"{kind} here"}}
            elif op == "index":
                self.docs.setdefault(index, {})[doc_id] = lines[i + 1]
                result |= {"status": 201, "result": "created"}
            else:
                found = self.docs.get(index, {}).pop(doc_id, None) is not None
                result |= {"status": 200 if found else 404}
            items.append({op: result})
            i += 2 if op == "index" else 1
        return 200, {"took": 1, "errors": failure is not None, "items": items}

    def _msearch(self, index: str | None, lines: list[dict]) -> tuple[int, Any]:
        responses = []
        for body in lines[1::2]:
            hits = []
            for doc_id, score in self.canned[: body["size"]]:
                source = self.docs[index][doc_id]
                wanted = body["_source"]
                if isinstance(wanted, list):
                    source = {key: value for key, value in source.items() if key in wanted}
                else:
                    source = {k: v for k, v in source.items() if k not in wanted["excludes"]}
                hits.append({"_index": index, "_id": doc_id, "_score": score, "_source": source})
            responses.append(
                {
                    "took": 1,
                    "timed_out": False,
                    "_shards": SHARDS,
                    "hits": {"max_score": hits[0]["_score"] if hits else None, "hits": hits},
                    "status": 200,
                }
            )
        return 200, {"took": 1, "responses": responses}


def serve(state: Loopback) -> tuple[ThreadingHTTPServer, str]:
    """Start a server answering from ``state``; returns it and its ``host:port``."""

    class Handler(BaseHTTPRequestHandler):
        def _handle(self) -> None:
            url = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            req = Request(
                self.command,
                url.path,
                dict(parse_qsl(url.query)),
                {k.lower(): v for k, v in self.headers.items()},
                self.rfile.read(length),
            )
            state.requests.append(req)
            status, body = state.answer(req)
            data = b"" if body is None else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("X-Elastic-Product", "Elasticsearch")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    host, port = server.server_address[:2]
    return server, f"{host}:{port}"
