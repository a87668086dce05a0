"""The types every reader relies on in a manifest: checked before anything in it is used, so a
damaged or hand-edited manifest is a named error, never a crash deep in the reader."""

from __future__ import annotations

from typing import Any


def _count(value: Any, name: str, low: int = 0) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {str(value)[:40]!r}")


def check_manifest(manifest: Any) -> None:
    """The manifest's fields have the types every reader relies on (ValueError if not)."""
    if not isinstance(manifest, dict):
        raise ValueError("not a JSON object")
    for name in ("format_version", "version", "next_seq", "next_number"):
        _count(manifest[name], name)
    _count(manifest.get("wal_lsn", 0), "wal_lsn")
    if manifest["dim"] is not None:
        _count(manifest["dim"], "dim", 1)
    for name in ("vocab_hash", "vocab_file"):
        if manifest[name] is not None and not isinstance(manifest[name], str):
            raise ValueError(f"{name} must be a string")
    if not isinstance(manifest["params"], dict):
        raise ValueError("params must be an object")
    _count(manifest["params"]["max_segments"], "max_segments", 1)
    files = manifest["files"]
    if not isinstance(files, dict):
        raise ValueError("files must be an object")
    for rel, record in files.items():
        if rel.startswith("/") or ".." in rel.split("/"):
            raise ValueError(f"file {rel[:40]!r} outside the index")
        _count(record["size"], "size")
        if not isinstance(record["sha256"], str):
            raise ValueError("sha256 must be a string")
    if not isinstance(manifest["segments"], list):
        raise ValueError("segments must be a list")
    for meta in manifest["segments"]:
        if (
            not isinstance(meta["name"], str)
            or "/" in meta["name"]
            or meta["name"] in ("", ".", "..")
        ):
            raise ValueError("a segment name must be a folder name")
        _count(meta["number"], "number")
        _count(meta["n_docs"], "n_docs")
        if meta["tombstones"] is not None and meta["tombstones"] not in files:
            raise ValueError("tombstones must be a file of the manifest")
        if not isinstance(meta["files"], dict):
            raise ValueError("a segment's files must be an object")
        part = meta.get("approx")
        if part is not None:
            folder = part["folder"]
            if not isinstance(folder, str) or not folder.startswith("approx/") or ".." in folder:
                raise ValueError("an approximate part must be a folder under approx/")
            if not isinstance(part["files"], dict) or not set(part["files"]) <= set(files):
                raise ValueError("an approximate part's files must be files of the manifest")
