"""Encode a corpus into a shard folder on Ray: actor workers that load the model once.

The driver plans the job (:mod:`.inputs`: each shard a fixed range of input rows), writes the
manifest, then streams the numbers of the shards not yet written through a Ray Data actor pool
(``ActorPoolStrategy``, one task in flight per actor). Each actor loads the encoder once, with
``torch.set_num_threads(threads_per_worker)``, reads its shard's rows straight from the input and
writes the shard file itself (atomically); only small reports travel back. A killed job resumes
by skipping the shards already written; a resume with another model, other parameters or a
changed input is refused. Once every shard is there, ids are checked unique across shards and the
manifest is marked complete.

Each shard is encoded by one ``encode_document`` (or ``encode_query``) call over its rows, so the
vectors depend only on the plan, never on which worker ran a shard: ``workers=0`` runs the same
plan in this process and gives the same bits. (They can differ from one ``encode_document`` over
the whole corpus in the last float bits: a batch's shape changes the matrix products' rounding.)

Ray Data does not read the corpus itself: its readers give no stable row numbers, which resuming
by row range needs. Workers write to ``out_dir`` directly, so on a cluster of several machines it
must be a shared filesystem, and the model (hub id or folder) must load on every node.
"""

from __future__ import annotations

import logging
import os
import resource
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from sparsearch import errors
from sparsearch.distributed.inputs import (
    InputSpec,
    ShardPlan,
    check_fields,
    plan_input,
    read_rows,
    resolve_input,
)
from sparsearch.distributed.manifest import (
    MANIFEST,
    Manifest,
    is_manifest_folder,
    read_manifest,
    write_manifest,
)
from sparsearch.distributed.shards import (
    Shard,
    ShardSet,
    shard_meta,
    write_segment,
    write_shard,
)
from sparsearch.errors import DuplicateIdError, InvalidInputError, SparsearchError

SIDES = ("document", "query")
FORWARDED_ENV = ("HF_HUB_OFFLINE", "HF_HUB_CACHE", "HF_HOME", "TOKENIZERS_PARALLELISM")
"""Environment variables a local or connected job passes on to its workers when set."""
OBJECT_STORE_BYTES = 128 << 20
"""A local Ray's object store: only shard numbers and reports go through it."""


