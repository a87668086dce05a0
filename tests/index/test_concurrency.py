"""One writer, many readers: snapshots under concurrent writes, the writer lock across handles
and processes, and readers in other processes that refresh while a writer commits."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from sparsearch.errors import IndexLockedError
from sparsearch.index import SparseIndex
from sparsearch.search import SearchParams
from sparsearch.sparse import SparseVectors
from tests.index.brute import assert_same_hits, brute_force

DIM = 64


def docs(rng: np.random.Generator, n: int) -> SparseVectors:
    dense = rng.integers(1, 9, (n, DIM)).astype(np.float32) / 4 * (rng.random((n, DIM)) < 0.1)
    return SparseVectors.from_dense(dense)


def check_view(view: SparseIndex, queries: SparseVectors, flt: dict | None) -> None:
    """Search a pinned view and compare with brute force over that same view's documents."""
    params = SearchParams(filter=flt)
    hits = view.search(queries, k=10, params=params)
    ids = view.ids()
    allowed = None
    if flt is not None:
        payloads = view.get_payloads(ids)
        allowed = np.array([p is not None and p["even"] for p in payloads], bool)
    if ids:
        ref_ids, ref_scores = brute_force(view.get(ids), ids, queries, 10, allowed)
    else:
        ref_ids = np.full((queries.n, 10), None, object)
        ref_scores = np.full((queries.n, 10), -np.inf, np.float32)
    assert_same_hits(hits, ref_ids, ref_scores)


@pytest.mark.numba_only
def test_searching_threads_see_consistent_snapshots_while_a_writer_changes_the_index():
    rng = np.random.default_rng(0)
    index = SparseIndex(max_segments=4)
    index.add(
        [f"seed-{i}" for i in range(300)],
        docs(rng, 300),
        [{"even": i % 2 == 0} for i in range(300)],
    )
    queries = docs(np.random.default_rng(1), 6)
    stop = threading.Event()
    writes = [0]
    errors: list[BaseException] = []
    searched: list[int] = []

    def writer() -> None:
        wrng = np.random.default_rng(2)
        step = 0
        while not stop.is_set():
            step += 1
            new = [f"w{step}-{j}" for j in range(20)]
            index.add(new, docs(wrng, 20), [{"even": j % 2 == 0} for j in range(20)])
            live = index.ids()
            index.delete([live[int(i)] for i in wrng.choice(len(live), 8, replace=False)])
            live = index.ids()
            chosen = [live[int(i)] for i in wrng.choice(len(live), 5, replace=False)]
            index.upsert(chosen, docs(wrng, 5), [{"even": True}] * 5)
            if step % 5 == 0:
                index.compact()
            writes[0] += 1

    def reader(seed: int) -> None:
        count = 0
        try:
            while not stop.is_set():
                view = index.pinned()
                check_view(view, queries, {"payload": {"even": True}} if count % 2 else None)
                count += 1
        except BaseException as err:  # noqa: BLE001 - reported by the main thread
            errors.append(err)
        searched.append(count)

    threads = [threading.Thread(target=reader, args=(i,)) for i in range(4)]
    threads.append(threading.Thread(target=writer))
    for thread in threads:
        thread.start()
    time.sleep(6)
    stop.set()
    for thread in threads:
        thread.join()
    assert not errors, errors[0]
    # the work really overlapped: the writer committed many changes while every reader searched
    assert writes[0] >= 10 and min(searched) >= 5, (writes, searched)


def test_index_search_captures_one_snapshot_even_when_the_index_changes_meanwhile():
    rng = np.random.default_rng(3)
    index = SparseIndex()
    index.add(list(range(50)), docs(rng, 50))
    view = index.pinned()
    before = view.search(docs(rng, 3), k=5)
    index.delete(list(range(0, 50, 2)))
    index.compact()
    again = view.search(docs(rng, 3), k=5)
    assert len(view) == 50 and len(index) == 25
    assert before.ids.dtype == np.int64 and again.ids.dtype == np.int64
    with pytest.raises(Exception, match="read-only"):
        view.add([99], docs(rng, 1))


def test_a_second_writer_handle_in_this_process_gets_index_locked_error(tmp_path):
    rng = np.random.default_rng(4)
    first = SparseIndex(tmp_path / "idx")
    first.add(["a", "b"], docs(rng, 2))
    first.save()  # committing releases the lock
    second = SparseIndex.open(tmp_path / "idx")
    second.add(["c"], docs(rng, 1))  # second now holds the lock (unsaved change)
    with pytest.raises(IndexLockedError):
        first.add(["d"], docs(rng, 1))
    assert first.ids() == ["a", "b"]  # the refused write changed nothing
    second.save()
    first.add(["d"], docs(rng, 1))  # the lock is free; first catches up with second's commit
    assert first.ids() == ["a", "b", "c", "d"]
    first.save()
    assert SparseIndex.open(tmp_path / "idx").ids() == ["a", "b", "c", "d"]


