"""The on-disk layout of an index and its crash-safe commit protocol.

::

    path/
      CURRENT                      {"manifest": "manifest-000007.json", "sha256": ...} + self-check
      manifest-000007.json         format version, dim, vocab hash, counts, params, every file's
                                   size and sha256
      vocab-<hash>.json            the vocabulary (when the index has one)
      segments/seg-000003-<rand>/  fwd_*.npy, seq.npy, post_*.npy, ids.json, payloads.jsonl
      tombstones/<segment>.<version>.npy   deleted local ordinals (int64)

Segment folders are written once (to a temporary folder, fsynced, renamed) and never changed; a
commit writes the new tombstones and manifest, then atomically replaces ``CURRENT``. Killed at any
point, the index opens to the previous ``CURRENT`` (files of an unfinished commit are ignored and
removed by the next commit). Opening verifies every file's size and checksum.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from sparsearch.errors import IndexCorruptError, IndexNotFoundError
from sparsearch.index.segment import ARRAYS, Segment

FORMAT_VERSION = 3  # 3: per-term bounds for pruning (2: plain postings, 1: block-max postings)
CURRENT = "CURRENT"


# ---------------------------------------------------------------------- files
def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


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
    _fsync_dir(path.parent)


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
    _write_bytes(tmp / "ids.json", json.dumps(seg.ids.tolist()).encode())
    if seg.payloads is not None:
        lines = "".join(json.dumps(p) + "\n" for p in seg.payloads)
        _write_bytes(tmp / "payloads.jsonl", lines.encode())
    _fsync_dir(tmp)
    os.rename(tmp, parent / name)
    _fsync_dir(parent)
    files = {
        f"segments/{name}/{f.name}": _describe(root, f"segments/{name}/{f.name}")
        for f in sorted((parent / name).iterdir())
    }
    return name, files


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
    for sub in ("segments", "tombstones"):
        if (root / sub).is_dir():
            _fsync_dir(root / sub)
    name = f"manifest-{manifest['version']:06d}.json"
    data = json.dumps(manifest, indent=1, sort_keys=True).encode()
    _atomic_write(root / name, data)
    pointer = json.dumps({"manifest": name, "sha256": hashlib.sha256(data).hexdigest()})
    check = hashlib.sha256(pointer.encode()).hexdigest()
    _atomic_write(root / CURRENT, f"{pointer}\n{check}\n".encode())
    _collect_garbage(root, name, manifest)


def _collect_garbage(root: Path, manifest_name: str, manifest: dict[str, Any]) -> None:
    """Remove files that the committed manifest does not reference (old versions, crash debris)."""
    keep = set(manifest["files"]) | {manifest_name, CURRENT}
    keep_dirs = {rel.rsplit("/", 1)[0] for rel in keep if rel.startswith("segments/")}
    for entry in root.iterdir():
        if entry.is_file() and entry.name not in keep:
            entry.unlink(missing_ok=True)
    for sub in ("segments", "tombstones"):
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
def read_manifest(root: Path, verify: bool = True) -> dict[str, Any]:
    """The committed manifest, after checking ``CURRENT``, the manifest and (``verify``) all files."""
    if not root.is_dir() or not any(root.iterdir()):
        raise IndexNotFoundError(f"no index at {root} (no folder, or an empty one)")
    try:
        text = (root / CURRENT).read_text()
        pointer, check = text.split("\n")[:2]
        entry = json.loads(pointer)
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
    manifest = json.loads(data)
    if not isinstance(manifest, dict):
        raise IndexCorruptError(f"{manifest_path}: not a JSON object")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise IndexCorruptError(
            f"{manifest_path}: format version {manifest.get('format_version')} is not supported "
            f"(this sparsearch reads version {FORMAT_VERSION}; rebuild the index from its vectors)"
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
        entries.append(
            {
                "name": name,
                "number": seg.number,
                "n_docs": seg.n,
                "tombstones": tombstones,
                "files": seg_files,
            }
        )
    return entries, files


def save_index(
    root: Path, segments: list[Segment], vocab: tuple[str, ...] | None, state: dict[str, Any]
) -> None:
    """Write what is new (segments, tombstones, vocabulary) and commit a manifest of ``state``
    (dim, vocab hash, counts, parameters, counters) that lists every file it uses."""
    version = next_version(root)
    entries, files = write_segments(root, segments, version)
    vocab_file = None
    if vocab is not None:
        vocab_file, record = write_vocab(root, vocab, state["vocab_hash"])
        files[vocab_file] = record
    manifest = {
        "format_version": FORMAT_VERSION,
        "version": version,
        **state,
        "vocab_file": vocab_file,
        "segments": entries,
        "files": files,
    }
    commit(root, manifest)


def read_segment(root: Path, meta: dict[str, Any], dim: int, mmap: bool) -> Segment:
    """Load one segment described by its manifest entry (arrays memory-mapped when ``mmap``)."""
    folder = root / "segments" / meta["name"]
    try:
        arrays = {
            name: np.load(
                folder / f"{name}.npy", mmap_mode="r" if mmap else None, allow_pickle=False
            )
            for name in ARRAYS
        }
        ids = np.empty(meta["n_docs"], object)
        ids[:] = json.loads((folder / "ids.json").read_text())
        payloads = None
        if (folder / "payloads.jsonl").exists():
            payloads = [
                json.loads(line) for line in (folder / "payloads.jsonl").read_text().splitlines()
            ]
        deleted = np.zeros(meta["n_docs"], bool)
        if meta.get("tombstones"):
            deleted[np.load(root / meta["tombstones"], allow_pickle=False)] = True
    except (OSError, ValueError, IndexError) as err:
        raise IndexCorruptError(f"{folder}: unreadable segment ({err})") from err
    seg = Segment(meta["number"], dim, arrays, ids, payloads, deleted)
    if seg.n != meta["n_docs"] or (payloads is not None and len(payloads) != seg.n):
        raise IndexCorruptError(
            f"{folder}: holds {seg.n} documents, manifest says {meta['n_docs']}"
        )
    seg.saved = (root.resolve(), meta["name"], meta["files"])
    return seg
