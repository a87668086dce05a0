"""Export targets named by URI: ``qdrant://localhost:6333/docs``, ``qdrant-edge:shard-dir/``,
``milvus://out/scifact.db/docs``,
``opensearch://localhost:9200/docs``, ``elasticsearch+https://host:9200/docs``,
``ciff:out.ciff``, ``anserini:out/``, ``bulk:out.ndjson``.

>>> uri = parse_uri("opensearch+https://search.example:9200/docs?shards=2")
>>> uri.scheme, uri.tls, uri.location, uri.name, uri.params
('opensearch', True, 'search.example:9200', 'docs', {'shards': '2'})
>>> parse_uri("ciff:runs/out.ciff").path
'runs/out.ciff'
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from sparsearch.backends.base import Backend, Target
from sparsearch.errors import ConfigError, InvalidInputError

TARGETS = {
    "qdrant": "sparsearch.backends.qdrant",
    "qdrant-edge": "sparsearch.backends.qdrant_edge",
    "milvus": "sparsearch.backends.milvus",
    "opensearch": "sparsearch.backends.opensearch",
    "elasticsearch": "sparsearch.backends.elastic",
    "ciff": "sparsearch.backends.ciff",
    "anserini": "sparsearch.backends.anserini",
    "bulk": "sparsearch.backends.bulk",
}
"""Scheme -> the module whose ``from_uri(uri: TargetURI, **options)`` opens that target."""

EXTRAS = {
    "qdrant": "qdrant",
    "qdrant-edge": "qdrant",
    "milvus": "milvus",
    "opensearch": "opensearch",
    "elasticsearch": "elasticsearch",
    "ciff": "ciff",
    "anserini": "ciff",  # shares CIFF's quantisation module, which loads protobuf
}
"""Scheme -> the pip extra that installs its client (``pip install 'sparsearch[qdrant]'``)."""

_SCHEME = re.compile(r"^([a-z][a-z-]*)(\+https?)?:(.*)$", re.DOTALL)
_HOST_PORT = re.compile(r"^[A-Za-z0-9_.\-\[\]:]+:\d+$")


@dataclass(frozen=True)
class TargetURI:
    """A parsed target URI. ``path`` is everything after ``scheme:`` (and a leading ``//``),
    without the query; engines split it into ``location`` (a ``host:port`` or a local path)
    and ``name`` (the collection or index: the last path segment)."""

    raw: str
    scheme: str
    tls: bool
    path: str
    params: dict[str, str] = field(default_factory=dict)

    @property
    def location(self) -> str:
        """The path without its last segment (``host:port``, a folder, a ``.db`` file)."""
        return self.path.rstrip("/").rpartition("/")[0]

    @property
    def name(self) -> str:
        """The last path segment: the collection or index name."""
        return self.path.rstrip("/").rpartition("/")[2]

    @property
    def is_server(self) -> bool:
        """Whether :attr:`location` is a ``host:port`` (else a local path)."""
        return bool(_HOST_PORT.match(self.location))

    def require_name(self) -> str:
        """:attr:`name`, or an error naming the URI when it has none."""
        if not self.name or not self.location:
            raise InvalidInputError(
                f"{self.raw!r}: name the collection after the location, e.g. "
                f"{self.scheme}://localhost:PORT/NAME"
            )
        return self.name

    def options(self, given: Mapping[str, Any], kinds: Mapping[str, type]) -> dict[str, Any]:
        """The query parameters converted to their ``kinds`` (``bool``, ``int``, ``float`` or
        ``str``), overridden by ``given`` (keyword options, passed on as they are); an error
        naming any query parameter not in ``kinds``.

        >>> parse_uri("qdrant:runs/docs?idf=true").options({}, {"idf": bool})
        {'idf': True}
        """
        unknown = sorted(set(self.params) - set(kinds))
        if unknown:
            raise InvalidInputError(
                f"{self.raw!r}: unknown parameters {unknown}; use {', '.join(kinds)}"
            )
        parsed = {
            key: _convert(self.raw, key, text, kinds[key]) for key, text in self.params.items()
        }
        return {**parsed, **given}


_BOOLS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


def _convert(raw: str, key: str, text: str, kind: type) -> Any:
    """One query parameter as ``kind``, or an error naming the URI, the key and the text."""
    try:
        if kind is bool:
            return _BOOLS[text.lower()]
        return kind(text)
    except (KeyError, ValueError):
        words = {bool: "true or false", int: "a whole number", float: "a number"}[kind]
        raise InvalidInputError(f"{raw!r}: {key} is {words}, got {text!r}") from None


def parse_uri(uri: str) -> TargetURI:
    """Split a target URI into scheme, TLS flag (``+https``), path and query parameters."""
    if not isinstance(uri, str):
        raise InvalidInputError(f"a target URI must be a string, got {type(uri).__name__}")
    match = _SCHEME.match(uri)
    if match is None or match.group(1) not in TARGETS:
        known = ", ".join(f"{scheme}:" for scheme in TARGETS)
        raise InvalidInputError(f"{uri!r} is not a target URI; known schemes: {known}")
    scheme, tls, rest = match.group(1), match.group(2) == "+https", match.group(3)
    rest = rest[2:] if rest.startswith("//") else rest
    path, _, query = rest.partition("?")
    if not path:
        raise InvalidInputError(f"{uri!r} names no location")
    return TargetURI(uri, scheme, tls, path, dict(parse_qsl(query, keep_blank_values=True)))


def open_target(uri: str | TargetURI, **options: Any) -> Target:
    """The export target a URI names (``options`` go to its constructor)."""
    parsed = uri if isinstance(uri, TargetURI) else parse_uri(uri)
    try:
        module = importlib.import_module(TARGETS[parsed.scheme])
    except ModuleNotFoundError as err:
        if err.name is None or err.name.startswith("sparsearch"):
            raise
        extra = EXTRAS.get(parsed.scheme, "backends")
        raise ConfigError(
            f"{parsed.scheme}: needs the {err.name!r} package; pip install 'sparsearch[{extra}]'"
        ) from err
    target: Target = module.from_uri(parsed, **options)
    return target


def open_backend(uri: str | TargetURI, **options: Any) -> Backend:
    """The searchable engine a URI names (not a file format)."""
    target = open_target(uri, **options)
    if not isinstance(target, Backend):
        raise InvalidInputError(f"{uri!r} is a file format, not an engine that can be searched")
    return target
