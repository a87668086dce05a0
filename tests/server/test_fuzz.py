"""Fuzzed request bodies against a real server: nothing a client sends makes it fail.

A seeded generator (deterministic, no hypothesis database) sends well over 300 bodies to the
create, upsert, search, batch search, delete and retrieve routes: random JSON values, valid
bodies with one to three mutations (a key dropped, an unknown key, a value of the wrong type,
huge numbers, nasty strings, lone surrogates), and raw texts that are not JSON at all (``NaN``,
``Infinity``, ``1e999``, truncated bodies, deep nesting, stray bytes). Every answer must be a
4xx with a JSON error (or a 2xx when the body happened to be valid), never a 5xx; the server must
stay up; and a refused request must leave the stored data exactly as it was (count, a sample of
points read back, the results of fixed searches, the list of collections).
"""

from __future__ import annotations

import copy
import json
import random
import signal
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.conftest import real_model
from tests.server.conftest import MODEL, ServerProcess, error_of, module_server, scifact_docs

pytestmark = pytest.mark.real_model

SEED = 20_240_607
PER_ROUTE = {"mutated": 22, "shaped": 30, "random": 10, "raw": 18}  # x 6 routes = 480 bodies
NAME = "fz"
SCHEMA = {"lang": "keyword", "n": "integer"}
MAX_TEXT = 400
MAX_BATCH = 16

FIELDS = [
    "points", "id", "text", "vector", "dense", "payload", "ids", "query", "k", "filter", "mode",
    "fusion", "explain", "with_payload", "candidates", "recall", "searches", "model", "dense_model",
    "dense_index", "payload_schema", "max_active_dims", "precision", "store_text", "indices",
    "values", "must", "should", "must_not", "key", "match", "value", "range", "gt", "lt", "lang",
    "n", "_sparsearch",
]  # fmt: skip
NASTY = [
    "", " ", "\t\n", "\x00", "a\x00b", "\u202e\u202d", "\U0001f600", "\ud800", "\udfff x",
    "\ud83d", "<script>alert(1)</script>", "'; DROP TABLE points; --", "../../etc/passwd",
    "/etc/passwd", "~/.ssh/id_rsa", "%s%n%x", "{}", "null", "NaN", "Infinity", "ｆｕｌｌ",
    "\uffff", "\U0010ffff", "cinema", "cells", "lang", "en", "must", "sparse", "dense", "hybrid",
    "rrf", "linear", "keyword", "integer", "flat", "hnsw", "x" * (MAX_TEXT + 1), "ß" * 300,
    MODEL, "sentence-transformers/all-MiniLM-L6-v2", "no/such-model", "0", "-1", "1e999",
    "\\u0000", "\r\n\r\nHTTP/1.1 200 OK",
]  # fmt: skip
INTS = [
    0,
    1,
    -1,
    2,
    7,
    10,
    100,
    1001,
    2**31,
    2**53 + 1,
    2**63 - 1,
    2**63,
    2**64,
    -(2**63) - 1,
    10**40,
]
FLOATS = [0.0, -0.0, 0.5, -2.5, 1e-300, 5e-324, 1e38, 3.5e38, 1e300, -1e308, 1.7976931348623157e308]
RAW = [
    b"NaN", b"Infinity", b"-Infinity", b"1e999", b"-1e999", b"null", b"true", b"0", b'""',
    b"[]", b"{}", b"{", b"}", b"[", b"{,}", b"{'query': 'x'}", b'{"query": "x",}',
    b'{"query": NaN}', b'{"query": "x", "k": NaN}', b'{"query": "x", "k": Infinity}',
    b'{"query": "x", "k": 1e999}', b'{"query": {"cinema": NaN}}', b'{"query": {"cinema": -Infinity}}',
    b'{"query": [NaN, 1.0]}', b'{"points": [{"id": NaN, "text": "x"}]}',
    b'{"points": [{"id": "a", "text": "x", "payload": {"n": NaN}}]}',
    b'{"points": [{"id": "a", "vector": {"cinema": 1e999}}]}', b'{"ids": [NaN]}',
    b'{"ids": [1e999]}', b'{"ids": ["\\ud800"]}', b'{"model": "\\udfff"}',
    b'{"searches": [{"query": NaN}]}', b'{"query": "\\ud800\\ud800"}', b'{"query": "\xff"}',
    b'\xef\xbb\xbf{"query": "x"}', b'{"query": "x"}\x00', b"\x00\x00\x00\x00",
    b'{"query": "x", "query": 5}', b'{"ids": [1, 2, 3' + b", 4" * 2000,
]  # fmt: skip


