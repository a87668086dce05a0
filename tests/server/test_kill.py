"""kill -9 of the server in the middle of ingest, then a restart: nothing acknowledged is lost,
and the batch in flight is either all there or not there at all.

One collection lives through every trial. A trial starts the server on the same folder, checks
what the trial before left (every acknowledged id present with its payload and text, the batch
that was in flight at the kill all present or all absent, the count exactly that, the collection
opening and searching), then writes small batches (texts encoded by the real model, and
pre-encoded vectors, in turn) from a client thread and ``kill -9``-s the server while one of
them is in flight: after 1 to 4 acknowledged batches, at a random point of the next request.
A trial counts only when the request in flight at the kill got no answer; there are at least
MIN_TRIALS of them.
"""

from __future__ import annotations

import random
import statistics
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import real_model
from tests.server.conftest import MODEL, ServerProcess, scifact_docs

pytestmark = pytest.mark.real_model

NAME = "crash"
SCHEMA = {"uid": "keyword", "trial": "integer", "batch": "integer"}
MIN_TRIALS = 20
MAX_TRIALS = 30
BATCH = 4
TOKENS = ["cell", "cells", "protein", "gene", "human", "brain", "blood", "cancer", "risk",
          "study", "patients", "disease", "mouse", "virus", "immune", "tumor"]  # fmt: skip


@dataclass
class Trial:
    number: int
    acked: list[int] = field(default_factory=list)  # batches acknowledged, in order
    in_flight: int | None = None  # the batch whose request was running at the kill
    failed: dict[int, str] = field(default_factory=dict)  # batch -> the client's error
    refused: list[str] = field(default_factory=list)  # non-200 answers (must stay empty)
    latency: dict[str, list[float]] = field(default_factory=lambda: {"text": [], "vector": []})


def make_batch(trial: int, batch: int, texts: list[str]) -> list[dict[str, Any]]:
    """Batch ``batch`` of trial ``trial``: texts on even batches, pre-encoded vectors on odd."""
    rng = random.Random(trial * 1000 + batch)
    points = []
    for j in range(BATCH):
        uid = f"t{trial}-b{batch}-{j}"
        point: dict[str, Any] = {"id": uid, "payload": {"uid": uid, "trial": trial, "batch": batch}}
        if batch % 2 == 0:
            point["text"] = rng.choice(texts)
        else:
            point["vector"] = {t: round(rng.uniform(0.1, 3.0), 4) for t in rng.sample(TOKENS, 5)}
        points.append(point)
    return points


def kind(batch: int) -> str:
    return "text" if batch % 2 == 0 else "vector"


@pytest.fixture(scope="module")
def texts(shared_data: Path) -> list[str]:
    return [text for _, text in scifact_docs(shared_data, 40, chars=100)]


def ingest_until_killed(
    server: ServerProcess, trial: Trial, texts: list[str], rng: random.Random
) -> None:
    """Write batches from a client thread; kill -9 the server during one of them."""
    lock = threading.Lock()
    state: dict[str, Any] = {"running": None, "since": 0.0, "killed": False}

    def writer() -> None:
        with server.client(timeout=60) as client:
            for batch in range(10_000):
                points = make_batch(trial.number, batch, texts)
                with lock:
                    if state["killed"]:
                        return
                    state["running"], state["since"] = batch, time.monotonic()
                try:
                    answer = client.put(f"/collections/{NAME}/points", json={"points": points})
                except httpx.TransportError as err:  # the server died under this request
                    trial.failed[batch] = repr(err)
                    return
                with lock:
                    state["running"] = None
                    if answer.status_code != 200:
                        trial.refused.append(answer.text)
                        return
                    trial.acked.append(batch)
                    trial.latency[kind(batch)].append(time.monotonic() - state["since"])

    thread = threading.Thread(target=writer)
    thread.start()
    need = rng.randint(1, 4)  # acknowledged batches before the kill
    deadline = time.monotonic() + 120
    while True:
        assert time.monotonic() < deadline, "the ingest did not get going"
        assert thread.is_alive() or state["killed"], (trial, server.log_tail())
        with lock:
            running, since = state["running"], state["since"]
        if running is None or len(trial.acked) < need:
            time.sleep(0.0005)
            continue
        # a random point of this request: up to 90 % of the typical time of its kind
        typical = statistics.median(trial.latency[kind(running)] or [0.05])
        delay = rng.uniform(0.0, 0.9) * typical - (time.monotonic() - since)
        if delay > 0:
            time.sleep(delay)
        with lock:
            if state["running"] == running:
                server.kill()
                state["killed"] = True
                trial.in_flight = running
                break
    thread.join(timeout=60)
    assert not thread.is_alive()


