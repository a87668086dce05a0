"""The HTTP API end to end, against a real ``sparsearch serve`` subprocess and the real models.

Every endpoint answers what it says, and every refusal is the documented status with a JSON body
``{"error": {"type", "message", "field"?}}`` (never a 500, never a stack trace): 401 without or
with a wrong API key (``/healthz`` stays open), 404 for unknown collections, ids and routes, 409
for duplicates, 413 past the body or batch limits, 422 for everything malformed (naming the
field). Also: OpenAPI at ``/docs``, Prometheus counters at ``/metrics``, and search explanations
whose token contributions add up to the score.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from sparsearch.collection.queries import Encoded
from sparsearch.server.batching import QueryBatcher
from tests.conftest import real_model
from tests.server.conftest import (
    API_KEY,
    DENSE_MODEL,
    MODEL,
    ServerProcess,
    error_of,
    module_server,
    scifact_docs,
)

pytestmark = pytest.mark.real_model

MAX_BODY_MB = 0.05  # 52428 bytes
MAX_BODY = int(MAX_BODY_MB * 1024 * 1024)
MAX_BATCH = 8
MAX_K = 50
MAX_TEXT = 2000
SCHEMA = {"lang": "keyword", "year": "integer"}
N_DOCS = 24


# ---------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """An open server with small limits, so every limit can be hit with small requests."""
    real_model(MODEL)
    yield from module_server(
        tmp_path_factory,
        "--max-body-mb", str(MAX_BODY_MB),
        "--max-batch", str(MAX_BATCH),
        "--max-k", str(MAX_K),
        "--max-text-chars", str(MAX_TEXT),
    )  # fmt: skip


@pytest.fixture(scope="module")
def http(server: ServerProcess) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


@pytest.fixture(scope="module")
def corpus(shared_data: Path) -> list[dict[str, Any]]:
    """SciFact documents as points: ids alternate int and str, payloads follow the schema."""
    points = []
    for i, (doc_id, text) in enumerate(scifact_docs(shared_data, N_DOCS)):
        point_id: int | str = int(doc_id) if i % 2 == 0 else f"doc-{doc_id}"
        payload = {"lang": "en" if i % 3 else "fr", "year": 2000 + i}
        points.append({"id": point_id, "text": text, "payload": payload})
    return points


@pytest.fixture(scope="module")
def docs(http: httpx.Client, corpus: list[dict[str, Any]]) -> str:
    """The collection ``docs`` holding the corpus (written in batches of MAX_BATCH)."""
    created = http.put("/collections/docs", json={"model": MODEL, "payload_schema": SCHEMA})
    assert created.status_code == 201, created.text
    for start in range(0, len(corpus), MAX_BATCH):
        batch = corpus[start : start + MAX_BATCH]
        done = http.put("/collections/docs/points", json={"points": batch})
        assert done.status_code == 200, done.text
        assert done.json() == {"status": "acknowledged", "count": len(batch)}
    return "docs"


@pytest.fixture(scope="module")
def hybrid(http: httpx.Client, corpus: list[dict[str, Any]]) -> str:
    """The collection ``hyb``: the sparse model plus the dense one, holding 12 documents."""
    real_model(DENSE_MODEL)
    body = {"model": MODEL, "dense_model": DENSE_MODEL, "payload_schema": SCHEMA}
    created = http.put("/collections/hyb", json=body)
    assert created.status_code == 201, created.text
    assert created.json()["info"]["config"]["dense"]["dim"] == 384
    for start in (0, 6):
        done = http.put("/collections/hyb/points", json={"points": corpus[start : start + 6]})
        assert done.status_code == 200, done.text
    return "hyb"


def count(http: httpx.Client, name: str) -> int:
    answer = http.get(f"/collections/{name}/points/count")
    assert answer.status_code == 200, answer.text
    return answer.json()["count"]


def search(http: httpx.Client, name: str, **body: Any) -> list[dict[str, Any]]:
    answer = http.post(f"/collections/{name}/points/search", json=body)
    assert answer.status_code == 200, answer.text
    payload = answer.json()
    assert set(payload) == {"hits", "time_ms"} and payload["time_ms"] >= 0
    return payload["hits"]


def refused(response: httpx.Response, status: int, field: str | None = None, *words: str) -> dict:
    """Assert an error answer of ``status`` (naming ``field`` when given); its error object."""
    error = error_of(response)
    assert response.status_code == status, (response.status_code, response.text)
    if field is not None:  # the field at fault, or a part of it (a member of a union type)
        assert error.get("field") == field or error.get("field", "").startswith(field + "."), error
    for word in words:
        assert word in error["message"], (word, error)
    return error


# ---------------------------------------------------------------------------- service routes
def test_healthz(http: httpx.Client) -> None:
    answer = http.get("/healthz")
    assert answer.status_code == 200 and answer.json() == {"status": "ok"}


def test_openapi_is_served(http: httpx.Client) -> None:
    docs_page = http.get("/docs")
    assert docs_page.status_code == 200
    assert docs_page.headers["content-type"].startswith("text/html")
    assert "swagger" in docs_page.text.lower()
    spec = http.get("/openapi.json")
    assert spec.status_code == 200
    paths = spec.json()["paths"]
    for path, method in [
        ("/healthz", "get"),
        ("/metrics", "get"),
        ("/collections", "get"),
        ("/collections/{name}", "put"),
        ("/collections/{name}", "get"),
        ("/collections/{name}", "delete"),
        ("/collections/{name}/points", "put"),
        ("/collections/{name}/points", "post"),
        ("/collections/{name}/points/delete", "post"),
        ("/collections/{name}/points/count", "get"),
        ("/collections/{name}/points/{point_id}", "get"),
        ("/collections/{name}/points/search", "post"),
        ("/collections/{name}/points/search/batch", "post"),
    ]:
        assert method in paths.get(path, {}), (path, method)
    search_body = spec.json()["components"]["schemas"]["SearchBody"]
    assert {"query", "k", "filter", "mode", "explain"} <= set(search_body["properties"])


def test_unknown_routes_and_methods(http: httpx.Client) -> None:
    refused(http.get("/nowhere"), 404)
    refused(http.get("/collections/docs/nothing/here"), 404)
    assert 400 <= http.patch("/collections/x", json={}).status_code < 500
    error_of(http.patch("/collections/x", json={}))


# ---------------------------------------------------------------------------- collections
def test_collection_lifecycle(http: httpx.Client) -> None:
    created = http.put("/collections/life-1", json={"model": MODEL})
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["name"] == "life-1"
    assert "path" not in body["info"]  # no server paths in answers
    assert body["info"]["documents"] == 0
    assert body["info"]["config"]["sparse"]["source"] == MODEL

    refused(http.put("/collections/life-1", json={"model": MODEL}), 409)
    assert {"name": "life-1"} in http.get("/collections").json()["collections"]
    info = http.get("/collections/life-1")
    assert info.status_code == 200 and info.json()["documents"] == 0
    assert "path" not in info.json()
    assert count(http, "life-1") == 0

    gone = http.delete("/collections/life-1")
    assert gone.status_code == 200 and gone.json() == {"deleted": "life-1"}
    refused(http.get("/collections/life-1"), 404)
    refused(http.delete("/collections/life-1"), 404)
    assert {"name": "life-1"} not in http.get("/collections").json()["collections"]


@pytest.mark.parametrize(
    "name", ["-lead", ".hidden", "_under", "a..b", "x" * 65, "sp ace", "ünï", "a:b", "a;b"]
)
def test_bad_collection_names(http: httpx.Client, name: str) -> None:
    refused(http.put(f"/collections/{name}", json={"model": MODEL}), 422, None, "collection name")
    refused(http.get(f"/collections/{name}"), 422, None, "collection name")
    refused(http.get(f"/collections/{name}/points/count"), 422)
    assert {"name": name} not in http.get("/collections").json()["collections"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "body.model"),
        ({"model": 5}, "body.model"),
        ({"model": None}, "body.model"),
        ({"model": MODEL, "bogus": 1}, "body.bogus"),
        ({"model": MODEL, "dense_index": "ivf"}, "body.dense_index"),
        ({"model": MODEL, "fusion": "max"}, "body.fusion"),
        ({"model": MODEL, "payload_schema": {"a": "text"}}, "body.payload_schema.a"),
        ({"model": MODEL, "payload_schema": []}, "body.payload_schema"),
        ({"model": MODEL, "max_active_dims": 0}, "body.max_active_dims"),
        ({"model": MODEL, "max_active_dims": "9"}, "body.max_active_dims"),
        ({"model": MODEL, "precision": "int4"}, "body.precision"),
        ({"model": MODEL, "store_text": "yes"}, "body.store_text"),
        ({"model": "/etc/passwd"}, "body.model"),
        ({"model": "../elsewhere"}, "body.model"),
        ({"model": MODEL, "dense_model": "~/model"}, "body.dense_model"),
        ([], "body"),
        ("model", "body"),
    ],
)
def test_create_validation(http: httpx.Client, body: Any, field: str) -> None:
    refused(http.put("/collections/bad-create", json=body), 422, field)
    refused(http.get("/collections/bad-create"), 404)


def test_create_with_a_model_that_is_not_there(http: httpx.Client) -> None:
    answer = http.put("/collections/no-model", json={"model": "no-such-org/no-such-model"})
    refused(answer, 422, None, "no-such-org/no-such-model")
    refused(http.get("/collections/no-model"), 404)  # nothing left behind
    assert {"name": "no-model"} not in http.get("/collections").json()["collections"]


# ---------------------------------------------------------------------------- points
def test_points_are_stored_and_read_back(http: httpx.Client, docs: str, corpus) -> None:
    assert count(http, docs) == N_DOCS
    info = http.get(f"/collections/{docs}").json()
    assert info["documents"] == N_DOCS
    assert info["config"]["payload_schema"] == SCHEMA
    assert set(info["payload_fields"]) == {"lang", "year"}

    wanted = [corpus[5], corpus[0], corpus[17]]
    answer = http.post(f"/collections/{docs}/points", json={"ids": [p["id"] for p in wanted]})
    assert answer.status_code == 200, answer.text
    points = answer.json()["points"]
    assert [p["id"] for p in points] == [p["id"] for p in wanted]  # in the order asked
    for got, want in zip(points, wanted, strict=True):
        assert set(got) == {"id", "payload", "text", "vector"}
        assert got["payload"] == want["payload"] and got["text"] == want["text"]
        assert got["vector"] and all(w > 0 for w in got["vector"].values())
        assert all(isinstance(token, str) for token in got["vector"])

    for want in wanted:  # one by one: int ids by their digits, str ids as they are
        one = http.get(f"/collections/{docs}/points/{want['id']}")
        assert one.status_code == 200, one.text
        assert one.json()["id"] == want["id"] and one.json()["payload"] == want["payload"]


def test_unknown_ids_are_404(http: httpx.Client, docs: str) -> None:
    refused(http.get(f"/collections/{docs}/points/nope"), 404, "point_id")
    refused(http.get(f"/collections/{docs}/points/123456789"), 404, "point_id")
    refused(http.post(f"/collections/{docs}/points", json={"ids": ["nope"]}), 404, None, "nope")
    refused(http.post(f"/collections/{docs}/points/delete", json={"ids": ["nope"]}), 404)
    assert count(http, docs) == N_DOCS


def test_unknown_collection_is_404_everywhere(http: httpx.Client) -> None:
    name = "never-made"
    point = {"id": 1, "text": "a text"}
    for answer in [
        http.get(f"/collections/{name}"),
        http.delete(f"/collections/{name}"),
        http.put(f"/collections/{name}/points", json={"points": [point]}),
        http.post(f"/collections/{name}/points", json={"ids": [1]}),
        http.post(f"/collections/{name}/points/delete", json={"ids": [1]}),
        http.get(f"/collections/{name}/points/count"),
        http.get(f"/collections/{name}/points/1"),
        http.post(f"/collections/{name}/points/search", json={"query": "x"}),
        http.post(f"/collections/{name}/points/search/batch", json={"searches": [{"query": "x"}]}),
    ]:
        refused(answer, 404, None, name)


def test_vectors_in_both_spellings(http: httpx.Client, docs: str) -> None:
    before = count(http, docs)
    points = [
        {"id": "vec-tokens", "vector": {"cinema": 2.0, "movie": 1.0}, "payload": {"lang": "xx"}},
        {"id": "vec-indices", "vector": {"indices": [1000, 2000], "values": [0.5, 1.5]}},
        {"id": "vec-text", "vector": {"cinema": 1.0}, "text": "a film at the cinema"},
    ]
    # texts come with every pre-encoded point of a batch or with none (never dropped silently)
    partial = http.put(f"/collections/{docs}/points", json={"points": points})
    refused(partial, 422, "body.points", "texts")
    assert count(http, docs) == before
    for batch in (points[:2], points[2:]):
        done = http.put(f"/collections/{docs}/points", json={"points": batch})
        assert done.status_code == 200, done.text
    assert count(http, docs) == before + 3
    got = {
        p["id"]: p
        for p in http.post(
            f"/collections/{docs}/points", json={"ids": [p["id"] for p in points]}
        ).json()["points"]
    }
    assert got["vec-tokens"]["vector"] == {"cinema": 2.0, "movie": 1.0}
    assert got["vec-tokens"]["payload"] == {"lang": "xx"} and got["vec-tokens"]["text"] is None
    assert got["vec-text"]["text"] == "a film at the cinema"
    by_index = got["vec-indices"]["vector"]
    assert sorted(by_index.values()) == [0.5, 1.5] and len(by_index) == 2
    # the tokens of dimensions 1000 and 2000 find that point with the dot product as its score
    hits = search(http, docs, query=dict.fromkeys(by_index, 1.0), k=3, mode="sparse")
    assert hits[0]["id"] == "vec-indices" and math.isclose(hits[0]["score"], 2.0, rel_tol=1e-6)
    hits = search(http, docs, query={"cinema": 1.0}, k=2)
    assert [h["id"] for h in hits] == ["vec-tokens", "vec-text"]
    assert [h["score"] for h in hits] == [2.0, 1.0]

    # upsert replaces, delete removes (and an unknown id among them deletes nothing)
    again = {"id": "vec-tokens", "vector": {"movie": 4.0}}
    assert http.put(f"/collections/{docs}/points", json={"points": [again]}).status_code == 200
    one = http.get(f"/collections/{docs}/points/vec-tokens").json()
    assert one["vector"] == {"movie": 4.0} and one["payload"] is None
    assert count(http, docs) == before + 3
    ids = [p["id"] for p in points]
    refused(http.post(f"/collections/{docs}/points/delete", json={"ids": [*ids, "nope"]}), 404)
    assert count(http, docs) == before + 3
    gone = http.post(f"/collections/{docs}/points/delete", json={"ids": ids})
    assert gone.status_code == 200 and gone.json() == {"status": "acknowledged", "count": 3}
    assert count(http, docs) == before
    refused(http.get(f"/collections/{docs}/points/vec-text"), 404)


def test_points_are_validated(http: httpx.Client, docs: str) -> None:
    url = f"/collections/{docs}/points"
    good = {"id": "ok-1", "text": "a valid text"}
    cases: list[tuple[Any, int, str | None]] = [
        ({"points": []}, 422, "body.points"),
        ({"points": [{"text": "no id"}]}, 422, "body.points.0.id"),
        ({"points": [{"id": 1.5, "text": "x"}]}, 422, "body.points.0.id"),
        ({"points": [{"id": True, "text": "x"}]}, 422, "body.points.0.id"),
        ({"points": [{"id": "a", "text": 5}]}, 422, "body.points.0.text"),
        ({"points": [{"id": "a", "text": "x", "bogus": 1}]}, 422, "body.points.0.bogus"),
        (
            {"points": [good, {"id": "a", "text": "x", "payload": [1]}]},
            422,
            "body.points.1.payload",
        ),
        ({"points": [{"id": "a"}]}, 422, "body.points.0"),
        ({"points": [{"id": "a", "text": "   "}]}, 422, "body.points.0.text"),
        ({"points": [{"id": "a", "text": "x", "dense": [0.1, 0.2]}]}, 422, "body.points.0.dense"),
        ({"points": [good, {"id": "b", "vector": {"cinema": 1.0}}]}, 422, "body.points"),
        ({"points": [{"id": "a", "vector": {"cinema": "high"}}]}, 422, None),
        ({"points": [{"id": "a", "vector": {"indices": [1], "values": []}}]}, 422, None),
        ({"points": [{"id": "a", "vector": {"notatoken-zz": 1.0}}]}, 422, None),
        ({"points": [{"id": "a", "vector": {"cinema": 1.0}, "dense": [0.1]}]}, 422, None),
        ({"points": [{"id": -1, "text": "x"}]}, 422, None),
        ({"points": [{"id": 2**64, "text": "x"}]}, 422, None),
        ({"points": [{"id": "a", "text": "x", "payload": {"year": "MMXX"}}]}, 422, None),
        ({"points": [{"id": "a", "text": "x", "payload": {"_sparsearch": 1}}]}, 422, None),
        ({"points": [good, dict(good)]}, 409, None),
        ({"points": {"id": "a"}}, 422, "body.points"),
    ]
    before = count(http, docs)
    for body, status, field in cases:
        refused(http.put(url, json=body), status, field)
    # a misspelt field: the answer says that one is missing and names the unknown one
    misspelt = refused(http.put(url, json={"point": [good]}), 422, "body.points")
    assert "body.point: Extra inputs are not permitted" in misspelt["message"], misspelt
    assert count(http, docs) == before  # an atomic write: a refused batch stores nothing
    refused(http.get(f"/collections/{docs}/points/ok-1"), 404)


def test_json_and_content_type_are_strict(http: httpx.Client, docs: str) -> None:
    url = f"/collections/{docs}/points"
    headers = {"content-type": "application/json"}
    before = count(http, docs)
    bodies = [
        b"{",
        b'{"points": [}',
        b"",
        b"null",
        b"[1, 2",
        b'{"points": [{"id": "n", "text": "x", "payload": {"v": NaN}}]}',
        b'{"points": [{"id": "n", "text": "x", "payload": {"v": Infinity}}]}',
        b'{"points": [{"id": "n", "text": "x", "payload": {"v": -1e999}}]}',
        b'{"points": [{"id": "n", "text": "\\ud800"}]}',
        b'{"points": [{"id": "\\udfff", "text": "x"}]}',
        b'{"points": [{"id": "n", "text": "x", "payload": {"\\ud800": 1}}]}',
        b'{"points": [{"id": "n", "text": "\xed\xa0\x80"}]}',  # a surrogate as UTF-8 bytes
        b'{"points": [{"id": "n", "text": "\xff\xfe"}]}',  # not UTF-8 at all
        b'{"points": [{"id": "n", "text": "x", "payload": {"v": '
        + b"[" * 100
        + b"]" * 100
        + b"}}]}",
        b'{"points": [{"id": "n", "text": "x", "payload": {"v": 1' + b"0" * 5000 + b"}}]}",
        b'{"points": [{"id": "n", "text": "x"}]} trailing',
    ]
    for body in bodies:
        refused(http.put(url, content=body, headers=headers), 422)
    nan = refused(http.put(url, content=bodies[5], headers=headers), 422, "body")
    assert "NaN is not a JSON number" in nan["message"], nan
    lone = refused(http.put(url, content=bodies[8], headers=headers), 422, "body")
    assert "lone surrogate" in lone["message"], lone
    # only JSON bodies are read as JSON
    plain = json.dumps({"points": [{"id": "n", "text": "x"}]}).encode()
    refused(http.put(url, content=plain, headers={"content-type": "text/plain"}), 422)
    assert count(http, docs) == before
    refused(http.get(f"/collections/{docs}/points/n"), 404)
    # a valid surrogate pair (an emoji) is fine and comes back whole
    emoji = b'{"points": [{"id": "emoji", "text": "smile \\ud83d\\ude00", "payload": {"lang": "\\ud83d\\ude00"}}]}'
    assert http.put(url, content=emoji, headers=headers).status_code == 200
    point = http.get(f"/collections/{docs}/points/emoji").json()
    assert point["text"] == "smile \U0001f600" and point["payload"] == {"lang": "\U0001f600"}
    assert http.post(f"{url}/delete", json={"ids": ["emoji"]}).status_code == 200


# ---------------------------------------------------------------------------- search
def test_search_forms(http: httpx.Client, docs: str, corpus) -> None:
    target = corpus[4]
    hits = search(http, docs, query=target["text"][:80], k=5)
    assert hits[0]["id"] == target["id"] and hits[0]["payload"] == target["payload"]
    assert len(hits) == 5 and all(h["explanation"] is None for h in hits)
    scores = [h["score"] for h in hits]
    assert scores == sorted(scores, reverse=True)

    everything = search(http, docs, query=target["text"][:80], k=N_DOCS + 10)
    assert 5 < len(everything) <= N_DOCS  # every document sharing a token, none twice
    assert len({h["id"] for h in everything}) == len(everything)
    bare = search(http, docs, query=target["text"][:80], k=3, with_payload=False)
    assert [h["payload"] for h in bare] == [None] * 3
    assert [h["id"] for h in bare] == [h["id"] for h in hits[:3]]

    english = {"must": [{"key": "lang", "match": {"value": "en"}}]}
    filtered = search(http, docs, query=target["text"][:80], k=N_DOCS, filter=english)
    expected_en = {p["id"] for p in corpus if p["payload"]["lang"] == "en"}
    assert filtered and {h["id"] for h in filtered} <= expected_en
    recent = {"must": [{"key": "year", "range": {"gte": 2020}}]}
    assert {h["id"] for h in search(http, docs, query="cells", k=50, filter=recent)} <= {
        p["id"] for p in corpus if p["payload"]["year"] >= 2020
    }

    # the stored vector of a document, given back as a query, scores it by its squared norm
    vector = http.get(f"/collections/{docs}/points/{target['id']}").json()["vector"]
    by_tokens = {h["id"]: h["score"] for h in search(http, docs, query=vector, k=N_DOCS)}
    expected = sum(w * w for w in vector.values())
    assert math.isclose(by_tokens[target["id"]], expected, rel_tol=1e-5)


def test_search_batch_equals_single_searches(http: httpx.Client, docs: str, corpus) -> None:
    searches = [
        {"query": corpus[1]["text"][:60], "k": 4},
        {"query": {"cells": 1.0, "protein": 0.5}, "k": 3, "with_payload": False},
        {"query": corpus[9]["text"][:60], "k": 2, "filter": {"must": [{"key": "year", "match": {"value": 2009}}]}},
        {"query": "immune response", "k": 5, "explain": True, "mode": "sparse"},
    ]  # fmt: skip
    answer = http.post(f"/collections/{docs}/points/search/batch", json={"searches": searches})
    assert answer.status_code == 200, answer.text
    results = answer.json()["results"]
    assert len(results) == len(searches)
    for got, body in zip(results, searches, strict=True):
        alone = search(http, docs, **body)
        assert [h["id"] for h in got] == [h["id"] for h in alone]
        for a, b in zip(got, alone, strict=True):
            assert math.isclose(a["score"], b["score"], rel_tol=1e-5)
            assert a["payload"] == b["payload"]
    refused(http.post(f"/collections/{docs}/points/search/batch", json={"searches": []}), 422)
    bad = {"searches": [{"query": "ok"}, {"query": "ok", "k": "many"}]}
    refused(
        http.post(f"/collections/{docs}/points/search/batch", json=bad), 422, "body.searches.1.k"
    )


@pytest.mark.parametrize(
    ("body", "field", "status"),
    [
        ({}, "body.query", 422),
        ({"query": None}, "body.query", 422),
        ({"query": 5}, "body.query", 422),
        ({"query": True}, "body.query", 422),
        ({"query": ""}, "body.query", 422),
        ({"query": "   "}, "body.query", 422),
        ({"query": "x" * (MAX_TEXT + 1)}, "body.query", 422),
        ({"query": "ok", "k": 0}, "body.k", 422),
        ({"query": "ok", "k": -3}, "body.k", 422),
        ({"query": "ok", "k": MAX_K + 1}, "body.k", 422),
        ({"query": "ok", "k": 10**30}, "body.k", 422),
        ({"query": "ok", "k": "5"}, "body.k", 422),
        ({"query": "ok", "k": 5.0}, "body.k", 422),
        ({"query": "ok", "topk": 5}, "body.topk", 422),
        ({"query": "ok", "mode": "fuzzy"}, "body.mode", 422),
        ({"query": "ok", "fusion": "max"}, "body.fusion", 422),
        ({"query": "ok", "explain": "yes"}, "body.explain", 422),
        ({"query": "ok", "with_payload": 1}, "body.with_payload", 422),
        ({"query": "ok", "candidates": 0}, "body.candidates", 422),
        ({"query": "ok", "candidates": 10**6}, "body.candidates", 422),
        ({"query": "ok", "recall": 0}, "body.recall", 422),
        ({"query": "ok", "recall": 1.5}, "body.recall", 422),
        ({"query": "ok", "recall": "0.9"}, "body.recall", 422),
        ({"query": "ok", "filter": "lang=en"}, "body.filter", 422),
        ({"query": "ok", "filter": {"bogus": []}}, None, 422),
        ({"query": "ok", "filter": {"must": "x"}}, None, 422),
        (
            {"query": "ok", "filter": {"must": [{"key": "nofield", "match": {"value": 1}}]}},
            None,
            422,
        ),
        (
            {"query": "ok", "filter": {"must": [{"key": "year", "match": {"value": [[1]]}}]}},
            None,
            422,
        ),
        ({"query": "ok", "filter": {"must": [{"key": "year", "range": {"gt": "x"}}]}}, None, 422),
        ({"query": "ok", "mode": "dense"}, None, 422),
        ({"query": "ok", "mode": "hybrid"}, None, 422),
        ({"query": [0.1, 0.2, 0.3]}, None, 422),
        ({"query": {}}, None, 422),
        ({"query": {"notatoken-zz": 1.0}}, None, 422),
        ({"query": {"cinema": "high"}}, "body.query", 422),
        ({"query": {"indices": [1, 2], "values": [1.0]}}, None, 422),
        ({"query": {"indices": [-1], "values": [1.0]}}, None, 422),
        ({"query": {"indices": [10**9], "values": [1.0]}}, None, 422),
        ({"query": {"cinema": 1e39}}, None, 422),
        ({"query": [[0.1]]}, "body.query", 422),
    ],
)
def test_search_errors(
    http: httpx.Client, docs: str, body: Any, field: str | None, status: int
) -> None:
    refused(http.post(f"/collections/{docs}/points/search", json=body), status, field)


def check_explanation(hit: dict[str, Any], query_weights: dict[str, float] | None = None) -> float:
    """The hit's sparse explanation is consistent; returns the sum of its contributions."""
    sparse = hit["explanation"]["sparse"]
    tokens = sparse["tokens"]
    assert tokens, hit
    total = 0.0
    for token in tokens:
        assert set(token) == {"token", "query_weight", "document_weight", "contribution"}
        product = token["query_weight"] * token["document_weight"]
        assert math.isclose(token["contribution"], product, rel_tol=1e-6), token
        if query_weights is not None:
            assert token["query_weight"] == query_weights[token["token"]]
        total += token["contribution"]
    contributions = [t["contribution"] for t in tokens]
    assert contributions == sorted(contributions, reverse=True)
    assert math.isclose(total, sparse["score"], rel_tol=1e-6, abs_tol=1e-9)
    return total