# ---------------------------------------------------------------------------- generators
def random_string(rng: random.Random) -> str:
    if rng.random() < 0.6:
        return rng.choice(NASTY)
    alphabet = "abcxyz019 _-.:/\\\"'{}[]\u00e9\u4e2d\U0001f600\ud800\x00\x7f"
    return "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 40)))


def random_value(rng: random.Random, depth: int = 0) -> Any:
    """A random JSON value (finite numbers only: NaN and friends travel as raw text)."""
    kind = rng.randrange(10 if depth < 4 else 6)
    if kind == 0:
        return None
    if kind == 1:
        return rng.random() < 0.5
    if kind == 2:
        return rng.choice(INTS) if rng.random() < 0.7 else rng.randint(-1000, 1000)
    if kind == 3:
        return rng.choice(FLOATS) if rng.random() < 0.7 else rng.uniform(-1e6, 1e6)
    if kind in (4, 5):
        return random_string(rng)
    if kind in (6, 7):
        return [random_value(rng, depth + 1) for _ in range(rng.randrange(0, 5))]
    keys = [rng.choice(FIELDS) if rng.random() < 0.7 else random_string(rng) for _ in range(4)]
    return {key: random_value(rng, depth + 1) for key in keys[: rng.randrange(0, 5)]}


def deep(rng: random.Random) -> Any:
    """A value nested deeper than any request needs (but shallower than the encoder's limit)."""
    value: Any = rng.choice(["x", 1, None])
    for _ in range(rng.randrange(40, 400)):
        value = [value] if rng.random() < 0.5 else {rng.choice(FIELDS): value}
    return value


def slots(value: Any) -> list[tuple[Any, Any]]:
    """Every (container, key) in a JSON value: the places a mutation can act on."""
    found: list[tuple[Any, Any]] = []
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            found += [(node, key) for key in node]
            stack += list(node.values())
        elif isinstance(node, list):
            found += [(node, i) for i in range(len(node))]
            stack += node
    return found


def mutate(rng: random.Random, body: Any) -> Any:
    """``body`` with one to three random mutations."""
    body = copy.deepcopy(body)
    for _ in range(rng.randint(1, 3)):
        places = slots(body)
        if not places:
            return random_value(rng)
        container, key = rng.choice(places)
        action = rng.randrange(9)
        if action == 0:
            del container[key]
        elif action == 1 and isinstance(container, dict):
            container[rng.choice(FIELDS) if rng.random() < 0.5 else random_string(rng)] = (
                random_value(rng)
            )
        elif action == 2 and isinstance(container, list) and container:
            container.append(copy.deepcopy(container[key]))  # a duplicate (ids, points)
        elif action == 3:
            container[key] = rng.choice(INTS + FLOATS)
        elif action == 4:
            container[key] = random_string(rng)
        elif action == 5:
            container[key] = [container[key]]
        elif action == 6:
            container[key] = deep(rng)
        elif action == 7 and isinstance(container[key], list):
            container[key] = container[key] * rng.choice([0, 5, 40])
        else:
            container[key] = random_value(rng)
    return body


def random_number(rng: random.Random) -> Any:
    return rng.choice(INTS + FLOATS) if rng.random() < 0.7 else rng.uniform(-10, 10)


def random_filter(rng: random.Random, depth: int = 0) -> Any:
    """A filter of the right shape with random keys, values and nesting."""
    out: dict[str, Any] = {}
    for clause in rng.sample(["must", "should", "must_not"], rng.randint(1, 2)):
        conditions: list[Any] = []
        for _ in range(rng.randint(0, 3)):
            key = rng.choice(["lang", "n", "nope", random_string(rng)])
            roll = rng.random()
            if roll < 0.4:
                conditions.append({"key": key, "match": {"value": random_value(rng, 3)}})
            elif roll < 0.7:
                bounds = rng.sample(["gt", "gte", "lt", "lte"], rng.randint(1, 2))
                conditions.append({"key": key, "range": {b: random_number(rng) for b in bounds}})
            elif depth < 3:
                conditions.append(random_filter(rng, depth + 1))
            else:
                conditions.append(random_value(rng, 3))
        out[clause] = conditions
    return out


