"""``manifest.json`` of a shard folder: the job that writes it, its plan, and whether it is done.

Written by the driver before any shard (so a killed job can be resumed and a different job is
refused) and again, ``complete``, after every shard is written and checked. Always replaced
atomically (temporary file, fsync, rename). It records the model (as given and its weight
fingerprint, :func:`sparsearch.hybrid.cache.model_fingerprint`), the vector space (dim, vocab),
the encoding parameters, the input (path, fields, sha256, size, rows), the shard size and each
shard's row range, plus one record per run (shards encoded, seconds, each worker's peak memory).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sparsearch.distributed.inputs import InputSpec, ShardPlan
from sparsearch.errors import IndexCorruptError, InvalidInputError, ModelMismatchError
from sparsearch.index.durable_files import fsync_dir

FORMAT = 1
MANIFEST = "manifest.json"
KIND = "sparsearch.shards"


@dataclass
class Manifest:
    """The contents of ``manifest.json``."""

    model: str
    fingerprint: str
    dim: int
    vocab: list[str] | None
    encoding: dict[str, Any]
    input: dict[str, Any]
    shard_size: int
    shards: list[ShardPlan]
    complete: bool = False
    runs: list[dict[str, Any]] = field(default_factory=list)

    @property
    def count(self) -> int:
        """Documents in all shards."""
        return sum(shard.rows for shard in self.shards)

    def input_spec(self) -> InputSpec:
        """The input as the workers read it."""
        names = ("path", "format", "id_field", "text_field", "title_field", "with_text")
        spec = {name: self.input[name] for name in names}
        return InputSpec(**spec, payload_fields=tuple(self.input["payload_fields"]))

    def check_same_job(self, other: Manifest, folder: Path) -> None:
        """Refuse to resume ``self``'s folder with the different job ``other``."""
        if other.fingerprint != self.fingerprint:
            raise ModelMismatchError(
                f"{folder} was encoded with model {self.model!r} (fingerprint "
                f"{self.fingerprint[:12]}), not {other.model!r} ({other.fingerprint[:12]}): "
                "use another output folder"
            )
        mine, theirs = self.job(), other.job()
        for key in mine:
            if mine[key] != theirs[key]:
                raise InvalidInputError(
                    f"{folder} holds a job with another {key} ({_short(mine[key])} there, "
                    f"{_short(theirs[key])} now): resume it with the same settings or use "
                    "another output folder"
                )

    def job(self) -> dict[str, Any]:
        """What must match for a resume: encoding, input (not its path), shard size, space."""
        same_input = {k: v for k, v in self.input.items() if k != "path"}
        return {
            "encoding": self.encoding,
            "input": same_input,
            "shard_size": self.shard_size,
            "dim": self.dim,
        }

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["shards"] = [asdict(shard) for shard in self.shards]
        return {"format": FORMAT, "kind": KIND, **data}


def _short(value: Any) -> str:
    return f"{value!r:.200}"


def write_manifest(folder: Path, manifest: Manifest) -> None:
    """Replace ``folder/manifest.json`` atomically."""
    path = folder / MANIFEST
    tmp = folder / f".{MANIFEST}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(manifest.to_dict(), fh)
        fh.flush()
        os.fsync(fh.fileno())
    tmp.replace(path)
    fsync_dir(folder)


def read_manifest(folder: Path) -> Manifest:
    """The manifest of a shard folder; a damaged one raises :class:`IndexCorruptError`."""
    path = folder / MANIFEST
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InvalidInputError(f"{folder}: not a shard folder (no {MANIFEST})") from None
    except (OSError, ValueError) as err:
        raise IndexCorruptError(f"{path}: unreadable ({err})") from err
    try:
        if data.get("kind") != KIND or data.get("format") != FORMAT:
            raise ValueError(f"not a format-{FORMAT} shard manifest")
        fields = {k: v for k, v in data.items() if k not in ("format", "kind")}
        fields["shards"] = [ShardPlan(**shard) for shard in fields["shards"]]
        return Manifest(**fields)
    except (AttributeError, TypeError, KeyError, ValueError) as err:
        raise IndexCorruptError(f"{path}: malformed ({err})") from None


def is_manifest_folder(path: Path) -> bool:
    """Whether ``path`` is a folder with a shard manifest (it may be incomplete)."""
    return (path / MANIFEST).is_file()
