"""Searches during ingest: 16 client threads search (text and vector queries) while one thread
writes batches, against a real server, with zero errors and only answers that are right.

Right means: equal to what an embedded :class:`~sparsearch.collection.Collection` fed the same
batches answers in one of its states. A second collection folder, in this process, takes the
same batches one by one; after each, the expected hits of every query are recorded (ids,
scores, payloads). Every server answer must equal the expected answer of one state (scores to
1e-5) that is possible for its timing (no batch acknowledged after the search ended, every
batch acknowledged before it started), and the states one thread sees never go backwards. The
test also proves the overlap: answers come from several states, and many searches complete
while the ingest is in progress.
"""

from __future__ import annotations

import math
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from sparsearch.collection import Collection
from tests.conftest import real_model
from tests.server.conftest import MODEL, ServerProcess, module_server, scifact_docs

pytestmark = pytest.mark.real_model

NAME = "live"
THREADS = 16
BASE = 16  # documents stored before the threads start
BATCHES = 10
BATCH = 6
K = 5
TOL = 1e-5
PAUSE = 0.15  # seconds between two ingest batches, so every state is there to be seen


@dataclass
class Answer:
    thread: int
    query: int
    started: float
    ended: float
    status: int
    hits: list[tuple[Any, float, Any]] | None
    error: str | None = None


def hits_of(raw: list[dict[str, Any]]) -> list[tuple[Any, float, Any]]:
    return [(h["id"], h["score"], h["payload"]) for h in raw]


def same_hits(got: list[tuple[Any, float, Any]], want: list[tuple[Any, float, Any]]) -> bool:
    """Equal ids, payloads and scores (to TOL); ids whose scores tie (to TOL) may swap."""
    if len(got) != len(want):
        return False
    for (_, g, _), (_, w, _) in zip(got, want, strict=True):
        if not math.isclose(g, w, rel_tol=TOL, abs_tol=TOL):
            return False
    start = 0
    for end in range(1, len(want) + 1):  # tie groups: runs of equal scores
        if end == len(want) or not math.isclose(
            want[end][1], want[end - 1][1], rel_tol=TOL, abs_tol=TOL
        ):
            group_got = sorted((repr(i), repr(p)) for i, _, p in got[start:end])
            group_want = sorted((repr(i), repr(p)) for i, _, p in want[start:end])
            if group_got != group_want:
                return False
            start = end
    return True