def random_query(rng: random.Random) -> Any:
    roll = rng.random()
    if roll < 0.35:
        return random_string(rng)
    if roll < 0.6:
        return {random_string(rng): random_number(rng) for _ in range(rng.randint(0, 3))}
    if roll < 0.8:
        n = rng.randint(0, 3)
        return {
            "indices": [rng.choice(INTS) for _ in range(n)],
            "values": [random_number(rng) for _ in range(n + rng.choice([0, 0, 1]))],
        }
    return [random_number(rng) for _ in range(rng.choice([0, 1, 3, 384]))]


def shaped_body(rng: random.Random, route: str, sample: list[Any]) -> Any:
    """A body with every field of the right JSON type but random values: it passes the schema
    and reaches the collection's own checks."""

    def some_id() -> Any:
        return rng.choice([random_string(rng), rng.choice(INTS), rng.choice(sample)])

    def search() -> Any:
        body: dict[str, Any] = {"query": random_query(rng)}
        for field, make in [
            ("k", lambda: rng.choice(INTS)),
            ("filter", lambda: random_filter(rng)),
            ("mode", lambda: rng.choice(["sparse", "dense", "hybrid"])),
            ("fusion", lambda: rng.choice(["rrf", "linear"])),
            ("explain", lambda: rng.random() < 0.5),
            ("with_payload", lambda: rng.random() < 0.5),
            ("candidates", lambda: rng.choice(INTS)),
            ("recall", lambda: rng.choice([0.5, 0.95, 1, 0, -0.1, 1.5, 1e308, "0.9", None])),
        ]:
            if rng.random() < 0.4:
                body[field] = make()
        return body

    if route == "upsert":
        points = []
        for _ in range(rng.randint(1, 3)):
            point: dict[str, Any] = {"id": some_id()}
            if rng.random() < 0.5:
                point["text"] = random_string(rng)
            else:
                point["vector"] = (
                    random_query(rng)
                    if rng.random() < 0.3
                    else {rng.choice(["cells", "protein", random_string(rng)]): random_number(rng)}
                )
            if rng.random() < 0.6:
                point["payload"] = {
                    rng.choice(["lang", "n", "extra", random_string(rng)]): random_value(rng, 2)
                    for _ in range(rng.randint(0, 3))
                }
            if rng.random() < 0.15:
                point["dense"] = [random_number(rng) for _ in range(rng.choice([1, 384]))]
            points.append(point)
        return {"points": points}
    if route == "search":
        return search()
    if route == "batch":
        return {"searches": [search() for _ in range(rng.randint(1, 3))]}
    if route in ("delete", "retrieve"):
        return {"ids": [some_id() for _ in range(rng.randint(1, 4))]}
    body = {"model": rng.choice([random_string(rng), "no-such/model"])}
    if rng.random() < 0.5:
        body["payload_schema"] = {
            random_string(rng): rng.choice(["keyword", "integer", "text", "float[]", ""])
        }
    if rng.random() < 0.3:
        body["max_active_dims"] = rng.choice(INTS)
    if rng.random() < 0.3:
        body["dense_model"] = random_string(rng)
    return body


def raw_body(rng: random.Random, valid: Any) -> bytes:
    """Bytes that are not (strict) JSON, most of the time."""
    choice = rng.randrange(6)
    text = json.dumps(valid)
    if choice == 0:
        return rng.choice(RAW)
    if choice == 1:  # truncated
        return text[: rng.randrange(0, max(1, len(text)))].encode()
    if choice == 2:  # a number replaced by a non-finite literal
        literal = rng.choice(["NaN", "Infinity", "-Infinity", "1e999", "-1e400", "1" + "0" * 5000])
        pieces = text.split(":")
        at = rng.randrange(1, len(pieces)) if len(pieces) > 1 else 0
        if at:
            tail = pieces[at].lstrip()
            pieces[at] = " " + literal + tail[len(tail.split(",")[0].split("}")[0]) :]
        return ":".join(pieces).encode()
    if choice == 3:  # nesting deeper than the parser allows
        depth = rng.choice([70, 500, 5000, 100_000])
        return b'{"query": ' + b"[" * depth + b"]" * depth + b"}"
    if choice == 4:  # random bytes flipped into a valid body
        data = bytearray(text.encode())
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        return bytes(data)
    return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200)))


