"""The on-disk layout of an index and its crash-safe commit protocol.

::

    path/
      CURRENT                      {"manifest": "manifest-000007.json", "sha256": ...} + self-check
      manifest-000007.json         format version, dim, vocab hash, counts, params, every file's
                                   size and sha256
      vocab-<hash>.json            the vocabulary (when the index has one)
      segments/seg-000003-<rand>/  fwd_*.npy, seq.npy, post_*.npy, blk_*.npy ... (the search
                                   arrays), id.*.npy (the id column and its hash table),
                                   payload.*.npy (payload JSON and typed columns), columns.json
      tombstones/<segment>.<version>.npy   deleted local ordinals (int64)
      approx/<segment>-<rand>/     a segment's approximate-search part (arrays + meta.json),
                                   when one was built; written once, like a segment
      wal/                         the write-ahead log (see :mod:`sparsearch.index.wal`)
      LOCK                         the writer lock (see :mod:`sparsearch.index.lock`)

Segment folders are written once (to a temporary folder, fsynced, renamed) and never changed; a
commit writes the new tombstones and manifest, then atomically replaces ``CURRENT``. Killed at any
point, the index opens to the previous ``CURRENT`` (files of an unfinished commit are ignored and
removed by the next commit). Opening checks every file's size, and (``verify``) its checksum.
Every array is memory-mapped or read at open, and files are never rewritten in place, so a
snapshot already open keeps working after a later commit removes the files it was read from.
Format 3 (ids as JSON, payloads as JSON lines) still opens; its segments are rewritten in the
current format by the next save (``sparsearch index upgrade`` does it at once).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any, Literal

import numpy as np

from sparsearch.errors import IndexCorruptError, IndexNotFoundError, InvalidInputError
from sparsearch.index import approx
from sparsearch.index.durable_files import fsync_dir
from sparsearch.index.ids import AnyIdColumn, column_for, column_from_arrays
from sparsearch.index.lock import LOCK
from sparsearch.index.manifest_schema import check_manifest
from sparsearch.index.payload_columns import PayloadColumns
from sparsearch.index.segment import ARRAYS, Segment
from sparsearch.index.snapshot import Snapshot

FORMAT_VERSION = 4  # 4: columnar ids and payloads (3: per-term bounds, 2: plain postings)
READABLE_VERSIONS = (3, 4)
CURRENT = "CURRENT"
COLUMNS = "columns.json"
APPROX_META = "meta.json"
SUBFOLDERS = ("segments", "tombstones", "approx")  # what commits fsync and collect garbage in


# ---------------------------------------------------------------------- files
def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


def _write_bytes(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _write_npy(path: Path, array: np.ndarray) -> None:
    with open(path, "wb") as f:
        np.save(f, np.ascontiguousarray(array), allow_pickle=False)
        f.flush()
        os.fsync(f.fileno())


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".tmp-{uuid.uuid4().hex}-{path.name}")
    _write_bytes(tmp, data)
    os.replace(tmp, path)
    fsync_dir(path.parent)


def _describe(root: Path, rel: str) -> dict[str, Any]:
    full = root / rel
    return {"size": full.stat().st_size, "sha256": sha256_file(full)}


# ---------------------------------------------------------------------- writing
def write_segment(root: Path, seg: Segment) -> tuple[str, dict[str, dict[str, Any]]]:
    """Write a segment's immutable files under ``root/segments``; returns (name, file records)."""
    name = f"seg-{seg.number:06d}-{uuid.uuid4().hex[:8]}"
    parent = root / "segments"
    parent.mkdir(parents=True, exist_ok=True)
    tmp = parent / f".tmp-{name}"
    tmp.mkdir()
    for array_name, array in seg.arrays().items():
        _write_npy(tmp / f"{array_name}.npy", array)
    for array_name, array in seg.ids.to_arrays().items():
        _write_npy(tmp / f"id.{array_name}.npy", array)
    payload_arrays, payload_schema = seg.payloads.to_arrays()
    for array_name, array in payload_arrays.items():
        _write_npy(tmp / f"payload.{array_name}.npy", array)
    columns = {"id_kind": seg.ids.kind, "payload_schema": payload_schema}
    _write_bytes(tmp / COLUMNS, json.dumps(columns, sort_keys=True).encode())
    fsync_dir(tmp)
    os.rename(tmp, parent / name)
    fsync_dir(parent)
    files = {
        f"segments/{name}/{f.name}": _describe(root, f"segments/{name}/{f.name}")
        for f in sorted((parent / name).iterdir())
    }
    return name, files


