"""Request bodies of the HTTP API (pydantic): unknown fields are refused, types are strict, so a
malformed body is a 422 naming the field rather than a surprise further in."""

from __future__ import annotations

import json
import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr

Number = StrictFloat | StrictInt
DocIdBody = StrictStr | StrictInt


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SparseVectorBody(Body):
    """A sparse vector as parallel lists of dimensions and weights."""

    indices: list[StrictInt]
    values: list[Number]


SparseLike = SparseVectorBody | dict[str, Number]
QueryBody = StrictStr | SparseVectorBody | dict[str, Number] | list[Number]


class CreateCollection(Body):
    model: StrictStr = Field(description="hub id of the sparse encoder")
    dense_model: StrictStr | None = Field(None, description="hub id of a dense model (hybrid)")
    dense_index: Literal["flat", "hnsw"] = "flat"
    fusion: Literal["rrf", "linear"] = "rrf"
    payload_schema: dict[
        str, Literal["keyword", "integer", "float", "boolean", "keyword[]", "integer[]"]
    ] = {}
    max_active_dims: StrictInt | None = Field(None, ge=1)
    precision: Literal["float32", "bfloat16"] = "float32"
    store_text: StrictBool = True


class PointBody(Body):
    """A document: its text (encoded on ingest) or its pre-encoded sparse ``vector``."""

    id: DocIdBody
    text: StrictStr | None = None
    vector: SparseLike | None = None
    dense: list[Number] | None = None
    payload: dict[str, Any] | None = None


class UpsertPoints(Body):
    points: list[PointBody] = Field(min_length=1)


class PointIds(Body):
    ids: list[DocIdBody] = Field(min_length=1)


class SearchBody(Body):
    query: QueryBody
    k: StrictInt = Field(10, ge=1)
    filter: dict[str, Any] | None = None
    mode: Literal["sparse", "dense", "hybrid"] | None = None
    fusion: Literal["rrf", "linear"] | None = None
    explain: StrictBool = False
    with_payload: StrictBool = True
    candidates: StrictInt = Field(100, ge=1, le=10_000)
    recall: Number | None = Field(None, gt=0, le=1)


class SearchBatch(Body):
    searches: list[SearchBody] = Field(min_length=1)


MAX_DEPTH = 64
"""The deepest nesting of objects and arrays a request body may have."""


def strict_json(body: bytes) -> Any:
    """Parse a request body as RFC 8259 JSON, stricter than :func:`json.loads`: UTF-8 only, no
    ``NaN`` / ``Infinity`` (nor numbers that overflow to them), no lone surrogates (``"\\ud800"``
    cannot be stored, encoded or sent back), at most :data:`MAX_DEPTH` levels. Anything else
    raises :class:`json.JSONDecodeError` (a 422 naming the body), never an error further in."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as err:
        doc = body.decode("utf-8", "replace")
        raise json.JSONDecodeError("the body is not UTF-8", doc, err.start) from None
    try:
        value = json.loads(text, parse_constant=_no_constant, parse_float=_finite)
    except json.JSONDecodeError:
        raise
    except (ValueError, RecursionError) as err:  # parse hooks, int digit limit, deep nesting
        raise json.JSONDecodeError(str(err) or "nested too deeply", text, 0) from None
    _check_tree(value, text)
    return value


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite(literal: str) -> float:
    value = float(literal)
    if not math.isfinite(value):
        raise ValueError(f"the number {literal[:40]} is out of range")
    return value


def _check_tree(value: Any, text: str) -> None:
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, str):
            strings: Any = (node,)
        elif isinstance(node, (dict, list)):
            if depth > MAX_DEPTH:
                raise json.JSONDecodeError(f"nested deeper than {MAX_DEPTH} levels", text, 0)
            children = node.values() if isinstance(node, dict) else node
            stack.extend((child, depth + 1) for child in children)
            strings = node.keys() if isinstance(node, dict) else ()
        else:
            continue
        for string in strings:
            try:
                string.encode("utf-8")
            except UnicodeEncodeError:
                raise json.JSONDecodeError("a string holds a lone surrogate", text, 0) from None