def encode(value: Any) -> bytes:
    """JSON text of a value; lone surrogates go as ``\\udXXX`` escapes (valid JSON text)."""
    return json.dumps(value, ensure_ascii=True, allow_nan=False).encode()


# ---------------------------------------------------------------------------- the routes
def valid_bodies(rng: random.Random, sample: list[Any]) -> dict[str, Callable[[], Any]]:
    """Route -> a maker of valid bodies (the seeds of the mutations)."""
    serial = iter(range(10**6))

    def upsert() -> Any:
        i = next(serial)
        if rng.random() < 0.5:
            point = {
                "id": f"fz-{i}",
                "text": f"cells and proteins {i}",
                "payload": {"lang": "en", "n": i},
            }
        else:
            point = {
                "id": 10_000 + i,
                "vector": {"cells": 1.5, "protein": 0.5},
                "payload": {"n": i},
            }
        return {"points": [point]}

    def search() -> Any:
        return rng.choice(
            [
                {"query": "protein folding in cells", "k": 3},
                {"query": {"cells": 1.0, "protein": 0.5}, "k": 5, "explain": True},
                {"query": {"indices": [1000, 2000], "values": [1.0, 0.5]}, "k": 2},
                {"query": "immune", "k": 4, "filter": {"must": [{"key": "lang", "match": {"value": "en"}}]}},
                {"query": "brain", "filter": {"must": [{"key": "n", "range": {"gte": 3}}]}, "with_payload": False},
            ]
        )  # fmt: skip

    return {
        "create": lambda: {"model": MODEL, "payload_schema": {"a": "keyword"}, "store_text": True},
        "upsert": upsert,
        "search": search,
        "batch": lambda: {"searches": [search(), search()]},
        "delete": lambda: {"ids": ["fz-missing", rng.choice(sample)]},  # 404: deletes nothing
        "retrieve": lambda: {"ids": rng.sample(sample, 3)},
    }


ROUTES = {
    "create": ("PUT", "/collections/{name}"),
    "upsert": ("PUT", f"/collections/{NAME}/points"),
    "search": ("POST", f"/collections/{NAME}/points/search"),
    "batch": ("POST", f"/collections/{NAME}/points/search/batch"),
    "delete": ("POST", f"/collections/{NAME}/points/delete"),
    "retrieve": ("POST", f"/collections/{NAME}/points"),
}
WRITES = {"create", "upsert", "delete"}


# ---------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    real_model(MODEL)
    yield from module_server(
        tmp_path_factory, "--max-text-chars", str(MAX_TEXT), "--max-batch", str(MAX_BATCH)
    )


@pytest.fixture(scope="module")
def seeded(server: ServerProcess, shared_data: Path) -> list[Any]:
    """The collection ``fz`` with 16 SciFact documents; their ids."""
    points = [
        {"id": int(doc_id) if i % 2 else doc_id, "text": text, "payload": {"lang": "en", "n": i}}
        for i, (doc_id, text) in enumerate(scifact_docs(shared_data, 16, chars=150))
    ]
    with server.client() as http:
        assert (
            http.put(
                f"/collections/{NAME}", json={"model": MODEL, "payload_schema": SCHEMA}
            ).status_code
            == 201
        )
        assert http.put(f"/collections/{NAME}/points", json={"points": points}).status_code == 200
    return [p["id"] for p in points]


def snapshot(http: httpx.Client, sample: list[Any], full: bool = True) -> Any:
    """What a refused request must not change: the count, the sample points read back, a fixed
    vector search and the list of collections; ``full`` adds a text search (a forward pass)."""
    count = http.get(f"/collections/{NAME}/points/count")
    points = http.post(f"/collections/{NAME}/points", json={"ids": sample})
    queries: list[Any] = [{"cells": 1.0, "brain": 2.0, "protein": 0.5}]
    if full:
        queries.append("protein expression in human cells")
    searches = [
        http.post(f"/collections/{NAME}/points/search", json={"query": query, "k": 8})
        for query in queries
    ]
    listed = http.get("/collections")
    answers = [count, points, *searches, listed]
    assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
    hits = [
        [(h["id"], round(h["score"], 5), h["payload"]) for h in s.json()["hits"]] for s in searches
    ]
    return count.json(), points.json(), hits, listed.json()


def snapshot_part(state: Any, full: bool) -> Any:
    count, points, hits, listed = state
    return count, points, hits if full else hits[:1], listed