def check_recovered(
    http: httpx.Client, present: dict[str, dict[str, Any]], previous: Trial | None, texts: list[str]
) -> None:
    """The state a restarted server shows: ``present`` (uid -> point) updated with the outcome of
    the batch in flight at the kill."""
    if previous is not None:
        for batch in previous.acked:
            for point in make_batch(previous.number, batch, texts):
                present[point["id"]] = point
    maybe = (
        make_batch(previous.number, previous.in_flight, texts)
        if previous and previous.in_flight is not None
        else []
    )
    found = [http.get(f"/collections/{NAME}/points/{p['id']}").status_code for p in maybe]
    assert set(found) <= {200, 404}
    assert len(set(found)) <= 1, (
        "the batch in flight is half there",
        previous,
        found,
    )  # all or none
    if found and found[0] == 200:
        for point in maybe:
            present[point["id"]] = point

    info = http.get(f"/collections/{NAME}")
    assert info.status_code == 200, info.text  # the collection opens
    count = http.get(f"/collections/{NAME}/points/count").json()["count"]
    assert count == len(present) == info.json()["documents"], (count, len(present), previous)

    ids = list(present)
    for start in range(0, len(ids), 500):
        answer = http.post(f"/collections/{NAME}/points", json={"ids": ids[start : start + 500]})
        assert answer.status_code == 200, answer.text[:500]
        for got in answer.json()["points"]:
            want = present[got["id"]]
            assert got["payload"] == want["payload"], (got, want)
            assert got["text"] == want.get("text"), (got, want)
            if "vector" in want:
                assert got["vector"] == pytest.approx(want["vector"], rel=1e-6)
            else:
                assert got["vector"]  # encoded on ingest

    if ids:  # search works, and the index agrees with the payload columns
        uid = random.Random(len(ids)).choice(ids)
        point = present[uid]
        query = point.get("text") or dict(point["vector"])
        flt = {"must": [{"key": "uid", "match": {"value": uid}}]}
        answer = http.post(
            f"/collections/{NAME}/points/search", json={"query": query, "k": 5, "filter": flt}
        )
        assert answer.status_code == 200, answer.text
        assert [h["id"] for h in answer.json()["hits"]] == [uid]
        everything = http.post(
            f"/collections/{NAME}/points/search", json={"query": "cells and proteins", "k": 10}
        )
        assert everything.status_code == 200 and everything.json()["hits"]


def recover(
    server: ServerProcess,
    present: dict[str, dict[str, Any]],
    previous: Trial | None,
    texts: list[str],
    outcomes: dict[str, int],
) -> None:
    """Check the restarted server (see :func:`check_recovered`) and tally the in-flight batch."""
    before = len(present)
    with server.client() as http:
        check_recovered(http, present, previous, texts)
    if previous is not None and previous.in_flight is not None:
        kept = len(present) - before > len(previous.acked) * BATCH
        outcomes["in-flight batch kept" if kept else "in-flight batch dropped"] += 1


def test_kill_9_during_ingest_loses_nothing_acknowledged(start_server, texts: list[str]) -> None:
    real_model(MODEL)
    rng = random.Random(9)
    server: ServerProcess = start_server()
    body = {"model": MODEL, "payload_schema": SCHEMA}
    with server.client() as http:
        assert http.put(f"/collections/{NAME}", json=body).status_code == 201

    present: dict[str, dict[str, Any]] = {}
    previous: Trial | None = None
    counted: list[Trial] = []
    trials: list[Trial] = []
    starts: list[float] = []  # seconds from the start to /healthz answering
    recoveries: list[float] = []  # seconds from the start to the recovered state checked
    outcomes = {"in-flight batch kept": 0, "in-flight batch dropped": 0}
    began = time.monotonic()
    for number in range(MAX_TRIALS):
        if len(counted) >= MIN_TRIALS:
            break
        t0 = time.monotonic()
        if not server.running:
            server.start()
            starts.append(time.monotonic() - t0)
        recover(server, present, previous, texts, outcomes)  # opens the collection: the model
        if previous is not None:
            recoveries.append(time.monotonic() - t0)

        trial = Trial(number)
        trials.append(trial)
        ingest_until_killed(server, trial, texts, rng)
        assert not server.running
        assert trial.refused == [], trial.refused
        assert trial.acked, trial  # some batches were acknowledged before the kill
        assert trial.in_flight is not None
        if trial.in_flight in trial.failed:  # the request in flight at the kill got no answer
            counted.append(trial)
        previous = trial

    # the last trial's outcome, checked by one more start
    server.start()
    recover(server, present, previous, texts, outcomes)
    assert server.stop() is not None
    elapsed = time.monotonic() - began
    print(
        f"\n{len(counted)} trials killed mid-request (of {len(trials)}); "
        f"{len(present)} documents; outcomes of the batch in flight: {outcomes}; "
        f"on average {statistics.mean(starts):.1f} s to start the server and "
        f"{statistics.mean(recoveries):.1f} s to check the recovered state; {elapsed:.0f} s in all"
    )
    assert len(counted) >= MIN_TRIALS
    assert sum(len(t.acked) for t in counted) >= len(counted)
    kinds = {kind(t.in_flight) for t in counted if t.in_flight is not None}
    assert kinds == {"text", "vector"}  # kills during both kinds of writes
    assert server.unexpected_errors() == [], server.log_tail()
