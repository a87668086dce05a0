"""The corpus a distributed encode reads: planned into shards by the driver, read back by range.

Two formats, chosen by the file name: JSON lines (``.jsonl`` / ``.json``; a BEIR ``corpus.jsonl``
is the default layout) and Parquet (``.parquet``); a BEIR folder stands for its ``corpus.jsonl``
(documents) or ``queries.jsonl`` (queries). The driver scans the file once (:func:`plan_input`):
it hashes the bytes (the input's identity, so a resumed job refuses a changed file) and cuts the
rows into shards of ``shard_size``, recording each shard's byte range (JSONL) or row range
(Parquet). A worker then reads only its range (:func:`read_rows`).

Rows follow the BEIR rules of :mod:`sparsearch.eval.beir`: blank lines are skipped; the id is a
non-empty string or an integer (kept as its string in JSONL; a Parquet id column of int64 stays
int); the text is a string or null; a document is ``(title + " " + text).strip()`` and a query
its text, stripped (a query's title is ignored, as BEIR does). Ids repeated within a file are an
error (within a shard here; across shards once every shard is written). Chosen payload fields are
copied into each row's payload. Not read: compressed files, several input files at once.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sparsearch.errors import DuplicateIdError, InvalidInputError
from sparsearch.eval.beir import doc_text


@dataclass(frozen=True)
class InputSpec:
    """Which file to read and which of its fields hold the id, title, text and payload."""

    path: str
    format: str
    id_field: str = "_id"
    text_field: str = "text"
    title_field: str | None = "title"
    payload_fields: tuple[str, ...] = ()
    with_text: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "payload_fields": list(self.payload_fields)}


@dataclass(frozen=True)
class ShardPlan:
    """Rows ``start..stop`` of the input; for JSONL also their bytes ``offset..end`` and the
    line number of the first of them."""

    number: int
    start: int
    stop: int
    offset: int | None = None
    end: int | None = None
    line: int | None = None

    @property
    def file(self) -> str:
        return f"shard-{self.number:05d}.parquet"

    @property
    def segment(self) -> str:
        """The folder of the shard's index segment, when workers build them."""
        return f"shard-{self.number:05d}.index"

    @property
    def rows(self) -> int:
        return self.stop - self.start


@dataclass
class Rows:
    """What a worker read for one shard, aligned by row."""

    ids: list[Any]
    texts: list[str]
    payloads: list[dict[str, Any] | None] | None = None
    stored_texts: list[str] | None = None


def resolve_input(path: str | os.PathLike[str], side: str) -> tuple[Path, str]:
    """The file to read (a BEIR folder's corpus.jsonl or queries.jsonl) and its format."""
    path = Path(path)
    if path.is_dir():
        path = path / ("queries.jsonl" if side == "query" else "corpus.jsonl")
    if not path.is_file():
        raise InvalidInputError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".json"):
        return path.resolve(), "jsonl"
    if suffix == ".parquet":
        return path.resolve(), "parquet"
    raise InvalidInputError(f"{path}: unknown input format (expected .jsonl, .json or .parquet)")


def plan_input(spec: InputSpec, shard_size: int) -> tuple[dict[str, Any], list[ShardPlan]]:
    """The input's identity (sha256 of its bytes, size, rows) and its shards, in row order."""
    if spec.format == "jsonl":
        identity, plan = _plan_jsonl(Path(spec.path), shard_size)
    else:
        identity, plan = _plan_parquet(spec, shard_size)
    if not plan:
        raise InvalidInputError(f"{spec.path}: empty input (no rows)")
    return identity, plan


def _plan_jsonl(path: Path, shard_size: int) -> tuple[dict[str, Any], list[ShardPlan]]:
    digest = hashlib.sha256()
    starts: list[tuple[int, int, int]] = []  # (row, byte offset, line number) of each shard
    rows = offset = 0
    with _open(path) as fh:
        for line_no, raw in enumerate(fh, 1):
            digest.update(raw)
            if raw.strip():
                if rows % shard_size == 0:
                    starts.append((rows, offset, line_no))
                rows += 1
            offset += len(raw)
    bounds = [*starts[1:], (rows, offset, 0)]
    plan = [
        ShardPlan(i, row, nxt[0], byte, nxt[1], line)
        for i, ((row, byte, line), nxt) in enumerate(zip(starts, bounds, strict=True))
    ]
    return {"sha256": digest.hexdigest(), "bytes": offset, "rows": rows}, plan


def _plan_parquet(spec: InputSpec, shard_size: int) -> tuple[dict[str, Any], list[ShardPlan]]:
    digest = hashlib.sha256()
    with _open(Path(spec.path)) as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    parquet = _parquet_file(spec.path)
    names = set(parquet.schema_arrow.names)
    for name in (spec.id_field, spec.text_field, *spec.payload_fields):
        if name not in names:
            raise InvalidInputError(
                f"{spec.path}: no column {name!r} (columns: {', '.join(sorted(names))})"
            )
    rows = parquet.metadata.num_rows
    plan = [
        ShardPlan(i, start, min(start + shard_size, rows))
        for i, start in enumerate(range(0, rows, shard_size))
    ]
    size = Path(spec.path).stat().st_size
    return {"sha256": digest.hexdigest(), "bytes": size, "rows": rows}, plan