def write_approx(root: Path, seg_name: str, part: approx.ApproxPart) -> tuple[str, dict[str, Any]]:
    """Write a segment's approximate part under ``root/approx``; returns (folder, file records)."""
    parent = root / "approx"
    parent.mkdir(parents=True, exist_ok=True)
    name = f"{seg_name}-{uuid.uuid4().hex[:8]}"
    tmp = parent / f".tmp-{name}"
    tmp.mkdir()
    for array_name, array in part.arrays.items():
        _write_npy(tmp / f"{array_name}.npy", array)
    _write_bytes(tmp / APPROX_META, json.dumps(part.meta(), sort_keys=True).encode())
    fsync_dir(tmp)
    os.rename(tmp, parent / name)
    fsync_dir(parent)
    rel = f"approx/{name}"
    return rel, {
        f"{rel}/{f.name}": _describe(root, f"{rel}/{f.name}")
        for f in sorted((parent / name).iterdir())
    }


def write_tombstones(
    root: Path, seg_name: str, deleted: np.ndarray, version: int
) -> tuple[str, dict[str, Any]]:
    """Write the deleted ordinals of one segment for manifest ``version``."""
    parent = root / "tombstones"
    parent.mkdir(parents=True, exist_ok=True)
    rel = f"tombstones/{seg_name}.{version:06d}.npy"
    _write_npy(root / rel, np.flatnonzero(deleted).astype(np.int64))
    return rel, _describe(root, rel)


def write_vocab(root: Path, vocab: tuple[str, ...], vocab_hash: str) -> tuple[str, dict[str, Any]]:
    rel = f"vocab-{vocab_hash[:16]}.json"
    _atomic_write(root / rel, json.dumps(list(vocab)).encode())
    return rel, _describe(root, rel)


def commit(root: Path, manifest: dict[str, Any]) -> None:
    """Write the manifest, then switch ``CURRENT`` to it (the atomic commit point)."""
    for sub in SUBFOLDERS:
        if (root / sub).is_dir():
            fsync_dir(root / sub)
    name = f"manifest-{manifest['version']:06d}.json"
    data = json.dumps(manifest, indent=1, sort_keys=True).encode()
    _atomic_write(root / name, data)
    previous = _committed_files(root)
    pointer = json.dumps({"manifest": name, "sha256": hashlib.sha256(data).hexdigest()})
    check = hashlib.sha256(pointer.encode()).hexdigest()
    _atomic_write(root / CURRENT, f"{pointer}\n{check}\n".encode())
    _collect_garbage(root, {name, *manifest["files"], *previous})


def _committed_files(root: Path) -> set[str]:
    """The manifest named by ``CURRENT`` and the files it lists (none if unreadable). A commit
    keeps them one commit longer, so a reader that has just read ``CURRENT`` still finds them."""
    try:
        name = json.loads(read_current(root).split("\n")[0])["manifest"]
        return {name, *json.loads((root / name).read_text())["files"]}
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        return set()


def _ours(name: str) -> bool:
    """Whether a top-level file name is one the index writes (anything else is left alone)."""
    return name.startswith(("manifest-", "vocab-", ".tmp-")) and name != LOCK


def _collect_garbage(root: Path, keep: set[str]) -> None:
    """Remove index files not in ``keep`` (older versions, crash debris); files the index did
    not write are never touched."""
    keep = keep | {CURRENT}
    keep_dirs = {rel.rsplit("/", 1)[0] for rel in keep if rel.startswith(("segments/", "approx/"))}
    for entry in root.iterdir():
        if entry.is_file() and entry.name not in keep and _ours(entry.name):
            entry.unlink(missing_ok=True)
    for sub in SUBFOLDERS:
        if not (root / sub).is_dir():
            continue
        for entry in (root / sub).iterdir():
            rel = f"{sub}/{entry.name}"
            if entry.is_dir() and rel not in keep_dirs:
                shutil.rmtree(entry, ignore_errors=True)
            elif entry.is_file() and rel not in keep:
                entry.unlink(missing_ok=True)


