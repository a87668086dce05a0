"""Search filters: an allowed set of ids and/or payload field equality, combined with AND."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sparsearch.errors import InvalidInputError


@dataclass(frozen=True)
class Filter:
    """Which documents a search may return.

    ``ids``: only these external ids (unknown ones are ignored). ``payload``: only documents whose
    payload has every given field equal to the given value. Both given: both must hold.

    >>> Filter(ids=["a", "b"], payload={"lang": "en"})  # doctest: +ELLIPSIS
    Filter(ids=frozenset({...}), payload={'lang': 'en'})
    """

    ids: frozenset | None = None
    payload: Mapping[str, Any] = field(default_factory=dict)

    def __init__(self, ids: Iterable[str | int] | None = None,
                 payload: Mapping[str, Any] | None = None) -> None:
        object.__setattr__(self, "ids", None if ids is None else frozenset(_plain(i) for i in ids))
        if payload is not None and not isinstance(payload, Mapping):
            raise InvalidInputError(f"payload filter must be a mapping, got {type(payload).__name__}")
        object.__setattr__(self, "payload", dict(payload or {}))

    def matches_payload(self, payload: Mapping[str, Any] | None) -> bool:
        """Whether a document's payload satisfies the payload conditions."""
        if not self.payload:
            return True
        if payload is None:
            return False
        return all(key in payload and payload[key] == value for key, value in self.payload.items())


def as_filter(spec: Filter | Mapping[str, Any] | Iterable[str | int] | None) -> Filter | None:
    """Accept a :class:`Filter`, a ``{"ids": ..., "payload": {...}}`` mapping, or a set of ids."""
    if spec is None or isinstance(spec, Filter):
        return spec
    if isinstance(spec, Mapping):
        unknown = set(spec) - {"ids", "payload"}
        if unknown:
            raise InvalidInputError(f"unknown filter keys {sorted(unknown)}; use 'ids', 'payload'")
        return Filter(ids=spec.get("ids"), payload=spec.get("payload"))
    if isinstance(spec, (str, bytes)):
        raise InvalidInputError("a filter of ids must be a collection, not a single string")
    return Filter(ids=spec)


def _plain(doc_id: Any) -> Any:
    """numpy scalars to plain Python, so set membership matches stored ids."""
    return doc_id.item() if hasattr(doc_id, "item") else doc_id
