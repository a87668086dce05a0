"""What the file-format targets (CIFF, Anserini, bulk NDJSON) share: a destination that is refused
when it exists unless overwriting is asked for, and a temporary sibling that is renamed into place
when the export finishes, so a reader never sees a partial file."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from sparsearch.errors import InvalidInputError


def destination(path: str | os.PathLike[str], overwrite: bool) -> Path:
    """The target ``path``, refused when it exists (unless ``overwrite``) or its folder is
    missing."""
    target = Path(path)
    if target.exists() and not overwrite:
        raise InvalidInputError(f"{target} exists; pass overwrite=True to replace it")
    if not target.parent.is_dir():
        raise InvalidInputError(f"cannot write {target}: {target.parent} is not a folder")
    return target


def temp_sibling(target: Path) -> Path:
    """A fresh hidden name next to ``target`` for the output under construction (created by
    the caller with the default permissions, unlike ``tempfile``'s private 0600/0700)."""
    return target.with_name(f".{target.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")


def unwritable(target: Path, err: OSError) -> InvalidInputError:
    """The error for a target whose folder refuses our files."""
    return InvalidInputError(f"cannot write {target}: {err.strerror or err}")