def test_explain_sums_to_the_sparse_score(http: httpx.Client, docs: str, corpus) -> None:
    for query in [corpus[7]["text"][:100], "protein expression in human cells"]:
        hits = search(http, docs, query=query, k=8, explain=True, mode="sparse")
        assert len(hits) == 8
        for hit in hits:
            total = check_explanation(hit)
            assert math.isclose(total, hit["score"], rel_tol=1e-5), (total, hit["score"])
            assert set(hit["explanation"]) == {"sparse"}
    weights = {"cells": 1.5, "protein": 0.25, "human": 2.0}
    for hit in search(http, docs, query=weights, k=5, explain=True):
        total = check_explanation(hit, weights)
        assert math.isclose(total, hit["score"], rel_tol=1e-5)


def test_hybrid_collection(http: httpx.Client, hybrid: str, corpus) -> None:
    assert count(http, hybrid) == 12
    query = corpus[3]["text"][:90]
    fused = search(http, hybrid, query=query, k=6, explain=True)  # hybrid by default
    sparse = {h["id"]: h["score"] for h in search(http, hybrid, query=query, k=12, mode="sparse")}
    dense = {h["id"]: h["score"] for h in search(http, hybrid, query=query, k=12, mode="dense")}
    assert fused[0]["id"] == corpus[3]["id"]
    for hit in fused:
        explanation = hit["explanation"]
        if "sparse" in explanation and explanation["sparse"]["tokens"]:
            total = check_explanation(hit)
            # the contributions add up to the hit's sparse score, as a sparse search gives it
            assert math.isclose(total, sparse[hit["id"]], rel_tol=1e-5), (hit, sparse)
        assert math.isclose(explanation["dense"]["score"], dense[hit["id"]], rel_tol=1e-4)
    rrf = search(http, hybrid, query=query, k=6, fusion="rrf")
    linear = search(http, hybrid, query=query, k=6, fusion="linear")
    assert rrf[0]["id"] == linear[0]["id"] == corpus[3]["id"]

    # pre-encoded points with dense rows; a dense query finds its own row first
    row = [0.0] * 384
    row[7] = 1.0
    point = {"id": "dense-row", "vector": {"cinema": 1.0}, "dense": row}
    assert http.put(f"/collections/{hybrid}/points", json={"points": [point]}).status_code == 200
    hits = search(http, hybrid, query=row, k=1, mode="dense")
    assert hits[0]["id"] == "dense-row" and math.isclose(hits[0]["score"], 1.0, rel_tol=1e-5)
    url = f"/collections/{hybrid}/points"
    short = {"id": "bad-dense", "vector": {"cinema": 1.0}, "dense": [1.0, 2.0]}
    refused(http.put(url, json={"points": [short]}), 422)
    mixed = [point, {"id": "no-dense", "vector": {"cinema": 1.0}}]
    refused(http.put(url, json={"points": mixed}), 422, "body.points")
    refused(http.post(f"{url}/search", json={"query": [1.0, 2.0], "mode": "dense"}), 422)
    refused(http.post(f"{url}/search", json={"query": {"cinema": 1.0}, "mode": "dense"}), 422)
    assert http.post(f"{url}/delete", json={"ids": ["dense-row"]}).status_code == 200
    assert count(http, hybrid) == 12


