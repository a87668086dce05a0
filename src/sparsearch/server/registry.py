"""The collections under the server's root folder, opened on first use and kept open."""

from __future__ import annotations

import re
import shutil
import threading
import uuid
from pathlib import Path
from typing import Any

from sparsearch.collection import Collection
from sparsearch.errors import (
    CollectionExistsError,
    CollectionNotFoundError,
    InvalidInputError,
    ModelLoadError,
)

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def check_name(name: str) -> str:
    if not NAME.fullmatch(name) or ".." in name:
        raise InvalidInputError(
            f"collection name {name[:80]!r} must be 1-64 letters, digits, '_', '-' or '.', "
            "starting with a letter or digit"
        )
    return name


class Registry:
    """Open collections by name; creation and deletion are serialised, reads are not."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self._open: dict[str, Collection] = {}
        self._lock = threading.Lock()

    def names(self) -> list[str]:
        """Every collection in the root folder, by name."""
        return sorted(
            p.name
            for p in self.root.iterdir()
            if (p / "collection.json").is_file() and NAME.fullmatch(p.name)
        )

    def held(self, name: str) -> Collection | None:
        """The collection ``name`` if it is open already (no check, no disk access)."""
        return self._open.get(name)

    def get(self, name: str) -> Collection:
        """The open collection ``name`` (opened now if it is not yet)."""
        check_name(name)
        held = self._open.get(name)
        if held is not None:
            return held
        with self._lock:
            if name not in self._open:
                if not (self.root / name / "collection.json").is_file():
                    raise CollectionNotFoundError(f"no collection named {name!r}")
                collection = Collection.open(self.root / name)
                collection.encode(["warm up"])  # the first forward pass is slow: not on a client
                self._open[name] = collection
            return self._open[name]

    def create(self, name: str, **options: Any) -> Collection:
        check_name(name)
        with self._lock:
            try:
                collection = Collection.create(self.root / name, **options)
            except CollectionExistsError:  # the message names the server's folder: not for clients
                raise CollectionExistsError(f"a collection named {name!r} exists") from None
            except ModelLoadError as err:
                model = options.get("model")
                raise ModelLoadError(f"cannot load the model of {name!r} ({model!r})") from err
            self._open[name] = collection
            return collection

    def delete(self, name: str) -> None:
        """Close and remove a collection (renamed away first, so a crash leaves no half)."""
        check_name(name)
        with self._lock:
            folder = self.root / name
            if not (folder / "collection.json").is_file():
                raise CollectionNotFoundError(f"no collection named {name!r}")
            held = self._open.pop(name, None)
            if held is not None:
                held.close()
            trash = self.root / f".deleted-{name}-{uuid.uuid4().hex}"
            folder.rename(trash)
            shutil.rmtree(trash, ignore_errors=True)

    def opened(self) -> list[tuple[str, Collection]]:
        return list(self._open.items())

    def close(self) -> None:
        with self._lock:
            for collection in self._open.values():
                collection.close()
            self._open.clear()
