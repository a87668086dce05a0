"""The HTTP client against a real server: the same script of calls on an embedded ``Collection``
and on a ``RemoteCollection`` (same model, same SciFact documents and payloads) gives the same
points, counts, hits (ids, scores, payloads, explanations) and the same exception classes, so
code moves from embedded to served by changing one line.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import sparsearch
from sparsearch import Filter, Match, Range, SparseVectors
from sparsearch.collection import Collection, Hit
from sparsearch.errors import (
    CollectionNotFoundError,
    DuplicateIdError,
    FilterError,
    InvalidInputError,
    UnknownIdError,
)
from sparsearch.server.client import Client, InvalidRequestError, RemoteCollection, ServerError
from tests.conftest import real_model
from tests.server.conftest import API_KEY, MODEL, ServerProcess, scifact_docs

real = pytest.mark.real_model  # the tests that load rasyosef/splade-tiny or read SciFact

SCHEMA = {"n": "integer", "group": "keyword"}
N_DOCS = 30


@pytest.fixture(scope="module")
def server(keyed_server: ServerProcess) -> Iterator[str]:
    """A real server that wants :data:`API_KEY` (``tests/server/conftest.py``)."""
    yield keyed_server.url
    assert keyed_server.unexpected_errors() == []


@pytest.fixture(scope="module")
def client(server: str) -> Iterator[Client]:
    with Client(server, api_key=API_KEY) as client:
        yield client


@pytest.fixture(scope="module")
def docs(shared_data: Path) -> tuple[list[Any], list[str], list[dict[str, Any] | None]]:
    """30 SciFact documents (string ids, then five integer ids) with payloads, a few missing."""
    rows = scifact_docs(shared_data, N_DOCS, chars=300)
    ids: list[Any] = [doc_id for doc_id, _ in rows[:25]] + [int(d) for d, _ in rows[25:]]
    payloads: list[dict[str, Any] | None] = [
        None if i % 7 == 6 else {"n": i, "group": "even" if i % 2 == 0 else "odd", "tag": f"t{i}"}
        for i in range(N_DOCS)
    ]
    return ids, [text for _, text in rows], payloads


def write_script(col: Any, docs: tuple[list[Any], list[str], list[Any]]) -> None:
    """The same writes on either kind of collection."""
    ids, texts, payloads = docs
    assert col.add_texts(texts[:20], ids[:20], payloads[:20]) == ids[:20]
    col.upsert_texts(ids[20:], texts[20:], payloads[20:], write_batch=4)
    col.upsert_texts([ids[0]], ["Aspirin lowers fever in adults."], [{"n": -1, "group": "new"}])
    col.upsert_vectors(
        ["v1", "v2"],
        [{"fever": 1.5, "drug": 0.5}, {"protein": 2.0}],
        [{"n": 100, "group": "vec"}, None],
        texts=["fever drug", "protein"],
    )
    dim = col.info()["dim"]
    col.upsert_vectors([7], SparseVectors.from_dicts([{1000: 1.0, 2000: 0.25}], dim=dim))
    col.delete(["v2"])


@pytest.fixture(scope="module")
def pair(
    client: Client, docs: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Collection, RemoteCollection]]:
    """(embedded, remote) after the same writes."""
    path = tmp_path_factory.mktemp("embedded") / "scifact"
    embedded = Collection.create(path, model=real_model(MODEL), payload_schema=SCHEMA)
    remote = client.create_collection("scifact", MODEL, payload_schema=SCHEMA)
    for col in (embedded, remote):
        write_script(col, docs)
    yield embedded, remote
    embedded.close()


def assert_same_hits(got: list[Hit], want: list[Hit]) -> None:
    assert [h.id for h in got] == [h.id for h in want]
    assert [h.score for h in got] == pytest.approx([h.score for h in want], abs=1e-6, rel=1e-6)
    assert [h.payload for h in got] == [h.payload for h in want]
    for g, w in zip(got, want, strict=True):
        assert (g.explanation is None) == (w.explanation is None)
        if w.explanation is not None:
            assert g.explanation is not None
            gs, ws = g.explanation["sparse"], w.explanation["sparse"]
            assert gs["score"] == pytest.approx(ws["score"], abs=1e-6, rel=1e-6)
            assert [t["token"] for t in gs["tokens"]] == [t["token"] for t in ws["tokens"]]
            for key in ("query_weight", "document_weight", "contribution"):
                got_w = [t[key] for t in gs["tokens"]]
                assert got_w == pytest.approx([t[key] for t in ws["tokens"]], abs=1e-6)


# ---------------------------------------------------------------------------- state
def test_the_lazy_export_is_the_client() -> None:
    assert sparsearch.Client is Client


@real
def test_writes_leave_the_same_points(pair: tuple[Collection, RemoteCollection], docs) -> None:
    embedded, remote = pair
    ids = docs[0]
    assert remote.count() == embedded.count() == N_DOCS + 2
    wanted = [ids[0], ids[1], ids[-1], "v1", 7, ids[25]]
    got, want = remote.get(wanted), embedded.get(wanted)
    assert [p.id for p in got] == [p.id for p in want] == wanted
    for g, w in zip(got, want, strict=True):
        assert (g.payload, g.text) == (w.payload, w.text)
        assert g.vector.keys() == w.vector.keys()
        assert list(g.vector.values()) == pytest.approx(list(w.vector.values()), abs=1e-6)
    assert got[0].payload == {"n": -1, "group": "new"}
    r_info, e_info = remote.info(), embedded.info()
    assert "path" not in r_info
    for key in ("documents", "dim", "config", "payload_fields"):
        assert r_info[key] == e_info[key], key


# ---------------------------------------------------------------------------- searches
SEARCHES: list[tuple[str, Any, dict[str, Any]]] = [
    ("text", "aspirin and fever", {}),
    ("k3", "cerebral white matter in newborns", {"k": 3}),
    ("dict filter", "cell", {"filter": {"must": [{"key": "group", "match": {"value": "odd"}}]}}),
    ("Filter object", "cell", {"filter": Filter(must=Match("group", value="even"))}),
    ("range", "protein", {"filter": Filter(must=Range("n", gte=5, lt=20)), "k": 20}),
    ("ids filter", "fever", {"filter": ["v1", 7]}),
    ("explain", "aspirin fever", {"explain": True, "k": 4}),
    ("no payload", "gene expression", {"with_payload": False}),
    ("token query", {"fever": 1.0, "protein": 0.5}, {}),
    ("indices query", {"indices": [1000, 2000], "values": [1.0, 2.0]}, {"explain": True}),
    ("candidates", "immune", {"candidates": 5, "k": 5}),
    ("recall", "protein", {"recall": 0.9, "k": 5}),
]


@real
@pytest.mark.parametrize(
    ("query", "options"), [s[1:] for s in SEARCHES], ids=[s[0] for s in SEARCHES]
)
def test_searches_give_the_same_hits(pair, query: Any, options: dict[str, Any]) -> None:
    embedded, remote = pair
    want = embedded.search(query, **options)
    assert want, "a search that finds nothing compares nothing"
    assert_same_hits(remote.search(query, **options), want)


@real
def test_a_sparse_vectors_query(pair) -> None:
    embedded, remote = pair
    query = SparseVectors.from_dicts([{1000: 1.0, 2000: 3.0}], dim=embedded.info()["dim"])
    assert_same_hits(remote.search(query, k=3), embedded.search(query, k=3))


@real
def test_search_batch_gives_the_same_hits(pair) -> None:
    embedded, remote = pair
    queries = ["aspirin fever", "brain development", {"protein": 1.0}, "cancer genes"]
    flt = {"must_not": [{"key": "group", "match": {"value": "odd"}}]}
    want = embedded.search_batch(queries, k=4, filter=flt, explain=True)
    got = remote.search_batch(queries, k=4, filter=flt, explain=True)
    assert len(got) == len(want) == len(queries)
    for g, w in zip(got, want, strict=True):
        assert_same_hits(g, w)
    assert remote.search_batch([], k=3) == embedded.search_batch([], k=3) == []


# ---------------------------------------------------------------------------- errors
ERRORS: list[tuple[str, Callable[[Any], Any], type[Exception]]] = [
    ("get unknown", lambda c: c.get(["no-such-id"]), UnknownIdError),
    ("delete unknown", lambda c: c.delete(["v1", "no-such-id"]), UnknownIdError),
    ("add stored", lambda c: c.add_texts(["new text"], ids=["v1"]), DuplicateIdError),
    ("id twice", lambda c: c.upsert_texts(["a", "a"], ["x y", "y z"]), DuplicateIdError),
    (
        "unknown field",
        lambda c: c.search("fever", filter={"must": [{"key": "nope", "match": {"value": "x"}}]}),
        FilterError,
    ),
    (
        "type clash",
        lambda c: c.search("fever", filter={"must": [{"key": "n", "match": {"value": "x"}}]}),
        FilterError,
    ),
    ("bad filter key", lambda c: c.search("fever", filter={"bogus": []}), InvalidInputError),
    ("schema", lambda c: c.upsert_texts(["z"], ["t"], [{"n": "one"}]), InvalidInputError),
    ("no dense model", lambda c: c.search("fever", mode="dense"), InvalidInputError),
    ("unknown token", lambda c: c.search({"no-such-token-xyz": 1.0}), InvalidInputError),
    ("empty query", lambda c: c.search("  "), InvalidInputError),
    ("k = 0", lambda c: c.search("fever", k=0), InvalidInputError),
    ("empty text", lambda c: c.upsert_texts(["z"], [""]), InvalidInputError),
]


@real
@pytest.mark.parametrize(("call", "kind"), [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS])
def test_errors_raise_the_same_classes(pair, call: Callable[[Any], Any], kind: type) -> None:
    embedded, remote = pair
    with pytest.raises(kind) as want:
        call(embedded)
    with pytest.raises(kind) as got:
        call(remote)
    assert isinstance(got.value, type(want.value)), (got.value, want.value)
    assert remote.count() == embedded.count() == N_DOCS + 2  # nothing was written


@real
def test_a_malformed_request_is_also_an_invalid_input_error(pair) -> None:
    with pytest.raises(InvalidRequestError) as err:
        pair[1].search("fever", k=0)
    assert err.value.status == 422 and isinstance(err.value, InvalidInputError)


def test_missing_collection(client: Client, tmp_path: Path) -> None:
    with pytest.raises(CollectionNotFoundError):
        Collection.open(tmp_path / "nope")
    with pytest.raises(CollectionNotFoundError):
        client.collection("nope")
    with pytest.raises(CollectionNotFoundError):
        client.delete_collection("nope")


# ---------------------------------------------------------------------------- client
@real
def test_collections_are_listed_created_and_deleted(client: Client, pair) -> None:
    assert "scifact" in client.list_collections()
    scratch = client.create_collection("scratch", MODEL)
    assert client.list_collections() == ["scifact", "scratch"]
    assert scratch.add_texts(["one text"]) and scratch.count() == 1
    client.delete_collection("scratch")
    assert client.list_collections() == ["scifact"]


def test_the_api_key_is_required(server: str, client: Client) -> None:
    assert client.healthz() == {"status": "ok"}
    for key in (None, "wrong-key-123456"):
        with Client(server, api_key=key) as stranger:
            assert stranger.healthz() == {"status": "ok"}  # the open path
            with pytest.raises(ServerError, match="401") as err:
                stranger.list_collections()
            assert err.value.status == 401


def test_an_unreachable_server_is_a_named_error() -> None:
    with Client("http://127.0.0.1:9", timeout=2) as nobody, pytest.raises(ServerError) as err:
        nobody.healthz()
    assert err.value.status is None and "ConnectError" in str(err.value)


# ---------------------------------------------------------------------------- transport
def _mock(client: Client, replies: list[Any]) -> list[str]:
    """Answer ``client``'s requests from ``replies`` (an exception is raised); the calls made."""
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(f"{request.method} {request.url.path}")
        reply = replies.pop(0)
        if isinstance(reply, Exception):
            raise reply
        return reply

    client._http = httpx.Client(base_url=client.url, transport=httpx.MockTransport(handler))
    return calls