def next_version(root: Path) -> int:
    """One more than the highest manifest version present (committed or not)."""
    versions = [
        int(p.stem.split("-")[1])
        for p in root.glob("manifest-*.json")
        if p.stem.split("-")[1].isdigit()
    ]
    return max(versions, default=0) + 1


# ---------------------------------------------------------------------- reading
def check_save_target(root: Path) -> None:
    """Refuse to save into a folder that holds files but no index (they would be mixed in)."""
    if root.exists() and not root.is_dir():
        raise InvalidInputError(f"{root} is a file, not a folder to save an index in")
    if root.is_dir() and not (root / CURRENT).exists():
        foreign = sorted(p.name for p in root.iterdir() if p.name not in (LOCK, "wal"))
        if foreign:
            raise InvalidInputError(
                f"{root} holds files that are not an index ({', '.join(foreign[:3])}); "
                "save into an empty or new folder"
            )


def read_current(root: Path) -> str:
    """The text of ``CURRENT`` ('' when missing): what a reader compares to see a new commit."""
    try:
        return (root / CURRENT).read_text()
    except (OSError, UnicodeDecodeError):
        return ""


def read_manifest(root: Path, verify: bool = True) -> dict[str, Any]:
    """The committed manifest, after checking ``CURRENT``, the manifest and (``verify``) all files."""
    if not root.is_dir() or not (root / CURRENT).exists() and not any(root.iterdir()):
        raise IndexNotFoundError(f"no index at {root} (no folder, or an empty one)")
    try:
        text = (root / CURRENT).read_text()
        pointer, check = text.split("\n")[:2]
        entry = json.loads(pointer)
        if not isinstance(entry, dict) or not isinstance(entry.get("manifest"), str):
            raise ValueError("not a manifest pointer")
        if not entry["manifest"].startswith("manifest-") or "/" in entry["manifest"]:
            raise ValueError(f"points outside the index: {entry['manifest'][:40]!r}")
    except (OSError, ValueError, UnicodeDecodeError) as err:
        raise IndexCorruptError(f"{root / CURRENT}: missing or unreadable ({err})") from err
    if text != f"{pointer}\n{check}\n" or hashlib.sha256(pointer.encode()).hexdigest() != check:
        raise IndexCorruptError(f"{root / CURRENT}: checksum mismatch")
    manifest_path = root / entry["manifest"]
    try:
        data = manifest_path.read_bytes()
    except OSError as err:
        raise IndexCorruptError(f"{manifest_path}: missing ({err})") from err
    if hashlib.sha256(data).hexdigest() != entry["sha256"]:
        raise IndexCorruptError(f"{manifest_path}: checksum mismatch")
    try:
        manifest: dict[str, Any] = json.loads(data)
        check_manifest(manifest)
    except (ValueError, TypeError, KeyError, RecursionError) as err:
        raise IndexCorruptError(f"{manifest_path}: malformed ({str(err)[:200]})") from err
    if manifest.get("format_version") not in READABLE_VERSIONS:
        raise IndexCorruptError(
            f"{manifest_path}: format version {manifest.get('format_version')} is not supported "
            f"(this sparsearch reads versions {READABLE_VERSIONS}; rebuild the index from its "
            "vectors)"
        )
    for rel, record in manifest["files"].items():
        full = root / rel
        try:
            size = full.stat().st_size
        except OSError as err:
            raise IndexCorruptError(f"{full}: missing") from err
        if size != record["size"]:
            raise IndexCorruptError(f"{full}: size {size} != {record['size']} (truncated?)")
        if verify and sha256_file(full) != record["sha256"]:
            raise IndexCorruptError(f"{full}: checksum mismatch")
    return manifest