def encode_corpus(
    model: str | os.PathLike[str],
    source: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    address: str | None = None,
    workers: int = 2,
    threads_per_worker: int = 1,
    batch_size: int = 32,
    shard_size: int = 1000,
    side: str = "document",
    max_active_dims: int | None = None,
    max_seq_length: int | None = None,
    precision: str = "float32",
    id_field: str = "_id",
    text_field: str = "text",
    title_field: str | None = "title",
    payload_fields: Sequence[str] = (),
    with_text: bool = False,
    build_segments: bool = False,
    progress: bool = True,
) -> ShardSet:
    """Encode ``source`` (a BEIR folder, JSONL or Parquet file) with ``model`` into Parquet shards
    of ``shard_size`` rows in ``out_dir``, and return them as a :class:`ShardSet`.

    ``address``: None starts a local Ray with ``workers * threads_per_worker`` CPUs and shuts it
    down after; ``"auto"``, ``"host:port"`` or ``"ray://..."`` connects to a cluster; a Ray
    already initialised in this process is used as it is. ``workers=0`` encodes in this process
    (the same plan and vectors, no Ray). ``side``: ``"document"`` or ``"query"``. The fields name
    the input's id, text and title columns; ``payload_fields`` are copied into each payload and
    ``with_text`` stores the encoded text. ``build_segments``: each worker also indexes its
    shard (a saved ``SparseIndex`` of one segment beside it), so :func:`ingest` into an index
    only attaches them (:meth:`SparseIndex.attach`) instead of indexing on the driver; keep the
    shard count within the index's ``max_segments`` (16 by default; raise ``shard_size`` or
    ``max_segments``), else the smallest attached segments are merged, i.e. rebuilt. Running it
    again on the same ``out_dir`` resumes.
    """
    _check_counts(workers, threads_per_worker, batch_size, shard_size, max_seq_length)
    if side not in SIDES:
        raise InvalidInputError(f"side must be 'document' or 'query', got {side!r}")
    path, fmt = resolve_input(source, side)
    spec = InputSpec(
        str(path),
        fmt,
        id_field,
        text_field,
        title_field,
        check_fields(id_field, text_field, title_field, payload_fields),
        bool(with_text),
    )
    encoder = load_encoder(str(model), threads=None, max_seq_length=max_seq_length)
    from sparsearch.hybrid.cache import model_fingerprint

    identity, plan = plan_input(spec, shard_size)
    local_model = Path(model).expanduser()
    job = Manifest(
        # workers on other machines or in other folders load it: a local folder goes absolute
        model=str(local_model.resolve()) if local_model.exists() else str(model),
        fingerprint=model_fingerprint(encoder),
        dim=int(encoder.dim),
        vocab=list(encoder.vocab) if encoder.vocab is not None else None,
        encoding={
            "side": side,
            "batch_size": batch_size,
            "max_active_dims": max_active_dims or encoder.max_active_dims,
            "max_seq_length": encoder.max_seq_length,
            "precision": precision,
            "segments": bool(build_segments),
        },
        input={**spec.to_dict(), **identity},
        shard_size=shard_size,
        shards=plan,
    )
    folder = Path(out_dir).resolve()  # the workers' working folder may differ
    manifest = _prepare(folder, job)
    todo = [shard.number for shard in plan if not _written(folder, shard, manifest)]
    started = time.perf_counter()
    reports: list[dict[str, Any]] = []
    bar = tqdm(
        total=sum(plan[n].rows for n in todo), unit="doc", desc="encode", disable=not progress
    )
    with bar:
        for report in _run(encoder, manifest, folder, todo, address, workers, threads_per_worker):
            _raise_failure(report)
            reports.append(report)
            bar.update(int(report["rows"]))
    _check_written(folder, manifest)
    _check_unique_ids(folder, manifest)
    manifest.runs.append(_run_record(reports, len(plan) - len(todo), started, workers))
    manifest.complete = True
    write_manifest(folder, manifest)
    return ShardSet(folder)


def _check_counts(
    workers: int, threads: int, batch_size: int, shard_size: int, max_seq_length: int | None
) -> None:
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 0:
        raise InvalidInputError(f"workers must be an integer >= 0, got {workers!r}")
    counts = {"threads_per_worker": threads, "batch_size": batch_size, "shard_size": shard_size}
    if max_seq_length is not None:
        counts["max_seq_length"] = max_seq_length
    for name, value in counts.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidInputError(f"{name} must be a positive integer, got {value!r}")


def load_encoder(model: str, threads: int | None, max_seq_length: int | None) -> Any:
    """A ``SparseEncoder`` (with ``threads`` torch threads when given)."""
    import torch

    from sparsearch.models import SparseEncoder

    if threads is not None:
        torch.set_num_threads(threads)
    encoder = SparseEncoder(model)
    if max_seq_length is not None:
        encoder.max_seq_length = max_seq_length
    return encoder


def _prepare(folder: Path, job: Manifest) -> Manifest:
    """The manifest to run under: a new folder gets ``job``'s; an earlier run of the same job
    keeps its own (and its run records); anything else is refused."""
    if folder.exists() and not folder.is_dir():
        raise InvalidInputError(f"{folder}: exists and is not a folder")
    if is_manifest_folder(folder):
        manifest = read_manifest(folder)
        manifest.check_same_job(job, folder)
        manifest.input["path"] = job.input["path"]
        for leftover in folder.glob(".*.tmp"):  # files a killed job was writing
            leftover.unlink(missing_ok=True)
    elif folder.is_dir() and any(folder.iterdir()):
        raise InvalidInputError(f"{folder}: not empty and holds no {MANIFEST}: use a new folder")
    else:
        folder.mkdir(parents=True, exist_ok=True)
        manifest = job
    manifest.complete = False
    write_manifest(folder, manifest)
    return manifest


def _written(folder: Path, shard: ShardPlan, manifest: Manifest) -> bool:
    """Whether ``shard``'s file (and segment, when built) is there, whole and of this job (else
    it is encoded again)."""
    path = folder / shard.file
    if not path.is_file():
        return False
    if manifest.encoding.get("segments") and not (folder / shard.segment / "CURRENT").is_file():
        return False
    try:
        meta = shard_meta(path)
    except errors.IndexCorruptError:
        return False
    return bool(
        meta.get("shard") == shard.number
        and meta.get("rows") == shard.rows
        and meta.get("fingerprint") == manifest.fingerprint
    )