def _open(path: Path) -> Any:
    try:
        return path.open("rb")
    except OSError as err:
        raise InvalidInputError(f"{path}: cannot read ({err.strerror})") from err


def _parquet_file(path: str) -> Any:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return pq.ParquetFile(path)
    except (OSError, pa.ArrowException) as err:
        raise InvalidInputError(f"{path}: not a readable Parquet file ({err})") from err


def read_rows(spec: InputSpec, shard: ShardPlan, side: str) -> Rows:
    """The ids, texts to encode and payloads of one shard's rows, checked."""
    if spec.format == "jsonl":
        records = _jsonl_records(spec, shard)
    else:
        records = _parquet_records(spec, shard)
    ids: list[Any] = []
    texts: list[str] = []
    payloads: list[dict[str, Any] | None] = []
    seen: dict[Any, str] = {}
    for where, record in records:
        doc_id = _row_id(where, record.get(spec.id_field), spec.id_field)
        if doc_id in seen:
            raise DuplicateIdError(f"{where}: duplicate id {doc_id!r} (first at {seen[doc_id]})")
        seen[doc_id] = where
        if spec.text_field not in record:
            raise InvalidInputError(f"{where}: no {spec.text_field!r} (id {doc_id!r})")
        text = _string(where, record, spec.text_field)
        if side == "query" or spec.title_field is None:
            texts.append(text.strip())
        else:
            texts.append(doc_text(_string(where, record, spec.title_field), text))
        chosen = {name: record[name] for name in spec.payload_fields if name in record}
        payloads.append(chosen or None)
        ids.append(doc_id)
    if len(ids) != shard.rows:
        raise InvalidInputError(
            f"{spec.path}: shard {shard.number} has {len(ids)} rows, the plan {shard.rows}: "
            "the file changed while it was read"
        )
    return Rows(
        ids,
        texts,
        payloads if spec.payload_fields else None,
        texts if spec.with_text else None,
    )


def _jsonl_records(spec: InputSpec, shard: ShardPlan) -> list[tuple[str, dict[str, Any]]]:
    assert shard.offset is not None and shard.end is not None and shard.line is not None
    with _open(Path(spec.path)) as fh:
        fh.seek(shard.offset)
        data = fh.read(shard.end - shard.offset)
    out = []
    for line_no, raw in enumerate(data.splitlines(), shard.line):
        where = f"{spec.path}:{line_no}"
        if line_no == 1 and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        if not raw.strip():
            continue
        try:
            row = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError as err:
            raise InvalidInputError(f"{where}: not UTF-8 ({err.reason})") from err
        except json.JSONDecodeError as err:
            raise InvalidInputError(f"{where}: not JSON ({err})") from err
        if not isinstance(row, dict):
            raise InvalidInputError(f"{where}: expected a JSON object, got {type(row).__name__}")
        if spec.id_field in row:  # JSONL ids are strings (BEIR keeps an integer as its string)
            raw_id = row[spec.id_field]
            row[spec.id_field] = str(raw_id) if _integer(raw_id) else raw_id
        out.append((where, row))
    return out


def _parquet_records(spec: InputSpec, shard: ShardPlan) -> list[tuple[str, dict[str, Any]]]:
    parquet = _parquet_file(spec.path)
    names = set(parquet.schema_arrow.names)
    wanted = [spec.id_field, spec.text_field, *spec.payload_fields]
    if spec.title_field is not None and spec.title_field in names:
        wanted.append(spec.title_field)
    groups: list[int] = []
    skip = first = 0  # skip: the rows before the first group read
    for g in range(parquet.metadata.num_row_groups):
        n = parquet.metadata.row_group(g).num_rows
        if first < shard.stop and first + n > shard.start:
            skip = first if not groups else skip
            groups.append(g)
        first += n
    table = parquet.read_row_groups(groups, columns=list(dict.fromkeys(wanted)))
    table = table.slice(shard.start - skip, shard.rows)
    return [(f"{spec.path} row {shard.start + i}", row) for i, row in enumerate(table.to_pylist())]


def _integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _row_id(where: str, value: Any, name: str) -> Any:
    if not (_integer(value) or isinstance(value, str)):
        raise InvalidInputError(f"{where}: {name!r} must be a string or an integer, got {value!r}")
    if isinstance(value, str) and not value.strip():
        raise InvalidInputError(f"{where}: empty {name!r}")
    return value


def _string(where: str, record: dict[str, Any], key: str) -> str:
    value = record.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidInputError(f"{where}: {key!r} must be a string, got {type(value).__name__}")
    return value


def check_fields(
    id_field: str, text_field: str, title_field: str | None, payload_fields: Sequence[str]
) -> tuple[str, ...]:
    """The payload field names as a tuple, after checking every field name is a non-empty str."""
    names = [id_field, text_field, *([title_field] if title_field is not None else [])]
    if isinstance(payload_fields, str):
        raise InvalidInputError("payload_fields must be a list of field names, not one string")
    for name in [*names, *payload_fields]:
        if not isinstance(name, str) or not name:
            raise InvalidInputError(f"field names must be non-empty strings, got {name!r}")
    return tuple(payload_fields)