def write_segments(
    root: Path, segments: list[Segment], version: int
) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
    """Write the segments not yet under ``root`` and this version's tombstones.

    Returns the manifest's segment entries and the file records of everything they use.
    """
    resolved = root.resolve()
    files: dict[str, dict[str, Any]] = {}
    entries = []
    for seg in segments:
        if seg.saved is None or seg.saved[0] != resolved:
            name, seg_files = write_segment(root, seg)
            seg.saved = (resolved, name, seg_files)
        _, name, seg_files = seg.saved
        files.update(seg_files)
        tombstones = None
        if seg.n_live < seg.n:
            tombstones, record = write_tombstones(root, name, seg.deleted, version)
            files[tombstones] = record
        entry: dict[str, Any] = {
            "name": name,
            "number": seg.number,
            "n_docs": seg.n,
            "tombstones": tombstones,
            "files": seg_files,
        }
        part = seg.approx
        if part is not None:
            if part.saved is None or part.saved[:2] != (resolved, name):
                folder, part_files = write_approx(root, name, part)
                part.saved = (resolved, name, folder, part_files)
            _, _, folder, part_files = part.saved
            files.update(part_files)
            entry["approx"] = {"folder": folder, "files": part_files}
        entries.append(entry)
    return entries, files


def save_index(root: Path, snap: Snapshot, params: dict[str, Any]) -> tuple[str, int]:
    """Write what is new (segments, tombstones, vocabulary) and commit a manifest of ``snap``
    that lists every file it uses; returns the new ``CURRENT`` text and the manifest version."""
    version = next_version(root)
    entries, files = write_segments(root, list(snap.segments), version)
    vocab_file = None
    if snap.vocab is not None:
        vocab_file, record = write_vocab(root, snap.vocab, str(snap.vocab_hash))
        files[vocab_file] = record
    manifest = {
        "format_version": FORMAT_VERSION,
        "version": version,
        "dim": snap.dim,
        "vocab_hash": snap.vocab_hash,
        "id_kind": snap.id_kind(),
        "counts": {
            "documents": snap.n_live,
            "segments": len(snap.segments),
            "deleted": snap.n_deleted,
        },
        "params": params,
        "next_seq": snap.next_seq,
        "next_number": snap.next_number,
        "wal_lsn": snap.wal_lsn,
        "vocab_file": vocab_file,
        "segments": entries,
        "files": files,
    }
    commit(root, manifest)
    return read_current(root), version


def load_snapshot(
    root: Path, mmap: bool, verify: bool, attempts: int = 20
) -> tuple[Snapshot, dict[str, Any], str]:
    """The committed state of ``root``: (snapshot, parameters, the ``CURRENT`` text read).

    A reader that races a writer's commit (whose garbage collection removes the files of the
    version being read) retries on the new version; damage that stays put is an error.
    """
    for attempt in range(attempts):
        current = read_current(root)
        try:
            manifest = read_manifest(root, verify=verify)
            return _snapshot(root, manifest, mmap, verify), manifest["params"], current
        except IndexCorruptError:
            if attempt == attempts - 1 or read_current(root) == current:
                raise
    raise AssertionError("unreachable")


def _snapshot(root: Path, manifest: dict[str, Any], mmap: bool, verified: bool) -> Snapshot:
    fmt = manifest["format_version"]
    vocab = None
    try:
        if manifest["vocab_file"]:
            vocab = tuple(json.loads((root / manifest["vocab_file"]).read_text()))
    except (OSError, ValueError) as err:
        raise IndexCorruptError(f"{root / manifest['vocab_file']}: unreadable ({err})") from err
    segments = tuple(
        read_segment(root, meta, manifest["dim"], mmap, fmt, verified)
        for meta in manifest["segments"]
    )
    return Snapshot(
        segments=segments,
        dim=manifest["dim"],
        vocab=vocab,
        vocab_hash=manifest["vocab_hash"],
        next_seq=manifest["next_seq"],
        next_number=manifest["next_number"],
        version=manifest["version"],
        wal_lsn=manifest.get("wal_lsn", 0),
    )