LOCKED_CHILD = """
import sys
import numpy as np
from sparsearch.errors import IndexLockedError
from sparsearch.index import SparseIndex
from sparsearch.sparse import SparseVectors
index = SparseIndex.open(sys.argv[1])
try:
    index.add(["from-child"], SparseVectors.from_dicts([{0: 1.0}], dim=int(sys.argv[2])))
except IndexLockedError as err:
    print("locked:", err)
    sys.exit(0)
index.save()
print("wrote")
"""


def test_a_writer_in_another_process_gets_index_locked_error(tmp_path):
    rng = np.random.default_rng(5)
    index = SparseIndex(tmp_path / "idx")
    index.add(["a"], docs(rng, 1))
    index.save()
    index.add(["b"], docs(rng, 1))  # holds the lock until saved
    run = [sys.executable, "-c", LOCKED_CHILD, str(tmp_path / "idx"), str(DIM)]
    child = subprocess.run(run, capture_output=True, text=True, check=True, timeout=120)
    assert child.stdout.startswith("locked:"), child.stdout + child.stderr
    index.save()
    child = subprocess.run(run, capture_output=True, text=True, check=True, timeout=120)
    assert child.stdout.strip() == "wrote", child.stdout + child.stderr
    index.refresh()
    assert index.ids() == ["a", "b", "from-child"]


READER_CHILD = """
import sys, time
import numpy as np
from sparsearch.index import SparseIndex
from sparsearch.sparse import SparseVectors
path, dim, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
index = SparseIndex.open(path)
query = SparseVectors.from_dicts([{t: 1.0 for t in range(dim)}], dim=dim)
seen, end = set(), time.monotonic() + seconds
while time.monotonic() < end:
    index.refresh()
    ids = index.ids()
    step = len(ids) // 10
    # each commit adds ten documents of one step: any other set of ids is a torn state
    assert ids == [f"{s}-{j}" for s in range(step) for j in range(10)], ids
    hits = index.search(query, k=5)
    assert all(h is None or h in set(ids) for h in hits.ids[0].tolist())
    seen.add(step)
print(len(seen))
"""


def test_a_reader_process_that_refreshes_never_sees_an_error_or_a_torn_state(tmp_path):
    rng = np.random.default_rng(6)
    path = tmp_path / "idx"
    index = SparseIndex(path, max_segments=3)
    index.add([f"0-{j}" for j in range(10)], docs(rng, 10))
    index.save()
    reader = subprocess.Popen(
        [sys.executable, "-c", READER_CHILD, str(path), str(DIM), "8"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    step, end = 1, time.monotonic() + 8
    while time.monotonic() < end:
        index.add([f"{step}-{j}" for j in range(10)], docs(rng, 10))
        index.save()  # merges past three segments: garbage collection removes old files
        step += 1
    out, err = reader.communicate(timeout=120)
    assert reader.returncode == 0, err
    assert step > 20 and int(out) >= 3, (step, out)  # the reader saw several commits


def test_a_snapshot_keeps_working_after_later_commits_collect_its_files(tmp_path):
    rng = np.random.default_rng(7)
    path = tmp_path / "idx"
    index = SparseIndex(path, max_segments=2)
    for step in range(3):
        index.add([f"{step}-{j}" for j in range(40)], docs(rng, 40), [{"even": True}] * 40)
        index.save()
    reader = SparseIndex.open(path)  # memory-mapped segment files of this version
    view = reader.pinned()
    queries = docs(np.random.default_rng(8), 5)
    before = view.search(queries, k=10, params=SearchParams(return_payloads=True))
    old_files = {p.name for p in (path / "segments").iterdir()}
    index.delete(view.ids()[:30])
    index.compact()
    index.save()
    index.save()  # two commits later, the files the view was read from are gone
    assert not old_files & {p.name for p in (path / "segments").iterdir()}
    after = view.search(queries, k=10, params=SearchParams(return_payloads=True))
    assert after.ids.tolist() == before.ids.tolist()
    assert after.payloads.tolist() == before.payloads.tolist()
    np.testing.assert_array_equal(after.scores, before.scores)
    check_view(view, queries, {"payload": {"even": True}})
    assert reader.refresh() and len(reader) == 90