# ---------------------------------------------------------------------------- limits
def test_body_limit_is_413(http: httpx.Client, docs: str) -> None:
    before = count(http, docs)
    big = {"points": [{"id": "big", "text": "word " * 11_000}]}  # ~55 kB > MAX_BODY
    assert len(json.dumps(big)) > MAX_BODY
    refused(http.put(f"/collections/{docs}/points", json=big), 413)

    def chunks() -> Iterator[bytes]:  # no content-length: the limit holds while streaming
        data = json.dumps(big).encode()
        for start in range(0, len(data), 4096):
            yield data[start : start + 4096]

    refused(http.put(f"/collections/{docs}/points", content=chunks()), 413)
    search_body = {"query": "a " * 30_000}
    refused(http.post(f"/collections/{docs}/points/search", json=search_body), 413)
    assert count(http, docs) == before
    assert http.get("/healthz").status_code == 200


def test_batch_limit_is_413(http: httpx.Client, docs: str) -> None:
    before = count(http, docs)
    many = [{"id": f"many-{i}", "text": f"text number {i}"} for i in range(MAX_BATCH + 1)]
    refused(http.put(f"/collections/{docs}/points", json={"points": many}), 413, "body.points")
    ids = {"ids": [f"many-{i}" for i in range(MAX_BATCH + 1)]}
    refused(http.post(f"/collections/{docs}/points", json=ids), 413, "body.ids")
    refused(http.post(f"/collections/{docs}/points/delete", json=ids), 413, "body.ids")
    searches = {"searches": [{"query": "cells"}] * (MAX_BATCH + 1)}
    url = f"/collections/{docs}/points/search/batch"
    refused(http.post(url, json=searches), 413, "body.searches")
    assert http.post(url, json={"searches": [{"query": "cells"}] * MAX_BATCH}).status_code == 200
    assert count(http, docs) == before


