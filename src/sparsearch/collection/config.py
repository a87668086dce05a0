"""``collection.json``: what a collection was built with, so every later open encodes the same way.

The file names each encoder (hub id or a folder inside the collection), the hub commit it
resolved to and a fingerprint of its weights, the routes used for queries and documents, the
fusion default, the dense index kind and the declared payload schema. It is written once, at
create time, atomically (temporary file, fsync, rename).
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sparsearch.errors import CollectionNotFoundError, ConfigError
from sparsearch.index.durable_files import fsync_dir

FORMAT = 1
CONFIG_FILE = "collection.json"
FIELD_TYPES = ("keyword", "integer", "float", "boolean", "keyword[]", "integer[]")
"""The payload types a schema may declare (the engine's filterable column types)."""
FUSIONS = ("rrf", "linear")
DENSE_KINDS = ("flat", "hnsw")
PRECISIONS = ("float32", "bfloat16")


@dataclass(frozen=True)
class ModelSpec:
    """One encoder: ``source`` is a hub id or a folder (relative: inside the collection)."""

    source: str
    revision: str | None
    fingerprint: str
    query_route: str = "query"
    document_route: str = "document"
    max_active_dims: int | None = None
    precision: str = "float32"


@dataclass(frozen=True)
class DenseSpec:
    """The optional dense encoder and how its vectors are searched."""

    model: ModelSpec
    dim: int
    normalize: bool
    index: str = "flat"
    hnsw_m: int = 32
    hnsw_ef_search: int = 128


@dataclass(frozen=True)
class CollectionConfig:
    """The contents of ``collection.json``."""

    sparse: ModelSpec
    dense: DenseSpec | None = None
    fusion: str = "rrf"
    rrf_k: int = 60
    payload_schema: dict[str, str] = dataclasses.field(default_factory=dict)
    store_text: bool = True
    format: int = FORMAT

    def __post_init__(self) -> None:
        check_choice("fusion", self.fusion, FUSIONS)
        check_choice("precision", self.sparse.precision, PRECISIONS)
        if self.dense is not None:
            check_choice("dense index", self.dense.index, DENSE_KINDS)
        if not isinstance(self.rrf_k, int) or self.rrf_k < 0:
            raise ConfigError(f"rrf_k must be a non-negative integer, got {self.rrf_k!r}")
        check_schema(self.payload_schema)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Any, where: str = CONFIG_FILE) -> CollectionConfig:
        """Parse and check a ``collection.json`` object; a problem names the file and field."""
        try:
            if not isinstance(data, dict):
                raise TypeError("the top level must be an object")
            if data.get("format") != FORMAT:
                raise ConfigError(
                    f"{where}: format {data.get('format')!r} is not one this version reads ({FORMAT})"
                )
            fields = dict(data)
            fields["sparse"] = ModelSpec(**fields["sparse"])
            if fields.get("dense") is not None:
                dense = dict(fields["dense"])
                dense["model"] = ModelSpec(**dense["model"])
                fields["dense"] = DenseSpec(**dense)
            return cls(**fields)
        except (TypeError, KeyError) as err:
            raise ConfigError(f"{where} is malformed: {err}") from None


def check_choice(name: str, value: object, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}; got {value!r}")


def check_schema(schema: Any) -> None:
    """A payload schema maps field names to one of :data:`FIELD_TYPES`."""
    if not isinstance(schema, dict):
        raise ConfigError(f"payload_schema must be a mapping of field -> type, got {schema!r}")
    for field, kind in schema.items():
        if not isinstance(field, str) or not field:
            raise ConfigError(f"payload_schema field names must be non-empty strings: {field!r}")
        if kind not in FIELD_TYPES:
            raise ConfigError(
                f"payload_schema[{field!r}] must be one of {', '.join(FIELD_TYPES)}; got {kind!r}"
            )


def read_config(folder: Path) -> CollectionConfig:
    path = folder / CONFIG_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CollectionNotFoundError(f"{folder} is not a collection (no {CONFIG_FILE})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise ConfigError(f"{path} is not valid JSON: {err}") from None
    return CollectionConfig.from_dict(data, str(path))


def write_config(folder: Path, config: CollectionConfig) -> None:
    """Write ``collection.json`` crash-safely."""
    path = folder / CONFIG_FILE
    tmp = path.with_suffix(".json.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(config.to_dict(), f, indent=2)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(folder)
