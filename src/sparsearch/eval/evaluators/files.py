"""The evaluators' JSONL inputs: one JSON object per non-blank line (UTF-8), fields checked line by
line; every problem is an :class:`~sparsearch.errors.InvalidInputError` naming the file and line.

Field kinds: ``text`` (a string), ``texts`` (a string or a list of strings, read as a list) and
``number`` (a finite number). Other keys of a row are ignored.
"""

from __future__ import annotations

import json
import math
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any, Literal

from sparsearch.errors import InvalidInputError
from sparsearch.eval.beir import _lines

FieldKind = Literal["text", "texts", "number"]


def _value(value: Any, kind: FieldKind) -> Any:
    """The field's value, or None when it is not of ``kind``."""
    if kind == "text":
        return value if isinstance(value, str) else None
    if kind == "texts":
        if isinstance(value, str):
            return [value]
        ok = isinstance(value, list) and all(isinstance(t, str) for t in value)
        return value if ok else None
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    return float(value) if ok else None


_EXPECTED = {"text": "a string", "texts": "a string or a list of strings", "number": "a number"}


def read_rows(
    path: str | Path, fields: Mapping[str, FieldKind], optional: Collection[str] = ()
) -> list[dict[str, Any]]:
    """The rows of a JSONL file, each ``{field: value}`` over ``fields`` (``optional`` ones may
    be missing); an empty file is an error."""
    path = Path(path)
    rows = []
    for line_no, line in _lines(path):
        try:
            raw = json.loads(line)
        except json.JSONDecodeError as err:
            raise InvalidInputError(f"{path}:{line_no}: not JSON ({err})") from err
        if not isinstance(raw, dict):
            raise InvalidInputError(
                f"{path}:{line_no}: expected a JSON object, got {type(raw).__name__}"
            )
        row = {}
        for field, kind in fields.items():
            if field not in raw:
                if field in optional:
                    continue
                raise InvalidInputError(f"{path}:{line_no}: no {field!r} (needs {sorted(fields)})")
            value = _value(raw[field], kind)
            if value is None:
                raise InvalidInputError(
                    f"{path}:{line_no}: {field!r} must be {_EXPECTED[kind]}, "
                    f"got {repr(raw[field])[:60]}"
                )
            row[field] = value
        rows.append(row)
    if not rows:
        raise InvalidInputError(f"{path}: empty file (no rows)")
    return rows