def test_text_limit_is_422(http: httpx.Client, docs: str) -> None:
    long_point = {"id": "long", "text": "x" * (MAX_TEXT + 1)}
    url = f"/collections/{docs}/points"
    refused(http.put(url, json={"points": [long_point]}), 422, "body.points.0.text", "limit")
    good = {"id": "short", "text": "x"}
    refused(http.put(url, json={"points": [good, long_point]}), 422, "body.points.1.text")
    refused(http.get(f"{url}/short"), 404)
    body = {"query": "y" * (MAX_TEXT + 1)}
    refused(http.post(f"{url}/search", json=body), 422, "body.query", "limit")
    body = {"searches": [{"query": "ok"}, {"query": "y" * (MAX_TEXT + 1)}]}
    refused(http.post(f"{url}/search/batch", json=body), 422)


# ---------------------------------------------------------------------------- micro-batching
def test_a_bad_query_does_not_fail_its_batch_neighbours(http: httpx.Client, docs: str) -> None:
    """Text queries that arrive together share one forward pass; a refused one (empty, too long)
    must fail alone, never the good queries encoded with it."""
    good = ["cells and proteins", "immune response", "human brain development"]
    expected = {q: [h["id"] for h in search(http, docs, query=q, k=5)] for q in good}
    answers: list[tuple[str, int, list[Any] | None]] = []
    lock = threading.Lock()

    def hammer(query: str) -> None:
        with httpx.Client(base_url=str(http.base_url), timeout=120) as client:
            for _ in range(12):
                answer = client.post(
                    f"/collections/{docs}/points/search", json={"query": query, "k": 5}
                )
                hits = (
                    [h["id"] for h in answer.json()["hits"]] if answer.status_code == 200 else None
                )
                with lock:
                    answers.append((query, answer.status_code, hits))

    bad = ["   ", "z" * (MAX_TEXT + 1), "\t\n"]
    threads = [threading.Thread(target=hammer, args=(q,)) for q in [*good, *bad]]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for query, status, hits in answers:
        if query in good:
            assert status == 200 and hits == expected[query], (query, status)
        else:
            assert status == 422, (query, status)