def present(http: httpx.Client, ids: list[Any]) -> set[Any]:
    """The ids still stored (a valid fuzzed delete may have removed some of the sample)."""
    return {
        doc_id
        for doc_id in ids
        if http.get(f"/collections/{NAME}/points/{doc_id}").status_code == 200
    }


# ---------------------------------------------------------------------------- the test
def test_fuzzed_bodies_never_break_the_server(server: ServerProcess, seeded: list[Any]) -> None:
    rng = random.Random(SEED)
    sample, victims = seeded[:8], seeded[8:]  # valid fuzzed deletes only reach the victims
    makers = valid_bodies(rng, victims)
    plan: list[tuple[str, str, bytes]] = []  # (route, kind, body)
    for route in ROUTES:
        for kind, n in PER_ROUTE.items():
            for _ in range(n):
                if kind == "mutated":
                    body = encode(mutate(rng, makers[route]()))
                elif kind == "shaped":
                    body = encode(shaped_body(rng, route, victims))
                elif kind == "random":
                    body = encode(random_value(rng) if rng.random() < 0.85 else deep(rng))
                else:
                    body = raw_body(rng, makers[route]())
                plan.append((route, kind, body))
    rng.shuffle(plan)
    assert len(plan) >= 300

    statuses: Counter[tuple[str, int]] = Counter()
    accepted: Counter[str] = Counter()
    seconds: Counter[str] = Counter()
    kinds: Counter[tuple[str, int, str]] = Counter()
    with server.client(timeout=120) as http:
        expected = snapshot(http, sample)
        for step, (route, kind, body) in enumerate(plan):
            method, path = ROUTES[route]
            name = "fz-new"
            if route == "create" and rng.random() < 0.3:
                name = quote(random_string(rng), safe="", errors="surrogatepass") or "x"
            url = path.format(name=name)
            started = time.perf_counter()
            answer = http.request(
                method, url, content=body, headers={"content-type": "application/json"}
            )
            seconds[route] += time.perf_counter() - started
            status = answer.status_code
            statuses[(route, status)] += 1
            kinds[(kind, status, answer.json()["error"]["type"] if status >= 400 else "")] += 1
            context = (step, route, kind, url, body[:300], status, answer.text[:300])
            assert status < 500, context
            if status >= 400:
                error_of(answer)  # the JSON error shape, no stack trace
                assert status in {400, 404, 405, 409, 413, 422}, context
            else:
                assert status in {200, 201}, context
                accepted[route] += 1
            assert server.healthy(), context
            if route == "create" and status == 201:  # a valid body: remove what it made
                made = answer.json()["name"]
                assert http.delete(f"/collections/{quote(made, safe='')}").status_code == 200
            if route in WRITES and status < 400:
                expected = snapshot(http, sample)  # a valid write: the new state to keep
            elif route in WRITES or step % 25 == 0:
                full = step % 25 == 0
                assert snapshot(http, sample, full) == snapshot_part(expected, full), context
        assert snapshot(http, sample) == expected

    refusals = sum(n for (_, status), n in statuses.items() if status >= 400)
    print(f"\n{len(plan)} fuzzed bodies: {refusals} refused; accepted: {dict(accepted)}")
    print(sorted(statuses.items()))
    print(sorted(kinds.items()))
    print({route: round(s, 1) for route, s in seconds.items()}, "seconds in the fuzzed calls")
    assert refusals >= 0.6 * len(plan)  # the fuzzing reached the refusals, not only valid bodies
    assert all(route in {r for r, _ in statuses} for route in ROUTES)
    assert server.unexpected_errors() == [], server.log_tail()


def test_the_data_survives_a_restart_after_the_fuzzing(
    server: ServerProcess, seeded: list[Any]
) -> None:
    """Whatever the fuzzing stored can be read back by a fresh server (no poisoned record)."""
    with server.client() as http:
        alive = sorted(present(http, seeded), key=str)
        before = snapshot(http, alive)
        info = http.get(f"/collections/{NAME}")
        assert info.status_code == 200
    assert server.stop() in (0, -signal.SIGTERM)  # uvicorn re-raises SIGTERM once shut down
    server.start()
    with server.client() as http:
        assert snapshot(http, alive) == before
        assert http.get(f"/collections/{NAME}").json()["documents"] == before[0]["count"]
    assert server.unexpected_errors() == [], server.log_tail()
