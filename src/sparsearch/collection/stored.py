"""What a collection keeps in each document's payload besides the user's fields.

The engine stores one JSON payload per document, written atomically with its sparse vector in
the same log record and segment; the collection keeps the document's text and its dense vector
there too, under one reserved key, so a write is one atomic engine write whatever it carries.
The reserved value is an object, which the engine keeps as JSON and never indexes as a column.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from sparsearch.errors import InvalidInputError

RESERVED = "_sparsearch"
"""The payload key holding ``{"text": ..., "dense": base64 float32}``."""


def pack(
    payloads: Sequence[Mapping[str, Any] | None] | None,
    texts: Sequence[str] | None,
    dense: np.ndarray | None,
    n: int,
) -> list[dict[str, Any]]:
    """The engine payloads of ``n`` documents: the user's fields plus the reserved entry."""
    if payloads is not None and len(payloads) != n:
        raise InvalidInputError(f"{len(payloads)} payloads for {n} documents")
    out = []
    for i in range(n):
        user = payloads[i] if payloads is not None else None
        if user is not None and not isinstance(user, Mapping):
            raise InvalidInputError(f"payload {i} must be a JSON object, got {type(user).__name__}")
        if user is not None and RESERVED in user:
            raise InvalidInputError(f"payload {i} uses the reserved field {RESERVED!r}")
        extra: dict[str, Any] = {}
        if texts is not None:
            extra["text"] = texts[i]
        if dense is not None:
            extra["dense"] = base64.b64encode(dense[i].astype("<f4").tobytes()).decode("ascii")
        out.append({**(user or {}), RESERVED: extra})
    return out


def user_payload(stored: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The user's fields of a stored payload (None when there were none)."""
    if stored is None:
        return None
    fields = {key: value for key, value in stored.items() if key != RESERVED}
    return fields or None


def text_of(stored: Mapping[str, Any] | None) -> str | None:
    """The stored text of a document, if the collection keeps texts."""
    extra = stored.get(RESERVED) if stored else None
    return extra.get("text") if isinstance(extra, dict) else None


def dense_of(stored: Mapping[str, Any] | None, dim: int) -> np.ndarray | None:
    """The stored dense vector of a document (None when it has none)."""
    extra = stored.get(RESERVED) if stored else None
    encoded = extra.get("dense") if isinstance(extra, dict) else None
    if encoded is None:
        return None
    vector = np.frombuffer(base64.b64decode(encoded), dtype="<f4")
    return vector if vector.size == dim else None


def names_reserved(condition: Any) -> bool:
    """Whether a filter (as ``Filter.to_dict()``) has a condition on the reserved field."""
    if isinstance(condition, Mapping):
        return condition.get("key") == RESERVED or any(
            names_reserved(value) for value in condition.values()
        )
    if isinstance(condition, list):
        return any(names_reserved(value) for value in condition)
    return False