# ---------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def batches(shared_data: Path) -> list[list[dict[str, Any]]]:
    """Batch 0 (stored first) and the BATCHES batches written during the searches."""
    docs = scifact_docs(shared_data, BASE + BATCHES * BATCH, chars=150)
    points = [
        {
            "id": doc_id,
            "text": text,
            "payload": {"batch": 0 if i < BASE else 1 + (i - BASE) // BATCH},
        }
        for i, (doc_id, text) in enumerate(docs)
    ]
    out = [points[:BASE]]
    out += [points[BASE + b * BATCH : BASE + (b + 1) * BATCH] for b in range(BATCHES)]
    return out


@pytest.fixture(scope="module")
def expected(
    tmp_path_factory: pytest.TempPathFactory, batches: list[list[dict[str, Any]]]
) -> tuple[list[Any], list[list[list[tuple[Any, float, Any]]]]]:
    """The queries, and ``states[s][q]``: the hits of query q after batches 0..s, as the
    embedded collection answers them."""
    real_model(MODEL)
    mirror = Collection.create(tmp_path_factory.mktemp("mirror") / "mirror", model=MODEL)
    # text queries: the start of a document of every ingest batch (and two of batch 0)
    picks = [(0, 1), (0, 9), *((b, b % BATCH) for b in range(1, BATCHES + 1))]
    queries: list[Any] = [batches[b][j]["text"][:70] for b, j in picks]
    # vector queries: the six heaviest tokens of a document of every ingest batch, as
    # {token: weight} and as {indices, values} in turn
    vocab = mirror.sparse_model.vocab
    for b in range(1, BATCHES + 1):
        sparse, _ = mirror.encode_documents([batches[b][(b + 2) % BATCH]["text"]])
        idx, val = sparse.row(0)
        top = sorted(zip(idx.tolist(), val.tolist(), strict=True), key=lambda iv: -iv[1])[:6]
        if b % 2:
            queries.append({vocab[i]: round(w, 3) for i, w in top})
        else:
            queries.append(
                {"indices": [i for i, _ in top], "values": [round(w, 3) for _, w in top]}
            )
    encoded = [mirror.encode([q]) for q in queries]  # each text query encoded alone
    states: list[list[list[tuple[Any, float, Any]]]] = []
    for batch in batches:
        mirror.upsert_texts(
            [p["id"] for p in batch],
            [p["text"] for p in batch],
            [p["payload"] for p in batch],
            write_batch=len(batch),
        )
        states.append(
            [
                hits_of([h.to_dict() for h in mirror.search_batch([q], K, encoded=enc)[0]])
                for q, enc in zip(queries, encoded, strict=True)
            ]
        )
    mirror.close()
    distinct = [len({repr(states[s][q]) for s in range(len(states))}) for q in range(len(queries))]
    assert sum(distinct) > 2 * len(queries), distinct  # the queries tell the states apart
    return queries, states


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    real_model(MODEL)
    yield from module_server(tmp_path_factory)


# ---------------------------------------------------------------------------- the test
def test_searches_during_ingest_see_whole_states_in_order(
    server: ServerProcess, batches: list[list[dict[str, Any]]], expected
) -> None:
    queries, states = expected
    url = f"/collections/{NAME}/points/search"
    with server.client() as http:
        assert http.put(f"/collections/{NAME}", json={"model": MODEL}).status_code == 201
        done = http.put(f"/collections/{NAME}/points", json={"points": batches[0]})
        assert done.status_code == 200, done.text
        # before any concurrency: the server answers exactly as the embedded state 0
        for q, query in enumerate(queries):
            got = hits_of(http.post(url, json={"query": query, "k": K}).json()["hits"])
            assert same_hits(got, states[0][q]), (q, query, got, states[0][q])

    sent: list[float] = []  # when batch i+1 was sent / acknowledged
    acked: list[float] = []
    ingest_errors: list[str] = []
    answers: list[Answer] = []
    lock = threading.Lock()
    ingesting = threading.Event()
    finished = threading.Event()

    def ingest() -> None:
        with server.client() as client:
            ingesting.set()
            for batch in batches[1:]:
                time.sleep(PAUSE)
                sent.append(time.monotonic())
                try:
                    answer = client.put(f"/collections/{NAME}/points", json={"points": batch})
                    if answer.status_code != 200:
                        ingest_errors.append(answer.text)
                except httpx.HTTPError as err:
                    ingest_errors.append(repr(err))
                acked.append(time.monotonic())
        finished.set()

    def searcher(thread: int) -> None:
        ingesting.wait()
        q = thread
        after = 0  # a few more rounds once the ingest is over: the final state is seen too
        with server.client() as client:
            while after < 3:
                if finished.is_set():
                    after += 1
                query = queries[q % len(queries)]
                started = time.monotonic()
                try:
                    answer = client.post(url, json={"query": query, "k": K})
                    ended = time.monotonic()
                    hits = hits_of(answer.json()["hits"]) if answer.status_code == 200 else None
                    record = Answer(thread, q % len(queries), started, ended, answer.status_code, hits,
                                    None if hits is not None else answer.text[:300])  # fmt: skip
                except Exception as err:  # noqa: BLE001 - every failure is counted, none hidden
                    record = Answer(
                        thread, q % len(queries), started, time.monotonic(), 0, None, repr(err)
                    )
                with lock:
                    answers.append(record)
                q += 1 + thread % 3

    threads = [threading.Thread(target=searcher, args=(t,)) for t in range(THREADS)]
    writer = threading.Thread(target=ingest)
    for thread in threads:
        thread.start()
    writer.start()
    writer.join(timeout=600)
    for thread in threads:
        thread.join(timeout=600)
    assert not writer.is_alive() and not any(t.is_alive() for t in threads)

    # zero errors
    assert ingest_errors == []
    failures = [a for a in answers if a.status != 200]
    assert failures == [], failures[:5]
    assert len(acked) == BATCHES

    # every answer is one possible state's answer, and each thread's states never go back
    per_thread: dict[int, list[Answer]] = {}
    for answer in answers:
        per_thread.setdefault(answer.thread, []).append(answer)
    assigned: Counter[int] = Counter()
    unlike_ends = 0  # answers that are neither the first nor the last state's
    for thread, seen in per_thread.items():
        seen.sort(key=lambda a: a.started)
        current = 0
        for answer in seen:
            low = sum(1 for t in acked if t < answer.started)  # batches surely visible
            high = sum(1 for t in sent if t < answer.ended)  # batches possibly visible
            matching = [
                s for s in range(len(states)) if same_hits(answer.hits, states[s][answer.query])
            ]
            assert matching, ("no state gives this answer", thread, answer, queries[answer.query])
            possible = [s for s in matching if max(current, low) <= s <= high]
            assert possible, (
                "an answer from a state that was not there then, or older than one seen before",
                thread, answer.query, matching, (current, low, high),
            )  # fmt: skip
            current = possible[0]
            assigned[current] += 1
            if 0 not in matching and len(states) - 1 not in matching:
                unlike_ends += 1

    # the searches really overlapped the ingest
    during = [a for a in answers if sent[0] < a.ended < acked[-1]]
    print(
        f"\n{len(answers)} answers by {THREADS} threads, {len(during)} completed during the ingest "
        f"({acked[-1] - sent[0]:.1f} s); states assigned: {sorted(assigned.items())}; "
        f"{unlike_ends} answers from neither the first nor the last state"
    )
    assert len(per_thread) == THREADS
    assert len(during) >= 2 * THREADS
    assert len(assigned) >= 3  # answers from several states
    assert unlike_ends >= 1  # some answer could only come from a state in the middle of ingest
    assert {a.query for a in during} == set(range(len(queries)))  # text and vector queries
    assert server.unexpected_errors() == []
