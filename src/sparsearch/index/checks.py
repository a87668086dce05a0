"""Checks of what callers hand the index: ids, payloads, batches. Each failure is a named error."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from sparsearch.errors import DuplicateIdError, InvalidInputError
from sparsearch.search import DocId
from sparsearch.sparse import SparseVectors


def normalize_ids(ids: Iterable[Any]) -> list[DocId]:
    """External ids as plain ``str`` / ``int`` (numpy integers accepted, bools and others not).

    A single string or bytes value is refused rather than iterated as characters.
    """
    if isinstance(ids, (str, bytes)):
        raise InvalidInputError(
            f"ids must be a collection of ids, not a single {type(ids).__name__}"
        )
    out = []
    for doc_id in ids:
        if isinstance(doc_id, np.integer):
            doc_id = int(doc_id)
        elif isinstance(doc_id, np.str_):
            doc_id = str(doc_id)
        if isinstance(doc_id, bool) or not isinstance(doc_id, (str, int)):
            raise InvalidInputError(f"ids must be str or int, got {doc_id!r}")
        out.append(doc_id)
    return out


def check_payloads(payloads: Sequence[Mapping[str, Any] | None], n: int) -> None:
    """``n`` payloads, each ``None`` or a JSON object with string keys."""
    if len(payloads) != n:
        raise InvalidInputError(f"{len(payloads)} payloads for {n} vectors")
    for p in payloads:
        if p is not None and not (
            isinstance(p, Mapping) and all(isinstance(key, str) for key in p)
        ):
            raise InvalidInputError(f"a payload must be a JSON object, got {p!r}")
        try:
            json.dumps(p)
        except (TypeError, ValueError) as err:
            raise InvalidInputError(f"payload {p!r} is not JSON: {err}") from err


def check_batch(
    ids: Sequence[DocId],
    vectors: SparseVectors,
    payloads: Sequence[Mapping[str, Any] | None] | None,
) -> list[DocId]:
    """The batch's ids, normalised, after checking types, lengths, payloads and repeats."""
    if not isinstance(vectors, SparseVectors):
        raise InvalidInputError(f"vectors must be SparseVectors, got {type(vectors).__name__}")
    if isinstance(ids, (str, bytes)):
        raise InvalidInputError("ids must be a sequence of ids, not a single string")
    checked = normalize_ids(ids)
    if len(checked) != vectors.n:
        raise InvalidInputError(f"{len(checked)} ids for {vectors.n} vectors")
    if payloads is not None:
        check_payloads(payloads, vectors.n)
    seen: set[DocId] = set()
    for doc_id in checked:
        if doc_id in seen:
            raise DuplicateIdError(f"id {doc_id!r} appears twice in the batch")
        seen.add(doc_id)
    return checked