def test_the_batcher_isolates_a_failing_query() -> None:
    """Unit check of the batcher: when a batch fails, each query is retried alone."""

    def encode(queries: list[Any]) -> Encoded:
        if "bad" in queries:
            raise ValueError("bad query")
        return Encoded(
            texts=list(queries), sparse=[None] * len(queries), dense=[None] * len(queries)
        )

    async def main() -> list[Any]:
        batcher = QueryBatcher(encode, window_ms=50, max_batch=8)
        return await asyncio.gather(
            *(batcher.encode(q) for q in ["a", "bad", "b", "c"]), return_exceptions=True
        )

    a, bad, b, c = asyncio.run(main())
    assert isinstance(bad, ValueError)
    assert [a.texts, b.texts, c.texts] == [["a"], ["b"], ["c"]]


# ---------------------------------------------------------------------------- metrics
def metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample of the Prometheus text (0 when absent)."""
    for line in text.splitlines():
        match = re.fullmatch(rf"{name}(?:\{{(.*)\}})? (\S+)", line)
        if match is None:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', match.group(1) or ""))
        if found == labels:
            return float(match.group(2))
    return 0.0


def test_metrics(http: httpx.Client, docs: str) -> None:
    route = "/collections/{name}/points/search"
    before = http.get("/metrics")
    assert before.status_code == 200 and before.headers["content-type"].startswith("text/plain")
    for _ in range(3):
        search(http, docs, query="cells", k=2)
    refused(http.post(f"/collections/{docs}/points/search", json={"query": "x", "k": 0}), 422)
    refused(http.post("/collections/never-made/points/search", json={"query": "x"}), 404)
    after = http.get("/metrics").text

    def requests(text: str, status: str) -> float:
        return metric(text, "sparsearch_requests_total", method="POST", route=route, status=status)

    assert requests(after, "200") - requests(before.text, "200") == 3
    assert requests(after, "422") - requests(before.text, "422") == 1
    assert requests(after, "404") - requests(before.text, "404") == 1
    assert metric(after, "sparsearch_collection_documents", collection=docs) == count(http, docs)
    assert metric(after, "sparsearch_collection_bytes", collection=docs) > 0
    assert metric(after, "sparsearch_query_encode_queries_total") >= 3
    assert metric(after, "sparsearch_query_encode_batches_total") >= 1
    seen = metric(after, "sparsearch_request_seconds_count", method="POST", route=route)
    assert seen >= 5
    inf = metric(after, "sparsearch_request_seconds_bucket", method="POST", route=route, le="+Inf")
    assert inf == seen
    assert "# TYPE sparsearch_requests_total counter" in after
    assert "# TYPE sparsearch_collection_documents gauge" in after


# ---------------------------------------------------------------------------- auth
def test_auth_off_needs_no_key(http: httpx.Client, server: ServerProcess) -> None:
    assert server.api_key is None
    with server.client(key="any-key-at-all") as other:
        assert other.get("/collections").status_code == 200
    assert http.get("/collections").status_code == 200


KEYED_CALLS = [
    ("GET", "/collections", None),
    ("GET", "/metrics", None),
    ("GET", "/docs", None),
    ("GET", "/openapi.json", None),
    ("PUT", "/collections/k1", {"model": MODEL}),
    ("GET", "/collections/k1", None),
    ("DELETE", "/collections/k1", None),
    ("PUT", "/collections/k1/points", {"points": [{"id": 1, "text": "x"}]}),
    ("POST", "/collections/k1/points", {"ids": [1]}),
    ("POST", "/collections/k1/points/delete", {"ids": [1]}),
    ("GET", "/collections/k1/points/count", None),
    ("GET", "/collections/k1/points/1", None),
    ("POST", "/collections/k1/points/search", {"query": "x"}),
    ("POST", "/collections/k1/points/search/batch", {"searches": [{"query": "x"}]}),
    ("GET", "/no/such/route", None),
]


def test_auth_on(keyed_server: ServerProcess) -> None:
    url = keyed_server.url
    wrong = API_KEY[:-1] + "X"
    refusals = [
        {},
        {"api-key": wrong},
        {"api-key": ""},
        {"api-key": API_KEY + "x"},
        {"api-key": API_KEY.upper()},
        {"authorization": f"Bearer {wrong}"},
        {"authorization": API_KEY},
        {"authorization": f"Basic {API_KEY}"},
        {"api_key": API_KEY},
    ]
    with httpx.Client(base_url=url, timeout=60) as raw:
        assert raw.get("/healthz").status_code == 200  # open without a key
        for method, path, body in KEYED_CALLS:
            for headers in refusals:
                answer = raw.request(method, path, json=body, headers=headers)
                refused(answer, 401, None, "API key")
                assert answer.headers.get("www-authenticate") == "ApiKey"
        # with the key in either header, the calls go through (to a collection that is not there)
        for headers in [
            {"api-key": API_KEY},
            {"authorization": f"Bearer {API_KEY}"},
            {"authorization": f"bearer {API_KEY}"},
        ]:
            assert raw.get("/collections", headers=headers).status_code == 200
            assert raw.get("/metrics", headers=headers).status_code == 200
            assert raw.get("/openapi.json", headers=headers).status_code == 200
            refused(raw.get("/collections/k1", headers=headers), 404)
            refused(raw.get("/no/such/route", headers=headers), 404)
            refused(raw.put("/collections/bad..name", json={}, headers=headers), 422)
    assert keyed_server.unexpected_errors() == []


def test_the_key_never_appears_in_answers_or_metrics(keyed_server: ServerProcess) -> None:
    with httpx.Client(base_url=keyed_server.url) as raw:
        refused(raw.get("/collections", headers={"api-key": "wrong-key-123"}), 401)
    with keyed_server.client() as client:
        metrics = client.get("/metrics").text
        assert API_KEY not in metrics
        assert 'status="401"' in metrics  # the refusals above are counted
    with httpx.Client(base_url=keyed_server.url) as raw:
        assert API_KEY not in raw.get("/collections", headers={"api-key": "x" * 20}).text


# ---------------------------------------------------------------------------- last
def test_the_server_logged_no_unexpected_error(server: ServerProcess) -> None:
    """Run last: nothing in this module made the server hit an unexpected error (a 500)."""
    assert server.healthy()
    assert server.unexpected_errors() == [], server.log_tail()