@pytest.fixture()
def offline(monkeypatch: pytest.MonkeyPatch) -> Iterator[Client]:
    monkeypatch.setattr("sparsearch.server.client.time.sleep", lambda seconds: None)
    with Client("http://sparsearch.invalid") as client:
        yield client


def test_only_safe_requests_are_tried_again(offline: Client) -> None:
    ok = httpx.Response(200, json={"count": 3})
    calls = _mock(offline, [httpx.ConnectError("refused"), httpx.RemoteProtocolError("gone"), ok])
    assert RemoteCollection(offline, "c").count() == 3  # GET: tried three times
    assert len(calls) == 3
    calls = _mock(offline, [httpx.ReadError("reset"), httpx.Response(200, json={"hits": []})])
    assert RemoteCollection(offline, "c").search("q") == []  # a search is idempotent
    assert calls == ["POST /collections/c/points/search"] * 2
    calls = _mock(offline, [httpx.ConnectError("refused"), httpx.Response(200, json={})])
    RemoteCollection(offline, "c").delete(["a"])  # never reached the server: sent again
    assert len(calls) == 2
    for broken in (httpx.ReadError("reset"), httpx.ReadTimeout("slow")):
        calls = _mock(offline, [broken])
        with pytest.raises(ServerError, match=type(broken).__name__) as err:
            RemoteCollection(offline, "c").add_texts(["t"], ids=["a"])  # may have been applied
        assert err.value.status is None and calls == ["PUT /collections/c/points"]


@pytest.mark.parametrize(
    ("reply", "kind"),
    [
        (
            httpx.Response(404, json={"error": {"type": "UnknownIdError", "message": "m"}}),
            UnknownIdError,
        ),
        (
            httpx.Response(422, json={"error": {"type": "ValidationError", "message": "m"}}),
            InvalidRequestError,
        ),
        (
            httpx.Response(413, json={"error": {"type": "RequestError", "message": "m"}}),
            InvalidRequestError,
        ),
        (
            httpx.Response(500, json={"error": {"type": "InternalError", "message": "m"}}),
            ServerError,
        ),
        (httpx.Response(502, text="<html>bad gateway</html>"), ServerError),
    ],
)
def test_error_replies_become_exceptions(
    offline: Client, reply: httpx.Response, kind: type
) -> None:
    _mock(offline, [reply])
    with pytest.raises(kind) as err:
        offline.list_collections()
    assert type(err.value) is kind
    if isinstance(err.value, ServerError):
        assert err.value.status == reply.status_code and str(reply.status_code) in str(err.value)