def _check_written(folder: Path, manifest: Manifest) -> None:
    missing = [s.file for s in manifest.shards if not _written(folder, s, manifest)]
    if missing:
        raise errors.IndexCorruptError(
            f"{folder}: {len(missing)} shards missing or damaged after the run ({missing[0]}, ...)"
        )


def _check_unique_ids(folder: Path, manifest: Manifest) -> None:
    """Ids repeated across shards (each shard checked its own) raise DuplicateIdError."""
    import pyarrow.parquet as pq

    first: dict[Any, str] = {}
    for shard in manifest.shards:
        for doc_id in pq.read_table(folder / shard.file, columns=["id"])["id"].to_pylist():
            if doc_id in first:
                raise DuplicateIdError(
                    f"{manifest.input['path']}: duplicate id {doc_id!r} "
                    f"(in {first[doc_id]} and {shard.file})"
                )
            first[doc_id] = shard.file


def _run_record(
    reports: list[dict[str, Any]], skipped: int, started: float, workers: int
) -> dict[str, Any]:
    """What this run did: shards encoded and skipped, seconds, and per worker process its
    shards, the seconds it spent on them (read, encode, write), the wall-clock span from its
    first shard's start to its last one's end, and its peak resident memory."""
    per_worker: dict[int, dict[str, Any]] = {}
    for report in reports:
        pid = int(report["pid"])
        worker = per_worker.setdefault(pid, {"pid": pid, "shards": 0, "seconds": 0.0})
        worker["shards"] += 1
        worker["seconds"] += float(report["seconds"])
        worker["first_started"] = min(report["started"], worker.get("first_started", 1e300))
        worker["last_finished"] = max(report["finished"], worker.get("last_finished", 0.0))
        worker["peak_rss_bytes"] = max(report["peak_rss_bytes"], worker.get("peak_rss_bytes", 0))
    return {
        "workers": workers,
        "encoded": sorted(int(r["shard"]) for r in reports),
        "skipped": skipped,
        "seconds": round(time.perf_counter() - started, 3),
        "processes": list(per_worker.values()),
    }


def _raise_failure(report: dict[str, Any]) -> None:
    """Raise again, as its own class, the sparsearch error a worker reported."""
    name = str(report.get("error") or "")
    if not name:
        return
    kind = getattr(errors, name, None)
    if not (isinstance(kind, type) and issubclass(kind, SparsearchError)):
        kind = SparsearchError
    raise kind(str(report["message"]))


