"""Checking payloads against a collection's declared schema before anything is encoded."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sparsearch.errors import InvalidInputError


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


_CHECKS = {
    "keyword": lambda v: isinstance(v, str),
    "integer": _is_int,
    "float": lambda v: _is_int(v) or isinstance(v, float),
    "boolean": lambda v: isinstance(v, bool),
    "keyword[]": lambda v: (
        isinstance(v, str) or (isinstance(v, list) and all(isinstance(x, str) for x in v))
    ),
    "integer[]": lambda v: _is_int(v) or (isinstance(v, list) and all(_is_int(x) for x in v)),
}


def check_payload_types(
    payloads: Sequence[Mapping[str, Any] | None], schema: Mapping[str, str]
) -> None:
    """Every declared field of every payload holds its declared type (or null / is absent)."""
    for i, payload in enumerate(payloads):
        if payload is None:
            continue
        if not isinstance(payload, Mapping):
            raise InvalidInputError(f"payload {i} must be an object, got {type(payload).__name__}")
        for field, kind in schema.items():
            value = payload.get(field)
            if value is not None and not _CHECKS[kind](value):
                raise InvalidInputError(
                    f"payload {i}: field {field!r} must be {kind} (the collection's schema), "
                    f"got {value!r:.60}"
                )
