"""Encoding on a real local Ray cluster (2 CPUs, started once for the module): the vectors equal
the in-process plan bit for bit; a job whose driver is killed half-way resumes from the finished
shards; the CLI's --ray path and its errors."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from sparsearch.cli import main
from sparsearch.distributed import ShardSet, encode_corpus, ingest
from sparsearch.errors import InvalidInputError
from sparsearch.index import SparseIndex
from tests.conftest import real_model
from tests.distributed import MODEL, SEQ, assert_same_bits, gather, write_subset

pytestmark = [pytest.mark.real_model, pytest.mark.slow]

SHARD = 20  # 8 shards of the 160 documents: a kill lands between the first and the last


@pytest.fixture(scope="module")
def cluster():
    """A local Ray with 2 CPUs; yields its address (other processes connect to it)."""
    import ray

    real_model(MODEL)  # fail early, naming the cache, if the model is missing
    ray.init("local", num_cpus=2, include_dashboard=False, object_store_memory=128 << 20)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


@pytest.fixture(scope="module")
def corpus(shared_data: Path, tmp_path_factory) -> Path:
    return write_subset(shared_data, tmp_path_factory.mktemp("input") / "corpus.jsonl")


@pytest.fixture(scope="module")
def uninterrupted(corpus: Path, tmp_path_factory) -> ShardSet:
    """The same plan run in this process, without Ray (the reference)."""
    out = tmp_path_factory.mktemp("here") / "out"
    return encode_corpus(
        MODEL, corpus, out, workers=0, shard_size=SHARD, max_seq_length=SEQ, progress=False
    )


def test_ray_workers_write_the_in_process_vectors_bit_for_bit(
    cluster: str, corpus: Path, uninterrupted: ShardSet, tmp_path: Path
) -> None:
    shards = encode_corpus(
        MODEL, corpus, tmp_path / "out", workers=2, shard_size=SHARD, max_seq_length=SEQ,
        build_segments=True, progress=False,
    )  # fmt: skip
    ids, vectors, _ = gather(shards)
    want_ids, want, _ = gather(uninterrupted)
    assert ids == want_ids
    assert_same_bits(vectors, want)
    assert shards.fingerprint == uninterrupted.fingerprint
    assert shards.manifest.encoding == {**uninterrupted.manifest.encoding, "segments": True}
    run = shards.manifest.runs[-1]
    assert run["encoded"] == list(range(8)) and run["skipped"] == 0
    assert sum(p["shards"] for p in run["processes"]) == 8
    assert all(p["pid"] != os.getpid() and p["peak_rss_bytes"] > 0 for p in run["processes"])
    # the workers indexed their shards; the driver attaches those segments as they are
    index, oracle = SparseIndex(tmp_path / "index"), SparseIndex()
    ingest(shards, index)
    ingest(uninterrupted, oracle)  # indexed on the driver, shard by shard
    assert index.ids() == oracle.ids() == want_ids
    for number, segment in enumerate(index.snapshot().segments):
        built = SparseIndex.open(shards.path / f"shard-{number:05d}.index").snapshot()
        assert np.array_equal(segment.inverted[1], built.segments[0].inverted[1])
    queries = want[:30]
    got, expected = index.search(queries, k=10), oracle.search(queries, k=10)
    assert got.ids.tolist() == expected.ids.tolist()
    assert np.array_equal(got.scores, expected.scores)


def test_a_killed_job_resumes_from_its_finished_shards(
    cluster: str, corpus: Path, uninterrupted: ShardSet, tmp_path: Path, capsys
) -> None:
    out = tmp_path / "out"
    command = [MODEL, str(corpus), str(out), "--ray", cluster, "--workers", "2"]
    command += ["--shard-size", str(SHARD), "--max-seq-length", str(SEQ), "--no-progress"]
    driver = subprocess.Popen(
        [sys.executable, "-m", "sparsearch.cli", "encode", *command],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 240
    while not list(out.glob("shard-*.parquet")):
        assert driver.poll() is None, "the job ended before writing a shard"
        assert time.monotonic() < deadline, "no shard written in 4 minutes"
        time.sleep(0.02)
    driver.send_signal(signal.SIGKILL)  # the driver dies; Ray then ends the job's actors
    driver.wait()
    finished = _settled(out)
    assert 0 < len(finished) < 8, f"the kill should land half-way, found {sorted(finished)}"
    with pytest.raises(InvalidInputError, match="incomplete shard folder"):
        ShardSet(out)

    assert main(["encode", *command]) == 0  # the same command, in this process: resumes
    assert f"{8 - len(finished)} written, {len(finished)} already there" in capsys.readouterr().out
    shards = ShardSet(out)
    run = shards.manifest.runs[-1]
    assert run["skipped"] == len(finished)
    assert set(run["encoded"]) == set(range(8)) - {int(n[6:11]) for n in finished}
    for name, mtime in finished.items():
        assert (out / name).stat().st_mtime_ns == mtime  # not encoded again
    ids, vectors, _ = gather(shards)
    want_ids, want, _ = gather(uninterrupted)
    assert ids == want_ids
    assert_same_bits(vectors, want)


def _settled(out: Path) -> dict[str, int]:
    """Shard files and their mtimes once none has appeared for 3 seconds (the killed job's
    actors may finish the shard they were writing before Ray ends them)."""
    seen: dict[str, int] = {}
    quiet_since = time.monotonic()
    while time.monotonic() - quiet_since < 3:
        now = {p.name: p.stat().st_mtime_ns for p in out.glob("shard-*.parquet")}
        if now != seen:
            seen, quiet_since = now, time.monotonic()
        time.sleep(0.1)
    return seen


def test_cli_errors_are_one_line(corpus: Path, tmp_path: Path, capsys) -> None:
    out = str(tmp_path / "out")
    assert main(["encode", MODEL, str(tmp_path / "nope.jsonl"), out, "--ray", "local"]) == 2
    assert "nope.jsonl: no such file" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["encode", MODEL, str(corpus), out, "--ray", "local", "--workers", "0"])
    assert exit_info.value.code == 2
    assert "--workers: must be a positive integer, got 0" in capsys.readouterr().err
    assert main(["encode", MODEL, str(corpus), out + ".npz", "--workers", "2"]) == 2
    assert "--workers, --shard-size and --build-segments need --ray" in capsys.readouterr().err