# ---------------------------------------------------------------------------- the workers
class ShardEncoder:
    """A Ray Data actor (also run in-process for ``workers=0``): loads the encoder once, then
    encodes and writes whole shards, given their numbers; reports each shard as one row."""

    def __init__(
        self,
        manifest: Manifest,
        folder: str,
        threads: int,
        encoder: Any = None,
    ) -> None:
        encoding = manifest.encoding
        self.encoder = encoder or load_encoder(manifest.model, threads, encoding["max_seq_length"])
        self.manifest = manifest
        self.folder = Path(folder)
        self.spec = manifest.input_spec()
        self.checked = encoder is not None

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        reports = [self.encode(int(number)) for number in batch["shard"]]
        return {key: np.array([r[key] for r in reports]) for key in reports[0]}

    def encode(self, number: int) -> dict[str, Any]:
        """Encode and write shard ``number``; a sparsearch or OS error is reported, not raised
        (the driver raises it again as the same class)."""
        report: dict[str, Any] = {"shard": number, "rows": 0, "pid": os.getpid(), "seconds": 0.0}
        report["started"] = report["finished"] = 0.0
        try:
            self._check_model()
            report["started"] = time.time()
            report["rows"] = self._encode(self.manifest.shards[number])
            report["finished"] = time.time()
            report["seconds"] = report["finished"] - report["started"]
            report["error"] = report["message"] = ""
        except SparsearchError as err:
            report["error"], report["message"] = type(err).__name__, str(err)
        except OSError as err:  # disk full, no permission, the input gone: not a Ray traceback
            report["error"] = "SparsearchError"
            report["message"] = f"shard {number}: {type(err).__name__}: {err}"
        report["peak_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        return report

    def _check_model(self) -> None:
        if self.checked:
            return
        from sparsearch.hybrid.cache import model_fingerprint

        found = model_fingerprint(self.encoder)
        if found != self.manifest.fingerprint:
            raise errors.ModelMismatchError(
                f"worker on pid {os.getpid()} loaded {self.manifest.model!r} with fingerprint "
                f"{found[:12]}, the job expects {self.manifest.fingerprint[:12]}"
            )
        self.checked = True

    def _encode(self, plan: ShardPlan) -> int:
        encoding = self.manifest.encoding
        rows = read_rows(self.spec, plan, encoding["side"])
        encode = (
            self.encoder.encode_query
            if encoding["side"] == "query"
            else self.encoder.encode_document
        )
        vectors = encode(
            rows.texts,
            batch_size=encoding["batch_size"],
            show_progress_bar=False,
            max_active_dims=encoding["max_active_dims"],
            precision=encoding["precision"],
        )
        meta = {
            "shard": plan.number,
            "rows": plan.rows,
            "fingerprint": self.manifest.fingerprint,
            "dim": self.manifest.dim,
        }
        shard = Shard(rows.ids, vectors, rows.payloads, rows.stored_texts)
        if encoding.get("segments"):  # before the Parquet file, which marks the shard done
            write_segment(self.folder / plan.segment, shard)
        write_shard(self.folder / plan.file, shard, meta)
        return plan.rows


def _run(
    encoder: Any,
    manifest: Manifest,
    folder: Path,
    todo: list[int],
    address: str | None,
    workers: int,
    threads: int,
) -> Iterator[dict[str, Any]]:
    """Reports of the shards ``todo`` as they are written: here, or on Ray."""
    if not todo:
        return
    if workers == 0:
        yield from _run_here(encoder, manifest, folder, todo, threads)
        return
    with ray_session(address, workers * threads):
        yield from _run_on_ray(manifest, folder, todo, workers, threads)


def _run_here(
    encoder: Any, manifest: Manifest, folder: Path, todo: list[int], threads: int
) -> Iterator[dict[str, Any]]:
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        worker = ShardEncoder(manifest, str(folder), threads, encoder=encoder)
        for number in todo:
            yield worker.encode(number)
    finally:
        torch.set_num_threads(before)


def _run_on_ray(
    manifest: Manifest, folder: Path, todo: list[int], workers: int, threads: int
) -> Iterator[dict[str, Any]]:
    import ray.data

    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    shards = ray.data.from_items([{"shard": n} for n in todo], override_num_blocks=len(todo))
    reports = shards.map_batches(
        ShardEncoder,
        batch_size=1,
        compute=ray.data.ActorPoolStrategy(size=workers, max_tasks_in_flight_per_actor=1),
        num_cpus=threads,
        fn_constructor_kwargs={"manifest": manifest, "folder": str(folder), "threads": threads},
    )
    for row in reports.iter_rows():
        yield {key: value.item() if hasattr(value, "item") else value for key, value in row.items()}


@contextmanager
def ray_session(address: str | None, cpus: int) -> Iterator[None]:
    """Ray for one job: the one already initialised in this process, else a local instance
    (``address`` None, ``cpus`` CPUs) or a connection to ``address``, shut down after."""
    import ray

    if ray.is_initialized():
        yield
        return
    env = {name: os.environ[name] for name in FORWARDED_ENV if name in os.environ}
    options: dict[str, Any] = {
        "runtime_env": {"env_vars": env} if env else None,
        "logging_level": logging.WARNING,
    }
    try:
        if address is None:
            ray.init(
                "local",
                num_cpus=cpus,
                object_store_memory=OBJECT_STORE_BYTES,
                include_dashboard=False,
                **options,
            )
        else:
            ray.init(address, **options)
    except (ConnectionError, ValueError, RuntimeError) as err:
        raise InvalidInputError(
            f"cannot start or reach Ray at {address or 'local'}: {err}"
        ) from err
    try:
        yield
    finally:
        ray.shutdown()