def read_segment(
    root: Path, meta: dict[str, Any], dim: int, mmap: bool, format_version: int, verified: bool
) -> Segment:
    """Load one segment described by its manifest entry (arrays memory-mapped when ``mmap``).

    ``verified``: its files passed their checksums, so they are the ones written (and a segment
    is consistent when written); otherwise its structure is checked before its first search.
    """
    folder = root / "segments" / meta["name"]
    n = meta["n_docs"]
    mode: Literal["r"] | None = "r" if mmap else None
    try:
        arrays = {name: load_npy(folder / f"{name}.npy", mode) for name in ARRAYS}
        if format_version == 3:
            ids, payloads = _read_v3_columns(folder, n)
        else:
            columns = json.loads((folder / COLUMNS).read_text())
            ids = column_from_arrays(columns["id_kind"], _prefixed(folder, "id.", mode))
            payloads = PayloadColumns.from_arrays(
                _prefixed(folder, "payload.", mode), columns["payload_schema"], n
            )
        deleted = np.zeros(n, bool)
        if meta.get("tombstones"):
            tombstones = load_npy(root / meta["tombstones"], None)
            if tombstones.ndim != 1 or tombstones.dtype != np.int64:
                raise ValueError(f"tombstones of shape {tombstones.shape} and {tombstones.dtype}")
            if tombstones.size and (tombstones.min() < 0 or tombstones.max() >= n):
                raise ValueError("tombstones outside the segment")
            deleted[tombstones] = True
    except (OSError, ValueError, IndexError, KeyError, TypeError) as err:
        raise IndexCorruptError(f"{folder}: unreadable segment ({err})") from err
    seg = Segment(meta["number"], dim, arrays, ids, payloads, deleted)
    if seg.n != n or len(ids) != n:
        raise IndexCorruptError(f"{folder}: holds {seg.n} documents, manifest says {n}")
    if meta.get("approx"):
        part = read_approx(root, meta["approx"]["folder"], n, dim, mode, verified)
        if part is not None:
            part.saved = (
                root.resolve(),
                meta["name"],
                meta["approx"]["folder"],
                meta["approx"]["files"],
            )
        seg.approx = part
    if format_version == FORMAT_VERSION:  # older segments are rewritten by the next save
        seg.saved = (root.resolve(), meta["name"], meta["files"])
    if verified:
        seg.mark_checked()
    return seg


def read_approx(
    root: Path, rel: str, n: int, dim: int, mode: Literal["r"] | None, verified: bool
) -> approx.ApproxPart | None:
    """A segment's saved approximate part (None when another version wrote it: rebuilt on
    demand). Unverified files are checked for consistency, as the kernel trusts them."""
    folder = root / rel
    try:
        meta = json.loads((folder / APPROX_META).read_text())
        arrays = {name: load_npy(folder / f"{name}.npy", mode) for name in approx.ARRAYS}
        part = approx.ApproxPart.from_saved(arrays, meta)
        if part is not None and not verified:
            approx.check_arrays(arrays, n, dim)
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise IndexCorruptError(f"{folder}: unreadable approximate part ({err})") from err
    return part


def load_npy(path: Path, mode: Literal["r"] | None) -> np.ndarray:
    """One ``.npy`` array (memory-mapped with ``mode="r"``); a damaged header is a named error
    (numpy parses it with Python's tokenizer, which raises whatever it meets)."""
    try:
        array: np.ndarray = np.load(path, mmap_mode=mode, allow_pickle=False)
    except OSError:
        raise
    except Exception as err:  # noqa: BLE001 - any parse failure of an untrusted header
        raise IndexCorruptError(
            f"{path}: not a readable array ({type(err).__name__}: {err})"
        ) from err
    return array


def _prefixed(folder: Path, prefix: str, mode: Literal["r"] | None) -> dict[str, np.ndarray]:
    """The arrays ``<prefix><name>.npy`` of a segment folder, by name."""
    return {
        path.name[len(prefix) : -4]: load_npy(path, mode)
        for path in sorted(folder.glob(f"{prefix}*.npy"))
    }


def _read_v3_columns(folder: Path, n: int) -> tuple[AnyIdColumn, PayloadColumns]:
    """Format 3 kept ids as one JSON list and payloads as JSON lines: build the columns."""
    ids = json.loads((folder / "ids.json").read_text())
    payloads = None
    if (folder / "payloads.jsonl").exists():
        lines = (folder / "payloads.jsonl").read_text().splitlines()
        payloads = [json.loads(line) for line in lines]
        if len(payloads) != n:
            raise IndexCorruptError(f"{folder}: {len(payloads)} payloads for {n} documents")
    return column_for(ids), PayloadColumns.build(payloads, n)
